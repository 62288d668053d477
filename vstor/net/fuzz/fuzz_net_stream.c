/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: the messenger's receive path as a hostile client sees it. One
 * process-wide server messenger (small limits, a tiny request pool, handlers
 * for every opcode, some replies held back) listens on loopback; each input
 * is sent by a fresh TCP client, which then hangs up. Properties, beyond "the
 * server never crashes or overreads":
 *  - after the client is gone, the server holds no connection and, once the
 *    held replies are released, no request: nothing leaks;
 *  - the server answers every input within a bounded time (no hang).
 *
 * Input: byte 0 selects options (bit 0: send a valid HELLO first, bit 1:
 * repair the CRC of every header in the stream, walking it frame by frame),
 * then the bytes the client sends.
 */
#include "net.h"
#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define POOL 16
#define SEG (64u << 10)
#define HELD_MAX POOL

static const uint8_t cluster[VS_NET_CLUSTER_ID_SIZE] = "fuzz-stream";

static struct {
    uv_loop_t loop;
    struct vs_net *net;
    uint16_t port;
    uint8_t arena[2 * POOL][2 * SEG];
    uint8_t *free_slots[2 * POOL];
    unsigned nfree;
    struct vs_net_req *held[HELD_MAX];
    unsigned nheld;
} S;

static int take_buffers(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    VS_ASSERT(S.nfree > 0); /* two pools of POOL requests, 2 * POOL arena slots */
    uint8_t *slot = S.free_slots[--S.nfree];
    req->user = slot;
    req->meta = slot;
    req->data = slot + SEG;
    return 0;
}

static void give_back(struct vs_net_req *req, int rc, void *ctx)
{
    (void)rc;
    (void)ctx;
    if (req->user)
        S.free_slots[S.nfree++] = req->user;
    req->user = NULL;
}

/* Answers with a reply the protocol accepts for the request; holds every
 * third one back until the end of the input. */
static void serve(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    const struct vs_net_hdr *h = &req->hdr;
    static uint8_t zeros[SEG];
    if (h->opcode == VS_NET_OP_READ || h->opcode == VS_NET_OP_SEC_READ) {
        req->rep_data = zeros;
        req->rep_data_len = h->opcode == VS_NET_OP_READ ? h->req.rw.len : h->req.sec.len;
    } else if (h->opcode == VS_NET_OP_SEC_READ_BITMAP) {
        req->rep.count = h->req.batch.count;
        req->rep_meta = zeros;
        uint64_t len = (uint64_t)h->req.batch.count * (8 + h->req.batch.bitmap_len);
        req->rep_meta_len = (uint32_t)len;
        if (len > SEG) { /* the codec allows it; this server has no such buffer */
            memset(&req->rep, 0, sizeof(req->rep));
            req->rep.retval = -E2BIG;
            req->rep_meta_len = 0;
        }
    } else if (h->id % 5 == 0) {
        req->rep.retval = -EIO;
    }
    if (h->id % 3 == 0 && S.nheld < HELD_MAX)
        S.held[S.nheld++] = req;
    else
        vs_net_reply(req);
}

static void quiet(void *ctx, enum vs_log_level level, const char *component, const char *msg)
{
    (void)ctx;
    (void)level;
    (void)component;
    (void)msg;
}

static void setup(void)
{
    struct vs_net_cfg cfg;
    char err[256];
    enum vs_log_level level;
    const char *want = getenv("FUZZ_NET_LOG"); /* e.g. trace, to debug one input */
    if (want && vs_log_level_parse(want, &level) == 0)
        vs_log_set_level(level);
    else
        vs_log_set_sink(quiet, NULL); /* every malformed input would log a line */
    VS_ASSERT(uv_loop_init(&S.loop) == 0);
    vs_net_cfg_init(&cfg);
    memcpy(cfg.cluster_id, cluster, sizeof(cluster));
    cfg.role = VS_NET_ROLE_OSD;
    cfg.limits = (struct vs_net_limits){.data_max = SEG, .meta_max = SEG, .bitmap_max = 512};
    cfg.req_pool_size = POOL;
    cfg.sec_pool_size = POOL;
    cfg.conn_req_max = POOL / 2;
    cfg.read_buf_size = 4096;
    cfg.log_name = "fuzz";
    VS_ASSERT(vs_net_create(&S.loop, &cfg, &S.net, err, sizeof(err)) == 0);
    VS_ASSERT(vs_net_listen(S.net, "127.0.0.1:0", err, sizeof(err)) == 0);
    S.port = vs_net_listen_port(S.net);
    struct vs_net_handler with = {.buffers = take_buffers, .recv = serve, .done = give_back};
    struct vs_net_handler without = {.recv = serve};
    for (uint16_t op = 3; op < VS_NET_OP_LIMIT; op++)
        if (vs_net_op_valid(op))
            vs_net_handle(S.net, op, vs_net_op_has_req_payload(op) ? &with : &without, NULL);
    for (unsigned i = 0; i < 2 * POOL; i++)
        S.free_slots[S.nfree++] = S.arena[i];
}

/* Walks the stream as frames and repairs each header's CRC. */
static void repair_crcs(uint8_t *p, size_t n)
{
    size_t at = 0;
    while (n - at >= VS_NET_HDR_SIZE) {
        vs_put_u32(p + at + 124, vs_crc32c(p + at, 124));
        uint64_t payload = (uint64_t)vs_get_u32(p + at + 20) + vs_get_u32(p + at + 24);
        at += VS_NET_HDR_SIZE;
        if (payload > n - at)
            break;
        at += payload;
    }
}

static size_t build_stream(const uint8_t *data, size_t size, uint8_t **out)
{
    uint8_t opts = data[0];
    size_t hello = (opts & 1) ? VS_NET_HDR_SIZE : 0;
    uint8_t *s = malloc(hello + size);
    if (hello) {
        struct vs_net_hdr h;
        struct vs_net_limits lim;
        vs_net_limits_default(&lim);
        memset(&h, 0, sizeof(h));
        h.version = 1;
        h.opcode = VS_NET_OP_HELLO;
        h.id = 1;
        memcpy(h.req.hello.cluster_id, cluster, sizeof(cluster));
        h.req.hello.proto_min = h.req.hello.proto_max = 1;
        h.req.hello.role = VS_NET_ROLE_CLIENT;
        VS_ASSERT(vs_net_hdr_encode(&h, &lim, s, NULL, 0) == 0);
    }
    memcpy(s + hello, data + 1, size - 1);
    if (opts & 2)
        repair_crcs(s + hello, size - 1);
    *out = s;
    return hello + size - 1;
}

/* At thousands of inputs a second, connections left in TIME_WAIT can use up
 * the ephemeral ports towards the one listening address (CI saw connect()
 * fail). A failed connect is retried from other source addresses of
 * 127.0.0.0/8, each with a port range of its own. */
static int connect_client(void)
{
    static uint32_t next_src;
    int fd = -1, last_errno = 0;
    for (int attempt = 0; attempt < 64; attempt++) {
        fd = socket(AF_INET, SOCK_STREAM, 0);
        VS_ASSERT(fd >= 0);
        uint32_t src = 0x7f000002u + next_src++ % 0xfff0u; /* 127.0.0.2 .. 127.0.255.241 */
        struct sockaddr_in from = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(src)};
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(S.port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        struct linger lg = {1, 0}; /* close with RST: no TIME_WAIT on our side */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        /* The first attempt leaves the source to the kernel, which picks a
         * port knowing the destination; an explicit bind would not. */
        if ((attempt == 0 || bind(fd, (struct sockaddr *)&from, sizeof(from)) == 0) &&
            connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    VS_ASSERTF(fd >= 0, "connect to the server: %s", strerror(last_errno));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

/* Answers held requests whose connection is down, or all of them. */
static void release_held(bool all)
{
    unsigned keep = 0;
    for (unsigned i = 0; i < S.nheld; i++) {
        struct vs_net_req *req = S.held[i];
        if (all || !vs_net_conn_is_up(req->conn))
            vs_net_reply(req);
        else
            S.held[keep++] = req;
    }
    S.nheld = keep;
}

static bool all_clear(void)
{
    struct vs_net_stats st;
    vs_net_get_stats(S.net, &st);
    return S.nheld == 0 && st.conns_open == 0 && st.reqs_in_use == 0;
}

/* After the hang-up: runs the loop (never blocking) until the server holds
 * nothing, answering held requests once their connection is down -- or
 * after a while anyway, since a connection whose share of the pool is held
 * stops reading and cannot see the hang-up before. */
static bool settle(int fd)
{
    uint8_t sink[4096];
    for (int i = 0; i < 20000; i++) {
        release_held(i > 300);
        if (all_clear())
            return true;
        uv_run(&S.loop, UV_RUN_NOWAIT);
        while (read(fd, sink, sizeof(sink)) > 0)
            ; /* drain replies so the server never stalls on us */
        if (i > 100)
            usleep(100);
    }
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > (1u << 20))
        return 0;
    if (!S.net)
        setup();
    uint8_t *stream;
    size_t len = build_stream(data, size, &stream);
    int fd = connect_client();
    size_t sent = 0;
    for (int i = 0; i < 20000 && sent < len; i++) {
        ssize_t w = write(fd, stream + sent, len - sent);
        if (w > 0)
            sent += (size_t)w;
        else if (w < 0 && errno != EAGAIN)
            break; /* the server has closed on us */
        uv_run(&S.loop, UV_RUN_NOWAIT);
    }
    shutdown(fd, SHUT_WR);
    struct vs_net_stats st;
    bool clear = settle(fd);
    vs_net_get_stats(S.net, &st);
    VS_ASSERTF(clear, "leaked: %u connections, %u requests (%u held)", st.conns_open,
               st.reqs_in_use, S.nheld);
    VS_ASSERT(S.nfree == 2 * POOL);
    close(fd);
    free(stream);
    return 0;
}
