/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_codec.c -- the byte forms of transactions, results and watch events.
 *
 * One encoding serves three places: a client request carries a txn in this
 * form, the leader proposes the same bytes (behind a command header) as a log
 * entry, and every member decodes them again when it applies the entry. The
 * results and events the state machine produces are written in their wire
 * form directly, so the server sends them without re-encoding and in-process
 * callers decode them with the same decoder the client library uses.
 *
 * All integers little-endian (common/vs_byte.h). A "blob" is a u32 length and
 * that many bytes. Layouts (docs/metadata.md, "Encodings"):
 *
 *   txn      n_cmp u32, n_success u32, n_failure u32, cmp*, op*
 *   cmp      target u8, op u8, key blob, value blob, number u64
 *   op       type u8, flags u8, key blob, range_end blob, value blob,
 *            lease u64, limit u64
 *   result   revision u64, succeeded u8, n_ops u32, op_result*
 *   op_result type u8, more u8, count u64, deleted u64, n_kvs u32, kv*
 *   kv       key blob, value blob, create_rev u64, mod_rev u64, version u64,
 *            lease u64
 *   event    type u8, kv
 *   events   revision u64, n u32, event*
 *
 * Decoders never trust a length: every read goes through a bounded cursor,
 * counts are checked against the bytes left before anything is allocated,
 * and trailing garbage is an error.
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CMP_MIN_BYTES (2 + 4 + 4 + 8)
#define OP_MIN_BYTES (2 + 4 + 4 + 4 + 8 + 8)
#define KV_MIN_BYTES (4 + 4 + 32)
#define OP_RESULT_MIN_BYTES (2 + 8 + 8 + 4)
#define KNOWN_OP_FLAGS (VS_META_PREV_KV | VS_META_KEYS_ONLY | VS_META_COUNT_ONLY)

uint32_t vs_meta_prefix_end(const void *prefix, uint32_t len, uint8_t *out)
{
    const uint8_t *p = prefix;
    while (len > 0 && p[len - 1] == 0xff)
        len--;
    if (len == 0) {
        out[0] = 0;
        return 1;
    }
    memcpy(out, p, len);
    out[len - 1]++;
    return len;
}

bool raft__key_in_range(const uint8_t *key, uint32_t key_len, const uint8_t *start,
                        uint32_t start_len, const uint8_t *end, uint32_t end_len)
{
    if (end_len == 0)
        return key_len == start_len && memcmp(key, start, key_len) == 0;
    uint32_t n = VS_MIN(key_len, start_len);
    int c = memcmp(key, start, n);
    if (c < 0 || (c == 0 && key_len < start_len))
        return false;
    if (end_len == 1 && end[0] == 0)
        return true;
    n = VS_MIN(key_len, end_len);
    c = memcmp(key, end, n);
    return c < 0 || (c == 0 && key_len < end_len);
}

/* ---- txn ---------------------------------------------------------------- */

static void cmp_encode(struct raft_buf *b, const struct vs_meta_compare *c)
{
    raft__buf_u8(b, c->target);
    raft__buf_u8(b, c->op);
    raft__buf_blob(b, c->key, c->key_len);
    raft__buf_blob(b, c->value, c->value_len);
    raft__buf_u64(b, c->number);
}

void raft__op_encode(struct raft_buf *b, const struct vs_meta_op *o)
{
    raft__buf_u8(b, o->type);
    raft__buf_u8(b, o->flags);
    raft__buf_blob(b, o->key, o->key_len);
    raft__buf_blob(b, o->range_end, o->range_end_len);
    raft__buf_blob(b, o->value, o->value_len);
    raft__buf_u64(b, o->lease);
    raft__buf_u64(b, o->limit);
}

void raft__txn_encode(struct raft_buf *b, const struct vs_meta_txn *txn)
{
    raft__buf_u32(b, txn->n_cmp);
    raft__buf_u32(b, txn->n_success);
    raft__buf_u32(b, txn->n_failure);
    for (unsigned i = 0; i < txn->n_cmp; i++)
        cmp_encode(b, &txn->cmp[i]);
    for (unsigned i = 0; i < txn->n_success; i++)
        raft__op_encode(b, &txn->success[i]);
    for (unsigned i = 0; i < txn->n_failure; i++)
        raft__op_encode(b, &txn->failure[i]);
}

/* Reads a blob: returns a pointer into the buffer, or NULL (cursor !ok). */
static const uint8_t *rd_blob(struct vs_cursor *c, uint32_t *len)
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

static bool key_ok(uint32_t len)
{
    return len >= 1 && len <= VS_META_KEY_MAX;
}

int raft__op_check(const struct vs_meta_op *o, const struct raft_limits *lim)
{
    if (o->type > VS_META_OP_DELETE || (o->flags & ~KNOWN_OP_FLAGS))
        return -EINVAL;
    if (!key_ok(o->key_len) || o->range_end_len > VS_META_KEY_MAX)
        return -EINVAL;
    if (o->type == VS_META_OP_PUT) {
        if (o->range_end_len != 0 || o->value_len > lim->value_max || o->limit != 0)
            return -EINVAL;
    } else if (o->value_len != 0 || o->lease != 0) {
        return -EINVAL;
    }
    if (o->type == VS_META_OP_DELETE && o->limit != 0)
        return -EINVAL;
    return 0;
}

static int cmp_decode(struct vs_cursor *c, const struct raft_limits *lim,
                      struct vs_meta_compare *out)
{
    out->target = vs_rd_u8(c);
    out->op = vs_rd_u8(c);
    out->key = rd_blob(c, &out->key_len);
    out->value = rd_blob(c, &out->value_len);
    out->number = vs_rd_u64(c);
    if (!c->ok || out->target > VS_META_CMP_LEASE || out->op > VS_META_GT)
        return -EINVAL;
    if (!key_ok(out->key_len) || out->value_len > lim->value_max)
        return -EINVAL;
    if (out->target != VS_META_CMP_VALUE && out->value_len != 0)
        return -EINVAL;
    return 0;
}

static int op_decode(struct vs_cursor *c, const struct raft_limits *lim, struct vs_meta_op *out)
{
    out->type = vs_rd_u8(c);
    out->flags = vs_rd_u8(c);
    out->key = rd_blob(c, &out->key_len);
    out->range_end = rd_blob(c, &out->range_end_len);
    out->value = rd_blob(c, &out->value_len);
    out->lease = vs_rd_u64(c);
    out->limit = vs_rd_u64(c);
    if (!c->ok)
        return -EINVAL;
    return raft__op_check(out, lim);
}

int raft__txn_decode(const uint8_t *p, size_t len, const struct raft_limits *lim,
                     struct raft_txn *out)
{
    memset(out, 0, sizeof(*out));
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    uint32_t n_cmp = vs_rd_u32(&c), n_succ = vs_rd_u32(&c), n_fail = vs_rd_u32(&c);
    if (!c.ok)
        return -EINVAL;
    uint64_t n_all = (uint64_t)n_cmp + n_succ + n_fail;
    if (n_all > VS_META_TXN_OPS_MAX)
        return -EINVAL;
    /* Bound the allocations by the bytes actually present. */
    if ((uint64_t)n_cmp * CMP_MIN_BYTES + (uint64_t)(n_succ + n_fail) * OP_MIN_BYTES >
        vs_cursor_left(&c))
        return -EINVAL;
    out->cmp = n_cmp ? calloc(n_cmp, sizeof(*out->cmp)) : NULL;
    out->ops = n_succ + n_fail ? calloc(n_succ + n_fail, sizeof(*out->ops)) : NULL;
    if ((n_cmp && !out->cmp) || (n_succ + n_fail && !out->ops)) {
        raft__txn_free(out);
        return -ENOMEM;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n_cmp && rc == 0; i++)
        rc = cmp_decode(&c, lim, &out->cmp[i]);
    for (uint32_t i = 0; i < n_succ + n_fail && rc == 0; i++)
        rc = op_decode(&c, lim, &out->ops[i]);
    if (rc == 0 && (!c.ok || vs_cursor_left(&c) != 0))
        rc = -EINVAL;
    if (rc < 0) {
        raft__txn_free(out);
        return rc;
    }
    out->t.cmp = out->cmp;
    out->t.n_cmp = n_cmp;
    out->t.success = out->ops;
    out->t.n_success = n_succ;
    out->t.failure = out->ops ? out->ops + n_succ : NULL;
    out->t.n_failure = n_fail;
    return 0;
}

void raft__txn_free(struct raft_txn *t)
{
    free(t->cmp);
    free(t->ops);
    memset(t, 0, sizeof(*t));
}

/* ---- results -------------------------------------------------------------- */

void raft__kv_encode(struct raft_buf *b, const struct vs_meta_kv *kv)
{
    raft__buf_blob(b, kv->key, kv->key_len);
    raft__buf_blob(b, kv->value, kv->value_len);
    raft__buf_u64(b, kv->create_rev);
    raft__buf_u64(b, kv->mod_rev);
    raft__buf_u64(b, kv->version);
    raft__buf_u64(b, kv->lease);
}

static void kv_decode(struct vs_cursor *c, struct vs_meta_kv *kv)
{
    kv->key = rd_blob(c, &kv->key_len);
    kv->value = rd_blob(c, &kv->value_len);
    kv->create_rev = vs_rd_u64(c);
    kv->mod_rev = vs_rd_u64(c);
    kv->version = vs_rd_u64(c);
    kv->lease = vs_rd_u64(c);
}

/* Walks an encoded txn result; with ops/kvs NULL it only counts. */
static int result_walk(const uint8_t *p, size_t len, struct vs_meta_txn_result *res,
                       struct vs_meta_op_result *ops, struct vs_meta_kv *kvs, size_t *n_kvs_total)
{
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    res->revision = vs_rd_u64(&c);
    res->succeeded = vs_rd_u8(&c) != 0;
    res->n_ops = vs_rd_u32(&c);
    if (!c.ok || (uint64_t)res->n_ops * OP_RESULT_MIN_BYTES > vs_cursor_left(&c))
        return -EINVAL;
    size_t total = 0;
    for (unsigned i = 0; i < res->n_ops; i++) {
        struct vs_meta_op_result r;
        r.type = vs_rd_u8(&c);
        r.more = vs_rd_u8(&c) != 0;
        r.count = vs_rd_u64(&c);
        r.deleted = vs_rd_u64(&c);
        r.n_kvs = vs_rd_u32(&c);
        if (!c.ok || (uint64_t)r.n_kvs * KV_MIN_BYTES > vs_cursor_left(&c))
            return -EINVAL;
        r.kvs = kvs ? kvs + total : NULL;
        for (unsigned k = 0; k < r.n_kvs; k++) {
            struct vs_meta_kv kv;
            kv_decode(&c, &kv);
            if (kvs)
                kvs[total + k] = kv;
        }
        total += r.n_kvs;
        if (ops)
            ops[i] = r;
    }
    if (!c.ok || vs_cursor_left(&c) != 0)
        return -EINVAL;
    *n_kvs_total = total;
    return 0;
}

int raft__txn_result_decode(const uint8_t *p, size_t len, struct vs_meta_txn_result *out,
                            void **arena)
{
    size_t n_kvs = 0;
    *arena = NULL;
    int rc = result_walk(p, len, out, NULL, NULL, &n_kvs);
    if (rc < 0)
        return rc;
    size_t size = out->n_ops * sizeof(struct vs_meta_op_result) + n_kvs * sizeof(struct vs_meta_kv);
    void *mem = malloc(size ? size : 1);
    if (!mem)
        return -ENOMEM;
    struct vs_meta_op_result *ops = mem;
    struct vs_meta_kv *kvs = (struct vs_meta_kv *)(ops + out->n_ops);
    rc = result_walk(p, len, out, ops, kvs, &n_kvs);
    VS_ASSERT(rc == 0);
    out->ops = ops;
    *arena = mem;
    return 0;
}

void raft__event_encode(struct raft_buf *b, const struct vs_meta_event *ev)
{
    raft__buf_u8(b, ev->type);
    raft__kv_encode(b, &ev->kv);
}

int raft__events_decode(const uint8_t *p, size_t len, struct vs_meta_event **out, unsigned *n,
                        uint64_t *revision)
{
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    *out = NULL;
    *revision = vs_rd_u64(&c);
    uint32_t count = vs_rd_u32(&c);
    if (!c.ok || (uint64_t)count * (1 + KV_MIN_BYTES) > vs_cursor_left(&c))
        return -EINVAL;
    struct vs_meta_event *ev = count ? calloc(count, sizeof(*ev)) : NULL;
    if (count && !ev)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        ev[i].type = vs_rd_u8(&c);
        kv_decode(&c, &ev[i].kv);
        if (ev[i].type > VS_META_EVENT_DELETE)
            c.ok = false;
    }
    if (!c.ok || vs_cursor_left(&c) != 0) {
        free(ev);
        return -EINVAL;
    }
    *out = ev;
    *n = count;
    return 0;
}

/* ---- client requests ---------------------------------------------------------- */

void raft__req_header(struct raft_buf *b, uint64_t id, uint8_t op, uint8_t flags)
{
    raft__buf_u64(b, id);
    raft__buf_u8(b, op);
    raft__buf_u8(b, flags);
    raft__buf_u16(b, 0);
}

static int req_body(struct vs_cursor *c, const struct raft_limits *lim, struct raft_req *r)
{
    switch (r->op) {
    case RO_RANGE:
        return op_decode(c, lim, &r->range) == 0 && r->range.type == VS_META_OP_RANGE ? 0
                                                                                      : -EINVAL;
    case RO_TXN:
        r->body = c->p;
        r->body_len = vs_cursor_left(c);
        c->p = c->end;
        return raft__txn_decode(r->body, r->body_len, lim, &r->txn);
    case RO_LEASE_GRANT:
        r->lease_id = vs_rd_u64(c);
        r->ttl_ms = vs_rd_u64(c);
        return r->ttl_ms >= VS_META_LEASE_TTL_MIN_MS && r->ttl_ms <= VS_META_LEASE_TTL_MAX_MS
                   ? 0
                   : -EINVAL;
    case RO_LEASE_REVOKE:
    case RO_LEASE_KEEPALIVE:
    case RO_LEASE_TTL:
        r->lease_id = vs_rd_u64(c);
        return r->lease_id != 0 ? 0 : -EINVAL;
    case RO_COMPACT:
        r->rev = vs_rd_u64(c);
        return r->rev != 0 ? 0 : -EINVAL;
    case RO_WATCH:
        r->watch_id = vs_rd_u64(c);
        r->rev = vs_rd_u64(c);
        r->key = rd_blob(c, &r->key_len);
        r->end = rd_blob(c, &r->end_len);
        return key_ok(r->key_len) && r->end_len <= VS_META_KEY_MAX ? 0 : -EINVAL;
    case RO_WATCH_CANCEL:
        r->watch_id = vs_rd_u64(c);
        return 0;
    case RO_STATUS:
        return 0;
    case RO_MEMBER_ADD:
        r->member_id = vs_rd_u64(c);
        r->key = rd_blob(c, &r->key_len);
        return r->member_id != 0 && r->key_len >= 3 && r->key_len <= VS_RAFT_ADDRESS_MAX &&
                       !memchr(r->key, 0, r->key_len)
                   ? 0
                   : -EINVAL;
    case RO_MEMBER_REMOVE:
        r->member_id = vs_rd_u64(c);
        return r->member_id != 0 ? 0 : -EINVAL;
    case RO_VOLATILE_PUT:
        r->key = rd_blob(c, &r->key_len);
        r->value = rd_blob(c, &r->value_len);
        return key_ok(r->key_len) && r->value_len <= lim->value_max ? 0 : -EINVAL;
    default:
        return -EOPNOTSUPP;
    }
}

int raft__req_decode(const uint8_t *p, size_t len, const struct raft_limits *lim,
                     struct raft_req *out)
{
    memset(out, 0, sizeof(*out));
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    out->id = vs_rd_u64(&c);
    out->op = vs_rd_u8(&c);
    out->flags = vs_rd_u8(&c);
    vs_rd_u16(&c);
    if (!c.ok)
        return -EINVAL;
    out->header_ok = true;
    int rc = req_body(&c, lim, out);
    if (rc == 0 && (!c.ok || vs_cursor_left(&c) != 0))
        rc = -EINVAL;
    if (rc < 0)
        raft__txn_free(&out->txn);
    return rc;
}

void raft__req_free(struct raft_req *r)
{
    raft__txn_free(&r->txn);
}

/* ---- replies and status ------------------------------------------------------------ */

int raft__resp_decode(const uint8_t *p, size_t len, struct raft_resp *out)
{
    memset(out, 0, sizeof(*out));
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    out->id = vs_rd_u64(&c);
    out->status = (int32_t)vs_rd_u32(&c);
    out->leader_id = vs_rd_u64(&c);
    out->leader = rd_blob(&c, &out->leader_len);
    if (!c.ok || out->leader_len > VS_RAFT_ADDRESS_MAX || out->status > 0)
        return -EINVAL;
    out->body = c.p;
    out->body_len = vs_cursor_left(&c);
    return 0;
}

void raft__status_encode(struct raft_buf *b, const struct vs_raft_status *st)
{
    raft__buf_u64(b, st->id);
    raft__buf_u64(b, st->cluster_id);
    raft__buf_u64(b, st->term);
    raft__buf_u64(b, st->leader_id);
    raft__buf_blob(b, st->leader_address, (uint32_t)strlen(st->leader_address));
    raft__buf_u8(b, (uint8_t)st->state);
    const uint64_t nums[] = {st->commit_index, st->applied_index, st->last_log_index,
                             st->snapshot_index, st->revision, st->compact_revision,
                             st->db_size_bytes, st->log_entries_written, st->log_bytes_written,
                             st->fsyncs, st->snapshots_taken, st->snapshots_installed};
    for (unsigned i = 0; i < VS_ARRAY_SIZE(nums); i++)
        raft__buf_u64(b, nums[i]);
    raft__buf_u32(b, st->n_members);
    for (unsigned i = 0; i < st->n_members; i++) {
        raft__buf_u64(b, st->members[i].id);
        raft__buf_u8(b, (uint8_t)st->members[i].role);
        raft__buf_blob(b, st->members[i].address, (uint32_t)strlen(st->members[i].address));
    }
}

static bool rd_string(struct vs_cursor *c, char *out, size_t size)
{
    uint32_t len;
    const uint8_t *p = rd_blob(c, &len);
    if (!c->ok || len >= size || (len && memchr(p, 0, len)))
        return false;
    if (len)
        memcpy(out, p, len);
    out[len] = 0;
    return true;
}

int raft__status_decode(const uint8_t *p, size_t len, struct vs_raft_status *st)
{
    memset(st, 0, sizeof(*st));
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    st->id = vs_rd_u64(&c);
    st->cluster_id = vs_rd_u64(&c);
    st->term = vs_rd_u64(&c);
    st->leader_id = vs_rd_u64(&c);
    if (!rd_string(&c, st->leader_address, sizeof(st->leader_address)))
        return -EINVAL;
    st->state = vs_rd_u8(&c);
    uint64_t *nums[] = {&st->commit_index, &st->applied_index, &st->last_log_index,
                        &st->snapshot_index, &st->revision, &st->compact_revision,
                        &st->db_size_bytes, &st->log_entries_written, &st->log_bytes_written,
                        &st->fsyncs, &st->snapshots_taken, &st->snapshots_installed};
    for (unsigned i = 0; i < VS_ARRAY_SIZE(nums); i++)
        *nums[i] = vs_rd_u64(&c);
    st->n_members = vs_rd_u32(&c);
    if (!c.ok || st->n_members > VS_RAFT_MEMBERS_MAX)
        return -EINVAL;
    for (unsigned i = 0; i < st->n_members; i++) {
        st->members[i].id = vs_rd_u64(&c);
        st->members[i].role = vs_rd_u8(&c);
        if (!rd_string(&c, st->members[i].address, sizeof(st->members[i].address)))
            return -EINVAL;
    }
    return c.ok && vs_cursor_left(&c) == 0 ? 0 : -EINVAL;
}
