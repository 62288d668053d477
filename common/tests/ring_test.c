/* SPDX-License-Identifier: GPL-3.0-or-later */
/* vs_ring without an event loop: O_DIRECT write, fsync, read; backpressure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "vs_ring.h"

struct test_op {
    struct vs_ring_op op;
    int res;
    int calls;
};

static void test_op_cb(struct vs_ring_op *op, int res)
{
    struct test_op *t = (struct test_op *)op;
    t->res = res;
    t->calls++;
}

static int open_tmp(char *path, size_t size)
{
    const char *dir = getenv("TMPDIR");
    snprintf(path, size, "%s/ring_test.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    fd = open(path, O_RDWR | O_DIRECT);
    assert_true(fd >= 0);
    return fd;
}

static void test_direct_write_fsync_read(void **state)
{
    (void)state;
    char err[256], path[512];
    struct vs_ring *r;
    assert_int_equal(vs_ring_create(8, &r, err, sizeof(err)), 0);
    int fd = open_tmp(path, sizeof(path));
    void *wbuf = NULL, *rbuf = NULL;
    assert_int_equal(posix_memalign(&wbuf, 4096, 4096), 0);
    assert_int_equal(posix_memalign(&rbuf, 4096, 4096), 0);
    memset(wbuf, 0x5a, 4096);
    memset(rbuf, 0, 4096);

    struct test_op w = {.op.cb = test_op_cb}, s = {.op.cb = test_op_cb}, rd = {.op.cb = test_op_cb};
    struct io_uring_sqe *sqe = vs_ring_sqe(r, &w.op);
    io_uring_prep_write(sqe, fd, wbuf, 4096, 8192);
    sqe->flags |= IOSQE_IO_LINK; /* fsync only after the write lands */
    sqe = vs_ring_sqe(r, &s.op);
    io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
    assert_true(vs_ring_has_unsubmitted(r));
    assert_int_equal(vs_ring_inflight(r), 2);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.res, 4096);
    assert_int_equal(s.calls, 1);
    assert_int_equal(s.res, 0);

    sqe = vs_ring_sqe(r, &rd.op);
    io_uring_prep_read(sqe, fd, rbuf, 4096, 8192);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(rd.res, 4096);
    assert_memory_equal(rbuf, wbuf, 4096);

    /* Errors arrive as a negative errno through the callback. */
    sqe = vs_ring_sqe(r, &rd.op);
    io_uring_prep_read(sqe, -1, rbuf, 512, 0);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(rd.res, -EBADF);
    assert_int_equal(rd.calls, 2);

    close(fd);
    unlink(path);
    free(wbuf);
    free(rbuf);
    vs_ring_destroy(r);
}

static void test_backpressure(void **state)
{
    (void)state;
    char err[256];
    struct vs_ring *r;
    assert_int_equal(vs_ring_create(3, &r, err, sizeof(err)), 0);
    assert_int_equal(vs_ring_capacity(r), 4);
    struct test_op ops[5];
    for (int i = 0; i < 4; i++) {
        ops[i] = (struct test_op){.op.cb = test_op_cb};
        struct io_uring_sqe *sqe = vs_ring_sqe(r, &ops[i].op);
        assert_non_null(sqe);
        io_uring_prep_nop(sqe);
    }
    ops[4] = (struct test_op){.op.cb = test_op_cb};
    assert_null(vs_ring_sqe(r, &ops[4].op)); /* full: caller must queue */
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(ops[i].calls, 1);
    struct io_uring_sqe *sqe = vs_ring_sqe(r, &ops[4].op);
    assert_non_null(sqe);
    io_uring_prep_nop(sqe);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(ops[4].calls, 1);
    vs_ring_destroy(r);
}

struct hook_probe {
    struct vs_ring *ring;
    struct test_op fsync_op;
    int runs;
};

/* Appends a drained fsync to each batch, the way the store group-commits. */
static void append_fsync_hook(void *ctx)
{
    struct hook_probe *h = ctx;
    h->runs++;
    struct io_uring_sqe *sqe = vs_ring_sqe(h->ring, &h->fsync_op.op);
    assert_non_null(sqe);
    io_uring_prep_nop(sqe);
    sqe->flags |= IOSQE_IO_DRAIN;
}

static void test_submit_hook(void **state)
{
    (void)state;
    char err[256];
    struct vs_ring *r;
    assert_int_equal(vs_ring_create(8, &r, err, sizeof(err)), 0);
    struct hook_probe h = {.ring = r, .fsync_op.op.cb = test_op_cb};
    assert_int_equal(vs_ring_add_submit_hook(r, append_fsync_hook, &h), 0);
    assert_int_equal(vs_ring_submit(r), 0); /* nothing queued: the hook does not run */
    assert_int_equal(h.runs, 0);
    struct test_op ops[3];
    for (int i = 0; i < 3; i++) {
        ops[i] = (struct test_op){.op.cb = test_op_cb};
        io_uring_prep_nop(vs_ring_sqe(r, &ops[i].op));
    }
    assert_int_equal(vs_ring_submit(r), 4); /* three ops and the hook's fsync */
    assert_int_equal(h.runs, 1);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(h.fsync_op.calls, 1);
    vs_ring_remove_submit_hook(r, append_fsync_hook, &h);
    io_uring_prep_nop(vs_ring_sqe(r, &ops[0].op));
    assert_int_equal(vs_ring_submit(r), 1);
    assert_int_equal(h.runs, 1);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    vs_ring_destroy(r);
}

/* A loop that busy-polls sees a finished io through vs_ring_cq_ready() and
 * reaps it with vs_ring_process(), without ever waiting in the kernel: under
 * DEFER_TASKRUN the io is task work until process() asks for events. */
static void test_cq_ready_then_process(void **state)
{
    (void)state;
    char err[256], path[512];
    struct vs_ring *r;
    assert_int_equal(vs_ring_create(8, &r, err, sizeof(err)), 0);
    int fd = open_tmp(path, sizeof(path));
    void *buf = NULL;
    assert_int_equal(posix_memalign(&buf, 4096, 4096), 0);
    memset(buf, 0x33, 4096);
    /* Allocated blocks: a read of a hole would complete inline at submit. */
    assert_int_equal(pwrite(fd, buf, 4096, 65536), 4096);
    assert_int_equal(fdatasync(fd), 0);
    struct test_op rd = {.op.cb = test_op_cb};
    memset(buf, 0, 4096);
    io_uring_prep_read(vs_ring_sqe(r, &rd.op), fd, buf, 4096, 65536);
    assert_int_equal(vs_ring_submit(r), 1);
    long spins = 0;
    while (!vs_ring_cq_ready(r)) {
        spins++;
        assert_true(spins < 2000000000L);
    }
    while (rd.calls == 0)
        assert_true(vs_ring_process(r) >= 0);
    assert_int_equal(rd.res, 4096);
    assert_int_equal(((uint8_t *)buf)[4095], 0x33);
    assert_int_equal(vs_ring_inflight(r), 0);
    assert_false(vs_ring_cq_ready(r));
    close(fd);
    unlink(path);
    free(buf);
    vs_ring_destroy(r);
}

/* Registered file and buffer: a write and a read through both, the buffer
 * lookup's bounds, and the file released (its flock free) on unregister. */
static void test_registered_file_and_buffer(void **state)
{
    (void)state;
    char err[256], path[512];
    struct vs_ring *r;
    assert_int_equal(vs_ring_create(8, &r, err, sizeof(err)), 0);
    int fd = open_tmp(path, sizeof(path));
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    uint8_t *mem = NULL;
    assert_int_equal(posix_memalign((void **)&mem, 4096, 3 * 4096), 0);
    assert_int_equal(vs_ring_register_buffer(r, mem, 2 * 4096), 0);
    assert_int_equal(vs_ring_buffer_index(r, mem + 4096, 4096), 0);
    assert_int_equal(vs_ring_buffer_index(r, mem + 4096, 8192), -1); /* runs past the end */
    assert_int_equal(vs_ring_buffer_index(r, mem + 8192, 4096), -1);
    int slot = vs_ring_register_file(r, fd);
    assert_true(slot >= 0);
    memset(mem, 0xa5, 4096);
    struct test_op w = {.op.cb = test_op_cb}, rd = {.op.cb = test_op_cb};
    vs_ring_prep_rw(r, vs_ring_sqe(r, &w.op), true, fd, slot, mem, 4096, 4096);
    while (vs_ring_inflight(r) > 0)
        assert_true(vs_ring_run_once(r) >= 0);
    assert_int_equal(w.res, 4096);
    for (int unreg = 0; unreg < 2; unreg++) { /* READ_FIXED, then plain READ */
        memset(mem + 4096, 0, 4096);
        vs_ring_prep_rw(r, vs_ring_sqe(r, &rd.op), false, fd, slot, mem + 4096, 4096, 4096);
        while (vs_ring_inflight(r) > 0)
            assert_true(vs_ring_run_once(r) >= 0);
        assert_int_equal(rd.res, 4096);
        assert_memory_equal(mem, mem + 4096, 4096);
        vs_ring_unregister_buffer(r, mem);
        assert_int_equal(vs_ring_buffer_index(r, mem, 4096), -1);
    }
    vs_ring_unregister_file(r, slot);
    close(fd);
    fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0); /* the ring let go of the file */
    close(fd);
    unlink(path);
    free(mem);
    vs_ring_destroy(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_direct_write_fsync_read),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_submit_hook),
        cmocka_unit_test(test_cq_ready_then_process),
        cmocka_unit_test(test_registered_file_and_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
