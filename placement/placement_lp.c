/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_lp.c -- which failure domains each PG uses: the linear program.
 *
 * Failure domains are folded: the program decides domains, each with an
 * integer target (the sum of its OSDs' targets); placement_assign.c picks the
 * OSD inside each domain afterwards.
 *
 * Start from the base map: every PG keeps its eligible members (at most one
 * per domain). A domain holding more than its target is "excess" and must
 * shed members; one holding fewer is a "receiver". A PG with fewer than k
 * members has holes. Inside an excess domain, an OSD above its own target has
 * "surplus" members: they must leave that OSD anyway, so they are the ones to
 * drop first. Every member placed or moved costs one move; the minimum is the
 * sum over OSDs of how far each is below its target (report.moved_min).
 *
 * PGs with identical cells form a class (cells in excess domains are told
 * apart by OSD). A class of n PGs has, for each cell in an excess domain h on
 * OSD o:
 *   reg[c,o]  in [0, n]  PGs that keep that member, counted against o's target
 *   sur[c,o]  in [0, n]  PGs that keep it as o's surplus (only if o is over)
 * and for each receiver r it does not hold:
 *   add[c,r]  in [0, n]  PGs that get a new member in r
 * Rows (all <=):
 *   class c:            sum of its columns    <= n * (k - members it keeps for sure)
 *   cell (c,o):         reg + sur             <= n
 *   OSD o (over):       sum reg[.,o]          <= target(o) - its members not in the LP
 *   excess domain h:    sum reg + sur in h    <= target(h) - its members not in the LP
 *   receiver r:         sum add[.,r]          <= target(r) - members already in r
 * Objective: maximise M * (sum of all columns) + sum reg, M = 1 + k * PGs in
 * the LP: first place as many members as capacity allows (for a fresh pool
 * this is "maximise placed PGs under per-OSD capacity"), then keep as many
 * members within their OSDs' targets as possible, i.e. move the fewest.
 *
 * Integrality. Each column's rows form a chain in the family {class, cell}
 * and a chain in the family {domain, OSD}; both families are laminar, and the
 * incidence matrix of two laminar families is totally unimodular. So GLPK's
 * simplex returns an integral vertex: no branch and bound, no rounding.
 *
 * Pruning keeps the program small. A fresh pool is one class (every PG is
 * empty). For a change only PGs with holes and a sample of the PGs on each
 * over-target OSD of an excess domain are in the program (those that can
 * move to most receivers first); the rest keep everything. A class gets
 * every receiver when that is small, else a seeded sample weighted by need.
 * A big change is cut into passes of at most LP_ACTIVE_MAX PGs (GLPK's time
 * grows faster than the program): each pass takes some over-target OSDs,
 * asks their domains to drop only those OSDs' surplus, solves and applies;
 * the next pass starts from the result. When a pass that holds the whole
 * change misses the lower bound (holes left that capacity could take, or
 * members dropped beyond the surplus), a wider program follows, up to every
 * PG on those OSDs with every receiver.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LP_COLS_BUDGET 3000u /* add columns before receivers are sampled per class */
#define LP_ROUNDS 3
#define LP_ACTIVE_MAX 300u /* classes (~PGs) in one program; more take several passes */

enum { DOM_NEUTRAL = 0, DOM_EXCESS = 1, DOM_RECEIVER = 2 };
enum { VAR_ADD = 0, VAR_REG = 1, VAR_SUR = 2 };

struct lp_class {
    uint32_t first; /* into lp->active */
    uint32_t n;
    uint32_t need; /* per PG: k minus the members it keeps for sure */
    uint32_t var_first, var_count;
};

struct lp_var {
    uint32_t dom, osd;
    uint32_t ub;
    uint8_t kind;
    uint32_t cell_row; /* reg/sur: the row they share, or PL_NONE */
    uint32_t value;
};

struct lp {
    struct pl_work *w;
    uint32_t *count; /* per OSD: members it holds now (kept or fixed) */
    uint32_t *have;  /* per domain: members it holds now */
    uint8_t *state;  /* per domain: DOM_* */
    uint32_t *need;  /* per domain: receivers' room */
    uint32_t *over;  /* per OSD: surplus, for the OSDs this pass works on */
    uint32_t *drop;  /* per excess domain: members this pass must drop from it */
    uint32_t *osd_pgs_start, *osd_pgs; /* per OSD: PGs with a kept member on it */
    uint32_t receivers;
    uint64_t holes_total; /* missing members */
    uint32_t hole_pgs;    /* PGs with missing members */
    bool capped; /* this pass leaves work for the next one */

    /* One round. */
    uint8_t *is_active; /* per PG */
    uint32_t *active, active_count;
    uint64_t *keys;
    struct lp_class *classes;
    uint32_t class_count;
    struct lp_var *vars;
    uint32_t var_count, var_cap;
    uint32_t cell_rows;
    uint64_t placed, wanted, dropped_reg;
};

/* A member the program may drop: kept, on an OSD this pass works on. */
static bool is_var_cell(const struct lp *lp, size_t c)
{
    return lp->w->ckind[c] == PL_CELL_KEPT && lp->over[lp->w->cpref[c]] > 0;
}

/* ---- The base map: loads, states, per-OSD lists ---- */

static int lp_census(struct lp *lp)
{
    struct pl_work *w = lp->w;
    size_t n = (size_t)w->pg_count * w->pg_size;
    memset(lp->count, 0, w->osd_count * sizeof(uint32_t));
    memset(lp->have, 0, w->dom_count * sizeof(uint32_t));
    memset(lp->osd_pgs_start, 0, (w->osd_count + 2) * sizeof(uint32_t));
    uint32_t *fill = calloc(w->osd_count + 1, sizeof(uint32_t));
    if (!fill)
        return -ENOMEM;
    lp->holes_total = lp->hole_pgs = 0;
    for (uint32_t pg = 0; pg < w->pg_count; pg++) {
        uint32_t missing = w->k - placement__pg_members(w, pg);
        lp->holes_total += missing;
        lp->hole_pgs += missing > 0;
    }
    for (size_t c = 0; c < n; c++) {
        if (w->cdom[c] != PL_NONE)
            lp->have[w->cdom[c]]++;
        if (w->ckind[c] == PL_CELL_KEPT || w->ckind[c] == PL_CELL_FIXED)
            lp->count[w->cpref[c]]++;
        if (w->ckind[c] == PL_CELL_KEPT)
            lp->osd_pgs_start[w->cpref[c] + 1]++;
    }
    for (uint32_t o = 0; o < w->osd_count; o++)
        lp->osd_pgs_start[o + 1] += lp->osd_pgs_start[o];
    for (size_t c = 0; c < n; c++)
        if (w->ckind[c] == PL_CELL_KEPT) {
            uint32_t o = w->cpref[c];
            lp->osd_pgs[lp->osd_pgs_start[o] + fill[o]++] = (uint32_t)(c / w->pg_size);
        }
    free(fill);
    return 0;
}

static uint32_t osd_over(const struct lp *lp, uint32_t o)
{
    const struct pl_eosd *e = &lp->w->osds[o];
    return e->up && lp->count[o] > e->target ? lp->count[o] - e->target : 0;
}

/* Domain states and the OSDs this pass works on. A big change is cut into
 * passes: over-target OSDs of excess domains are taken, in a seeded order,
 * while the program stays under LP_ACTIVE_MAX PGs (at least one per pass),
 * and each excess domain must drop only the surplus of its OSDs taken now. */
static void lp_classify(struct lp *lp)
{
    struct pl_work *w = lp->w;
    uint64_t budget = VS_MIN(lp->hole_pgs, LP_ACTIVE_MAX); /* see build_classes() */
    lp->receivers = 0;
    lp->capped = false;
    memset(lp->need, 0, w->dom_count * sizeof(uint32_t));
    memset(lp->drop, 0, w->dom_count * sizeof(uint32_t));
    memset(lp->over, 0, w->osd_count * sizeof(uint32_t));
    for (uint32_t h = 0; h < w->dom_count; h++) {
        lp->state[h] = DOM_NEUTRAL;
        if (lp->have[h] < w->doms[h].target) {
            lp->state[h] = DOM_RECEIVER;
            lp->need[h] = w->doms[h].target - lp->have[h];
            lp->receivers++;
        }
    }
    for (uint32_t i = 0; i < w->osd_count; i++) {
        uint32_t o = (uint32_t)((i + w->seed) % w->osd_count), h = w->osds[o].dom;
        uint32_t over = osd_over(lp, o);
        if (!over || lp->have[h] <= w->doms[h].target)
            continue;
        uint64_t cost = VS_MIN(lp->count[o], 4ull * over + 8);
        if (budget > 0 && budget + cost > LP_ACTIVE_MAX) {
            lp->capped = true;
            continue;
        }
        budget += cost;
        lp->over[o] = over;
        lp->state[h] = DOM_EXCESS;
        lp->drop[h] = VS_MIN(lp->drop[h] + over, lp->have[h] - w->doms[h].target);
    }
}

/* ---- Round: active PGs and classes ---- */

struct cand {
    uint32_t pg;
    uint32_t score; /* receivers it could move to */
    uint64_t tie;
};

static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    if (x->tie != y->tie)
        return x->tie < y->tie ? -1 : 1;
    return x->pg < y->pg ? -1 : x->pg > y->pg;
}

static uint32_t receiver_room(const struct lp *lp, uint32_t pg)
{
    const struct pl_work *w = lp->w;
    uint32_t in = 0;
    for (uint32_t r = 0; r < w->pg_size; r++) {
        uint32_t h = w->cdom[(size_t)pg * w->pg_size + r];
        in += h != PL_NONE && lp->state[h] == DOM_RECEIVER;
    }
    return lp->receivers - in;
}

static void activate(struct lp *lp, uint32_t pg)
{
    if (!lp->is_active[pg]) {
        lp->is_active[pg] = 1;
        lp->active[lp->active_count++] = pg;
    }
}

/* Activates PGs of over-target OSD o until alpha * surplus + 8 of them are in. */
static void activate_osd(struct lp *lp, uint32_t o, uint64_t alpha, struct cand *cands)
{
    uint32_t start = lp->osd_pgs_start[o], count = lp->osd_pgs_start[o + 1] - start;
    uint64_t quota = VS_MIN((uint64_t)count, alpha * lp->over[o] + 8);
    uint32_t n = 0, on = 0;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t pg = lp->osd_pgs[start + i];
        if (lp->is_active[pg]) {
            on++;
            continue;
        }
        cands[n].pg = pg;
        cands[n].score = receiver_room(lp, pg);
        cands[n++].tie = placement__mix64(lp->w->seed ^ ((uint64_t)pg << 24) ^ o);
    }
    if (on >= quota)
        return;
    qsort(cands, n, sizeof(*cands), cmp_cand);
    for (uint32_t i = 0; i < n && on < quota; i++, on++)
        activate(lp, cands[i].pg);
}

static int select_active(struct lp *lp, uint64_t alpha)
{
    struct pl_work *w = lp->w;
    struct cand *cands = malloc((w->pg_count + 1) * sizeof(*cands));
    if (!cands)
        return -ENOMEM;
    for (uint32_t pg = 0; pg < w->pg_count; pg++)
        if (placement__pg_members(w, pg) < w->k)
            activate(lp, pg);
    for (uint32_t o = 0; o < w->osd_count; o++)
        if (lp->over[o])
            activate_osd(lp, o, alpha, cands);
    free(cands);
    return 0;
}

/* Class key of an active PG: its cells as (EC slot, kind, variable?, domain,
 * OSD if variable), sorted. Empty cells sort last. */
static void make_key(const struct lp *lp, uint32_t pg, uint64_t *key)
{
    const struct pl_work *w = lp->w;
    for (uint32_t r = 0; r < w->pg_size; r++) {
        size_t c = (size_t)pg * w->pg_size + r;
        if (w->cdom[c] == PL_NONE) {
            key[r] = UINT64_MAX;
            continue;
        }
        bool var = is_var_cell(lp, c);
        key[r] = (uint64_t)(w->ec ? r : 0) << 59 | (uint64_t)w->ckind[c] << 57 |
                 (uint64_t)var << 56 | (uint64_t)w->cdom[c] << 32 | (var ? w->cpref[c] : 0);
    }
    for (uint32_t i = 1; i < w->pg_size; i++) /* insertion sort: pg_size <= 32 */
        for (uint32_t j = i; j > 0 && key[j - 1] > key[j]; j--) {
            uint64_t t = key[j];
            key[j] = key[j - 1];
            key[j - 1] = t;
        }
}

static int cmp_active(const void *a, const void *b, void *ctx)
{
    const struct lp *lp = ctx;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    const uint64_t *kx = &lp->keys[(size_t)x * lp->w->pg_size];
    const uint64_t *ky = &lp->keys[(size_t)y * lp->w->pg_size];
    for (uint32_t r = 0; r < lp->w->pg_size; r++)
        if (kx[r] != ky[r])
            return kx[r] < ky[r] ? -1 : 1;
    return x < y ? -1 : x > y;
}

static int build_classes(struct lp *lp)
{
    struct pl_work *w = lp->w;
    size_t size = w->pg_size * sizeof(uint64_t);
    uint32_t *order = malloc((lp->active_count + 1) * sizeof(uint32_t));
    uint32_t *sorted = malloc((lp->active_count + 1) * sizeof(uint32_t));
    lp->keys = malloc(((size_t)lp->active_count + 1) * size);
    lp->classes = calloc(lp->active_count + 1, sizeof(*lp->classes));
    int rc = order && sorted && lp->keys && lp->classes ? 0 : -ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < lp->active_count; i++) {
        make_key(lp, lp->active[i], &lp->keys[(size_t)i * w->pg_size]);
        order[i] = i;
    }
    if (rc == 0)
        qsort_r(order, lp->active_count, sizeof(uint32_t), cmp_active, lp);
    for (uint32_t i = 0; rc == 0 && i < lp->active_count; i++) {
        sorted[i] = lp->active[order[i]];
        if (i == 0 || memcmp(&lp->keys[(size_t)order[i] * w->pg_size],
                             &lp->keys[(size_t)order[i - 1] * w->pg_size], size) != 0)
            lp->classes[lp->class_count++].first = i;
        lp->classes[lp->class_count - 1].n++;
    }
    if (rc == 0)
        memcpy(lp->active, sorted, lp->active_count * sizeof(uint32_t));
    free(sorted);
    free(order);
    /* PGs with holes are all brought in, and identical ones share a class
     * (a fresh pool is one class); too many classes wait for the next pass. */
    if (rc == 0 && lp->class_count > LP_ACTIVE_MAX) {
        for (uint32_t i = lp->classes[LP_ACTIVE_MAX].first; i < lp->active_count; i++)
            lp->is_active[lp->active[i]] = 0;
        lp->active_count = lp->classes[LP_ACTIVE_MAX].first;
        lp->class_count = LP_ACTIVE_MAX;
        lp->capped = true;
    }
    return rc;
}

/* ---- Round: columns ---- */

static int push_var(struct lp *lp, struct lp_var v)
{
    if (lp->var_count == lp->var_cap) {
        uint32_t cap = lp->var_cap ? lp->var_cap * 2 : 1024;
        struct lp_var *vars = realloc(lp->vars, cap * sizeof(*vars));
        if (!vars)
            return -ENOMEM;
        lp->vars = vars;
        lp->var_cap = cap;
    }
    lp->vars[lp->var_count++] = v;
    return 0;
}

struct rcand {
    uint32_t dom;
    double key;
};

static int cmp_rcand(const void *a, const void *b)
{
    const struct rcand *x = a, *y = b;
    if (x->key != y->key)
        return x->key > y->key ? -1 : 1;
    return x->dom < y->dom ? -1 : x->dom > y->dom;
}

/* Receivers a class may add to: all, or `limit` of them drawn by need
 * (weighted sampling without replacement: key u^(1/need), largest win). */
static int class_receivers(struct lp *lp, const struct lp_class *cl, uint32_t pg, uint32_t limit,
                           struct rcand *rc)
{
    struct pl_work *w = lp->w;
    uint32_t n = 0;
    uint64_t rng = w->seed ^ placement__mix64(pg + 0x51ull);
    for (uint32_t h = 0; h < w->dom_count; h++) {
        if (lp->state[h] != DOM_RECEIVER || placement__pg_has_dom(w, pg, h))
            continue;
        double u = ((double)(placement__rand(&rng) >> 11) + 0.5) / 9007199254740992.0;
        rc[n].dom = h;
        rc[n++].key = log(u) / (double)lp->need[h];
    }
    if (n > limit) {
        qsort(rc, n, sizeof(*rc), cmp_rcand);
        n = limit;
    }
    int err = 0;
    for (uint32_t i = 0; i < n && err == 0; i++)
        err = push_var(lp, (struct lp_var){.dom = rc[i].dom, .osd = PL_NONE, .kind = VAR_ADD,
                                           .ub = VS_MIN(cl->n, lp->need[rc[i].dom]),
                                           .cell_row = PL_NONE});
    return err;
}

/* A kept member in an excess domain: reg, plus sur when its OSD is over. */
static int cell_vars(struct lp *lp, const struct lp_class *cl, uint32_t dom, uint32_t osd)
{
    struct lp_var v = {.dom = dom, .osd = osd, .ub = cl->n, .kind = VAR_REG,
                       .cell_row = PL_NONE};
    if (lp->over[osd])
        v.cell_row = lp->cell_rows++;
    int err = push_var(lp, v);
    if (err == 0 && lp->over[osd]) {
        v.kind = VAR_SUR;
        v.ub = VS_MIN(cl->n, lp->over[osd]);
        err = push_var(lp, v);
    }
    return err;
}

static int build_vars(struct lp *lp, uint32_t recv_limit)
{
    struct pl_work *w = lp->w;
    struct rcand *rc = malloc((w->dom_count + 1) * sizeof(*rc));
    if (!rc)
        return -ENOMEM;
    int err = 0;
    for (uint32_t g = 0; g < lp->class_count && err == 0; g++) {
        struct lp_class *cl = &lp->classes[g];
        uint32_t pg = lp->active[cl->first], sure = 0;
        cl->var_first = lp->var_count;
        for (uint32_t r = 0; r < w->pg_size && err == 0; r++) {
            size_t c = (size_t)pg * w->pg_size + r;
            if (w->cdom[c] == PL_NONE)
                continue;
            if (is_var_cell(lp, c))
                err = cell_vars(lp, cl, w->cdom[c], w->cpref[c]);
            else
                sure++;
        }
        cl->need = w->k - sure;
        if (err == 0)
            err = class_receivers(lp, cl, pg, recv_limit, rc);
        cl->var_count = lp->var_count - cl->var_first;
        lp->wanted += (uint64_t)cl->need * cl->n;
    }
    free(rc);
    return err;
}

/* ---- Round: the model for placement_glpk.c ---- */

struct rows {
    uint32_t cells, osds, doms; /* first row of each family */
    uint32_t *osd_row, *dom_row; /* PL_NONE when absent */
};

static void model_rows(const struct lp *lp, struct rows *rw, struct pl_lpmodel *m)
{
    const struct pl_work *w = lp->w;
    rw->cells = lp->class_count;
    m->rows = rw->osds = rw->cells + lp->cell_rows;
    for (uint32_t o = 0; o < w->osd_count; o++)
        rw->osd_row[o] = lp->over[o] ? m->rows++ : PL_NONE;
    rw->doms = m->rows;
    for (uint32_t h = 0; h < w->dom_count; h++)
        rw->dom_row[h] = lp->state[h] != DOM_NEUTRAL ? m->rows++ : PL_NONE;
}

/* Row bounds: a class fills its need; an OSD or excess domain keeps at most
 * its target minus what stays outside the program. */
static void model_bounds(const struct lp *lp, const struct rows *rw, struct pl_lpmodel *m)
{
    const struct pl_work *w = lp->w;
    for (uint32_t g = 0; g < lp->class_count; g++)
        m->row_ub[g] = (double)lp->classes[g].need * lp->classes[g].n;
    for (uint32_t i = rw->cells; i < rw->osds; i++)
        m->row_ub[i] = 0;
    for (uint32_t o = 0; o < w->osd_count; o++)
        if (rw->osd_row[o] != PL_NONE)
            m->row_ub[rw->osd_row[o]] = (double)w->osds[o].target - lp->count[o];
    for (uint32_t h = 0; h < w->dom_count; h++)
        if (rw->dom_row[h] != PL_NONE)
            m->row_ub[rw->dom_row[h]] = lp->state[h] == DOM_RECEIVER ? (double)lp->need[h]
                                                                     : -(double)lp->drop[h];
    for (uint32_t g = 0; g < lp->class_count; g++) {
        const struct lp_class *cl = &lp->classes[g];
        for (uint32_t i = cl->var_first; i < cl->var_first + cl->var_count; i++) {
            const struct lp_var *v = &lp->vars[i];
            if (v->cell_row != PL_NONE && v->kind == VAR_REG)
                m->row_ub[rw->cells + v->cell_row] = cl->n;
            if (v->kind == VAR_REG && rw->osd_row[v->osd] != PL_NONE)
                m->row_ub[rw->osd_row[v->osd]] += cl->n;
            if (v->kind == VAR_REG)
                m->row_ub[rw->dom_row[v->dom]] += cl->n;
        }
    }
    for (uint32_t i = 0; i < m->rows; i++) /* a pass may have to drop all it holds */
        m->row_ub[i] = fmax(m->row_ub[i], 0);
}

static void model_cols(const struct lp *lp, const struct rows *rw, struct pl_lpmodel *m)
{
    double big = 1.0 + (double)lp->w->k * lp->active_count;
    uint32_t e = 0;
    for (uint32_t g = 0; g < lp->class_count; g++) {
        const struct lp_class *cl = &lp->classes[g];
        for (uint32_t i = cl->var_first; i < cl->var_first + cl->var_count; i++) {
            const struct lp_var *v = &lp->vars[i];
            m->col_start[i] = e;
            m->col_ub[i] = v->ub;
            m->obj[i] = big + (v->kind == VAR_REG);
            m->row_of[e++] = g;
            if (v->cell_row != PL_NONE)
                m->row_of[e++] = rw->cells + v->cell_row;
            if (v->kind == VAR_REG && rw->osd_row[v->osd] != PL_NONE)
                m->row_of[e++] = rw->osd_row[v->osd];
            m->row_of[e++] = rw->dom_row[v->dom];
        }
    }
    m->col_start[lp->var_count] = e;
}

static void read_values(struct lp *lp, const double *x)
{
    lp->placed = 0;
    for (uint32_t i = 0; i < lp->var_count; i++) {
        struct lp_var *v = &lp->vars[i];
        double r = floor(x[i] + 0.5);
        /* Total unimodularity makes every basic solution integral. */
        if (VS_NEVER(fabs(x[i] - r) > 1e-6))
            r = floor(x[i]);
        v->value = (uint32_t)VS_MIN(VS_MAX(r, 0.0), (double)v->ub);
        lp->placed += v->value;
    }
}

static int lp_solve(struct lp *lp)
{
    const struct pl_work *w = lp->w;
    size_t entries = 4 * (size_t)lp->var_count + 1;
    struct pl_lpmodel m = {.cols = lp->var_count};
    struct rows rw = {.osd_row = malloc((w->osd_count + 1) * sizeof(uint32_t)),
                      .dom_row = malloc((w->dom_count + 1) * sizeof(uint32_t))};
    size_t rows_max = lp->class_count + lp->cell_rows + w->osd_count + w->dom_count + 1;
    m.row_ub = malloc(rows_max * sizeof(double));
    m.col_ub = malloc((m.cols + 1) * sizeof(double));
    m.obj = malloc((m.cols + 1) * sizeof(double));
    m.col_start = malloc((m.cols + 1) * sizeof(uint32_t));
    m.row_of = malloc(entries * sizeof(uint32_t));
    double *x = malloc((m.cols + 1) * sizeof(double));
    int rc = rw.osd_row && rw.dom_row && m.row_ub && m.col_ub && m.obj && m.col_start &&
                     m.row_of && x ? 0 : -ENOMEM;
    if (rc == 0) {
        model_rows(lp, &rw, &m);
        model_bounds(lp, &rw, &m);
        model_cols(lp, &rw, &m);
        rc = placement__glpk_solve(&m, x);
    }
    if (rc == 0)
        read_values(lp, x);
    lp->w->rep->lp_rows = m.rows;
    lp->w->rep->lp_cols = m.cols;
    free(rw.osd_row), free(rw.dom_row), free(m.row_ub), free(m.col_ub), free(m.obj);
    free(m.col_start), free(m.row_of), free(x);
    return rc;
}

/* Members dropped beyond the surplus: 0 when the drops are all forced ones. */
static int count_dropped_reg(struct lp *lp)
{
    const struct pl_work *w = lp->w;
    int64_t *kept = malloc((w->osd_count + 1) * sizeof(int64_t));
    if (!kept)
        return -ENOMEM;
    for (uint32_t o = 0; o < w->osd_count; o++)
        kept[o] = lp->count[o];
    for (uint32_t g = 0; g < lp->class_count; g++) {
        const struct lp_class *cl = &lp->classes[g];
        for (uint32_t i = cl->var_first; i < cl->var_first + cl->var_count; i++) {
            const struct lp_var *v = &lp->vars[i];
            if (v->kind == VAR_REG)
                kept[v->osd] -= cl->n - v->value;
            else if (v->kind == VAR_SUR)
                kept[v->osd] += v->value;
        }
    }
    lp->dropped_reg = 0;
    for (uint32_t o = 0; o < w->osd_count; o++) {
        const struct pl_eosd *e = &w->osds[o];
        int64_t floor_keep = VS_MIN(e->target, lp->count[o]);
        if (e->up && lp->state[e->dom] == DOM_EXCESS && kept[o] < floor_keep)
            lp->dropped_reg += (uint64_t)(floor_keep - kept[o]);
    }
    free(kept);
    return 0;
}

/* ---- Applying the solution ---- */

static void clear_cell(struct pl_work *w, size_t c)
{
    w->cdom[c] = PL_NONE;
    w->cpref[c] = PL_NONE;
    w->cosd[c] = PL_NONE;
    w->ckind[c] = PL_CELL_EMPTY;
}

/* Column fill: the class's chosen domains, each at most n times, are dealt
 * in order to PG (position mod n), so no PG gets a domain twice. seq holds
 * var indexes: a kept member's reg var (reg + sur times), an add var. */
static void apply_class(struct lp *lp, const struct lp_class *cl, uint32_t *seq)
{
    struct pl_work *w = lp->w;
    uint32_t len = 0;
    for (uint32_t i = cl->var_first; i < cl->var_first + cl->var_count; i++) {
        const struct lp_var *v = &lp->vars[i];
        uint32_t owner = v->kind == VAR_SUR ? i - 1 : i;
        for (uint32_t t = 0; t < v->value; t++)
            seq[len++] = owner;
    }
    for (uint32_t i = 0; i < cl->n; i++) {
        uint32_t pg = lp->active[cl->first + i];
        for (uint32_t r = 0; r < w->pg_size; r++) {
            size_t c = (size_t)pg * w->pg_size + r;
            if (w->cdom[c] == PL_NONE || !is_var_cell(lp, c))
                continue;
            bool keep = false;
            for (uint32_t pos = i; pos < len && !keep; pos += cl->n)
                keep = lp->vars[seq[pos]].kind == VAR_REG &&
                       lp->vars[seq[pos]].dom == w->cdom[c];
            if (!keep)
                clear_cell(w, c);
        }
        for (uint32_t pos = i; pos < len; pos += cl->n)
            if (lp->vars[seq[pos]].kind == VAR_ADD)
                placement__add_cell(w, pg, lp->vars[seq[pos]].dom);
    }
}

static int lp_apply(struct lp *lp)
{
    uint32_t max = 0;
    for (uint32_t g = 0; g < lp->class_count; g++)
        max = VS_MAX(max, lp->classes[g].n * lp->w->pg_size);
    uint32_t *seq = malloc((max + 1) * sizeof(uint32_t));
    if (!seq)
        return -ENOMEM;
    /* is_var_cell() reads domain states, never the cells being changed. */
    for (uint32_t g = 0; g < lp->class_count; g++)
        apply_class(lp, &lp->classes[g], seq);
    free(seq);
    return 0;
}

/* ---- Rounds ---- */

static void round_reset(struct lp *lp)
{
    for (uint32_t i = 0; i < lp->active_count; i++)
        lp->is_active[lp->active[i]] = 0;
    lp->active_count = lp->class_count = lp->var_count = lp->cell_rows = 0;
    free(lp->keys), free(lp->classes);
    lp->keys = NULL, lp->classes = NULL;
    lp->wanted = lp->placed = lp->dropped_reg = 0;
}

static int lp_round(struct lp *lp, uint32_t round)
{
    static const uint64_t alpha[LP_ROUNDS] = {4, 32, UINT32_MAX};
    struct pl_work *w = lp->w;
    round_reset(lp);
    int rc = select_active(lp, alpha[round]);
    if (rc == 0)
        rc = build_classes(lp);
    if (rc < 0)
        return rc;
    uint32_t limit = lp->receivers;
    if (round < LP_ROUNDS - 1 && (uint64_t)lp->class_count * lp->receivers > LP_COLS_BUDGET)
        limit = VS_MAX((2 * w->k + 4) << (round * 2), LP_COLS_BUDGET / lp->class_count);
    rc = build_vars(lp, limit);
    if (rc == 0)
        rc = lp_solve(lp);
    if (rc == 0)
        rc = count_dropped_reg(lp);
    w->rep->lp_rounds++;
    return rc;
}

static void lp_free(struct lp *lp)
{
    round_reset(lp);
    free(lp->count), free(lp->have), free(lp->state), free(lp->need), free(lp->over);
    free(lp->drop);
    free(lp->osd_pgs_start), free(lp->osd_pgs);
    free(lp->is_active), free(lp->active), free(lp->vars);
}

static int lp_alloc(struct lp *lp)
{
    const struct pl_work *w = lp->w;
    lp->count = calloc(w->osd_count + 1, sizeof(uint32_t));
    lp->have = calloc(w->dom_count, sizeof(uint32_t));
    lp->need = calloc(w->dom_count, sizeof(uint32_t));
    lp->state = calloc(w->dom_count, 1);
    lp->over = calloc(w->osd_count + 1, sizeof(uint32_t));
    lp->drop = calloc(w->dom_count + 1, sizeof(uint32_t));
    lp->osd_pgs_start = calloc(w->osd_count + 2, sizeof(uint32_t));
    lp->osd_pgs = malloc(((size_t)w->pg_count * w->pg_size + 1) * sizeof(uint32_t));
    lp->is_active = calloc(w->pg_count, 1);
    lp->active = malloc(w->pg_count * sizeof(uint32_t));
    return lp->count && lp->have && lp->need && lp->state && lp->over && lp->drop &&
                   lp->osd_pgs_start &&
                   lp->osd_pgs && lp->is_active && lp->active
               ? 0
               : -ENOMEM;
}

/* The most members a program can place: its class needs, or what the
 * receivers can take plus every member it may keep. */
static uint64_t placeable(const struct lp *lp)
{
    uint64_t room = 0;
    for (uint32_t h = 0; h < lp->w->dom_count; h++)
        room += lp->need[h];
    for (uint32_t g = 0; g < lp->class_count; g++)
        for (uint32_t i = lp->classes[g].var_first;
             i < lp->classes[g].var_first + lp->classes[g].var_count; i++)
            room += lp->vars[i].kind == VAR_REG ? lp->classes[g].n : 0;
    return VS_MIN(room, lp->wanted);
}

/* One pass: the program over this pass's domains, widened up to LP_ROUNDS
 * times while it misses the lower bound, then applied. *more: another pass
 * is needed. */
static int lp_pass(struct lp *lp, bool *more)
{
    int rc = lp_census(lp);
    *more = false;
    if (rc < 0)
        return rc;
    lp_classify(lp);
    bool work = lp->holes_total > 0;
    for (uint32_t h = 0; h < lp->w->dom_count; h++)
        work = work || lp->state[h] == DOM_EXCESS;
    if (!work)
        return 0;
    for (uint32_t round = 0; rc == 0 && round < (lp->capped ? 1 : LP_ROUNDS); round++) {
        rc = lp_round(lp, round);
        /* The lower bound: every hole the receivers can take is filled and
         * only surplus members were dropped. */
        if (rc == 0 && lp->placed == placeable(lp) && lp->dropped_reg == 0)
            break;
    }
    if (rc == 0)
        rc = lp_apply(lp);
    *more = rc == 0 && lp->capped && lp->placed > 0;
    return rc;
}

int placement__assign_domains(struct pl_work *w)
{
    struct lp lp = {.w = w};
    int rc = lp_alloc(&lp);
    bool more = rc == 0;
    /* Each pass takes at least one over-target OSD or LP_ACTIVE_MAX classes. */
    uint64_t passes = (uint64_t)w->osd_count + w->pg_count / LP_ACTIVE_MAX + 2;
    for (uint64_t pass = 0; rc == 0 && more && pass < passes; pass++)
        rc = lp_pass(&lp, &more);
    lp_free(&lp);
    return rc;
}
