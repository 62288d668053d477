/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_disk.h -- shared helpers of the `vstor disk` commands (cli_disk.c,
 * cli_disk_bench.c): a store opened on the process's io_uring, synchronously.
 */
#ifndef VSTOR_CLI_DISK_H
#define VSTOR_CLI_DISK_H

#include "cmd.h"
#include "vs_store.h"

struct vs_disk_cli {
    struct vs_ring *ring;
    struct vs_disk *disk;
    struct vs_store *store;
};

/* Opens the devices named by the positional arguments. 0 or -errno (printed). */
int vs_disk_cli_open(struct vs_cmd_ctx *ctx, bool readonly, struct vs_disk_cli *dc);
int vs_disk_cli_open_store(struct vs_cmd_ctx *ctx, bool readonly, struct vs_disk_cli *dc);
void vs_disk_cli_close(struct vs_disk_cli *dc);
void vs_disk_cli_config(const struct vs_cmd_ctx *ctx, struct vs_store_config *cfg);
/* Runs one op to completion on the ring; returns op->result or the error. */
int vs_disk_cli_run(struct vs_disk_cli *dc, struct vs_store_op *op,
                    int (*fn)(struct vs_store *, struct vs_store_op *));

#endif /* VSTOR_CLI_DISK_H */
