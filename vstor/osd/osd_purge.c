/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_purge.c -- objects of a PG dropped from the local store for good
 * (docs/data-path.md §5, §6): the work behind SEC_PURGE, and behind the
 * primary's own part of it.
 *
 *   WIPE   every object of the PG goes, live or deleted: used on an OSD the
 *          PG's history superseded (rule W1 of osd_peering.c). Each live
 *          object is deleted (a tombstone at its next version), in batches
 *          that fit the free tombstone slots, and each batch's tombstones are
 *          then purged (vs_store_purge, every version); done when the store
 *          lists nothing of the PG. A purge that could not drop everything
 *          yet (a delete record the journal still replays: store_purge.c P1)
 *          is retried a few times, then the wipe fails with -EAGAIN and the
 *          primary asks again later. Idempotent: a wipe torn by a crash or a
 *          lost connection leaves live copies, tombstones or nothing, and the
 *          OSD stays superseded (never listed) until a wipe succeeds.
 *   TOMBS  the PG's tombstones below a version go (rule T of osd_peering.c):
 *          one vs_store_purge.
 *
 * The caller holds the PG's lock #2 here (SEC_PURGE) or is its primary in
 * PEERING (the local part): no write of the PG runs meanwhile.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define WIPE_BATCH 256   /* deletes in flight */
#define WIPE_PURGES 4    /* purges after the last batch before -EAGAIN */

struct osd_purge {
    struct vs_osd *osd;
    uint32_t flags;               /* VS_NET_PURGEF_* */
    struct vs_store_purge f;
    osd_purge_cb cb;
    void *ctx;
    struct vs_store_list_entry *ents;
    long n, next;
    uint32_t inflight, purges;
    uint64_t deleted, dropped;
    int rc;
    struct vs_store_op pop;
    struct vs_store_op dels[WIPE_BATCH];
};

static void finish(struct osd_purge *p, int rc)
{
    osd_purge_cb cb = p->cb;
    void *ctx = p->ctx;
    VS_DEBUG_LOG(OSD_LOG, "purge of pool %" PRIu64 " pg %u (flags %u): %" PRIu64 " deleted, %"
                 PRIu64 " dropped: %s", p->f.pool_id, p->f.pg, p->flags, p->deleted, p->dropped,
                 vs_strerror(rc));
    free(p->ents);
    free(p);
    cb(ctx, rc);
}

static void wipe_next(struct osd_purge *p);

static void purge_cb(struct vs_store_op *sop)
{
    struct osd_purge *p = VS_CONTAINER_OF(sop, struct osd_purge, pop);
    int rc = sop->result;
    if (rc < 0)
        return finish(p, rc);
    p->dropped += (uint64_t)rc;
    if (p->flags == VS_NET_PURGEF_TOMBS)
        return finish(p, 0);
    wipe_next(p);
}

static int purge_start(struct osd_purge *p)
{
    memset(&p->pop, 0, sizeof(p->pop));
    p->pop.purge = &p->f;
    p->pop.cb = purge_cb;
    return vs_store_purge(p->osd->store, &p->pop);
}

static void del_cb(struct vs_store_op *sop)
{
    struct osd_purge *p = sop->ctx;
    int rc = sop->result;
    if (rc == 0)
        p->deleted++;
    else if (rc != -ENOENT && rc != -ENOSPC && p->rc == 0)
        p->rc = rc; /* ENOSPC: the next purge frees slots; the final listing decides */
    VS_ASSERT(p->inflight > 0);
    if (--p->inflight == 0)
        wipe_next(p);
}

/* Deletes up to a batch of the live objects listed, as many as free slots
 * allow; returns how many it started. */
static uint32_t delete_batch(struct osd_purge *p)
{
    struct vs_store_stats st;
    vs_store_get_stats(p->osd->store, &st);
    uint64_t room = st.tomb_count - st.tomb_used;
    uint32_t max = (uint32_t)VS_MIN((uint64_t)WIPE_BATCH, room > 1 ? room / 2 : room);
    uint32_t k = 0;
    while (p->next < p->n && k < max) {
        struct vs_store_oid oid = p->ents[p->next++].oid;
        uint64_t v;
        bool deleted;
        if (vs_store_newest(p->osd->store, oid, &v, &deleted) < 0 || deleted)
            continue; /* gone, or a tombstone already (or a later entry of one) */
        struct vs_store_op *d = &p->dels[k];
        memset(d, 0, sizeof(*d));
        d->oid = oid; /* version 0: the next one after its newest */
        d->cb = del_cb;
        d->ctx = p;
        p->inflight++;
        int rc = vs_store_delete(p->osd->store, d);
        if (rc < 0) {
            p->inflight--;
            if (rc != -ENOENT && rc != -ENOSPC && p->rc == 0)
                p->rc = rc;
            continue;
        }
        k++;
    }
    return k;
}

static long list_pg(struct osd_purge *p, struct vs_store_list_entry **out)
{
    return vs_store_list(p->osd->store, p->f.pool_id, p->f.pg_count, p->f.pg,
                         p->f.pg_stripe_size, out);
}

static void wipe_next(struct osd_purge *p)
{
    if (p->rc < 0)
        return finish(p, p->rc);
    if (p->next < p->n && delete_batch(p) > 0) {
        p->purges = 0; /* progress */
        return;
    }
    if (p->rc < 0)
        return finish(p, p->rc);
    if (p->next >= p->n) { /* every live object was deleted: is anything left? */
        struct vs_store_list_entry *e = NULL;
        long left = list_pg(p, &e);
        free(e);
        if (left <= 0)
            return finish(p, (int)left);
    }
    /* A purge frees this batch's slots, or drops what is left; one that
     * cannot (P1) is retried a few times without progress, then -EAGAIN. */
    if (p->purges++ >= WIPE_PURGES)
        return finish(p, -EAGAIN);
    int rc = purge_start(p);
    if (rc < 0)
        finish(p, rc);
}

int osd__purge_start(struct vs_osd *osd, uint32_t flags, const struct vs_store_purge *f,
                     osd_purge_cb cb, void *ctx)
{
    VS_ASSERT(flags == VS_NET_PURGEF_WIPE || flags == VS_NET_PURGEF_TOMBS);
    if (osd->store_failed)
        return -EIO;
    struct osd_purge *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    *p = (struct osd_purge){.osd = osd, .flags = flags, .f = *f, .cb = cb, .ctx = ctx};
    if (flags == VS_NET_PURGEF_WIPE) {
        p->f.below = UINT64_MAX - 2; /* every version (the store's largest is below) */
        p->n = list_pg(p, &p->ents);
    }
    /* Both start with a purge (a wipe's drops the tombstones already there,
     * freeing slots for its deletes), so cb never runs inside this call. */
    int rc = p->n < 0 ? (int)p->n : purge_start(p);
    if (rc < 0) {
        free(p->ents);
        free(p);
    }
    return rc;
}
