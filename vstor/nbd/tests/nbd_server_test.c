/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_server with a fake backend whose ops the test completes by hand, so
 * what real clients cannot force happens deterministically: the flags each
 * kind of backend gets advertised (multi-conn only with a global flush),
 * backend errors mapped onto the wire (sync and async), replies in
 * completion order, backpressure when every slot is busy, and connections
 * waiting for buffers served in order. The client end is a socket pair
 * adopted in the transmission phase (as `vstor map` does), spoken to with
 * hand-encoded requests. Also the reply spin (nbd_server.c NOTES 4): its
 * window's bounds, that it is not taken while a request is in the backend,
 * and that it finds a request the client sends while it polls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loop.h"
#include "nbd_proto.h"
#include "nbd_server.h"

/* ---- A fake backend ------------------------------------------------------ */

#define FAKE_SIZE   (1u << 20)
#define PENDING_MAX 512

struct fake {
    struct vs_nbd_backend be;
    uint8_t data[FAKE_SIZE];
    struct vs_nbd_io *pending[PENDING_MAX]; /* submitted, not completed */
    unsigned npending;
    int fail_sync; /* next op returns this at once (0 = no) */
    unsigned submitted;
    bool closed;
};

static int fake_op(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    struct fake *f = (struct fake *)be;
    if (f->fail_sync) {
        int rc = f->fail_sync;
        f->fail_sync = 0;
        return rc;
    }
    assert_true(io->length == 0 || io->offset + io->length <= FAKE_SIZE);
    assert_true(f->npending < PENDING_MAX);
    f->pending[f->npending++] = io;
    f->submitted++;
    return 0;
}

/* Completes pending op i with res. */
static void fake_complete(struct fake *f, unsigned i, int res)
{
    assert_true(i < f->npending);
    struct vs_nbd_io *io = f->pending[i];
    memmove(&f->pending[i], &f->pending[i + 1], (f->npending - i - 1) * sizeof(io));
    f->npending--;
    io->cb(io, res);
}

static void fake_close(struct vs_nbd_backend *be, vs_nbd_backend_close_cb cb, void *arg)
{
    struct fake *f = (struct fake *)be;
    assert_int_equal(f->npending, 0);
    f->closed = true;
    cb(arg); /* the test runs the loop around this; B9 timing is not checked here */
}

static const struct vs_nbd_backend_ops fake_ops = {
    "fake", fake_op, fake_op, fake_op, fake_op, fake_op, fake_close,
};
static const struct vs_nbd_backend_ops fake_ops_no_trim = {
    "fake", fake_op, fake_op, fake_op, NULL, fake_op, fake_close,
};

static struct fake *fake_new(bool read_only, bool global_flush, bool trim)
{
    struct fake *f = calloc(1, sizeof(*f));
    f->be.ops = trim ? &fake_ops : &fake_ops_no_trim;
    f->be.props = (struct vs_nbd_backend_props){
        .size_bytes = FAKE_SIZE,
        .block_min_bytes = 512,
        .block_pref_bytes = 4096,
        .block_max_bytes = 64 * 1024,
        .io_priv_bytes = 24,
        .read_only = read_only,
        .flush_is_global = global_flush,
        .can_fast_zero = false,
    };
    snprintf(f->be.desc, sizeof(f->be.desc), "fake");
    return f;
}

/* ---- Harness ------------------------------------------------------------ */

struct harness {
    struct vs_loop loop;
    struct fake *f;
    struct vs_nbd_server *srv;
    int cfd; /* the client's end */
    bool stopped, kernel_closed;
    uv_timer_t alive; /* keeps uv_run going while the connection reads nothing */
};

static void never_cb(uv_timer_t *t)
{
    (void)t;
    fail_msg("the keep-alive timer fired");
}

static void kernel_closed(void *arg)
{
    ((struct harness *)arg)->kernel_closed = true;
}

static void h_start_spin(struct harness *h, struct fake *f, unsigned iodepth, uint64_t buffer,
                         unsigned spin_us)
{
    memset(h, 0, sizeof(*h));
    h->f = f;
    assert_int_equal(vs_loop_init(&h->loop, 0), 0);
    uv_timer_init(&h->loop.uv, &h->alive);
    uv_timer_start(&h->alive, never_cb, 3600 * 1000, 0);
    struct vs_nbd_server_config cfg = {"fake", iodepth, 8, buffer, 0, spin_us, false};
    char err[256];
    assert_int_equal(vs_nbd_server_create(&h->loop, &f->be, &cfg, &h->srv, err, sizeof(err)), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    h->cfd = sv[0];
    fcntl(h->cfd, F_SETFL, O_NONBLOCK);
    assert_int_equal(vs_nbd_server_adopt_fd(h->srv, sv[1], kernel_closed, h, err, sizeof(err)), 0);
}

static void h_start(struct harness *h, struct fake *f, unsigned iodepth, uint64_t buffer)
{
    h_start_spin(h, f, iodepth, buffer, 0);
}

static void spin(struct harness *h, int turns)
{
    for (int i = 0; i < turns; i++)
        uv_run(&h->loop.uv, UV_RUN_NOWAIT);
}

static void send_req(struct harness *h, uint16_t type, uint16_t flags, uint64_t cookie,
                     uint64_t off, uint32_t len, const void *payload)
{
    uint8_t b[VS_NBD_REQUEST_SIZE];
    vs_nbd_put_be32(b, VS_NBD_MAGIC_REQUEST);
    vs_nbd_put_be16(b + 4, flags);
    vs_nbd_put_be16(b + 6, type);
    vs_nbd_put_be64(b + 8, cookie);
    vs_nbd_put_be64(b + 16, off);
    vs_nbd_put_be32(b + 24, len);
    assert_int_equal(write(h->cfd, b, sizeof(b)), sizeof(b));
    size_t done = 0;
    while (payload && done < len) {
        ssize_t n = write(h->cfd, (const uint8_t *)payload + done, len - done);
        if (n > 0)
            done += (size_t)n;
        spin(h, 1);
    }
    spin(h, 3);
}

/* Reads exactly n bytes, running the loop meanwhile. */
static void recv_exact(struct harness *h, void *buf, size_t n)
{
    size_t got = 0;
    for (int tries = 0; got < n && tries < 100000; tries++) {
        ssize_t r = read(h->cfd, (uint8_t *)buf + got, n - got);
        if (r > 0)
            got += (size_t)r;
        else
            spin(h, 1);
    }
    assert_int_equal(got, n);
}

/* The next simple reply: returns its error, stores its cookie. */
static uint32_t recv_reply(struct harness *h, uint64_t *cookie)
{
    uint8_t b[VS_NBD_SIMPLE_REPLY_SIZE];
    recv_exact(h, b, sizeof(b));
    assert_int_equal(vs_nbd_get_be32(b), VS_NBD_MAGIC_SIMPLE_REPLY);
    *cookie = vs_nbd_get_be64(b + 8);
    return vs_nbd_get_be32(b + 4);
}

static bool nothing_to_read(struct harness *h)
{
    spin(h, 3);
    uint8_t c;
    return read(h->cfd, &c, 1) < 0 && errno == EAGAIN;
}

static void stopped_cb(void *arg)
{
    ((struct harness *)arg)->stopped = true;
}

static void h_stop(struct harness *h)
{
    close(h->cfd); /* the "kernel" hangs up */
    for (int i = 0; i < 1000 && !h->kernel_closed; i++)
        spin(h, 1);
    assert_true(h->kernel_closed);
    vs_nbd_server_shutdown(h->srv, stopped_cb, h);
    for (int i = 0; i < 1000 && !h->stopped; i++)
        spin(h, 1);
    assert_true(h->stopped);
    assert_true(h->f->closed);
    uv_close((uv_handle_t *)&h->alive, NULL);
    spin(h, 1);
    assert_int_equal(vs_loop_close(&h->loop), 0);
    free(h->f);
}

/* ---- Tests -------------------------------------------------------------- */

static void test_flags_follow_the_backend(void **state)
{
    (void)state;
    struct {
        bool ro, global, trim;
        uint16_t want, unwanted;
    } cases[] = {
        {false, true, true,
         VS_NBD_FLAG_CAN_MULTI_CONN | VS_NBD_FLAG_SEND_TRIM | VS_NBD_FLAG_SEND_WRITE_ZEROES,
         VS_NBD_FLAG_READ_ONLY},
        {false, false, true, VS_NBD_FLAG_SEND_FLUSH | VS_NBD_FLAG_SEND_FUA,
         VS_NBD_FLAG_CAN_MULTI_CONN}, /* flush not global: no multi-conn */
        {false, true, false, VS_NBD_FLAG_SEND_WRITE_ZEROES, VS_NBD_FLAG_SEND_TRIM},
        {true, false, true, VS_NBD_FLAG_READ_ONLY | VS_NBD_FLAG_CAN_MULTI_CONN,
         VS_NBD_FLAG_SEND_TRIM | VS_NBD_FLAG_SEND_WRITE_ZEROES},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness h;
        h_start(&h, fake_new(cases[i].ro, cases[i].global, cases[i].trim), 8, 1 << 20);
        uint16_t f = vs_nbd_server_tx_flags(h.srv);
        assert_true(f & VS_NBD_FLAG_HAS_FLAGS);
        assert_int_equal(f & cases[i].want, cases[i].want);
        assert_int_equal(f & cases[i].unwanted, 0);
        assert_false(f & VS_NBD_FLAG_SEND_FAST_ZERO); /* can_fast_zero is false */
        h_stop(&h);
    }
}

static void test_errors_reach_the_wire(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 8, 1 << 20);
    struct fake *f = h.f;
    uint64_t cookie;
    /* an error returned at once: one reply, no callback ever */
    f->fail_sync = -ENOSPC;
    send_req(&h, VS_NBD_CMD_WRITE_ZEROES, 0, 1, 0, 4096, NULL);
    assert_int_equal(recv_reply(&h, &cookie), VS_NBD_ENOSPC);
    assert_true(cookie == 1);
    /* errors through the callback, mapped per proto.md */
    int errs[] = {-EIO, -EDQUOT, -EROFS, -ETIMEDOUT, -ECANCELED};
    uint32_t wire[] = {VS_NBD_EIO, VS_NBD_ENOSPC, VS_NBD_EPERM, VS_NBD_EIO, VS_NBD_ESHUTDOWN};
    for (unsigned i = 0; i < 5; i++) {
        send_req(&h, VS_NBD_CMD_FLUSH, 0, 10 + i, 0, 0, NULL);
        assert_int_equal(f->npending, 1);
        fake_complete(f, 0, errs[i]);
        assert_int_equal(recv_reply(&h, &cookie), wire[i]);
        assert_true(cookie == 10 + i);
    }
    /* a failed READ sends no payload: the next bytes are the next reply */
    send_req(&h, VS_NBD_CMD_READ, 0, 20, 0, 8192, NULL);
    fake_complete(f, 0, -EIO);
    assert_int_equal(recv_reply(&h, &cookie), VS_NBD_EIO);
    send_req(&h, VS_NBD_CMD_FLUSH, 0, 21, 0, 0, NULL);
    fake_complete(f, 0, 0);
    assert_int_equal(recv_reply(&h, &cookie), 0);
    assert_true(cookie == 21);
    assert_true(nothing_to_read(&h));
    h_stop(&h);
}

static void test_replies_in_completion_order(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 8, 1 << 20);
    struct fake *f = h.f;
    uint8_t payload[4096];
    memset(payload, 0x5a, sizeof(payload));
    for (uint64_t c = 1; c <= 4; c++)
        send_req(&h, VS_NBD_CMD_WRITE, c == 2 ? VS_NBD_CMD_FLAG_FUA : 0, c, c * 4096, 4096,
                 payload);
    assert_int_equal(f->npending, 4);
    assert_int_equal(f->pending[1]->flags, VS_NBD_IO_FUA);
    assert_memory_equal(f->pending[3]->buf, payload, sizeof(payload));
    /* complete 3, 1, 4, 2: replies come back in that order */
    uint64_t order[] = {3, 1, 4, 2}, cookie;
    for (unsigned k = 0; k < 4; k++) {
        unsigned i = 0;
        while (f->pending[i]->offset != order[k] * 4096)
            i++;
        fake_complete(f, i, 0);
        spin(&h, 2);
    }
    for (unsigned k = 0; k < 4; k++) {
        assert_int_equal(recv_reply(&h, &cookie), 0);
        assert_true(cookie == order[k]);
    }
    h_stop(&h);
}

static void idle_complete_cb(uv_idle_t *i)
{
    fake_complete(i->data, 0, 0);
    uv_idle_stop(i);
}

static void reply_seen_cb(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    *(bool *)p->data = true;
    uv_poll_stop(p);
}

static void guard_cb(uv_timer_t *t)
{
    (void)t; /* ends the loop turn if the reply never came (the failure case) */
}

/* A completion delivered from an idle handle -- as libvstor delivers them --
 * is written before the loop blocks: the client's end is readable in that
 * same turn's poll phase, not only after some unrelated event. */
static void test_idle_completion_sent_before_blocking(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 8, 1 << 20);
    send_req(&h, VS_NBD_CMD_READ, 0, 7, 4096, 4096, NULL);
    assert_int_equal(h.f->npending, 1);
    assert_true(nothing_to_read(&h));
    uv_idle_t idle;
    uv_poll_t poll;
    uv_timer_t guard;
    bool seen = false;
    uv_idle_init(&h.loop.uv, &idle);
    idle.data = h.f;
    uv_idle_start(&idle, idle_complete_cb);
    assert_int_equal(uv_poll_init(&h.loop.uv, &poll, h.cfd), 0);
    poll.data = &seen;
    uv_poll_start(&poll, UV_READABLE, reply_seen_cb);
    uv_timer_init(&h.loop.uv, &guard);
    uv_timer_start(&guard, guard_cb, 5000, 0);
    uv_run(&h.loop.uv, UV_RUN_ONCE); /* idle -> prepare -> poll: the reply is there */
    assert_true(seen);
    uv_close((uv_handle_t *)&idle, NULL);
    uv_close((uv_handle_t *)&poll, NULL);
    uv_close((uv_handle_t *)&guard, NULL);
    spin(&h, 1);
    uint64_t cookie;
    uint8_t data[4096];
    assert_int_equal(recv_reply(&h, &cookie), 0);
    assert_true(cookie == 7);
    recv_exact(&h, data, sizeof(data));
    h_stop(&h);
}

/* With every slot busy the server stops reading; freeing one resumes it. */
static void test_backpressure_on_slots(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 4, 1 << 20);
    struct fake *f = h.f;
    for (uint64_t c = 0; c < 10; c++)
        send_req(&h, VS_NBD_CMD_FLUSH, 0, c, 0, 0, NULL);
    assert_int_equal(f->npending, 4); /* iodepth 4: the rest wait in the socket */
    uint64_t cookie;
    for (unsigned done = 0; done < 10; done++) {
        assert_true(f->npending >= 1);
        fake_complete(f, 0, 0);
        assert_int_equal(recv_reply(&h, &cookie), 0);
        assert_true(cookie == done);
        spin(&h, 3);
        assert_int_equal(f->npending, done + 1 <= 6 ? 4 : 10 - done - 1);
    }
    assert_int_equal(f->submitted, 10);
    h_stop(&h);
}

/* Buffers: two 64 KiB reads fill a 128 KiB arena; the third waits. */
static void test_waiting_for_buffers(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 16, 128 * 1024);
    struct fake *f = h.f;
    for (uint64_t c = 0; c < 3; c++)
        send_req(&h, VS_NBD_CMD_READ, 0, c, c * 65536, 65536, NULL);
    assert_int_equal(f->npending, 2);
    send_req(&h, VS_NBD_CMD_FLUSH, 0, 9, 0, 0, NULL);
    assert_int_equal(f->npending, 2); /* behind the waiting read, in order */
    memset(f->pending[0]->buf, 0x11, 65536);
    fake_complete(f, 0, 0);
    static uint8_t data[65536];
    uint64_t cookie;
    assert_int_equal(recv_reply(&h, &cookie), 0);
    assert_true(cookie == 0);
    recv_exact(&h, data, sizeof(data));
    assert_int_equal(data[0], 0x11);
    assert_int_equal(data[65535], 0x11);
    spin(&h, 3);
    assert_int_equal(f->npending, 3); /* the third read and the flush got in */
    while (f->npending)
        fake_complete(f, 0, 0);
    for (int k = 0; k < 3; k++) {
        uint32_t err = recv_reply(&h, &cookie);
        assert_int_equal(err, 0);
        if (cookie != 9)
            recv_exact(&h, data, sizeof(data));
    }
    h_stop(&h);
}

/* A protocol error on the adopted socket closes it (and tells the owner). */
static void test_bad_magic_closes(void **state)
{
    (void)state;
    struct harness h;
    h_start(&h, fake_new(false, true, true), 4, 1 << 20);
    uint8_t junk[VS_NBD_REQUEST_SIZE] = {0xde, 0xad};
    assert_int_equal(write(h.cfd, junk, sizeof(junk)), sizeof(junk));
    for (int i = 0; i < 1000 && !h.kernel_closed; i++)
        spin(&h, 1);
    assert_true(h.kernel_closed);
    struct vs_nbd_server_stats st;
    vs_nbd_server_get_stats(h.srv, &st);
    assert_true(st.protocol_errors == 1);
    assert_true(st.conns_open == 0);
    h_stop(&h);
}

/* ---- No allocation per request ------------------------------------------ */

/* ASan's allocator hooks count every malloc; gcc says __SANITIZE_ADDRESS__,
 * clang __has_feature(address_sanitizer). Without ASan the test is skipped. */
#if defined(__SANITIZE_ADDRESS__)
#define HAVE_MALLOC_HOOKS 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_MALLOC_HOOKS 1
#endif
#endif
#ifdef HAVE_MALLOC_HOOKS
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#endif
static volatile bool counting;
static volatile unsigned long mallocs;

static void count_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting)
        mallocs++;
}

static void ignore_free(const volatile void *p)
{
    (void)p;
}

#ifdef HAVE_MALLOC_HOOKS
/* One round of mixed requests, every op completed by the fake. */
static void mixed_round(struct harness *h, uint64_t base)
{
    static uint8_t payload[4096], big[65536];
    uint64_t cookie;
    send_req(h, VS_NBD_CMD_WRITE, 0, base, 8192, 4096, payload);
    send_req(h, VS_NBD_CMD_READ, 0, base + 1, 8192, 4096, NULL);
    send_req(h, VS_NBD_CMD_WRITE_ZEROES, VS_NBD_CMD_FLAG_FUA, base + 2, 0, 65536, NULL);
    send_req(h, VS_NBD_CMD_READ, 0, base + 3, 100, 512, NULL); /* refused: misaligned */
    for (uint64_t i = 0; i < 8; i++) /* 512 KiB of replies: more than the socket holds */
        send_req(h, VS_NBD_CMD_READ, 0, base + 4 + i, i * 65536, 65536, NULL);
    send_req(h, VS_NBD_CMD_FLUSH, 0, base + 12, 0, 0, NULL);
    while (h->f->npending)
        fake_complete(h->f, 0, 0);
    for (int k = 0; k < 13; k++) {
        uint32_t err = recv_reply(h, &cookie);
        assert_int_equal(err, cookie == base + 3 ? VS_NBD_EINVAL : 0);
        if (cookie == base + 1)
            recv_exact(h, payload, sizeof(payload));
        else if (cookie >= base + 4 && cookie < base + 12)
            recv_exact(h, big, sizeof(big));
    }
}

#endif

static void test_no_allocation_per_request(void **state)
{
    (void)state;
#ifndef HAVE_MALLOC_HOOKS
    skip();
#else
    struct harness h;
    h_start(&h, fake_new(false, true, true), 64, 1 << 20);
    for (int r = 0; r < 20; r++) /* warm-up: libuv's first writes, the log */
        mixed_round(&h, 1000u * (unsigned)r);
    mallocs = 0;
    counting = true;
    for (int r = 0; r < 200; r++)
        mixed_round(&h, 100000u + 1000u * (unsigned)r);
    counting = false;
    assert_int_equal(mallocs, 0); /* 2600 requests, no malloc */
    h_stop(&h);
#endif
}


/* ---- The reply spin (nbd_server.c NOTES 4) ------------------------------- */

static struct vs_nbd_server_stats stats_of(struct harness *h)
{
    struct vs_nbd_server_stats st;
    vs_nbd_server_get_stats(h->srv, &st);
    return st;
}

/* Reads a READ's simple reply and its payload (len bytes); returns the cookie. */
static uint64_t recv_read_reply(struct harness *h, uint32_t len)
{
    static uint8_t data[65536];
    uint64_t cookie;
    assert_true(len <= sizeof(data));
    assert_int_equal(recv_reply(h, &cookie), 0);
    recv_exact(h, data, len);
    return cookie;
}

/* One loop turn (the reply goes out and the spin runs in its prepare hook);
 * returns how long it took in ms. */
static double timed_turn(struct harness *h)
{
    uint64_t t0 = uv_hrtime();
    uv_run(&h->loop.uv, UV_RUN_NOWAIT);
    return (double)(uv_hrtime() - t0) / 1e6;
}

/* With nothing in flight, a reply is followed by one spin of the configured
 * window when the client sends nothing: not shorter, and bounded. */
static void test_reply_spin_window_bounds(void **state)
{
    (void)state;
    struct harness h;
    h_start_spin(&h, fake_new(false, true, true), 8, 1 << 20, 30000);
    send_req(&h, VS_NBD_CMD_READ, 0, 1, 0, 4096, NULL);
    assert_int_equal(stats_of(&h).spins, 0); /* no reply yet: no spin */
    fake_complete(h.f, 0, 0);
    double ms = timed_turn(&h);
    struct vs_nbd_server_stats st = stats_of(&h);
    assert_int_equal(st.spins, 1);
    assert_int_equal(st.spin_hits, 0);
    assert_true(st.spin_ns >= 30000000ull);
    assert_true(ms >= 30.0 && ms < 2000.0);
    assert_true(recv_read_reply(&h, 4096) == 1);
    /* turns without a reply do not spin */
    spin(&h, 5);
    assert_int_equal(stats_of(&h).spins, 1);
    h_stop(&h);
}

static void timer_noop_cb(uv_timer_t *t)
{
    (void)t;
}

/* The spin never runs past the loop's next timer. */
static void test_reply_spin_stops_at_the_next_timer(void **state)
{
    (void)state;
    struct harness h;
    h_start_spin(&h, fake_new(false, true, true), 8, 1 << 20, 10000000); /* 10 s */
    uv_timer_t t;
    uv_timer_init(&h.loop.uv, &t);
    send_req(&h, VS_NBD_CMD_READ, 0, 1, 0, 4096, NULL);
    fake_complete(h.f, 0, 0);
    uv_update_time(&h.loop.uv);
    uv_timer_start(&t, timer_noop_cb, 20, 0);
    double ms = timed_turn(&h);
    assert_int_equal(stats_of(&h).spins, 1);
    assert_true(ms < 2000.0); /* about 20 ms, far below the 10 s window */
    assert_true(recv_read_reply(&h, 4096) == 1);
    uv_close((uv_handle_t *)&t, NULL);
    h_stop(&h);
}

/* No spin while any request is in the backend (it would take the CPU the
 * backend's peers need), nor when the spin is off. */
static void test_reply_spin_not_taken_in_flight(void **state)
{
    (void)state;
    struct harness h;
    h_start_spin(&h, fake_new(false, true, true), 8, 1 << 20, 20000);
    struct fake *f = h.f;
    send_req(&h, VS_NBD_CMD_READ, 0, 1, 0, 4096, NULL);
    send_req(&h, VS_NBD_CMD_READ, 0, 2, 4096, 4096, NULL);
    assert_int_equal(f->npending, 2);
    fake_complete(f, 0, 0);
    timed_turn(&h);
    assert_true(recv_read_reply(&h, 4096) == 1);
    assert_int_equal(stats_of(&h).spins, 0); /* read 2 is still in the backend */
    fake_complete(f, 0, 0);
    timed_turn(&h);
    assert_int_equal(stats_of(&h).spins, 1); /* now nothing is in flight */
    assert_true(recv_read_reply(&h, 4096) == 2);
    h_stop(&h);

    h_start_spin(&h, fake_new(false, true, true), 8, 1 << 20, 0);
    send_req(&h, VS_NBD_CMD_FLUSH, 0, 3, 0, 0, NULL);
    fake_complete(h.f, 0, 0);
    timed_turn(&h);
    uint64_t cookie;
    assert_int_equal(recv_reply(&h, &cookie), 0);
    assert_int_equal(stats_of(&h).spins, 0);
    h_stop(&h);
}

/* The client of a fio --fsync=1 loop: waits for the WRITE's reply, then
 * sends the FLUSH at once, while the server spins. */
static void *flush_after_reply(void *arg)
{
    int fd = *(int *)arg;
    uint8_t b[VS_NBD_SIMPLE_REPLY_SIZE];
    size_t got = 0;
    while (got < sizeof(b)) {
        struct pollfd p = {fd, POLLIN, 0};
        poll(&p, 1, 5000);
        ssize_t r = read(fd, b + got, sizeof(b) - got);
        if (r > 0)
            got += (size_t)r;
        else if (r == 0 || (errno != EAGAIN && errno != EINTR))
            return NULL;
    }
    uint8_t q[VS_NBD_REQUEST_SIZE];
    vs_nbd_put_be32(q, VS_NBD_MAGIC_REQUEST);
    vs_nbd_put_be16(q + 4, 0);
    vs_nbd_put_be16(q + 6, VS_NBD_CMD_FLUSH);
    vs_nbd_put_be64(q + 8, 2);
    vs_nbd_put_be64(q + 16, 0);
    vs_nbd_put_be32(q + 24, 0);
    if (write(fd, q, sizeof(q)) != sizeof(q))
        return NULL;
    return arg;
}

/* A request that arrives during the spin ends it at once and is read in
 * the same loop turn (the poll does not block). */
static void test_reply_spin_finds_the_next_request(void **state)
{
    (void)state;
    struct harness h;
    h_start_spin(&h, fake_new(false, true, true), 8, 1 << 20, 1000000); /* 1 s */
    static uint8_t payload[4096];
    send_req(&h, VS_NBD_CMD_WRITE, 0, 1, 0, 4096, payload);
    assert_int_equal(h.f->npending, 1);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flush_after_reply, &h.cfd), 0);
    fake_complete(h.f, 0, 0);
    double ms = timed_turn(&h);
    void *ok;
    assert_int_equal(pthread_join(th, &ok), 0);
    assert_non_null(ok);
    struct vs_nbd_server_stats st = stats_of(&h);
    assert_int_equal(st.spins, 1);
    assert_int_equal(st.spin_hits, 1);
    assert_true(ms < 1000.0);
    /* the FLUSH was read in that same turn, or the next one at the latest */
    if (h.f->npending == 0)
        uv_run(&h.loop.uv, UV_RUN_NOWAIT);
    assert_int_equal(h.f->npending, 1);
    assert_int_equal(h.f->pending[0]->length, 0);
    fake_complete(h.f, 0, 0);
    uint64_t cookie;
    assert_int_equal(recv_reply(&h, &cookie), 0);
    assert_true(cookie == 2);
    h_stop(&h);
}

int main(void)
{
#ifdef HAVE_MALLOC_HOOKS
    __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
#else
    (void)count_malloc;
    (void)ignore_free;
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flags_follow_the_backend),
        cmocka_unit_test(test_errors_reach_the_wire),
        cmocka_unit_test(test_replies_in_completion_order),
        cmocka_unit_test(test_idle_completion_sent_before_blocking),
        cmocka_unit_test(test_backpressure_on_slots),
        cmocka_unit_test(test_waiting_for_buffers),
        cmocka_unit_test(test_bad_magic_closes),
        cmocka_unit_test(test_no_allocation_per_request),
        cmocka_unit_test(test_reply_spin_window_bounds),
        cmocka_unit_test(test_reply_spin_stops_at_the_next_timer),
        cmocka_unit_test(test_reply_spin_not_taken_in_flight),
        cmocka_unit_test(test_reply_spin_finds_the_next_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
