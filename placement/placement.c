/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement.c -- vs_placement_solve(): one pool after another, each through
 * the same pipeline, then the new map and the report.
 *
 *   previous map --scale to pg_count/pg_size--> base cells (what PGs keep)
 *   tree + pool --> eligible OSDs, failure domains, integer targets
 *   LP (placement_lp.c) --> domains per PG; repair; mixing
 *   OSDs inside domains; primaries --> sets, history, report
 *
 * Changing pg_count: new PG p takes the sets of old PG p mod old_count when
 * the count grows and of old PG p when it shrinks. With object -> PG being
 * stripe mod pg_count, doubling splits PG p into p and p + old_count, whose
 * objects already sit on that set: nothing moves. Halving merges p and
 * p + new_count into p: only the second half's data moves, and both old sets
 * go into the history so peering finds it.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_HISTORY_MAX 256u

/* ---- Scaling a previous pool to the new pg_count and pg_size ---- */

static void scale_set(const uint32_t *src, uint32_t old_size, uint32_t *dst, uint32_t size,
                      bool ec)
{
    uint32_t used = 0;
    memset(dst, 0, size * sizeof(uint32_t));
    for (uint32_t r = 0; r < old_size; r++) {
        if (ec && r < size)
            dst[r] = src[r];
        else if (!ec && src[r] && used < size)
            dst[used++] = src[r];
    }
}

static uint32_t source_pg(uint32_t pg, uint32_t old_count, uint32_t count)
{
    return count >= old_count ? pg % old_count : pg;
}

static uint32_t *scale_table(const uint32_t *table, const struct vs_pgmap_pool *prev,
                             const struct pl_work *w)
{
    uint32_t *out = malloc((size_t)w->pg_count * w->pg_size * sizeof(uint32_t));
    for (uint32_t pg = 0; out && pg < w->pg_count; pg++) {
        uint32_t q = source_pg(pg, prev->pg_count, w->pg_count);
        scale_set(&table[(size_t)q * prev->pg_size], prev->pg_size,
                  &out[(size_t)pg * w->pg_size], w->pg_size, w->ec);
    }
    return out;
}

/* prev_ids: the current sets; base: what movement is minimised against (the
 * last clean layout when the map has one, else the current sets). */
static int prepare_prev(struct pl_work *w, const struct vs_pgmap_pool *prev, uint32_t **base)
{
    *base = NULL;
    if (!prev)
        return 0;
    w->prev_ids = scale_table(prev->osd_sets, prev, w);
    w->prev_primary = malloc(w->pg_count * sizeof(uint32_t));
    if (!w->prev_ids || !w->prev_primary)
        return -ENOMEM;
    for (uint32_t pg = 0; pg < w->pg_count; pg++)
        w->prev_primary[pg] = prev->pgs[source_pg(pg, prev->pg_count, w->pg_count)].primary;
    if (prev->last_clean) {
        *base = scale_table(prev->last_clean, prev, w);
        return *base ? 0 : -ENOMEM;
    }
    return 0;
}

/* ---- Output: sets and history ---- */

static void write_set(const struct pl_work *w, uint32_t pg, uint32_t *set)
{
    const uint32_t *co = &w->cosd[(size_t)pg * w->pg_size];
    uint32_t prim = w->primary[pg], used = 0;
    memset(set, 0, w->pg_size * sizeof(uint32_t));
    if (w->ec) {
        for (uint32_t r = 0; r < w->pg_size; r++)
            set[r] = co[r] != PL_NONE ? w->osds[co[r]].id : 0;
        return;
    }
    if (prim != PL_NONE)
        set[used++] = w->osds[prim].id;
    for (uint32_t r = 0; r < w->pg_size; r++)
        if (co[r] != PL_NONE && co[r] != prim)
            set[used++] = w->osds[co[r]].id;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Same set: slot by slot for EC (a slot is a chunk), as a set otherwise. */
static bool same_set(const uint32_t *a, const uint32_t *b, uint32_t size, bool ec)
{
    if (ec)
        return memcmp(a, b, size * sizeof(uint32_t)) == 0;
    uint32_t x[VS_PLACEMENT_PG_SIZE_MAX], y[VS_PLACEMENT_PG_SIZE_MAX];
    memcpy(x, a, size * sizeof(uint32_t));
    memcpy(y, b, size * sizeof(uint32_t));
    qsort(x, size, sizeof(uint32_t), cmp_u32);
    qsort(y, size, sizeof(uint32_t), cmp_u32);
    return memcmp(x, y, size * sizeof(uint32_t)) == 0;
}

struct hist {
    uint32_t count;
    uint32_t *sets; /* room for PL_HISTORY_MAX + 1 sets */
};

static void hist_add(struct hist *h, const uint32_t *set, const uint32_t *now, uint32_t size,
                     bool ec)
{
    bool empty = true;
    for (uint32_t r = 0; r < size; r++)
        empty = empty && set[r] == 0;
    if (empty || same_set(set, now, size, ec))
        return;
    for (uint32_t i = 0; i < h->count; i++)
        if (same_set(&h->sets[(size_t)i * size], set, size, ec))
            return;
    if (h->count == PL_HISTORY_MAX) { /* drop the oldest */
        memmove(h->sets, h->sets + size, (size_t)(h->count - 1) * size * sizeof(uint32_t));
        h->count--;
    }
    memcpy(&h->sets[(size_t)h->count++ * size], set, size * sizeof(uint32_t));
}

/* History of new PG pg: that of each source PG, then each source's set. */
static int build_history(const struct pl_work *w, const struct vs_pgmap_pool *prev, uint32_t pg,
                         const uint32_t *now, struct hist *h, struct vs_pgmap_pg *out)
{
    uint32_t tmp[VS_PLACEMENT_PG_SIZE_MAX], size = w->pg_size;
    h->count = 0;
    uint32_t step = w->pg_count, first = source_pg(pg, prev->pg_count, w->pg_count);
    for (uint32_t q = first; q < prev->pg_count; q += step) {
        const struct vs_pgmap_pg *src = &prev->pgs[q];
        for (uint32_t i = 0; i < src->history_count; i++) {
            scale_set(&src->history[(size_t)i * prev->pg_size], prev->pg_size, tmp, size, w->ec);
            hist_add(h, tmp, now, size, w->ec);
        }
        scale_set(vs_pgmap_osd_set(prev, q), prev->pg_size, tmp, size, w->ec);
        hist_add(h, tmp, now, size, w->ec);
        if (w->pg_count >= prev->pg_count)
            break; /* growing or same: a single source */
    }
    if (h->count == 0)
        return 0;
    out->history = malloc((size_t)h->count * size * sizeof(uint32_t));
    if (!out->history)
        return -ENOMEM;
    memcpy(out->history, h->sets, (size_t)h->count * size * sizeof(uint32_t));
    out->history_count = h->count;
    return 0;
}

static int write_pool(const struct pl_work *w, const struct vs_pgmap_pool *prev,
                      struct vs_pgmap_pool *out)
{
    out->pool_id = w->pool->id;
    out->pg_count = w->pg_count;
    out->pg_size = w->pg_size;
    out->osd_sets = calloc((size_t)w->pg_count * w->pg_size, sizeof(uint32_t));
    out->pgs = calloc(w->pg_count, sizeof(*out->pgs));
    struct hist h = {.sets = malloc((PL_HISTORY_MAX + 1) * (size_t)w->pg_size * 4)};
    int rc = out->osd_sets && out->pgs && h.sets ? 0 : -ENOMEM;
    for (uint32_t pg = 0; rc == 0 && pg < w->pg_count; pg++) {
        uint32_t *set = &out->osd_sets[(size_t)pg * w->pg_size];
        write_set(w, pg, set);
        out->pgs[pg].primary = w->primary[pg] != PL_NONE ? w->osds[w->primary[pg]].id : 0;
        if (prev)
            rc = build_history(w, prev, pg, set, &h, &out->pgs[pg]);
    }
    free(h.sets);
    if (rc == 0 && prev && prev->last_clean && prev->pg_count == w->pg_count &&
        prev->pg_size == w->pg_size) {
        size_t n = (size_t)w->pg_count * w->pg_size * sizeof(uint32_t);
        if (!(out->last_clean = malloc(n)))
            return -ENOMEM;
        memcpy(out->last_clean, prev->last_clean, n);
    }
    return rc;
}

/* ---- One pool ---- */

static void work_free(struct pl_work *w)
{
    free(w->osds), free(w->by_id), free(w->doms);
    free(w->cdom), free(w->cosd), free(w->cpref), free(w->ckind);
    free(w->prev_ids), free(w->prev_primary), free(w->primary);
}

static int pipeline(struct pl_work *w, const uint32_t *base)
{
    int rc = placement__eligible(w);
    if (rc == 0)
        rc = placement__base_cells(w, base ? base : w->prev_ids);
    if (rc == 0)
        rc = placement__targets(w);
    if (rc == 0)
        rc = placement__assign_domains(w);
    if (rc == 0)
        rc = placement__repair(w, &w->rep->repaired);
    if (rc == 0)
        rc = placement__mix(w);
    if (rc == 0)
        rc = placement__choose_osds(w);
    if (rc == 0)
        rc = placement__primaries(w);
    return rc;
}

static int solve_pool(const struct vs_placement_tree *tree, const struct vs_placement_pool *pool,
                      const struct vs_pgmap_pool *prev, uint64_t seed, struct vs_pgmap_pool *out,
                      struct vs_placement_pool_report *rep)
{
    struct pl_work w = {
        .tree = tree,
        .pool = pool,
        .rep = rep,
        .seed = seed,
        .pg_count = pool->pg_count,
        .pg_size = pool->pg_size,
        .ec = pool->scheme != VS_POOL_REPLICATED,
    };
    uint32_t *base = NULL;
    int rc = prepare_prev(&w, prev, &base);
    if (rc == 0)
        rc = pipeline(&w, base);
    if (rc == 0)
        rc = write_pool(&w, prev, out);
    if (rc == 0)
        rc = placement__report(&w, out, rep);
    free(base);
    work_free(&w);
    return rc;
}

static void pool_clear(struct vs_pgmap_pool *pp)
{
    for (uint32_t i = 0; pp->pgs && i < pp->pg_count; i++)
        free(pp->pgs[i].history);
    free(pp->pgs), free(pp->osd_sets), free(pp->last_clean);
    memset(pp, 0, sizeof(*pp));
}

static int pool_copy(const struct vs_pgmap_pool *src, struct vs_pgmap_pool *dst)
{
    size_t n = (size_t)src->pg_count * src->pg_size * sizeof(uint32_t);
    *dst = *src;
    dst->osd_sets = malloc(n);
    dst->pgs = calloc(src->pg_count, sizeof(*dst->pgs));
    dst->last_clean = src->last_clean ? malloc(n) : NULL;
    if (!dst->osd_sets || !dst->pgs || (src->last_clean && !dst->last_clean))
        return -ENOMEM;
    memcpy(dst->osd_sets, src->osd_sets, n);
    if (src->last_clean)
        memcpy(dst->last_clean, src->last_clean, n);
    for (uint32_t p = 0; p < src->pg_count; p++) {
        size_t h = (size_t)src->pgs[p].history_count * src->pg_size * sizeof(uint32_t);
        dst->pgs[p].primary = src->pgs[p].primary;
        dst->pgs[p].pause = src->pgs[p].pause;
        if (!h)
            continue;
        if (!(dst->pgs[p].history = malloc(h)))
            return -ENOMEM;
        memcpy(dst->pgs[p].history, src->pgs[p].history, h);
        dst->pgs[p].history_count = src->pgs[p].history_count;
    }
    return 0;
}

/* Places one pool into map->pools[map->pool_count]; an infeasible pool keeps
 * its previous placement, if any. */
static int place_one(const struct vs_placement_tree *tree, const struct vs_placement_pool *pool,
                     const struct vs_pgmap *prev, uint64_t seed, struct vs_pgmap *map,
                     struct vs_placement_pool_report *rep)
{
    const struct vs_pgmap_pool *prev_pool = vs_pgmap_find(prev, pool->id);
    struct vs_pgmap_pool *out = &map->pools[map->pool_count];
    rep->pool_id = pool->id;
    snprintf(rep->name, sizeof(rep->name), "%s", pool->name);
    int rc = solve_pool(tree, pool, prev_pool, placement__mix64(seed ^ pool->id), out, rep);
    if (rc == 0) {
        map->pool_count++;
        return 0;
    }
    pool_clear(out);
    if (rc != VS_EINFEASIBLE)
        return rc;
    rep->rc = rc;
    if (!prev_pool)
        return rc;
    int copy = pool_copy(prev_pool, out);
    map->pool_count++;
    return copy < 0 ? copy : rc;
}

int vs_placement_solve(const struct vs_placement_tree *tree,
                       const struct vs_placement_pools *pools, const struct vs_pgmap *prev,
                       const struct vs_placement_opts *opts, struct vs_pgmap **map_out,
                       struct vs_placement_report **report_out, char *errmsg,
                       size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    uint64_t t0 = opts && opts->now_ns ? opts->now_ns(opts->now_ctx) : 0;
    struct vs_pgmap *map = calloc(1, sizeof(*map));
    struct vs_placement_report *report = calloc(1, sizeof(*report));
    if (map)
        map->pools = calloc(pools->count + 1, sizeof(*map->pools));
    if (report)
        report->pools = calloc(pools->count + 1, sizeof(*report->pools));
    int rc = map && report && map->pools && report->pools ? 0 : -ENOMEM, result = 0;
    for (uint32_t i = 0; rc == 0 && i < pools->count; i++) {
        struct vs_placement_pool_report *rep = &report->pools[report->pool_count++];
        rc = place_one(tree, &pools->pools[i], prev, opts ? opts->seed : 0, map, rep);
        if (rc == VS_EINFEASIBLE && result == 0)
            placement__errf(&err, "%s", rep->errmsg);
        if (rc == VS_EINFEASIBLE)
            result = rc, rc = 0;
        else if (rc < 0)
            placement__errf(&err, "pool %u: %s", pools->pools[i].id, vs_strerror(rc));
    }
    if (rc < 0) {
        vs_pgmap_free(map);
        vs_placement_report_free(report);
        return rc;
    }
    if (opts && opts->now_ns)
        report->solve_ns = opts->now_ns(opts->now_ctx) - t0;
    *map_out = map;
    *report_out = report;
    return result;
}
