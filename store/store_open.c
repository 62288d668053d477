/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_open.c -- format, open (recovery) and close.
 *
 * Recovery (docs/disk-format.md, "Recovery"):
 *   1. superblock and device headers: magic, version, crc, layout vs devices;
 *   2. the newest valid checkpoint block of two (I4);
 *   3. every metadata page: the valid copy with the higher sequence (I3);
 *      an object claimed twice keeps its newest version (I5);
 *   4. the journal from the checkpoint's start: records are accepted while
 *      magic, crc, seq = previous + 1 and prev_crc = crc of the previous
 *      record hold, and the data of small writes matches its crcs (I2); the
 *      data of big writes newer than the last known-synced record is read
 *      back and verified (I8); the first failure ends the journal;
 *   5. the accepted records are applied in order, then fsynced.
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_clock.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK (1u << 20)

void *store__aligned_alloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, SECTOR, (size + SECTOR - 1) / SECTOR * SECTOR) != 0)
        return NULL;
    return p;
}

struct sync_io {
    struct vs_disk_io io;
    int res;
    bool done;
};

static void sync_io_cb(struct vs_disk_io *io, int res)
{
    struct sync_io *s = (struct sync_io *)io;
    s->res = res;
    s->done = true;
}

/* One io, driven to completion. Only when nothing else uses the disk. */
int store__sync_io(struct vs_disk *d, int opcode, unsigned dev, uint64_t off, void *buf,
                   uint32_t len)
{
    struct sync_io s;
    memset(&s, 0, sizeof(s));
    s.io.cb = sync_io_cb;
    s.io.opcode = (uint8_t)opcode;
    s.io.dev = (uint8_t)dev;
    s.io.offset = off;
    s.io.buf = buf;
    s.io.len = len;
    int rc = d->ops->submit(d, &s.io);
    if (rc < 0)
        return rc;
    while (!s.done) {
        rc = d->ops->run_once(d);
        if (rc < 0 && !s.done)
            return rc;
    }
    return s.res < 0 ? s.res : 0;
}

/* ---- geometry ------------------------------------------------------------ */

static void geometry(struct store_sb *sb)
{
    uint32_t ncsum = sb->csum_type ? sb->block_size / SECTOR : 0;
    sb->entry_size = store__entry_size(sb->block_size, ncsum);
    uint32_t ps = (sb->entry_size + PAGE_HDR_SIZE + SECTOR - 1) / SECTOR * SECTOR;
    sb->page_size = VS_MAX(ps, SECTOR);
}

static uint64_t meta_size(const struct store_sb *sb)
{
    uint64_t epp = (sb->page_size - PAGE_HDR_SIZE) / sb->entry_size;
    uint64_t pages = (sb->block_count + sb->tomb_count + epp - 1) / epp;
    return 2 * CKPT_SIZE + 2 * pages * sb->page_size;
}

static uint64_t align_up(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* Places the areas; each device starts with a 4 KiB superblock or header. */
static int compute_layout(struct vs_disk *disk, const struct vs_store_format_opts *o,
                          struct store_sb *sb, char *err, size_t esz)
{
    struct vs_store_layout *l = &sb->layout;
    *l = o->layout;
    if (l->meta_dev >= disk->dev_count || l->journal_dev >= disk->dev_count ||
        l->data_dev >= disk->dev_count || l->meta_dev != 0) {
        snprintf(err, esz, "layout: device index out of range (meta must be device 0)");
        return -EINVAL;
    }
    if (!l->journal_size)
        l->journal_size = 32u << 20;
    uint64_t bc = disk->dev_size[l->data_dev] / sb->block_size;
    for (int iter = 0; iter < 64 && bc > 0; iter++) {
        uint64_t pos[VS_STORE_DEVS_MAX] = {SECTOR, SECTOR, SECTOR};
        sb->block_count = bc;
        sb->tomb_count = o->tomb_count ? o->tomb_count : VS_MAX(64, bc / 8);
        l->meta_offset = o->layout.meta_offset ? o->layout.meta_offset : pos[l->meta_dev];
        pos[l->meta_dev] = l->meta_offset + meta_size(sb);
        l->journal_offset = o->layout.journal_offset ? o->layout.journal_offset
                                                     : align_up(pos[l->journal_dev], 1u << 20);
        pos[l->journal_dev] = l->journal_offset + l->journal_size;
        l->data_offset = o->layout.data_offset ? o->layout.data_offset
                                               : align_up(pos[l->data_dev], 1u << 20);
        uint64_t end = disk->dev_size[l->data_dev];
        if (o->layout.data_size && l->data_offset + o->layout.data_size <= end)
            end = l->data_offset + o->layout.data_size;
        uint64_t avail = end > l->data_offset ? (end - l->data_offset) / sb->block_size : 0;
        l->data_size = avail * sb->block_size;
        if (avail >= bc)
            break;
        bc = avail;
    }
    if (bc == 0 || sb->block_count != bc) {
        snprintf(err, esz, "%s: device too small for the layout (no room for one %u-byte block)",
                 disk->dev_name[l->data_dev], sb->block_size);
        return -ENOSPC;
    }
    for (unsigned d = 0; d < disk->dev_count; d++) {
        uint64_t need = 0;
        if (l->meta_dev == d)
            need = VS_MAX(need, l->meta_offset + meta_size(sb));
        if (l->journal_dev == d)
            need = VS_MAX(need, l->journal_offset + l->journal_size);
        if (l->data_dev == d)
            need = VS_MAX(need, l->data_offset + l->data_size);
        if (need > disk->dev_size[d]) {
            snprintf(err, esz, "%s: device too small for the layout (needs %llu bytes)",
                     disk->dev_name[d], (unsigned long long)need);
            return -ENOSPC;
        }
    }
    return 0;
}

/* ---- format --------------------------------------------------------------- */

static int check_signatures(struct vs_disk *disk, bool force, char *err, size_t esz)
{
    uint32_t len = 128u << 10;
    uint8_t *buf = store__aligned_alloc(len);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    for (unsigned d = 0; d < disk->dev_count && rc == 0; d++) {
        uint32_t n = (uint32_t)VS_MIN((uint64_t)len, disk->dev_size[d]);
        memset(buf, 0, len);
        rc = store__sync_io(disk, VS_DISK_READ, d, 0, buf, n);
        char what[64];
        if (rc == 0 && !force && store__foreign_signature(buf, n, what, sizeof(what))) {
            snprintf(err, esz, "%s: holds %s; refusing to overwrite it without --force",
                     disk->dev_name[d], what);
            rc = VS_EBADFORMAT;
        } else if (rc < 0) {
            snprintf(err, esz, "%s: read: %s", disk->dev_name[d], vs_strerror(rc));
        }
    }
    free(buf);
    return rc;
}

uint32_t store__random_u32(void)
{
    uint32_t v = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(&v, 1, sizeof(v), f) != sizeof(v))
            v = 0;
        fclose(f);
    }
    return v ^ (uint32_t)vs_clock_mono_ns();
}

static void random_uuid(uint8_t *uuid)
{
    uint64_t a = vs_clock_mono_ns() ^ ((uint64_t)getpid() << 32);
    uint64_t b = vs_clock_wall_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)uuid;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f) {
        if (fread(uuid, 1, 16, f) == 16) {
            fclose(f);
            return;
        }
        fclose(f);
    }
    vs_put_u64(uuid, a);
    vs_put_u64(uuid + 8, b);
}

static int write_fresh_meta(struct vs_disk *disk, const struct store_sb *sb, uint8_t *buf)
{
    const struct vs_store_layout *l = &sb->layout;
    memset(buf, 0, CHUNK);
    uint64_t msize = meta_size(sb);
    for (uint64_t off = 0; off < msize; off += CHUNK) {
        uint32_t n = (uint32_t)VS_MIN((uint64_t)CHUNK, msize - off);
        int rc = store__sync_io(disk, VS_DISK_WRITE, l->meta_dev, l->meta_offset + off, buf, n);
        if (rc < 0)
            return rc;
    }
    /* Write the journal area once: on a file this allocates it, so a durable
     * write never pays for block allocation (and its metadata) in its fsync. */
    for (uint64_t off = 0; off < l->journal_size; off += CHUNK) {
        uint32_t n = (uint32_t)VS_MIN((uint64_t)CHUNK, l->journal_size - off);
        int rc = store__sync_io(disk, VS_DISK_WRITE, l->journal_dev, l->journal_offset + off, buf,
                                n);
        if (rc < 0)
            return rc;
    }
    /* The first checkpoint: an empty journal whose chain starts from a value
     * unique to this store, so records of an older store never chain on. */
    struct store_ckpt ck = {1, 0, 1, vs_crc32c(sb->uuid, 16), 1, sb->format_version};
    store__ckpt_encode(&ck, buf);
    int rc = store__sync_io(disk, VS_DISK_WRITE, l->meta_dev, l->meta_offset, buf, CKPT_SIZE);
    if (rc < 0)
        return rc;
    for (unsigned d = 1; d < sb->dev_count; d++) {
        store__devhdr_encode(sb->uuid, d, sb->format_version, buf);
        rc = store__sync_io(disk, VS_DISK_WRITE, d, 0, buf, SB_SIZE);
        if (rc < 0)
            return rc;
    }
    for (unsigned d = 0; d < sb->dev_count && rc == 0; d++)
        rc = store__sync_io(disk, VS_DISK_FSYNC, d, 0, NULL, 0);
    return rc;
}

int vs_store_format(struct vs_disk *disk, const struct vs_store_format_opts *o, char *err,
                    size_t esz)
{
    struct store_sb sb;
    memset(&sb, 0, sizeof(sb));
    sb.format_version = o->format_version ? o->format_version : VS_STORE_FORMAT_VERSION;
    if (sb.format_version > VS_STORE_FORMAT_VERSION) {
        snprintf(err, esz, "format_version %u: this build writes 1 to %u", sb.format_version,
                 VS_STORE_FORMAT_VERSION);
        return -EINVAL;
    }
    sb.block_size = o->block_size ? o->block_size : VS_STORE_BLOCK_DEFAULT;
    if (sb.block_size < VS_STORE_BLOCK_MIN || sb.block_size > VS_STORE_BLOCK_MAX ||
        (sb.block_size & (sb.block_size - 1))) {
        snprintf(err, esz, "block_size %u: must be a power of two from 4 KiB to 128 MiB",
                 sb.block_size);
        return -EINVAL;
    }
    uint32_t cbs = o->csum_block_size ? o->csum_block_size : SECTOR;
    if (!o->csum_disabled && cbs != SECTOR) {
        snprintf(err, esz, "csum_block_size %u: only 4096 is supported in format 1", cbs);
        return -EINVAL;
    }
    sb.granule = VS_STORE_GRANULE;
    sb.csum_type = o->csum_disabled ? 0 : 1;
    sb.csum_block_size = o->csum_disabled ? 0 : SECTOR;
    sb.cluster_id = o->cluster_id;
    sb.osd_id = o->osd_id;
    sb.dev_count = disk->dev_count;
    for (unsigned d = 0; d < disk->dev_count; d++)
        sb.dev_size[d] = disk->dev_size[d];
    sb.created_ms = vs_clock_wall_ms();
    static const uint8_t zero[16];
    if (memcmp(o->uuid, zero, 16) == 0)
        random_uuid(sb.uuid);
    else
        memcpy(sb.uuid, o->uuid, 16);
    geometry(&sb);
    if (o->layout.journal_size % SECTOR || (o->layout.journal_size &&
                                            o->layout.journal_size < 16 * SECTOR)) {
        snprintf(err, esz, "journal_size: must be a multiple of 4096 and at least 64 KiB");
        return -EINVAL;
    }
    int rc = check_signatures(disk, o->force, err, esz);
    if (rc < 0)
        return rc;
    rc = compute_layout(disk, o, &sb, err, esz);
    if (rc < 0)
        return rc;
    uint8_t *buf = store__aligned_alloc(CHUNK);
    if (!buf)
        return -ENOMEM;
    rc = write_fresh_meta(disk, &sb, buf);
    if (rc == 0) {
        /* Invariant I0: the superblock is written last, after everything it
         * describes is durable, so a crash mid-format leaves no store. */
        store__sb_encode(&sb, buf);
        rc = store__sync_io(disk, VS_DISK_WRITE, 0, 0, buf, SB_SIZE);
        if (rc == 0)
            rc = store__sync_io(disk, VS_DISK_FSYNC, 0, 0, NULL, 0);
    }
    if (rc < 0)
        snprintf(err, esz, "%s: write: %s", disk->dev_name[0], vs_strerror(rc));
    free(buf);
    return rc;
}

/* ---- open: superblock and geometry ---------------------------------------- */

int store__read_superblock(struct vs_store *s, char *err, size_t esz)
{
    struct vs_disk *d = s->disk;
    uint8_t *buf = store__aligned_alloc(SB_SIZE);
    if (!buf)
        return -ENOMEM;
    char e[VS_ERRMSG_SIZE];
    int rc = d->dev_size[0] < SB_SIZE ? VS_EBADFORMAT
                                      : store__sync_io(d, VS_DISK_READ, 0, 0, buf, SB_SIZE);
    if (rc == 0)
        rc = store__sb_decode(buf, SB_SIZE, &s->sb, e, sizeof(e));
    else
        snprintf(e, sizeof(e), "cannot read the superblock (%s)", vs_strerror(rc));
    if (rc < 0)
        snprintf(err, esz, "%s: %s", d->dev_name[0], e);
    for (unsigned i = 1; rc == 0 && i < s->sb.dev_count && i < d->dev_count; i++) {
        rc = store__sync_io(d, VS_DISK_READ, i, 0, buf, SB_SIZE);
        if (rc == 0)
            rc = store__devhdr_decode(buf, SB_SIZE, s->sb.uuid, i, e, sizeof(e));
        if (rc < 0)
            snprintf(err, esz, "%s: %s", d->dev_name[i], e);
    }
    free(buf);
    return rc;
}

int store__check_layout(struct vs_store *s, char *err, size_t esz)
{
    const struct store_sb *sb = &s->sb;
    struct vs_disk *d = s->disk;
    if (sb->dev_count != d->dev_count) {
        snprintf(err, esz, "%s: superblock field dev_count is %u but %u devices were given",
                 d->dev_name[0], sb->dev_count, d->dev_count);
        return VS_ECONFIG;
    }
    const struct vs_store_layout *l = &sb->layout;
    struct {
        unsigned dev;
        uint64_t end;
        const char *field;
    } areas[] = {
        {l->meta_dev, l->meta_offset + meta_size(sb), "meta_offset"},
        {l->journal_dev, l->journal_offset + l->journal_size, "journal_size"},
        {l->data_dev, l->data_offset + l->data_size, "data_size"},
    };
    for (unsigned i = 0; i < 3; i++) {
        if (areas[i].end > d->dev_size[areas[i].dev]) {
            snprintf(err, esz, "%s: device is smaller than the superblock's layout "
                     "(field %s ends at %llu)", d->dev_name[areas[i].dev], areas[i].field,
                     (unsigned long long)areas[i].end);
            return VS_ECORRUPT;
        }
    }
    if ((s->cfg.expect_cluster_id && s->cfg.expect_cluster_id != sb->cluster_id) ||
        (s->cfg.expect_osd_id && s->cfg.expect_osd_id != sb->osd_id)) {
        snprintf(err, esz, "%s: superblock field %s is %llu, expected %llu", d->dev_name[0],
                 s->cfg.expect_cluster_id != sb->cluster_id ? "cluster_id" : "osd_id",
                 (unsigned long long)(s->cfg.expect_cluster_id != sb->cluster_id
                                          ? sb->cluster_id : sb->osd_id),
                 (unsigned long long)(s->cfg.expect_cluster_id != sb->cluster_id
                                          ? s->cfg.expect_cluster_id : s->cfg.expect_osd_id));
        return VS_EWRONGCLUSTER;
    }
    return 0;
}

int store__setup_geometry(struct vs_store *s)
{
    const struct store_sb *sb = &s->sb;
    s->block_size = sb->block_size;
    s->spb = sb->block_size / SECTOR;
    s->bitmap_bytes = (s->spb + 7) / 8;
    s->ncsum = sb->csum_type ? s->spb : 0;
    s->block_count = sb->block_count;
    s->tomb_count = sb->tomb_count;
    s->page_size = sb->page_size;
    s->entry_size = sb->entry_size;
    s->epp = (sb->page_size - PAGE_HDR_SIZE) / sb->entry_size;
    s->page_count = (s->block_count + s->tomb_count + s->epp - 1) / s->epp;
    /* Half the overwrite reserve (store_io.c), at most BIG_INFLIGHT_MAX, and
     * at least 8 blocks. */
    s->reserve_blocks = VS_MAX(s->block_count / RESERVE_DIV, 1);
    uint64_t reserve = s->reserve_blocks * (uint64_t)s->block_size;
    s->big_inflight_max = VS_MAX(VS_MIN(reserve / 2, (uint64_t)BIG_INFLIGHT_MAX),
                                 8ull * s->block_size);
    s->meta_pages_offset = sb->layout.meta_offset + 2 * CKPT_SIZE;
    s->jsize = sb->layout.journal_size;
    s->page_copy = calloc((s->page_count + 7) / 8, 1);
    s->page_dirty = calloc((s->page_count + 7) / 8, 1);
    s->jbuf = store__aligned_alloc(s->jsize);
    s->ck.arena = store__aligned_alloc(store__ck_arena_size(s));
    s->ck.ckpt_buf = store__aligned_alloc(CKPT_SIZE);
    if (s->ncsum)
        s->jcrc = calloc(s->jsize / SECTOR, sizeof(uint32_t));
    if (!s->page_copy || !s->page_dirty || !s->jbuf || !s->ck.arena || !s->ck.ckpt_buf ||
        (s->ncsum && !s->jcrc))
        return -ENOMEM;
    return store__index_alloc(s);
}

/* ---- open: checkpoint and pages ------------------------------------------- */

int store__load_ckpt(struct vs_store *s, struct store_ckpt *out, char *err, size_t esz)
{
    uint8_t *buf = store__aligned_alloc(2 * CKPT_SIZE);
    if (!buf)
        return -ENOMEM;
    const struct vs_store_layout *l = &s->sb.layout;
    int rc = store__sync_io(s->disk, VS_DISK_READ, l->meta_dev, l->meta_offset, buf,
                            2 * CKPT_SIZE);
    struct store_ckpt c[2];
    int r0 = rc < 0 ? rc : store__ckpt_decode(buf, CKPT_SIZE, &c[0]);
    int r1 = rc < 0 ? rc : store__ckpt_decode(buf + CKPT_SIZE, CKPT_SIZE, &c[1]);
    free(buf);
    if (r0 < 0 && r1 < 0) {
        snprintf(err, esz, "%s: both checkpoint blocks are invalid (%s)",
                 s->disk->dev_name[l->meta_dev], vs_strerror(r0));
        return rc < 0 ? rc : VS_ECORRUPT;
    }
    int pick = r0 < 0 ? 1 : r1 < 0 ? 0 : c[1].ckpt_seq > c[0].ckpt_seq;
    *out = c[pick];
    s->ckpt_slot = (unsigned)pick;
    if (out->jstart_pos >= s->jsize || out->jstart_pos % SECTOR) {
        snprintf(err, esz, "%s: checkpoint field jstart_pos %llu is out of range",
                 s->disk->dev_name[l->meta_dev], (unsigned long long)out->jstart_pos);
        return VS_ECORRUPT;
    }
    return 0;
}

/* Adds one page entry to the index (claims its block or tombstone slot). */
static int load_entry(struct vs_store *s, uint64_t slot, const uint8_t *e)
{
    uint32_t flags = vs_get_u32(e + 24);
    if (!(flags & PENT_USED))
        return 0;
    bool tomb = flags & PENT_TOMB;
    if (tomb != (slot >= s->block_count))
        return VS_ECORRUPT;
    uint64_t version = vs_get_u64(e + 16);
    if (version == 0 || version >= FREE_VERSION - 1)
        return VS_ECORRUPT;
    uint32_t oi = store__obj_get(s, vs_get_u64(e), vs_get_u64(e + 8));
    if (oi == NONE32)
        return VS_ECORRUPT;
    struct store_obj *o = &s->objs[oi];
    uint32_t ref = tomb ? TOMB_BIT | (uint32_t)(slot - s->block_count) : (uint32_t)slot;
    if (o->block != NONE32) {
        /* Claimed twice (a checkpoint wrote one page and not the other): the
         * newer version wins; the loser is freed after the next checkpoint (I5). */
        if (o->version >= version) {
            store__page_mark_dirty(s, slot);
            return tomb ? (store__tomb_mark_used(s, ref & ~TOMB_BIT),
                           store__tomb_release(s, ref & ~TOMB_BIT), 0)
                        : (store__block_mark_used(s, ref), store__block_release(s, ref), 0);
        }
        uint32_t old = o->block;
        store__page_mark_dirty(s, (old & TOMB_BIT) ? s->block_count + (old & ~TOMB_BIT) : old);
        if (old & TOMB_BIT)
            store__tomb_release(s, old & ~TOMB_BIT);
        else
            store__block_release(s, old);
    }
    o->version = version;
    o->block = ref;
    if (tomb) {
        store__tomb_mark_used(s, ref & ~TOMB_BIT);
        s->tomb_owner[ref & ~TOMB_BIT] = oi;
        return 0;
    }
    store__block_mark_used(s, ref);
    s->block_owner[ref] = oi;
    memcpy(store__bitmap(s, ref), e + ENTRY_HDR_SIZE, s->bitmap_bytes);
    for (uint32_t i = 0; i < s->ncsum; i++)
        s->block_csum[(size_t)ref * s->ncsum + i] =
            vs_get_u32(e + ENTRY_HDR_SIZE + s->bitmap_bytes + 4 * i);
    return 0;
}

static int load_page(struct vs_store *s, uint64_t p, const uint8_t *c0, const uint8_t *c1)
{
    uint64_t q0, q1;
    int r0 = store__page_check(c0, s->page_size, p, &q0);
    int r1 = store__page_check(c1, s->page_size, p, &q1);
    if (r0 < 0 && r1 < 0)
        return r0;
    /* Invariant I3: the copy with the higher sequence is the page. */
    int pick = r0 < 0 ? 1 : r1 < 0 ? 0 : q1 > q0;
    if (pick)
        bit_set(s->page_copy, (uint32_t)p);
    /* Pages of an unfinished checkpoint may be newer than the checkpoint
     * block: the next checkpoint numbers its pages above them (I3). */
    s->max_page_seq = VS_MAX(s->max_page_seq, pick ? q1 : q0);
    if ((pick ? r1 : r0) == 1)
        return 0; /* never written: empty */
    const uint8_t *pg = pick ? c1 : c0;
    for (uint32_t i = 0; i < s->epp; i++) {
        uint64_t slot = p * s->epp + i;
        if (slot >= s->block_count + s->tomb_count)
            break;
        int rc = load_entry(s, slot, pg + PAGE_HDR_SIZE + (size_t)i * s->entry_size);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int store__load_pages(struct vs_store *s, char *err, size_t esz)
{
    uint32_t per = VS_MAX(1u, CHUNK / s->page_size);
    uint8_t *buf = store__aligned_alloc(2 * (size_t)per * s->page_size);
    if (!buf)
        return -ENOMEM;
    int rc = 0;
    const struct vs_store_layout *l = &s->sb.layout;
    uint64_t copy1 = s->page_count * s->page_size;
    for (uint64_t p = 0; p < s->page_count && rc == 0; p += per) {
        uint32_t n = (uint32_t)VS_MIN((uint64_t)per, s->page_count - p);
        uint64_t off = s->meta_pages_offset + p * s->page_size;
        uint8_t *b1 = buf + (size_t)per * s->page_size;
        rc = store__sync_io(s->disk, VS_DISK_READ, l->meta_dev, off, buf, n * s->page_size);
        if (rc == 0)
            rc = store__sync_io(s->disk, VS_DISK_READ, l->meta_dev, off + copy1, b1,
                                n * s->page_size);
        for (uint32_t i = 0; i < n && rc == 0; i++) {
            rc = load_page(s, p + i, buf + (size_t)i * s->page_size, b1 + (size_t)i * s->page_size);
            if (rc < 0)
                snprintf(err, esz, "%s: metadata page %llu: both copies invalid (%s)",
                         s->disk->dev_name[l->meta_dev], (unsigned long long)(p + i),
                         vs_strerror(rc));
        }
    }
    free(buf);
    return rc;
}

/* ---- close ----------------------------------------------------------------- */

/* The journal mirror and the checkpoint arena are the memory every journal
 * and checkpoint write comes from: registered with the disk, those writes
 * skip the per-io page pinning (io_uring fixed buffers). Optional: a backend
 * without register_mem, or a refusal (RLIMIT_MEMLOCK, a journal over the
 * ring's 1 GiB region limit), leaves them as they were. */
void store__register_mem(struct vs_store *s)
{
    const struct vs_disk_ops *ops = s->disk->ops;
    if (!ops->register_mem || !ops->unregister_mem)
        return;
    if (ops->register_mem(s->disk, s->jbuf, s->jsize) < 0)
        return;
    if (ops->register_mem(s->disk, s->ck.arena, store__ck_arena_size(s)) < 0) {
        ops->unregister_mem(s->disk, s->jbuf);
        return;
    }
    s->mem_registered = s->st.mem_registered = true;
}

void store__free(struct vs_store *s)
{
    if (!s)
        return;
    if (s->mem_registered) {
        s->disk->ops->unregister_mem(s->disk, s->jbuf);
        s->disk->ops->unregister_mem(s->disk, s->ck.arena);
    }
    store__index_free(s);
    free(s->page_copy);
    free(s->page_dirty);
    free(s->jbuf);
    free(s->jcrc);
    free(s->ck.arena);
    free(s->ck.ckpt_buf);
    free(s);
}

void vs_store_abandon(struct vs_store *s)
{
    store__free(s);
}

int vs_store_run_until_idle(struct vs_store *s)
{
    while (s->ops_inflight || s->ck.state != CK_IDLE || s->disk->ops->inflight(s->disk) ||
           s->retry_head) {
        int rc = s->disk->ops->run_once(s->disk);
        if (rc < 0)
            return rc;
        if (rc == 0 && s->disk->ops->inflight(s->disk) == 0 && !s->retry_head)
        {
            /* Nothing in flight, yet ops wait: unstable versions pin the journal. */
            if (s->ops_inflight)
                VS_TRACE("store",
                         "stuck: start %llu next %llu jstart %llu jhead %llu jused %llu "
                         "reserved %llu unstable %u live %u progress %d",
                         (unsigned long long)s->start_seq, (unsigned long long)s->next_seq,
                         (unsigned long long)s->jstart, (unsigned long long)s->jhead,
                         (unsigned long long)s->jused, (unsigned long long)s->jreserved,
                         s->unstable_count, s->ents_live, s->ck.progress);
            return s->ops_inflight ? -EDEADLK : 0;
        }
    }
    return 0;
}

static void close_cb(struct vs_store_op *op)
{
    (void)op;
}

int vs_store_close(struct vs_store *s)
{
    if (!s)
        return 0;
    VS_ASSERTF(s->ops_inflight == 0 || s->ck.state != CK_IDLE, "ops in flight: %u",
               s->ops_inflight);
    int rc = 0;
    if (!s->cfg.readonly && !s->broken) {
        /* Clean shutdown: a checkpoint leaves an (almost) empty journal. */
        struct vs_store_op op;
        memset(&op, 0, sizeof(op));
        op.cb = close_cb;
        rc = vs_store_checkpoint(s, &op);
        if (rc == 0)
            rc = vs_store_run_until_idle(s);
        if (rc == 0)
            rc = op.result;
    }
    vs_store_run_until_idle(s);
    if (s->broken)
        rc = -EIO;
    if (!s->cfg.readonly)
        s->disk->ops->set_hook(s->disk, NULL, NULL);
    store__free(s);
    return rc;
}
