/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: a byte stream of vstor frames, decoded the way the messenger
 * does -- header, then the payload items of the ops that carry them, each
 * reply checked against the last request, each HELLO run through the
 * handshake check. Properties, beyond "never crashes or overreads":
 *  - an accepted header re-encodes to exactly the received bytes;
 *  - a refused header always comes with a message.
 *
 * Input: byte 0 selects options (bit 0: repair each header's CRC so the
 * fuzzer reaches the field rules; bit 1: small limits), then the stream.
 */
#include "net_proto.h"
#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void payload_items(const struct vs_net_hdr *h, const uint8_t *p, size_t n)
{
    bool reply = h->flags & VS_NET_F_REPLY;
    if (!reply && (h->opcode == VS_NET_OP_SEC_STABILIZE || h->opcode == VS_NET_OP_SEC_ROLLBACK ||
                   h->opcode == VS_NET_OP_SEC_READ_BITMAP)) {
        for (size_t off = 0; off + VS_NET_OBJVER_SIZE <= n; off += VS_NET_OBJVER_SIZE) {
            struct vs_net_objver v;
            vs_net_objver_get(p + off, &v);
            uint8_t again[VS_NET_OBJVER_SIZE];
            vs_net_objver_put(again, &v);
            VS_ASSERT(memcmp(again, p + off, VS_NET_OBJVER_SIZE) == 0);
        }
    }
    if (reply && h->opcode == VS_NET_OP_SEC_LIST && h->rep.retval == 0) {
        for (size_t off = 0; off + VS_NET_LISTENT_SIZE <= n; off += VS_NET_LISTENT_SIZE) {
            struct vs_net_listent e;
            if (vs_net_listent_get(p + off, &e) == 0) {
                uint8_t again[VS_NET_LISTENT_SIZE];
                vs_net_listent_put(again, &e);
                VS_ASSERT(memcmp(again, p + off, VS_NET_LISTENT_SIZE) == 0);
            }
        }
    }
}

/* Decodes one header into *out; returns false when it is refused. */
static bool one_frame(const uint8_t *hdr_in, bool fix_crc, const struct vs_net_limits *lim,
                      struct vs_net_hdr *last_req, bool *have_req, struct vs_net_hdr *out)
{
    uint8_t *hdr = malloc(VS_NET_HDR_SIZE); /* exact size: ASan sees any overread */
    memcpy(hdr, hdr_in, VS_NET_HDR_SIZE);
    if (fix_crc)
        vs_put_u32(hdr + 124, vs_crc32c(hdr, 124));
    struct vs_net_hdr h;
    char err[200] = "";
    int rc = vs_net_hdr_decode(hdr, lim, &h, err, sizeof(err));
    if (rc != 0) {
        VS_ASSERT(rc == VS_EPROTO && err[0] != 0);
        free(hdr);
        return false;
    }
    uint8_t again[VS_NET_HDR_SIZE];
    VS_ASSERT(vs_net_hdr_encode(&h, lim, again, NULL, 0) == 0);
    VS_ASSERT(memcmp(again, hdr, VS_NET_HDR_SIZE) == 0);
    free(hdr);
    *out = h;
    struct vs_net_hello ours = {.proto_min = 1, .proto_max = 1, .role = VS_NET_ROLE_OSD};
    uint16_t version;
    if (h.opcode == VS_NET_OP_HELLO) {
        const struct vs_net_hello *theirs =
            (h.flags & VS_NET_F_REPLY) ? &h.rep.hello : &h.req.hello;
        if (vs_net_hello_check(&ours, theirs, &version, err, sizeof(err)) == 0)
            VS_ASSERT(version >= 1);
        else
            VS_ASSERT(err[0] != 0);
    }
    if (h.flags & VS_NET_F_REPLY) {
        if (*have_req && vs_net_reply_check(last_req, &h, err, sizeof(err)) != 0)
            VS_ASSERT(err[0] != 0);
    } else {
        *last_req = h;
        *have_req = true;
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t opts = data[0];
    data++;
    size--;
    struct vs_net_limits lim;
    vs_net_limits_default(&lim);
    if (opts & 2) {
        lim.data_max = 4096;
        lim.meta_max = 4096;
        lim.bitmap_max = 64;
    }
    struct vs_net_hdr last_req;
    bool have_req = false;
    while (size >= VS_NET_HDR_SIZE) {
        struct vs_net_hdr h;
        bool ok = one_frame(data, opts & 1, &lim, &last_req, &have_req, &h);
        data += VS_NET_HDR_SIZE;
        size -= VS_NET_HDR_SIZE;
        if (!ok)
            continue; /* the messenger would close here; keep going for coverage */
        payload_items(&h, data, VS_MIN((size_t)h.meta_len, size));
        size_t skip = VS_MIN((size_t)h.meta_len + h.data_len, size);
        data += skip;
        size -= skip;
    }
    return 0;
}
