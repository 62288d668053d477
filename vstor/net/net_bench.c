/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_bench.c -- `vstor net bench`: what one messenger round trip costs.
 *
 * For each case (op, payload size, queue depth) a fresh server process is
 * forked, a client in this process keeps `depth` ops in flight for the
 * measured interval, and the CPU time both processes spent in that interval
 * is read from /proc/PID/schedstat (nanoseconds). The first row is the
 * physical floor measured in the same run: a blocking socket ping-pong with
 * the same bytes on the wire and no messenger at all.
 *
 * Modes: no address -- the whole table over loopback (the default);
 * --listen ADDR -- only the server, until SIGTERM; --connect ADDR -- only
 * the client, against such a server (no server CPU column then).
 */
#include "cmd.h"
#include "loop.h"
#include "net.h"
#include "net_int.h"
#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BENCH_MAX (4u << 20)
#define LAT_MAX (4u << 20)

struct bench_case {
    const char *name;
    uint16_t opcode; /* 0: the raw socket baseline */
    uint32_t size;
    uint32_t depth;
};

static const struct bench_case cases[] = {
    {"raw socket 4k", 0, 4096, 1},
    {"write 4k", VS_NET_OP_WRITE, 4096, 1},
    {"read 4k", VS_NET_OP_READ, 4096, 1},
    {"write 4k", VS_NET_OP_WRITE, 4096, 128},
    {"read 4k", VS_NET_OP_READ, 4096, 128},
    {"raw socket 4M", 0, 4u << 20, 1},
    {"write 4M", VS_NET_OP_WRITE, 4u << 20, 1},
    {"read 4M", VS_NET_OP_READ, 4u << 20, 1},
    {"write 4M", VS_NET_OP_WRITE, 4u << 20, 128},
    {"read 4M", VS_NET_OP_READ, 4u << 20, 128},
};

static const uint8_t bench_cluster[VS_NET_CLUSTER_ID_SIZE] = "vstor-net-bench";

/* CPU nanoseconds a process has run (first field of /proc/PID/schedstat). */
static uint64_t cpu_ns(pid_t pid)
{
    char path[64];
    unsigned long long ns = 0;
    snprintf(path, sizeof(path), "/proc/%d/schedstat", pid ? (int)pid : (int)getpid());
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%llu", &ns) != 1)
            ns = 0;
        fclose(f);
    }
    return ns;
}

/* ---- Server ----------------------------------------------------------------- */

struct bench_srv {
    struct vs_loop loop;
    struct vs_net *net;
    uint8_t *buf;
};

static int srv_buffers(struct vs_net_req *req, void *ctx)
{
    struct bench_srv *s = ctx;
    if (req->hdr.data_len > BENCH_MAX)
        return -E2BIG;
    req->data = s->buf; /* every write lands in the same sink: contents unused */
    return 0;
}

static void srv_write(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    vs_net_reply(req);
}

static void srv_read(struct vs_net_req *req, void *ctx)
{
    struct bench_srv *s = ctx;
    if (req->hdr.req.rw.len > BENCH_MAX) {
        vs_net_reply_err(req, -E2BIG);
        return;
    }
    req->rep_data = s->buf;
    req->rep_data_len = req->hdr.req.rw.len;
    vs_net_reply(req);
}

static void srv_closed(void *ctx)
{
    struct bench_srv *s = ctx;
    vs_loop_stop(&s->loop);
}

static void srv_shutdown(struct vs_loop *loop, int signum, void *ctx)
{
    struct bench_srv *s = ctx;
    (void)loop;
    (void)signum;
    vs_net_close(s->net, srv_closed, s);
}

static void bench_net_cfg(struct vs_net_cfg *cfg, const struct vs_config *config, uint8_t role)
{
    vs_net_cfg_init(cfg);
    vs_net_cfg_from_config(cfg, config);
    memcpy(cfg->cluster_id, bench_cluster, VS_NET_CLUSTER_ID_SIZE);
    cfg->role = role;
    cfg->log_name = "bench";
}

static void srv_handlers(struct bench_srv *s)
{
    struct vs_net_handler w = {.buffers = srv_buffers, .recv = srv_write};
    struct vs_net_handler r = {.recv = srv_read};
    vs_net_handle(s->net, VS_NET_OP_WRITE, &w, s);
    vs_net_handle(s->net, VS_NET_OP_READ, &r, s);
}

/* Serves WRITE and READ on addr until SIGTERM; writes the port to ready_fd. */
static int bench_serve(const char *addr, const struct vs_config *config, int ready_fd)
{
    struct bench_srv s;
    struct vs_net_cfg cfg;
    char err[256] = "";
    memset(&s, 0, sizeof(s));
    if (vs_loop_init(&s.loop, 0) < 0 ||
        vs_loop_busy_poll(&s.loop, (unsigned)config->loop_busy_poll_us) < 0)
        return VS_EXIT_FAIL;
    bench_net_cfg(&cfg, config, VS_NET_ROLE_OSD);
    cfg.node_id = 1;
    s.buf = calloc(1, BENCH_MAX);
    int rc = s.buf ? vs_net_create(&s.loop.uv, &cfg, &s.net, err, sizeof(err)) : -ENOMEM;
    if (rc == 0 && (rc = vs_net_listen(s.net, addr, err, sizeof(err))) == 0) {
        srv_handlers(&s);
        vs_loop_on_shutdown(&s.loop, srv_shutdown, &s);
        uint16_t port = vs_net_listen_port(s.net);
        if (ready_fd >= 0 && write(ready_fd, &port, sizeof(port)) != sizeof(port))
            srv_shutdown(&s.loop, 0, &s);
    } else if (s.net) {
        srv_shutdown(&s.loop, 0, &s);
    }
    if (s.net)
        vs_loop_run(&s.loop);
    vs_loop_close(&s.loop);
    free(s.buf);
    if (rc < 0)
        fprintf(stderr, "vstor net bench: %s\n", err[0] ? err : vs_strerror(rc));
    return rc < 0 ? VS_EXIT_FAIL : VS_EXIT_OK;
}

/* ---- The raw socket baseline -------------------------------------------------- */

static bool io_full(int fd, void *buf, size_t n, bool wr)
{
    uint8_t *p = buf;
    while (n > 0) {
        ssize_t r = wr ? write(fd, p, n) : read(fd, p, n);
        if (r <= 0)
            return false;
        p += r;
        n -= (size_t)r;
    }
    return true;
}

static int tcp_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Child: accept one connection, then read a frame, answer 128 bytes, repeat. */
static int raw_serve(int ready_fd, uint32_t size)
{
    int lfd = tcp_socket();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0)
        return VS_EXIT_FAIL;
    getsockname(lfd, (struct sockaddr *)&sa, &len);
    uint16_t port = ntohs(sa.sin_port);
    if (write(ready_fd, &port, sizeof(port)) != sizeof(port))
        return VS_EXIT_FAIL;
    int fd = accept(lfd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    uint8_t *buf = malloc(VS_NET_HDR_SIZE + size);
    while (buf && io_full(fd, buf, VS_NET_HDR_SIZE + size, false) &&
           io_full(fd, buf, VS_NET_HDR_SIZE, true))
        ;
    free(buf);
    return VS_EXIT_OK;
}

/* ---- Results ------------------------------------------------------------------ */

struct bench_result {
    uint64_t ops, elapsed_ns, cpu_client_ns, cpu_server_ns;
    uint64_t *lat;
    size_t nlat;
    int error;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void print_row(const struct bench_case *c, struct bench_result *r, bool have_server)
{
    if (r->error || r->ops == 0 || r->nlat == 0) {
        printf("%-14s Q%-4u failed: %s\n", c->name, c->depth,
               r->error ? vs_strerror(r->error) : "no op completed");
        return;
    }
    qsort(r->lat, r->nlat, sizeof(r->lat[0]), cmp_u64);
    uint64_t sum = 0;
    for (size_t i = 0; i < r->nlat; i++)
        sum += r->lat[i];
    double secs = (double)r->elapsed_ns / 1e9;
    double iops = (double)r->ops / secs;
    char srv[32] = "-";
    if (have_server)
        snprintf(srv, sizeof(srv), "%.2f", (double)r->cpu_server_ns / 1e3 / (double)r->ops);
    printf("%-14s Q%-4u %10.0f %9.1f %9.1f %9.1f %9.1f %10.2f %10s\n", c->name, c->depth, iops,
           iops * c->size / 1e6, (double)sum / (double)r->nlat / 1e3,
           (double)r->lat[r->nlat / 2] / 1e3, (double)r->lat[r->nlat * 99 / 100] / 1e3,
           (double)r->cpu_client_ns / 1e3 / (double)r->ops, srv);
}

/* ---- Messenger client ------------------------------------------------------------ */

enum phase { PH_CONNECT, PH_WARM, PH_MEASURE, PH_DRAIN };

struct bench;
struct bench_op {
    struct vs_net_op op;
    uint64_t start_ns;
    struct bench *b;
};

struct bench {
    uv_loop_t loop;
    struct vs_spin spin; /* loop_busy_poll_us */
    uv_timer_t timer;
    struct vs_net *net;
    struct vs_net_conn *conn;
    const struct bench_case *c;
    struct bench_op *ops;
    uint8_t *buf;
    enum phase phase;
    unsigned inflight;
    uint64_t warm_ms, measure_ms, t0, cpu_self0, cpu_srv0;
    pid_t srv;
    struct bench_result *res;
};

static void op_cb(struct vs_net_op *op, int rc);

static void op_start(struct bench *b, struct bench_op *o)
{
    memset(&o->op, 0, sizeof(o->op));
    o->b = b;
    o->op.req.opcode = b->c->opcode;
    o->op.req.req.rw.inode = 1ull << 48;
    o->op.req.req.rw.len = b->c->size;
    if (b->c->opcode == VS_NET_OP_WRITE) {
        o->op.req.data_len = b->c->size;
        o->op.data = b->buf;
    } else {
        o->op.reply_data = b->buf; /* every read lands in the same sink */
        o->op.reply_data_cap = b->c->size;
    }
    o->op.cb = op_cb;
    o->start_ns = vs_clock_mono_ns();
    int rc = vs_net_send(b->conn, &o->op);
    VS_ASSERTF(rc == 0, "bench op refused: %d", rc);
    b->inflight++;
}

static void bench_finish(struct bench *b)
{
    uv_timer_stop(&b->timer);
    uv_close((uv_handle_t *)&b->timer, NULL);
    vs_spin_close(&b->spin);
    vs_net_close(b->net, NULL, NULL);
}

static void op_cb(struct vs_net_op *op, int rc)
{
    struct bench_op *o = VS_CONTAINER_OF(op, struct bench_op, op);
    struct bench *b = o->b;
    b->inflight--;
    if (rc != 0 && b->phase != PH_DRAIN) {
        b->res->error = rc;
        b->phase = PH_DRAIN;
    }
    if (b->phase == PH_MEASURE) {
        struct bench_result *r = b->res;
        r->ops++;
        if (r->nlat < LAT_MAX)
            r->lat[r->nlat++] = vs_clock_mono_ns() - o->start_ns;
    }
    if (b->phase != PH_DRAIN)
        op_start(b, o);
    else if (b->inflight == 0)
        bench_finish(b);
}

static void timer_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (b->phase == PH_CONNECT) { /* never came up */
        b->res->error = -ETIMEDOUT;
        b->phase = PH_DRAIN;
        bench_finish(b);
    } else if (b->phase == PH_WARM) {
        b->phase = PH_MEASURE;
        b->t0 = vs_clock_mono_ns();
        b->cpu_self0 = cpu_ns(0);
        b->cpu_srv0 = b->srv ? cpu_ns(b->srv) : 0;
        uv_timer_start(&b->timer, timer_cb, b->measure_ms, 0);
    } else if (b->phase == PH_MEASURE) {
        b->res->elapsed_ns = vs_clock_mono_ns() - b->t0;
        b->res->cpu_client_ns = cpu_ns(0) - b->cpu_self0;
        b->res->cpu_server_ns = b->srv ? cpu_ns(b->srv) - b->cpu_srv0 : 0;
        b->phase = PH_DRAIN;
    }
}

static void event_cb(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx)
{
    struct bench *b = ctx;
    (void)conn;
    if (ev == VS_NET_EV_UP && b->phase == PH_CONNECT) {
        b->phase = PH_WARM;
        for (uint32_t i = 0; i < b->c->depth; i++)
            op_start(b, &b->ops[i]);
        uv_timer_start(&b->timer, timer_cb, b->warm_ms, 0);
    } else if (ev == VS_NET_EV_DOWN && b->phase == PH_CONNECT) {
        b->res->error = rc;
        b->phase = PH_DRAIN;
        bench_finish(b);
    }
}

static int run_client(struct bench *b, const struct vs_config *config, const char *addr)
{
    struct vs_net_cfg cfg;
    char err[256];
    bench_net_cfg(&cfg, config, VS_NET_ROLE_CLIENT);
    cfg.on_event = event_cb;
    cfg.event_ctx = b;
    uv_loop_init(&b->loop);
    vs_spin_init(&b->spin, &b->loop, NULL, (unsigned)config->loop_busy_poll_us);
    uv_timer_init(&b->loop, &b->timer);
    b->timer.data = b;
    int rc = vs_net_create(&b->loop, &cfg, &b->net, err, sizeof(err));
    if (rc == 0 && (rc = vs_net_connect(b->net, addr, b, &b->conn, err, sizeof(err))) < 0)
        bench_finish(b);
    if (rc < 0) {
        fprintf(stderr, "vstor net bench: %s\n", err);
        b->res->error = rc;
    } else {
        uv_timer_start(&b->timer, timer_cb, 5000, 0); /* connect deadline */
    }
    uv_run(&b->loop, UV_RUN_DEFAULT);
    return uv_loop_close(&b->loop);
}

/* ---- Driving the cases ------------------------------------------------------------- */

/* Forks a server for one case; returns its pid and port, or -1. */
static pid_t spawn_server(const struct bench_case *c, const struct vs_config *config,
                          uint16_t *port)
{
    int fds[2];
    if (pipe(fds) < 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        int rc = c->opcode ? bench_serve("127.0.0.1:0", config, fds[1])
                           : raw_serve(fds[1], c->size);
        _exit(rc);
    }
    close(fds[1]);
    if (pid < 0 || read(fds[0], port, sizeof(*port)) != sizeof(*port)) {
        close(fds[0]);
        return -1;
    }
    close(fds[0]);
    return pid;
}

static void run_raw(const struct bench_case *c, uint16_t port, pid_t srv, uint64_t warm_ms,
                    uint64_t measure_ms, struct bench_result *r)
{
    int fd = tcp_socket();
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint8_t *buf = calloc(1, VS_NET_HDR_SIZE + c->size);
    if (!buf || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        r->error = -errno;
        free(buf);
        close(fd);
        return;
    }
    uint64_t start = vs_clock_mono_ns(), t0 = 0, cpu0 = 0, srv0 = 0;
    for (bool measuring = false;;) {
        uint64_t now = vs_clock_mono_ns();
        if (!measuring && now - start >= warm_ms * 1000000) {
            measuring = true;
            t0 = now;
            cpu0 = cpu_ns(0);
            srv0 = cpu_ns(srv);
        }
        if (measuring && now - t0 >= measure_ms * 1000000)
            break;
        if (!io_full(fd, buf, VS_NET_HDR_SIZE + c->size, true) ||
            !io_full(fd, buf, VS_NET_HDR_SIZE, false)) {
            r->error = -EIO;
            break;
        }
        if (measuring) {
            r->ops++;
            if (r->nlat < LAT_MAX)
                r->lat[r->nlat++] = vs_clock_mono_ns() - now;
        }
    }
    r->elapsed_ns = vs_clock_mono_ns() - t0;
    r->cpu_client_ns = cpu_ns(0) - cpu0;
    r->cpu_server_ns = cpu_ns(srv) - srv0;
    free(buf);
    close(fd);
}

static int run_case(const struct bench_case *c, const struct vs_config *config,
                    const char *connect_addr, uint64_t warm_ms, uint64_t measure_ms,
                    uint8_t *buf, uint64_t *lat)
{
    struct bench_result r = {.lat = lat};
    uint16_t port = 0;
    pid_t srv = 0;
    if (!connect_addr && (srv = spawn_server(c, config, &port)) < 0) {
        fprintf(stderr, "vstor net bench: cannot start a server: %s\n", strerror(errno));
        return VS_EXIT_FAIL;
    }
    if (!c->opcode) {
        run_raw(c, port, srv, warm_ms, measure_ms, &r);
    } else {
        char addr[64];
        snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
        struct bench b = {.c = c, .buf = buf, .warm_ms = warm_ms, .measure_ms = measure_ms,
                          .srv = srv, .res = &r};
        b.ops = calloc(c->depth, sizeof(*b.ops));
        run_client(&b, config, connect_addr ? connect_addr : addr);
        free(b.ops);
    }
    if (srv > 0) {
        kill(srv, SIGTERM);
        waitpid(srv, NULL, 0);
    }
    print_row(c, &r, srv > 0);
    return r.error ? VS_EXIT_FAIL : VS_EXIT_OK;
}

/* The table to run: the standard cases, or, with --size/--depth, a raw
 * baseline plus a write and a read of that shape. Returns the count. */
static unsigned pick_cases(const struct vs_cmd_ctx *ctx, struct bench_case *out, int *rc)
{
    uint64_t size = 0, depth = 0;
    *rc = 0;
    if (vs_cmd_opt_size(ctx, "size", &size) < 0 || vs_cmd_opt_u64(ctx, "depth", &depth) < 0) {
        *rc = VS_EXIT_USAGE;
        return 0;
    }
    if (!size && !depth) {
        memcpy(out, cases, sizeof(cases));
        return VS_ARRAY_SIZE(cases);
    }
    size = size ? size : 4096;
    depth = depth ? depth : 1;
    if (size > BENCH_MAX || depth > 4096) {
        vs_cmd_error((struct vs_cmd_ctx *)ctx, "--size is at most 4M and --depth at most 4096");
        *rc = VS_EXIT_USAGE;
        return 0;
    }
    out[0] = (struct bench_case){"raw socket", 0, (uint32_t)size, 1};
    out[1] = (struct bench_case){"write", VS_NET_OP_WRITE, (uint32_t)size, (uint32_t)depth};
    out[2] = (struct bench_case){"read", VS_NET_OP_READ, (uint32_t)size, (uint32_t)depth};
    return 3;
}

static int run_table(const struct vs_cmd_ctx *ctx, const struct bench_case *list, unsigned n,
                     const char *connect_addr, uint64_t measure_ms)
{
    uint64_t warm_ms = VS_MIN(measure_ms / 4, 500);
    uint8_t *buf = calloc(1, BENCH_MAX);
    uint64_t *lat = calloc(LAT_MAX, sizeof(*lat));
    if (!buf || !lat) {
        free(buf);
        free(lat);
        vs_cmd_error((struct vs_cmd_ctx *)ctx, "out of memory");
        return VS_EXIT_FAIL;
    }
    printf("vstor net bench: %s, %" PRIu64 " ms per case after %" PRIu64 " ms of warm-up\n",
           connect_addr ? connect_addr : "loopback, a fresh server process per case",
           measure_ms, warm_ms);
    printf("%-14s %-5s %10s %9s %9s %9s %9s %10s %10s\n", "case", "depth", "ops/s", "MB/s",
           "avg us", "p50 us", "p99 us", "cli us/op", "srv us/op");
    int rc = VS_EXIT_OK;
    for (unsigned i = 0; i < n; i++) {
        if (connect_addr && !list[i].opcode)
            continue; /* the baseline needs its own server */
        if (run_case(&list[i], &ctx->cfg, connect_addr, warm_ms, measure_ms, buf, lat))
            rc = VS_EXIT_FAIL;
    }
    free(buf);
    free(lat);
    return rc;
}

int vs_cmd_net_bench(struct vs_cmd_ctx *ctx)
{
    const char *listen_addr = vs_cmd_opt(ctx, "listen");
    const char *connect_addr = vs_cmd_opt(ctx, "connect");
    uint64_t seconds = 2;
    if (vs_cmd_opt_u64(ctx, "seconds", &seconds) < 0)
        return VS_EXIT_USAGE;
    struct sockaddr_storage sa;
    if (connect_addr && net__parse_addr(connect_addr, &sa) < 0) {
        vs_cmd_error(ctx, "--connect: '%s' is not IP:PORT or [IPv6]:PORT", connect_addr);
        return VS_EXIT_USAGE;
    }
    if (listen_addr)
        return bench_serve(listen_addr, &ctx->cfg, -1);
    struct bench_case list[VS_ARRAY_SIZE(cases)];
    int rc;
    unsigned n = pick_cases(ctx, list, &rc);
    if (rc)
        return rc;
    if (vs_log_level_current == VS_LOG_INFO)
        vs_log_set_level(VS_LOG_WARN); /* keep the table readable */
    return run_table(ctx, list, n, connect_addr,
                     vs_cmd_flag(ctx, "quick") ? 200 : seconds * 1000);
}
