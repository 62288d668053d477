/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_format.c -- encoders and decoders of every on-disk structure: the
 * superblock, the device header, the checkpoint block, metadata pages and
 * journal records. Byte offsets are listed in docs/disk-format.md; every
 * structure carries a magic, a version or sequence number and a crc32c
 * (invariant I1). Decoders never trust a length before checking it against
 * the bytes available: they are fuzzed (store/fuzz/).
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_crc32c.h"

#include <string.h>

/* crc32c of buf[0..len) with the 4 bytes at crc_off counted as zero. */
static uint32_t crc_skip(const uint8_t *buf, size_t len, size_t crc_off)
{
    static const uint8_t zero[4];
    uint32_t c = vs_crc32c_extend(0, buf, crc_off);
    c = vs_crc32c_extend(c, zero, 4);
    return vs_crc32c_extend(c, buf + crc_off + 4, len - crc_off - 4);
}

/* ---- superblock ---------------------------------------------------------- */

#define SB_CRC_OFF 4092u

static void layout_put(struct vs_cursor *c, const struct vs_store_layout *l)
{
    vs_wr_u8(c, l->meta_dev);
    vs_wr_u8(c, l->journal_dev);
    vs_wr_u8(c, l->data_dev);
    vs_wr_zero(c, 5);
    vs_wr_u64(c, l->meta_offset);
    vs_wr_u64(c, l->journal_offset);
    vs_wr_u64(c, l->journal_size);
    vs_wr_u64(c, l->data_offset);
    vs_wr_u64(c, l->data_size);
}

static void layout_get(struct vs_cursor *c, struct vs_store_layout *l)
{
    l->meta_dev = vs_rd_u8(c);
    l->journal_dev = vs_rd_u8(c);
    l->data_dev = vs_rd_u8(c);
    vs_rd_skip(c, 5);
    l->meta_offset = vs_rd_u64(c);
    l->journal_offset = vs_rd_u64(c);
    l->journal_size = vs_rd_u64(c);
    l->data_offset = vs_rd_u64(c);
    l->data_size = vs_rd_u64(c);
}

void store__sb_encode(const struct store_sb *sb, uint8_t *buf)
{
    memset(buf, 0, SB_SIZE);
    struct vs_cursor c = vs_cursor_make(buf, SB_SIZE);
    vs_wr_u64(&c, SB_MAGIC);
    vs_wr_u32(&c, sb->format_version);
    vs_wr_u32(&c, SB_SIZE);
    vs_wr_bytes(&c, sb->uuid, 16);
    vs_wr_u64(&c, sb->cluster_id);
    vs_wr_u64(&c, sb->osd_id);
    vs_wr_u32(&c, sb->block_size);
    vs_wr_u32(&c, sb->granule);
    vs_wr_u32(&c, sb->csum_type);
    vs_wr_u32(&c, sb->csum_block_size);
    vs_wr_u32(&c, sb->page_size);
    vs_wr_u32(&c, sb->entry_size);
    vs_wr_u64(&c, sb->block_count);
    vs_wr_u64(&c, sb->tomb_count);
    layout_put(&c, &sb->layout);
    vs_wr_u32(&c, sb->dev_count);
    vs_wr_u32(&c, 0);
    for (unsigned i = 0; i < VS_STORE_DEVS_MAX; i++)
        vs_wr_u64(&c, sb->dev_size[i]);
    vs_wr_u64(&c, sb->created_ms);
    VS_ASSERT(c.ok);
    vs_put_u32(buf + SB_CRC_OFF, crc_skip(buf, SB_SIZE, SB_CRC_OFF));
}

static int sb_check_fields(const struct store_sb *sb, char *err, size_t esz)
{
    if (sb->block_size < VS_STORE_BLOCK_MIN || sb->block_size > VS_STORE_BLOCK_MAX ||
        (sb->block_size & (sb->block_size - 1))) {
        snprintf(err, esz, "superblock: block_size %u is invalid", sb->block_size);
        return VS_ECORRUPT;
    }
    if (sb->granule != VS_STORE_GRANULE) {
        snprintf(err, esz, "superblock: bitmap granularity %u is not 4096", sb->granule);
        return VS_ECORRUPT;
    }
    if (sb->csum_type > 1 || (sb->csum_type && sb->csum_block_size != SECTOR)) {
        snprintf(err, esz, "superblock: checksum type %u block %u unsupported", sb->csum_type,
                 sb->csum_block_size);
        return VS_ECORRUPT;
    }
    uint32_t ncsum = sb->csum_type ? sb->block_size / SECTOR : 0;
    uint32_t es = store__entry_size(sb->block_size, ncsum);
    if (sb->entry_size != es || sb->page_size < es + PAGE_HDR_SIZE || sb->page_size % SECTOR ||
        sb->page_size > (64u << 20)) {
        snprintf(err, esz, "superblock: page size %u / entry size %u inconsistent", sb->page_size,
                 sb->entry_size);
        return VS_ECORRUPT;
    }
    if (sb->block_count == 0 || sb->block_count >= TOMB_BIT || sb->tomb_count >= TOMB_BIT ||
        sb->dev_count == 0 || sb->dev_count > VS_STORE_DEVS_MAX) {
        snprintf(err, esz, "superblock: block count %llu / tombstones %llu / devices %u invalid",
                 (unsigned long long)sb->block_count, (unsigned long long)sb->tomb_count,
                 sb->dev_count);
        return VS_ECORRUPT;
    }
    const struct vs_store_layout *l = &sb->layout;
    if (l->meta_dev >= sb->dev_count || l->journal_dev >= sb->dev_count ||
        l->data_dev >= sb->dev_count || l->journal_size < 16 * SECTOR ||
        l->journal_size > (1ull << 40) || l->journal_size % SECTOR || l->journal_offset % SECTOR ||
        l->data_offset % SECTOR || l->meta_offset % SECTOR ||
        l->data_size / sb->block_size < sb->block_count) {
        snprintf(err, esz, "superblock: layout is invalid");
        return VS_ECORRUPT;
    }
    return 0;
}

int store__sb_decode(const uint8_t *buf, size_t len, struct store_sb *sb, char *err, size_t esz)
{
    memset(sb, 0, sizeof(*sb));
    if (len < SB_SIZE || vs_get_u64(buf) != SB_MAGIC) {
        snprintf(err, esz, "no vstor superblock (magic)");
        return VS_EBADFORMAT;
    }
    struct vs_cursor c = vs_cursor_make((void *)buf, SB_SIZE);
    vs_rd_skip(&c, 8);
    sb->format_version = vs_rd_u32(&c);
    if (sb->format_version > VS_STORE_FORMAT_VERSION || sb->format_version == 0) {
        snprintf(err, esz, "superblock: format version %u, this binary reads up to %u",
                 sb->format_version, VS_STORE_FORMAT_VERSION);
        return VS_EFORMATVERSION;
    }
    if (vs_rd_u32(&c) != SB_SIZE || vs_get_u32(buf + SB_CRC_OFF) != crc_skip(buf, SB_SIZE,
                                                                              SB_CRC_OFF)) {
        snprintf(err, esz, "superblock: bad checksum");
        return VS_ECHECKSUM;
    }
    vs_rd_bytes(&c, sb->uuid, 16);
    sb->cluster_id = vs_rd_u64(&c);
    sb->osd_id = vs_rd_u64(&c);
    sb->block_size = vs_rd_u32(&c);
    sb->granule = vs_rd_u32(&c);
    sb->csum_type = vs_rd_u32(&c);
    sb->csum_block_size = vs_rd_u32(&c);
    sb->page_size = vs_rd_u32(&c);
    sb->entry_size = vs_rd_u32(&c);
    sb->block_count = vs_rd_u64(&c);
    sb->tomb_count = vs_rd_u64(&c);
    layout_get(&c, &sb->layout);
    sb->dev_count = vs_rd_u32(&c);
    vs_rd_skip(&c, 4);
    for (unsigned i = 0; i < VS_STORE_DEVS_MAX; i++)
        sb->dev_size[i] = vs_rd_u64(&c);
    sb->created_ms = vs_rd_u64(&c);
    if (!c.ok)
        return VS_ECORRUPT;
    return sb_check_fields(sb, err, esz);
}

/* ---- device header (devices 1 and 2 when the areas are split) ---------- */

void store__devhdr_encode(const uint8_t uuid[16], unsigned dev, uint32_t version, uint8_t *buf)
{
    memset(buf, 0, SB_SIZE);
    vs_put_u64(buf, DEVHDR_MAGIC);
    vs_put_u32(buf + 8, version);
    vs_put_u32(buf + 12, dev);
    memcpy(buf + 16, uuid, 16);
    vs_put_u32(buf + SB_CRC_OFF, crc_skip(buf, SB_SIZE, SB_CRC_OFF));
}

int store__devhdr_decode(const uint8_t *buf, size_t len, const uint8_t uuid[16], unsigned dev,
                         char *err, size_t esz)
{
    if (len < SB_SIZE || vs_get_u64(buf) != DEVHDR_MAGIC) {
        snprintf(err, esz, "device %u: no vstor device header (magic)", dev);
        return VS_EBADFORMAT;
    }
    if (vs_get_u32(buf + SB_CRC_OFF) != crc_skip(buf, SB_SIZE, SB_CRC_OFF)) {
        snprintf(err, esz, "device %u: device header: bad checksum", dev);
        return VS_ECHECKSUM;
    }
    if (vs_get_u32(buf + 8) > VS_STORE_FORMAT_VERSION) {
        snprintf(err, esz, "device %u: device header: newer format version %u", dev,
                 vs_get_u32(buf + 8));
        return VS_EFORMATVERSION;
    }
    if (vs_get_u32(buf + 12) != dev || memcmp(buf + 16, uuid, 16) != 0) {
        snprintf(err, esz, "device %u: belongs to another store (uuid or role %u differ)", dev,
                 vs_get_u32(buf + 12));
        return VS_EWRONGCLUSTER;
    }
    return 0;
}

/* ---- checkpoint block ---------------------------------------------------- */

#define CKPT_CRC_OFF 8u

void store__ckpt_encode(const struct store_ckpt *ck, uint8_t *buf)
{
    memset(buf, 0, CKPT_SIZE);
    struct vs_cursor c = vs_cursor_make(buf, CKPT_SIZE);
    vs_wr_u32(&c, CKPT_MAGIC);
    vs_wr_u32(&c, ck->version);
    vs_wr_u32(&c, 0); /* crc */
    vs_wr_u32(&c, ck->jstart_prev_crc);
    vs_wr_u64(&c, ck->ckpt_seq);
    vs_wr_u64(&c, ck->jstart_pos);
    vs_wr_u64(&c, ck->jstart_seq);
    vs_wr_u64(&c, ck->synced_seq);
    VS_ASSERT(c.ok);
    vs_put_u32(buf + CKPT_CRC_OFF, crc_skip(buf, CKPT_SIZE, CKPT_CRC_OFF));
}

int store__ckpt_decode(const uint8_t *buf, size_t len, struct store_ckpt *ck)
{
    memset(ck, 0, sizeof(*ck));
    if (len < CKPT_SIZE || vs_get_u32(buf) != CKPT_MAGIC)
        return VS_EBADFORMAT;
    if (vs_get_u32(buf + 4) > VS_STORE_FORMAT_VERSION)
        return VS_EFORMATVERSION;
    if (vs_get_u32(buf + CKPT_CRC_OFF) != crc_skip(buf, CKPT_SIZE, CKPT_CRC_OFF))
        return VS_ECHECKSUM;
    ck->jstart_prev_crc = vs_get_u32(buf + 12);
    ck->ckpt_seq = vs_get_u64(buf + 16);
    ck->jstart_pos = vs_get_u64(buf + 24);
    ck->jstart_seq = vs_get_u64(buf + 32);
    ck->synced_seq = vs_get_u64(buf + 40);
    return 0;
}

/* ---- metadata pages ------------------------------------------------------ */

uint32_t store__entry_size(uint32_t block_size, uint32_t ncsum)
{
    uint32_t bitmap = (block_size / VS_STORE_GRANULE + 7) / 8;
    uint32_t sz = ENTRY_HDR_SIZE + bitmap + 4 * ncsum;
    return (sz + 7) & ~7u;
}

#define PAGE_CRC_OFF 4u

void store__page_seal(uint8_t *page, uint32_t page_size, uint64_t page_no, uint64_t seq,
                      uint32_t version)
{
    vs_put_u32(page, PAGE_MAGIC);
    vs_put_u32(page + 4, 0);
    vs_put_u32(page + 8, version);
    vs_put_u32(page + 12, 0);
    vs_put_u64(page + 16, page_no);
    vs_put_u64(page + 24, seq);
    vs_put_u32(page + PAGE_CRC_OFF, crc_skip(page, page_size, PAGE_CRC_OFF));
}

/* 0 with *seq for a valid page; 1 for a never-written (all zero) page. */
int store__page_check(const uint8_t *page, uint32_t page_size, uint64_t page_no, uint64_t *seq)
{
    *seq = 0;
    if (page_size < PAGE_HDR_SIZE)
        return VS_ECORRUPT;
    if (vs_get_u32(page) != PAGE_MAGIC) {
        for (uint32_t i = 0; i < page_size; i++)
            if (page[i])
                return VS_EBADFORMAT;
        return 1;
    }
    if (vs_get_u32(page + PAGE_CRC_OFF) != crc_skip(page, page_size, PAGE_CRC_OFF))
        return VS_ECHECKSUM;
    if (vs_get_u32(page + 8) > VS_STORE_FORMAT_VERSION)
        return VS_EFORMATVERSION;
    if (vs_get_u64(page + 16) != page_no)
        return VS_ECORRUPT; /* a misdirected write */
    *seq = vs_get_u64(page + 24);
    return 0;
}

/* ---- journal records ----------------------------------------------------- */

#define REC_CRC_OFF 8u

void store__rec_encode_hdr(const struct store_rec *r, uint8_t *buf)
{
    struct vs_cursor c = vs_cursor_make(buf, REC_HDR_SIZE);
    vs_wr_u32(&c, REC_MAGIC);
    vs_wr_u16(&c, (uint16_t)r->type);
    vs_wr_u16(&c, (uint16_t)r->version);
    vs_wr_u32(&c, 0); /* crc */
    vs_wr_u32(&c, r->prev_crc);
    vs_wr_u64(&c, r->seq);
    vs_wr_u64(&c, r->synced_seq);
    vs_wr_u32(&c, r->hdr_len);
    vs_wr_u32(&c, r->data_len);
    vs_wr_u32(&c, r->item_count);
    vs_wr_u32(&c, r->incarnation);
    vs_wr_zero(&c, vs_cursor_left(&c));
    VS_ASSERT(c.ok);
}

uint32_t store__rec_seal(uint8_t *buf, uint32_t hdr_len)
{
    uint32_t crc = crc_skip(buf, hdr_len, REC_CRC_OFF);
    vs_put_u32(buf + REC_CRC_OFF, crc);
    return crc;
}

int store__rec_decode(const uint8_t *buf, size_t avail, struct store_rec *r)
{
    memset(r, 0, sizeof(*r));
    if (avail < REC_HDR_SIZE || vs_get_u32(buf) != REC_MAGIC)
        return VS_EBADFORMAT;
    r->type = vs_get_u16(buf + 4);
    r->version = vs_get_u16(buf + 6);
    if (r->version > VS_STORE_FORMAT_VERSION)
        return VS_EFORMATVERSION;
    r->crc = vs_get_u32(buf + 8);
    r->prev_crc = vs_get_u32(buf + 12);
    r->seq = vs_get_u64(buf + 16);
    r->synced_seq = vs_get_u64(buf + 24);
    r->hdr_len = vs_get_u32(buf + 32);
    r->data_len = vs_get_u32(buf + 36);
    r->item_count = vs_get_u32(buf + 40);
    r->incarnation = vs_get_u32(buf + 44);
    if (r->hdr_len < SECTOR || r->hdr_len % SECTOR || r->hdr_len > avail ||
        r->data_len % SECTOR || r->type < REC_WRITE || r->type > REC_ROLLBACK)
        return VS_ECORRUPT;
    if (crc_skip(buf, r->hdr_len, REC_CRC_OFF) != r->crc)
        return VS_ECHECKSUM;
    size_t item = r->type == REC_WRITE ? 40 : 24;
    /* Several writes in one record: format 2 on (store__witer_next). */
    if (r->type == REC_WRITE && (r->item_count == 0 || (r->item_count > 1 && r->version < 2)))
        return VS_ECORRUPT;
    if (r->type == REC_DELETE && r->item_count != 1)
        return VS_ECORRUPT;
    if ((uint64_t)r->item_count * item > r->hdr_len - REC_HDR_SIZE)
        return VS_ECORRUPT;
    return 0;
}

int store__witem_decode(const uint8_t *p, size_t avail, struct store_witem *w)
{
    if (avail < 40)
        return VS_ECORRUPT;
    w->inode = vs_get_u64(p);
    w->stripe = vs_get_u64(p + 8);
    w->version = vs_get_u64(p + 16);
    w->offset = vs_get_u32(p + 24);
    w->len = vs_get_u32(p + 28);
    w->block = vs_get_u32(p + 32);
    w->flags = vs_get_u32(p + 36);
    if (w->offset % SECTOR || w->len % SECTOR || (uint64_t)w->len / SECTOR * 4 > avail - 40 ||
        w->version == 0 || w->version >= FREE_VERSION - 1)
        return VS_ECORRUPT;
    return 0;
}

void store__witer_init(struct store_witer *it, const struct store_rec *r)
{
    it->next_item = REC_HDR_SIZE;
    it->next_data = r->hdr_len;
    it->left = r->item_count;
    it->item = it->data = 0;
}

int store__witer_next(const uint8_t *rec, const struct store_rec *r, struct store_witer *it,
                      struct store_witem *w)
{
    if (it->left == 0) /* every small write's data is accounted for */
        return it->next_data == (uint64_t)r->hdr_len + r->data_len ? 1 : VS_ECORRUPT;
    if (it->next_item >= r->hdr_len)
        return VS_ECORRUPT;
    int rc = store__witem_decode(rec + it->next_item, r->hdr_len - it->next_item, w);
    if (rc < 0)
        return rc;
    bool big = w->flags & RECF_BIG;
    if (big && r->item_count > 1)
        return VS_ECORRUPT; /* a big write is always alone in its record */
    uint64_t len = big ? 0 : w->len;
    if (it->next_data + len > (uint64_t)r->hdr_len + r->data_len)
        return VS_ECORRUPT;
    it->item = it->next_item;
    it->data = it->next_data;
    it->next_item += 40 + 4 * (w->len / SECTOR);
    it->next_data += (uint32_t)len;
    it->left--;
    return 0;
}

/* ---- foreign signatures (format refuses to overwrite them) ------------- */

bool store__foreign_signature(const uint8_t *buf, size_t len, char *what, size_t wsz)
{
    static const struct {
        size_t off;
        const char *magic;
        size_t n;
        const char *name;
    } sigs[] = {
        {0, "VSTFRSB1", 8, "a vstor store"},
        {0, "VSTFRVD1", 8, "a vstor device"},
        {1080, "\x53\xef", 2, "an ext2/3/4 filesystem"},
        {0, "XFSB", 4, "an XFS filesystem"},
        {65600, "_BHRfS_M", 8, "a btrfs filesystem"},
        {512, "EFI PART", 8, "a GPT partition table"},
        {510, "\x55\xaa", 2, "an MBR partition table"},
        {536, "LVM2 001", 8, "an LVM physical volume"},
        {0, "LUKS\xba\xbe", 6, "a LUKS volume"},
        {4086, "SWAPSPACE2", 10, "a swap area"},
        {0, "vITADisk", 8, "a Vitastor OSD"},
    };
    for (size_t i = 0; i < VS_ARRAY_SIZE(sigs); i++) {
        if (sigs[i].off + sigs[i].n <= len &&
            memcmp(buf + sigs[i].off, sigs[i].magic, sigs[i].n) == 0) {
            snprintf(what, wsz, "%s", sigs[i].name);
            return true;
        }
    }
    return false;
}
