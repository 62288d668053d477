/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_proto_test -- the wire codec: every opcode's request and reply round
 * trips, the byte offsets of docs/protocol.md, and every validation rule
 * (each malformed header is built with a correct CRC, so the rule itself
 * and not the checksum is what refuses it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_proto.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_err.h"

static struct vs_net_limits lim;

static const uint8_t cluster_a[16] = {0xc1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t cluster_b[16] = {0xb0, 0xb1};

static void hello_fill(struct vs_net_hello *h, const uint8_t *cluster, uint8_t role)
{
    memcpy(h->cluster_id, cluster, 16);
    h->proto_min = 1;
    h->proto_max = 1;
    h->role = role;
    h->node_id = role == VS_NET_ROLE_OSD ? 7 : 0;
    h->features = 0x5;
    h->block_size = 131072;
    h->bitmap_granularity = 4096;
}

/* A valid request of each opcode, with distinctive field values. */
static void make_req(uint16_t opcode, struct vs_net_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->version = 1;
    h->opcode = opcode;
    h->id = 0x1122334455667788ull;
    switch (opcode) {
    case VS_NET_OP_HELLO:
        hello_fill(&h->req.hello, cluster_a, VS_NET_ROLE_OSD);
        break;
    case VS_NET_OP_READ:
        h->req.rw = (struct vs_net_rw){.inode = 0x0001000000000abcull, .offset = 1 << 20,
                                       .len = 4096};
        break;
    case VS_NET_OP_WRITE:
        h->req.rw = (struct vs_net_rw){.inode = 0x0001000000000abcull, .offset = 8192,
                                       .len = 4096, .version = 9};
        h->data_len = 4096;
        break;
    case VS_NET_OP_DELETE:
        h->req.rw = (struct vs_net_rw){.inode = 0x0002000000000001ull, .offset = 0,
                                       .len = 131072};
        break;
    case VS_NET_OP_SEC_READ:
        h->req.sec = (struct vs_net_sec){.inode = 3, .stripe = 131072, .offset = 512, .len = 1024,
                                         .selector = VS_NET_SEL_LATEST_STABLE};
        break;
    case VS_NET_OP_SEC_WRITE:
    case VS_NET_OP_SEC_WRITE_STABLE:
        h->req.sec = (struct vs_net_sec){.inode = 3, .stripe = 262144, .version = 0x10001,
                                         .offset = 4096, .len = 8192,
                                         .flags = VS_NET_SECF_RECOVERY};
        h->meta_len = 4;
        h->data_len = 8192;
        break;
    case VS_NET_OP_SEC_DELETE:
        h->req.sec = (struct vs_net_sec){.inode = 3, .stripe = 0, .version = 77};
        break;
    case VS_NET_OP_SEC_STABILIZE:
    case VS_NET_OP_SEC_ROLLBACK:
        h->req.batch = (struct vs_net_batch){.count = 3};
        h->meta_len = 3 * VS_NET_OBJVER_SIZE;
        break;
    case VS_NET_OP_SEC_READ_BITMAP:
        h->req.batch = (struct vs_net_batch){.count = 2, .bitmap_len = 4,
                                             .selector = VS_NET_SEL_EXACT};
        h->meta_len = 2 * VS_NET_OBJVER_SIZE;
        break;
    case VS_NET_OP_SEC_LIST:
        h->req.list = (struct vs_net_list){.pool = 2, .pg_num = 5, .pg_count = 64,
                                           .max_entries = 1000, .pg_stripe_size = 1 << 22,
                                           .start_inode = 2ull << 48, .start_stripe = 0};
        break;
    case VS_NET_OP_SEC_LOCK:
        h->req.lock = (struct vs_net_lock){.pool = 3, .pg_num = 17, .flags = VS_NET_LOCKF_LOCK,
                                           .map_revision = 123456};
        break;
    case VS_NET_OP_SEC_PURGE:
        h->req.purge = (struct vs_net_purge){.pool = 3, .pg_num = 17, .pg_count = 32,
                                             .flags = VS_NET_PURGEF_TOMBS,
                                             .pg_stripe_size = 1 << 17, .below = 5ull << 16};
        break;
    default: /* PING, SYNC, SEC_SYNC: no fields */
        break;
    }
}

/* A valid success reply to make_req(opcode). */
static void make_rep(uint16_t opcode, struct vs_net_hdr *h)
{
    memset(h, 0, sizeof(*h));
    h->version = 1;
    h->opcode = opcode;
    h->flags = VS_NET_F_REPLY;
    h->id = 0x1122334455667788ull;
    switch (opcode) {
    case VS_NET_OP_HELLO:
        hello_fill(&h->rep.hello, cluster_a, VS_NET_ROLE_OSD);
        break;
    case VS_NET_OP_READ:
        h->rep.version = 42;
        h->meta_len = 4;
        h->data_len = 4096;
        break;
    case VS_NET_OP_SEC_READ:
        h->rep.version = 42;
        h->meta_len = 4;
        h->data_len = 1024;
        break;
    case VS_NET_OP_WRITE:
    case VS_NET_OP_DELETE:
    case VS_NET_OP_SEC_WRITE:
    case VS_NET_OP_SEC_WRITE_STABLE:
    case VS_NET_OP_SEC_DELETE:
        h->rep.version = 0x10001;
        break;
    case VS_NET_OP_SEC_READ_BITMAP:
        h->rep.count = 2;
        h->meta_len = 2 * (8 + 4);
        break;
    case VS_NET_OP_SEC_LIST:
        h->rep.count = 10;
        h->rep.flags = VS_NET_RF_LIST_MORE;
        h->rep.next_inode = (2ull << 48) | 5;
        h->rep.next_stripe = 1 << 22;
        h->meta_len = 10 * VS_NET_LISTENT_SIZE;
        break;
    case VS_NET_OP_SEC_LOCK:
        h->rep.lock_wait_ms = VS_NET_LOCK_WAIT_MAX_MS; /* the largest valid wait */
        break;
    default:
        break;
    }
}

static const uint16_t all_ops[] = {
    VS_NET_OP_HELLO,          VS_NET_OP_PING,          VS_NET_OP_READ,
    VS_NET_OP_WRITE,          VS_NET_OP_SYNC,          VS_NET_OP_DELETE,
    VS_NET_OP_SEC_READ,       VS_NET_OP_SEC_WRITE,     VS_NET_OP_SEC_WRITE_STABLE,
    VS_NET_OP_SEC_SYNC,       VS_NET_OP_SEC_STABILIZE, VS_NET_OP_SEC_ROLLBACK,
    VS_NET_OP_SEC_DELETE,     VS_NET_OP_SEC_LIST,      VS_NET_OP_SEC_READ_BITMAP,
    VS_NET_OP_SEC_LOCK,       VS_NET_OP_SEC_PURGE,
};
#define NOPS (sizeof(all_ops) / sizeof(all_ops[0]))

/* encode -> decode -> equal structs -> encode again -> equal bytes. */
static void round_trip(const struct vs_net_hdr *h)
{
    uint8_t *b1 = malloc(VS_NET_HDR_SIZE), *b2 = malloc(VS_NET_HDR_SIZE);
    struct vs_net_hdr d;
    char err[200] = "";
    int rc = vs_net_hdr_encode(h, &lim, b1, err, sizeof(err));
    if (rc)
        fail_msg("encode %s: %s", vs_net_op_name(h->opcode), err);
    rc = vs_net_hdr_decode(b1, &lim, &d, err, sizeof(err));
    if (rc)
        fail_msg("decode %s: %s", vs_net_op_name(h->opcode), err);
    assert_memory_equal(h, &d, sizeof(d));
    assert_int_equal(vs_net_hdr_encode(&d, &lim, b2, NULL, 0), 0);
    assert_memory_equal(b1, b2, VS_NET_HDR_SIZE);
    free(b1);
    free(b2);
}

static void test_round_trip_every_opcode(void **state)
{
    (void)state;
    for (unsigned i = 0; i < NOPS; i++) {
        struct vs_net_hdr req, rep;
        make_req(all_ops[i], &req);
        make_rep(all_ops[i], &rep);
        round_trip(&req);
        round_trip(&rep);
        assert_int_equal(vs_net_reply_check(&req, &rep, NULL, 0), 0);
        /* An error reply to every opcode. */
        struct vs_net_hdr er;
        memset(&er, 0, sizeof(er));
        er.version = 1;
        er.opcode = all_ops[i];
        er.flags = VS_NET_F_REPLY;
        er.id = 5;
        er.rep.retval = VS_ENOTPRIMARY;
        er.rep.version = 3;
        if (all_ops[i] == VS_NET_OP_HELLO)
            hello_fill(&er.rep.hello, cluster_b, VS_NET_ROLE_OSD);
        round_trip(&er);
        assert_int_equal(vs_net_reply_check(&req, &er, NULL, 0), 0);
    }
}

/* Field positions as docs/protocol.md gives them. */
static void test_byte_layout(void **state)
{
    (void)state;
    uint8_t b[VS_NET_HDR_SIZE];
    struct vs_net_hdr h;
    make_req(VS_NET_OP_SEC_WRITE_STABLE, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_memory_equal(b, "VSN1", 4);
    assert_int_equal(vs_get_u16(b + 4), 1);
    assert_int_equal(vs_get_u16(b + 6), VS_NET_OP_SEC_WRITE_STABLE);
    assert_int_equal(b[6], 34);
    assert_true(vs_get_u64(b + 8) == 0x1122334455667788ull);
    assert_int_equal(b[8], 0x88);
    assert_int_equal(vs_get_u32(b + 16), 0);
    assert_int_equal(vs_get_u32(b + 20), 4);
    assert_int_equal(vs_get_u32(b + 24), 8192);
    assert_true(vs_get_u64(b + 32) == 3);
    assert_true(vs_get_u64(b + 40) == 262144);
    assert_true(vs_get_u64(b + 48) == 0x10001);
    assert_int_equal(vs_get_u32(b + 56), 4096);
    assert_int_equal(vs_get_u32(b + 60), 8192);
    assert_int_equal(vs_get_u32(b + 64), VS_NET_SECF_RECOVERY);
    for (int i = 68; i < 124; i++)
        assert_int_equal(b[i], 0);
    assert_int_equal(vs_get_u32(b + 124), vs_crc32c(b, 124));

    make_rep(VS_NET_OP_SEC_LIST, &h);
    h.rep.retval = 0;
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_int_equal(vs_get_u32(b + 16), VS_NET_F_REPLY);
    assert_int_equal(vs_get_u32(b + 32), 0);
    assert_int_equal(vs_get_u32(b + 36), VS_NET_RF_LIST_MORE);
    assert_int_equal(vs_get_u32(b + 48), 10);
    assert_true(vs_get_u64(b + 56) == ((2ull << 48) | 5));
    assert_true(vs_get_u64(b + 64) == 1 << 22);

    make_rep(VS_NET_OP_HELLO, &h);
    h.rep.retval = VS_EWRONGCLUSTER;
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_int_equal((int32_t)vs_get_u32(b + 32), VS_EWRONGCLUSTER);
    assert_memory_equal(b + 56, cluster_a, 16);
    assert_int_equal(vs_get_u16(b + 72), 1);
    assert_int_equal(b[76], VS_NET_ROLE_OSD);
    assert_true(vs_get_u64(b + 80) == 7);
    assert_int_equal(vs_get_u32(b + 96), 131072);

    make_req(VS_NET_OP_SEC_LOCK, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_int_equal(vs_get_u16(b + 6), 41);
    assert_int_equal(vs_get_u32(b + 32), 3);
    assert_int_equal(vs_get_u32(b + 36), 17);
    assert_int_equal(vs_get_u32(b + 40), VS_NET_LOCKF_LOCK);
    assert_true(vs_get_u64(b + 48) == 123456);

    make_req(VS_NET_OP_SEC_LIST, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_int_equal(vs_get_u32(b + 32), 2);
    assert_int_equal(vs_get_u32(b + 36), 5);
    assert_int_equal(vs_get_u32(b + 40), 64);
    assert_int_equal(vs_get_u32(b + 44), 1000);
    assert_true(vs_get_u64(b + 48) == 1 << 22);
    assert_true(vs_get_u64(b + 56) == 2ull << 48);
}

/* ---- Malformed headers ---------------------------------------------------- */

static void fix_crc(uint8_t *b)
{
    vs_put_u32(b + 124, vs_crc32c(b, 124));
}

/* Decodes b and expects VS_EPROTO with `needle` in the message. */
static void expect_bad(const uint8_t *b, const char *needle)
{
    struct vs_net_hdr d;
    char err[200] = "";
    uint8_t *copy = malloc(VS_NET_HDR_SIZE); /* exact size: ASan catches overreads */
    memcpy(copy, b, VS_NET_HDR_SIZE);
    int rc = vs_net_hdr_decode(copy, &lim, &d, err, sizeof(err));
    free(copy);
    if (rc != VS_EPROTO)
        fail_msg("expected a refusal containing '%s', got rc %d", needle, rc);
    if (!strstr(err, needle))
        fail_msg("message '%s' lacks '%s'", err, needle);
}

/* Encodes a valid frame of opcode, patches a u8/u32/u64 at off, fixes the CRC. */
static void patched(uint16_t opcode, bool reply, unsigned off, int width, uint64_t v,
                    uint8_t *b)
{
    struct vs_net_hdr h;
    if (reply)
        make_rep(opcode, &h);
    else
        make_req(opcode, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    if (width == 1)
        b[off] = (uint8_t)v;
    else if (width == 2)
        vs_put_u16(b + off, (uint16_t)v);
    else if (width == 4)
        vs_put_u32(b + off, (uint32_t)v);
    else
        vs_put_u64(b + off, v);
    fix_crc(b);
}

struct bad_case {
    uint16_t opcode;
    bool reply;
    unsigned off;
    int width;
    uint64_t value;
    const char *needle;
};

static const struct bad_case bad_cases[] = {
    {VS_NET_OP_PING, false, 4, 2, 0, "unsupported protocol version 0"},
    {VS_NET_OP_PING, false, 4, 2, 2, "unsupported protocol version 2"},
    {VS_NET_OP_PING, false, 6, 2, 3, "unknown opcode 3"},
    {VS_NET_OP_PING, false, 6, 2, 64, "unknown opcode 64"},
    {VS_NET_OP_PING, false, 6, 2, 0xffff, "unknown opcode 65535"},
    {VS_NET_OP_PING, false, 16, 4, 2, "unknown header flags"},
    {VS_NET_OP_PING, false, 24, 4, 0xffffffffu, "data_len 4294967295 exceeds"},
    {VS_NET_OP_PING, false, 20, 4, (64u << 20) + 1, "meta_len 67108865 exceeds"},
    {VS_NET_OP_PING, false, 28, 1, 1, "nonzero reserved or unused byte at offset 28"},
    {VS_NET_OP_PING, false, 40, 1, 1, "nonzero reserved or unused byte at offset 40"},
    {VS_NET_OP_PING, false, 120, 1, 9, "nonzero reserved or unused byte at offset 120"},
    {VS_NET_OP_PING, false, 24, 4, 10, "PING request: unexpected payload"},
    {VS_NET_OP_HELLO, false, 52, 1, 9, "HELLO: unknown role 9"},
    {VS_NET_OP_HELLO, false, 48, 2, 0, "HELLO: bad protocol range 0..1"},
    {VS_NET_OP_HELLO, false, 48, 2, 3, "HELLO: bad protocol range 3..1"},
    {VS_NET_OP_HELLO, false, 53, 1, 1, "offset 53"},
    {VS_NET_OP_READ, false, 52, 4, 1, "READ: unknown flags"},
    {VS_NET_OP_READ, false, 56, 8, 1, "READ: version must be 0"},
    {VS_NET_OP_READ, false, 48, 4, (64u << 20) + 1, "READ: len 67108865 exceeds"},
    {VS_NET_OP_READ, false, 40, 8, UINT64_MAX - 10, "overflows"},
    {VS_NET_OP_READ, false, 24, 4, 4096, "READ request: unexpected payload"},
    {VS_NET_OP_WRITE, false, 24, 4, 4095, "does not match len 4096"},
    {VS_NET_OP_WRITE, false, 20, 4, 8, "does not match len 4096"},
    {VS_NET_OP_WRITE, false, 48, 4, 0, "WRITE: len 0"},
    {VS_NET_OP_DELETE, false, 48, 4, 0, "DELETE: len 0"},
    {VS_NET_OP_SYNC, false, 32, 4, 1, "SYNC: unknown flags"},
    {VS_NET_OP_SEC_SYNC, false, 32, 4, 2, "SEC_SYNC: unknown flags"},
    {VS_NET_OP_SEC_READ, false, 68, 1, 3, "unknown version selector 3"},
    {VS_NET_OP_SEC_READ, false, 48, 8, 5, "selector 1 with version 5"},
    {VS_NET_OP_SEC_READ, false, 64, 4, 2, "SEC_READ: unknown flags"},
    {VS_NET_OP_SEC_READ, false, 56, 4, 0xfffffff0u, "overflows"},
    {VS_NET_OP_SEC_WRITE, false, 48, 8, 0, "SEC_WRITE: version 0"},
    {VS_NET_OP_SEC_WRITE, false, 68, 1, 1, "SEC_WRITE: selector must be 0"},
    {VS_NET_OP_SEC_WRITE, false, 20, 4, 4097, "bitmap of 4097 bytes exceeds"},
    {VS_NET_OP_SEC_WRITE_STABLE, false, 24, 4, 1, "data_len 1 does not match len 8192"},
    {VS_NET_OP_SEC_DELETE, false, 60, 4, 1, "offset and len must be 0"},
    {VS_NET_OP_SEC_DELETE, false, 48, 8, 0, "SEC_DELETE: version 0"},
    {VS_NET_OP_SEC_STABILIZE, false, 32, 4, 0, "SEC_STABILIZE: count 0"},
    {VS_NET_OP_SEC_STABILIZE, false, 32, 4, 4, "does not hold 4 object versions"},
    {VS_NET_OP_SEC_ROLLBACK, false, 40, 4, 4, "bitmap_len and selector must be 0"},
    {VS_NET_OP_SEC_ROLLBACK, false, 36, 4, 8, "SEC_ROLLBACK: unknown flags"},
    {VS_NET_OP_SEC_READ_BITMAP, false, 40, 4, 4097, "bitmap_len 4097 exceeds"},
    {VS_NET_OP_SEC_READ_BITMAP, false, 44, 1, 3, "unknown version selector 3"},
    {VS_NET_OP_SEC_LIST, false, 32, 4, 0x10000, "pool 65536 out of range"},
    {VS_NET_OP_SEC_LIST, false, 36, 4, 64, "PG 64 of 64"},
    {VS_NET_OP_SEC_LIST, false, 40, 4, 0, "PG 5 of 0"},
    {VS_NET_OP_SEC_LIST, false, 48, 8, 0, "pg_stripe_size 0"},
    {VS_NET_OP_SEC_LIST, false, 44, 4, 63, "max_entries 63 out of range"},
    {VS_NET_OP_SEC_LIST, false, 56, 8, 3ull << 48, "is not in pool 2"},
    {VS_NET_OP_SEC_LIST, false, 72, 4, 1, "SEC_LIST: unknown flags"},
    {VS_NET_OP_SEC_LOCK, false, 40, 4, 3, "not exactly LOCK or UNLOCK"},
    {VS_NET_OP_SEC_LOCK, false, 40, 4, 0, "not exactly LOCK or UNLOCK"},
    {VS_NET_OP_SEC_LOCK, false, 32, 4, 0x10000, "SEC_LOCK: pool 65536 out of range"},
    {VS_NET_OP_SEC_LOCK, false, 44, 1, 1, "offset 44"},
    {VS_NET_OP_SEC_LOCK, true, 40, 8, 1, "SEC_LOCK reply: version must be 0"},
    {VS_NET_OP_SEC_LOCK, true, 52, 4, 600001, "lock_wait_ms 600001 exceeds 600000"},
    {VS_NET_OP_PING, true, 52, 4, 1, "offset 52"}, /* lock_wait_ms is SEC_LOCK's only */
    {VS_NET_OP_WRITE, true, 52, 4, 1, "offset 52"},
    {VS_NET_OP_SEC_PURGE, false, 44, 4, 3, "not exactly WIPE or TOMBS"},
    {VS_NET_OP_SEC_PURGE, false, 44, 4, 0, "not exactly WIPE or TOMBS"},
    {VS_NET_OP_SEC_PURGE, false, 44, 4, VS_NET_PURGEF_WIPE, "below 327680 with flags 0x1"},
    {VS_NET_OP_SEC_PURGE, false, 56, 8, 0, "below 0 with flags 0x2"},
    {VS_NET_OP_SEC_PURGE, false, 32, 4, 0x10000, "SEC_PURGE: pool 65536 out of range"},
    {VS_NET_OP_SEC_PURGE, false, 36, 4, 32, "SEC_PURGE: PG 32 of 32"},
    {VS_NET_OP_SEC_PURGE, false, 40, 4, 0, "SEC_PURGE: PG 17 of 0"},
    {VS_NET_OP_SEC_PURGE, false, 48, 8, 0, "SEC_PURGE: pg_stripe_size 0"},
    {VS_NET_OP_SEC_PURGE, false, 64, 1, 1, "offset 64"},
    {VS_NET_OP_SEC_PURGE, false, 24, 4, 8, "SEC_PURGE request: unexpected payload"},
    {VS_NET_OP_SEC_PURGE, true, 40, 8, 1, "SEC_PURGE reply: version must be 0"},
    {VS_NET_OP_SEC_PURGE, true, 52, 4, 1, "offset 52"},
    {VS_NET_OP_PING, true, 32, 4, 1, "positive retval 1"},
    {VS_NET_OP_PING, true, 40, 8, 1, "PING reply: version must be 0"},
    {VS_NET_OP_SYNC, true, 48, 4, 1, "SYNC reply: count must be 0"},
    {VS_NET_OP_WRITE, true, 36, 4, 1, "WRITE reply: unknown flags"},
    {VS_NET_OP_WRITE, true, 24, 4, 1, "WRITE reply: unexpected payload"},
    {VS_NET_OP_READ, true, 20, 4, 4097, "READ reply: bitmap of 4097 bytes"},
    {VS_NET_OP_SEC_LIST, true, 48, 4, 11, "does not hold 11 entries"},
    {VS_NET_OP_SEC_LIST, true, 36, 4, 0, "next key without the MORE flag"},
    {VS_NET_OP_SEC_LIST, true, 40, 8, 1, "SEC_LIST reply: version must be 0"},
    {VS_NET_OP_SEC_READ_BITMAP, true, 24, 4, 1, "data or version present"},
    {VS_NET_OP_HELLO, true, 76, 1, 0, "HELLO: unknown role 0"},
    {VS_NET_OP_HELLO, true, 110, 1, 1, "offset 110"},
};

static void test_every_rule_refuses(void **state)
{
    (void)state;
    uint8_t b[VS_NET_HDR_SIZE];
    for (unsigned i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        patched(c->opcode, c->reply, c->off, c->width, c->value, b);
        expect_bad(b, c->needle);
    }
}

static void test_magic_and_crc(void **state)
{
    (void)state;
    uint8_t b[VS_NET_HDR_SIZE];
    struct vs_net_hdr h;
    make_req(VS_NET_OP_WRITE, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    b[0] ^= 1;
    expect_bad(b, "bad magic");
    b[0] ^= 1;
    for (int i = 4; i < VS_NET_HDR_SIZE; i += 7) { /* any flipped bit: checksum */
        b[i] ^= 0x10;
        expect_bad(b, "checksum mismatch");
        b[i] ^= 0x10;
    }
    /* Error replies carry no payload and no counts. */
    make_rep(VS_NET_OP_READ, &h);
    h.rep.retval = -EIO;
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), VS_EPROTO);
    h.meta_len = h.data_len = 0;
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    make_rep(VS_NET_OP_SEC_LIST, &h);
    h.rep.retval = -EIO;
    h.meta_len = 0;
    char err[200];
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "flags or counts present"));
}

static void test_limits_are_configurable(void **state)
{
    (void)state;
    struct vs_net_limits small = {.data_max = 4096, .meta_max = 1000, .bitmap_max = 8};
    struct vs_net_hdr h, d;
    uint8_t b[VS_NET_HDR_SIZE];
    make_req(VS_NET_OP_WRITE, &h);
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, NULL, 0), 0);
    h.req.rw.len = h.data_len = 4097;
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, NULL, 0), VS_EPROTO);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
    assert_int_equal(vs_net_hdr_decode(b, &small, &d, NULL, 0), VS_EPROTO);
    small.bitmap_max = 64;
    make_req(VS_NET_OP_SEC_READ_BITMAP, &h);
    h.req.batch.count = 30; /* a 720-byte request: within meta_max */
    h.req.batch.bitmap_len = 16;
    h.meta_len = 30 * VS_NET_OBJVER_SIZE;
    char err[200];
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, NULL, 0), 0); /* reply: 720 bytes */
    h.req.batch.bitmap_len = 64; /* reply: 30 * 72 = 2160 bytes > meta_max */
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "a reply for 30 objects would exceed 1000 bytes"));
    make_req(VS_NET_OP_SEC_LIST, &h);
    h.req.list.max_entries = 40; /* 40 * 25 = 1000 fits, but below the minimum */
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, NULL, 0), VS_EPROTO);
    h.req.list.max_entries = 64; /* the minimum, 1600 bytes: over the limit */
    assert_int_equal(vs_net_hdr_encode(&h, &small, b, NULL, 0), VS_EPROTO);
    assert_int_equal(vs_net_hdr_encode(&h, &lim, b, NULL, 0), 0);
}

static void test_reply_matches_request(void **state)
{
    (void)state;
    struct vs_net_hdr req, rep;
    char err[200];
    make_req(VS_NET_OP_READ, &req);
    make_rep(VS_NET_OP_READ, &rep);
    rep.data_len = 4095;
    assert_int_equal(vs_net_reply_check(&req, &rep, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "4095 data bytes for a 4096-byte read"));
    make_rep(VS_NET_OP_WRITE, &rep);
    assert_int_equal(vs_net_reply_check(&req, &rep, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "WRITE reply to a READ request"));
    make_req(VS_NET_OP_SEC_READ, &req);
    make_rep(VS_NET_OP_SEC_READ, &rep);
    assert_int_equal(vs_net_reply_check(&req, &rep, NULL, 0), 0);
    rep.data_len = 0;
    assert_int_equal(vs_net_reply_check(&req, &rep, NULL, 0), VS_EPROTO);
    make_req(VS_NET_OP_SEC_READ_BITMAP, &req);
    make_rep(VS_NET_OP_SEC_READ_BITMAP, &rep);
    rep.rep.count = 1;
    rep.meta_len = 12;
    assert_int_equal(vs_net_reply_check(&req, &rep, NULL, 0), VS_EPROTO);
    make_rep(VS_NET_OP_SEC_READ_BITMAP, &rep);
    rep.meta_len = 2 * 8;
    assert_int_equal(vs_net_reply_check(&req, &rep, NULL, 0), VS_EPROTO);
    make_req(VS_NET_OP_SEC_LIST, &req);
    make_rep(VS_NET_OP_SEC_LIST, &rep);
    rep.rep.count = 1001;
    rep.meta_len = 1001 * VS_NET_LISTENT_SIZE;
    assert_int_equal(vs_net_reply_check(&req, &rep, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "1001 entries, asked for at most 1000"));
    make_rep(VS_NET_OP_SEC_LIST, &rep);
    rep.rep.next_inode = 3ull << 48;
    assert_int_equal(vs_net_reply_check(&req, &rep, err, sizeof(err)), VS_EPROTO);
    assert_non_null(strstr(err, "is not in pool 2"));
}

static void test_hello_check(void **state)
{
    (void)state;
    struct vs_net_hello a, b;
    uint16_t v = 0;
    char err[200];
    hello_fill(&a, cluster_a, VS_NET_ROLE_OSD);
    hello_fill(&b, cluster_a, VS_NET_ROLE_CLIENT);
    assert_int_equal(vs_net_hello_check(&a, &b, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 1);
    b.proto_min = 1;
    b.proto_max = 5;
    a.proto_max = 3;
    assert_int_equal(vs_net_hello_check(&a, &b, &v, err, sizeof(err)), 0);
    assert_int_equal(v, 3);
    b.proto_min = 4;
    assert_int_equal(vs_net_hello_check(&a, &b, &v, err, sizeof(err)), -EPROTONOSUPPORT);
    assert_string_equal(err, "peer speaks protocol versions 4..5, we speak 1..3");
    hello_fill(&b, cluster_b, VS_NET_ROLE_OSD);
    assert_int_equal(vs_net_hello_check(&a, &b, &v, err, sizeof(err)), VS_EWRONGCLUSTER);
    assert_non_null(strstr(err, "peer belongs to cluster b0b10000000000000000000000000000"));
    assert_non_null(strstr(err, "we belong to cluster c10102030405060708090a0b0c0d0e0f"));
}

static void test_payload_items(void **state)
{
    (void)state;
    uint8_t b[VS_NET_LISTENT_SIZE];
    struct vs_net_objver v = {.inode = (1ull << 48) | 9, .stripe = 1 << 17, .version = 1ull << 40};
    struct vs_net_objver v2;
    vs_net_objver_put(b, &v);
    vs_net_objver_get(b, &v2);
    assert_memory_equal(&v, &v2, sizeof(v));
    assert_true(vs_get_u64(b + 16) == 1ull << 40);
    struct vs_net_listent e = {.inode = 5, .stripe = 6, .version = 7, .flags = 1}, e2;
    vs_net_listent_put(b, &e);
    assert_int_equal(b[24], 1);
    assert_int_equal(vs_net_listent_get(b, &e2), 0);
    assert_true(e2.inode == 5 && e2.stripe == 6 && e2.version == 7 && e2.flags == 1);
    e.flags = VS_NET_LISTENT_DELETED;
    vs_net_listent_put(b, &e);
    assert_int_equal(vs_net_listent_get(b, &e2), 0);
    assert_int_equal(e2.flags, VS_NET_LISTENT_DELETED);
    b[24] = 4;
    assert_int_equal(vs_net_listent_get(b, &e2), VS_EPROTO);
    assert_int_equal(vs_net_inode_pool(0xabcd000000000001ull), 0xabcd);
}

static void test_names(void **state)
{
    (void)state;
    unsigned valid = 0;
    for (unsigned op = 0; op < 70000; op++) {
        if (vs_net_op_valid(op)) {
            valid++;
            assert_non_null(vs_net_op_name(op));
        } else {
            assert_null(vs_net_op_name(op));
        }
    }
    assert_int_equal(valid, NOPS);
    assert_string_equal(vs_net_op_name(VS_NET_OP_SEC_READ_BITMAP), "SEC_READ_BITMAP");
    assert_true(vs_net_op_has_req_payload(VS_NET_OP_WRITE));
    assert_true(vs_net_op_has_req_payload(VS_NET_OP_SEC_STABILIZE));
    assert_false(vs_net_op_has_req_payload(VS_NET_OP_READ));
    assert_false(vs_net_op_has_req_payload(99));
}

/* The valid-* files of the fuzz corpus come from gen_corpus.py, a second
 * encoder written from docs/protocol.md: every frame must decode, and every
 * reply must match its request. */
static void replay_stream(const char *path, const uint8_t *p, size_t n)
{
    struct vs_net_hdr req, h;
    bool have_req = false;
    char err[200];
    unsigned frames = 0;
    assert_true(n >= 1);
    p++, n--;
    while (n > 0) {
        if (n < VS_NET_HDR_SIZE)
            fail_msg("%s: %zu stray bytes", path, n);
        if (vs_net_hdr_decode(p, &lim, &h, err, sizeof(err)) != 0)
            fail_msg("%s: frame %u: %s", path, frames, err);
        if ((h.flags & VS_NET_F_REPLY) && vs_net_reply_check(&req, &h, err, sizeof(err)))
            fail_msg("%s: frame %u: %s", path, frames, err);
        if (!(h.flags & VS_NET_F_REPLY)) {
            req = h;
            have_req = true;
        }
        size_t len = VS_NET_HDR_SIZE + (size_t)h.meta_len + h.data_len;
        if (len > n)
            fail_msg("%s: frame %u runs past the end", path, frames);
        p += len;
        n -= len;
        frames++;
    }
    assert_true(have_req && frames >= 2);
}

static void test_second_encoder_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(NET_CORPUS_DIR);
    assert_non_null(d);
    unsigned files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "valid-", 6) != 0)
            continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", NET_CORPUS_DIR, e->d_name);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[1 << 20];
        size_t n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        replay_stream(path, buf, n);
        files++;
    }
    closedir(d);
    assert_true(files >= 16);
}

int main(void)
{
    vs_net_limits_default(&lim);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_every_opcode),
        cmocka_unit_test(test_byte_layout),
        cmocka_unit_test(test_every_rule_refuses),
        cmocka_unit_test(test_magic_and_crc),
        cmocka_unit_test(test_limits_are_configurable),
        cmocka_unit_test(test_reply_matches_request),
        cmocka_unit_test(test_hello_check),
        cmocka_unit_test(test_payload_items),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_second_encoder_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
