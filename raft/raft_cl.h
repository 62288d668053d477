/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_cl.h -- the client library's internals: raft_client.c (connections,
 * leader following, retries) and raft_cl_ops.c (the public ops, watches,
 * lease keepers). Internal to raft/.
 */
#ifndef RAFT_CL_H
#define RAFT_CL_H

#include "raft_int.h"

struct meta_client;
struct cl_op;

struct cl_conn {
    struct raft_conn c; /* first */
    struct meta_client *client;
    char address[VS_RAFT_ADDRESS_MAX + 1];
    bool light;      /* the keepalive connection */
    bool ready;      /* handshake done */
    bool draining;   /* the target moved on: closes once idle */
    bool fixed_only; /* a one-off connection to a named member */
    uint64_t opened_ms;
    struct cl_conn *next;
};

enum { OP_NOWHERE = 0, OP_QUEUED, OP_SENT };

typedef void (*cl_done_fn)(struct meta_client *c, struct cl_op *o, int status,
                           const uint8_t *body, size_t len);

struct cl_op {
    uint8_t op, flags;
    bool idempotent, light, sent_once;
    int where;
    uint64_t req_id;
    uint64_t deadline_ms, not_before_ms;
    uint64_t lease_id;
    struct raft_buf body; /* the request without its header */
    struct cl_conn *conn;  /* while sent */
    struct cl_conn *fixed; /* a named member, not the leader */
    vs_meta_txn_cb txn_cb;
    vs_meta_range_cb range_cb;
    vs_meta_lease_cb lease_cb;
    vs_meta_status_cb status_cb;
    cl_done_fn done_fn; /* internal completions (watches, keepers) */
    void *ctx;
    struct cl_op *next, *prev;
};

struct vs_meta_watch {
    struct meta_client *client;
    uint64_t id;
    uint8_t *key, *end;
    uint32_t key_len, end_len;
    uint64_t start_rev;  /* as asked */
    uint64_t last_rev;   /* complete up to this revision (0: nothing yet) */
    struct cl_conn *conn; /* where it is registered */
    bool active, creating, dead;
    struct cl_op *create_op;
    vs_meta_watch_cb cb;
    void *ctx;
    struct vs_meta_watch *next;
};

struct vs_meta_lease_keeper {
    struct meta_client *client;
    uint64_t id, ttl_ms;
    uint64_t next_ms;    /* next keepalive */
    uint64_t last_ok_ms; /* last confirmed renewal */
    enum vs_meta_lease_state state;
    struct cl_op *inflight;
    bool dead;
    vs_meta_lease_state_cb cb;
    void *ctx;
    struct vs_meta_lease_keeper *next;
};

struct meta_client {
    uv_loop_t *loop;
    struct vs_meta_client_opts opts;
    char members[VS_RAFT_MEMBERS_MAX * 4][VS_RAFT_ADDRESS_MAX + 1];
    unsigned n_members, member_next;
    char target[VS_RAFT_ADDRESS_MAX + 1]; /* the member we send to */
    char leader[VS_RAFT_ADDRESS_MAX + 1]; /* the last member that answered as leader */
    uint64_t target_changed_ms, reconnect_at_ms;
    unsigned backoff_ms;
    uint32_t frame_max;
    uint64_t cluster_id;
    struct cl_conn *conns, *bulk, *light;
    struct raft_flusher flusher;
    struct cl_op *queue, *queue_tail, *sent;
    uint64_t next_req_id;
    enum vs_meta_service_state state;
    uint64_t last_ok_ms;
    struct vs_meta_watch *watches;
    uint64_t next_watch_id;
    struct vs_meta_lease_keeper *keepers;
    uv_timer_t tick;
    uv_timer_t kick_timer; /* delayed retries and reconnects */
    uv_prepare_t prepare;
    int handles_closing;
    bool closing, finished;
    bool probing; /* an idle-time status probe is in flight (tick_cb) */
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

/* raft_client.c */
uint64_t cl_now(struct meta_client *c);
struct cl_op *cl_op_new(struct meta_client *c, uint8_t op, bool idempotent);
int cl_op_submit(struct meta_client *c, struct cl_op *o);
void cl_op_cancel(struct meta_client *c, struct cl_op *o);
void cl_prepare_cb(uv_prepare_t *h);
struct cl_conn *cl_fixed_conn(struct meta_client *c, const char *address);

/* raft_cl_ops.c */
void cl_watch_frame(struct meta_client *c, struct cl_conn *cc, uint16_t type, const uint8_t *p,
                    size_t len);
void cl_watches_lost(struct meta_client *c, struct cl_conn *cc);
void cl_watches_resume(struct meta_client *c, struct cl_conn *cc);
void cl_watches_close(struct meta_client *c);
void cl_keepers_tick(struct meta_client *c);
void cl_keepers_close(struct meta_client *c);

#endif /* RAFT_CL_H */
