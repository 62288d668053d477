/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_conn.c -- connection lifecycle: connect and accept, the HELLO
 * handshake, keepalive, failure, reconnect with back-off, close and free.
 * The state diagram and its invariants are in net_int.h.
 *
 * Design notes:
 *  (1) One way down. Every failure -- a refused connect, a timeout, a
 *      malformed frame, a local close -- goes through net__conn_fail(), which
 *      records and logs why, stops the timer and closes the TCP handle. The
 *      line is written before the close, so a peer (or a test) that sees the
 *      close finds it in the log. Ops are failed and DOWN is reported only in
 *      the handle's close callback, when libuv no longer references any of
 *      our buffers.
 *  (2) One timer per connection, whose meaning follows the state: the
 *      back-off delay in IDLE, the connect+handshake deadline in CONNECTING
 *      and HANDSHAKE, the keepalive tick in READY.
 *  (3) Keepalive: after ping_interval_ms without a byte from the peer, send a
 *      PING; when a PING is outstanding and nothing at all has arrived for
 *      ping_timeout_ms, the peer is dead. Any byte counts as life, so a peer
 *      busy sending a large reply is never declared dead. The other way
 *      round, a peer that stops reading (our queue has not moved for
 *      ping_timeout_ms) is dead too: it would hold our requests and buffers
 *      for ever while its pings kept it looking alive.
 *  (4) A HELLO frame always carries protocol version 1 in its header, so
 *      every future version can read it and refuse with a clear reason.
 *  (5) Lease renewal (cfg.lease_renew_ms): an outgoing connection whose
 *      newest answered request was sent lease_renew_ms ago gets a PING too,
 *      whatever else it carries, so that vs_net_conn_acked_ms stays fresh
 *      on a quiet connection (the OSD's read lease, vstor/osd/osd_lease.h).
 *      The keepalive tick is at most a quarter of it.
 */
#include "net_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BIT(s) (1u << (s))
static const unsigned conn_edges[] = {
    [CONN_IDLE] = BIT(CONN_CONNECTING) | BIT(CONN_CLOSED),
    [CONN_CONNECTING] = BIT(CONN_HANDSHAKE) | BIT(CONN_DRAINING),
    [CONN_HANDSHAKE] = BIT(CONN_READY) | BIT(CONN_DRAINING),
    [CONN_READY] = BIT(CONN_DRAINING),
    [CONN_DRAINING] = BIT(CONN_IDLE) | BIT(CONN_CLOSED),
    [CONN_CLOSED] = 0,
};
static const char *const conn_state_names[] = {
    "IDLE", "CONNECTING", "HANDSHAKE", "READY", "DRAINING", "CLOSED",
};

static bool conn_invariants(const struct vs_net_conn *c)
{
    bool tcp = c->state >= CONN_CONNECTING && c->state <= CONN_DRAINING;
    if (tcp != c->tcp_open) /* invariant 1 */
        return false;
    if (c->state != CONN_HANDSHAKE && c->state != CONN_READY && c->state != CONN_DRAINING) {
        if (c->nfree != c->nslots || c->txq_head) /* invariant 2 */
            return false;
    }
    return c->nfree <= c->nslots;
}

static void conn_move(struct vs_net_conn *conn, enum conn_state to)
{
    VS_ASSERTF(conn_edges[conn->state] & BIT(to), "conn %s: %s -> %s", conn->addr_str,
               conn_state_names[conn->state], conn_state_names[to]);
    VS_TRACE(conn->net->log_name, "conn %s: %s -> %s", conn->addr_str,
             conn_state_names[conn->state], conn_state_names[to]);
    conn->state = to;
    VS_ASSERTF(conn_invariants(conn), "conn %s in %s: tcp_open %d, %u/%u slots free, queue %p",
               conn->addr_str, conn_state_names[to], conn->tcp_open, conn->nfree, conn->nslots,
               (void *)conn->txq_head);
}

void net__format_addr(const struct sockaddr_storage *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof(ip));
        snprintf(buf, size, "[%s]:%u", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof(ip));
        snprintf(buf, size, "%s:%u", ip, ntohs(a->sin_port));
    }
}

static void noop_cb(struct vs_net_op *op, int rc)
{
    (void)op;
    (void)rc;
}

static void ping_cb(struct vs_net_op *op, int rc)
{
    (void)rc;
    struct vs_net_conn *conn = op->ctx;
    conn->ping_busy = false;
}

static void timer_cb(uv_timer_t *t);

struct vs_net_conn *net__conn_new(struct vs_net *net, bool outgoing)
{
    struct vs_net_conn *conn = calloc(1, sizeof(*conn));
    uint32_t nslots = net->cfg.conn_op_max;
    if (!conn)
        return NULL;
    conn->rx.buf = malloc(net->cfg.read_buf_size);
    conn->slots = calloc(nslots, sizeof(*conn->slots));
    conn->free_slots = calloc(nslots, sizeof(*conn->free_slots));
    if (!conn->rx.buf || !conn->slots || !conn->free_slots) {
        free(conn->rx.buf);
        free(conn->slots);
        free(conn->free_slots);
        free(conn);
        return NULL;
    }
    conn->net = net;
    conn->outgoing = outgoing;
    conn->visible = outgoing;
    conn->state = outgoing ? CONN_IDLE : CONN_CONNECTING;
    conn->rx.size = net->cfg.read_buf_size;
    conn->nslots = conn->nfree = nslots;
    for (uint32_t i = 0; i < nslots; i++)
        conn->free_slots[i] = nslots - 1 - i;
    conn->proto_version = VS_NET_PROTO_MIN;
    conn->backoff_ms = net->cfg.reconnect_min_ms;
    snprintf(conn->addr_str, sizeof(conn->addr_str), "?");
    conn->hello_op.cb = noop_cb;
    conn->hello_op.ctx = conn;
    conn->ping_op.cb = ping_cb;
    conn->ping_op.ctx = conn;
    VS_ASSERT(uv_timer_init(net->loop, &conn->timer) == 0);
    conn->timer.data = conn;
    conn->timer_open = true;
    conn->next = net->conns;
    if (net->conns)
        net->conns->prev = conn;
    net->conns = conn;
    net->stats.conns_open++;
    if (!outgoing)
        net->incoming++;
    return conn;
}

static void unlink_lists(struct vs_net_conn *conn)
{
    struct vs_net *net = conn->net;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        net->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    for (struct vs_net_conn **p = &net->dirty; *p; p = &(*p)->dirty_next) {
        if (*p == conn) {
            *p = conn->dirty_next;
            break;
        }
    }
    for (struct vs_net_conn **p = &net->waiters; *p; p = &(*p)->wait_next) {
        if (*p == conn) {
            *p = conn->wait_next;
            break;
        }
    }
}

/* Frees conn once it is closed, reported and no request points to it
 * (invariant 4). */
static void conn_maybe_free(struct vs_net_conn *conn)
{
    if (conn->state != CONN_CLOSED || !conn->closed_reported || conn->refs > 0)
        return;
    VS_ASSERT(!conn->tcp_open && !conn->timer_open && conn->reqs_held == 0);
    struct vs_net *net = conn->net;
    unlink_lists(conn);
    net->stats.conns_open--;
    if (!conn->outgoing)
        net->incoming--;
    free(conn->rx.buf);
    free(conn->slots);
    free(conn->free_slots);
    free(conn);
    net__maybe_finish(net);
}

void net__conn_unref(struct vs_net_conn *conn)
{
    VS_ASSERT(conn->refs > 0);
    conn->refs--;
    conn_maybe_free(conn);
}

static void timer_close_cb(uv_handle_t *h)
{
    struct vs_net_conn *conn = h->data;
    conn->timer_open = false;
    conn->closed_reported = true;
    if (conn->visible)
        net__emit(conn, VS_NET_EV_CLOSED, 0);
    conn_maybe_free(conn);
}

/* CLOSED: close the timer; the CLOSED event follows from its callback. */
static void conn_finalize(struct vs_net_conn *conn)
{
    VS_ASSERT(conn->state == CONN_CLOSED);
    if (uv_is_closing((uv_handle_t *)&conn->timer))
        return;
    uv_close((uv_handle_t *)&conn->timer, timer_close_cb);
}

/* ---- Going down (design note 1) ------------------------------------------- */

static void tcp_close_cb(uv_handle_t *h);

static bool conn_can_fail(const struct vs_net_conn *conn)
{
    return conn->state == CONN_CONNECTING || conn->state == CONN_HANDSHAKE ||
           conn->state == CONN_READY;
}

static void log_down(struct vs_net_conn *conn, bool was_up)
{
    const char *dir = conn->outgoing ? "to" : "from";
    const char *name = conn->net->log_name;
    int rc = conn->closing ? -ECANCELED : conn->down_rc;
    if (conn->closing)
        VS_DEBUG_LOG(name, "connection %s %s closed", dir, conn->addr_str);
    else if (rc == VS_EPROTO || rc == VS_EWRONGCLUSTER || rc == -EPROTONOSUPPORT)
        VS_ERROR(name, "connection %s %s: %s", dir, conn->addr_str, conn->errmsg);
    else if (was_up && conn->outgoing)
        VS_WARN(name, "connection to %s lost: %s", conn->addr_str, conn->errmsg);
    else if (was_up) /* a client going away is routine; a timeout is worth a line */
        VS_LOG(rc == -ECONNRESET ? VS_LOG_DEBUG : VS_LOG_INFO, name,
               "connection from %s ended: %s", conn->addr_str, conn->errmsg);
    else
        VS_DEBUG_LOG(name, "connection %s %s failed: %s", dir, conn->addr_str, conn->errmsg);
}

void net__conn_fail_keepmsg(struct vs_net_conn *conn, int rc)
{
    if (!conn_can_fail(conn))
        return;
    VS_ASSERT(rc < 0);
    conn->down_rc = rc;
    log_down(conn, conn->was_up); /* before the close: the peer sees the line first */
    uv_timer_stop(&conn->timer);
    uv_read_stop((uv_stream_t *)&conn->tcp);
    conn_move(conn, CONN_DRAINING);
    uv_close((uv_handle_t *)&conn->tcp, tcp_close_cb);
}

void net__conn_fail(struct vs_net_conn *conn, int rc, const char *fmt, ...)
{
    if (!conn_can_fail(conn))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(conn->errmsg, sizeof(conn->errmsg), fmt, ap);
    va_end(ap);
    net__conn_fail_keepmsg(conn, rc);
}

static void rx_reset(struct vs_net_conn *conn)
{
    struct net_rx *rx = &conn->rx;
    struct vs_net_req *req = rx->req;
    rx->pos = rx->end = 0;
    rx->state = RX_HDR;
    rx->dst = NULL;
    rx->left = 0;
    rx->op = NULL;
    rx->req = NULL;
    rx->skip_rc = 0;
    rx->paused = false;
    if (req) {
        req->state = REQ_DROPPED;
        net__req_finish(req, -ECONNRESET);
    }
}

static void tcp_close_cb(uv_handle_t *h)
{
    struct vs_net_conn *conn = h->data;
    struct vs_net *net = conn->net;
    bool was_up = conn->was_up;
    if (conn->local && !was_up && conn->outgoing)
        conn->local_failed = true; /* net_local.c, design note 3 */
    conn->tcp_open = false;
    conn->was_up = false;
    conn->ping_busy = false;
    conn->close_after_flush = false;
    conn->proto_version = VS_NET_PROTO_MIN;
    if (was_up)
        net->stats.conns_down++;
    rx_reset(conn);
    net__ops_fail_all(conn); /* invariant 3; callbacks may send or close */
    int rc = conn->closing ? -ECANCELED : conn->down_rc;
    if (conn->outgoing && !conn->closing) {
        uint32_t delay = was_up ? net->cfg.reconnect_min_ms : conn->backoff_ms;
        if (!was_up)
            conn->backoff_ms = VS_MIN(conn->backoff_ms * 2, net->cfg.reconnect_max_ms);
        conn_move(conn, CONN_IDLE);
        uv_timer_start(&conn->timer, timer_cb, delay, 0);
    } else {
        conn_move(conn, CONN_CLOSED);
    }
    if (was_up || (conn->outgoing && rc != -ECANCELED))
        net__emit(conn, VS_NET_EV_DOWN, rc);
    if (conn->state == CONN_CLOSED)
        conn_finalize(conn);
}

void vs_net_conn_close(struct vs_net_conn *conn)
{
    if (conn->closing)
        return;
    conn->closing = true;
    switch (conn->state) {
    case CONN_IDLE:
        uv_timer_stop(&conn->timer);
        net__ops_fail_all(conn); /* ops waiting for the next attempt */
        conn_move(conn, CONN_CLOSED);
        conn_finalize(conn);
        break;
    case CONN_CONNECTING:
    case CONN_HANDSHAKE:
    case CONN_READY:
        net__conn_fail(conn, -ECANCELED, "closed locally");
        break;
    case CONN_DRAINING: /* tcp_close_cb sees conn->closing */
    case CONN_CLOSED:
        break;
    }
}

/* ---- Coming up -------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status);

static void conn_connected(struct vs_net_conn *conn);

/* An attempt over the local transport: fd is already connected (net_local.c,
 * design note 3), so the handshake starts at once. */
static void conn_attempt_local(struct vs_net_conn *conn, int fd)
{
    struct vs_net *net = conn->net;
    VS_ASSERT(uv_pipe_init(net->loop, &conn->pipe, 0) == 0);
    conn->pipe.data = conn;
    conn->tcp_open = true;
    conn_move(conn, CONN_CONNECTING);
    uv_timer_start(&conn->timer, timer_cb, net->cfg.connect_timeout_ms, 0);
    int rc = uv_pipe_open(&conn->pipe, fd);
    if (rc < 0) {
        close(fd);
        net__conn_fail(conn, rc, "local socket: %s", uv_strerror(rc));
        return;
    }
    conn_connected(conn);
}

static void conn_attempt(struct vs_net_conn *conn)
{
    struct vs_net *net = conn->net;
    int fd = net__local_try(conn);
    if (fd >= 0) {
        conn_attempt_local(conn, fd);
        return;
    }
    VS_ASSERT(uv_tcp_init(net->loop, &conn->tcp) == 0);
    conn->tcp.data = conn;
    conn->tcp_open = true;
    conn_move(conn, CONN_CONNECTING);
    uv_timer_start(&conn->timer, timer_cb, net->cfg.connect_timeout_ms, 0);
    conn->connect_req.data = conn;
    int rc = uv_tcp_connect(&conn->connect_req, &conn->tcp, (struct sockaddr *)&conn->addr,
                            connect_cb);
    if (rc < 0)
        net__conn_fail(conn, rc, "connect: %s", uv_strerror(rc));
}

static void conn_reading(struct vs_net_conn *conn)
{
    conn->last_recv_ms = uv_now(conn->net->loop);
    if (!conn->local)
        uv_tcp_nodelay(&conn->tcp, 1);
    int rc = uv_read_start((uv_stream_t *)&conn->tcp, net__rx_alloc_cb, net__rx_read_cb);
    if (rc < 0)
        net__conn_fail(conn, rc, "read: %s", uv_strerror(rc));
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct vs_net_conn *conn = req->data;
    if (status == UV_ECANCELED || conn->state != CONN_CONNECTING)
        return;
    if (status < 0) {
        net__conn_fail(conn, status, "connect: %s", uv_strerror(status));
        return;
    }
    conn_connected(conn);
}

/* The stream is up: read, and send our HELLO. */
static void conn_connected(struct vs_net_conn *conn)
{
    conn_move(conn, CONN_HANDSHAKE);
    conn_reading(conn);
    if (conn->state != CONN_HANDSHAKE)
        return;
    struct vs_net_op *op = &conn->hello_op;
    memset(&op->req, 0, sizeof(op->req));
    op->req.opcode = VS_NET_OP_HELLO;
    op->req.req.hello = conn->net->hello;
    op->meta = op->data = NULL;
    op->reply_meta = op->reply_data = NULL;
    op->reply_meta_cap = op->reply_data_cap = 0;
    int rc = net__send_internal(conn, op);
    VS_ASSERTF(rc == 0, "HELLO must be sendable: %d", rc);
}

void net__conn_start_incoming(struct vs_net_conn *conn)
{
    int len = sizeof(conn->addr);
    if (conn->local)
        snprintf(conn->addr_str, sizeof(conn->addr_str), "local socket");
    else if (uv_tcp_getpeername(&conn->tcp, (struct sockaddr *)&conn->addr, &len) == 0)
        net__format_addr(&conn->addr, conn->addr_str, sizeof(conn->addr_str));
    conn_move(conn, CONN_HANDSHAKE);
    uv_timer_start(&conn->timer, timer_cb, conn->net->cfg.connect_timeout_ms, 0);
    conn_reading(conn);
}

static void conn_ready(struct vs_net_conn *conn, const struct vs_net_hello *peer,
                       uint16_t version)
{
    struct vs_net *net = conn->net;
    conn->peer = *peer;
    conn->proto_version = version;
    conn_move(conn, CONN_READY);
    conn->was_up = true;
    conn->visible = true;
    conn->backoff_ms = net->cfg.reconnect_min_ms;
    conn->errmsg[0] = 0;
    conn->last_recv_ms = uv_now(net->loop);
    conn->acked_ms = 0; /* a new attempt: no request of it was answered yet */
    uint32_t tick = VS_MAX(VS_MIN(net->cfg.ping_interval_ms, net->cfg.ping_timeout_ms) / 4, 5u);
    if (net->cfg.lease_renew_ms)
        tick = VS_MAX(VS_MIN(tick, net->cfg.lease_renew_ms / 4), 5u);
    uv_timer_stop(&conn->timer);
    uv_timer_start(&conn->timer, timer_cb, tick, tick);
    net->stats.conns_up++;
    if (conn->local)
        net->stats.conns_local++;
    static const char *const roles[] = {"?", "client", "osd", "mon"};
    VS_LOG(conn->outgoing ? VS_LOG_INFO : VS_LOG_DEBUG, net->log_name,
           "connection %s %s up (%s %" PRIu64 ", protocol %u%s)", conn->outgoing ? "to" : "from",
           conn->addr_str, roles[peer->role], peer->node_id, version,
           conn->local ? ", local socket" : "");
    net__conn_fill_slots(conn);
    net__emit(conn, VS_NET_EV_UP, 0);
}

/* The peer answered our HELLO (outgoing connections). */
void net__conn_hello_reply(struct vs_net_conn *conn)
{
    const struct vs_net_hdr *rep = &conn->hello_op.reply;
    char why[160];
    uint16_t version = 0;
    if (conn->state != CONN_HANDSHAKE)
        return;
    int rc = vs_net_hello_check(&conn->net->hello, &rep->rep.hello, &version, why, sizeof(why));
    if (rep->rep.retval < 0) {
        net__conn_fail(conn, rep->rep.retval, "the peer refused the handshake (%s)%s%s",
                       vs_strerror(rep->rep.retval), rc ? ": " : "",
                       rc ? why : "");
        return;
    }
    if (rc < 0) {
        net__conn_fail(conn, rc, "handshake: %s", why);
        return;
    }
    conn_ready(conn, &rep->rep.hello, version);
}

/* The peer's HELLO (incoming connections): answer it, refusing a peer of
 * another cluster or without a common protocol version. */
void net__conn_hello_req(struct vs_net_conn *conn, const struct vs_net_hdr *hdr)
{
    struct vs_net *net = conn->net;
    struct vs_net_req *req = &conn->hello_req;
    char why[160];
    uint16_t version = 0;
    VS_ASSERT(!conn->outgoing && conn->state == CONN_HANDSHAKE);
    memset(req, 0, sizeof(*req));
    req->conn = conn;
    req->hdr = *hdr;
    req->state = REQ_HANDLER;
    int rc = vs_net_hello_check(&net->hello, &hdr->req.hello, &version, why, sizeof(why));
    req->rep.retval = rc;
    req->rep.hello = net->hello;
    vs_net_reply(req);
    if (rc < 0) {
        snprintf(conn->errmsg, sizeof(conn->errmsg), "handshake refused: %s", why);
        conn->refused_rc = rc;
        conn->close_after_flush = true;
        uv_read_stop((uv_stream_t *)&conn->tcp);
        return;
    }
    conn_ready(conn, &hdr->req.hello, version);
}

/* ---- Timer (design note 2) -------------------------------------------------- */

static void keepalive_tick(struct vs_net_conn *conn)
{
    struct vs_net *net = conn->net;
    uint64_t now = uv_now(net->loop);
    if (conn->txq_head && now - conn->last_sent_ms >= net->cfg.ping_timeout_ms) {
        net->stats.ping_timeouts++;
        net__conn_fail(conn, -ETIMEDOUT, "the peer has read nothing for %" PRIu64 " ms",
                       now - conn->last_sent_ms);
        return;
    }
    if (conn->ping_busy) {
        uint64_t since = VS_MAX(conn->last_recv_ms, conn->ping_sent_ms);
        if (now - since >= net->cfg.ping_timeout_ms) {
            net->stats.ping_timeouts++;
            net__conn_fail(conn, -ETIMEDOUT, "no reply to a keepalive ping for %" PRIu64 " ms",
                           now - since);
        }
        return;
    }
    /* Design note 5: a read lease is renewed by an answered request, and a
     * connection busy with the peer's frames only is never silent. */
    bool renew = net->cfg.lease_renew_ms && conn->outgoing &&
                 now - conn->acked_ms >= net->cfg.lease_renew_ms;
    if (now - conn->last_recv_ms < net->cfg.ping_interval_ms && !renew)
        return;
    struct vs_net_op *op = &conn->ping_op;
    memset(&op->req, 0, sizeof(op->req));
    op->req.opcode = VS_NET_OP_PING;
    if (net__send_internal(conn, op) == 0) {
        conn->ping_busy = true;
        conn->ping_sent_ms = now;
    }
}

static void timer_cb(uv_timer_t *t)
{
    struct vs_net_conn *conn = t->data;
    switch (conn->state) {
    case CONN_IDLE:
        conn_attempt(conn);
        break;
    case CONN_CONNECTING:
    case CONN_HANDSHAKE:
        net__conn_fail(conn, -ETIMEDOUT, "%s timed out after %u ms",
                       conn->state == CONN_CONNECTING ? "connect" : "handshake",
                       conn->net->cfg.connect_timeout_ms);
        break;
    case CONN_READY:
        keepalive_tick(conn);
        break;
    case CONN_DRAINING:
    case CONN_CLOSED:
        break;
    }
}

/* ---- Public ----------------------------------------------------------------- */

int vs_net_connect(struct vs_net *net, const char *addr, void *user, struct vs_net_conn **out,
                   char *err, size_t err_size)
{
    struct sockaddr_storage sa;
    if (net->closing) {
        snprintf(err, err_size, "connect: the messenger is closing");
        return VS_ESHUTDOWN;
    }
    if (net__parse_addr(addr, &sa) < 0) {
        snprintf(err, err_size, "connect: '%s' is not IP:PORT or [IPv6]:PORT", addr);
        return -EINVAL;
    }
    struct vs_net_conn *conn = net__conn_new(net, true);
    if (!conn) {
        snprintf(err, err_size, "connect: out of memory");
        return -ENOMEM;
    }
    conn->addr = sa;
    conn->user = user;
    net__format_addr(&sa, conn->addr_str, sizeof(conn->addr_str));
    conn_attempt(conn);
    *out = conn;
    return 0;
}

void *vs_net_conn_user(const struct vs_net_conn *conn)
{
    return conn->user;
}

void vs_net_conn_set_user(struct vs_net_conn *conn, void *user)
{
    conn->user = user;
}

bool vs_net_conn_outgoing(const struct vs_net_conn *conn)
{
    return conn->outgoing;
}

bool vs_net_conn_is_up(const struct vs_net_conn *conn)
{
    return conn->state == CONN_READY;
}

const struct vs_net_hello *vs_net_conn_peer(const struct vs_net_conn *conn)
{
    return &conn->peer;
}

const char *vs_net_conn_addr(const struct vs_net_conn *conn)
{
    return conn->addr_str;
}

const char *vs_net_conn_errmsg(const struct vs_net_conn *conn)
{
    return conn->errmsg;
}

bool vs_net_conn_is_local(const struct vs_net_conn *conn)
{
    return conn->tcp_open && conn->local;
}

uint64_t vs_net_conn_acked_ms(const struct vs_net_conn *conn)
{
    return conn->state == CONN_READY ? conn->acked_ms : 0;
}

uint64_t vs_net_conn_recv_ms(const struct vs_net_conn *conn)
{
    return conn->recv_fresh_ms;
}
