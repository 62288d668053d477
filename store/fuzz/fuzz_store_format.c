/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: every decoder of an on-disk structure (superblock, device
 * header, checkpoint block, metadata page, journal record and its write item,
 * foreign signatures). The first byte picks the decoder; the rest is the
 * bytes it reads. Decoders must reject or accept anything without reading out
 * of bounds (they are given exactly the fuzz bytes, in a heap copy).
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t which = data[0];
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 0;
    memcpy(buf, data + 1, n);
    char err[256];
    uint8_t uuid[16] = {0};
    switch (which % 7) {
    case 0: {
        struct store_sb sb;
        if (store__sb_decode(buf, n, &sb, err, sizeof(err)) == 0) {
            uint8_t *out = malloc(SB_SIZE);
            store__sb_encode(&sb, out); /* a decoded superblock re-encodes */
            free(out);
        }
        break;
    }
    case 1:
        store__devhdr_decode(buf, n, uuid, 1, err, sizeof(err));
        break;
    case 2: {
        struct store_ckpt ck;
        store__ckpt_decode(buf, n, &ck);
        break;
    }
    case 3: {
        uint64_t seq;
        if (n >= PAGE_HDR_SIZE && n <= (1u << 20))
            store__page_check(buf, (uint32_t)n, 0, &seq);
        break;
    }
    case 4: {
        struct store_rec r;
        if (store__rec_decode(buf, n, &r) == 0 && r.type == REC_WRITE) {
            struct store_witem w;
            store__witem_decode(buf + REC_HDR_SIZE, r.hdr_len - REC_HDR_SIZE, &w);
        }
        break;
    }
    case 5: {
        struct store_witem w;
        store__witem_decode(buf, n, &w);
        break;
    }
    default: {
        char what[64];
        store__foreign_signature(buf, n, what, sizeof(what));
        break;
    }
    }
    free(buf);
    return 0;
}
