/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fuzz_mon_plan.c -- libFuzzer target for the monitor's pure core: whatever
 * operators, OSDs or a broken writer put into the keys it reads, vs_mon_plan()
 * and vs_mon_stats_fold() never crash, leak or assert.
 *
 * Input: lines "KEY<TAB>VALUE", or "-KEY" to delete a key. They are applied
 * to a small healthy cluster (three OSDs in three
 * hosts, one pool), replacing keys of the same name, so the fuzzer starts from
 * states that reach every step of the plan. Pools with more than 256 PGs are
 * skipped: a big solve is slow, not interesting here.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mon/monitor.h"

#define KVS_MAX 64

static const char *const base[][2] = {
    {"osd/state/1", "{\"host\":\"h1\",\"size_bytes\":1000000000000}"},
    {"osd/state/2", "{\"host\":\"h2\",\"size_bytes\":1000000000000}"},
    {"osd/state/3", "{\"host\":\"h3\",\"size_bytes\":2000000000000}"},
    {"config/pools", "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":2,"
                     "\"pg_minsize\":1,\"pg_count\":4}}"},
    {"config/pgs", "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":2,\"pgs\":["
                   "{\"osd_set\":[1,2],\"primary\":1,\"history\":[[1,3]]},"
                   "{\"osd_set\":[2,3],\"primary\":2},{\"osd_set\":[3,1],\"primary\":3},"
                   "{\"osd_set\":[1,2],\"primary\":2}]}}}"},
    {"pg/state/1/0", "{\"primary\":1,\"state\":[\"active\"],\"peers\":[1,2]}"},
    {"osd/stats/1", "{\"ops\":{\"read\":{\"count\":5,\"bytes\":20480,\"usec\":50}},"
                    "\"inodes\":{\"281474976710657\":{\"read\":{\"count\":5}}}}"},
    {"config/inode/1/1", "{\"name\":\"i\",\"size\":4096}"},
};

struct input {
    char *key[KVS_MAX], *value[KVS_MAX];
    unsigned n;
};

static void put(struct input *in, const char *k, size_t klen, const char *v, size_t vlen)
{
    unsigned i = 0;
    while (i < in->n && (strlen(in->key[i]) != klen || memcmp(in->key[i], k, klen) != 0))
        i++;
    if (i == in->n) {
        if (in->n == KVS_MAX)
            return;
        in->key[in->n++] = strndup(k, klen);
    } else {
        free(in->value[i]);
    }
    in->value[i] = strndup(v, vlen);
}

static void del(struct input *in, const char *k, size_t klen)
{
    for (unsigned i = 0; i < in->n; i++) {
        if (strlen(in->key[i]) == klen && memcmp(in->key[i], k, klen) == 0) {
            free(in->key[i]), free(in->value[i]);
            in->key[i] = in->key[--in->n];
            in->value[i] = in->value[in->n];
            return;
        }
    }
}

/* Too many PGs for a quick solve? */
static bool big_pools(const struct input *in)
{
    for (unsigned i = 0; i < in->n; i++) {
        if (strcmp(in->key[i], "config/pools") != 0)
            continue;
        json_t *j = json_loads(in->value[i], JSON_DECODE_ANY, NULL), *p;
        const char *id;
        bool big = false;
        json_object_foreach(j, id, p) {
            json_t *c = json_object_get(p, "pg_count");
            big = big || (json_is_integer(c) && json_integer_value(c) > 256);
        }
        json_decref(j);
        return big;
    }
    return false;
}

static void run(const struct input *in)
{
    struct vs_meta_kv kvs[KVS_MAX];
    for (unsigned i = 0; i < in->n; i++)
        kvs[i] = (struct vs_meta_kv){
            .key = (const uint8_t *)in->key[i], .key_len = (uint32_t)strlen(in->key[i]),
            .value = (const uint8_t *)in->value[i], .value_len = (uint32_t)strlen(in->value[i]),
            .create_rev = i + 1, .mod_rev = 2 * i + 1, .version = 1,
        };
    struct vs_mon_plan_opts opts = {.seed = 3};
    struct vs_mon_plan plan;
    if (vs_mon_plan(kvs, in->n, &opts, &plan) == 0)
        vs_mon_plan_free(&plan);
    struct vs_mon_stats *st;
    if (vs_mon_stats_create(&st) == 0) {
        struct vs_mon_txn txn;
        vs_mon_txn_init(&txn);
        vs_mon_stats_fold(st, 1000, kvs, in->n, &txn);
        vs_mon_stats_fold(st, 3000, kvs, in->n, &txn);
        vs_mon_txn_free(&txn);
        vs_mon_stats_free(st);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct input in = {0};
    for (unsigned i = 0; i < sizeof(base) / sizeof(base[0]); i++)
        put(&in, base[i][0], strlen(base[i][0]), base[i][1], strlen(base[i][1]));
    const char *p = (const char *)data, *end = p + size;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        const char *tab = memchr(p, '\t', (size_t)(line_end - p));
        if (tab && tab > p && tab - p < 4096)
            put(&in, p, (size_t)(tab - p), tab + 1, (size_t)(line_end - tab - 1));
        else if (!tab && line_end > p + 1 && *p == '-')
            del(&in, p + 1, (size_t)(line_end - p - 1));
        p = line_end + 1;
    }
    if (!big_pools(&in))
        run(&in);
    for (unsigned i = 0; i < in.n; i++)
        free(in.key[i]), free(in.value[i]);
    return 0;
}
