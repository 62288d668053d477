/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_image.c -- NBD requests as libvstor ops (see nbd_image.h).
 *
 * Each NBD request uses the per-op private area the server provides (struct
 * img_io): no allocation per request. A request that needs more than one
 * client op (a FUA write on a lazy pool: write, then sync; zeroes written
 * in chunks) is a small state machine in that area.
 */
#include "nbd_image.h"

#include "cmd_client.h"
#include "config.h"
#include "loop.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"
#include "vstor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define IMG_BLOCK_MIN 4096u
#define IMG_BLOCK_MAX (32u << 20)
#define ZERO_CHUNK (1u << 20)

struct image_be {
    struct vs_nbd_backend base;
    struct vs_loop *loop;
    struct vstor_client *client;
    struct vstor_image *img;
    bool lazy;
    int open_rc;
    bool open_done;
    void *zeroes; /* ZERO_CHUNK bytes of zeroes, for write_zeroes with NO_HOLE */
    vs_nbd_backend_close_cb close_cb;
    void *close_arg;
};

enum img_step { STEP_IO, STEP_SYNC_AFTER, STEP_ZEROES };

struct img_io {
    struct vstor_io vio;
    struct vs_nbd_io *nio;
    struct image_be *be;
    uint8_t step;
    uint64_t zero_done; /* bytes of zeroes written so far */
};

static void io_done(struct img_io *x, int rc)
{
    struct vs_nbd_io *nio = x->nio;
    nio->cb(nio, rc);
}

static int start_sync(struct img_io *x);
static int next_zeroes(struct img_io *x);

static void client_cb(struct vstor_io *vio, int rc)
{
    struct img_io *x = vio->ctx;
    if (rc < 0) {
        io_done(x, rc);
        return;
    }
    if (x->step == STEP_ZEROES && x->zero_done < x->nio->length) {
        rc = next_zeroes(x);
    } else if (x->step != STEP_SYNC_AFTER && x->be->lazy && (x->nio->flags & VS_NBD_IO_FUA)) {
        rc = start_sync(x);
    } else {
        io_done(x, 0);
        return;
    }
    if (rc < 0)
        io_done(x, rc);
}

static struct img_io *prep(struct image_be *be, struct vs_nbd_io *nio, enum img_step step)
{
    struct img_io *x = nio->priv;
    memset(x, 0, sizeof(*x));
    x->nio = nio;
    x->be = be;
    x->step = (uint8_t)step;
    x->vio.offset = nio->offset;
    x->vio.len = nio->length;
    x->vio.buf = nio->buf;
    x->vio.cb = client_cb;
    x->vio.ctx = x;
    return x;
}

static int start_sync(struct img_io *x)
{
    x->step = STEP_SYNC_AFTER;
    return vstor_sync(x->be->img, &x->vio);
}

static int next_zeroes(struct img_io *x)
{
    uint64_t left = x->nio->length - x->zero_done;
    x->vio.offset = x->nio->offset + x->zero_done;
    x->vio.len = left < ZERO_CHUNK ? left : ZERO_CHUNK;
    x->vio.buf = x->be->zeroes;
    x->zero_done += x->vio.len;
    return vstor_write(x->be->img, &x->vio);
}

static int img_read(struct vs_nbd_backend *b, struct vs_nbd_io *nio)
{
    struct image_be *be = (struct image_be *)b;
    return vstor_read(be->img, &prep(be, nio, STEP_IO)->vio);
}

static int img_write(struct vs_nbd_backend *b, struct vs_nbd_io *nio)
{
    struct image_be *be = (struct image_be *)b;
    return vstor_write(be->img, &prep(be, nio, STEP_IO)->vio);
}

static int img_flush(struct vs_nbd_backend *b, struct vs_nbd_io *nio)
{
    struct image_be *be = (struct image_be *)b;
    return vstor_sync(be->img, &prep(be, nio, STEP_SYNC_AFTER)->vio);
}

static int img_trim(struct vs_nbd_backend *b, struct vs_nbd_io *nio)
{
    struct image_be *be = (struct image_be *)b;
    return vstor_discard(be->img, &prep(be, nio, STEP_IO)->vio);
}

static int img_write_zeroes(struct vs_nbd_backend *b, struct vs_nbd_io *nio)
{
    struct image_be *be = (struct image_be *)b;
    if (!(nio->flags & VS_NBD_IO_NO_HOLE))
        return vstor_discard(be->img, &prep(be, nio, STEP_IO)->vio);
    if (nio->flags & VS_NBD_IO_FAST_ZERO)
        return -ENOTSUP; /* writing zeroes is not cheaper than the client doing it */
    return next_zeroes(prep(be, nio, STEP_ZEROES));
}

static void client_closed_cb(void *ctx)
{
    struct image_be *be = ctx;
    vs_nbd_backend_close_cb cb = be->close_cb;
    void *arg = be->close_arg;
    free(be->zeroes);
    free(be);
    cb(arg);
}

static void img_close(struct vs_nbd_backend *b, vs_nbd_backend_close_cb cb, void *arg)
{
    struct image_be *be = (struct image_be *)b;
    be->close_cb = cb;
    be->close_arg = arg;
    if (be->img)
        vstor_image_close(be->img);
    be->img = NULL;
    vstor_client_close(be->client, client_closed_cb, be);
}

static const struct vs_nbd_backend_ops image_ops = {
    .name = "image",
    .read = img_read,
    .write = img_write,
    .flush = img_flush,
    .trim = img_trim,
    .write_zeroes = img_write_zeroes,
    .close = img_close,
};

static void opened_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct image_be *be = ctx;
    be->open_rc = rc;
    be->img = rc == 0 ? img : NULL;
    be->open_done = true;
}

static void fill_props(struct image_be *be, bool read_only)
{
    struct vstor_image_info info;
    vstor_image_info(be->img, &info);
    be->lazy = info.lazy;
    struct vs_nbd_backend_props *p = &be->base.props;
    p->size_bytes = info.size / IMG_BLOCK_MIN * IMG_BLOCK_MIN;
    p->block_min_bytes = IMG_BLOCK_MIN;
    p->block_pref_bytes = IMG_BLOCK_MIN;
    p->block_max_bytes = IMG_BLOCK_MAX;
    p->io_priv_bytes = sizeof(struct img_io);
    p->read_only = read_only || info.readonly;
    p->flush_is_global = true;
    p->can_fast_zero = true;
    snprintf(be->base.desc, sizeof(be->base.desc), "image %.200s (pool %u, number %llu)",
             info.name, (unsigned)info.pool, (unsigned long long)info.num);
}

static int connect_client(struct image_be *be, const struct vs_config *cfg, char *err,
                          size_t err_size)
{
    struct cmd_client_opts co;
    if (cmd_client_opts_from_config(cfg, &co, err, err_size) < 0)
        return VS_ECONFIG;
    co.o.log_name = "nbd-client";
    return vstor_client_create(&be->loop->uv, &co.o, &be->client, err, err_size);
}

/* Runs the loop until the open completes or the deadline passes. */
static int wait_open(struct image_be *be, const char *name, uint64_t timeout_ms, char *err,
                     size_t err_size)
{
    int rc = vstor_image_open(be->client, name, opened_cb, be);
    if (rc < 0) {
        snprintf(err, err_size, "image '%s': %s", name, vstor_strerror(rc));
        return rc;
    }
    uint64_t deadline = uv_now(&be->loop->uv) + timeout_ms;
    while (!be->open_done && uv_now(&be->loop->uv) < deadline)
        uv_run(&be->loop->uv, UV_RUN_ONCE);
    if (!be->open_done) {
        snprintf(err, err_size, "image '%s': the metadata service did not answer in %llu ms",
                 name, (unsigned long long)timeout_ms);
        return -ETIMEDOUT;
    }
    if (be->open_rc < 0) {
        const char *why = vstor_client_errmsg(be->client);
        snprintf(err, err_size, "%s", why && *why ? why : vstor_strerror(be->open_rc));
    }
    return be->open_rc;
}

static void abandoned_cb(void *ctx)
{
    *(bool *)ctx = true;
}

/* Drops a half-opened backend: closes the client and runs the loop until the
 * close is done, so the caller gets a clean loop back. */
static void abandon(struct image_be *be)
{
    if (be->client) {
        bool closed = false;
        if (be->img)
            vstor_image_close(be->img);
        vstor_client_close(be->client, abandoned_cb, &closed);
        while (!closed)
            uv_run(&be->loop->uv, UV_RUN_ONCE);
    }
    free(be->zeroes);
    free(be);
}

int vs_nbd_image_open(struct vs_loop *loop, const char *name, bool read_only,
                      const struct vs_config *cfg, struct vs_nbd_backend **out, char *err,
                      size_t err_size)
{
    struct image_be *be = calloc(1, sizeof(*be));
    if (!be)
        return -ENOMEM;
    be->loop = loop;
    be->base.ops = &image_ops;
    if (posix_memalign(&be->zeroes, 4096, ZERO_CHUNK) != 0) {
        free(be);
        return -ENOMEM;
    }
    memset(be->zeroes, 0, ZERO_CHUNK);
    int rc = connect_client(be, cfg, err, err_size);
    if (rc == 0)
        rc = wait_open(be, name, cfg->meta_timeout, err, err_size);
    if (rc < 0) {
        abandon(be);
        return rc;
    }
    fill_props(be, read_only);
    *out = &be->base;
    return 0;
}
