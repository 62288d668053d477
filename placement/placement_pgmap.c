/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_pgmap.c -- the PG map (config/pgs): per pool and PG the ordered
 * OSD set, the primary, the history of earlier sets, and optionally the last
 * clean layout; its strict JSON codec and the two edits the monitor makes.
 *
 * Invariants of a parsed or computed map:
 *  (1) every set has exactly pg_size slots; OSD ids >= 1, 0 = empty slot;
 *  (2) no OSD appears twice in one set;
 *  (3) the primary is 0 or one of the set's OSDs;
 *  (4) pools are sorted by id.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PL_HISTORY_MAX 256u /* earlier sets kept per PG */

static void pool_clear(struct vs_pgmap_pool *pp)
{
    for (uint32_t i = 0; pp->pgs && i < pp->pg_count; i++)
        free(pp->pgs[i].history);
    free(pp->pgs);
    free(pp->osd_sets);
    free(pp->last_clean);
}

void vs_pgmap_free(struct vs_pgmap *map)
{
    if (!map)
        return;
    for (uint32_t i = 0; map->pools && i < map->pool_count; i++)
        pool_clear(&map->pools[i]);
    free(map->pools);
    free(map);
}

const struct vs_pgmap_pool *vs_pgmap_find(const struct vs_pgmap *map, uint16_t pool_id)
{
    for (uint32_t i = 0; map && i < map->pool_count; i++)
        if (map->pools[i].pool_id == pool_id)
            return &map->pools[i];
    return NULL;
}

const uint32_t *vs_pgmap_osd_set(const struct vs_pgmap_pool *pool, uint32_t pg)
{
    if (!pool || pg >= pool->pg_count)
        return NULL;
    return &pool->osd_sets[(size_t)pg * pool->pg_size];
}

int vs_pgmap_clear_history(struct vs_pgmap *map, uint16_t pool_id, uint32_t pg)
{
    struct vs_pgmap_pool *pp = (struct vs_pgmap_pool *)vs_pgmap_find(map, pool_id);
    if (!pp)
        return VS_ENOPOOL;
    if (pg >= pp->pg_count)
        return -ERANGE;
    free(pp->pgs[pg].history);
    pp->pgs[pg].history = NULL;
    pp->pgs[pg].history_count = 0;
    return 0;
}

int vs_pgmap_set_last_clean(struct vs_pgmap *map, uint16_t pool_id)
{
    struct vs_pgmap_pool *pp = (struct vs_pgmap_pool *)vs_pgmap_find(map, pool_id);
    if (!pp)
        return VS_ENOPOOL;
    size_t n = (size_t)pp->pg_count * pp->pg_size;
    if (!pp->last_clean && !(pp->last_clean = malloc(n * sizeof(uint32_t))))
        return -ENOMEM;
    memcpy(pp->last_clean, pp->osd_sets, n * sizeof(uint32_t));
    return 0;
}

/* ---- Parsing ---- */

static int parse_set(const json_t *v, const char *path, uint32_t size, uint32_t *out,
                     struct pl_err *err)
{
    if (!json_is_array(v) || json_array_size(v) != size)
        return placement__errf(err, "%s: must be an array of pg_size (%u) OSD ids", path, size);
    for (uint32_t i = 0; i < size; i++) {
        json_t *item = json_array_get(v, i);
        json_int_t id = json_is_integer(item) ? json_integer_value(item) : -1;
        if (id < 0 || id > (json_int_t)UINT32_MAX)
            return placement__errf(err, "%s[%u]: must be an OSD id (0 = empty slot)", path, i);
        out[i] = (uint32_t)id;
        for (uint32_t j = 0; j < i; j++)
            if (out[i] && out[j] == out[i])
                return placement__errf(err, "%s: OSD %u appears twice", path, out[i]);
    }
    return 0;
}

static int parse_history(const json_t *v, const char *path, uint32_t size,
                         struct vs_pgmap_pg *pg, struct pl_err *err)
{
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) > PL_HISTORY_MAX)
        return placement__errf(err, "%s: must be an array of at most %u earlier sets", path,
                               PL_HISTORY_MAX);
    uint32_t n = (uint32_t)json_array_size(v);
    if (n == 0)
        return 0;
    pg->history = calloc((size_t)n * size, sizeof(uint32_t));
    if (!pg->history)
        return -ENOMEM;
    pg->history_count = n;
    for (uint32_t i = 0; i < n; i++) {
        char sub[160];
        snprintf(sub, sizeof(sub), "%.120s[%u]", path, i);
        int rc = parse_set(json_array_get(v, i), sub, size, &pg->history[(size_t)i * size], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_pg(const json_t *v, const char *path, struct vs_pgmap_pool *pp, uint32_t p,
                    struct pl_err *err)
{
    static const char *const keys[] = {"osd_set", "primary", "pause", "history", NULL};
    char sub[160];
    uint32_t *set = &pp->osd_sets[(size_t)p * pp->pg_size];
    uint64_t primary = 0;
    int rc = placement__json_keys(v, path, keys, err);
    snprintf(sub, sizeof(sub), "%.120s.osd_set", path);
    if (rc == 0)
        rc = parse_set(json_object_get(v, "osd_set"), sub, pp->pg_size, set, err);
    if (rc == 0)
        rc = placement__json_u64(v, "primary", path, false, 0, UINT32_MAX, &primary, err);
    if (rc < 0)
        return rc;
    bool member = primary == 0;
    for (uint32_t i = 0; i < pp->pg_size && !member; i++)
        member = set[i] == primary;
    if (!member)
        return placement__errf(err, "%s.primary: OSD %u is not in the osd_set", path,
                               (uint32_t)primary);
    pp->pgs[p].primary = (uint32_t)primary;
    if ((rc = placement__json_bool(v, "pause", path, &pp->pgs[p].pause, err)) < 0)
        return rc;
    snprintf(sub, sizeof(sub), "%.120s.history", path);
    return parse_history(json_object_get(v, "history"), sub, pp->pg_size, &pp->pgs[p], err);
}

static int parse_last_clean(const json_t *v, const char *path, struct vs_pgmap_pool *pp,
                            struct pl_err *err)
{
    if (!v)
        return 0;
    if (!json_is_array(v) || json_array_size(v) != pp->pg_count)
        return placement__errf(err, "%s: must hold one set per PG (%u)", path, pp->pg_count);
    pp->last_clean = calloc((size_t)pp->pg_count * pp->pg_size, sizeof(uint32_t));
    if (!pp->last_clean)
        return -ENOMEM;
    for (uint32_t p = 0; p < pp->pg_count; p++) {
        char sub[160];
        snprintf(sub, sizeof(sub), "%.120s[%u]", path, p);
        int rc = parse_set(json_array_get(v, p), sub, pp->pg_size,
                           &pp->last_clean[(size_t)p * pp->pg_size], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_pool(struct vs_pgmap_pool *pp, const char *key, const json_t *v,
                      struct pl_err *err)
{
    static const char *const keys[] = {"pg_size", "pgs", "last_clean", NULL};
    char path[64];
    uint64_t id = 0, size = 0;
    int rc = placement__parse_key(key, "pgmap.pools", 1, UINT16_MAX, &id, err);
    snprintf(path, sizeof(path), "pgmap.pools.%.8s", key);
    if (rc == 0)
        rc = placement__json_keys(v, path, keys, err);
    if (rc == 0)
        rc = placement__json_u64(v, "pg_size", path, true, 1, VS_PLACEMENT_PG_SIZE_MAX, &size,
                                 err);
    json_t *pgs = json_object_get(v, "pgs");
    if (rc == 0 && (!json_is_array(pgs) || json_array_size(pgs) < 1 ||
                    json_array_size(pgs) > VS_PLACEMENT_PG_COUNT_MAX))
        rc = placement__errf(err, "%s.pgs: must be an array of 1..%u PGs", path,
                             VS_PLACEMENT_PG_COUNT_MAX);
    if (rc < 0)
        return rc;
    pp->pool_id = (uint16_t)id;
    pp->pg_size = (uint32_t)size;
    pp->pg_count = (uint32_t)json_array_size(pgs);
    pp->osd_sets = calloc((size_t)pp->pg_count * pp->pg_size, sizeof(uint32_t));
    pp->pgs = calloc(pp->pg_count, sizeof(*pp->pgs));
    if (!pp->osd_sets || !pp->pgs)
        return -ENOMEM;
    for (uint32_t p = 0; p < pp->pg_count; p++) {
        char sub[160];
        snprintf(sub, sizeof(sub), "%.120s.pgs[%u]", path, p);
        if ((rc = parse_pg(json_array_get(pgs, p), sub, pp, p, err)) < 0)
            return rc;
    }
    char sub[160];
    snprintf(sub, sizeof(sub), "%.120s.last_clean", path);
    return parse_last_clean(json_object_get(v, "last_clean"), sub, pp, err);
}

static int cmp_pool(const void *a, const void *b)
{
    uint16_t x = ((const struct vs_pgmap_pool *)a)->pool_id;
    uint16_t y = ((const struct vs_pgmap_pool *)b)->pool_id;
    return x < y ? -1 : x > y;
}

static int parse_map(struct vs_pgmap *map, const json_t *root, struct pl_err *err)
{
    static const char *const keys[] = {"format", "pools", NULL};
    uint64_t format = 0;
    int rc = placement__json_keys(root, "pgmap", keys, err);
    if (rc == 0)
        rc = placement__json_u64(root, "format", "pgmap", true, 0, UINT32_MAX, &format, err);
    if (rc == 0 && format != VS_PLACEMENT_FORMAT)
        rc = placement__errf(err, "pgmap.format: %u is not a format this vstor reads (%d)",
                             (uint32_t)format, VS_PLACEMENT_FORMAT);
    json_t *pools = json_object_get(root, "pools");
    if (rc == 0 && !json_is_object(pools))
        rc = placement__errf(err, "pgmap.pools: required: an object keyed by pool id");
    if (rc < 0)
        return rc;
    map->pools = calloc(json_object_size(pools) + 1, sizeof(*map->pools));
    if (!map->pools)
        return -ENOMEM;
    const char *key;
    json_t *v;
    json_object_foreach(pools, key, v) {
        if ((rc = parse_pool(&map->pools[map->pool_count++], key, v, err)) < 0)
            return rc;
    }
    qsort(map->pools, map->pool_count, sizeof(*map->pools), cmp_pool);
    return 0;
}

int vs_pgmap_from_json(const json_t *root, struct vs_pgmap **out, char *errmsg,
                       size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    struct vs_pgmap *map = calloc(1, sizeof(*map));
    if (!map)
        return -ENOMEM;
    int rc = parse_map(map, root, &err);
    if (rc < 0) {
        if (rc == -ENOMEM)
            placement__errf(&err, "pgmap: out of memory");
        vs_pgmap_free(map);
        return rc;
    }
    *out = map;
    return 0;
}

int vs_pgmap_parse(const char *text, size_t len, struct vs_pgmap **out, char *errmsg,
                   size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    json_t *root;
    int rc = placement__load_text(text, len, "pgmap", &root, &err);
    if (rc < 0)
        return rc;
    rc = vs_pgmap_from_json(root, out, errmsg, errmsg_size);
    json_decref(root);
    return rc;
}

/* ---- Encoding ---- */

static json_t *set_to_json(const uint32_t *set, uint32_t size)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < size; i++)
        json_array_append_new(a, json_integer(set[i]));
    return a;
}

static json_t *pg_to_json(const struct vs_pgmap_pool *pp, uint32_t p)
{
    const struct vs_pgmap_pg *pg = &pp->pgs[p];
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "osd_set", set_to_json(vs_pgmap_osd_set(pp, p), pp->pg_size));
    json_object_set_new(j, "primary", json_integer(pg->primary));
    if (pg->pause)
        json_object_set_new(j, "pause", json_true());
    if (pg->history_count) {
        json_t *h = json_array();
        for (uint32_t i = 0; h && i < pg->history_count; i++)
            json_array_append_new(h, set_to_json(&pg->history[(size_t)i * pp->pg_size],
                                                 pp->pg_size));
        json_object_set_new(j, "history", h);
    }
    return j;
}

static json_t *pool_to_json(const struct vs_pgmap_pool *pp)
{
    json_t *j = json_object(), *pgs = json_array();
    if (!j || !pgs) {
        json_decref(j), json_decref(pgs);
        return NULL;
    }
    json_object_set_new(j, "pg_size", json_integer(pp->pg_size));
    for (uint32_t p = 0; p < pp->pg_count; p++)
        json_array_append_new(pgs, pg_to_json(pp, p));
    json_object_set_new(j, "pgs", pgs);
    if (pp->last_clean) {
        json_t *lc = json_array();
        for (uint32_t p = 0; lc && p < pp->pg_count; p++)
            json_array_append_new(lc, set_to_json(&pp->last_clean[(size_t)p * pp->pg_size],
                                                  pp->pg_size));
        json_object_set_new(j, "last_clean", lc);
    }
    return j;
}

json_t *vs_pgmap_to_json(const struct vs_pgmap *map)
{
    json_t *root = json_object(), *pools = json_object();
    if (!root || !pools) {
        json_decref(root), json_decref(pools);
        return NULL;
    }
    json_object_set_new(root, "format", json_integer(VS_PLACEMENT_FORMAT));
    for (uint32_t i = 0; i < map->pool_count; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%u", map->pools[i].pool_id);
        json_object_set_new(pools, key, pool_to_json(&map->pools[i]));
    }
    json_object_set_new(root, "pools", pools);
    return root;
}

char *vs_pgmap_dump(const struct vs_pgmap *map)
{
    json_t *j = vs_pgmap_to_json(map);
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}
