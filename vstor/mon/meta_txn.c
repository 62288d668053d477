/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_txn.c -- `vstor meta txn` (a transaction written in JSON) and
 * `vstor meta compact`.
 *
 * The transaction, from --file or stdin:
 *   {"compare": [{"key": K, "target": "value"|"version"|"create"|"mod"|"lease",
 *                 "op": "="|"!="|"<"|">", "value": V | "number": N}, ...],
 *    "success": [OP, ...], "failure": [OP, ...]}
 *   OP = {"put": {"key": K, "value": V, "lease": N, "prev_kv": bool}}
 *      | {"delete": {"key": K, "prefix": bool, "prev_kv": bool}}
 *      | {"get": {"key": K, "prefix": bool, "limit": N}}
 * A value V that is a JSON string is stored as its text; any other JSON is
 * stored compactly serialised (vstor values are JSON documents).
 */
#include "cmd.h"
#include "meta.h"

#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct txn_mem {
    char *strs[3 * VS_META_TXN_OPS_MAX / 64];
    unsigned n;
};

static const char *keep(struct txn_mem *m, char *s)
{
    if (!s || m->n == sizeof(m->strs) / sizeof(m->strs[0])) {
        free(s);
        return NULL;
    }
    m->strs[m->n++] = s;
    return s;
}

static const char *value_text(struct txn_mem *m, json_t *v, uint32_t *len)
{
    const char *s;
    if (json_is_string(v)) {
        s = json_string_value(v);
        *len = (uint32_t)json_string_length(v);
        return s;
    }
    s = keep(m, json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY));
    *len = s ? (uint32_t)strlen(s) : 0;
    return s;
}

static int parse_op(struct txn_mem *m, json_t *j, struct vs_meta_op *op, char *err, size_t esz)
{
    memset(op, 0, sizeof(*op));
    void *it = json_is_object(j) && json_object_size(j) == 1 ? json_object_iter(j) : NULL;
    if (!it) {
        snprintf(err, esz, "an op is an object with one of put, delete, get");
        return -EINVAL;
    }
    const char *kind = json_object_iter_key(it);
    json_t *body = json_object_iter_value(it);
    json_t *key = json_object_get(body, "key");
    if (!json_is_string(key)) {
        snprintf(err, esz, "%s: missing \"key\"", kind);
        return -EINVAL;
    }
    op->key = json_string_value(key);
    op->key_len = (uint32_t)json_string_length(key);
    bool prefix = json_is_true(json_object_get(body, "prefix"));
    if (prefix) {
        uint8_t *end = malloc(op->key_len + 1);
        if (!end || !keep(m, (char *)end))
            return -ENOMEM;
        op->range_end_len = vs_meta_prefix_end(op->key, op->key_len, end);
        op->range_end = end;
    }
    op->flags = json_is_true(json_object_get(body, "prev_kv")) ? VS_META_PREV_KV : 0;
    if (strcmp(kind, "put") == 0) {
        json_t *v = json_object_get(body, "value");
        op->type = VS_META_OP_PUT;
        op->value = v ? value_text(m, v, &op->value_len) : "";
        op->lease = (uint64_t)json_integer_value(json_object_get(body, "lease"));
        return prefix ? -EINVAL : 0;
    }
    if (strcmp(kind, "delete") == 0) {
        op->type = VS_META_OP_DELETE;
        return 0;
    }
    if (strcmp(kind, "get") == 0) {
        op->type = VS_META_OP_RANGE;
        op->flags = 0;
        op->limit = (uint64_t)json_integer_value(json_object_get(body, "limit"));
        return 0;
    }
    snprintf(err, esz, "unknown op '%s' (want put, delete or get)", kind);
    return -EINVAL;
}

static int parse_cmp(struct txn_mem *m, json_t *j, struct vs_meta_compare *c, char *err,
                     size_t esz)
{
    static const char *const targets[] = {"value", "version", "create", "mod", "lease"};
    static const char *const ops[] = {"=", "!=", "<", ">"};
    memset(c, 0, sizeof(*c));
    json_t *key = json_object_get(j, "key");
    const char *t = json_string_value(json_object_get(j, "target"));
    const char *o = json_string_value(json_object_get(j, "op"));
    int ti = -1, oi = -1;
    for (int i = 0; t && i < 5; i++)
        ti = strcmp(t, targets[i]) == 0 ? i : ti;
    for (int i = 0; o && i < 4; i++)
        oi = strcmp(o, ops[i]) == 0 ? i : oi;
    if (!json_is_string(key) || ti < 0 || oi < 0) {
        snprintf(err, esz, "a compare needs key, target (value|version|create|mod|lease)"
                           " and op (= != < >)");
        return -EINVAL;
    }
    c->key = json_string_value(key);
    c->key_len = (uint32_t)json_string_length(key);
    c->target = (uint8_t)ti;
    c->op = (uint8_t)oi;
    if (ti == VS_META_CMP_VALUE)
        c->value = value_text(m, json_object_get(j, "value"), &c->value_len);
    else
        c->number = (uint64_t)json_integer_value(json_object_get(j, "number"));
    return 0;
}

static int parse_ops(struct txn_mem *m, json_t *arr, struct vs_meta_op *out, unsigned *n,
                     char *err, size_t esz)
{
    size_t i;
    json_t *j;
    *n = 0;
    json_array_foreach(arr, i, j) {
        int rc = parse_op(m, j, &out[*n], err, esz);
        if (rc < 0)
            return rc;
        (*n)++;
    }
    return 0;
}

static void print_txn(struct vs_cmd_ctx *ctx, const struct vs_meta_sync_result *r)
{
    static const char *const names[] = {"get", "put", "delete"};
    if (!vs_cmd_flag(ctx, "json")) {
        printf("%s\n", r->txn.succeeded ? "SUCCESS" : "FAILURE");
        for (unsigned i = 0; i < r->txn.n_ops; i++) {
            const struct vs_meta_op_result *op = &r->txn.ops[i];
            if (op->type == VS_META_OP_DELETE)
                printf("%" PRIu64 "\n", op->deleted);
            for (unsigned k = 0; k < op->n_kvs; k++)
                printf("%.*s\n%.*s\n", (int)op->kvs[k].key_len, (const char *)op->kvs[k].key,
                       (int)op->kvs[k].value_len, (const char *)op->kvs[k].value);
        }
        return;
    }
    json_t *o = json_object();
    json_object_set_new(o, "succeeded", json_boolean(r->txn.succeeded));
    json_object_set_new(o, "revision", json_integer((json_int_t)r->txn.revision));
    json_t *resp = json_array();
    for (unsigned i = 0; i < r->txn.n_ops; i++) {
        const struct vs_meta_op_result *op = &r->txn.ops[i];
        json_t *one = json_object(), *kvs = json_array();
        for (unsigned k = 0; k < op->n_kvs; k++)
            json_array_append_new(kvs, meta_json_kv(&op->kvs[k], true));
        json_object_set_new(one, "kvs", kvs);
        json_object_set_new(one, "count", json_integer((json_int_t)op->count));
        json_object_set_new(one, "deleted", json_integer((json_int_t)op->deleted));
        json_array_append_new(resp, json_pack("{s:o}", names[op->type % 3], one));
    }
    json_object_set_new(o, "responses", resp);
    meta_print_json(o);
}

static int run_txn(struct vs_cmd_ctx *ctx, json_t *doc, struct txn_mem *m, char *err, size_t esz)
{
    json_t *cmps = json_object_get(doc, "compare"), *succ = json_object_get(doc, "success"),
           *fail = json_object_get(doc, "failure");
    size_t nc = json_array_size(cmps), ns = json_array_size(succ), nf = json_array_size(fail);
    if (nc + ns + nf > VS_META_TXN_OPS_MAX) {
        snprintf(err, esz, "too many compares and ops (%u at most)", VS_META_TXN_OPS_MAX);
        return -EINVAL;
    }
    struct vs_meta_compare *c = calloc(nc + 1, sizeof(*c));
    struct vs_meta_op *ops = calloc(ns + nf + 1, sizeof(*ops));
    int rc = c && ops ? 0 : -ENOMEM;
    for (size_t i = 0; i < nc && rc == 0; i++)
        rc = parse_cmp(m, json_array_get(cmps, i), &c[i], err, esz);
    unsigned n_s = 0, n_f = 0;
    if (rc == 0)
        rc = parse_ops(m, succ, ops, &n_s, err, esz);
    if (rc == 0)
        rc = parse_ops(m, fail, ops + n_s, &n_f, err, esz);
    struct vs_meta_client_opts o;
    struct meta_members mm;
    if (rc == 0 && vs_meta_client_opts_from(ctx, &o, &mm) != VS_EXIT_OK)
        rc = -EINVAL;
    if (rc == 0) {
        struct vs_meta_txn txn = {.cmp = c, .n_cmp = (unsigned)nc, .success = ops,
                                  .n_success = n_s, .failure = ops + n_s, .n_failure = n_f};
        struct vs_meta_sync_result r;
        rc = vs_meta_sync_txn(&o, &txn, &r);
        if (rc == 0)
            print_txn(ctx, &r);
        vs_meta_sync_free(&r);
        if (rc < 0)
            snprintf(err, esz, "%s", vs_strerror(rc));
    }
    free(c);
    free(ops);
    return rc;
}

int vs_cmd_meta_txn(struct vs_cmd_ctx *ctx)
{
    const char *file = vs_cmd_opt(ctx, "file");
    json_error_t je;
    json_t *doc = file ? json_load_file(file, 0, &je) : json_loadf(stdin, 0, &je);
    if (!json_is_object(doc)) {
        vs_cmd_error(ctx, "%s:%d:%d: %s", file ? file : "stdin", je.line, je.column,
                     doc ? "want a JSON object" : je.text);
        json_decref(doc);
        return VS_EXIT_USAGE;
    }
    struct txn_mem *m = calloc(1, sizeof(*m));
    char err[256] = "";
    int rc = m ? run_txn(ctx, doc, m, err, sizeof(err)) : -ENOMEM;
    for (unsigned i = 0; m && i < m->n; i++)
        free(m->strs[i]);
    free(m);
    json_decref(doc);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err[0] ? err : vs_strerror(rc));
        return rc == -EINVAL ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    return VS_EXIT_OK;
}

int vs_cmd_meta_compact(struct vs_cmd_ctx *ctx)
{
    uint64_t rev;
    if (vs_parse_u64(ctx->argv[0], &rev) < 0 || rev == 0) {
        vs_cmd_error(ctx, "revision '%s' is not a number > 0", ctx->argv[0]);
        return VS_EXIT_USAGE;
    }
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_compact(&o, rev, &r);
    if (rc < 0)
        return meta_fail(ctx, rc);
    if (vs_cmd_flag(ctx, "json"))
        meta_print_json(json_pack("{s:I}", "compacted", (json_int_t)rev));
    else
        printf("compacted revision %" PRIu64 "\n", rev);
    return VS_EXIT_OK;
}
