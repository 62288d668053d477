/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_json.c -- small strict readers over jansson for the three
 * placement documents. Every problem becomes VS_ECONFIG and one sentence that
 * names the field by its path ("pools.1.pg_size: must be an integer in
 * 1..32"), so an operator can fix the input without reading the code.
 * Unknown keys are errors: a typo must never silently change placement.
 */
#include "placement_int.h"

#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int placement__errf(struct pl_err *err, const char *fmt, ...)
{
    if (err && err->buf && err->size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->buf, err->size, fmt, ap);
        va_end(ap);
    }
    return VS_ECONFIG;
}

char *placement__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void placement__strlist_free(uint32_t count, char **items)
{
    for (uint32_t i = 0; items && i < count; i++)
        free(items[i]);
    free(items);
}

int placement__json_keys(const json_t *obj, const char *path, const char *const *allowed,
                         struct pl_err *err)
{
    if (!json_is_object(obj))
        return placement__errf(err, "%s: must be an object", path);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        bool ok = false;
        for (unsigned i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return placement__errf(err, "%s: unknown field '%s'", path, key);
    }
    return 0;
}

int placement__json_u64(const json_t *obj, const char *key, const char *path, bool required,
                        uint64_t min, uint64_t max, uint64_t *out, struct pl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return placement__errf(err, "%s.%s: required", path, key);
        return 0;
    }
    json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
    if (!json_is_integer(v) || i < 0 || (uint64_t)i < min || (uint64_t)i > max)
        return placement__errf(err, "%s.%s: must be an integer in %" PRIu64 "..%" PRIu64, path,
                               key, min, max);
    *out = (uint64_t)i;
    return 0;
}

int placement__json_num(const json_t *obj, const char *key, const char *path, double min,
                        double max, double *out, bool *present, struct pl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (present)
        *present = v != NULL;
    if (!v)
        return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || !isfinite(d) || d < min || d > max)
        return placement__errf(err, "%s.%s: must be a number in %g..%g", path, key, min, max);
    *out = d;
    return 0;
}

int placement__json_bool(const json_t *obj, const char *key, const char *path, bool *out,
                         struct pl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    if (!json_is_boolean(v))
        return placement__errf(err, "%s.%s: must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

int placement__json_str(const json_t *obj, const char *key, const char *path, bool required,
                        char **out, struct pl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (required)
            return placement__errf(err, "%s.%s: required", path, key);
        return 0;
    }
    if (!json_is_string(v) || !name_ok(json_string_value(v)))
        return placement__errf(err, "%s.%s: must be a non-empty string of printable characters",
                               path, key);
    char *s = placement__strdup(json_string_value(v));
    if (!s)
        return -ENOMEM;
    free(*out);
    *out = s;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A tag list: a string or an array of strings; kept sorted and without duplicates. */
int placement__json_strlist(const json_t *obj, const char *key, const char *path,
                            uint32_t *count, char ***out, struct pl_err *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return 0;
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if ((!json_is_array(v) && !json_is_string(v)) || n > 64)
        return placement__errf(err, "%s.%s: must be a string or an array of at most 64 strings",
                               path, key);
    char **items = calloc(n ? n : 1, sizeof(*items));
    if (!items)
        return -ENOMEM;
    uint32_t used = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(item) || !name_ok(json_string_value(item))) {
            placement__strlist_free(used, items);
            return placement__errf(err, "%s.%s: every tag must be a non-empty string", path,
                                   key);
        }
        items[used] = placement__strdup(json_string_value(item));
        if (!items[used]) {
            placement__strlist_free(used, items);
            return -ENOMEM;
        }
        used++;
    }
    qsort(items, used, sizeof(*items), cmp_str);
    uint32_t uniq = 0;
    for (uint32_t i = 0; i < used; i++) {
        if (uniq && strcmp(items[uniq - 1], items[i]) == 0)
            free(items[i]);
        else
            items[uniq++] = items[i];
    }
    placement__strlist_free(*count, *out);
    *count = uniq;
    *out = items;
    return 0;
}

int placement__parse_key(const char *key, const char *path, uint64_t min, uint64_t max,
                         uint64_t *out, struct pl_err *err)
{
    uint64_t v = 0;
    size_t n = strlen(key);
    bool ok = n > 0 && n <= 10 && !(n > 1 && key[0] == '0');
    for (size_t i = 0; ok && i < n; i++) {
        ok = key[i] >= '0' && key[i] <= '9';
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    if (!ok || v < min || v > max)
        return placement__errf(err, "%s: key '%s' must be a decimal number in %" PRIu64
                               "..%" PRIu64, path, key, min, max);
    *out = v;
    return 0;
}

json_t *placement__json_strarray(uint32_t count, char *const *items)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < count; i++)
        if (json_array_append_new(a, json_string(items[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

int placement__load_text(const char *text, size_t len, const char *what, json_t **out,
                         struct pl_err *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return placement__errf(err, "%s: invalid JSON at line %d column %d: %s", what,
                               jerr.line, jerr.column, jerr.text);
    *out = root;
    return 0;
}
