/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_stats.c -- per op type: count, bytes, total latency and a latency
 * histogram; per image: count, bytes and latency of client ops. Every
 * osd_stats_interval the OSD stores them in the metadata leader's memory
 * (vs_meta_volatile_put, never in the Raft log), one put in flight at most
 * and none while the service is down: statistics never compete with leases
 * and PG states (docs/monitor.md §4 is the format the monitor folds).
 *
 * The histogram has OSD_HIST_BUCKETS power-of-two buckets: bucket i counts
 * ops that took less than 2^(i+1) us (bucket 0: under 2 us), the last bucket
 * everything slower.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INODES_MAX 4096 /* images tracked; more are counted only in the totals */

static const char *const names[ST_COUNT] = {
    [ST_READ] = "read",           [ST_WRITE] = "write",
    [ST_DELETE] = "delete",       [ST_SYNC] = "sync",
    [ST_SEC_READ] = "sec_read",   [ST_SEC_WRITE] = "sec_write",
    [ST_SEC_DELETE] = "sec_delete", [ST_SEC_SYNC] = "sec_sync",
    [ST_SEC_STABILIZE] = "sec_stabilize", [ST_SEC_ROLLBACK] = "sec_rollback",
    [ST_SEC_LIST] = "sec_list",   [ST_SEC_LOCK] = "sec_lock",
    [ST_SEC_READ_BITMAP] = "sec_read_bitmap", [ST_RECOVERY] = "recovery",
};

struct inode_stat {
    uint64_t inode; /* 0: free */
    uint64_t v[3][3]; /* read, write, delete x count, bytes, usec */
};

struct osd_stats_state {
    uv_timer_t timer;
    bool busy;
    struct inode_stat *inodes; /* INODES_MAX * 2 slots, open addressing */
    uint32_t n_inodes;
};

static void inode_add(struct osd_stats_state *ss, enum osd_stat st, uint64_t inode,
                      uint64_t bytes, uint64_t us)
{
    if (!ss || !ss->inodes || inode == 0 || st > ST_DELETE)
        return;
    uint32_t mask = INODES_MAX * 2 - 1;
    uint32_t i = (uint32_t)((inode * 0x9E3779B97F4A7C15ull) >> 40) & mask;
    while (ss->inodes[i].inode && ss->inodes[i].inode != inode)
        i = (i + 1) & mask;
    struct inode_stat *s = &ss->inodes[i];
    if (!s->inode) {
        if (ss->n_inodes == INODES_MAX)
            return;
        s->inode = inode;
        ss->n_inodes++;
    }
    s->v[st][0]++;
    s->v[st][1] += bytes;
    s->v[st][2] += us;
}

void osd__stat_add(struct vs_osd *osd, enum osd_stat st, uint64_t inode, uint64_t bytes,
                   uint64_t start_ns)
{
    uint64_t now = vs_clock_mono_ns();
    uint64_t us = now > start_ns ? (now - start_ns) / 1000 : 0;
    struct osd_opstat *s = &osd->stats[st];
    s->count++;
    s->bytes += bytes;
    s->usec += us;
    unsigned b = us < 2 ? 0 : (unsigned)(63 - __builtin_clzll(us));
    s->hist[b < OSD_HIST_BUCKETS ? b : OSD_HIST_BUCKETS - 1]++;
    inode_add(osd->ss, st, inode, bytes, us);
}

static json_t *op_json(const uint64_t v[3])
{
    return json_pack("{s:I,s:I,s:I}", "count", (json_int_t)v[0], "bytes", (json_int_t)v[1],
                     "usec", (json_int_t)v[2]);
}

static json_t *ops_json(struct vs_osd *osd)
{
    json_t *ops = json_object();
    for (int i = 0; ops && i < ST_COUNT; i++) {
        const struct osd_opstat *s = &osd->stats[i];
        if (!s->count)
            continue;
        json_t *h = json_array();
        for (int b = 0; h && b < OSD_HIST_BUCKETS; b++)
            json_array_append_new(h, json_integer((json_int_t)s->hist[b]));
        uint64_t v[3] = {s->count, s->bytes, s->usec};
        json_t *o = op_json(v);
        if (o && h)
            json_object_set_new(o, "lat_hist", h);
        else
            json_decref(h);
        if (o)
            json_object_set_new(ops, names[i], o);
    }
    return ops;
}

static json_t *inodes_json(struct osd_stats_state *ss)
{
    static const char *const kinds[3] = {"read", "write", "delete"};
    json_t *all = json_object();
    for (uint32_t i = 0; all && ss->inodes && i < INODES_MAX * 2; i++) {
        const struct inode_stat *s = &ss->inodes[i];
        if (!s->inode)
            continue;
        json_t *o = json_object();
        for (int k = 0; o && k < 3; k++)
            if (s->v[k][0])
                json_object_set_new(o, kinds[k], op_json(s->v[k]));
        char key[24];
        snprintf(key, sizeof(key), "%" PRIu64, s->inode);
        if (o)
            json_object_set_new(all, key, o);
    }
    return all;
}

static void put_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct vs_osd *osd = ctx;
    (void)res;
    if (!osd->ss)
        return;
    osd->ss->busy = false;
    if (status < 0)
        VS_DEBUG_LOG(OSD_LOG, "statistics: %s", vs_strerror(status));
}

static void timer_cb(uv_timer_t *t)
{
    struct vs_osd *osd = t->data;
    struct osd_stats_state *ss = osd->ss;
    if (ss->busy || !osd->registered || !osd__meta_up(osd))
        return;
    struct vs_store_stats st;
    vs_store_get_stats(osd->store, &st);
    json_t *store = json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "writes", (json_int_t)st.op_write,
                              "fsyncs", (json_int_t)st.fsyncs, "checkpoints",
                              (json_int_t)st.checkpoints, "journal_waits",
                              (json_int_t)st.journal_waits, "bytes_user_written",
                              (json_int_t)st.bytes_user_written, "bytes_disk_written",
                              (json_int_t)st.bytes_disk_written);
    json_t *j = json_pack("{s:I,s:I,s:o,s:o,s:o}", "size_bytes", (json_int_t)(st.block_count *
                          st.block_size), "free_bytes", (json_int_t)st.bytes_free, "ops",
                          ops_json(osd), "inodes", inodes_json(ss), "store", store);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return;
    char key[40];
    snprintf(key, sizeof(key), "osd/stats/%u", osd->id);
    if (vs_meta_volatile_put(osd->meta, key, (uint32_t)strlen(key), text,
                             (uint32_t)strlen(text), put_cb, osd) == 0)
        ss->busy = true;
    free(text);
}

int osd__stats_start(struct vs_osd *osd)
{
    struct osd_stats_state *ss = calloc(1, sizeof(*ss));
    if (!ss)
        return -ENOMEM;
    ss->inodes = calloc(INODES_MAX * 2, sizeof(*ss->inodes));
    uv_timer_init(&osd->loop->uv, &ss->timer);
    ss->timer.data = osd;
    uint64_t ms = osd->cfg->osd_stats_interval;
    uv_timer_start(&ss->timer, timer_cb, ms, ms);
    osd->ss = ss;
    return 0;
}

static void timer_closed(uv_handle_t *h)
{
    struct osd_stats_state *ss = VS_CONTAINER_OF((uv_timer_t *)h, struct osd_stats_state,
                                                 timer);
    free(ss->inodes);
    free(ss);
}

void osd__stats_stop(struct vs_osd *osd)
{
    if (!osd->ss)
        return;
    uv_close((uv_handle_t *)&osd->ss->timer, timer_closed);
    osd->ss = NULL;
}
