/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_plan.c -- vs_mon_plan(): from what the monitor read to what it
 * writes. Pure (STYLE B17): the same key/values give the same transaction.
 *
 * Steps, in order:
 *   1. records   mon/osd/<id> = {host, size_bytes} for every up OSD whose
 *                record is missing or differs (so a down OSD keeps its place);
 *   2. place     when the hash of the placement inputs (tree, pools, seed)
 *                differs from the one stored in mon/placement, run
 *                vs_placement_solve() from the current map; else start from a
 *                copy of the current map;
 *   3. primaries a PG whose primary is not up gets its first up member (only
 *                matters when the solve did not run or could not place a pool:
 *                a solve never picks a down primary);
 *   4. clean     clear the history of every PG its primary reports clean, and
 *                record last_clean for a pool whose PGs are all clean;
 *   5. publish   config/pgs when it differs from the current value, and
 *                mon/placement when the solve ran.
 *
 * Invariants:
 *   (1) A PG's history is cleared only when its primary reports, in
 *       pg/state/<pool>/<pg>, exactly ["active"] for exactly the current set
 *       and primary: it peered with every OSD of the history and holds every
 *       object on every member of the set. The txn compares that key's mod
 *       revision, so a report that changed after we read it cancels the clear.
 *   (2) Every write is guarded: config/pgs, mon/placement, and the solve's
 *       documents (config/pools, config/nodes) are compared against the mod
 *       revisions we read. A change of any other input after the read (an OSD
 *       going down) changes the input hash, so the next plan solves again.
 *   (3) A config/pgs that cannot be read is never overwritten: its history is
 *       the only record of where data may still be.
 *   (4) No churn: with unchanged inputs and reports the plan is empty.
 */
#include "monitor_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct plan_ctx {
    const struct mon_view *v;
    struct vs_mon_plan *plan;
    const struct vs_mon_plan_opts *opts;
    struct vs_pgmap *map; /* the map being built; NULL when there is none */
};

static bool osd_up(const struct mon_view *v, uint32_t id)
{
    const struct mon_osd *o = id ? mon__view_osd(v, id) : NULL;
    return o && o->up;
}

/* ---- 1. Records ---- */

static int write_records(struct plan_ctx *p)
{
    const struct mon_view *v = p->v;
    for (uint32_t i = 0; i < v->n_osds; i++) {
        const struct mon_osd *o = &v->osds[i];
        if (!o->up || !o->state_valid)
            continue;
        if (o->rec_host && strcmp(o->rec_host, o->host) == 0 && o->rec_size == o->size_bytes)
            continue;
        char key[64];
        snprintf(key, sizeof(key), "%s%u", VS_MON_PREFIX_RECORD, o->id);
        json_t *rec = json_pack("{s:s,s:I}", "host", o->host, "size_bytes",
                                (json_int_t)o->size_bytes);
        if (!rec)
            return -ENOMEM;
        vs_mon_txn_expect_mod(&p->plan->txn, key, o->rec_mod_rev);
        vs_mon_txn_put_json(&p->plan->txn, key, rec);
        json_decref(rec);
        p->plan->records++;
    }
    return 0;
}

/* ---- 2. Placement ---- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

/* Hash of everything the solve depends on, or 0 on ENOMEM. */
static uint64_t inputs_hash(const json_t *tree, const struct vs_placement_pools *pools,
                            uint64_t seed)
{
    json_t *pj = vs_placement_pools_to_json(pools);
    char *t = json_dumps(tree, JSON_COMPACT | JSON_SORT_KEYS);
    char *q = pj ? json_dumps(pj, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    char s[32];
    snprintf(s, sizeof(s), "\n%" PRIu64, seed);
    uint64_t h = 0;
    if (t && q)
        h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, t), q), s) | 1; /* never 0 */
    free(t), free(q);
    json_decref(pj);
    return h;
}

static uint64_t stored_hash(const struct mon_view *v)
{
    json_t *h = json_object_get(v->placement.json, "inputs");
    uint64_t x = 0;
    if (json_is_string(h) && sscanf(json_string_value(h), "%" SCNx64, &x) != 1)
        x = 0;
    return x;
}

static void report_pools(struct plan_ctx *p, const struct vs_placement_report *rep)
{
    for (uint32_t i = 0; i < rep->pool_count; i++) {
        const struct vs_placement_pool_report *r = &rep->pools[i];
        if (r->rc < 0)
            mon__msg(p->plan, VS_MON_MSG_ERROR, "%s", r->errmsg);
        else if (r->degraded)
            mon__msg(p->plan, VS_MON_MSG_WARN, "%s", r->errmsg); /* names the pool */
        else
            mon__msg(p->plan, VS_MON_MSG_INFO,
                     "pool %u (%.64s): placed, %" PRIu64 " members moved, %u primaries changed",
                     r->pool_id, r->name, r->moved_members, r->primary_changes);
    }
}

static int solve(struct plan_ctx *p, const json_t *tree_json)
{
    char err[VS_ERRMSG_SIZE];
    struct vs_placement_tree *tree = NULL;
    struct vs_placement_report *rep = NULL;
    int rc = vs_placement_tree_from_json(tree_json, &tree, err, sizeof(err));
    if (rc < 0) {
        mon__msg(p->plan, VS_MON_MSG_ERROR, "placement tree: %s: keeping the current PG map",
                 err);
        return rc == -ENOMEM ? rc : 0;
    }
    struct vs_placement_opts o = {.seed = p->opts->seed};
    rc = vs_placement_solve(tree, p->v->pool_cfg, p->v->pgmap, &o, &p->map, &rep, err,
                            sizeof(err));
    vs_placement_tree_free(tree);
    if (rc == 0 || rc == VS_EINFEASIBLE) {
        report_pools(p, rep);
        vs_placement_report_free(rep);
        p->plan->solved = true;
        return 0;
    }
    mon__msg(p->plan, VS_MON_MSG_ERROR, "placement failed: %s", err);
    return rc == -ENOMEM ? rc : 0;
}

/* A second copy of the current map: parsed again from the JSON the view holds
 * (it parsed once already, so this cannot fail but for memory). */
static int copy_map(const struct mon_view *v, struct vs_pgmap **out)
{
    return vs_pgmap_from_json(v->pgs.json, out, NULL, 0) < 0 ? -ENOMEM : 0;
}

static int place(struct plan_ctx *p)
{
    const struct mon_view *v = p->v;
    int rc = 0;
    if (v->inputs_ok) {
        json_t *tree = mon__tree_json(v);
        uint64_t h = tree ? inputs_hash(tree, v->pool_cfg, p->opts->seed) : 0;
        if (!h)
            rc = -ENOMEM;
        else if (h != stored_hash(v)) {
            p->plan->inputs_hash = h;
            rc = solve(p, tree);
        }
        json_decref(tree);
    } else {
        mon__msg(p->plan, VS_MON_MSG_WARN,
                 "placement inputs are invalid: keeping the current PG map");
    }
    if (rc == 0 && !p->map && v->pgmap)
        rc = copy_map(v, &p->map);
    return rc;
}

/* ---- 3. Primaries ---- */

static bool is_replicated(const struct mon_view *v, uint16_t pool)
{
    const struct vs_placement_pool *c = v->pool_cfg ? vs_placement_pools_find(v->pool_cfg, pool)
                                                    : NULL;
    return c && c->scheme == VS_POOL_REPLICATED;
}

static void fix_primaries(struct plan_ctx *p)
{
    for (uint32_t i = 0; i < p->map->pool_count; i++) {
        struct vs_pgmap_pool *pp = &p->map->pools[i];
        bool repl = is_replicated(p->v, pp->pool_id);
        for (uint32_t pg = 0; pg < pp->pg_count; pg++) {
            uint32_t *set = &pp->osd_sets[(size_t)pg * pp->pg_size];
            if (osd_up(p->v, pp->pgs[pg].primary))
                continue;
            uint32_t r = 0;
            while (r < pp->pg_size && !osd_up(p->v, set[r]))
                r++;
            pp->pgs[pg].primary = r < pp->pg_size ? set[r] : 0;
            if (repl && r < pp->pg_size && r > 0) { /* replicated: the primary goes first */
                uint32_t prim = set[r];
                memmove(&set[1], &set[0], r * sizeof(uint32_t));
                set[0] = prim;
            }
        }
    }
}

/* ---- 4. Clean PGs ---- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Invariant 1. */
static bool trusted_clean(const struct mon_view *v, const struct vs_pgmap_pool *pp, uint32_t pg,
                          const struct mon_pgstate **st_out)
{
    const struct vs_pgmap_pg *g = &pp->pgs[pg];
    const struct mon_pgstate *st = mon__view_state(v, pp->pool_id, pg);
    if (g->pause || !g->primary || !st || !st->active_clean || st->primary != g->primary)
        return false;
    uint32_t a[VS_PLACEMENT_PG_SIZE_MAX], b[VS_PLACEMENT_PG_SIZE_MAX], na = 0;
    const uint32_t *set = vs_pgmap_osd_set(pp, pg);
    for (uint32_t r = 0; r < pp->pg_size; r++)
        if (set[r])
            a[na++] = set[r];
    if (na != st->n_peers)
        return false;
    memcpy(b, st->peers, na * sizeof(uint32_t));
    qsort(a, na, sizeof(uint32_t), cmp_u32);
    qsort(b, na, sizeof(uint32_t), cmp_u32);
    *st_out = st;
    return memcmp(a, b, na * sizeof(uint32_t)) == 0;
}

static void clear_one(struct plan_ctx *p, uint16_t pool, uint32_t pg,
                      const struct mon_pgstate *st)
{
    char key[64];
    snprintf(key, sizeof(key), "pg/state/%u/%u", pool, pg);
    vs_mon_txn_expect_mod(&p->plan->txn, key, st->mod_rev);
    vs_pgmap_clear_history(p->map, pool, pg);
    p->plan->history_cleared++;
}

static bool same_layout(const struct vs_pgmap_pool *pp)
{
    size_t n = (size_t)pp->pg_count * pp->pg_size * sizeof(uint32_t);
    return pp->last_clean && memcmp(pp->last_clean, pp->osd_sets, n) == 0;
}

static int clear_clean(struct plan_ctx *p)
{
    for (uint32_t i = 0; i < p->map->pool_count; i++) {
        struct vs_pgmap_pool *pp = &p->map->pools[i];
        bool all_clean = pp->pg_count > 0;
        for (uint32_t pg = 0; pg < pp->pg_count; pg++) {
            const struct mon_pgstate *st = NULL;
            if (!trusted_clean(p->v, pp, pg, &st)) {
                all_clean = false;
                continue;
            }
            if (pp->pgs[pg].history_count == 0)
                continue;
            if (p->plan->history_cleared >= VS_MON_CLEAR_MAX) {
                all_clean = false; /* the rest in the next transaction */
                continue;
            }
            clear_one(p, pp->pool_id, pg, st);
        }
        if (all_clean && !same_layout(pp)) {
            int rc = vs_pgmap_set_last_clean(p->map, pp->pool_id);
            if (rc < 0)
                return rc;
            p->plan->last_clean_pools++;
        }
    }
    if (p->plan->history_cleared)
        mon__msg(p->plan, VS_MON_MSG_INFO, "%u PG(s) reported clean: history cleared",
                 p->plan->history_cleared);
    return 0;
}

/* ---- 5. Publish ---- */

static void count_primary_moves(struct plan_ctx *p)
{
    const struct vs_pgmap *old = p->v->pgmap;
    for (uint32_t i = 0; old && i < p->map->pool_count; i++) {
        const struct vs_pgmap_pool *np = &p->map->pools[i];
        const struct vs_pgmap_pool *op = vs_pgmap_find(old, np->pool_id);
        for (uint32_t pg = 0; op && pg < np->pg_count && pg < op->pg_count; pg++)
            p->plan->primary_moves += np->pgs[pg].primary != op->pgs[pg].primary;
    }
}

static bool same_u32(const uint32_t *a, const uint32_t *b, size_t n)
{
    return n == 0 || (a && b && memcmp(a, b, n * sizeof(uint32_t)) == 0);
}

/* Same content (what vs_pgmap_dump would print): compared without dumping, since
 * most plans change nothing. */
static bool same_pool(const struct vs_pgmap_pool *a, const struct vs_pgmap_pool *b)
{
    size_t n = (size_t)a->pg_count * a->pg_size;
    if (a->pool_id != b->pool_id || a->pg_size != b->pg_size || a->pg_count != b->pg_count ||
        !same_u32(a->osd_sets, b->osd_sets, n) || !a->last_clean != !b->last_clean ||
        (a->last_clean && !same_u32(a->last_clean, b->last_clean, n)))
        return false;
    for (uint32_t pg = 0; pg < a->pg_count; pg++) {
        const struct vs_pgmap_pg *x = &a->pgs[pg], *y = &b->pgs[pg];
        if (x->primary != y->primary || x->pause != y->pause ||
            x->history_count != y->history_count ||
            !same_u32(x->history, y->history, (size_t)x->history_count * a->pg_size))
            return false;
    }
    return true;
}

static bool same_map(const struct vs_pgmap *a, const struct vs_pgmap *b)
{
    if (!a || !b || a->pool_count != b->pool_count)
        return false;
    for (uint32_t i = 0; i < a->pool_count; i++)
        if (!same_pool(&a->pools[i], &b->pools[i]))
            return false;
    return true;
}

static int publish(struct plan_ctx *p)
{
    const struct mon_view *v = p->v;
    struct vs_mon_txn *t = &p->plan->txn;
    bool empty = !p->map || (p->map->pool_count == 0 && !v->pgs.mod_rev);
    if (!empty && !same_map(p->map, v->pgmap)) {
        char *now = vs_pgmap_dump(p->map);
        if (!now)
            return -ENOMEM;
        vs_mon_txn_expect_mod(t, VS_MON_KEY_PGS, v->pgs.mod_rev);
        vs_mon_txn_put(t, VS_MON_KEY_PGS, now);
        free(now);
        p->plan->publish = true;
        count_primary_moves(p);
    }
    if (p->plan->solved) {
        char hex[24];
        snprintf(hex, sizeof(hex), "%016" PRIx64, p->plan->inputs_hash);
        json_t *j = json_pack("{s:s}", "inputs", hex);
        if (!j)
            return -ENOMEM;
        vs_mon_txn_expect_mod(t, "config/pools", v->pools.mod_rev);
        vs_mon_txn_expect_mod(t, "config/nodes", v->nodes.mod_rev);
        vs_mon_txn_expect_mod(t, VS_MON_KEY_PLACEMENT, v->placement.mod_rev);
        vs_mon_txn_put_json(t, VS_MON_KEY_PLACEMENT, j);
        json_decref(j);
    }
    return 0;
}

/* ---- The plan ---- */

int vs_mon_plan(const struct vs_meta_kv *kvs, unsigned n, const struct vs_mon_plan_opts *opts,
                struct vs_mon_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    vs_mon_txn_init(&plan->txn);
    struct mon_view v;
    int rc = mon__view_build(&v, kvs, n, plan);
    struct plan_ctx p = {.v = &v, .plan = plan, .opts = opts};
    if (rc == 0)
        rc = write_records(&p);
    if (rc == 0 && !v.pgs_bad)
        rc = place(&p);
    if (rc == 0 && p.map) {
        fix_primaries(&p);
        rc = clear_clean(&p);
    }
    if (rc == 0 && !v.pgs_bad)
        rc = publish(&p);
    vs_pgmap_free(p.map);
    mon__view_free(&v);
    if (rc == 0 && !vs_mon_txn_ok(&plan->txn))
        rc = -ENOMEM;
    if (rc < 0)
        vs_mon_plan_free(plan);
    VS_ASSERT(rc <= 0);
    return rc;
}

void vs_mon_plan_free(struct vs_mon_plan *plan)
{
    vs_mon_txn_free(&plan->txn);
    memset(plan, 0, sizeof(*plan));
}
