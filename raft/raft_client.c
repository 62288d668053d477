/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_client.c -- the client library of the metadata service (vs_raft.h).
 *
 * NOTES
 *
 * Connections. The client talks to one member at a time, the "target": the
 * leader once it knows it, otherwise the members in turn. It keeps two
 * connections to the target: `bulk` for reads, writes and watches, and
 * `light` for lease keepalives only, so a backlog of bulk traffic (a big
 * range answer, many queued writes) never delays a keepalive -- the
 * keepalive neither waits behind bulk bytes in a socket nor behind a log
 * write on the leader (keepalives do not touch the log).
 *
 * Following the leader. A "not leader" reply carries the leader's address:
 * the client retargets and re-sends the op (it never reached a log). When
 * the target changes, the old connections drain: replies to what was sent on
 * them are still taken, new ops go to the new target; after DRAIN_MS they
 * close.
 *
 * Retries (the contract in vs_raft.h): an op is re-sent after a lost
 * connection when it is idempotent, or when it was never sent; a write lost
 * in flight completes with VS_EINDOUBT. Every send gets a fresh request id,
 * so a late reply to an earlier attempt is ignored, never delivered twice.
 *
 * Watches resume after a reconnect from the revision after the last one the
 * caller was given (the server also sends progress frames for quiet watches,
 * so the resume point stays recent).
 *
 * Invariants: (1) an op's callback runs exactly once, from the loop; (2) an
 * op is in exactly one list: `queue` (to send), `sent` (on a connection) or
 * none (done); (3) a watch delivers revisions in increasing order and each
 * revision once.
 */
#include "raft_cl.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CL_TICK_MS 100 /* deadlines, keepers, draining; retries use kick_timer */
#define DRAIN_MS 5000
#define RETRY_AGAIN_MS 20

static void cl_frame(struct raft_conn *c, uint16_t type, const uint8_t *p, size_t len);
static void cl_connected(struct raft_conn *c, int status);
static void cl_closed(struct raft_conn *c);
static const struct raft_conn_ops cl_ops = {cl_frame, cl_connected, cl_closed};
static void kick(struct meta_client *c);
static void finish_close(struct meta_client *c);

uint64_t cl_now(struct meta_client *c)
{
    return uv_now(c->loop);
}

/* ---- lists ------------------------------------------------------------------------ */

static void op_link(struct cl_op **head, struct cl_op *o)
{
    o->prev = NULL;
    o->next = *head;
    if (*head)
        (*head)->prev = o;
    *head = o;
}

static void op_unlink(struct cl_op **head, struct cl_op *o)
{
    if (o->next)
        o->next->prev = o->prev;
    if (o->prev)
        o->prev->next = o->next;
    else
        *head = o->next;
    o->next = o->prev = NULL;
}

/* Appends at the tail: the queue is sent in order. */
static void queue_push(struct meta_client *c, struct cl_op *o)
{
    o->next = NULL;
    o->prev = c->queue_tail;
    if (c->queue_tail)
        c->queue_tail->next = o;
    else
        c->queue = o;
    c->queue_tail = o;
    o->where = OP_QUEUED;
}

static void queue_remove(struct meta_client *c, struct cl_op *o)
{
    if (o->next)
        o->next->prev = o->prev;
    else
        c->queue_tail = o->prev;
    if (o->prev)
        o->prev->next = o->next;
    else
        c->queue = o->next;
    o->next = o->prev = NULL;
}

static void op_detach(struct meta_client *c, struct cl_op *o)
{
    if (o->where == OP_QUEUED)
        queue_remove(c, o);
    else if (o->where == OP_SENT)
        op_unlink(&c->sent, o);
    o->where = OP_NOWHERE;
}

/* ---- completing ops --------------------------------------------------------------- */

static void op_free(struct cl_op *o)
{
    raft__buf_free(&o->body);
    free(o);
}

/* Runs the op's callback with a reply body (status 0) or an error. */
static void op_complete(struct meta_client *c, struct cl_op *o, int status, const uint8_t *body,
                        size_t len)
{
    op_detach(c, o);
    if (o->fixed)
        raft__conn_close(&o->fixed->c); /* a one-off connection: done with it */
    if (o->done_fn) {
        o->done_fn(c, o, status, body, len);
    } else if (o->txn_cb || o->range_cb) {
        struct vs_meta_txn_result res = {0};
        void *arena = NULL;
        if (status == 0 && raft__txn_result_decode(body, len, &res, &arena) < 0)
            status = -EPROTO;
        if (o->txn_cb)
            o->txn_cb(o->ctx, status, status == 0 ? &res : NULL);
        else
            o->range_cb(o->ctx, status, status == 0 && res.n_ops ? &res.ops[0] : NULL,
                        res.revision);
        free(arena);
    } else if (o->lease_cb) {
        uint64_t a = 0, b = 0;
        if (status == 0 && len >= 8)
            a = vs_get_u64(body);
        if (status == 0 && len >= 16)
            b = vs_get_u64(body + 8);
        /* grant: id, ttl; keepalive/ttl: remaining, ttl; revoke: revision */
        if (o->op == RO_LEASE_GRANT)
            o->lease_cb(o->ctx, status, a, b);
        else
            o->lease_cb(o->ctx, status, o->lease_id, a);
    } else if (o->status_cb) {
        struct vs_raft_status st;
        if (status == 0 && raft__status_decode(body, len, &st) < 0)
            status = -EPROTO;
        o->status_cb(o->ctx, status, status == 0 ? &st : NULL);
    }
    op_free(o);
}

/* ---- connections ------------------------------------------------------------------- */

static struct cl_conn *conn_open(struct meta_client *c, const char *address, bool light)
{
    struct cl_conn *cc = calloc(1, sizeof(*cc));
    if (!cc)
        return NULL;
    cc->client = c;
    cc->light = light;
    cc->c.owner = cc;
    cc->c.frame_max = c->frame_max;
    snprintf(cc->address, sizeof(cc->address), "%s", address);
    snprintf(cc->c.name, sizeof(cc->c.name), "meta %s%.40s", light ? "light " : "", address);
    cc->opened_ms = cl_now(c);
    cc->next = c->conns;
    c->conns = cc;
    if (raft__conn_connect(&cc->c, c->loop, address, &cl_ops, &c->flusher) < 0) {
        c->conns = cc->next;
        free(cc);
        return NULL;
    }
    return cc;
}

static void send_hello(struct meta_client *c, struct cl_conn *cc)
{
    size_t off = raft__conn_frame_begin(&cc->c, RF_HELLO);
    raft__buf_u16(&cc->c.out, 1);
    raft__buf_u8(&cc->c.out, 2); /* client */
    raft__buf_u8(&cc->c.out, 0);
    raft__buf_u64(&cc->c.out, c->cluster_id);
    raft__buf_u64(&cc->c.out, 0);
    raft__buf_u32(&cc->c.out, 0);
    raft__conn_frame_end(&cc->c, off);
}

static void cl_connected(struct raft_conn *rc, int status)
{
    struct cl_conn *cc = rc->owner;
    (void)status;
    send_hello(cc->client, cc);
    /* now, not with the next kick(): that may be the tick, up to 100 ms away */
    raft__flusher_run(&cc->client->flusher);
}

/* The target moved: drain the current connections, open new ones lazily. */
static void retarget(struct meta_client *c, const char *address)
{
    if (address && address[0] && strcmp(address, c->target) == 0)
        return;
    if (address && address[0]) {
        snprintf(c->target, sizeof(c->target), "%s", address);
    } else {
        c->member_next = (c->member_next + 1) % c->n_members;
        snprintf(c->target, sizeof(c->target), "%s", c->members[c->member_next]);
    }
    for (int i = 0; i < 2; i++) {
        struct cl_conn *cc = i ? c->light : c->bulk;
        if (cc)
            cc->draining = true;
    }
    c->bulk = c->light = NULL;
    c->target_changed_ms = cl_now(c);
}

static struct cl_conn *target_conn(struct meta_client *c, bool light)
{
    struct cl_conn **slot = light ? &c->light : &c->bulk;
    if (!*slot && !c->closing && cl_now(c) >= c->reconnect_at_ms) {
        *slot = conn_open(c, c->target, light);
        VS_TRACE("meta", "connecting to %s (%s): %s", c->target, light ? "light" : "bulk",
                 *slot ? "started" : "failed");
    }
    return *slot;
}

static void send_op(struct meta_client *c, struct cl_conn *cc, struct cl_op *o)
{
    queue_remove(c, o);
    o->req_id = ++c->next_req_id;
    o->conn = cc;
    o->sent_once = true;
    size_t off = raft__conn_frame_begin(&cc->c, RF_REQ);
    raft__req_header(&cc->c.out, o->req_id, o->op, o->flags);
    raft__buf_bytes(&cc->c.out, o->body.p, o->body.len);
    raft__conn_frame_end(&cc->c, off);
    op_link(&c->sent, o);
    o->where = OP_SENT;
}

static void kick_timer_cb(uv_timer_t *t)
{
    kick(t->data);
}

/* Makes kick() run at `at` (loop time), for a delayed retry or reconnect. */
static void kick_at(struct meta_client *c, uint64_t at)
{
    if (c->closing)
        return;
    uint64_t now = cl_now(c);
    uint64_t due = uv_timer_get_due_in(&c->kick_timer);
    uint64_t delay = at > now ? at - now : 0;
    if (!uv_is_active((uv_handle_t *)&c->kick_timer) || delay < due)
        uv_timer_start(&c->kick_timer, kick_timer_cb, delay, 0);
}

/* Sends every queued op whose connection is ready. */
static void kick(struct meta_client *c)
{
    uint64_t now = cl_now(c);
    struct cl_op *o = c->queue;
    while (o) {
        struct cl_op *next = o->next;
        if (o->not_before_ms <= now) {
            struct cl_conn *cc = o->fixed ? o->fixed : target_conn(c, o->light);
            if (cc && cc->ready)
                send_op(c, cc, o);
        }
        o = next;
    }
    raft__flusher_run(&c->flusher);
}

/* A connection ended: requeue or fail what was in flight on it. */
static void conn_lost(struct meta_client *c, struct cl_conn *cc)
{
    struct cl_op *o = c->sent;
    while (o) {
        struct cl_op *next = o->next;
        if (o->conn == cc) {
            op_unlink(&c->sent, o);
            o->where = OP_NOWHERE;
            o->conn = NULL;
            if (o->fixed == cc) {
                o->fixed = NULL;
                op_complete(c, o, VS_EUNAVAILABLE, NULL, 0);
            }
            else if (o->idempotent)
                queue_push(c, o);
            else
                op_complete(c, o, VS_EINDOUBT, NULL, 0);
        }
        o = next;
    }
    cl_watches_lost(c, cc);
    kick_at(c, cl_now(c));
}

static void cl_closed(struct raft_conn *rc)
{
    struct cl_conn *cc = rc->owner;
    struct meta_client *c = cc->client;
    struct cl_conn **pp = &c->conns;
    while (*pp && *pp != cc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = cc->next;
    bool current = cc == c->bulk || cc == c->light;
    VS_TRACE("meta", "%s: closed (%s, ready %d)", cc->c.name, current ? "current" : "old",
             cc->ready);
    for (struct cl_op *o = c->queue; o;) {
        struct cl_op *next = o->next;
        if (o->fixed == cc) {
            o->fixed = NULL; /* the connection is gone: do not close it again */
            op_complete(c, o, VS_EUNAVAILABLE, NULL, 0);
        }
        o = next;
    }
    if (cc == c->bulk)
        c->bulk = NULL;
    if (cc == c->light)
        c->light = NULL;
    conn_lost(c, cc);
    if (current && !c->closing) {
        /* The target is down or refused us: try the next member shortly. */
        c->reconnect_at_ms = cl_now(c) + c->backoff_ms;
        kick_at(c, c->reconnect_at_ms);
        c->backoff_ms = VS_MIN(c->backoff_ms * 2, 1000u);
        if (!cc->ready || cl_now(c) - cc->opened_ms < 1000)
            retarget(c, NULL);
    }
    free(cc);
    if (c->closing)
        finish_close(c);
}

static void set_state(struct meta_client *c, enum vs_meta_service_state st)
{
    if (c->state == st)
        return;
    c->state = st;
    if (st == VS_META_SERVICE_DOWN)
        VS_DEBUG_LOG("meta", "metadata service unreachable (last leader reply %" PRIu64
                             " ms ago)",
                     cl_now(c) - c->last_ok_ms);
    if (c->opts.state_cb)
        c->opts.state_cb(c->opts.state_ctx, st);
}

static void handle_hello_ack(struct meta_client *c, struct cl_conn *cc, const uint8_t *p,
                             size_t len)
{
    struct vs_cursor cur = vs_cursor_make((void *)p, len);
    int status = (int32_t)vs_rd_u32(&cur);
    uint64_t cluster = vs_rd_u64(&cur);
    VS_TRACE("meta", "%s: handshake %d", cc->c.name, status);
    if (!cur.ok || status != 0 || (c->cluster_id && cluster && cluster != c->cluster_id)) {
        VS_WARN("meta", "%s refused the connection: %s", cc->address,
                cur.ok ? vs_strerror(status ? status : VS_EWRONGCLUSTER) : "malformed");
        raft__conn_close(&cc->c);
        return;
    }
    if (!c->cluster_id)
        c->cluster_id = cluster;
    cc->ready = true;
    c->backoff_ms = 50;
    if (!cc->light && !cc->fixed_only)
        cl_watches_resume(c, cc);
    kick(c);
}

/* Errors after which the op may be sent again (it reached no log). */
static bool retryable(int status)
{
    return status == VS_ENOTLEADER || status == -EAGAIN || status == VS_EUNAVAILABLE ||
           status == VS_ESHUTDOWN;
}

static void handle_resp(struct meta_client *c, struct cl_conn *cc, const uint8_t *p, size_t len)
{
    struct raft_resp r;
    if (raft__resp_decode(p, len, &r) < 0) {
        raft__conn_close(&cc->c);
        return;
    }
    struct cl_op *o = c->sent;
    while (o && o->req_id != r.id)
        o = o->next;
    if (!o)
        return; /* the answer to an earlier attempt, or to a cancelled op */
    if (retryable(r.status) && !o->fixed) {
        op_unlink(&c->sent, o);
        o->where = OP_NOWHERE;
        o->conn = NULL;
        char hint[VS_RAFT_ADDRESS_MAX + 1] = "";
        if (r.leader_len && r.leader_id)
            snprintf(hint, sizeof(hint), "%.*s", (int)r.leader_len, r.leader);
        if (r.status == VS_ENOTLEADER && (cc == c->bulk || cc == c->light))
            retarget(c, hint);
        o->not_before_ms = cl_now(c) + (hint[0] ? 0 : RETRY_AGAIN_MS);
        queue_push(c, o);
        kick_at(c, o->not_before_ms);
        return;
    }
    c->last_ok_ms = cl_now(c);
    if (!cc->fixed_only) {
        set_state(c, VS_META_SERVICE_UP);
        snprintf(c->leader, sizeof(c->leader), "%s", cc->address);
    }
    op_complete(c, o, r.status, r.body, r.body_len);
}

static void cl_frame(struct raft_conn *rc, uint16_t type, const uint8_t *p, size_t len)
{
    struct cl_conn *cc = rc->owner;
    struct meta_client *c = cc->client;
    if (!cc->ready && type == RF_HELLO_ACK)
        handle_hello_ack(c, cc, p, len);
    else if (cc->ready && type == RF_RESP)
        handle_resp(c, cc, p, len);
    else if (cc->ready && (type == RF_WATCH || type == RF_WATCH_END))
        cl_watch_frame(c, cc, type, p, len);
    else
        raft__conn_close(rc);
}

/* ---- the tick -------------------------------------------------------------------- */

static void expire_ops(struct meta_client *c, struct cl_op **head, uint64_t now)
{
    struct cl_op *o = *head;
    while (o) {
        struct cl_op *next = o->next;
        if (o->deadline_ms && o->deadline_ms <= now)
            op_complete(c, o, o->where == OP_SENT && !o->idempotent ? VS_EINDOUBT
                                                                    : VS_EUNAVAILABLE,
                        NULL, 0);
        o = next;
    }
}

static void probe_cb(void *ctx, int status, const struct vs_raft_status *st)
{
    struct meta_client *c = ctx;
    (void)status;
    (void)st;
    c->probing = false;
}

/* Keepers and watches are long-lived demand with little traffic: a lease
 * keepalive goes out every third of its TTL, and an idle watch receives
 * nothing. Without traffic, no answer for down_after_ms would read as an
 * outage, so an idle client asks the leader for its status at half that
 * interval (an answer refreshes last_ok_ms like any other). */
static void probe_if_idle(struct meta_client *c, uint64_t now)
{
    if (c->probing || c->queue || c->sent || c->state != VS_META_SERVICE_UP ||
        now - c->last_ok_ms <= c->opts.down_after_ms / 2)
        return;
    if (vs_meta_status((struct vs_meta_client *)c, NULL, probe_cb, c) == 0)
        c->probing = true;
}

/* The target answered nothing for down_after_ms although we asked (probes,
 * keepalives): a member cut off the network neither answers nor closes its
 * connections, so waiting for a close would keep the client -- and every
 * lease it keeps alive -- on it until TCP gives up, many minutes later. Try
 * the next member; a follower's "not leader" reply points to the leader. The
 * silent connections close at once: what was sent on them is re-sent (if
 * idempotent) or fails in doubt, as after any lost connection. */
static void leave_silent_target(struct meta_client *c)
{
    struct cl_conn *old[2] = {c->bulk, c->light};
    if (!old[0] && !old[1])
        return; /* not connected: the reconnect path already moves on */
    VS_DEBUG_LOG("meta", "%s answered nothing for %" PRIu64 " ms: trying another member",
                 c->target, cl_now(c) - c->last_ok_ms);
    retarget(c, NULL);
    for (int i = 0; i < 2; i++)
        if (old[i])
            raft__conn_close(&old[i]->c);
}

static void tick_cb(uv_timer_t *t)
{
    struct meta_client *c = t->data;
    uint64_t now = cl_now(c);
    expire_ops(c, &c->queue, now);
    expire_ops(c, &c->sent, now);
    for (struct cl_conn *cc = c->conns; cc; cc = cc->next) {
        bool busy = false;
        for (struct cl_op *o = c->sent; o && !busy; o = o->next)
            busy = o->conn == cc;
        if (cc->draining && (!busy || now - c->target_changed_ms > DRAIN_MS))
            raft__conn_close(&cc->c);
        else if (!cc->ready && now - cc->opened_ms > c->opts.connect_timeout_ms)
            raft__conn_close(&cc->c); /* connect or handshake hangs */
    }
    bool demand = c->queue || c->sent || c->keepers || c->watches;
    if (demand && !c->closing)
        probe_if_idle(c, now);
    if (demand && c->state != VS_META_SERVICE_DOWN && now - c->last_ok_ms > c->opts.down_after_ms)
        set_state(c, VS_META_SERVICE_DOWN);
    if (demand && !c->closing && now - c->last_ok_ms > c->opts.down_after_ms &&
        now - c->target_changed_ms > c->opts.down_after_ms)
        leave_silent_target(c);
    cl_keepers_tick(c);
    kick(c);
}

/* ---- create and close -------------------------------------------------------------- */

int vs_meta_client_create(uv_loop_t *loop, const struct vs_meta_client_opts *opts,
                          struct vs_meta_client **out)
{
    if (!opts->n_members || opts->n_members > VS_RAFT_MEMBERS_MAX * 4)
        return -EINVAL;
    struct meta_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    c->opts = *opts;
    if (!c->opts.op_timeout_ms && !opts->op_timeout_ms)
        c->opts.op_timeout_ms = 0; /* forever, as asked */
    c->opts.down_after_ms = opts->down_after_ms ? opts->down_after_ms : 2000;
    c->opts.connect_timeout_ms = opts->connect_timeout_ms ? opts->connect_timeout_ms : 1000;
    c->frame_max = opts->frame_max_bytes ? opts->frame_max_bytes : (64u << 20);
    c->n_members = opts->n_members;
    for (unsigned i = 0; i < opts->n_members; i++) {
        struct sockaddr_storage sa;
        if (raft__parse_address(opts->members[i], &sa) < 0 ||
            strlen(opts->members[i]) > VS_RAFT_ADDRESS_MAX) {
            free(c);
            return -EINVAL;
        }
        snprintf(c->members[i], sizeof(c->members[i]), "%s", opts->members[i]);
    }
    snprintf(c->target, sizeof(c->target), "%s", c->members[0]);
    c->backoff_ms = 50;
    c->state = VS_META_SERVICE_UP; /* until proven otherwise */
    c->last_ok_ms = uv_now(loop);
    uv_timer_init(loop, &c->tick);
    c->tick.data = c;
    uv_timer_start(&c->tick, tick_cb, CL_TICK_MS, CL_TICK_MS);
    uv_prepare_init(loop, &c->prepare);
    c->prepare.data = c;
    uv_timer_init(loop, &c->kick_timer);
    c->kick_timer.data = c;
    *out = (struct vs_meta_client *)c;
    return 0;
}

static void handle_closed_cb(uv_handle_t *h)
{
    struct meta_client *c = h->data;
    c->handles_closing--;
    finish_close(c);
}

static void finish_close(struct meta_client *c)
{
    if (c->conns || c->handles_closing || !c->closing || c->finished)
        return;
    c->finished = true;
    void (*cb)(void *) = c->close_cb;
    void *ctx = c->close_ctx;
    free(c);
    if (cb)
        cb(ctx);
}

void vs_meta_client_close(struct vs_meta_client *vc, void (*cb)(void *ctx), void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    VS_ASSERT(!c->closing);
    c->closing = true;
    c->close_cb = cb;
    c->close_ctx = ctx;
    while (c->queue)
        op_complete(c, c->queue, -ECANCELED, NULL, 0);
    while (c->sent)
        op_complete(c, c->sent, -ECANCELED, NULL, 0);
    cl_keepers_close(c);
    cl_watches_close(c);
    for (struct cl_conn *cc = c->conns; cc; cc = cc->next)
        raft__conn_close(&cc->c);
    c->handles_closing = 3;
    uv_close((uv_handle_t *)&c->kick_timer, handle_closed_cb);
    uv_close((uv_handle_t *)&c->tick, handle_closed_cb);
    uv_close((uv_handle_t *)&c->prepare, handle_closed_cb);
}

enum vs_meta_service_state vs_meta_client_state(const struct vs_meta_client *vc)
{
    return ((const struct meta_client *)vc)->state;
}

const char *vs_meta_client_leader(const struct vs_meta_client *vc)
{
    return ((const struct meta_client *)vc)->leader;
}

/* ---- submitting ops ------------------------------------------------------------------ */

struct cl_op *cl_op_new(struct meta_client *c, uint8_t op, bool idempotent)
{
    if (c->closing)
        return NULL;
    struct cl_op *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
    o->op = op;
    o->idempotent = idempotent;
    raft__buf_init(&o->body);
    if (c->opts.op_timeout_ms)
        o->deadline_ms = cl_now(c) + c->opts.op_timeout_ms;
    return o;
}

/* Queues an op built with cl_op_new; it is sent from the loop, so the
 * callback can never run before the caller returns. */
int cl_op_submit(struct meta_client *c, struct cl_op *o)
{
    if (o->body.oom) {
        op_free(o);
        return -ENOMEM;
    }
    queue_push(c, o);
    uv_prepare_start(&c->prepare, cl_prepare_cb);
    return 0;
}

void cl_prepare_cb(uv_prepare_t *h)
{
    struct meta_client *c = h->data;
    uv_prepare_stop(h);
    if (!c->closing)
        kick(c);
}

void cl_op_cancel(struct meta_client *c, struct cl_op *o)
{
    op_detach(c, o);
    op_free(o);
}

struct cl_conn *cl_fixed_conn(struct meta_client *c, const char *address)
{
    struct cl_conn *cc = conn_open(c, address, false);
    if (cc)
        cc->fixed_only = true;
    return cc;
}
