/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_meta.c -- the metadata-service helpers of the pool and image commands:
 * client options from the config, reading keys, running owned transactions,
 * and the checks of names and sizes (cli_meta.h).
 */
#include "cli_meta.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int cli_meta_init(struct vs_cmd_ctx *ctx, struct cli_meta *m)
{
    memset(m, 0, sizeof(*m));
    if (!ctx->cfg.mon_address || !ctx->cfg.mon_address[0]) {
        vs_cmd_error(ctx, "no metadata service address: set mon_address (or --mon-address)");
        return VS_EXIT_USAGE;
    }
    snprintf(m->buf, sizeof(m->buf), "%s", ctx->cfg.mon_address);
    int n = vs_config_list_split(m->buf, m->items, (int)VS_ARRAY_SIZE(m->items));
    if (n <= 0) {
        vs_cmd_error(ctx, "mon_address: no member address in '%s'", ctx->cfg.mon_address);
        return VS_EXIT_USAGE;
    }
    for (int i = 0; i < n; i++)
        m->ptrs[i] = m->items[i];
    m->o.members = m->ptrs;
    m->o.n_members = (unsigned)n;
    m->o.op_timeout_ms = (unsigned)ctx->cfg.meta_timeout;
    return VS_EXIT_OK;
}

int cli_meta_fail(struct vs_cmd_ctx *ctx, int status, const char *msg)
{
    vs_cmd_error(ctx, "%s", msg && msg[0] ? msg : vs_strerror(status));
    return status == -EINVAL ? VS_EXIT_USAGE : VS_EXIT_FAIL;
}

int cli_meta_get(const struct vs_meta_client_opts *o, const char *key, json_t **value,
                 uint64_t *mod_rev)
{
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = key,
                            .key_len = (uint32_t)strlen(key)};
    struct vs_meta_sync_result res;
    int rc = vs_meta_sync_range(o, &op, 0, &res);
    if (rc == 0 && (res.txn.n_ops < 1 || res.txn.ops[0].n_kvs == 0))
        rc = -ENOENT;
    if (rc == 0) {
        const struct vs_meta_kv *kv = &res.txn.ops[0].kvs[0];
        *value = json_loadb((const char *)kv->value, kv->value_len, JSON_DECODE_ANY, NULL);
        *mod_rev = kv->mod_rev;
    }
    vs_meta_sync_free(&res);
    return rc;
}

int cli_meta_list(const struct vs_meta_client_opts *o, const char *prefix, unsigned flags,
                  struct vs_meta_sync_result *res)
{
    uint8_t end[VS_META_KEY_MAX + 1];
    uint32_t len = (uint32_t)strlen(prefix);
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = prefix, .key_len = len,
                            .range_end = end, .flags = (uint8_t)flags};
    op.range_end_len = vs_meta_prefix_end(prefix, len, end);
    int rc = vs_meta_sync_range(o, &op, flags, res);
    if (rc == 0 && res->txn.n_ops < 1)
        rc = -EIO;
    return rc;
}

int cli_meta_txn(const struct vs_meta_client_opts *o, const struct vs_mon_txn *t,
                 struct vs_meta_sync_result *res)
{
    if (!vs_mon_txn_ok(t)) {
        memset(res, 0, sizeof(*res));
        return -ENOMEM;
    }
    struct vs_meta_txn txn;
    vs_mon_txn_view(t, &txn);
    return vs_meta_sync_txn(o, &txn, res);
}

void cli_format_size(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    uint64_t v = bytes;
    while (v && v % 1024 == 0 && u + 1 < VS_ARRAY_SIZE(units)) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%" PRIu64 " %s", v, units[u]);
}

/* ---- Names and sizes ---- */

static int check_text(const char *what, const char *name, size_t max, char *errmsg, size_t n)
{
    size_t len = strlen(name);
    if (len == 0 || len > max) {
        snprintf(errmsg, n, "%s name must be 1 to %zu bytes", what, max);
        return -EINVAL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(errmsg, n, "%s name '%.64s' contains a control character", what, name);
            return -EINVAL;
        }
    }
    return 0;
}

int vs_pool_name_check(const char *name, char *errmsg, size_t errmsg_size)
{
    int rc = check_text("pool", name, VS_POOL_NAME_MAX, errmsg, errmsg_size);
    if (rc < 0)
        return rc;
    size_t i = 0;
    while (isdigit((unsigned char)name[i]))
        i++;
    if (name[i] == 0) {
        snprintf(errmsg, errmsg_size, "pool name '%s' is a number: it would read as an id",
                 name);
        return -EINVAL;
    }
    return 0;
}

int vs_image_name_check(const char *name, char *errmsg, size_t errmsg_size)
{
    int rc = check_text("image", name, VS_IMAGE_NAME_MAX, errmsg, errmsg_size);
    if (rc == 0 && strchr(name, '@')) {
        snprintf(errmsg, errmsg_size, "image name '%.64s': '@' is reserved for snapshots", name);
        rc = -EINVAL;
    }
    return rc;
}

int vs_image_size_check(uint64_t size, char *errmsg, size_t errmsg_size)
{
    if (size == 0 || size % VS_IMAGE_SIZE_ALIGN != 0 || size > VS_IMAGE_SIZE_MAX) {
        snprintf(errmsg, errmsg_size,
                 "size %" PRIu64 " is not valid: it must be a multiple of 4 KiB, from 4 KiB "
                 "to 1 EiB",
                 size);
        return -EINVAL;
    }
    return 0;
}

/* ---- Pools ---- */

int vs_pool_meta_find(const struct vs_meta_client_opts *o, const char *name_or_id, uint16_t *id,
                      json_t **cfg, uint64_t *pools_mod_rev, char *errmsg, size_t errmsg_size)
{
    json_t *pools = NULL;
    uint64_t rev = 0;
    int rc = cli_meta_get(o, "config/pools", &pools, &rev);
    if (rc < 0 && rc != -ENOENT) {
        snprintf(errmsg, errmsg_size, "reading config/pools: %s", vs_strerror(rc));
        return rc;
    }
    const char *key;
    json_t *p;
    rc = VS_ENOPOOL;
    json_object_foreach(pools, key, p) {
        const char *name = json_string_value(json_object_get(p, "name"));
        if (strcmp(key, name_or_id) == 0 || (name && strcmp(name, name_or_id) == 0)) {
            char *end;
            unsigned long v = strtoul(key, &end, 10);
            if (*end || v < 1 || v > 65535)
                continue;
            *id = (uint16_t)v;
            if (cfg)
                *cfg = json_incref(p);
            rc = 0;
            break;
        }
    }
    if (pools_mod_rev)
        *pools_mod_rev = rev;
    if (rc == VS_ENOPOOL)
        snprintf(errmsg, errmsg_size, "pool '%.64s' does not exist", name_or_id);
    json_decref(pools);
    return rc;
}
