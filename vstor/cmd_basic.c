/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_basic.c -- commands that need no cluster: version and config.
 */
#include "cmd.h"

#include "vs_err.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#ifndef VSTOR_VERSION
#define VSTOR_VERSION "0.0.0"
#endif

int vs_cmd_version(struct vs_cmd_ctx *ctx)
{
    (void)ctx;
    printf("vstor %s\n", VSTOR_VERSION);
    printf("libuv %s, jansson %s\n", uv_version_string(), JANSSON_VERSION);
    return VS_EXIT_OK;
}

static const char *source_name(enum vs_cfg_source s)
{
    switch (s) {
    case VS_CFG_SRC_DEFAULT:
        return "default";
    case VS_CFG_SRC_FILE:
        return "file";
    case VS_CFG_SRC_FLAG:
        return "flag";
    }
    return "?";
}

static const char *scope_list(unsigned scopes, char *buf, size_t size)
{
    static const char *const names[] = {"global", "client", "osd", "mon", "store", "serve", "nbd"};
    size_t used = 0;
    buf[0] = 0;
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (!(scopes & (1u << i)))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", names[i]);
        if (n < 0 || (size_t)n >= size - used)
            break;
        used += (size_t)n;
    }
    return buf;
}

/* Markdown table of every key: the source of docs/config.md. */
static int print_doc(void)
{
    printf("| key | type | default | used by | meaning |\n|---|---|---|---|---|\n");
    static const char *const types[] = {
        [VS_CFG_STR] = "string", [VS_CFG_U64] = "integer", [VS_CFG_SIZE] = "size",
        [VS_CFG_BOOL] = "bool",  [VS_CFG_LIST] = "list",   [VS_CFG_MS] = "duration",
    };
    for (unsigned i = 0; i < vs_config_key_count; i++) {
        const struct vs_cfg_key *k = &vs_config_keys[i];
        char scopes[128];
        printf("| `%s` | %s | %s | %s | %s |\n", k->name, types[k->type],
               k->def ? k->def : "(unset)", scope_list(k->scopes, scopes, sizeof(scopes)),
               k->help);
    }
    return VS_EXIT_OK;
}

int vs_cmd_config(struct vs_cmd_ctx *ctx)
{
    if (vs_cmd_flag(ctx, "doc"))
        return print_doc();
    bool json = vs_cmd_flag(ctx, "json");
    json_t *obj = json ? json_object() : NULL;
    if (!json)
        printf("# config file: %s\n", ctx->cfg.path ? ctx->cfg.path : "(none)");
    for (unsigned i = 0; i < vs_config_key_count; i++) {
        char value[4096];
        vs_config_format(&ctx->cfg, i, value, sizeof(value));
        if (json)
            json_object_set_new(obj, vs_config_keys[i].name, json_string(value));
        else
            printf("%-28s %-24s # %s\n", vs_config_keys[i].name, value,
                   source_name(ctx->cfg.source[i]));
    }
    if (json) {
        char *s = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s);
        free(s);
        json_decref(obj);
    }
    return VS_EXIT_OK;
}
