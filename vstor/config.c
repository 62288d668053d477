/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * config.c -- parsing and validation of the key table in config.h.
 *
 * Each key's field is reached through an offset table generated from the same
 * X-macro, so adding a key never touches this file.
 */
#include "config.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct vs_cfg_key vs_config_keys[] = {
#define VS_CFG_ROW(field, type, def, min, max, scopes, help)                             \
    {#field, type, def, min, max, scopes, help},
    VS_CONFIG_KEYS(VS_CFG_ROW)
#undef VS_CFG_ROW
};
const unsigned vs_config_key_count = VS_ARRAY_SIZE(vs_config_keys);

static const size_t field_offset[] = {
#define VS_CFG_OFF(field, type, def, min, max, scopes, help) offsetof(struct vs_config, field),
    VS_CONFIG_KEYS(VS_CFG_OFF)
#undef VS_CFG_OFF
};

VS_STATIC_ASSERT(VS_ARRAY_SIZE(vs_config_keys) <= 64, "grow vs_config.source and strings");

static void *field_ptr(struct vs_config *cfg, unsigned i)
{
    return (char *)cfg + field_offset[i];
}

static const void *field_cptr(const struct vs_config *cfg, unsigned i)
{
    return (const char *)cfg + field_offset[i];
}

int vs_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -EINVAL;
    *out = v;
    return 0;
}

/* Parses digits followed by a suffix from `units` (name, multiplier pairs). */
struct unit {
    const char *name;
    uint64_t mul;
};

static int parse_with_units(const char *s, const struct unit *units, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -EINVAL;
    for (const struct unit *u = units; u->name; u++) {
        if (strcasecmp(end, u->name) == 0) {
            if (u->mul && v > UINT64_MAX / u->mul)
                return -ERANGE;
            *out = v * u->mul;
            return 0;
        }
    }
    return -EINVAL;
}

int vs_parse_size(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1},          {"b", 1},           {"k", 1ull << 10}, {"kb", 1ull << 10},
        {"kib", 1ull << 10}, {"m", 1ull << 20}, {"mb", 1ull << 20}, {"mib", 1ull << 20},
        {"g", 1ull << 30}, {"gb", 1ull << 30}, {"gib", 1ull << 30}, {"t", 1ull << 40},
        {"tb", 1ull << 40}, {"tib", 1ull << 40}, {NULL, 0},
    };
    return parse_with_units(s, units, out);
}

int vs_parse_ms(const char *s, uint64_t *out)
{
    static const struct unit units[] = {
        {"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {NULL, 0},
    };
    return parse_with_units(s, units, out);
}

int vs_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};
    for (unsigned i = 0; i < VS_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int vs_config_find(const char *name)
{
    char norm[128];
    size_t n = strlen(name);
    if (n >= sizeof(norm))
        return -1;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : name[i];
    for (unsigned i = 0; i < vs_config_key_count; i++)
        if (strcmp(vs_config_keys[i].name, norm) == 0)
            return (int)i;
    return -1;
}

static int set_string(struct vs_config *cfg, unsigned i, const char *value)
{
    char *copy = value ? strdup(value) : NULL;
    if (value && !copy)
        return -ENOMEM;
    free(cfg->strings[i]);
    cfg->strings[i] = copy;
    *(const char **)field_ptr(cfg, i) = copy;
    return 0;
}

/* Range and semantic checks that the type alone cannot express. */
static int check_value(unsigned i, uint64_t v, const char *text, char *err, unsigned long size)
{
    const struct vs_cfg_key *k = &vs_config_keys[i];
    if ((k->type == VS_CFG_U64 || k->type == VS_CFG_SIZE || k->type == VS_CFG_MS) &&
        (k->min || k->max) && (v < k->min || v > k->max)) {
        snprintf(err, size, "key '%s': %s is out of range [%" PRIu64 ", %" PRIu64 "]", k->name,
                 text, k->min, k->max);
        return VS_ECONFIG;
    }
    if (strcmp(k->name, "log_level") == 0) {
        static const char *const levels[] = {"error", "warn", "info", "debug", "trace"};
        for (unsigned j = 0; j < VS_ARRAY_SIZE(levels); j++)
            if (strcmp(text, levels[j]) == 0)
                return 0;
        snprintf(err, size, "key 'log_level': '%s' is not one of error, warn, info, debug, trace",
                 text);
        return VS_ECONFIG;
    }
    return 0;
}

static int set_typed(struct vs_config *cfg, unsigned i, const char *value, char *err,
                     unsigned long size)
{
    const struct vs_cfg_key *k = &vs_config_keys[i];
    uint64_t v = 0;
    bool b;
    int rc = 0;
    const char *what = NULL;
    switch (k->type) {
    case VS_CFG_STR:
    case VS_CFG_LIST:
        rc = check_value(i, 0, value, err, size);
        if (rc == 0)
            rc = set_string(cfg, i, value);
        return rc;
    case VS_CFG_U64:
        what = "a non-negative integer";
        rc = vs_parse_u64(value, &v);
        break;
    case VS_CFG_SIZE:
        what = "a size such as 4096, 128k, 2G";
        rc = vs_parse_size(value, &v);
        break;
    case VS_CFG_MS:
        what = "a duration such as 500ms, 5s, 1m";
        rc = vs_parse_ms(value, &v);
        break;
    case VS_CFG_BOOL:
        rc = vs_parse_bool(value, &b);
        if (rc < 0) {
            snprintf(err, size, "key '%s': '%s' is not a boolean (true/false)", k->name, value);
            return VS_ECONFIG;
        }
        *(bool *)field_ptr(cfg, i) = b;
        return 0;
    }
    if (rc < 0) {
        snprintf(err, size, "key '%s': '%s' is not %s", k->name, value, what);
        return VS_ECONFIG;
    }
    rc = check_value(i, v, value, err, size);
    if (rc == 0)
        *(uint64_t *)field_ptr(cfg, i) = v;
    return rc;
}

void vs_config_init(struct vs_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[VS_ERRMSG_SIZE];
    for (unsigned i = 0; i < vs_config_key_count; i++) {
        cfg->source[i] = VS_CFG_SRC_DEFAULT;
        if (vs_config_keys[i].def == NULL)
            continue;
        int rc = set_typed(cfg, i, vs_config_keys[i].def, err, sizeof(err));
        VS_ASSERTF(rc == 0, "bad built-in default: %s", err);
    }
}

void vs_config_free(struct vs_config *cfg)
{
    for (unsigned i = 0; i < VS_ARRAY_SIZE(cfg->strings); i++)
        free(cfg->strings[i]);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

int vs_config_set(struct vs_config *cfg, const char *name, const char *value,
                  enum vs_cfg_source source, char *err, unsigned long err_size)
{
    int i = vs_config_find(name);
    if (i < 0) {
        snprintf(err, err_size, "unknown key '%s'", name);
        return -ENOENT;
    }
    int rc = set_typed(cfg, (unsigned)i, value, err, err_size);
    if (rc == 0)
        cfg->source[i] = source;
    return rc;
}

/* Converts one JSON value to the string form set_typed() parses. */
static int json_to_text(const struct vs_cfg_key *k, json_t *v, char *buf, size_t size)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        if (k->type == VS_CFG_BOOL)
            return -EINVAL;
        snprintf(buf, size, "%s", json_string_value(v));
        return 0;
    case JSON_INTEGER:
        if (k->type == VS_CFG_STR || k->type == VS_CFG_LIST || k->type == VS_CFG_BOOL ||
            json_integer_value(v) < 0)
            return -EINVAL;
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return 0;
    case JSON_TRUE:
    case JSON_FALSE:
        if (k->type != VS_CFG_BOOL)
            return -EINVAL;
        snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
        return 0;
    case JSON_ARRAY: {
        if (k->type != VS_CFG_LIST)
            return -EINVAL;
        size_t idx, used = 0;
        json_t *item;
        buf[0] = 0;
        json_array_foreach(v, idx, item) {
            if (!json_is_string(item))
                return -EINVAL;
            int n = snprintf(buf + used, size - used, "%s%s", idx ? "," : "",
                             json_string_value(item));
            if (n < 0 || (size_t)n >= size - used)
                return -E2BIG;
            used += (size_t)n;
        }
        return 0;
    }
    default:
        return -EINVAL;
    }
}

static const char *type_name(enum vs_cfg_type t)
{
    switch (t) {
    case VS_CFG_STR:
        return "a string";
    case VS_CFG_LIST:
        return "a list of strings (array or comma-separated string)";
    case VS_CFG_U64:
        return "a non-negative integer";
    case VS_CFG_SIZE:
        return "a size (integer bytes or a string such as \"128k\")";
    case VS_CFG_MS:
        return "a duration (integer ms or a string such as \"5s\")";
    case VS_CFG_BOOL:
        return "a boolean";
    }
    return "?";
}

static int load_object(struct vs_config *cfg, json_t *root, const char *origin, char *err,
                       unsigned long err_size)
{
    if (!json_is_object(root)) {
        snprintf(err, err_size, "%s: the top level must be a JSON object", origin);
        return VS_ECONFIG;
    }
    const char *key;
    json_t *value;
    json_object_foreach(root, key, value) {
        int i = vs_config_find(key);
        if (i < 0 || strchr(key, '-')) {
            snprintf(err, err_size, "%s: unknown key '%s'", origin, key);
            return VS_ECONFIG;
        }
        char text[4096], sub[VS_ERRMSG_SIZE];
        if (json_to_text(&vs_config_keys[i], value, text, sizeof(text)) < 0) {
            snprintf(err, err_size, "%s: key '%s': expected %s", origin, key,
                     type_name(vs_config_keys[i].type));
            return VS_ECONFIG;
        }
        int rc = set_typed(cfg, (unsigned)i, text, sub, sizeof(sub));
        if (rc < 0) {
            snprintf(err, err_size, "%s: %s", origin, sub);
            return VS_ECONFIG;
        }
        cfg->source[i] = VS_CFG_SRC_FILE;
    }
    return 0;
}

int vs_config_load_string(struct vs_config *cfg, const char *json, const char *origin, char *err,
                          unsigned long err_size)
{
    json_error_t jerr;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        snprintf(err, err_size, "%s:%d:%d: %s", origin, jerr.line, jerr.column, jerr.text);
        return VS_ECONFIG;
    }
    int rc = load_object(cfg, root, origin, err, err_size);
    json_decref(root);
    return rc;
}

int vs_config_load_file(struct vs_config *cfg, const char *path, bool required, char *err,
                        unsigned long err_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT && !required)
            return 0;
        snprintf(err, err_size, "%s: cannot read config: %s", path, strerror(errno));
        return VS_ECONFIG;
    }
    json_error_t jerr;
    json_t *root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
    fclose(f);
    if (!root) {
        snprintf(err, err_size, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
        return VS_ECONFIG;
    }
    int rc = load_object(cfg, root, path, err, err_size);
    json_decref(root);
    if (rc == 0) {
        free(cfg->path);
        cfg->path = strdup(path);
    }
    return rc;
}

void vs_config_format(const struct vs_config *cfg, unsigned i, char *buf, unsigned long size)
{
    VS_ASSERT(i < vs_config_key_count);
    const void *p = field_cptr(cfg, i);
    switch (vs_config_keys[i].type) {
    case VS_CFG_STR:
    case VS_CFG_LIST: {
        const char *s = *(const char *const *)p;
        snprintf(buf, size, "%s", s ? s : "");
        break;
    }
    case VS_CFG_U64:
    case VS_CFG_SIZE:
    case VS_CFG_MS:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)p);
        break;
    case VS_CFG_BOOL:
        snprintf(buf, size, "%s", *(const bool *)p ? "true" : "false");
        break;
    }
}

int vs_config_list_split(char *list, char **items, int max)
{
    int n = 0;
    if (!list)
        return 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && n < max;
         tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        if (*tok)
            items[n++] = tok;
    }
    return n;
}
