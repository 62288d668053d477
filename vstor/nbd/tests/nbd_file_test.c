/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_file: the file backend on a real file through the process ring and the
 * loop. Checks the data with pread, the async contract of nbd_backend.h (B9:
 * callback exactly once, never before the op returns, on the loop thread),
 * write_zeroes with and without NO_HOLE / FAST_ZERO, the ring-full wait
 * queue, and the errors of open.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loop.h"
#include "nbd_file.h"
#include "vs_ring.h"

#define FILE_BYTES (8u << 20)

static char path[256];

static int setup(void **state)
{
    (void)state;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%s/nbd_file_test.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, FILE_BYTES), 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

/* One op: the request, its private area, and what its callback saw. */
struct op {
    struct vs_nbd_io io;
    _Alignas(16) uint8_t priv[256];
    bool returned; /* the op function had returned when cb ran */
    int calls, res;
};

static unsigned pending;

static void op_cb(struct vs_nbd_io *io, int res)
{
    struct op *o = (struct op *)io;
    assert_true(o->returned); /* B9: never before the call returns */
    o->calls++;
    o->res = res;
    pending--;
}

typedef int (*op_fn)(struct vs_nbd_backend *, struct vs_nbd_io *);

static int start(struct vs_nbd_backend *be, op_fn fn, struct op *o, uint64_t off, uint32_t len,
                 void *buf, uint32_t flags)
{
    memset(o, 0, sizeof(*o));
    assert_true(be->props.io_priv_bytes <= sizeof(o->priv));
    o->io = (struct vs_nbd_io){off, len, flags, buf, op_cb, o->priv};
    pending++;
    int rc = fn(be, &o->io);
    o->returned = true;
    if (rc < 0)
        pending--;
    return rc;
}

/* The ring's poll handle is unreferenced (loop.h); keep it alive meanwhile. */
static void run_until_done(struct vs_loop *loop)
{
    uv_ref((uv_handle_t *)&loop->ring_poll);
    while (pending > 0)
        uv_run(&loop->uv, UV_RUN_ONCE);
    uv_unref((uv_handle_t *)&loop->ring_poll);
}

/* Runs one op to completion; returns its result. */
static int run1(struct vs_loop *loop, struct vs_nbd_backend *be, op_fn fn, uint64_t off,
                uint32_t len, void *buf, uint32_t flags)
{
    struct op o;
    int rc = start(be, fn, &o, off, len, buf, flags);
    if (rc < 0)
        return rc;
    run_until_done(loop);
    assert_int_equal(o.calls, 1);
    return o.res;
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

static void close_backend(struct vs_loop *loop, struct vs_nbd_backend *be)
{
    bool closed = false;
    be->ops->close(be, on_closed, &closed);
    assert_false(closed); /* asynchronous */
    while (!closed)
        uv_run(&loop->uv, UV_RUN_ONCE);
    assert_int_equal(vs_loop_close(loop), 0);
}

static void *abuf(size_t len, int fill)
{
    void *p = NULL;
    assert_int_equal(posix_memalign(&p, 4096, len), 0);
    memset(p, fill, len);
    return p;
}

static void assert_file_bytes(uint64_t off, size_t len, int value)
{
    uint8_t *b = malloc(len);
    int fd = open(path, O_RDONLY);
    assert_int_equal(pread(fd, b, len, (off_t)off), (ssize_t)len);
    close(fd);
    for (size_t i = 0; i < len; i++)
        if (b[i] != value)
            fail_msg("byte %zu at offset %llu is 0x%02x, not 0x%02x", i, (unsigned long long)off,
                     b[i], value);
    free(b);
}

static void test_read_write_flush(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct vs_nbd_backend *be;
    char err[256];
    assert_int_equal(vs_loop_init(&loop, 64), 0);
    assert_int_equal(vs_nbd_file_open(&loop, path, false, &be, err, sizeof(err)), 0);
    const struct vs_nbd_backend_props *p = &be->props;
    assert_true(p->size_bytes == FILE_BYTES);
    assert_true(p->block_min_bytes >= 1 && p->block_min_bytes <= 4096);
    assert_true(p->flush_is_global);
    assert_false(p->read_only);
    uint8_t *w = abuf(1 << 20, 0x5a), *r = abuf(1 << 20, 0);
    {
        op_fn wr = be->ops->write, rd = be->ops->read;
        assert_int_equal(run1(&loop, be, wr, 1 << 20, 1 << 20, w, 0), 0);
        assert_int_equal(run1(&loop, be, wr, 4096, 4096, w, VS_NBD_IO_FUA), 0);
        assert_int_equal(run1(&loop, be, be->ops->flush, 0, 0, NULL, 0), 0);
        assert_file_bytes(1 << 20, 1 << 20, 0x5a);
        assert_file_bytes(4096, 4096, 0x5a);
        assert_int_equal(run1(&loop, be, rd, 1 << 20, 1 << 20, r, 0), 0);
        assert_memory_equal(r, w, 1 << 20);
    }
    free(w);
    free(r);
    close_backend(&loop, be);
}

static void test_zeroes_and_trim(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct vs_nbd_backend *be;
    char err[256];
    assert_int_equal(vs_loop_init(&loop, 64), 0);
    assert_int_equal(vs_nbd_file_open(&loop, path, false, &be, err, sizeof(err)), 0);
    uint8_t *w = abuf(1 << 20, 0x77);
    op_fn wz = be->ops->write_zeroes;
    for (int i = 0; i < 4; i++)
        assert_int_equal(run1(&loop, be, be->ops->write, (uint64_t)i << 20, 1 << 20, w, 0), 0);
    assert_int_equal(run1(&loop, be, wz, 0, 65536, NULL, 0), 0);
    assert_file_bytes(0, 65536, 0);
    assert_file_bytes(65536, 4096, 0x77);
    assert_int_equal(run1(&loop, be, wz, 1 << 20, 8192, NULL, VS_NBD_IO_NO_HOLE | VS_NBD_IO_FUA),
                     0);
    assert_file_bytes(1 << 20, 8192, 0);
    int rc = run1(&loop, be, wz, 2 << 20, 4096, NULL, VS_NBD_IO_FAST_ZERO);
    assert_true(rc == 0 || rc == -ENOTSUP); /* ext4/xfs/tmpfs all punch holes */
    if (rc == 0)
        assert_file_bytes(2 << 20, 4096, 0);
    else
        assert_file_bytes(2 << 20, 4096, 0x77); /* "changing nothing" */
    assert_int_equal(run1(&loop, be, be->ops->trim, 3 << 20, 1 << 20, NULL, VS_NBD_IO_FUA), 0);
    assert_file_bytes(3 << 20, 4096, 0); /* a punched hole reads as zeroes */
    free(w);
    close_backend(&loop, be);
}

/* More ops than the ring holds: the excess waits and still completes once. */
static void test_ring_full(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct vs_nbd_backend *be;
    char err[256];
    assert_int_equal(vs_loop_init(&loop, 4), 0);
    assert_int_equal(vs_nbd_file_open(&loop, path, false, &be, err, sizeof(err)), 0);
    enum { N = 64 };
    struct op *ops = calloc(N, sizeof(*ops));
    uint8_t *bufs = abuf(N * 4096, 0);
    for (unsigned i = 0; i < N; i++) {
        memset(bufs + i * 4096, (int)i, 4096);
        assert_int_equal(start(be, be->ops->write, &ops[i], i * 4096ull, 4096, bufs + i * 4096,
                               i % 3 == 0 ? VS_NBD_IO_FUA : 0),
                         0);
    }
    assert_true(vs_ring_inflight(loop.ring) <= 4);
    run_until_done(&loop);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(ops[i].calls, 1);
        assert_int_equal(ops[i].res, 0);
        assert_file_bytes(i * 4096ull, 4096, (int)i);
    }
    free(ops);
    free(bufs);
    close_backend(&loop, be);
}

static void test_read_only(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct vs_nbd_backend *be, *be2;
    char err[256];
    assert_int_equal(vs_loop_init(&loop, 8), 0);
    assert_int_equal(vs_nbd_file_open(&loop, path, true, &be, err, sizeof(err)), 0);
    assert_true(be->props.read_only);
    /* two read-only exports share the file; a writable one is refused */
    assert_int_equal(vs_nbd_file_open(&loop, path, true, &be2, err, sizeof(err)), 0);
    assert_int_equal(
        vs_nbd_file_open(&loop, path, false, &(struct vs_nbd_backend *){NULL}, err, sizeof(err)),
        -EWOULDBLOCK);
    assert_non_null(strstr(err, "in use by another process"));
    uint8_t *r = abuf(4096, 1);
    assert_int_equal(run1(&loop, be, be->ops->read, 0, 4096, r, 0), 0);
    free(r);
    bool closed = false;
    be2->ops->close(be2, on_closed, &closed);
    while (!closed)
        uv_run(&loop.uv, UV_RUN_ONCE);
    close_backend(&loop, be);
}

static void test_open_errors(void **state)
{
    (void)state;
    struct vs_loop loop;
    struct vs_nbd_backend *be;
    char err[512];
    assert_int_equal(vs_loop_init(&loop, 8), 0);
    assert_int_equal(vs_nbd_file_open(&loop, "/nonexistent/x", false, &be, err, sizeof(err)),
                     -ENOENT);
    assert_non_null(strstr(err, "/nonexistent/x"));
    assert_int_equal(vs_nbd_file_open(&loop, "/tmp", false, &be, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "not a regular file or a block device"));
    int fd = open(path, O_WRONLY | O_TRUNC);
    close(fd);
    assert_int_equal(vs_nbd_file_open(&loop, path, false, &be, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "too small"));
    assert_int_equal(vs_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_read_write_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zeroes_and_trim, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ring_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
