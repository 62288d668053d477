/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_report.c -- what a solve reports per pool: each OSD's load against
 * its weight share and its best feasible share, primaries, moved members,
 * the LP's size, and the report's JSON form (docs/placement.md).
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void report_osds(const struct pl_work *w, struct vs_placement_pool_report *rep)
{
    double slots_up = 0, weight_up = 0;
    for (uint32_t o = 0; o < w->osd_count; o++)
        if (w->osds[o].up)
            slots_up += w->osds[o].slots, weight_up += w->osds[o].weight;
    rep->ratio_min = rep->best_ratio_min = INFINITY;
    rep->ratio_max = rep->best_ratio_max = 0;
    for (uint32_t i = 0; i < w->osd_count; i++) {
        const struct pl_eosd *e = &w->osds[w->by_id[i]];
        rep->osds[i] = (struct vs_placement_osd_load){
            .osd = e->id, .weight = e->weight, .up = e->up, .slots = e->slots,
            .ideal = e->ideal, .best = e->best, .primaries = e->primaries,
            .primary_ideal = e->prim_ideal};
        if (!e->up || slots_up == 0)
            continue;
        double ratio = (e->slots / slots_up) / (e->weight / weight_up);
        rep->ratio_min = fmin(rep->ratio_min, ratio);
        rep->ratio_max = fmax(rep->ratio_max, ratio);
        if (e->best > 0) {
            rep->best_ratio_min = fmin(rep->best_ratio_min, e->slots / e->best);
            rep->best_ratio_max = fmax(rep->best_ratio_max, e->slots / e->best);
        }
        rep->slot_dev_max = fmax(rep->slot_dev_max, fabs(e->slots - e->best));
        rep->primary_dev_max = fmax(rep->primary_dev_max, fabs(e->primaries - e->prim_ideal));
    }
    if (rep->ratio_min == INFINITY)
        rep->ratio_min = 0;
    if (rep->best_ratio_min == INFINITY)
        rep->best_ratio_min = 0;
}

/* Members of set that are not in prev: anywhere in it, or for EC in that slot. */
static uint32_t moved(const uint32_t *set, const uint32_t *prev, uint32_t size, bool ec)
{
    uint32_t n = 0;
    for (uint32_t r = 0; r < size; r++) {
        if (!set[r])
            continue;
        bool found = false;
        for (uint32_t i = 0; i < size && !found; i++)
            found = (ec ? i == r : true) && prev[i] == set[r];
        n += !found;
    }
    return n;
}

static void report_sets(const struct pl_work *w, const struct vs_pgmap_pool *out,
                        struct vs_placement_pool_report *rep)
{
    for (uint32_t pg = 0; pg < w->pg_count; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(out, pg);
        uint32_t members = 0;
        for (uint32_t r = 0; r < w->pg_size; r++)
            members += set[r] != 0;
        rep->empty_slots += w->pg_size - members;
        rep->pgs_below_minsize += members < w->pool->pg_minsize;
        if (!w->prev_ids)
            continue;
        uint32_t m = moved(set, &w->prev_ids[(size_t)pg * w->pg_size], w->pg_size, w->ec);
        rep->moved_members += m;
        rep->moved_pgs += m > 0;
        rep->primary_changes += w->prev_primary[pg] != out->pgs[pg].primary;
    }
    for (uint32_t o = 0; w->prev_ids && o < w->osd_count; o++)
        if (w->osds[o].up && w->osds[o].target > w->osds[o].base_count)
            rep->moved_min += w->osds[o].target - w->osds[o].base_count;
    rep->degraded = rep->empty_slots > 0;
}

int placement__report(const struct pl_work *w, const struct vs_pgmap_pool *out,
                      struct vs_placement_pool_report *rep)
{
    rep->slots_per_pg = w->k;
    rep->osd_count = w->osd_count;
    rep->osds = calloc(w->osd_count + 1, sizeof(*rep->osds));
    if (!rep->osds)
        return -ENOMEM;
    report_osds(w, rep);
    report_sets(w, out, rep);
    if (rep->degraded && !rep->errmsg[0])
        snprintf(rep->errmsg, sizeof(rep->errmsg),
                 "pool %u (%s): degraded: %llu empty slots (down OSDs cannot take members)",
                 w->pool->id, w->pool->name, (unsigned long long)rep->empty_slots);
    return 0;
}

void vs_placement_report_free(struct vs_placement_report *report)
{
    if (!report)
        return;
    for (uint32_t i = 0; report->pools && i < report->pool_count; i++)
        free(report->pools[i].osds);
    free(report->pools);
    free(report);
}

const struct vs_placement_pool_report *
vs_placement_report_find(const struct vs_placement_report *report, uint16_t pool_id)
{
    for (uint32_t i = 0; i < report->pool_count; i++)
        if (report->pools[i].pool_id == pool_id)
            return &report->pools[i];
    return NULL;
}

static json_t *osd_json(const struct vs_placement_osd_load *l)
{
    return json_pack("{sI sf sb sI sf sf sI sf}", "osd", (json_int_t)l->osd, "weight", l->weight,
                     "up", l->up, "slots", (json_int_t)l->slots, "ideal", l->ideal, "best",
                     l->best, "primaries", (json_int_t)l->primaries, "primary_ideal",
                     l->primary_ideal);
}

static json_t *pool_json(const struct vs_placement_pool_report *r)
{
    json_t *j = json_pack(
        "{ss sI sb sI sI sI sI sI sI sI sI sf sf sf sf sf sf s{sI sI sI} sI}", "name", r->name,
        "rc", (json_int_t)r->rc, "degraded", r->degraded, "domains", (json_int_t)r->domain_count,
        "slots_per_pg", (json_int_t)r->slots_per_pg, "empty_slots", (json_int_t)r->empty_slots,
        "pgs_below_minsize", (json_int_t)r->pgs_below_minsize, "moved_members",
        (json_int_t)r->moved_members, "moved_min", (json_int_t)r->moved_min, "moved_pgs",
        (json_int_t)r->moved_pgs, "primary_changes", (json_int_t)r->primary_changes, "ratio_min",
        r->ratio_min, "ratio_max", r->ratio_max, "best_ratio_min", r->best_ratio_min,
        "best_ratio_max", r->best_ratio_max, "slot_dev_max", r->slot_dev_max, "primary_dev_max",
        r->primary_dev_max, "lp", "rows", (json_int_t)r->lp_rows, "cols", (json_int_t)r->lp_cols,
        "rounds", (json_int_t)r->lp_rounds, "repaired", (json_int_t)r->repaired);
    if (!j)
        return NULL;
    if (r->errmsg[0])
        json_object_set_new(j, r->rc < 0 ? "error" : "warning", json_string(r->errmsg));
    json_t *osds = json_array();
    for (uint32_t i = 0; osds && i < r->osd_count; i++)
        json_array_append_new(osds, osd_json(&r->osds[i]));
    json_object_set_new(j, "osds", osds);
    return j;
}

json_t *vs_placement_report_to_json(const struct vs_placement_report *report)
{
    json_t *root = json_object(), *pools = json_object();
    if (!root || !pools) {
        json_decref(root), json_decref(pools);
        return NULL;
    }
    if (report->solve_ns)
        json_object_set_new(root, "solve_ms", json_real((double)report->solve_ns / 1e6));
    for (uint32_t i = 0; i < report->pool_count; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%u", report->pools[i].pool_id);
        json_object_set_new(pools, key, pool_json(&report->pools[i]));
    }
    json_object_set_new(root, "pools", pools);
    return root;
}
