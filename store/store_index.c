/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_index.c -- the in-memory index: object table and its hash, dirty
 * entries, the block and tombstone allocators with their pending-free lists.
 *
 * RAM per object (the tracked figure): a 32-byte struct store_obj, one u32
 * hash slot per object at load <= 0.75 (pre-sized, so never rehashed on the
 * data path), and per data block a u32 owner plus the bitmap. Checksums are
 * extra: 4 bytes per 4 KiB of block. Everything is allocated at open.
 */
#include "store_int.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

static uint32_t oid_hash(uint64_t inode, uint64_t stripe)
{
    return (uint32_t)mix64(inode * 0x9e3779b97f4a7c15ull ^ stripe);
}

static uint64_t *bits_alloc_set(uint64_t n)
{
    uint64_t words = (n + 63) / 64;
    uint64_t *b = malloc((words ? words : 1) * 8);
    if (!b)
        return NULL;
    memset(b, 0xff, words * 8);
    if (n % 64)
        b[words - 1] = (1ull << (n % 64)) - 1;
    return b;
}

/* The object table, its hash, the block arrays and the crcs are read at
 * random on every op: on 2 MiB pages (transparent huge pages, when the system
 * allows madvise) one TLB entry covers what took 512, and in a VM each TLB
 * miss is a two-level page walk. Smaller arrays stay on the heap. */
#define HUGE_PAGE (2u << 20)
static void *index_calloc(size_t n, size_t size)
{
    size_t len = n * size;
    if (len < HUGE_PAGE / 4)
        return calloc(n ? n : 1, size);
    size_t alen = (len + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
    void *p = NULL;
    if (posix_memalign(&p, HUGE_PAGE, alen) != 0)
        return NULL;
    (void)madvise(p, alen, MADV_HUGEPAGE); /* advice only: 4 KiB pages otherwise */
    memset(p, 0, len);
    return p;
}

int store__index_alloc(struct vs_store *s)
{
    uint64_t cap = s->block_count + s->tomb_count;
    if (cap >= NONE32 - 1)
        return -EINVAL;
    s->obj_cap = (uint32_t)cap;
    uint64_t hsize = 16;
    while (hsize * 3 < cap * 4)
        hsize <<= 1;
    s->hash_mask = (uint32_t)(hsize - 1);
    s->objs = index_calloc((size_t)cap, sizeof(struct store_obj));
    s->hash = index_calloc(hsize, sizeof(uint32_t));
    s->block_owner = index_calloc(s->block_count, sizeof(uint32_t));
    s->block_bitmap = index_calloc(s->block_count, s->bitmap_bytes);
    s->tomb_owner = malloc((s->tomb_count ? s->tomb_count : 1) * sizeof(uint32_t));
    s->block_free = bits_alloc_set(s->block_count);
    s->tomb_free = bits_alloc_set(s->tomb_count);
    s->tomb_seq = malloc((s->tomb_count ? s->tomb_count : 1) * sizeof(uint64_t));
    if (s->ncsum)
        s->block_csum = index_calloc(s->block_count * s->ncsum, sizeof(uint32_t));
    uint64_t jsectors = s->jsize / SECTOR;
    s->ent_cap = (uint32_t)(2 * jsectors + 64);
    s->ents = calloc(s->ent_cap, sizeof(struct store_entry));
    s->zlist = malloc(s->ent_cap * sizeof(uint32_t));
    s->pend_max = (uint32_t)(jsectors + 64);
    s->pend_blocks = malloc(s->pend_max * sizeof(uint32_t));
    s->pend_tombs = malloc(s->pend_max * sizeof(uint32_t));
    s->rb_blocks = malloc(s->pend_max * sizeof(uint32_t));
    s->pend_base = malloc(s->pend_max * sizeof(uint32_t));
    s->rb_seq = malloc(s->pend_max * sizeof(uint64_t));
    s->ck.flush_obj = malloc(s->ent_cap * sizeof(uint32_t));
    s->ck.flush_top = malloc(s->ent_cap * sizeof(uint32_t));
    s->ck.flush_src = malloc(s->spb * sizeof(uint32_t));
    s->rec_cap = (uint32_t)(jsectors + 1);
    s->rec_state = calloc(s->rec_cap, 1);
    s->rec_pos = calloc(s->rec_cap, sizeof(uint32_t));
    if (!s->objs || !s->hash || !s->block_owner || !s->block_bitmap || !s->tomb_owner ||
        !s->tomb_seq || !s->block_free || !s->tomb_free || (s->ncsum && !s->block_csum) ||
        !s->ents || !s->zlist || !s->pend_blocks || !s->pend_tombs || !s->rb_blocks || !s->rb_seq ||
        !s->pend_base ||
        !s->ck.flush_obj || !s->ck.flush_top || !s->ck.flush_src || !s->rec_state || !s->rec_pos)
        return -ENOMEM;
    memset(s->block_owner, 0xff, s->block_count * sizeof(uint32_t));
    memset(s->tomb_owner, 0xff, (s->tomb_count ? s->tomb_count : 1) * sizeof(uint32_t));
    memset(s->tomb_seq, 0xff, (s->tomb_count ? s->tomb_count : 1) * sizeof(uint64_t));
    for (uint32_t i = 0; i < s->obj_cap; i++) {
        s->objs[i].version = FREE_VERSION;
        s->objs[i].dirty = i + 1 < s->obj_cap ? i + 1 : NONE32;
    }
    s->obj_free = s->obj_cap ? 0 : NONE32;
    /* Entry 0 is the "none" sentinel; the free list links through .next. */
    for (uint32_t i = 1; i < s->ent_cap; i++)
        s->ents[i].next = i + 1 < s->ent_cap ? i + 1 : 0;
    s->ent_free = 1;
    s->blocks_free = s->block_count;
    s->tombs_free = s->tomb_count;
    return 0;
}

void store__index_free(struct vs_store *s)
{
    free(s->objs);
    free(s->hash);
    free(s->block_owner);
    free(s->block_bitmap);
    free(s->block_csum);
    free(s->tomb_owner);
    free(s->tomb_seq);
    free(s->block_free);
    free(s->tomb_free);
    free(s->ents);
    free(s->zlist);
    free(s->pend_blocks);
    free(s->pend_tombs);
    free(s->rb_blocks);
    free(s->pend_base);
    free(s->rb_seq);
    free(s->ck.flush_obj);
    free(s->ck.flush_top);
    free(s->ck.flush_src);
    free(s->rec_state);
    free(s->rec_pos);
}

/* ---- objects ------------------------------------------------------------- */

uint32_t store__obj_find(const struct vs_store *s, uint64_t inode, uint64_t stripe)
{
    uint32_t h = oid_hash(inode, stripe) & s->hash_mask;
    for (;;) {
        uint32_t v = s->hash[h];
        if (v == 0)
            return NONE32;
        const struct store_obj *o = &s->objs[v - 1];
        if (o->inode == inode && o->stripe == stripe)
            return v - 1;
        h = (h + 1) & s->hash_mask;
    }
}

uint32_t store__obj_get(struct vs_store *s, uint64_t inode, uint64_t stripe)
{
    uint32_t oi = store__obj_find(s, inode, stripe);
    if (oi != NONE32)
        return oi;
    if (s->obj_free == NONE32)
        return NONE32;
    oi = s->obj_free;
    struct store_obj *o = &s->objs[oi];
    s->obj_free = o->dirty;
    o->inode = inode;
    o->stripe = stripe;
    o->version = 0;
    o->block = NONE32;
    o->dirty = 0;
    uint32_t h = oid_hash(inode, stripe) & s->hash_mask;
    while (s->hash[h])
        h = (h + 1) & s->hash_mask;
    s->hash[h] = oi + 1;
    s->obj_used++;
    return oi;
}

/* Removes an object that has neither a base nor entries (linear probing
 * deletion by backward shift keeps every probe chain intact). */
void store__obj_maybe_drop(struct vs_store *s, uint32_t oi)
{
    struct store_obj *o = &s->objs[oi];
    if (o->dirty || o->block != NONE32)
        return;
    uint32_t h = oid_hash(o->inode, o->stripe) & s->hash_mask;
    while (s->hash[h] != oi + 1) {
        VS_ASSERT(s->hash[h] != 0);
        h = (h + 1) & s->hash_mask;
    }
    uint32_t hole = h;
    for (uint32_t j = (hole + 1) & s->hash_mask; s->hash[j]; j = (j + 1) & s->hash_mask) {
        const struct store_obj *x = &s->objs[s->hash[j] - 1];
        uint32_t home = oid_hash(x->inode, x->stripe) & s->hash_mask;
        /* Move x into the hole unless its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            s->hash[hole] = s->hash[j];
            hole = j;
        }
    }
    s->hash[hole] = 0;
    o->version = FREE_VERSION;
    o->dirty = s->obj_free;
    s->obj_free = oi;
    s->obj_used--;
}

/* Newest version of the object (entries first, then base); 0 when none. */
uint64_t store__newest_version(const struct vs_store *s, uint32_t oi, bool *deleted)
{
    const struct store_obj *o = &s->objs[oi];
    if (o->dirty) {
        const struct store_entry *e = &s->ents[o->dirty];
        *deleted = e->kind == ENT_DELETE;
        return e->version;
    }
    *deleted = o->block == NONE32 || (o->block & TOMB_BIT);
    return o->version;
}

/* ---- entries ------------------------------------------------------------- */

uint32_t store__ent_alloc(struct vs_store *s)
{
    uint32_t ei = s->ent_free;
    if (ei == 0)
        return 0;
    s->ent_free = s->ents[ei].next;
    memset(&s->ents[ei], 0, sizeof(s->ents[ei]));
    s->ents_live++;
    return ei;
}

/* Retires an entry unlinked from its chain. Its memory (and .next) stays
 * intact until a read barrier proves no read in flight walks it (I9). */
void store__ent_retire(struct vs_store *s, uint32_t ei)
{
    VS_ASSERT(ei != 0 && !(s->ents[ei].flags & EF_ZOMBIE));
    s->ents[ei].flags |= EF_ZOMBIE;
    s->zlist[s->zn_cur++] = ei;
    s->ents_live--;
    if (s->ents[ei].kind == ENT_BIG) {
        VS_ASSERT(s->ents_big > 0);
        s->ents_big--;
    }
}

/* Frees the zombies that were retired before the last completed barrier. */
void store__zombies_release(struct vs_store *s)
{
    for (uint32_t i = 0; i < s->zn_pend; i++) {
        uint32_t ei = s->zlist[i];
        s->ents[ei].kind = ENT_FREE;
        s->ents[ei].flags = 0;
        s->ents[ei].next = s->ent_free;
        s->ent_free = ei;
    }
    memmove(s->zlist, s->zlist + s->zn_pend, (s->zn_cur - s->zn_pend) * sizeof(uint32_t));
    s->zn_cur -= s->zn_pend;
    s->zn_pend = 0;
}

/* ---- allocators ---------------------------------------------------------- */

static uint32_t bits_take(uint64_t *bits, uint64_t n, uint64_t *hint)
{
    uint64_t words = (n + 63) / 64;
    for (uint64_t k = 0; k < words; k++) {
        uint64_t w = (*hint + k) % words;
        if (bits[w]) {
            unsigned b = (unsigned)__builtin_ctzll(bits[w]);
            bits[w] &= ~(1ull << b);
            *hint = w;
            return (uint32_t)(w * 64 + b);
        }
    }
    return NONE32;
}

uint32_t store__block_alloc(struct vs_store *s)
{
    if (s->blocks_free == 0)
        return NONE32;
    uint32_t b = bits_take(s->block_free, s->block_count, &s->block_hint);
    VS_ASSERT(b != NONE32);
    s->blocks_free--;
    return b;
}

void store__block_mark_used(struct vs_store *s, uint32_t b)
{
    VS_ASSERT(b < s->block_count);
    uint64_t m = 1ull << (b % 64);
    VS_ASSERT(s->block_free[b / 64] & m);
    s->block_free[b / 64] &= ~m;
    s->blocks_free--;
}

/* The block stays allocated until the checkpoint that forgets it on disk has
 * completed and no read can still be reading it (I6). */
void store__block_release(struct vs_store *s, uint32_t b)
{
    VS_ASSERT(b < s->block_count);
    VS_ASSERTF(s->pend_blocks_n < s->pend_max, "pending=%u", s->pend_blocks_n);
    s->pend_blocks[s->pend_blocks_n++] = b;
}

/* A block that was an object's base in the durable pages, replaced by the
 * running checkpoint's apply: every record that wrote it is older than the
 * synced point of the durable checkpoint block, so no replay verifies one
 * against it (I8), and once this checkpoint's pages are durable none of them
 * describes it either; it is free from then on (I6), before the checkpoint
 * block (once a checkpoint completed since open: bases_synced). A block
 * written by a journal entry the apply superseded is not: its record may be
 * newer than that synced point (store__block_release). */
void store__base_release(struct vs_store *s, uint32_t b)
{
    VS_ASSERT(b < s->block_count);
    VS_ASSERTF(s->pend_base_n < s->pend_max, "pending=%u", s->pend_base_n);
    s->pend_base[s->pend_base_n++] = b;
}

/* The running checkpoint's pages are durable and the read barrier after its
 * apply has passed: the replaced base blocks are free. */
void store__base_release_now(struct vs_store *s)
{
    for (uint32_t i = 0; i < s->pend_base_n; i++) {
        uint32_t b = s->pend_base[i];
        VS_TRACE("store", "release: base block %u (owner %u)", b, s->block_owner[b]);
        s->block_free[b / 64] |= 1ull << (b % 64);
        s->block_owner[b] = NONE32;
        s->blocks_free++;
    }
    s->pend_base_n = 0;
}

uint32_t store__tomb_alloc(struct vs_store *s)
{
    if (s->tombs_free == 0)
        return NONE32;
    uint32_t t = bits_take(s->tomb_free, s->tomb_count, &s->tomb_hint);
    VS_ASSERT(t != NONE32);
    s->tombs_free--;
    return t;
}

void store__tomb_mark_used(struct vs_store *s, uint32_t t)
{
    VS_ASSERT(t < s->tomb_count);
    uint64_t m = 1ull << (t % 64);
    VS_ASSERT(s->tomb_free[t / 64] & m);
    s->tomb_free[t / 64] &= ~m;
    s->tombs_free--;
}

void store__tomb_release(struct vs_store *s, uint32_t t)
{
    VS_ASSERT(t < s->tomb_count);
    VS_ASSERTF(s->pend_tombs_n < s->pend_max, "pending=%u", s->pend_tombs_n);
    s->pend_tombs[s->pend_tombs_n++] = t;
}

/* Makes the first nblocks / ntombs pending items allocatable again. */
void store__pending_release(struct vs_store *s, uint32_t nblocks, uint32_t ntombs)
{
    for (uint32_t i = 0; i < nblocks; i++) {
        uint32_t b = s->pend_blocks[i];
        VS_TRACE("store", "release: block %u (owner %u)", b, s->block_owner[b]);
        s->block_free[b / 64] |= 1ull << (b % 64);
        s->block_owner[b] = NONE32;
        s->blocks_free++;
    }
    memmove(s->pend_blocks, s->pend_blocks + nblocks,
            (s->pend_blocks_n - nblocks) * sizeof(uint32_t));
    s->pend_blocks_n -= nblocks;
    for (uint32_t i = 0; i < ntombs; i++) {
        uint32_t t = s->pend_tombs[i];
        s->tomb_free[t / 64] |= 1ull << (t % 64);
        s->tomb_owner[t] = NONE32;
        s->tombs_free++;
    }
    memmove(s->pend_tombs, s->pend_tombs + ntombs, (s->pend_tombs_n - ntombs) * sizeof(uint32_t));
    s->pend_tombs_n -= ntombs;
}

void store__page_mark_dirty(struct vs_store *s, uint64_t slot)
{
    uint64_t p = slot / s->epp;
    VS_ASSERT(p < s->page_count);
    if (!bit_get(s->page_dirty, (uint32_t)p)) {
        bit_set(s->page_dirty, (uint32_t)p);
        s->pages_dirty++;
    }
}

/* O(n) whole-index check (debug builds, VS_DASSERT): every block is exactly
 * one of free, a base, a live big entry's, or pending release (I6). */
bool store__invariants(struct vs_store *s)
{
    uint8_t *refs = calloc(s->block_count ? s->block_count : 1, 1);
    VS_ASSERT(refs != NULL);
    bool ok = true;
    for (uint32_t oi = 0; oi < s->obj_cap; oi++) {
        const struct store_obj *o = &s->objs[oi];
        if (o->version == FREE_VERSION)
            continue;
        if (o->block != NONE32 && !(o->block & TOMB_BIT))
            refs[o->block]++;
        for (uint32_t ei = o->dirty; ei; ei = s->ents[ei].next) {
            const struct store_entry *e = &s->ents[ei];
            ok = ok && !(e->flags & EF_ZOMBIE) && e->kind != ENT_FREE && e->obj == oi;
            if (e->kind == ENT_BIG && !(e->flags & EF_NOBLOCK))
                refs[e->block]++;
        }
    }
    for (uint32_t i = 0; i < s->pend_blocks_n; i++)
        refs[s->pend_blocks[i]]++;
    for (uint32_t i = 0; i < s->rb_blocks_n; i++)
        refs[s->rb_blocks[i]]++;
    for (uint32_t i = 0; i < s->pend_base_n; i++)
        refs[s->pend_base[i]]++;
    uint64_t nfree = 0;
    for (uint32_t b = 0; b < s->block_count; b++) {
        bool is_free = (s->block_free[b / 64] >> (b % 64)) & 1;
        nfree += is_free;
        if (refs[b] != (is_free ? 0 : 1)) {
            fprintf(stderr, "invariant: block %u free=%d refs=%u\n", b, is_free, refs[b]);
            ok = false;
        }
    }
    ok = ok && nfree == s->blocks_free;
    free(refs);
    return ok;
}
