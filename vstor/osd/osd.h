/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd.h -- `vstor osd`: one OSD process on one store (docs/data-path.md).
 *
 * Threading: one libuv loop and the process io_uring (vstor/loop.h); nothing
 * here is thread-safe. The process serves clients (READ, WRITE, DELETE,
 * SYNC) for the PGs it is primary of, secondary ops (SEC_*) for every
 * primary that holds a PG lock on it, and keeps its registration, PG locks
 * and PG states in the metadata service. Internals: osd_int.h.
 */
#ifndef VSTOR_OSD_H
#define VSTOR_OSD_H

struct vs_osd;
struct vs_cmd_ctx;

/* `vstor osd --device PATH [--id N]`: runs until SIGTERM/SIGINT. Exit 0 after
 * a clean stop, 1 on a fatal error (the store cannot be opened, it belongs to
 * another cluster, ...), 2 on bad usage. */
int vs_cmd_osd(struct vs_cmd_ctx *ctx);

/* Starts the orderly stop (what SIGTERM does). Idempotent. */
void vs_osd_stop(struct vs_osd *osd);

#endif /* VSTOR_OSD_H */
