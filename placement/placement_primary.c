/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_primary.c -- the primary of every PG, spread evenly.
 *
 * Candidates of a PG: its up members carrying primary_affinity_tags, or, when
 * none does, all its up members (a PG is better served by any primary than by
 * none). An OSD's fair number of primaries is the sum over its PGs of
 * 1 / (candidates of that PG): with equal weights every OSD gets pg_count /
 * OSDs, with unequal ones primaries follow the members, hence the weights.
 * Every OSD must end between the floor and the ceiling of that share.
 *
 * Assignment keeps the previous primary while its OSD is below its ceiling (a
 * primary change restarts the PG), fills the rest greedily, then moves
 * primaries along augmenting paths: first from every OSD above its ceiling
 * (it gives a PG to v, v gives one to x, ... until an OSD below its ceiling
 * takes one), then to every OSD below its floor. This is a bipartite
 * b-matching with degree bounds, small enough to solve directly.
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

/* Targets are ranges: floor and ceiling of the fair share. The fractional
 * split (each PG 1/candidates to each candidate) meets them, and the
 * b-matching polytope with these bounds is integral, so an assignment within
 * them always exists. */
static void set_ranges(struct pl_work *w)
{
    for (uint32_t o = 0; o < w->osd_count; o++) {
        double ideal = w->osds[o].prim_ideal;
        w->osds[o].prim_lo = (uint32_t)floor(ideal + 1e-9);
        w->osds[o].prim_target = (uint32_t)ceil(ideal - 1e-9);
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
        double best_room = -1e300;
        for (uint32_t i = pr->cand_start[pg]; i < pr->cand_start[pg + 1]; i++) {
            const struct pl_eosd *e = &w->osds[pr->cand[i]];
            double room = e->prim_ideal - e->primaries;
            if (room > best_room)
                best = pr->cand[i], best_room = room;
        }
        set_primary(w, pg, best);
    }
}

/* Walks the BFS tree back from end to start. Each step's PG goes to the
 * OSD the path reaches it from (raise) or to the OSD it leads to (lower). */
static void path_apply(struct prim *pr, uint32_t start, uint32_t end, bool raise)
{
    for (uint32_t y = end; y != start; y = pr->from_osd[y])
        set_primary(pr->w, pr->from_pg[y], raise ? pr->from_osd[y] : y);
}

/* Raises u (below its floor) by one: u takes a PG from v, v from x, ...
 * until an OSD above its floor gives one away. */
static bool raise_one(struct prim *pr, uint32_t u)
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
            if (w->osds[v].primaries > w->osds[v].prim_lo) {
                path_apply(pr, u, v, true);
                return true;
            }
            pr->queue[tail++] = v;
        }
    }
    return false;
}

/* Lowers o (above its ceiling) by one: o gives a PG to v, v to x, ...
 * until an OSD below its ceiling takes one. */
static bool lower_one(struct prim *pr, uint32_t o)
{
    struct pl_work *w = pr->w;
    uint32_t head = 0, tail = 0;
    for (uint32_t i = 0; i < w->osd_count; i++)
        pr->from_osd[i] = PL_NONE;
    pr->from_osd[o] = o;
    pr->queue[tail++] = o;
    while (head < tail) {
        uint32_t x = pr->queue[head++];
        for (uint32_t i = pr->adj_start[x]; i < pr->adj_start[x + 1]; i++) {
            uint32_t pg = pr->adj[i];
            if (w->primary[pg] != x)
                continue;
            for (uint32_t j = pr->cand_start[pg]; j < pr->cand_start[pg + 1]; j++) {
                uint32_t v = pr->cand[j];
                if (pr->from_osd[v] != PL_NONE)
                    continue;
                pr->from_osd[v] = x, pr->from_pg[v] = pg;
                if (w->osds[v].primaries < w->osds[v].prim_target) {
                    path_apply(pr, o, v, false);
                    return true;
                }
                pr->queue[tail++] = v;
            }
        }
    }
    return false;
}

static void balance(struct prim *pr)
{
    struct pl_work *w = pr->w;
    for (uint32_t o = 0; o < w->osd_count; o++)
        while (w->osds[o].primaries > w->osds[o].prim_target && lower_one(pr, o))
            ;
    for (uint32_t o = 0; o < w->osd_count; o++)
        while (w->osds[o].primaries < w->osds[o].prim_lo && raise_one(pr, o))
            ;
}

int placement__primaries(struct pl_work *w)
{
    struct prim pr = {.w = w};
    int rc = build_candidates(&pr);
    pr.from_osd = malloc((w->osd_count + 1) * sizeof(uint32_t));
    pr.from_pg = malloc((w->osd_count + 1) * sizeof(uint32_t));
    pr.queue = malloc((w->osd_count + 1) * sizeof(uint32_t));
    if (rc == 0 && (!pr.from_osd || !pr.from_pg || !pr.queue))
        rc = -ENOMEM;
    if (rc == 0) {
        set_ranges(w);
        greedy(&pr);
        balance(&pr);
    }
    free(pr.cand_start), free(pr.cand), free(pr.adj_start), free(pr.adj);
    free(pr.from_osd), free(pr.from_pg), free(pr.queue);
    return rc;
}
