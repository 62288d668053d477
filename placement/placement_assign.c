/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_assign.c -- from domains to OSDs: the steps after the LP.
 *
 *  1. Repair. If the pruned program left holes that capacity could take, an
 *     augmenting path fills each: the PG takes a domain D0 it lacks; if D0 is
 *     full, another PG moves its member from D0 to a domain D1 it lacks, and
 *     so on until a domain with room. Breadth-first over domains, moving only
 *     members placed by this solve first, then also kept ones. This is the
 *     classic augmenting path of a bipartite b-matching, so it finds room
 *     whenever any exists. Domain loads change only at the path's end.
 *  2. Mixing. A fresh placement from the program is regular (PG i gets a
 *     fixed pattern of domains), which would make each domain's PGs share
 *     their other members with only a few other domains and slow recovery.
 *     Seeded random swaps of domains between two new members of two PGs keep
 *     every count, every kept member and the one-per-domain rule, and make
 *     the layout as diverse as a random design.
 *  3. OSDs inside each domain: a kept member stays on its OSD while that OSD
 *     is under its target; the others go to the OSD furthest below its
 *     target. Each PG has one member per domain, so this is exact: every OSD
 *     ends at its target when the domain is at its own.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

bool placement__pg_has_dom(const struct pl_work *w, uint32_t pg, uint32_t dom)
{
    const uint32_t *cd = &w->cdom[(size_t)pg * w->pg_size];
    for (uint32_t r = 0; r < w->pg_size; r++)
        if (cd[r] == dom)
            return true;
    return false;
}

uint32_t placement__add_cell(struct pl_work *w, uint32_t pg, uint32_t dom)
{
    for (uint32_t r = 0; r < w->pg_size; r++) {
        size_t c = (size_t)pg * w->pg_size + r;
        if (w->cdom[c] == PL_NONE) {
            w->cdom[c] = dom;
            w->ckind[c] = PL_CELL_NEW;
            w->cpref[c] = PL_NONE;
            w->cosd[c] = PL_NONE;
            return (uint32_t)c;
        }
    }
    VS_ASSERTF(false, "pg=%u has no free slot", pg);
    return PL_NONE;
}

uint32_t placement__pg_members(const struct pl_work *w, uint32_t pg)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < w->pg_size; r++)
        n += w->cdom[(size_t)pg * w->pg_size + r] != PL_NONE;
    return n;
}

void placement__dom_loads(struct pl_work *w)
{
    for (uint32_t h = 0; h < w->dom_count; h++)
        w->doms[h].load = 0;
    size_t n = (size_t)w->pg_count * w->pg_size;
    for (size_t c = 0; c < n; c++)
        if (w->cdom[c] != PL_NONE)
            w->doms[w->cdom[c]].load++;
}

/* ---- 1. Repair ---- */

struct repair {
    struct pl_work *w;
    uint32_t **list; /* per domain: cells that were in it (stale ones are skipped) */
    uint32_t *len, *cap;
    uint32_t *from_dom, *from_cell; /* BFS tree over domains */
    uint32_t *queue;
    uint32_t *unvisited, unvisited_count, *unvisited_pos;
};

static int list_push(struct repair *rp, uint32_t h, uint32_t c)
{
    if (rp->len[h] == rp->cap[h]) {
        uint32_t cap = rp->cap[h] ? rp->cap[h] * 2 : 16;
        uint32_t *l = realloc(rp->list[h], cap * sizeof(uint32_t));
        if (!l)
            return -ENOMEM;
        rp->list[h] = l;
        rp->cap[h] = cap;
    }
    rp->list[h][rp->len[h]++] = c;
    return 0;
}

static void visit(struct repair *rp, uint32_t h, uint32_t from, uint32_t cell, uint32_t *tail)
{
    uint32_t pos = rp->unvisited_pos[h], last = rp->unvisited[--rp->unvisited_count];
    rp->unvisited[pos] = last;
    rp->unvisited_pos[last] = pos;
    rp->unvisited_pos[h] = PL_NONE;
    rp->from_dom[h] = from;
    rp->from_cell[h] = cell;
    rp->queue[(*tail)++] = h;
}

/* Expands full domain h: every movable member may go to a domain its PG lacks. */
static void expand(struct repair *rp, uint32_t h, bool move_kept, uint32_t *tail)
{
    struct pl_work *w = rp->w;
    for (uint32_t i = 0; i < rp->len[h] && rp->unvisited_count; i++) {
        uint32_t c = rp->list[h][i];
        if (w->cdom[c] != h || !(w->ckind[c] == PL_CELL_NEW ||
                                 (move_kept && w->ckind[c] == PL_CELL_KEPT)))
            continue;
        uint32_t q = c / w->pg_size;
        for (uint32_t j = 0; j < rp->unvisited_count;) {
            uint32_t h2 = rp->unvisited[j];
            if (placement__pg_has_dom(w, q, h2))
                j++;
            else
                visit(rp, h2, h, c, tail); /* h2's slot now holds another domain */
        }
    }
}

/* A domain with room reachable from PG pg, or PL_NONE. */
static uint32_t bfs(struct repair *rp, uint32_t pg, bool move_kept)
{
    struct pl_work *w = rp->w;
    uint32_t head = 0, tail = 0;
    rp->unvisited_count = w->dom_count;
    for (uint32_t h = 0; h < w->dom_count; h++)
        rp->unvisited[h] = h, rp->unvisited_pos[h] = h;
    for (uint32_t h = 0; h < w->dom_count; h++) {
        if (placement__pg_has_dom(w, pg, h))
            continue;
        if (w->doms[h].load < w->doms[h].target) {
            rp->from_dom[h] = PL_NONE;
            return h;
        }
        visit(rp, h, PL_NONE, PL_NONE, &tail);
    }
    while (head < tail) {
        uint32_t h = rp->queue[head++];
        if (w->doms[h].load < w->doms[h].target)
            return h;
        expand(rp, h, move_kept, &tail);
    }
    return PL_NONE;
}

static int augment(struct repair *rp, uint32_t pg, uint32_t end)
{
    struct pl_work *w = rp->w;
    uint32_t cur = end;
    while (rp->from_dom[cur] != PL_NONE) {
        uint32_t c = rp->from_cell[cur];
        VS_ASSERT(w->cdom[c] == rp->from_dom[cur]);
        w->cdom[c] = cur;
        w->ckind[c] = PL_CELL_NEW;
        w->cpref[c] = PL_NONE;
        if (list_push(rp, cur, c) < 0)
            return -ENOMEM;
        cur = rp->from_dom[cur];
    }
    uint32_t c = placement__add_cell(w, pg, cur);
    w->doms[end].load++;
    return list_push(rp, cur, c);
}

static uint64_t room(const struct pl_work *w)
{
    uint64_t r = 0;
    for (uint32_t h = 0; h < w->dom_count; h++)
        r += w->doms[h].load < w->doms[h].target ? w->doms[h].target - w->doms[h].load : 0;
    return r;
}

static void repair_free(struct repair *rp, uint32_t D)
{
    for (uint32_t h = 0; rp->list && h < D; h++)
        free(rp->list[h]);
    free(rp->list), free(rp->len), free(rp->cap), free(rp->from_dom), free(rp->from_cell);
    free(rp->queue), free(rp->unvisited), free(rp->unvisited_pos);
}

static int repair_init(struct repair *rp)
{
    struct pl_work *w = rp->w;
    uint32_t D = w->dom_count;
    rp->list = calloc(D, sizeof(uint32_t *));
    rp->len = calloc(D, sizeof(uint32_t)), rp->cap = calloc(D, sizeof(uint32_t));
    rp->from_dom = malloc(D * sizeof(uint32_t)), rp->from_cell = malloc(D * sizeof(uint32_t));
    rp->queue = malloc(D * sizeof(uint32_t)), rp->unvisited = malloc(D * sizeof(uint32_t));
    rp->unvisited_pos = malloc(D * sizeof(uint32_t));
    if (!rp->list || !rp->len || !rp->cap || !rp->from_dom || !rp->from_cell || !rp->queue ||
        !rp->unvisited || !rp->unvisited_pos)
        return -ENOMEM;
    size_t n = (size_t)w->pg_count * w->pg_size;
    for (size_t c = 0; c < n; c++)
        if (w->cdom[c] != PL_NONE && list_push(rp, w->cdom[c], (uint32_t)c) < 0)
            return -ENOMEM;
    return 0;
}

int placement__repair(struct pl_work *w, uint32_t *repaired)
{
    struct repair rp = {.w = w};
    *repaired = 0;
    placement__dom_loads(w);
    uint64_t left = room(w);
    int rc = left ? repair_init(&rp) : 0;
    for (uint32_t pg = 0; rc == 0 && left && pg < w->pg_count; pg++) {
        while (left && placement__pg_members(w, pg) < w->k) {
            uint32_t end = bfs(&rp, pg, false);
            if (end == PL_NONE)
                end = bfs(&rp, pg, true);
            if (end == PL_NONE)
                break;
            if ((rc = augment(&rp, pg, end)) < 0)
                break;
            left--;
            (*repaired)++;
        }
    }
    repair_free(&rp, w->dom_count);
    return rc;
}

/* ---- 2. Mixing ---- */

int placement__mix(struct pl_work *w)
{
    size_t n = (size_t)w->pg_count * w->pg_size, count = 0;
    uint32_t *cells = malloc((n + 1) * sizeof(uint32_t));
    if (!cells)
        return -ENOMEM;
    for (size_t c = 0; c < n; c++)
        if (w->ckind[c] == PL_CELL_NEW)
            cells[count++] = (uint32_t)c;
    uint64_t rng = placement__mix64(w->seed ^ 0x6d69786d69786d69ull);
    uint64_t iters = count < 2 ? 0 : VS_MIN((uint64_t)count * 8, 1ull << 26);
    for (uint64_t it = 0; it < iters; it++) {
        uint32_t c1 = cells[placement__rand_below(&rng, (uint32_t)count)];
        uint32_t c2 = cells[placement__rand_below(&rng, (uint32_t)count)];
        uint32_t p1 = c1 / w->pg_size, p2 = c2 / w->pg_size;
        uint32_t a = w->cdom[c1], b = w->cdom[c2];
        if (p1 == p2 || a == b || placement__pg_has_dom(w, p1, b) ||
            placement__pg_has_dom(w, p2, a))
            continue;
        w->cdom[c1] = b;
        w->cdom[c2] = a;
    }
    free(cells);
    return 0;
}

/* ---- 3. OSDs inside domains ---- */

static uint32_t pick_osd(const struct pl_work *w, const struct pl_dom *d, uint32_t start)
{
    uint32_t best = PL_NONE;
    int64_t best_room = INT64_MIN;
    for (uint32_t i = 0; i < d->count; i++) {
        uint32_t o = d->first + (start + i) % d->count;
        int64_t r = (int64_t)w->osds[o].target - (int64_t)w->osds[o].slots;
        if (w->osds[o].up && r > best_room)
            best = o, best_room = r;
    }
    return best;
}

int placement__choose_osds(struct pl_work *w)
{
    size_t n = (size_t)w->pg_count * w->pg_size;
    uint64_t rng = placement__mix64(w->seed ^ 0x6f7364ull);
    for (uint32_t o = 0; o < w->osd_count; o++)
        w->osds[o].slots = 0;
    /* Fixed members first, then kept members while their OSD has room. */
    for (size_t c = 0; c < n; c++)
        if (w->ckind[c] == PL_CELL_FIXED)
            w->osds[w->cosd[c]].slots++;
    uint32_t *order = malloc((n + 1) * sizeof(uint32_t));
    if (!order)
        return -ENOMEM;
    for (size_t c = 0; c < n; c++)
        order[c] = (uint32_t)c;
    for (size_t i = n; i > 1; i--) { /* seeded shuffle: which kept members stay is fair */
        uint32_t j = placement__rand_below(&rng, (uint32_t)i);
        uint32_t t = order[i - 1];
        order[i - 1] = order[j], order[j] = t;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = order[i], e = w->cpref[c];
        if (w->ckind[c] != PL_CELL_KEPT || w->osds[e].slots >= w->osds[e].target)
            continue;
        VS_ASSERT(w->osds[e].dom == w->cdom[c] && w->osds[e].up);
        w->cosd[c] = e;
        w->osds[e].slots++;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t c = order[i];
        if (w->cdom[c] == PL_NONE || w->cosd[c] != PL_NONE)
            continue;
        const struct pl_dom *d = &w->doms[w->cdom[c]];
        uint32_t o = pick_osd(w, d, placement__rand_below(&rng, d->count));
        if (VS_NEVER(o == PL_NONE)) { /* targets give no new member to a down-only domain */
            w->cdom[c] = PL_NONE, w->ckind[c] = PL_CELL_EMPTY;
            continue;
        }
        w->cosd[c] = o;
        w->osds[o].slots++;
    }
    free(order);
    return 0;
}
