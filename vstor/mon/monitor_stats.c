/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_stats.c -- vs_mon_stats_fold(): the OSDs' statistics, folded into
 * cluster and per-image rates at a bounded rate (docs/monitor.md,
 * "Statistics").
 *
 * OSDs never write statistics into the Raft log: each stores its counters in
 * the leader's memory with vs_meta_volatile_put("osd/stats/<id>") (last value
 * wins, lost on a leader change). Every stats interval the monitor reads them,
 * turns the increase of each counter since the previous fold into a rate, and
 * writes `stats` and inode/stats/<pool>/<num> -- in one transaction, and only
 * the values that changed, so an idle cluster writes nothing.
 *
 * A sample, all counters cumulative since the OSD started:
 *   {"size_bytes": N, "free_bytes": N,
 *    "ops":    {"read": {"count": N, "bytes": N, "usec": N}, "write": {...}, ...},
 *    "inodes": {"<inode>": {"read": {...}, "write": {...}}, ...}}
 * where <inode> is the decimal 64-bit inode (pool << 48 | number). A counter
 * that went down (the OSD restarted) counts from zero; an OSD's first sample
 * is only a baseline.
 */
#include "monitor_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vs_mon_stats_keys[] = {"osd/state/", "config/inode/", "inode/stats/", "stats",
                                         NULL};

static const char *const counters[] = {"count", "bytes", "usec"};

struct vs_mon_stats {
    json_t *prev;     /* OSD id -> its previous sample */
    uint64_t prev_ms;
    bool have_prev;
    uint32_t rotate;  /* first image written when more than the max changed */
};

int vs_mon_stats_create(struct vs_mon_stats **out)
{
    struct vs_mon_stats *st = calloc(1, sizeof(*st));
    if (!st || !(st->prev = json_object())) {
        free(st);
        return -ENOMEM;
    }
    *out = st;
    return 0;
}

void vs_mon_stats_free(struct vs_mon_stats *st)
{
    if (!st)
        return;
    json_decref(st->prev);
    free(st);
}

/* The fold of one call: sums of counter increases and the current documents. */
struct fold {
    json_t *cur;     /* OSD id -> sample (up OSDs) */
    json_t *ops;     /* op -> {count, bytes, usec} increases, cluster-wide */
    json_t *inodes;  /* "pool/num" -> op -> increases */
    json_t *images;  /* "pool/num" -> true: images that exist */
    json_t *stored;  /* "pool/num" -> stored inode/stats value */
    json_t *stats;   /* stored `stats`, or NULL */
    json_t *up;      /* OSD id -> true */
    uint64_t size_bytes, free_bytes;
};

static uint64_t u64_of(const json_t *j)
{
    return json_is_integer(j) && json_integer_value(j) > 0 ? (uint64_t)json_integer_value(j) : 0;
}

/* Adds the increase of one op's counters (cur - prev) into sums[op]. */
static int add_op(json_t *sums, const char *op, const json_t *cur, const json_t *prev)
{
    json_t *s = json_object_get(sums, op);
    if (!s) {
        s = json_pack("{s:I,s:I,s:I}", "count", (json_int_t)0, "bytes", (json_int_t)0, "usec",
                      (json_int_t)0);
        if (!s || json_object_set_new(sums, op, s) < 0)
            return -ENOMEM;
    }
    for (unsigned i = 0; i < 3; i++) {
        uint64_t c = u64_of(json_object_get(cur, counters[i]));
        uint64_t p = u64_of(json_object_get(prev, counters[i])); /* a new op starts at 0 */
        uint64_t d = c >= p ? c - p : c; /* a reset counts from zero */
        uint64_t sum = u64_of(json_object_get(s, counters[i])) + d;
        if (json_object_set_new(s, counters[i], json_integer((json_int_t)(sum & INT64_MAX))) < 0)
            return -ENOMEM;
    }
    return 0;
}

static int add_ops(json_t *sums, const json_t *cur_ops, const json_t *prev_ops)
{
    const char *op;
    json_t *c;
    json_object_foreach((json_t *)cur_ops, op, c) {
        if (!json_is_object(c))
            continue;
        int rc = add_op(sums, op, c, json_object_get(prev_ops, op));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_inodes(struct fold *f, const json_t *cur, const json_t *prev)
{
    const char *ino;
    json_t *c;
    json_object_foreach((json_t *)cur, ino, c) {
        uint64_t id;
        if (!mon__parse_dec(ino, strlen(ino), 1, UINT64_MAX, &id) || (id >> 48) == 0 ||
            (id & (((uint64_t)1 << 48) - 1)) == 0 || !json_is_object(c))
            continue;
        char name[48];
        snprintf(name, sizeof(name), "%" PRIu64 "/%" PRIu64, id >> 48,
                 id & (((uint64_t)1 << 48) - 1));
        json_t *sums = json_object_get(f->inodes, name);
        if (!sums && (!(sums = json_object()) || json_object_set_new(f->inodes, name, sums) < 0))
            return -ENOMEM;
        int rc = add_ops(sums, c, json_object_get(prev, ino));
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int add_sample(struct vs_mon_stats *st, struct fold *f, const char *id, json_t *s)
{
    if (!json_is_object(s) || !json_object_get(f->up, id))
        return 0; /* down OSDs' last samples linger in the leader's memory: skip them */
    if (json_object_set(f->cur, id, s) < 0)
        return -ENOMEM;
    f->size_bytes += u64_of(json_object_get(s, "size_bytes"));
    f->free_bytes += u64_of(json_object_get(s, "free_bytes"));
    json_t *prev = json_object_get(st->prev, id);
    if (!prev)
        return 0; /* a baseline */
    int rc = add_ops(f->ops, json_object_get(s, "ops"), json_object_get(prev, "ops"));
    if (rc == 0)
        rc = add_inodes(f, json_object_get(s, "inodes"), json_object_get(prev, "inodes"));
    return rc;
}

/* ---- Reading the key/values ---- */

static json_t *load(const struct vs_meta_kv *kv)
{
    return json_loadb((const char *)kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
}

static int one_kv(struct vs_mon_stats *st, struct fold *f, const char *key,
                  const struct vs_meta_kv *kv, bool samples)
{
    static const size_t lp = sizeof(VS_MON_STATS_VOLATILE) - 1;
    if (samples && strncmp(key, VS_MON_STATS_VOLATILE, lp) == 0) {
        json_t *s = load(kv);
        int rc = add_sample(st, f, key + lp, s);
        json_decref(s);
        return rc;
    }
    if (samples)
        return 0;
    if (strncmp(key, "osd/state/", 10) == 0)
        return json_object_set_new(f->up, key + 10, json_true());
    if (strncmp(key, "config/inode/", 13) == 0)
        return json_object_set_new(f->images, key + 13, json_true());
    if (strncmp(key, "inode/stats/", 12) == 0) {
        json_t *j = load(kv);
        return j ? json_object_set_new(f->stored, key + 12, j) : 0;
    }
    if (strcmp(key, "stats") == 0) {
        json_decref(f->stats);
        f->stats = load(kv);
    }
    return 0;
}

/* Two passes: the stored keys first (which OSDs are up), then the samples. */
static int read_kvs(struct vs_mon_stats *st, struct fold *f, const struct vs_meta_kv *kvs,
                    unsigned n)
{
    for (int pass = 0; pass < 2; pass++) {
        for (unsigned i = 0; i < n; i++) {
            char key[VS_META_KEY_MAX + 1];
            uint32_t len = kvs[i].key_len < VS_META_KEY_MAX ? kvs[i].key_len : VS_META_KEY_MAX;
            memcpy(key, kvs[i].key, len);
            key[len] = 0;
            int rc = one_kv(st, f, key, &kvs[i], pass == 1);
            if (rc < 0)
                return -ENOMEM;
        }
    }
    return 0;
}

/* ---- Rates and writes ---- */

static json_t *rates(const json_t *sums, uint64_t dt_ms)
{
    json_t *out = json_object();
    const char *op;
    json_t *s;
    json_object_foreach((json_t *)sums, op, s) {
        uint64_t c = u64_of(json_object_get(s, "count"));
        uint64_t b = u64_of(json_object_get(s, "bytes"));
        uint64_t us = u64_of(json_object_get(s, "usec"));
        json_t *r = json_pack("{s:I,s:I,s:I}", "iops", (json_int_t)(c * 1000 / dt_ms), "bps",
                              (json_int_t)(b / dt_ms * 1000 + b % dt_ms * 1000 / dt_ms), "lat_us",
                              (json_int_t)(c ? us / c : 0));
        if (!out || !r || json_object_set_new(out, op, r) < 0) {
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static int write_cluster(struct fold *f, uint64_t dt_ms, struct vs_mon_txn *txn)
{
    json_t *ops = rates(f->ops, dt_ms);
    json_t *v = ops ? json_pack("{s:I,s:I,s:I,s:I,s:o}", "osds_up",
                                (json_int_t)json_object_size(f->up), "images",
                                (json_int_t)json_object_size(f->images), "size_bytes",
                                (json_int_t)(f->size_bytes & INT64_MAX), "free_bytes",
                                (json_int_t)(f->free_bytes & INT64_MAX), "ops", ops)
                    : NULL;
    if (!v)
        return -ENOMEM;
    if (!f->stats || !json_equal(f->stats, v))
        vs_mon_txn_put_json(txn, "stats", v);
    json_decref(v);
    return 0;
}

static int write_images(struct vs_mon_stats *st, struct fold *f, uint64_t dt_ms,
                        struct vs_mon_txn *txn)
{
    size_t n = json_object_size(f->images), i = 0, written = 0;
    const char **names = calloc(n + 1, sizeof(char *));
    if (!names)
        return -ENOMEM;
    const char *name;
    json_t *x;
    json_object_foreach(f->images, name, x)
        names[i++] = name;
    for (i = 0; i < n && written < VS_MON_STATS_INODES_MAX; i++) {
        const char *img = names[(i + st->rotate) % n];
        json_t *sums = json_object_get(f->inodes, img), *old = json_object_get(f->stored, img);
        json_t *v = sums ? rates(sums, dt_ms) : NULL;
        if (sums && !v) {
            free(names);
            return -ENOMEM;
        }
        if (v && (old ? !json_equal(old, v) : json_object_size(v) > 0)) {
            char key[80];
            snprintf(key, sizeof(key), "inode/stats/%s", img);
            vs_mon_txn_put_json(txn, key, v);
            written++;
        }
        json_decref(v);
    }
    st->rotate += (uint32_t)i;
    free(names);
    return 0;
}

int vs_mon_stats_fold(struct vs_mon_stats *st, uint64_t now_ms, const struct vs_meta_kv *kvs,
                      unsigned n, struct vs_mon_txn *txn)
{
    struct fold f = {.cur = json_object(), .ops = json_object(), .inodes = json_object(),
                     .images = json_object(), .stored = json_object(), .up = json_object()};
    int rc = f.cur && f.ops && f.inodes && f.images && f.stored && f.up ? 0 : -ENOMEM;
    if (rc == 0)
        rc = read_kvs(st, &f, kvs, n);
    uint64_t dt_ms = now_ms - st->prev_ms;
    if (rc == 0 && st->have_prev && now_ms > st->prev_ms) {
        rc = write_cluster(&f, dt_ms, txn);
        if (rc == 0)
            rc = write_images(st, &f, dt_ms, txn);
    }
    if (rc == 0 && (!st->have_prev || now_ms > st->prev_ms)) {
        json_decref(st->prev);
        st->prev = json_incref(f.cur);
        st->prev_ms = now_ms;
        st->have_prev = true;
    }
    json_decref(f.cur), json_decref(f.ops), json_decref(f.inodes);
    json_decref(f.images), json_decref(f.stored), json_decref(f.stats), json_decref(f.up);
    return rc < 0 ? rc : (vs_mon_txn_ok(txn) ? 0 : -ENOMEM);
}
