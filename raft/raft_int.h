/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_int.h -- libvsraft internals shared by its files (never included from
 * outside raft/). The public contract is vs_raft.h.
 *
 * Layers, bottom up:
 *   raft_buf.c    growable byte buffer (the encoders write into it)
 *   raft_codec.c  commands (log entry payloads), client requests and results
 *   raft_db.c     the SQLite database: schema, pragmas, statements, commit
 *   raft_sm.c     the key-value state machine on the database
 *   raft_log.c    raft's log, term/vote and snapshot metadata on the database,
 *                 with an in-memory cache of recent entries
 *   raft_msg.c    raft messages <-> bytes for the peer transport
 *   raft_net.c    libuv TCP: listener, framed connections, reconnects
 *   raft_node.c   the raft_step() driver: events in, updates out
 *   raft_server.c client requests, read index, leases, watches, volatile keys
 *   raft_client.c the client library; raft_sync.c its blocking helpers
 */
#ifndef RAFT_INT_H
#define RAFT_INT_H

#include "vs_err.h"
#include "vs_raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;
struct sqlite3_stmt;

/* ---- raft_buf.c: growable buffer ------------------------------------------- */

struct raft_buf {
    uint8_t *p;
    size_t len;
    size_t cap;
    bool oom; /* an append failed; the content is incomplete */
};

void raft__buf_init(struct raft_buf *b);
void raft__buf_free(struct raft_buf *b);
void raft__buf_reset(struct raft_buf *b);
/* Ensures room for n more bytes; returns a pointer to them or NULL (oom). */
uint8_t *raft__buf_reserve(struct raft_buf *b, size_t n);
void raft__buf_u8(struct raft_buf *b, uint8_t v);
void raft__buf_u16(struct raft_buf *b, uint16_t v);
void raft__buf_u32(struct raft_buf *b, uint32_t v);
void raft__buf_u64(struct raft_buf *b, uint64_t v);
void raft__buf_bytes(struct raft_buf *b, const void *p, size_t n);
/* u32 length then the bytes. */
void raft__buf_blob(struct raft_buf *b, const void *p, uint32_t n);
/* Takes the content (caller frees with free()); the buffer becomes empty. */
uint8_t *raft__buf_take(struct raft_buf *b, size_t *len);

/* ---- raft_codec.c: commands, requests, results --------------------------- */

/* Log command types (first byte after the version of a RAFT_COMMAND entry). */
enum raft_cmd_type {
    RAFT_CMD_NOOP = 1,        /* a new leader's first entry of its term */
    RAFT_CMD_TXN = 2,
    RAFT_CMD_LEASE_GRANT = 3,
    RAFT_CMD_LEASE_REVOKE = 4,
    RAFT_CMD_COMPACT = 5,
};
#define RAFT_CMD_VERSION 1

/* A decoded transaction: arrays are owned (free with raft__txn_free); byte
 * pointers point into the buffer it was decoded from. */
struct raft_txn {
    struct vs_meta_txn t;
    struct vs_meta_compare *cmp;
    struct vs_meta_op *ops; /* success then failure */
};

struct raft_limits {
    uint32_t value_max;
};

/* Encodes a txn (without the command header). */
void raft__txn_encode(struct raft_buf *b, const struct vs_meta_txn *txn);
/* Decodes and validates a txn: 0, -EINVAL (malformed or over the limits) or
 * -ENOMEM. On 0 the caller frees out with raft__txn_free. */
int raft__txn_decode(const uint8_t *p, size_t len, const struct raft_limits *lim,
                     struct raft_txn *out);
void raft__txn_free(struct raft_txn *t);
/* Validates one op as a standalone request. */
int raft__op_check(const struct vs_meta_op *op, const struct raft_limits *lim);

/* Results in wire form (written by the state machine, read by everyone). */
void raft__kv_encode(struct raft_buf *b, const struct vs_meta_kv *kv);
/* Decodes a txn result. *arena receives one allocation holding the arrays
 * (free() it); byte pointers point into p. */
int raft__txn_result_decode(const uint8_t *p, size_t len, struct vs_meta_txn_result *out,
                            void **arena);
/* A batch of watch events: revision u64, n u32, events. */
int raft__events_decode(const uint8_t *p, size_t len, struct vs_meta_event **out, unsigned *n,
                        uint64_t *revision);
void raft__event_encode(struct raft_buf *b, const struct vs_meta_event *ev);

/* ---- raft_db.c: the database ----------------------------------------------- */

/* Prepared statements, by name. */
enum raft_stmt {
    RS_BEGIN, RS_COMMIT, RS_ROLLBACK, RS_SAVEPOINT, RS_RELEASE, RS_ROLLBACK_TO,
    RS_SYNC_FULL, RS_SYNC_NORMAL,
    RS_META_GET, RS_META_SET,
    RS_LOG_INSERT, RS_LOG_TRUNCATE_FROM, RS_LOG_DELETE_UPTO, RS_LOG_GET, RS_LOG_RANGE,
    RS_LOG_BOUNDS, RS_LOG_DELETE_ALL,
    RS_SM_GET, RS_SM_SET,
    RS_KV_GET, RS_KV_PUT, RS_KV_DEL,
    RS_RANGE_BOUNDED, RS_RANGE_OPEN, RS_COUNT_BOUNDED, RS_COUNT_OPEN,
    RS_EV_INSERT, RS_EV_SINCE, RS_EV_COMPACT, RS_EV_BY_LEASE,
    RS_LEASE_GET, RS_LEASE_PUT, RS_LEASE_DEL, RS_LEASE_ALL,
    RS_DUMP_EV, RS_DUMP_KV,
    RS_COUNT_
};

struct raft_db {
    struct sqlite3 *h;
    struct sqlite3_stmt *st[RS_COUNT_];
    bool in_txn;     /* BEGIN issued, COMMIT pending */
    bool txn_durable; /* the open txn holds log/term/vote: commit with fsync */
    bool sync_full;   /* current PRAGMA synchronous */
    uint64_t fsyncs;
    uint64_t commits;
    char path[512];
    char errmsg[VS_ERRMSG_SIZE];
};

/* Opens (creating if absent) path. Runs quick_check on an existing file and
 * refuses a corrupt one. Returns 0, VS_ECORRUPT, VS_EBADFORMAT or -errno. */
int raft__db_open(const char *path, struct raft_db **out, char *errmsg, size_t errmsg_size);
void raft__db_close(struct raft_db *db);
struct sqlite3_stmt *raft__db_stmt(struct raft_db *db, enum raft_stmt which);
/* Opens the turn's transaction if none is open. */
int raft__db_begin(struct raft_db *db);
/* Marks the open transaction as needing fsync on commit. */
void raft__db_mark_durable(struct raft_db *db);
/* Commits the open transaction (with fsync when marked durable). A no-op
 * without one. Returns 0 or a negative code; on failure the database is
 * unusable and the member must stop. */
int raft__db_commit(struct raft_db *db);
/* Maps the last SQLite error to a negative code and fills db->errmsg. */
int raft__db_error(struct raft_db *db, int rc, const char *what);
/* Runs a statement that returns no rows (resets it). */
int raft__db_exec_stmt(struct raft_db *db, enum raft_stmt which, const char *what);
int raft__db_meta_get_u64(struct raft_db *db, const char *key, uint64_t *out, bool *found);
int raft__db_meta_set_u64(struct raft_db *db, const char *key, uint64_t v);
int raft__db_meta_get_blob(struct raft_db *db, const char *key, uint8_t **out, size_t *len);
int raft__db_meta_set_blob(struct raft_db *db, const char *key, const void *p, size_t len);
uint64_t raft__db_size_bytes(struct raft_db *db);

/* ---- raft_sm.c: the state machine -------------------------------------------- */

/* Event sizes are bounded by the txn limits; ev ids pack (rev, sub). */
#define RAFT_SUB_BITS 24
#define RAFT_SUB_MAX ((1u << RAFT_SUB_BITS) - 1)
#define RAFT_EV_ID(rev, sub) (((rev) << RAFT_SUB_BITS) | (sub))
#define RAFT_EV_REV(id) ((id) >> RAFT_SUB_BITS)

struct raft_sm {
    struct raft_db *db;
    uint64_t rev;           /* current store revision */
    uint64_t compact_rev;   /* history below this is gone */
    uint64_t applied_index; /* last raft index applied */
    uint64_t next_lease;    /* next automatic lease id */
    /* Events produced by the applies of the current batch, in order, in wire
     * form (raft__event_encode), for synced watchers. */
    struct raft_buf events;
    uint32_t n_events;
    uint64_t events_first_rev; /* revision of the first event in events */
    struct raft_limits lim;
};

/* Result of applying one command: wire-form result, or an error status. */
struct raft_sm_result {
    int status;           /* 0 or negative */
    struct raft_buf out;  /* txn: txn result; lease: id u64, ttl u64 */
};

int raft__sm_init(struct raft_sm *sm, struct raft_db *db, const struct raft_limits *lim);
void raft__sm_free(struct raft_sm *sm);
/* Applies command bytes at raft index `index` (inside the db transaction).
 * Deterministic: the same bytes on the same state give the same result on
 * every member. Decoding errors become res->status, never a crash. Returns
 * 0, or a negative code when the database failed (fatal). */
int raft__sm_apply(struct raft_sm *sm, uint64_t index, const uint8_t *cmd, size_t len,
                   struct raft_sm_result *res);
/* Marks index applied without a command (barrier, configuration). */
int raft__sm_skip(struct raft_sm *sm, uint64_t index);
/* Runs a read-only range op against the applied state; writes an op result
 * (raft wire form: an op result) into out. */
int raft__sm_range(struct raft_sm *sm, const struct vs_meta_op *op, struct raft_buf *out);
/* Events with revision >= from_rev in [key, range_end), at most max_events
 * (whole revisions only, unless one revision alone is bigger), appended to
 * out as encoded events; *n gets the count and *next_rev the revision to ask
 * for next. Returns VS_ECOMPACTED when from_rev < compact_rev. */
int raft__sm_events(struct raft_sm *sm, uint64_t from_rev, const uint8_t *key, uint32_t key_len,
                    const uint8_t *end, uint32_t end_len, unsigned max_events,
                    struct raft_buf *out, unsigned *n, uint64_t *next_rev);
/* Lease lookups for the leader's lease table. */
int raft__sm_lease_ttl(struct raft_sm *sm, uint64_t id, uint64_t *ttl_ms, bool *found);
typedef void (*raft_sm_lease_fn)(void *ctx, uint64_t id, uint64_t ttl_ms);
int raft__sm_lease_each(struct raft_sm *sm, raft_sm_lease_fn fn, void *ctx);
/* Snapshot data of the whole state (see docs/metadata.md for the format). */
int raft__sm_snapshot(struct raft_sm *sm, struct raft_buf *out);
/* Replaces the whole state with a snapshot (inside the db transaction). */
int raft__sm_restore(struct raft_sm *sm, const uint8_t *p, size_t len);
/* Persists rev/compact_rev/applied_index/next_lease (inside the txn). */
int raft__sm_save(struct raft_sm *sm);
/* Clears the batch's event list (after watchers got it). */
void raft__sm_events_clear(struct raft_sm *sm);

/* Key-range helpers: true when key is in [start, end) (empty end: == start;
 * end "\0": >= start). */
bool raft__key_in_range(const uint8_t *key, uint32_t key_len, const uint8_t *start,
                        uint32_t start_len, const uint8_t *end, uint32_t end_len);

/* ---- raft_log.c: raft's persistent state ---------------------------------- */

struct raft_log_entry {
    uint64_t term;
    uint8_t type; /* enum raft_entry_type */
    uint32_t len;
    uint8_t *data;
};

struct raft_log {
    struct raft_db *db;
    uint64_t first; /* first index in the log rows (last + 1 when empty) */
    uint64_t last;  /* last index (the snapshot index when empty) */
    uint64_t term, vote;
    uint64_t snap_index, snap_term, snap_conf_index;
    uint8_t *snap_conf; /* raft_configuration_encode() form */
    uint32_t snap_conf_len;
    struct raft_log_entry *cache; /* ring of CACHE_SLOTS, [cache_first, last] */
    uint64_t cache_first;
    size_t cache_bytes;
    uint64_t entries_written, bytes_written;
};

/* Loads term, vote, snapshot metadata and the log bounds; checks invariants
 * (contiguous rows, log continuing the snapshot). VS_ECORRUPT when broken. */
int raft__log_load(struct raft_log *log, struct raft_db *db);
void raft__log_free(struct raft_log *log);
int raft__log_set_term_vote(struct raft_log *log, uint64_t term, uint64_t vote);
/* Replaces entries from index on with n entries (data copied). */
int raft__log_append(struct raft_log *log, uint64_t index, const struct raft_log_entry *entries,
                     unsigned n);
int raft__log_truncate(struct raft_log *log, uint64_t index);
/* Entry at index: data points into the cache, or into scratch (read from
 * SQLite). Valid until the next log call. -ENOENT outside [first, last]. */
int raft__log_entry(struct raft_log *log, uint64_t index, struct raft_log_entry *out,
                    struct raft_buf *scratch);
/* Term of index (the snapshot's term at its index), 0 when unknown. */
uint64_t raft__log_term_of(struct raft_log *log, uint64_t index);
/* Records a snapshot taken at index and drops entries up to index-trailing. */
int raft__log_snapshot(struct raft_log *log, uint64_t index, uint64_t term, const void *conf,
                       uint32_t conf_len, uint64_t conf_index, unsigned trailing);
/* Records an installed snapshot and discards the whole log. */
int raft__log_install(struct raft_log *log, uint64_t index, uint64_t term, const void *conf,
                      uint32_t conf_len, uint64_t conf_index);
/* Validates raft's configuration encoding completely, so that
 * raft_configuration_decode() (which trusts its input) is safe on it. */
int raft__conf_check(const uint8_t *p, size_t len);

#endif /* RAFT_INT_H */
