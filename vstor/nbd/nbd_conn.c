/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_conn.c -- one connection's transmission phase: parse requests, run them
 * on the backend, send replies.
 *
 * NOTES
 * (1) Request headers are parsed from the connection's receive buffer; a
 *     WRITE's payload is copied from it when it arrived with the header, and
 *     otherwise read by the socket straight into the request's buffer
 *     (alloc_cb hands out that buffer: no copy for large writes).
 * (2) Every request header is judged by vs_nbd_request_check() before
 *     anything else happens (nbd_proto.h). A refused WRITE's payload is read
 *     and discarded (RX_SKIP) so the stream stays in step.
 * (3) A request takes a slot, and a READ or WRITE a pool buffer, before its
 *     header is consumed; when either is missing the connection stops
 *     reading (backpressure) and resumes from the attend hooks when a slot or
 *     buffer is released. Buffer waiters are served in FIFO order across
 *     connections, so a large request is not starved by small ones.
 * (4) Replies are queued in completion order (replies may be out of order,
 *     proto.md "Transmission") and written by the attend hooks (nbd_server.c
 *     NOTES 3) with as few writev calls as the socket allows (uv_try_write);
 *     when the socket is full, the head reply goes out through uv_write and
 *     the rest follow from its callback. A READ's buffer is released only
 *     once its reply is sent.
 * (5) FLUSH ordering: a reply is queued only after the backend completed the
 *     request, so every write a client has seen acknowledged is complete in
 *     the backend before any later FLUSH is submitted -- which is what the
 *     backend's flush contract needs (nbd_backend.h).
 */
#include "nbd_server_priv.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

/* ---- Slots -------------------------------------------------------------- */

void nbd__conn_enter_transmission(struct nbd_conn *c, const struct vs_nbd_session *s)
{
    struct vs_nbd_server *srv = c->srv;
    c->sess = *s;
    c->nslots = srv->iodepth;
    c->slots = calloc(c->nslots, sizeof(*c->slots));
    c->priv_area = srv->priv_stride ? aligned_alloc(16, c->nslots * srv->priv_stride) : NULL;
    if (!c->slots || (srv->priv_stride && !c->priv_area)) {
        nbd__conn_close(c, "out of memory for request slots");
        return;
    }
    for (unsigned i = c->nslots; i-- > 0;) {
        struct nbd_req *req = &c->slots[i];
        req->conn = c;
        req->io.priv = srv->priv_stride ? (char *)c->priv_area + i * srv->priv_stride : NULL;
        req->next = c->free_slots;
        c->free_slots = req;
    }
    c->state = CONN_TRANSMISSION;
    c->rx = RX_HDR;
    VS_INFO("nbd", "conn %llu (%s): transmission, flags 0x%x, %s replies",
            (unsigned long long)c->id, c->peer, s->tx_flags,
            s->structured ? "structured" : "simple");
}

static void req_release(struct nbd_req *req)
{
    struct nbd_conn *c = req->conn;
    VS_ASSERT(req->state != REQ_FREE);
    if (req->buf) {
        vs_nbd_buf_put(c->srv->pool, req->buf);
        req->buf = NULL;
    }
    req->state = REQ_FREE;
    req->next = c->free_slots;
    c->free_slots = req;
    VS_ASSERT(c->busy > 0);
    c->busy--;
    if (c->blocked == BLOCK_SLOT || c->state == CONN_DRAINING)
        nbd__conn_mark_dirty(c);
}

/* ---- Replies ------------------------------------------------------------ */

static void reply_structured(struct nbd_req *req)
{
    uint64_t cookie = req->r.cookie;
    if (req->nbd_err) {
        /* NBD_REPLY_TYPE_ERROR: error, message length 0 */
        vs_nbd_put_chunk_hdr(req->hdr, VS_NBD_REPLY_FLAG_DONE, VS_NBD_REPLY_TYPE_ERROR, cookie, 6);
        vs_nbd_put_be32(req->hdr + VS_NBD_CHUNK_HDR_SIZE, req->nbd_err);
        vs_nbd_put_be16(req->hdr + VS_NBD_CHUNK_HDR_SIZE + 4, 0);
        req->hdr_len = VS_NBD_CHUNK_HDR_SIZE + 6;
    } else if (req->r.length == 0) {
        /* OFFSET_DATA needs at least one byte: an empty read is just "done" */
        vs_nbd_put_chunk_hdr(req->hdr, VS_NBD_REPLY_FLAG_DONE, VS_NBD_REPLY_TYPE_NONE, cookie, 0);
        req->hdr_len = VS_NBD_CHUNK_HDR_SIZE;
    } else {
        /* One data chunk covers the whole read, so NBD_CMD_FLAG_DF holds too. */
        vs_nbd_put_chunk_hdr(req->hdr, VS_NBD_REPLY_FLAG_DONE, VS_NBD_REPLY_TYPE_OFFSET_DATA,
                             cookie, 8 + req->r.length);
        vs_nbd_put_be64(req->hdr + VS_NBD_CHUNK_HDR_SIZE, req->r.offset);
        req->hdr_len = VS_NBD_CHUNK_HDR_SIZE + 8;
        req->data_len = req->r.length;
    }
}

/* Builds the reply for req (its nbd_err is set) and queues it. */
static void req_reply(struct nbd_req *req)
{
    struct nbd_conn *c = req->conn;
    bool is_read = req->r.type == VS_NBD_CMD_READ;
    req->data_len = 0;
    if (c->sess.structured && (is_read || req->nbd_err)) {
        reply_structured(req);
    } else {
        vs_nbd_put_simple_reply(req->hdr, req->nbd_err, req->r.cookie);
        req->hdr_len = VS_NBD_SIMPLE_REPLY_SIZE;
        if (is_read && !req->nbd_err)
            req->data_len = req->r.length;
    }
    if (req->data_len == 0 && req->buf) {
        vs_nbd_buf_put(c->srv->pool, req->buf); /* not needed any more */
        req->buf = NULL;
    }
    req->state = REQ_OUTQ;
    req->next = NULL;
    if (c->out_tail)
        c->out_tail->next = req;
    else
        c->out_head = req;
    c->out_tail = req;
    nbd__conn_mark_dirty(c);
}

static void req_complete(struct nbd_req *req, int res)
{
    struct nbd_conn *c = req->conn;
    if (req->r.type == VS_NBD_CMD_WRITE && req->buf) {
        vs_nbd_buf_put(c->srv->pool, req->buf); /* the data is in the backend */
        req->buf = NULL;
    }
    if (c->state == CONN_CLOSING) {
        req_release(req);
        return;
    }
    if (res < 0)
        VS_WARN("nbd", "conn %llu: %s offset %llu length %u: %s", (unsigned long long)c->id,
                vs_nbd_cmd_name(req->r.type), (unsigned long long)req->r.offset, req->r.length,
                vs_strerror(res));
    req->nbd_err = vs_nbd_errno_to_wire(res);
    req_reply(req);
}

static void req_io_cb(struct vs_nbd_io *io, int res)
{
    struct nbd_req *req = VS_CONTAINER_OF(io, struct nbd_req, io);
    struct nbd_conn *c = req->conn;
    VS_ASSERT(req->state == REQ_BACKEND);
    VS_ASSERT(c->srv->inflight > 0);
    c->srv->inflight--;
    req_complete(req, res);
    nbd__conn_maybe_free(c); /* the last backend op of a closed connection */
}

/* ---- Running a request -------------------------------------------------- */

static uint32_t io_flags(const struct vs_nbd_request *r)
{
    uint32_t f = 0;
    if (r->flags & VS_NBD_CMD_FLAG_FUA)
        f |= VS_NBD_IO_FUA;
    if (r->flags & VS_NBD_CMD_FLAG_NO_HOLE)
        f |= VS_NBD_IO_NO_HOLE;
    if (r->flags & VS_NBD_CMD_FLAG_FAST_ZERO)
        f |= VS_NBD_IO_FAST_ZERO;
    return f;
}

static void req_submit(struct nbd_req *req)
{
    struct vs_nbd_backend *be = req->conn->srv->be;
    const struct vs_nbd_backend_ops *ops = be->ops;
    struct vs_nbd_io *io = &req->io;
    io->offset = req->r.offset;
    io->length = req->r.length;
    io->flags = io_flags(&req->r);
    io->buf = req->buf;
    io->cb = req_io_cb;
    if (req->r.length == 0 && req->r.type != VS_NBD_CMD_FLUSH) {
        req->state = REQ_BACKEND;
        req_complete(req, 0); /* "SHOULD NOT" by the client; harmless to accept */
        return;
    }
    int (*op)(struct vs_nbd_backend *, struct vs_nbd_io *) = NULL;
    switch (req->r.type) {
    case VS_NBD_CMD_READ:
        op = ops->read;
        break;
    case VS_NBD_CMD_WRITE:
        op = ops->write;
        break;
    case VS_NBD_CMD_FLUSH:
        op = ops->flush;
        break;
    case VS_NBD_CMD_TRIM:
        op = ops->trim;
        break;
    case VS_NBD_CMD_WRITE_ZEROES:
        op = ops->write_zeroes;
        break;
    }
    VS_ASSERTF(op != NULL, "type=%u", req->r.type); /* vs_nbd_request_check refused others */
    req->state = REQ_BACKEND;
    req->conn->srv->inflight++;
    int rc = op(be, io);
    if (rc < 0) {
        req->conn->srv->inflight--;
        req_complete(req, rc); /* B9: no callback will come */
    }
}

/* ---- Receiving ---------------------------------------------------------- */

static void bufwait_push(struct nbd_conn *c)
{
    struct vs_nbd_server *srv = c->srv;
    if (c->bufwait)
        return;
    c->bufwait = true;
    c->bufwait_next = NULL;
    if (srv->bufwait_tail)
        srv->bufwait_tail->bufwait_next = c;
    else
        srv->bufwait_head = c;
    srv->bufwait_tail = c;
}

/* A buffer for c, honouring the FIFO of waiting connections (NOTES 3). */
static uint8_t *buf_get(struct nbd_conn *c, uint32_t len)
{
    struct vs_nbd_server *srv = c->srv;
    if (srv->bufwait_head && srv->bufwait_head != c)
        return NULL;
    return vs_nbd_buf_get(srv->pool, len);
}

/* Parses the header at rpos. Returns false when parsing must stop. */
static bool rx_header(struct nbd_conn *c)
{
    struct vs_nbd_request r;
    uint32_t payload;
    if (vs_nbd_request_decode(c->rbuf + c->rpos, &r) != 0) {
        c->srv->stats.protocol_errors++;
        nbd__conn_close(c, "protocol error: bad request magic");
        return false;
    }
    int verdict = vs_nbd_request_check(&c->sess, &r, &payload);
    if (verdict < 0) {
        c->srv->stats.protocol_errors++;
        nbd__conn_close(c, "protocol error: WRITE payload larger than 32 MiB");
        return false;
    }
    if (r.type == VS_NBD_CMD_DISC) {
        c->rpos += VS_NBD_REQUEST_SIZE;
        nbd__conn_begin_drain(c, "client sent NBD_CMD_DISC");
        return false;
    }
    struct nbd_req *req = c->free_slots;
    if (!req) {
        c->blocked = BLOCK_SLOT;
        return false;
    }
    uint8_t *buf = NULL;
    bool has_data = r.type == VS_NBD_CMD_READ || r.type == VS_NBD_CMD_WRITE;
    if (verdict == 0 && has_data && r.length > 0) {
        buf = buf_get(c, r.length);
        if (!buf) {
            c->blocked = BLOCK_BUF;
            bufwait_push(c);
            return false;
        }
    }
    c->rpos += VS_NBD_REQUEST_SIZE;
    c->free_slots = req->next;
    c->busy++;
    c->requests++;
    c->srv->stats.requests++;
    req->r = r;
    req->buf = buf;
    req->nbd_err = (uint32_t)verdict;
    if (verdict > 0) {
        VS_DEBUG_LOG("nbd", "conn %llu: %s refused with error %d", (unsigned long long)c->id,
                     vs_nbd_cmd_name(r.type), verdict);
        if (payload > 0) {
            c->rx = RX_SKIP;
            c->rx_skip = payload;
        }
        req_reply(req);
    } else if (payload > 0) {
        c->rx = RX_PAYLOAD;
        c->rx_req = req;
        req->rx_got = 0;
        req->state = REQ_RX;
    } else {
        req_submit(req);
    }
    return true;
}

/* Moves buffered payload bytes into the request being received. */
static void rx_payload(struct nbd_conn *c)
{
    struct nbd_req *req = c->rx_req;
    size_t n = VS_MIN(c->rend - c->rpos, (size_t)(req->r.length - req->rx_got));
    memcpy(req->buf + req->rx_got, c->rbuf + c->rpos, n);
    c->rpos += n;
    req->rx_got += (uint32_t)n;
    if (req->rx_got == req->r.length) {
        c->rx = RX_HDR;
        c->rx_req = NULL;
        req_submit(req);
    }
}

/* n payload bytes were read by the socket straight into rx_req's buffer. */
void nbd__conn_payload_received(struct nbd_conn *c, size_t n)
{
    struct nbd_req *req = c->rx_req;
    VS_ASSERT(c->rx == RX_PAYLOAD && req != NULL);
    req->rx_got += (uint32_t)n;
    VS_ASSERT(req->rx_got <= req->r.length);
    if (req->rx_got == req->r.length) {
        c->rx = RX_HDR;
        c->rx_req = NULL;
        req_submit(req);
    }
}

/* Whether c may parse input now: in the transmission phase, or while
 * draining only to finish a WRITE payload already under way (its request
 * holds a slot, so the drain cannot end without it). */
static bool rx_allowed(const struct nbd_conn *c)
{
    if (c->blocked != BLOCK_NONE)
        return false;
    return c->state == CONN_TRANSMISSION || (c->state == CONN_DRAINING && c->rx == RX_PAYLOAD);
}

void nbd__conn_rx_process(struct nbd_conn *c)
{
    while (rx_allowed(c)) {
        size_t avail = c->rend - c->rpos;
        if (c->rx == RX_SKIP) {
            if (avail == 0)
                break;
            size_t n = VS_MIN(avail, (size_t)c->rx_skip);
            c->rpos += n;
            c->rx_skip -= (uint32_t)n;
            if (c->rx_skip == 0)
                c->rx = RX_HDR;
        } else if (c->rx == RX_PAYLOAD) {
            if (avail == 0)
                break;
            rx_payload(c);
        } else if (avail < VS_NBD_REQUEST_SIZE || !rx_header(c)) {
            break;
        }
    }
    nbd__conn_update_reading(c);
}

bool nbd__conn_wants_input(const struct nbd_conn *c)
{
    return rx_allowed(c);
}

/* ---- Sending ------------------------------------------------------------ */

static size_t req_wire_len(const struct nbd_req *req)
{
    return req->hdr_len + (size_t)req->data_len;
}

/* Up to two buffers for the unsent part of req (skip bytes already sent). */
static unsigned req_bufs(struct nbd_req *req, size_t skip, uv_buf_t *bufs)
{
    unsigned n = 0;
    if (skip < req->hdr_len) {
        bufs[n++] = uv_buf_init((char *)req->hdr + skip, (unsigned)(req->hdr_len - skip));
        skip = 0;
    } else {
        skip -= req->hdr_len;
    }
    if (req->data_len > skip)
        bufs[n++] = uv_buf_init((char *)req->buf + skip, (unsigned)(req->data_len - skip));
    return n;
}

/* Marks `n` bytes of the queue as sent, releasing completed replies. */
static void out_advance(struct nbd_conn *c, size_t n)
{
    while (n > 0) {
        struct nbd_req *req = c->out_head;
        VS_ASSERT(req != NULL);
        size_t left = req_wire_len(req) - c->out_sent;
        if (n < left) {
            c->out_sent += n;
            return;
        }
        n -= left;
        c->out_sent = 0;
        c->out_head = req->next;
        if (!c->out_head)
            c->out_tail = NULL;
        req_release(req);
        c->srv->spin_conn = c; /* a reply went out (nbd_server.c NOTES 4) */
    }
}

static void write_cb(uv_write_t *w, int status)
{
    struct nbd_conn *c = w->data;
    struct nbd_req *req = c->out_head;
    VS_ASSERT(c->writing && req != NULL && req->state == REQ_WRITING);
    c->writing = false;
    c->out_head = req->next;
    if (!c->out_head)
        c->out_tail = NULL;
    c->out_sent = 0;
    req_release(req);
    if (c->state == CONN_CLOSING)
        return; /* conn_close already released the rest */
    if (status < 0) {
        nbd__conn_close(c, uv_strerror(status));
        return;
    }
    nbd__conn_mark_dirty(c);
}

/* The socket is full: send the head reply through libuv's queue. */
static void write_head(struct nbd_conn *c)
{
    uv_buf_t bufs[2];
    struct nbd_req *req = c->out_head;
    unsigned n = req_bufs(req, c->out_sent, bufs);
    VS_ASSERT(n > 0);
    req->state = REQ_WRITING;
    c->writing = true;
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, &c->h.stream, bufs, n, write_cb);
    if (rc < 0) {
        c->writing = false;
        req->state = REQ_OUTQ;
        nbd__conn_close(c, uv_strerror(rc));
    }
}

void nbd__conn_flush(struct nbd_conn *c)
{
    while (c->out_head && !c->writing && c->state != CONN_CLOSING) {
        uv_buf_t bufs[NBD_IOV_MAX];
        unsigned n = 0;
        size_t offered = 0, skip = c->out_sent;
        for (struct nbd_req *r = c->out_head; r && n + 2 <= NBD_IOV_MAX; r = r->next) {
            offered += req_wire_len(r) - skip;
            n += req_bufs(r, skip, bufs + n);
            skip = 0;
        }
        int w = uv_try_write(&c->h.stream, bufs, n);
        if (w == UV_EAGAIN || w == UV_ENOSYS)
            w = 0;
        if (w < 0) {
            nbd__conn_close(c, uv_strerror(w));
            return;
        }
        out_advance(c, (size_t)w);
        if ((size_t)w < offered) {
            write_head(c);
            return;
        }
    }
}

void nbd__conn_begin_drain(struct nbd_conn *c, const char *why)
{
    if (c->state != CONN_TRANSMISSION)
        return;
    VS_INFO("nbd", "conn %llu (%s): %s; finishing %u requests", (unsigned long long)c->id, c->peer,
            why, c->busy);
    c->state = CONN_DRAINING;
    nbd__conn_update_reading(c);
    nbd__conn_mark_dirty(c);
}

/* ---- Buffer waiters ----------------------------------------------------- */

/* Runs waiting connections in FIFO order until one is still short. */
void nbd__wake_bufwaiters(struct vs_nbd_server *srv)
{
    while (srv->bufwait_head) {
        struct nbd_conn *c = srv->bufwait_head;
        if (c->state != CONN_TRANSMISSION) {
            c->blocked = BLOCK_NONE; /* closing or draining: nothing to wait for */
        } else {
            c->blocked = BLOCK_NONE;
            nbd__conn_rx_process(c); /* may block on the buffer again */
            if (c->blocked == BLOCK_BUF)
                return; /* still at the head: served first next time */
            nbd__conn_mark_dirty(c);
        }
        srv->bufwait_head = c->bufwait_next;
        if (!srv->bufwait_head)
            srv->bufwait_tail = NULL;
        c->bufwait = false;
    }
}
