/* SPDX-License-Identifier: GPL-3.0-or-later */
/* fake_store.c -- see fake_store.h. */
#include "fake_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fs_init(struct fake_store *s)
{
    memset(s, 0, sizeof(*s));
    s->rev = 1;
}

void fs_free(struct fake_store *s)
{
    for (unsigned i = 0; i < s->n; i++)
        free(s->kv[i].key), free(s->kv[i].value);
    s->n = 0;
}

static struct fs_kv *find(const struct fake_store *s, const char *key)
{
    for (unsigned i = 0; i < s->n; i++)
        if (strcmp(s->kv[i].key, key) == 0)
            return (struct fs_kv *)&s->kv[i];
    return NULL;
}

const struct fs_kv *fs_get(const struct fake_store *s, const char *key)
{
    return find(s, key);
}

static void put_at(struct fake_store *s, const char *key, const char *value, size_t vlen,
                   uint64_t rev)
{
    struct fs_kv *kv = find(s, key);
    if (!kv) {
        if (s->n == FS_MAX)
            abort();
        kv = &s->kv[s->n++];
        *kv = (struct fs_kv){.key = strdup(key), .create_rev = rev};
    }
    char *copy = malloc(vlen + 1); /* value may be the old one */
    memcpy(copy, value, vlen);
    copy[vlen] = 0;
    free(kv->value);
    kv->value = copy;
    kv->mod_rev = rev;
    kv->version++;
}

static void del_at(struct fake_store *s, struct fs_kv *kv)
{
    free(kv->key), free(kv->value);
    *kv = s->kv[--s->n];
}

void fs_put(struct fake_store *s, const char *key, const char *value)
{
    put_at(s, key, value, strlen(value), ++s->rev);
}

void fs_putf(struct fake_store *s, const char *key, const char *fmt, ...)
{
    char buf[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    fs_put(s, key, buf);
}

void fs_del(struct fake_store *s, const char *key)
{
    struct fs_kv *kv = find(s, key);
    if (kv) {
        s->rev++;
        del_at(s, kv);
    }
}

static bool cmp_ok(const struct fake_store *s, const struct vs_meta_compare *c)
{
    char key[VS_META_KEY_MAX + 1];
    memcpy(key, c->key, c->key_len);
    key[c->key_len] = 0;
    const struct fs_kv *kv = find(s, key);
    uint64_t v = 0;
    if (c->target == VS_META_CMP_MOD)
        v = kv ? kv->mod_rev : 0;
    else if (c->target == VS_META_CMP_CREATE)
        v = kv ? kv->create_rev : 0;
    else if (c->target == VS_META_CMP_VERSION)
        v = kv ? kv->version : 0;
    else
        abort(); /* the monitor uses no other compares */
    switch (c->op) {
    case VS_META_EQ: return v == c->number;
    case VS_META_NE: return v != c->number;
    case VS_META_LT: return v < c->number;
    default: return v > c->number;
    }
}

static bool in_range(const char *key, const struct vs_meta_op *op)
{
    size_t klen = strlen(key);
    int lo = memcmp(key, op->key, klen < op->key_len ? klen : op->key_len);
    if (lo < 0 || (lo == 0 && klen < op->key_len))
        return false;
    int hi = memcmp(key, op->range_end, klen < op->range_end_len ? klen : op->range_end_len);
    return hi < 0 || (hi == 0 && klen < op->range_end_len);
}

bool fs_txn(struct fake_store *s, const struct vs_meta_txn *txn)
{
    for (unsigned i = 0; i < txn->n_cmp; i++)
        if (!cmp_ok(s, &txn->cmp[i]))
            return false;
    uint64_t rev = s->rev + 1;
    bool changed = false;
    for (unsigned i = 0; i < txn->n_success; i++) {
        const struct vs_meta_op *op = &txn->success[i];
        char key[VS_META_KEY_MAX + 1];
        memcpy(key, op->key, op->key_len);
        key[op->key_len] = 0;
        if (op->type == VS_META_OP_PUT) {
            put_at(s, key, op->value, op->value_len, rev);
            changed = true;
        } else if (op->type == VS_META_OP_DELETE && op->range_end_len == 0) {
            struct fs_kv *kv = find(s, key);
            if (kv)
                del_at(s, kv), changed = true;
        } else if (op->type == VS_META_OP_DELETE) {
            for (unsigned j = 0; j < s->n;)
                if (in_range(s->kv[j].key, op))
                    del_at(s, &s->kv[j]), changed = true;
                else
                    j++;
        }
    }
    if (changed)
        s->rev = rev;
    return true;
}

unsigned fs_select(const struct fake_store *s, const char *const *keys, struct vs_meta_kv *out,
                   unsigned max)
{
    unsigned n = 0;
    for (unsigned i = 0; i < s->n && n < max; i++) {
        const struct fs_kv *kv = &s->kv[i];
        bool match = false;
        for (unsigned k = 0; keys[k] && !match; k++) {
            size_t len = strlen(keys[k]);
            match = keys[k][len - 1] == '/' ? strncmp(kv->key, keys[k], len) == 0
                                            : strcmp(kv->key, keys[k]) == 0;
        }
        if (!match)
            continue;
        out[n++] = (struct vs_meta_kv){
            .key = (const uint8_t *)kv->key, .key_len = (uint32_t)strlen(kv->key),
            .value = (const uint8_t *)kv->value, .value_len = (uint32_t)strlen(kv->value),
            .create_rev = kv->create_rev, .mod_rev = kv->mod_rev, .version = kv->version,
        };
    }
    return n;
}
