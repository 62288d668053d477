/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor.h -- the monitor: the cluster logic that only the metadata
 * service's Raft leader runs, inside `vstor mon` (docs/monitor.md).
 *
 * What it does
 *  - Builds the placement tree from config/osd/<id>, osd/state/<id> (an OSD is
 *    up while that lease-bound key exists), its own records mon/osd/<id> (the
 *    host and size of every OSD it has seen, so a down OSD keeps its place)
 *    and config/nodes; runs vs_placement_solve() when the pools or the tree
 *    change, and publishes config/pgs (with its history) in a transaction
 *    guarded by the mod revisions of everything it read.
 *  - Minimal OSD-down handling: a down OSD is never primary, so the PGs it led
 *    get a new primary among their up members; members stay (marking OSDs out
 *    after osd_out_time is not done yet).
 *  - Clears a PG's history when its primary reports it clean in
 *    pg/state/<pool>/<pg>, and records a pool's last_clean layout when every
 *    PG of the pool is clean.
 *  - Folds the OSDs' volatile statistics (osd/stats/<id>) into `stats` and
 *    inode/stats/<pool>/<num> at a bounded rate.
 *
 * Shape (STYLE B17): a pure core and a thin shell.
 *  - vs_mon_plan() is a pure function from the key/values it reads (one
 *    revision) to the transaction it wants: no clock, no I/O, no hidden state.
 *    Everything it must remember between runs (the hash of the inputs of the
 *    last published solve) is itself stored in the metadata service
 *    (mon/placement), so a new leader continues where the old one stopped.
 *  - vs_mon_stats_fold() is pure too; it keeps the previous samples (to turn
 *    counters into rates) in a struct vs_mon_stats the caller owns.
 *  - struct vs_monitor is the shell: it runs on the mon's libuv loop, reacts to
 *    leadership, watches, debounces bursts of changes, reads, plans, proposes,
 *    and retries on conflicts.
 *
 * Threads: everything runs on the loop thread of the vs_raft_server.
 * Errors: 0 or a negative errno / vstor code (common/vs_err.h).
 */
#ifndef VSTOR_MON_MONITOR_H
#define VSTOR_MON_MONITOR_H

#include "vs_raft.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

/* ---- Owned transactions -----------------------------------------------------
 *
 * A transaction that owns its keys and values, built op by op. Building never
 * fails half-way silently: an allocation failure sets `oom` and every later
 * call is a no-op; check vs_mon_txn_ok() before proposing. The CLI commands
 * build their transactions with it too. */
struct vs_mon_txn {
    struct vs_meta_compare *cmp;
    struct vs_meta_op *ops;      /* the success branch */
    struct vs_meta_op *fail_ops; /* the failure branch (reads) */
    unsigned n_cmp, cap_cmp, n_ops, cap_ops, n_fail, cap_fail;
    char **mem; /* owned strings */
    unsigned n_mem, cap_mem;
    bool oom;
};

void vs_mon_txn_init(struct vs_mon_txn *t);
void vs_mon_txn_free(struct vs_mon_txn *t);
bool vs_mon_txn_ok(const struct vs_mon_txn *t);
/* Compare: key's mod_rev == mod_rev; mod_rev 0 means "the key does not exist". */
void vs_mon_txn_expect_mod(struct vs_mon_txn *t, const char *key, uint64_t mod_rev);
/* Put a copy of value (NUL-terminated text). */
void vs_mon_txn_put(struct vs_mon_txn *t, const char *key, const char *value);
/* Put v as compact JSON with sorted keys (v is not consumed). */
void vs_mon_txn_put_json(struct vs_mon_txn *t, const char *key, const json_t *v);
void vs_mon_txn_delete(struct vs_mon_txn *t, const char *key);
void vs_mon_txn_delete_prefix(struct vs_mon_txn *t, const char *prefix);
/* Failure branch: read key (one op per call), to tell a conflict from a clash. */
void vs_mon_txn_fail_get(struct vs_mon_txn *t, const char *key);
/* A view usable with vs_raft_server_txn / vs_meta_txn; valid until the next
 * change or vs_mon_txn_free. */
void vs_mon_txn_view(const struct vs_mon_txn *t, struct vs_meta_txn *out);

/* ---- The pure core: placement, primaries, history --------------------------- */

/* What the core reads. An entry ending in '/' is a prefix, the others are
 * single keys. NULL-terminated. */
extern const char *const vs_mon_read_keys[];

/* Keys the core writes (docs/monitor.md lists every one). */
#define VS_MON_KEY_PGS "config/pgs"
#define VS_MON_KEY_PLACEMENT "mon/placement" /* {"inputs": hash} of the last solve */
#define VS_MON_PREFIX_RECORD "mon/osd/"      /* mon/osd/<id>: {"host", "size_bytes"} */
/* A PG's history is cleared in at most this many PGs per transaction. */
#define VS_MON_CLEAR_MAX 4096u
#define VS_MON_MSGS_MAX 32u
/* Weight unit of the placement tree: bytes per unit (weights are in TB). */
#define VS_MON_WEIGHT_UNIT_BYTES 1e12

enum vs_mon_msg_level { VS_MON_MSG_INFO = 0, VS_MON_MSG_WARN = 1, VS_MON_MSG_ERROR = 2 };

struct vs_mon_msg {
    enum vs_mon_msg_level level;
    char text[256];
};

struct vs_mon_plan {
    struct vs_mon_txn txn; /* n_ops == 0: nothing to write */
    bool solved;           /* placement ran (its inputs changed) */
    bool publish;          /* config/pgs is written */
    uint32_t primary_moves;    /* PGs whose primary the plan changes */
    uint32_t history_cleared;  /* PGs whose history it clears */
    uint32_t last_clean_pools; /* pools whose last_clean it records */
    uint32_t records;          /* mon/osd/<id> records written */
    uint64_t inputs_hash;      /* hash of the placement inputs (tree, pools, seed) */
    unsigned n_msgs;           /* what to log; at most VS_MON_MSGS_MAX */
    struct vs_mon_msg msgs[VS_MON_MSGS_MAX];
};

struct vs_mon_plan_opts {
    uint64_t seed; /* placement seed; keep it fixed per cluster (the cluster id) */
};

/*
 * Plans the monitor's next transaction from kvs: every key of
 * vs_mon_read_keys, all read at one revision, in any order. Pure: the same
 * input gives the same plan. Malformed values are reported in plan->msgs and
 * never crash; a malformed input of placement (pools, nodes, an OSD's config)
 * stops re-placement until it is fixed, but primaries still move off down
 * OSDs and histories still clear. Returns 0 (the plan, possibly empty) or
 * -ENOMEM; free the plan with vs_mon_plan_free().
 */
int vs_mon_plan(const struct vs_meta_kv *kvs, unsigned n, const struct vs_mon_plan_opts *opts,
                struct vs_mon_plan *plan);
void vs_mon_plan_free(struct vs_mon_plan *plan);

/* ---- The pure core: statistics --------------------------------------------- */

/* What the stats fold reads: osd/stats/ comes from the volatile keys
 * (vs_raft_server_volatile_range), the others from the store. */
#define VS_MON_STATS_VOLATILE "osd/stats/"
extern const char *const vs_mon_stats_keys[];
/* At most this many inode/stats keys per fold (the rest wait for the next). */
#define VS_MON_STATS_INODES_MAX 2048u

struct vs_mon_stats;

int vs_mon_stats_create(struct vs_mon_stats **out);
void vs_mon_stats_free(struct vs_mon_stats *st);
/*
 * Folds one sample: kvs holds the volatile osd/stats/<id> values and every
 * key of vs_mon_stats_keys. The first call only remembers the counters; the
 * next ones turn their increase over (now_ms - previous now_ms) into rates and
 * add to txn the `stats` and inode/stats/<pool>/<num> values that differ from
 * the stored ones (nothing when idle and unchanged). Returns 0 or -ENOMEM.
 */
int vs_mon_stats_fold(struct vs_mon_stats *st, uint64_t now_ms, const struct vs_meta_kv *kvs,
                      unsigned n, struct vs_mon_txn *txn);

/* ---- The shell: struct vs_monitor on the mon's loop ------------------------- */

struct vs_monitor;

enum vs_monitor_event {
    VS_MONITOR_STARTED = 1,  /* became active (leader) */
    VS_MONITOR_STOPPED,      /* stopped being active */
    VS_MONITOR_PROPOSING,    /* a plan's txn is about to be proposed */
    VS_MONITOR_APPLIED,      /* the txn succeeded at `revision` */
    VS_MONITOR_CONFLICT,     /* its compares failed: it will re-read and retry */
    VS_MONITOR_IDLE,         /* a plan found nothing to write */
    VS_MONITOR_STATS,        /* a stats txn succeeded */
};

struct vs_monitor_opts {
    uint64_t change_delay_ms;   /* debounce after a change; default 100 */
    uint64_t retry_delay_ms;    /* first retry after a conflict or error; default 100,
                                   doubling up to 5 s */
    uint64_t stats_interval_ms; /* stats fold period; 0 = default 10 s */
    bool stats_off;             /* no statistics at all */
    uint64_t seed;              /* placement seed; 0 = the cluster id */
    /* Optional observer (tests, the status page): called on the loop. */
    void (*event_cb)(void *ctx, enum vs_monitor_event ev, uint64_t revision);
    void *event_ctx;
};

struct vs_monitor_status {
    bool active;
    uint64_t plans, solves, publishes, conflicts, errors, stats_writes;
    uint64_t last_revision; /* revision of the last applied txn */
    uint64_t stats_folds;   /* statistics folds finished (on the thread pool) */
    bool stats_folding;     /* a fold is running on the thread pool now */
};

/* Creates the monitor for the member srv (not started). It does nothing until
 * it is told this member leads: register vs_monitor_leader_cb with
 * vs_raft_server_on_leader(srv, vs_monitor_leader_cb, mon), or call it from
 * the mon mode's own leader callback. Returns 0 or -ENOMEM. */
int vs_monitor_create(uv_loop_t *loop, struct vs_raft_server *srv,
                      const struct vs_monitor_opts *opts, struct vs_monitor **out);
/* A vs_raft_leader_cb: ctx is the struct vs_monitor. Starts the monitor when
 * is_leader, stops it (timers, watches; a txn in flight is ignored) when not. */
void vs_monitor_leader_cb(void *ctx, bool is_leader, uint64_t term);
void vs_monitor_status(const struct vs_monitor *m, struct vs_monitor_status *out);
/* Stops and frees the monitor; cb (may be NULL) runs from the loop once its
 * handles are closed. Close it before the server, after unregistering its
 * leader callback (vs_raft_server_on_leader(srv, NULL, NULL)): closing the
 * server reports the end of leadership. */
void vs_monitor_close(struct vs_monitor *m, void (*cb)(void *ctx), void *ctx);

#endif /* VSTOR_MON_MONITOR_H */
