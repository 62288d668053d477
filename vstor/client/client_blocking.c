/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_blocking.c -- the blocking wrappers: each call submits one op and
 * runs the loop until its callback has run. For programs without a loop of
 * their own (vstor_blk_open makes a private one) and for tests (which attach
 * to the loop their fake cluster runs on).
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void run_until_done(struct vstor_blk *b)
{
    while (!b->done)
        uv_run(b->loop, UV_RUN_ONCE);
}

static void open_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct vstor_blk *b = ctx;
    b->rc = rc;
    b->img = img;
    b->done = true;
}

int client__blk_attach(struct vstor_blk *b, uv_loop_t *loop, struct vstor_client *c,
                       const char *name, char *err, size_t err_size)
{
    b->loop = loop;
    b->c = c;
    b->done = false;
    int rc = vstor_image_open(c, name, open_cb, b);
    if (rc == 0) {
        run_until_done(b);
        rc = b->rc;
    }
    if (rc < 0)
        snprintf(err, err_size, "%s", c->errmsg[0] ? c->errmsg : vs_strerror(rc));
    return rc;
}

static void closed_cb(void *ctx)
{
    struct vstor_blk *b = ctx;
    b->done = true;
}

void client__blk_detach(struct vstor_blk *b)
{
    if (b->img)
        vstor_image_close(b->img);
    b->img = NULL;
    b->done = false;
    vstor_client_close(b->c, closed_cb, b);
    run_until_done(b);
    b->c = NULL;
}

static void io_cb(struct vstor_io *io, int rc)
{
    struct vstor_blk *b = io->ctx;
    b->rc = rc;
    b->done = true;
}

static int run_io(struct vstor_blk *b, int (*fn)(struct vstor_image *, struct vstor_io *),
                  void *buf, uint64_t len, uint64_t offset)
{
    struct vstor_io io = {.offset = offset, .len = len, .buf = buf, .cb = io_cb, .ctx = b};
    b->done = false;
    int rc = fn(b->img, &io);
    if (rc < 0)
        return rc;
    run_until_done(b);
    return b->rc;
}

int vstor_blk_read(struct vstor_blk *b, void *buf, uint64_t len, uint64_t offset)
{
    return run_io(b, vstor_read, buf, len, offset);
}

int vstor_blk_write(struct vstor_blk *b, const void *buf, uint64_t len, uint64_t offset)
{
    return run_io(b, vstor_write, (void *)(uintptr_t)buf, len, offset);
}

int vstor_blk_sync(struct vstor_blk *b)
{
    return run_io(b, vstor_sync, NULL, 0, 0);
}

int vstor_blk_discard(struct vstor_blk *b, uint64_t len, uint64_t offset)
{
    return run_io(b, vstor_discard, NULL, len, offset);
}

struct vstor_image *vstor_blk_image(struct vstor_blk *b)
{
    return b->img;
}
