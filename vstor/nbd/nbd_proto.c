/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_proto.c -- the NBD handshake state machine and request parser.
 *
 * NOTES
 * (1) Every length read from the wire is bounded before it is used: an option
 *     is buffered only when it fits hs->data, skipped when it fits
 *     VS_NBD_OPT_SKIP_MAX, and the connection ends otherwise. Nothing here
 *     indexes past a buffer whatever the input (the fuzzer checks this under
 *     ASan).
 * (2) One option produces at most VS_NBD_HS_OUT_MAX bytes of reply, and
 *     vs_nbd_hs_feed returns after each option that produced output, so the
 *     caller's fixed output buffer never overflows.
 * (3) Option replies follow "Option reply types" of proto.md: an unknown
 *     option is skipped and answered NBD_REP_ERR_UNSUP; a known one with bad
 *     data NBD_REP_ERR_INVALID; NBD_OPT_INFO/GO for another export
 *     NBD_REP_ERR_UNKNOWN, with no NBD_REP_INFO before it.
 */
#include "nbd_proto.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <string.h>

/* ---- Export ------------------------------------------------------------- */

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

int vs_nbd_export_check(const struct vs_nbd_export *exp)
{
    if (!is_pow2(exp->block_min) || exp->block_min > 65536)
        return -EINVAL;
    if (!is_pow2(exp->block_pref) || exp->block_pref < exp->block_min || exp->block_pref < 512)
        return -EINVAL;
    if (exp->block_max == 0 || exp->block_max % exp->block_min != 0 ||
        exp->block_max > VS_NBD_PAYLOAD_MAX || exp->block_max < exp->block_min)
        return -EINVAL;
    if (!(exp->tx_flags & VS_NBD_FLAG_HAS_FLAGS) || (exp->tx_flags & VS_NBD_FLAG_SEND_DF))
        return -EINVAL;
    if (exp->size_bytes % exp->block_min != 0)
        return -EINVAL;
    return 0;
}

/* ---- Output helpers ----------------------------------------------------- */

static void out_bytes(struct vs_nbd_obuf *out, const void *p, size_t n)
{
    VS_ASSERTF(out->len + n <= out->cap, "len=%zu n=%zu cap=%zu", out->len, n, out->cap);
    if (n == 0)
        return;
    memcpy(out->p + out->len, p, n);
    out->len += n;
}

/* An option reply: header plus `n` bytes of data (written by the caller next). */
static void out_rep_hdr(struct vs_nbd_obuf *out, uint32_t opt, uint32_t type, uint32_t n)
{
    uint8_t h[VS_NBD_OPT_REPLY_HDR_SIZE];
    vs_nbd_put_be64(h, VS_NBD_MAGIC_REP);
    vs_nbd_put_be32(h + 8, opt);
    vs_nbd_put_be32(h + 12, type);
    vs_nbd_put_be32(h + 16, n);
    out_bytes(out, h, sizeof(h));
}

static void out_rep(struct vs_nbd_obuf *out, uint32_t opt, uint32_t type, const char *msg)
{
    size_t n = msg ? strlen(msg) : 0;
    VS_ASSERT(n <= 512);
    out_rep_hdr(out, opt, type, (uint32_t)n);
    out_bytes(out, msg, n);
}

static void out_info_export(struct vs_nbd_obuf *out, uint32_t opt, const struct vs_nbd_hs *hs,
                            uint16_t tx_flags)
{
    uint8_t b[12];
    vs_nbd_put_be16(b, VS_NBD_INFO_EXPORT);
    vs_nbd_put_be64(b + 2, hs->exp->size_bytes);
    vs_nbd_put_be16(b + 10, tx_flags);
    out_rep_hdr(out, opt, VS_NBD_REP_INFO, sizeof(b));
    out_bytes(out, b, sizeof(b));
}

static void out_info_block_size(struct vs_nbd_obuf *out, uint32_t opt,
                                const struct vs_nbd_export *exp)
{
    uint8_t b[14];
    vs_nbd_put_be16(b, VS_NBD_INFO_BLOCK_SIZE);
    vs_nbd_put_be32(b + 2, exp->block_min);
    vs_nbd_put_be32(b + 6, exp->block_pref);
    vs_nbd_put_be32(b + 10, exp->block_max);
    out_rep_hdr(out, opt, VS_NBD_REP_INFO, sizeof(b));
    out_bytes(out, b, sizeof(b));
}

static void out_info_string(struct vs_nbd_obuf *out, uint32_t opt, uint16_t type, const char *s)
{
    uint8_t t[2];
    size_t n = strlen(s);
    VS_ASSERT(n <= VS_NBD_NAME_MAX);
    vs_nbd_put_be16(t, type);
    out_rep_hdr(out, opt, VS_NBD_REP_INFO, (uint32_t)(2 + n));
    out_bytes(out, t, 2);
    out_bytes(out, s, n);
}

/* ---- Handshake ---------------------------------------------------------- */

void vs_nbd_hs_init(struct vs_nbd_hs *hs, const struct vs_nbd_export *exp, struct vs_nbd_obuf *out)
{
    VS_ASSERT(vs_nbd_export_check(exp) == 0);
    memset(hs, 0, offsetof(struct vs_nbd_hs, data));
    hs->exp = exp;
    hs->state = VS_NBD_HS_CLIENT_FLAGS;
    uint8_t g[VS_NBD_GREETING_SIZE];
    vs_nbd_put_be64(g, VS_NBD_MAGIC_INIT);
    vs_nbd_put_be64(g + 8, VS_NBD_MAGIC_OPTS);
    vs_nbd_put_be16(g + 16, VS_NBD_FLAG_FIXED_NEWSTYLE | VS_NBD_FLAG_NO_ZEROES);
    out_bytes(out, g, sizeof(g));
}

static void hs_close(struct vs_nbd_hs *hs, const char *why)
{
    hs->state = VS_NBD_HS_CLOSE;
    hs->close_reason = why;
}

static uint16_t final_tx_flags(const struct vs_nbd_hs *hs)
{
    return (uint16_t)(hs->exp->tx_flags | (hs->structured ? VS_NBD_FLAG_SEND_DF : 0));
}

/* The default export ("") or our exact name. */
static bool name_matches(const struct vs_nbd_hs *hs, const uint8_t *name, uint32_t n)
{
    return n == 0 || (n == strlen(hs->exp->name) && memcmp(name, hs->exp->name, n) == 0);
}

static void opt_export_name(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    if (!name_matches(hs, hs->data, hs->opt_len)) {
        /* The spec leaves no way to refuse EXPORT_NAME but to hang up. */
        hs_close(hs, "NBD_OPT_EXPORT_NAME for an unknown export");
        return;
    }
    uint8_t b[VS_NBD_EXPORT_NAME_REPLY_MAX];
    memset(b, 0, sizeof(b));
    hs->tx_flags = final_tx_flags(hs);
    vs_nbd_put_be64(b, hs->exp->size_bytes);
    vs_nbd_put_be16(b + 8, hs->tx_flags);
    out_bytes(out, b, hs->no_zeroes ? 10 : sizeof(b));
    hs->state = VS_NBD_HS_GO;
}

static void opt_list(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    if (hs->opt_len != 0) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_INVALID, "NBD_OPT_LIST takes no data");
        return;
    }
    uint8_t n[4];
    size_t len = strlen(hs->exp->name);
    vs_nbd_put_be32(n, (uint32_t)len);
    out_rep_hdr(out, hs->opt, VS_NBD_REP_SERVER, (uint32_t)(4 + len));
    out_bytes(out, n, 4);
    out_bytes(out, hs->exp->name, len);
    out_rep(out, hs->opt, VS_NBD_REP_ACK, NULL);
}

/* NBD_OPT_INFO and NBD_OPT_GO: name length, name, count, count 16-bit info
 * requests, and nothing else. */
static void opt_info_go(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    const uint8_t *d = hs->data;
    uint32_t len = hs->opt_len;
    if (len < 6) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_INVALID, "option data too short");
        return;
    }
    uint32_t name_len = vs_nbd_get_be32(d);
    if (name_len > len - 6) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_INVALID, "export name length exceeds option");
        return;
    }
    uint32_t nreq = vs_nbd_get_be16(d + 4 + name_len);
    if (len != 6 + name_len + 2 * nreq) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_INVALID, "information request count mismatch");
        return;
    }
    if (!name_matches(hs, d + 4, name_len)) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_UNKNOWN, "no such export");
        return;
    }
    bool want_name = false, want_desc = false, want_bs = false;
    for (uint32_t i = 0; i < nreq; i++) {
        uint16_t t = vs_nbd_get_be16(d + 6 + name_len + 2 * i);
        want_name |= t == VS_NBD_INFO_NAME;
        want_desc |= t == VS_NBD_INFO_DESCRIPTION;
        want_bs |= t == VS_NBD_INFO_BLOCK_SIZE;
    }
    uint16_t tx_flags = final_tx_flags(hs);
    out_info_export(out, hs->opt, hs, tx_flags);
    /* Block sizes are sent even when not requested (the spec allows it): our
     * minimum may be above 1, and a client that reads them can honour them. */
    out_info_block_size(out, hs->opt, hs->exp);
    if (want_name)
        out_info_string(out, hs->opt, VS_NBD_INFO_NAME, hs->exp->name);
    if (want_desc && hs->exp->description[0])
        out_info_string(out, hs->opt, VS_NBD_INFO_DESCRIPTION, hs->exp->description);
    out_rep(out, hs->opt, VS_NBD_REP_ACK, NULL);
    if (hs->opt == VS_NBD_OPT_GO) {
        hs->tx_flags = tx_flags;
        hs->block_size_agreed = want_bs;
        hs->state = VS_NBD_HS_GO;
    }
}

static void opt_structured_reply(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    if (hs->opt_len != 0) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_INVALID, "NBD_OPT_STRUCTURED_REPLY takes no data");
        return;
    }
    if (hs->exp->no_structured) {
        out_rep(out, hs->opt, VS_NBD_REP_ERR_UNSUP, "structured replies are off on this export");
        return;
    }
    hs->structured = true;
    out_rep(out, hs->opt, VS_NBD_REP_ACK, NULL);
}

/* Options we parse; every other one is skipped and answered ERR_UNSUP. */
static bool opt_known(uint32_t opt)
{
    return opt == VS_NBD_OPT_EXPORT_NAME || opt == VS_NBD_OPT_ABORT || opt == VS_NBD_OPT_LIST ||
           opt == VS_NBD_OPT_INFO || opt == VS_NBD_OPT_GO || opt == VS_NBD_OPT_STRUCTURED_REPLY;
}

/* The whole option is in hs->data. */
static void opt_run(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    switch (hs->opt) {
    case VS_NBD_OPT_EXPORT_NAME:
        opt_export_name(hs, out);
        break;
    case VS_NBD_OPT_ABORT:
        /* Data, if any, is ignored, as the spec asks. */
        out_rep(out, hs->opt, VS_NBD_REP_ACK, NULL);
        hs_close(hs, "client sent NBD_OPT_ABORT");
        break;
    case VS_NBD_OPT_LIST:
        opt_list(hs, out);
        break;
    case VS_NBD_OPT_INFO:
    case VS_NBD_OPT_GO:
        opt_info_go(hs, out);
        break;
    case VS_NBD_OPT_STRUCTURED_REPLY:
        opt_structured_reply(hs, out);
        break;
    default:
        VS_ASSERTF(false, "opt=%u", hs->opt);
    }
    if (hs->state == VS_NBD_HS_OPT_DATA)
        hs->state = VS_NBD_HS_OPT_HDR;
}

/* The option was too large to buffer, or unknown; its data has been read. */
static void opt_skipped(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    if (opt_known(hs->opt))
        out_rep(out, hs->opt, VS_NBD_REP_ERR_TOO_BIG, "option data too large");
    else
        out_rep(out, hs->opt, VS_NBD_REP_ERR_UNSUP, "option not supported by vstor");
    hs->state = VS_NBD_HS_OPT_HDR;
}

static void opt_header(struct vs_nbd_hs *hs, struct vs_nbd_obuf *out)
{
    hs->got = 0;
    if (vs_nbd_get_be64(hs->hdr) != VS_NBD_MAGIC_OPTS) {
        hs_close(hs, "bad option magic");
        return;
    }
    if (++hs->opt_count > VS_NBD_OPT_COUNT_MAX) {
        hs_close(hs, "too many options");
        return;
    }
    hs->opt = vs_nbd_get_be32(hs->hdr + 8);
    hs->opt_len = vs_nbd_get_be32(hs->hdr + 12);
    if (hs->opt_len > VS_NBD_OPT_SKIP_MAX) {
        hs_close(hs, "option data larger than 1 MiB");
        return;
    }
    bool fits = hs->opt_len <= sizeof(hs->data);
    if (hs->opt == VS_NBD_OPT_EXPORT_NAME && !fits) {
        hs_close(hs, "NBD_OPT_EXPORT_NAME with an overlong name");
        return;
    }
    if (!opt_known(hs->opt) || !fits) {
        hs->state = VS_NBD_HS_OPT_SKIP;
        if (hs->opt_len == 0)
            opt_skipped(hs, out);
        return;
    }
    hs->state = VS_NBD_HS_OPT_DATA;
    if (hs->opt_len == 0)
        opt_run(hs, out);
}

/* Copies up to `want - hs->got` bytes into dst + hs->got; returns bytes used. */
static size_t fill(struct vs_nbd_hs *hs, uint8_t *dst, uint32_t want, const uint8_t *in, size_t len)
{
    VS_ASSERTF(hs->got <= want, "got=%u want=%u", hs->got, want);
    size_t n = want - hs->got;
    if (n > len)
        n = len;
    if (dst)
        memcpy(dst + hs->got, in, n);
    hs->got += (uint32_t)n;
    return n;
}

static size_t hs_step(struct vs_nbd_hs *hs, const uint8_t *in, size_t len, struct vs_nbd_obuf *out)
{
    size_t n = 0;
    switch (hs->state) {
    case VS_NBD_HS_CLIENT_FLAGS:
        n = fill(hs, hs->hdr, 4, in, len);
        if (hs->got == 4) {
            uint32_t f = vs_nbd_get_be32(hs->hdr);
            hs->got = 0;
            hs->no_zeroes = (f & VS_NBD_FLAG_C_NO_ZEROES) != 0;
            /* "the server MUST drop the TCP connection if the client sets an
             * unknown flag" */
            if (f & ~(VS_NBD_FLAG_C_FIXED_NEWSTYLE | VS_NBD_FLAG_C_NO_ZEROES))
                hs_close(hs, "unknown client flags");
            else
                hs->state = VS_NBD_HS_OPT_HDR;
        }
        break;
    case VS_NBD_HS_OPT_HDR:
        n = fill(hs, hs->hdr, VS_NBD_OPT_HDR_SIZE, in, len);
        if (hs->got == VS_NBD_OPT_HDR_SIZE)
            opt_header(hs, out);
        break;
    case VS_NBD_HS_OPT_DATA:
        n = fill(hs, hs->data, hs->opt_len, in, len);
        if (hs->got == hs->opt_len) {
            hs->got = 0;
            opt_run(hs, out);
        }
        break;
    case VS_NBD_HS_OPT_SKIP:
        n = fill(hs, NULL, hs->opt_len, in, len);
        if (hs->got == hs->opt_len) {
            hs->got = 0;
            opt_skipped(hs, out);
        }
        break;
    case VS_NBD_HS_GO:
    case VS_NBD_HS_CLOSE:
        break;
    }
    return n;
}

size_t vs_nbd_hs_feed(struct vs_nbd_hs *hs, const uint8_t *in, size_t len, struct vs_nbd_obuf *out)
{
    VS_ASSERT(out->cap - out->len >= VS_NBD_HS_OUT_MAX);
    size_t used = 0;
    while (used < len && hs->state != VS_NBD_HS_GO && hs->state != VS_NBD_HS_CLOSE) {
        size_t out_before = out->len;
        used += hs_step(hs, in + used, len - used, out);
        if (out->len != out_before)
            break; /* NOTES (2) */
    }
    VS_ASSERT(used <= len);
    return used;
}

/* ---- Transmission ------------------------------------------------------- */

void vs_nbd_session_from_hs(struct vs_nbd_session *s, const struct vs_nbd_hs *hs)
{
    VS_ASSERT(hs->state == VS_NBD_HS_GO);
    s->size_bytes = hs->exp->size_bytes;
    s->tx_flags = hs->tx_flags;
    s->structured = hs->structured;
    s->block_min = hs->exp->block_min;
    s->block_max = hs->exp->block_max;
}

int vs_nbd_request_decode(const uint8_t *p, struct vs_nbd_request *r)
{
    if (vs_nbd_get_be32(p) != VS_NBD_MAGIC_REQUEST)
        return VS_EPROTO;
    r->flags = vs_nbd_get_be16(p + 4);
    r->type = vs_nbd_get_be16(p + 6);
    r->cookie = vs_nbd_get_be64(p + 8);
    r->offset = vs_nbd_get_be64(p + 16);
    r->length = vs_nbd_get_be32(p + 24);
    return 0;
}

/* Command flags valid for a command in this session; UINT32_MAX for an
 * unknown or unadvertised command. */
static uint32_t allowed_flags(const struct vs_nbd_session *s, uint16_t type)
{
    uint32_t fua = (s->tx_flags & VS_NBD_FLAG_SEND_FUA) ? VS_NBD_CMD_FLAG_FUA : 0;
    switch (type) {
    case VS_NBD_CMD_READ:
        return fua | ((s->tx_flags & VS_NBD_FLAG_SEND_DF) ? VS_NBD_CMD_FLAG_DF : 0);
    case VS_NBD_CMD_WRITE:
    case VS_NBD_CMD_DISC:
        return fua;
    case VS_NBD_CMD_FLUSH:
        return (s->tx_flags & VS_NBD_FLAG_SEND_FLUSH) ? fua : UINT32_MAX;
    case VS_NBD_CMD_TRIM:
        return (s->tx_flags & VS_NBD_FLAG_SEND_TRIM) ? fua : UINT32_MAX;
    case VS_NBD_CMD_WRITE_ZEROES:
        if (!(s->tx_flags & VS_NBD_FLAG_SEND_WRITE_ZEROES))
            return UINT32_MAX;
        return fua | VS_NBD_CMD_FLAG_NO_HOLE |
               ((s->tx_flags & VS_NBD_FLAG_SEND_FAST_ZERO) ? VS_NBD_CMD_FLAG_FAST_ZERO : 0);
    default:
        return UINT32_MAX; /* CACHE, BLOCK_STATUS (no contexts), unknown */
    }
}

static bool is_write_type(uint16_t type)
{
    return type == VS_NBD_CMD_WRITE || type == VS_NBD_CMD_TRIM || type == VS_NBD_CMD_WRITE_ZEROES;
}

int vs_nbd_request_check(const struct vs_nbd_session *s, const struct vs_nbd_request *r,
                         uint32_t *payload_bytes)
{
    *payload_bytes = 0;
    if (r->type == VS_NBD_CMD_WRITE) {
        if (r->length > VS_NBD_PAYLOAD_MAX)
            return VS_EPROTO; /* cannot be skipped safely: hang up */
        *payload_bytes = r->length;
    }
    if (r->type == VS_NBD_CMD_DISC)
        return 0; /* "no reply to NBD_CMD_DISC": nothing to refuse */
    /* "SHOULD return NBD_EPERM if it receives a write or trim request on a
     * read-only export" -- even though TRIM and WRITE_ZEROES are not
     * advertised there. */
    if (is_write_type(r->type) && (s->tx_flags & VS_NBD_FLAG_READ_ONLY))
        return VS_NBD_EPERM;
    uint32_t allowed = allowed_flags(s, r->type);
    if (allowed == UINT32_MAX || (r->flags & ~allowed))
        return VS_NBD_EINVAL;
    if (r->type == VS_NBD_CMD_FLUSH)
        return (r->offset || r->length) ? VS_NBD_EINVAL : 0;
    uint64_t end = r->offset + r->length;
    if (end < r->offset || end > s->size_bytes)
        return (r->type == VS_NBD_CMD_WRITE || r->type == VS_NBD_CMD_WRITE_ZEROES) ? VS_NBD_ENOSPC
                                                                                   : VS_NBD_EINVAL;
    if (((r->offset | r->length) & (s->block_min - 1)) != 0)
        return VS_NBD_EINVAL;
    if ((r->type == VS_NBD_CMD_READ || r->type == VS_NBD_CMD_WRITE) && r->length > s->block_max)
        return VS_NBD_EINVAL;
    return 0;
}

void vs_nbd_put_simple_reply(uint8_t out[VS_NBD_SIMPLE_REPLY_SIZE], uint32_t error, uint64_t cookie)
{
    vs_nbd_put_be32(out, VS_NBD_MAGIC_SIMPLE_REPLY);
    vs_nbd_put_be32(out + 4, error);
    vs_nbd_put_be64(out + 8, cookie);
}

void vs_nbd_put_chunk_hdr(uint8_t out[VS_NBD_CHUNK_HDR_SIZE], uint16_t flags, uint16_t type,
                          uint64_t cookie, uint32_t length)
{
    vs_nbd_put_be32(out, VS_NBD_MAGIC_STRUCTURED_REPLY);
    vs_nbd_put_be16(out + 4, flags);
    vs_nbd_put_be16(out + 6, type);
    vs_nbd_put_be64(out + 8, cookie);
    vs_nbd_put_be32(out + 16, length);
}

uint32_t vs_nbd_errno_to_wire(int neg_errno)
{
    switch (-neg_errno) {
    case 0:
        return 0;
    case EPERM:
    case EROFS:
    case EACCES:
        return VS_NBD_EPERM;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return VS_NBD_ENOSPC;
    case EINVAL:
        return VS_NBD_EINVAL;
    case ENOMEM:
        return VS_NBD_ENOMEM;
    case EOVERFLOW:
        return VS_NBD_EOVERFLOW;
    case ENOTSUP:
        return VS_NBD_ENOTSUP;
    case ESHUTDOWN:
    case ECANCELED:
    case -VS_ESHUTDOWN:
        return VS_NBD_ESHUTDOWN;
    default:
        return VS_NBD_EIO;
    }
}

const char *vs_nbd_cmd_name(uint16_t type)
{
    static const char *const names[] = {"READ", "WRITE", "DISC",         "FLUSH",
                                        "TRIM", "CACHE", "WRITE_ZEROES", "BLOCK_STATUS"};
    return type < VS_ARRAY_SIZE(names) ? names[type] : "UNKNOWN";
}

const char *vs_nbd_opt_name(uint32_t opt)
{
    static const char *const names[] = {"?",
                                        "EXPORT_NAME",
                                        "ABORT",
                                        "LIST",
                                        "PEEK_EXPORT",
                                        "STARTTLS",
                                        "INFO",
                                        "GO",
                                        "STRUCTURED_REPLY",
                                        "LIST_META_CONTEXT",
                                        "SET_META_CONTEXT",
                                        "EXTENDED_HEADERS"};
    return opt < VS_ARRAY_SIZE(names) ? names[opt] : "UNKNOWN";
}
