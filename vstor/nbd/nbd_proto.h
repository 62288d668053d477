/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_proto.h -- the NBD wire protocol: constants, the fixed-newstyle
 * handshake as a pure state machine, the transmission request parser and the
 * reply encoders. No I/O and no allocation: the server (nbd_server.c) feeds
 * bytes in and writes the bytes that come out, and the fuzzer
 * (fuzz/fuzz_nbd.c) drives exactly the same functions.
 *
 * The specification is NBD's doc/proto.md ("The NBD protocol"). Numbers on
 * the wire are big-endian ("network byte order"), unlike vstor's own
 * little-endian formats, so this module has its own be16/32/64 helpers.
 *
 * What we implement (docs/nbd.md has the operator's view):
 *  - handshake: fixed newstyle with NBD_FLAG_NO_ZEROES; options EXPORT_NAME,
 *    ABORT, LIST, INFO, GO (with NBD_INFO_EXPORT, NAME, DESCRIPTION and
 *    BLOCK_SIZE) and STRUCTURED_REPLY. Every other option (STARTTLS, the
 *    meta-context options, EXTENDED_HEADERS, unknown ones) gets
 *    NBD_REP_ERR_UNSUP, as the spec asks of a server that does not know it.
 *  - transmission: READ, WRITE, DISC, FLUSH, TRIM, WRITE_ZEROES with the
 *    flags FUA, NO_HOLE, FAST_ZERO and (with structured replies) DF.
 *
 * Bad input, two kinds (the split the spec draws):
 *  - framing violations -- a bad magic, unknown client flags, a WRITE payload
 *    larger than VS_NBD_PAYLOAD_MAX, an option larger than
 *    VS_NBD_OPT_SKIP_MAX, too many options -- cannot be answered in-band, so
 *    they end that connection (a "hard disconnect"): VS_NBD_HS_CLOSE or
 *    VS_EPROTO;
 *  - well-framed but wrong requests and options get the error the spec
 *    names: NBD_REP_ERR_INVALID / _UNKNOWN / _UNSUP / _TOO_BIG for options,
 *    NBD_EINVAL / EPERM / ENOSPC for commands. The connection stays up.
 *
 * Thread-safety: pure functions over caller-owned structs.
 */
#ifndef VSTOR_NBD_PROTO_H
#define VSTOR_NBD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Magic numbers ----------------------------------------------------- */
#define VS_NBD_MAGIC_INIT             0x4e42444d41474943ull /* "NBDMAGIC" */
#define VS_NBD_MAGIC_OPTS             0x49484156454f5054ull /* "IHAVEOPT" */
#define VS_NBD_MAGIC_REP              0x0003e889045565a9ull /* option replies */
#define VS_NBD_MAGIC_REQUEST          0x25609513u
#define VS_NBD_MAGIC_SIMPLE_REPLY     0x67446698u
#define VS_NBD_MAGIC_STRUCTURED_REPLY 0x668e33efu

/* ---- Handshake flags (server, 16 bits) and client flags (32 bits) ------- */
#define VS_NBD_FLAG_FIXED_NEWSTYLE   (1u << 0)
#define VS_NBD_FLAG_NO_ZEROES        (1u << 1)
#define VS_NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define VS_NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* ---- Transmission flags (16 bits) --------------------------------------- */
#define VS_NBD_FLAG_HAS_FLAGS         (1u << 0)
#define VS_NBD_FLAG_READ_ONLY         (1u << 1)
#define VS_NBD_FLAG_SEND_FLUSH        (1u << 2)
#define VS_NBD_FLAG_SEND_FUA          (1u << 3)
#define VS_NBD_FLAG_ROTATIONAL        (1u << 4)
#define VS_NBD_FLAG_SEND_TRIM         (1u << 5)
#define VS_NBD_FLAG_SEND_WRITE_ZEROES (1u << 6)
#define VS_NBD_FLAG_SEND_DF           (1u << 7)
#define VS_NBD_FLAG_CAN_MULTI_CONN    (1u << 8)
#define VS_NBD_FLAG_SEND_FAST_ZERO    (1u << 11)

/* ---- Options ------------------------------------------------------------ */
#define VS_NBD_OPT_EXPORT_NAME       1u
#define VS_NBD_OPT_ABORT             2u
#define VS_NBD_OPT_LIST              3u
#define VS_NBD_OPT_STARTTLS          5u
#define VS_NBD_OPT_INFO              6u
#define VS_NBD_OPT_GO                7u
#define VS_NBD_OPT_STRUCTURED_REPLY  8u
#define VS_NBD_OPT_LIST_META_CONTEXT 9u
#define VS_NBD_OPT_SET_META_CONTEXT  10u
#define VS_NBD_OPT_EXTENDED_HEADERS  11u

/* ---- Option reply types ------------------------------------------------- */
#define VS_NBD_REP_ACK                 1u
#define VS_NBD_REP_SERVER              2u
#define VS_NBD_REP_INFO                3u
#define VS_NBD_REP_ERR_BIT             (1u << 31)
#define VS_NBD_REP_ERR_UNSUP           (VS_NBD_REP_ERR_BIT | 1u)
#define VS_NBD_REP_ERR_POLICY          (VS_NBD_REP_ERR_BIT | 2u)
#define VS_NBD_REP_ERR_INVALID         (VS_NBD_REP_ERR_BIT | 3u)
#define VS_NBD_REP_ERR_PLATFORM        (VS_NBD_REP_ERR_BIT | 4u)
#define VS_NBD_REP_ERR_TLS_REQD        (VS_NBD_REP_ERR_BIT | 5u)
#define VS_NBD_REP_ERR_UNKNOWN         (VS_NBD_REP_ERR_BIT | 6u)
#define VS_NBD_REP_ERR_SHUTDOWN        (VS_NBD_REP_ERR_BIT | 7u)
#define VS_NBD_REP_ERR_BLOCK_SIZE_REQD (VS_NBD_REP_ERR_BIT | 8u)
#define VS_NBD_REP_ERR_TOO_BIG         (VS_NBD_REP_ERR_BIT | 9u)

/* ---- NBD_REP_INFO types ------------------------------------------------- */
#define VS_NBD_INFO_EXPORT      0u
#define VS_NBD_INFO_NAME        1u
#define VS_NBD_INFO_DESCRIPTION 2u
#define VS_NBD_INFO_BLOCK_SIZE  3u

/* ---- Commands and command flags ----------------------------------------- */
#define VS_NBD_CMD_READ         0u
#define VS_NBD_CMD_WRITE        1u
#define VS_NBD_CMD_DISC         2u
#define VS_NBD_CMD_FLUSH        3u
#define VS_NBD_CMD_TRIM         4u
#define VS_NBD_CMD_CACHE        5u
#define VS_NBD_CMD_WRITE_ZEROES 6u
#define VS_NBD_CMD_BLOCK_STATUS 7u

#define VS_NBD_CMD_FLAG_FUA       (1u << 0)
#define VS_NBD_CMD_FLAG_NO_HOLE   (1u << 1)
#define VS_NBD_CMD_FLAG_DF        (1u << 2)
#define VS_NBD_CMD_FLAG_REQ_ONE   (1u << 3)
#define VS_NBD_CMD_FLAG_FAST_ZERO (1u << 4)

/* ---- Structured replies ------------------------------------------------- */
#define VS_NBD_REPLY_FLAG_DONE        (1u << 0)
#define VS_NBD_REPLY_TYPE_NONE        0u
#define VS_NBD_REPLY_TYPE_OFFSET_DATA 1u
#define VS_NBD_REPLY_TYPE_ERROR       ((1u << 15) | 1u)

/* ---- Error values on the wire (not the host's errno) -------------------- */
#define VS_NBD_EPERM     1u
#define VS_NBD_EIO       5u
#define VS_NBD_ENOMEM    12u
#define VS_NBD_EINVAL    22u
#define VS_NBD_ENOSPC    28u
#define VS_NBD_EOVERFLOW 75u
#define VS_NBD_ENOTSUP   95u
#define VS_NBD_ESHUTDOWN 108u

/* ---- Sizes and limits --------------------------------------------------- */
#define VS_NBD_GREETING_SIZE         18  /* NBDMAGIC, IHAVEOPT, 16-bit flags */
#define VS_NBD_OPT_HDR_SIZE          16  /* IHAVEOPT, option, length */
#define VS_NBD_OPT_REPLY_HDR_SIZE    20  /* magic, option, type, length */
#define VS_NBD_REQUEST_SIZE          28  /* magic, flags, type, cookie, offset, length */
#define VS_NBD_SIMPLE_REPLY_SIZE     16  /* magic, error, cookie */
#define VS_NBD_CHUNK_HDR_SIZE        20  /* magic, flags, type, cookie, length */
#define VS_NBD_EXPORT_NAME_REPLY_MAX 134 /* size, flags, 124 zero bytes */

/* Our export names and descriptions are at most this long (the spec allows
 * 4096 for any string; we keep ours short so every reply fits VS_NBD_HS_OUT_MAX). */
#define VS_NBD_NAME_MAX 255
/* Option data we buffer and parse (a GO naming a 4096-byte export with 64 info
 * requests fits). Larger known options are skipped and answered with
 * NBD_REP_ERR_TOO_BIG; anything larger than VS_NBD_OPT_SKIP_MAX ends the
 * connection (the spec lets a server treat it as denial of service). */
#define VS_NBD_OPT_DATA_MAX (4 + 4096 + 2 + 2 * 64)
#define VS_NBD_OPT_SKIP_MAX (1u << 20)
/* Options one connection may send before we consider it abusive. */
#define VS_NBD_OPT_COUNT_MAX 1024
/* The largest reply to one option. */
#define VS_NBD_HS_OUT_MAX 2048
/* The largest WRITE payload we accept at all: the spec asks servers not to
 * treat anything below 2^25 as denial of service. A larger WRITE cannot be
 * skipped safely and ends the connection. */
#define VS_NBD_PAYLOAD_MAX (32u << 20)

/* ---- Big-endian helpers ------------------------------------------------- */
static inline void vs_nbd_put_be16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}
static inline void vs_nbd_put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static inline void vs_nbd_put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}
static inline uint16_t vs_nbd_get_be16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}
static inline uint32_t vs_nbd_get_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t vs_nbd_get_be64(const uint8_t *p)
{
    return ((uint64_t)vs_nbd_get_be32(p) << 32) | vs_nbd_get_be32(p + 4);
}

/* ---- The export as the handshake describes it --------------------------- */

/* Filled by the server from the backend's properties; read-only afterwards. */
struct vs_nbd_export {
    char name[VS_NBD_NAME_MAX + 1];        /* "" is allowed; "" also selects it */
    char description[VS_NBD_NAME_MAX + 1]; /* may be empty */
    uint64_t size_bytes;
    uint16_t tx_flags;   /* without SEND_DF, which depends on structured replies */
    uint32_t block_min;  /* power of 2, 1..65536 */
    uint32_t block_pref; /* power of 2, >= max(block_min, 512) */
    uint32_t block_max;  /* multiple of block_min, <= VS_NBD_PAYLOAD_MAX */
    bool no_structured;  /* answer NBD_OPT_STRUCTURED_REPLY with ERR_UNSUP */
};

/* Checks the invariants above; returns 0 or -EINVAL. */
int vs_nbd_export_check(const struct vs_nbd_export *exp);

/* ---- Handshake state machine -------------------------------------------- */

/*
 *   (greeting sent)
 *        |
 *   CLIENT_FLAGS --bad flags--> CLOSE
 *        |
 *     OPT_HDR <---------------------------+
 *        |  bad magic / too many --> CLOSE|
 *        +--> OPT_DATA --(option done)----+--> GO (EXPORT_NAME or GO accepted)
 *        +--> OPT_SKIP --(skipped)--------+--> CLOSE (ABORT, EXPORT_NAME refused)
 */
enum vs_nbd_hs_state {
    VS_NBD_HS_CLIENT_FLAGS,
    VS_NBD_HS_OPT_HDR,
    VS_NBD_HS_OPT_DATA,
    VS_NBD_HS_OPT_SKIP,
    VS_NBD_HS_GO,    /* final: enter transmission with hs->tx_flags */
    VS_NBD_HS_CLOSE, /* final: end the connection; hs->close_reason says why */
};

/* Output of the handshake: bytes to send, appended by vs_nbd_hs_feed. */
struct vs_nbd_obuf {
    uint8_t *p;
    size_t len, cap; /* cap >= VS_NBD_HS_OUT_MAX */
};

struct vs_nbd_hs {
    const struct vs_nbd_export *exp;
    enum vs_nbd_hs_state state;
    bool no_zeroes;         /* client set NBD_FLAG_C_NO_ZEROES */
    bool structured;        /* NBD_OPT_STRUCTURED_REPLY was acknowledged */
    bool block_size_agreed; /* the final GO requested NBD_INFO_BLOCK_SIZE */
    uint16_t tx_flags;      /* valid in VS_NBD_HS_GO */
    uint32_t opt, opt_len;  /* the option being read */
    uint32_t got;           /* bytes of the current field read so far */
    unsigned opt_count;
    const char *close_reason; /* static text, valid in VS_NBD_HS_CLOSE */
    uint8_t hdr[VS_NBD_OPT_HDR_SIZE];
    uint8_t data[VS_NBD_OPT_DATA_MAX];
};

/* Starts a handshake for `exp` (which must outlive hs) and writes the
 * server's greeting (VS_NBD_GREETING_SIZE bytes) to out. */
void vs_nbd_hs_init(struct vs_nbd_hs *hs, const struct vs_nbd_export *exp, struct vs_nbd_obuf *out);

/* Consumes client bytes. Stops after an option that produced output (so out,
 * emptied by the caller between calls, never overflows), when the state
 * becomes final, or when `in` is exhausted. Returns the number of bytes
 * consumed; bytes after the final GO belong to the transmission phase.
 * Precondition: out->cap - out->len >= VS_NBD_HS_OUT_MAX. */
size_t vs_nbd_hs_feed(struct vs_nbd_hs *hs, const uint8_t *in, size_t len, struct vs_nbd_obuf *out);

/* ---- Transmission phase ------------------------------------------------- */

struct vs_nbd_request {
    uint16_t flags, type;
    uint64_t cookie, offset;
    uint32_t length;
};

/* What the handshake agreed, used to judge each request. */
struct vs_nbd_session {
    uint64_t size_bytes;
    uint16_t tx_flags;
    bool structured;
    uint32_t block_min, block_max;
};

void vs_nbd_session_from_hs(struct vs_nbd_session *s, const struct vs_nbd_hs *hs);

/* Decodes VS_NBD_REQUEST_SIZE bytes. Returns 0, or VS_EPROTO on a bad magic. */
int vs_nbd_request_decode(const uint8_t *p, struct vs_nbd_request *r);

/* Judges a decoded request. *payload_bytes gets the number of bytes that
 * follow the header on the wire (a WRITE's length, else 0), which the caller
 * must consume whatever the verdict. Returns:
 *    0           execute it;
 *    > 0         reply with this NBD error (VS_NBD_EINVAL, _EPERM, _ENOSPC);
 *    VS_EPROTO   a framing violation: end the connection. */
int vs_nbd_request_check(const struct vs_nbd_session *s, const struct vs_nbd_request *r,
                         uint32_t *payload_bytes);

/* Encoders for replies. */
void vs_nbd_put_simple_reply(uint8_t out[VS_NBD_SIMPLE_REPLY_SIZE], uint32_t error,
                             uint64_t cookie);
void vs_nbd_put_chunk_hdr(uint8_t out[VS_NBD_CHUNK_HDR_SIZE], uint16_t flags, uint16_t type,
                          uint64_t cookie, uint32_t length);

/* Maps a negative errno from a backend to the NBD error sent on the wire. */
uint32_t vs_nbd_errno_to_wire(int neg_errno);

/* Names for logs ("READ", "GO"); never NULL. */
const char *vs_nbd_cmd_name(uint16_t type);
const char *vs_nbd_opt_name(uint32_t opt);

#endif /* VSTOR_NBD_PROTO_H */
