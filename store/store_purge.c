/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_purge.c -- vs_store_purge: tombstones dropped for good.
 *
 * A tombstone (an object whose base is TOMB_BIT|slot) exists so that an
 * older copy elsewhere never comes back; the OSD decides when none can
 * (docs/data-path.md §5) and asks the store to drop it. The drop runs inside
 * a checkpoint, between the apply (which turns every durable delete into a
 * base tombstone) and the metadata pages, so no new record type is needed:
 * the format does not change, and older binaries read the result.
 *
 * Rules (cited as P1..P4):
 *  (P1) Only a base tombstone is dropped (no entry of the object is left in
 *       the journal), and only when the journal this checkpoint keeps starts
 *       after the delete record that made it (tomb_seq < new_start_seq): a
 *       replay after any later crash can then never re-create it. Were it
 *       re-created after its slot was reused, the slots might not suffice
 *       and the store would not open.
 *  (P2) The slot is released like any other freed slot: pending until the
 *       end of this checkpoint, whose pages no longer reference it, so a
 *       crash before that finds either the old page (the tombstone back,
 *       its slot not reused by anyone) or the new one (the object gone).
 *  (P3) Until the checkpoint is durable, the object stays in the index as a
 *       "ghost": no base (block NONE32, not listed, not written to the
 *       pages), but its version kept, so vs_store_newest still reports it
 *       deleted at that version and a write must carry a higher one -- a
 *       lower one would be skipped by replay if the old page came back.
 *       The checkpoint's end drops the ghosts (store__obj_maybe_drop).
 *  (P4) A purge is all-or-nothing per tombstone, not per call: a crash
 *       leaves every matching tombstone either dropped or still there, and
 *       both mean "deleted" to the OSD.
 *  (P5) No page may still claim the object at an older version: such a
 *       stale claim is harmless while the tombstone's claim is newer (I5),
 *       and would bring the old version back once the tombstone is gone.
 *       Stale claims come from two places: an open that found an object
 *       claimed twice (it marks the loser's page dirty), and an apply that
 *       replaced a base (the old slot's page is marked dirty, store_ckpt.c
 *       release_ref). So a purge runs only in a checkpoint after one has
 *       completed since open (bases_synced): every stale claim of the open
 *       is rewritten by then, and every later one is written by the same
 *       checkpoint that makes the tombstone the base -- before any purge
 *       can drop it. A purge that comes too early waits for the next one.
 */
#include "store_int.h"

#include <errno.h>
#include <string.h>

static bool purge_match(const struct vs_store_purge *f, const struct store_obj *o)
{
    if (f->pool_id != VS_STORE_POOL_ANY && (o->inode >> 48) != f->pool_id)
        return false;
    if (f->pg_count && (o->stripe / f->pg_stripe_size) % f->pg_count != f->pg)
        return false;
    return o->version < f->below;
}

/* One purge waiter: drops its tombstones (P1, P3), counts those left. */
static void purge_one(struct vs_store *s, struct vs_store_op *op)
{
    const struct vs_store_purge *f = op->purge;
    uint64_t dropped = 0, left = 0;
    if (!s->bases_synced) { /* P5: the next checkpoint */
        op->p.state = 1;
        s->ck.requested = true;
        return;
    }
    for (uint32_t oi = 0; oi < s->obj_cap; oi++) {
        struct store_obj *o = &s->objs[oi];
        if (o->version == FREE_VERSION || !purge_match(f, o))
            continue;
        bool deleted;
        if (o->dirty) { /* a delete not applied yet: a later purge takes it */
            uint64_t v = store__newest_version(s, oi, &deleted);
            left += deleted && v < f->below;
            continue;
        }
        if (o->block == NONE32 || !(o->block & TOMB_BIT))
            continue;
        uint32_t t = o->block & ~TOMB_BIT;
        VS_ASSERT(t < s->tomb_count && s->tomb_owner[t] == oi);
        if (s->tomb_seq[t] >= s->ck.new_start_seq) { /* P1 */
            left++;
            continue;
        }
        store__tomb_release(s, t); /* P2 */
        store__page_mark_dirty(s, s->block_count + t);
        o->block = NONE32; /* P3: a ghost until this checkpoint ends */
        s->ck.ghosts = true;
        dropped++;
    }
    op->result = (int)VS_MIN(dropped, (uint64_t)INT32_MAX);
    op->out_version = left;
}

void store__purge_apply(struct vs_store *s)
{
    for (struct vs_store_op *w = s->ck.waiters; w; w = w->p.next)
        if (w->p.kind == STORE_OPK_PURGE)
            purge_one(s, w);
}

void store__purge_done(struct vs_store *s)
{
    if (!s->ck.ghosts)
        return;
    s->ck.ghosts = false;
    for (uint32_t oi = 0; oi < s->obj_cap; oi++) {
        const struct store_obj *o = &s->objs[oi];
        if (o->version != FREE_VERSION && !o->dirty && o->block == NONE32)
            store__obj_maybe_drop(s, oi);
    }
}

void store__purge_open(struct vs_store *s, bool pages_newer)
{
    /* A tombstone loaded from pages of the checkpoint the block names was
     * made by a record below its journal start. Pages newer than the block
     * (a checkpoint torn after its pages) may hold one whose record is still
     * replayed: treat it as made by the last record, so only a checkpoint
     * past that drops it (P1). */
    for (uint64_t t = 0; t < s->tomb_count; t++)
        if (s->tomb_seq[t] == UINT64_MAX)
            s->tomb_seq[t] = pages_newer ? s->next_seq : 0;
}

int vs_store_purge(struct vs_store *s, struct vs_store_op *op)
{
    if (!op || !op->cb || !op->purge)
        return -EINVAL;
    const struct vs_store_purge *f = op->purge;
    if (f->pg_count && (f->pg >= f->pg_count || f->pg_stripe_size == 0))
        return -EINVAL;
    if (s->broken)
        return -EIO;
    if (s->cfg.readonly)
        return -EROFS;
    op->out_version = 0;
    /* A checkpoint waiter that store__purge_apply recognises by its kind;
     * ck_finish completes it with its count. */
    return store__ck_wait(s, op, true);
}
