/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_client.h -- what the client-mode commands built on libvstor share
 * (`vstor bench`, `vstor rm`): a loop, a client made from the command's
 * config (mon_address), and one open image.
 */
#ifndef VSTOR_CMD_CLIENT_H
#define VSTOR_CMD_CLIENT_H

#include "cli.h"
#include "client_int.h"
#include "loop.h"

#define CMD_CLIENT_MONS_MAX 16

/* The libvstor options a config asks for: mon_address split into mons (which
 * point into list) and every client key (net_payload_max, client_retry_enospc,
 * loop_spin_lone_us, net_local_dir). `vstor bench`, `vstor rm` and the NBD
 * export all build their client from it, so a key means the same to each. */
struct cmd_client_opts {
    char list[4096];
    char *mons[CMD_CLIENT_MONS_MAX];
    struct vstor_client_opts o;
};

struct cmd_client {
    uv_loop_t loop;
    struct vs_spin spin; /* loop_busy_poll_us */
    struct vstor_client *c;
    struct vstor_image *img;
    struct vstor_image_info info;
    uint64_t mod_rev; /* of the last key read (vstor rm) */
    bool done;
    int rc;
};

/* Fills co from cfg. 0, or -EINVAL (no or too long mon_address) with err set. */
int cmd_client_opts_from_config(const struct vs_config *cfg, struct cmd_client_opts *co, char *err,
                                size_t err_size);
/* Creates the client and opens name. 0, or an exit code after printing why. */
int cmd_client_open(struct vs_cmd_ctx *ctx, struct cmd_client *cc, const char *name);
/* Closes the image and the client and runs the loop dry. */
void cmd_client_close(struct cmd_client *cc);
/* Runs the loop until cc->done. */
void cmd_client_wait(struct cmd_client *cc);

#endif
