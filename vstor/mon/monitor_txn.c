/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_txn.c -- transactions that own their keys and values. The monitor's
 * plans and the pool/image commands build their compare-and-swap
 * transactions with these, then hand a struct vs_meta_txn view to the
 * metadata service.
 */
#include "monitor.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void vs_mon_txn_init(struct vs_mon_txn *t)
{
    memset(t, 0, sizeof(*t));
}

void vs_mon_txn_free(struct vs_mon_txn *t)
{
    for (unsigned i = 0; i < t->n_mem; i++)
        free(t->mem[i]);
    free(t->mem);
    free(t->cmp);
    free(t->ops);
    free(t->fail_ops);
    memset(t, 0, sizeof(*t));
}

bool vs_mon_txn_ok(const struct vs_mon_txn *t)
{
    return !t->oom;
}

/* Makes room for one more item in *arr (of size elem); false on ENOMEM. */
static bool grow(struct vs_mon_txn *t, void **arr, unsigned n, unsigned *cap, size_t elem)
{
    if (t->oom)
        return false;
    if (n < *cap)
        return true;
    unsigned ncap = *cap ? *cap * 2 : 8;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p) {
        t->oom = true;
        return false;
    }
    *arr = p;
    *cap = ncap;
    return true;
}

/* An owned copy of len bytes (plus a NUL), or NULL with oom set. */
static char *own(struct vs_mon_txn *t, const char *s, size_t len)
{
    if (!grow(t, (void **)&t->mem, t->n_mem, &t->cap_mem, sizeof(char *)))
        return NULL;
    char *p = malloc(len + 1);
    if (!p) {
        t->oom = true;
        return NULL;
    }
    memcpy(p, s, len);
    p[len] = 0;
    t->mem[t->n_mem++] = p;
    return p;
}

void vs_mon_txn_expect_mod(struct vs_mon_txn *t, const char *key, uint64_t mod_rev)
{
    char *k = own(t, key, strlen(key));
    if (!k || !grow(t, (void **)&t->cmp, t->n_cmp, &t->cap_cmp, sizeof(*t->cmp)))
        return;
    t->cmp[t->n_cmp++] = (struct vs_meta_compare){
        .key = k,
        .key_len = (uint32_t)strlen(k),
        .target = mod_rev ? VS_META_CMP_MOD : VS_META_CMP_CREATE,
        .op = VS_META_EQ,
        .number = mod_rev,
    };
}

static struct vs_meta_op *add_op(struct vs_mon_txn *t, bool fail, const char *key)
{
    char *k = own(t, key, strlen(key));
    struct vs_meta_op **arr = fail ? &t->fail_ops : &t->ops;
    unsigned *n = fail ? &t->n_fail : &t->n_ops;
    unsigned *cap = fail ? &t->cap_fail : &t->cap_ops;
    if (!k || !grow(t, (void **)arr, *n, cap, sizeof(**arr)))
        return NULL;
    struct vs_meta_op *op = &(*arr)[(*n)++];
    *op = (struct vs_meta_op){.key = k, .key_len = (uint32_t)strlen(k)};
    return op;
}

void vs_mon_txn_put(struct vs_mon_txn *t, const char *key, const char *value)
{
    struct vs_meta_op *op = add_op(t, false, key);
    char *v = op ? own(t, value, strlen(value)) : NULL;
    if (!v) {
        if (op)
            t->n_ops--;
        return;
    }
    op->type = VS_META_OP_PUT;
    op->value = v;
    op->value_len = (uint32_t)strlen(v);
}

void vs_mon_txn_put_json(struct vs_mon_txn *t, const char *key, const json_t *v)
{
    char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
        t->oom = true;
        return;
    }
    vs_mon_txn_put(t, key, text);
    free(text);
}

void vs_mon_txn_delete(struct vs_mon_txn *t, const char *key)
{
    struct vs_meta_op *op = add_op(t, false, key);
    if (op)
        op->type = VS_META_OP_DELETE;
}

void vs_mon_txn_delete_prefix(struct vs_mon_txn *t, const char *prefix)
{
    uint8_t end[VS_META_KEY_MAX + 1];
    size_t len = strlen(prefix);
    if (len > VS_META_KEY_MAX) {
        t->oom = true; /* a programmer error as much as anything: refuse the txn */
        return;
    }
    uint32_t end_len = vs_meta_prefix_end(prefix, (uint32_t)len, end);
    struct vs_meta_op *op = add_op(t, false, prefix);
    char *e = op ? own(t, (const char *)end, end_len) : NULL;
    if (!e) {
        if (op)
            t->n_ops--;
        return;
    }
    op->type = VS_META_OP_DELETE;
    op->range_end = e;
    op->range_end_len = end_len;
}

void vs_mon_txn_fail_get(struct vs_mon_txn *t, const char *key)
{
    struct vs_meta_op *op = add_op(t, true, key);
    if (op)
        op->type = VS_META_OP_RANGE;
}

void vs_mon_txn_view(const struct vs_mon_txn *t, struct vs_meta_txn *out)
{
    *out = (struct vs_meta_txn){
        .cmp = t->cmp,
        .success = t->ops,
        .failure = t->fail_ops,
        .n_cmp = t->n_cmp,
        .n_success = t->n_ops,
        .n_failure = t->n_fail,
    };
}
