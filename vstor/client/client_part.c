/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_part.c -- parts: the pool (allocated once at creation), sending one
 * part to its PG's primary, classifying the result (done, retry later, or
 * fail the op), the retry list (P2), and the connections to OSDs, one per OSD,
 * opened on first use with the address from osd/state/<id>.
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- The pool ------------------------------------------------------------------------ */

int client__parts_init(struct vstor_client *c)
{
    c->parts = calloc(c->opts.parts_max, sizeof(*c->parts));
    c->bitmap_scratch = malloc(CLIENT_BITMAP_SCRATCH);
    if (!c->parts || !c->bitmap_scratch)
        return -ENOMEM;
    for (uint32_t i = c->opts.parts_max; i-- > 0;) {
        c->parts[i].next = c->free_parts;
        c->free_parts = &c->parts[i];
    }
    c->parts_free = c->opts.parts_max;
    return 0;
}

void client__parts_free(struct vstor_client *c)
{
    free(c->parts);
    free(c->bitmap_scratch);
    free(c->dirty);
    free(c->dirty_buf);
    c->parts = NULL;
    c->bitmap_scratch = NULL;
    c->dirty = NULL;
    c->dirty_buf = NULL;
}

struct client_part *client__part_get(struct vstor_client *c)
{
    struct client_part *p = c->free_parts;
    if (!p)
        return NULL;
    c->free_parts = p->next;
    c->parts_free--;
    memset(p, 0, sizeof(*p));
    p->c = c;
    return p;
}

void client__part_put(struct vstor_client *c, struct client_part *p)
{
    VS_ASSERT(!p->on_wire);
    p->op = NULL;
    p->next = c->free_parts;
    c->free_parts = p;
    c->parts_free++;
}

static void list_push(struct client_part **head, struct client_part **tail, struct client_part *p)
{
    p->next = NULL;
    if (*tail)
        (*tail)->next = p;
    else
        *head = p;
    *tail = p;
}

static struct client_part *list_take(struct client_part **head, struct client_part **tail)
{
    struct client_part *all = *head;
    *head = *tail = NULL;
    return all;
}

/* ---- Results ------------------------------------------------------------------------- */

/* Transient errors (docs/data-path.md D8): the op is retried, never failed. */
bool client__retryable(int rc)
{
    switch (rc) {
    case VS_EPGINACTIVE:
    case VS_ENOTPRIMARY:
    case VS_ESTALEEPOCH:
    case VS_EUNAVAILABLE:
    case VS_ESHUTDOWN:
    case -ENOTCONN:
    case -ECONNRESET:
    case -ECONNREFUSED:
    case -ECANCELED: /* the connection was closed: the OSD vanished or moved */
    case -EPIPE:
    case -ETIMEDOUT:
    case -EAGAIN:
    case -EIO:       /* client_eio_retry: forever by default (data-path.md section 7) */
    case -ENOSPC:    /* client_retry_enospc: on by default */
        return true;
    default:
        return false;
    }
}

/* -ENOSPC on a write part: retried (Vitastor's client_retry_enospc, on by
 * default: a VM pauses rather than sees I/O errors), with a warning at most
 * every CLIENT_ENOSPC_WARN_MS while it lasts; or, with opts.fail_enospc,
 * returned to the caller. */
static bool enospc_retry(struct vstor_client *c, struct client_part *p)
{
    if (c->opts.fail_enospc)
        return false;
    uint64_t now = client__now_us();
    c->enospc_waits++;
    if (c->enospc_warned_us == 0 || now - c->enospc_warned_us >= CLIENT_ENOSPC_WARN_MS * 1000ull) {
        VS_WARN(c->log_name, "%s of inode 0x%" PRIx64 " at %" PRIu64 " to osd.%u: no space left "
                "on the OSDs; retrying until space is freed (%" PRIu64 " retries so far; "
                "client_retry_enospc false returns the error instead)",
                vs_net_op_name(p->opcode), p->inode, p->offset, p->osd, c->enospc_waits);
        c->enospc_warned_us = now;
    }
    return true;
}

static void part_finish(struct vstor_client *c, struct client_part *p, int rc)
{
    struct client_op *op = p->op;
    client__part_put(c, p);
    client__op_finish_part(c, op, rc);
    client__pump(c);
}

static void part_retry(struct vstor_client *c, struct client_part *p)
{
    list_push(&c->retry_head, &c->retry_tail, p);
}

static void part_net_cb(struct vs_net_op *nop, int rc)
{
    struct client_part *p = VS_CONTAINER_OF(nop, struct client_part, net);
    struct vstor_client *c = p->c;
    VS_ASSERT(p->on_wire);
    p->on_wire = false;
    c->parts_on_wire--;
    if (p->opcode == VS_NET_OP_WRITE || p->opcode == VS_NET_OP_DELETE)
        c->write_parts_on_wire--;
    if (p->kind == PART_SYNC) {
        client__sync_part_done(c, p, rc);
    } else if (p->kind == PART_REPLAY) {
        client__replay_part_done(c, p, rc);
    } else if (rc == 0) {
        if (p->dirty)
            client__lazy_acked(c, p);
        part_finish(c, p, 0);
    } else if (rc == -ENOSPC && c->state != CL_CLOSING && !enospc_retry(c, p)) {
        part_finish(c, p, rc);
    } else if (client__retryable(rc) && c->state != CL_CLOSING &&
               !client__op_expired(p->op, client__now_us())) {
        c->retries++;
        VS_DEBUG_LOG(c->log_name, "%s of inode 0x%" PRIx64 " at %" PRIu64 " to osd.%u: %s; "
                     "retrying", vs_net_op_name(p->opcode), p->inode, p->offset, p->osd,
                     vs_strerror(rc));
        part_retry(c, p);
    } else {
        part_finish(c, p, client__retryable(rc) && c->state != CL_CLOSING ? -ETIMEDOUT : rc);
    }
    if (c->replay_needed && c->write_parts_on_wire == 0)
        client__replay_pump(c);
}

/* ---- Sending --------------------------------------------------------------------------- */

static void fill_net_op(struct vstor_client *c, struct client_part *p)
{
    struct vs_net_op *n = &p->net;
    memset(n, 0, sizeof(*n));
    n->req.opcode = p->opcode;
    n->cb = part_net_cb;
    if (p->opcode == VS_NET_OP_SYNC)
        return;
    n->req.req.rw.inode = p->inode;
    n->req.req.rw.offset = p->offset;
    n->req.req.rw.len = p->len;
    if (p->opcode == VS_NET_OP_WRITE) {
        n->req.data_len = p->len;
        n->data = p->buf;
    } else if (p->opcode == VS_NET_OP_READ) {
        n->reply_data = p->buf;
        n->reply_data_cap = p->len;
        /* The bitmap is not used (no snapshot layers yet): every read shares
         * one scratch area; the loop is single-threaded. */
        n->reply_meta = c->bitmap_scratch;
        n->reply_meta_cap = CLIENT_BITMAP_SCRATCH;
    }
}

/* Sends p to the primary of its PG (or, for SYNC, to p->osd), or parks it. */
void client__part_send(struct vstor_client *c, struct client_part *p)
{
    uint32_t osd = p->osd;
    if (p->kind != PART_REPLAY && client__blocked(c)) {
        list_push(&c->held_head, &c->held_tail, p);
        return;
    }
    if (p->kind != PART_SYNC && client__locate(c, p->inode, p->offset, &p->pg, &osd) < 0) {
        part_retry(c, p);
        return;
    }
    struct client_osd *o = client__osd_find(c, osd);
    if (o && !o->conn)
        client__osd_connect(c, o);
    if (!o || !o->conn) {
        part_retry(c, p);
        return;
    }
    fill_net_op(c, p);
    int rc = vs_net_send(o->conn, &p->net);
    if (rc < 0) {
        VS_ASSERT(rc == -ENOTCONN); /* closing; -EINVAL would be our bug */
        part_retry(c, p);
        return;
    }
    p->osd = osd;
    p->on_wire = true;
    c->parts_on_wire++;
    c->parts_sent++;
    if (p->opcode == VS_NET_OP_WRITE || p->opcode == VS_NET_OP_DELETE)
        c->write_parts_on_wire++;
}

static void resend(struct vstor_client *c, struct client_part *p)
{
    while (p) {
        struct client_part *next = p->next;
        p->next = NULL;
        /* A SYNC part is bound to one OSD, which may be gone for good (its
         * acknowledged writes replayed elsewhere meanwhile): it is never sent
         * again; the sync counts it failed and recomputes its OSDs (L3). */
        if (p->kind == PART_SYNC)
            client__sync_part_done(c, p, -ENOTCONN);
        else
            client__part_send(c, p);
        p = next;
    }
}

/* Sends every part waiting in the retry list again (P2). */
void client__retry_all(struct vstor_client *c)
{
    if (c->state == CL_READY)
        resend(c, list_take(&c->retry_head, &c->retry_tail));
}

/* Sends the parts held during a replay. */
void client__release_held(struct vstor_client *c)
{
    resend(c, list_take(&c->held_head, &c->held_tail));
}

static void fail_list(struct vstor_client *c, struct client_part **head, struct client_part **tail,
                      int rc, uint64_t now_us)
{
    struct client_part *p = list_take(head, tail);
    while (p) {
        struct client_part *next = p->next;
        p->next = NULL;
        if (p->kind == PART_RW && (rc != -ETIMEDOUT || client__op_expired(p->op, now_us)))
            part_finish(c, p, rc);
        else if (p->kind == PART_SYNC && rc != -ETIMEDOUT)
            client__sync_part_done(c, p, rc);
        else if (p->kind == PART_REPLAY && rc != -ETIMEDOUT)
            client__replay_part_done(c, p, rc);
        else
            list_push(head, tail, p);
        p = next;
    }
}

/* Fails the parts not on the wire: expired ones (-ETIMEDOUT) or all. */
void client__parts_fail(struct vstor_client *c, int rc, uint64_t now_us)
{
    fail_list(c, &c->retry_head, &c->retry_tail, rc, now_us);
    fail_list(c, &c->held_head, &c->held_tail, rc, now_us);
}

/* ---- Connections ------------------------------------------------------------------------ */

void client__osd_connect(struct vstor_client *c, struct client_osd *o)
{
    char err[VS_ERRMSG_SIZE];
    if (c->state != CL_READY || !c->net)
        return;
    int rc = vs_net_connect(c->net, o->addr, o, &o->conn, err, sizeof(err));
    if (rc < 0) {
        o->conn = NULL;
        VS_ERROR(c->log_name, "osd.%u: %s", o->id, err);
    }
}

/* o left the table (its state key vanished or its address changed). */
void client__osd_detach(struct vstor_client *c, struct client_osd *o)
{
    (void)c;
    o->detached = true;
    if (o->conn)
        vs_net_conn_close(o->conn); /* CLOSED frees o */
    else
        free(o);
}

void client__osd_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx)
{
    struct vstor_client *c = ctx;
    struct client_osd *o = vs_net_conn_user(conn);
    if (ev == VS_NET_EV_UP) {
        o->up = true;
        o->gen = ++c->conn_gen;
        VS_DEBUG_LOG(c->log_name, "osd.%u (%s): connected", o->id, o->addr);
        client__retry_all(c);
    } else if (ev == VS_NET_EV_DOWN) {
        bool was_up = o->up;
        o->up = false;
        if (was_up)
            VS_INFO(c->log_name, "osd.%u (%s): connection lost: %s", o->id, o->addr,
                    vs_strerror(rc));
        client__replay_check_osd(c, o->id);
    } else {
        o->conn = NULL;
        o->up = false;
        if (o->detached)
            free(o);
    }
}
