/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_read.c -- reads, read barriers and the in-memory queries (stat, list,
 * stats).
 *
 * A read resolves its version when called, then issues ONE disk read: the
 * requested range of the block that is the version's base (the newest big
 * write at or below it, or the object's base block). When that completes, the
 * sectors written by small writes above the base are copied over from the
 * journal mirror, never-written sectors are zeroed, and every sector is checked
 * against its crc32c. The overlay walk starts at the entry resolved at call
 * time and follows .next pointers, which stay intact even if the entries are
 * retired meanwhile (I9); blocks and journal space are reused only after a
 * read barrier (I6): every read that started before has completed.
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

enum { OPK_READ = 1 };

/* ---- barriers ------------------------------------------------------------- */

static void barrier_start(struct vs_store *s)
{
    s->barrier_active = true;
    s->barrier_again = false;
    s->barriers_started++;
    s->zn_pend = s->zn_cur;
    s->barrier_parity = s->rgen & 1;
    s->rgen++;
}

/* Returns a ticket: the barrier is passed once barriers_done >= ticket. */
uint64_t store__barrier_request(struct vs_store *s)
{
    if (!s->barrier_active) {
        barrier_start(s);
        store__barrier_check(s);
        return s->barriers_started;
    }
    s->barrier_again = true;
    return s->barriers_started + 1;
}

void store__barrier_check(struct vs_store *s)
{
    if (!s->barrier_active || s->reads[s->barrier_parity] != 0)
        return;
    s->barrier_active = false;
    s->barriers_done++;
    store__zombies_release(s);
    if (s->barrier_again) {
        barrier_start(s);
        store__barrier_check(s);
    }
}

/* ---- version resolution ----------------------------------------------------- */

/* The entry a read of `which` sees (0 = the base); -ENOENT when none. */
static int resolve(const struct vs_store *s, uint32_t oi, uint64_t which, uint32_t *out)
{
    const struct store_obj *o = &s->objs[oi];
    for (uint32_t ei = o->dirty; ei; ei = s->ents[ei].next) {
        const struct store_entry *e = &s->ents[ei];
        if (!(e->flags & EF_WRITTEN))
            continue;
        bool ok = which == VS_STORE_READ_LATEST ||
                  (which == VS_STORE_READ_STABLE ? (e->flags & EF_STABLE) != 0
                                                 : e->version <= which);
        if (!ok)
            continue;
        if (e->kind == ENT_DELETE)
            return -ENOENT;
        *out = ei;
        return 0;
    }
    if (o->block == NONE32 || (o->block & TOMB_BIT) || o->version == 0)
        return -ENOENT;
    if (which < VS_STORE_READ_STABLE && o->version > which)
        return -ENOENT;
    *out = 0;
    return 0;
}

/* Walks from the resolved entry to its base: ORs the bitmap, returns the
 * block to read (NONE32 when the base has no data block). */
static uint32_t walk_base(struct vs_store *s, uint32_t oi, uint32_t start, uint8_t *bitmap)
{
    if (bitmap)
        memset(bitmap, 0, s->bitmap_bytes);
    for (uint32_t ei = start; ei; ei = s->ents[ei].next) {
        const struct store_entry *e = &s->ents[ei];
        if (e->version <= s->objs[oi].version)
            break;
        if (e->kind == ENT_DELETE)
            return NONE32;
        if (e->kind == ENT_BIG) {
            if (bitmap)
                for (uint32_t i = 0; i < s->bitmap_bytes; i++)
                    bitmap[i] |= store__bitmap(s, e->block)[i];
            return e->block;
        }
        for (uint32_t i = 0; bitmap && i < e->len / SECTOR; i++)
            bit_set(bitmap, e->offset / SECTOR + i);
    }
    uint32_t b = s->objs[oi].block;
    if (b == NONE32 || (b & TOMB_BIT))
        return NONE32;
    if (bitmap)
        for (uint32_t i = 0; i < s->bitmap_bytes; i++)
            bitmap[i] |= store__bitmap(s, b)[i];
    return b;
}

int vs_store_newest(struct vs_store *s, struct vs_store_oid oid, uint64_t *version,
                    bool *deleted)
{
    uint32_t oi = store__obj_find(s, oid.inode, oid.stripe);
    bool del = false;
    uint64_t v = oi == NONE32 ? 0 : store__newest_version(s, oi, &del);
    if (v == 0)
        return -ENOENT;
    *version = v;
    *deleted = del;
    return 0;
}

int vs_store_stat(struct vs_store *s, struct vs_store_oid oid, uint64_t which, uint64_t *version,
                  uint8_t *bitmap)
{
    uint32_t oi = store__obj_find(s, oid.inode, oid.stripe);
    uint32_t ei;
    if (oi == NONE32 || resolve(s, oi, which, &ei) < 0)
        return -ENOENT;
    if (version)
        *version = ei ? s->ents[ei].version : s->objs[oi].version;
    walk_base(s, oi, ei, bitmap);
    return 0;
}

/* ---- completion: overlay and verification ---------------------------------- */

static bool verify(const uint8_t *data, const uint32_t *crc)
{
    return !crc || vs_crc32c(data, SECTOR) == *crc;
}

/* Fills sector i (relative to the read) from its source; false on bad crc. */
static bool fill_from_block(struct vs_store *s, struct vs_store_op *op, uint32_t block,
                            uint32_t sec)
{
    uint8_t *dst = (uint8_t *)op->buf + (size_t)(sec - op->offset / SECTOR) * SECTOR;
    if (block == NONE32 || !bit_get(store__bitmap(s, block), sec)) {
        memset(dst, 0, SECTOR);
        return true;
    }
    const uint32_t *crc = s->block_csum ? &s->block_csum[(size_t)block * s->ncsum + sec] : NULL;
    bool ok = verify(dst, crc);
    if (!ok)
        VS_TRACE("store", "csum: block %u sector %u (entry %u base v%llu read v%llu)", block, sec,
                 op->p.entry, (unsigned long long)op->p.base_version,
                 (unsigned long long)op->out_version);
    return ok;
}

static bool overlay(struct vs_store *s, struct vs_store_op *op, uint64_t *filled)
{
    uint32_t first = op->offset / SECTOR, n = op->len / SECTOR;
    bool ok = true;
    uint32_t block = op->p.base_block;
    bool stopped = false;
    for (uint32_t ei = op->p.entry; ei && !stopped; ei = s->ents[ei].next) {
        const struct store_entry *e = &s->ents[ei];
        if (e->version <= op->p.base_version)
            break;
        if (e->kind != ENT_SMALL) {
            stopped = true;
            break;
        }
        uint32_t lo = VS_MAX(first, e->offset / SECTOR);
        uint32_t hi = VS_MIN(first + n, (e->offset + e->len) / SECTOR);
        for (uint32_t sec = lo; sec < hi; sec++) {
            uint32_t i = sec - first;
            if (filled[i / 64] & (1ull << (i % 64)))
                continue;
            filled[i / 64] |= 1ull << (i % 64);
            uint32_t js = e->jpos + e->data_sec + (sec - e->offset / SECTOR);
            uint8_t *dst = (uint8_t *)op->buf + (size_t)i * SECTOR;
            memcpy(dst, s->jbuf + (size_t)js * SECTOR, SECTOR);
            bool ok1 = verify(dst, s->jcrc ? &s->jcrc[js] : NULL);
            if (!ok1)
                VS_TRACE("store", "csum: journal sector %u (entry v%llu)", js,
                         (unsigned long long)e->version);
            ok = ok && ok1;
        }
    }
    for (uint32_t i = 0; i < n; i++)
        if (!(filled[i / 64] & (1ull << (i % 64))))
            ok = fill_from_block(s, op, block, first + i) && ok;
    return ok;
}

static void read_finish(struct vs_store *s, struct vs_store_op *op, int res)
{
    VS_ASSERT(s->reads[op->p.gen] > 0);
    if (res >= 0 && op->len) {
        uint64_t filled[512];
        uint32_t words = (op->len / SECTOR + 63) / 64;
        VS_ASSERT(words <= VS_ARRAY_SIZE(filled));
        memset(filled, 0, words * sizeof(uint64_t));
        if (!overlay(s, op, filled)) {
            s->st.csum_errors++;
            memset(op->buf, 0, op->len);
            res = VS_ECHECKSUM;
        }
    }
    s->reads[op->p.gen]--;
    store__barrier_check(s);
    if (s->ck.state != CK_IDLE)
        store__ck_step(s);
    store__complete(s, op, res < 0 ? res : (int)op->len);
    store__retry_flush(s);
}

static void read_io_cb(struct vs_disk_io *io, int res)
{
    struct vs_store_op *op = VS_CONTAINER_OF(io, struct vs_store_op, p.io[0]);
    read_finish(op->p.store, op, res);
}

static void read_nop_cb(struct vs_disk_io *io, int res)
{
    (void)res;
    read_io_cb(io, 0);
}

/* The completion checks the block's bitmap and crcs, entries of arrays far
 * bigger than the caches that nothing else touched: fetch them now, so the
 * cache and TLB misses overlap the disk read instead of stalling the
 * completion (they were most of read_finish's own time at queue depth 128). */
static void prefetch_verify(struct vs_store *s, uint32_t block, uint32_t sec)
{
    __builtin_prefetch(store__bitmap(s, block) + sec / 8);
    if (s->block_csum)
        __builtin_prefetch(&s->block_csum[(size_t)block * s->ncsum + sec]);
}

int vs_store_read(struct vs_store *s, struct vs_store_op *op)
{
    if (!op || !op->cb || op->offset % SECTOR || op->len % SECTOR ||
        (uint64_t)op->offset + op->len > s->block_size ||
        (op->len && (!op->buf || (uintptr_t)op->buf % VS_STORE_ALIGN)))
        return -EINVAL;
    s->st.op_read++;
    uint32_t oi = store__obj_find(s, op->oid.inode, op->oid.stripe);
    uint32_t ei;
    if (oi == NONE32 || resolve(s, oi, op->version, &ei) < 0)
        return -ENOENT;
    op->p.store = s;
    op->p.kind = OPK_READ;
    op->p.entry = ei;
    op->p.base_version = s->objs[oi].version;
    op->out_version = ei ? s->ents[ei].version : s->objs[oi].version;
    op->p.base_block = walk_base(s, oi, ei, op->bitmap);
    op->p.gen = (uint8_t)(s->rgen & 1);
    s->reads[op->p.gen]++;
    s->ops_inflight++;
    struct vs_disk_io *io = &op->p.io[0];
    memset(io, 0, sizeof(*io));
    io->cb = read_io_cb;
    if (op->len && op->p.base_block != NONE32) {
        io->opcode = VS_DISK_READ;
        io->dev = s->sb.layout.data_dev;
        io->offset = s->sb.layout.data_offset + (uint64_t)op->p.base_block * s->block_size +
                     op->offset;
        io->buf = op->buf;
        io->len = op->len;
        store__count_io(s, VS_STORE_IO_READ, op->len);
        prefetch_verify(s, op->p.base_block, op->offset / SECTOR);
    } else {
        io->cb = read_nop_cb;
        io->opcode = VS_DISK_NOP;
    }
    store__submit(s, io);
    return 0;
}

/* ---- list and stats ---------------------------------------------------------- */

static bool in_pg(const struct store_obj *o, uint64_t pool, uint32_t pg_count, uint32_t pg,
                  uint64_t pg_stripe_size)
{
    if (pool != VS_STORE_POOL_ANY && (o->inode >> 48) != pool)
        return false;
    return pg_count == 0 || (o->stripe / pg_stripe_size) % pg_count == pg;
}

/* Appends the object's versions: the newest stable one, then unstable ones. */
static void list_obj(struct vs_store *s, uint32_t oi, struct vs_store_list_entry *out, long *n,
                     long *nu, struct vs_store_list_entry *unst)
{
    const struct store_obj *o = &s->objs[oi];
    bool have_stable = false;
    for (uint32_t ei = o->dirty; ei; ei = s->ents[ei].next) {
        const struct store_entry *e = &s->ents[ei];
        if (!(e->flags & EF_WRITTEN))
            continue;
        struct vs_store_list_entry le = {{o->inode, o->stripe}, e->version, 0};
        if (e->kind == ENT_DELETE)
            le.flags |= VS_STORE_LIST_DELETED;
        if (!(e->flags & EF_STABLE)) {
            unst[(*nu)++] = le;
            continue;
        }
        le.flags |= VS_STORE_LIST_STABLE;
        out[(*n)++] = le;
        have_stable = true;
        break;
    }
    if (!have_stable && o->block != NONE32 && o->version)
        out[(*n)++] = (struct vs_store_list_entry){
            {o->inode, o->stripe}, o->version,
            VS_STORE_LIST_STABLE | ((o->block & TOMB_BIT) ? VS_STORE_LIST_DELETED : 0u)};
}

long vs_store_list(struct vs_store *s, uint64_t pool_id, uint32_t pg_count, uint32_t pg,
                   uint64_t pg_stripe_size, struct vs_store_list_entry **out)
{
    if ((pg_count && (pg >= pg_count || pg_stripe_size == 0)) || !out)
        return -EINVAL;
    s->st.op_list++;
    size_t cap = (size_t)s->obj_used + s->ents_live + 1;
    struct vs_store_list_entry *st = malloc(cap * sizeof(*st));
    struct vs_store_list_entry *un = malloc(cap * sizeof(*un));
    if (!st || !un) {
        free(st);
        free(un);
        return -ENOMEM;
    }
    long n = 0, nu = 0;
    for (uint32_t oi = 0; oi < s->obj_cap; oi++) {
        const struct store_obj *o = &s->objs[oi];
        if (o->version == FREE_VERSION || !in_pg(o, pool_id, pg_count, pg, pg_stripe_size))
            continue;
        list_obj(s, oi, st, &n, &nu, un);
    }
    memcpy(st + n, un, (size_t)nu * sizeof(*st));
    free(un);
    *out = st;
    return n + nu;
}

void vs_store_get_stats(struct vs_store *s, struct vs_store_stats *out)
{
    *out = s->st;
    out->block_size = s->block_size;
    out->block_count = s->block_count;
    out->blocks_free = s->blocks_free;
    out->blocks_reserved = s->reserve_blocks;
    out->blocks_used = s->block_count - s->blocks_free;
    out->bytes_used = out->blocks_used * s->block_size;
    out->bytes_free = s->blocks_free * s->block_size;
    out->journal_size = s->jsize;
    out->journal_used = s->jused;
    out->tomb_count = s->tomb_count;
    out->tomb_used = s->tomb_count - s->tombs_free;
    out->object_count = s->obj_used;
    out->entries_dirty = s->ents_live;
    out->broken = s->broken;
    out->ram_index_bytes = (uint64_t)s->obj_cap * sizeof(struct store_obj) +
                           ((uint64_t)s->hash_mask + 1) * 4 + s->block_count * 4 +
                           s->block_count * s->bitmap_bytes + s->tomb_count * 4 +
                           (s->block_count + s->tomb_count) / 8;
    out->ram_csum_bytes = s->block_csum ? s->block_count * s->ncsum * 4 : 0;
}

void vs_store_get_info(struct vs_store *s, struct vs_store_info *out)
{
    memset(out, 0, sizeof(*out));
    memcpy(out->uuid, s->sb.uuid, 16);
    out->cluster_id = s->sb.cluster_id;
    out->osd_id = s->sb.osd_id;
    out->block_size = s->sb.block_size;
    out->csum_block_size = s->sb.csum_block_size;
    out->format_version = s->sb.format_version;
    out->block_count = s->block_count;
    out->tomb_count = s->tomb_count;
    out->layout = s->sb.layout;
}

void vs_store_get_config(struct vs_store *s, struct vs_store_config *out)
{
    *out = s->cfg;
}

uint32_t vs_store_bitmap_bytes(const struct vs_store *s)
{
    return s->bitmap_bytes;
}

/* Every write item of the record at p (decoded into r), with where its data
 * sits; < 0 when the items do not add up (store__witer_next). */
static int dump_writes(const uint8_t *p, const struct store_rec *r, struct vs_store_jrec *j,
                       void (*fn)(void *ctx, const struct vs_store_jrec *r), void *ctx)
{
    struct store_witer it;
    struct store_witem w;
    int rc;
    store__witer_init(&it, r);
    while ((rc = store__witer_next(p, r, &it, &w)) == 0) {
        bool big = w.flags & RECF_BIG;
        j->oid = (struct vs_store_oid){w.inode, w.stripe};
        j->version = w.version;
        j->offset = w.offset;
        j->len = w.len;
        j->flags = w.flags;
        j->block = big ? w.block : NONE32;
        j->data_pos = big || w.len == 0 ? UINT64_MAX : j->pos + it.data;
        fn(ctx, j);
        j->item++;
    }
    return rc == 1 ? 0 : rc;
}

/* Every (inode, stripe, version) item of a delete, stabilize or rollback
 * record; store__rec_decode checked that item_count of them fit. */
static int dump_versions(const uint8_t *p, const struct store_rec *r, struct vs_store_jrec *j,
                         void (*fn)(void *ctx, const struct vs_store_jrec *r), void *ctx)
{
    for (; j->item < r->item_count; j->item++) {
        uint64_t off = REC_HDR_SIZE + (uint64_t)j->item * 24;
        if (off + 24 > r->hdr_len)
            return VS_ECORRUPT;
        j->oid = (struct vs_store_oid){vs_get_u64(p + off), vs_get_u64(p + off + 8)};
        j->version = vs_get_u64(p + off + 16);
        fn(ctx, j);
    }
    return 0;
}

/* One record: 0, 1 when it is the open record (not sealed yet), < 0 bad. */
static int dump_rec(struct vs_store *s, uint64_t seq, struct vs_store_jrec *j,
                    void (*fn)(void *ctx, const struct vs_store_jrec *r), void *ctx)
{
    static const char *const names[] = {"?", "write", "delete", "stabilize", "rollback"};
    uint64_t pos = (uint64_t)s->rec_pos[seq % s->rec_cap] * SECTOR;
    *j = (struct vs_store_jrec){.seq = seq, .pos = pos, .type = "?", .block = NONE32,
                                .data_pos = UINT64_MAX};
    if (s->jb.run && s->jb.seq == seq)
        return 1; /* small writes still being gathered: no crc yet */
    struct store_rec r;
    int rc = pos < s->jsize ? store__rec_decode(s->jbuf + pos, s->jsize - pos, &r) : VS_ECORRUPT;
    if (rc < 0)
        return rc;
    if (r.seq != seq || (uint64_t)r.hdr_len + r.data_len > s->jsize - pos ||
        r.type >= VS_ARRAY_SIZE(names))
        return VS_ECORRUPT;
    j->type = names[r.type];
    j->items = r.item_count;
    const uint8_t *p = s->jbuf + pos;
    return r.type == REC_WRITE ? dump_writes(p, &r, j, fn, ctx) : dump_versions(p, &r, j, fn, ctx);
}

long vs_store_dump_journal(struct vs_store *s, void (*fn)(void *ctx, const struct vs_store_jrec *r),
                           void *ctx, struct vs_store_jrec *bad)
{
    long n = 0;
    for (uint64_t seq = s->start_seq; seq < s->next_seq; seq++) {
        struct vs_store_jrec j;
        int rc = dump_rec(s, seq, &j, fn, ctx);
        if (rc < 0) {
            if (bad)
                *bad = j;
            return rc;
        }
        n += rc == 0;
    }
    return n;
}
