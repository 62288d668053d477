/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_proto: the handshake state machine and the request judge, byte by byte
 * against proto.md. A client here is a few hand-encoded byte strings; the
 * real clients (qemu, libnbd, fio) are in integration/test_nbd.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_proto.h"
#include "vs_err.h"

static struct vs_nbd_export test_export(void)
{
    struct vs_nbd_export e;
    memset(&e, 0, sizeof(e));
    snprintf(e.name, sizeof(e.name), "disk");
    snprintf(e.description, sizeof(e.description), "a test disk");
    e.size_bytes = 1 << 20;
    e.tx_flags = VS_NBD_FLAG_HAS_FLAGS | VS_NBD_FLAG_SEND_FLUSH | VS_NBD_FLAG_SEND_FUA |
                 VS_NBD_FLAG_SEND_TRIM | VS_NBD_FLAG_SEND_WRITE_ZEROES |
                 VS_NBD_FLAG_SEND_FAST_ZERO | VS_NBD_FLAG_CAN_MULTI_CONN;
    e.block_min = 512;
    e.block_pref = 4096;
    e.block_max = 1 << 16;
    return e;
}

/* A handshake plus the bytes it wrote, and a cursor to parse them. */
struct hs_fixture {
    struct vs_nbd_export exp;
    struct vs_nbd_hs hs;
    uint8_t out[1 << 16];
    struct vs_nbd_obuf ob;
    size_t rpos;
};

static struct hs_fixture *fx_new(void)
{
    struct hs_fixture *f = calloc(1, sizeof(*f));
    f->exp = test_export();
    f->ob = (struct vs_nbd_obuf){f->out, 0, sizeof(f->out)};
    vs_nbd_hs_init(&f->hs, &f->exp, &f->ob);
    assert_int_equal(f->ob.len, VS_NBD_GREETING_SIZE);
    assert_true(vs_nbd_get_be64(f->out) == VS_NBD_MAGIC_INIT);
    assert_true(vs_nbd_get_be64(f->out + 8) == VS_NBD_MAGIC_OPTS);
    assert_int_equal(vs_nbd_get_be16(f->out + 16),
                     VS_NBD_FLAG_FIXED_NEWSTYLE | VS_NBD_FLAG_NO_ZEROES);
    f->rpos = VS_NBD_GREETING_SIZE;
    return f;
}

/* Feeds everything (as the server does: again after each reply). */
static void feed(struct hs_fixture *f, const uint8_t *in, size_t len)
{
    size_t used = 0;
    while (used < len && f->hs.state != VS_NBD_HS_GO && f->hs.state != VS_NBD_HS_CLOSE) {
        size_t n = vs_nbd_hs_feed(&f->hs, in + used, len - used, &f->ob);
        assert_true(n > 0 || f->hs.state == VS_NBD_HS_GO || f->hs.state == VS_NBD_HS_CLOSE);
        used += n;
    }
}

static void send_flags(struct hs_fixture *f, uint32_t flags)
{
    uint8_t b[4];
    vs_nbd_put_be32(b, flags);
    feed(f, b, 4);
}

static void send_opt(struct hs_fixture *f, uint32_t opt, const void *data, uint32_t len)
{
    uint8_t *b = malloc(16 + len);
    vs_nbd_put_be64(b, VS_NBD_MAGIC_OPTS);
    vs_nbd_put_be32(b + 8, opt);
    vs_nbd_put_be32(b + 12, len);
    if (len)
        memcpy(b + 16, data, len);
    feed(f, b, 16 + len);
    free(b);
}

/* Reads one option reply; returns its type and copies data (len into *len). */
static uint32_t next_reply(struct hs_fixture *f, uint32_t opt, uint8_t *data, uint32_t *len)
{
    assert_true(f->ob.len >= f->rpos + VS_NBD_OPT_REPLY_HDR_SIZE);
    const uint8_t *p = f->out + f->rpos;
    assert_true(vs_nbd_get_be64(p) == VS_NBD_MAGIC_REP);
    assert_int_equal(vs_nbd_get_be32(p + 8), opt);
    uint32_t type = vs_nbd_get_be32(p + 12);
    uint32_t n = vs_nbd_get_be32(p + 16);
    assert_true(f->ob.len >= f->rpos + VS_NBD_OPT_REPLY_HDR_SIZE + n);
    if (data)
        memcpy(data, p + VS_NBD_OPT_REPLY_HDR_SIZE, n);
    if (len)
        *len = n;
    f->rpos += VS_NBD_OPT_REPLY_HDR_SIZE + n;
    return type;
}

static void assert_no_more_output(struct hs_fixture *f)
{
    assert_int_equal(f->rpos, f->ob.len);
}

/* GO/INFO data: name, then info requests. */
static uint32_t go_data(uint8_t *b, const char *name, const uint16_t *infos, unsigned n)
{
    uint32_t nl = (uint32_t)strlen(name);
    vs_nbd_put_be32(b, nl);
    memcpy(b + 4, name, nl);
    vs_nbd_put_be16(b + 4 + nl, (uint16_t)n);
    for (unsigned i = 0; i < n; i++)
        vs_nbd_put_be16(b + 6 + nl + 2 * i, infos[i]);
    return 6 + nl + 2 * n;
}

static void test_go_with_info(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE | VS_NBD_FLAG_C_NO_ZEROES);
    send_opt(f, VS_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(next_reply(f, VS_NBD_OPT_STRUCTURED_REPLY, NULL, NULL), VS_NBD_REP_ACK);
    uint8_t d[64], r[64];
    uint16_t infos[] = {VS_NBD_INFO_NAME, VS_NBD_INFO_DESCRIPTION, VS_NBD_INFO_BLOCK_SIZE, 77};
    send_opt(f, VS_NBD_OPT_GO, d, go_data(d, "disk", infos, 4));
    assert_int_equal(f->hs.state, VS_NBD_HS_GO);
    assert_true(f->hs.block_size_agreed);
    bool seen_export = false, seen_bs = false, seen_name = false, seen_desc = false;
    uint32_t t, n;
    while ((t = next_reply(f, VS_NBD_OPT_GO, r, &n)) == VS_NBD_REP_INFO) {
        uint16_t it = vs_nbd_get_be16(r);
        if (it == VS_NBD_INFO_EXPORT) {
            assert_int_equal(n, 12);
            assert_true(vs_nbd_get_be64(r + 2) == 1 << 20);
            assert_int_equal(vs_nbd_get_be16(r + 10), f->exp.tx_flags | VS_NBD_FLAG_SEND_DF);
            seen_export = true;
        } else if (it == VS_NBD_INFO_BLOCK_SIZE) {
            assert_int_equal(n, 14);
            assert_int_equal(vs_nbd_get_be32(r + 2), 512);
            assert_int_equal(vs_nbd_get_be32(r + 6), 4096);
            assert_int_equal(vs_nbd_get_be32(r + 10), 1 << 16);
            seen_bs = true;
        } else if (it == VS_NBD_INFO_NAME) {
            assert_int_equal(n, 2 + 4);
            assert_memory_equal(r + 2, "disk", 4);
            seen_name = true;
        } else if (it == VS_NBD_INFO_DESCRIPTION) {
            assert_memory_equal(r + 2, "a test disk", n - 2);
            seen_desc = true;
        }
    }
    assert_int_equal(t, VS_NBD_REP_ACK);
    assert_true(seen_export && seen_bs && seen_name && seen_desc);
    assert_no_more_output(f);
    struct vs_nbd_session s;
    vs_nbd_session_from_hs(&s, &f->hs);
    assert_true(s.structured);
    assert_true(s.tx_flags & VS_NBD_FLAG_SEND_DF);
    free(f);
}

/* nbd_structured_replies = false: the option is refused, the session uses
 * simple replies and SEND_DF is not offered. */
static void test_structured_replies_off(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    f->exp.no_structured = true;
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE | VS_NBD_FLAG_C_NO_ZEROES);
    send_opt(f, VS_NBD_OPT_STRUCTURED_REPLY, NULL, 0);
    assert_int_equal(next_reply(f, VS_NBD_OPT_STRUCTURED_REPLY, NULL, NULL),
                     VS_NBD_REP_ERR_UNSUP);
    uint8_t d[64], r[64];
    uint16_t infos[] = {VS_NBD_INFO_BLOCK_SIZE};
    send_opt(f, VS_NBD_OPT_GO, d, go_data(d, "disk", infos, 1));
    assert_int_equal(f->hs.state, VS_NBD_HS_GO);
    uint32_t t, n;
    while ((t = next_reply(f, VS_NBD_OPT_GO, r, &n)) == VS_NBD_REP_INFO) {
        if (vs_nbd_get_be16(r) == VS_NBD_INFO_EXPORT)
            assert_int_equal(vs_nbd_get_be16(r + 10), f->exp.tx_flags);
    }
    assert_int_equal(t, VS_NBD_REP_ACK);
    struct vs_nbd_session s;
    vs_nbd_session_from_hs(&s, &f->hs);
    assert_false(s.structured);
    assert_false(s.tx_flags & VS_NBD_FLAG_SEND_DF);
    free(f);
}

static void test_info_then_go_default_export(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t d[64];
    send_opt(f, VS_NBD_OPT_INFO, d, go_data(d, "", NULL, 0));
    assert_int_equal(f->hs.state, VS_NBD_HS_OPT_HDR); /* INFO does not end the handshake */
    uint32_t t;
    while ((t = next_reply(f, VS_NBD_OPT_INFO, NULL, NULL)) == VS_NBD_REP_INFO)
        ;
    assert_int_equal(t, VS_NBD_REP_ACK);
    send_opt(f, VS_NBD_OPT_GO, d, go_data(d, "", NULL, 0));
    assert_int_equal(f->hs.state, VS_NBD_HS_GO);
    assert_false(f->hs.block_size_agreed);
    struct vs_nbd_session s;
    vs_nbd_session_from_hs(&s, &f->hs);
    assert_false(s.structured);
    assert_false(s.tx_flags & VS_NBD_FLAG_SEND_DF);
    free(f);
}

static void test_option_errors(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t d[64];
    /* GO for another export: ERR_UNKNOWN and no NBD_REP_INFO before it */
    send_opt(f, VS_NBD_OPT_GO, d, go_data(d, "other", NULL, 0));
    assert_int_equal(next_reply(f, VS_NBD_OPT_GO, NULL, NULL), VS_NBD_REP_ERR_UNKNOWN);
    /* data shorter than the fixed fields */
    send_opt(f, VS_NBD_OPT_GO, d, 5);
    assert_int_equal(next_reply(f, VS_NBD_OPT_GO, NULL, NULL), VS_NBD_REP_ERR_INVALID);
    /* name length past the option's end */
    uint32_t n = go_data(d, "disk", NULL, 0);
    vs_nbd_put_be32(d, 100);
    send_opt(f, VS_NBD_OPT_INFO, d, n);
    assert_int_equal(next_reply(f, VS_NBD_OPT_INFO, NULL, NULL), VS_NBD_REP_ERR_INVALID);
    /* info count disagreeing with the length */
    n = go_data(d, "disk", NULL, 0);
    vs_nbd_put_be16(d + 8, 3);
    send_opt(f, VS_NBD_OPT_GO, d, n);
    assert_int_equal(next_reply(f, VS_NBD_OPT_GO, NULL, NULL), VS_NBD_REP_ERR_INVALID);
    /* LIST and STRUCTURED_REPLY take no data */
    send_opt(f, VS_NBD_OPT_LIST, "x", 1);
    assert_int_equal(next_reply(f, VS_NBD_OPT_LIST, NULL, NULL), VS_NBD_REP_ERR_INVALID);
    send_opt(f, VS_NBD_OPT_STRUCTURED_REPLY, "xy", 2);
    assert_int_equal(next_reply(f, VS_NBD_OPT_STRUCTURED_REPLY, NULL, NULL),
                     VS_NBD_REP_ERR_INVALID);
    assert_false(f->hs.structured);
    /* options we do not implement, with data that must be skipped */
    send_opt(f, VS_NBD_OPT_STARTTLS, NULL, 0);
    assert_int_equal(next_reply(f, VS_NBD_OPT_STARTTLS, NULL, NULL), VS_NBD_REP_ERR_UNSUP);
    send_opt(f, VS_NBD_OPT_SET_META_CONTEXT, "0123456789", 10);
    assert_int_equal(next_reply(f, VS_NBD_OPT_SET_META_CONTEXT, NULL, NULL), VS_NBD_REP_ERR_UNSUP);
    send_opt(f, 0x12345678, "abc", 3);
    assert_int_equal(next_reply(f, 0x12345678, NULL, NULL), VS_NBD_REP_ERR_UNSUP);
    /* a known option too large to buffer is skipped whole: ERR_TOO_BIG */
    uint32_t big = VS_NBD_OPT_DATA_MAX + 1;
    uint8_t *bd = calloc(1, big);
    send_opt(f, VS_NBD_OPT_GO, bd, big);
    free(bd);
    assert_int_equal(next_reply(f, VS_NBD_OPT_GO, NULL, NULL), VS_NBD_REP_ERR_TOO_BIG);
    /* ... and the session is still fine afterwards */
    send_opt(f, VS_NBD_OPT_LIST, NULL, 0);
    uint8_t r[64];
    assert_int_equal(next_reply(f, VS_NBD_OPT_LIST, r, &n), VS_NBD_REP_SERVER);
    assert_int_equal(n, 4 + 4);
    assert_int_equal(vs_nbd_get_be32(r), 4);
    assert_memory_equal(r + 4, "disk", 4);
    assert_int_equal(next_reply(f, VS_NBD_OPT_LIST, NULL, NULL), VS_NBD_REP_ACK);
    assert_int_equal(f->hs.state, VS_NBD_HS_OPT_HDR);
    assert_no_more_output(f);
    free(f);
}

static void test_abort(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    send_opt(f, VS_NBD_OPT_ABORT, "ignored", 7);
    assert_int_equal(next_reply(f, VS_NBD_OPT_ABORT, NULL, NULL), VS_NBD_REP_ACK);
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    assert_non_null(f->hs.close_reason);
    free(f);
}

static void test_export_name(void **state)
{
    (void)state;
    for (int zeroes = 0; zeroes < 2; zeroes++) {
        struct hs_fixture *f = fx_new();
        send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE | (zeroes ? 0 : VS_NBD_FLAG_C_NO_ZEROES));
        send_opt(f, VS_NBD_OPT_EXPORT_NAME, "disk", 4);
        assert_int_equal(f->hs.state, VS_NBD_HS_GO);
        assert_int_equal(f->ob.len - f->rpos, zeroes ? 134 : 10);
        assert_true(vs_nbd_get_be64(f->out + f->rpos) == 1 << 20);
        assert_int_equal(vs_nbd_get_be16(f->out + f->rpos + 8), f->exp.tx_flags);
        free(f);
    }
    /* refusing EXPORT_NAME can only be done by hanging up */
    struct hs_fixture *f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    send_opt(f, VS_NBD_OPT_EXPORT_NAME, "nope", 4);
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    assert_no_more_output(f);
    free(f);
}

static void test_hangup_cases(void **state)
{
    (void)state;
    struct hs_fixture *f = fx_new();
    send_flags(f, 1u << 5); /* unknown client flag: "MUST drop the TCP connection" */
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    free(f);

    f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t bad[16] = "IHAVEOPX";
    feed(f, bad, sizeof(bad));
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    free(f);

    f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    uint8_t hdr[16];
    vs_nbd_put_be64(hdr, VS_NBD_MAGIC_OPTS);
    vs_nbd_put_be32(hdr + 8, 99);
    vs_nbd_put_be32(hdr + 12, VS_NBD_OPT_SKIP_MAX + 1);
    feed(f, hdr, sizeof(hdr));
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    free(f);

    f = fx_new();
    send_flags(f, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    for (int i = 0; i < VS_NBD_OPT_COUNT_MAX + 1 && f->hs.state != VS_NBD_HS_CLOSE; i++) {
        send_opt(f, VS_NBD_OPT_LIST, NULL, 0);
        f->ob.len = f->rpos = 0; /* the server sends and forgets */
    }
    assert_int_equal(f->hs.state, VS_NBD_HS_CLOSE);
    free(f);
}

/* The output must not depend on how the input is split into reads. */
static void test_split_invariance(void **state)
{
    (void)state;
    uint8_t in[512];
    size_t len = 0;
    vs_nbd_put_be32(in, VS_NBD_FLAG_C_FIXED_NEWSTYLE);
    len = 4;
    uint8_t d[64];
    uint32_t dl = go_data(d, "disk", (uint16_t[]){VS_NBD_INFO_BLOCK_SIZE}, 1);
    uint32_t opts[] = {VS_NBD_OPT_STRUCTURED_REPLY, VS_NBD_OPT_LIST, 42, VS_NBD_OPT_INFO,
                       VS_NBD_OPT_GO};
    for (size_t i = 0; i < 5; i++) {
        bool with_data = opts[i] == VS_NBD_OPT_INFO || opts[i] == VS_NBD_OPT_GO || opts[i] == 42;
        vs_nbd_put_be64(in + len, VS_NBD_MAGIC_OPTS);
        vs_nbd_put_be32(in + len + 8, opts[i]);
        vs_nbd_put_be32(in + len + 12, with_data ? dl : 0);
        len += 16;
        if (with_data) {
            memcpy(in + len, d, dl);
            len += dl;
        }
    }
    struct hs_fixture *whole = fx_new();
    feed(whole, in, len);
    assert_int_equal(whole->hs.state, VS_NBD_HS_GO);
    for (size_t chunk = 1; chunk <= 7; chunk++) {
        struct hs_fixture *f = fx_new();
        for (size_t off = 0; off < len; off += chunk)
            feed(f, in + off, off + chunk <= len ? chunk : len - off);
        assert_int_equal(f->hs.state, VS_NBD_HS_GO);
        assert_int_equal(f->ob.len, whole->ob.len);
        assert_memory_equal(f->out, whole->out, f->ob.len);
        free(f);
    }
    free(whole);
}

/* ---- Requests ----------------------------------------------------------- */

static struct vs_nbd_session session(bool ro, bool structured)
{
    struct vs_nbd_export e = test_export();
    struct vs_nbd_session s = {
        .size_bytes = e.size_bytes,
        .tx_flags = (uint16_t)(e.tx_flags | (structured ? VS_NBD_FLAG_SEND_DF : 0)),
        .structured = structured,
        .block_min = e.block_min,
        .block_max = e.block_max,
    };
    if (ro)
        s.tx_flags = VS_NBD_FLAG_HAS_FLAGS | VS_NBD_FLAG_READ_ONLY | VS_NBD_FLAG_SEND_FLUSH |
                     VS_NBD_FLAG_SEND_FUA | VS_NBD_FLAG_CAN_MULTI_CONN;
    return s;
}

static int check(const struct vs_nbd_session *s, uint16_t type, uint16_t flags, uint64_t off,
                 uint32_t len, uint32_t *payload)
{
    struct vs_nbd_request r = {flags, type, 7, off, len};
    uint32_t p;
    int rc = vs_nbd_request_check(s, &r, payload ? payload : &p);
    return rc;
}

static void test_request_decode(void **state)
{
    (void)state;
    uint8_t b[VS_NBD_REQUEST_SIZE];
    vs_nbd_put_be32(b, VS_NBD_MAGIC_REQUEST);
    vs_nbd_put_be16(b + 4, VS_NBD_CMD_FLAG_FUA);
    vs_nbd_put_be16(b + 6, VS_NBD_CMD_WRITE);
    vs_nbd_put_be64(b + 8, 0x1122334455667788ull);
    vs_nbd_put_be64(b + 16, 4096);
    vs_nbd_put_be32(b + 24, 512);
    struct vs_nbd_request r;
    assert_int_equal(vs_nbd_request_decode(b, &r), 0);
    assert_int_equal(r.flags, VS_NBD_CMD_FLAG_FUA);
    assert_int_equal(r.type, VS_NBD_CMD_WRITE);
    assert_true(r.cookie == 0x1122334455667788ull);
    assert_true(r.offset == 4096);
    assert_int_equal(r.length, 512);
    b[0] ^= 1;
    assert_int_equal(vs_nbd_request_decode(b, &r), VS_EPROTO);
}

static void test_request_check(void **state)
{
    (void)state;
    struct vs_nbd_session s = session(false, false);
    uint32_t payload;
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 0, 4096, &payload), 0);
    assert_int_equal(payload, 0);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, VS_NBD_CMD_FLAG_FUA, 512, 512, &payload), 0);
    assert_int_equal(payload, 512);
    assert_int_equal(check(&s, VS_NBD_CMD_FLUSH, 0, 0, 0, NULL), 0);
    assert_int_equal(check(&s, VS_NBD_CMD_FLUSH, 0, 0, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_TRIM, VS_NBD_CMD_FLAG_FUA, 0, 1 << 20, NULL), 0);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE_ZEROES,
                           VS_NBD_CMD_FLAG_NO_HOLE | VS_NBD_CMD_FLAG_FAST_ZERO, 0, 1 << 20, NULL),
                     0);
    /* flags documented for other commands, or unknown */
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, VS_NBD_CMD_FLAG_NO_HOLE, 0, 512, NULL),
                     VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, VS_NBD_CMD_FLAG_DF, 0, 512, NULL),
                     VS_NBD_EINVAL); /* DF needs structured replies */
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 1u << 9, 0, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_TRIM, VS_NBD_CMD_FLAG_REQ_ONE, 0, 512, NULL),
                     VS_NBD_EINVAL);
    /* unknown or unsupported commands */
    assert_int_equal(check(&s, VS_NBD_CMD_CACHE, 0, 0, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_BLOCK_STATUS, 0, 0, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, 999, 0, 0, 512, NULL), VS_NBD_EINVAL);
    /* ranges: past the end, overflowing, misaligned, too long */
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, (1 << 20) - 512, 1024, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, 0, (1 << 20) - 512, 1024, NULL), VS_NBD_ENOSPC);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE_ZEROES, 0, 1 << 20, 512, NULL), VS_NBD_ENOSPC);
    assert_int_equal(check(&s, VS_NBD_CMD_TRIM, 0, UINT64_MAX - 100, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, 0, UINT64_MAX - 100, 512, NULL), VS_NBD_ENOSPC);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 100, 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 0, 100, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 0, (1 << 16) + 512, NULL), VS_NBD_EINVAL);
    assert_int_equal(check(&s, VS_NBD_CMD_TRIM, 0, 0, 1 << 20, NULL), 0); /* no max: no payload */
    /* a refused WRITE still announces its payload, which must be skipped */
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, 0, 100, 1000, &payload), VS_NBD_EINVAL);
    assert_int_equal(payload, 1000);
    /* a payload we cannot skip ends the connection */
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, 0, 0, VS_NBD_PAYLOAD_MAX + 1, NULL), VS_EPROTO);
    /* zero length is accepted (the spec asks servers not to disconnect) */
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 0, 0, NULL), 0);
    /* DISC is never refused */
    assert_int_equal(check(&s, VS_NBD_CMD_DISC, 0xffff, 5, 5, NULL), 0);
}

static void test_request_check_structured_and_ro(void **state)
{
    (void)state;
    struct vs_nbd_session s = session(false, true);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, VS_NBD_CMD_FLAG_DF, 0, 512, NULL), 0);
    s = session(true, false);
    uint32_t payload;
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE, 0, 0, 512, &payload), VS_NBD_EPERM);
    assert_int_equal(payload, 512);
    /* not advertised on a read-only export, but the spec asks for EPERM */
    assert_int_equal(check(&s, VS_NBD_CMD_TRIM, 0, 0, 512, NULL), VS_NBD_EPERM);
    assert_int_equal(check(&s, VS_NBD_CMD_WRITE_ZEROES, 0, 0, 512, NULL), VS_NBD_EPERM);
    assert_int_equal(check(&s, VS_NBD_CMD_READ, 0, 0, 512, NULL), 0);
    assert_int_equal(check(&s, VS_NBD_CMD_FLUSH, 0, 0, 0, NULL), 0);
}

static void test_replies_and_errors(void **state)
{
    (void)state;
    uint8_t b[VS_NBD_CHUNK_HDR_SIZE];
    vs_nbd_put_simple_reply(b, VS_NBD_EIO, 42);
    assert_int_equal(vs_nbd_get_be32(b), VS_NBD_MAGIC_SIMPLE_REPLY);
    assert_int_equal(vs_nbd_get_be32(b + 4), VS_NBD_EIO);
    assert_true(vs_nbd_get_be64(b + 8) == 42);
    vs_nbd_put_chunk_hdr(b, VS_NBD_REPLY_FLAG_DONE, VS_NBD_REPLY_TYPE_OFFSET_DATA, 9, 4104);
    assert_int_equal(vs_nbd_get_be32(b), VS_NBD_MAGIC_STRUCTURED_REPLY);
    assert_int_equal(vs_nbd_get_be16(b + 4), VS_NBD_REPLY_FLAG_DONE);
    assert_int_equal(vs_nbd_get_be16(b + 6), VS_NBD_REPLY_TYPE_OFFSET_DATA);
    assert_true(vs_nbd_get_be64(b + 8) == 9);
    assert_int_equal(vs_nbd_get_be32(b + 16), 4104);

    assert_int_equal(vs_nbd_errno_to_wire(0), 0);
    assert_int_equal(vs_nbd_errno_to_wire(-EROFS), VS_NBD_EPERM);
    assert_int_equal(vs_nbd_errno_to_wire(-EDQUOT), VS_NBD_ENOSPC);
    assert_int_equal(vs_nbd_errno_to_wire(-EFBIG), VS_NBD_ENOSPC);
    assert_int_equal(vs_nbd_errno_to_wire(-ENOTSUP), VS_NBD_ENOTSUP);
    assert_int_equal(vs_nbd_errno_to_wire(-ECANCELED), VS_NBD_ESHUTDOWN);
    assert_int_equal(vs_nbd_errno_to_wire(VS_ESHUTDOWN), VS_NBD_ESHUTDOWN);
    assert_int_equal(vs_nbd_errno_to_wire(-ETIMEDOUT), VS_NBD_EIO);
    assert_int_equal(vs_nbd_errno_to_wire(VS_ECHECKSUM), VS_NBD_EIO);
}

static void test_export_check(void **state)
{
    (void)state;
    struct vs_nbd_export e = test_export();
    assert_int_equal(vs_nbd_export_check(&e), 0);
    e.block_min = 3;
    assert_int_equal(vs_nbd_export_check(&e), -EINVAL);
    e = test_export();
    e.block_pref = 256;
    assert_int_equal(vs_nbd_export_check(&e), -EINVAL);
    e = test_export();
    e.block_max = 1000;
    assert_int_equal(vs_nbd_export_check(&e), -EINVAL);
    e = test_export();
    e.size_bytes += 1;
    assert_int_equal(vs_nbd_export_check(&e), -EINVAL);
    e = test_export();
    e.tx_flags |= VS_NBD_FLAG_SEND_DF;
    assert_int_equal(vs_nbd_export_check(&e), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_go_with_info),
        cmocka_unit_test(test_structured_replies_off),
        cmocka_unit_test(test_info_then_go_default_export),
        cmocka_unit_test(test_option_errors),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_export_name),
        cmocka_unit_test(test_hangup_cases),
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_request_decode),
        cmocka_unit_test(test_request_check),
        cmocka_unit_test(test_request_check_structured_and_ro),
        cmocka_unit_test(test_replies_and_errors),
        cmocka_unit_test(test_export_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
