/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_msgr_test -- the messenger over real loopback TCP, in one process on
 * one libuv loop: pipelining thousands of ops, 4 MiB payloads both ways,
 * replies out of order, backpressure from a small request pool, a dead peer
 * found by keepalive, reconnect after the server restarts, handshake
 * refusals, and a malformed frame that closes only its own connection.
 * Raw peers (a silent server, a misbehaving client) run in threads with
 * plain blocking sockets, so they speak the protocol only as far as each
 * test wants.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "net.h"
#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_err.h"
#include "vs_log.h"

#define PATTERN_SIZE (8u << 20)
#define BIG (4u << 20)

static const uint8_t cluster[16] = {0x5e, 0x70, 0x12};
static const uint8_t other_cluster[16] = {0x0d, 0xd0};
static uint8_t *pattern; /* PATTERN_SIZE bytes of a known sequence */

/* ---- Test server: handlers over an in-memory pattern ---------------------- */

enum defer_mode { REPLY_NOW, REPLY_SHUFFLED, REPLY_HOLD };

struct srv {
    struct vs_net *net;
    uv_loop_t *loop;
    uv_check_t check;
    enum defer_mode mode;
    struct vs_net_req **held;
    unsigned nheld, held_max;
    uint64_t rng;
    int buffers_rc;            /* nonzero: buffers() refuses with it */
    unsigned recv_count, done_ok, done_err;
    unsigned ev_up, ev_down, ev_closed;
    int last_down_rc;
    struct vs_net_conn *last_conn;
    bool closed;
};

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void srv_reply(struct srv *s, struct vs_net_req *req)
{
    if (s->mode == REPLY_NOW) {
        vs_net_reply(req);
        return;
    }
    assert_true(s->nheld < s->held_max);
    s->held[s->nheld++] = req;
}

/* After each poll: answer everything held, in a shuffled order. */
static void srv_check_cb(uv_check_t *h)
{
    struct srv *s = h->data;
    if (s->mode != REPLY_SHUFFLED)
        return;
    for (unsigned i = s->nheld; i > 1; i--) {
        unsigned j = (unsigned)(xorshift(&s->rng) % i);
        struct vs_net_req *t = s->held[i - 1];
        s->held[i - 1] = s->held[j];
        s->held[j] = t;
    }
    unsigned n = s->nheld;
    s->nheld = 0;
    for (unsigned i = 0; i < n; i++)
        vs_net_reply(s->held[i]);
}

static void srv_release_held(struct srv *s)
{
    unsigned n = s->nheld;
    s->nheld = 0;
    for (unsigned i = 0; i < n; i++)
        vs_net_reply(s->held[i]);
}

static int buffers_malloc(struct vs_net_req *req, void *ctx)
{
    struct srv *s = ctx;
    if (s->buffers_rc)
        return s->buffers_rc;
    uint8_t *p = malloc((size_t)req->hdr.meta_len + req->hdr.data_len + 1);
    if (!p)
        return -ENOMEM;
    req->meta = p;
    req->data = p + req->hdr.meta_len;
    req->user = p;
    return 0;
}

static void done_free(struct vs_net_req *req, int rc, void *ctx)
{
    struct srv *s = ctx;
    if (rc == 0)
        s->done_ok++;
    else
        s->done_err++;
    free(req->user);
    req->user = NULL;
}

/* WRITE: the reply version is the CRC of the data received. */
static void write_recv(struct vs_net_req *req, void *ctx)
{
    struct srv *s = ctx;
    s->recv_count++;
    req->rep.version = vs_crc32c(req->data, req->hdr.data_len);
    srv_reply(s, req);
}

/* READ: data from the pattern at the offset, a 4-byte bitmap, version =
 * offset + len. */
static void read_recv(struct vs_net_req *req, void *ctx)
{
    struct srv *s = ctx;
    s->recv_count++;
    const struct vs_net_rw *rw = &req->hdr.req.rw;
    uint64_t at = rw->offset % (PATTERN_SIZE - BIG);
    req->rep.version = rw->offset + rw->len;
    req->rep_data = pattern + at;
    req->rep_data_len = rw->len;
    req->rep_meta = pattern + (rw->offset & 0xff);
    req->rep_meta_len = 4;
    srv_reply(s, req);
}

/* SEC_STABILIZE: checks the object versions it was sent. */
static void stabilize_recv(struct vs_net_req *req, void *ctx)
{
    struct srv *s = ctx;
    s->recv_count++;
    const uint8_t *p = req->meta;
    for (uint32_t i = 0; i < req->hdr.req.batch.count; i++) {
        struct vs_net_objver v;
        vs_net_objver_get(p + i * VS_NET_OBJVER_SIZE, &v);
        if (v.inode != (1ull << 48) + i || v.version != 1000 + i)
            req->rep.retval = -EINVAL;
    }
    srv_reply(s, req);
}

static void sync_recv(struct vs_net_req *req, void *ctx)
{
    struct srv *s = ctx;
    s->recv_count++;
    srv_reply(s, req);
}

static void srv_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx)
{
    struct srv *s = ctx;
    if (ev == VS_NET_EV_UP) {
        s->ev_up++;
        if (vs_net_conn_peer(conn)->role == VS_NET_ROLE_OSD)
            return; /* a link between OSDs (test_no_deadlock_between_osds) */
        s->last_conn = conn;
        assert_int_equal(vs_net_conn_peer(conn)->role, VS_NET_ROLE_CLIENT);
    } else if (ev == VS_NET_EV_DOWN) {
        s->ev_down++;
        s->last_down_rc = rc;
    } else {
        s->ev_closed++;
        if (s->last_conn == conn)
            s->last_conn = NULL;
    }
}

static void srv_cfg(struct vs_net_cfg *cfg, struct srv *s)
{
    vs_net_cfg_init(cfg);
    memcpy(cfg->cluster_id, cluster, 16);
    cfg->role = VS_NET_ROLE_OSD;
    cfg->node_id = 1;
    cfg->on_event = srv_event;
    cfg->event_ctx = s;
    cfg->log_name = "srv";
}

static void srv_start(struct srv *s, uv_loop_t *loop, const struct vs_net_cfg *cfg,
                      uint16_t port)
{
    char err[256], addr[64];
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->rng = 0x9e3779b97f4a7c15ull;
    s->held_max = 1 << 16;
    s->held = calloc(s->held_max, sizeof(*s->held));
    assert_int_equal(vs_net_create(loop, cfg, &s->net, err, sizeof(err)), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    int rc = vs_net_listen(s->net, addr, err, sizeof(err));
    if (rc)
        fail_msg("%s", err);
    struct vs_net_handler w = {.buffers = buffers_malloc, .recv = write_recv, .done = done_free};
    struct vs_net_handler r = {.recv = read_recv, .done = done_free};
    struct vs_net_handler st = {.buffers = buffers_malloc, .recv = stabilize_recv,
                                .done = done_free};
    struct vs_net_handler sy = {.recv = sync_recv};
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_WRITE, &w, s), 0);
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_READ, &r, s), 0);
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_SEC_STABILIZE, &st, s), 0);
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_SYNC, &sy, s), 0);
    /* No handler without buffers for an opcode with a payload. */
    struct vs_net_handler bad = {.recv = write_recv};
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_SEC_WRITE, &bad, s), -EINVAL);
    assert_int_equal(vs_net_handle(s->net, VS_NET_OP_HELLO, &sy, s), -EINVAL);
    uv_check_init(loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, srv_check_cb);
    uv_unref((uv_handle_t *)&s->check);
}

static void srv_closed_cb(void *ctx)
{
    struct srv *s = ctx;
    s->closed = true;
}

static void srv_stop(struct srv *s)
{
    srv_release_held(s);
    vs_net_close(s->net, srv_closed_cb, s);
    uv_close((uv_handle_t *)&s->check, NULL);
}

/* ---- Client side -------------------------------------------------------------- */

struct cli {
    struct vs_net *net;
    struct vs_net_conn *conn;
    unsigned ev_up, ev_down, ev_closed;
    int last_down_rc;
    bool closed;
};

static void cli_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx)
{
    struct cli *c = ctx;
    (void)conn;
    if (ev == VS_NET_EV_UP) {
        c->ev_up++;
        assert_int_equal(vs_net_conn_peer(conn)->role, VS_NET_ROLE_OSD);
        assert_true(vs_net_conn_peer(conn)->node_id == 1);
    } else if (ev == VS_NET_EV_DOWN) {
        c->ev_down++;
        c->last_down_rc = rc;
    } else {
        c->ev_closed++;
    }
}

static void cli_cfg(struct vs_net_cfg *cfg, struct cli *c)
{
    vs_net_cfg_init(cfg);
    memcpy(cfg->cluster_id, cluster, 16);
    cfg->role = VS_NET_ROLE_CLIENT;
    cfg->on_event = cli_event;
    cfg->event_ctx = c;
    cfg->log_name = "cli";
}

static void cli_start(struct cli *c, uv_loop_t *loop, const struct vs_net_cfg *cfg,
                      uint16_t port)
{
    char err[256], addr[64];
    memset(c, 0, sizeof(*c));
    assert_int_equal(vs_net_create(loop, cfg, &c->net, err, sizeof(err)), 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    assert_int_equal(vs_net_connect(c->net, addr, c, &c->conn, err, sizeof(err)), 0);
    assert_ptr_equal(vs_net_conn_user(c->conn), c);
    assert_true(vs_net_conn_outgoing(c->conn));
}

static void cli_closed_cb(void *ctx)
{
    struct cli *c = ctx;
    c->closed = true;
}

/* A test op and what its reply should be. */
struct top {
    struct vs_net_op op;
    int rc;
    bool done;
    uint8_t *buf; /* request data or reply data */
    uint8_t bitmap[4];
    uint8_t meta[8 * VS_NET_OBJVER_SIZE];
    uint64_t expect_version;
};

static unsigned ops_done;

static void top_cb(struct vs_net_op *op, int rc)
{
    struct top *t = VS_CONTAINER_OF(op, struct top, op);
    assert_false(t->done);
    t->done = true;
    t->rc = rc;
    ops_done++;
}

static void top_write(struct top *t, uint64_t offset, uint32_t len)
{
    memset(&t->op, 0, sizeof(t->op));
    t->op.req.opcode = VS_NET_OP_WRITE;
    t->op.req.req.rw = (struct vs_net_rw){.inode = 1ull << 48, .offset = offset, .len = len};
    t->op.req.data_len = len;
    t->op.data = pattern + (offset % (PATTERN_SIZE - BIG));
    t->op.cb = top_cb;
    t->expect_version = vs_crc32c(t->op.data, len);
    t->done = false;
}

static void top_read(struct top *t, uint64_t offset, uint32_t len)
{
    memset(&t->op, 0, sizeof(t->op));
    t->op.req.opcode = VS_NET_OP_READ;
    t->op.req.req.rw = (struct vs_net_rw){.inode = 1ull << 48, .offset = offset, .len = len};
    t->op.reply_data = t->buf;
    t->op.reply_data_cap = len;
    t->op.reply_meta = t->bitmap;
    t->op.reply_meta_cap = sizeof(t->bitmap);
    t->op.cb = top_cb;
    t->expect_version = offset + len;
    t->done = false;
}

static void top_stabilize(struct top *t, uint32_t count)
{
    memset(&t->op, 0, sizeof(t->op));
    t->op.req.opcode = VS_NET_OP_SEC_STABILIZE;
    t->op.req.req.batch.count = count;
    t->op.req.meta_len = count * VS_NET_OBJVER_SIZE;
    for (uint32_t i = 0; i < count; i++) {
        struct vs_net_objver v = {(1ull << 48) + i, (uint64_t)i << 17, 1000 + i};
        vs_net_objver_put(t->meta + i * VS_NET_OBJVER_SIZE, &v);
    }
    t->op.meta = t->meta;
    t->op.cb = top_cb;
    t->expect_version = 0;
    t->done = false;
}

/* Checks a completed op against what the test server must have answered. */
static void top_check(const struct top *t)
{
    if (!t->done || t->rc != 0)
        fail_msg("%s op: done %d rc %d", vs_net_op_name(t->op.req.opcode), t->done, t->rc);
    assert_true(t->op.replied);
    assert_true(t->op.reply.rep.version == t->expect_version);
    if (t->op.req.opcode == VS_NET_OP_READ) {
        const struct vs_net_rw *rw = &t->op.req.req.rw;
        uint64_t at = rw->offset % (PATTERN_SIZE - BIG);
        assert_int_equal(t->op.reply.data_len, rw->len);
        assert_memory_equal(t->buf, pattern + at, rw->len);
        assert_memory_equal(t->bitmap, pattern + (rw->offset & 0xff), 4);
    }
}

/* ---- Loop helpers ------------------------------------------------------------- */

static void tick_cb(uv_timer_t *t)
{
    (void)t;
}

/* Runs the loop until *flag or the deadline; returns whether flag became true. */
static bool run_until(uv_loop_t *loop, const bool *flag, unsigned timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    uint64_t end = uv_now(loop) + timeout_ms;
    while (!*flag && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static bool ops_flag;
static unsigned ops_target;
static bool *ops_reached(void)
{
    ops_flag = ops_done >= ops_target;
    return &ops_flag;
}

static bool wait_ops(uv_loop_t *loop, unsigned target, unsigned timeout_ms)
{
    ops_target = target;
    uint64_t end = uv_now(loop) + timeout_ms;
    while (!*ops_reached() && uv_now(loop) < end)
        run_until(loop, ops_reached(), 20);
    return ops_done >= target;
}

/* Waits for a counter to reach a value. */
static bool wait_count(uv_loop_t *loop, const unsigned *counter, unsigned value,
                       unsigned timeout_ms)
{
    uint64_t end = uv_now(loop) + timeout_ms;
    static bool f;
    while (*counter < value && uv_now(loop) < end) {
        f = false;
        run_until(loop, &f, 10);
    }
    return *counter >= value;
}

static void close_all(uv_loop_t *loop, struct srv *s, struct cli *c)
{
    if (c && c->net) {
        vs_net_close(c->net, cli_closed_cb, c);
        assert_true(run_until(loop, &c->closed, 5000));
    }
    if (s && s->net) {
        srv_stop(s);
        assert_true(run_until(loop, &s->closed, 5000));
        free(s->held);
    }
    uv_run(loop, UV_RUN_NOWAIT);
}

static void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(loop), 0); /* every handle closed */
}

/* ---- Tests ---------------------------------------------------------------------- */

/* 6000 ops at once on one connection: more than its 1024 reply slots, so
 * most wait; the server answers each loop turn's batch in a random order. */
static void test_pipelining_out_of_order(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    s.mode = REPLY_SHUFFLED;
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    enum { N = 6000 };
    struct top *t = calloc(N, sizeof(*t));
    ops_done = 0;
    for (unsigned i = 0; i < N; i++) {
        t[i].buf = malloc(4096);
        if (i % 3 == 0)
            top_write(&t[i], (uint64_t)i * 4096, 4096 - (i % 7) * 512);
        else if (i % 3 == 1)
            top_read(&t[i], (uint64_t)i * 4096 + i, 4096);
        else
            top_stabilize(&t[i], 1 + i % 8);
        /* Sent before the connection is up: they wait for the handshake. */
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, N, 30000));
    for (unsigned i = 0; i < N; i++)
        top_check(&t[i]);
    assert_int_equal(s.recv_count, N);
    struct vs_net_stats st;
    vs_net_get_stats(c.net, &st);
    print_message("client: %" PRIu64 " frames out in %" PRIu64 " writes, %" PRIu64
                  " reads for %" PRIu64 " frames in\n",
                  st.frames_out, st.writev_calls, st.read_calls, st.frames_in);
    assert_true(st.frames_out >= N + 1);
    assert_true(st.writev_calls * 4 < st.frames_out); /* batched */
    assert_int_equal(c.ev_up, 1);
    close_all(&loop, &s, &c);
    assert_int_equal(c.ev_closed, 1);
    for (unsigned i = 0; i < N; i++)
        free(t[i].buf);
    free(t);
    loop_done(&loop);
}

/* 4 MiB both ways, several in flight, contents verified end to end. */
static void test_large_payloads(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    s.mode = REPLY_SHUFFLED;
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    enum { N = 12 };
    struct top t[N];
    ops_done = 0;
    for (unsigned i = 0; i < N; i++) {
        t[i].buf = malloc(BIG);
        if (i % 2)
            top_write(&t[i], (uint64_t)i * 12345, BIG);
        else
            top_read(&t[i], (uint64_t)i * 54321, BIG);
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, N, 30000));
    for (unsigned i = 0; i < N; i++) {
        top_check(&t[i]);
        free(t[i].buf);
    }
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* Streams of 128 KiB frames are read with no copy of their payload: the
 * read after a big frame asks for one header only, so the next payload goes
 * straight into its buffer (net_rx.c, design note 1). Small frames, meta and
 * the quarter-buffer boundary are mixed in; every byte is verified. */
static void test_big_frames_read_in_place(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    enum { NBIG = 64, NMIX = 96, LEN = 128u << 10 };
    uint32_t quarter = cfg.read_buf_size / 4;
    struct top *t = calloc(NBIG + NMIX, sizeof(*t));
    ops_done = 0;
    /* First the stream of big writes alone, then a mix. */
    for (unsigned i = 0; i < NBIG; i++) {
        top_write(&t[i], (uint64_t)i * 7777, LEN);
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, NBIG, 30000));
    struct vs_net_stats st;
    vs_net_get_stats(s.net, &st);
    print_message("server: %" PRIu64 " payload bytes copied of %u, %" PRIu64 " reads\n",
                  st.payload_copied, NBIG * LEN, st.read_calls);
    /* At most the first frame's head (after the small HELLO) is copied. */
    assert_true(st.payload_copied < cfg.read_buf_size);
    uint32_t sizes[] = {LEN, 4096, quarter, quarter - 512, 512, LEN};
    for (unsigned i = NBIG; i < NBIG + NMIX; i++) {
        t[i].buf = malloc(LEN);
        uint32_t len = sizes[i % 6];
        if (i % 4 == 3)
            top_stabilize(&t[i], 1 + i % 8);
        else if (i % 4 == 2)
            top_read(&t[i], (uint64_t)i * 4099, len);
        else
            top_write(&t[i], (uint64_t)i * 4099, len);
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, NBIG + NMIX, 30000));
    for (unsigned i = 0; i < NBIG + NMIX; i++) {
        top_check(&t[i]);
        free(t[i].buf);
    }
    vs_net_get_stats(c.net, &st);
    print_message("client: %" PRIu64 " payload bytes copied\n", st.payload_copied);
    close_all(&loop, &s, &c);
    free(t);
    loop_done(&loop);
}

/* A tiny request pool and per-connection limit: two clients, thousands of
 * ops, the server reads only as fast as requests free up. */
static void test_backpressure(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c1, c2;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    cfg.req_pool_size = 4;
    cfg.conn_req_max = 2;
    srv_start(&s, &loop, &cfg, 0);
    s.mode = REPLY_SHUFFLED;
    cli_cfg(&cfg, &c1);
    cli_start(&c1, &loop, &cfg, vs_net_listen_port(s.net));
    cli_cfg(&cfg, &c2);
    cli_start(&c2, &loop, &cfg, vs_net_listen_port(s.net));
    enum { N = 3000 };
    struct top *t = calloc(N, sizeof(*t));
    ops_done = 0;
    for (unsigned i = 0; i < N; i++) {
        t[i].buf = malloc(4096);
        if (i % 2)
            top_write(&t[i], i, 1000 + i % 3000);
        else
            top_read(&t[i], i, 4096);
        assert_int_equal(vs_net_send(i % 2 ? c1.conn : c2.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, N, 30000));
    for (unsigned i = 0; i < N; i++)
        top_check(&t[i]);
    struct vs_net_stats st;
    vs_net_get_stats(s.net, &st);
    assert_int_equal(st.reqs_in_use, 0);
    close_all(&loop, NULL, &c1);
    close_all(&loop, &s, &c2);
    for (unsigned i = 0; i < N; i++)
        free(t[i].buf);
    free(t);
    loop_done(&loop);
}

/* No handler: -EOPNOTSUPP. buffers() refusing: its error comes back and the
 * payload is skipped. Either way the connection stays up. */
static void test_unserved_and_refused_requests(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    struct top t[4];
    memset(t, 0, sizeof(t));
    ops_done = 0;
    t[0].op.req.opcode = VS_NET_OP_SEC_DELETE;
    t[0].op.req.req.sec = (struct vs_net_sec){.inode = 1, .stripe = 0, .version = 5};
    t[0].op.cb = top_cb;
    assert_int_equal(vs_net_send(c.conn, &t[0].op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    assert_int_equal(t[0].rc, -EOPNOTSUPP);
    assert_true(t[0].op.replied);
    s.buffers_rc = -ENOMEM;
    top_write(&t[1], 0, 100000);
    assert_int_equal(vs_net_send(c.conn, &t[1].op), 0);
    assert_true(wait_ops(&loop, 2, 5000));
    assert_int_equal(t[1].rc, -ENOMEM);
    s.buffers_rc = 0;
    t[2].buf = malloc(4096);
    top_read(&t[2], 7, 4096);
    top_write(&t[3], 9, 3000);
    assert_int_equal(vs_net_send(c.conn, &t[2].op), 0);
    assert_int_equal(vs_net_send(c.conn, &t[3].op), 0);
    assert_true(wait_ops(&loop, 4, 5000));
    top_check(&t[2]);
    top_check(&t[3]);
    assert_int_equal(c.ev_down, 0);
    /* A request the protocol refuses is refused by vs_net_send itself. */
    struct top bad;
    top_write(&bad, 0, 4096);
    bad.op.req.data_len = 100;
    assert_int_equal(vs_net_send(c.conn, &bad.op), -EINVAL);
    assert_false(bad.done);
    free(t[2].buf);
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* vs_net_conn_close with ops in flight: each completes with -ECANCELED, then
 * DOWN and CLOSED; the server's held requests are dropped (done rc < 0).
 * A server-side close gives the client -ECONNRESET and a reconnect. */
static void test_close_semantics(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    s.mode = REPLY_HOLD;
    cli_cfg(&cfg, &c);
    cfg.reconnect_min_ms = 20;
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    enum { N = 50 };
    struct top t[N];
    ops_done = 0;
    for (unsigned i = 0; i < N; i++) {
        t[i].buf = malloc(4096);
        top_write(&t[i], i, 4096);
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_count(&loop, &s.recv_count, N, 5000));
    /* Server side closes: the client's ops were sent, so -ECONNRESET. */
    assert_non_null(s.last_conn);
    vs_net_conn_close(s.last_conn);
    assert_true(wait_ops(&loop, N, 5000));
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(t[i].rc, -ECONNRESET);
    assert_true(wait_count(&loop, &c.ev_down, 1, 5000));
    assert_true(vs_net_retryable(t[0].rc));
    srv_release_held(&s); /* replies to a dead connection: done(-ECONNRESET) */
    assert_true(wait_count(&loop, &s.done_err, N, 5000));
    assert_true(wait_count(&loop, &c.ev_up, 2, 5000)); /* reconnected */
    /* Now a local close with ops in flight. */
    ops_done = 0;
    s.recv_count = 0;
    for (unsigned i = 0; i < N; i++) {
        top_write(&t[i], i, 4096);
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_count(&loop, &s.recv_count, N, 5000));
    vs_net_conn_close(c.conn);
    struct top late;
    top_write(&late, 0, 10);
    assert_int_equal(vs_net_send(c.conn, &late.op), -ENOTCONN); /* closing */
    assert_true(wait_ops(&loop, N, 5000));
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(t[i].rc, -ECANCELED);
    assert_false(vs_net_retryable(-ECANCELED));
    assert_true(wait_count(&loop, &c.ev_closed, 1, 5000));
    assert_int_equal(c.last_down_rc, -ECANCELED);
    srv_release_held(&s);
    for (unsigned i = 0; i < N; i++)
        free(t[i].buf);
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* Nothing listens: connect is refused, queued ops fail with -ENOTCONN (never
 * sent), DOWN says -ECONNREFUSED, and attempts go on with back-off. */
static void test_connect_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cli c;
    struct vs_net_cfg cfg;
    cli_cfg(&cfg, &c);
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 40;
    /* A port that was just free. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    cli_start(&c, &loop, &cfg, ntohs(sa.sin_port));
    struct top t;
    t.buf = NULL;
    ops_done = 0;
    top_write(&t, 0, 512);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    assert_int_equal(t.rc, -ENOTCONN);
    assert_false(t.op.replied);
    assert_true(wait_count(&loop, &c.ev_down, 4, 5000)); /* keeps trying */
    assert_int_equal(c.last_down_rc, -ECONNREFUSED);
    assert_int_equal(c.ev_up, 0);
    assert_non_null(strstr(vs_net_conn_errmsg(c.conn), "connection refused"));
    close_all(&loop, NULL, &c);
    assert_int_equal(c.ev_closed, 1);
    loop_done(&loop);
}

/* The server goes away and comes back on the same port: the client sees
 * DOWN, reconnects by itself, and ops work again. */
static void test_reconnect_after_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg scfg, cfg;
    srv_cfg(&scfg, &s);
    srv_start(&s, &loop, &scfg, 0);
    uint16_t port = vs_net_listen_port(s.net);
    cli_cfg(&cfg, &c);
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 100;
    cli_start(&c, &loop, &cfg, port);
    struct top t;
    t.buf = malloc(4096);
    ops_done = 0;
    top_read(&t, 1, 4096);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    top_check(&t);
    close_all(&loop, &s, NULL); /* the server stops */
    assert_true(wait_count(&loop, &c.ev_down, 1, 5000));
    assert_int_equal(c.last_down_rc, -ECONNRESET);
    assert_false(vs_net_conn_is_up(c.conn));
    /* While it is down, attempts fail and ops sent then fail -ENOTCONN. */
    assert_true(wait_count(&loop, &c.ev_down, 3, 5000));
    srv_start(&s, &loop, &scfg, port); /* restarted */
    assert_true(wait_count(&loop, &c.ev_up, 2, 5000));
    top_read(&t, 2, 4096);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 2, 5000));
    top_check(&t);
    free(t.buf);
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* ---- Two OSDs forwarding to each other ----------------------------------------- */

/* An OSD-like node: its WRITE handler forwards the data to its peer as
 * SEC_WRITE_STABLE and answers the client when the peer has answered. */
struct node {
    struct srv s;
    struct vs_net_conn *peer;
};

struct fwd {
    struct vs_net_op op;
    struct vs_net_req *req;
};

static void fwd_cb(struct vs_net_op *op, int rc)
{
    struct fwd *f = VS_CONTAINER_OF(op, struct fwd, op);
    struct vs_net_req *req = f->req;
    req->rep.retval = rc;
    req->rep.version = rc == 0 ? op->reply.rep.version : 0;
    vs_net_reply(req);
    free(f);
}

static void write_fwd_recv(struct vs_net_req *req, void *ctx)
{
    struct node *n = VS_CONTAINER_OF(ctx, struct node, s);
    n->s.recv_count++;
    struct fwd *f = calloc(1, sizeof(*f));
    f->req = req;
    f->op.req.opcode = VS_NET_OP_SEC_WRITE_STABLE;
    f->op.req.req.sec = (struct vs_net_sec){.inode = req->hdr.req.rw.inode,
                                            .stripe = req->hdr.req.rw.offset, .version = 1,
                                            .len = req->hdr.data_len};
    f->op.req.data_len = req->hdr.data_len;
    f->op.data = req->data;
    f->op.cb = fwd_cb;
    if (vs_net_send(n->peer, &f->op) != 0) {
        free(f);
        vs_net_reply_err(req, -ENOTCONN);
    }
}

/* The secondary side: the version is the CRC of what arrived. */
static void sec_write_recv(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    req->rep.version = vs_crc32c(req->data, req->hdr.data_len);
    vs_net_reply(req);
}

static void node_start(struct node *n, uv_loop_t *loop, unsigned client_pool)
{
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &n->s);
    cfg.req_pool_size = client_pool;
    cfg.sec_pool_size = 4;
    cfg.conn_req_max = 64;
    srv_start(&n->s, loop, &cfg, 0);
    struct vs_net_handler w = {.buffers = buffers_malloc, .recv = write_fwd_recv,
                               .done = done_free};
    struct vs_net_handler sw = {.buffers = buffers_malloc, .recv = sec_write_recv,
                                .done = done_free};
    assert_int_equal(vs_net_handle(n->s.net, VS_NET_OP_WRITE, &w, &n->s), 0);
    assert_int_equal(vs_net_handle(n->s.net, VS_NET_OP_SEC_WRITE_STABLE, &sw, &n->s), 0);
}

static void node_link(struct node *n, const struct node *peer)
{
    char err[256], addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", vs_net_listen_port(peer->s.net));
    assert_int_equal(vs_net_connect(n->s.net, addr, NULL, &n->peer, err, sizeof(err)), 0);
}

/* Each OSD's client pool fills with writes that wait for the other OSD,
 * while both keep serving the other's secondary writes: no deadlock. (With
 * one pool for both kinds, each OSD would stop reading its peer's
 * SEC_WRITE_STABLE and both would wait for ever.) */
static void test_no_deadlock_between_osds(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct node a, b;
    node_start(&a, &loop, 4);
    node_start(&b, &loop, 4);
    node_link(&a, &b);
    node_link(&b, &a);
    struct cli ca, cb;
    struct vs_net_cfg cfg;
    cli_cfg(&cfg, &ca);
    cli_start(&ca, &loop, &cfg, vs_net_listen_port(a.s.net));
    cli_cfg(&cfg, &cb);
    cli_start(&cb, &loop, &cfg, vs_net_listen_port(b.s.net));
    assert_true(wait_count(&loop, &a.s.ev_up, 3, 5000)); /* peer in, peer out, client */
    assert_true(wait_count(&loop, &b.s.ev_up, 3, 5000));
    enum { N = 400 };
    struct top *t = calloc(N, sizeof(*t));
    ops_done = 0;
    for (unsigned i = 0; i < N; i++) {
        top_write(&t[i], (uint64_t)i * 4096, 4096);
        assert_int_equal(vs_net_send(i % 2 ? ca.conn : cb.conn, &t[i].op), 0);
    }
    assert_true(wait_ops(&loop, N, 20000));
    for (unsigned i = 0; i < N; i++)
        top_check(&t[i]); /* the CRC computed by the secondary, relayed */
    assert_int_equal(a.s.recv_count + b.s.recv_count, N);
    vs_net_conn_close(a.peer);
    vs_net_conn_close(b.peer);
    close_all(&loop, NULL, &ca);
    close_all(&loop, NULL, &cb);
    close_all(&loop, &a.s, NULL);
    close_all(&loop, &b.s, NULL);
    free(t);
    loop_done(&loop);
}

/* ---- Raw peers (threads with blocking sockets) -------------------------------- */

static int raw_listen(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 4), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    *port = ntohs(sa.sin_port);
    return fd;
}

static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool read_full(int fd, uint8_t *buf, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, buf, n);
        if (r <= 0)
            return false;
        buf += r;
        n -= (size_t)r;
    }
    return true;
}

static void raw_hello(struct vs_net_hdr *h, const uint8_t *cid, uint16_t pmin, uint16_t pmax,
                      bool reply)
{
    memset(h, 0, sizeof(*h));
    h->version = 1;
    h->opcode = VS_NET_OP_HELLO;
    h->id = 1;
    struct vs_net_hello *b = reply ? &h->rep.hello : &h->req.hello;
    if (reply)
        h->flags = VS_NET_F_REPLY;
    memcpy(b->cluster_id, cid, 16);
    b->proto_min = pmin;
    b->proto_max = pmax;
    b->role = reply ? VS_NET_ROLE_OSD : VS_NET_ROLE_CLIENT;
    b->node_id = 1;
}

/* What a raw client thread does after connecting. */
enum raw_client_mode { RAW_GARBAGE, RAW_HUGE_FRAME, RAW_BAD_VERSION, RAW_NO_HELLO, RAW_NO_READ };

struct raw_client {
    uint16_t port;
    enum raw_client_mode mode;
    int hello_retval;   /* from the server's HELLO reply */
    bool got_eof;       /* the server closed the connection */
    volatile bool release; /* RAW_NO_READ: stop pinging and read */
    pthread_t thread;
};

/* Asks for 64 reads of 4 MiB, then never reads a byte, but stays visibly
 * alive: a PING every 20 ms, until the test releases it. */
static void raw_flood_no_read(struct raw_client *rc, int fd, const struct vs_net_limits *lim)
{
    uint8_t b[VS_NET_HDR_SIZE];
    struct vs_net_hdr h;
    for (unsigned i = 0; i < 64; i++) {
        memset(&h, 0, sizeof(h));
        h.version = 1;
        h.opcode = VS_NET_OP_READ;
        h.id = 100 + i;
        h.req.rw = (struct vs_net_rw){.inode = 1, .offset = i, .len = BIG};
        vs_net_hdr_encode(&h, lim, b, NULL, 0);
        write(fd, b, sizeof(b));
    }
    for (uint64_t id = 1000; !rc->release; id++) {
        memset(&h, 0, sizeof(h));
        h.version = 1;
        h.opcode = VS_NET_OP_PING;
        h.id = id;
        vs_net_hdr_encode(&h, lim, b, NULL, 0);
        if (write(fd, b, sizeof(b)) < 0)
            break;
        usleep(20000);
    }
}

static void *raw_client_main(void *arg)
{
    struct raw_client *rc = arg;
    struct vs_net_limits lim;
    vs_net_limits_default(&lim);
    int fd = raw_connect(rc->port);
    if (fd < 0)
        return NULL;
    uint8_t b[VS_NET_HDR_SIZE];
    struct vs_net_hdr h;
    if (rc->mode != RAW_NO_HELLO) {
        raw_hello(&h, cluster, rc->mode == RAW_BAD_VERSION ? 2 : 1,
                  rc->mode == RAW_BAD_VERSION ? 3 : 1, false);
        uint8_t two[2 * VS_NET_HDR_SIZE];
        vs_net_hdr_encode(&h, &lim, two, NULL, 0);
        memcpy(two + VS_NET_HDR_SIZE, two, VS_NET_HDR_SIZE);
        /* A refused client insisting: its second HELLO arrives with the first. */
        write(fd, two, rc->mode == RAW_BAD_VERSION ? sizeof(two) : VS_NET_HDR_SIZE);
        if (read_full(fd, b, sizeof(b)) && vs_net_hdr_decode(b, &lim, &h, NULL, 0) == 0)
            rc->hello_retval = h.rep.retval;
        else
            rc->hello_retval = 1; /* no valid reply */
    }
    if (rc->mode == RAW_NO_READ) {
        raw_flood_no_read(rc, fd, &lim);
    } else if (rc->mode == RAW_GARBAGE || rc->mode == RAW_NO_HELLO) {
        memset(b, 0xAB, sizeof(b));
        write(fd, b, sizeof(b));
    } else if (rc->mode == RAW_HUGE_FRAME) {
        struct vs_net_limits big = lim;
        big.data_max = UINT32_MAX;
        memset(&h, 0, sizeof(h));
        h.version = 1;
        h.opcode = VS_NET_OP_WRITE;
        h.id = 2;
        h.req.rw.len = h.data_len = 0x80000000u; /* 2 GiB: over the 64 MiB limit */
        vs_net_hdr_encode(&h, &big, b, NULL, 0);
        write(fd, b, sizeof(b));
    }
    uint8_t sink[4096];
    ssize_t r;
    while ((r = read(fd, sink, sizeof(sink))) > 0)
        ;
    rc->got_eof = r == 0;
    close(fd);
    return NULL;
}

/* A malformed frame from one client closes that connection only: a
 * well-behaved client on the same server keeps working throughout. */
static void test_malformed_frame_closes_only_that_connection(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    struct top t;
    t.buf = malloc(4096);
    ops_done = 0;
    const enum raw_client_mode modes[] = {RAW_GARBAGE, RAW_HUGE_FRAME, RAW_NO_HELLO,
                                          RAW_BAD_VERSION};
    for (unsigned m = 0; m < 4; m++) {
        struct raw_client rc = {.port = vs_net_listen_port(s.net), .mode = modes[m]};
        unsigned down_before = s.ev_down;
        pthread_create(&rc.thread, NULL, raw_client_main, &rc);
        top_read(&t, m, 4096); /* the good client, meanwhile */
        assert_int_equal(vs_net_send(c.conn, &t.op), 0);
        assert_true(wait_ops(&loop, 1 + 2 * m, 5000));
        top_check(&t);
        /* Wait for the server to close the bad connection. */
        for (int i = 0; i < 500 && !rc.got_eof; i++) {
            static bool f;
            f = false;
            run_until(&loop, &f, 10);
        }
        pthread_join(rc.thread, NULL);
        assert_true(rc.got_eof);
        if (modes[m] == RAW_BAD_VERSION) {
            assert_int_equal(rc.hello_retval, -EPROTONOSUPPORT);
            assert_int_equal(s.ev_down, down_before); /* never up: not reported */
        } else if (modes[m] != RAW_NO_HELLO) {
            assert_int_equal(rc.hello_retval, 0);
            assert_true(wait_count(&loop, &s.ev_down, down_before + 1, 5000));
            assert_int_equal(s.last_down_rc, VS_EPROTO);
        }
        top_read(&t, 100 + m, 4096);
        assert_int_equal(vs_net_send(c.conn, &t.op), 0);
        assert_true(wait_ops(&loop, 2 + 2 * m, 5000));
        top_check(&t);
    }
    struct vs_net_stats st;
    vs_net_get_stats(s.net, &st);
    assert_int_equal(st.proto_errors, 3);
    assert_int_equal(c.ev_down, 0);
    free(t.buf);
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* A client that keeps pinging but never reads its replies is dropped once
 * the server's send queue has not moved for ping_timeout_ms, and every
 * request it held goes back to the pool. */
static void test_peer_that_stops_reading(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    cfg.ping_interval_ms = 100;
    cfg.ping_timeout_ms = 300;
    srv_start(&s, &loop, &cfg, 0);
    struct raw_client rc = {.port = vs_net_listen_port(s.net), .mode = RAW_NO_READ};
    pthread_create(&rc.thread, NULL, raw_client_main, &rc);
    assert_true(wait_count(&loop, &s.ev_up, 1, 5000));
    uint64_t t0 = uv_now(&loop);
    assert_true(wait_count(&loop, &s.ev_down, 1, 10000));
    print_message("non-reading peer dropped after %" PRIu64 " ms\n", uv_now(&loop) - t0);
    assert_int_equal(s.last_down_rc, -ETIMEDOUT);
    struct vs_net_stats st;
    for (int i = 0; i < 100; i++) {
        vs_net_get_stats(s.net, &st);
        if (st.reqs_in_use == 0)
            break;
        static bool f;
        f = false;
        run_until(&loop, &f, 10);
    }
    assert_int_equal(st.reqs_in_use, 0);
    assert_int_equal(st.ping_timeouts, 1);
    assert_int_equal(s.recv_count, 64);
    rc.release = true;
    pthread_join(rc.thread, NULL);
    close_all(&loop, &s, NULL);
    loop_done(&loop);
}

/* A client of another cluster is refused with a clear error, and keeps
 * being refused on every reconnect. */
static void test_wrong_cluster_refused(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    cli_cfg(&cfg, &c);
    memcpy(cfg.cluster_id, other_cluster, 16);
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 20;
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    struct top t;
    ops_done = 0;
    top_write(&t, 0, 100);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    assert_int_equal(t.rc, -ENOTCONN);
    assert_true(wait_count(&loop, &c.ev_down, 2, 5000));
    assert_int_equal(c.last_down_rc, VS_EWRONGCLUSTER);
    const char *msg = vs_net_conn_errmsg(c.conn);
    print_message("client sees: %s\n", msg);
    assert_non_null(strstr(msg, "refused the handshake"));
    assert_non_null(strstr(msg, "peer belongs to cluster 5e701200000000000000000000000000"));
    assert_non_null(strstr(msg, "we belong to cluster 0dd00000000000000000000000000000"));
    assert_int_equal(c.ev_up, 0);
    assert_int_equal(s.ev_up, 0);
    close_all(&loop, &s, &c);
    loop_done(&loop);
}

/* A silent peer: it completes the handshake, then never answers again (its
 * process hangs). Keepalive declares it dead; the op in flight fails with
 * -ECONNRESET and DOWN reports -ETIMEDOUT. */
struct raw_server {
    int lfd;
    uint16_t port;
    bool bad_reply; /* answer the first request with an unknown reply id */
    bool saw_eof;
    pthread_t thread;
};

static void *raw_server_main(void *arg)
{
    struct raw_server *rs = arg;
    struct vs_net_limits lim;
    vs_net_limits_default(&lim);
    int fd = accept(rs->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    uint8_t b[VS_NET_HDR_SIZE];
    struct vs_net_hdr h;
    if (read_full(fd, b, sizeof(b)) && vs_net_hdr_decode(b, &lim, &h, NULL, 0) == 0) {
        uint64_t id = h.id;
        raw_hello(&h, cluster, 1, 1, true);
        h.id = id;
        vs_net_hdr_encode(&h, &lim, b, NULL, 0);
        write(fd, b, sizeof(b));
    }
    if (rs->bad_reply && read_full(fd, b, sizeof(b)) &&
        vs_net_hdr_decode(b, &lim, &h, NULL, 0) == 0) {
        struct vs_net_hdr r = {.version = 1, .opcode = h.opcode, .flags = VS_NET_F_REPLY,
                               .id = h.id + 1};
        vs_net_hdr_encode(&r, &lim, b, NULL, 0);
        write(fd, b, sizeof(b));
    }
    uint8_t sink[4096];
    ssize_t r;
    while ((r = read(fd, sink, sizeof(sink))) > 0)
        ;
    rs->saw_eof = r == 0;
    close(fd);
    return NULL;
}

static void test_keepalive_detects_dead_peer(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct raw_server rs = {0};
    rs.lfd = raw_listen(&rs.port);
    pthread_create(&rs.thread, NULL, raw_server_main, &rs);
    struct cli c;
    struct vs_net_cfg cfg;
    cli_cfg(&cfg, &c);
    cfg.ping_interval_ms = 100;
    cfg.ping_timeout_ms = 200;
    cfg.reconnect_min_ms = 5000; /* no reconnect within the test */
    cli_start(&c, &loop, &cfg, rs.port);
    assert_true(wait_count(&loop, &c.ev_up, 1, 5000));
    uint64_t t0 = uv_now(&loop);
    struct top t;
    ops_done = 0;
    top_write(&t, 0, 4096);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    uint64_t waited = uv_now(&loop) - t0;
    print_message("dead peer found after %" PRIu64 " ms: %s\n", waited,
                  vs_net_conn_errmsg(c.conn));
    assert_int_equal(t.rc, -ECONNRESET);
    assert_true(waited >= 200 && waited < 2000);
    assert_int_equal(c.last_down_rc, -ETIMEDOUT);
    assert_non_null(strstr(vs_net_conn_errmsg(c.conn), "keepalive"));
    struct vs_net_stats st;
    vs_net_get_stats(c.net, &st);
    assert_int_equal(st.ping_timeouts, 1);
    pthread_join(rs.thread, NULL); /* it sees our close */
    assert_true(rs.saw_eof);
    close(rs.lfd);
    close_all(&loop, NULL, &c);
    loop_done(&loop);
}

/* A reply with an id we never sent is a protocol violation by the server. */
static void test_reply_to_unknown_id(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct raw_server rs = {.bad_reply = true};
    rs.lfd = raw_listen(&rs.port);
    pthread_create(&rs.thread, NULL, raw_server_main, &rs);
    struct cli c;
    struct vs_net_cfg cfg;
    cli_cfg(&cfg, &c);
    cfg.reconnect_min_ms = 5000;
    cli_start(&c, &loop, &cfg, rs.port);
    struct top t;
    ops_done = 0;
    t.buf = NULL;
    top_write(&t, 0, 64);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    assert_int_equal(t.rc, -ECONNRESET);
    assert_true(wait_count(&loop, &c.ev_down, 1, 5000));
    assert_int_equal(c.last_down_rc, VS_EPROTO);
    assert_non_null(strstr(vs_net_conn_errmsg(c.conn), "reply to unknown request id"));
    pthread_join(rs.thread, NULL);
    close(rs.lfd);
    close_all(&loop, NULL, &c);
    loop_done(&loop);
}

/* ---- No allocation on the data path ---------------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
int __sanitizer_install_malloc_and_free_hooks(void (*malloc_hook)(const volatile void *, size_t),
                                              void (*free_hook)(const volatile void *));
#define HAVE_MALLOC_HOOKS 1
#endif
static volatile bool counting_mallocs;
static volatile unsigned long mallocs_seen;

static void count_malloc(const volatile void *p, size_t n)
{
    (void)p;
    (void)n;
    if (counting_mallocs)
        mallocs_seen++;
}

static void ignore_free(const volatile void *p)
{
    (void)p;
}

enum { STEADY_DEPTH = 64, STEADY_WARM = 2000, STEADY_OPS = 20000 };
static uint8_t steady_bufs[STEADY_DEPTH * 2][8192];
static unsigned steady_next, steady_done, steady_fail;

/* Server buffers from a static ring: more slots than requests in flight. */
static int buffers_static(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    req->data = steady_bufs[steady_next++ % (STEADY_DEPTH * 2)];
    return 0;
}

static void steady_cb(struct vs_net_op *op, int rc)
{
    struct top *t = VS_CONTAINER_OF(op, struct top, op);
    if (rc != 0 || t->op.reply.rep.version != t->expect_version)
        steady_fail++;
    steady_done++;
    if (steady_done == STEADY_WARM)
        counting_mallocs = true;
    if (steady_done == STEADY_WARM + STEADY_OPS)
        counting_mallocs = false;
    if (steady_done + STEADY_DEPTH > STEADY_WARM + STEADY_OPS + STEADY_DEPTH)
        return;
    /* Resubmit: alternate 4 KiB writes and reads, without touching the heap. */
    uint64_t off = (uint64_t)steady_done * 4096;
    op->req.opcode = steady_done % 2 ? VS_NET_OP_WRITE : VS_NET_OP_READ;
    op->req.req.rw.offset = off;
    op->req.req.rw.len = 4096;
    op->req.data_len = op->req.opcode == VS_NET_OP_WRITE ? 4096 : 0;
    op->data = pattern + (off % (PATTERN_SIZE - BIG));
    op->reply_data_cap = op->req.opcode == VS_NET_OP_READ ? 4096 : 0;
    op->reply_meta_cap = op->req.opcode == VS_NET_OP_READ ? 4 : 0;
    t->expect_version = op->req.opcode == VS_NET_OP_WRITE ? vs_crc32c(op->data, 4096)
                                                          : off + 4096;
    if (vs_net_send(op->conn, op) != 0)
        steady_fail++;
}

/* Thousands of pipelined round trips after a warm-up, with every malloc of
 * the process counted: the messenger (and libuv under it) must make none. */
static void test_no_allocation_on_data_path(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    struct vs_net_handler w = {.buffers = buffers_static, .recv = write_recv};
    assert_int_equal(vs_net_handle(s.net, VS_NET_OP_WRITE, &w, &s), 0);
    cli_cfg(&cfg, &c);
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    struct top *t = calloc(STEADY_DEPTH, sizeof(*t));
    steady_done = steady_fail = 0;
    mallocs_seen = 0;
    for (unsigned i = 0; i < STEADY_DEPTH; i++) {
        t[i].buf = malloc(4096);
        top_read(&t[i], i, 4096);
        t[i].op.cb = steady_cb;
        assert_int_equal(vs_net_send(c.conn, &t[i].op), 0);
    }
    assert_true(wait_count(&loop, &steady_done, STEADY_WARM + STEADY_OPS + STEADY_DEPTH,
                           60000));
    assert_false(counting_mallocs);
    print_message("%u round trips, %lu heap allocations during the last %u\n", steady_done,
                  mallocs_seen, STEADY_OPS);
    assert_int_equal(steady_fail, 0);
#ifdef HAVE_MALLOC_HOOKS
    assert_int_equal(mallocs_seen, 0);
#else
    print_message("(not an ASan build: allocations were not counted)\n");
#endif
    close_all(&loop, &s, &c);
    for (unsigned i = 0; i < STEADY_DEPTH; i++)
        free(t[i].buf);
    free(t);
    loop_done(&loop);
}

/* Read leases (vstor/osd/osd_lease.h): vs_net_conn_acked_ms is the send time
 * of the newest answered request; with lease_renew_ms an otherwise quiet
 * connection is pinged so that it stays fresh, and the server's
 * vs_net_conn_recv_ms follows those pings; without it nothing is sent. */
static void run_ms(uv_loop_t *loop, unsigned ms)
{
    static bool never;
    run_until(loop, &never, ms);
}

static void test_lease_acked_and_renewal(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0);
    cli_cfg(&cfg, &c);
    cfg.ping_interval_ms = 60000; /* keepalive alone would stay silent */
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    assert_true(wait_count(&loop, &c.ev_up, 1, 5000));
    assert_int_equal(vs_net_conn_acked_ms(c.conn), 0); /* the HELLO does not count */
    ops_done = 0;
    struct top t = {.buf = malloc(4096)};
    uint64_t before = uv_now(&loop);
    top_read(&t, 0, 4096);
    assert_int_equal(vs_net_send(c.conn, &t.op), 0);
    assert_true(wait_ops(&loop, 1, 5000));
    top_check(&t);
    uint64_t acked = vs_net_conn_acked_ms(c.conn);
    assert_true(acked >= before && acked <= uv_now(&loop));
    assert_non_null(s.last_conn);
    uint64_t recv = vs_net_conn_recv_ms(s.last_conn);
    assert_true(recv >= acked);
    run_ms(&loop, 200); /* no renewal configured: nothing more is answered */
    assert_int_equal(vs_net_conn_acked_ms(c.conn), acked);
    assert_int_equal(vs_net_conn_recv_ms(s.last_conn), recv);
    close_all(&loop, NULL, &c);
    /* With lease_renew_ms 40: pings keep the newest answer at most ~40 ms
     * plus a round trip and a tick old, on an otherwise silent connection. */
    cli_cfg(&cfg, &c);
    cfg.ping_interval_ms = 60000;
    cfg.lease_renew_ms = 40;
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    assert_true(wait_count(&loop, &c.ev_up, 1, 5000));
    for (int i = 0; i < 10; i++) {
        run_ms(&loop, 30);
        uint64_t a = vs_net_conn_acked_ms(c.conn);
        if (i >= 3)
            assert_true(a > 0 && uv_now(&loop) - a < 200);
    }
    assert_true(vs_net_conn_recv_ms(s.last_conn) > recv);
    close_all(&loop, &s, &c);
    free(t.buf);
    loop_done(&loop);
}

static void test_bad_addresses(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct cli c;
    struct vs_net_cfg cfg;
    char err[256];
    cli_cfg(&cfg, &c);
    assert_int_equal(vs_net_create(&loop, &cfg, &c.net, err, sizeof(err)), 0);
    struct vs_net_conn *conn;
    const char *bad[] = {"", "1.2.3.4", "1.2.3.4:", "1.2.3.4:99999", "host:80", "[::1:80",
                         "1.2.3.4:8x", ":80", "[]:80"};
    for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(vs_net_connect(c.net, bad[i], NULL, &conn, err, sizeof(err)), -EINVAL);
        assert_int_equal(vs_net_listen(c.net, bad[i], err, sizeof(err)), -EINVAL);
    }
    assert_int_equal(vs_net_listen(c.net, "[::1]:0", err, sizeof(err)), 0);
    assert_true(vs_net_listen_port(c.net) > 0);
    /* A port in use: a clear error, and the messenger still closes cleanly. */
    struct cli c2;
    char addr[64];
    snprintf(addr, sizeof(addr), "[::1]:%u", vs_net_listen_port(c.net));
    assert_int_equal(vs_net_create(&loop, &cfg, &c2.net, err, sizeof(err)), 0);
    assert_int_equal(vs_net_listen(c2.net, addr, err, sizeof(err)), UV_EADDRINUSE);
    assert_non_null(strstr(err, "address already in use"));
    c2.closed = false;
    vs_net_close(c2.net, cli_closed_cb, &c2);
    assert_true(run_until(&loop, &c2.closed, 5000));
    c.closed = false;
    vs_net_close(c.net, cli_closed_cb, &c);
    assert_true(run_until(&loop, &c.closed, 5000));
    /* Bad configurations are refused. */
    cfg.conn_op_max = 1;
    assert_int_equal(vs_net_create(&loop, &cfg, &c.net, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "conn_op_max"));
    loop_done(&loop);
}

/* ---- The local transport (net_local.c) ------------------------------------------ */

static char *local_dir_make(void)
{
    char *d = strdup("/tmp/vs-net-local-XXXXXX");
    assert_non_null(mkdtemp(d));
    return d;
}

static void local_dir_remove(char *d)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
    free(d);
}

static void local_sock_path(const char *dir, uint16_t port, char *out, size_t size)
{
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
    assert_int_equal(vs_net_local_path(dir, addr, out, size), 0);
}

static bool is_socket(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* A unix socket file with no listener behind it (a listener killed -9). */
static void stale_socket(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    close(fd);
    assert_true(is_socket(path));
}

/* A read and a write of len bytes on c, verified. */
static void local_ops(uv_loop_t *loop, struct cli *c, uint32_t len)
{
    struct top t[2];
    ops_done = 0;
    t[0].buf = malloc(len);
    t[1].buf = NULL;
    top_read(&t[0], 77, len);
    top_write(&t[1], 99, len);
    assert_int_equal(vs_net_send(c->conn, &t[0].op), 0);
    assert_int_equal(vs_net_send(c->conn, &t[1].op), 0);
    assert_true(wait_ops(loop, 2, 10000));
    top_check(&t[0]);
    top_check(&t[1]);
    free(t[0].buf);
}

/* Client and server with a local_dir: the connection runs over the unix
 * socket (both sides), frames of every size pass, the socket exists while
 * the server listens, and is gone once it closed. A stale file of the same
 * name left by a dead listener is replaced. */
static void test_local_transport(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = local_dir_make(), path[VS_NET_LOCAL_PATH_MAX];
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    cfg.local_dir = dir;
    srv_start(&s, &loop, &cfg, 0);
    uint16_t port = vs_net_listen_port(s.net);
    local_sock_path(dir, port, path, sizeof(path));
    assert_true(is_socket(path));
    close_all(&loop, &s, NULL);
    assert_false(is_socket(path)); /* removed on close */
    stale_socket(path);
    srv_start(&s, &loop, &cfg, port); /* replaces the stale file */
    s.mode = REPLY_SHUFFLED;
    cli_cfg(&cfg, &c);
    cfg.local_dir = dir;
    cli_start(&c, &loop, &cfg, port);
    assert_true(vs_net_conn_is_local(c.conn)); /* connected at once */
    local_ops(&loop, &c, 4096);
    local_ops(&loop, &c, BIG);
    assert_true(vs_net_conn_is_up(c.conn) && vs_net_conn_is_local(c.conn));
    assert_ptr_not_equal(s.last_conn, NULL);
    assert_true(vs_net_conn_is_local(s.last_conn));
    struct vs_net_stats st;
    vs_net_get_stats(c.net, &st);
    assert_true(st.conns_local == 1 && st.conns_up == 1);
    vs_net_get_stats(s.net, &st);
    assert_true(st.conns_local == 1);
    assert_int_equal(c.ev_down, 0);
    close_all(&loop, &s, &c);
    assert_false(is_socket(path));
    local_dir_remove(dir);
    loop_done(&loop);
}

/* The client falls back to TCP at once -- no DOWN event, the op sent before
 * the connection was up is not failed -- when the socket is missing, is a
 * stale file, or is not a socket at all. */
static void test_local_fallback_to_tcp(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = local_dir_make(), path[VS_NET_LOCAL_PATH_MAX];
    struct srv s;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s); /* the server has no local transport */
    srv_start(&s, &loop, &cfg, 0);
    uint16_t port = vs_net_listen_port(s.net);
    local_sock_path(dir, port, path, sizeof(path));
    for (int kind = 0; kind < 3; kind++) {
        if (kind == 1)
            stale_socket(path);
        if (kind == 2) {
            unlink(path);
            FILE *f = fopen(path, "w");
            assert_non_null(f);
            fclose(f);
        }
        cli_cfg(&cfg, &c);
        cfg.local_dir = dir;
        cli_start(&c, &loop, &cfg, port);
        assert_false(vs_net_conn_is_local(c.conn));
        local_ops(&loop, &c, 4096);
        assert_false(vs_net_conn_is_local(c.conn));
        assert_int_equal(c.ev_up, 1);
        assert_int_equal(c.ev_down, 0);
        vs_net_close(c.net, cli_closed_cb, &c);
        assert_true(run_until(&loop, &c.closed, 5000));
    }
    close_all(&loop, &s, NULL);
    local_dir_remove(dir);
    loop_done(&loop);
}

/* The server restarts on the same port: the client reconnects over the
 * local socket it re-created; restarted without a local transport, the
 * client's local attempt finds no socket and TCP serves. */
static void test_local_server_restart(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = local_dir_make();
    struct srv s;
    struct cli c;
    struct vs_net_cfg scfg, cfg;
    srv_cfg(&scfg, &s);
    scfg.local_dir = dir;
    srv_start(&s, &loop, &scfg, 0);
    uint16_t port = vs_net_listen_port(s.net);
    cli_cfg(&cfg, &c);
    cfg.local_dir = dir;
    cfg.reconnect_min_ms = 20;
    cfg.reconnect_max_ms = 100;
    cli_start(&c, &loop, &cfg, port);
    local_ops(&loop, &c, 4096);
    assert_true(vs_net_conn_is_local(c.conn));
    close_all(&loop, &s, NULL);
    assert_true(wait_count(&loop, &c.ev_down, 1, 5000));
    assert_int_equal(c.last_down_rc, -ECONNRESET);
    srv_start(&s, &loop, &scfg, port); /* restarted with its local socket */
    assert_true(wait_count(&loop, &c.ev_up, 2, 5000));
    assert_true(vs_net_conn_is_local(c.conn));
    local_ops(&loop, &c, 4096);
    close_all(&loop, &s, NULL);
    unsigned downs = c.ev_down;
    assert_true(wait_count(&loop, &c.ev_down, downs + 1, 5000));
    scfg.local_dir = NULL;
    srv_start(&s, &loop, &scfg, port); /* restarted, TCP only */
    assert_true(wait_count(&loop, &c.ev_up, 3, 5000));
    assert_false(vs_net_conn_is_local(c.conn));
    local_ops(&loop, &c, 4096);
    close_all(&loop, &s, &c);
    local_dir_remove(dir);
    loop_done(&loop);
}

/* A live socket of the expected name whose listener refuses the handshake
 * (another cluster's; it cannot happen by accident, see net.h): that
 * attempt fails with VS_EWRONGCLUSTER and the next one uses TCP. */
static void test_local_refused_then_tcp(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    char *dir = local_dir_make(), *dir2 = local_dir_make();
    char path[VS_NET_LOCAL_PATH_MAX], path2[VS_NET_LOCAL_PATH_MAX];
    struct srv s, other;
    struct cli c;
    struct vs_net_cfg cfg;
    srv_cfg(&cfg, &s);
    srv_start(&s, &loop, &cfg, 0); /* ours, TCP only */
    srv_cfg(&cfg, &other);
    memcpy(cfg.cluster_id, other_cluster, 16);
    cfg.local_dir = dir2;
    srv_start(&other, &loop, &cfg, 0);
    local_sock_path(dir2, vs_net_listen_port(other.net), path2, sizeof(path2));
    local_sock_path(dir, vs_net_listen_port(s.net), path, sizeof(path));
    assert_int_equal(rename(path2, path), 0); /* other's socket under our name */
    cli_cfg(&cfg, &c);
    cfg.local_dir = dir;
    cfg.reconnect_min_ms = 10;
    cfg.reconnect_max_ms = 20;
    cli_start(&c, &loop, &cfg, vs_net_listen_port(s.net));
    assert_true(vs_net_conn_is_local(c.conn));
    assert_true(wait_count(&loop, &c.ev_up, 1, 5000));
    assert_int_equal(c.ev_down, 1);
    assert_int_equal(c.last_down_rc, VS_EWRONGCLUSTER);
    assert_false(vs_net_conn_is_local(c.conn));
    local_ops(&loop, &c, 4096);
    close_all(&loop, &s, &c);
    close_all(&loop, &other, NULL);
    local_dir_remove(dir);
    local_dir_remove(dir2);
    loop_done(&loop);
}

/* Bad local_dir values are refused at creation; path names are canonical
 * and bounded by sun_path. */
static void test_local_bad_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct vs_net *net;
    struct vs_net_cfg cfg;
    char err[256], path[VS_NET_LOCAL_PATH_MAX], longdir[200];
    vs_net_cfg_init(&cfg);
    cfg.local_dir = "relative/dir";
    assert_int_equal(vs_net_create(&loop, &cfg, &net, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "absolute"));
    memset(longdir, 'd', sizeof(longdir) - 1);
    longdir[0] = '/';
    longdir[sizeof(longdir) - 1] = 0;
    cfg.local_dir = longdir;
    assert_int_equal(vs_net_create(&loop, &cfg, &net, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "shorter"));
    assert_int_equal(vs_net_local_path("/run/vs//", "127.0.0.1:80", path, sizeof(path)), 0);
    assert_string_equal(path, "/run/vs/vstor-127.0.0.1:80.sock");
    assert_int_equal(vs_net_local_path("/r", "[0:0::1]:6800", path, sizeof(path)), 0);
    assert_string_equal(path, "/r/vstor-[::1]:6800.sock");
    assert_int_equal(vs_net_local_path("r", "127.0.0.1:80", path, sizeof(path)), -EINVAL);
    assert_int_equal(vs_net_local_path(NULL, "127.0.0.1:80", path, sizeof(path)), -EINVAL);
    assert_int_equal(vs_net_local_path("/r", "host:80", path, sizeof(path)), -EINVAL);
    longdir[100] = 0;
    assert_int_equal(vs_net_local_path(longdir, "127.0.0.1:80", path, sizeof(path)),
                     -ENAMETOOLONG);
    assert_int_equal(vs_net_local_path("/r", "127.0.0.1:80", path, 8), -ENAMETOOLONG);
    loop_done(&loop);
}

int main(void)
{
    pattern = malloc(PATTERN_SIZE);
    uint64_t x = 1;
    for (size_t i = 0; i < PATTERN_SIZE; i++)
        pattern[i] = (uint8_t)(xorshift(&x) >> 32);
#ifdef HAVE_MALLOC_HOOKS
    __sanitizer_install_malloc_and_free_hooks(count_malloc, ignore_free);
#else
    (void)count_malloc;
    (void)ignore_free;
#endif
    vs_log_set_level(VS_LOG_WARN);
    enum vs_log_level lvl;
    if (getenv("NET_TEST_LOG") && vs_log_level_parse(getenv("NET_TEST_LOG"), &lvl) == 0)
        vs_log_set_level(lvl);
    if (getenv("NET_TEST_FILTER"))
        cmocka_set_test_filter(getenv("NET_TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipelining_out_of_order),
        cmocka_unit_test(test_large_payloads),
        cmocka_unit_test(test_big_frames_read_in_place),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_no_deadlock_between_osds),
        cmocka_unit_test(test_unserved_and_refused_requests),
        cmocka_unit_test(test_close_semantics),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_reconnect_after_restart),
        cmocka_unit_test(test_malformed_frame_closes_only_that_connection),
        cmocka_unit_test(test_peer_that_stops_reading),
        cmocka_unit_test(test_wrong_cluster_refused),
        cmocka_unit_test(test_keepalive_detects_dead_peer),
        cmocka_unit_test(test_reply_to_unknown_id),
        cmocka_unit_test(test_no_allocation_on_data_path),
        cmocka_unit_test(test_lease_acked_and_renewal),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_local_transport),
        cmocka_unit_test(test_local_fallback_to_tcp),
        cmocka_unit_test(test_local_server_restart),
        cmocka_unit_test(test_local_refused_then_tcp),
        cmocka_unit_test(test_local_bad_config),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(pattern);
    return rc;
}
