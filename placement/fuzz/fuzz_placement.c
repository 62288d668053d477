/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: placement documents. The input is one JSON object
 * {"tree": ..., "pools": ..., "prev": ...}; each part goes through its codec,
 * which must reject or accept any bytes without crashing. When tree and pools
 * are accepted (and small enough to stay fast), the solver runs, and its map
 * must satisfy the map invariants and survive a write/read round trip.
 */
#include "vs_err.h"
#include "vs_placement.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_map(const struct vs_pgmap *map)
{
    char *text = vs_pgmap_dump(map), err[256];
    struct vs_pgmap *again = NULL;
    if (!text || vs_pgmap_parse(text, strlen(text), &again, err, sizeof(err)) != 0)
        abort(); /* what we write, we must read back */
    char *text2 = vs_pgmap_dump(again);
    if (!text2 || strcmp(text, text2) != 0)
        abort();
    free(text), free(text2);
    vs_pgmap_free(again);
}

static bool small(const struct vs_placement_tree *tree, const struct vs_placement_pools *pools)
{
    uint64_t cells = 0;
    for (uint32_t i = 0; i < pools->count; i++)
        cells += (uint64_t)pools->pools[i].pg_count * pools->pools[i].pg_size;
    return vs_placement_tree_osd_count(tree) <= 256 && cells <= 8192;
}

static void solve(json_t *doc)
{
    struct vs_placement_tree *tree = NULL;
    struct vs_placement_pools *pools = NULL;
    struct vs_pgmap *prev = NULL, *map = NULL;
    struct vs_placement_report *report = NULL;
    char err[256];
    json_t *p = json_object_get(doc, "prev");
    if (p && vs_pgmap_from_json(p, &prev, err, sizeof(err)) == 0)
        check_map(prev);
    if (vs_placement_tree_from_json(json_object_get(doc, "tree"), &tree, err, sizeof(err)) ||
        vs_placement_pools_from_json(json_object_get(doc, "pools"), &pools, err, sizeof(err)) ||
        !small(tree, pools))
        goto out;
    struct vs_placement_opts opts = {.seed = 1};
    int rc = vs_placement_solve(tree, pools, prev, &opts, &map, &report, err, sizeof(err));
    if (rc != 0 && rc != VS_EINFEASIBLE)
        abort(); /* valid documents never fail otherwise (no ENOMEM here) */
    check_map(map);
    json_decref(vs_placement_report_to_json(report));
out:
    vs_pgmap_free(map), vs_pgmap_free(prev);
    vs_placement_report_free(report);
    vs_placement_tree_free(tree), vs_placement_pools_free(pools);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        char err[256];
        struct vs_placement_tree *tree = NULL;
        if (vs_placement_tree_parse((const char *)data, size, &tree, err, sizeof(err)) == 0)
            vs_placement_tree_free(tree);
        json_decref(doc);
        return 0;
    }
    solve(doc);
    json_decref(doc);
    return 0;
}
