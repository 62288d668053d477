/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd.h -- the run functions of every command in cmd_table.c. Each command
 * family lives in its own file (cmd_basic.c, and later osd/, mon/, cli/ ...).
 */
#ifndef VSTOR_CMD_H
#define VSTOR_CMD_H

#include "cli.h"

#include <stdlib.h>

int vs_cmd_version(struct vs_cmd_ctx *ctx);
int vs_cmd_config(struct vs_cmd_ctx *ctx);
int vs_cmd_serve(struct vs_cmd_ctx *ctx);
int vs_cmd_demo(struct vs_cmd_ctx *ctx);
int vs_cmd_placement_simulate(struct vs_cmd_ctx *ctx);
int vs_cmd_net_bench(struct vs_cmd_ctx *ctx); /* net/net_bench.c */
/* cli/cli_pool.c, cli/cli_image.c */
int vs_cmd_pool_create(struct vs_cmd_ctx *ctx);
int vs_cmd_pool_ls(struct vs_cmd_ctx *ctx);
int vs_cmd_pool_rm(struct vs_cmd_ctx *ctx);
int vs_cmd_create(struct vs_cmd_ctx *ctx);
int vs_cmd_ls(struct vs_cmd_ctx *ctx);
int vs_cmd_info(struct vs_cmd_ctx *ctx);
int vs_cmd_resize(struct vs_cmd_ctx *ctx);

/* nbd/cmd_nbd.c */
extern const struct vs_cmd_opt vs_nbd_export_opts[];
extern const struct vs_cmd_opt vs_nbd_map_opts[];
int vs_cmd_nbd_export(struct vs_cmd_ctx *ctx);
int vs_cmd_map(struct vs_cmd_ctx *ctx);
int vs_cmd_unmap(struct vs_cmd_ctx *ctx);

int vs_cmd_bench(struct vs_cmd_ctx *ctx);    /* client/cmd_bench.c */

int vs_cmd_osd(struct vs_cmd_ctx *ctx);      /* osd/osd_main.c */
int vs_cmd_rm(struct vs_cmd_ctx *ctx);       /* client/cmd_rm.c */

/* mon/ -- the metadata service: `vstor mon` and `vstor meta ...` */
int vs_cmd_mon(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_get(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_put(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_del(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_txn(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_watch(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_compact(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_lease_grant(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_lease_revoke(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_lease_keepalive(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_lease_ttl(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_status(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_member_list(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_member_add(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_member_remove(struct vs_cmd_ctx *ctx);
int vs_cmd_meta_bench(struct vs_cmd_ctx *ctx);
/* cli/cli_disk.c, cli/cli_disk_bench.c */
int vs_cmd_disk_format(struct vs_cmd_ctx *ctx);
int vs_cmd_disk_info(struct vs_cmd_ctx *ctx);
int vs_cmd_disk_check(struct vs_cmd_ctx *ctx);
int vs_cmd_disk_dump(struct vs_cmd_ctx *ctx);
int vs_cmd_disk_bench(struct vs_cmd_ctx *ctx);

#endif /* VSTOR_CMD_H */
