/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * serve.h -- the node engine: runs this node's mon and OSDs (and any extra
 * children, such as the demo's NBD export) under the supervisor, derived from
 * the configuration.
 *
 * The children come from the config: the metadata member `serve_mon_id` (if
 * not 0; its address is entry serve_mon_id of `mon_address`) and one OSD per
 * entry of `osd_devices`. They get the same configuration: `--config PATH`
 * and every key given on the command line that their command accepts.
 *
 * SIGHUP re-reads the config file (command-line keys still win) and applies
 * the difference. SIGTERM/SIGINT, or vs_serve_stop(), stops in phases: the
 * extras, then the OSDs (they revoke their leases while the mon still runs),
 * then the mon; a child that ignores SIGTERM for serve_stop_timeout is killed.
 *
 * One engine per process, on the thread that calls vs_serve_run().
 */
#ifndef VSTOR_SERVE_H
#define VSTOR_SERVE_H

#include "supervisor.h"

#include <stddef.h>

struct vs_serve;
struct vs_cmd_ctx;
struct vs_config;
struct vs_loop;

#define VS_SERVE_EXTRA_MAX 4

/* Reads config_path (NULL: none) with ctx's command-line keys on top, and
 * sets up the loop and the supervisor; starts nothing yet. */
int vs_serve_init(struct vs_serve **out, struct vs_cmd_ctx *ctx, const char *config_path,
                  char *err, size_t err_size);
/* Extra children, started after the mon and OSDs and stopped before them. */
int vs_serve_set_extras(struct vs_serve *s, const struct vs_child_spec *extras, unsigned n);
/* Starts/stops children to match the current config and extras. */
int vs_serve_apply(struct vs_serve *s, char *err, size_t err_size);
/* Re-reads the config file, then applies. */
int vs_serve_reload(struct vs_serve *s, char *err, size_t err_size);
/* Begins the phased stop; vs_serve_run() returns when it is done. */
void vs_serve_stop(struct vs_serve *s);
/* Runs until stopped, then frees everything; returns an exit code. */
int vs_serve_run(struct vs_serve *s);

unsigned vs_serve_child_count(const struct vs_serve *s);
const struct vs_config *vs_serve_config(const struct vs_serve *s);
const char *vs_serve_exe(const struct vs_serve *s);
struct vs_loop *vs_serve_loop(struct vs_serve *s);

#endif /* VSTOR_SERVE_H */
