/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "loop.h"

#include "vs_assert.h"
#include "vs_log.h"
#include "vs_ring.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void ring_poll_cb(uv_poll_t *h, int status, int events)
{
    struct vs_loop *loop = h->data;
    (void)events;
    if (status < 0) {
        VS_ERROR("loop", "io_uring eventfd poll: %s", uv_strerror(status));
        return;
    }
    vs_ring_process(loop->ring);
}

static void ring_prepare_cb(uv_prepare_t *h)
{
    struct vs_loop *loop = h->data;
    int rc = vs_ring_submit(loop->ring);
    if (rc < 0)
        VS_ERROR("loop", "io_uring submit: %s", strerror(-rc));
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct vs_loop *loop = h->data;
    loop->signals_seen++;
    if (loop->signals_seen > 1) {
        VS_WARN("loop", "second signal %d: exiting now", signum);
        _exit(130);
    }
    VS_INFO("loop", "signal %d: shutting down", signum);
    if (loop->on_shutdown)
        loop->on_shutdown(loop, signum, loop->shutdown_ctx);
    else
        vs_loop_stop(loop);
}

static int init_signals(struct vs_loop *loop)
{
    signal(SIGPIPE, SIG_IGN);
    int rc = uv_signal_init(&loop->uv, &loop->sig_term);
    if (rc == 0)
        rc = uv_signal_init(&loop->uv, &loop->sig_int);
    if (rc == 0) {
        loop->sig_term.data = loop;
        loop->sig_int.data = loop;
        rc = uv_signal_start(&loop->sig_term, signal_cb, SIGTERM);
    }
    if (rc == 0)
        rc = uv_signal_start(&loop->sig_int, signal_cb, SIGINT);
    /* Signal handles must not keep the loop alive on their own. */
    uv_unref((uv_handle_t *)&loop->sig_term);
    uv_unref((uv_handle_t *)&loop->sig_int);
    return rc;
}

static int init_ring(struct vs_loop *loop, unsigned entries)
{
    int rc = vs_ring_create(entries, &loop->ring, loop->errmsg, sizeof(loop->errmsg));
    if (rc < 0)
        return rc;
    rc = uv_poll_init(&loop->uv, &loop->ring_poll, vs_ring_event_fd(loop->ring));
    if (rc == 0) {
        loop->ring_poll.data = loop;
        rc = uv_poll_start(&loop->ring_poll, UV_READABLE, ring_poll_cb);
    }
    if (rc == 0)
        rc = uv_prepare_init(&loop->uv, &loop->ring_prepare);
    if (rc == 0) {
        loop->ring_prepare.data = loop;
        rc = uv_prepare_start(&loop->ring_prepare, ring_prepare_cb);
    }
    if (rc < 0)
        snprintf(loop->errmsg, sizeof(loop->errmsg), "io_uring bridge: %s", uv_strerror(rc));
    /* The bridge keeps the loop alive only while ops are in flight; callers
     * that have nothing else to wait for stop the loop themselves. */
    uv_unref((uv_handle_t *)&loop->ring_poll);
    uv_unref((uv_handle_t *)&loop->ring_prepare);
    return rc;
}

int vs_loop_init(struct vs_loop *loop, unsigned ring_entries)
{
    memset(loop, 0, sizeof(*loop));
    int rc = uv_loop_init(&loop->uv);
    if (rc < 0) {
        snprintf(loop->errmsg, sizeof(loop->errmsg), "uv_loop_init: %s", uv_strerror(rc));
        return rc;
    }
    loop->uv.data = loop;
    rc = init_signals(loop);
    if (rc < 0) {
        snprintf(loop->errmsg, sizeof(loop->errmsg), "signals: %s", uv_strerror(rc));
        return rc;
    }
    if (ring_entries > 0)
        return init_ring(loop, ring_entries);
    return 0;
}

void vs_loop_on_shutdown(struct vs_loop *loop, vs_loop_shutdown_fn fn, void *ctx)
{
    loop->on_shutdown = fn;
    loop->shutdown_ctx = ctx;
}

int vs_loop_run(struct vs_loop *loop)
{
    while (!loop->stopping) {
        /* Ring ops in flight must keep the loop alive even though the bridge
         * handles are unref'd. */
        if (loop->ring && vs_ring_inflight(loop->ring) > 0)
            uv_ref((uv_handle_t *)&loop->ring_poll);
        else if (loop->ring)
            uv_unref((uv_handle_t *)&loop->ring_poll);
        if (uv_run(&loop->uv, UV_RUN_ONCE) == 0 && !(loop->ring && vs_ring_inflight(loop->ring)))
            break; /* nothing left to wait for */
    }
    return 0;
}

void vs_loop_stop(struct vs_loop *loop)
{
    loop->stopping = true;
    uv_stop(&loop->uv);
}

static void walk_cb(uv_handle_t *h, void *arg)
{
    int *open = arg;
    if (!uv_is_closing(h)) {
        (*open)++;
        VS_WARN("loop", "handle left open at close: %s",
                uv_handle_type_name(uv_handle_get_type(h)));
    }
}

int vs_loop_close(struct vs_loop *loop)
{
    if (loop->ring) {
        /* Let in-flight ring ops finish so their buffers are not freed early. */
        while (vs_ring_inflight(loop->ring) > 0)
            vs_ring_run_once(loop->ring);
        uv_close((uv_handle_t *)&loop->ring_poll, NULL);
        uv_close((uv_handle_t *)&loop->ring_prepare, NULL);
    }
    uv_close((uv_handle_t *)&loop->sig_term, NULL);
    uv_close((uv_handle_t *)&loop->sig_int, NULL);
    uv_run(&loop->uv, UV_RUN_NOWAIT);
    int open = 0;
    uv_walk(&loop->uv, walk_cb, &open);
    if (open > 0)
        return -EBUSY;
    int rc = uv_loop_close(&loop->uv);
    VS_ASSERT(rc == 0);
    vs_ring_destroy(loop->ring);
    loop->ring = NULL;
    return 0;
}
