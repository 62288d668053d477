/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * The loop/io_uring bridge: real O_DIRECT I/O on a temp file through the
 * process ring, completing inside the libuv loop; and signal shutdown.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uring_io_in_loop),
        cmocka_unit_test(test_sigterm_shutdown),
        cmocka_unit_test(test_close_reports_leaked_handles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
