/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fake_osd.c -- see fake_osd.h. The request payloads and reply copies are
 * malloc'ed per request: this is test code, not the data path.
 */
#include "fake_osd.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fake_obj *obj_get(struct fake_osd *o, uint64_t inode, uint64_t stripe, bool make)
{
    for (unsigned i = 0; i < o->n_objs; i++)
        if (o->objs[i].inode == inode && o->objs[i].stripe == stripe)
            return &o->objs[i];
    if (!make)
        return NULL;
    if (o->n_objs == o->cap_objs) {
        o->cap_objs = o->cap_objs ? o->cap_objs * 2 : 64;
        o->objs = realloc(o->objs, o->cap_objs * sizeof(*o->objs));
        VS_ASSERT(o->objs);
    }
    struct fake_obj *ob = &o->objs[o->n_objs++];
    ob->inode = inode;
    ob->stripe = stripe;
    ob->data = calloc(1, o->obj_size);
    ob->durable = calloc(1, o->obj_size);
    VS_ASSERT(ob->data && ob->durable);
    return ob;
}

static void log_req(struct fake_osd *o, const struct vs_net_req *req, int rc)
{
    if (o->n_log == FAKE_OSD_LOG_MAX)
        return;
    const struct vs_net_rw *rw = &req->hdr.req.rw;
    bool rwop = req->hdr.opcode != VS_NET_OP_SYNC;
    o->log[o->n_log++] = (struct fake_osd_log){req->hdr.opcode, rwop ? rw->inode : 0,
                                               rwop ? rw->offset : 0, rwop ? rw->len : 0, rc};
}

static void reply(struct fake_osd *o, struct vs_net_req *req)
{
    if (o->hold && o->n_held < FAKE_OSD_HELD_MAX) {
        o->held[o->n_held++] = req;
        return;
    }
    vs_net_reply(req);
}

/* Fault injection and the one-object rule; 0 means serve it. */
static int precheck(struct fake_osd *o, struct vs_net_req *req)
{
    uint16_t op = req->hdr.opcode;
    if (o->fail_count[op]) {
        o->fail_count[op]--;
        return o->fail_rc[op];
    }
    if (op == VS_NET_OP_SYNC)
        return 0;
    const struct vs_net_rw *rw = &req->hdr.req.rw;
    uint64_t stripe = rw->offset / o->obj_size * o->obj_size;
    if (rw->len == 0 || rw->offset + rw->len > stripe + o->obj_size)
        return -EINVAL; /* a client must never send this */
    return 0;
}

static int buffers(struct vs_net_req *req, void *ctx)
{
    (void)ctx;
    req->user = malloc(req->hdr.data_len + 1);
    req->data = req->user;
    return req->user ? 0 : -ENOMEM;
}

static void done(struct vs_net_req *req, int rc, void *ctx)
{
    (void)rc;
    (void)ctx;
    free(req->user);
    req->user = NULL;
}

static void recv_rw(struct vs_net_req *req, void *ctx)
{
    struct fake_osd *o = ctx;
    int rc = precheck(o, req);
    log_req(o, req, rc);
    if (rc < 0) {
        free(req->user);
        req->user = NULL;
        vs_net_reply_err(req, rc);
        return;
    }
    const struct vs_net_rw *rw = &req->hdr.req.rw;
    uint64_t stripe = rw->offset / o->obj_size * o->obj_size;
    uint32_t at = (uint32_t)(rw->offset - stripe);
    struct fake_obj *ob = obj_get(o, rw->inode, stripe, req->hdr.opcode == VS_NET_OP_WRITE);
    switch (req->hdr.opcode) {
    case VS_NET_OP_WRITE:
        memcpy(ob->data + at, req->data, rw->len);
        break;
    case VS_NET_OP_DELETE:
        if (ob)
            memset(ob->data + at, 0, rw->len);
        break;
    default: { /* READ: copy now, so a held reply shows the data of its time */
        uint8_t *copy = malloc(rw->len + 16u);
        VS_ASSERT(copy);
        memset(copy, 0xff, 16);
        if (ob)
            memcpy(copy + 16, ob->data + at, rw->len);
        else
            memset(copy + 16, 0, rw->len);
        free(req->user);
        req->user = copy;
        req->rep_meta = copy;
        req->rep_meta_len = 1 + o->obj_size / 4096 / 8;
        req->rep_data = copy + 16;
        req->rep_data_len = rw->len;
    }
    }
    if (ob && !o->lazy && req->hdr.opcode != VS_NET_OP_READ)
        memcpy(ob->durable + at, ob->data + at, rw->len);
    req->rep.version = 1;
    reply(o, req);
}

static void recv_sync(struct vs_net_req *req, void *ctx)
{
    struct fake_osd *o = ctx;
    int rc = precheck(o, req);
    log_req(o, req, rc);
    if (rc < 0) {
        vs_net_reply_err(req, rc);
        return;
    }
    for (unsigned i = 0; i < o->n_objs; i++)
        memcpy(o->objs[i].durable, o->objs[i].data, o->obj_size);
    reply(o, req);
}

static void listen_now(struct fake_osd *o)
{
    struct vs_net_cfg cfg;
    char err[256], addr[64];
    vs_net_cfg_init(&cfg);
    memset(cfg.cluster_id, 0, sizeof(cfg.cluster_id));
    vs_put_u64(cfg.cluster_id, o->cluster_id);
    cfg.role = VS_NET_ROLE_OSD;
    cfg.node_id = o->id;
    cfg.block_size = o->obj_size;
    cfg.bitmap_granularity = 4096;
    cfg.log_name = "fake-osd";
    VS_ASSERT(vs_net_create(o->loop, &cfg, &o->net, err, sizeof(err)) == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%u", o->port);
    int rc = vs_net_listen(o->net, addr, err, sizeof(err));
    VS_ASSERTF(rc == 0, "fake osd listen: %s", err);
    o->port = vs_net_listen_port(o->net);
    struct vs_net_handler w = {.buffers = buffers, .recv = recv_rw, .done = done};
    struct vs_net_handler r = {.recv = recv_rw, .done = done};
    struct vs_net_handler s = {.recv = recv_sync};
    VS_ASSERT(vs_net_handle(o->net, VS_NET_OP_WRITE, &w, o) == 0);
    VS_ASSERT(vs_net_handle(o->net, VS_NET_OP_READ, &r, o) == 0);
    VS_ASSERT(vs_net_handle(o->net, VS_NET_OP_DELETE, &r, o) == 0);
    VS_ASSERT(vs_net_handle(o->net, VS_NET_OP_SYNC, &s, o) == 0);
}

void fake_osd_start(struct fake_osd *o, uv_loop_t *loop, uint32_t id, uint64_t cluster_id,
                    uint32_t obj_size, bool lazy)
{
    memset(o, 0, sizeof(*o));
    o->id = id;
    o->loop = loop;
    o->cluster_id = cluster_id;
    o->obj_size = obj_size;
    o->lazy = lazy;
    listen_now(o);
}

static void restarted_cb(void *ctx)
{
    struct fake_osd *o = ctx;
    o->net = NULL;
    /* A crash loses what was not synced. */
    for (unsigned i = 0; i < o->n_objs; i++)
        memcpy(o->objs[i].data, o->objs[i].durable, o->obj_size);
    listen_now(o);
    o->restarts++;
    o->restarting = false;
}

static void stopped_cb(void *ctx)
{
    struct fake_osd *o = ctx;
    o->net = NULL;
    o->stopped = true;
}

static void close_net(struct fake_osd *o, void (*cb)(void *ctx))
{
    bool hold = o->hold;
    o->hold = false;
    vs_net_close(o->net, cb, o);
    fake_osd_release(o);
    o->hold = hold;
}

void fake_osd_restart(struct fake_osd *o)
{
    VS_ASSERT(!o->restarting && o->net);
    o->restarting = true;
    close_net(o, restarted_cb);
}

void fake_osd_stop(struct fake_osd *o)
{
    close_net(o, stopped_cb);
}

void fake_osd_free(struct fake_osd *o)
{
    for (unsigned i = 0; i < o->n_objs; i++) {
        free(o->objs[i].data);
        free(o->objs[i].durable);
    }
    free(o->objs);
    o->objs = NULL;
}

void fake_osd_fail(struct fake_osd *o, uint16_t opcode, int rc, unsigned count)
{
    o->fail_rc[opcode] = rc;
    o->fail_count[opcode] = count;
}

void fake_osd_release(struct fake_osd *o)
{
    unsigned n = o->n_held;
    o->n_held = 0;
    for (unsigned i = 0; i < n; i++)
        vs_net_reply(o->held[i]);
}

void fake_osd_peek(const struct fake_osd *o, uint64_t inode, uint64_t offset, uint32_t len,
                   uint8_t *out)
{
    while (len > 0) {
        uint64_t stripe = offset / o->obj_size * o->obj_size;
        uint32_t at = (uint32_t)(offset - stripe);
        uint32_t n = o->obj_size - at < len ? o->obj_size - at : len;
        struct fake_obj *ob = obj_get((struct fake_osd *)o, inode, stripe, false);
        if (ob)
            memcpy(out, ob->data + at, n);
        else
            memset(out, 0, n);
        out += n, offset += n, len -= n;
    }
}

unsigned fake_osd_count(const struct fake_osd *o, uint16_t opcode)
{
    unsigned n = 0;
    for (unsigned i = 0; i < o->n_log; i++)
        n += o->log[i].opcode == opcode;
    return n;
}
