/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_image.c -- opening images: by name through index/image/<name>, then
 * config/inode/<pool>/<num>. The image is registered with the client before
 * its key is read, so a change the config/ watch delivers meanwhile is not
 * lost (the newer mod_rev wins). Metadata failures are retried until the
 * optional op timeout; "not found" is final.
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum open_step { OPEN_INDEX = 1, OPEN_INODE, OPEN_POOLS, OPEN_READY };

struct open_req {
    struct open_req *next;
    struct vstor_client *c;
    vstor_open_cb cb;
    void *ctx;
    struct vstor_image *img; /* from OPEN_INODE on */
    uint64_t deadline_us;
    uint64_t retry_at_us;    /* 0: not waiting for a retry */
    uint8_t step;            /* enum open_step */
    bool in_call;            /* a metadata read is in flight */
    bool pools_read;
    char name[VSTOR_NAME_MAX + 1];
};

static void issue(struct open_req *r);

static void finish(struct open_req *r, int rc)
{
    struct vstor_client *c = r->c;
    for (struct open_req **pp = &c->opens; *pp; pp = &(*pp)->next) {
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    }
    struct vstor_image *img = r->img;
    if (rc < 0 && img) {
        for (struct vstor_image **pp = &c->images; *pp; pp = &(*pp)->next) {
            if (*pp == img) {
                *pp = img->next;
                break;
            }
        }
        free(img);
        img = NULL;
    }
    vstor_open_cb cb = r->cb;
    void *ctx = r->ctx;
    free(r);
    cb(ctx, rc, img);
}

static void retry_later(struct open_req *r, int status)
{
    struct vstor_client *c = r->c;
    VS_WARN(c->log_name, "opening image %s: metadata service: %s; retrying", r->name,
            vs_strerror(status));
    r->retry_at_us = client__now_us() + c->opts.retry_interval_ms * 10000ull;
}

static void not_found(struct open_req *r)
{
    client__errmsg(r->c, "image '%s' not found", r->name);
    finish(r, VS_ENOIMAGE);
}

/* index/image/<name> = {"pool": P, "num": N} */
static int parse_index(struct open_req *r, const struct vs_meta_kv *kv, uint64_t *inode)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)kv->value, kv->value_len, 0, &jerr);
    json_t *pool = json_object_get(j, "pool"), *num = json_object_get(j, "num");
    json_int_t p = json_is_integer(pool) ? json_integer_value(pool) : 0;
    json_int_t n = json_is_integer(num) ? json_integer_value(num) : 0;
    json_decref(j);
    if (p < 1 || p > 0xffff || n < 1 || (uint64_t)n >= (1ull << 48)) {
        client__errmsg(r->c, "image '%s': index/image entry is malformed", r->name);
        return -EINVAL;
    }
    *inode = (uint64_t)p << 48 | (uint64_t)n;
    return 0;
}

static void register_image(struct open_req *r, uint64_t inode)
{
    struct vstor_client *c = r->c;
    struct vstor_image *img = calloc(1, sizeof(*img));
    VS_ASSERTF(img, "out of memory opening an image");
    img->c = c;
    img->inode = inode;
    snprintf(img->name, sizeof(img->name), "%s", r->name);
    img->next = c->images;
    c->images = img;
    r->img = img;
    r->step = OPEN_INODE;
}

static void ready(struct open_req *r)
{
    struct vstor_client *c = r->c;
    if (c->state != CL_READY)
        return; /* client__images_ready() comes back */
    uint16_t pool = (uint16_t)vs_net_inode_pool(r->img->inode);
    if (client__pool(c, pool)) {
        finish(r, 0);
    } else if (!r->pools_read) {
        r->step = OPEN_POOLS; /* our view may predate the pool: read it */
        issue(r);
    } else {
        client__errmsg(c, "image '%s': pool %u does not exist", r->name, pool);
        finish(r, VS_ENOPOOL);
    }
}

static void range_cb(void *ctx, int status, const struct vs_meta_op_result *res,
                     uint64_t revision)
{
    struct open_req *r = ctx;
    (void)revision;
    r->in_call = false;
    if (status == -ECANCELED || r->c->state == CL_CLOSING) {
        finish(r, -ECANCELED);
        return;
    }
    if (status < 0) {
        retry_later(r, status);
        return;
    }
    const struct vs_meta_kv *kv = res->n_kvs ? &res->kvs[0] : NULL;
    uint64_t inode;
    switch (r->step) {
    case OPEN_INDEX:
        if (!kv)
            return not_found(r);
        if (parse_index(r, kv, &inode) < 0)
            return finish(r, VS_ENOIMAGE);
        register_image(r, inode);
        issue(r);
        return;
    case OPEN_INODE:
        if (kv)
            client__image_apply(r->img, kv->value, kv->value_len, kv->mod_rev);
        if (!r->img->registered || r->img->removed)
            return not_found(r);
        r->step = OPEN_READY;
        return ready(r);
    case OPEN_POOLS:
        r->pools_read = true;
        client__pools_apply(r->c, kv);
        r->step = OPEN_READY;
        return ready(r);
    default:
        VS_ASSERT(!"unexpected open step");
    }
}

static void issue(struct open_req *r)
{
    struct vstor_client *c = r->c;
    char key[VSTOR_NAME_MAX + 64];
    int n;
    if (r->step == OPEN_INDEX)
        n = snprintf(key, sizeof(key), "index/image/%s", r->name);
    else if (r->step == OPEN_INODE)
        n = snprintf(key, sizeof(key), "config/inode/%u/%" PRIu64,
                     vs_net_inode_pool(r->img->inode),
                     (uint64_t)(r->img->inode & ((1ull << 48) - 1)));
    else
        n = snprintf(key, sizeof(key), "config/pools");
    r->retry_at_us = 0;
    int rc = c->meta->range(c->m, key, (uint32_t)n, NULL, 0, range_cb, r);
    if (rc < 0)
        retry_later(r, rc);
    else
        r->in_call = true;
}

static struct open_req *new_req(struct vstor_client *c, vstor_open_cb cb, void *ctx)
{
    struct open_req *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->c = c;
    r->cb = cb;
    r->ctx = ctx;
    if (c->opts.op_timeout_ms)
        r->deadline_us = client__now_us() + c->opts.op_timeout_ms * 1000ull;
    r->next = c->opens;
    c->opens = r;
    return r;
}

int vstor_image_open(struct vstor_client *c, const char *name, vstor_open_cb cb, void *ctx)
{
    if (c->state == CL_CLOSING)
        return -ECANCELED;
    size_t len = name ? strlen(name) : 0;
    if (!cb || len == 0 || len > VSTOR_NAME_MAX) {
        client__errmsg(c, "image name must be 1..%u bytes", VSTOR_NAME_MAX);
        return -EINVAL;
    }
    struct open_req *r = new_req(c, cb, ctx);
    if (!r)
        return -ENOMEM;
    memcpy(r->name, name, len + 1);
    r->step = OPEN_INDEX;
    issue(r);
    return 0;
}

int vstor_image_open_inode(struct vstor_client *c, uint16_t pool, uint64_t num,
                           vstor_open_cb cb, void *ctx)
{
    if (c->state == CL_CLOSING)
        return -ECANCELED;
    if (!cb || pool == 0 || num == 0 || num >= (1ull << 48)) {
        client__errmsg(c, "image ids are pool 1..65535 and number 1..2^48-1");
        return -EINVAL;
    }
    struct open_req *r = new_req(c, cb, ctx);
    if (!r)
        return -ENOMEM;
    snprintf(r->name, sizeof(r->name), "%u/%" PRIu64, pool, num);
    register_image(r, (uint64_t)pool << 48 | num);
    issue(r);
    return 0;
}

/* ---- From the client's loop ------------------------------------------------------- */

void client__images_ready(struct vstor_client *c)
{
    struct open_req *r = c->opens;
    while (r) {
        struct open_req *next = r->next;
        if (r->step == OPEN_READY && !r->in_call)
            ready(r);
        r = next;
    }
}

void client__opens_tick(struct vstor_client *c, uint64_t now_us)
{
    struct open_req *r = c->opens;
    while (r) {
        struct open_req *next = r->next;
        if (!r->in_call && r->deadline_us && now_us >= r->deadline_us) {
            client__errmsg(c, "opening image '%s': timed out", r->name);
            finish(r, -ETIMEDOUT);
        } else if (!r->in_call && r->retry_at_us && now_us >= r->retry_at_us) {
            issue(r);
        }
        r = next;
    }
}

void client__opens_fail(struct vstor_client *c, int rc)
{
    struct open_req *r = c->opens;
    while (r) {
        struct open_req *next = r->next;
        if (!r->in_call)
            finish(r, rc);
        r = next;
    }
}

/* ---- Images ------------------------------------------------------------------------- */

void vstor_image_close(struct vstor_image *img)
{
    struct vstor_client *c = img->c;
    VS_ASSERTF(img->ops_active == 0, "image %s closed with %u ops in flight", img->name,
               img->ops_active);
    for (struct vstor_image **pp = &c->images; *pp; pp = &(*pp)->next) {
        if (*pp == img) {
            *pp = img->next;
            break;
        }
    }
    free(img);
}

void vstor_image_info(const struct vstor_image *img, struct vstor_image_info *out)
{
    struct vstor_client *c = img->c;
    const struct vs_placement_pool *p = client__pool(c, (uint16_t)vs_net_inode_pool(img->inode));
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", img->name);
    out->pool = (uint16_t)vs_net_inode_pool(img->inode);
    out->num = img->inode & ((1ull << 48) - 1);
    out->inode = img->inode;
    out->size = img->size;
    out->object_size = client__object_size(c, p);
    out->readonly = img->readonly;
    out->lazy = client__pool_lazy(c, p);
    out->removed = img->removed;
}
