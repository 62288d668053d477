/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_placement.c -- `vstor placement simulate`: runs the placement library on
 * files instead of the cluster's metadata, so tests and operators can preview
 * a map and what a change would move (docs/placement.md).
 */
#include "cmd.h"

#include "vs_clock.h"
#include "vs_err.h"
#include "vs_placement.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_SIZE_MAX (1ull << 30)

struct sim_inputs {
    struct vs_placement_tree *tree;
    struct vs_placement_pools *pools;
    struct vs_pgmap *prev;
};

static int read_file(struct vs_cmd_ctx *ctx, const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        vs_cmd_error(ctx, "%s: %s", path, strerror(errno));
        return -errno;
    }
    size_t cap = 1 << 16, used = 0;
    char *buf = malloc(cap);
    while (buf) {
        used += fread(buf + used, 1, cap - used, f);
        if (used < cap || cap >= FILE_SIZE_MAX)
            break;
        char *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger, cap *= 2;
    }
    int failed = ferror(f);
    fclose(f);
    if (!buf || failed || used == cap) {
        vs_cmd_error(ctx, "%s: %s", path, !buf ? "out of memory"
                                          : failed ? "read error" : "file too large");
        free(buf);
        return -EIO;
    }
    *text = buf;
    *len = used;
    return 0;
}

static int load_inputs(struct vs_cmd_ctx *ctx, struct sim_inputs *in)
{
    const char *paths[3] = {vs_cmd_opt(ctx, "tree"), vs_cmd_opt(ctx, "pools"),
                            vs_cmd_opt(ctx, "prev")};
    for (int i = 0; i < 3; i++) {
        char *text = NULL, errmsg[VS_ERRMSG_SIZE];
        size_t len = 0;
        if (!paths[i])
            continue;
        if (read_file(ctx, paths[i], &text, &len) < 0)
            return VS_EXIT_USAGE;
        int rc = i == 0   ? vs_placement_tree_parse(text, len, &in->tree, errmsg, sizeof(errmsg))
                 : i == 1 ? vs_placement_pools_parse(text, len, &in->pools, errmsg,
                                                     sizeof(errmsg))
                          : vs_pgmap_parse(text, len, &in->prev, errmsg, sizeof(errmsg));
        free(text);
        if (rc < 0) {
            vs_cmd_error(ctx, "%s: %s", paths[i], errmsg);
            return VS_EXIT_USAGE;
        }
    }
    return 0;
}

static uint64_t clock_ns(void *ctx)
{
    (void)ctx;
    return vs_clock_mono_ns();
}

static const char *const scheme_names[] = {"replicated", "xor", "ec"};

static void print_pool(const struct vs_placement_pool *pool,
                       const struct vs_placement_pool_report *r)
{
    printf("pool %u (%s): %s, pg_size %u, %u PGs, %u failure domains (%s), %u members per PG\n",
           pool->id, pool->name, scheme_names[pool->scheme], pool->pg_size, pool->pg_count,
           r->domain_count, pool->failure_domain, r->slots_per_pg);
    if (r->errmsg[0])
        printf("  %s: %s\n", r->rc < 0 ? "error" : "warning", r->errmsg);
    if (r->rc < 0)
        return;
    printf("  load share / weight share: min %.4f max %.4f; load / best feasible: min %.4f "
           "max %.4f\n", r->ratio_min, r->ratio_max, r->best_ratio_min, r->best_ratio_max);
    printf("  max deviation from best: %.2f slots, %.2f primaries; empty slots %" PRIu64
           ", PGs below pg_minsize %u\n", r->slot_dev_max, r->primary_dev_max, r->empty_slots,
           r->pgs_below_minsize);
    printf("  moved members %" PRIu64 " (lower bound %" PRIu64 ") in %u PGs, primary changes "
           "%u\n", r->moved_members, r->moved_min, r->moved_pgs, r->primary_changes);
    printf("  LP: %u rows, %u columns, %u round(s); repaired %u\n", r->lp_rows, r->lp_cols,
           r->lp_rounds, r->repaired);
    printf("  %8s %10s %4s %7s %9s %9s %9s %9s\n", "osd", "weight", "up", "slots", "ideal",
           "best", "primaries", "ideal");
    for (uint32_t i = 0; i < r->osd_count; i++) {
        const struct vs_placement_osd_load *l = &r->osds[i];
        printf("  %8u %10.3f %4s %7u %9.2f %9.2f %9u %9.2f\n", l->osd, l->weight,
               l->up ? "yes" : "no", l->slots, l->ideal, l->best, l->primaries,
               l->primary_ideal);
    }
}

static void print_map(const struct vs_pgmap *map)
{
    for (uint32_t i = 0; i < map->pool_count; i++) {
        const struct vs_pgmap_pool *pp = &map->pools[i];
        for (uint32_t pg = 0; pg < pp->pg_count; pg++) {
            const uint32_t *set = vs_pgmap_osd_set(pp, pg);
            printf("%u.%x [", pp->pool_id, pg);
            for (uint32_t r = 0; r < pp->pg_size; r++)
                printf("%s%u", r ? ", " : "", set[r]);
            printf("] primary %u", pp->pgs[pg].primary);
            if (pp->pgs[pg].history_count)
                printf(" (%u earlier sets)", pp->pgs[pg].history_count);
            printf("\n");
        }
    }
}

static int print_json(const struct vs_pgmap *map, const struct vs_placement_report *report)
{
    json_t *j = json_object();
    json_object_set_new(j, "pgs", vs_pgmap_to_json(map));
    json_object_set_new(j, "report", vs_placement_report_to_json(report));
    char *s = json_dumps(j, JSON_INDENT(1) | JSON_COMPACT);
    json_decref(j);
    if (!s)
        return -ENOMEM;
    printf("%s\n", s);
    free(s);
    return 0;
}

static int write_out(struct vs_cmd_ctx *ctx, const char *path, const struct vs_pgmap *map)
{
    char *s = vs_pgmap_dump(map);
    FILE *f = s ? fopen(path, "w") : NULL;
    bool ok = f && fputs(s, f) >= 0 && fputc('\n', f) != EOF;
    if (f && fclose(f) != 0)
        ok = false;
    free(s);
    if (!ok)
        vs_cmd_error(ctx, "%s: cannot write the map: %s", path, strerror(errno));
    return ok ? 0 : -EIO;
}

static void report_results(struct vs_cmd_ctx *ctx, const struct sim_inputs *in,
                           const struct vs_pgmap *map, const struct vs_placement_report *report)
{
    if (vs_cmd_flag(ctx, "json")) {
        print_json(map, report);
        return;
    }
    for (uint32_t i = 0; i < report->pool_count; i++)
        print_pool(vs_placement_pools_find(in->pools, report->pools[i].pool_id),
                   &report->pools[i]);
    printf("solve time: %.3f ms\n", (double)report->solve_ns / 1e6);
    if (!vs_cmd_flag(ctx, "summary"))
        print_map(map);
}

int vs_cmd_placement_simulate(struct vs_cmd_ctx *ctx)
{
    struct sim_inputs in = {0};
    uint64_t seed = 0;
    int exit_code = vs_cmd_opt_u64(ctx, "seed", &seed) < 0 ? VS_EXIT_USAGE : 0;
    if (exit_code == 0)
        exit_code = load_inputs(ctx, &in);
    struct vs_pgmap *map = NULL;
    struct vs_placement_report *report = NULL;
    if (exit_code == 0) {
        struct vs_placement_opts opts = {.seed = seed, .now_ns = clock_ns};
        char errmsg[VS_ERRMSG_SIZE];
        int rc = vs_placement_solve(in.tree, in.pools, in.prev, &opts, &map, &report, errmsg,
                                    sizeof(errmsg));
        if (rc < 0)
            vs_cmd_error(ctx, "%s", errmsg);
        exit_code = rc == 0 ? VS_EXIT_OK : VS_EXIT_FAIL;
        if (map && vs_cmd_opt(ctx, "out") && write_out(ctx, vs_cmd_opt(ctx, "out"), map) < 0)
            exit_code = VS_EXIT_FAIL;
        if (map)
            report_results(ctx, &in, map, report);
    }
    vs_pgmap_free(map);
    vs_placement_report_free(report);
    vs_placement_tree_free(in.tree);
    vs_placement_pools_free(in.pools);
    vs_pgmap_free(in.prev);
    return exit_code;
}
