/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_proto.c -- encode, decode and validate vstor frame headers
 * (byte tables in docs/protocol.md).
 *
 * Design notes:
 *  (1) One rule set. check_hdr() holds every field rule; the encoder and
 *      the decoder both call it, so we never send what we would refuse.
 *  (2) Unused bytes are checked by re-encoding. The decoder reads only the
 *      fields that belong to the frame's opcode and direction, encodes the
 *      result again and compares it with the received bytes: any nonzero
 *      reserved byte, unused op byte or padding byte makes them differ.
 *      This also proves encode(decode(b)) == b for every accepted frame.
 *  (3) The CRC is checked right after the magic, before any field is looked
 *      at, so line noise is reported as noise and not as a strange field.
 *
 * WARNING: the offsets below are the wire format. Change them only together
 * with VS_NET_PROTO_MAX and docs/protocol.md.
 */
#include "net_proto.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Common header. */
enum {
    OFF_MAGIC = 0,
    OFF_VERSION = 4,
    OFF_OPCODE = 6,
    OFF_ID = 8,
    OFF_FLAGS = 16,
    OFF_META_LEN = 20,
    OFF_DATA_LEN = 24,
    /* 28..31: reserved */
    OFF_BODY = 32,
    /* 112..123: reserved */
    OFF_CRC = 124,
};
/* Request bodies (offsets from the start of the header). */
enum {
    HELLO_CLUSTER = 0, /* relative to the hello body start */
    HELLO_PROTO_MIN = 16,
    HELLO_PROTO_MAX = 18,
    HELLO_ROLE = 20,
    HELLO_NODE = 24,
    HELLO_FEATURES = 32,
    HELLO_BLOCK = 40,
    HELLO_BITMAP_GRAN = 44,
    HELLO_SIZE = 48,

    RW_INODE = 32,
    RW_OFFSET = 40,
    RW_LEN = 48,
    RW_FLAGS = 52,
    RW_VERSION = 56,

    SEC_INODE = 32,
    SEC_STRIPE = 40,
    SEC_VERSION = 48,
    SEC_OFFSET = 56,
    SEC_LEN = 60,
    SEC_FLAGS = 64,
    SEC_SELECTOR = 68,

    BATCH_COUNT = 32,
    BATCH_FLAGS = 36,
    BATCH_BITMAP_LEN = 40,
    BATCH_SELECTOR = 44,

    LIST_POOL = 32,
    LIST_PG_NUM = 36,
    LIST_PG_COUNT = 40,
    LIST_MAX_ENTRIES = 44,
    LIST_PG_STRIPE_SIZE = 48,
    LIST_START_INODE = 56,
    LIST_START_STRIPE = 64,
    LIST_FLAGS = 72,

    LOCK_POOL = 32,
    LOCK_PG_NUM = 36,
    LOCK_FLAGS = 40,
    LOCK_MAP_REVISION = 48,

    PURGE_POOL = 32,
    PURGE_PG_NUM = 36,
    PURGE_PG_COUNT = 40,
    PURGE_FLAGS = 44,
    PURGE_PG_STRIPE_SIZE = 48,
    PURGE_BELOW = 56,

    SYNC_FLAGS = 32,
};
/* Reply body. */
enum {
    REP_RETVAL = 32,
    REP_FLAGS = 36,
    REP_VERSION = 40,
    REP_COUNT = 48,
    REP_LOCK_WAIT = 52, /* SEC_LOCK replies; zero in the others */
    REP_HELLO = 56, /* HELLO replies: the hello body, 56..103 */
    REP_NEXT_INODE = 56, /* SEC_LIST replies */
    REP_NEXT_STRIPE = 64,
};
VS_STATIC_ASSERT(OFF_BODY + HELLO_SIZE <= 112, "hello request fits the op area");
VS_STATIC_ASSERT(REP_HELLO + HELLO_SIZE <= 112, "hello reply fits the op area");
VS_STATIC_ASSERT(LIST_FLAGS + 4 <= 112, "list request fits the op area");
VS_STATIC_ASSERT(OFF_CRC + 4 == VS_NET_HDR_SIZE, "the CRC closes the header");

/* How each opcode's request body is laid out. */
enum body_kind {
    BODY_NONE,
    BODY_HELLO,
    BODY_RW,
    BODY_SEC,
    BODY_BATCH,
    BODY_LIST,
    BODY_LOCK,
    BODY_SYNC,
    BODY_PURGE,
};

struct op_info {
    const char *name;
    enum body_kind kind;
    bool req_payload;
};

static const struct op_info op_table[VS_NET_OP_LIMIT] = {
    [VS_NET_OP_HELLO] = {"HELLO", BODY_HELLO, false},
    [VS_NET_OP_PING] = {"PING", BODY_NONE, false},
    [VS_NET_OP_READ] = {"READ", BODY_RW, false},
    [VS_NET_OP_WRITE] = {"WRITE", BODY_RW, true},
    [VS_NET_OP_SYNC] = {"SYNC", BODY_SYNC, false},
    [VS_NET_OP_DELETE] = {"DELETE", BODY_RW, false},
    [VS_NET_OP_SEC_READ] = {"SEC_READ", BODY_SEC, false},
    [VS_NET_OP_SEC_WRITE] = {"SEC_WRITE", BODY_SEC, true},
    [VS_NET_OP_SEC_WRITE_STABLE] = {"SEC_WRITE_STABLE", BODY_SEC, true},
    [VS_NET_OP_SEC_SYNC] = {"SEC_SYNC", BODY_SYNC, false},
    [VS_NET_OP_SEC_STABILIZE] = {"SEC_STABILIZE", BODY_BATCH, true},
    [VS_NET_OP_SEC_ROLLBACK] = {"SEC_ROLLBACK", BODY_BATCH, true},
    [VS_NET_OP_SEC_DELETE] = {"SEC_DELETE", BODY_SEC, false},
    [VS_NET_OP_SEC_LIST] = {"SEC_LIST", BODY_LIST, false},
    [VS_NET_OP_SEC_READ_BITMAP] = {"SEC_READ_BITMAP", BODY_BATCH, true},
    [VS_NET_OP_SEC_LOCK] = {"SEC_LOCK", BODY_LOCK, false},
    [VS_NET_OP_SEC_PURGE] = {"SEC_PURGE", BODY_PURGE, false},
};

const char *vs_net_op_name(unsigned opcode)
{
    return opcode < VS_NET_OP_LIMIT ? op_table[opcode].name : NULL;
}

bool vs_net_op_valid(unsigned opcode)
{
    return vs_net_op_name(opcode) != NULL;
}

bool vs_net_op_has_req_payload(unsigned opcode)
{
    return vs_net_op_valid(opcode) && op_table[opcode].req_payload;
}

void vs_net_limits_default(struct vs_net_limits *lim)
{
    lim->data_max = VS_NET_DATA_MAX_DEFAULT;
    lim->meta_max = VS_NET_META_MAX_DEFAULT;
    lim->bitmap_max = VS_NET_BITMAP_MAX_DEFAULT;
}

const char *vs_net_cluster_id_str(const uint8_t id[VS_NET_CLUSTER_ID_SIZE], char *buf)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < VS_NET_CLUSTER_ID_SIZE; i++) {
        buf[2 * i] = hex[id[i] >> 4];
        buf[2 * i + 1] = hex[id[i] & 15];
    }
    buf[2 * VS_NET_CLUSTER_ID_SIZE] = 0;
    return buf;
}

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t size, const char *fmt,
                                                      ...)
{
    if (err && size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return VS_EPROTO;
}

/* ---- Field rules (design note 1) ----------------------------------------- */

static int check_hello(const struct vs_net_hello *h, char *err, size_t n)
{
    if (h->role < VS_NET_ROLE_CLIENT || h->role > VS_NET_ROLE_MON)
        return fail(err, n, "HELLO: unknown role %u", h->role);
    if (h->proto_min == 0 || h->proto_min > h->proto_max)
        return fail(err, n, "HELLO: bad protocol range %u..%u", h->proto_min, h->proto_max);
    return 0;
}

static int check_no_payload(const struct vs_net_hdr *h, char *err, size_t n)
{
    if (h->meta_len || h->data_len)
        return fail(err, n, "%s %s: unexpected payload (meta %u, data %u bytes)",
                    op_table[h->opcode].name, h->flags & VS_NET_F_REPLY ? "reply" : "request",
                    h->meta_len, h->data_len);
    return 0;
}

static int check_rw(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                    size_t n)
{
    const struct vs_net_rw *rw = &h->req.rw;
    const char *name = op_table[h->opcode].name;
    if (rw->flags)
        return fail(err, n, "%s: unknown flags 0x%x", name, rw->flags);
    if (rw->len > lim->data_max && h->opcode != VS_NET_OP_DELETE) /* DELETE moves no data */
        return fail(err, n, "%s: len %u exceeds the limit %u", name, rw->len, lim->data_max);
    if (rw->offset + rw->len < rw->offset)
        return fail(err, n, "%s: offset %" PRIu64 " + len %u overflows", name, rw->offset,
                    rw->len);
    if (h->opcode == VS_NET_OP_READ) {
        if (rw->version)
            return fail(err, n, "READ: version must be 0");
        return check_no_payload(h, err, n);
    }
    if (rw->len == 0)
        return fail(err, n, "%s: len 0", name);
    if (h->opcode == VS_NET_OP_DELETE)
        return check_no_payload(h, err, n);
    if (h->meta_len || h->data_len != rw->len)
        return fail(err, n, "WRITE: payload (meta %u, data %u) does not match len %u",
                    h->meta_len, h->data_len, rw->len);
    return 0;
}

static int check_selector(const char *name, uint8_t sel, uint64_t version, char *err, size_t n)
{
    if (sel >= VS_NET_SEL_COUNT)
        return fail(err, n, "%s: unknown version selector %u", name, sel);
    if ((sel == VS_NET_SEL_EXACT) != (version != 0))
        return fail(err, n, "%s: selector %u with version %" PRIu64, name, sel, version);
    return 0;
}

static int check_sec(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                     size_t n)
{
    const struct vs_net_sec *s = &h->req.sec;
    const char *name = op_table[h->opcode].name;
    if (s->flags & ~VS_NET_SECF_MASK)
        return fail(err, n, "%s: unknown flags 0x%x", name, s->flags);
    if (s->len > lim->data_max)
        return fail(err, n, "%s: len %u exceeds the limit %u", name, s->len, lim->data_max);
    if (s->offset + s->len < s->offset)
        return fail(err, n, "%s: offset %u + len %u overflows", name, s->offset, s->len);
    if (h->opcode == VS_NET_OP_SEC_READ) {
        int rc = check_selector(name, s->selector, s->version, err, n);
        return rc ? rc : check_no_payload(h, err, n);
    }
    if (s->selector)
        return fail(err, n, "%s: selector must be 0", name);
    if (s->version == 0)
        return fail(err, n, "%s: version 0", name);
    if (h->opcode == VS_NET_OP_SEC_DELETE) {
        if (s->offset || s->len)
            return fail(err, n, "SEC_DELETE: offset and len must be 0");
        return check_no_payload(h, err, n);
    }
    if (h->meta_len > lim->bitmap_max)
        return fail(err, n, "%s: bitmap of %u bytes exceeds the limit %u", name, h->meta_len,
                    lim->bitmap_max);
    if (h->data_len != s->len)
        return fail(err, n, "%s: data_len %u does not match len %u", name, h->data_len, s->len);
    return 0;
}

static int check_batch(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                       size_t n)
{
    const struct vs_net_batch *b = &h->req.batch;
    const char *name = op_table[h->opcode].name;
    if (b->flags & ~VS_NET_SECF_MASK)
        return fail(err, n, "%s: unknown flags 0x%x", name, b->flags);
    if (b->count == 0)
        return fail(err, n, "%s: count 0", name);
    if (h->data_len || (uint64_t)b->count * VS_NET_OBJVER_SIZE != h->meta_len)
        return fail(err, n, "%s: payload (meta %u, data %u) does not hold %u object versions",
                    name, h->meta_len, h->data_len, b->count);
    if (h->opcode != VS_NET_OP_SEC_READ_BITMAP) {
        if (b->bitmap_len || b->selector)
            return fail(err, n, "%s: bitmap_len and selector must be 0", name);
        return 0;
    }
    if (b->bitmap_len > lim->bitmap_max)
        return fail(err, n, "SEC_READ_BITMAP: bitmap_len %u exceeds the limit %u",
                    b->bitmap_len, lim->bitmap_max);
    if (b->selector >= VS_NET_SEL_COUNT)
        return fail(err, n, "SEC_READ_BITMAP: unknown version selector %u", b->selector);
    if ((uint64_t)b->count * (8 + b->bitmap_len) > lim->meta_max)
        return fail(err, n, "SEC_READ_BITMAP: a reply for %u objects would exceed %u bytes",
                    b->count, lim->meta_max);
    return 0;
}

static int check_list(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                      size_t n)
{
    const struct vs_net_list *l = &h->req.list;
    if (l->flags)
        return fail(err, n, "SEC_LIST: unknown flags 0x%x", l->flags);
    if (l->pool > VS_NET_POOL_MAX)
        return fail(err, n, "SEC_LIST: pool %u out of range", l->pool);
    if (l->pg_count == 0 || l->pg_num >= l->pg_count)
        return fail(err, n, "SEC_LIST: PG %u of %u", l->pg_num, l->pg_count);
    if (l->pg_stripe_size == 0)
        return fail(err, n, "SEC_LIST: pg_stripe_size 0");
    if (l->max_entries < VS_NET_LIST_MIN_ENTRIES ||
        (uint64_t)l->max_entries * VS_NET_LISTENT_SIZE > lim->meta_max)
        return fail(err, n, "SEC_LIST: max_entries %u out of range", l->max_entries);
    if (vs_net_inode_pool(l->start_inode) != l->pool)
        return fail(err, n, "SEC_LIST: start inode 0x%" PRIx64 " is not in pool %u",
                    l->start_inode, l->pool);
    return check_no_payload(h, err, n);
}

static int check_lock(const struct vs_net_hdr *h, char *err, size_t n)
{
    const struct vs_net_lock *l = &h->req.lock;
    if (l->flags != VS_NET_LOCKF_LOCK && l->flags != VS_NET_LOCKF_UNLOCK)
        return fail(err, n, "SEC_LOCK: flags 0x%x are not exactly LOCK or UNLOCK", l->flags);
    if (l->pool > VS_NET_POOL_MAX)
        return fail(err, n, "SEC_LOCK: pool %u out of range", l->pool);
    return check_no_payload(h, err, n);
}

static int check_purge(const struct vs_net_hdr *h, char *err, size_t n)
{
    const struct vs_net_purge *u = &h->req.purge;
    if (u->flags != VS_NET_PURGEF_WIPE && u->flags != VS_NET_PURGEF_TOMBS)
        return fail(err, n, "SEC_PURGE: flags 0x%x are not exactly WIPE or TOMBS", u->flags);
    if (u->pool > VS_NET_POOL_MAX)
        return fail(err, n, "SEC_PURGE: pool %u out of range", u->pool);
    if (u->pg_count == 0 || u->pg_num >= u->pg_count)
        return fail(err, n, "SEC_PURGE: PG %u of %u", u->pg_num, u->pg_count);
    if (u->pg_stripe_size == 0)
        return fail(err, n, "SEC_PURGE: pg_stripe_size 0");
    if ((u->flags == VS_NET_PURGEF_WIPE) != (u->below == 0))
        return fail(err, n, "SEC_PURGE: below %" PRIu64 " with flags 0x%x", u->below,
                    u->flags);
    return check_no_payload(h, err, n);
}

static int check_req(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                     size_t n)
{
    switch (op_table[h->opcode].kind) {
    case BODY_HELLO: {
        int rc = check_hello(&h->req.hello, err, n);
        return rc ? rc : check_no_payload(h, err, n);
    }
    case BODY_NONE:
        return check_no_payload(h, err, n);
    case BODY_SYNC:
        if (h->req.sync.flags)
            return fail(err, n, "%s: unknown flags 0x%x", op_table[h->opcode].name,
                        h->req.sync.flags);
        return check_no_payload(h, err, n);
    case BODY_RW:
        return check_rw(h, lim, err, n);
    case BODY_SEC:
        return check_sec(h, lim, err, n);
    case BODY_BATCH:
        return check_batch(h, lim, err, n);
    case BODY_LIST:
        return check_list(h, lim, err, n);
    case BODY_LOCK:
        return check_lock(h, err, n);
    case BODY_PURGE:
        return check_purge(h, err, n);
    }
    return fail(err, n, "opcode %u: no body rules", h->opcode);
}

static int check_rep_success(const struct vs_net_hdr *h, const struct vs_net_limits *lim,
                             char *err, size_t n)
{
    const struct vs_net_reply *r = &h->rep;
    const char *name = op_table[h->opcode].name;
    bool list = h->opcode == VS_NET_OP_SEC_LIST;
    if (r->flags & ~(list ? VS_NET_RF_LIST_MORE : 0u))
        return fail(err, n, "%s reply: unknown flags 0x%x", name, r->flags);
    if (r->count && !list && h->opcode != VS_NET_OP_SEC_READ_BITMAP)
        return fail(err, n, "%s reply: count must be 0", name);
    switch (h->opcode) {
    case VS_NET_OP_READ:
    case VS_NET_OP_SEC_READ:
        if (h->meta_len > lim->bitmap_max)
            return fail(err, n, "%s reply: bitmap of %u bytes exceeds the limit %u", name,
                        h->meta_len, lim->bitmap_max);
        return 0;
    case VS_NET_OP_SEC_LIST:
        if (h->data_len || (uint64_t)r->count * VS_NET_LISTENT_SIZE != h->meta_len)
            return fail(err, n, "SEC_LIST reply: payload (meta %u, data %u) does not hold %u "
                        "entries", h->meta_len, h->data_len, r->count);
        if (!(r->flags & VS_NET_RF_LIST_MORE) && (r->next_inode || r->next_stripe))
            return fail(err, n, "SEC_LIST reply: next key without the MORE flag");
        return r->version ? fail(err, n, "SEC_LIST reply: version must be 0") : 0;
    case VS_NET_OP_SEC_READ_BITMAP:
        if (h->data_len || r->version)
            return fail(err, n, "SEC_READ_BITMAP reply: data or version present");
        return 0;
    case VS_NET_OP_HELLO:
        return check_hello(&r->hello, err, n) ?: check_no_payload(h, err, n);
    case VS_NET_OP_PING:
    case VS_NET_OP_SYNC:
    case VS_NET_OP_SEC_SYNC:
    case VS_NET_OP_SEC_STABILIZE:
    case VS_NET_OP_SEC_ROLLBACK:
    case VS_NET_OP_SEC_LOCK:
    case VS_NET_OP_SEC_PURGE:
        if (r->lock_wait_ms > VS_NET_LOCK_WAIT_MAX_MS)
            return fail(err, n, "SEC_LOCK reply: lock_wait_ms %u exceeds %u", r->lock_wait_ms,
                        VS_NET_LOCK_WAIT_MAX_MS);
        if (r->version)
            return fail(err, n, "%s reply: version must be 0", name);
        return check_no_payload(h, err, n);
    default: /* WRITE, DELETE, SEC_WRITE, SEC_WRITE_STABLE, SEC_DELETE */
        return check_no_payload(h, err, n);
    }
}

static int check_rep(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                     size_t n)
{
    const struct vs_net_reply *r = &h->rep;
    if (r->retval > 0)
        return fail(err, n, "%s reply: positive retval %d", op_table[h->opcode].name,
                    r->retval);
    if (r->retval == 0)
        return check_rep_success(h, lim, err, n);
    /* An error reply carries no payload and no counts; a refused HELLO still
     * names the replier so the error message can say who refused. */
    if (r->flags || r->count || r->next_inode || r->next_stripe || r->lock_wait_ms)
        return fail(err, n, "%s error reply: flags or counts present",
                    op_table[h->opcode].name);
    if (h->opcode == VS_NET_OP_HELLO) {
        int rc = check_hello(&r->hello, err, n);
        if (rc)
            return rc;
    }
    return check_no_payload(h, err, n);
}

static int check_hdr(const struct vs_net_hdr *h, const struct vs_net_limits *lim, char *err,
                     size_t n)
{
    if (h->version < VS_NET_PROTO_MIN || h->version > VS_NET_PROTO_MAX)
        return fail(err, n, "unsupported protocol version %u (we speak %u..%u)", h->version,
                    VS_NET_PROTO_MIN, VS_NET_PROTO_MAX);
    if (!vs_net_op_valid(h->opcode))
        return fail(err, n, "unknown opcode %u", h->opcode);
    if (h->flags & ~VS_NET_F_REPLY)
        return fail(err, n, "unknown header flags 0x%x", h->flags);
    if (h->data_len > lim->data_max)
        return fail(err, n, "data_len %u exceeds the limit %u", h->data_len, lim->data_max);
    if (h->meta_len > lim->meta_max)
        return fail(err, n, "meta_len %u exceeds the limit %u", h->meta_len, lim->meta_max);
    if (h->flags & VS_NET_F_REPLY)
        return check_rep(h, lim, err, n);
    return check_req(h, lim, err, n);
}

/* ---- Byte layout ---------------------------------------------------------- */

static void put_hello(uint8_t *p, const struct vs_net_hello *h)
{
    memcpy(p + HELLO_CLUSTER, h->cluster_id, VS_NET_CLUSTER_ID_SIZE);
    vs_put_u16(p + HELLO_PROTO_MIN, h->proto_min);
    vs_put_u16(p + HELLO_PROTO_MAX, h->proto_max);
    vs_put_u8(p + HELLO_ROLE, h->role);
    vs_put_u64(p + HELLO_NODE, h->node_id);
    vs_put_u64(p + HELLO_FEATURES, h->features);
    vs_put_u32(p + HELLO_BLOCK, h->block_size);
    vs_put_u32(p + HELLO_BITMAP_GRAN, h->bitmap_granularity);
}

static void get_hello(const uint8_t *p, struct vs_net_hello *h)
{
    memcpy(h->cluster_id, p + HELLO_CLUSTER, VS_NET_CLUSTER_ID_SIZE);
    h->proto_min = vs_get_u16(p + HELLO_PROTO_MIN);
    h->proto_max = vs_get_u16(p + HELLO_PROTO_MAX);
    h->role = vs_get_u8(p + HELLO_ROLE);
    h->node_id = vs_get_u64(p + HELLO_NODE);
    h->features = vs_get_u64(p + HELLO_FEATURES);
    h->block_size = vs_get_u32(p + HELLO_BLOCK);
    h->bitmap_granularity = vs_get_u32(p + HELLO_BITMAP_GRAN);
}

static void put_req_body(uint8_t *p, const struct vs_net_hdr *h)
{
    switch (op_table[h->opcode].kind) {
    case BODY_NONE:
        break;
    case BODY_HELLO:
        put_hello(p + OFF_BODY, &h->req.hello);
        break;
    case BODY_RW:
        vs_put_u64(p + RW_INODE, h->req.rw.inode);
        vs_put_u64(p + RW_OFFSET, h->req.rw.offset);
        vs_put_u32(p + RW_LEN, h->req.rw.len);
        vs_put_u32(p + RW_FLAGS, h->req.rw.flags);
        vs_put_u64(p + RW_VERSION, h->req.rw.version);
        break;
    case BODY_SEC:
        vs_put_u64(p + SEC_INODE, h->req.sec.inode);
        vs_put_u64(p + SEC_STRIPE, h->req.sec.stripe);
        vs_put_u64(p + SEC_VERSION, h->req.sec.version);
        vs_put_u32(p + SEC_OFFSET, h->req.sec.offset);
        vs_put_u32(p + SEC_LEN, h->req.sec.len);
        vs_put_u32(p + SEC_FLAGS, h->req.sec.flags);
        vs_put_u8(p + SEC_SELECTOR, h->req.sec.selector);
        break;
    case BODY_BATCH:
        vs_put_u32(p + BATCH_COUNT, h->req.batch.count);
        vs_put_u32(p + BATCH_FLAGS, h->req.batch.flags);
        vs_put_u32(p + BATCH_BITMAP_LEN, h->req.batch.bitmap_len);
        vs_put_u8(p + BATCH_SELECTOR, h->req.batch.selector);
        break;
    case BODY_LIST:
        vs_put_u32(p + LIST_POOL, h->req.list.pool);
        vs_put_u32(p + LIST_PG_NUM, h->req.list.pg_num);
        vs_put_u32(p + LIST_PG_COUNT, h->req.list.pg_count);
        vs_put_u32(p + LIST_MAX_ENTRIES, h->req.list.max_entries);
        vs_put_u64(p + LIST_PG_STRIPE_SIZE, h->req.list.pg_stripe_size);
        vs_put_u64(p + LIST_START_INODE, h->req.list.start_inode);
        vs_put_u64(p + LIST_START_STRIPE, h->req.list.start_stripe);
        vs_put_u32(p + LIST_FLAGS, h->req.list.flags);
        break;
    case BODY_LOCK:
        vs_put_u32(p + LOCK_POOL, h->req.lock.pool);
        vs_put_u32(p + LOCK_PG_NUM, h->req.lock.pg_num);
        vs_put_u32(p + LOCK_FLAGS, h->req.lock.flags);
        vs_put_u64(p + LOCK_MAP_REVISION, h->req.lock.map_revision);
        break;
    case BODY_PURGE:
        vs_put_u32(p + PURGE_POOL, h->req.purge.pool);
        vs_put_u32(p + PURGE_PG_NUM, h->req.purge.pg_num);
        vs_put_u32(p + PURGE_PG_COUNT, h->req.purge.pg_count);
        vs_put_u32(p + PURGE_FLAGS, h->req.purge.flags);
        vs_put_u64(p + PURGE_PG_STRIPE_SIZE, h->req.purge.pg_stripe_size);
        vs_put_u64(p + PURGE_BELOW, h->req.purge.below);
        break;
    case BODY_SYNC:
        vs_put_u32(p + SYNC_FLAGS, h->req.sync.flags);
        break;
    }
}

static void get_req_body(const uint8_t *p, struct vs_net_hdr *h)
{
    switch (op_table[h->opcode].kind) {
    case BODY_NONE:
        break;
    case BODY_HELLO:
        get_hello(p + OFF_BODY, &h->req.hello);
        break;
    case BODY_RW:
        h->req.rw.inode = vs_get_u64(p + RW_INODE);
        h->req.rw.offset = vs_get_u64(p + RW_OFFSET);
        h->req.rw.len = vs_get_u32(p + RW_LEN);
        h->req.rw.flags = vs_get_u32(p + RW_FLAGS);
        h->req.rw.version = vs_get_u64(p + RW_VERSION);
        break;
    case BODY_SEC:
        h->req.sec.inode = vs_get_u64(p + SEC_INODE);
        h->req.sec.stripe = vs_get_u64(p + SEC_STRIPE);
        h->req.sec.version = vs_get_u64(p + SEC_VERSION);
        h->req.sec.offset = vs_get_u32(p + SEC_OFFSET);
        h->req.sec.len = vs_get_u32(p + SEC_LEN);
        h->req.sec.flags = vs_get_u32(p + SEC_FLAGS);
        h->req.sec.selector = vs_get_u8(p + SEC_SELECTOR);
        break;
    case BODY_BATCH:
        h->req.batch.count = vs_get_u32(p + BATCH_COUNT);
        h->req.batch.flags = vs_get_u32(p + BATCH_FLAGS);
        h->req.batch.bitmap_len = vs_get_u32(p + BATCH_BITMAP_LEN);
        h->req.batch.selector = vs_get_u8(p + BATCH_SELECTOR);
        break;
    case BODY_LIST:
        h->req.list.pool = vs_get_u32(p + LIST_POOL);
        h->req.list.pg_num = vs_get_u32(p + LIST_PG_NUM);
        h->req.list.pg_count = vs_get_u32(p + LIST_PG_COUNT);
        h->req.list.max_entries = vs_get_u32(p + LIST_MAX_ENTRIES);
        h->req.list.pg_stripe_size = vs_get_u64(p + LIST_PG_STRIPE_SIZE);
        h->req.list.start_inode = vs_get_u64(p + LIST_START_INODE);
        h->req.list.start_stripe = vs_get_u64(p + LIST_START_STRIPE);
        h->req.list.flags = vs_get_u32(p + LIST_FLAGS);
        break;
    case BODY_LOCK:
        h->req.lock.pool = vs_get_u32(p + LOCK_POOL);
        h->req.lock.pg_num = vs_get_u32(p + LOCK_PG_NUM);
        h->req.lock.flags = vs_get_u32(p + LOCK_FLAGS);
        h->req.lock.map_revision = vs_get_u64(p + LOCK_MAP_REVISION);
        break;
    case BODY_PURGE:
        h->req.purge.pool = vs_get_u32(p + PURGE_POOL);
        h->req.purge.pg_num = vs_get_u32(p + PURGE_PG_NUM);
        h->req.purge.pg_count = vs_get_u32(p + PURGE_PG_COUNT);
        h->req.purge.flags = vs_get_u32(p + PURGE_FLAGS);
        h->req.purge.pg_stripe_size = vs_get_u64(p + PURGE_PG_STRIPE_SIZE);
        h->req.purge.below = vs_get_u64(p + PURGE_BELOW);
        break;
    case BODY_SYNC:
        h->req.sync.flags = vs_get_u32(p + SYNC_FLAGS);
        break;
    }
}

static void put_rep_body(uint8_t *p, const struct vs_net_hdr *h)
{
    vs_put_u32(p + REP_RETVAL, (uint32_t)h->rep.retval);
    vs_put_u32(p + REP_FLAGS, h->rep.flags);
    vs_put_u64(p + REP_VERSION, h->rep.version);
    vs_put_u32(p + REP_COUNT, h->rep.count);
    if (h->opcode == VS_NET_OP_SEC_LOCK)
        vs_put_u32(p + REP_LOCK_WAIT, h->rep.lock_wait_ms);
    if (h->opcode == VS_NET_OP_HELLO)
        put_hello(p + REP_HELLO, &h->rep.hello);
    if (h->opcode == VS_NET_OP_SEC_LIST) {
        vs_put_u64(p + REP_NEXT_INODE, h->rep.next_inode);
        vs_put_u64(p + REP_NEXT_STRIPE, h->rep.next_stripe);
    }
}

static void get_rep_body(const uint8_t *p, struct vs_net_hdr *h)
{
    h->rep.retval = (int32_t)vs_get_u32(p + REP_RETVAL);
    h->rep.flags = vs_get_u32(p + REP_FLAGS);
    h->rep.version = vs_get_u64(p + REP_VERSION);
    h->rep.count = vs_get_u32(p + REP_COUNT);
    if (h->opcode == VS_NET_OP_SEC_LOCK)
        h->rep.lock_wait_ms = vs_get_u32(p + REP_LOCK_WAIT);
    if (h->opcode == VS_NET_OP_HELLO)
        get_hello(p + REP_HELLO, &h->rep.hello);
    if (h->opcode == VS_NET_OP_SEC_LIST) {
        h->rep.next_inode = vs_get_u64(p + REP_NEXT_INODE);
        h->rep.next_stripe = vs_get_u64(p + REP_NEXT_STRIPE);
    }
}

/* Writes bytes 0..OFF_CRC-1 of a header that passed check_hdr(). */
static void put_hdr(uint8_t *p, const struct vs_net_hdr *h)
{
    memset(p, 0, VS_NET_HDR_SIZE);
    vs_put_u32(p + OFF_MAGIC, VS_NET_MAGIC);
    vs_put_u16(p + OFF_VERSION, h->version);
    vs_put_u16(p + OFF_OPCODE, h->opcode);
    vs_put_u64(p + OFF_ID, h->id);
    vs_put_u32(p + OFF_FLAGS, h->flags);
    vs_put_u32(p + OFF_META_LEN, h->meta_len);
    vs_put_u32(p + OFF_DATA_LEN, h->data_len);
    if (h->flags & VS_NET_F_REPLY)
        put_rep_body(p, h);
    else
        put_req_body(p, h);
}

int vs_net_hdr_encode(const struct vs_net_hdr *h, const struct vs_net_limits *lim,
                      uint8_t out[VS_NET_HDR_SIZE], char *err, size_t err_size)
{
    int rc = check_hdr(h, lim, err, err_size);
    if (rc)
        return rc;
    put_hdr(out, h);
    vs_put_u32(out + OFF_CRC, vs_crc32c(out, OFF_CRC));
    return 0;
}

int vs_net_hdr_decode(const uint8_t in[VS_NET_HDR_SIZE], const struct vs_net_limits *lim,
                      struct vs_net_hdr *out, char *err, size_t err_size)
{
    uint32_t magic = vs_get_u32(in + OFF_MAGIC);
    if (magic != VS_NET_MAGIC)
        return fail(err, err_size, "bad magic 0x%08x", magic);
    uint32_t crc = vs_crc32c(in, OFF_CRC);
    if (crc != vs_get_u32(in + OFF_CRC))
        return fail(err, err_size, "header checksum mismatch (0x%08x, computed 0x%08x)",
                    vs_get_u32(in + OFF_CRC), crc);
    memset(out, 0, sizeof(*out));
    out->version = vs_get_u16(in + OFF_VERSION);
    out->opcode = vs_get_u16(in + OFF_OPCODE);
    out->id = vs_get_u64(in + OFF_ID);
    out->flags = vs_get_u32(in + OFF_FLAGS);
    out->meta_len = vs_get_u32(in + OFF_META_LEN);
    out->data_len = vs_get_u32(in + OFF_DATA_LEN);
    /* Version and opcode first: the body layout depends on them. */
    if (out->version < VS_NET_PROTO_MIN || out->version > VS_NET_PROTO_MAX ||
        !vs_net_op_valid(out->opcode))
        return check_hdr(out, lim, err, err_size);
    if (out->flags & VS_NET_F_REPLY)
        get_rep_body(in, out);
    else
        get_req_body(in, out);
    int rc = check_hdr(out, lim, err, err_size);
    if (rc)
        return rc;
    uint8_t again[VS_NET_HDR_SIZE]; /* design note 2 */
    put_hdr(again, out);
    if (memcmp(again, in, OFF_CRC) != 0) {
        unsigned at = 0;
        while (again[at] == in[at])
            at++;
        return fail(err, err_size, "%s %s: nonzero reserved or unused byte at offset %u",
                    op_table[out->opcode].name,
                    out->flags & VS_NET_F_REPLY ? "reply" : "request", at);
    }
    return 0;
}

int vs_net_reply_check(const struct vs_net_hdr *req, const struct vs_net_hdr *rep, char *err,
                       size_t n)
{
    if (rep->opcode != req->opcode)
        return fail(err, n, "%s reply to a %s request", vs_net_op_name(rep->opcode),
                    vs_net_op_name(req->opcode));
    if (rep->rep.retval < 0)
        return 0;
    switch (req->opcode) {
    case VS_NET_OP_READ:
    case VS_NET_OP_SEC_READ: {
        uint32_t len = req->opcode == VS_NET_OP_READ ? req->req.rw.len : req->req.sec.len;
        if (rep->data_len != len)
            return fail(err, n, "%s reply: %u data bytes for a %u-byte read",
                        vs_net_op_name(req->opcode), rep->data_len, len);
        return 0;
    }
    case VS_NET_OP_SEC_READ_BITMAP: {
        const struct vs_net_batch *b = &req->req.batch;
        if (rep->rep.count != b->count ||
            rep->meta_len != (uint64_t)b->count * (8 + b->bitmap_len))
            return fail(err, n, "SEC_READ_BITMAP reply: %u items in %u bytes for %u objects "
                        "with %u-byte bitmaps", rep->rep.count, rep->meta_len, b->count,
                        b->bitmap_len);
        return 0;
    }
    case VS_NET_OP_SEC_LIST: {
        const struct vs_net_list *l = &req->req.list;
        if (rep->rep.count > l->max_entries)
            return fail(err, n, "SEC_LIST reply: %u entries, asked for at most %u",
                        rep->rep.count, l->max_entries);
        if ((rep->rep.flags & VS_NET_RF_LIST_MORE) &&
            vs_net_inode_pool(rep->rep.next_inode) != l->pool)
            return fail(err, n, "SEC_LIST reply: next inode 0x%" PRIx64 " is not in pool %u",
                        rep->rep.next_inode, l->pool);
        return 0;
    }
    default:
        return 0;
    }
}

int vs_net_hello_check(const struct vs_net_hello *ours, const struct vs_net_hello *theirs,
                       uint16_t *version, char *err, size_t n)
{
    char a[2 * VS_NET_CLUSTER_ID_SIZE + 1], b[2 * VS_NET_CLUSTER_ID_SIZE + 1];
    if (memcmp(ours->cluster_id, theirs->cluster_id, VS_NET_CLUSTER_ID_SIZE) != 0) {
        if (err && n)
            snprintf(err, n, "peer belongs to cluster %s, we belong to cluster %s",
                     vs_net_cluster_id_str(theirs->cluster_id, a),
                     vs_net_cluster_id_str(ours->cluster_id, b));
        return VS_EWRONGCLUSTER;
    }
    uint16_t lo = VS_MAX(ours->proto_min, theirs->proto_min);
    uint16_t hi = VS_MIN(ours->proto_max, theirs->proto_max);
    if (lo > hi) {
        if (err && n)
            snprintf(err, n, "peer speaks protocol versions %u..%u, we speak %u..%u",
                     theirs->proto_min, theirs->proto_max, ours->proto_min, ours->proto_max);
        return -EPROTONOSUPPORT;
    }
    *version = hi;
    return 0;
}

/* ---- Payload items -------------------------------------------------------- */

void vs_net_objver_put(uint8_t *p, const struct vs_net_objver *v)
{
    vs_put_u64(p, v->inode);
    vs_put_u64(p + 8, v->stripe);
    vs_put_u64(p + 16, v->version);
}

void vs_net_objver_get(const uint8_t *p, struct vs_net_objver *v)
{
    v->inode = vs_get_u64(p);
    v->stripe = vs_get_u64(p + 8);
    v->version = vs_get_u64(p + 16);
}

void vs_net_listent_put(uint8_t *p, const struct vs_net_listent *e)
{
    VS_ASSERT((e->flags & ~VS_NET_LISTENT_MASK) == 0);
    vs_put_u64(p, e->inode);
    vs_put_u64(p + 8, e->stripe);
    vs_put_u64(p + 16, e->version);
    vs_put_u8(p + 24, e->flags);
}

int vs_net_listent_get(const uint8_t *p, struct vs_net_listent *e)
{
    e->inode = vs_get_u64(p);
    e->stripe = vs_get_u64(p + 8);
    e->version = vs_get_u64(p + 16);
    e->flags = vs_get_u8(p + 24);
    return (e->flags & ~VS_NET_LISTENT_MASK) ? VS_EPROTO : 0;
}
