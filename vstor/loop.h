/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * loop.h -- the one event loop of a vstor process.
 *
 * Every daemon mode runs exactly one libuv loop on one thread. This module
 * adds what every mode needs on top of uv_loop_t:
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
 *  - Adaptive busy-polling (config key loop_busy_poll_us, struct vs_spin):
 *    after a wake-up by I/O the loop polls without blocking for a short window
 *    (each turn reaps ring completions directly and checks the loop's epoll
 *    set for readiness, and a turn that finds nothing yields the CPU); every
 *    activity extends the window, and once a window passes without any, the
 *    loop blocks again. On a VM whose idle vCPUs halt, this saves the wake-up
 *    (VM exit + IPI) of the next event of a round trip.
 *    A wake-up by a timer does not open a window, so an idle daemon never
 *    spins. vs_spin works on any uv_loop_t (libvstor clients run their own).
 *    Off by default: on the 2-vCPU test machine it helped T1Q1 reads and hurt
 *    T1Q1 write+sync (docs/performance.md, "Busy-polling").
 *
 *  - Targeted busy-polling, the lone-op spin (config key loop_spin_lone_us,
 *    vs_spin_init_gated): the owner gives a gate that returns a non-zero token
 *    while exactly one op is outstanding and nothing else is to be done (the
 *    client: one part on the wire; the OSD: one op in service). A window opens
 *    only when the loop is about to block and the gate is open, spins as above
 *    while the gate stays open, and ends when it closes or after window_us
 *    without activity; a token gets at most one window, so an op slower than
 *    the window spins once and then sleeps. A yield that comes back only after
 *    another process's slice (the CPUs are busy) ends the window, and the
 *    next 16 lone ops sleep (twice as many after each loss in a row, up to
 *    4096): a spinner that has yielded to a CPU hog waits behind it instead
 *    of being woken with priority. Wake-ups by I/O or
 *    timers open nothing, and at queue depth > 1 the gate is closed, so
 *    nothing spins there. Off by default (0): on the 2-vCPU test machine 200
 *    us cut T1Q1 reads to ~0.8x and T1Q1 write+sync to ~0.9x with Q128 and
 *    the OSD CPU per write unchanged, but next to two CPU hogs it made T1Q1
 *    writes 1.45x slower even with the back-off (7.8x without it); see
 *    docs/performance.md, "The lone-op spin". libvstor's own default
 *    (vstor_client_opts.spin_lone_us) is 0 too.
 *
 * Lifetime: vs_loop_init -> [vs_loop_busy_poll] -> vs_loop_run (returns after
 * vs_loop_stop) -> vs_loop_close (closes our handles, drains the loop,
 * destroys the ring).
 */
#ifndef VSTOR_LOOP_H
#define VSTOR_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct vs_ring;
struct vs_loop;

/* The gate of a targeted spin: 0 while the loop may sleep, else a token that
 * names the one outstanding op (a new op gives a new token). */
typedef uint64_t (*vs_spin_gate_fn)(void *ctx);

/* The busy-poll state of one uv loop. All fields are read-only outside loop.c;
 * the counters are statistics (and what the tests check). */
struct vs_spin {
    uv_loop_t *uv;         /* NULL when busy-polling is off */
    struct vs_ring *ring;  /* reaped directly while spinning; may be NULL */
    uv_idle_t idle;        /* active while spinning: libuv then polls with timeout 0 */
    uv_prepare_t prepare;  /* notes when and how long a non-spinning turn blocks */
    uv_check_t check;      /* after the poll: opens a window on a wake-up by I/O */
    uint64_t window_ns;
    uint64_t last_ns;      /* the last activity seen (uv_hrtime) */
    uint64_t block_ns;     /* when the current blocking turn started to wait */
    int block_timeout_ms;  /* what it waits at most; -1 = no limit */
    vs_spin_gate_fn gate;  /* NULL: whole-loop mode; else the targeted mode */
    void *gate_ctx;
    uint64_t token;        /* targeted: the token of the last window opened */
    unsigned backoff;      /* targeted: lone ops still to go without a window */
    unsigned backoff_next; /* targeted: the back-off after the next lost yield */
    uint64_t yields_lost;  /* targeted: yields that came back after a slice */
    bool spinning;
    bool ended;            /* this turn ended a window (so it does not block) */
    uint64_t windows;      /* spin windows opened */
    uint64_t turns;        /* loop turns spent spinning */
    uint64_t reaped;       /* ring completions reaped by the spinner itself */
};

/* Starts busy-polling uv for window_us after each wake-up by I/O (0: off,
 * nothing is started). ring, if not NULL, must be bridged to uv (its
 * completions are reaped while spinning). Returns 0 or a negative uv error. */
int vs_spin_init(struct vs_spin *s, uv_loop_t *uv, struct vs_ring *ring, unsigned window_us);
/* The targeted mode: as vs_spin_init, but a window opens only at a turn that
 * would block while gate(ctx) returns a token not seen before, and ends when
 * gate returns another value (0 or a new op's token: then a new window opens
 * at once) or after window_us without activity. */
int vs_spin_init_gated(struct vs_spin *s, uv_loop_t *uv, struct vs_ring *ring, unsigned window_us,
                       vs_spin_gate_fn gate, void *ctx);
/* Closes the handles (uv_close; the loop must run once more to finish). */
void vs_spin_close(struct vs_spin *s);
/* The same, with cb called for each of the three handles (h->data is s), for
 * owners that must wait before freeing s. Returns how many cbs will come. */
unsigned vs_spin_close_cb(struct vs_spin *s, uv_close_cb cb);

typedef void (*vs_loop_shutdown_fn)(struct vs_loop *loop, int signum, void *ctx);

struct vs_loop {
    uv_loop_t uv;
    struct vs_ring *ring; /* NULL when created with ring_entries == 0 */
    uv_poll_t ring_poll;
    uv_prepare_t ring_prepare;
    uv_signal_t sig_term, sig_int;
    struct vs_spin spin;
    vs_loop_shutdown_fn on_shutdown;
    void *shutdown_ctx;
    int signals_seen;
    bool stopping;
    char errmsg[256];
};

/* Initialises the loop; with ring_entries > 0 also creates the io_uring and
 * bridges it. Returns 0 or -errno with loop->errmsg filled. */
int vs_loop_init(struct vs_loop *loop, unsigned ring_entries);

/* Turns on adaptive busy-polling with a window of window_us (0: off); the
 * daemons pass the config key loop_busy_poll_us. Returns 0 or -errno with
 * loop->errmsg filled. */
int vs_loop_busy_poll(struct vs_loop *loop, unsigned window_us);

/* Turns on the targeted spin (vs_spin_init_gated) with the config key
 * loop_spin_lone_us, unless vs_loop_busy_poll already turned on the whole-loop
 * spin (then this is a no-op). Returns 0 or -errno with loop->errmsg filled. */
int vs_loop_spin_lone(struct vs_loop *loop, unsigned window_us, vs_spin_gate_fn gate, void *ctx);

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
