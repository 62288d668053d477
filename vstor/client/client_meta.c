/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_meta.c -- the production metadata implementation (a vs_meta_client
 * from raft/vs_raft.h) behind the client's ops table, vstor_client_create(),
 * and the blocking wrappers' own loop.
 *
 * The network cluster id (16 bytes in HELLO, docs/protocol.md) is the
 * metadata service's 64-bit cluster id, little-endian, in its first 8 bytes
 * and zero after: the OSD takes it from the same service, so a client and the
 * OSDs of one cluster always agree.
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct meta_id_req {
    void (*cb)(void *ctx, int rc, uint64_t id);
    void *ctx;
};

static void status_cb(void *ctx, int status, const struct vs_raft_status *st)
{
    struct meta_id_req *r = ctx;
    r->cb(r->ctx, status, status == 0 ? st->cluster_id : 0);
    free(r);
}

static int m_cluster_id(void *m, void (*cb)(void *ctx, int rc, uint64_t id), void *ctx)
{
    struct meta_id_req *r = malloc(sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->cb = cb;
    r->ctx = ctx;
    int rc = vs_meta_status(m, NULL, status_cb, r);
    if (rc < 0)
        free(r);
    return rc;
}

static int m_range(void *m, const void *key, uint32_t key_len, const void *end,
                   uint32_t end_len, vs_meta_range_cb cb, void *ctx)
{
    return vs_meta_range(m, key, key_len, end, end_len, 0, 0, cb, ctx);
}

static int m_watch(void *m, const void *key, uint32_t key_len, const void *end,
                   uint32_t end_len, uint64_t start_rev, vs_meta_watch_cb cb, void *ctx,
                   void **out)
{
    struct vs_meta_watch *w;
    int rc = vs_meta_watch(m, key, key_len, end, end_len, start_rev, cb, ctx, &w);
    if (rc == 0)
        *out = w;
    return rc;
}

static void m_watch_cancel(void *m, void *w)
{
    (void)m;
    vs_meta_watch_cancel(w);
}

static int m_txn(void *m, const struct vs_meta_txn *txn, vs_meta_txn_cb cb, void *ctx)
{
    return vs_meta_txn(m, txn, cb, ctx);
}

static void m_close(void *m, void (*cb)(void *ctx), void *ctx)
{
    vs_meta_client_close(m, cb, ctx);
}

static const struct client_meta_ops meta_ops = {
    .cluster_id = m_cluster_id,
    .range = m_range,
    .watch = m_watch,
    .watch_cancel = m_watch_cancel,
    .txn = m_txn,
    .close = m_close,
};

int client__meta_create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                        const struct client_meta_ops **ops, void **m)
{
    struct vs_meta_client_opts mo = {0};
    struct vs_meta_client *mc;
    mo.members = opts->mon_addresses;
    mo.n_members = opts->n_mon;
    /* Each request has a deadline; the client retries failed reads forever. */
    mo.op_timeout_ms = opts->meta_timeout_ms;
    int rc = vs_meta_client_create(loop, &mo, &mc);
    if (rc < 0)
        return rc;
    *ops = &meta_ops;
    *m = mc;
    return 0;
}

int vstor_client_create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                        struct vstor_client **out, char *err, size_t err_size)
{
    const struct client_meta_ops *ops;
    void *m;
    if (!opts || opts->n_mon == 0 || !opts->mon_addresses) {
        snprintf(err, err_size, "libvstor: no metadata service address (mon_address)");
        return -EINVAL;
    }
    int rc = client__check_opts(opts, err, err_size);
    if (rc < 0)
        return rc;
    rc = client__meta_create(loop, opts, &ops, &m);
    if (rc < 0) {
        snprintf(err, err_size, "libvstor: metadata client: %s", vs_strerror(rc));
        return rc;
    }
    rc = client__create(loop, opts, ops, m, out, err, err_size);
    if (rc < 0)
        ops->close(m, NULL, NULL);
    return rc;
}

/* ---- Blocking wrappers with a private loop ------------------------------------------ */

int vstor_blk_open(const struct vstor_client_opts *opts, const char *name,
                   struct vstor_blk **out, char *err, size_t err_size)
{
    struct vstor_blk *b = calloc(1, sizeof(*b));
    struct vstor_client *c;
    if (!b) {
        snprintf(err, err_size, "libvstor: out of memory");
        return -ENOMEM;
    }
    b->own = true;
    uv_loop_init(&b->own_loop);
    int rc = vstor_client_create(&b->own_loop, opts, &c, err, err_size);
    if (rc == 0) {
        rc = client__blk_attach(b, &b->own_loop, c, name, err, err_size);
        if (rc < 0)
            client__blk_detach(b);
    }
    if (rc < 0) {
        uv_run(&b->own_loop, UV_RUN_DEFAULT);
        uv_loop_close(&b->own_loop);
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void vstor_blk_close(struct vstor_blk *b)
{
    client__blk_detach(b);
    if (b->own) {
        uv_run(&b->own_loop, UV_RUN_DEFAULT);
        uv_loop_close(&b->own_loop);
    }
    free(b);
}
