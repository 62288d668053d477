/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: every decoder of an on-disk structure (superblock, device
 * header, checkpoint block, metadata page, journal record and its write items,
 * foreign signatures). The first byte picks the decoder; the rest is the
 * bytes it reads. Decoders must reject or accept anything without reading out
 * of bounds (they are given exactly the fuzz bytes, in a heap copy).
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_crc32c.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every write item of a decoded record (several from format 2 on): each one
 * and its crcs lie in the header area, its data inside the record; the data
 * present in the input is read (as replay does to check its crcs). */
static volatile uint32_t crc_sink;

static void walk_witems(const uint8_t *buf, size_t n, const struct store_rec *r)
{
    struct store_witer it;
    struct store_witem w;
    uint64_t end = (uint64_t)r->hdr_len + r->data_len;
    store__witer_init(&it, r);
    while (store__witer_next(buf, r, &it, &w) == 0) {
        bool big = w.flags & RECF_BIG;
        if (it.item + 40 + 4ull * (w.len / SECTOR) > r->hdr_len || (big && r->item_count > 1) ||
            (!big && it.data + (uint64_t)w.len > end))
            abort(); /* the walker let an item out of its record */
        for (uint32_t i = 0; !big && end <= n && i < w.len / SECTOR; i++)
            crc_sink ^= vs_crc32c(buf + it.data + (size_t)i * SECTOR, SECTOR) ^
                        vs_get_u32(buf + it.item + 40 + 4 * i);
    }
}

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
        if (store__rec_decode(buf, n, &r) == 0 && r.type == REC_WRITE)
            walk_witems(buf, n, &r);
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
