/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_int.h -- internals of `vstor osd`, shared by the osd_*.c files.
 *
 * One process, one loop, one store (docs/data-path.md §3). The pieces:
 *
 *   osd_main.c      the command: open the store, the messengers, the metadata
 *                   client; start and stop everything in order
 *   osd_meta.c      lease, osd/state registration, the cluster view (config/,
 *                   osd/state/) loaded and watched, pg/state and pg/history txns
 *   osd_view.c      apply the view: peers' addresses, which PGs to run
 *   osd_peer.c      connections to the other OSDs (the cluster messenger)
 *   osd_sec.c       the secondary ops served to primaries, and PG lock #2
 *   osd_pg.c        the PG state machine: start, lock #1, stop, reports
 *   osd_peering.c   lock #2 on peers, listings, vs_pg_calc, flush, epoch
 *   osd_primary.c   client READ/WRITE/DELETE/SYNC on the primary
 *   osd_recovery.c  recovery of unclean objects
 *   osd_purge.c     a PG's objects dropped from the store: wipes, tombstone purges
 *   osd_stats.c     op counters and latency histograms, sent at a bounded rate
 *   osd_fault.c     a failed store stops the OSD; the test-only fault hook
 *
 One messenger (struct vs_net) serves clients and the other OSDs on one
 * address. Client requests and secondary requests come from separate pools
 * (net.h, "Deadlock freedom"): a client op holds its request while it waits
 * for its secondaries, and a secondary op never waits on the network, so the
 * secondary pool always drains and two OSDs full of client writes never wait
 * for each other.
 *
 * Memory on the data path (STYLE B10): client ops, secondary ops and
 * recovery ops come from pools sized at start from the config, each with a
 * block-sized, 4 KiB-aligned buffer; the buffers live in one anonymous
 * mapping, so pages never touched cost nothing. Peering, the view and the
 * metadata traffic are control plane and allocate freely.
 */
#ifndef VSTOR_OSD_INT_H
#define VSTOR_OSD_INT_H

#include "config.h"
#include "loop.h"
#include "net.h"
#include "osd_lease.h"
#include "osd_objq.h"
#include "osd_rules.h"
#include "pg_calc.h"
#include "pg_state.h"
#include "vs_placement.h"
#include "vs_raft.h"
#include "vs_store.h"

#include <stdbool.h>
#include <stdint.h>

#define OSD_LOG "osd"
#define OSD_SUBOPS 8            /* secondaries one op writes to: pg_size <= 9 */
#define OSD_LIST_PAGE 4096      /* SEC_LIST entries per page */
#define OSD_BATCH_MAX 1024      /* object versions per SEC_STABILIZE/ROLLBACK */
#define OSD_RETRY_MS 500        /* PG retries: lock refused, metadata unavailable */
#define OSD_REC_FAIL_MS 1000    /* least time between re-peers after failed recoveries */
#define OSD_FENCE_MAX 16        /* objects fenced per PG until it re-peers (osd_primary.c) */
#define OSD_PURGE_MIN_MS 2000   /* least time between tombstone purges of a PG */

struct vs_osd;
struct osd_pg;

/* ---- Statistics (osd_stats.c) ----------------------------------------------- */

enum osd_stat {
    ST_READ, ST_WRITE, ST_DELETE, ST_SYNC, ST_SEC_READ, ST_SEC_WRITE, ST_SEC_DELETE,
    ST_SEC_SYNC, ST_SEC_STABILIZE, ST_SEC_ROLLBACK, ST_SEC_LIST, ST_SEC_LOCK,
    ST_SEC_READ_BITMAP, ST_RECOVERY, ST_COUNT,
};
#define OSD_HIST_BUCKETS 24 /* latency buckets: < 2^(i+1) us, the last one open */

struct osd_opstat {
    uint64_t count, bytes, usec;
    uint64_t hist[OSD_HIST_BUCKETS];
};

void osd__stat_add(struct vs_osd *osd, enum osd_stat st, uint64_t inode, uint64_t bytes,
                   uint64_t start_ns);
int osd__stats_start(struct vs_osd *osd);
void osd__stats_stop(struct vs_osd *osd);

/* ---- Peers (osd_peer.c) -------------------------------------------------------- */

struct osd_peer {
    uint32_t id;
    bool up;                 /* osd/state/<id> exists */
    char addr[80];           /* its address (osd/state "addresses"[0]) */
    struct vs_net_conn *conn; /* outgoing; NULL until needed */
    bool conn_up;
};

struct osd_peer *osd__peer(struct vs_osd *osd, uint32_t id);
struct osd_peer *osd__peer_get(struct vs_osd *osd, uint32_t id); /* creates */
/* Starts connecting if the peer is up and has an address; true when up. */
bool osd__peer_connect(struct vs_osd *osd, struct osd_peer *p);
void osd__peer_set(struct vs_osd *osd, uint32_t id, bool up, const char *addr);
void osd__peers_close(struct vs_osd *osd);
void osd__peer_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx);

/* ---- Ops (osd_primary.c, osd_recovery.c) --------------------------------------------- */

enum osd_op_kind { OP_READ = 1, OP_WRITE, OP_DELETE, OP_SYNC, OP_RECOVER };

struct osd_op;
struct osd_subop {
    struct vs_net_op net;
    struct osd_op *op;
    uint32_t osd;
    struct vs_net_conn *conn; /* SYNC: where the SEC_SYNC goes */
};

struct osd_unclean; /* osd_pg.c */

struct osd_op {
    struct vs_osd *osd;
    struct osd_pg *pg;
    struct vs_net_req *req;     /* the client request; NULL for recovery */
    struct vs_objq_link qlink;
    struct osd_op *next;        /* free list */
    uint8_t kind;               /* enum osd_op_kind */
    uint8_t phase;              /* per kind */
    bool in_queue;              /* holds a place in the object queue */
    bool pg_ref;                /* counted in pg->inflight */
    uint32_t gen;               /* pg->gen when it was queued */
    struct osd_op *parent;      /* recovery run for a write: the write */
    uint64_t inode, stripe;     /* the object */
    uint32_t offset, len;       /* client range inside the object */
    uint32_t aoff, alen;        /* the 4 KiB-aligned range the store sees */
    uint64_t version;
    uint64_t start_ns;
    int rc;
    uint32_t pending;           /* parts outstanding (local + remote) */
    uint32_t uidx;              /* recovery: index of the unclean object */
    void *buf;                  /* block_size bytes, 4 KiB-aligned */
    uint8_t *bitmap;            /* bitmap_bytes */
    void *head_buf;             /* 4 KiB scratch for unaligned writes */
    struct vs_store_op sop;
    bool synced;                /* lazy store, immediate pool: the local sync ran */
    uint32_t nsub;
    struct osd_subop sub[OSD_SUBOPS];
};

/* A secondary op served to a primary, or a peering/flush message. */
struct osd_secop {
    struct vs_osd *osd;
    struct vs_net_req *req;
    struct osd_secop *next;
    uint64_t start_ns;
    void *buf;                  /* block_size bytes */
    uint8_t *bitmap;
    uint32_t count, done;       /* batches: items and items completed */
    int rc;
    bool synced;                /* lazy store, immediate pool: the sync ran */
    uint64_t wver;              /* the version written, kept across that sync */
    uint32_t wlen;
    struct vs_store_op sop;
};

void osd__primary_register(struct vs_osd *osd);
/* After a local write or delete of op: when osd__sync_after() says so and it
 * has not run yet, starts a store sync calling op->sop.cb again; true then. */
bool osd__local_sync(struct osd_op *op);
/* Fails every op queued on pg that has not started (the PG left ACTIVE). */
void osd__op_start_next(struct vs_osd *osd, struct osd_op *op);
struct osd_op *osd__op_get(struct vs_osd *osd, bool recovery);
void osd__op_put(struct vs_osd *osd, struct osd_op *op);
void osd__op_pg_ref(struct osd_op *op, struct osd_pg *pg);   /* counts in pg->inflight */
void osd__op_pg_unref(struct osd_op *op);
void osd__sec_register(struct vs_osd *osd);
void osd__sec_conn_down(struct vs_osd *osd, struct vs_net_conn *conn);
/* Lock #2 in our own table for a PG we peer as primary (osd_lease.h R3):
 * 0 with *wait_ms (how long a lease we granted its old holder may last), or
 * VS_ENOTPRIMARY when a newer primary holds it here. */
int osd__sec_lock_self(struct vs_osd *osd, struct osd_pg *pg, uint64_t *wait_ms);
/* Our PG stopped: its entry goes (a lease we granted others stays). */
void osd__sec_unlock_self(struct vs_osd *osd, struct osd_pg *pg);
/* The loop's clock (uv_now base, CLOCK_MONOTONIC), read fresh: milliseconds. */
static inline uint64_t osd__now_ms(void)
{
    return uv_hrtime() / 1000000;
}
void osd__sec_list(struct vs_osd *osd, struct osd_secop *s);

/* osd_purge.c: drops objects of one PG from the local store -- WIPE every
 * one, or TOMBS its tombstones below f->below (VS_NET_PURGEF_*; f names the
 * PG as vs_store_list does). cb gets 0, -EAGAIN (a wipe that could not drop
 * everything yet: ask again later) or a store error; never inside the call. */
typedef void (*osd_purge_cb)(void *ctx, int rc);
int osd__purge_start(struct vs_osd *osd, uint32_t flags, const struct vs_store_purge *f,
                     osd_purge_cb cb, void *ctx);

/* ---- PGs (osd_pg.c, osd_peering.c, osd_recovery.c) ---------------------------------- */

/* An object peering found unclean; its recovery state. */
struct osd_unclean {
    uint8_t state; /* 0 pending, 1 recovering, 2 done */
};

struct osd_peering;

struct osd_pg {
    struct vs_osd *osd;
    struct osd_pg *hnext;         /* hash chain */
    uint16_t pool;
    uint32_t num;
    char name[24];                /* "1.2f" */
    enum vs_pg_state state;
    uint32_t flags;               /* VS_PGF_* */
    uint32_t gen;                 /* bumped on every (re)peering */
    /* From the map. */
    uint32_t pg_size, pg_minsize, data_size;
    uint64_t pg_stripe_size, obj_size;
    bool lazy;                    /* immediate_commit is not "all" */
    uint32_t target[VS_PG_SIZE_MAX];
    uint32_t map_hist_count;
    uint32_t *map_hist;           /* map_hist_count * pg_size, from config/pgs */
    uint64_t map_rev;             /* revision of config/pgs we act on */
    bool map_changed;             /* repeer when possible */
    bool stop_wanted;             /* the map no longer names us */
    /* Peering results. */
    uint32_t cur[VS_PG_SIZE_MAX]; /* target with unreachable OSDs as 0 */
    struct vs_net_conn *cur_conn[VS_PG_SIZE_MAX];
    uint32_t peers[VS_PG_PEERS_MAX], npeers; /* every OSD peering asked */
    uint32_t locked[VS_PG_PEERS_MAX], nlocked; /* peers holding our lock #2 */
    struct vs_pg_history hist;    /* pg/history as stored */
    uint64_t epoch;
    struct vs_pg_calc_result calc;
    struct osd_unclean *ustate;   /* calc.obj_count */
    uint32_t *uhash;              /* object -> index + 1; 0 = empty */
    uint32_t umask;
    uint64_t unclean_left;
    uint32_t recover_cursor, recovering;
    bool force_bump;              /* a version counter ran out: bump the epoch */
    bool rec_repeer_due;          /* a recovery failed: re-peer at rec_fail_us + delay */
    uint64_t rec_fail_us;         /* when a failed recovery last re-peered the PG */
    uint32_t dirty[VS_PG_SIZE_MAX]; /* lazy: OSDs written since the last SYNC */
    /* Objects whose local write failed after their secondaries were sent it:
     * no write until the next peering settles them (D7.8). */
    struct vs_store_oid fence[OSD_FENCE_MAX];
    uint32_t nfence;
    /* Locks, reports, timers. */
    bool lock1;                   /* pg/state is ours (on our lease) */
    bool meta_busy;               /* a lock/history txn is in flight */
    bool report_dirty;
    uint8_t report_busy;          /* 1: a pg/state write, 2: its deletion */
    char *state_stored;           /* the pg/state value last stored (NULL: unknown) */
    char *state_sending;          /* the value of the pg/state write in flight */
    bool clean_reported;          /* "active" alone reported, or being stored */
    bool clean_stored;            /* ... and the clean history (superseded OSDs) is stored */
    bool wipe_failed;             /* a superseded OSD's wipe failed: no re-peer for it */
    bool purge_wanted;            /* purge tombstones when clean (osd_peering.c rule T) */
    bool purge_go;                /* this re-peer was started clean to purge them */
    uint64_t purge_last_us;       /* when the last purge re-peer started */
    uint64_t old_tombs;           /* local tombstones of older epochs, at the last peering */
    /* OSDs wiped since they last were in the set: they hold nothing of the
     * PG, so a clean check does not supersede them again (the map's history
     * may still name them). */
    uint32_t wiped[VS_PG_PEERS_MAX], nwiped;
    bool hist_dirty;              /* pg->hist changed and is not stored yet */
    uint32_t inflight;            /* ops that reference this PG */
    struct osd_peering *peering;
    uv_timer_t timer;
    bool timer_armed;
    char why[200];                /* why it is incomplete / waiting, for the log */
};

struct osd_pg *osd__pg_find(struct vs_osd *osd, uint16_t pool, uint32_t num);
/* True when a mutation of inode must be synced before it is acknowledged: the
 * store is lazy and the inode's pool commits immediately (data-path.md D7.7). */
bool osd__sync_after(struct vs_osd *osd, uint64_t inode);
/* The map names us primary of pool.num: create (and start) or update. */
void osd__pg_map(struct vs_osd *osd, uint16_t pool, uint32_t num,
                 const struct vs_pgmap_pool *mp, const struct vs_placement_pool *p,
                 uint64_t map_rev);
void osd__pg_stop(struct osd_pg *pg);
void osd__pg_move(struct osd_pg *pg, enum vs_pg_state to);
void osd__pg_repeer(struct osd_pg *pg, const char *why);
/* A recovery failed: re-peer now, or (at most one such re-peer per
 * OSD_REC_FAIL_MS) once the delay has passed. */
void osd__pg_recovery_failed(struct osd_pg *pg);
void osd__pg_kick(struct osd_pg *pg);          /* re-run the step it waits in */
void osd__pg_arm(struct osd_pg *pg, uint64_t ms); /* kick after ms */
void osd__pg_op_done(struct osd_pg *pg);      /* an op let go of the PG */
void osd__pg_report(struct osd_pg *pg);
char *osd__pg_state_json(struct osd_pg *pg); /* the pg/state value (malloc'ed) */
void osd__pg_meta_pump(struct osd_pg *pg); /* after any metadata txn of the PG */
void osd__pg_peer_changed(struct vs_osd *osd, uint32_t id, bool up);
/* conn (a peer's outgoing connection) is being closed and will be freed: the
 * PGs that send to it through cur_conn forget it (their ops in flight find
 * no connection: a retryable failure, and the PG re-peers). */
void osd__pg_conn_gone(struct vs_osd *osd, const struct vs_net_conn *conn);
void osd__pg_free(struct osd_pg *pg);
void osd__pgs_stop_all(struct vs_osd *osd);
/* The unclean object (inode, stripe) of pg, or NULL. */
struct osd_unclean *osd__pg_unclean(struct osd_pg *pg, uint64_t inode, uint64_t stripe,
                                    uint32_t *idx);
void osd__pg_set_unclean(struct osd_pg *pg); /* builds the index from pg->calc */
void osd__pg_object_clean(struct osd_pg *pg, uint32_t idx);
void osd__pg_clean_check(struct osd_pg *pg);
/* A delete of pg ended with rc here (or on a secondary): when the local
 * tombstone slots run low or one ran out, a tombstone purge is wanted. */
void osd__pg_tomb_check(struct osd_pg *pg, int rc);
/* True when a client's delete may not take a tombstone slot here: the last
 * quarter of the slots is kept for recovery, which must be able to copy a
 * tombstone to a member that missed it -- else a PG unclean for lack of
 * slots could never become clean, and only a clean PG purges (§5). */
bool osd__tomb_reserve_hit(struct vs_osd *osd);
uint32_t osd__pg_unclean_flags(struct osd_pg *pg); /* VS_PGF_* from the set and counts */

void osd__peering_start(struct osd_pg *pg);
void osd__peering_abort(struct osd_pg *pg);
void osd__peering_kick(struct osd_pg *pg);
/* True when the running peering already decided its set without osd (it
 * was not reachable then): a member that comes up now would be left out
 * until the next peering (the activation may wait seconds, R6). */
bool osd__peering_left_out(struct osd_pg *pg, uint32_t osd);

void osd__recovery_pump(struct osd_pg *pg);
void osd__recovery_queued_start(struct osd_op *op); /* a recovery op reached its queue's head */
void osd__recovery_inline(struct osd_op *parent, uint32_t uidx);
void osd__op_object_ready(struct osd_op *op, int rc); /* inline recovery finished */

/* ---- The metadata service (osd_meta.c) ------------------------------------------- */

int osd__meta_start(struct vs_osd *osd);
void osd__meta_stop(struct vs_osd *osd, void (*cb)(struct vs_osd *osd));
bool osd__meta_up(const struct vs_osd *osd);
/* Lock #1: put pg/state if absent or ours, and read pg/history. cb gets 0 with
 * the history, VS_ECOMPARE (held by another), or a metadata error. */
typedef void (*osd_pg_meta_cb)(struct osd_pg *pg, int rc);
int osd__meta_pg_lock(struct osd_pg *pg, osd_pg_meta_cb cb);
/* Stores pg->hist in pg/history, guarded by our lock #1. */
int osd__meta_pg_history(struct osd_pg *pg, osd_pg_meta_cb cb);
/* Writes value to pg/state (guarded by "it is on our lease"); NULL deletes it. */
int osd__meta_pg_state(struct osd_pg *pg, const char *value, osd_pg_meta_cb cb);

/* ---- The view (osd_view.c) ---------------------------------------------------------- */

void osd__view_apply_pools(struct vs_osd *osd, const uint8_t *v, uint32_t len);
void osd__view_apply_pgs(struct vs_osd *osd, const uint8_t *v, uint32_t len, uint64_t rev);
void osd__view_apply_global(struct vs_osd *osd, const uint8_t *v, uint32_t len);
void osd__view_apply_osd(struct vs_osd *osd, uint32_t id, const uint8_t *v, uint32_t len);
void osd__view_refresh(struct vs_osd *osd); /* after a batch of changes */
/* Pool, PG and object of an object id; -EINVAL when the pool is unknown. */
int osd__locate(struct vs_osd *osd, uint64_t inode, uint64_t offset, uint64_t *stripe,
                uint32_t *pg);

/* ---- The OSD ------------------------------------------------------------------------- */

struct osd_lock2 {          /* a PG lock #2 we grant as a secondary, or hold as primary */
    uint64_t key;           /* pool << 32 | pg; 0 = free slot */
    uint32_t holder;        /* the primary's OSD id (ours: our own PG, conn NULL) */
    struct vs_net_conn *conn; /* the holder's connection; NULL: ours, or released */
    uint64_t map_rev;
    uint64_t lease_until_ms; /* released: when the holder's read lease ends (R2) */
    uint64_t prior_until_ms; /* when the leases of earlier holders end (R3) */
};

struct vs_osd {
    struct vs_loop *loop;
    const struct vs_config *cfg;
    uint32_t id;
    char name[16];                   /* "osd.3" */
    uint64_t cluster_id;
    uint8_t cluster_id16[VS_NET_CLUSTER_ID_SIZE];
    /* The store. */
    struct vs_disk *disk;
    struct vs_store *store;
    struct vs_store_info info;
    uint32_t block_size, bitmap_bytes;
    bool store_lazy;
    bool store_failed;               /* a device error broke the store: stopping (F1) */
    bool fault_enospc;               /* test hook: local client writes fail with ENOSPC */
    struct fault_disk *fault_disk;   /* the test-only fault hook (osd_fault.c), or NULL */
    uv_timer_t fault_timer;
    bool fault_timer_on;
    /* The messenger. */
    struct vs_net *net;
    char addr[80];                   /* advertised "ip:port" */
    /* Pools. */
    void *bufs;                      /* the mapping of every op buffer */
    size_t bufs_size;
    uint8_t *bitmaps;
    struct osd_op *ops;              /* client ops, then recovery ops */
    uint32_t op_count, rec_count;
    struct osd_op *op_free, *rec_free;
    uint32_t ops_used, recs_used;
    uint32_t secops_used;
    uint64_t ops_started;            /* names the lone op for the spin (loop_spin_lone_us) */
    struct osd_secop *secops;
    uint32_t secop_count;
    struct osd_secop *secop_free;
    struct vs_objq objq;
    /* The metadata service. */
    struct vs_meta_client *meta;
    uint64_t lease;
    struct vs_meta_lease_keeper *keeper;
    struct vs_meta_watch *watch_config, *watch_osd;
    bool registered, view_loaded;
    struct osd_meta_state *ms;       /* osd_meta.c */
    /* The view. */
    struct vs_placement_pools *pools;
    struct vs_pgmap *pgmap;
    uint64_t pgmap_rev, pools_rev;
    uint64_t global_block_size;
    bool global_lazy;
    struct osd_peer **peers;
    uint32_t npeers, peers_cap;
    /* PGs we are primary of. */
    struct osd_pg **pg_hash;
    uint32_t pg_hash_size, pg_count;
    /* Locks we hold for primaries. */
    struct osd_lock2 *locks;
    uint32_t locks_cap, locks_used;
    /* Read leases (osd_lease.h). */
    uint64_t lease_ms;               /* L (R1) */
    uint64_t started_ms;             /* R3: grants wait until started_ms + L */
    uint64_t lease_refused;          /* reads refused for want of a read lease (R4) */
    /* Statistics. */
    struct osd_opstat stats[ST_COUNT];
    struct osd_stats_state *ss;
    /* Shutdown. */
    bool stopping;
    int exit_code;
    uv_timer_t stop_timer;
    void (*meta_closed_cb)(struct vs_osd *osd);
};

/* Creates the op pools and the messenger, and starts listening. */
int osd__net_start(struct vs_osd *osd);
/* pool.pg name for logs. */
void osd__pg_name(char *buf, size_t size, uint16_t pool, uint32_t pg);
/* Called by osd_pg.c when the last PG reached OFFLINE during shutdown. */
void osd__all_pgs_stopped(struct vs_osd *osd);
/* The store's on_broken hook (osd_fault.c): a device error broke the store
 * (whatever io it was), so the OSD stops (rule F1). arg is the OSD. */
void osd__store_broken(void *arg, const char *why);
/* 0 when enable_debug is on; else logs that HOOK (a test-only option) needs
 * it and returns -EINVAL: such hooks cannot be switched on by accident. */
int osd__debug_hook_allowed(const struct vs_osd *osd, const char *hook);
/* Wraps osd->disk with the test-only fault hook when debug_fault_dir is set;
 * -EINVAL when enable_debug is not. */
int osd__fault_wrap(struct vs_osd *osd);
void osd__fault_start(struct vs_osd *osd); /* once osd->id is known */
void osd__fault_stop(struct vs_osd *osd);
/* A fatal condition: log it, stop the process with exit code 1. */
void osd__fatal(struct vs_osd *osd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* VSTOR_OSD_INT_H */
