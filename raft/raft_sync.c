/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_sync.c -- blocking helpers for command-line tools and tests: each
 * runs one client op on a private libuv loop and copies the result into
 * memory the caller owns (vs_meta_sync_free).
 */
#include "raft_cl.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct sync_run {
    struct vs_meta_sync_result *res;
    bool done;
    bool closed;
};

/* Copies a txn result into one allocation that res->mem owns. */
static int copy_txn(struct vs_meta_sync_result *res, const struct vs_meta_txn_result *src)
{
    size_t n_kvs = 0, bytes = 0;
    for (unsigned i = 0; i < src->n_ops; i++) {
        n_kvs += src->ops[i].n_kvs;
        for (unsigned k = 0; k < src->ops[i].n_kvs; k++)
            bytes += src->ops[i].kvs[k].key_len + src->ops[i].kvs[k].value_len;
    }
    size_t size = src->n_ops * sizeof(struct vs_meta_op_result) +
                  n_kvs * sizeof(struct vs_meta_kv) + bytes + 1;
    uint8_t *mem = malloc(size);
    if (!mem)
        return -ENOMEM;
    struct vs_meta_op_result *ops = (struct vs_meta_op_result *)mem;
    struct vs_meta_kv *kvs = (struct vs_meta_kv *)(ops + src->n_ops);
    uint8_t *data = (uint8_t *)(kvs + n_kvs);
    for (unsigned i = 0; i < src->n_ops; i++) {
        ops[i] = src->ops[i];
        ops[i].kvs = kvs;
        for (unsigned k = 0; k < src->ops[i].n_kvs; k++) {
            *kvs = src->ops[i].kvs[k];
            memcpy(data, kvs->key, kvs->key_len);
            kvs->key = data;
            data += kvs->key_len;
            if (kvs->value_len)
                memcpy(data, kvs->value, kvs->value_len);
            kvs->value = data;
            data += kvs->value_len;
            kvs++;
        }
    }
    res->txn = *src;
    res->txn.ops = ops;
    res->mem = mem;
    return 0;
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *r)
{
    struct sync_run *run = ctx;
    run->res->status = status;
    if (status == 0 && r)
        run->res->status = copy_txn(run->res, r);
    run->done = true;
}

static void range_cb(void *ctx, int status, const struct vs_meta_op_result *op, uint64_t rev)
{
    struct vs_meta_txn_result r = {.revision = rev, .succeeded = true, .n_ops = op ? 1 : 0,
                                   .ops = op};
    txn_cb(ctx, status, status == 0 ? &r : NULL);
}

static void lease_cb(void *ctx, int status, uint64_t id, uint64_t ttl_ms)
{
    struct sync_run *run = ctx;
    run->res->status = status;
    run->res->lease_id = id;
    run->res->ttl_ms = ttl_ms;
    run->done = true;
}

static void status_cb(void *ctx, int status, const struct vs_raft_status *st)
{
    struct sync_run *run = ctx;
    run->res->status = status;
    if (st)
        run->res->st = *st;
    run->done = true;
}

static void closed_cb(void *ctx)
{
    struct sync_run *run = ctx;
    run->closed = true;
}

typedef int (*start_fn)(struct vs_meta_client *c, struct sync_run *run, const void *arg);

static int sync_run(const struct vs_meta_client_opts *o, start_fn start, const void *arg,
                    struct vs_meta_sync_result *res)
{
    memset(res, 0, sizeof(*res));
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0)
        return res->status = rc;
    struct vs_meta_client *c;
    struct vs_meta_client_opts opts = *o;
    if (!opts.op_timeout_ms)
        opts.op_timeout_ms = 10000;
    struct sync_run run = {.res = res};
    rc = vs_meta_client_create(&loop, &opts, &c);
    if (rc == 0) {
        rc = start(c, &run, arg);
        while (rc == 0 && !run.done)
            uv_run(&loop, UV_RUN_ONCE);
        vs_meta_client_close(c, closed_cb, &run);
        while (!run.closed)
            uv_run(&loop, UV_RUN_ONCE);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    if (rc < 0)
        res->status = rc;
    return res->status;
}

struct range_arg {
    const struct vs_meta_op *op;
    unsigned flags;
};

static int start_range(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    const struct range_arg *a = arg;
    return vs_meta_range(c, a->op->key, a->op->key_len, a->op->range_end, a->op->range_end_len,
                         a->op->limit, a->flags | a->op->flags, range_cb, run);
}

int vs_meta_sync_range(const struct vs_meta_client_opts *o, const struct vs_meta_op *range,
                       unsigned flags, struct vs_meta_sync_result *res)
{
    struct range_arg a = {range, flags};
    return sync_run(o, start_range, &a, res);
}

static int start_txn(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    return vs_meta_txn(c, arg, txn_cb, run);
}

int vs_meta_sync_txn(const struct vs_meta_client_opts *o, const struct vs_meta_txn *txn,
                     struct vs_meta_sync_result *res)
{
    return sync_run(o, start_txn, txn, res);
}

struct lease_arg {
    int what;
    uint64_t id, ttl;
};

static int start_lease(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    const struct lease_arg *a = arg;
    switch (a->what) {
    case VS_META_SYNC_LEASE_GRANT:
        return vs_meta_lease_grant(c, a->id, a->ttl, lease_cb, run);
    case VS_META_SYNC_LEASE_REVOKE:
        return vs_meta_lease_revoke(c, a->id, lease_cb, run);
    case VS_META_SYNC_LEASE_KEEPALIVE:
        return vs_meta_lease_keepalive(c, a->id, lease_cb, run);
    case VS_META_SYNC_LEASE_TTL:
        return vs_meta_lease_ttl(c, a->id, lease_cb, run);
    default:
        return -EINVAL;
    }
}

int vs_meta_sync_lease(const struct vs_meta_client_opts *o, int what, uint64_t id,
                       uint64_t ttl_ms, struct vs_meta_sync_result *res)
{
    struct lease_arg a = {what, id, ttl_ms};
    return sync_run(o, start_lease, &a, res);
}

static int start_status(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    return vs_meta_status(c, arg, status_cb, run);
}

int vs_meta_sync_status(const struct vs_meta_client_opts *o, const char *address,
                        struct vs_meta_sync_result *res)
{
    return sync_run(o, start_status, address, res);
}

struct member_arg {
    bool add;
    uint64_t id;
    const char *address;
};

static int start_member(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    const struct member_arg *a = arg;
    if (a->add)
        return vs_meta_member_add(c, a->id, a->address, status_cb, run);
    return vs_meta_member_remove(c, a->id, status_cb, run);
}

int vs_meta_sync_member(const struct vs_meta_client_opts *o, bool add, uint64_t id,
                        const char *address, struct vs_meta_sync_result *res)
{
    struct member_arg a = {add, id, address};
    struct vs_meta_client_opts opts = *o;
    if (opts.op_timeout_ms < 130000)
        opts.op_timeout_ms = 130000; /* catching a new member up takes a while */
    return sync_run(&opts, start_member, &a, res);
}

static int start_compact(struct vs_meta_client *c, struct sync_run *run, const void *arg)
{
    return vs_meta_compact(c, *(const uint64_t *)arg, txn_cb, run);
}

int vs_meta_sync_compact(const struct vs_meta_client_opts *o, uint64_t rev,
                         struct vs_meta_sync_result *res)
{
    return sync_run(o, start_compact, &rev, res);
}

void vs_meta_sync_free(struct vs_meta_sync_result *res)
{
    free(res->mem);
    res->mem = NULL;
}
