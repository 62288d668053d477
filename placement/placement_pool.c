/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_pool.c -- pool configuration (config/pools): parsing, the rules
 * that make a pool valid on its own, and the canonical JSON encoding. Fields
 * follow Vitastor's pool configuration where they mean the same thing
 * (reference §5.5); level_placement / raw_placement rules are not supported.
 * Rules that depend on the tree (failure_domain, root_node) are checked when
 * solving, and reported against the pool.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void pool_clear(struct vs_placement_pool *p)
{
    free(p->name);
    free(p->failure_domain);
    free(p->root_node);
    placement__strlist_free(p->osd_tag_count, p->osd_tags);
    placement__strlist_free(p->primary_tag_count, p->primary_affinity_tags);
    free(p->immediate_commit);
    free(p->local_reads);
}

void vs_placement_pools_free(struct vs_placement_pools *pools)
{
    if (!pools)
        return;
    for (uint32_t i = 0; pools->pools && i < pools->count; i++)
        pool_clear(&pools->pools[i]);
    free(pools->pools);
    free(pools);
}

const struct vs_placement_pool *vs_placement_pools_find(const struct vs_placement_pools *pools,
                                                        uint16_t id)
{
    for (uint32_t i = 0; i < pools->count; i++)
        if (pools->pools[i].id == id)
            return &pools->pools[i];
    return NULL;
}

uint32_t vs_placement_pool_data_chunks(const struct vs_placement_pool *pool)
{
    return pool->scheme == VS_POOL_REPLICATED ? 1 : pool->pg_size - pool->parity_chunks;
}

static const char *const scheme_names[] = {"replicated", "xor", "ec"};

static int parse_scheme(const json_t *v, const char *path, struct vs_placement_pool *p,
                        struct pl_err *err)
{
    const char *s = json_string_value(json_object_get(v, "scheme"));
    if (!s)
        return placement__errf(err, "%s.scheme: required: \"replicated\", \"xor\" or \"ec\"",
                               path);
    for (unsigned i = 0; i < VS_ARRAY_SIZE(scheme_names); i++)
        if (strcmp(s, scheme_names[i]) == 0) {
            p->scheme = (enum vs_pool_scheme)i;
            return 0;
        }
    if (strcmp(s, "jerasure") == 0) { /* Vitastor's older name for ec */
        p->scheme = VS_POOL_EC;
        return 0;
    }
    return placement__errf(err, "%s.scheme: '%s' is not \"replicated\", \"xor\" or \"ec\"", path,
                           s);
}

static int parse_choice(const json_t *v, const char *key, const char *path,
                        const char *const *choices, char **out, struct pl_err *err)
{
    int rc = placement__json_str(v, key, path, false, out, err);
    if (rc < 0 || !*out)
        return rc;
    for (unsigned i = 0; choices[i]; i++)
        if (strcmp(*out, choices[i]) == 0)
            return 0;
    return placement__errf(err, "%s.%s: '%s' is not one of %s|%s|%s", path, key, *out,
                           choices[0], choices[1], choices[2]);
}

static bool pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

static int parse_sizes(const json_t *v, const char *path, struct vs_placement_pool *p,
                       struct pl_err *err)
{
    static const char *const commits[] = {"all", "small", "none", NULL};
    static const char *const reads[] = {"primary", "nearest", "random", NULL};
    int rc = placement__json_u64(v, "block_size", path, false, 4096, 1ull << 27, &p->block_size,
                                 err);
    if (rc == 0 && p->block_size && !pow2(p->block_size))
        rc = placement__errf(err, "%s.block_size: must be a power of two", path);
    if (rc == 0)
        rc = placement__json_u64(v, "bitmap_granularity", path, false, 512, 1ull << 27,
                                 &p->bitmap_granularity, err);
    if (rc == 0 && p->bitmap_granularity &&
        (!pow2(p->bitmap_granularity) ||
         (p->block_size && p->bitmap_granularity > p->block_size)))
        rc = placement__errf(err, "%s.bitmap_granularity: must be a power of two not above "
                             "block_size", path);
    if (rc == 0)
        rc = placement__json_u64(v, "pg_stripe_size", path, false, 0, 1ull << 40,
                                 &p->pg_stripe_size, err);
    if (rc == 0)
        rc = parse_choice(v, "immediate_commit", path, commits, &p->immediate_commit, err);
    if (rc == 0)
        rc = parse_choice(v, "local_reads", path, reads, &p->local_reads, err);
    return rc;
}

static int parse_counts(const json_t *v, const char *path, struct vs_placement_pool *p,
                        struct pl_err *err)
{
    uint64_t size = 0, parity = p->scheme == VS_POOL_XOR, minsize = 0, count = 0;
    int rc = placement__json_u64(v, "pg_size", path, true, 1, VS_PLACEMENT_PG_SIZE_MAX, &size,
                                 err);
    if (rc == 0)
        rc = placement__json_u64(v, "parity_chunks", path, p->scheme == VS_POOL_EC, 0,
                                 VS_PLACEMENT_PG_SIZE_MAX, &parity, err);
    if (rc == 0)
        rc = placement__json_u64(v, "pg_minsize", path, true, 1, VS_PLACEMENT_PG_SIZE_MAX,
                                 &minsize, err);
    if (rc == 0)
        rc = placement__json_u64(v, "pg_count", path, true, 1, VS_PLACEMENT_PG_COUNT_MAX,
                                 &count, err);
    if (rc < 0)
        return rc;
    p->pg_size = (uint32_t)size, p->parity_chunks = (uint32_t)parity;
    p->pg_minsize = (uint32_t)minsize, p->pg_count = (uint32_t)count;
    if (p->scheme == VS_POOL_REPLICATED && parity != 0)
        return placement__errf(err, "%s.parity_chunks: a replicated pool has none", path);
    if (p->scheme == VS_POOL_XOR && parity != 1)
        return placement__errf(err, "%s.parity_chunks: an xor pool has exactly 1", path);
    if (p->scheme != VS_POOL_REPLICATED && (parity < 1 || size < parity + 2))
        return placement__errf(err, "%s: pg_size %u with parity_chunks %u leaves fewer than 2 "
                               "data chunks", path, p->pg_size, p->parity_chunks);
    if (minsize > size)
        return placement__errf(err, "%s.pg_minsize: %u is above pg_size %u", path,
                               p->pg_minsize, p->pg_size);
    if (minsize < vs_placement_pool_data_chunks(p))
        return placement__errf(err, "%s.pg_minsize: %u is below the %u data chunks needed to "
                               "read", path, p->pg_minsize, vs_placement_pool_data_chunks(p));
    return 0;
}

static int parse_pool(struct vs_placement_pool *p, const char *key, const json_t *v,
                      struct pl_err *err)
{
    static const char *const keys[] = {
        "name",       "scheme",        "pg_size",          "parity_chunks",
        "pg_minsize", "pg_count",      "failure_domain",   "root_node",
        "osd_tags",   "primary_affinity_tags", "block_size", "bitmap_granularity",
        "pg_stripe_size", "immediate_commit", "local_reads", NULL};
    char path[64];
    uint64_t id = 0;
    int rc = placement__parse_key(key, "pools", 1, UINT16_MAX, &id, err);
    if (rc < 0)
        return rc;
    p->id = (uint16_t)id;
    snprintf(path, sizeof(path), "pools.%u", p->id);
    rc = placement__json_keys(v, path, keys, err);
    if (rc == 0)
        rc = placement__json_str(v, "name", path, true, &p->name, err);
    if (rc == 0)
        rc = parse_scheme(v, path, p, err);
    if (rc == 0)
        rc = parse_counts(v, path, p, err);
    if (rc == 0)
        rc = placement__json_str(v, "failure_domain", path, false, &p->failure_domain, err);
    if (rc == 0 && !p->failure_domain && !(p->failure_domain = placement__strdup("host")))
        rc = -ENOMEM;
    if (rc == 0)
        rc = placement__json_str(v, "root_node", path, false, &p->root_node, err);
    if (rc == 0)
        rc = placement__json_strlist(v, "osd_tags", path, &p->osd_tag_count, &p->osd_tags, err);
    if (rc == 0)
        rc = placement__json_strlist(v, "primary_affinity_tags", path, &p->primary_tag_count,
                                     &p->primary_affinity_tags, err);
    if (rc == 0)
        rc = parse_sizes(v, path, p, err);
    return rc;
}

static int cmp_pool(const void *a, const void *b)
{
    uint16_t x = ((const struct vs_placement_pool *)a)->id;
    uint16_t y = ((const struct vs_placement_pool *)b)->id;
    return x < y ? -1 : x > y;
}

static int check_names(const struct vs_placement_pools *pools, struct pl_err *err)
{
    for (uint32_t i = 0; i < pools->count; i++)
        for (uint32_t j = i + 1; j < pools->count; j++)
            if (strcmp(pools->pools[i].name, pools->pools[j].name) == 0)
                return placement__errf(err, "pools: pools %u and %u are both named '%s'",
                                       pools->pools[i].id, pools->pools[j].id,
                                       pools->pools[i].name);
    return 0;
}

int vs_placement_pools_from_json(const json_t *root, struct vs_placement_pools **out,
                                 char *errmsg, size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    if (!json_is_object(root))
        return placement__errf(&err, "pools: must be an object keyed by pool id");
    struct vs_placement_pools *pools = calloc(1, sizeof(*pools));
    if (pools)
        pools->pools = calloc(json_object_size(root) + 1, sizeof(*pools->pools));
    if (!pools || !pools->pools) {
        vs_placement_pools_free(pools);
        return -ENOMEM;
    }
    int rc = 0;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)root, key, v) {
        rc = parse_pool(&pools->pools[pools->count++], key, v, &err);
        if (rc < 0)
            break;
    }
    if (rc == 0) {
        qsort(pools->pools, pools->count, sizeof(*pools->pools), cmp_pool);
        rc = check_names(pools, &err);
    }
    if (rc < 0) {
        if (rc == -ENOMEM)
            placement__errf(&err, "pools: out of memory");
        vs_placement_pools_free(pools);
        return rc;
    }
    *out = pools;
    return 0;
}

int vs_placement_pools_parse(const char *text, size_t len, struct vs_placement_pools **out,
                             char *errmsg, size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    json_t *root;
    int rc = placement__load_text(text, len, "pools", &root, &err);
    if (rc < 0)
        return rc;
    rc = vs_placement_pools_from_json(root, out, errmsg, errmsg_size);
    json_decref(root);
    return rc;
}

static void set_opt_str(json_t *j, const char *key, const char *value)
{
    if (value)
        json_object_set_new(j, key, json_string(value));
}

static void set_opt_u64(json_t *j, const char *key, uint64_t value)
{
    if (value)
        json_object_set_new(j, key, json_integer((json_int_t)value));
}

static json_t *pool_to_json(const struct vs_placement_pool *p)
{
    json_t *j = json_pack("{ss ss si si si}", "name", p->name, "scheme", scheme_names[p->scheme],
                          "pg_size", (int)p->pg_size, "pg_minsize", (int)p->pg_minsize,
                          "pg_count", (int)p->pg_count);
    if (!j)
        return NULL;
    set_opt_u64(j, "parity_chunks", p->parity_chunks);
    set_opt_str(j, "failure_domain", p->failure_domain);
    set_opt_str(j, "root_node", p->root_node);
    if (p->osd_tag_count)
        json_object_set_new(j, "osd_tags", placement__json_strarray(p->osd_tag_count,
                                                                    p->osd_tags));
    if (p->primary_tag_count)
        json_object_set_new(j, "primary_affinity_tags",
                            placement__json_strarray(p->primary_tag_count,
                                                     p->primary_affinity_tags));
    set_opt_u64(j, "block_size", p->block_size);
    set_opt_u64(j, "bitmap_granularity", p->bitmap_granularity);
    set_opt_u64(j, "pg_stripe_size", p->pg_stripe_size);
    set_opt_str(j, "immediate_commit", p->immediate_commit);
    set_opt_str(j, "local_reads", p->local_reads);
    return j;
}

json_t *vs_placement_pools_to_json(const struct vs_placement_pools *pools)
{
    json_t *root = json_object();
    for (uint32_t i = 0; root && i < pools->count; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%u", pools->pools[i].id);
        json_object_set_new(root, key, pool_to_json(&pools->pools[i]));
    }
    return root;
}
