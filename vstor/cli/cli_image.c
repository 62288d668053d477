/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_image.c -- image metadata (cli_meta.h) and the commands `vstor create`,
 * `ls`, `info` and `resize` (docs/commands.md).
 *
 * An image is three keys, created together in one transaction:
 *   index/maxid/<pool>         N + 1                  (the number allocator)
 *   config/inode/<pool>/<N+1>  {"name", "size"}       (the image)
 *   index/image/<name>         {"pool", "num": N + 1} (the name index)
 * guarded by: index/image/<name> does not exist, index/maxid/<pool> is what we
 * read, config/inode/<pool>/<N+1> does not exist, config/pools is what we read.
 * So of two creates of one name exactly one wins; of two creates in one pool
 * the second retries with the next number; a stale index/maxid (an image
 * already at N+1) is stepped over; a create racing `pool rm` fails cleanly.
 */
#include "cli_meta.h"
#include "cmd.h"
#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ATTEMPTS_MAX 64
#define ERR_SIZE 512

enum { ATTEMPT_DONE = -10000, ATTEMPT_RETRY = -10001 };

static void backoff(int attempt)
{
    usleep((useconds_t)(VS_MIN(attempt + 1, 50) * 1000));
}

void vs_image_meta_free(struct vs_image_meta *m)
{
    json_decref(m->value);
    memset(m, 0, sizeof(*m));
}

/* ---- Lookup ---- */

static int parse_index(const json_t *j, uint16_t *pool, uint64_t *num)
{
    json_t *p = json_object_get(j, "pool"), *n = json_object_get(j, "num");
    if (!json_is_integer(p) || json_integer_value(p) < 1 || json_integer_value(p) > 65535 ||
        !json_is_integer(n) || json_integer_value(n) < 1 ||
        (uint64_t)json_integer_value(n) > VS_IMAGE_NUM_MAX)
        return -EINVAL;
    *pool = (uint16_t)json_integer_value(p);
    *num = (uint64_t)json_integer_value(n);
    return 0;
}

static int fill_inode(struct vs_image_meta *out, json_t *v, char *errmsg, size_t n)
{
    json_t *size = json_object_get(v, "size");
    if (!json_is_object(v) || !json_is_integer(size) || json_integer_value(size) < 0) {
        snprintf(errmsg, n, "image '%s': config/inode/%u/%" PRIu64 " is malformed", out->name,
                 out->pool, out->num);
        json_decref(v);
        return -EINVAL;
    }
    out->value = v;
    out->size = (uint64_t)json_integer_value(size);
    out->readonly = json_is_true(json_object_get(v, "readonly"));
    out->deleted = json_is_true(json_object_get(v, "deleted"));
    return 0;
}

int vs_image_meta_lookup(const struct vs_meta_client_opts *o, const char *name,
                         struct vs_image_meta *out, char *errmsg, size_t errmsg_size)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", name);
    char key[VS_IMAGE_NAME_MAX + 64];
    json_t *idx = NULL, *v = NULL;
    snprintf(key, sizeof(key), "index/image/%s", name);
    int rc = cli_meta_get(o, key, &idx, &out->index_mod_rev);
    if (rc == 0 && parse_index(idx, &out->pool, &out->num) < 0) {
        snprintf(errmsg, errmsg_size, "image '%s': %s is malformed", name, key);
        rc = -EINVAL;
    }
    json_decref(idx);
    if (rc == -ENOENT) {
        snprintf(errmsg, errmsg_size, "image '%s' does not exist", name);
        return VS_ENOIMAGE;
    }
    if (rc < 0)
        return rc == -EINVAL ? rc : (snprintf(errmsg, errmsg_size, "%s", vs_strerror(rc)), rc);
    out->inode = (uint64_t)out->pool << 48 | out->num;
    snprintf(key, sizeof(key), "config/inode/%u/%" PRIu64, out->pool, out->num);
    struct vs_meta_sync_result res;
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = key,
                            .key_len = (uint32_t)strlen(key)};
    rc = vs_meta_sync_range(o, &op, 0, &res);
    if (rc == 0 && res.txn.ops[0].n_kvs == 1) {
        const struct vs_meta_kv *kv = &res.txn.ops[0].kvs[0];
        out->mod_rev = kv->mod_rev;
        out->create_rev = kv->create_rev;
        v = json_loadb((const char *)kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
        rc = fill_inode(out, v, errmsg, errmsg_size);
    } else if (rc == 0) {
        snprintf(errmsg, errmsg_size, "image '%s': index/image names %s, which does not exist",
                 name, key);
        rc = VS_ENOIMAGE;
    } else {
        snprintf(errmsg, errmsg_size, "%s", vs_strerror(rc));
    }
    vs_meta_sync_free(&res);
    return rc;
}

/* ---- Create ---- */

struct create_req {
    const struct vs_meta_client_opts *o;
    const char *name, *pool;
    uint64_t size;
    uint64_t floor;   /* numbers at or below it are taken (stale index/maxid) */
    bool in_doubt;    /* an earlier attempt's outcome is unknown */
    uint16_t id;      /* pool id of the last attempt */
    uint64_t num;     /* number of the last attempt */
    char *errmsg;
    size_t errmsg_size;
};

/* The highest image number in a pool, from its config/inode keys. */
static int highest_num(const struct vs_meta_client_opts *o, uint16_t pool, uint64_t *max)
{
    char prefix[32];
    snprintf(prefix, sizeof(prefix), "config/inode/%u/", pool);
    struct vs_meta_sync_result res;
    int rc = cli_meta_list(o, prefix, VS_META_KEYS_ONLY, &res);
    for (unsigned i = 0; rc == 0 && i < res.txn.ops[0].n_kvs; i++) {
        const struct vs_meta_kv *kv = &res.txn.ops[0].kvs[i];
        char num[32];
        size_t len = kv->key_len - strlen(prefix);
        snprintf(num, sizeof(num), "%.*s", (int)VS_MIN(len, 30), kv->key + strlen(prefix));
        uint64_t v = strtoull(num, NULL, 10);
        *max = v > *max ? v : *max;
    }
    vs_meta_sync_free(&res);
    return rc;
}

static void create_txn_build(struct vs_mon_txn *t, const struct create_req *r, uint64_t pools_rev,
                             uint64_t maxid_rev)
{
    char k_index[VS_IMAGE_NAME_MAX + 64], k_maxid[32], k_inode[64], num[24];
    snprintf(k_index, sizeof(k_index), "index/image/%s", r->name);
    snprintf(k_maxid, sizeof(k_maxid), "index/maxid/%u", r->id);
    snprintf(k_inode, sizeof(k_inode), "config/inode/%u/%" PRIu64, r->id, r->num);
    snprintf(num, sizeof(num), "%" PRIu64, r->num);
    json_t *inode = json_pack("{s:s,s:I}", "name", r->name, "size", (json_int_t)r->size);
    json_t *index = json_pack("{s:i,s:I}", "pool", (int)r->id, "num", (json_int_t)r->num);
    vs_mon_txn_expect_mod(t, k_index, 0);
    vs_mon_txn_expect_mod(t, k_maxid, maxid_rev);
    vs_mon_txn_expect_mod(t, k_inode, 0);
    vs_mon_txn_expect_mod(t, "config/pools", pools_rev);
    vs_mon_txn_put(t, k_maxid, num);
    if (inode && index) {
        vs_mon_txn_put_json(t, k_inode, inode);
        vs_mon_txn_put_json(t, k_index, index);
    } else {
        t->oom = true;
    }
    vs_mon_txn_fail_get(t, k_index);
    vs_mon_txn_fail_get(t, k_inode);
    json_decref(inode);
    json_decref(index);
}

/* After a failed compare: who holds the name, or which number is taken. */
static int create_failed(struct create_req *r, const struct vs_meta_txn_result *res)
{
    if (res->n_ops >= 1 && res->ops[0].n_kvs) {
        snprintf(r->errmsg, r->errmsg_size, "image '%s' already exists", r->name);
        return -EEXIST;
    }
    if (res->n_ops >= 2 && res->ops[1].n_kvs) { /* index/maxid is behind: step over */
        uint64_t max = r->num;
        int rc = highest_num(r->o, r->id, &max);
        if (rc < 0)
            return rc;
        r->floor = max;
    }
    return ATTEMPT_RETRY;
}

/* Did our own in-doubt create go through? ATTEMPT_DONE, -EEXIST or ATTEMPT_RETRY. */
static int create_check_doubt(struct create_req *r)
{
    char key[VS_IMAGE_NAME_MAX + 64];
    json_t *idx = NULL;
    uint64_t rev;
    uint16_t pool;
    uint64_t num;
    snprintf(key, sizeof(key), "index/image/%s", r->name);
    int rc = cli_meta_get(r->o, key, &idx, &rev);
    if (rc == 0 && parse_index(idx, &pool, &num) == 0 && pool == r->id && num == r->num)
        rc = ATTEMPT_DONE;
    else if (rc == 0) {
        snprintf(r->errmsg, r->errmsg_size, "image '%s' already exists", r->name);
        rc = -EEXIST;
    } else if (rc == -ENOENT)
        rc = ATTEMPT_RETRY;
    json_decref(idx);
    return rc;
}

static int create_attempt(struct create_req *r)
{
    if (r->in_doubt) {
        int rc = create_check_doubt(r);
        r->in_doubt = false;
        if (rc != ATTEMPT_RETRY)
            return rc;
    }
    uint64_t pools_rev, maxid_rev = 0;
    int rc = vs_pool_meta_find(r->o, r->pool, &r->id, NULL, &pools_rev, r->errmsg,
                               r->errmsg_size);
    char key[32];
    json_t *maxid = NULL;
    snprintf(key, sizeof(key), "index/maxid/%u", r->id);
    if (rc == 0)
        rc = cli_meta_get(r->o, key, &maxid, &maxid_rev);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    uint64_t last = json_is_integer(maxid) && json_integer_value(maxid) > 0
                        ? (uint64_t)json_integer_value(maxid) : 0;
    json_decref(maxid);
    r->num = VS_MAX(last, r->floor) + 1;
    if (r->num > VS_IMAGE_NUM_MAX) {
        snprintf(r->errmsg, r->errmsg_size, "pool '%s' has no free image number", r->pool);
        return -ENOSPC;
    }
    struct vs_mon_txn t;
    struct vs_meta_sync_result res = {0};
    vs_mon_txn_init(&t);
    create_txn_build(&t, r, pools_rev, maxid_rev);
    rc = cli_meta_txn(r->o, &t, &res);
    vs_mon_txn_free(&t);
    if (rc == 0)
        rc = res.txn.succeeded ? ATTEMPT_DONE : create_failed(r, &res.txn);
    else if (rc == VS_EINDOUBT)
        r->in_doubt = true, rc = ATTEMPT_RETRY;
    vs_meta_sync_free(&res);
    return rc;
}

int vs_image_meta_create(const struct vs_meta_client_opts *o, const char *name, const char *pool,
                         uint64_t size, struct vs_image_meta *out, char *errmsg,
                         size_t errmsg_size)
{
    memset(out, 0, sizeof(*out));
    int rc = vs_image_name_check(name, errmsg, errmsg_size);
    if (rc == 0)
        rc = vs_image_size_check(size, errmsg, errmsg_size);
    struct create_req r = {.o = o, .name = name, .pool = pool, .size = size, .errmsg = errmsg,
                           .errmsg_size = errmsg_size};
    for (int attempt = 0; rc == 0 && attempt < ATTEMPTS_MAX; attempt++) {
        int t = create_attempt(&r);
        if (t == ATTEMPT_DONE)
            return vs_image_meta_lookup(o, name, out, errmsg, errmsg_size);
        if (t != ATTEMPT_RETRY)
            rc = t;
        else
            backoff(attempt);
    }
    if (rc == 0) {
        snprintf(errmsg, errmsg_size, "pool '%s' keeps changing: gave up after %d attempts",
                 pool, ATTEMPTS_MAX);
        rc = -EAGAIN;
    } else if (rc != -EINVAL && rc != -EEXIST && rc != VS_ENOPOOL && rc != -ENOSPC) {
        snprintf(errmsg, errmsg_size, "%s", vs_strerror(rc));
    }
    return rc;
}

/* ---- Changing an image ---- */

/* Rewrites config/inode of the image (as read in m) with value, if it did not
 * change since: 1 done, 0 conflict, or an error. */
static int update_inode(const struct vs_meta_client_opts *o, const struct vs_image_meta *m,
                        const json_t *value)
{
    char k_inode[64], k_index[VS_IMAGE_NAME_MAX + 64];
    snprintf(k_inode, sizeof(k_inode), "config/inode/%u/%" PRIu64, m->pool, m->num);
    snprintf(k_index, sizeof(k_index), "index/image/%s", m->name);
    struct vs_mon_txn t;
    struct vs_meta_sync_result res = {0};
    vs_mon_txn_init(&t);
    vs_mon_txn_expect_mod(&t, k_inode, m->mod_rev);
    vs_mon_txn_expect_mod(&t, k_index, m->index_mod_rev);
    vs_mon_txn_put_json(&t, k_inode, value);
    int rc = cli_meta_txn(o, &t, &res);
    vs_mon_txn_free(&t);
    if (rc == 0)
        rc = res.txn.succeeded ? 1 : 0;
    vs_meta_sync_free(&res);
    return rc;
}

enum change { CHANGE_SIZE, CHANGE_DELETED };

/* Looks the image up and applies one change, retrying on conflicts. An
 * in-doubt write is retried too: both changes are idempotent. */
static int change_image(const struct vs_meta_client_opts *o, const char *name, enum change what,
                        uint64_t size, struct vs_image_meta *out, char *errmsg, size_t n)
{
    memset(out, 0, sizeof(*out));
    for (int attempt = 0; attempt < ATTEMPTS_MAX; attempt++) {
        int rc = vs_image_meta_lookup(o, name, out, errmsg, n);
        if (rc < 0)
            return rc;
        if (what == CHANGE_SIZE && out->deleted) {
            snprintf(errmsg, n, "image '%s' is being removed", name);
            return -EINVAL;
        }
        if (what == CHANGE_SIZE && size < out->size) {
            snprintf(errmsg, n,
                     "image '%s': shrinking (%" PRIu64 " to %" PRIu64 " bytes) is not supported:"
                     " the data past the new end would remain",
                     name, out->size, size);
            return -EINVAL;
        }
        if ((what == CHANGE_SIZE && size == out->size) || (what == CHANGE_DELETED && out->deleted))
            return 0; /* already so */
        json_t *v = json_deep_copy(out->value);
        json_t *nv = what == CHANGE_SIZE ? json_integer((json_int_t)size) : json_true();
        int set = json_object_set_new(v, what == CHANGE_SIZE ? "size" : "deleted", nv);
        rc = v && set == 0 ? update_inode(o, out, v) : -ENOMEM;
        json_decref(v);
        if (rc == 1) {
            vs_image_meta_free(out);
            return vs_image_meta_lookup(o, name, out, errmsg, n);
        }
        if (rc < 0 && rc != VS_EINDOUBT) {
            snprintf(errmsg, n, "%s", vs_strerror(rc));
            return rc;
        }
        vs_image_meta_free(out);
        backoff(attempt);
    }
    snprintf(errmsg, n, "image '%s' keeps changing: gave up after %d attempts", name,
             ATTEMPTS_MAX);
    return -EAGAIN;
}

int vs_image_meta_resize(const struct vs_meta_client_opts *o, const char *name, uint64_t size,
                         struct vs_image_meta *out, char *errmsg, size_t errmsg_size)
{
    memset(out, 0, sizeof(*out));
    int rc = vs_image_size_check(size, errmsg, errmsg_size);
    return rc < 0 ? rc : change_image(o, name, CHANGE_SIZE, size, out, errmsg, errmsg_size);
}

int vs_image_meta_mark_deleted(const struct vs_meta_client_opts *o, const char *name,
                               struct vs_image_meta *out, char *errmsg, size_t errmsg_size)
{
    return change_image(o, name, CHANGE_DELETED, 0, out, errmsg, errmsg_size);
}

int vs_image_meta_remove(const struct vs_meta_client_opts *o, const struct vs_image_meta *m,
                         char *errmsg, size_t errmsg_size)
{
    char k_inode[64], k_index[VS_IMAGE_NAME_MAX + 64], k_stats[64];
    snprintf(k_inode, sizeof(k_inode), "config/inode/%u/%" PRIu64, m->pool, m->num);
    snprintf(k_index, sizeof(k_index), "index/image/%s", m->name);
    snprintf(k_stats, sizeof(k_stats), "inode/stats/%u/%" PRIu64, m->pool, m->num);
    struct vs_mon_txn t;
    struct vs_meta_sync_result res = {0};
    vs_mon_txn_init(&t);
    vs_mon_txn_expect_mod(&t, k_inode, m->mod_rev);
    vs_mon_txn_expect_mod(&t, k_index, m->index_mod_rev);
    vs_mon_txn_delete(&t, k_inode);
    vs_mon_txn_delete(&t, k_index);
    vs_mon_txn_delete(&t, k_stats);
    int rc = cli_meta_txn(o, &t, &res);
    vs_mon_txn_free(&t);
    if (rc == 0 && !res.txn.succeeded) {
        snprintf(errmsg, errmsg_size, "image '%s' changed while it was being removed: look it "
                                      "up again", m->name);
        rc = -EAGAIN;
    } else if (rc < 0) {
        snprintf(errmsg, errmsg_size, "%s", vs_strerror(rc));
    }
    vs_meta_sync_free(&res);
    return rc;
}

/* ---- The commands ---- */

static int size_opt(struct vs_cmd_ctx *ctx, uint64_t *size)
{
    char err[ERR_SIZE];
    *size = 0;
    if (vs_cmd_opt_size(ctx, "size", size) < 0)
        return VS_EXIT_USAGE;
    if (vs_image_size_check(*size, err, sizeof(err)) < 0)
        return cli_meta_fail(ctx, -EINVAL, err);
    return VS_EXIT_OK;
}

static const char *pool_name(const json_t *pools, uint16_t id, char *buf, size_t n)
{
    char key[8];
    snprintf(key, sizeof(key), "%u", id);
    const char *name = json_string_value(json_object_get(json_object_get(pools, key), "name"));
    snprintf(buf, n, "%s", name ? name : key);
    return buf;
}

int vs_cmd_create(struct vs_cmd_ctx *ctx)
{
    char err[ERR_SIZE], size_text[32];
    uint64_t size;
    if (vs_image_name_check(ctx->argv[0], err, sizeof(err)) < 0)
        return cli_meta_fail(ctx, -EINVAL, err);
    int code = size_opt(ctx, &size);
    struct cli_meta m;
    if (code == VS_EXIT_OK)
        code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    struct vs_image_meta img;
    int rc = vs_image_meta_create(&m.o, ctx->argv[0], vs_cmd_opt(ctx, "pool"), size, &img, err,
                                  sizeof(err));
    if (rc < 0) {
        vs_image_meta_free(&img);
        return cli_meta_fail(ctx, rc, err);
    }
    cli_format_size(img.size, size_text, sizeof(size_text));
    printf("image '%s' created: pool %u, number %" PRIu64 ", size %s\n", img.name, img.pool,
           img.num, size_text);
    vs_image_meta_free(&img);
    return VS_EXIT_OK;
}

int vs_cmd_resize(struct vs_cmd_ctx *ctx)
{
    char err[ERR_SIZE], size_text[32];
    uint64_t size;
    int code = size_opt(ctx, &size);
    struct cli_meta m;
    if (code == VS_EXIT_OK)
        code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    struct vs_image_meta img;
    int rc = vs_image_meta_resize(&m.o, ctx->argv[0], size, &img, err, sizeof(err));
    if (rc < 0) {
        vs_image_meta_free(&img);
        return cli_meta_fail(ctx, rc, err);
    }
    cli_format_size(img.size, size_text, sizeof(size_text));
    printf("image '%s': size %s\n", img.name, size_text);
    vs_image_meta_free(&img);
    return VS_EXIT_OK;
}

/* One image as a JSON object (ls and info). */
static json_t *image_json(const struct vs_image_meta *img, const json_t *pools)
{
    char pn[VS_POOL_NAME_MAX + 8];
    return json_pack("{s:s,s:s,s:i,s:I,s:I,s:I,s:b,s:b}", "name", img->name, "pool",
                     pool_name(pools, img->pool, pn, sizeof(pn)), "pool_id", (int)img->pool,
                     "num", (json_int_t)img->num, "inode", (json_int_t)img->inode, "size",
                     (json_int_t)img->size, "readonly", img->readonly, "deleted", img->deleted);
}

/* An image from its config/inode key/value; false when the key is not one. */
static bool image_from_kv(const struct vs_meta_kv *kv, struct vs_image_meta *img)
{
    char key[128], err[ERR_SIZE];
    unsigned pool;
    uint64_t num;
    int used = 0;
    memset(img, 0, sizeof(*img));
    snprintf(key, sizeof(key), "%.*s", (int)VS_MIN(kv->key_len, 120), kv->key);
    if (sscanf(key, "config/inode/%u/%" SCNu64 "%n", &pool, &num, &used) != 2 ||
        key[used] != 0 || pool < 1 || pool > 65535 || num < 1 || num > VS_IMAGE_NUM_MAX)
        return false;
    img->pool = (uint16_t)pool;
    img->num = num;
    img->inode = (uint64_t)pool << 48 | num;
    json_t *v = json_loadb((const char *)kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
    const char *name = json_string_value(json_object_get(v, "name"));
    snprintf(img->name, sizeof(img->name), "%s", name ? name : "?");
    return fill_inode(img, v, err, sizeof(err)) == 0;
}

static int cmp_rows(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    return strcmp(json_string_value(json_object_get(x, "name")),
                  json_string_value(json_object_get(y, "name")));
}

/* Every image, sorted by name. */
static int image_list(const struct cli_meta *m, json_t **rows)
{
    json_t *pools = NULL;
    uint64_t rev;
    struct vs_meta_sync_result res = {0};
    int rc = cli_meta_get(&m->o, "config/pools", &pools, &rev);
    if (rc == 0 || rc == -ENOENT)
        rc = cli_meta_list(&m->o, "config/inode/", 0, &res);
    unsigned n = rc == 0 ? res.txn.ops[0].n_kvs : 0, k = 0;
    json_t **tmp = calloc(n + 1, sizeof(json_t *));
    for (unsigned i = 0; tmp && i < n; i++) {
        struct vs_image_meta img;
        if (image_from_kv(&res.txn.ops[0].kvs[i], &img) && (tmp[k] = image_json(&img, pools)))
            k++;
        vs_image_meta_free(&img);
    }
    qsort(tmp, k, sizeof(json_t *), cmp_rows);
    *rows = json_array();
    for (unsigned i = 0; i < k; i++)
        json_array_append_new(*rows, tmp[i]);
    free(tmp);
    vs_meta_sync_free(&res);
    json_decref(pools);
    return rc == 0 && !tmp ? -ENOMEM : rc;
}

static void print_json(json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    printf("%s\n", text ? text : "null");
    free(text);
}

int vs_cmd_ls(struct vs_cmd_ctx *ctx)
{
    struct cli_meta m;
    int code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    json_t *rows = NULL;
    int rc = image_list(&m, &rows);
    if (rc < 0) {
        json_decref(rows);
        return cli_meta_fail(ctx, rc, NULL);
    }
    if (vs_cmd_flag(ctx, "json")) {
        print_json(rows);
    } else {
        printf("%-32s %-20s %12s %10s %s\n", "NAME", "POOL", "SIZE", "NUMBER", "FLAGS");
        size_t i;
        json_t *r;
        json_array_foreach(rows, i, r) {
            char size[32];
            cli_format_size((uint64_t)json_integer_value(json_object_get(r, "size")), size,
                            sizeof(size));
            printf("%-32s %-20s %12s %10lld %s%s\n", json_string_value(json_object_get(r, "name")),
                   json_string_value(json_object_get(r, "pool")), size,
                   (long long)json_integer_value(json_object_get(r, "num")),
                   json_is_true(json_object_get(r, "readonly")) ? "readonly " : "",
                   json_is_true(json_object_get(r, "deleted")) ? "deleted" : "");
        }
    }
    json_decref(rows);
    return VS_EXIT_OK;
}

static void print_info(const json_t *j)
{
    char size[32];
    cli_format_size((uint64_t)json_integer_value(json_object_get(j, "size")), size, sizeof(size));
    printf("name:       %s\n", json_string_value(json_object_get(j, "name")));
    printf("pool:       %s (id %lld)\n", json_string_value(json_object_get(j, "pool")),
           (long long)json_integer_value(json_object_get(j, "pool_id")));
    printf("number:     %lld\n", (long long)json_integer_value(json_object_get(j, "num")));
    printf("inode:      0x%016llx\n",
           (unsigned long long)json_integer_value(json_object_get(j, "inode")));
    printf("size:       %s (%lld bytes)\n", size,
           (long long)json_integer_value(json_object_get(j, "size")));
    printf("flags:      %s%s\n", json_is_true(json_object_get(j, "readonly")) ? "readonly " : "",
           json_is_true(json_object_get(j, "deleted")) ? "deleted" : "");
    printf("created:    revision %lld\n",
           (long long)json_integer_value(json_object_get(j, "created_revision")));
    printf("modified:   revision %lld\n",
           (long long)json_integer_value(json_object_get(j, "modified_revision")));
    json_t *stats = json_object_get(j, "stats");
    const char *op;
    json_t *s;
    json_object_foreach(stats, op, s)
        printf("%-10s  %lld iops, %lld B/s, %lld us\n", op,
               (long long)json_integer_value(json_object_get(s, "iops")),
               (long long)json_integer_value(json_object_get(s, "bps")),
               (long long)json_integer_value(json_object_get(s, "lat_us")));
}

int vs_cmd_info(struct vs_cmd_ctx *ctx)
{
    char err[ERR_SIZE], key[64];
    struct cli_meta m;
    int code = cli_meta_init(ctx, &m);
    if (code != VS_EXIT_OK)
        return code;
    struct vs_image_meta img;
    int rc = vs_image_meta_lookup(&m.o, ctx->argv[0], &img, err, sizeof(err));
    if (rc < 0) {
        vs_image_meta_free(&img);
        return cli_meta_fail(ctx, rc, err);
    }
    json_t *pools = NULL, *stats = NULL;
    uint64_t rev;
    cli_meta_get(&m.o, "config/pools", &pools, &rev);
    snprintf(key, sizeof(key), "inode/stats/%u/%" PRIu64, img.pool, img.num);
    cli_meta_get(&m.o, key, &stats, &rev);
    json_t *j = image_json(&img, pools);
    json_object_set_new(j, "created_revision", json_integer((json_int_t)img.create_rev));
    json_object_set_new(j, "modified_revision", json_integer((json_int_t)img.mod_rev));
    json_object_set(j, "config", img.value);
    if (json_is_object(stats))
        json_object_set(j, "stats", stats);
    if (vs_cmd_flag(ctx, "json"))
        print_json(j);
    else
        print_info(j);
    json_decref(j), json_decref(pools), json_decref(stats);
    vs_image_meta_free(&img);
    return VS_EXIT_OK;
}
