/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_int.h -- libvstor internals shared by the client_*.c files.
 *
 * DESIGN NOTES
 *
 * An op (struct client_op, living in vstor_io.private_) is cut into parts
 * (struct client_part, from a pool sized at creation), one per object it
 * touches; each part is one messenger op to the primary of the object's PG
 * (docs/data-path.md section 7). Client states:
 *
 *   CL_CLUSTER_ID --id known--> CL_LOADING --all 4 documents read--> CL_READY
 *        (any state) --vstor_client_close--> CL_CLOSING
 *
 * Ops queue (ordering, rules O1..O3):
 *  (O1) A write or discard starts only when no sync is active.
 *  (O2) A sync starts only when no write, discard or sync is active.
 *  (O3) Writes, discards and syncs start in submission order (q_wait is FIFO
 *       for them); reads are never held by the ordering rules.
 * Parts queue:
 *  (P1) An op takes parts from the pool one object at a time (q_slice), so an
 *       op of any size needs no more than the free parts.
 *  (P2) A part whose target is unknown (no pool, no PG map, no primary, PG
 *       paused, no OSD address) or whose last attempt failed with a transient
 *       error waits in `retry`, re-sent on every map change and every
 *       retry_interval_ms tick.
 * Lazy pools (client_lazy.c):
 *  (L1) Every write/discard part of a lazy image has a dirty entry, in
 *       submission order, holding a copy of its bytes, from its dispatch until
 *       a sync covering it completes. Because of O1/O2 a completed sync covers
 *       every entry, so the entries and the copy area are reset together.
 *  (L2) An entry is valid while the OSD that acknowledged it is still the
 *       primary of its PG and its connection has not dropped since (conn
 *       generation). When an acknowledged entry stops being valid, the client
 *       enters replay: no new part leaves (reads included, so nothing reads
 *       around lost data) until no write part is on the wire, then every
 *       acknowledged entry is sent again in order to its PG's current primary;
 *       a transient failure repeats the whole pass. Replaying entries that were
 *       still valid rewrites identical bytes in the same order: harmless.
 *  (L3) A sync sends SYNC to every OSD that acknowledged an entry, only when
 *       no replay is pending; it succeeds when all of them succeed. A SYNC
 *       part that fails, or cannot be sent, is never sent again as is: the
 *       sync starts over from the entries (the OSD may be gone for good and
 *       its entries replayed to another).
 */
#ifndef VSTOR_CLIENT_INT_H
#define VSTOR_CLIENT_INT_H

#include "loop.h"
#include "net.h"
#include "vs_placement.h"
#include "vs_raft.h"
#include "vstor.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define CLIENT_ERRMSG 256
#define CLIENT_ENOSPC_WARN_MS 10000 /* least time between two ENOSPC warnings */
#define CLIENT_ADDR_MAX 64
#define CLIENT_BITMAP_SCRATCH 4096u /* READ reply bitmaps land here (unused) */
#define CLIENT_BLOCK_SIZE_DEFAULT (128u << 10)

/* ---- The metadata service, as the client sees it ---------------------------
 *
 * The production implementation (client_meta.c) wraps vs_meta_client; the
 * unit tests plug an in-memory fake with outages. Callbacks and results follow
 * vs_raft.h (same types, same async contract). */
struct client_meta_ops {
    /* The cluster's id (the metadata service's cluster id); cb(ctx, rc, id). */
    int (*cluster_id)(void *m, void (*cb)(void *ctx, int rc, uint64_t id), void *ctx);
    int (*range)(void *m, const void *key, uint32_t key_len, const void *end, uint32_t end_len,
                 vs_meta_range_cb cb, void *ctx);
    int (*watch)(void *m, const void *key, uint32_t key_len, const void *end, uint32_t end_len,
                 uint64_t start_rev, vs_meta_watch_cb cb, void *ctx, void **out);
    void (*watch_cancel)(void *m, void *w);
    int (*txn)(void *m, const struct vs_meta_txn *txn, vs_meta_txn_cb cb, void *ctx);
    void (*close)(void *m, void (*cb)(void *ctx), void *ctx);
};

/* 0, or -EINVAL with a sentence in err. */
int client__check_opts(const struct vstor_client_opts *o, char *err, size_t err_size);

/* Production metadata: a vs_meta_client on loop. */
int client__meta_create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                        const struct client_meta_ops **ops, void **m);

/* Creates a client over any metadata implementation (tests use a fake).
 * The client closes m (ops->close) when it closes. */
int client__create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                   const struct client_meta_ops *ops, void *m, struct vstor_client **out,
                   char *err, size_t err_size);

/* ---- Ops and parts ---------------------------------------------------------- */

enum client_op_type { OP_READ = 1, OP_WRITE, OP_SYNC, OP_DISCARD };
enum client_op_state { OPS_WAIT = 1, OPS_ACTIVE, OPS_DONE };

struct client_op {
    struct vstor_io *io;
    struct vstor_image *img;
    struct client_op *next; /* q_wait, q_slice or the completion list */
    uint64_t cursor;        /* next byte to slice (absolute offset) */
    uint64_t end;
    uint64_t deadline_us;   /* 0 = none */
    uint32_t parts_active;  /* parts taken and not finished */
    uint32_t sync_osds;     /* sync: SYNC parts not yet finished */
    uint32_t obj_size;      /* object size of the image's pool */
    uint32_t resv_ops;      /* lazy: dirty entries reserved and not yet used */
    uint64_t resv_bytes;    /* lazy: copy bytes reserved and not yet used */
    int rc;                 /* first error */
    uint8_t type;           /* enum client_op_type */
    uint8_t state;          /* enum client_op_state */
    bool internal;          /* an automatic sync: no io, no callback */
    bool in_slice;
    bool lazy;              /* a write/discard kept for replay (L1) */
};
_Static_assert(sizeof(struct client_op) <= sizeof(((struct vstor_io *)0)->private_),
               "client_op lives in vstor_io.private_");

enum client_part_kind { PART_RW = 1, PART_SYNC, PART_REPLAY };

struct client_part {
    struct vs_net_op net;      /* the messenger op (first: container_of) */
    struct vstor_client *c;
    struct client_op *op;      /* NULL for replay parts */
    struct client_part *next;  /* free list or retry list */
    uint64_t inode;
    uint64_t offset;           /* image byte offset */
    uint32_t len;
    uint32_t pg;
    uint32_t osd;              /* target of the last send */
    uint32_t dirty;            /* index of its dirty entry + 1, 0 = none */
    uint16_t opcode;           /* VS_NET_OP_READ/WRITE/DELETE/SYNC */
    uint8_t kind;              /* enum client_part_kind */
    bool on_wire;
    void *buf;                 /* data for WRITE, destination for READ */
};

/* ---- Cluster state ----------------------------------------------------------- */

struct client_osd {
    uint32_t id;
    char addr[CLIENT_ADDR_MAX];
    struct vs_net_conn *conn;
    uint64_t gen;   /* a fresh number every time the connection comes up */
    bool up;
    bool detached;  /* no longer in the table: freed on CLOSED */
};

struct client_doc { /* one watched document: its last applied mod_rev */
    uint64_t mod_rev;
};

struct vstor_image {
    struct vstor_client *c;
    struct vstor_image *next; /* client's open images */
    uint64_t inode;
    uint64_t size;
    uint64_t mod_rev;
    uint32_t ops_active;
    char name[VSTOR_NAME_MAX + 1];
    bool readonly;
    bool removed;
    bool registered; /* the inode key has been read */
};

struct client_dirty {
    uint64_t inode, offset;
    uint64_t copy_off;   /* into c->dirty_buf */
    uint64_t acked_gen;  /* connection generation of the ack */
    uint32_t len;
    uint32_t pg;
    uint32_t acked_osd;  /* 0: not acknowledged (never replayed) */
    bool discard;
};

enum client_state { CL_CLUSTER_ID = 1, CL_LOADING, CL_READY, CL_CLOSING };

struct vstor_client {
    uv_loop_t *loop;
    struct vstor_client_opts opts;
    char log_name[32];
    char net_local_dir[VS_NET_LOCAL_PATH_MAX]; /* opts.net_local_dir points here */
    const struct client_meta_ops *meta;
    void *m;
    struct vs_net *net;
    uint8_t state; /* enum client_state */
    uint64_t cluster_id;
    /* Cluster documents. */
    struct vs_placement_pools *pools;
    struct vs_pgmap *pgmap;
    uint32_t block_size; /* config/global */
    bool global_lazy;    /* config/global immediate_commit != all */
    struct client_doc doc_global, doc_pools, doc_pgs;
    unsigned loads_pending;
    bool load_failed;
    uint64_t load_rev_config; /* lowest revision of the three config reads */
    void *watch_config, *watch_osd;
    uint64_t osd_rev; /* revision of the osd/state range */
    struct client_osd **osds; /* sorted by id */
    uint32_t n_osds, cap_osds;
    /* Images. */
    struct vstor_image *images;
    /* Ops. */
    struct client_op *q_wait_head, *q_wait_tail;   /* O3 */
    struct client_op *q_slice_head, *q_slice_tail; /* P1 */
    struct client_op *done_head, *done_tail;       /* completions to deliver */
    uint32_t writes_active, syncs_active, ops_active;
    bool pumping, pump_again;
    struct client_op *sync_op;  /* the one active sync (O2) */
    struct open_req *opens;     /* image opens in progress */
    /* Parts. */
    struct client_part *parts;
    struct client_part *free_parts;
    uint32_t parts_free;
    struct client_part *retry_head, *retry_tail;   /* P2 */
    struct client_part *held_head, *held_tail;     /* held during replay (L2) */
    uint32_t write_parts_on_wire;
    uint32_t parts_on_wire;       /* every kind: the lone-request spin's gate */
    uint64_t parts_sent;          /* names the lone part for the spin */
    uint8_t *bitmap_scratch;
    /* Lazy mode. */
    struct client_dirty *dirty;
    uint32_t n_dirty;
    uint8_t *dirty_buf;
    uint64_t dirty_used;
    uint32_t resv_ops;        /* reserved by started lazy ops (L1 bound) */
    uint64_t resv_bytes;
    bool replay_needed;
    bool replaying;
    bool replay_failed;
    bool sync_retry;          /* a SYNC part failed transiently: send them again */
    uint64_t conn_gen;        /* numbers connection generations */
    uint32_t replay_next;    /* next entry to send in this pass */
    uint32_t replay_active;  /* replay parts taken and not finished */
    struct client_op auto_sync;
    bool auto_sync_queued;
    /* Loop handles. */
    uv_timer_t retry_timer;
    uv_timer_t meta_timer;   /* re-reads after a metadata failure */
    uv_idle_t done_idle;
    struct vs_spin spin;     /* opts.spin_lone_us (loop.h, targeted mode) */
    unsigned handles_open;
    void (*close_cb)(void *ctx);
    void *close_ctx;
    bool handles_closing;
    bool meta_closed;
    bool net_closed;
    bool freed;
    /* Statistics. */
    uint64_t retries, replays, auto_syncs;
    uint64_t enospc_waits;     /* parts retried after ENOSPC */
    uint64_t enospc_warned_us; /* when the last ENOSPC warning was logged; 0: never */
    char errmsg[CLIENT_ERRMSG];
};

/* client.c */
void client__errmsg(struct vstor_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
uint64_t client__now_us(void);
void client__state_ready(struct vstor_client *c);
void client__maybe_finish_close(struct vstor_client *c);
void client__meta_retry(struct vstor_client *c);

/* client_state.c: follows the metadata service. */
void client__state_start(struct vstor_client *c);
void client__state_stop(struct vstor_client *c);
void client__state_free(struct vstor_client *c);
struct client_osd *client__osd_find(struct vstor_client *c, uint32_t id);
const struct vs_placement_pool *client__pool(struct vstor_client *c, uint16_t pool);
uint32_t client__object_size(struct vstor_client *c, const struct vs_placement_pool *p);
bool client__pool_lazy(struct vstor_client *c, const struct vs_placement_pool *p);
void client__pools_apply(struct vstor_client *c, const struct vs_meta_kv *kv);
int client__image_apply(struct vstor_image *img, const uint8_t *value, uint32_t len,
                        uint64_t mod_rev);
/* Where a part goes: 0 and the PG and primary, or -EAGAIN (not known yet). */
int client__locate(struct vstor_client *c, uint64_t inode, uint64_t offset, uint32_t *pg,
                   uint32_t *primary);

/* client_op.c: ops, ordering, slicing, completion. */
void client__pump(struct vstor_client *c);
void client__op_finish_part(struct vstor_client *c, struct client_op *op, int rc);
void client__complete(struct vstor_client *c, struct client_op *op);
void client__fail_all(struct vstor_client *c, int rc);
void client__check_timeouts(struct vstor_client *c, uint64_t now_us);
bool client__op_expired(const struct client_op *op, uint64_t now_us);

/* client_part.c: the part pool, sending, retries, OSD connections. */
int client__parts_init(struct vstor_client *c);
void client__parts_free(struct vstor_client *c);
struct client_part *client__part_get(struct vstor_client *c);
void client__part_put(struct vstor_client *c, struct client_part *p);
void client__part_send(struct vstor_client *c, struct client_part *p);
void client__retry_all(struct vstor_client *c);
void client__release_held(struct vstor_client *c);
void client__parts_fail(struct vstor_client *c, int rc, uint64_t now_us);
bool client__retryable(int rc);
void client__osd_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx);
void client__osd_connect(struct vstor_client *c, struct client_osd *o);
void client__osd_detach(struct vstor_client *c, struct client_osd *o);

/* client_image.c: opening images. */
void client__images_ready(struct vstor_client *c);
void client__opens_tick(struct vstor_client *c, uint64_t now_us);
void client__opens_fail(struct vstor_client *c, int rc);

/* client_blocking.c */
struct vstor_blk {
    uv_loop_t own_loop;
    uv_loop_t *loop;
    struct vstor_client *c;
    struct vstor_image *img;
    int rc;
    bool done;
    bool own;
};
/* Opens name with client c on loop; b is the caller's (zeroed) memory. */
int client__blk_attach(struct vstor_blk *b, uv_loop_t *loop, struct vstor_client *c,
                       const char *name, char *err, size_t err_size);
void client__blk_detach(struct vstor_blk *b);

/* client_lazy.c: dirty entries, sync, replay. */
int client__lazy_fits(struct vstor_client *c, const struct client_op *op);
int client__lazy_reserve(struct vstor_client *c, struct client_op *op);
void client__sync_fail(struct vstor_client *c, int rc, uint64_t now_us);
void client__lazy_note(struct vstor_client *c, struct client_part *p);
void client__lazy_unreserve(struct vstor_client *c, struct client_op *op);
void client__lazy_acked(struct vstor_client *c, struct client_part *p);
void client__sync_start(struct vstor_client *c, struct client_op *op);
void client__sync_try(struct vstor_client *c);
void client__sync_part_done(struct vstor_client *c, struct client_part *p, int rc);
void client__replay_check_osd(struct vstor_client *c, uint32_t osd);
void client__replay_check_map(struct vstor_client *c);
void client__replay_pump(struct vstor_client *c);
void client__replay_part_done(struct vstor_client *c, struct client_part *p, int rc);
bool client__blocked(const struct vstor_client *c);

#endif /* VSTOR_CLIENT_INT_H */
