/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_bench.c -- what one monitor plan costs on a larger cluster, so the
 * debounce (mon_change_delay) and the "read everything, plan from scratch"
 * design can be judged: HOSTS hosts x OSDS_PER_HOST OSDs, one replicated pool
 * of PGS PGs (size 3), every PG reporting clean. Measures, as medians of
 * REPEAT runs, in CPU time (vs_mon_plan only, no I/O):
 *   - the first placement (inputs changed: the solve runs),
 *   - an OSD going down (the solve runs from the previous map),
 *   - a quiet plan after a PG state change (no solve: the common case).
 * Not a ctest test (a benchmark, never a timed test):
 *   build/release/vstor/mon/monitor_bench [HOSTS OSDS_PER_HOST PGS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_store.h"
#include "vs_placement.h"

#define REPEAT 5

static struct vs_meta_kv kvs[FS_MAX];
static const struct vs_mon_plan_opts OPTS = {.seed = 1};

/* CPU time of this process: the machine is shared, wall time would measure the others. */
static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One plan, applied; returns its duration in ms. */
static double plan_once(struct fake_store *s, bool *solved)
{
    unsigned n = fs_select(s, vs_mon_read_keys, kvs, FS_MAX);
    struct vs_mon_plan plan;
    double t0 = now_ms();
    if (vs_mon_plan(kvs, n, &OPTS, &plan) != 0)
        abort();
    double t = now_ms() - t0;
    *solved = plan.solved;
    struct vs_meta_txn txn;
    vs_mon_txn_view(&plan.txn, &txn);
    fs_txn(s, &txn);
    vs_mon_plan_free(&plan);
    return t;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void build(struct fake_store *s, unsigned hosts, unsigned per_host, unsigned pgs)
{
    fs_init(s);
    for (unsigned h = 0; h < hosts; h++)
        for (unsigned i = 0; i < per_host; i++) {
            char key[64];
            snprintf(key, sizeof(key), "osd/state/%u", h * per_host + i + 1);
            fs_putf(s, key, "{\"host\":\"host%u\",\"size_bytes\":%llu}", h,
                    (unsigned long long)(1000000000000ull + 1000000000ull * i));
        }
    fs_putf(s, "config/pools",
            "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":3,"
            "\"pg_minsize\":2,\"pg_count\":%u}}",
            pgs);
}

static void report_all_clean(struct fake_store *s)
{
    const struct fs_kv *kv = fs_get(s, "config/pgs");
    struct vs_pgmap *map = NULL;
    if (!kv || vs_pgmap_parse(kv->value, strlen(kv->value), &map, NULL, 0) != 0)
        abort();
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < pp->pg_count; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(pp, pg);
        char key[64];
        snprintf(key, sizeof(key), "pg/state/1/%u", pg);
        fs_putf(s, key, "{\"primary\":%u,\"state\":[\"active\"],\"peers\":[%u,%u,%u]}",
                pp->pgs[pg].primary, set[0], set[1], set[2]);
    }
    vs_pgmap_free(map);
}

int main(int argc, char **argv)
{
    unsigned hosts = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 25;
    unsigned per_host = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 4;
    unsigned pgs = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 2048;
    if (hosts * per_host + pgs + 16 > FS_MAX) {
        fprintf(stderr, "too many keys for the fake store (max %d)\n", FS_MAX);
        return 2;
    }
    double first[REPEAT], down[REPEAT], quiet[REPEAT];
    for (int r = 0; r < REPEAT; r++) {
        struct fake_store *s = malloc(sizeof(*s));
        bool solved;
        build(s, hosts, per_host, pgs);
        first[r] = plan_once(s, &solved);
        report_all_clean(s);
        plan_once(s, &solved); /* last_clean */
        fs_put(s, "pg/state/1/0", "{\"primary\":1,\"state\":[\"peering\"],\"peers\":[]}");
        quiet[r] = plan_once(s, &solved);
        if (solved)
            abort();
        fs_del(s, "osd/state/1");
        down[r] = plan_once(s, &solved);
        fs_free(s);
        free(s);
    }
    qsort(first, REPEAT, sizeof(double), cmp_d);
    qsort(down, REPEAT, sizeof(double), cmp_d);
    qsort(quiet, REPEAT, sizeof(double), cmp_d);
    printf("monitor plan CPU time, %u OSDs in %u hosts, %u PGs (size 3), medians of %d:\n",
           hosts * per_host, hosts, pgs, REPEAT);
    printf("  first placement     %8.1f ms\n", first[REPEAT / 2]);
    printf("  an OSD goes down    %8.1f ms\n", down[REPEAT / 2]);
    printf("  a PG state changes  %8.1f ms (no solve)\n", quiet[REPEAT / 2]);
    return 0;
}
