/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fuzz_nbd -- the NBD handshake and request parser (nbd_proto.h) on arbitrary
 * client bytes, driven the way the server drives them.
 *
 * Input: byte 0 chooses the export (read-only or not, block size) and the
 * size of the reads the bytes arrive in (so split points vary); the rest is
 * what a client sends: client flags, options, then -- if the handshake
 * reached GO -- transmission requests with their WRITE payloads.
 *
 * Checked on top of ASan/UBSan: the reply buffer never overflows, every
 * option reply is well-formed, consumption always progresses, and a request
 * the judge accepts is in range and aligned.
 */
#include "nbd_proto.h"
#include "vs_assert.h"
#include "vs_err.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void export_for(uint8_t sel, struct vs_nbd_export *e)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "disk");
    snprintf(e->description, sizeof(e->description), "fuzz");
    e->block_min = (sel & 1) ? 512 : 1;
    e->block_pref = 4096;
    e->block_max = 1 << 20;
    e->size_bytes = 1 << 24;
    e->tx_flags = VS_NBD_FLAG_HAS_FLAGS | VS_NBD_FLAG_SEND_FLUSH | VS_NBD_FLAG_SEND_FUA |
                  VS_NBD_FLAG_CAN_MULTI_CONN;
    if (sel & 2)
        e->tx_flags |= VS_NBD_FLAG_READ_ONLY;
    else
        e->tx_flags |=
            VS_NBD_FLAG_SEND_TRIM | VS_NBD_FLAG_SEND_WRITE_ZEROES | VS_NBD_FLAG_SEND_FAST_ZERO;
}

/* Every option reply in out is a well-formed header plus its data. */
static void check_replies(const uint8_t *p, size_t len)
{
    size_t i = 0;
    while (i < len) {
        VS_ASSERT(len - i >= VS_NBD_OPT_REPLY_HDR_SIZE);
        VS_ASSERT(vs_nbd_get_be64(p + i) == VS_NBD_MAGIC_REP);
        i += VS_NBD_OPT_REPLY_HDR_SIZE + vs_nbd_get_be32(p + i + 16);
        VS_ASSERT(i <= len);
    }
}

static size_t handshake(struct vs_nbd_hs *hs, const uint8_t *in, size_t len, size_t chunk)
{
    static uint8_t out[VS_NBD_HS_OUT_MAX];
    size_t used = 0;
    while (used < len && hs->state != VS_NBD_HS_GO && hs->state != VS_NBD_HS_CLOSE) {
        size_t avail = len - used < chunk ? len - used : chunk;
        struct vs_nbd_obuf ob = {out, 0, sizeof(out)};
        size_t n = vs_nbd_hs_feed(hs, in + used, avail, &ob);
        VS_ASSERT(n <= avail);
        VS_ASSERT(n > 0 || ob.len > 0 || hs->state == VS_NBD_HS_GO || hs->state == VS_NBD_HS_CLOSE);
        bool export_name_reply = hs->state == VS_NBD_HS_GO && hs->opt == VS_NBD_OPT_EXPORT_NAME;
        if (export_name_reply)
            VS_ASSERT(ob.len == 10 || ob.len == VS_NBD_EXPORT_NAME_REPLY_MAX);
        else
            check_replies(out, ob.len);
        used += n;
    }
    return used;
}

static void transmission(const struct vs_nbd_session *s, const uint8_t *in, size_t len)
{
    size_t pos = 0;
    while (len - pos >= VS_NBD_REQUEST_SIZE) {
        struct vs_nbd_request r;
        if (vs_nbd_request_decode(in + pos, &r) != 0)
            return; /* the server hangs up */
        pos += VS_NBD_REQUEST_SIZE;
        uint32_t payload;
        int v = vs_nbd_request_check(s, &r, &payload);
        if (v < 0 || r.type == VS_NBD_CMD_DISC)
            return;
        if (v == 0 && r.type != VS_NBD_CMD_FLUSH && r.length > 0) {
            VS_ASSERT(r.offset + r.length <= s->size_bytes && r.offset + r.length >= r.offset);
            VS_ASSERT((r.offset | r.length) % s->block_min == 0);
        }
        uint8_t reply[VS_NBD_CHUNK_HDR_SIZE];
        if (s->structured)
            vs_nbd_put_chunk_hdr(reply, VS_NBD_REPLY_FLAG_DONE, VS_NBD_REPLY_TYPE_NONE, r.cookie,
                                 0);
        else
            vs_nbd_put_simple_reply(reply, (uint32_t)v, r.cookie);
        if (payload > len - pos)
            return;
        pos += payload;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vs_nbd_hs hs;
    static uint8_t greeting[VS_NBD_HS_OUT_MAX];
    if (size < 1)
        return 0;
    struct vs_nbd_export exp;
    export_for(data[0], &exp);
    size_t chunk = (data[0] >> 4) == 0 ? size : (size_t)(data[0] >> 4);
    struct vs_nbd_obuf ob = {greeting, 0, sizeof(greeting)};
    vs_nbd_hs_init(&hs, &exp, &ob);
    size_t used = handshake(&hs, data + 1, size - 1, chunk);
    if (hs.state == VS_NBD_HS_GO) {
        struct vs_nbd_session s;
        vs_nbd_session_from_hs(&s, &hs);
        transmission(&s, data + 1 + used, size - 1 - used);
    }
    return 0;
}
