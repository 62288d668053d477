/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_watch.c -- the long-running meta commands: `vstor meta watch` prints
 * events as they come (surviving leader changes and reconnects, in revision
 * order, none skipped), and `vstor meta lease keepalive ID` keeps a lease
 * alive and prints its state changes. Both stop on SIGINT/SIGTERM; watch
 * also after --count events.
 */
#include "cmd.h"
#include "loop.h"
#include "meta.h"

#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct long_run {
    struct vs_cmd_ctx *ctx;
    struct vs_loop loop;
    struct vs_meta_client *client;
    struct vs_meta_watch *watch;
    struct vs_meta_lease_keeper *keeper;
    uint64_t want, seen;
    int exit_code;
    bool stopping, closed;
};

static void client_closed(void *arg)
{
    struct long_run *r = arg;
    r->closed = true;
    vs_loop_stop(&r->loop);
}

static void finish(struct long_run *r, int code)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->exit_code = code;
    if (r->watch)
        vs_meta_watch_cancel(r->watch);
    r->watch = NULL;
    if (r->keeper)
        vs_meta_lease_keep_stop(r->keeper);
    r->keeper = NULL;
    vs_meta_client_close(r->client, client_closed, r);
}

static void on_signal(struct vs_loop *loop, int signum, void *arg)
{
    (void)loop;
    (void)signum;
    finish(arg, VS_EXIT_OK);
}

static void print_event(struct long_run *r, const struct vs_meta_event *ev)
{
    bool del = ev->type == VS_META_EVENT_DELETE;
    if (vs_cmd_flag(r->ctx, "json")) {
        json_t *o = meta_json_kv(&ev->kv, !del);
        json_object_set_new(o, "type", json_string(del ? "DELETE" : "PUT"));
        meta_print_json(o);
    } else if (del) {
        printf("DELETE %" PRIu64 "\n%.*s\n", ev->kv.mod_rev, (int)ev->kv.key_len,
               (const char *)ev->kv.key);
    } else {
        printf("PUT %" PRIu64 "\n%.*s\n%.*s\n", ev->kv.mod_rev, (int)ev->kv.key_len,
               (const char *)ev->kv.key, (int)ev->kv.value_len, (const char *)ev->kv.value);
    }
}

static void watch_cb(void *arg, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t rev)
{
    struct long_run *r = arg;
    (void)rev;
    if (status != 0) {
        r->watch = NULL; /* a final call: the watch is gone */
        if (!r->stopping) {
            vs_cmd_error(r->ctx, "watch ended: %s", vs_strerror(status));
            finish(r, VS_EXIT_FAIL);
        }
        return;
    }
    for (unsigned i = 0; i < n && !r->stopping; i++) {
        print_event(r, &ev[i]);
        if (r->want && ++r->seen >= r->want)
            finish(r, VS_EXIT_OK);
    }
    fflush(stdout);
}

static int run_loop(struct long_run *r)
{
    vs_loop_on_shutdown(&r->loop, on_signal, r);
    vs_loop_run(&r->loop);
    if (!r->closed) {
        finish(r, r->exit_code);
        while (!r->closed)
            uv_run(&r->loop.uv, UV_RUN_ONCE);
    }
    vs_loop_close(&r->loop);
    return r->exit_code;
}

static int start(struct long_run *r, struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    o.op_timeout_ms = 0; /* a daemon-like command waits out any outage */
    r->ctx = ctx;
    if (vs_loop_init(&r->loop, 0) < 0)
        return VS_EXIT_FAIL;
    rc = vs_meta_client_create(&r->loop.uv, &o, &r->client);
    if (rc < 0) {
        vs_loop_close(&r->loop);
        return meta_fail(ctx, rc);
    }
    return VS_EXIT_OK;
}

int vs_cmd_meta_watch(struct vs_cmd_ctx *ctx)
{
    static struct long_run run;
    struct long_run *r = &run;
    memset(r, 0, sizeof(*r));
    uint64_t rev = 0;
    if (vs_cmd_opt_u64(ctx, "rev", &rev) < 0 || vs_cmd_opt_u64(ctx, "count", &r->want) < 0)
        return VS_EXIT_USAGE;
    int rc = start(r, ctx);
    if (rc != VS_EXIT_OK)
        return rc;
    uint8_t end[VS_META_KEY_MAX + 1];
    struct vs_meta_op op;
    meta_key_range(ctx->argv[0], vs_cmd_flag(ctx, "prefix"), &op, end);
    rc = vs_meta_watch(r->client, op.key, op.key_len, op.range_end, op.range_end_len, rev,
                       watch_cb, r, &r->watch);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", vs_strerror(rc));
        finish(r, VS_EXIT_FAIL);
    }
    return run_loop(r);
}

static void keeper_cb(void *arg, enum vs_meta_lease_state st, uint64_t ttl_ms)
{
    struct long_run *r = arg;
    const char *name = st == VS_META_LEASE_ALIVE     ? "alive"
                       : st == VS_META_LEASE_UNKNOWN ? "unknown (service unreachable)"
                                                     : "expired";
    if (vs_cmd_flag(r->ctx, "json"))
        meta_print_json(json_pack("{s:s, s:I}", "state", name, "ttl_ms", (json_int_t)ttl_ms));
    else
        printf("lease %s: %s, %" PRIu64 "ms left\n", r->ctx->argv[0], name, ttl_ms);
    fflush(stdout);
    if (st == VS_META_LEASE_EXPIRED) {
        r->keeper = NULL; /* EXPIRED is final */
        finish(r, VS_EXIT_FAIL);
    }
}

int meta_keepalive_forever(struct vs_cmd_ctx *ctx)
{
    static struct long_run run;
    struct long_run *r = &run;
    memset(r, 0, sizeof(*r));
    uint64_t id;
    if (vs_parse_u64(ctx->argv[0], &id) < 0 || id == 0) {
        vs_cmd_error(ctx, "lease id '%s' is not a number", ctx->argv[0]);
        return VS_EXIT_USAGE;
    }
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    /* A first keepalive (not a TTL query): the answer is then the lease's full
     * TTL, whatever was left of it (a remainder under 1 s is below what the
     * keeper accepts, and would renew too often). */
    struct vs_meta_sync_result res;
    rc = vs_meta_sync_lease(&o, VS_META_SYNC_LEASE_KEEPALIVE, id, 0, &res);
    if (rc < 0)
        return meta_fail(ctx, rc);
    rc = start(r, ctx);
    if (rc != VS_EXIT_OK)
        return rc;
    rc = vs_meta_lease_keep(r->client, id, res.ttl_ms ? res.ttl_ms : 10000, keeper_cb, r,
                            &r->keeper);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", vs_strerror(rc));
        finish(r, VS_EXIT_FAIL);
    }
    return run_loop(r);
}
