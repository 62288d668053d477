/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta.h -- helpers shared by the `vstor meta` commands (meta_*.c).
 */
#ifndef VSTOR_META_H
#define VSTOR_META_H

#include "cli.h"
#include "vs_raft.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define META_MEMBERS_MAX 32

/* Storage for the member list split out of mon_address. */
struct meta_members {
    char buf[4096];
    char *items[META_MEMBERS_MAX];
    const char *ptrs[META_MEMBERS_MAX];
};

/* Client options from the config (mon_address, meta_timeout). Returns an
 * exit code: VS_EXIT_OK, or VS_EXIT_USAGE with a message printed. */
int vs_meta_client_opts_from(struct vs_cmd_ctx *ctx, struct vs_meta_client_opts *o,
                             struct meta_members *mm);
/* Prints "vstor meta CMD: <error>" and returns the exit code for it. */
int meta_fail(struct vs_cmd_ctx *ctx, int status);
void meta_key_range(const char *key, bool prefix, struct vs_meta_op *op, uint8_t *end);
json_t *meta_json_bytes(const uint8_t *p, uint32_t len);
json_t *meta_json_kv(const struct vs_meta_kv *kv, bool with_value);
json_t *meta_json_status(const struct vs_raft_status *st);
/* Prints o on one line and releases it. */
void meta_print_json(json_t *o);
int meta_keepalive_forever(struct vs_cmd_ctx *ctx);

#endif /* VSTOR_META_H */
