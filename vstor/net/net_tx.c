/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_tx.c -- the sending half of the messenger: ops and their reply slots,
 * replies to served requests, and the per-connection send queue.
 *
 * Design notes:
 *  (1) Batching (STYLE B16). Sending only queues a frame and marks the
 *      connection dirty; the messenger's prepare hook flushes every dirty
 *      connection once per loop turn, each with one writev of up to
 *      TX_BATCH frames (header, meta and data of each, no copies).
 *  (2) The fast path is uv_try_write, which neither allocates nor waits.
 *      Only when the socket is full does the rest of the head frame go to
 *      uv_write (at most 3 buffers, so libuv uses its inline buffer array and
 *      allocates nothing); its callback resumes the queue.
 *  (3) An op completes when both its frame has left and its reply has come
 *      in, whichever is last: until the frame has left, libuv may still read
 *      the op's buffers.
 *  (4) Slots. An op in flight sits in slots[slot]; its id is
 *      (sequence << NET_SLOT_BITS) | slot, so a reply finds its op in O(1)
 *      and a stale or forged id never matches.
 */
#include "net_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#define TX_BATCH 64
#define TX_BATCH_BYTES (16u << 20)

bool vs_net_retryable(int rc)
{
    return rc == -ENOTCONN || rc == -ECONNRESET;
}

/* ---- Send queue ----------------------------------------------------------- */

static uint64_t tx_len(const struct vs_net_tx *tx)
{
    return VS_NET_HDR_SIZE + (uint64_t)tx->seg_len[0] + tx->seg_len[1];
}

/* Appends the unsent part of tx to bufs; returns the number of buffers. */
static unsigned tx_bufs(const struct vs_net_tx *tx, uv_buf_t *bufs, uint64_t *total)
{
    const void *base[3] = {tx->hdr, tx->seg[0], tx->seg[1]};
    uint64_t len[3] = {VS_NET_HDR_SIZE, tx->seg_len[0], tx->seg_len[1]};
    uint64_t skip = tx->sent;
    unsigned n = 0;
    for (int i = 0; i < 3; i++) {
        if (skip >= len[i]) {
            skip -= len[i];
            continue;
        }
        bufs[n].base = (char *)base[i] + skip;
        bufs[n].len = (size_t)(len[i] - skip);
        *total += len[i] - skip;
        skip = 0;
        n++;
    }
    return n;
}

void net__tx_push(struct vs_net_conn *conn, struct vs_net_tx *tx)
{
    tx->next = NULL;
    tx->sent = 0;
    if (conn->txq_tail) {
        conn->txq_tail->next = tx;
    } else {
        conn->txq_head = tx;
        conn->last_sent_ms = uv_now(conn->net->loop); /* the stall clock starts */
    }
    conn->txq_tail = tx;
    if (!conn->in_dirty) {
        conn->in_dirty = true;
        conn->dirty_next = conn->net->dirty;
        conn->net->dirty = conn;
    }
    net__kick(conn->net);
}

static void tx_done(struct vs_net_tx *tx)
{
    if (tx->kind == TX_REQ) {
        net__req_finish(VS_CONTAINER_OF(tx, struct vs_net_req, tx), 0);
        return;
    }
    struct vs_net_op *op = VS_CONTAINER_OF(tx, struct vs_net_op, tx);
    VS_ASSERT(tx->kind == TX_OP && op->state == OP_INFLIGHT);
    op->sent = true;
    if (op->replied)
        net__op_complete(op, op->reply.rep.retval); /* design note 3 */
}

/* Consumes n written bytes from the head of the queue. */
static void tx_advance(struct vs_net_conn *conn, uint64_t n)
{
    conn->net->stats.bytes_out += n;
    if (n > 0)
        conn->last_sent_ms = uv_now(conn->net->loop);
    while (n > 0) {
        struct vs_net_tx *tx = conn->txq_head;
        VS_ASSERT(tx != NULL);
        uint64_t rem = tx_len(tx) - tx->sent;
        if (n < rem) {
            tx->sent += n;
            return;
        }
        n -= rem;
        conn->txq_head = tx->next;
        if (!conn->txq_head)
            conn->txq_tail = NULL;
        tx->next = NULL;
        tx->sent = tx_len(tx);
        conn->net->stats.frames_out++;
        tx_done(tx);
    }
}

static void write_cb(uv_write_t *req, int status)
{
    struct vs_net_conn *conn = req->data;
    VS_ASSERT(conn->write_pending);
    conn->write_pending = false;
    if (status == UV_ECANCELED)
        return; /* the handle is closing: the teardown takes the queue */
    if (status < 0) {
        net__conn_fail(conn, status, "write: %s", uv_strerror(status));
        return;
    }
    tx_advance(conn, conn->write_len);
    if (conn->txq_head && !conn->in_dirty) {
        conn->in_dirty = true;
        conn->dirty_next = conn->net->dirty;
        conn->net->dirty = conn;
    }
    net__kick(conn->net);
}

/* The socket is full: hand the rest of the head frame to uv_write. */
static void start_write(struct vs_net_conn *conn)
{
    uv_buf_t bufs[3];
    uint64_t total = 0;
    unsigned n = tx_bufs(conn->txq_head, bufs, &total);
    conn->write_req.data = conn;
    conn->write_len = total;
    conn->write_pending = true;
    int rc = uv_write(&conn->write_req, (uv_stream_t *)&conn->tcp, bufs, n, write_cb);
    conn->net->stats.writev_calls++;
    if (rc < 0) {
        conn->write_pending = false;
        net__conn_fail(conn, rc, "write: %s", uv_strerror(rc));
    }
}

static bool conn_live(const struct vs_net_conn *conn)
{
    return conn->state == CONN_HANDSHAKE || conn->state == CONN_READY;
}

void net__tx_flush(struct vs_net_conn *conn)
{
    while (conn->txq_head && !conn->write_pending && conn_live(conn)) {
        uv_buf_t bufs[TX_BATCH * 3];
        unsigned n = 0;
        uint64_t total = 0;
        for (struct vs_net_tx *tx = conn->txq_head;
             tx && n + 3 <= VS_ARRAY_SIZE(bufs) && total < TX_BATCH_BYTES; tx = tx->next)
            n += tx_bufs(tx, bufs + n, &total);
        int rc = uv_try_write((uv_stream_t *)&conn->tcp, bufs, n);
        conn->net->stats.writev_calls++;
        VS_TRACE(conn->net->log_name, "conn %s: wrote %d of %" PRIu64 " bytes", conn->addr_str,
                 rc, total);
        if (rc == UV_EAGAIN)
            rc = 0;
        if (rc < 0) {
            net__conn_fail(conn, rc, "write: %s", uv_strerror(rc));
            return;
        }
        tx_advance(conn, (uint64_t)rc);
        if ((uint64_t)rc < total && conn_live(conn) && conn->txq_head) {
            start_write(conn); /* design note 2 */
            return;
        }
    }
    if (!conn->txq_head && conn->close_after_flush && conn_live(conn))
        net__conn_fail_keepmsg(conn, conn->refused_rc);
}

/* Teardown: the TCP handle is closed, so no buffer is referenced any more.
 * Requests being replied to are finished; ops are left to ops_fail_all. */
void net__tx_drop_all(struct vs_net_conn *conn)
{
    struct vs_net_tx *tx = conn->txq_head;
    conn->txq_head = conn->txq_tail = NULL;
    conn->write_pending = false;
    while (tx) {
        struct vs_net_tx *next = tx->next;
        tx->next = NULL;
        if (tx->kind == TX_REQ)
            net__req_finish(VS_CONTAINER_OF(tx, struct vs_net_req, tx), -ECONNRESET);
        tx = next;
    }
}

/* ---- Ops -------------------------------------------------------------------- */

static void list_push(struct vs_net_op **head, struct vs_net_op **tail, struct vs_net_op *op)
{
    op->next = NULL;
    if (*tail)
        (*tail)->next = op;
    else
        *head = op;
    *tail = op;
}

static struct vs_net_op *list_pop(struct vs_net_op **head, struct vs_net_op **tail)
{
    struct vs_net_op *op = *head;
    if (op) {
        *head = op->next;
        if (!*head)
            *tail = NULL;
        op->next = NULL;
    }
    return op;
}

/* Takes a free slot, numbers and encodes op, queues its frame. */
static int op_assign(struct vs_net_conn *conn, struct vs_net_op *op)
{
    VS_ASSERT(conn->nfree > 0);
    uint32_t slot = conn->free_slots[conn->nfree - 1];
    VS_ASSERT(conn->slots[slot] == NULL);
    op->req.id = (++conn->seq << NET_SLOT_BITS) | slot;
    op->req.version = conn->proto_version;
    op->req.flags = 0;
    char err[160];
    int rc = vs_net_hdr_encode(&op->req, &conn->net->cfg.limits, op->tx.hdr, err, sizeof(err));
    if (rc < 0) {
        VS_ERROR(conn->net->log_name, "refusing to send a bad %s request: %s",
                 vs_net_op_name(op->req.opcode) ?: "?", err);
        return -EINVAL;
    }
    conn->nfree--;
    conn->slots[slot] = op;
    op->slot = slot;
    op->conn = conn;
    op->state = OP_INFLIGHT;
    op->sent = false;
    op->replied = false;
    op->sent_ms = uv_now(conn->net->loop); /* before it leaves: a lease starts no later */
    op->tx.kind = TX_OP;
    op->tx.seg[0] = op->meta;
    op->tx.seg_len[0] = op->req.meta_len;
    op->tx.seg[1] = op->data;
    op->tx.seg_len[1] = op->req.data_len;
    net__tx_push(conn, &op->tx);
    return 0;
}

void net__op_assign(struct vs_net_conn *conn, struct vs_net_op *op)
{
    int rc = op_assign(conn, op);
    VS_ASSERTF(rc == 0, "op validated when queued, refused when sent");
}

void net__op_complete(struct vs_net_op *op, int rc)
{
    VS_ASSERT(op->state != OP_IDLE);
    op->state = OP_IDLE;
    op->next = NULL;
    op->cb(op, rc);
}

void net__conn_fill_slots(struct vs_net_conn *conn)
{
    if (conn->state != CONN_READY)
        return;
    while (conn->nfree > 0 && conn->wait_head)
        net__op_assign(conn, list_pop(&conn->wait_head, &conn->wait_tail));
    while (conn->nfree > 0 && conn->pending_head)
        net__op_assign(conn, list_pop(&conn->pending_head, &conn->pending_tail));
    while (conn->pending_head) {
        struct vs_net_op *op = list_pop(&conn->pending_head, &conn->pending_tail);
        op->state = OP_WAIT;
        list_push(&conn->wait_head, &conn->wait_tail, op);
    }
}

/* Sends an op of the messenger itself (HELLO, PING), allowed in HANDSHAKE. */
int net__send_internal(struct vs_net_conn *conn, struct vs_net_op *op)
{
    VS_ASSERT(op->state == OP_IDLE);
    if (!conn_live(conn))
        return -ENOTCONN;
    if (conn->nfree == 0 || conn->wait_head) {
        op->state = OP_WAIT;
        list_push(&conn->wait_head, &conn->wait_tail, op);
        return 0;
    }
    return op_assign(conn, op);
}

int vs_net_send(struct vs_net_conn *conn, struct vs_net_op *op)
{
    VS_ASSERT(op->cb != NULL);
    VS_ASSERTF(op->state == OP_IDLE, "op sent again before its callback ran");
    VS_ASSERT(!op->req.meta_len || op->meta);
    VS_ASSERT(!op->req.data_len || op->data);
    VS_ASSERT(!op->reply_meta_cap || op->reply_meta);
    VS_ASSERT(!op->reply_data_cap || op->reply_data);
    if (conn->closing || conn->state == CONN_CLOSED ||
        (!conn->outgoing && conn->state != CONN_READY))
        return -ENOTCONN;
    if (conn->state == CONN_READY && conn->nfree > 0 && !conn->wait_head)
        return op_assign(conn, op);
    /* Validate now so the caller hears of a bad request from this call. */
    char err[160];
    op->req.id = 0;
    op->req.flags = 0;
    op->req.version = VS_NET_PROTO_MIN;
    if (vs_net_hdr_encode(&op->req, &conn->net->cfg.limits, op->tx.hdr, err, sizeof(err))) {
        VS_ERROR(conn->net->log_name, "refusing to send a bad %s request: %s",
                 vs_net_op_name(op->req.opcode) ?: "?", err);
        return -EINVAL;
    }
    op->conn = conn;
    if (conn->state == CONN_READY) {
        op->state = OP_WAIT;
        list_push(&conn->wait_head, &conn->wait_tail, op);
    } else {
        op->state = OP_PENDING;
        list_push(&conn->pending_head, &conn->pending_tail, op);
    }
    return 0;
}

/* Completes every op of a connection whose TCP handle has just closed
 * (invariant 3): collect first, reset the connection, then call back, so
 * callbacks may send on the connection again. */
void net__ops_fail_all(struct vs_net_conn *conn)
{
    struct vs_net_op *done_h = NULL, *done_t = NULL;   /* replied, frame not yet marked sent */
    struct vs_net_op *unsent_h = NULL, *unsent_t = NULL;
    struct vs_net_op *sent_h = NULL, *sent_t = NULL;
    for (struct vs_net_tx *tx = conn->txq_head; tx; tx = tx->next) {
        struct vs_net_op *op = VS_CONTAINER_OF(tx, struct vs_net_op, tx);
        if (tx->kind == TX_OP && op->replied)
            list_push(&done_h, &done_t, op);
    }
    net__tx_drop_all(conn);
    for (uint32_t i = 0; i < conn->nslots; i++) {
        struct vs_net_op *op = conn->slots[i];
        if (!op)
            continue;
        conn->slots[i] = NULL;
        if (op->sent)
            list_push(&sent_h, &sent_t, op);
        else
            list_push(&unsent_h, &unsent_t, op);
    }
    for (uint32_t i = 0; i < conn->nslots; i++)
        conn->free_slots[i] = conn->nslots - 1 - i;
    conn->nfree = conn->nslots;
    struct vs_net_op *wait = conn->wait_head, *pend = conn->pending_head;
    conn->wait_head = conn->wait_tail = NULL;
    /* Ops queued before this attempt went up fail with it; ops queued by the
     * callbacks below wait for the next attempt. */
    conn->pending_head = conn->pending_tail = NULL;
    bool cancel = conn->closing;
    struct vs_net_op *op;
    while ((op = list_pop(&done_h, &done_t)))
        net__op_complete(op, op->reply.rep.retval);
    while ((op = list_pop(&sent_h, &sent_t)))
        net__op_complete(op, cancel ? -ECANCELED : -ECONNRESET);
    while ((op = list_pop(&unsent_h, &unsent_t)))
        net__op_complete(op, cancel ? -ECANCELED : -ENOTCONN);
    for (struct vs_net_op *list = wait; list;) {
        op = list;
        list = list->next;
        net__op_complete(op, cancel ? -ECANCELED : -ENOTCONN);
    }
    for (struct vs_net_op *list = pend; list;) {
        op = list;
        list = list->next;
        net__op_complete(op, cancel ? -ECANCELED : -ENOTCONN);
    }
}

/* ---- Replies ---------------------------------------------------------------- */

static int reply_encode(struct vs_net_req *req, char *err, size_t err_size)
{
    struct vs_net_hdr h;
    memset(&h, 0, sizeof(h));
    h.version = req->conn->proto_version;
    h.opcode = req->hdr.opcode;
    h.flags = VS_NET_F_REPLY;
    h.id = req->hdr.id;
    h.meta_len = req->rep_meta_len;
    h.data_len = req->rep_data_len;
    h.rep = req->rep;
    int rc = vs_net_reply_check(&req->hdr, &h, err, err_size);
    if (rc == 0)
        rc = vs_net_hdr_encode(&h, &req->conn->net->cfg.limits, req->tx.hdr, err, err_size);
    return rc;
}

void vs_net_reply(struct vs_net_req *req)
{
    VS_ASSERTF(req->state == REQ_HANDLER, "vs_net_reply twice or on a free request");
    struct vs_net_conn *conn = req->conn;
    struct vs_net *net = conn->net;
    char err[160];
    if (reply_encode(req, err, sizeof(err)) != 0) {
        VS_ERROR(net->log_name, "handler built a bad %s reply (%s); replying -EIO",
                 vs_net_op_name(req->hdr.opcode), err);
        memset(&req->rep, 0, sizeof(req->rep));
        req->rep.retval = -EIO;
        req->rep.hello = net->hello;
        req->rep_meta_len = req->rep_data_len = 0;
        int rc = reply_encode(req, err, sizeof(err));
        VS_ASSERTF(rc == 0, "an error reply must always encode: %s", err);
    }
    if (!conn_live(conn)) {
        req->state = REQ_DROPPED; /* finished from the prepare hook, never in here */
        req->next = net->dropped;
        net->dropped = req;
        net__kick(net);
        return;
    }
    req->state = REQ_SENDING;
    req->tx.kind = TX_REQ;
    req->tx.seg[0] = req->rep_meta;
    req->tx.seg_len[0] = req->rep_meta_len;
    req->tx.seg[1] = req->rep_data;
    req->tx.seg_len[1] = req->rep_data_len;
    net__tx_push(conn, &req->tx);
}

void vs_net_reply_err(struct vs_net_req *req, int rc)
{
    VS_ASSERT(rc < 0);
    memset(&req->rep, 0, sizeof(req->rep));
    req->rep.retval = rc;
    req->rep_meta = req->rep_data = NULL;
    req->rep_meta_len = req->rep_data_len = 0;
    if (req->hdr.opcode == VS_NET_OP_HELLO)
        req->rep.hello = req->conn->net->hello;
    vs_net_reply(req);
}
