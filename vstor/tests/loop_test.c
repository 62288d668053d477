/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The loop/io_uring bridge: real O_DIRECT I/O on a temp file through the
 * process ring, completing inside the libuv loop; signal shutdown; and the
 * adaptive busy-poll (a window opens on I/O, ends, and never opens on timers;
 * ring completions are reaped while spinning).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "vs_ring.h"

/* A three-step chain, each step issued from the previous step's completion
 * callback, all running inside uv_run: write -> fdatasync -> read. */
struct chain {
    struct vs_ring_op op;
    struct vs_loop *loop;
    int fd;
    int step;
    int results[3];
    void *wbuf, *rbuf;
    uv_thread_t loop_thread;
    bool in_loop[3];
};

static uv_thread_t main_thread;

static void chain_next(struct chain *c);

static void chain_cb(struct vs_ring_op *op, int res)
{
    struct chain *c = (struct chain *)op;
    uv_thread_t self = uv_thread_self();
    c->in_loop[c->step] = uv_thread_equal(&self, &main_thread);
    c->results[c->step] = res;
    c->step++;
    chain_next(c);
}

static void chain_next(struct chain *c)
{
    if (c->step == 3) {
        vs_loop_stop(c->loop);
        return;
    }
    struct io_uring_sqe *sqe = vs_ring_sqe(c->loop->ring, &c->op);
    assert_non_null(sqe);
    switch (c->step) {
    case 0:
        io_uring_prep_write(sqe, c->fd, c->wbuf, 4096, 4096 * 3);
        break;
    case 1:
        io_uring_prep_fsync(sqe, c->fd, IORING_FSYNC_DATASYNC);
        break;
    default:
        io_uring_prep_read(sqe, c->fd, c->rbuf, 4096, 4096 * 3);
        break;
    }
}

static void test_uring_io_in_loop(void **state)
{
    (void)state;
    main_thread = uv_thread_self();
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 16), 0);
    assert_non_null(loop.ring);

    char path[256];
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/loop_test.XXXXXX", dir && *dir ? dir : "/tmp");
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    close(tmp);
    struct chain c = {.op.cb = chain_cb, .loop = &loop};
    c.fd = open(path, O_RDWR | O_DIRECT);
    assert_true(c.fd >= 0);
    assert_int_equal(posix_memalign(&c.wbuf, 4096, 4096), 0);
    assert_int_equal(posix_memalign(&c.rbuf, 4096, 4096), 0);
    for (int i = 0; i < 4096; i++)
        ((unsigned char *)c.wbuf)[i] = (unsigned char)(i * 7 + 3);
    memset(c.rbuf, 0, 4096);

    chain_next(&c);  /* queued only: the loop's prepare hook submits it */
    assert_int_equal(c.step, 0);
    assert_int_equal(vs_loop_run(&loop), 0);

    assert_int_equal(c.step, 3);
    assert_int_equal(c.results[0], 4096);
    assert_int_equal(c.results[1], 0);
    assert_int_equal(c.results[2], 4096);
    assert_true(c.in_loop[0] && c.in_loop[1] && c.in_loop[2]);
    assert_memory_equal(c.rbuf, c.wbuf, 4096);

    assert_int_equal(vs_loop_close(&loop), 0);
    close(c.fd);
    unlink(path);
    free(c.wbuf);
    free(c.rbuf);
}

struct shutdown_probe {
    int calls;
    int signum;
};

static void on_shutdown(struct vs_loop *loop, int signum, void *ctx)
{
    struct shutdown_probe *p = ctx;
    p->calls++;
    p->signum = signum;
    vs_loop_stop(loop);
}

static void raise_cb(uv_timer_t *t)
{
    (void)t;
    kill(getpid(), SIGTERM);
}

static void test_sigterm_shutdown(void **state)
{
    (void)state;
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 0), 0);
    struct shutdown_probe probe = {0};
    vs_loop_on_shutdown(&loop, on_shutdown, &probe);
    uv_timer_t timer, keepalive;
    uv_timer_init(&loop.uv, &timer);
    uv_timer_start(&timer, raise_cb, 10, 0);
    uv_timer_init(&loop.uv, &keepalive); /* a daemon's long-lived work */
    uv_timer_start(&keepalive, raise_cb, 60000, 0);
    assert_int_equal(vs_loop_run(&loop), 0);
    assert_int_equal(probe.calls, 1);
    assert_int_equal(probe.signum, SIGTERM);
    uv_close((uv_handle_t *)&timer, NULL);
    uv_close((uv_handle_t *)&keepalive, NULL);
    assert_int_equal(vs_loop_close(&loop), 0);
}

static void test_close_reports_leaked_handles(void **state)
{
    (void)state;
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    uv_timer_t leaked;
    uv_timer_init(&loop.uv, &leaked);
    assert_int_equal(vs_loop_close(&loop), -EBUSY);
    uv_close((uv_handle_t *)&leaked, NULL);
    uv_run(&loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&loop.uv), 0);
    vs_ring_destroy(loop.ring);
}

/* ---- Busy-polling ------------------------------------------------------------------ */

struct spin_probe {
    struct vs_loop *loop;
    int fds[2];          /* a socketpair: a byte written to fds[1] wakes the loop */
    uv_poll_t poll;
    uv_timer_t timer;
    int step;
    int reads;
    uint64_t turns_at[4], windows_at[4], cpu_ms_at[4];
};

static void probe_poll_cb(uv_poll_t *h, int status, int events)
{
    struct spin_probe *p = h->data;
    (void)status;
    (void)events;
    char c;
    while (read(p->fds[0], &c, 1) == 1)
        p->reads++;
}

static uint64_t cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* Steps, 60 ms apart (the window is 5 ms): 0 -> write a byte (an I/O wake-up
 * opens a window soon after); 1, 2 -> note the counters (the window has ended
 * and the loop only blocks, woken by this timer alone); 3 -> stop. */
static void probe_timer_cb(uv_timer_t *t)
{
    struct spin_probe *p = t->data;
    struct vs_spin *s = &p->loop->spin;
    p->turns_at[p->step] = s->turns;
    p->windows_at[p->step] = s->windows;
    p->cpu_ms_at[p->step] = cpu_ms();
    if (p->step == 0)
        assert_int_equal(write(p->fds[1], "x", 1), 1);
    if (++p->step == 4)
        vs_loop_stop(p->loop);
}

static void test_spin_window_ends(void **state)
{
    (void)state;
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 0), 0);
    assert_int_equal(vs_loop_busy_poll(&loop, 5000), 0);
    struct spin_probe p = {.loop = &loop};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, p.fds), 0);
    uv_poll_init(&loop.uv, &p.poll, p.fds[0]);
    p.poll.data = &p;
    uv_poll_start(&p.poll, UV_READABLE, probe_poll_cb);
    uv_timer_init(&loop.uv, &p.timer);
    p.timer.data = &p;
    uv_timer_start(&p.timer, probe_timer_cb, 60, 60);

    assert_int_equal(vs_loop_run(&loop), 0);
    assert_int_equal(p.step, 4);
    assert_int_equal(p.reads, 1);
    /* Before the byte: the loop started idle and timer wake-ups opened no window. */
    assert_int_equal(p.windows_at[0], 0);
    assert_int_equal(p.turns_at[0], 0);
    /* The byte's wake-up opened exactly one window, which spun for a while... */
    assert_int_equal(p.windows_at[1], 1);
    assert_true(p.turns_at[1] > 0);
    /* ...and ended: two more timer periods without a spinning turn. */
    assert_int_equal(p.windows_at[3], 1);
    assert_int_equal(p.turns_at[3], p.turns_at[1]);
    assert_false(loop.spin.spinning);
    /* Blocked, not burning CPU: far less than the 120 ms of wall time. */
    assert_true(p.cpu_ms_at[3] - p.cpu_ms_at[1] < 40);

    uv_close((uv_handle_t *)&p.poll, NULL);
    uv_close((uv_handle_t *)&p.timer, NULL);
    assert_int_equal(vs_loop_close(&loop), 0);
    close(p.fds[0]);
    close(p.fds[1]);
}

/* A chain of ring timeouts, each issued from the previous one's completion:
 * every completion arrives while the loop spins (the window is far longer
 * than the timeouts), so the spinner reaps them itself. */
struct ring_chain {
    struct vs_ring_op op;
    struct vs_loop *loop;
    struct __kernel_timespec ts;
    int left;
    int done;
    int bad;
    int while_spinning;
};

static void ring_chain_next(struct ring_chain *c);

static void ring_chain_cb(struct vs_ring_op *op, int res)
{
    struct ring_chain *c = (struct ring_chain *)op;
    if (res != -ETIME)
        c->bad++;
    c->done++;
    c->while_spinning += c->loop->spin.spinning;
    ring_chain_next(c);
}

static void ring_chain_next(struct ring_chain *c)
{
    if (c->left == 0) {
        vs_loop_stop(c->loop);
        return;
    }
    c->left--;
    struct io_uring_sqe *sqe = vs_ring_sqe(c->loop->ring, &c->op);
    assert_non_null(sqe);
    io_uring_prep_timeout(sqe, &c->ts, 0, 0);
}

static void test_spin_reaps_ring(void **state)
{
    (void)state;
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 8), 0);
    assert_int_equal(vs_loop_busy_poll(&loop, 1000000), 0); /* no gap ends it */
    struct ring_chain c = {.op.cb = ring_chain_cb, .loop = &loop, .left = 200};
    c.ts.tv_nsec = 100000; /* 100 us */
    ring_chain_next(&c);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_THREAD, &ru0);
    assert_int_equal(vs_loop_run(&loop), 0);
    getrusage(RUSAGE_THREAD, &ru1);
    assert_int_equal(c.done, 200);
    assert_int_equal(c.bad, 0);
    /* The first completions woke the blocked loop (the very first turn has
     * epoll changes to apply, so its wake-up opens no window: the second one
     * does); all the rest came while spinning, in the one window. */
    assert_int_equal(loop.spin.windows, 1);
    assert_true(c.while_spinning >= 198);
    /* The spinner reaps what it finds; a completion that lands while another
     * process holds the CPU after a yield is found first by libuv's poll of
     * that turn (the eventfd). On a loaded machine that can be all of them:
     * only a spinner that kept its CPU must have reaped some. */
    if (ru1.ru_nivcsw - ru0.ru_nivcsw < 20)
        assert_true(loop.spin.reaped > 0);
    assert_int_equal(vs_loop_close(&loop), 0);
}

static void test_spin_off(void **state)
{
    (void)state;
    struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    assert_int_equal(vs_loop_busy_poll(&loop, 0), 0);
    assert_null(loop.spin.uv);
    assert_int_equal(vs_loop_close(&loop), 0);
}

/* ---- The lone-op spin (targeted mode) ----------------------------------------- */

/* The gate of these tests: open (token) while exactly one op is in flight. */
struct lone_gate {
    unsigned in_flight;
    uint64_t token;
    unsigned calls;
};

static uint64_t lone_gate_fn(void *ctx)
{
    struct lone_gate *g = ctx;
    g->calls++;
    return g->in_flight == 1 ? g->token : 0;
}

/* A chain of lone ring timeouts (each issued from the previous completion, a
 * new token each): every one is waited for by spinning, in its own window. */
struct lone_chain {
    struct ring_chain rc;
    struct lone_gate *g;
};

static void lone_chain_cb(struct vs_ring_op *op, int res)
{
    struct lone_chain *l = (struct lone_chain *)op;
    l->g->in_flight--;
    if (l->rc.left > 0) {
        l->g->in_flight++;
        l->g->token++;
    }
    ring_chain_cb(op, res);
}

static void test_lone_spin_waits_for_each_op(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct lone_gate g = {.in_flight = 1, .token = 1};
    assert_int_equal(vs_loop_init(&loop, 8), 0);
    assert_int_equal(vs_loop_spin_lone(&loop, 1000000, lone_gate_fn, &g), 0);
    struct lone_chain l = {.rc = {.op.cb = lone_chain_cb, .loop = &loop, .left = 100}, .g = &g};
    l.rc.ts.tv_nsec = 100000; /* 100 us */
    ring_chain_next(&l.rc);
    assert_int_equal(vs_loop_run(&loop), 0);
    assert_int_equal(l.rc.done, 100);
    assert_int_equal(l.rc.bad, 0);
    /* One window per op; every completion came while spinning (reaped by the
     * spinner itself, or by the eventfd's callback in a turn polled with
     * timeout 0 when the completion landed between the two checks). Unless
     * another process took the CPU for a slice during a yield (a loaded test
     * machine): then the spin backed off (test_lone_spin_backs_off_from_a_hog). */
    if (loop.spin.yields_lost == 0) {
        assert_int_equal(loop.spin.windows, 100);
        assert_int_equal(l.rc.while_spinning, 100);
        assert_true(loop.spin.reaped > 0);
    } else {
        assert_true(loop.spin.windows >= 1 && loop.spin.windows < 100);
    }
    /* The gate closed with the last op: the spin ended (the loop stopped in
     * that op's callback, so its last idle turn may still be pending). */
    assert_int_equal(g.in_flight, 0);
    assert_int_equal(vs_loop_close(&loop), 0);
}

/* Steps 0..3, 30 ms apart, with a window of 5 ms. */
struct lone_probe {
    struct spin_probe p;
    struct lone_gate *g;
};

static void lone_probe_timer_cb(uv_timer_t *t)
{
    struct lone_probe *l = t->data;
    struct vs_spin *s = &l->p.loop->spin;
    l->p.turns_at[l->p.step] = s->turns;
    l->p.windows_at[l->p.step] = s->windows;
    l->p.cpu_ms_at[l->p.step] = cpu_ms();
    assert_int_equal(write(l->p.fds[1], "x", 1), 1); /* an I/O wake-up too */
    if (++l->p.step == 4)
        vs_loop_stop(l->p.loop);
}

static void lone_probe_run(struct lone_gate *g, unsigned window_us, struct lone_probe *l)
{
    static struct vs_loop loop;
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    assert_int_equal(vs_loop_spin_lone(&loop, window_us, lone_gate_fn, g), 0);
    memset(l, 0, sizeof(*l));
    l->p.loop = &loop;
    l->g = g;
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, l->p.fds), 0);
    uv_poll_init(&loop.uv, &l->p.poll, l->p.fds[0]);
    l->p.poll.data = &l->p;
    uv_poll_start(&l->p.poll, UV_READABLE, probe_poll_cb);
    uv_timer_init(&loop.uv, &l->p.timer);
    l->p.timer.data = l;
    uv_timer_start(&l->p.timer, lone_probe_timer_cb, 30, 30);
    assert_int_equal(vs_loop_run(&loop), 0);
    assert_int_equal(l->p.step, 4);
    assert_false(loop.spin.spinning);
    uv_close((uv_handle_t *)&l->p.poll, NULL);
    uv_close((uv_handle_t *)&l->p.timer, NULL);
    assert_int_equal(vs_loop_close(&loop), 0);
    close(l->p.fds[0]);
    close(l->p.fds[1]);
}

/* An op slower than the window: one window for its token, which ends after
 * the window; then the loop sleeps although the op is still outstanding. */
static void test_lone_spin_window_ends(void **state)
{
    (void)state;
    struct lone_gate g = {.in_flight = 1, .token = 7};
    struct lone_probe l;
    lone_probe_run(&g, 5000, &l);
    assert_int_equal(l.p.windows_at[0], 1); /* opened at the first turn that would block */
    assert_true(l.p.turns_at[0] > 0);
    assert_int_equal(l.p.windows_at[3], 1); /* same token: never again */
    assert_int_equal(l.p.turns_at[3], l.p.turns_at[0]);
    assert_true(l.p.cpu_ms_at[3] - l.p.cpu_ms_at[0] < 40); /* 90 ms asleep */
}

/* More than one op in flight (or none): timer and I/O wake-ups open nothing. */
static void test_lone_spin_not_taken(void **state)
{
    (void)state;
    struct lone_gate g = {.in_flight = 2, .token = 7};
    struct lone_probe l;
    lone_probe_run(&g, 5000, &l);
    assert_true(g.calls >= 4);
    assert_int_equal(l.p.windows_at[3], 0);
    assert_int_equal(l.p.turns_at[3], 0);
    assert_true(l.p.reads >= 3);
    g = (struct lone_gate){.in_flight = 0, .token = 7};
    lone_probe_run(&g, 5000, &l);
    assert_int_equal(l.p.windows_at[3], 0);
    assert_int_equal(l.p.turns_at[3], 0);
}

/* A CPU hog on the spinner's CPU: its first yield comes back after the hog's
 * slice, which ends the window and makes the next lone ops sleep. */
static void test_lone_spin_backs_off_from_a_hog(void **state)
{
    (void)state;
    cpu_set_t one, old;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    pid_t hog = fork();
    assert_true(hog >= 0);
    if (hog == 0) {
        /* Dies with the test even if an assertion ends it before the kill. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) /* inherits the affinity: CPU 0 only */
            ;
    }
    struct vs_loop loop;
    struct lone_gate g = {.in_flight = 1, .token = 1};
    assert_int_equal(vs_loop_init(&loop, 8), 0);
    assert_int_equal(vs_loop_spin_lone(&loop, 1000000, lone_gate_fn, &g), 0);
    struct lone_chain l = {.rc = {.op.cb = lone_chain_cb, .loop = &loop, .left = 20}, .g = &g};
    l.rc.ts.tv_nsec = 1000000; /* 1 ms */
    ring_chain_next(&l.rc);
    assert_int_equal(vs_loop_run(&loop), 0);
    kill(hog, SIGKILL);
    waitpid(hog, NULL, 0);
    assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
    assert_int_equal(l.rc.done, 20);
    assert_true(loop.spin.yields_lost >= 1);
    /* Each lost yield backed off, for twice as many ops each time: far
     * fewer windows than ops (16 + 32 > 20). */
    assert_true(loop.spin.windows <= 3);
    assert_true(loop.spin.backoff_next >= 32);
    assert_int_equal(vs_loop_close(&loop), 0);
}

/* The whole-loop spin covers the lone op: vs_loop_spin_lone then does nothing;
 * a window of 0 turns nothing on. */
static void test_lone_spin_off(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct lone_gate g = {.in_flight = 1, .token = 1};
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    assert_int_equal(vs_loop_busy_poll(&loop, 100), 0);
    assert_int_equal(vs_loop_spin_lone(&loop, 100, lone_gate_fn, &g), 0);
    assert_null(loop.spin.gate);
    assert_int_equal(vs_loop_close(&loop), 0);
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    assert_int_equal(vs_loop_spin_lone(&loop, 0, lone_gate_fn, &g), 0);
    assert_null(loop.spin.uv);
    assert_null(loop.spin.gate);
    assert_int_equal(vs_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uring_io_in_loop),
        cmocka_unit_test(test_sigterm_shutdown),
        cmocka_unit_test(test_close_reports_leaked_handles),
        cmocka_unit_test(test_spin_window_ends),
        cmocka_unit_test(test_spin_reaps_ring),
        cmocka_unit_test(test_spin_off),
        cmocka_unit_test(test_lone_spin_waits_for_each_op),
        cmocka_unit_test(test_lone_spin_window_ends),
        cmocka_unit_test(test_lone_spin_not_taken),
        cmocka_unit_test(test_lone_spin_backs_off_from_a_hog),
        cmocka_unit_test(test_lone_spin_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
