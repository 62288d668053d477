/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_primary.c -- the primary of every PG, spread evenly.
 *
 * Candidates of a PG: its up members carrying primary_affinity_tags, or, when
 * none does, all its up members (a PG is better served by any primary than by
 * none). An OSD's fair number of primaries is the sum over its PGs of
 * 1 / (candidates of that PG): with equal weights every OSD gets pg_count /
 * OSDs, with unequal ones primaries follow the members, hence the weights.
 * Integer targets round these by largest remainder.
 *
 * Assignment keeps the previous primary while its OSD is under target (a
 * primary change restarts the PG), fills the rest greedily, then moves
 * primaries along augmenting paths (u takes a PG from v, v takes one from w,
 * ... until an OSD above its target gives one away) until every OSD is at
 * its target or no path exists. This is a bipartite b-matching again, small
 * enough to solve directly.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct prim {
    struct pl_work *w;
    uint32_t *cand_start, *cand; /* per PG: candidate OSDs */
    uint32_t *adj_start, *adj;   /* per OSD: PGs it is a candidate of */
    uint32_t *from_osd, *from_pg, *queue;
    uint8_t *stuck;
};

static uint32_t pg_candidates(const struct pl_work *w, uint32_t pg, bool tagged, uint32_t *out)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < w->pg_size; r++) {
        uint32_t o = w->cosd[(size_t)pg * w->pg_size + r];
        if (o != PL_NONE && w->osds[o].up && (!tagged || w->osds[o].primary_ok))
            out[n++] = o;
    }
    return n;
}

static int build_candidates(struct prim *pr)
{
    struct pl_work *w = pr->w;
    size_t n = (size_t)w->pg_count * w->pg_size;
    pr->cand_start = calloc(w->pg_count + 1, sizeof(uint32_t));
    pr->cand = malloc((n + 1) * sizeof(uint32_t));
    pr->adj_start = calloc(w->osd_count + 1, sizeof(uint32_t));
    pr->adj = malloc((n + 1) * sizeof(uint32_t));
    if (!pr->cand_start || !pr->cand || !pr->adj_start || !pr->adj)
        return -ENOMEM;
    uint32_t used = 0;
    for (uint32_t pg = 0; pg < w->pg_count; pg++) {
        uint32_t c = pg_candidates(w, pg, true, &pr->cand[used]);
        if (c == 0)
            c = pg_candidates(w, pg, false, &pr->cand[used]);
        for (uint32_t i = 0; i < c; i++) {
            struct pl_eosd *e = &w->osds[pr->cand[used + i]];
            e->prim_ideal += 1.0 / c;
            pr->adj_start[pr->cand[used + i] + 1]++;
        }
        used += c;
        pr->cand_start[pg + 1] = used;
    }
    for (uint32_t o = 0; o < w->osd_count; o++)
        pr->adj_start[o + 1] += pr->adj_start[o];
    uint32_t *fill = calloc(w->osd_count + 1, sizeof(uint32_t));
    if (!fill)
        return -ENOMEM;
    for (uint32_t pg = 0; pg < w->pg_count; pg++)
        for (uint32_t i = pr->cand_start[pg]; i < pr->cand_start[pg + 1]; i++)
            pr->adj[pr->adj_start[pr->cand[i]] + fill[pr->cand[i]]++] = pg;
    free(fill);
    return 0;
}

static void round_targets(struct pl_work *w, uint32_t total)
{
    uint32_t sum = 0;
    for (uint32_t o = 0; o < w->osd_count; o++) {
        w->osds[o].prim_target = (uint32_t)floor(w->osds[o].prim_ideal + 1e-9);
        sum += w->osds[o].prim_target;
    }
    for (; sum < total; sum++) {
        uint32_t pick = PL_NONE;
        double gap = -1e300;
        for (uint32_t o = 0; o < w->osd_count; o++) {
            double g = w->osds[o].prim_ideal - w->osds[o].prim_target;
            if (w->osds[o].prim_ideal > 0 && g > gap)
                pick = o, gap = g;
        }
        if (VS_NEVER(pick == PL_NONE))
            break;
        w->osds[pick].prim_target++;
    }
}

static void set_primary(struct pl_work *w, uint32_t pg, uint32_t o)
{
    if (w->primary[pg] != PL_NONE)
        w->osds[w->primary[pg]].primaries--;
    w->primary[pg] = o;
    w->osds[o].primaries++;
}

static void greedy(struct prim *pr)
{
    struct pl_work *w = pr->w;
    for (uint32_t pg = 0; w->prev_primary && pg < w->pg_count; pg++) {
        uint32_t prev = w->prev_primary[pg] ? placement__osd_by_id(w, w->prev_primary[pg])
                                            : PL_NONE;
        for (uint32_t i = pr->cand_start[pg]; prev != PL_NONE && i < pr->cand_start[pg + 1]; i++)
            if (pr->cand[i] == prev && w->osds[prev].primaries < w->osds[prev].prim_target)
                set_primary(w, pg, prev);
    }
    for (uint32_t pg = 0; pg < w->pg_count; pg++) {
        if (w->primary[pg] != PL_NONE || pr->cand_start[pg] == pr->cand_start[pg + 1])
            continue;
        uint32_t best = PL_NONE;
        int64_t best_room = INT64_MIN;
        for (uint32_t i = pr->cand_start[pg]; i < pr->cand_start[pg + 1]; i++) {
            const struct pl_eosd *e = &w->osds[pr->cand[i]];
            int64_t room = (int64_t)e->prim_target - (int64_t)e->primaries;
            if (room > best_room)
                best = pr->cand[i], best_room = room;
        }
        set_primary(w, pg, best);
    }
}

/* One augmenting path from under-target OSD u to an OSD above its target. */
static bool shift_one(struct prim *pr, uint32_t u)
{
    struct pl_work *w = pr->w;
    uint32_t head = 0, tail = 0;
    for (uint32_t o = 0; o < w->osd_count; o++)
        pr->from_osd[o] = PL_NONE;
    pr->from_osd[u] = u;
    pr->queue[tail++] = u;
    while (head < tail) {
        uint32_t x = pr->queue[head++];
        for (uint32_t i = pr->adj_start[x]; i < pr->adj_start[x + 1]; i++) {
            uint32_t pg = pr->adj[i], v = w->primary[pg];
            if (v == PL_NONE || pr->from_osd[v] != PL_NONE)
                continue;
            pr->from_osd[v] = x, pr->from_pg[v] = pg;
            if (w->osds[v].primaries > w->osds[v].prim_target) {
                for (uint32_t y = v; y != u; y = pr->from_osd[y])
                    set_primary(w, pr->from_pg[y], pr->from_osd[y]);
                return true;
            }
            pr->queue[tail++] = v;
        }
    }
    return false;
}

static void balance(struct prim *pr)
{
    struct pl_work *w = pr->w;
    bool progress = true;
    while (progress) {
        progress = false;
        for (uint32_t o = 0; o < w->osd_count; o++)
            while (!pr->stuck[o] && w->osds[o].primaries < w->osds[o].prim_target) {
                if (!shift_one(pr, o)) {
                    pr->stuck[o] = 1;
                    break;
                }
                progress = true;
            }
    }
}

int placement__primaries(struct pl_work *w)
{
    struct prim pr = {.w = w};
    int rc = build_candidates(&pr);
    pr.from_osd = malloc((w->osd_count + 1) * sizeof(uint32_t));
    pr.from_pg = malloc((w->osd_count + 1) * sizeof(uint32_t));
    pr.queue = malloc((w->osd_count + 1) * sizeof(uint32_t));
    pr.stuck = calloc(w->osd_count + 1, 1);
    if (rc == 0 && (!pr.from_osd || !pr.from_pg || !pr.queue || !pr.stuck))
        rc = -ENOMEM;
    if (rc == 0) {
        uint32_t with = 0;
        for (uint32_t pg = 0; pg < w->pg_count; pg++)
            with += pr.cand_start[pg + 1] > pr.cand_start[pg];
        round_targets(w, with);
        greedy(&pr);
        balance(&pr);
    }
    free(pr.cand_start), free(pr.cand), free(pr.adj_start), free(pr.adj);
    free(pr.from_osd), free(pr.from_pg), free(pr.queue), free(pr.stuck);
    return rc;
}
