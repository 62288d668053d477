/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_pool.c -- `vstor pool create|ls|rm`: pools in config/pools
 * (docs/placement.md section 2, docs/commands.md). The monitor places a new
 * pool's PGs as soon as config/pools changes (docs/monitor.md).
 *
 * Every change is one transaction guarded by config/pools' mod revision and
 * retried from a fresh read on conflict. `pool rm` also compares
 * index/maxid/<pool>, which every image create in that pool changes, so an
 * image created while the rm runs makes it re-check and refuse.
 */
#include "cli_meta.h"
#include "cmd.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_placement.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTEMPTS_MAX 64
#define ERR_SIZE 512

/* Waits a little longer after each conflict (1, 2, ... ms, at most 50). */
static void backoff(int attempt)
{
    usleep((useconds_t)(VS_MIN(attempt + 1, 50) * 1000));
}

/* ---- pool create ---- */

static const char *const str_opts[] = {"scheme", "failure-domain", "root-node",
                                       "immediate-commit", "local-reads"};
static const char *const int_opts[] = {"pg-size", "pg-minsize", "pg-count", "parity-chunks"};
static const char *const size_opts[] = {"block-size", "bitmap-granularity", "pg-stripe-size"};
static const char *const list_opts[] = {"osd-tags", "primary-affinity-tags"};

/* "pg-size" -> "pg_size" */
static void field_name(const char *opt, char *out, size_t size)
{
    snprintf(out, size, "%s", opt);
    for (char *p = out; *p; p++)
        if (*p == '-')
            *p = '_';
}

static json_t *list_json(const char *text)
{
    json_t *arr = json_array();
    char buf[1024];
    char *items[32];
    snprintf(buf, sizeof(buf), "%s", text);
    int n = vs_config_list_split(buf, items, 32);
    for (int i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(items[i]));
    return arr;
}

/* The new pool's JSON from the options, or NULL after printing a usage error. */
static json_t *pool_from_opts(struct vs_cmd_ctx *ctx)
{
    json_t *p = json_pack("{s:s}", "name", ctx->argv[0]);
    char f[64];
    for (unsigned i = 0; p && i < VS_ARRAY_SIZE(str_opts); i++) {
        const char *v = vs_cmd_opt(ctx, str_opts[i]);
        field_name(str_opts[i], f, sizeof(f));
        if (v)
            json_object_set_new(p, f, json_string(v));
    }
    for (unsigned i = 0; p && i < VS_ARRAY_SIZE(list_opts); i++) {
        const char *v = vs_cmd_opt(ctx, list_opts[i]);
        field_name(list_opts[i], f, sizeof(f));
        if (v)
            json_object_set_new(p, f, list_json(v));
    }
    for (unsigned i = 0; p && i < VS_ARRAY_SIZE(int_opts) + VS_ARRAY_SIZE(size_opts); i++) {
        bool is_int = i < VS_ARRAY_SIZE(int_opts);
        const char *name = is_int ? int_opts[i] : size_opts[i - VS_ARRAY_SIZE(int_opts)];
        uint64_t v = UINT64_MAX;
        int rc = is_int ? vs_cmd_opt_u64(ctx, name, &v) : vs_cmd_opt_size(ctx, name, &v);
        if (rc < 0 || (v != UINT64_MAX && v > INT64_MAX)) {
            json_decref(p);
            return NULL;
        }
        field_name(name, f, sizeof(f));
        if (v != UINT64_MAX)
            json_object_set_new(p, f, json_integer((json_int_t)v));
    }
    return p;
}

/* Checks the pool alone (a usage error) and then with the others (a cluster
 * problem), the way the monitor will read them. */
static int validate(struct vs_cmd_ctx *ctx, json_t *doc, const char *id, bool alone)
{
    char err[ERR_SIZE];
    struct vs_placement_pools *pools = NULL;
    json_t *one = alone ? json_pack("{s:O}", id, json_object_get(doc, id)) : json_incref(doc);
    int rc = vs_placement_pools_from_json(one, &pools, err, sizeof(err));
    json_decref(one);
    vs_placement_pools_free(pools);
    if (rc < 0)
        vs_cmd_error(ctx, "%s%s", alone ? "invalid pool: " : "config/pools is invalid: ", err);
    return rc < 0 ? (alone ? VS_EXIT_USAGE : VS_EXIT_FAIL) : VS_EXIT_OK;
}

/* Next free pool id: one above the highest, or 0 when 65535 is taken. */
static unsigned next_id(const json_t *doc)
{
    const char *key;
    json_t *v;
    unsigned long max = 0;
    json_object_foreach((json_t *)doc, key, v) {
        unsigned long id = strtoul(key, NULL, 10);
        max = id > max ? id : max;
    }
    return max < 65535 ? (unsigned)max + 1 : 0;
}

static const char *name_taken(const json_t *doc, const char *name)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)doc, key, v)
        if (json_is_string(json_object_get(v, "name")) &&
            strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return key;
    return NULL;
}

enum { ATTEMPT_DONE = -1, ATTEMPT_RETRY = -2 }; /* else an exit code */

struct create_try {
    struct vs_cmd_ctx *ctx;
    const struct cli_meta *m;
    json_t *pool;
    bool in_doubt; /* an earlier attempt's outcome is unknown */
};

static void created(const struct create_try *ct, const char *id)
{
    printf("pool '%s' created with id %s; the monitor places its PGs\n", ct->ctx->argv[0], id);
}

static int create_txn(struct create_try *ct, const json_t *doc, uint64_t rev, const char *id)
{
    struct vs_meta_sync_result res = {0};
    struct vs_mon_txn t;
    vs_mon_txn_init(&t);
    vs_mon_txn_expect_mod(&t, "config/pools", rev);
    vs_mon_txn_put_json(&t, "config/pools", doc);
    int rc = cli_meta_txn(&ct->m->o, &t, &res);
    vs_mon_txn_free(&t);
    int out = rc == 0 ? (res.txn.succeeded ? ATTEMPT_DONE : ATTEMPT_RETRY) : ATTEMPT_RETRY;
    if (rc == 0 && res.txn.succeeded)
        created(ct, id);
    if (rc == VS_EINDOUBT)
        ct->in_doubt = true; /* the next read tells */
    else if (rc < 0)
        out = cli_meta_fail(ct->ctx, rc, NULL);
    vs_meta_sync_free(&res);
    return out;
}

static int create_attempt(struct create_try *ct)
{
    struct vs_cmd_ctx *ctx = ct->ctx;
    json_t *doc = NULL;
    uint64_t rev = 0;
    int rc = cli_meta_get(&ct->m->o, "config/pools", &doc, &rev);
    if (rc < 0 && rc != -ENOENT)
        return cli_meta_fail(ctx, rc, NULL);
    if (!doc)
        doc = json_object();
    const char *taken = name_taken(doc, ctx->argv[0]);
    unsigned id = next_id(doc);
    char key[16];
    snprintf(key, sizeof(key), "%u", id);
    int out;
    if (taken && ct->in_doubt && json_equal(json_object_get(doc, taken), ct->pool)) {
        created(ct, taken); /* our own in-doubt write went through */
        out = ATTEMPT_DONE;
    } else if (taken) {
        vs_cmd_error(ctx, "pool '%s' already exists (id %s)", ctx->argv[0], taken);
        out = VS_EXIT_FAIL;
    } else if (!id) {
        vs_cmd_error(ctx, "no free pool id: 65535 is in use");
        out = VS_EXIT_FAIL;
    } else if (json_object_set(doc, key, ct->pool) < 0) {
        out = cli_meta_fail(ctx, -ENOMEM, NULL);
    } else if ((out = validate(ctx, doc, key, true)) == VS_EXIT_OK &&
               (out = validate(ctx, doc, key, false)) == VS_EXIT_OK) {
        out = create_txn(ct, doc, rev, key);
    }
    json_decref(doc);
    return out;
}

int vs_cmd_pool_create(struct vs_cmd_ctx *ctx)
{
    char err[ERR_SIZE];
    if (vs_pool_name_check(ctx->argv[0], err, sizeof(err)) < 0)
        return cli_meta_fail(ctx, -EINVAL, err);
    struct cli_meta m;
    int code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    struct create_try ct = {.ctx = ctx, .m = &m, .pool = pool_from_opts(ctx)};
    if (!ct.pool)
        return VS_EXIT_USAGE;
    for (int attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
        code = create_attempt(&ct);
        if (code != ATTEMPT_RETRY)
            break;
        backoff(attempt);
    }
    json_decref(ct.pool);
    if (code == ATTEMPT_RETRY) {
        vs_cmd_error(ctx, "config/pools keeps changing: gave up after %d attempts", ATTEMPTS_MAX);
        return VS_EXIT_FAIL;
    }
    return code == ATTEMPT_DONE ? VS_EXIT_OK : code;
}

/* ---- pool ls ---- */

struct pool_counts {
    uint32_t images, placed, active;
};

/* Images per pool (keys config/inode/<pool>/<num>) and active PGs (pg/state). */
static int count_keys(const struct cli_meta *m, const char *prefix, json_t *per_pool)
{
    struct vs_meta_sync_result res;
    int rc = cli_meta_list(&m->o, prefix, strcmp(prefix, "pg/state/") ? VS_META_KEYS_ONLY : 0,
                           &res);
    for (unsigned i = 0; rc == 0 && i < res.txn.ops[0].n_kvs; i++) {
        const struct vs_meta_kv *kv = &res.txn.ops[0].kvs[i];
        char pool[8];
        size_t skip = strlen(prefix), n = 0;
        while (skip + n < kv->key_len && kv->key[skip + n] != '/' && n + 1 < sizeof(pool))
            pool[n] = (char)kv->key[skip + n], n++;
        pool[n] = 0;
        if (kv->value_len) { /* a PG state: count it when it says "active" */
            json_t *st = json_loadb((const char *)kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
            json_t *state = json_object_get(st, "state");
            bool active = json_is_array(state) && json_is_string(json_array_get(state, 0)) &&
                          strcmp(json_string_value(json_array_get(state, 0)), "active") == 0;
            json_decref(st);
            if (!active)
                continue;
        }
        json_int_t have = json_integer_value(json_object_get(per_pool, pool));
        json_object_set_new(per_pool, pool, json_integer(have + 1));
    }
    vs_meta_sync_free(&res);
    return rc;
}

static uint32_t placed_pgs(const struct vs_pgmap *map, uint16_t id)
{
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, id);
    uint32_t n = 0;
    for (uint32_t pg = 0; pp && pg < pp->pg_count; pg++)
        n += pp->pgs[pg].primary != 0;
    return n;
}

/* Every pool with its counts, sorted by id: [{id, name, ..., images, pgs_placed, pgs_active}]. */
static int pool_list(const struct cli_meta *m, json_t **out)
{
    json_t *doc = NULL, *pgs = NULL, *images = json_object(), *active = json_object();
    uint64_t rev;
    int rc = cli_meta_get(&m->o, "config/pools", &doc, &rev);
    if (rc == 0 || rc == -ENOENT)
        rc = cli_meta_get(&m->o, "config/pgs", &pgs, &rev);
    if (rc == 0 || rc == -ENOENT)
        rc = count_keys(m, "config/inode/", images);
    if (rc == 0)
        rc = count_keys(m, "pg/state/", active);
    struct vs_pgmap *map = NULL;
    if (pgs && vs_pgmap_from_json(pgs, &map, NULL, 0) < 0)
        map = NULL;
    *out = json_array();
    for (unsigned id = 1; rc == 0 && id <= 65535 && json_object_size(doc); id++) {
        char key[8];
        snprintf(key, sizeof(key), "%u", id);
        json_t *p = json_object_get(doc, key);
        if (!p)
            continue;
        json_t *row = json_deep_copy(p);
        json_object_set_new(row, "id", json_integer(id));
        json_object_set_new(row, "images", json_integer(json_integer_value(
                                               json_object_get(images, key))));
        json_object_set_new(row, "pgs_placed", json_integer(placed_pgs(map, (uint16_t)id)));
        json_object_set_new(row, "pgs_active", json_integer(json_integer_value(
                                                   json_object_get(active, key))));
        json_array_append_new(*out, row);
    }
    vs_pgmap_free(map);
    json_decref(doc), json_decref(pgs), json_decref(images), json_decref(active);
    return rc;
}

static json_int_t int_of(const json_t *row, const char *f)
{
    return json_integer_value(json_object_get(row, f));
}

int vs_cmd_pool_ls(struct vs_cmd_ctx *ctx)
{
    struct cli_meta m;
    int code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    json_t *rows = NULL;
    int rc = pool_list(&m, &rows);
    if (rc < 0) {
        json_decref(rows);
        return cli_meta_fail(ctx, rc, NULL);
    }
    if (vs_cmd_flag(ctx, "json")) {
        char *text = json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS);
        printf("%s\n", text ? text : "[]");
        free(text);
        json_decref(rows);
        return VS_EXIT_OK;
    }
    printf("%-5s %-20s %-10s %-8s %-6s %-7s %-7s %-7s %s\n", "ID", "NAME", "SCHEME", "SIZE/MIN",
           "PGS", "PLACED", "ACTIVE", "IMAGES", "FAILURE_DOMAIN");
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
        char size[24];
        const char *fd = json_string_value(json_object_get(r, "failure_domain"));
        snprintf(size, sizeof(size), "%lld/%lld", (long long)int_of(r, "pg_size"),
                 (long long)int_of(r, "pg_minsize"));
        printf("%-5lld %-20s %-10s %-8s %-6lld %-7lld %-7lld %-7lld %s\n",
               (long long)int_of(r, "id"), json_string_value(json_object_get(r, "name")),
               json_string_value(json_object_get(r, "scheme")), size,
               (long long)int_of(r, "pg_count"), (long long)int_of(r, "pgs_placed"),
               (long long)int_of(r, "pgs_active"), (long long)int_of(r, "images"),
               fd ? fd : "host");
    }
    json_decref(rows);
    return VS_EXIT_OK;
}

/* ---- pool rm ---- */

static int rm_txn(const struct cli_meta *m, json_t *doc, uint64_t rev, uint16_t id,
                  bool *succeeded)
{
    char key[64];
    json_t *maxid = NULL;
    uint64_t maxid_rev = 0;
    snprintf(key, sizeof(key), "index/maxid/%u", id);
    int rc = cli_meta_get(&m->o, key, &maxid, &maxid_rev);
    json_decref(maxid);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    snprintf(key, sizeof(key), "%u", id);
    json_object_del(doc, key);
    struct vs_mon_txn t;
    vs_mon_txn_init(&t);
    vs_mon_txn_expect_mod(&t, "config/pools", rev);
    snprintf(key, sizeof(key), "index/maxid/%u", id);
    vs_mon_txn_expect_mod(&t, key, maxid_rev); /* an image created meanwhile changes it */
    vs_mon_txn_put_json(&t, "config/pools", doc);
    vs_mon_txn_delete(&t, key);
    snprintf(key, sizeof(key), "pg/history/%u/", id);
    vs_mon_txn_delete_prefix(&t, key);
    snprintf(key, sizeof(key), "inode/stats/%u/", id);
    vs_mon_txn_delete_prefix(&t, key);
    struct vs_meta_sync_result res;
    rc = cli_meta_txn(&m->o, &t, &res);
    vs_mon_txn_free(&t);
    *succeeded = rc == 0 && res.txn.succeeded;
    vs_meta_sync_free(&res);
    return rc;
}

/* One attempt: ATTEMPT_DONE, ATTEMPT_RETRY, or an exit code. */
static int rm_attempt(struct vs_cmd_ctx *ctx, const struct cli_meta *m, bool *in_doubt)
{
    char err[ERR_SIZE], prefix[32];
    uint16_t id;
    uint64_t rev;
    int rc = vs_pool_meta_find(&m->o, ctx->argv[0], &id, NULL, &rev, err, sizeof(err));
    if (rc == VS_ENOPOOL && *in_doubt) {
        printf("pool '%s' removed\n", ctx->argv[0]); /* our in-doubt write went through */
        return ATTEMPT_DONE;
    }
    if (rc < 0)
        return cli_meta_fail(ctx, rc, err);
    struct vs_meta_sync_result res;
    snprintf(prefix, sizeof(prefix), "config/inode/%u/", id);
    rc = cli_meta_list(&m->o, prefix, VS_META_COUNT_ONLY, &res);
    uint64_t images = rc == 0 ? res.txn.ops[0].count : 0;
    vs_meta_sync_free(&res);
    if (rc < 0)
        return cli_meta_fail(ctx, rc, NULL);
    if (images) {
        vs_cmd_error(ctx, "pool '%s' still holds %" PRIu64 " image(s): remove them first",
                     ctx->argv[0], images);
        return VS_EXIT_FAIL;
    }
    json_t *doc = NULL;
    rc = cli_meta_get(&m->o, "config/pools", &doc, &rev);
    bool ok = false;
    if (rc == 0 && doc)
        rc = rm_txn(m, doc, rev, id, &ok);
    json_decref(doc);
    if (ok)
        printf("pool '%s' (id %u) removed\n", ctx->argv[0], id);
    if (rc == VS_EINDOUBT)
        *in_doubt = true;
    else if (rc < 0 && rc != -ENOENT)
        return cli_meta_fail(ctx, rc, NULL);
    return ok ? ATTEMPT_DONE : ATTEMPT_RETRY;
}

int vs_cmd_pool_rm(struct vs_cmd_ctx *ctx)
{
    struct cli_meta m;
    int code = cli_meta_init(ctx, &m);
    bool in_doubt = false;
    for (int attempt = 0; code == VS_EXIT_OK && attempt < ATTEMPTS_MAX; attempt++) {
        int r = rm_attempt(ctx, &m, &in_doubt);
        if (r != ATTEMPT_RETRY)
            return r == ATTEMPT_DONE ? VS_EXIT_OK : r;
        backoff(attempt);
    }
    if (code == VS_EXIT_OK)
        vs_cmd_error(ctx, "config/pools keeps changing: gave up after %d attempts", ATTEMPTS_MAX);
    return code == VS_EXIT_OK ? VS_EXIT_FAIL : code;
}
