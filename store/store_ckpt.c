/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_ckpt.c -- the checkpoint: moves durable, stable journal state into the
 * metadata pages and data blocks, then trims the journal.
 *
 *   IDLE -> FSYNC1 -> BARRIER1 -> FLUSH -> FSYNC2 -> BARRIER2 -> PAGES
 *        -> FSYNC3 -> CKPT -> FSYNC4 -> BARRIER3 -> IDLE
 *
 * FSYNC1   makes every written record durable; then the newest stable durable
 *          big write or delete of each object becomes its base (older base
 *          block or slot: pending free), and objects whose lowest entries
 *          are stable durable small writes are listed for flushing.
 * BARRIER1 no read that started earlier is in flight (they could read a
 *          sector while it is overwritten and lose its overlay, I9).
 * FLUSH    in-place writes of those small writes' data into the base block
 *          (only sectors that the journal still covers, I7), then FSYNC2.
 * BARRIER2 then the flushed entries are folded into the base (bitmap, crcs,
 *          version) and retired; the new journal start T = the oldest record
 *          still needed (a live entry or a record in flight).
 * PAGES    every dirty page is rebuilt from the index and written to its
 *          other copy with sequence ckpt_seq + 1 (I3), then FSYNC3; then
 *          the former base blocks the apply replaced are free (I6).
 * CKPT     the checkpoint block (the other slot, I4) records T, then FSYNC4.
 * BARRIER3 then the journal before T and the pending blocks are free (I6).
 * The base (struct store_obj) changes only inside a checkpoint, and only from
 * durable state, so a page always describes durable data (I10).
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

/* Without progress (an unstable version can pin the journal until it is
 * stabilized) a checkpoint restarts only once something changed after the
 * last one started: an operation arrived or a record completed. */
static bool ck_needed(struct vs_store *s)
{
    if (s->ck.requested)
        return true;
    /* Big writes (redirects) wait for the blocks a checkpoint frees: start
     * one while half the free blocks remain, so writes go on beside it. */
    bool blocks_low = s->ents_big && s->ents_big >= s->blocks_free;
    bool waiting = s->wait_q.head && !s->cap_wait; /* for what a checkpoint frees */
    return s->ck.progress &&
           (waiting || s->jused * 100 >= s->jsize * s->cfg.journal_checkpoint_pct ||
            (uint64_t)s->ents_live * 2 >= s->ent_cap || blocks_low ||
            (uint64_t)(s->pend_blocks_n + s->rb_blocks_n) * 2 >= s->pend_max);
}

void store__ck_maybe_start(struct vs_store *s)
{
    if (s->ck.state != CK_IDLE || s->broken || s->cfg.readonly || !ck_needed(s))
        return;
    s->ck.requested = false;
    s->ck.progress = false; /* what changes from now on may make the next one useful */
    s->ck.waiters = s->ck.waiters_next;
    s->ck.waiters_next = NULL;
    s->ck.error = 0;
    s->ck.state = CK_FSYNC1;
    s->ck.fsync_wait = 0;
    store__ck_step(s);
}

/* Requests an fsync of devs covering every record and checkpoint io completed
 * so far (a plain batch: foreground ios do not wait for it); returns the
 * batch to wait for. */
static uint64_t ck_fsync(struct vs_store *s, unsigned devs)
{
    s->dirty_devs |= devs;
    uint64_t before = s->fsync_issued;
    store__request_fsync(s, true);
    return s->fsync_issued != before ? s->fsync_issued : s->fsync_issued + 1;
}

static unsigned all_devs(struct vs_store *s)
{
    return (1u << s->disk->dev_count) - 1;
}

/* ---- apply: base switches ---------------------------------------------------- */

static void release_ref(struct vs_store *s, uint32_t ref, bool in_pages)
{
    if (ref == NONE32)
        return;
    if (ref & TOMB_BIT) {
        store__tomb_release(s, ref & ~TOMB_BIT);
        store__page_mark_dirty(s, s->block_count + (ref & ~TOMB_BIT));
    } else if (in_pages && s->bases_synced) {
        store__base_release(s, ref);
        store__page_mark_dirty(s, ref);
    } else {
        store__block_release(s, ref);
        /* A former base's page entry goes with this checkpoint too: left
         * there, only the newer claim (I5) would hide it, and a purged
         * tombstone would no longer (store_purge.c, P5). */
        if (in_pages)
            store__page_mark_dirty(s, ref);
    }
}

/* Retires entry ei and every older one (their records become trimmable). */
static void retire_from(struct vs_store *s, uint32_t ei, uint32_t keep_ref)
{
    while (ei) {
        struct store_entry *e = &s->ents[ei];
        uint32_t next = e->next;
        uint32_t ref = e->kind == ENT_BIG && !(e->flags & EF_NOBLOCK) ? e->block
                       : e->kind == ENT_DELETE ? TOMB_BIT | e->block : NONE32;
        if (ref != keep_ref)
            release_ref(s, ref, false);
        store__ent_retire(s, ei);
        ei = next;
    }
}

static bool flushable(struct vs_store *s, const struct store_entry *e)
{
    return e->kind == ENT_SMALL && (e->flags & EF_STABLE) && e->seq < s->synced_seq;
}

static void apply_obj(struct vs_store *s, uint32_t oi)
{
    struct store_obj *o = &s->objs[oi];
    uint32_t prev = 0, top = 0;
    for (uint32_t ei = o->dirty; ei; prev = ei, ei = s->ents[ei].next) {
        struct store_entry *e = &s->ents[ei];
        if (e->kind == ENT_SMALL || !(e->flags & EF_STABLE) || e->seq >= s->synced_seq ||
            (e->flags & EF_NOBLOCK))
            continue;
        /* e is the newest stable durable big write or delete: the new base. */
        uint32_t ref = e->kind == ENT_BIG ? e->block : TOMB_BIT | e->block;
        release_ref(s, o->block, true);
        o->block = ref;
        VS_TRACE("store", "apply: obj %u v%llu -> %s %u (old base %x)", oi,
                 (unsigned long long)e->version, e->kind == ENT_BIG ? "block" : "tomb", e->block,
                 o->block);
        o->version = e->version;
        if (e->kind == ENT_BIG)
            s->block_owner[e->block] = oi;
        store__page_mark_dirty(s, e->kind == ENT_BIG ? e->block : s->block_count + e->block);
        if (prev)
            s->ents[prev].next = 0;
        else
            o->dirty = 0;
        retire_from(s, ei, ref);
        break;
    }
    /* Flush candidates: the stable durable small writes at the chain's end. */
    for (uint32_t ei = o->dirty; ei; ei = s->ents[ei].next) {
        if (!flushable(s, &s->ents[ei]))
            top = 0;
        else if (!top)
            top = ei;
    }
    if (top && s->ck.flush_n < s->ent_cap) {
        VS_ASSERT(o->block != NONE32 && !(o->block & TOMB_BIT));
        s->ck.flush_obj[s->ck.flush_n] = oi;
        s->ck.flush_top[s->ck.flush_n++] = top;
    }
}

static void apply_all(struct vs_store *s)
{
    s->ck.flush_n = 0;
    for (uint32_t oi = 0; oi < s->obj_cap; oi++) {
        if (s->objs[oi].version == FREE_VERSION || !s->objs[oi].dirty)
            continue;
        apply_obj(s, oi);
        store__obj_maybe_drop(s, oi);
    }
    /* Blocks of rolled-back writes whose rollback record is now durable. */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->rb_blocks_n; i++) {
        if (s->rb_seq[i] < s->synced_seq) {
            store__block_release(s, s->rb_blocks[i]);
        } else {
            s->rb_seq[kept] = s->rb_seq[i];
            s->rb_blocks[kept++] = s->rb_blocks[i];
        }
    }
    s->rb_blocks_n = kept;
}

/* ---- flush: in-place writes ------------------------------------------------- */

/* Fills ck.flush_src[sec], for every sector of the block, with the newest
 * flushable entry (from top down) covering it, or 0: one walk of the chain,
 * not one per sector (a chain of small writes is long, and each step is a
 * cache miss). The chain below top does not change until flush_apply. */
static const uint32_t *flush_sources(struct vs_store *s, uint32_t top)
{
    uint32_t *src = s->ck.flush_src, left = s->spb;
    memset(src, 0, s->spb * sizeof(*src));
    for (uint32_t ei = top; ei && left; ei = s->ents[ei].next) {
        const struct store_entry *e = &s->ents[ei];
        uint32_t end = VS_MIN((e->offset + e->len) / SECTOR, s->spb);
        for (uint32_t sec = e->offset / SECTOR; sec < end; sec++) {
            if (!src[sec]) {
                src[sec] = ei;
                left--;
            }
        }
    }
    return src;
}

static void ck_io_cb(struct vs_disk_io *io, int res);

/* Checkpoint ios in flight: CK_IOS_FG while writes run and the journal has
 * room, so their journal writes and fsyncs do not queue in the disk behind a
 * hundred in-place copies (at depth 128 that raised the writes' latency, and
 * with it their IOPS); all CK_IOS when the store has nothing else to do, when
 * someone waits for the checkpoint, or once the journal is more than half
 * way from the checkpoint threshold to full. */
unsigned store__ck_depth(const struct vs_store *s)
{
    uint64_t pct = s->cfg.journal_checkpoint_pct;
    if (s->ops_inflight == 0 || s->wait_q.head || s->ck.waiters ||
        s->jused * 200 >= s->jsize * (100 + pct))
        return CK_IOS;
    return CK_IOS_FG;
}

static struct vs_disk_io *ck_io(struct vs_store *s, unsigned *slot)
{
    if (s->ck.ios_inflight >= store__ck_depth(s))
        return NULL;
    for (unsigned i = 0; i < CK_IOS; i++) {
        if (s->ck.ios[i].cb == NULL) {
            memset(&s->ck.ios[i], 0, sizeof(s->ck.ios[i]));
            s->ck.ios[i].cb = ck_io_cb;
            *slot = i;
            return &s->ck.ios[i];
        }
    }
    return NULL;
}

static void ck_io_cb(struct vs_disk_io *io, int res)
{
    struct vs_store *s = io->owner;
    io->cb = NULL;
    if (res < 0)
        store__set_broken(s, res, "checkpoint write");
    s->ck.ios_inflight--;
    store__ck_step(s);
    store__retry_flush(s);
}

static void ck_submit(struct vs_store *s, struct vs_disk_io *io, unsigned dev, uint64_t off,
                      void *buf, uint32_t len)
{
    io->opcode = VS_DISK_WRITE;
    io->dev = (uint8_t)dev;
    io->offset = off;
    io->buf = buf;
    io->len = len;
    io->owner = s;
    s->ck.ios_inflight++;
    store__count_io(s, dev == s->sb.layout.data_dev && off >= s->sb.layout.data_offset
                           ? VS_STORE_IO_FLUSH : VS_STORE_IO_META, len);
    store__submit(s, io);
}

/* The journal sector holding the data entry src flushes to sector sec. */
static uint32_t flush_jsec(const struct vs_store *s, uint32_t src, uint32_t sec)
{
    const struct store_entry *e = &s->ents[src];
    return e->jpos + e->data_sec + (sec - e->offset / SECTOR);
}

/* Sectors of the arena that one flush io may fill (io slot i owns
 * [i * n, (i + 1) * n) of it: no allocator, and the page runs that use the
 * arena come only after every flush io completed). */
static uint32_t flush_copy_sectors(const struct vs_store *s)
{
    return (uint32_t)(store__ck_arena_size(s) / CK_IOS / SECTOR);
}

/* Issues one in-place write of the consecutive dirty sectors [sec, sec + n)
 * of block; false when no io slot is free. Sectors whose journal copies are
 * consecutive go straight from the journal mirror; a run mixing entries (a
 * block overwritten by several small writes side by side) is copied into the
 * io's arena slot, up to flush_copy_sectors(): one io instead of one per
 * entry. Returns the sectors issued in *done. */
static bool flush_run(struct vs_store *s, uint32_t block, const uint32_t *srcs, uint32_t sec,
                      uint32_t n, uint32_t *done)
{
    uint32_t js = flush_jsec(s, srcs[sec], sec), direct = 1;
    while (direct < n && flush_jsec(s, srcs[sec + direct], sec + direct) == js + direct)
        direct++;
    unsigned slot;
    struct vs_disk_io *io = ck_io(s, &slot);
    if (!io)
        return false;
    uint8_t *buf = s->jbuf + (size_t)js * SECTOR;
    uint32_t len = direct;
    if (direct < n && direct < flush_copy_sectors(s)) { /* several sources: gather them */
        len = VS_MIN(n, flush_copy_sectors(s));
        buf = s->ck.arena + (size_t)slot * flush_copy_sectors(s) * SECTOR;
        for (uint32_t i = 0; i < len; i++)
            memcpy(buf + (size_t)i * SECTOR,
                   s->jbuf + (size_t)flush_jsec(s, srcs[sec + i], sec + i) * SECTOR, SECTOR);
        s->st.flush_merged += len - 1;
    }
    VS_TRACE("store", "flush: block %u sec %u+%u%s", block, sec, len,
             buf == s->jbuf + (size_t)js * SECTOR ? "" : " (gathered)");
    const struct vs_store_layout *l = &s->sb.layout;
    ck_submit(s, io, l->data_dev,
              l->data_offset + (uint64_t)block * s->block_size + (uint64_t)sec * SECTOR, buf,
              len * SECTOR);
    *done = len;
    return true;
}

/* Issues flush runs until the io slots are used up; true when all issued. */
static bool flush_issue(struct vs_store *s)
{
    struct store_ck *ck = &s->ck;
    for (; ck->flush_i < ck->flush_n; ck->flush_i++, ck->flush_sec = 0) {
        uint32_t oi = ck->flush_obj[ck->flush_i], top = ck->flush_top[ck->flush_i];
        uint32_t block = s->objs[oi].block;
        const uint32_t *srcs = flush_sources(s, top);
        while (ck->flush_sec < s->spb) {
            uint32_t sec = ck->flush_sec, n = 0, done;
            while (sec + n < s->spb && srcs[sec + n])
                n++;
            if (n == 0) {
                ck->flush_sec++;
                continue;
            }
            if (!flush_run(s, block, srcs, sec, n, &done))
                return false;
            ck->flush_sec = sec + done;
        }
    }
    return true;
}

/* Folds the flushed entries into the base and retires them. */
static void flush_apply(struct vs_store *s)
{
    for (uint32_t i = 0; i < s->ck.flush_n; i++) {
        uint32_t oi = s->ck.flush_obj[i], top = s->ck.flush_top[i];
        struct store_obj *o = &s->objs[oi];
        const uint32_t *srcs = flush_sources(s, top);
        for (uint32_t sec = 0; sec < s->spb; sec++) {
            uint32_t src = srcs[sec];
            if (!src)
                continue;
            const struct store_entry *e = &s->ents[src];
            bit_set(store__bitmap(s, o->block), sec);
            if (s->block_csum)
                s->block_csum[(size_t)o->block * s->ncsum + sec] =
                    s->jcrc[e->jpos + e->data_sec + (sec - e->offset / SECTOR)];
        }
        o->version = s->ents[top].version;
        store__page_mark_dirty(s, o->block);
        uint32_t prev = 0;
        for (uint32_t ei = o->dirty; ei != top; ei = s->ents[ei].next)
            prev = ei;
        if (prev)
            s->ents[prev].next = 0;
        else
            o->dirty = 0;
        retire_from(s, top, NONE32);
    }
    s->ck.flush_n = 0;
}

/* ---- pages and the checkpoint block ----------------------------------------- */

static void entry_encode(struct vs_store *s, uint64_t slot, uint8_t *e)
{
    memset(e, 0, s->entry_size);
    uint32_t oi, ref;
    if (slot < s->block_count) {
        oi = s->block_owner[slot];
        ref = (uint32_t)slot;
    } else {
        oi = s->tomb_owner[slot - s->block_count];
        ref = TOMB_BIT | (uint32_t)(slot - s->block_count);
    }
    if (oi == NONE32 || s->objs[oi].version == FREE_VERSION || s->objs[oi].block != ref)
        return; /* free, pending free, or an entry not yet applied */
    const struct store_obj *o = &s->objs[oi];
    vs_put_u64(e, o->inode);
    vs_put_u64(e + 8, o->stripe);
    vs_put_u64(e + 16, o->version);
    vs_put_u32(e + 24, PENT_USED | (slot >= s->block_count ? PENT_TOMB : 0));
    if (slot >= s->block_count)
        return;
    memcpy(e + ENTRY_HDR_SIZE, store__bitmap(s, ref), s->bitmap_bytes);
    for (uint32_t i = 0; i < s->ncsum; i++)
        vs_put_u32(e + ENTRY_HDR_SIZE + s->bitmap_bytes + 4 * i,
                   s->block_csum[(size_t)ref * s->ncsum + i]);
}

void store__page_build(struct vs_store *s, uint64_t page_no, uint8_t *buf)
{
    memset(buf, 0, s->page_size);
    for (uint32_t i = 0; i < s->epp; i++) {
        uint64_t slot = page_no * s->epp + i;
        if (slot >= s->block_count + s->tomb_count)
            break;
        entry_encode(s, slot, buf + PAGE_HDR_SIZE + (size_t)i * s->entry_size);
    }
    store__page_seal(buf, s->page_size, page_no, s->ckpt_seq + 1, s->sb.format_version);
}

static uint64_t page_offset(struct vs_store *s, uint64_t p, unsigned copy)
{
    return s->meta_pages_offset + (copy * s->page_count + p) * s->page_size;
}

/* How many pages from p on go in one write: consecutive pages whose newest
 * copy is the same (so that they all go to the other copy, I3), starting and
 * ending with a dirty page; a clean page between dirty ones is rewritten as
 * it is, which keeps neighbouring pages in step for the next checkpoints. */
#define CK_GAP_MAX 8u
static uint32_t page_run(struct vs_store *s, uint32_t p)
{
    uint32_t run_max = (uint32_t)VS_MAX(1u, CK_RUN_BYTES / s->page_size);
    bool copy = bit_get(s->page_copy, p);
    uint32_t n = 1, dirty_end = 1;
    while (n < run_max && p + n < s->page_count && n - dirty_end <= CK_GAP_MAX &&
           bit_get(s->page_copy, p + n) == copy) {
        if (bit_get(s->page_dirty, p + n))
            dirty_end = n + 1;
        n++;
    }
    return dirty_end;
}

/* Writes dirty pages to their other copy, consecutive pages merged into one
 * io; true when all are issued. */
static bool pages_issue(struct vs_store *s)
{
    struct store_ck *ck = &s->ck;
    for (; ck->next_page < s->page_count; ck->next_page++) {
        uint32_t p = (uint32_t)ck->next_page;
        if (!bit_get(s->page_dirty, p))
            continue;
        uint32_t n = page_run(s, p);
        size_t len = (size_t)n * s->page_size;
        if (ck->ios_inflight == 0)
            ck->arena_used = 0;
        unsigned slot;
        struct vs_disk_io *io = ck->arena_used + len <= store__ck_arena_size(s) ? ck_io(s, &slot)
                                                                                 : NULL;
        if (!io)
            return false; /* a completion steps the machine again */
        uint8_t *buf = ck->arena + ck->arena_used;
        ck->arena_used += len;
        unsigned copy = !bit_get(s->page_copy, p);
        for (uint32_t i = 0; i < n; i++) {
            uint32_t q = p + i;
            store__page_build(s, q, buf + (size_t)i * s->page_size);
            s->page_copy[q / 8] = (uint8_t)(s->page_copy[q / 8] ^ (1u << (q % 8)));
            if (bit_get(s->page_dirty, q)) {
                s->page_dirty[q / 8] = (uint8_t)(s->page_dirty[q / 8] & ~(1u << (q % 8)));
                s->pages_dirty--;
            }
        }
        ck_submit(s, io, s->sb.layout.meta_dev, page_offset(s, p, copy), buf, (uint32_t)len);
        ck->next_page += n - 1;
    }
    return true;
}

/* T: the oldest record still needed, a live entry's or one in flight. */
void store__ck_compute_start(struct vs_store *s)
{
    uint64_t t = VS_MIN(s->next_seq, s->oldest_incomplete);
    for (uint32_t ei = 1; ei < s->ent_cap; ei++) {
        const struct store_entry *e = &s->ents[ei];
        if (e->kind != ENT_FREE && !(e->flags & EF_ZOMBIE))
            t = VS_MIN(t, e->seq);
    }
    VS_ASSERT(t >= s->start_seq);
    s->ck.new_start_seq = t;
    if (t == s->next_seq) {
        s->ck.new_start_pos = s->jhead;
        s->ck.new_start_prev_crc = s->last_crc;
    } else {
        s->ck.new_start_pos = (uint64_t)s->rec_pos[t % s->rec_cap] * SECTOR;
        s->ck.new_start_prev_crc = vs_get_u32(s->jbuf + s->ck.new_start_pos + 12);
    }
}

/* Writes checkpoint block ckpt_seq + 1 with the given journal start. */
static void ckpt_issue_at(struct vs_store *s, uint64_t pos, uint64_t seq, uint32_t prev)
{
    unsigned slot;
    struct vs_disk_io *io = ck_io(s, &slot);
    VS_ASSERT(io != NULL);
    struct store_ckpt c = {s->ckpt_seq + 1, pos, seq, prev, s->synced_seq, s->sb.format_version};
    s->ck.block_synced = c.synced_seq; /* what the block says, once durable (I8) */
    uint8_t *buf = s->ck.ckpt_buf;
    store__ckpt_encode(&c, buf);
    const struct vs_store_layout *l = &s->sb.layout;
    /* Never over the newest valid block (I4): a torn write must leave it. */
    ck_submit(s, io, l->meta_dev, l->meta_offset + (s->ckpt_slot ^ 1u) * CKPT_SIZE, buf,
              CKPT_SIZE);
}

static void ckpt_issue(struct vs_store *s)
{
    ckpt_issue_at(s, s->ck.new_start_pos, s->ck.new_start_seq, s->ck.new_start_prev_crc);
}

/* A checkpoint block that changes nothing but synced_seq: once durable, no
 * replay rechecks a big write below it (I8), so its block may be overwritten
 * in place by the flush that follows (I7). */
static void ck_mark_done(struct vs_store *s)
{
    s->ckpt_seq++;
    s->ckpt_slot ^= 1u;
    s->ckpt_synced = s->ck.block_synced;
}

static void ck_done(struct vs_store *s)
{
    s->ckpt_seq++;
    s->ckpt_slot ^= 1u;
    s->ckpt_synced = s->ck.block_synced;
    s->ck.progress |= s->ck.new_start_seq != s->start_seq || s->ck.pend_frozen_blocks ||
                      s->ck.pend_frozen_tombs;
    uint64_t dist = (s->ck.new_start_pos + s->jsize - s->jstart) % s->jsize;
    if (s->ck.new_start_seq == s->next_seq)
        s->jused = 0;
    else
        s->jused -= dist;
    s->jstart = s->ck.new_start_pos;
    s->start_seq = s->ck.new_start_seq;
    s->start_prev_crc = s->ck.new_start_prev_crc;
    VS_DEBUG_LOG("store", "ck done: dist %llu T %llu next %llu synced %llu live %u jused %llu",
                 (unsigned long long)dist, (unsigned long long)s->ck.new_start_seq,
                 (unsigned long long)s->next_seq, (unsigned long long)s->synced_seq, s->ents_live,
                 (unsigned long long)s->jused);
    store__pending_release(s, s->ck.pend_frozen_blocks, s->ck.pend_frozen_tombs);
    store__purge_done(s);
    s->bases_synced = true; /* every base now comes from an apply below ckpt_synced */
    s->st.checkpoints++;
    VS_DASSERT(store__invariants(s));
}

static void ck_finish(struct vs_store *s)
{
    struct vs_store_op *w = s->ck.waiters;
    s->ck.waiters = NULL;
    s->ck.state = CK_IDLE;
    while (w) {
        struct vs_store_op *next = w->p.next;
        if (w->p.kind == STORE_OPK_PURGE && w->p.state) { /* P5: once more */
            w->p.state = 0;
            w->p.next = s->ck.waiters_next;
            s->ck.waiters_next = w;
            w = next;
            continue;
        }
        /* A purge's result is its count (store_purge.c). */
        store__complete(s, w, s->broken                        ? -EIO
                              : w->p.kind == STORE_OPK_PURGE ? w->result
                                                             : 0);
        w = next;
    }
    if (s->broken) { /* no checkpoint will run again: fail the later callers too */
        w = s->ck.waiters_next;
        s->ck.waiters_next = NULL;
        while (w) {
            struct vs_store_op *next = w->p.next;
            store__complete(s, w, -EIO);
            w = next;
        }
    }
    if (s->ck.waiters_next)
        s->ck.requested = true;
    store__kick_waiters(s);
    store__ck_maybe_start(s);
}

static bool ck_barrier(struct vs_store *s, enum ck_state next)
{
    s->ck.barrier_ticket = store__barrier_request(s);
    s->ck.state = next;
    return true;
}

static void ck_after_flush(struct vs_store *s)
{
    flush_apply(s);
    store__ck_compute_start(s);
    store__purge_apply(s); /* before the frozen count: its slots go at this one's end */
    s->ck.pend_frozen_blocks = s->pend_blocks_n;
    s->ck.pend_frozen_tombs = s->pend_tombs_n;
    s->ck.next_page = 0;
    s->ck.state = CK_PAGES;
}

static void ck_before_flush(struct vs_store *s)
{
    s->ck.flush_i = s->ck.flush_sec = 0;
    s->ck.state = s->ck.flush_n && s->ckpt_synced < s->synced_seq ? CK_MARK : CK_FLUSH;
    if (s->ck.state == CK_MARK)
        ckpt_issue_at(s, s->jstart, s->start_seq, s->start_prev_crc);
}

static bool ck_mark_step(struct vs_store *s)
{
    if (s->ck.state == CK_MARK) {
        if (s->ck.ios_inflight)
            return false;
        s->ck.fsync_wait = ck_fsync(s, 1u << s->sb.layout.meta_dev);
        s->ck.state = CK_MARK_FSYNC;
        return true;
    }
    if (s->fsync_done < s->ck.fsync_wait)
        return false;
    ck_mark_done(s);
    s->ck.state = CK_FLUSH;
    return true;
}

/* Records made durable since the last apply (by the previous checkpoint's
 * last fsync, or group commit) are enough for an automatic checkpoint: it
 * skips its own fsync. A requested one makes everything completed durable
 * first. Then the durable records become the base (I10). */
static bool ck_fsync1_step(struct vs_store *s)
{
    struct store_ck *ck = &s->ck;
    if (!ck->fsync_wait && (ck->waiters || s->synced_seq <= ck->applied_synced)) {
        ck->fsync_wait = ck_fsync(s, all_devs(s));
        return true;
    }
    if (s->fsync_done < ck->fsync_wait)
        return false;
    ck->applied_synced = s->synced_seq;
    apply_all(s);
    VS_DASSERT(store__invariants(s));
    return ck_barrier(s, CK_BARRIER1);
}

/* One transition; returns false when the machine must wait for an event. */
static bool ck_advance(struct vs_store *s)
{
    struct store_ck *ck = &s->ck;
    switch (ck->state) {
    case CK_IDLE:
        return false;
    case CK_FSYNC1:
        return ck_fsync1_step(s);
    case CK_BARRIER1:
        if (s->barriers_done < ck->barrier_ticket)
            return false;
        ck_before_flush(s);
        return true;
    case CK_MARK:
    case CK_MARK_FSYNC:
        return ck_mark_step(s);
    case CK_FLUSH:
        if (!flush_issue(s) || ck->ios_inflight)
            return false;
        if (ck->flush_n == 0) /* nothing written in place: nothing to fsync */
            return ck_barrier(s, CK_BARRIER2);
        ck->fsync_wait = ck_fsync(s, 1u << s->sb.layout.data_dev);
        ck->state = CK_FSYNC2;
        return true;
    case CK_FSYNC2:
        if (s->fsync_done < ck->fsync_wait)
            return false;
        return ck_barrier(s, CK_BARRIER2);
    case CK_BARRIER2:
        if (s->barriers_done < ck->barrier_ticket)
            return false;
        ck_after_flush(s);
        return true;
    case CK_PAGES:
        if (!pages_issue(s) || ck->ios_inflight)
            return false;
        ck->fsync_wait = ck_fsync(s, 1u << s->sb.layout.meta_dev);
        ck->state = CK_FSYNC3;
        return true;
    case CK_FSYNC3:
        if (s->fsync_done < ck->fsync_wait)
            return false;
        ckpt_issue(s);
        ck->state = CK_CKPT;
        if (s->pend_base_n) { /* the pages are durable: I6 for former bases */
            store__base_release_now(s);
            ck->progress = true;
            store__kick_waiters(s);
        }
        return true;
    case CK_CKPT:
        if (ck->ios_inflight)
            return false;
        ck->fsync_wait = ck_fsync(s, 1u << s->sb.layout.meta_dev);
        ck->state = CK_FSYNC4;
        return true;
    case CK_FSYNC4:
        if (s->fsync_done < ck->fsync_wait)
            return false;
        return ck_barrier(s, CK_BARRIER3);
    case CK_BARRIER3:
        if (s->barriers_done < ck->barrier_ticket)
            return false;
        ck_done(s);
        ck_finish(s);
        return false;
    }
    return false;
}

void store__ck_step(struct vs_store *s)
{
    if (s->ck.in_step) {
        s->ck.again = true;
        return;
    }
    s->ck.in_step = true;
    do {
        s->ck.again = false;
        if (s->broken && s->ck.state != CK_IDLE && s->ck.ios_inflight == 0 &&
            !s->fsync_batch_inflight) {
            ck_finish(s); /* abandon: the store is read-only now */
            break;
        }
        while (!s->broken && ck_advance(s)) {
        }
    } while (s->ck.again);
    s->ck.in_step = false;
}

int vs_store_checkpoint(struct vs_store *s, struct vs_store_op *op)
{
    return store__ck_wait(s, op, false);
}

int store__ck_wait(struct vs_store *s, struct vs_store_op *op, bool purge)
{
    if (!op || !op->cb)
        return -EINVAL;
    if (s->broken)
        return -EIO;
    op->p.kind = purge ? STORE_OPK_PURGE : 0;
    op->p.state = 0;
    op->p.store = s;
    op->result = 0;
    s->ops_inflight++;
    if (s->cfg.readonly) {
        store__defer(s, op);
        return 0;
    }
    op->p.next = s->ck.waiters_next;
    s->ck.waiters_next = op;
    s->ck.requested = true;
    store__ck_maybe_start(s);
    return 0;
}
