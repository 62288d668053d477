/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_target.c -- the first steps of a pool's solve: which OSDs may hold
 * its PGs, which failure domains they form, what the base map says each PG
 * keeps, and how many PG members ("slots") each domain and OSD should hold.
 *
 * Targets. A PG has k = min(pg_size, domains) members, so the pool has
 * S = k * pg_count slots. A failure domain holds at most one member of each
 * PG, so no domain can take more than pg_count slots however heavy it is.
 * The best feasible share is a water-filling: every domain gets
 * min(cap, fixed + lambda * weight), with lambda chosen so that the shares sum
 * to S; inside a domain the up OSDs share in proportion to their weight. The
 * integer targets are these shares rounded so that each OSD gets the floor or
 * the ceiling of its share and the totals are exact. Down OSDs ("in" but not
 * "up") take no new members: their target is what they already hold.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct elig_key {
    uint64_t dom_key; /* node index, or 1 << 32 | OSD id for a domain of one OSD */
    uint32_t tree_osd;
};

static int cmp_elig(const void *a, const void *b)
{
    const struct elig_key *x = a, *y = b;
    if (x->dom_key != y->dom_key)
        return x->dom_key < y->dom_key ? -1 : 1;
    return x->tree_osd < y->tree_osd ? -1 : x->tree_osd > y->tree_osd;
}

static int pool_fail(struct pl_work *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int pool_fail(struct pl_work *w, const char *fmt, ...)
{
    char reason[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    snprintf(w->rep->errmsg, sizeof(w->rep->errmsg), "pool %u (%s): %s", w->pool->id,
             w->pool->name, reason);
    return VS_EINFEASIBLE;
}

/* Why no OSD is eligible, in the order the filters apply. */
static int explain_none(struct pl_work *w, uint32_t root, uint32_t n_root, uint32_t n_tags,
                        uint32_t n_in)
{
    const struct vs_placement_pool *p = w->pool;
    if (w->tree->osd_count == 0)
        return pool_fail(w, "the placement tree has no OSDs");
    if (n_root == 0)
        return pool_fail(w, "no OSD under root_node '%s'", w->tree->nodes[root].name);
    if (n_tags == 0)
        return pool_fail(w, "no OSD%s%s carries the osd_tags (%u tag%s, first '%s')",
                         p->root_node ? " under root_node " : "",
                         p->root_node ? p->root_node : "", p->osd_tag_count,
                         p->osd_tag_count > 1 ? "s" : "", p->osd_tags[0]);
    if (n_in == 0)
        return pool_fail(w, "all %u matching OSDs are out", n_tags);
    return pool_fail(w, "all %u matching OSDs have weight 0", n_in);
}

static int check_pool_refs(struct pl_work *w, uint32_t *fd, uint32_t *root)
{
    const struct vs_placement_tree *t = w->tree;
    *fd = placement__tree_level(t, w->pool->failure_domain);
    if (*fd == PL_NONE)
        return pool_fail(w, "failure_domain '%s' is not a level of the tree",
                         w->pool->failure_domain);
    *root = PL_NONE;
    if (w->pool->root_node && (*root = placement__tree_node(t, w->pool->root_node)) == PL_NONE)
        return pool_fail(w, "root_node '%s' is not a node of the tree", w->pool->root_node);
    return 0;
}

/* Collects the eligible OSDs of the pool, sorted by domain then id. */
static int collect(struct pl_work *w, struct elig_key *keys, uint32_t *count)
{
    const struct vs_placement_tree *t = w->tree;
    const struct vs_placement_pool *p = w->pool;
    uint32_t fd, root, n_root = 0, n_tags = 0, n_in = 0;
    int rc = check_pool_refs(w, &fd, &root);
    if (rc < 0)
        return rc;
    *count = 0;
    for (uint32_t o = 0; o < t->osd_count; o++) {
        const struct pl_osd *osd = &t->osds[o];
        if (root != PL_NONE && !placement__tree_under(t, o, root))
            continue;
        n_root++;
        if (!placement__osd_has_tags(osd, p->osd_tag_count, p->osd_tags))
            continue;
        n_tags++;
        if (!osd->in)
            continue;
        n_in++;
        if (!(osd->weight * osd->reweight > 0))
            continue;
        uint32_t node = fd == t->level_count - 1 ? PL_NONE : placement__tree_domain(t, o, fd);
        keys[*count].dom_key = node != PL_NONE ? node : (1ull << 32) | osd->id;
        keys[(*count)++].tree_osd = o;
    }
    if (*count == 0)
        return explain_none(w, root, n_root, n_tags, n_in);
    qsort(keys, *count, sizeof(*keys), cmp_elig);
    return 0;
}

static int cmp_by_id(const void *a, const void *b, void *ctx)
{
    const struct pl_eosd *osds = ctx;
    uint32_t x = osds[*(const uint32_t *)a].id, y = osds[*(const uint32_t *)b].id;
    return x < y ? -1 : x > y;
}

static void fill_osds(struct pl_work *w, const struct elig_key *keys, uint32_t count)
{
    const struct vs_placement_pool *p = w->pool;
    w->dom_count = 0;
    for (uint32_t i = 0; i < count; i++) {
        const struct pl_osd *osd = &w->tree->osds[keys[i].tree_osd];
        struct pl_eosd *e = &w->osds[i];
        if (i == 0 || keys[i].dom_key != keys[i - 1].dom_key)
            w->doms[w->dom_count++].first = i;
        e->id = osd->id;
        e->dom = w->dom_count - 1;
        e->weight = osd->weight * osd->reweight;
        e->up = osd->up;
        e->primary_ok = osd->up && placement__osd_has_tags(osd, p->primary_tag_count,
                                                            p->primary_affinity_tags);
        w->doms[e->dom].count++;
        if (e->up)
            w->doms[e->dom].weight += e->weight;
        w->by_id[i] = i;
    }
    qsort_r(w->by_id, count, sizeof(uint32_t), cmp_by_id, w->osds);
}

int placement__eligible(struct pl_work *w)
{
    struct elig_key *keys = calloc(w->tree->osd_count + 1, sizeof(*keys));
    if (!keys)
        return -ENOMEM;
    uint32_t count = 0;
    int rc = collect(w, keys, &count);
    if (rc == 0) {
        w->osd_count = count;
        w->osds = calloc(count, sizeof(*w->osds));
        w->doms = calloc(count, sizeof(*w->doms));
        w->by_id = calloc(count, sizeof(*w->by_id));
        rc = w->osds && w->doms && w->by_id ? 0 : -ENOMEM;
    }
    if (rc == 0)
        fill_osds(w, keys, count);
    free(keys);
    if (rc < 0)
        return rc;
    w->rep->domain_count = w->dom_count;
    if (w->dom_count < w->pool->pg_minsize)
        return pool_fail(w, "only %u failure domain%s (%s) hold%s eligible OSDs, but pg_minsize "
                         "is %u", w->dom_count, w->dom_count > 1 ? "s" : "",
                         w->pool->failure_domain, w->dom_count > 1 ? "" : "s",
                         w->pool->pg_minsize);
    w->k = VS_MIN(w->pg_size, w->dom_count);
    if (w->k < w->pg_size)
        snprintf(w->rep->errmsg, sizeof(w->rep->errmsg),
                 "pool %u (%s): degraded: only %u failure domains (%s) for pg_size %u",
                 w->pool->id, w->pool->name, w->dom_count, w->pool->failure_domain, w->pg_size);
    return 0;
}

uint32_t placement__osd_by_id(const struct pl_work *w, uint32_t id)
{
    uint32_t lo = 0, hi = w->osd_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t mid_id = w->osds[w->by_id[mid]].id;
        if (mid_id == id)
            return w->by_id[mid];
        if (mid_id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PL_NONE;
}

/* One PG's cells from its base set: members still eligible, at most one per
 * domain and k in all. EC keeps each chunk in its slot; replicated compacts. */
static void base_pg(struct pl_work *w, uint32_t pg, const uint32_t *set)
{
    uint32_t used = 0;
    for (uint32_t r = 0; r < w->pg_size && used < w->k; r++) {
        uint32_t e = set[r] ? placement__osd_by_id(w, set[r]) : PL_NONE;
        if (e == PL_NONE || placement__pg_has_dom(w, pg, w->osds[e].dom))
            continue;
        size_t c = (size_t)pg * w->pg_size + (w->ec ? r : used);
        w->cdom[c] = w->osds[e].dom;
        w->cpref[c] = e;
        w->ckind[c] = w->osds[e].up ? PL_CELL_KEPT : PL_CELL_FIXED;
        w->cosd[c] = w->osds[e].up ? PL_NONE : e;
        w->osds[e].base_count++;
        used++;
    }
}

int placement__base_cells(struct pl_work *w, const uint32_t *base_ids)
{
    size_t n = (size_t)w->pg_count * w->pg_size;
    w->cdom = malloc(n * sizeof(uint32_t));
    w->cosd = malloc(n * sizeof(uint32_t));
    w->cpref = malloc(n * sizeof(uint32_t));
    w->ckind = calloc(n, 1);
    w->primary = malloc(w->pg_count * sizeof(uint32_t));
    if (!w->cdom || !w->cosd || !w->cpref || !w->ckind || !w->primary)
        return -ENOMEM;
    memset(w->cdom, 0xff, n * sizeof(uint32_t));
    memset(w->cosd, 0xff, n * sizeof(uint32_t));
    memset(w->cpref, 0xff, n * sizeof(uint32_t));
    memset(w->primary, 0xff, w->pg_count * sizeof(uint32_t));
    for (uint32_t pg = 0; base_ids && pg < w->pg_count; pg++)
        base_pg(w, pg, &base_ids[(size_t)pg * w->pg_size]);
    return 0;
}

/* Water-filling over domains: best[h] = min(cap, fixed + lambda * weight). */
static void water_fill(struct pl_work *w, double slots)
{
    double left = slots, weight = 0;
    for (uint32_t h = 0; h < w->dom_count; h++) {
        struct pl_dom *d = &w->doms[h];
        d->best = d->fixed;
        left -= d->fixed;
        weight += d->weight;
    }
    /* Saturate the domains whose cap lambda would pass, heaviest first. */
    bool changed = true;
    while (changed && weight > 0 && left > 0) {
        changed = false;
        double lambda = left / weight;
        for (uint32_t h = 0; h < w->dom_count; h++) {
            struct pl_dom *d = &w->doms[h];
            if (d->weight > 0 && d->best < d->cap && d->fixed + lambda * d->weight >= d->cap) {
                left -= d->cap - d->fixed;
                weight -= d->weight;
                d->best = d->cap;
                changed = true;
            }
        }
    }
    double lambda = weight > 0 && left > 0 ? left / weight : 0;
    for (uint32_t h = 0; h < w->dom_count; h++) {
        struct pl_dom *d = &w->doms[h];
        if (d->weight > 0 && d->best < d->cap)
            d->best = d->fixed + lambda * d->weight;
    }
}

/* Rounds the up OSDs' shares: floors, then one unit at a time to the OSD
 * furthest below its share whose domain has room (ties: lowest index). */
static void round_targets(struct pl_work *w, uint64_t units)
{
    for (uint32_t o = 0; o < w->osd_count; o++) {
        struct pl_eosd *e = &w->osds[o];
        e->target = e->up ? (uint32_t)floor(e->best + 1e-9) : e->base_count;
        w->doms[e->dom].target += e->target;
        units -= VS_MIN(units, e->up ? e->target : 0);
    }
    for (; units > 0; units--) {
        uint32_t pick = PL_NONE;
        double gap = -1e300;
        for (uint32_t o = 0; o < w->osd_count; o++) {
            const struct pl_eosd *e = &w->osds[o];
            if (e->up && w->doms[e->dom].target < w->doms[e->dom].cap &&
                e->best - e->target > gap)
                pick = o, gap = e->best - e->target;
        }
        if (pick == PL_NONE)
            break;
        w->osds[pick].target++;
        w->doms[w->osds[pick].dom].target++;
    }
}

int placement__targets(struct pl_work *w)
{
    double weight_all = 0;
    uint64_t slots = 0, fixed = 0;
    for (uint32_t o = 0; o < w->osd_count; o++) {
        struct pl_eosd *e = &w->osds[o];
        weight_all += e->weight;
        if (!e->up)
            w->doms[e->dom].fixed += e->base_count;
    }
    for (uint32_t h = 0; h < w->dom_count; h++) {
        struct pl_dom *d = &w->doms[h];
        d->cap = d->weight > 0 ? w->pg_count : d->fixed;
        slots += d->cap;
        fixed += d->fixed;
    }
    slots = VS_MIN(slots, (uint64_t)w->k * w->pg_count);
    water_fill(w, (double)slots);
    for (uint32_t o = 0; o < w->osd_count; o++) {
        struct pl_eosd *e = &w->osds[o];
        const struct pl_dom *d = &w->doms[e->dom];
        e->ideal = (double)w->k * w->pg_count * e->weight / weight_all;
        e->best = e->up ? (d->best - d->fixed) * e->weight / d->weight : e->base_count;
    }
    round_targets(w, slots - fixed);
    return 0;
}
