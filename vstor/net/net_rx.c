/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_rx.c -- the receiving half of the messenger: frame parsing, payload
 * placement, and dispatch of requests to handlers and replies to ops.
 *
 * Design notes:
 *  (1) Two kinds of reads. Headers and small payloads are read into the
 *      connection's buffer (many frames per read) and copied out; a payload
 *      segment of at least a quarter of that buffer is read straight into
 *      its destination -- the op's reply buffer or the handler's request
 *      buffer -- once the buffer holds no unparsed byte (libuv asks
 *      alloc_cb for a buffer before each read, so the choice is per read).
 *      Around big payloads (data of a quarter of the buffer or more), the
 *      reads stop exactly at the payload: after a frame with big data the
 *      next read asks for one header only, and a big frame's meta is read
 *      straight into its destination. A stream of 128 KiB writes then costs
 *      the same two reads per frame (its header, its payload), and no byte
 *      of the payload is copied; the first read of a stream would otherwise
 *      carry up to a buffer's worth of the payload, copied out.
 *  (2) Every header is decoded and validated (net_proto.h) before any of
 *      its lengths is used; a reply is also checked against its request
 *      and against the room the op gave for it. Any violation closes this
 *      connection with VS_EPROTO and touches nothing else.
 *  (3) Backpressure. A request needs a vs_net_req from the pool; when the
 *      pool is empty, or this connection already holds conn_req_max of
 *      them, parsing stops at that header and reading stops. The
 *      connection waits on net->waiters until a request is freed; the
 *      prepare hook then resumes it. TCP flow control does the rest.
 *  (4) After every dispatch the connection may have been failed or closed
 *      by a callback: the parse loop re-checks the state before each step.
 */
#include "net_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

enum { RX_GO = 0, RX_PAUSE = 1, RX_FAILED = -1 };

/* A refused connection reads nothing more: only our refusal is left to send. */
static bool rx_live(const struct vs_net_conn *conn)
{
    return (conn->state == CONN_HANDSHAKE || conn->state == CONN_READY) &&
           !conn->close_after_flush;
}

static int proto_fail(struct vs_net_conn *conn, const char *what)
{
    conn->net->stats.proto_errors++;
    net__conn_fail(conn, VS_EPROTO, "malformed frame: %s", what);
    return RX_FAILED;
}

/* ---- Frame start ------------------------------------------------------------ */

static int start_reply(struct vs_net_conn *conn, const struct vs_net_hdr *h)
{
    struct net_rx *rx = &conn->rx;
    uint64_t slot = h->id & NET_SLOT_MASK;
    struct vs_net_op *op = slot < conn->nslots ? conn->slots[slot] : NULL;
    char err[200];
    if (!op || op->req.id != h->id) {
        snprintf(err, sizeof(err), "%s reply to unknown request id %" PRIu64,
                 vs_net_op_name(h->opcode), h->id);
        return proto_fail(conn, err);
    }
    if (vs_net_reply_check(&op->req, h, err, sizeof(err)) != 0)
        return proto_fail(conn, err);
    if (h->meta_len > op->reply_meta_cap || h->data_len > op->reply_data_cap) {
        snprintf(err, sizeof(err), "%s reply of %u+%u bytes, room for %u+%u",
                 vs_net_op_name(h->opcode), h->meta_len, h->data_len, op->reply_meta_cap,
                 op->reply_data_cap);
        return proto_fail(conn, err);
    }
    rx->op = op;
    return RX_GO;
}

static void pause_conn(struct vs_net_conn *conn)
{
    struct vs_net *net = conn->net;
    conn->rx.paused = true;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    if (!conn->in_wait) {
        conn->in_wait = true;
        conn->wait_next = net->waiters;
        net->waiters = conn;
    }
}

/* Takes a request from the pool and asks the handler where the payload goes. */
static int start_request(struct vs_net_conn *conn, const struct vs_net_hdr *h)
{
    struct vs_net *net = conn->net;
    struct net_rx *rx = &conn->rx;
    if (conn->state == CONN_HANDSHAKE) {
        if (conn->outgoing || h->opcode != VS_NET_OP_HELLO) {
            char err[80];
            snprintf(err, sizeof(err), "%s request before the handshake",
                     vs_net_op_name(h->opcode));
            return proto_fail(conn, err);
        }
        return RX_GO; /* HELLO has no payload; frame_done answers it */
    }
    if (h->opcode == VS_NET_OP_HELLO)
        return proto_fail(conn, "HELLO after the handshake");
    struct vs_net_req *req = net__req_get(net, conn, h->opcode);
    if (!req) {
        pause_conn(conn); /* design note 3 */
        return RX_PAUSE;
    }
    req->hdr = *h;
    rx->req = req;
    rx->skip_rc = 0;
    const struct net_handler *hd = &net->handlers[h->opcode];
    if (!hd->set) {
        rx->skip_rc = -EOPNOTSUPP;
    } else if (h->meta_len || h->data_len) {
        int rc = hd->h.buffers ? hd->h.buffers(req, hd->ctx) : -EOPNOTSUPP;
        if (rc < 0) {
            rx->skip_rc = rc;
        } else {
            req->owned = true;
            VS_ASSERTF(!h->meta_len || req->meta, "%s handler gave no meta buffer",
                       vs_net_op_name(h->opcode));
            VS_ASSERTF(!h->data_len || req->data, "%s handler gave no data buffer",
                       vs_net_op_name(h->opcode));
        }
    }
    return RX_GO;
}

static int frame_start(struct vs_net_conn *conn, const uint8_t *bytes)
{
    struct net_rx *rx = &conn->rx;
    char err[200];
    if (vs_net_hdr_decode(bytes, &conn->net->cfg.limits, &rx->hdr, err, sizeof(err)) != 0)
        return proto_fail(conn, err); /* design note 2 */
    VS_TRACE(conn->net->log_name, "conn %s: %s %s id %" PRIu64 ", %u+%u bytes", conn->addr_str,
             vs_net_op_name(rx->hdr.opcode), rx->hdr.flags & VS_NET_F_REPLY ? "reply" : "request",
             rx->hdr.id, rx->hdr.meta_len, rx->hdr.data_len);
    if (rx->hdr.flags & VS_NET_F_REPLY)
        return start_reply(conn, &rx->hdr);
    return start_request(conn, &rx->hdr);
}

/* ---- Frame end -------------------------------------------------------------- */

static void reply_done(struct vs_net_conn *conn, struct vs_net_op *op)
{
    op->reply = conn->rx.hdr;
    op->replied = true;
    if (op->sent_ms > conn->acked_ms)
        conn->acked_ms = op->sent_ms; /* read leases: vs_net_conn_acked_ms */
    conn->slots[op->slot] = NULL;
    conn->free_slots[conn->nfree++] = op->slot;
    if (op == &conn->hello_op)
        net__conn_hello_reply(conn);
    if (op->sent)
        net__op_complete(op, op->reply.rep.retval);
    net__conn_fill_slots(conn);
}

static void request_done(struct vs_net_conn *conn, struct vs_net_req *req, int skip_rc)
{
    if (skip_rc) {
        vs_net_reply_err(req, skip_rc);
        return;
    }
    const struct net_handler *hd = &conn->net->handlers[req->hdr.opcode];
    req->owned = true;
    hd->h.recv(req, hd->ctx);
}

static void frame_done(struct vs_net_conn *conn)
{
    struct net_rx *rx = &conn->rx;
    struct vs_net_op *op = rx->op;
    struct vs_net_req *req = rx->req;
    int skip_rc = rx->skip_rc;
    rx->state = RX_HDR;
    rx->op = NULL;
    rx->req = NULL;
    rx->dst = NULL;
    rx->skip_rc = 0;
    conn->net->stats.frames_in++;
    if (op)
        reply_done(conn, op);
    else if (req)
        request_done(conn, req, skip_rc);
    else
        net__conn_hello_req(conn, &rx->hdr);
}

/* Moves to the next payload segment, or finishes the frame. */
static void next_segment(struct vs_net_conn *conn)
{
    struct net_rx *rx = &conn->rx;
    const struct vs_net_hdr *h = &rx->hdr;
    bool skip = rx->req && rx->skip_rc;
    if (rx->state == RX_HDR && h->meta_len) {
        rx->state = RX_META;
        rx->left = h->meta_len;
        rx->dst = skip ? NULL : rx->op ? rx->op->reply_meta : rx->req->meta;
        return;
    }
    if (rx->state != RX_DATA && h->data_len) {
        rx->state = RX_DATA;
        rx->left = h->data_len;
        rx->dst = skip ? NULL : rx->op ? rx->op->reply_data : rx->req->data;
        return;
    }
    frame_done(conn);
}

/* ---- The parse loop ----------------------------------------------------------- */

static void rx_process(struct vs_net_conn *conn)
{
    struct net_rx *rx = &conn->rx;
    while (rx_live(conn) && !rx->paused) { /* design note 4 */
        uint32_t avail = rx->end - rx->pos;
        if (rx->state == RX_HDR) {
            if (avail < VS_NET_HDR_SIZE)
                return;
            if (frame_start(conn, rx->buf + rx->pos) != RX_GO)
                return;
            rx->big = rx->hdr.data_len >= rx->size / 4;
            rx->pos += VS_NET_HDR_SIZE;
            next_segment(conn);
            continue;
        }
        if (avail == 0)
            return;
        uint32_t n = VS_MIN(avail, rx->left);
        if (rx->dst) {
            memcpy(rx->dst, rx->buf + rx->pos, n);
            rx->dst += n;
            conn->net->stats.payload_copied += n;
        }
        rx->pos += n;
        rx->left -= n;
        if (rx->left == 0)
            next_segment(conn);
    }
}

void net__rx_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct vs_net_conn *conn = h->data;
    struct net_rx *rx = &conn->rx;
    (void)suggested;
    if (rx->state != RX_HDR && rx->dst && rx->pos == rx->end &&
        (rx->left >= rx->size / 4 || rx->big)) {
        buf->base = (char *)rx->dst; /* design note 1 */
        buf->len = rx->left;
        return;
    }
    if (rx->state == RX_HDR && rx->big && rx->end - rx->pos < VS_NET_HDR_SIZE) {
        if (rx->pos == rx->end) {
            rx->pos = rx->end = 0;
        } else if (rx->pos + VS_NET_HDR_SIZE > rx->size) {
            memmove(rx->buf, rx->buf + rx->pos, rx->end - rx->pos);
            rx->end -= rx->pos;
            rx->pos = 0;
        }
        buf->base = (char *)rx->buf + rx->end; /* design note 1: one header only */
        buf->len = VS_NET_HDR_SIZE - (rx->end - rx->pos);
        return;
    }
    if (rx->pos == rx->end) {
        rx->pos = rx->end = 0;
    } else if (rx->pos > 0 && rx->size - rx->end < rx->size / 4) {
        memmove(rx->buf, rx->buf + rx->pos, rx->end - rx->pos);
        rx->end -= rx->pos;
        rx->pos = 0;
    }
    buf->base = (char *)rx->buf + rx->end;
    buf->len = rx->size - rx->end;
}

void net__rx_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct vs_net_conn *conn = s->data;
    struct net_rx *rx = &conn->rx;
    if (nread == 0 || !rx_live(conn))
        return;
    if (nread < 0) {
        if (nread == UV_EOF)
            net__conn_fail(conn, -ECONNRESET, "closed by the peer");
        else
            net__conn_fail(conn, (int)nread, "read: %s", uv_strerror((int)nread));
        return;
    }
    conn->net->stats.read_calls++;
    conn->net->stats.bytes_in += (uint64_t)nread;
    conn->last_recv_ms = uv_now(conn->net->loop);
    /* The loop's time was taken before this turn's callbacks: bytes read now
     * may have arrived since. A lease granted on them counts from now. */
    conn->recv_fresh_ms = uv_hrtime() / 1000000;
    if ((uint8_t *)buf->base == rx->dst) {
        VS_ASSERT((size_t)nread <= rx->left);
        rx->dst += nread;
        rx->left -= (uint32_t)nread;
        if (rx->left == 0)
            next_segment(conn);
    } else {
        VS_ASSERT((uint8_t *)buf->base == rx->buf + rx->end && rx->end + nread <= rx->size);
        rx->end += (uint32_t)nread;
    }
    rx_process(conn);
}

void net__rx_resume(struct vs_net_conn *conn)
{
    if (!rx_live(conn) || !conn->rx.paused)
        return;
    conn->rx.paused = false;
    rx_process(conn);
    if (rx_live(conn) && !conn->rx.paused) {
        int rc = uv_read_start((uv_stream_t *)&conn->tcp, net__rx_alloc_cb, net__rx_read_cb);
        if (rc < 0)
            net__conn_fail(conn, rc, "read: %s", uv_strerror(rc));
    }
}
