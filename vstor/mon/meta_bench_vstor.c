/* SPDX-License-Identifier: GPL-3.0-or-later */
/* meta_bench_vstor.c -- the benchmark's vstor target: one vs_meta_client per
 * bench client (each with its own connections), plus one for watches. */
#include "meta_bench.h"

#include "vs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vt {
    struct vs_meta_client **clients;
    unsigned n, closing;
    struct vs_meta_client *watcher;
    struct vs_meta_watch *watch;
    void (*close_cb)(void *);
    void *close_arg;
};

struct vop {
    bench_done_fn cb;
    void *arg;
};

static int vt_open(uv_loop_t *loop, const char *const *ep, unsigned n_ep, unsigned n,
                   unsigned timeout_ms, void **out)
{
    struct vt *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->clients = calloc(n + 1, sizeof(*t->clients));
    struct vs_meta_client_opts o = {.members = ep, .n_members = n_ep,
                                    .op_timeout_ms = timeout_ms};
    int rc = t->clients ? 0 : -ENOMEM;
    for (unsigned i = 0; i < n + 1 && rc == 0; i++)
        rc = vs_meta_client_create(loop, &o, &t->clients[i]);
    if (rc < 0)
        return rc; /* the process exits on a failed open */
    t->n = n;
    t->watcher = t->clients[n];
    *out = t;
    return 0;
}

static struct vop *vop_new(bench_done_fn cb, void *arg)
{
    struct vop *o = malloc(sizeof(*o));
    if (o) {
        o->cb = cb;
        o->arg = arg;
    }
    return o;
}

static void txn_cb(void *arg, int status, const struct vs_meta_txn_result *res)
{
    struct vop *o = arg;
    o->cb(o->arg, status, NULL, 0, res && res->succeeded);
    free(o);
}

static void range_cb(void *arg, int status, const struct vs_meta_op_result *res, uint64_t rev)
{
    struct vop *o = arg;
    (void)rev;
    const struct vs_meta_kv *kv = res && res->n_kvs ? &res->kvs[0] : NULL;
    o->cb(o->arg, status, kv ? kv->value : NULL, kv ? kv->value_len : 0, false);
    free(o);
}

static int vt_put(void *vt, unsigned c, const char *key, const void *value, size_t len,
                  bench_done_fn cb, void *arg)
{
    struct vt *t = vt;
    struct vop *o = vop_new(cb, arg);
    if (!o)
        return -ENOMEM;
    int rc = vs_meta_put(t->clients[c], key, (uint32_t)strlen(key), value, (uint32_t)len, 0, 0,
                         txn_cb, o);
    if (rc < 0)
        free(o);
    return rc;
}

static int vt_get(void *vt, unsigned c, const char *key, bench_done_fn cb, void *arg)
{
    struct vt *t = vt;
    struct vop *o = vop_new(cb, arg);
    if (!o)
        return -ENOMEM;
    int rc = vs_meta_range(t->clients[c], key, (uint32_t)strlen(key), NULL, 0, 0, 0, range_cb, o);
    if (rc < 0)
        free(o);
    return rc;
}

static int vt_cas(void *vt, unsigned c, const char *key, const void *expect, size_t elen,
                  const void *value, size_t len, bench_done_fn cb, void *arg)
{
    struct vt *t = vt;
    struct vop *o = vop_new(cb, arg);
    if (!o)
        return -ENOMEM;
    uint32_t klen = (uint32_t)strlen(key);
    struct vs_meta_compare cmp = {.key = key, .key_len = klen};
    if (expect) {
        cmp.target = VS_META_CMP_VALUE;
        cmp.op = VS_META_EQ;
        cmp.value = expect;
        cmp.value_len = (uint32_t)elen;
    } else {
        cmp.target = VS_META_CMP_VERSION; /* absent: version 0 */
        cmp.op = VS_META_EQ;
    }
    struct vs_meta_op put = {.type = VS_META_OP_PUT, .key = key, .key_len = klen, .value = value,
                             .value_len = (uint32_t)len};
    struct vs_meta_txn txn = {.cmp = &cmp, .n_cmp = 1, .success = &put, .n_success = 1};
    int rc = vs_meta_txn(t->clients[c], &txn, txn_cb, o);
    if (rc < 0)
        free(o);
    return rc;
}

static int vt_volatile_put(void *vt, unsigned c, const char *key, const void *value, size_t len,
                           bench_done_fn cb, void *arg)
{
    struct vt *t = vt;
    struct vop *o = vop_new(cb, arg);
    if (!o)
        return -ENOMEM;
    int rc = vs_meta_volatile_put(t->clients[c], key, (uint32_t)strlen(key), value,
                                  (uint32_t)len, txn_cb, o);
    if (rc < 0)
        free(o);
    return rc;
}

struct lg {
    void (*cb)(void *arg, int status, uint64_t id);
    void *arg;
};

static void grant_cb(void *arg, int status, uint64_t id, uint64_t ttl_ms)
{
    struct lg *g = arg;
    (void)ttl_ms;
    g->cb(g->arg, status, id);
    free(g);
}

static int vt_lease_grant(void *vt, unsigned c, uint64_t ttl_ms,
                          void (*cb)(void *arg, int status, uint64_t id), void *arg)
{
    struct vt *t = vt;
    struct lg *g = malloc(sizeof(*g));
    if (!g)
        return -ENOMEM;
    g->cb = cb;
    g->arg = arg;
    int rc = vs_meta_lease_grant(t->clients[c], 0, ttl_ms, grant_cb, g);
    if (rc < 0)
        free(g);
    return rc;
}

static void keepalive_cb(void *arg, int status, uint64_t id, uint64_t remaining_ms)
{
    struct vop *o = arg;
    (void)id;
    (void)remaining_ms;
    o->cb(o->arg, status, NULL, 0, false);
    free(o);
}

static int vt_lease_keepalive(void *vt, unsigned c, uint64_t id, bench_done_fn cb, void *arg)
{
    struct vt *t = vt;
    struct vop *o = vop_new(cb, arg);
    if (!o)
        return -ENOMEM;
    int rc = vs_meta_lease_keepalive(t->clients[c], id, keepalive_cb, o);
    if (rc < 0)
        free(o);
    return rc;
}

struct lc {
    void (*cb)(void *arg, int status, const struct bench_log_counters *c);
    void *arg;
};

static void lc_status(void *arg, int status, const struct vs_raft_status *st)
{
    struct lc *l = arg;
    struct bench_log_counters c = {0};
    if (st)
        c = (struct bench_log_counters){st->log_entries_written, st->log_bytes_written,
                                        st->leader_id, st->term};
    l->cb(l->arg, status, &c);
    free(l);
}

static int vt_log_counters(void *vt, void (*cb)(void *, int, const struct bench_log_counters *),
                           void *arg)
{
    struct vt *t = vt;
    struct lc *l = malloc(sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->cb = cb;
    l->arg = arg;
    int rc = vs_meta_status(t->clients[0], NULL, lc_status, l); /* the leader's */
    if (rc < 0)
        free(l);
    return rc;
}

struct wctx {
    bench_event_fn cb;
    void *arg;
};

static struct wctx wctx;

static void watch_cb(void *arg, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t rev)
{
    struct wctx *w = arg;
    (void)rev;
    for (unsigned i = 0; status == 0 && i < n; i++)
        w->cb(w->arg, ev[i].kv.key, ev[i].kv.key_len);
}

static int vt_watch(void *vt, const char *prefix, bench_event_fn cb, void *arg)
{
    struct vt *t = vt;
    uint8_t end[256];
    uint32_t plen = (uint32_t)strlen(prefix);
    uint32_t elen = vs_meta_prefix_end(prefix, plen, end);
    wctx.cb = cb;
    wctx.arg = arg;
    return vs_meta_watch(t->watcher, prefix, plen, end, elen, 0, watch_cb, &wctx, &t->watch);
}

static void one_closed(void *arg)
{
    struct vt *t = arg;
    if (--t->closing > 0)
        return;
    void (*cb)(void *) = t->close_cb;
    void *cb_arg = t->close_arg;
    free(t->clients);
    free(t);
    cb(cb_arg);
}

static void vt_close(void *vt, void (*cb)(void *), void *arg)
{
    struct vt *t = vt;
    t->close_cb = cb;
    t->close_arg = arg;
    if (t->watch)
        vs_meta_watch_cancel(t->watch);
    t->closing = t->n + 1;
    for (unsigned i = 0; i < t->n + 1; i++)
        vs_meta_client_close(t->clients[i], one_closed, t);
}

const struct bench_target_ops bench_vstor_ops = {
    .name = "vstor", .open = vt_open, .put = vt_put, .get = vt_get, .cas = vt_cas,
    .watch = vt_watch, .volatile_put = vt_volatile_put, .log_counters = vt_log_counters,
    .lease_grant = vt_lease_grant, .lease_keepalive = vt_lease_keepalive, .close = vt_close,
};
