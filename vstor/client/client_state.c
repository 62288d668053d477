/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_state.c -- what the client knows of the cluster, and how it keeps it
 * current: it reads config/global, config/pools, config/pgs and osd/state/<id>,
 * then watches config/ and osd/state/ from the revisions it read (so no change
 * is missed), applying each document only when its mod_rev is newer than the
 * one it holds. A failed read is retried forever; a watch that ends with
 * VS_ECOMPACTED is replaced by a fresh read and watch. While the metadata
 * service is unreachable the client keeps its last view and I/O to PGs whose
 * primaries stay up goes on (docs/data-path.md section 8).
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_GLOBAL "config/global"
#define KEY_POOLS "config/pools"
#define KEY_PGS "config/pgs"
#define PREFIX_CONFIG "config/"
#define PREFIX_INODE "config/inode/"
#define PREFIX_OSD "osd/state/"

/* ---- Documents ------------------------------------------------------------------ */

static json_t *parse_json(struct vstor_client *c, const char *what, const uint8_t *v,
                          uint32_t len)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)v, len, 0, &jerr);
    if (!j)
        VS_ERROR(c->log_name, "%s: malformed JSON: %s; keeping the previous value", what,
                 jerr.text);
    return j;
}

static void apply_global(struct vstor_client *c, const uint8_t *v, uint32_t len)
{
    c->block_size = CLIENT_BLOCK_SIZE_DEFAULT;
    c->global_lazy = false;
    if (!v)
        return;
    json_t *j = parse_json(c, KEY_GLOBAL, v, len);
    if (!j)
        return;
    json_t *bs = json_object_get(j, "block_size");
    json_int_t b = json_is_integer(bs) ? json_integer_value(bs) : 0;
    if (b >= 4096 && b <= (1 << 27) && (b & (b - 1)) == 0)
        c->block_size = (uint32_t)b;
    else if (bs)
        VS_ERROR(c->log_name, "config/global: block_size must be a power of 2 in 4k..128m");
    const char *ic = json_string_value(json_object_get(j, "immediate_commit"));
    c->global_lazy = ic && strcmp(ic, "all") != 0;
    json_decref(j);
}

static void apply_pools(struct vstor_client *c, const uint8_t *v, uint32_t len)
{
    struct vs_placement_pools *pools = NULL;
    char err[VS_ERRMSG_SIZE];
    if (v && vs_placement_pools_parse((const char *)v, len, &pools, err, sizeof(err)) < 0) {
        VS_ERROR(c->log_name, "config/pools: %s; keeping the previous pools", err);
        return;
    }
    vs_placement_pools_free(c->pools);
    c->pools = pools;
}

static void apply_pgs(struct vstor_client *c, const uint8_t *v, uint32_t len)
{
    struct vs_pgmap *map = NULL;
    char err[VS_ERRMSG_SIZE];
    if (v && vs_pgmap_parse((const char *)v, len, &map, err, sizeof(err)) < 0) {
        VS_ERROR(c->log_name, "config/pgs: %s; keeping the previous PG map", err);
        return;
    }
    vs_pgmap_free(c->pgmap);
    c->pgmap = map;
    client__replay_check_map(c);
}

/* Applies a document if mod_rev is newer than what we hold (v NULL: deleted). */
static void apply_doc(struct vstor_client *c, const char *key, uint32_t key_len,
                      const uint8_t *v, uint32_t len, uint64_t mod_rev)
{
    struct client_doc *doc = NULL;
    void (*fn)(struct vstor_client *, const uint8_t *, uint32_t) = NULL;
    if (key_len == strlen(KEY_GLOBAL) && memcmp(key, KEY_GLOBAL, key_len) == 0)
        doc = &c->doc_global, fn = apply_global;
    else if (key_len == strlen(KEY_POOLS) && memcmp(key, KEY_POOLS, key_len) == 0)
        doc = &c->doc_pools, fn = apply_pools;
    else if (key_len == strlen(KEY_PGS) && memcmp(key, KEY_PGS, key_len) == 0)
        doc = &c->doc_pgs, fn = apply_pgs;
    if (!doc || (mod_rev && mod_rev <= doc->mod_rev))
        return;
    doc->mod_rev = mod_rev;
    fn(c, v, len);
}

/* ---- Images ---------------------------------------------------------------------- */

int client__image_apply(struct vstor_image *img, const uint8_t *v, uint32_t len,
                        uint64_t mod_rev)
{
    struct vstor_client *c = img->c;
    if (mod_rev && mod_rev <= img->mod_rev)
        return 0;
    img->mod_rev = mod_rev;
    if (!v) {
        img->removed = true;
        return VS_ENOIMAGE;
    }
    json_t *j = parse_json(c, "config/inode", v, len);
    json_t *size = j ? json_object_get(j, "size") : NULL;
    if (!json_is_integer(size) || json_integer_value(size) < 0) {
        VS_ERROR(c->log_name, "image %s: config/inode has no valid size", img->name);
        json_decref(j);
        return img->registered ? 0 : -EINVAL;
    }
    img->size = (uint64_t)json_integer_value(size);
    const char *name = json_string_value(json_object_get(j, "name"));
    if (name)
        snprintf(img->name, sizeof(img->name), "%s", name);
    img->readonly = json_is_true(json_object_get(j, "readonly"));
    img->removed = json_is_true(json_object_get(j, "deleted"));
    img->registered = true;
    json_decref(j);
    return img->removed ? VS_ENOIMAGE : 0;
}

/* config/inode/<pool>/<num> -> inode, or 0 when the key is not of that shape. */
static uint64_t inode_of_key(const char *key, uint32_t key_len)
{
    char buf[64];
    uint32_t plen = (uint32_t)strlen(PREFIX_INODE);
    if (key_len <= plen || key_len - plen >= sizeof(buf))
        return 0;
    memcpy(buf, key + plen, key_len - plen);
    buf[key_len - plen] = 0;
    unsigned long long pool, num;
    char tail;
    if (sscanf(buf, "%llu/%llu%c", &pool, &num, &tail) != 2 || pool == 0 || pool > 0xffff ||
        num == 0 || num >= (1ull << 48))
        return 0;
    return (uint64_t)pool << 48 | num;
}

static void apply_inode_event(struct vstor_client *c, const struct vs_meta_event *ev)
{
    uint64_t inode = inode_of_key((const char *)ev->kv.key, ev->kv.key_len);
    if (!inode)
        return;
    for (struct vstor_image *img = c->images; img; img = img->next) {
        if (img->inode != inode || !img->registered)
            continue;
        bool del = ev->type == VS_META_EVENT_DELETE;
        if (client__image_apply(img, del ? NULL : ev->kv.value, ev->kv.value_len,
                                ev->kv.mod_rev) == VS_ENOIMAGE)
            VS_WARN(c->log_name, "image %s was removed", img->name);
    }
}

/* ---- OSDs -------------------------------------------------------------------------- */

struct client_osd *client__osd_find(struct vstor_client *c, uint32_t id)
{
    uint32_t lo = 0, hi = c->n_osds;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (c->osds[mid]->id == id)
            return c->osds[mid];
        if (c->osds[mid]->id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void osd_remove(struct vstor_client *c, uint32_t id)
{
    for (uint32_t i = 0; i < c->n_osds; i++) {
        if (c->osds[i]->id != id)
            continue;
        struct client_osd *o = c->osds[i];
        memmove(&c->osds[i], &c->osds[i + 1], (c->n_osds - i - 1) * sizeof(*c->osds));
        c->n_osds--;
        client__osd_detach(c, o);
        return;
    }
}

static void osd_add(struct vstor_client *c, uint32_t id, const char *addr)
{
    if (c->n_osds == c->cap_osds) {
        uint32_t cap = c->cap_osds ? c->cap_osds * 2 : 16;
        struct client_osd **n = realloc(c->osds, cap * sizeof(*n));
        VS_ASSERTF(n, "out of memory for the OSD table");
        c->osds = n, c->cap_osds = cap;
    }
    struct client_osd *o = calloc(1, sizeof(*o));
    VS_ASSERTF(o, "out of memory for the OSD table");
    o->id = id;
    snprintf(o->addr, sizeof(o->addr), "%s", addr);
    uint32_t i = c->n_osds;
    while (i > 0 && c->osds[i - 1]->id > id) {
        c->osds[i] = c->osds[i - 1];
        i--;
    }
    c->osds[i] = o;
    c->n_osds++;
}

static void apply_osd(struct vstor_client *c, const struct vs_meta_kv *kv, bool deleted)
{
    uint32_t plen = (uint32_t)strlen(PREFIX_OSD);
    char idbuf[16];
    if (kv->key_len <= plen || kv->key_len - plen >= sizeof(idbuf))
        return;
    memcpy(idbuf, kv->key + plen, kv->key_len - plen);
    idbuf[kv->key_len - plen] = 0;
    unsigned long id = strtoul(idbuf, NULL, 10);
    if (id == 0 || id > UINT32_MAX)
        return;
    const char *addr = NULL;
    json_t *j = deleted ? NULL : parse_json(c, "osd/state", kv->value, kv->value_len);
    if (j)
        addr = json_string_value(json_array_get(json_object_get(j, "addresses"), 0));
    struct client_osd *o = client__osd_find(c, (uint32_t)id);
    if (!o || !addr || strcmp(o->addr, addr) != 0) {
        if (o)
            osd_remove(c, (uint32_t)id);
        if (addr)
            osd_add(c, (uint32_t)id, addr);
    }
    json_decref(j);
}

/* ---- Loading and watching ------------------------------------------------------------ */

static void load_done(struct vstor_client *c);

static void range_config_cb(void *ctx, int status, const struct vs_meta_op_result *res,
                            uint64_t revision)
{
    struct vstor_client *c = ctx;
    if (c->state == CL_CLOSING)
        return;
    if (status < 0) {
        c->load_failed = true;
        VS_WARN(c->log_name, "metadata service: reading the cluster state: %s; retrying",
                vs_strerror(status));
    } else {
        if (!c->load_rev_config || revision < c->load_rev_config)
            c->load_rev_config = revision;
        /* A missing document reads as deleted at revision 0 (defaults). */
        for (unsigned i = 0; i < res->n_kvs; i++)
            apply_doc(c, (const char *)res->kvs[i].key, res->kvs[i].key_len,
                      res->kvs[i].value, res->kvs[i].value_len, res->kvs[i].mod_rev);
    }
    load_done(c);
}

static void range_osd_cb(void *ctx, int status, const struct vs_meta_op_result *res,
                         uint64_t revision)
{
    struct vstor_client *c = ctx;
    if (c->state == CL_CLOSING)
        return;
    if (status < 0) {
        c->load_failed = true;
    } else {
        c->osd_rev = revision;
        /* OSDs that vanished while we were not watching. */
        for (uint32_t i = c->n_osds; i-- > 0;) {
            bool seen = false;
            char key[32];
            int n = snprintf(key, sizeof(key), PREFIX_OSD "%u", c->osds[i]->id);
            for (unsigned k = 0; k < res->n_kvs && !seen; k++)
                seen = res->kvs[k].key_len == (uint32_t)n &&
                       memcmp(res->kvs[k].key, key, (size_t)n) == 0;
            if (!seen)
                osd_remove(c, c->osds[i]->id);
        }
        for (unsigned i = 0; i < res->n_kvs; i++)
            apply_osd(c, &res->kvs[i], false);
    }
    load_done(c);
}

static void watch_config_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                            uint64_t revision);
static void watch_osd_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                         uint64_t revision);

static int start_watches(struct vstor_client *c)
{
    uint8_t end[64];
    uint32_t elen = vs_meta_prefix_end(PREFIX_CONFIG, (uint32_t)strlen(PREFIX_CONFIG), end);
    int rc = c->meta->watch(c->m, PREFIX_CONFIG, (uint32_t)strlen(PREFIX_CONFIG), end, elen,
                            c->load_rev_config + 1, watch_config_cb, c, &c->watch_config);
    if (rc < 0)
        return rc;
    elen = vs_meta_prefix_end(PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end);
    rc = c->meta->watch(c->m, PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end, elen,
                        c->osd_rev + 1, watch_osd_cb, c, &c->watch_osd);
    if (rc < 0) {
        c->meta->watch_cancel(c->m, c->watch_config);
        c->watch_config = NULL;
    }
    return rc;
}

static void load_done(struct vstor_client *c)
{
    VS_ASSERT(c->loads_pending > 0);
    if (--c->loads_pending > 0)
        return;
    if (c->load_failed || start_watches(c) < 0) {
        client__meta_retry(c);
        return;
    }
    if (c->state == CL_LOADING) {
        c->state = CL_READY;
        VS_DEBUG_LOG(c->log_name, "cluster state loaded: %u OSDs", c->n_osds);
    }
    client__state_ready(c);
}

/* Reads the four documents, then watches from the revisions read. */
void client__state_start(struct vstor_client *c)
{
    static const char *const keys[] = {KEY_GLOBAL, KEY_POOLS, KEY_PGS};
    VS_ASSERT(c->loads_pending == 0);
    client__state_stop(c);
    c->load_failed = false;
    c->load_rev_config = 0;
    c->loads_pending = 1; /* held until every read is issued */
    for (unsigned i = 0; i < 3; i++) {
        c->loads_pending++;
        if (c->meta->range(c->m, keys[i], (uint32_t)strlen(keys[i]), NULL, 0, range_config_cb,
                           c) < 0) {
            c->load_failed = true;
            c->loads_pending--;
        }
    }
    uint8_t end[64];
    uint32_t elen = vs_meta_prefix_end(PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end);
    c->loads_pending++;
    if (c->meta->range(c->m, PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end, elen, range_osd_cb,
                       c) < 0) {
        c->load_failed = true;
        c->loads_pending--;
    }
    load_done(c);
}

void client__state_stop(struct vstor_client *c)
{
    if (c->watch_config)
        c->meta->watch_cancel(c->m, c->watch_config);
    if (c->watch_osd)
        c->meta->watch_cancel(c->m, c->watch_osd);
    c->watch_config = c->watch_osd = NULL;
}

void client__state_free(struct vstor_client *c)
{
    vs_placement_pools_free(c->pools);
    vs_pgmap_free(c->pgmap);
    c->pools = NULL;
    c->pgmap = NULL;
    for (uint32_t i = 0; i < c->n_osds; i++)
        free(c->osds[i]); /* their connections died with the messenger */
    free(c->osds);
    c->osds = NULL;
    c->n_osds = c->cap_osds = 0;
}

/* A watch ended: re-read everything and watch again (I/O goes on meanwhile). */
static void watch_ended(struct vstor_client *c, int status, const char *what)
{
    if (status == -ECANCELED || c->state == CL_CLOSING)
        return;
    VS_WARN(c->log_name, "metadata service: watch on %s ended: %s; reloading", what,
            vs_strerror(status));
    /* The other watch may still run: client__state_start replaces both. */
    if (what[0] == 'c')
        c->watch_config = NULL;
    else
        c->watch_osd = NULL;
    if (c->loads_pending == 0)
        client__state_start(c);
}

static void watch_config_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                            uint64_t revision)
{
    struct vstor_client *c = ctx;
    (void)revision;
    if (status < 0) {
        watch_ended(c, status, PREFIX_CONFIG);
        return;
    }
    uint32_t ilen = (uint32_t)strlen(PREFIX_INODE);
    for (unsigned i = 0; i < n; i++) {
        const struct vs_meta_kv *kv = &ev[i].kv;
        bool del = ev[i].type == VS_META_EVENT_DELETE;
        if (kv->key_len > ilen && memcmp(kv->key, PREFIX_INODE, ilen) == 0)
            apply_inode_event(c, &ev[i]);
        else
            apply_doc(c, (const char *)kv->key, kv->key_len, del ? NULL : kv->value,
                      kv->value_len, kv->mod_rev);
    }
    client__state_ready(c);
}

static void watch_osd_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                         uint64_t revision)
{
    struct vstor_client *c = ctx;
    (void)revision;
    if (status < 0) {
        watch_ended(c, status, PREFIX_OSD);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        apply_osd(c, &ev[i].kv, ev[i].type == VS_META_EVENT_DELETE);
    client__state_ready(c);
}

/* ---- Placement --------------------------------------------------------------------- */

const struct vs_placement_pool *client__pool(struct vstor_client *c, uint16_t pool)
{
    return c->pools ? vs_placement_pools_find(c->pools, pool) : NULL;
}

uint32_t client__object_size(struct vstor_client *c, const struct vs_placement_pool *p)
{
    uint64_t bs = p && p->block_size ? p->block_size : c->block_size;
    return (uint32_t)(bs * (p ? vs_placement_pool_data_chunks(p) : 1));
}

bool client__pool_lazy(struct vstor_client *c, const struct vs_placement_pool *p)
{
    if (p && p->immediate_commit)
        return strcmp(p->immediate_commit, "all") != 0;
    return c->global_lazy;
}

/* pg = stripe / pg_stripe_size % pg_count (docs/data-path.md section 1). */
int client__locate(struct vstor_client *c, uint64_t inode, uint64_t offset, uint32_t *pg,
                   uint32_t *primary)
{
    uint16_t pool_id = (uint16_t)vs_net_inode_pool(inode);
    const struct vs_placement_pool *p = client__pool(c, pool_id);
    const struct vs_pgmap_pool *mp = c->pgmap ? vs_pgmap_find(c->pgmap, pool_id) : NULL;
    if (!p || !mp || mp->pg_count == 0)
        return -EAGAIN;
    uint64_t osize = client__object_size(c, p);
    uint64_t stripe = offset / osize * osize;
    uint64_t pss = p->pg_stripe_size ? p->pg_stripe_size : osize;
    *pg = (uint32_t)(stripe / pss % mp->pg_count);
    const struct vs_pgmap_pg *e = &mp->pgs[*pg];
    *primary = e->pause ? 0 : e->primary;
    return *primary ? 0 : -EAGAIN;
}

/* The open path read config/pools itself (kv NULL: the key is absent). */
void client__pools_apply(struct vstor_client *c, const struct vs_meta_kv *kv)
{
    if (kv)
        apply_doc(c, KEY_POOLS, (uint32_t)strlen(KEY_POOLS), kv->value, kv->value_len,
                  kv->mod_rev);
}

/* Something changed (a document, an OSD, the client became ready): everything
 * waiting on the cluster state gets another chance. */
void client__state_ready(struct vstor_client *c)
{
    if (c->state != CL_READY)
        return;
    client__images_ready(c);
    client__retry_all(c);
    client__replay_pump(c);
    client__sync_try(c);
    client__pump(c);
}
