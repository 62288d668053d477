/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_meta.h -- pool and image metadata in the metadata service, for the
 * `vstor pool ...` and image commands (cli_pool.c, cli_image.c) and for any
 * other client that must change them (`vstor rm` calls
 * vs_image_meta_mark_deleted() before it removes the data and
 * vs_image_meta_remove() after). Command reference: docs/commands.md.
 *
 * Keys (docs/data-path.md section 2):
 *   config/pools               {"<id>": pool}              (docs/placement.md section 2)
 *   config/inode/<pool>/<num>  {"name", "size", ["readonly", "deleted", ...]}
 *   index/image/<name>         {"pool", "num"}            (the name index)
 *   index/maxid/<pool>         N                          (the last image number used)
 *
 * Every change is one compare-and-swap transaction on the mod revisions of
 * what it read, retried from a fresh read when another writer got there
 * first: two concurrent creates of one name, exactly one wins (the other gets
 * -EEXIST); two creates of different names in one pool both succeed with
 * different numbers; a create racing a `pool rm` either lands before it (and
 * the rm refuses) or fails with VS_ENOPOOL.
 *
 * Blocking: each function runs its operations to completion through the
 * vs_meta_sync_* helpers; never call from a loop callback.
 * Errors: 0 or a negative code, with a sentence in errmsg: VS_ENOIMAGE,
 * VS_ENOPOOL, -EEXIST (name taken), -EBUSY (pool still holds images),
 * -EINVAL (bad name or size, shrinking), VS_EUNAVAILABLE / VS_EINDOUBT (the
 * metadata service), -ENOMEM. A struct vs_image_meta *out is always
 * initialised, whatever the result: vs_image_meta_free() it.
 */
#ifndef VSTOR_CLI_META_H
#define VSTOR_CLI_META_H

#include "cli.h"
#include "mon/monitor.h"
#include "vs_raft.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_IMAGE_NAME_MAX 255u
#define VS_POOL_NAME_MAX 127u
#define VS_IMAGE_NUM_MAX ((UINT64_C(1) << 48) - 1)
#define VS_IMAGE_SIZE_ALIGN 4096u
#define VS_IMAGE_SIZE_MAX (UINT64_C(1) << 60) /* 1 EiB */

/* ---- Connecting from a command ---------------------------------------------- */

struct cli_meta {
    struct vs_meta_client_opts o;
    char buf[4096];
    char *items[32];
    const char *ptrs[32];
};

/* Client options from the config (mon_address, meta_timeout). VS_EXIT_OK, or
 * VS_EXIT_USAGE with the message printed. */
int cli_meta_init(struct vs_cmd_ctx *ctx, struct cli_meta *m);
/* Prints "vstor CMD: msg" and returns the exit code for status (2 for -EINVAL, else 1). */
int cli_meta_fail(struct vs_cmd_ctx *ctx, int status, const char *msg);

/* ---- Reading -------------------------------------------------------------------- */

/* One key: 0 with its parsed value (NULL when it is not JSON; json_decref it)
 * and mod revision, or -ENOENT, or the service's error. */
int cli_meta_get(const struct vs_meta_client_opts *o, const char *key, json_t **value,
                 uint64_t *mod_rev);
/* Every key with this prefix into res (vs_meta_sync_free it); res->txn.ops[0]. */
int cli_meta_list(const struct vs_meta_client_opts *o, const char *prefix, unsigned flags,
                  struct vs_meta_sync_result *res);
int cli_meta_txn(const struct vs_meta_client_opts *o, const struct vs_mon_txn *t,
                 struct vs_meta_sync_result *res);
/* "10 GiB", "512 MiB", "4 KiB", "1000 B" (exact multiples only, else bytes). */
void cli_format_size(uint64_t bytes, char *buf, size_t size);

/* ---- Pools ------------------------------------------------------------------------- */

/* 0 when name is a valid pool name: 1..127 bytes, printable, not all digits. */
int vs_pool_name_check(const char *name, char *errmsg, size_t errmsg_size);
/* Finds a pool by name or decimal id in config/pools: 0 with *id, its config
 * (*cfg: a new reference, may be NULL) and the mod revision of config/pools,
 * or VS_ENOPOOL. */
int vs_pool_meta_find(const struct vs_meta_client_opts *o, const char *name_or_id, uint16_t *id,
                      json_t **cfg, uint64_t *pools_mod_rev, char *errmsg, size_t errmsg_size);

/* ---- Images ------------------------------------------------------------------------ */

struct vs_image_meta {
    char name[VS_IMAGE_NAME_MAX + 1];
    uint16_t pool;
    uint64_t num;
    uint64_t inode; /* pool << 48 | num: the id objects carry */
    uint64_t size;
    bool readonly, deleted;
    json_t *value;        /* the whole config/inode value (owned) */
    uint64_t mod_rev;     /* of config/inode/<pool>/<num> */
    uint64_t create_rev;  /* of config/inode/<pool>/<num> */
    uint64_t index_mod_rev; /* of index/image/<name> */
};

/* 0 when name is a valid image name: 1..255 bytes, no control characters,
 * no '@' (reserved for snapshots). */
int vs_image_name_check(const char *name, char *errmsg, size_t errmsg_size);
/* 0 when size is a valid image size: > 0, a multiple of 4 KiB, at most 1 EiB. */
int vs_image_size_check(uint64_t size, char *errmsg, size_t errmsg_size);

int vs_image_meta_lookup(const struct vs_meta_client_opts *o, const char *name,
                         struct vs_image_meta *out, char *errmsg, size_t errmsg_size);
/* Creates image name in pool (name or id) with size bytes; *out describes it. */
int vs_image_meta_create(const struct vs_meta_client_opts *o, const char *name, const char *pool,
                         uint64_t size, struct vs_image_meta *out, char *errmsg,
                         size_t errmsg_size);
/* Grows the image (a smaller size is -EINVAL: the data past the new end would
 * stay). The same size is a no-op. */
int vs_image_meta_resize(const struct vs_meta_client_opts *o, const char *name, uint64_t size,
                         struct vs_image_meta *out, char *errmsg, size_t errmsg_size);
/* `vstor rm`, step 1: sets "deleted": true (clients refuse to open it; a
 * removal interrupted half-way is visible and can be repeated). */
int vs_image_meta_mark_deleted(const struct vs_meta_client_opts *o, const char *name,
                               struct vs_image_meta *out, char *errmsg, size_t errmsg_size);
/* `vstor rm`, last step, once the data is gone: deletes config/inode,
 * index/image and inode/stats of the image m describes, if neither key
 * changed since m was read. */
int vs_image_meta_remove(const struct vs_meta_client_opts *o, const struct vs_image_meta *m,
                         char *errmsg, size_t errmsg_size);
void vs_image_meta_free(struct vs_image_meta *m);

#endif /* VSTOR_CLI_META_H */
