/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * loop.h -- the one event loop of a vstor process.
 *
 * Every daemon mode runs exactly one libuv loop on one thread. This module
 * adds the two things every mode needs on top of uv_loop_t:
 *
 *  - Clean shutdown: SIGTERM and SIGINT call the owner's shutdown callback
 *    once (which starts an orderly stop and eventually calls vs_loop_stop);
 *    a second signal exits at once with status 130. SIGPIPE is ignored, so a
 *    closed socket is an error return, never a process kill.
 *
 *  - The io_uring bridge: the process's vs_ring (common/vs_ring.h) has its
 *    eventfd polled by the loop, so io_uring completions run their callbacks
 *    on the loop thread; and a prepare hook submits every SQE queued during a
 *    loop turn with one io_uring_enter just before the loop blocks (STYLE B16).
 *
 * Lifetime: vs_loop_init -> vs_loop_run (returns after vs_loop_stop) ->
 * vs_loop_close (closes our handles, drains the loop, destroys the ring).
 */
#ifndef VSTOR_LOOP_H
#define VSTOR_LOOP_H

#include <stdbool.h>
#include <uv.h>

struct vs_ring;
struct vs_loop;

typedef void (*vs_loop_shutdown_fn)(struct vs_loop *loop, int signum, void *ctx);

struct vs_loop {
    uv_loop_t uv;
    struct vs_ring *ring; /* NULL when created with ring_entries == 0 */
    uv_poll_t ring_poll;
    uv_prepare_t ring_prepare;
    uv_signal_t sig_term, sig_int;
    vs_loop_shutdown_fn on_shutdown;
    void *shutdown_ctx;
    int signals_seen;
    bool stopping;
    char errmsg[256];
};

/* Initialises the loop; with ring_entries > 0 also creates the io_uring and
 * bridges it. Returns 0 or -errno with loop->errmsg filled. */
int vs_loop_init(struct vs_loop *loop, unsigned ring_entries);

/* Sets who is told about SIGTERM/SIGINT. Without one, a signal stops the loop. */
void vs_loop_on_shutdown(struct vs_loop *loop, vs_loop_shutdown_fn fn, void *ctx);

/* Runs until vs_loop_stop(). Returns 0. */
int vs_loop_run(struct vs_loop *loop);

/* Makes vs_loop_run() return after the current turn. Idempotent. */
void vs_loop_stop(struct vs_loop *loop);

/* Closes the bridge and signal handles, runs the loop until every handle the
 * caller has already closed is gone, then destroys the ring. Returns 0, or
 * -EBUSY if the caller left handles open (they are listed at warn level). */
int vs_loop_close(struct vs_loop *loop);

#endif /* VSTOR_LOOP_H */
