/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_srv.h -- the member's server, split over raft_server.c (connections,
 * peers, handshakes, the end-of-turn hook, leadership), raft_srv_ops.c
 * (client requests: proposals, read index, leases, volatile keys,
 * membership) and raft_srv_watch.c (watches). Internal to raft/.
 */
#ifndef RAFT_SRV_H
#define RAFT_SRV_H

#include "raft_int.h"

#define SRV_PROTO_VERSION 1
#define SRV_PEER_FRAME_MAX (1u << 30)     /* snapshots travel in one frame */
#define SRV_HELLO_FRAME_MAX 4096u
#define SRV_CLIENT_BACKLOG_MAX (256u << 20) /* queued reply bytes before we drop a client */
#define SRV_PEER_BACKLOG_MAX (64u << 20)  /* queued bytes before raft messages are dropped */
#define SRV_TICK_MS 50
#define SRV_PENDING_TIMEOUT_MS 30000
#define SRV_READ_ROUND_RETRY_MS 300

enum srv_conn_kind { SC_UNKNOWN = 0, SC_PEER_IN, SC_PEER_OUT, SC_CLIENT };
enum hello_kind { HELLO_PEER = 1, HELLO_CLIENT = 2 };

struct meta_server;
struct srv_watch;

struct srv_conn {
    struct raft_conn c; /* first: raft_conn callbacks cast back */
    struct meta_server *s;
    int kind;
    bool hello_done;
    uint64_t peer_id;
    char peer_addr[VS_RAFT_ADDRESS_MAX + 1];
    struct srv_peer *peer; /* SC_PEER_OUT */
    struct srv_watch *watches; /* this client's watches */
    struct srv_conn *next, *prev;
};

struct srv_peer {
    struct meta_server *s;
    uint64_t id;
    char address[VS_RAFT_ADDRESS_MAX + 1];
    struct srv_conn *conn; /* outbound, may be connecting */
    bool open;             /* handshake done */
    bool in_use;
    bool retry_armed;
    uv_timer_t retry;
    unsigned backoff_ms;
    uint64_t dropped;
};

/* Where an answer goes: a client connection (by request id) or a callback. */
struct srv_sink {
    struct srv_conn *conn;
    uint64_t req_id;
    vs_meta_txn_cb txn_cb;
    vs_meta_range_cb range_cb;
    vs_meta_status_cb status_cb;
    void *ctx;
};

enum srv_pending_kind {
    PK_TXN = 1, PK_LEASE_GRANT, PK_LEASE_REVOKE, PK_COMPACT, PK_NOOP, PK_CHANGE, PK_EXPIRE,
};

struct srv_pending {
    uint64_t index, term, deadline_ms;
    uint8_t kind;
    struct srv_sink sink;
};

struct srv_read {
    struct srv_sink sink;
    struct vs_meta_op op; /* points into bytes */
    uint8_t *bytes;
    uint64_t round;       /* the confirmation round this read waits for */
    uint64_t read_index;  /* valid once ready */
    bool ready;
    uint64_t deadline_ms;
    struct srv_read *next;
};

/* A lease keepalive or TTL query waiting for a confirmation round. */
struct srv_keepalive {
    struct srv_sink sink;
    uint64_t lease_id;
    bool renew;              /* a keepalive; else a TTL query */
    uint64_t arrived_ms;     /* a renewed deadline counts from here */
    uint64_t round;          /* the confirmation round it waits for */
    uint64_t deadline_ms;    /* VS_EUNAVAILABLE if not confirmed by then */
    struct srv_keepalive *next;
};

struct srv_watch {
    uint64_t id;         /* the client's id (per connection) or ours (in-process) */
    struct srv_conn *conn;
    vs_meta_watch_cb cb;
    void *ctx;
    uint8_t *key, *end;
    uint32_t key_len, end_len;
    uint64_t next_rev;
    uint64_t progress_rev, progress_ms; /* last revision the client was told about */
    bool synced, dead;
    struct srv_watch *next, *prev; /* all watches */
    struct srv_watch *conn_next;   /* the connection's watches */
};

struct srv_lease {
    uint64_t id, ttl_ms, deadline_ms;
    bool revoking;
};

struct srv_volatile {
    uint8_t *key, *value;
    uint32_t key_len, value_len;
};

enum mop_stage { MOP_NONE = 0, MOP_ADD_STANDBY, MOP_CATCH_UP, MOP_PROMOTE, MOP_REMOVE };

struct meta_server {
    uv_loop_t *loop;
    struct vs_raft_server_opts opts;
    char data_dir[512];
    char address[VS_RAFT_ADDRESS_MAX + 1];
    struct raft_db *db;
    struct raft_node node;
    bool node_open;
    struct raft_limits lim;
    uint64_t cluster_id;
    uint32_t client_frame_max;
    uv_tcp_t listener;
    uv_check_t check;
    uv_prepare_t prepare;
    uv_timer_t tick;
    unsigned handles_open;
    struct raft_flusher flusher;
    struct srv_conn *conns;
    struct srv_peer peers[VS_RAFT_MEMBERS_MAX];
    /* proposals waiting for their entry to apply, by increasing index */
    struct srv_pending *pend;
    size_t pend_head, pend_n, pend_cap;
    /* linearizable reads (read index, docs/metadata.md) */
    struct srv_read *reads, *reads_tail;
    uint64_t ri_round;        /* last round started */
    bool ri_inflight;
    uint64_t ri_index;        /* commit index when the round started */
    uint64_t ri_sent_ms;
    uint64_t ri_acks[VS_RAFT_MEMBERS_MAX];
    unsigned ri_n_acks;
    /* leadership */
    bool leader_ready;
    uint64_t leader_term;
    uint64_t noop_index;
    vs_raft_leader_cb leader_cb;
    void *leader_ctx;
    vs_raft_server_fatal_cb fatal_cb;
    void *fatal_ctx;
    /* leases, on the leader */
    struct srv_lease *leases;
    size_t n_leases, cap_leases;
    struct srv_keepalive *kas, *kas_tail; /* waiting for a round, in arrival order */
    uint64_t lease_check_ms;
    /* watches */
    struct srv_watch *watches;
    uint64_t next_watch_id;
    /* volatile keys, sorted, on the leader */
    struct srv_volatile *vol;
    size_t n_vol, cap_vol;
    uint64_t volatile_puts;
    /* one membership change at a time */
    struct {
        int stage;
        uint64_t id, index, deadline_ms;
        char address[VS_RAFT_ADDRESS_MAX + 1];
        struct srv_sink sink;
    } mop;
    /* initial members still to add (bootstrap_alone) */
    uint64_t pending_next_ms;
    bool pending_done;
    /* automatic compaction: (time, revision) samples */
    uint64_t compact_samples_ms[64], compact_samples_rev[64];
    unsigned n_samples;
    uint64_t last_sample_ms;
    /* A quick election when the leader's connection closes (see leader_gone). */
    uint64_t gone_leader, gone_at_ms, gone_check_ms, leader_rx_ms;
    bool fatal, closing;
    vs_raft_server_close_cb close_cb;
    void *close_ctx;
    uint64_t client_requests, bad_frames, quick_elections;
    /* peers cut off by vs_raft_server_cut (tests) */
    uint64_t cut_ids[VS_RAFT_MEMBERS_MAX];
    unsigned n_cut;
};

/* raft_server.c */
struct raft_conn *srv_peer_conn(void *ctx, uint64_t id, const char *address);
void srv_reply(struct meta_server *s, const struct srv_sink *k, int status, const void *body,
               size_t len);
void srv_leader_hint(struct meta_server *s, uint64_t *id, const char **address);
uint64_t srv_now(struct meta_server *s);
void srv_status(struct meta_server *s, struct vs_raft_status *st);
void srv_noop_applied(struct meta_server *s, uint64_t term);

/* raft_srv_ops.c */
void srv_handle_request(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len);
int srv_propose(struct meta_server *s, uint8_t kind, uint8_t cmd, const void *body, size_t len,
                const struct srv_sink *sink);
void srv_applied(void *ctx, uint64_t index, const struct raft_log_entry *e,
                 const struct raft_sm_result *res);
void srv_submit_failed(void *ctx, uint64_t first_index, unsigned n, int status);
void srv_truncated(void *ctx, uint64_t from_index);
void srv_pending_expire(struct meta_server *s, bool all, int status);
void srv_reads_fail(struct meta_server *s, int status);
void srv_reads_turn(struct meta_server *s);
void srv_ri_ping(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len);
void srv_ri_ack(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len);
void srv_leases_load(struct meta_server *s);
void srv_leases_clear(struct meta_server *s);
void srv_leases_tick(struct meta_server *s);
void srv_volatile_clear(struct meta_server *s);
void srv_compact_tick(struct meta_server *s);
void srv_mop_tick(struct meta_server *s);
void srv_pending_tick(struct meta_server *s);
void srv_forget_conn(struct meta_server *s, struct srv_conn *sc);
int srv_range_now(struct meta_server *s, const struct vs_meta_op *op, unsigned flags,
                  struct raft_buf *out);

/* raft_srv_watch.c */
int srv_watch_add(struct meta_server *s, struct srv_conn *sc, uint64_t id, const uint8_t *key,
                  uint32_t key_len, const uint8_t *end, uint32_t end_len, uint64_t start_rev,
                  vs_meta_watch_cb cb, void *ctx, uint64_t *first_rev);
int srv_watch_cancel(struct meta_server *s, struct srv_conn *sc, uint64_t id);
void srv_watches_deliver(struct meta_server *s);
void srv_watches_resync(struct meta_server *s);
void srv_watches_drop_conn(struct meta_server *s, struct srv_conn *sc);
void srv_watches_close(struct meta_server *s);

#endif /* RAFT_SRV_H */
