/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "loop.h"

#include "vs_assert.h"
#include "vs_log.h"
#include "vs_ring.h"

#include <poll.h>
#include <sched.h>
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

/* ---- Adaptive busy-polling ---------------------------------------------- */

/* The targeted mode's back-off: a sched_yield that returns this late means a
 * CPU hog ran (our own peers' bursts are far shorter); the next lone ops then
 * go without a window, 16 after a first loss, twice as many after each loss
 * in a row (up to 4096), 16 again once a window has seen its op end. */
#define LONE_YIELD_LOST_NS 200000u
#define LONE_BACKOFF_MIN 16u
#define LONE_BACKOFF_MAX 4096u

static void spin_end(struct vs_spin *s)
{
    s->spinning = false;
    s->ended = true;
    uv_idle_stop(&s->idle);
}

/* One spinning turn, before libuv polls with timeout 0: reap the ring's
 * completions without waiting for its eventfd, else ask the epoll set whether
 * anything is ready (without consuming it: libuv's poll of this turn does).
 * Activity extends the window; a window without any ends the spin, and this
 * very turn then blocks (the idle handle is stopped before libuv computes its
 * timeout). */
static void spin_idle_cb(uv_idle_t *h)
{
    struct vs_spin *s = h->data;
    uint64_t now = uv_hrtime();
    bool active = false;
    s->turns++;
    if (s->gate && s->gate(s->gate_ctx) != s->token) {
        s->backoff_next = LONE_BACKOFF_MIN; /* a window that worked */
        spin_end(s); /* the lone op is done (or another began: prepare decides) */
        return;
    }
    if (s->ring && vs_ring_cq_ready(s->ring)) {
        s->reaped += (uint64_t)vs_ring_process(s->ring);
        active = true;
    } else {
        struct pollfd p = {.fd = uv_backend_fd(s->uv), .events = POLLIN};
        active = poll(&p, 1, 0) > 0;
    }
    if (active) {
        s->last_ns = now;
    } else if (now - s->last_ns < s->window_ns) {
        /* Nothing yet: let any runnable process on this CPU go first (the
         * peer we wait for may be it; two cores are shared by several). */
        sched_yield();
        if (s->gate && uv_hrtime() - now > LONE_YIELD_LOST_NS) {
            /* Someone else's work held the CPU for a slice: the CPUs are
             * busy, a spinner only loses its wake-up priority. Sleep, and
             * let the next lone ops sleep too (LONE_BACKOFF_MIN above). */
            s->yields_lost++;
            s->backoff = s->backoff_next;
            if (s->backoff_next < LONE_BACKOFF_MAX)
                s->backoff_next *= 2;
            spin_end(s);
        }
    } else {
        spin_end(s);
    }
}

static void spin_open(struct vs_spin *s, uint64_t now)
{
    s->spinning = true;
    s->last_ns = now;
    s->windows++;
    uv_idle_start(&s->idle, spin_idle_cb);
}

/* The targeted mode's prepare: a turn about to block while the gate names an
 * op that has had no window yet spins instead (the idle handle, started here,
 * makes libuv poll this turn with timeout 0). */
static void spin_gated_prepare(struct vs_spin *s)
{
    if (s->spinning)
        return;
    s->ended = false;
    uint64_t token = s->gate(s->gate_ctx);
    if (token == 0 || token == s->token)
        return;
    s->token = token;
    if (s->backoff > 0) {
        s->backoff--;
        return;
    }
    spin_open(s, uv_hrtime());
}

/* Runs just before the poll: a turn that is not spinning may block, so note
 * for how long at most. uv_backend_timeout() is 0 when libuv has epoll
 * changes to apply or callbacks pending (then we do not know, and no window
 * opens); and a UV_RUN_ONCE turn that began with the idle handle active never
 * blocks, so the turn that ended a window opens none either. */
static void spin_prepare_cb(uv_prepare_t *h)
{
    struct vs_spin *s = h->data;
    if (s->gate) {
        spin_gated_prepare(s);
        return;
    }
    if (s->spinning)
        return;
    s->block_timeout_ms = s->ended ? 0 : uv_backend_timeout(s->uv);
    s->block_ns = uv_hrtime();
    s->ended = false;
}

/* Runs after the poll. A turn that returned before its timeout was woken by
 * I/O (or ran callbacks deferred by I/O): open a window. A turn that waited
 * its whole timeout (a timer is due) opens none. */
static void spin_check_cb(uv_check_t *h)
{
    struct vs_spin *s = h->data;
    if (s->gate || s->spinning || s->block_timeout_ms == 0)
        return;
    uint64_t now = uv_hrtime();
    if (s->block_timeout_ms > 0 && now - s->block_ns >= (uint64_t)s->block_timeout_ms * 1000000u)
        return;
    spin_open(s, now);
}

int vs_spin_init(struct vs_spin *s, uv_loop_t *uv, struct vs_ring *ring, unsigned window_us)
{
    memset(s, 0, sizeof(*s));
    if (window_us == 0)
        return 0;
    s->ring = ring;
    s->window_ns = (uint64_t)window_us * 1000u;
    int rc = uv_idle_init(uv, &s->idle);
    if (rc == 0)
        rc = uv_prepare_init(uv, &s->prepare);
    if (rc == 0)
        rc = uv_check_init(uv, &s->check);
    VS_ASSERTF(rc == 0, "%s", uv_strerror(rc)); /* these never fail on unix */
    s->uv = uv;
    s->idle.data = s->prepare.data = s->check.data = s;
    uv_prepare_start(&s->prepare, spin_prepare_cb);
    uv_check_start(&s->check, spin_check_cb);
    /* Busy-polling never keeps a loop alive on its own. */
    uv_unref((uv_handle_t *)&s->idle);
    uv_unref((uv_handle_t *)&s->prepare);
    uv_unref((uv_handle_t *)&s->check);
    return 0;
}

int vs_spin_init_gated(struct vs_spin *s, uv_loop_t *uv, struct vs_ring *ring, unsigned window_us,
                       vs_spin_gate_fn gate, void *ctx)
{
    VS_ASSERT(gate != NULL);
    int rc = vs_spin_init(s, uv, ring, window_us);
    if (rc == 0 && s->uv) {
        s->gate = gate;
        s->gate_ctx = ctx;
        s->backoff_next = LONE_BACKOFF_MIN;
    }
    return rc;
}

unsigned vs_spin_close_cb(struct vs_spin *s, uv_close_cb cb)
{
    if (!s->uv)
        return 0;
    uv_close((uv_handle_t *)&s->idle, cb);
    uv_close((uv_handle_t *)&s->prepare, cb);
    uv_close((uv_handle_t *)&s->check, cb);
    s->uv = NULL;
    s->spinning = false;
    return 3;
}

void vs_spin_close(struct vs_spin *s)
{
    vs_spin_close_cb(s, NULL);
}

/* ---- Signals and the io_uring bridge --------------------------------------- */

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

int vs_loop_busy_poll(struct vs_loop *loop, unsigned window_us)
{
    VS_ASSERT(loop->spin.uv == NULL); /* once per loop */
    int rc = vs_spin_init(&loop->spin, &loop->uv, loop->ring, window_us);
    if (rc < 0)
        snprintf(loop->errmsg, sizeof(loop->errmsg), "busy-poll: %s", uv_strerror(rc));
    return rc;
}

int vs_loop_spin_lone(struct vs_loop *loop, unsigned window_us, vs_spin_gate_fn gate, void *ctx)
{
    if (loop->spin.uv)
        return 0; /* the whole-loop spin is on: it covers the lone op too */
    int rc = vs_spin_init_gated(&loop->spin, &loop->uv, loop->ring, window_us, gate, ctx);
    if (rc < 0)
        snprintf(loop->errmsg, sizeof(loop->errmsg), "lone-op spin: %s", uv_strerror(rc));
    return rc;
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
    vs_spin_close(&loop->spin);
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
