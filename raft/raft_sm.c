/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_sm.c -- the etcd-like key-value state machine, kept in SQLite.
 *
 * NOTES
 *
 * Tables (raft_db.c): ev holds every change (the history), keyed by
 * id = revision << 24 | sub, where sub numbers the changes of one revision;
 * kv maps each live key to the ev row of its current version, so a value is
 * stored once; lease holds granted leases; sm holds the counters.
 *
 * Invariants (cited as "sm invariant N"):
 *  (1) apply is deterministic: it reads nothing but the command bytes and the
 *      database -- no clock, no randomness, no member id -- so every member
 *      that applies the same log holds the same state.
 *  (2) A command is all or nothing: it runs inside SAVEPOINT sm and a failed
 *      op (unknown lease, too many changes) rolls every op of it back; the
 *      revision is bumped only when something changed.
 *  (3) For every kv row, ev[kv.ev] exists, has kind PUT and the same key.
 *  (4) Compaction at C deletes exactly the ev rows with revision < C that no
 *      kv row points to; events at revisions >= C are never deleted, so a
 *      watch from any revision >= C sees every change, in order.
 *  (5) applied_index only grows, and it is saved in the same transaction as
 *      the changes of the entries it counts (db invariant 1 keeps them
 *      together through a crash).
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC 0x31504e53534d5356ull /* "VSMSSNP1" little-endian */
#define SNAP_VERSION 1
#define EV_KIND_PUT 0
#define EV_KIND_DELETE 1
#define EVENTS_WINDOW_REVS 1024      /* revisions scanned per catch-up call */
#define RANGE_RESULT_MAX_BYTES (32u << 20) /* a range answer stops here (more=1) */

static const uint8_t empty_blob[1] = {0};

static void bind_blob(sqlite3_stmt *st, int i, const void *p, uint32_t len)
{
    sqlite3_bind_blob(st, i, len ? p : empty_blob, (int)len, SQLITE_STATIC);
}

static const uint8_t *rd_blob_sm(struct vs_cursor *c, uint32_t *len)
{
    *len = vs_rd_u32(c);
    if (!c->ok || vs_cursor_left(c) < *len) {
        c->ok = false;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += *len;
    return p;
}

static int insert_ev_row(struct raft_sm *sm, uint64_t id, uint8_t kind, const struct vs_meta_kv *kv)
{
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_EV_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    sqlite3_bind_int(st, 2, kind);
    bind_blob(st, 3, kv->key, kv->key_len);
    bind_blob(st, 4, kv->value, kv->value_len);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)kv->create_rev);
    sqlite3_bind_int64(st, 6, (sqlite3_int64)kv->version);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)kv->lease);
    return raft__db_exec_stmt(sm->db, RS_EV_INSERT, "write history");
}

static int db_fail(struct raft_sm *sm, int rc, const char *what)
{
    return raft__db_error(sm->db, rc, what);
}

int raft__sm_save(struct raft_sm *sm)
{
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_SM_SET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)sm->rev);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)sm->compact_rev);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)sm->applied_index);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)sm->next_lease);
    return raft__db_exec_stmt(sm->db, RS_SM_SET, "save state");
}

int raft__sm_init(struct raft_sm *sm, struct raft_db *db, const struct raft_limits *lim)
{
    memset(sm, 0, sizeof(*sm));
    sm->db = db;
    sm->lim = *lim;
    raft__buf_init(&sm->events);
    sqlite3_stmt *st = raft__db_stmt(db, RS_SM_GET);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        sm->rev = (uint64_t)sqlite3_column_int64(st, 0);
        sm->compact_rev = (uint64_t)sqlite3_column_int64(st, 1);
        sm->applied_index = (uint64_t)sqlite3_column_int64(st, 2);
        sm->next_lease = (uint64_t)sqlite3_column_int64(st, 3);
        sqlite3_reset(st);
        if (sm->rev == 0 || sm->compact_rev > sm->rev) {
            snprintf(db->errmsg, sizeof(db->errmsg), "state row is corrupt");
            return VS_ECORRUPT;
        }
        return 0;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(sm, rc, "load state");
    /* A fresh store: revision 1, as etcd's, and nothing compacted. */
    sm->rev = 1;
    sm->next_lease = 1;
    rc = raft__db_begin(db);
    return rc < 0 ? rc : raft__sm_save(sm);
}

void raft__sm_free(struct raft_sm *sm)
{
    raft__buf_free(&sm->events);
}

void raft__sm_events_clear(struct raft_sm *sm)
{
    raft__buf_reset(&sm->events);
    sm->n_events = 0;
    sm->events_first_rev = 0;
}

/* ---- reads ------------------------------------------------------------------ */

/* Fills kv from a KV_SELECT row (columns key, ev id, create, version, lease,
 * value); pointers are valid until the statement moves. */
static void row_kv(sqlite3_stmt *st, struct vs_meta_kv *kv, bool with_value)
{
    kv->key = sqlite3_column_blob(st, 0);
    kv->key_len = (uint32_t)sqlite3_column_bytes(st, 0);
    kv->mod_rev = RAFT_EV_REV((uint64_t)sqlite3_column_int64(st, 1));
    kv->create_rev = (uint64_t)sqlite3_column_int64(st, 2);
    kv->version = (uint64_t)sqlite3_column_int64(st, 3);
    kv->lease = (uint64_t)sqlite3_column_int64(st, 4);
    kv->value = with_value ? sqlite3_column_blob(st, 5) : NULL;
    kv->value_len = with_value ? (uint32_t)sqlite3_column_bytes(st, 5) : 0;
}

/* Looks one key up; *found false when absent. With out != NULL copies the kv
 * (value included) into out as an encoded kv. */
static int get_kv(struct raft_sm *sm, const void *key, uint32_t key_len, struct vs_meta_kv *kv,
                  bool *found, struct raft_buf *out, bool with_value)
{
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_KV_GET);
    bind_blob(st, 1, key, key_len);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (*found) {
        row_kv(st, kv, with_value);
        if (out)
            raft__kv_encode(out, kv);
        kv->key = kv->value = NULL; /* not valid past the reset */
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(sm, rc, "read key");
    return 0;
}

static bool is_open_end(const struct vs_meta_op *op)
{
    return op->range_end_len == 1 && ((const uint8_t *)op->range_end)[0] == 0;
}

static int count_range(struct raft_sm *sm, const struct vs_meta_op *op, uint64_t *count)
{
    bool open = is_open_end(op);
    enum raft_stmt which = open ? RS_COUNT_OPEN : RS_COUNT_BOUNDED;
    sqlite3_stmt *st = raft__db_stmt(sm->db, which);
    bind_blob(st, 1, op->key, op->key_len);
    if (!open)
        bind_blob(st, 2, op->range_end, op->range_end_len);
    int rc = sqlite3_step(st);
    *count = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? 0 : db_fail(sm, rc, "count");
}

/* Writes an op-result header; returns its offset for patch_header(). */
static size_t put_header(struct raft_buf *out, uint8_t type)
{
    size_t off = out->len;
    raft__buf_u8(out, type);
    raft__buf_u8(out, 0);  /* more */
    raft__buf_u64(out, 0); /* count */
    raft__buf_u64(out, 0); /* deleted */
    raft__buf_u32(out, 0); /* n_kvs */
    return off;
}

static void patch_header(struct raft_buf *out, size_t off, bool more, uint64_t count,
                         uint64_t deleted, uint32_t n_kvs)
{
    if (out->oom)
        return;
    VS_ASSERT(off + 22 <= out->len);
    out->p[off + 1] = more ? 1 : 0;
    vs_put_u64(out->p + off + 2, count);
    vs_put_u64(out->p + off + 10, deleted);
    vs_put_u32(out->p + off + 18, n_kvs);
}

/* Range over several keys: streams rows into out. */
static int range_rows(struct raft_sm *sm, const struct vs_meta_op *op, struct raft_buf *out,
                      size_t max_bytes, uint32_t *n, bool *more)
{
    bool open = is_open_end(op);
    enum raft_stmt which = open ? RS_RANGE_OPEN : RS_RANGE_BOUNDED;
    sqlite3_stmt *st = raft__db_stmt(sm->db, which);
    bind_blob(st, 1, op->key, op->key_len);
    if (!open)
        bind_blob(st, 2, op->range_end, op->range_end_len);
    /* One row past the limit tells whether there is more. */
    sqlite3_bind_int64(st, 3, op->limit ? (sqlite3_int64)op->limit + 1 : -1);
    size_t start = out->len;
    int rc;
    *n = 0;
    *more = false;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((op->limit && *n == op->limit) || out->len - start > max_bytes) {
            *more = true;
            break;
        }
        struct vs_meta_kv kv;
        row_kv(st, &kv, !(op->flags & VS_META_KEYS_ONLY));
        raft__kv_encode(out, &kv);
        (*n)++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(sm, rc, "range");
    return out->oom ? -ENOMEM : 0;
}

static int sm_range(struct raft_sm *sm, const struct vs_meta_op *op, struct raft_buf *out,
                    size_t max_bytes)
{
    VS_ASSERT(op->type == VS_META_OP_RANGE);
    size_t hdr = put_header(out, VS_META_OP_RANGE);
    uint32_t n = 0;
    bool more = false;
    uint64_t count = 0;
    int rc = 0;
    if (op->range_end_len == 0) {
        struct vs_meta_kv kv;
        bool found;
        struct raft_buf *dst = (op->flags & VS_META_COUNT_ONLY) ? NULL : out;
        rc = get_kv(sm, op->key, op->key_len, &kv, &found, dst,
                    !(op->flags & VS_META_KEYS_ONLY));
        count = n = found ? 1 : 0;
        if (!dst)
            n = 0;
    } else {
        if (!(op->flags & VS_META_COUNT_ONLY))
            rc = range_rows(sm, op, out, max_bytes, &n, &more);
        if (rc == 0 && (more || (op->flags & VS_META_COUNT_ONLY)))
            rc = count_range(sm, op, &count);
        else
            count = n;
    }
    if (rc == 0)
        patch_header(out, hdr, more, count, 0, n);
    return rc < 0 ? rc : (out->oom ? -ENOMEM : 0);
}

int raft__sm_range(struct raft_sm *sm, const struct vs_meta_op *op, struct raft_buf *out)
{
    return sm_range(sm, op, out, RANGE_RESULT_MAX_BYTES);
}

/* ---- writes ------------------------------------------------------------------ */

/* State of one command being applied. */
struct apply {
    struct raft_sm *sm;
    uint64_t new_rev; /* the revision its changes get */
    uint32_t sub;     /* next sub-index */
    bool wrote;
    int status;       /* first op error */
};

/* Appends one change to ev (and to the batch's event list). */
static int write_event(struct apply *a, uint8_t kind, const struct vs_meta_kv *kv,
                       uint64_t *ev_id)
{
    struct raft_sm *sm = a->sm;
    if (a->sub > RAFT_SUB_MAX) {
        a->status = -EFBIG;
        return 0;
    }
    *ev_id = RAFT_EV_ID(a->new_rev, (uint64_t)a->sub);
    a->sub++;
    int rc = insert_ev_row(sm, *ev_id, kind, kv);
    if (rc < 0)
        return rc;
    struct vs_meta_event ev = {.type = kind == EV_KIND_PUT ? VS_META_EVENT_PUT
                                                           : VS_META_EVENT_DELETE,
                               .kv = *kv};
    ev.kv.mod_rev = a->new_rev;
    if (sm->n_events == 0)
        sm->events_first_rev = a->new_rev;
    raft__event_encode(&sm->events, &ev);
    sm->n_events++;
    a->wrote = true;
    return sm->events.oom ? -ENOMEM : 0;
}

static int lease_exists(struct raft_sm *sm, uint64_t id, bool *found)
{
    uint64_t ttl;
    return raft__sm_lease_ttl(sm, id, &ttl, found);
}

static int apply_put(struct apply *a, const struct vs_meta_op *op, struct raft_buf *out)
{
    struct raft_sm *sm = a->sm;
    bool found = false;
    int rc = 0;
    if (op->lease != 0) {
        rc = lease_exists(sm, op->lease, &found);
        if (rc == 0 && !found)
            a->status = VS_ELEASE;
        if (rc < 0 || !found)
            return rc;
    }
    size_t hdr = put_header(out, VS_META_OP_PUT);
    struct vs_meta_kv prev;
    struct raft_buf *dst = (op->flags & VS_META_PREV_KV) ? out : NULL;
    rc = get_kv(sm, op->key, op->key_len, &prev, &found, dst, true);
    if (rc < 0)
        return rc;
    patch_header(out, hdr, false, 0, 0, dst && found ? 1 : 0);
    struct vs_meta_kv kv = {
        .key = op->key, .key_len = op->key_len, .value = op->value, .value_len = op->value_len,
        .create_rev = found ? prev.create_rev : a->new_rev,
        .version = found ? prev.version + 1 : 1, .lease = op->lease,
    };
    uint64_t ev_id = 0;
    rc = write_event(a, EV_KIND_PUT, &kv, &ev_id);
    if (rc < 0 || a->status)
        return rc;
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_KV_PUT);
    bind_blob(st, 1, op->key, op->key_len);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)ev_id);
    return raft__db_exec_stmt(sm->db, RS_KV_PUT, "write key");
}

/* Deletes every key listed (encoded kvs in `keys`, n of them). */
static int delete_keys(struct apply *a, const struct raft_buf *keys, uint32_t n)
{
    struct vs_cursor c = vs_cursor_make(keys->p, keys->len);
    for (uint32_t i = 0; i < n && a->status == 0; i++) {
        struct vs_meta_kv kv = {0};
        kv.key_len = vs_rd_u32(&c);
        kv.key = c.p;
        vs_rd_skip(&c, kv.key_len);
        uint32_t vlen = vs_rd_u32(&c);
        vs_rd_skip(&c, vlen + 32u);
        VS_ASSERT(c.ok);
        uint64_t ev_id;
        int rc = write_event(a, EV_KIND_DELETE, &kv, &ev_id);
        if (rc < 0)
            return rc;
        sqlite3_stmt *st = raft__db_stmt(a->sm->db, RS_KV_DEL);
        bind_blob(st, 1, kv.key, kv.key_len);
        rc = raft__db_exec_stmt(a->sm->db, RS_KV_DEL, "delete key");
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int apply_delete(struct apply *a, const struct vs_meta_op *op, struct raft_buf *out)
{
    /* Collect the keys first: SQLite must not iterate kv while we change it. */
    bool prev = op->flags & VS_META_PREV_KV;
    struct vs_meta_op r = *op;
    r.type = VS_META_OP_RANGE;
    r.flags = prev ? 0 : VS_META_KEYS_ONLY;
    r.limit = 0;
    struct raft_buf keys;
    raft__buf_init(&keys);
    int rc = sm_range(a->sm, &r, &keys, SIZE_MAX);
    uint32_t n = rc == 0 ? vs_get_u32(keys.p + 18) : 0;
    if (rc == 0 && n > RAFT_SUB_MAX)
        a->status = -EFBIG;
    if (rc == 0 && a->status == 0) {
        /* keys holds an op-result header + kvs: reuse it as our answer. */
        struct raft_buf body = {.p = keys.p + 22, .len = keys.len - 22};
        size_t hdr = put_header(out, VS_META_OP_DELETE);
        if (prev)
            raft__buf_bytes(out, body.p, body.len);
        patch_header(out, hdr, false, 0, n, prev ? n : 0);
        rc = delete_keys(a, &body, n);
    }
    raft__buf_free(&keys);
    return rc;
}

/* ---- compares and txn -------------------------------------------------------- */

static int cmp_bytes(const void *a, uint32_t alen, const void *b, uint32_t blen)
{
    int c = memcmp(a, b, VS_MIN(alen, blen));
    if (c != 0)
        return c;
    return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

static bool cmp_result(int c, uint8_t op)
{
    switch (op) {
    case VS_META_EQ:
        return c == 0;
    case VS_META_NE:
        return c != 0;
    case VS_META_LT:
        return c < 0;
    default:
        return c > 0;
    }
}

static int eval_compare(struct raft_sm *sm, const struct vs_meta_compare *cmp, bool *ok)
{
    struct raft_buf val;
    raft__buf_init(&val);
    struct vs_meta_kv kv = {0};
    bool found;
    int rc = get_kv(sm, cmp->key, cmp->key_len, &kv, &found,
                    cmp->target == VS_META_CMP_VALUE ? &val : NULL, true);
    if (rc < 0) {
        raft__buf_free(&val);
        return rc;
    }
    if (cmp->target == VS_META_CMP_VALUE) {
        if (!found) {
            *ok = cmp->op == VS_META_NE;
        } else {
            /* val holds an encoded kv: key blob then value blob */
            uint32_t klen = vs_get_u32(val.p);
            uint32_t vlen = vs_get_u32(val.p + 4 + klen);
            const uint8_t *v = val.p + 8 + klen;
            *ok = cmp_result(cmp_bytes(v, vlen, cmp->value, cmp->value_len), cmp->op);
        }
        raft__buf_free(&val);
        return 0;
    }
    uint64_t have = 0;
    if (found) {
        if (cmp->target == VS_META_CMP_VERSION)
            have = kv.version;
        else if (cmp->target == VS_META_CMP_CREATE)
            have = kv.create_rev;
        else if (cmp->target == VS_META_CMP_MOD)
            have = kv.mod_rev;
        else
            have = kv.lease;
    }
    int c = have < cmp->number ? -1 : (have > cmp->number ? 1 : 0);
    *ok = cmp_result(c, cmp->op);
    return 0;
}

static int run_ops(struct apply *a, const struct vs_meta_op *ops, unsigned n, struct raft_buf *out)
{
    int rc = 0;
    for (unsigned i = 0; i < n && rc == 0 && a->status == 0; i++) {
        switch (ops[i].type) {
        case VS_META_OP_RANGE:
            rc = raft__sm_range(a->sm, &ops[i], out);
            break;
        case VS_META_OP_PUT:
            rc = apply_put(a, &ops[i], out);
            break;
        default:
            rc = apply_delete(a, &ops[i], out);
            break;
        }
    }
    return rc;
}

static int savepoint(struct raft_sm *sm, enum raft_stmt which)
{
    raft__db_stmt(sm->db, which);
    return raft__db_exec_stmt(sm->db, which, "savepoint");
}

/* Sm invariant 2: run body inside a savepoint, undo it on a command error. */
static int finish_command(struct apply *a, int rc, size_t events_len, uint32_t n_events)
{
    struct raft_sm *sm = a->sm;
    if (rc == 0 && a->status != 0) {
        rc = savepoint(sm, RS_ROLLBACK_TO);
        sm->events.len = events_len;
        sm->n_events = n_events;
        a->wrote = false;
    }
    if (rc == 0)
        rc = savepoint(sm, RS_RELEASE);
    if (rc == 0 && a->wrote)
        sm->rev = a->new_rev;
    return rc;
}

static int apply_txn(struct raft_sm *sm, const uint8_t *p, size_t len, struct raft_sm_result *res)
{
    struct raft_txn txn;
    res->status = raft__txn_decode(p, len, &sm->lim, &txn);
    if (res->status < 0)
        return 0;
    struct apply a = {.sm = sm, .new_rev = sm->rev + 1};
    size_t events_len = sm->events.len;
    uint32_t n_events = sm->n_events;
    int rc = savepoint(sm, RS_SAVEPOINT);
    bool succeeded = true;
    for (unsigned i = 0; i < txn.t.n_cmp && rc == 0 && succeeded; i++)
        rc = eval_compare(sm, &txn.t.cmp[i], &succeeded);
    const struct vs_meta_op *ops = succeeded ? txn.t.success : txn.t.failure;
    unsigned n = succeeded ? txn.t.n_success : txn.t.n_failure;
    raft__buf_u64(&res->out, 0); /* revision, patched below */
    raft__buf_u8(&res->out, succeeded ? 1 : 0);
    raft__buf_u32(&res->out, n);
    if (rc == 0)
        rc = run_ops(&a, ops, n, &res->out);
    rc = rc < 0 ? rc : finish_command(&a, rc, events_len, n_events);
    res->status = a.status;
    if (rc == 0 && res->out.oom)
        rc = -ENOMEM;
    if (rc == 0 && a.status == 0)
        vs_put_u64(res->out.p, sm->rev);
    raft__txn_free(&txn);
    return rc;
}

/* ---- leases -------------------------------------------------------------------- */

int raft__sm_lease_ttl(struct raft_sm *sm, uint64_t id, uint64_t *ttl_ms, bool *found)
{
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_LEASE_GET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    *ttl_ms = *found ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : db_fail(sm, rc, "read lease");
}

int raft__sm_lease_each(struct raft_sm *sm, raft_sm_lease_fn fn, void *ctx)
{
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_LEASE_ALL);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn(ctx, (uint64_t)sqlite3_column_int64(st, 0), (uint64_t)sqlite3_column_int64(st, 1));
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(sm, rc, "list leases");
}

static int apply_lease_grant(struct raft_sm *sm, struct vs_cursor *c, struct raft_sm_result *res)
{
    uint64_t id = vs_rd_u64(c), ttl = vs_rd_u64(c);
    if (!c->ok || vs_cursor_left(c) != 0) {
        res->status = -EINVAL;
        return 0;
    }
    ttl = VS_MAX(ttl, VS_META_LEASE_TTL_MIN_MS);
    ttl = VS_MIN(ttl, VS_META_LEASE_TTL_MAX_MS);
    bool found = true;
    int rc = 0;
    if (id != 0) {
        rc = lease_exists(sm, id, &found);
        if (rc == 0 && found)
            res->status = -EEXIST;
    } else {
        for (id = sm->next_lease; rc == 0 && found; id += found ? 1 : 0)
            rc = lease_exists(sm, id, &found);
        sm->next_lease = id + 1;
    }
    if (rc < 0 || res->status)
        return rc;
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_LEASE_PUT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)ttl);
    rc = raft__db_exec_stmt(sm->db, RS_LEASE_PUT, "grant lease");
    raft__buf_u64(&res->out, id);
    raft__buf_u64(&res->out, ttl);
    return rc;
}

/* Deletes one lease and its keys (part of the current command). */
static int revoke_one(struct apply *a, uint64_t id, bool *found)
{
    struct raft_sm *sm = a->sm;
    int rc = lease_exists(sm, id, found);
    if (rc < 0 || !*found)
        return rc;
    struct raft_buf keys;
    raft__buf_init(&keys);
    uint32_t n = 0;
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_EV_BY_LEASE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct vs_meta_kv kv = {.key = sqlite3_column_blob(st, 0),
                                .key_len = (uint32_t)sqlite3_column_bytes(st, 0)};
        raft__kv_encode(&keys, &kv);
        n++;
    }
    sqlite3_reset(st);
    rc = rc == SQLITE_DONE ? 0 : db_fail(sm, rc, "lease keys");
    if (rc == 0)
        rc = keys.oom ? -ENOMEM : delete_keys(a, &keys, n);
    raft__buf_free(&keys);
    if (rc == 0) {
        st = raft__db_stmt(sm->db, RS_LEASE_DEL);
        sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
        rc = raft__db_exec_stmt(sm->db, RS_LEASE_DEL, "revoke lease");
    }
    return rc;
}

/* Revoke: n u32, ids u64[n]. An explicit revoke (n == 1) of an unknown lease
 * fails with VS_ELEASE; expiry batches skip leases already gone. */
static int apply_lease_revoke(struct raft_sm *sm, struct vs_cursor *c, struct raft_sm_result *res)
{
    uint32_t n = vs_rd_u32(c);
    if (!c->ok || (uint64_t)n * 8 != vs_cursor_left(c) || n == 0) {
        res->status = -EINVAL;
        return 0;
    }
    struct apply a = {.sm = sm, .new_rev = sm->rev + 1};
    size_t events_len = sm->events.len;
    uint32_t n_events = sm->n_events;
    int rc = savepoint(sm, RS_SAVEPOINT);
    for (uint32_t i = 0; i < n && rc == 0 && a.status == 0; i++) {
        bool found;
        rc = revoke_one(&a, vs_rd_u64(c), &found);
        if (rc == 0 && !found && n == 1)
            a.status = VS_ELEASE;
    }
    rc = rc < 0 ? rc : finish_command(&a, rc, events_len, n_events);
    res->status = a.status;
    raft__buf_u64(&res->out, sm->rev);
    return rc;
}

static int apply_compact(struct raft_sm *sm, struct vs_cursor *c, struct raft_sm_result *res)
{
    uint64_t rev = vs_rd_u64(c);
    if (!c->ok || vs_cursor_left(c) != 0 || rev > sm->rev || rev == 0) {
        res->status = -EINVAL;
        return 0;
    }
    if (rev <= sm->compact_rev) {
        res->status = VS_ECOMPACTED;
        return 0;
    }
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_EV_COMPACT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)RAFT_EV_ID(rev, 0ull));
    int rc = raft__db_exec_stmt(sm->db, RS_EV_COMPACT, "compact");
    if (rc == 0)
        sm->compact_rev = rev;
    raft__buf_u64(&res->out, sm->rev);
    return rc;
}

int raft__sm_skip(struct raft_sm *sm, uint64_t index)
{
    if (index > sm->applied_index)
        sm->applied_index = index;
    return 0;
}

int raft__sm_apply(struct raft_sm *sm, uint64_t index, const uint8_t *cmd, size_t len,
                   struct raft_sm_result *res)
{
    res->status = 0;
    raft__buf_init(&res->out);
    if (index <= sm->applied_index) {
        res->status = -EALREADY; /* a restored snapshot already holds it */
        return 0;
    }
    VS_ASSERT(sm->db->in_txn); /* sm invariant 5: never committed apart from applied_index */
    struct vs_cursor c = vs_cursor_make((void *)cmd, len);
    uint8_t version = vs_rd_u8(&c), type = vs_rd_u8(&c);
    int rc = 0;
    if (!c.ok || version != RAFT_CMD_VERSION) {
        res->status = -EINVAL;
    } else if (type == RAFT_CMD_TXN) {
        rc = apply_txn(sm, c.p, vs_cursor_left(&c), res);
    } else if (type == RAFT_CMD_LEASE_GRANT) {
        rc = apply_lease_grant(sm, &c, res);
    } else if (type == RAFT_CMD_LEASE_REVOKE) {
        rc = apply_lease_revoke(sm, &c, res);
    } else if (type == RAFT_CMD_COMPACT) {
        rc = apply_compact(sm, &c, res);
    } else if (type != RAFT_CMD_NOOP) {
        res->status = -EINVAL;
    }
    if (rc == 0 && res->out.oom)
        rc = -ENOMEM;
    if (rc == 0)
        sm->applied_index = index;
    return rc;
}

/* ---- watches: history reads ------------------------------------------------------ */

int raft__sm_events(struct raft_sm *sm, uint64_t from_rev, const uint8_t *key, uint32_t key_len,
                    const uint8_t *end, uint32_t end_len, unsigned max_events,
                    struct raft_buf *out, unsigned *n, uint64_t *next_rev)
{
    *n = 0;
    *next_rev = from_rev;
    if (from_rev < sm->compact_rev)
        return VS_ECOMPACTED;
    if (from_rev > sm->rev)
        return 0;
    uint64_t upto = VS_MIN(from_rev + EVENTS_WINDOW_REVS, sm->rev + 1);
    sqlite3_stmt *st = raft__db_stmt(sm->db, RS_EV_SINCE);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)RAFT_EV_ID(from_rev, 0ull));
    sqlite3_bind_int64(st, 2, (sqlite3_int64)RAFT_EV_ID(upto, 0ull));
    int rc;
    uint64_t last_rev = 0;
    *next_rev = upto;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        uint64_t rev = RAFT_EV_REV((uint64_t)sqlite3_column_int64(st, 0));
        if (*n >= max_events && rev != last_rev) {
            *next_rev = rev; /* stop at a revision boundary */
            break;
        }
        struct vs_meta_event ev;
        ev.kv.key = sqlite3_column_blob(st, 2);
        ev.kv.key_len = (uint32_t)sqlite3_column_bytes(st, 2);
        if (!raft__key_in_range(ev.kv.key, ev.kv.key_len, key, key_len, end, end_len))
            continue;
        ev.type = sqlite3_column_int(st, 1) == EV_KIND_PUT ? VS_META_EVENT_PUT
                                                            : VS_META_EVENT_DELETE;
        ev.kv.value = sqlite3_column_blob(st, 3);
        ev.kv.value_len = (uint32_t)sqlite3_column_bytes(st, 3);
        ev.kv.create_rev = (uint64_t)sqlite3_column_int64(st, 4);
        ev.kv.version = (uint64_t)sqlite3_column_int64(st, 5);
        ev.kv.lease = (uint64_t)sqlite3_column_int64(st, 6);
        ev.kv.mod_rev = rev;
        raft__event_encode(out, &ev);
        (*n)++;
        last_rev = rev;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return db_fail(sm, rc, "read history");
    return out->oom ? -ENOMEM : 0;
}

/* ---- snapshots --------------------------------------------------------------------- */

/* Snapshot data (docs/metadata.md, "Snapshots"): a header, the leases, the
 * history rows, the key rows, and a crc32c of everything before it. */
#define SNAP_HEADER_BYTES (8 + 4 + 4 + 4 * 8)

static int dump_rows(struct raft_sm *sm, enum raft_stmt which, struct raft_buf *out)
{
    size_t count_off = out->len;
    raft__buf_u64(out, 0);
    uint64_t n = 0;
    sqlite3_stmt *st = raft__db_stmt(sm->db, which);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (which == RS_LEASE_ALL) {
            raft__buf_u64(out, (uint64_t)sqlite3_column_int64(st, 0));
            raft__buf_u64(out, (uint64_t)sqlite3_column_int64(st, 1));
        } else if (which == RS_DUMP_EV) {
            raft__buf_u64(out, (uint64_t)sqlite3_column_int64(st, 0));
            raft__buf_u8(out, (uint8_t)sqlite3_column_int(st, 1));
            raft__buf_blob(out, sqlite3_column_blob(st, 2), (uint32_t)sqlite3_column_bytes(st, 2));
            raft__buf_blob(out, sqlite3_column_blob(st, 3), (uint32_t)sqlite3_column_bytes(st, 3));
            for (int i = 4; i <= 6; i++)
                raft__buf_u64(out, (uint64_t)sqlite3_column_int64(st, i));
        } else {
            raft__buf_blob(out, sqlite3_column_blob(st, 0), (uint32_t)sqlite3_column_bytes(st, 0));
            raft__buf_u64(out, (uint64_t)sqlite3_column_int64(st, 1));
        }
        n++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return db_fail(sm, rc, "snapshot");
    if (!out->oom)
        vs_put_u64(out->p + count_off, n);
    return out->oom ? -ENOMEM : 0;
}

int raft__sm_snapshot(struct raft_sm *sm, struct raft_buf *out)
{
    raft__buf_u64(out, SNAP_MAGIC);
    raft__buf_u32(out, SNAP_VERSION);
    raft__buf_u32(out, 0);
    raft__buf_u64(out, sm->applied_index);
    raft__buf_u64(out, sm->rev);
    raft__buf_u64(out, sm->compact_rev);
    raft__buf_u64(out, sm->next_lease);
    int rc = dump_rows(sm, RS_LEASE_ALL, out);
    if (rc == 0)
        rc = dump_rows(sm, RS_DUMP_EV, out);
    if (rc == 0)
        rc = dump_rows(sm, RS_DUMP_KV, out);
    if (rc == 0 && !out->oom)
        raft__buf_u32(out, vs_crc32c(out->p, out->len));
    return rc < 0 ? rc : (out->oom ? -ENOMEM : 0);
}

struct snap_hdr {
    uint64_t applied_index, rev, compact_rev, next_lease;
};

/* One pass over the rows: with write false it only validates. */
static int snap_rows(struct raft_sm *sm, struct vs_cursor *c, bool write)
{
    uint64_t n = vs_rd_u64(c), prev = 0;
    if (n > vs_cursor_left(c) / 16)
        return -EINVAL;
    for (uint64_t i = 0; i < n && c->ok; i++) {
        uint64_t id = vs_rd_u64(c), ttl = vs_rd_u64(c);
        if (write) {
            sqlite3_stmt *st = raft__db_stmt(sm->db, RS_LEASE_PUT);
            sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)ttl);
            int rc = raft__db_exec_stmt(sm->db, RS_LEASE_PUT, "restore lease");
            if (rc < 0)
                return rc;
        }
    }
    n = vs_rd_u64(c);
    if (n > vs_cursor_left(c) / 41)
        return -EINVAL;
    for (uint64_t i = 0; i < n && c->ok; i++) {
        struct vs_meta_kv kv;
        uint64_t id = vs_rd_u64(c);
        uint8_t kind = vs_rd_u8(c);
        kv.key = rd_blob_sm(c, &kv.key_len);
        kv.value = rd_blob_sm(c, &kv.value_len);
        kv.create_rev = vs_rd_u64(c);
        kv.version = vs_rd_u64(c);
        kv.lease = vs_rd_u64(c);
        if (!c->ok || id <= prev || kind > EV_KIND_DELETE || kv.key_len == 0 ||
            kv.key_len > VS_META_KEY_MAX)
            return -EINVAL;
        prev = id;
        if (write) {
            int rc = insert_ev_row(sm, id, kind, &kv);
            if (rc < 0)
                return rc;
        }
    }
    n = vs_rd_u64(c);
    if (n > vs_cursor_left(c) / 13)
        return -EINVAL;
    for (uint64_t i = 0; i < n && c->ok; i++) {
        uint32_t klen;
        const uint8_t *key = rd_blob_sm(c, &klen);
        uint64_t ev = vs_rd_u64(c);
        if (!c->ok || klen == 0 || klen > VS_META_KEY_MAX)
            return -EINVAL;
        if (write) {
            sqlite3_stmt *st = raft__db_stmt(sm->db, RS_KV_PUT);
            bind_blob(st, 1, key, klen);
            sqlite3_bind_int64(st, 2, (sqlite3_int64)ev);
            int rc = raft__db_exec_stmt(sm->db, RS_KV_PUT, "restore key");
            if (rc < 0)
                return rc;
        }
    }
    return c->ok ? 0 : -EINVAL;
}

static int snap_header(const uint8_t *p, size_t len, struct snap_hdr *h, struct vs_cursor *c)
{
    if (len < SNAP_HEADER_BYTES + 4 || vs_crc32c(p, len - 4) != vs_get_u32(p + len - 4))
        return -EINVAL;
    *c = vs_cursor_make((void *)p, len - 4);
    uint64_t magic = vs_rd_u64(c);
    uint32_t version = vs_rd_u32(c);
    vs_rd_u32(c);
    h->applied_index = vs_rd_u64(c);
    h->rev = vs_rd_u64(c);
    h->compact_rev = vs_rd_u64(c);
    h->next_lease = vs_rd_u64(c);
    if (!c->ok || magic != SNAP_MAGIC || version != SNAP_VERSION || h->rev == 0 ||
        h->compact_rev > h->rev)
        return -EINVAL;
    return 0;
}

int raft__sm_restore(struct raft_sm *sm, const uint8_t *p, size_t len)
{
    struct snap_hdr h;
    struct vs_cursor c;
    int rc = snap_header(p, len, &h, &c);
    if (rc == 0)
        rc = snap_rows(sm, &c, false); /* validate everything before touching a row */
    if (rc == 0 && vs_cursor_left(&c) != 0)
        rc = -EINVAL;
    if (rc < 0)
        return rc;
    VS_ASSERT(sm->db->in_txn); /* sm invariant 5 */
    int src = sqlite3_exec(sm->db->h, "DELETE FROM kv; DELETE FROM ev; DELETE FROM lease", NULL,
                           NULL, NULL);
    if (src != SQLITE_OK)
        return db_fail(sm, src, "restore");
    snap_header(p, len, &h, &c);
    rc = snap_rows(sm, &c, true);
    if (rc < 0)
        return rc;
    sm->applied_index = h.applied_index;
    sm->rev = h.rev;
    sm->compact_rev = h.compact_rev;
    sm->next_lease = h.next_lease;
    raft__sm_events_clear(sm);
    return raft__sm_save(sm);
}
