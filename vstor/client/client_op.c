/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_op.c -- submitting ops, the ordering queue (rules O1..O3 in
 * client_int.h), slicing ops into object-sized parts (P1), and completing
 * ops. Parts themselves are sent and retried by client_part.c.
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

static struct client_op *op_of(struct vstor_io *io)
{
    return (struct client_op *)(void *)io->private_;
}

static void q_push(struct client_op **head, struct client_op **tail, struct client_op *op)
{
    op->next = NULL;
    if (*tail)
        (*tail)->next = op;
    else
        *head = op;
    *tail = op;
}

/* ---- Submission -------------------------------------------------------------------- */

static int check_rw(struct vstor_image *img, struct vstor_io *io, uint8_t type)
{
    struct vstor_client *c = img->c;
    if (io->len == 0 || io->offset > img->size || io->len > img->size - io->offset) {
        client__errmsg(c, "image %s: %s of %" PRIu64 " bytes at %" PRIu64 " is outside the "
                       "image (size %" PRIu64 ")", img->name, type == OP_READ ? "read" : type ==
                       OP_WRITE ? "write" : "discard", io->len, io->offset, img->size);
        return -EINVAL;
    }
    if (type != OP_DISCARD && !io->buf) {
        client__errmsg(c, "image %s: no buffer", img->name);
        return -EINVAL;
    }
    if (type != OP_READ && img->readonly) {
        client__errmsg(c, "image %s is read-only", img->name);
        return -EROFS;
    }
    return 0;
}

static int submit(struct vstor_image *img, struct vstor_io *io, uint8_t type)
{
    struct vstor_client *c = img->c;
    if (c->state == CL_CLOSING)
        return -ECANCELED;
    if (!io || !io->cb)
        return -EINVAL;
    if (img->removed) {
        client__errmsg(c, "image %s was removed", img->name);
        return VS_ENOIMAGE;
    }
    int rc = type == OP_SYNC ? 0 : check_rw(img, io, type);
    if (rc < 0)
        return rc;
    struct client_op *op = op_of(io);
    memset(op, 0, sizeof(*op));
    op->io = io;
    op->img = img;
    op->type = type;
    op->state = OPS_WAIT;
    op->cursor = io->offset;
    op->end = type == OP_SYNC ? io->offset : io->offset + io->len;
    if (c->opts.op_timeout_ms)
        op->deadline_us = client__now_us() + c->opts.op_timeout_ms * 1000ull;
    img->ops_active++;
    c->ops_active++;
    q_push(&c->q_wait_head, &c->q_wait_tail, op);
    client__pump(c);
    return 0;
}

int vstor_read(struct vstor_image *img, struct vstor_io *io)
{
    return submit(img, io, OP_READ);
}

int vstor_write(struct vstor_image *img, struct vstor_io *io)
{
    return submit(img, io, OP_WRITE);
}

int vstor_sync(struct vstor_image *img, struct vstor_io *io)
{
    return submit(img, io, OP_SYNC);
}

int vstor_discard(struct vstor_image *img, struct vstor_io *io)
{
    return submit(img, io, OP_DISCARD);
}

/* ---- Completion -------------------------------------------------------------------- */

static void op_done(struct vstor_client *c, struct client_op *op)
{
    VS_ASSERT(op->parts_active == 0);
    if (op->lazy)
        client__lazy_unreserve(c, op);
    if (op->type == OP_WRITE || op->type == OP_DISCARD) {
        VS_ASSERT(c->writes_active > 0);
        c->writes_active--;
    }
    client__complete(c, op);
    client__pump(c);
}

/* A part of op finished with rc. */
void client__op_finish_part(struct vstor_client *c, struct client_op *op, int rc)
{
    VS_ASSERT(op->parts_active > 0);
    op->parts_active--;
    if (rc < 0 && op->rc == 0)
        op->rc = rc;
    if (rc < 0)
        op->cursor = op->end; /* slice no more */
    if (op->parts_active == 0 && !op->in_slice)
        op_done(c, op);
}

/* ---- Ordering and dispatch --------------------------------------------------------- */

static void dispatch(struct vstor_client *c, struct client_op *op)
{
    op->state = OPS_ACTIVE;
    if (op->type == OP_SYNC) {
        c->syncs_active++;
        client__sync_start(c, op);
        return;
    }
    if (op->type != OP_READ)
        c->writes_active++;
    uint16_t pool = (uint16_t)vs_net_inode_pool(op->img->inode);
    const struct vs_placement_pool *p = client__pool(c, pool);
    if (!p) {
        client__errmsg(c, "image %s: pool %u does not exist", op->img->name, pool);
        op->rc = VS_ENOPOOL;
        op_done(c, op);
        return;
    }
    op->obj_size = client__object_size(c, p);
    op->lazy = op->type != OP_READ && client__pool_lazy(c, p);
    if (op->lazy) {
        int rc = client__lazy_reserve(c, op);
        VS_ASSERT(rc == 0); /* pump checked that it fits */
    }
    op->in_slice = true;
    q_push(&c->q_slice_head, &c->q_slice_tail, op);
}

/* Whether the write/discard at the head of the queue may start (O1), and if
 * it needs an automatic sync first (lazy pools, L1 bound). */
static bool may_start(struct vstor_client *c, struct client_op **pp, bool *blocked)
{
    struct client_op *op = *pp;
    if (op->type == OP_READ)
        return true;
    if (*blocked)
        return false;
    if (op->type == OP_SYNC) {
        *blocked = c->writes_active || c->syncs_active;
        return !*blocked;
    }
    if (c->syncs_active) {
        *blocked = true;
        return false;
    }
    int fit = client__lazy_fits(c, op);
    if (fit == -EINVAL) {
        op->rc = -EINVAL;
        return true; /* dispatch fails it */
    }
    if (fit == -EAGAIN) {
        /* Put an automatic sync in front of it (O2 makes it wait for the
         * writes in flight, and this write waits for it). */
        VS_ASSERT(!c->auto_sync_queued);
        struct client_op *s = &c->auto_sync;
        memset(s, 0, sizeof(*s));
        s->type = OP_SYNC;
        s->state = OPS_WAIT;
        s->internal = true;
        s->img = op->img;
        s->next = op;
        *pp = s;
        c->auto_sync_queued = true;
        c->auto_syncs++;
        return may_start(c, pp, blocked);
    }
    return true;
}

static void pump_wait(struct vstor_client *c)
{
    bool blocked = false;
    struct client_op **pp = &c->q_wait_head, *prev = NULL;
    while (*pp) {
        if (!may_start(c, pp, &blocked)) {
            prev = *pp;
            pp = &(*pp)->next;
            continue;
        }
        struct client_op *op = *pp;
        *pp = op->next;
        if (c->q_wait_tail == op)
            c->q_wait_tail = prev;
        op->next = NULL;
        if (op->internal)
            c->auto_sync_queued = false;
        if (op->rc < 0) {
            op->state = OPS_ACTIVE;
            if (op->type != OP_READ)
                c->writes_active++;
            op_done(c, op);
            continue;
        }
        dispatch(c, op);
    }
}

/* Cuts parts off the ops waiting for them, one object at a time (P1). */
static void slice_pump(struct vstor_client *c)
{
    while (c->q_slice_head) {
        struct client_op *op = c->q_slice_head;
        if (op->cursor >= op->end) {
            c->q_slice_head = op->next;
            if (!c->q_slice_head)
                c->q_slice_tail = NULL;
            op->next = NULL;
            op->in_slice = false;
            if (op->parts_active == 0)
                op_done(c, op);
            continue;
        }
        struct client_part *p = client__part_get(c);
        if (!p)
            return;
        uint64_t boundary = (op->cursor / op->obj_size + 1) * op->obj_size;
        uint64_t len = VS_MIN(op->end, boundary) - op->cursor;
        len = VS_MIN(len, c->opts.net_payload_max);
        p->op = op;
        p->kind = PART_RW;
        p->inode = op->img->inode;
        p->offset = op->cursor;
        p->len = (uint32_t)len;
        p->opcode = op->type == OP_READ    ? VS_NET_OP_READ
                    : op->type == OP_WRITE ? VS_NET_OP_WRITE
                                           : VS_NET_OP_DELETE;
        p->buf = op->io->buf ? (uint8_t *)op->io->buf + (op->cursor - op->io->offset) : NULL;
        op->cursor += len;
        op->parts_active++;
        if (op->lazy)
            client__lazy_note(c, p);
        client__part_send(c, p);
    }
}

void client__pump(struct vstor_client *c)
{
    if (c->pumping) {
        c->pump_again = true;
        return;
    }
    if (c->state != CL_READY && c->state != CL_CLOSING)
        return;
    c->pumping = true;
    do {
        c->pump_again = false;
        pump_wait(c);
        slice_pump(c);
    } while (c->pump_again);
    c->pumping = false;
}

/* ---- Failing ops: close and timeouts ------------------------------------------------- */

static bool expired(const struct client_op *op, uint64_t now_us)
{
    return op->deadline_us && now_us >= op->deadline_us;
}

static void fail_waiting(struct vstor_client *c, int rc, uint64_t now_us)
{
    struct client_op **pp = &c->q_wait_head, *prev = NULL;
    while (*pp) {
        struct client_op *op = *pp;
        if (rc != -ETIMEDOUT || expired(op, now_us)) {
            *pp = op->next;
            if (c->q_wait_tail == op)
                c->q_wait_tail = prev;
            if (op->internal)
                c->auto_sync_queued = false;
            op->rc = rc;
            op->state = OPS_ACTIVE;
            if (op->internal)
                op->state = OPS_DONE;
            else
                client__complete(c, op);
            continue;
        }
        prev = op;
        pp = &op->next;
    }
}

/* Fails what has expired (rc -ETIMEDOUT) or everything (close): ops not yet
 * started, the unsliced rest of started ones, and parts waiting to be sent.
 * Parts on the wire finish by themselves. */
static void fail_ops(struct vstor_client *c, int rc, uint64_t now_us)
{
    fail_waiting(c, rc, now_us);
    for (struct client_op *op = c->q_slice_head; op; op = op->next) {
        if (rc != -ETIMEDOUT || expired(op, now_us)) {
            if (op->rc == 0)
                op->rc = rc;
            op->cursor = op->end;
        }
    }
    client__parts_fail(c, rc, now_us);
    client__sync_fail(c, rc, now_us);
    client__pump(c);
}

void client__check_timeouts(struct vstor_client *c, uint64_t now_us)
{
    if (c->opts.op_timeout_ms)
        fail_ops(c, -ETIMEDOUT, now_us);
}

void client__fail_all(struct vstor_client *c, int rc)
{
    fail_ops(c, rc, 0);
}

bool client__op_expired(const struct client_op *op, uint64_t now_us)
{
    return op && expired(op, now_us);
}
