/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_client.c -- see cmd_client.h.
 */
#include "cmd_client.h"

#include "vs_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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

int cmd_client_opts_from_config(const struct vs_config *cfg, struct cmd_client_opts *co, char *err,
                                size_t err_size)
{
    const char *list = cfg->mon_address ? cfg->mon_address : "";
    if ((size_t)snprintf(co->list, sizeof(co->list), "%s", list) >= sizeof(co->list)) {
        snprintf(err, err_size, "mon_address is longer than %zu bytes", sizeof(co->list) - 1);
        return -EINVAL;
    }
    int n = vs_config_list_split(co->list, co->mons, CMD_CLIENT_MONS_MAX);
    if (n <= 0) {
        snprintf(err, err_size, "no metadata service: set mon_address (--mon-address HOST:PORT)");
        return -EINVAL;
    }
    vstor_client_opts_init(&co->o);
    co->o.mon_addresses = (const char *const *)co->mons;
    co->o.n_mon = (unsigned)n;
    co->o.net_payload_max = (uint32_t)cfg->net_payload_max;
    co->o.fail_enospc = !cfg->client_retry_enospc;
    co->o.spin_lone_us = (uint32_t)cfg->loop_spin_lone_us;
    co->o.net_local_dir = cfg->net_local_dir;
    return 0;
}

int cmd_client_open(struct vs_cmd_ctx *ctx, struct cmd_client *cc, const char *name)
{
    char err[VS_ERRMSG_SIZE];
    struct cmd_client_opts co;
    memset(cc, 0, sizeof(*cc));
    if (cmd_client_opts_from_config(&ctx->cfg, &co, err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_USAGE;
    }
    uv_loop_init(&cc->loop);
    vs_spin_init(&cc->spin, &cc->loop, NULL, (unsigned)ctx->cfg.loop_busy_poll_us);
    int rc = vstor_client_create(&cc->loop, &co.o, &cc->c, err, sizeof(err));
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
}
