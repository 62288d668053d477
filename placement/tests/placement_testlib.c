/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Helpers shared by the placement tests (see placement_testlib.h). */
#include "placement_testlib.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *tl_tree(uint32_t hosts, uint32_t per_host, double w, uint32_t racks)
{
    json_t *nodes = json_object(), *osds = json_object();
    char name[32], id[16];
    for (uint32_t r = 0; r < racks; r++) {
        snprintf(name, sizeof(name), "r%u", r);
        json_object_set_new(nodes, name, json_pack("{ss}", "level", "rack"));
    }
    uint32_t next = 1;
    for (uint32_t h = 0; h < hosts; h++) {
        snprintf(name, sizeof(name), "h%u", h);
        json_t *node = json_pack("{ss}", "level", "host");
        if (racks) {
            char rack[16];
            snprintf(rack, sizeof(rack), "r%u", h % racks);
            json_object_set_new(node, "parent", json_string(rack));
        }
        json_object_set_new(nodes, name, node);
        for (uint32_t i = 0; i < per_host; i++) {
            snprintf(id, sizeof(id), "%u", next++);
            json_object_set_new(osds, id, json_pack("{sssf}", "parent", name, "weight", w));
        }
    }
    return json_pack("{soso}", "nodes", nodes, "osds", osds);
}

void tl_add_osd(json_t *tree, uint32_t id, const char *parent, double weight)
{
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    json_t *osd = json_pack("{sf}", "weight", weight);
    if (parent)
        json_object_set_new(osd, "parent", json_string(parent));
    json_object_set_new(json_object_get(tree, "osds"), key, osd);
}

json_t *tl_osd(json_t *tree, uint32_t id)
{
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    return json_object_get(json_object_get(tree, "osds"), key);
}

json_t *tl_pool(const char *scheme, uint32_t pg_size, uint32_t parity, uint32_t minsize,
                uint32_t pg_count)
{
    json_t *p = json_pack("{ss ss si si si}", "name", "p1", "scheme", scheme, "pg_size",
                          (int)pg_size, "pg_minsize", (int)minsize, "pg_count", (int)pg_count);
    if (parity)
        json_object_set_new(p, "parity_chunks", json_integer(parity));
    return p;
}

json_t *tl_pools1(json_t *pool)
{
    return json_pack("{so}", "1", pool);
}

void tl_solve(const json_t *tree, const json_t *pools, const struct vs_pgmap *prev, uint64_t seed,
              struct tl_result *out)
{
    struct vs_placement_tree *t = NULL;
    struct vs_placement_pools *p = NULL;
    char err[256] = "";
    memset(out, 0, sizeof(*out));
    int rc = vs_placement_tree_from_json(tree, &t, err, sizeof(err));
    if (rc < 0)
        fail_msg("tree: %s", err);
    rc = vs_placement_pools_from_json(pools, &p, err, sizeof(err));
    if (rc < 0)
        fail_msg("pools: %s", err);
    struct vs_placement_opts opts = {.seed = seed};
    out->rc = vs_placement_solve(t, p, prev, &opts, &out->map, &out->report, out->errmsg,
                                 sizeof(out->errmsg));
    vs_placement_tree_free(t);
    vs_placement_pools_free(p);
}

void tl_result_free(struct tl_result *r)
{
    vs_pgmap_free(r->map);
    vs_placement_report_free(r->report);
    memset(r, 0, sizeof(*r));
}

const struct vs_placement_pool_report *tl_rep(const struct tl_result *r, uint16_t pool)
{
    assert_non_null(r->report);
    const struct vs_placement_pool_report *rep = vs_placement_report_find(r->report, pool);
    assert_non_null(rep);
    return rep;
}

static int level_index(const json_t *tree, const char *level)
{
    static const char *const def[] = {"root", "dc", "rack", "host", "osd"};
    json_t *levels = json_object_get(tree, "levels");
    size_t n = levels ? json_array_size(levels) : 5;
    for (size_t i = 0; i < n; i++) {
        const char *name = levels ? json_string_value(json_array_get(levels, i)) : def[i];
        if (strcmp(name, level) == 0)
            return (int)i;
    }
    fail_msg("no level %s", level);
    return -1;
}

/* The ancestor at `level`; else the highest ancestor below it; else NULL. */
static const char *domain_of(const json_t *tree, const char *node, const char *level)
{
    json_t *nodes = json_object_get(tree, "nodes");
    int want = level_index(tree, level);
    const char *below = NULL;
    while (node) {
        json_t *n = json_object_get(nodes, node);
        assert_non_null(n);
        int at = level_index(tree, json_string_value(json_object_get(n, "level")));
        if (at == want)
            return node;
        if (at < want)
            break;
        below = node;
        node = json_string_value(json_object_get(n, "parent"));
    }
    return below;
}

const char *tl_domain(const json_t *tree, uint32_t osd, const char *level, char *buf,
                      size_t size)
{
    json_t *o = tl_osd((json_t *)tree, osd);
    assert_non_null(o);
    const char *a = strcmp(level, "osd") == 0
                        ? NULL
                        : domain_of(tree, json_string_value(json_object_get(o, "parent")), level);
    if (a)
        return a;
    snprintf(buf, size, "osd.%u", osd);
    return buf;
}

uint64_t tl_check_domains(const json_t *tree, const struct vs_pgmap_pool *pp, const char *level)
{
    uint64_t members = 0;
    for (uint32_t pg = 0; pg < pp->pg_count; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(pp, pg);
        char names[VS_PLACEMENT_PG_SIZE_MAX][300];
        for (uint32_t i = 0; i < pp->pg_size; i++) {
            names[i][0] = 0;
            if (!set[i])
                continue;
            members++;
            char buf[32];
            snprintf(names[i], sizeof(names[i]), "%s", tl_domain(tree, set[i], level, buf,
                                                                  sizeof(buf)));
            for (uint32_t j = 0; j < i; j++) {
                if (set[j] == set[i])
                    fail_msg("pg %u: OSD %u twice", pg, set[i]);
                if (set[j] && strcmp(names[i], names[j]) == 0)
                    fail_msg("pg %u: OSDs %u and %u share %s %s", pg, set[j], set[i], level,
                             names[i]);
            }
        }
    }
    return members;
}

uint32_t *tl_slots(const struct vs_pgmap_pool *pp, uint32_t max_id)
{
    uint32_t *slots = calloc(max_id + 1, sizeof(uint32_t));
    assert_non_null(slots);
    for (uint32_t pg = 0; pg < pp->pg_count; pg++)
        for (uint32_t i = 0; i < pp->pg_size; i++) {
            uint32_t id = vs_pgmap_osd_set(pp, pg)[i];
            assert_true(id <= max_id);
            slots[id] += id != 0;
        }
    return slots;
}

uint32_t tl_moved(const struct vs_pgmap_pool *a, const struct vs_pgmap_pool *b, bool ec)
{
    uint32_t moved = 0;
    assert_int_equal(a->pg_count, b->pg_count);
    for (uint32_t pg = 0; pg < a->pg_count; pg++) {
        const uint32_t *x = vs_pgmap_osd_set(a, pg), *y = vs_pgmap_osd_set(b, pg);
        for (uint32_t i = 0; i < b->pg_size; i++) {
            bool found = !y[i];
            for (uint32_t j = 0; j < a->pg_size && !found; j++)
                found = (!ec || i == j) && x[j] == y[i];
            moved += !found;
        }
    }
    return moved;
}
