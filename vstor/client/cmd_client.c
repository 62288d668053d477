/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_client.c -- see cmd_client.h.
 */
#include "cmd_client.h"

#include "vs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MONS_MAX 16

void cmd_client_wait(struct cmd_client *cc)
{
    while (!cc->done)
        uv_run(&cc->loop, UV_RUN_ONCE);
}

static void open_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct cmd_client *cc = ctx;
    cc->rc = rc;
    cc->img = img;
    cc->done = true;
}

int cmd_client_open(struct vs_cmd_ctx *ctx, struct cmd_client *cc, const char *name)
{
    char *mons[MONS_MAX], err[VS_ERRMSG_SIZE];
    struct vstor_client_opts o;
    memset(cc, 0, sizeof(*cc));
    if (!ctx->cfg.mon_address) {
        vs_cmd_error(ctx, "no metadata service: set mon_address (--mon-address HOST:PORT)");
        return VS_EXIT_USAGE;
    }
    uv_loop_init(&cc->loop);
    vs_spin_init(&cc->spin, &cc->loop, NULL, (unsigned)ctx->cfg.loop_busy_poll_us);
    cc->mon_copy = strdup(ctx->cfg.mon_address);
    int n = cc->mon_copy ? vs_config_list_split(cc->mon_copy, mons, MONS_MAX) : 0;
    vstor_client_opts_init(&o);
    o.mon_addresses = (const char *const *)mons;
    o.n_mon = (unsigned)n;
    o.net_payload_max = (uint32_t)ctx->cfg.net_payload_max;
    o.fail_enospc = !ctx->cfg.client_retry_enospc;
    o.spin_lone_us = (uint32_t)ctx->cfg.loop_spin_lone_us;
    o.net_local_dir = ctx->cfg.net_local_dir;
    int rc = vstor_client_create(&cc->loop, &o, &cc->c, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        cmd_client_close(cc);
        return VS_EXIT_USAGE;
    }
    cc->done = false;
    rc = vstor_image_open(cc->c, name, open_cb, cc);
    if (rc == 0) {
        cmd_client_wait(cc);
        rc = cc->rc;
    }
    if (rc < 0) {
        const char *msg = vstor_client_errmsg(cc->c);
        vs_cmd_error(ctx, "%s", msg[0] ? msg : vs_strerror(rc));
        cmd_client_close(cc);
        return VS_EXIT_FAIL;
    }
    vstor_image_info(cc->img, &cc->info);
    return 0;
}

static void closed_cb(void *ctx)
{
    ((struct cmd_client *)ctx)->done = true;
}

void cmd_client_close(struct cmd_client *cc)
{
    if (cc->img)
        vstor_image_close(cc->img);
    cc->img = NULL;
    if (cc->c) {
        cc->done = false;
        vstor_client_close(cc->c, closed_cb, cc);
        cmd_client_wait(cc);
        cc->c = NULL;
    }
    vs_spin_close(&cc->spin);
    uv_run(&cc->loop, UV_RUN_DEFAULT);
    uv_loop_close(&cc->loop);
    free(cc->mon_copy);
    cc->mon_copy = NULL;
}
