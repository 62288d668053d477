/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_bench.c -- the figures of the placement issue, measured: load
 * uniformity with equal and random weights, data moved when one OSD is added
 * or removed, and solve time, for replicated (pg_size 3) and EC 4+2 pools.
 * Prints a Markdown table (docs/performance.md). Not a test: run it by hand,
 * on a release build:
 *
 *     make release && build/release/placement/placement_bench [runs]
 *
 * `runs` (default 5) is how many times each timed solve repeats; the table
 * shows the median.
 */
#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_placement.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng;

static double uniform(double lo, double hi)
{
    uint64_t x = (rng += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    x ^= x >> 31;
    return lo + (hi - lo) * (double)(x >> 11) / 9007199254740992.0;
}

/* hosts x per_host OSDs (ids from 1), racks r0.. when racks > 0; weights 1,
 * or uniform in [1, 8] when random_weights. */
static json_t *make_tree(uint32_t hosts, uint32_t per_host, uint32_t racks, bool random_weights)
{
    json_t *nodes = json_object(), *osds = json_object();
    char name[32], id[16];
    for (uint32_t r = 0; r < racks; r++) {
        snprintf(name, sizeof(name), "r%u", r);
        json_object_set_new(nodes, name, json_pack("{ss}", "level", "rack"));
    }
    for (uint32_t h = 0, next = 1; h < hosts; h++) {
        snprintf(name, sizeof(name), "h%u", h);
        json_t *node = json_pack("{ss}", "level", "host");
        if (racks) {
            char rack[16];
            snprintf(rack, sizeof(rack), "r%u", h % racks);
            json_object_set_new(node, "parent", json_string(rack));
        }
        json_object_set_new(nodes, name, node);
        for (uint32_t i = 0; i < per_host; i++, next++) {
            snprintf(id, sizeof(id), "%u", next);
            double w = random_weights ? uniform(1, 8) : 1.0;
            json_object_set_new(osds, id, json_pack("{sssf}", "parent", name, "weight", w));
        }
    }
    return json_pack("{soso}", "nodes", nodes, "osds", osds);
}

static struct vs_placement_pools *make_pools(bool ec, uint32_t pg_count)
{
    char text[256];
    snprintf(text, sizeof(text),
             ec ? "{\"1\":{\"name\":\"ec\",\"scheme\":\"ec\",\"pg_size\":6,\"parity_chunks\":2,"
                  "\"pg_minsize\":5,\"pg_count\":%u}}"
                : "{\"1\":{\"name\":\"rep\",\"scheme\":\"replicated\",\"pg_size\":3,"
                  "\"pg_minsize\":2,\"pg_count\":%u}}",
             pg_count);
    struct vs_placement_pools *pools;
    char err[256];
    if (vs_placement_pools_parse(text, strlen(text), &pools, err, sizeof(err)) < 0) {
        fprintf(stderr, "pools: %s\n", err);
        exit(1);
    }
    return pools;
}

struct run {
    struct vs_pgmap *map;
    struct vs_placement_report *report;
    double ms;
};

static uint64_t now_ns(void *ctx)
{
    (void)ctx;
    return vs_clock_mono_ns();
}

static struct run solve(const json_t *tree_json, const struct vs_placement_pools *pools,
                        const struct vs_pgmap *prev)
{
    struct vs_placement_tree *tree;
    char err[256];
    if (vs_placement_tree_from_json(tree_json, &tree, err, sizeof(err)) < 0) {
        fprintf(stderr, "tree: %s\n", err);
        exit(1);
    }
    struct vs_placement_opts opts = {.now_ns = now_ns};
    struct run r = {0};
    if (vs_placement_solve(tree, pools, prev, &opts, &r.map, &r.report, err, sizeof(err)) < 0) {
        fprintf(stderr, "solve: %s\n", err);
        exit(1);
    }
    r.ms = (double)r.report->solve_ns / 1e6;
    vs_placement_tree_free(tree);
    return r;
}

static void run_free(struct run *r)
{
    vs_pgmap_free(r->map);
    vs_placement_report_free(r->report);
}

static const struct vs_placement_pool_report *rep(const struct run *r)
{
    return &r->report->pools[0];
}

/* ---- Scenarios ---- */

struct shape {
    bool ec;
    uint32_t hosts, per_host; /* the 12-OSD tree */
};

static void add_osd(json_t *tree, uint32_t id, const char *host, bool new_host)
{
    char key[16];
    if (new_host)
        json_object_set_new(json_object_get(tree, "nodes"), host, json_pack("{ss}", "level",
                                                                            "host"));
    snprintf(key, sizeof(key), "%u", id);
    json_object_set_new(json_object_get(tree, "osds"), key,
                        json_pack("{sssf}", "parent", host, "weight", 1.0));
}

/* Load uniformity with equal weights: slots / ideal share. */
static void row_equal(const struct shape *s, char *out, size_t size)
{
    json_t *tree = make_tree(s->hosts, s->per_host, 0, false);
    struct vs_placement_pools *pools = make_pools(s->ec, 256);
    struct run r = solve(tree, pools, NULL);
    snprintf(out, size, "%.4f–%.4f (max %.2f slot off)", rep(&r)->ratio_min, rep(&r)->ratio_max,
             rep(&r)->slot_dev_max);
    run_free(&r);
    vs_placement_pools_free(pools);
    json_decref(tree);
}

/* Random weights in [1, 8] over `trees` trees: worst slots / best share,
 * worst distance in slots, and the weight-share ratio CRUSH is quoted with. */
static void row_random(const struct shape *s, uint32_t trees, char *best, char *share,
                       char *prim, size_t size)
{
    double bmin = 1e9, bmax = 0, smin = 1e9, smax = 0, dev = 0, pdev = 0;
    struct vs_placement_pools *pools = make_pools(s->ec, 256);
    for (uint32_t t = 0; t < trees; t++) {
        rng = 1000 + t;
        json_t *tree = make_tree(s->hosts, s->per_host, 0, true);
        struct run r = solve(tree, pools, NULL);
        bmin = fmin(bmin, rep(&r)->best_ratio_min), bmax = fmax(bmax, rep(&r)->best_ratio_max);
        smin = fmin(smin, rep(&r)->ratio_min), smax = fmax(smax, rep(&r)->ratio_max);
        dev = fmax(dev, rep(&r)->slot_dev_max);
        pdev = fmax(pdev, rep(&r)->primary_dev_max);
        run_free(&r);
        json_decref(tree);
    }
    snprintf(best, size, "%.3f–%.3f (max %.2f slot off)", bmin, bmax, dev);
    snprintf(share, size, "%.2f×–%.2f×", smin, smax);
    snprintf(prim, size, "%.2f", pdev);
    vs_placement_pools_free(pools);
}

/* A 13th OSD: moved members / the new OSD's share (its theoretical minimum). */
static void row_add(const struct shape *s, bool new_host, char *out, size_t size)
{
    json_t *tree = make_tree(s->hosts, s->per_host, 0, false);
    struct vs_placement_pools *pools = make_pools(s->ec, 256);
    struct run a = solve(tree, pools, NULL);
    add_osd(tree, s->hosts * s->per_host + 1, new_host ? "hnew" : "h0", new_host);
    struct run b = solve(tree, pools, a.map);
    const struct vs_placement_pool_report *r = rep(&b);
    const struct vs_placement_osd_load *n = &r->osds[r->osd_count - 1];
    snprintf(out, size, "%llu / %.2f = %.3f", (unsigned long long)r->moved_members, n->best,
             (double)r->moved_members / n->best);
    run_free(&a), run_free(&b);
    vs_placement_pools_free(pools);
    json_decref(tree);
}

/* Removing each OSD in turn: worst moved / the members it held. */
static void row_remove(const struct shape *s, char *out, size_t size)
{
    json_t *tree = make_tree(s->hosts, s->per_host, 0, false);
    struct vs_placement_pools *pools = make_pools(s->ec, 256);
    struct run a = solve(tree, pools, NULL);
    double worst = 0, sum = 0;
    uint32_t n = s->hosts * s->per_host;
    for (uint32_t id = 1; id <= n; id++) {
        char key[16];
        snprintf(key, sizeof(key), "%u", id);
        json_t *copy = json_deep_copy(tree);
        json_object_del(json_object_get(copy, "osds"), key);
        struct run b = solve(copy, pools, a.map);
        double ratio = (double)rep(&b)->moved_members / a.report->pools[0].osds[id - 1].slots;
        worst = fmax(worst, ratio), sum += ratio;
        run_free(&b);
        json_decref(copy);
    }
    snprintf(out, size, "worst %.3f, mean %.3f", worst, sum / n);
    run_free(&a);
    vs_placement_pools_free(pools);
    json_decref(tree);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Peers of each OSD (OSDs sharing a PG with it) in a fresh map: how widely
 * recovery of a failed OSD spreads. "min / mean of max possible". */
static void row_peers(bool ec, uint32_t hosts, uint32_t per_host, uint32_t racks,
                      uint32_t pg_count, char *out, size_t size)
{
    json_t *tree = make_tree(hosts, per_host, racks, false);
    struct vs_placement_pools *pools = make_pools(ec, pg_count);
    struct run r = solve(tree, pools, NULL);
    uint32_t n = hosts * per_host, min = UINT32_MAX;
    uint8_t *seen = calloc((size_t)(n + 1) * (n + 1), 1);
    const struct vs_pgmap_pool *pp = &r.map->pools[0];
    for (uint32_t pg = 0; pg < pp->pg_count; pg++)
        for (uint32_t i = 0; i < pp->pg_size; i++)
            for (uint32_t j = 0; j < pp->pg_size; j++)
                seen[(size_t)vs_pgmap_osd_set(pp, pg)[i] * (n + 1) + vs_pgmap_osd_set(pp, pg)[j]] =
                    i != j;
    double sum = 0;
    for (uint32_t a = 1; a <= n; a++) {
        uint32_t peers = 0;
        for (uint32_t b = 1; b <= n; b++)
            peers += seen[(size_t)a * (n + 1) + b];
        min = peers < min ? peers : min;
        sum += peers;
    }
    /* At most: the OSDs outside its host, or its slots times the others per PG. */
    uint32_t bound = VS_MIN(n - per_host, r.report->pools[0].osds[0].slots * (pp->pg_size - 1));
    snprintf(out, size, "%u / %.0f of at most %u", min, sum / n, bound);
    free(seen);
    run_free(&r);
    vs_placement_pools_free(pools);
    json_decref(tree);
}

/* Median solve time, fresh and after adding one OSD, in ms. */
static void row_time(bool ec, uint32_t hosts, uint32_t per_host, uint32_t racks,
                     uint32_t pg_count, uint32_t runs, char *out, size_t size)
{
    double fresh[64], change[64];
    json_t *tree = make_tree(hosts, per_host, racks, false);
    struct vs_placement_pools *pools = make_pools(ec, pg_count);
    json_t *grown = json_deep_copy(tree);
    add_osd(grown, hosts * per_host + 1, "h0", false);
    for (uint32_t i = 0; i < runs; i++) {
        struct run a = solve(tree, pools, NULL);
        struct run b = solve(grown, pools, a.map);
        fresh[i] = a.ms, change[i] = b.ms;
        run_free(&a), run_free(&b);
    }
    qsort(fresh, runs, sizeof(double), cmp_double);
    qsort(change, runs, sizeof(double), cmp_double);
    snprintf(out, size, "%.0f ms / %.0f ms", fresh[runs / 2], change[runs / 2]);
    vs_placement_pools_free(pools);
    json_decref(tree), json_decref(grown);
}

/* Every OSD's weight redrawn in [1, 8]: the largest change there is. */
static void row_reweight_all(bool ec, uint32_t hosts, uint32_t per_host, uint32_t racks,
                             uint32_t pg_count, char *out, size_t size)
{
    json_t *tree = make_tree(hosts, per_host, racks, false);
    struct vs_placement_pools *pools = make_pools(ec, pg_count);
    struct run a = solve(tree, pools, NULL);
    const char *key;
    json_t *osd;
    rng = 77;
    json_object_foreach(json_object_get(tree, "osds"), key, osd)
        json_object_set_new(osd, "weight", json_real(uniform(1, 8)));
    struct run b = solve(tree, pools, a.map);
    snprintf(out, size, "%llu / %llu in %.0f ms",
             (unsigned long long)rep(&b)->moved_members, (unsigned long long)rep(&b)->moved_min,
             b.ms);
    run_free(&a), run_free(&b);
    vs_placement_pools_free(pools);
    json_decref(tree);
}

int main(int argc, char **argv)
{
    uint32_t runs = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 5;
    if (runs < 1 || runs > 64)
        runs = 5;
    static const struct shape rep_shape = {false, 4, 3}, ec_shape = {true, 12, 1};
    char c[2][12][160];
    for (int i = 0; i < 2; i++) {
        const struct shape *s = i ? &ec_shape : &rep_shape;
        row_equal(s, c[i][0], sizeof(c[i][0]));
        row_random(s, 20, c[i][1], c[i][2], c[i][3], sizeof(c[i][1]));
        row_add(s, false, c[i][4], sizeof(c[i][4]));
        row_add(s, true, c[i][5], sizeof(c[i][5]));
        row_remove(s, c[i][6], sizeof(c[i][6]));
    }
    row_time(false, 16, 4, 0, 2048, runs, c[0][7], sizeof(c[0][7]));
    row_time(false, 64, 8, 8, 16384, runs, c[0][8], sizeof(c[0][8]));
    row_time(true, 12, 6, 0, 2048, runs, c[1][7], sizeof(c[1][7]));
    row_time(true, 12, 43, 0, 16384, runs, c[1][8], sizeof(c[1][8]));
    row_reweight_all(false, 64, 8, 8, 16384, c[0][9], sizeof(c[0][9]));
    row_reweight_all(true, 12, 43, 0, 16384, c[1][9], sizeof(c[1][9]));
    row_peers(false, 64, 8, 8, 16384, c[0][10], sizeof(c[0][10]));
    row_peers(true, 12, 43, 0, 16384, c[1][10], sizeof(c[1][10]));
    static const char *const figures[][3] = {
        {"equal weights, 256 PGs: load / ideal, min–max", "±2 % or ±1 slot", "0.83×–1.27×"},
        {"random weights 1–8 (20 trees): load / best feasible", "±3 % (or ±1 slot)", "—"},
        {"random weights: load share / weight share", "—", "0.81×–1.47×"},
        {"random weights: primaries, max distance from fair share", "even", "—"},
        {"add a 13th OSD to host 0: moved / its share", "≤ 1.1", "1.79×"},
        {"add a 13th OSD in a new host: moved / its share", "≤ 1.1", "—"},
        {"remove one OSD (each in turn): moved / its members", "≤ 1.1", "—"},
        {"solve, 64 OSDs (EC: 72), 2,048 PGs: fresh / add one", "≤ 1 s", "—"},
        {"solve, 512 OSDs (EC: 516), 16,384 PGs: fresh / add one", "≤ 10 s", "—"},
        {"same trees, every weight redrawn 1–8: moved / lower bound, time", "—", "—"},
        {"same trees, fresh: peers per OSD, min / mean", "—", "—"},
    };
    printf("| figure | target | replicated, pg_size 3 | EC 4+2 | CRUSH (issue) |\n");
    printf("|---|---|---|---|---|\n");
    for (int f = 0; f < 11; f++)
        printf("| %s | %s | %s | %s | %s |\n", figures[f][0], figures[f][1], c[0][f], c[1][f],
               figures[f][2]);
    printf("\nreplicated: 12 OSDs in 4 hosts; EC 4+2: 12 hosts of 1 OSD. Timed trees: "
           "16 hosts x 4 and 64 hosts x 8 in 8 racks (EC: 12 hosts x 6 and x 43); "
           "median of %u runs.\n", runs);
    return 0;
}
