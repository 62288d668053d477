/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net.c -- the messenger object: configuration, the request pool, handler
 * registration, the listener, the per-turn prepare hook, and shutdown.
 *
 * The prepare hook is where deferred work happens, once per loop turn just
 * before the loop polls: replies to dead connections are finished,
 * connections paused for want of a request are resumed, and every dirty
 * connection's send queue is flushed (net_tx.c design note 1). While such
 * work is pending an idle handle keeps the loop from blocking.
 */
#include "net_int.h"

#include "config.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PREPARE_ROUNDS 8
#define LISTEN_BACKLOG 512

void vs_net_cfg_init(struct vs_net_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->role = VS_NET_ROLE_CLIENT;
    vs_net_limits_default(&cfg->limits);
    cfg->req_pool_size = 1024;
    cfg->sec_pool_size = 1024;
    cfg->conn_req_max = 256;
    cfg->conn_op_max = 1024;
    cfg->conn_max = 4096;
    cfg->read_buf_size = 64 << 10;
    cfg->ping_interval_ms = 5000;
    cfg->ping_timeout_ms = 5000;
    cfg->connect_timeout_ms = 5000;
    cfg->reconnect_min_ms = 100;
    cfg->reconnect_max_ms = 5000;
}

void vs_net_cfg_from_config(struct vs_net_cfg *cfg, const struct vs_config *config)
{
    uint32_t payload = (uint32_t)VS_MIN(config->net_payload_max, (uint64_t)UINT32_MAX);
    cfg->limits.data_max = payload;
    cfg->limits.meta_max = payload;
    cfg->ping_interval_ms = (uint32_t)config->net_ping_interval;
    cfg->ping_timeout_ms = (uint32_t)config->net_ping_timeout;
    cfg->connect_timeout_ms = (uint32_t)config->net_connect_timeout;
    cfg->reconnect_max_ms = (uint32_t)config->net_reconnect_max;
    cfg->local_dir = config->net_local_dir;
    if (cfg->reconnect_min_ms > cfg->reconnect_max_ms)
        cfg->reconnect_min_ms = cfg->reconnect_max_ms;
}

static int check_cfg(const struct vs_net_cfg *c, char *err, size_t n)
{
    const char *bad = NULL;
    if (c->role < VS_NET_ROLE_CLIENT || c->role > VS_NET_ROLE_MON)
        bad = "role";
    else if (!c->req_pool_size || !c->sec_pool_size || !c->conn_req_max || !c->conn_max)
        bad = "req_pool_size, sec_pool_size, conn_req_max and conn_max must be > 0";
    else if (c->conn_op_max < 4 || c->conn_op_max > NET_SLOT_MASK)
        bad = "conn_op_max must be 4..2^20-1";
    else if (c->read_buf_size < 4 * VS_NET_HDR_SIZE || c->read_buf_size > (1u << 30))
        bad = "read_buf_size must be 512 bytes..1 GiB";
    else if (c->limits.data_max == 0 || c->limits.meta_max == 0)
        bad = "limits must be > 0";
    else if (c->local_dir && c->local_dir[0] && c->local_dir[0] != '/')
        bad = "local_dir (net_local_dir) must be an absolute path";
    else if (c->local_dir && strlen(c->local_dir) >= VS_NET_LOCAL_PATH_MAX - 32)
        bad = "local_dir (net_local_dir) must be shorter than 76 bytes (a unix socket path)";
    else if (c->ping_interval_ms < 10 || c->ping_timeout_ms < 10 || c->connect_timeout_ms < 10)
        bad = "timeouts must be >= 10 ms";
    else if (c->reconnect_min_ms == 0 || c->reconnect_min_ms > c->reconnect_max_ms)
        bad = "reconnect_min_ms must be 1..reconnect_max_ms";
    if (!bad)
        return 0;
    snprintf(err, n, "net config: %s", bad);
    return -EINVAL;
}

static void prepare_cb(uv_prepare_t *h);
static void idle_cb(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from blocking; prepare_cb does the work */
}

static int alloc_pools(struct vs_net *net)
{
    uint32_t sizes[NET_POOLS] = {net->cfg.req_pool_size, net->cfg.sec_pool_size};
    net->reqs = calloc((size_t)sizes[0] + sizes[1], sizeof(*net->reqs));
    if (!net->reqs)
        return -ENOMEM;
    struct vs_net_req *r = net->reqs;
    for (uint8_t p = 0; p < NET_POOLS; p++) {
        net->pools[p].size = net->pools[p].nfree = sizes[p];
        for (uint32_t i = 0; i < sizes[p]; i++, r++) {
            r->pool = p;
            r->next = net->pools[p].free;
            net->pools[p].free = r;
        }
    }
    return 0;
}

static void ping_recv(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    vs_net_reply(req); /* retval 0 */
}

int vs_net_create(uv_loop_t *loop, const struct vs_net_cfg *cfg, struct vs_net **out,
                  char *err, size_t err_size)
{
    int rc = check_cfg(cfg, err, err_size);
    if (rc < 0)
        return rc;
    struct vs_net *net = calloc(1, sizeof(*net));
    if (net)
        net->cfg = *cfg;
    if (!net || alloc_pools(net) < 0) {
        if (net)
            free(net->reqs);
        free(net);
        snprintf(err, err_size, "net: out of memory for %u requests",
                 cfg->req_pool_size + cfg->sec_pool_size);
        return -ENOMEM;
    }
    net->loop = loop;
    snprintf(net->local_dir, sizeof(net->local_dir), "%s", cfg->local_dir ? cfg->local_dir : "");
    net->cfg.local_dir = net->local_dir;
    snprintf(net->log_name, sizeof(net->log_name), "%s", cfg->log_name ? cfg->log_name : "net");
    memcpy(net->hello.cluster_id, cfg->cluster_id, VS_NET_CLUSTER_ID_SIZE);
    net->hello.proto_min = VS_NET_PROTO_MIN;
    net->hello.proto_max = VS_NET_PROTO_MAX;
    net->hello.role = cfg->role;
    net->hello.node_id = cfg->node_id;
    net->hello.features = cfg->features;
    net->hello.block_size = cfg->block_size;
    net->hello.bitmap_granularity = cfg->bitmap_granularity;
    VS_ASSERT(uv_prepare_init(loop, &net->prepare) == 0);
    VS_ASSERT(uv_idle_init(loop, &net->idle) == 0);
    net->prepare.data = net;
    net->idle.data = net;
    net->prepare_open = net->idle_open = true;
    uv_prepare_start(&net->prepare, prepare_cb);
    uv_unref((uv_handle_t *)&net->prepare);
    struct vs_net_handler ping = {.recv = ping_recv};
    vs_net_handle(net, VS_NET_OP_PING, &ping, NULL);
    *out = net;
    return 0;
}

int vs_net_handle(struct vs_net *net, uint16_t opcode, const struct vs_net_handler *h,
                  void *ctx)
{
    if (!vs_net_op_valid(opcode) || opcode == VS_NET_OP_HELLO || !h || !h->recv)
        return -EINVAL;
    if (vs_net_op_has_req_payload(opcode) && !h->buffers)
        return -EINVAL;
    net->handlers[opcode].h = *h;
    net->handlers[opcode].ctx = ctx;
    net->handlers[opcode].set = true;
    return 0;
}

/* ---- Request pool ----------------------------------------------------------- */

/* Client ops (16..31) come from one pool, everything else from the other. */
static uint8_t pool_of(uint16_t opcode)
{
    return opcode >= VS_NET_OP_READ && opcode < VS_NET_OP_SEC_READ ? NET_POOL_CLIENT
                                                                   : NET_POOL_SEC;
}

struct vs_net_req *net__req_get(struct vs_net *net, struct vs_net_conn *conn, uint16_t opcode)
{
    struct net_pool *pool = &net->pools[pool_of(opcode)];
    if (!pool->free || conn->reqs_held >= net->cfg.conn_req_max)
        return NULL;
    struct vs_net_req *req = pool->free;
    uint8_t which = req->pool;
    pool->free = req->next;
    pool->nfree--;
    VS_ASSERT(req->state == REQ_FREE);
    memset(req, 0, sizeof(*req));
    req->pool = which;
    req->conn = conn;
    req->state = REQ_HANDLER;
    conn->reqs_held++;
    conn->refs++;
    return req;
}

void net__req_finish(struct vs_net_req *req, int rc)
{
    struct vs_net_conn *conn = req->conn;
    if (req == &conn->hello_req) {
        req->state = REQ_FREE;
        return;
    }
    struct vs_net *net = conn->net;
    const struct net_handler *h = &net->handlers[req->hdr.opcode];
    if (req->owned && h->h.done)
        h->h.done(req, rc, h->ctx);
    struct net_pool *pool = &net->pools[req->pool];
    req->state = REQ_FREE;
    req->next = pool->free;
    pool->free = req;
    pool->nfree++;
    VS_ASSERT(conn->reqs_held > 0);
    conn->reqs_held--;
    net->resume = true;
    net__kick(net);
    net__conn_unref(conn);
}

/* ---- The prepare hook ------------------------------------------------------- */

void net__kick(struct vs_net *net)
{
    if (!net->idle_on && net->idle_open && !uv_is_closing((uv_handle_t *)&net->idle)) {
        net->idle_on = true;
        uv_idle_start(&net->idle, idle_cb);
    }
}

static bool finish_dropped(struct vs_net *net)
{
    struct vs_net_req *list = net->dropped;
    net->dropped = NULL;
    for (struct vs_net_req *req = list, *next; req; req = next) {
        next = req->next;
        net__req_finish(req, -ECONNRESET);
    }
    return list != NULL;
}

static bool resume_waiters(struct vs_net *net)
{
    if (!net->resume || !net->waiters)
        return false;
    net->resume = false;
    struct vs_net_conn *list = net->waiters;
    net->waiters = NULL;
    for (struct vs_net_conn *conn = list, *next; conn; conn = next) {
        next = conn->wait_next;
        conn->wait_next = NULL;
        conn->in_wait = false;
        net__rx_resume(conn); /* may add it back to net->waiters */
    }
    return true;
}

static bool flush_dirty(struct vs_net *net)
{
    struct vs_net_conn *list = net->dirty;
    net->dirty = NULL;
    for (struct vs_net_conn *conn = list, *next; conn; conn = next) {
        next = conn->dirty_next;
        conn->dirty_next = NULL;
        conn->in_dirty = false;
        net__tx_flush(conn);
    }
    return list != NULL;
}

static void prepare_cb(uv_prepare_t *h)
{
    struct vs_net *net = h->data;
    for (int round = 0; round < PREPARE_ROUNDS; round++) {
        bool work = finish_dropped(net);
        work |= resume_waiters(net);
        work |= flush_dirty(net);
        if (!work)
            break;
    }
    bool more = net->dirty || net->dropped || (net->resume && net->waiters);
    if (!more && net->idle_on) {
        net->idle_on = false;
        uv_idle_stop(&net->idle);
    }
    if (!more)
        net->resume = false;
}

/* ---- Listener --------------------------------------------------------------- */

static void handle_closed_cb(uv_handle_t *h);

static void reject_closed_cb(uv_handle_t *h)
{
    struct vs_net *net = h->data;
    net->reject_busy = false;
    net__maybe_finish(net);
}

/* Out of memory for a connection: accept it into a spare handle and close it
 * at once, since libuv stops watching a listener whose connection is left
 * unaccepted. */
static void reject_connection(struct vs_net *net, uv_stream_t *server)
{
    if (net->reject_busy)
        return; /* one at a time; the next event retries */
    if (server == (uv_stream_t *)&net->local_listener)
        VS_ASSERT(uv_pipe_init(net->loop, &net->reject_pipe, 0) == 0);
    else
        VS_ASSERT(uv_tcp_init(net->loop, &net->reject) == 0);
    net->reject.data = net;
    net->reject_busy = true;
    uv_accept(server, (uv_stream_t *)&net->reject);
    uv_close((uv_handle_t *)&net->reject, reject_closed_cb);
}

int net__parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || strlen(colon + 1) == 0 || strlen(colon + 1) > 5)
        return -EINVAL;
    size_t hlen = (size_t)(colon - s);
    bool v6 = s[0] == '[';
    if (v6) {
        if (hlen < 3 || s[hlen - 1] != ']')
            return -EINVAL;
        s++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = 0;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port > 65535 || colon[1] < '0' || colon[1] > '9')
        return -EINVAL;
    memset(out, 0, sizeof(*out));
    if (v6)
        return uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)out) ? -EINVAL : 0;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) ? -EINVAL : 0;
}

static void on_connection(uv_stream_t *server, int status)
{
    struct vs_net *net = server->data;
    if (status < 0) {
        VS_WARN(net->log_name, "accept: %s", uv_strerror(status));
        return;
    }
    struct vs_net_conn *conn = net__conn_new(net, false);
    if (!conn) {
        VS_ERROR(net->log_name, "accept: out of memory for a connection; refused");
        reject_connection(net, server);
        return;
    }
    conn->local = server == (uv_stream_t *)&net->local_listener;
    if (conn->local)
        VS_ASSERT(uv_pipe_init(net->loop, &conn->pipe, 0) == 0);
    else
        VS_ASSERT(uv_tcp_init(net->loop, &conn->tcp) == 0);
    conn->tcp.data = conn;
    conn->tcp_open = true;
    int rc = uv_accept(server, (uv_stream_t *)&conn->tcp);
    if (rc < 0) {
        net__conn_fail(conn, rc, "accept: %s", uv_strerror(rc));
        return;
    }
    net__conn_start_incoming(conn);
    if (net->closing)
        net__conn_fail(conn, VS_ESHUTDOWN, "shutting down");
    else if (net->incoming > net->cfg.conn_max)
        net__conn_fail(conn, -EMFILE, "refused: %u incoming connections already",
                       net->cfg.conn_max);
}

int vs_net_listen(struct vs_net *net, const char *addr, char *err, size_t err_size)
{
    struct sockaddr_storage sa;
    if (net->listener_open || net->closing) {
        snprintf(err, err_size, "net: already listening");
        return -EALREADY;
    }
    if (net__parse_addr(addr, &sa) < 0) {
        snprintf(err, err_size, "listen: '%s' is not IP:PORT or [IPv6]:PORT", addr);
        return -EINVAL;
    }
    VS_ASSERT(uv_tcp_init(net->loop, &net->listener) == 0);
    net->listener.data = net;
    net->listener_open = true;
    int rc = uv_tcp_bind(&net->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&net->listener, LISTEN_BACKLOG, on_connection);
    if (rc < 0) {
        snprintf(err, err_size, "listen on %s: %s", addr, uv_strerror(rc));
        uv_close((uv_handle_t *)&net->listener, handle_closed_cb); /* clears listener_open */
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&net->listener, (struct sockaddr *)&bound, &len);
    net->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                  : ((struct sockaddr_in *)&bound)->sin_port);
    net->listening = true;
    VS_INFO(net->log_name, "listening on %s (port %u)", addr, net->port);
    net__local_listen(net, &bound, on_connection);
    return 0;
}

uint16_t vs_net_listen_port(const struct vs_net *net)
{
    return net->listening ? net->port : 0;
}

/* ---- Shutdown ----------------------------------------------------------------- */

static void handle_closed_cb(uv_handle_t *h)
{
    struct vs_net *net = h->data;
    if (h == (uv_handle_t *)&net->listener)
        net->listener_open = false;
    else if (h == (uv_handle_t *)&net->prepare)
        net->prepare_open = false;
    else
        net->idle_open = false;
    net__maybe_finish(net);
}

void net__maybe_finish(struct vs_net *net)
{
    if (!net->closing || net->conns || net->listener_open || net->reject_busy || net->local_open)
        return;
    if (net->prepare_open || net->idle_open) {
        if (!uv_is_closing((uv_handle_t *)&net->prepare))
            uv_close((uv_handle_t *)&net->prepare, handle_closed_cb);
        if (!uv_is_closing((uv_handle_t *)&net->idle))
            uv_close((uv_handle_t *)&net->idle, handle_closed_cb);
        return;
    }
    for (int p = 0; p < NET_POOLS; p++)
        VS_ASSERT(net->pools[p].nfree == net->pools[p].size);
    void (*cb)(void *) = net->close_cb;
    void *ctx = net->close_ctx;
    free(net->reqs);
    free(net);
    if (cb)
        cb(ctx);
}

void vs_net_close(struct vs_net *net, void (*cb)(void *ctx), void *ctx)
{
    VS_ASSERTF(!net->closing, "vs_net_close called twice");
    net->closing = true;
    net->close_cb = cb;
    net->close_ctx = ctx;
    net->listening = false;
    if (net->listener_open && !uv_is_closing((uv_handle_t *)&net->listener))
        uv_close((uv_handle_t *)&net->listener, handle_closed_cb);
    net__local_close(net);
    for (struct vs_net_conn *conn = net->conns, *next; conn; conn = next) {
        next = conn->next;
        vs_net_conn_close(conn);
    }
    net__kick(net);
    net__maybe_finish(net);
}

void net__emit(struct vs_net_conn *conn, enum vs_net_event ev, int rc)
{
    if (conn->net->cfg.on_event)
        conn->net->cfg.on_event(conn, ev, rc, conn->net->cfg.event_ctx);
}

void vs_net_get_stats(const struct vs_net *net, struct vs_net_stats *out)
{
    *out = net->stats;
    out->reqs_in_use = 0;
    for (int p = 0; p < NET_POOLS; p++)
        out->reqs_in_use += net->pools[p].size - net->pools[p].nfree;
}
