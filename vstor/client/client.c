/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client.c -- the libvstor client object: options, creation (cluster id, then
 * the messenger, then the cluster state), the loop handles, and close.
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vstor_client_opts_init(struct vstor_client_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->retry_interval_ms = 50;
    o->max_dirty_bytes = 32u << 20;
    o->max_dirty_ops = 1024;
    o->parts_max = 4096;
    o->meta_timeout_ms = 5000;
    o->net_payload_max = VS_NET_DATA_MAX_DEFAULT;
    o->log_name = "client";
}

void client__errmsg(struct vstor_client *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
}

const char *vstor_client_errmsg(const struct vstor_client *c)
{
    return c->errmsg;
}

const char *vstor_strerror(int rc)
{
    return vs_strerror(rc);
}

uint64_t client__now_us(void)
{
    return vs_clock_mono_us();
}

int client__check_opts(const struct vstor_client_opts *o, char *err, size_t err_size)
{
    const char *why = NULL;
    if (o->retry_interval_ms < 1 || o->retry_interval_ms > 60000)
        why = "retry_interval_ms must be 1..60000";
    else if (o->max_dirty_bytes < (1u << 20) || o->max_dirty_bytes > (1ull << 34))
        why = "max_dirty_bytes must be 1 MiB..16 GiB";
    else if (o->max_dirty_ops < 16 || o->max_dirty_ops > (1u << 20))
        why = "max_dirty_ops must be 16..1048576";
    else if (o->parts_max < 16 || o->parts_max > (1u << 20))
        why = "parts_max must be 16..1048576";
    else if (o->meta_timeout_ms < 10)
        why = "meta_timeout_ms must be at least 10";
    else if (o->net_payload_max < (1u << 20))
        why = "net_payload_max must be at least 1 MiB";
    else if (o->spin_lone_us > 10000)
        why = "spin_lone_us must be 0..10000";
    else if (o->net_local_dir && o->net_local_dir[0] && o->net_local_dir[0] != '/')
        why = "net_local_dir must be an absolute path";
    else if (o->net_local_dir && strlen(o->net_local_dir) >= VS_NET_LOCAL_PATH_MAX - 32)
        why = "net_local_dir must be shorter than 76 bytes (a unix socket path)";
    if (why)
        snprintf(err, err_size, "libvstor: %s", why);
    return why ? -EINVAL : 0;
}

/* ---- Completions: delivered from the loop, never inside a submit call ------ */

static void done_idle_cb(uv_idle_t *h)
{
    struct vstor_client *c = h->data;
    while (c->done_head) {
        struct client_op *op = c->done_head;
        c->done_head = op->next;
        if (!c->done_head)
            c->done_tail = NULL;
        op->next = NULL;
        struct vstor_io *io = op->io;
        int rc = op->rc;
        op->img->ops_active--;
        c->ops_active--;
        io->cb(io, rc);
    }
    uv_idle_stop(h);
    if (c->state == CL_CLOSING)
        client__maybe_finish_close(c);
}

/* Queues op's completion; the callback runs from the loop. */
void client__complete(struct vstor_client *c, struct client_op *op)
{
    VS_ASSERT(op->state != OPS_DONE);
    op->state = OPS_DONE;
    if (op->internal) {
        op->img = NULL;
        return;
    }
    op->next = NULL;
    if (c->done_tail)
        c->done_tail->next = op;
    else
        c->done_head = op;
    c->done_tail = op;
    uv_idle_start(&c->done_idle, done_idle_cb);
}

/* ---- Timers ------------------------------------------------------------------ */

static void retry_timer_cb(uv_timer_t *t)
{
    struct vstor_client *c = t->data;
    if (c->state == CL_CLOSING)
        return;
    uint64_t now = client__now_us();
    client__check_timeouts(c, now);
    client__opens_tick(c, now);
    client__retry_all(c);
    if (c->replay_needed && !c->replaying)
        client__replay_pump(c);
    client__sync_try(c);
    client__pump(c);
}

static void handle_closed(uv_handle_t *h)
{
    struct vstor_client *c = h->data;
    VS_ASSERT(c->handles_open > 0);
    c->handles_open--;
    client__maybe_finish_close(c);
}

/* ---- Creation ------------------------------------------------------------------ */

static void net_id_from_u64(uint8_t out[VS_NET_CLUSTER_ID_SIZE], uint64_t id)
{
    memset(out, 0, VS_NET_CLUSTER_ID_SIZE);
    vs_put_u64(out, id);
}

static int net_start(struct vstor_client *c)
{
    struct vs_net_cfg cfg;
    char err[VS_ERRMSG_SIZE];
    vs_net_cfg_init(&cfg);
    net_id_from_u64(cfg.cluster_id, c->cluster_id);
    cfg.role = VS_NET_ROLE_CLIENT;
    cfg.limits.data_max = c->opts.net_payload_max;
    cfg.conn_op_max = c->opts.parts_max;
    cfg.on_event = client__osd_event;
    cfg.event_ctx = c;
    cfg.log_name = c->log_name;
    cfg.local_dir = c->opts.net_local_dir;
    int rc = vs_net_create(c->loop, &cfg, &c->net, err, sizeof(err));
    if (rc < 0)
        client__errmsg(c, "messenger: %s", err);
    return rc;
}

static void cluster_id_cb(void *ctx, int rc, uint64_t id);

static void meta_timer_cb(uv_timer_t *t);

static void cluster_id_ask(struct vstor_client *c)
{
    int rc = c->meta->cluster_id(c->m, cluster_id_cb, c);
    if (rc < 0)
        uv_timer_start(&c->meta_timer, meta_timer_cb, c->opts.retry_interval_ms * 10ull, 0);
}

static void meta_timer_cb(uv_timer_t *t)
{
    struct vstor_client *c = t->data;
    if (c->state == CL_CLUSTER_ID)
        cluster_id_ask(c);
    else if (c->state == CL_LOADING || c->state == CL_READY)
        client__state_start(c);
}

void client__meta_retry(struct vstor_client *c)
{
    if (c->state != CL_CLOSING)
        uv_timer_start(&c->meta_timer, meta_timer_cb, c->opts.retry_interval_ms * 10ull, 0);
}

static void cluster_id_cb(void *ctx, int rc, uint64_t id)
{
    struct vstor_client *c = ctx;
    if (c->state == CL_CLOSING)
        return;
    if (rc < 0 || id == 0) {
        VS_WARN(c->log_name, "metadata service: cluster id: %s; retrying",
                rc < 0 ? vs_strerror(rc) : "not known yet");
        client__meta_retry(c);
        return;
    }
    c->cluster_id = id;
    if (net_start(c) < 0) {
        VS_ERROR(c->log_name, "%s", c->errmsg);
        client__fail_all(c, -ENOMEM);
        return;
    }
    c->state = CL_LOADING;
    client__state_start(c);
}

/* The lone-request spin's gate (loop.h): open while exactly one part is on
 * the wire, named by the count of parts sent so far. */
static uint64_t spin_gate(void *ctx)
{
    const struct vstor_client *c = ctx;
    return c->parts_on_wire == 1 ? c->parts_sent : 0;
}

static void spin_closed(uv_handle_t *h)
{
    struct vstor_client *c = VS_CONTAINER_OF(h->data, struct vstor_client, spin);
    VS_ASSERT(c->handles_open > 0);
    c->handles_open--;
    client__maybe_finish_close(c);
}

static void init_handles(struct vstor_client *c)
{
    uv_timer_init(c->loop, &c->retry_timer);
    uv_timer_init(c->loop, &c->meta_timer);
    uv_idle_init(c->loop, &c->done_idle);
    c->retry_timer.data = c->meta_timer.data = c->done_idle.data = c;
    c->handles_open = 3;
    uv_timer_start(&c->retry_timer, retry_timer_cb, c->opts.retry_interval_ms,
                   c->opts.retry_interval_ms);
    vs_spin_init_gated(&c->spin, c->loop, NULL, c->opts.spin_lone_us, spin_gate, c);
}

/* The next write to a connection its peer reset (an OSD killed) raises
 * SIGPIPE, and its default action kills the process. libuv writes our
 * sockets and cannot pass MSG_NOSIGNAL, so a client ignores SIGPIPE (the
 * write fails with EPIPE: a lost connection, retried), unless the
 * application chose another disposition. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
        sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

int client__create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                   const struct client_meta_ops *ops, void *m, struct vstor_client **out,
                   char *err, size_t err_size)
{
    int rc = client__check_opts(opts, err, err_size);
    if (rc < 0)
        return rc;
    ignore_sigpipe();
    struct vstor_client *c = calloc(1, sizeof(*c));
    if (!c)
        goto err_nomem;
    c->loop = loop;
    c->opts = *opts;
    snprintf(c->log_name, sizeof(c->log_name), "%s", opts->log_name ? opts->log_name : "client");
    c->opts.log_name = c->log_name;
    snprintf(c->net_local_dir, sizeof(c->net_local_dir), "%s",
             opts->net_local_dir ? opts->net_local_dir : "");
    c->opts.net_local_dir = c->net_local_dir;
    c->meta = ops;
    c->m = m;
    c->block_size = CLIENT_BLOCK_SIZE_DEFAULT;
    c->state = CL_CLUSTER_ID;
    if (client__parts_init(c) < 0)
        goto err_after_alloc;
    init_handles(c);
    cluster_id_ask(c);
    *out = c;
    return 0;

err_after_alloc:
    client__parts_free(c);
    free(c);
err_nomem:
    snprintf(err, err_size, "libvstor: out of memory");
    return -ENOMEM;
}

/* ---- Close ----------------------------------------------------------------------
 *
 * vstor_client_close: stop following the cluster, fail every op that is not on
 * the wire, close the messenger (ops on the wire complete with -ECANCELED),
 * deliver every completion, close the loop handles and the metadata client,
 * then free. client__maybe_finish_close() advances one step whenever one of
 * these finishes. */

static void meta_closed_cb(void *ctx)
{
    struct vstor_client *c = ctx;
    c->meta_closed = true;
    client__maybe_finish_close(c);
}

static void net_closed_cb(void *ctx)
{
    struct vstor_client *c = ctx;
    c->net = NULL;
    c->net_closed = true;
    client__maybe_finish_close(c);
}

void client__maybe_finish_close(struct vstor_client *c)
{
    if (c->state != CL_CLOSING || !c->net_closed || c->done_head || c->ops_active)
        return;
    if (!c->handles_closing) {
        c->handles_closing = true;
        uv_close((uv_handle_t *)&c->retry_timer, handle_closed);
        uv_close((uv_handle_t *)&c->meta_timer, handle_closed);
        uv_close((uv_handle_t *)&c->done_idle, handle_closed);
        c->handles_open += vs_spin_close_cb(&c->spin, spin_closed);
        c->meta->close(c->m, meta_closed_cb, c);
        return;
    }
    if (c->handles_open || !c->meta_closed || c->freed)
        return;
    c->freed = true;
    void (*cb)(void *) = c->close_cb;
    void *ctx = c->close_ctx;
    while (c->images) {
        struct vstor_image *img = c->images;
        c->images = img->next;
        free(img);
    }
    client__state_free(c);
    client__parts_free(c);
    free(c);
    if (cb)
        cb(ctx);
}

void vstor_client_close(struct vstor_client *c, void (*cb)(void *ctx), void *ctx)
{
    VS_ASSERT(c->state != CL_CLOSING);
    c->close_cb = cb;
    c->close_ctx = ctx;
    client__state_stop(c);
    c->state = CL_CLOSING;
    client__opens_fail(c, -ECANCELED);
    client__fail_all(c, -ECANCELED);
    if (c->net)
        vs_net_close(c->net, net_closed_cb, c);
    else
        c->net_closed = true;
    client__maybe_finish_close(c);
}
