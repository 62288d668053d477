/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_view.c -- the monitor's view of the cluster, built from the
 * key/values it read at one revision (vs_mon_read_keys). Every value is
 * checked here: a malformed one becomes a message in the plan and is left out
 * (or, for an input of placement, stops re-placement), never a crash.
 */
#include "monitor_int.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const vs_mon_read_keys[] = {
    "config/pools", "config/nodes", "config/pgs", VS_MON_KEY_PLACEMENT,
    "config/osd/",  "osd/state/",   VS_MON_PREFIX_RECORD, "pg/state/",
    NULL,
};

void mon__msg(struct vs_mon_plan *plan, enum vs_mon_msg_level level, const char *fmt, ...)
{
    if (plan->n_msgs >= VS_MON_MSGS_MAX)
        return;
    struct vs_mon_msg *m = &plan->msgs[plan->n_msgs++];
    m->level = level;
    if (plan->n_msgs == VS_MON_MSGS_MAX) {
        snprintf(m->text, sizeof(m->text), "(more messages dropped)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->text, sizeof(m->text), fmt, ap);
    va_end(ap);
}

bool mon__parse_dec(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out)
{
    if (len == 0 || len > 20 || (len > 1 && s[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* ---- Sources of OSDs, merged by id ---- */

enum osd_src_kind { SRC_CONFIG, SRC_STATE, SRC_RECORD };

struct osd_src {
    uint32_t id;
    enum osd_src_kind kind;
    json_t *json;
    uint64_t mod_rev;
};

struct build {
    struct mon_view *v;
    struct vs_mon_plan *plan;
    struct osd_src *src;
    uint32_t n_src, cap_src;
};

static int cmp_src(const void *a, const void *b)
{
    const struct osd_src *x = a, *y = b;
    if (x->id != y->id)
        return x->id < y->id ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

static int add_src(struct build *b, uint32_t id, enum osd_src_kind kind, json_t *j, uint64_t rev)
{
    if (b->n_src == b->cap_src) {
        uint32_t cap = b->cap_src ? b->cap_src * 2 : 64;
        struct osd_src *p = realloc(b->src, cap * sizeof(*p));
        if (!p)
            return -ENOMEM;
        b->src = p;
        b->cap_src = cap;
    }
    b->src[b->n_src++] = (struct osd_src){.id = id, .kind = kind, .json = j, .mod_rev = rev};
    return 0;
}

/* ---- Checking single values ---- */

static bool check_osd_config(struct build *b, uint32_t id, json_t *j)
{
    const char *k;
    json_t *f;
    if (!json_is_object(j)) {
        mon__msg(b->plan, VS_MON_MSG_ERROR, "config/osd/%u: not a JSON object", id);
        return false;
    }
    json_object_foreach(j, k, f) {
        bool ok;
        if (strcmp(k, "reweight") == 0)
            ok = json_is_number(f) && json_number_value(f) >= 0 && json_number_value(f) <= 1;
        else if (strcmp(k, "noout") == 0)
            ok = json_is_boolean(f);
        else if (strcmp(k, "tags") == 0)
            ok = json_is_string(f) || json_is_array(f);
        else {
            mon__msg(b->plan, VS_MON_MSG_ERROR, "config/osd/%u: unknown field '%.64s'", id, k);
            return false;
        }
        if (!ok) {
            mon__msg(b->plan, VS_MON_MSG_ERROR, "config/osd/%u: bad value of '%s'", id, k);
            return false;
        }
    }
    return true;
}

/* host (non-empty string) and size_bytes (integer > 0) of a state or record. */
static bool host_and_size(const json_t *j, const char **host, uint64_t *size)
{
    json_t *h = json_object_get(j, "host"), *s = json_object_get(j, "size_bytes");
    if (!json_is_string(h) || json_string_length(h) == 0 || json_string_length(h) > 255 ||
        !json_is_integer(s) || json_integer_value(s) <= 0)
        return false;
    *host = json_string_value(h);
    *size = (uint64_t)json_integer_value(s);
    return true;
}

static int merge_one(struct build *b, const struct osd_src *s, struct mon_osd *o)
{
    switch (s->kind) {
    case SRC_CONFIG:
        if (check_osd_config(b, s->id, s->json))
            o->config = s->json;
        else
            b->v->inputs_ok = false;
        break;
    case SRC_STATE:
        o->up = true;
        o->state = s->json;
        o->state_valid = host_and_size(s->json, &o->host, &o->size_bytes);
        if (!o->state_valid)
            mon__msg(b->plan, VS_MON_MSG_WARN,
                     "osd/state/%u: no valid host and size_bytes: using the record", s->id);
        break;
    case SRC_RECORD:
        o->rec_mod_rev = s->mod_rev;
        if (!host_and_size(s->json, &o->rec_host, &o->rec_size)) {
            o->rec_host = NULL;
            mon__msg(b->plan, VS_MON_MSG_WARN, "%s%u: malformed: rewriting it",
                     VS_MON_PREFIX_RECORD, s->id);
        }
        break;
    }
    return 0;
}

static int merge_osds(struct build *b)
{
    struct mon_view *v = b->v;
    if (b->n_src)
        qsort(b->src, b->n_src, sizeof(*b->src), cmp_src);
    v->osds = calloc(b->n_src + 1, sizeof(*v->osds));
    if (!v->osds)
        return -ENOMEM;
    for (uint32_t i = 0; i < b->n_src; i++) {
        const struct osd_src *s = &b->src[i];
        if (v->n_osds == 0 || v->osds[v->n_osds - 1].id != s->id)
            v->osds[v->n_osds++].id = s->id;
        merge_one(b, s, &v->osds[v->n_osds - 1]);
    }
    for (uint32_t i = 0; i < v->n_osds; i++) {
        struct mon_osd *o = &v->osds[i];
        if (!o->state_valid && o->rec_host) {
            o->host = o->rec_host;
            o->size_bytes = o->rec_size;
        }
    }
    return 0;
}

/* ---- PG states ---- */

static bool parse_state(json_t *j, struct mon_pgstate *st)
{
    json_t *p = json_object_get(j, "primary"), *s = json_object_get(j, "state");
    json_t *peers = json_object_get(j, "peers");
    if (!json_is_integer(p) || json_integer_value(p) < 0 || json_integer_value(p) > UINT32_MAX ||
        !json_is_array(s) || !json_is_array(peers) ||
        json_array_size(peers) > VS_PLACEMENT_PG_SIZE_MAX)
        return false;
    st->primary = (uint32_t)json_integer_value(p);
    st->active_clean = json_array_size(s) == 1 && json_is_string(json_array_get(s, 0)) &&
                       strcmp(json_string_value(json_array_get(s, 0)), "active") == 0;
    size_t i;
    json_t *e;
    json_array_foreach(peers, i, e) {
        if (!json_is_integer(e) || json_integer_value(e) < 1 ||
            json_integer_value(e) > UINT32_MAX)
            return false;
        st->peers[st->n_peers++] = (uint32_t)json_integer_value(e);
    }
    return true;
}

static bool grow_arr(void **arr, uint32_t n, uint32_t *cap, size_t elem)
{
    if (n < *cap)
        return true;
    uint32_t ncap = *cap ? *cap * 2 : 64;
    void *p = realloc(*arr, (size_t)ncap * elem);
    if (!p)
        return false;
    *arr = p;
    *cap = ncap;
    return true;
}

/* "<pool>/<pg>" after a prefix. */
static bool parse_pool_pg(const char *rest, uint16_t *pool, uint32_t *pg)
{
    const char *slash = strchr(rest, '/');
    uint64_t p, g;
    if (!slash || !mon__parse_dec(rest, (size_t)(slash - rest), 1, 65535, &p) ||
        !mon__parse_dec(slash + 1, strlen(slash + 1), 0, VS_PLACEMENT_PG_COUNT_MAX - 1, &g))
        return false;
    *pool = (uint16_t)p;
    *pg = (uint32_t)g;
    return true;
}

static int add_state(struct build *b, const char *key, json_t *j, uint64_t rev)
{
    struct mon_view *v = b->v;
    struct mon_pgstate st = {.mod_rev = rev};
    if (!parse_pool_pg(key + strlen("pg/state/"), &st.pool, &st.pg) || !parse_state(j, &st)) {
        mon__msg(b->plan, VS_MON_MSG_WARN, "%.200s: malformed: ignored", key);
        return 0;
    }
    if (!grow_arr((void **)&v->states, v->n_states, &v->cap_states, sizeof(st)))
        return -ENOMEM;
    v->states[v->n_states++] = st;
    return 0;
}

static int cmp_pgkey(uint16_t pa, uint32_t ga, uint16_t pb, uint32_t gb)
{
    if (pa != pb)
        return pa < pb ? -1 : 1;
    return ga < gb ? -1 : ga > gb;
}

static int cmp_state(const void *a, const void *b)
{
    const struct mon_pgstate *x = a, *y = b;
    return cmp_pgkey(x->pool, x->pg, y->pool, y->pg);
}

/* ---- One key/value ---- */

static int id_key(struct build *b, const char *key, const char *prefix, enum osd_src_kind kind,
                  json_t *j, uint64_t rev)
{
    uint64_t id;
    const char *rest = key + strlen(prefix);
    if (!mon__parse_dec(rest, strlen(rest), 1, UINT32_MAX, &id)) {
        mon__msg(b->plan, VS_MON_MSG_WARN, "%.200s: not an OSD id: ignored", key);
        return 0;
    }
    if (!j) {
        mon__msg(b->plan, VS_MON_MSG_WARN, "%.200s: not JSON", key);
        if (kind == SRC_CONFIG)
            b->v->inputs_ok = false;
        if (kind != SRC_STATE)
            return 0;
        j = json_object(); /* still up: the key exists */
        if (!j || json_array_append_new(b->v->docs, j) < 0)
            return -ENOMEM;
    }
    return add_src(b, (uint32_t)id, kind, j, rev);
}

static int one_kv(struct build *b, const char *key, json_t *j, uint64_t rev)
{
    struct mon_view *v = b->v;
    struct mon_doc *doc = strcmp(key, "config/pools") == 0    ? &v->pools
                          : strcmp(key, "config/nodes") == 0  ? &v->nodes
                          : strcmp(key, "config/pgs") == 0    ? &v->pgs
                          : strcmp(key, VS_MON_KEY_PLACEMENT) == 0 ? &v->placement
                                                                  : NULL;
    if (doc) {
        doc->json = j;
        doc->mod_rev = rev;
        if (!j)
            mon__msg(b->plan, VS_MON_MSG_ERROR, "%s: not JSON", key);
        return 0;
    }
    if (strncmp(key, "config/osd/", 11) == 0)
        return id_key(b, key, "config/osd/", SRC_CONFIG, j, rev);
    if (strncmp(key, "osd/state/", 10) == 0)
        return id_key(b, key, "osd/state/", SRC_STATE, j, rev);
    if (strncmp(key, VS_MON_PREFIX_RECORD, strlen(VS_MON_PREFIX_RECORD)) == 0)
        return id_key(b, key, VS_MON_PREFIX_RECORD, SRC_RECORD, j, rev);
    if (strncmp(key, "pg/state/", 9) == 0)
        return j ? add_state(b, key, j, rev) : 0;
    return 0; /* not ours */
}

/* ---- The documents ---- */

static void parse_docs(struct build *b)
{
    struct mon_view *v = b->v;
    char err[VS_ERRMSG_SIZE];
    if (v->pools.mod_rev == 0) {
        json_t *empty = json_object();
        if (empty && vs_placement_pools_from_json(empty, &v->pool_cfg, err, sizeof(err)) < 0)
            v->pool_cfg = NULL;
        json_decref(empty);
    } else if (!v->pools.json ||
               vs_placement_pools_from_json(v->pools.json, &v->pool_cfg, err, sizeof(err)) < 0) {
        if (v->pools.json)
            mon__msg(b->plan, VS_MON_MSG_ERROR, "config/pools: %s", err);
        v->pool_cfg = NULL;
    }
    if (!v->pool_cfg || (v->nodes.mod_rev && !json_is_object(v->nodes.json)))
        v->inputs_ok = false;
    if (v->nodes.mod_rev && v->nodes.json && !json_is_object(v->nodes.json))
        mon__msg(b->plan, VS_MON_MSG_ERROR, "config/nodes: not a JSON object");
    if (v->pgs.mod_rev && !v->pgs.json)
        v->pgs_bad = true;
    if (v->pgs.json && vs_pgmap_from_json(v->pgs.json, &v->pgmap, err, sizeof(err)) < 0) {
        /* Its history is the only record of where data may still be: never guess. */
        mon__msg(b->plan, VS_MON_MSG_ERROR,
                 "config/pgs: %s: not replaced (delete it to place from scratch)", err);
        v->pgmap = NULL;
        v->pgs_bad = true;
    }
}

int mon__view_build(struct mon_view *v, const struct vs_meta_kv *kvs, unsigned n,
                    struct vs_mon_plan *plan)
{
    memset(v, 0, sizeof(*v));
    v->inputs_ok = true;
    struct build b = {.v = v, .plan = plan};
    int rc = (v->docs = json_array()) ? 0 : -ENOMEM;
    for (unsigned i = 0; rc == 0 && i < n; i++) {
        char key[VS_META_KEY_MAX + 1];
        uint32_t klen = VS_MIN(kvs[i].key_len, VS_META_KEY_MAX);
        memcpy(key, kvs[i].key, klen);
        key[klen] = 0;
        json_t *j = json_loadb((const char *)kvs[i].value, kvs[i].value_len, JSON_DECODE_ANY, NULL);
        if (j && json_array_append_new(v->docs, j) < 0)
            rc = -ENOMEM;
        if (rc == 0)
            rc = one_kv(&b, key, j, kvs[i].mod_rev);
    }
    if (rc == 0)
        rc = merge_osds(&b);
    free(b.src);
    if (rc < 0)
        return rc;
    if (v->n_states)
        qsort(v->states, v->n_states, sizeof(*v->states), cmp_state);
    parse_docs(&b);
    return 0;
}

void mon__view_free(struct mon_view *v)
{
    vs_placement_pools_free(v->pool_cfg);
    vs_pgmap_free(v->pgmap);
    free(v->osds);
    free(v->states);
    json_decref(v->docs);
    memset(v, 0, sizeof(*v));
}

const struct mon_osd *mon__view_osd(const struct mon_view *v, uint32_t id)
{
    uint32_t lo = 0, hi = v->n_osds;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (v->osds[mid].id == id)
            return &v->osds[mid];
        if (v->osds[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const struct mon_pgstate *mon__view_state(const struct mon_view *v, uint16_t pool, uint32_t pg)
{
    struct mon_pgstate key = {.pool = pool, .pg = pg};
    if (v->n_states == 0)
        return NULL;
    return bsearch(&key, v->states, v->n_states, sizeof(key), cmp_state);
}
