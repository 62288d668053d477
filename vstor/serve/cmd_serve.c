/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cmd_serve.c -- `vstor serve`: the node daemon that systemd starts (serve.h). */
#include "cmd.h"
#include "serve.h"

#include "vs_err.h"
#include "vs_log.h"

int vs_cmd_serve(struct vs_cmd_ctx *ctx)
{
    char err[VS_ERRMSG_SIZE + 512];
    struct vs_serve *s;
    vs_log_set_process("serve");
    int rc = vs_serve_init(&s, ctx, ctx->cfg.path, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        return rc == VS_ECONFIG ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    rc = vs_serve_apply(s, err, sizeof(err));
    if (rc == 0 && vs_serve_child_count(s) == 0) {
        snprintf(err, sizeof(err), "nothing to run: set serve_mon_id and/or osd_devices");
        rc = VS_ECONFIG;
    }
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_serve_stop(s);
        vs_serve_run(s);
        return rc == VS_ECONFIG ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    VS_INFO("serve", "running %u child(ren); SIGHUP reloads, SIGTERM stops",
            vs_serve_child_count(s));
    return vs_serve_run(s);
}
