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

#include <raft.h>
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

void raft__op_encode(struct raft_buf *b, const struct vs_meta_op *o);

/* Client request ops (docs/metadata.md, "Client protocol"). */
enum raft_req_op {
    RO_RANGE = 1,
    RO_TXN = 2,
    RO_LEASE_GRANT = 3,
    RO_LEASE_REVOKE = 4,
    RO_LEASE_KEEPALIVE = 5,
    RO_LEASE_TTL = 6,
    RO_COMPACT = 7,
    RO_WATCH = 8,
    RO_WATCH_CANCEL = 9,
    RO_STATUS = 10,
    RO_MEMBER_ADD = 11,
    RO_MEMBER_REMOVE = 12,
    RO_VOLATILE_PUT = 13,
};

/* A decoded request; byte pointers point into the frame. */
struct raft_req {
    uint64_t id;
    uint8_t op;
    uint8_t flags;   /* RO_RANGE: SERIALIZABLE, VOLATILE; RO_WATCH: SERIALIZABLE */
    bool header_ok;  /* id is valid: an error can be answered */
    struct vs_meta_op range;
    struct raft_txn txn;
    const uint8_t *body; /* RO_TXN: the encoded txn, proposed as is */
    size_t body_len;
    uint64_t lease_id, ttl_ms, rev, watch_id, member_id;
    const uint8_t *key, *end, *value; /* watch key/end; member address; volatile key/value */
    uint32_t key_len, end_len, value_len;
};

/* The request header: id u64, op u8, flags u8, reserved u16. */
void raft__req_header(struct raft_buf *b, uint64_t id, uint8_t op, uint8_t flags);
/* Decodes and validates a request frame. On error, header_ok tells whether
 * out->id can be used to answer it. */
int raft__req_decode(const uint8_t *p, size_t len, const struct raft_limits *lim,
                     struct raft_req *out);
void raft__req_free(struct raft_req *r);

/* A reply: id u64, status i32, leader_id u64, leader address blob, body. */
struct raft_resp {
    uint64_t id;
    int status;
    uint64_t leader_id;
    const uint8_t *leader;
    uint32_t leader_len;
    const uint8_t *body;
    size_t body_len;
};
int raft__resp_decode(const uint8_t *p, size_t len, struct raft_resp *out);
void raft__status_encode(struct raft_buf *b, const struct vs_raft_status *st);
int raft__status_decode(const uint8_t *p, size_t len, struct vs_raft_status *st);

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

/* ---- raft_msg.c: raft messages on the wire --------------------------------- */

/* Encodes the message header and fixed fields. APPEND_ENTRIES: the caller
 * then appends n_entries entries with raft__msg_encode_entry; INSTALL_SNAPSHOT:
 * the caller appends the conf blob and the data blob (raft__buf_blob). */
void raft__msg_encode_head(struct raft_buf *b, const struct raft_message *m);
void raft__msg_encode_entry(struct raft_buf *b, uint64_t term, uint8_t type, const void *data,
                            uint32_t len);
/* Decodes and validates; on 0 the message owns raft_malloc'd memory (entries
 * + one batch; snapshot data + conf) that raft__msg_release frees. server_id
 * and server_address are left for the caller. */
int raft__msg_decode(const uint8_t *p, size_t len, struct raft_message *m);
void raft__msg_release(struct raft_message *m);

/* ---- raft_conn.c: framed TCP connections ------------------------------------ */

#define RAFT_FRAME_MAGIC 0x4d525356u /* "VSRM" */
#define RAFT_FRAME_HDR 16

/* Frame types (docs/metadata.md, "Frames"). */
enum raft_frame_type {
    RF_HELLO = 1,      /* first frame of every connection */
    RF_HELLO_ACK = 2,
    RF_RAFT = 3,       /* peer: one raft message (raft_msg.c) */
    RF_RI_PING = 4,    /* peer: read-index confirmation round */
    RF_RI_ACK = 5,
    RF_REQ = 10,       /* client request */
    RF_RESP = 11,      /* its reply */
    RF_WATCH = 12,     /* watch events, pushed */
    RF_WATCH_END = 13, /* a watch ended (compacted, cancelled) */
};

enum raft_conn_state {
    RAFT_CONN_CONNECTING = 1,
    RAFT_CONN_OPEN,
    RAFT_CONN_CLOSING,
    RAFT_CONN_CLOSED,
};

struct raft_conn;

/* Connections with queued frames, flushed once per loop turn. */
struct raft_flusher {
    struct raft_conn *head;
};

struct raft_conn_ops {
    void (*frame)(struct raft_conn *c, uint16_t type, const uint8_t *p, size_t len);
    void (*connected)(struct raft_conn *c, int status);
    void (*closed)(struct raft_conn *c); /* the owner may free c here */
};

struct raft_conn {
    uv_tcp_t tcp;
    uv_connect_t connect_req;
    uv_loop_t *loop;
    const struct raft_conn_ops *ops;
    struct raft_flusher *flusher;
    struct raft_buf in;  /* bytes read, not yet parsed */
    struct raft_buf out; /* frames queued this turn */
    size_t inflight_bytes;
    uint64_t frames_in;
    uint32_t frame_max;  /* set before accept/connect; 0 = default */
    int state;           /* enum raft_conn_state */
    bool dirty;
    struct raft_conn *next_dirty;
    char name[64];       /* for log lines */
    void *owner;         /* free for the owner */
};

/* host:port (IPv4, [IPv6] or localhost) -> sockaddr; -EINVAL otherwise. */
int raft__parse_address(const char *address, struct sockaddr_storage *out);
int raft__conn_accept(struct raft_conn *c, uv_stream_t *server, const struct raft_conn_ops *ops,
                      struct raft_flusher *flusher);
/* Returns -EINVAL for a bad address (c untouched, no callback); otherwise 0
 * and later ops->connected (success) or ops->closed (failure). */
int raft__conn_connect(struct raft_conn *c, uv_loop_t *loop, const char *address,
                       const struct raft_conn_ops *ops, struct raft_flusher *flusher);
void raft__conn_close(struct raft_conn *c);
/* A frame written in place: begin returns an offset, write the payload into
 * c->out with raft__buf_*, then end. */
size_t raft__conn_frame_begin(struct raft_conn *c, uint16_t type);
void raft__conn_frame_end(struct raft_conn *c, size_t off);
void raft__conn_send(struct raft_conn *c, uint16_t type, const void *p, size_t len);
void raft__conn_flush(struct raft_conn *c);
size_t raft__conn_backlog(const struct raft_conn *c);
void raft__flusher_run(struct raft_flusher *f);
void raft__flusher_remove(struct raft_conn *c);

/* ---- raft_node.c: the raft_step() driver --------------------------------- */

#define RAFT_NODE_EVQ_MAX 16
#define RAFT_NODE_APPEND_MAX 1024 /* entries per submit and in flight per peer */

struct raft_node_opts {
    uint64_t id;
    const char *address;
    unsigned election_timeout_ms;
    unsigned heartbeat_timeout_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    unsigned seed;
};

/* What the node asks of its owner (raft_server.c). */
struct raft_node_cbs {
    void *ctx;
    /* The open outbound connection to a peer, or NULL (message dropped). */
    struct raft_conn *(*peer_conn)(void *ctx, uint64_t id, const char *address);
    void (*flush_net)(void *ctx);
    /* Entry index was applied (res: the command's result; for barriers and
     * configuration changes status 0, empty output). */
    void (*applied)(void *ctx, uint64_t index, const struct raft_log_entry *e,
                    const struct raft_sm_result *res);
    void (*submit_failed)(void *ctx, uint64_t first_index, unsigned n, int status);
    void (*truncated)(void *ctx, uint64_t from_index);
    void (*state_changed)(void *ctx, int old_state, int new_state);
    void (*restored)(void *ctx);
    void (*fatal)(void *ctx, int status, const char *msg);
};

struct raft_node {
    struct raft raft;
    struct raft_tracer tracer;
    struct raft_log log;
    struct raft_sm sm;
    struct raft_db *db;
    uv_loop_t *loop;
    uv_timer_t timer;
    void (*timer_cb)(uv_timer_t *t);
    struct raft_node_opts opts;
    struct raft_node_cbs cbs;
    bool raft_ready, sm_ready, timer_ready, sm_dirty, closing, fatal;
    int fatal_rc;
    char fatal_msg[VS_ERRMSG_SIZE * 2];
    /* follow-up events (configuration applied, snapshot taken) */
    struct raft_event evq[RAFT_NODE_EVQ_MAX];
    unsigned evq_n;
    /* proposals of this turn (node rule 5) */
    unsigned subq_n;
    uint8_t subq_type[RAFT_NODE_APPEND_MAX];
    uint32_t subq_len[RAFT_NODE_APPEND_MAX];
    struct raft_buf subq_data;
    struct raft_entry submit_tmp[RAFT_NODE_APPEND_MAX];
    struct raft_log_entry append_tmp[RAFT_NODE_APPEND_MAX];
    /* the AppendEntries being received, to tell whose batch raft kept */
    struct raft_entry *rx_entries;
    unsigned rx_n;
    bool rx_taken;
    /* an installed snapshot waiting for its commit */
    bool install_pending;
    struct raft_snapshot_metadata install_meta;
    /* snapshot data for followers, per snapshot index */
    struct raft_buf snap_blob;
    uint64_t snap_blob_index;
    struct raft_buf scratch;
    uint64_t snapshots_taken, snapshots_installed, bad_messages;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

int raft__node_open(struct raft_node *n, uv_loop_t *loop, struct raft_db *db,
                    const struct raft_limits *lim, const struct raft_node_opts *o,
                    const struct raft_node_cbs *cbs);
bool raft__node_is_empty(const struct raft_node *n);
int raft__node_bootstrap(struct raft_node *n, const struct vs_raft_member *members,
                         unsigned count);
int raft__node_start(struct raft_node *n);
/* The leader's connection closed and it stayed silent: elect now (raft checks). */
void raft__node_leader_gone(struct raft_node *n, uint64_t leader_id, const char *leader_addr);
void raft__node_receive(struct raft_node *n, uint64_t from_id, const char *from_addr,
                        const uint8_t *p, size_t len);
/* Queues a proposal for this turn; *index is the log index it will get.
 * VS_ENOTLEADER when not leader. */
int raft__node_propose(struct raft_node *n, uint8_t type, const void *data, size_t len,
                       uint64_t *index);
int raft__node_change(struct raft_node *n, const struct raft_configuration *conf,
                      uint64_t *index);
int raft__node_catch_up(struct raft_node *n, uint64_t id);
bool raft__node_busy(const struct raft_node *n);
/* End of a loop turn: submit, flush, commit, report persisted; repeat until
 * quiet. */
void raft__node_end_turn(struct raft_node *n);
void raft__node_fail(struct raft_node *n, int rc, const char *what);
void raft__node_close(struct raft_node *n, void (*cb)(void *ctx), void *ctx);

#endif /* RAFT_INT_H */
