/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_raft.h -- libvsraft, the embedded metadata service of vstor: canonical
 * raft (driven through raft_step()) with its log, term, vote and snapshot
 * metadata in SQLite, an etcd-like key-value state machine on top, its TCP
 * server, and the client library every other vstor mode uses.
 *
 * CONTRACT (read this first)
 *
 * Threads and loops. Everything here runs on ONE libuv loop supplied by the
 * caller (uv_loop_t *), on the thread that runs that loop. No function is
 * thread-safe; nothing creates threads. The blocking helpers (vs_meta_sync_*)
 * run their own private loop and must not be called from a loop callback.
 *
 * Errors. Functions return 0 (or a count) or a negative errno / vstor code
 * (common/vs_err.h). The codes a caller must know:
 *   VS_ENOTLEADER     this member is not the leader (in-process API only; the
 *                     client library follows the leader and never returns it)
 *   VS_ECOMPARE       never returned: a failed txn compare is succeeded=false
 *   VS_ECOMPACTED     a watch asked for a revision older than the compaction
 *   VS_ELEASE         the lease does not exist (expired or revoked)
 *   VS_EUNAVAILABLE   no leader could be reached before the op's deadline
 *   VS_EINDOUBT       a write was sent but the connection (or leadership) was
 *                     lost before its reply: it may or may not have happened
 *   -EINVAL           malformed request (key empty or too long, value too
 *                     big, too many ops, ...), never retried
 *   -ECANCELED        the client (or server) was closed with the op in flight
 *
 * Async contract (as libuv and STYLE B9): when a function that takes a
 * callback returns an error, the callback never runs. When it returns 0 the
 * callback runs exactly once, never before the function has returned. Result
 * structures passed to a callback (kvs, events, txn results) are valid only
 * during the callback; copy what you keep.
 *
 * DATA MODEL (etcd-like)
 *   - One global revision, starting at 1. Every write transaction that changes
 *     something increments it by one; the ops of one transaction share it.
 *   - Per key: create_rev (revision that created it), mod_rev (last change),
 *     version (1 at creation, +1 per change, reset by delete), lease (0 none).
 *   - Reads: one key, or a range [key, range_end) in byte order, with a limit.
 *     vs_meta_prefix_end() turns a prefix into its range_end. A range_end of
 *     one zero byte means "every key >= key".
 *   - Writes: put, delete of one key or of a range; transactions: compares on
 *     value, version, create_rev, mod_rev or lease of single keys, then the
 *     success ops or the failure ops, atomically, at one revision.
 *   - Leases: granted with a TTL (>= VS_META_LEASE_TTL_MIN_MS). Only the
 *     leader tracks deadlines; keepalives reset them in the leader's memory
 *     and never touch the log, but are answered only once a majority
 *     confirmed, after the keepalive arrived, that this member still leads
 *     (so a deposed leader renews nothing). When a deadline passes, the
 *     leader proposes a revoke, replicated like any write: the lease and
 *     every key attached to it are deleted at one revision. A new leader
 *     gives every lease a full TTL from the moment it takes office (so a
 *     failover or a whole-service outage never expires a lease whose holder
 *     reconnects within its TTL).
 *   - Watches: from a start revision, on a key or a range; events arrive in
 *     revision order, each revision whole, never skipping one. A start
 *     revision below the compaction revision fails with VS_ECOMPACTED. Any
 *     member can serve watches from its applied state; the client library
 *     places them on the leader while there is one (a follower applies a
 *     commit only with the leader's next message, up to a heartbeat later)
 *     and on any member while there is none.
 *   - Compaction drops the history below a revision (the newest version of
 *     every live key is kept). The leader compacts automatically (see
 *     struct vs_raft_server_opts) or on request.
 *
 * CONSISTENCY
 *   - Writes go through the leader and are acknowledged once committed (on a
 *     majority's disk) and applied.
 *   - Reads are linearizable by default: the leader serves them after a
 *     read-index round (it confirms with a majority that it is still leader,
 *     then waits until it has applied the commit index it saw when the read
 *     arrived). VS_META_SERIALIZABLE reads any member's applied state.
 *
 * WHAT A CLIENT SEES DURING AN OUTAGE (the OSD relies on this)
 *   - Ops never hang forever: each has a deadline (opts.op_timeout_ms; 0 =
 *     wait forever, for daemons that must ride out any outage).
 *   - Idempotent ops (range, status, member list, lease keepalive, watch
 *     creation) are retried across leader changes and reconnects until they
 *     succeed or their deadline passes (then VS_EUNAVAILABLE). Writes are
 *     retried invisibly when they certainly did not reach a leader's log (not
 *     sent, or refused with "not leader"); a write lost in flight completes
 *     with VS_EINDOUBT.
 *   - The client reports service reachability through opts.state_cb:
 *     VS_META_SERVICE_UP once a leader answers, VS_META_SERVICE_DOWN when no
 *     leader has answered for opts.down_after_ms (default 2000 ms).
 *   - A lease kept by vs_meta_lease_keep() reports VS_META_LEASE_ALIVE after
 *     each confirmed renewal, VS_META_LEASE_UNKNOWN as soon as a renewal is
 *     overdue (the service is unreachable; the lease may or may not still
 *     exist: keep serving I/O that needs no metadata change), and
 *     VS_META_LEASE_EXPIRED only when a leader says the lease is gone. The
 *     keeper retries forever; when the service returns it renews the same
 *     lease (state back to ALIVE) -- a leader gives every lease a full TTL when
 *     it takes office, so the lease survives any outage shorter than its TTL
 *     after the service is back. Only EXPIRED requires action (grant a new
 *     lease and put the keys again).
 *   - Watches survive reconnects and leader changes: the client resumes each
 *     one from the revision after the last event it delivered, so the caller
 *     sees every revision exactly once. If the history was compacted in the
 *     meantime the watch ends with VS_ECOMPACTED; re-read and re-watch.
 *
 * IN-PROCESS ACCESS (vstor mon): the monitor logic that runs only on the
 * leader uses vs_raft_server_on_leader(), vs_raft_server_range(),
 * vs_raft_server_txn() and vs_raft_server_watch() on the same loop, without
 * TCP. vs_raft_server_on_leader() fires "leader" only once the new leader has
 * applied an entry of its own term, so its reads see every committed write.
 *
 * STATISTICS never flood the log: vs_meta_volatile_put() stores a key in the
 * leader's memory only (last value wins; lost on leader change; readable with
 * VS_META_VOLATILE). The monitor folds those into a bounded, coalesced write
 * per interval (docs/metadata.md, "Statistics").
 */
#ifndef VS_RAFT_H
#define VS_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- limits --------------------------------------------------------------- */

#define VS_META_KEY_MAX 4096u                   /* bytes */
#define VS_META_VALUE_MAX_DEFAULT (1u << 20)    /* bytes; configurable */
#define VS_META_TXN_OPS_MAX 65536u              /* compares + ops */
#define VS_META_LEASE_TTL_MIN_MS 1000u
#define VS_META_LEASE_TTL_MAX_MS (7u * 86400u * 1000u)
#define VS_RAFT_MEMBERS_MAX 16u
#define VS_RAFT_ADDRESS_MAX 255u

/* ---- the data model --------------------------------------------------------- */

struct vs_meta_kv {
    const uint8_t *key;
    const uint8_t *value;
    uint32_t key_len;
    uint32_t value_len;
    uint64_t create_rev;
    uint64_t mod_rev;
    uint64_t version;
    uint64_t lease;
};

/* Compare targets and operators of a transaction. */
enum vs_meta_target {
    VS_META_CMP_VALUE = 0,
    VS_META_CMP_VERSION = 1,
    VS_META_CMP_CREATE = 2,
    VS_META_CMP_MOD = 3,
    VS_META_CMP_LEASE = 4,
};
enum vs_meta_cmp_op {
    VS_META_EQ = 0,
    VS_META_NE = 1,
    VS_META_LT = 2,
    VS_META_GT = 3,
};

/* One compare of a transaction. A missing key has version, create_rev,
 * mod_rev and lease 0 and fails every VALUE compare except NE. */
struct vs_meta_compare {
    const void *key;
    const void *value; /* for VS_META_CMP_VALUE */
    uint32_t key_len;
    uint32_t value_len;
    uint8_t target; /* enum vs_meta_target */
    uint8_t op;     /* enum vs_meta_cmp_op */
    uint64_t number; /* for every other target */
};

enum vs_meta_op_type {
    VS_META_OP_RANGE = 0,
    VS_META_OP_PUT = 1,
    VS_META_OP_DELETE = 2,
};

/* Op and read flags. */
#define VS_META_PREV_KV 0x01u      /* put/delete: return the previous kv(s) */
#define VS_META_KEYS_ONLY 0x02u    /* range: no values */
#define VS_META_COUNT_ONLY 0x04u   /* range: only the count */
#define VS_META_SERIALIZABLE 0x08u /* range: any member's applied state */
#define VS_META_VOLATILE 0x10u     /* range: the leader's volatile keys */

/* One op of a transaction (or a standalone range/put/delete). An empty
 * range_end means the single key. */
struct vs_meta_op {
    const void *key;
    const void *range_end;
    const void *value;
    uint32_t key_len;
    uint32_t range_end_len;
    uint32_t value_len;
    uint8_t type;  /* enum vs_meta_op_type */
    uint8_t flags; /* VS_META_PREV_KV, VS_META_KEYS_ONLY, VS_META_COUNT_ONLY */
    uint64_t lease; /* put */
    uint64_t limit; /* range: 0 = no limit */
};

struct vs_meta_txn {
    const struct vs_meta_compare *cmp;
    const struct vs_meta_op *success;
    const struct vs_meta_op *failure;
    unsigned n_cmp;
    unsigned n_success;
    unsigned n_failure;
};

/* Result of one op. range: kvs/n_kvs, count, more. put: prev (if asked and
 * the key existed, n_kvs == 1). delete: deleted, prev kvs if asked. */
struct vs_meta_op_result {
    uint8_t type;
    bool more;
    unsigned n_kvs;
    const struct vs_meta_kv *kvs;
    uint64_t count;
    uint64_t deleted;
};

struct vs_meta_txn_result {
    uint64_t revision; /* store revision after the txn (or at the read) */
    bool succeeded;    /* which branch ran */
    unsigned n_ops;
    const struct vs_meta_op_result *ops;
};

enum vs_meta_event_type {
    VS_META_EVENT_PUT = 0,
    VS_META_EVENT_DELETE = 1,
};

struct vs_meta_event {
    uint8_t type; /* enum vs_meta_event_type */
    struct vs_meta_kv kv; /* for a delete: key and mod_rev = the delete's revision */
};

/* The key range covering every key with this prefix: writes prefix+1 (the
 * last byte below 0xff incremented, 0xff bytes dropped) into out, returns its
 * length; a prefix of only 0xff bytes (or empty) gives "\0" (everything). */
uint32_t vs_meta_prefix_end(const void *prefix, uint32_t len, uint8_t *out);

/* ---- the member (server) ------------------------------------------------------ */

struct vs_raft_server;

struct vs_raft_member {
    uint64_t id;
    char address[VS_RAFT_ADDRESS_MAX + 1]; /* host:port */
    int role; /* RAFT_VOTER, RAFT_STANDBY, RAFT_SPARE (raft.h) */
};

struct vs_raft_server_opts {
    const char *data_dir;      /* holds meta.db (+ -wal, -shm) */
    uint64_t id;               /* this member's id (> 0) */
    const char *address;       /* this member's host:port, listened on */
    /* Bootstrap (first start, empty data dir): the initial members. With
     * n_initial == 0 the member waits to be added to an existing cluster. */
    const struct vs_raft_member *initial;
    unsigned n_initial;
    /* With bootstrap_alone, the member bootstraps a cluster of itself only
     * and, as leader, adds the other initial members one by one (standby,
     * caught up, then voter) as they come up empty. Without it, every initial
     * member must be started with the same list (each bootstraps the same
     * configuration). */
    bool bootstrap_alone;
    uint64_t cluster_token;    /* mixed into the cluster id at bootstrap */
    unsigned election_timeout_ms;  /* default 1000 */
    unsigned heartbeat_timeout_ms; /* default 100 */
    unsigned snapshot_threshold;   /* applied entries between snapshots; 2048 */
    unsigned snapshot_trailing;    /* log entries kept behind a snapshot; 1024 */
    uint32_t value_max_bytes;      /* default VS_META_VALUE_MAX_DEFAULT */
    uint64_t compact_retention_ms; /* keep this much history; default 10 min */
    uint64_t compact_interval_ms;  /* how often the leader compacts; 60 s */
};

struct vs_raft_status {
    uint64_t id;
    uint64_t cluster_id;
    uint64_t term;
    uint64_t leader_id;
    char leader_address[VS_RAFT_ADDRESS_MAX + 1];
    int state; /* RAFT_FOLLOWER, RAFT_CANDIDATE, RAFT_LEADER */
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t last_log_index;
    uint64_t snapshot_index;
    uint64_t revision;
    uint64_t compact_revision;
    uint64_t db_size_bytes;    /* meta.db + its WAL */
    uint64_t log_entries_written; /* since start */
    uint64_t log_bytes_written;   /* since start */
    uint64_t fsyncs;              /* durable commits since start */
    uint64_t snapshots_taken;     /* since start */
    uint64_t snapshots_installed; /* since start: catch-ups by snapshot */
    unsigned n_members;
    struct vs_raft_member members[VS_RAFT_MEMBERS_MAX];
};

/* Opens (or bootstraps) the member in opts->data_dir and starts serving on
 * opts->address. Refuses, with a message in errmsg, a database that is
 * corrupt, of another format, of another member id, or of another cluster.
 * Returns 0 or a negative code. */
int vs_raft_server_open(uv_loop_t *loop, const struct vs_raft_server_opts *opts,
                        struct vs_raft_server **out, char *errmsg, size_t errmsg_size);

/* Stops serving: closes every connection and handle, fails pending requests
 * with -ECANCELED, commits what is pending, closes the database, and calls cb
 * (from the loop) once the memory may be freed -- the server frees itself
 * right after cb returns. */
typedef void (*vs_raft_server_close_cb)(void *ctx);
void vs_raft_server_close(struct vs_raft_server *s, vs_raft_server_close_cb cb, void *ctx);

/* Called when the member stops on its own because it cannot go on (its disk
 * is full or unwritable, its database failed): status and a message. The
 * owner should close it and exit. Until then it refuses every request. */
typedef void (*vs_raft_server_fatal_cb)(void *ctx, int status, const char *msg);
void vs_raft_server_on_fatal(struct vs_raft_server *s, vs_raft_server_fatal_cb cb, void *ctx);

/* Leadership notifications for the monitor logic: is_leader true once this
 * member is leader AND has applied an entry of its term; false when it stops
 * being leader (or is closing). Never two calls with the same value in a
 * row. */
typedef void (*vs_raft_leader_cb)(void *ctx, bool is_leader, uint64_t term);
void vs_raft_server_on_leader(struct vs_raft_server *s, vs_raft_leader_cb cb, void *ctx);
bool vs_raft_server_is_leader(const struct vs_raft_server *s);

void vs_raft_server_status(struct vs_raft_server *s, struct vs_raft_status *out);

/* Fault injection (tests): while cut, this member drops every frame it would
 * send to member peer_id and every frame that arrives from it, as a network
 * partition does -- the connections stay open and hear nothing. Clients are
 * not affected. Cutting a member off from the others takes one call per
 * peer on this member alone. */
void vs_raft_server_cut(struct vs_raft_server *s, uint64_t peer_id, bool cut);

/* Synchronous read of this member's applied state (no read-index round: the
 * leader's applied state is current once on_leader(true) fired). flags as for
 * vs_meta_range (VS_META_VOLATILE reads the volatile keys). cb runs before
 * this returns, with the kvs. Returns 0 or -EINVAL. */
typedef void (*vs_meta_range_cb)(void *ctx, int status, const struct vs_meta_op_result *res,
                                 uint64_t revision);
int vs_raft_server_range(struct vs_raft_server *s, const struct vs_meta_op *range,
                         vs_meta_range_cb cb, void *ctx);

/* Proposes a transaction (leader only: VS_ENOTLEADER otherwise). */
typedef void (*vs_meta_txn_cb)(void *ctx, int status, const struct vs_meta_txn_result *res);
int vs_raft_server_txn(struct vs_raft_server *s, const struct vs_meta_txn *txn,
                       vs_meta_txn_cb cb, void *ctx);

/* In-process watch on this member's applied state. cb gets batches of
 * events (status 0), or one final call with VS_ECOMPACTED or -ECANCELED
 * (after vs_raft_server_watch_cancel or close). *watch_id names it. */
typedef void (*vs_meta_watch_cb)(void *ctx, int status, const struct vs_meta_event *ev,
                                 unsigned n, uint64_t revision);
int vs_raft_server_watch(struct vs_raft_server *s, const void *key, uint32_t key_len,
                         const void *range_end, uint32_t range_end_len, uint64_t start_rev,
                         vs_meta_watch_cb cb, void *ctx, uint64_t *watch_id);
int vs_raft_server_watch_cancel(struct vs_raft_server *s, uint64_t watch_id);

/* Reads the volatile key-value pairs with this prefix (leader only). */
int vs_raft_server_volatile_range(struct vs_raft_server *s, const struct vs_meta_op *range,
                                  vs_meta_range_cb cb, void *ctx);

/* ---- the client library --------------------------------------------------- */

struct vs_meta_client;

enum vs_meta_service_state {
    VS_META_SERVICE_UP = 1,
    VS_META_SERVICE_DOWN = 2,
};

struct vs_meta_client_opts {
    const char *const *members; /* host:port of the members (any subset) */
    unsigned n_members;
    unsigned op_timeout_ms;    /* deadline of each op; 0 = forever; default 10000 */
    unsigned down_after_ms;    /* default 2000 */
    unsigned connect_timeout_ms; /* default 1000 */
    uint32_t frame_max_bytes;  /* default value max + 64 KiB */
    void (*state_cb)(void *ctx, enum vs_meta_service_state state);
    void *state_ctx;
};

/* Creates a client on loop. It connects lazily and follows the leader. */
int vs_meta_client_create(uv_loop_t *loop, const struct vs_meta_client_opts *opts,
                          struct vs_meta_client **out);
/* Fails every op in flight with -ECANCELED (their callbacks run from the
 * loop, never inside this call, and all before cb), closes the connections,
 * then calls cb; the client frees itself after cb returns. */
void vs_meta_client_close(struct vs_meta_client *c, void (*cb)(void *ctx), void *ctx);
enum vs_meta_service_state vs_meta_client_state(const struct vs_meta_client *c);
/* The leader the client currently talks to ("" when none). */
const char *vs_meta_client_leader(const struct vs_meta_client *c);

/* Reads [key, range_end) (range_end may be NULL/0 for one key). flags:
 * VS_META_KEYS_ONLY, VS_META_COUNT_ONLY, VS_META_SERIALIZABLE,
 * VS_META_VOLATILE. Idempotent: retried until the deadline. */
int vs_meta_range(struct vs_meta_client *c, const void *key, uint32_t key_len,
                  const void *range_end, uint32_t range_end_len, uint64_t limit, unsigned flags,
                  vs_meta_range_cb cb, void *ctx);

/* put / delete / txn: cb gets the txn result (a put or delete is a txn of one
 * op with no compares: ops[0] holds its result). */
int vs_meta_put(struct vs_meta_client *c, const void *key, uint32_t key_len, const void *value,
                uint32_t value_len, uint64_t lease, unsigned flags, vs_meta_txn_cb cb, void *ctx);
int vs_meta_delete(struct vs_meta_client *c, const void *key, uint32_t key_len,
                   const void *range_end, uint32_t range_end_len, unsigned flags,
                   vs_meta_txn_cb cb, void *ctx);
int vs_meta_txn(struct vs_meta_client *c, const struct vs_meta_txn *txn, vs_meta_txn_cb cb,
                void *ctx);
/* Compacts the history below rev. */
int vs_meta_compact(struct vs_meta_client *c, uint64_t rev, vs_meta_txn_cb cb, void *ctx);

/* Stores key=value in the leader's memory only (statistics): never logged,
 * lost on leader change. Retried like an idempotent op. */
int vs_meta_volatile_put(struct vs_meta_client *c, const void *key, uint32_t key_len,
                         const void *value, uint32_t value_len, vs_meta_txn_cb cb, void *ctx);

/* Leases. id 0 in grant lets the leader choose. */
typedef void (*vs_meta_lease_cb)(void *ctx, int status, uint64_t id, uint64_t ttl_ms);
int vs_meta_lease_grant(struct vs_meta_client *c, uint64_t id, uint64_t ttl_ms,
                        vs_meta_lease_cb cb, void *ctx);
int vs_meta_lease_revoke(struct vs_meta_client *c, uint64_t id, vs_meta_lease_cb cb, void *ctx);
/* One keepalive; cb gets the remaining TTL, or VS_ELEASE. Travels on the
 * client's separate light connection. */
int vs_meta_lease_keepalive(struct vs_meta_client *c, uint64_t id, vs_meta_lease_cb cb,
                            void *ctx);
/* Remaining TTL without renewing it. */
int vs_meta_lease_ttl(struct vs_meta_client *c, uint64_t id, vs_meta_lease_cb cb, void *ctx);

/* Managed keepalive: renews lease id every ttl/3 on the light connection and
 * reports state changes (see "what a client sees during an outage"). cb is
 * called on every change of state, never twice in a row with the same state
 * (EXPIRED is final: the keeper stops). Stop with vs_meta_lease_keep_stop()
 * (no callback after it returns). */
enum vs_meta_lease_state {
    VS_META_LEASE_ALIVE = 1,
    VS_META_LEASE_UNKNOWN = 2,
    VS_META_LEASE_EXPIRED = 3,
};
typedef void (*vs_meta_lease_state_cb)(void *ctx, enum vs_meta_lease_state state,
                                       uint64_t ttl_ms);
struct vs_meta_lease_keeper;
int vs_meta_lease_keep(struct vs_meta_client *c, uint64_t id, uint64_t ttl_ms,
                       vs_meta_lease_state_cb cb, void *ctx, struct vs_meta_lease_keeper **out);
void vs_meta_lease_keep_stop(struct vs_meta_lease_keeper *k);

/* Watch [key, range_end) from start_rev (0 = from the next revision). cb as
 * for vs_raft_server_watch. Survives reconnects (resumes after the last
 * delivered revision). Cancel with vs_meta_watch_cancel (no callback after
 * it returns). */
struct vs_meta_watch;
int vs_meta_watch(struct vs_meta_client *c, const void *key, uint32_t key_len,
                  const void *range_end, uint32_t range_end_len, uint64_t start_rev,
                  vs_meta_watch_cb cb, void *ctx, struct vs_meta_watch **out);
void vs_meta_watch_cancel(struct vs_meta_watch *w);

/* Status of the member the client talks to (or of `address` when given). */
typedef void (*vs_meta_status_cb)(void *ctx, int status, const struct vs_raft_status *st);
int vs_meta_status(struct vs_meta_client *c, const char *address, vs_meta_status_cb cb,
                   void *ctx);

/* Membership changes (through the leader). add: the new member joins as a
 * standby, catches up, then becomes a voter; cb runs once it is a voter. */
int vs_meta_member_add(struct vs_meta_client *c, uint64_t id, const char *address,
                       vs_meta_status_cb cb, void *ctx);
int vs_meta_member_remove(struct vs_meta_client *c, uint64_t id, vs_meta_status_cb cb,
                          void *ctx);

/* ---- blocking helpers (CLI commands, tests) -------------------------------- */

/* A result owning its memory; free with vs_meta_sync_free. */
struct vs_meta_sync_result {
    int status;
    struct vs_meta_txn_result txn; /* range results are txn.ops[0] */
    uint64_t lease_id;
    uint64_t ttl_ms;
    struct vs_raft_status st;
    void *mem; /* internal */
};

/* Each helper creates a client on a private loop, runs one op to completion
 * and closes it. Returns the op's status (also in res->status). */
int vs_meta_sync_range(const struct vs_meta_client_opts *o, const struct vs_meta_op *range,
                       unsigned flags, struct vs_meta_sync_result *res);
int vs_meta_sync_txn(const struct vs_meta_client_opts *o, const struct vs_meta_txn *txn,
                     struct vs_meta_sync_result *res);
int vs_meta_sync_lease(const struct vs_meta_client_opts *o, int what, uint64_t id,
                       uint64_t ttl_ms, struct vs_meta_sync_result *res);
int vs_meta_sync_status(const struct vs_meta_client_opts *o, const char *address,
                        struct vs_meta_sync_result *res);
int vs_meta_sync_member(const struct vs_meta_client_opts *o, bool add, uint64_t id,
                        const char *address, struct vs_meta_sync_result *res);
int vs_meta_sync_compact(const struct vs_meta_client_opts *o, uint64_t rev,
                         struct vs_meta_sync_result *res);
void vs_meta_sync_free(struct vs_meta_sync_result *res);

/* what for vs_meta_sync_lease */
#define VS_META_SYNC_LEASE_GRANT 1
#define VS_META_SYNC_LEASE_REVOKE 2
#define VS_META_SYNC_LEASE_KEEPALIVE 3
#define VS_META_SYNC_LEASE_TTL 4

#endif /* VS_RAFT_H */
