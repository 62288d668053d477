/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_meta.c -- the OSD and the metadata service (docs/data-path.md §2, §3, §8).
 *
 * Start, one phase after the other, each retried every second until it
 * succeeds (the service may be down or have no leader yet):
 *
 *   CLUSTER   read the service's cluster id; a store of another cluster is
 *             refused for good (the process exits); then the messengers start
 *   TAKEOVER  if osd/state/<id> still exists on an old lease (this OSD was
 *             killed and restarted before the lease expired), revoke that
 *             lease: its keys -- osd/state and our old pg/state locks -- go
 *   GRANT     grant a lease of osd_lease_ttl; the keeper renews it on the
 *             client's light path
 *   REGISTER  put osd/state/<id> on the lease
 *   LOAD      read config/global, config/pools, config/pgs and osd/state/ at
 *             one revision (one txn of four ranges), apply them, and watch
 *             each from the next revision
 *   RUN       the view is current; PGs start (osd_view.c)
 *
 * Outages (§8): nothing here stops the OSD. The keeper reports UNKNOWN while
 * the service is unreachable and PGs keep serving -- reads only while their
 * read lease from the rest of their set holds (osd_lease.h): a new primary
 * that took a PG over moves its locks, which stops them; watches resume by
 * themselves. Only a lease the service declares EXPIRED makes the OSD grant a
 * new one and register again; its PGs then re-peer (their pg/state locks went
 * with the old lease).
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MONS_MAX 16
#define RETRY_MS 1000

enum meta_phase { M_CLUSTER, M_TAKEOVER, M_GRANT, M_REGISTER, M_LOAD, M_RUN, M_CLOSED };

struct osd_meta_state {
    enum meta_phase phase;
    uv_timer_t retry;
    char *mons_copy;
    char *mons[MONS_MAX];
    unsigned n_mons;
    bool busy;               /* a phase op is in flight */
    bool warned;             /* an outage was logged */
    bool regrant;            /* the lease expired: grant and register again */
    struct vs_meta_watch *watch[3];
    bool closing;
};

static const char *const view_keys[3] = {"config/global", "config/pools", "config/pgs"};
#define PREFIX_OSD "osd/state/"

static void phase_run(struct vs_osd *osd);

bool osd__meta_up(const struct vs_osd *osd)
{
    return osd->meta && vs_meta_client_state(osd->meta) == VS_META_SERVICE_UP;
}

static void retry_cb(uv_timer_t *t)
{
    phase_run(t->data);
}

static void retry_later(struct vs_osd *osd, const char *what, int rc)
{
    struct osd_meta_state *ms = osd->ms;
    ms->busy = false;
    if (ms->closing)
        return;
    if (!ms->warned || rc != VS_EUNAVAILABLE)
        VS_WARN(OSD_LOG, "metadata service: %s: %s; retrying", what, vs_strerror(rc));
    ms->warned = true;
    uv_timer_start(&ms->retry, retry_cb, RETRY_MS, 0);
}

static void next_phase(struct vs_osd *osd, enum meta_phase p)
{
    osd->ms->busy = false;
    if (osd->ms->regrant && p > M_GRANT) {
        osd->ms->regrant = false;
        p = M_GRANT;
    }
    osd->ms->phase = p;
    phase_run(osd);
}

/* ---- CLUSTER ------------------------------------------------------------------- */


static void status_cb(void *ctx, int status, const struct vs_raft_status *st)
{
    struct vs_osd *osd = ctx;
    if (osd->ms->closing)
        return;
    if (status < 0 || st->cluster_id == 0)
        return retry_later(osd, "reading the cluster id", status < 0 ? status : -EAGAIN);
    if (st->cluster_id != osd->info.cluster_id) {
        osd->ms->busy = false;
        osd__fatal(osd, "the store belongs to cluster %016" PRIx64 ", but the metadata "
                   "service at %s is cluster %016" PRIx64 ": refusing to start (format the "
                   "device for this cluster, or point mon_address at its own cluster)",
                   osd->info.cluster_id, osd->cfg->mon_address, st->cluster_id);
        return;
    }
    osd->cluster_id = st->cluster_id;
    if (osd__net_start(osd) < 0) {
        osd->ms->busy = false;
        osd__fatal(osd, "cannot start the messengers");
        return;
    }
    next_phase(osd, M_TAKEOVER);
}

/* ---- TAKEOVER and GRANT ---------------------------------------------------------------- */

static void revoke_cb(void *ctx, int status, uint64_t id, uint64_t ttl_ms)
{
    struct vs_osd *osd = ctx;
    (void)ttl_ms;
    if (osd->ms->closing)
        return;
    if (status < 0 && status != VS_ELEASE)
        return retry_later(osd, "revoking our previous lease", status);
    VS_INFO(OSD_LOG, "revoked the lease %" PRIx64 " of our previous run", id);
    next_phase(osd, M_GRANT);
}

static void old_state_cb(void *ctx, int status, const struct vs_meta_op_result *res,
                         uint64_t revision)
{
    struct vs_osd *osd = ctx;
    (void)revision;
    if (osd->ms->closing)
        return;
    if (status < 0)
        return retry_later(osd, "reading osd/state", status);
    uint64_t old = res->n_kvs ? res->kvs[0].lease : 0;
    if (old == 0 || old == osd->lease)
        return next_phase(osd, M_GRANT);
    int rc = vs_meta_lease_revoke(osd->meta, old, revoke_cb, osd);
    if (rc < 0)
        retry_later(osd, "revoking our previous lease", rc);
}

static void lease_state_cb(void *ctx, enum vs_meta_lease_state state, uint64_t ttl_ms)
{
    struct vs_osd *osd = ctx;
    (void)ttl_ms;
    if (state == VS_META_LEASE_ALIVE) {
        VS_INFO(OSD_LOG, "lease %" PRIx64 " alive", osd->lease);
    } else if (state == VS_META_LEASE_UNKNOWN) {
        VS_WARN(OSD_LOG, "lease %" PRIx64 ": the metadata service does not answer; serving "
                "active PGs on", osd->lease);
    } else {
        VS_WARN(OSD_LOG, "lease %" PRIx64 " expired: registering again; PGs re-peer",
                osd->lease);
        osd->keeper = NULL; /* EXPIRED is final: the keeper is gone */
        osd->lease = 0;
        osd->registered = false;
        for (uint32_t i = 0; i < osd->pg_hash_size; i++)
            for (struct osd_pg *pg = osd->pg_hash[i]; pg; pg = pg->hnext) {
                pg->lock1 = false;
                osd__pg_repeer(pg, "our lease expired");
            }
        osd->ms->regrant = true;
        if (!osd->ms->busy && osd->ms->phase == M_RUN)
            next_phase(osd, M_GRANT);
    }
}

static void grant_cb(void *ctx, int status, uint64_t id, uint64_t ttl_ms)
{
    struct vs_osd *osd = ctx;
    if (osd->ms->closing)
        return; /* a lease granted now expires by itself */
    if (status < 0)
        return retry_later(osd, "granting a lease", status);
    osd->lease = id;
    int rc = vs_meta_lease_keep(osd->meta, id, ttl_ms, lease_state_cb, osd, &osd->keeper);
    if (rc < 0)
        return retry_later(osd, "keeping the lease", rc);
    next_phase(osd, M_REGISTER);
}

/* ---- REGISTER ---------------------------------------------------------------------- */

static char *state_json(struct vs_osd *osd)
{
    char host[256] = "localhost";
    if (osd->cfg->osd_host)
        snprintf(host, sizeof(host), "%s", osd->cfg->osd_host);
    else
        gethostname(host, sizeof(host) - 1);
    json_t *j = json_pack("{s:s,s:[s],s:s,s:I,s:I,s:s,s:I}", "state", "up", "addresses",
                          osd->addr, "host", host, "block_size",
                          (json_int_t)osd->block_size, "bitmap_granularity",
                          (json_int_t)VS_STORE_GRANULE, "immediate_commit",
                          osd->store_lazy ? "none" : "all", "size_bytes",
                          (json_int_t)(osd->info.block_count * osd->block_size));
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return s;
}

static void register_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct vs_osd *osd = ctx;
    (void)res;
    if (osd->ms->closing)
        return;
    if (status < 0 && status != VS_EINDOUBT)
        return retry_later(osd, "registering osd/state", status);
    if (status == VS_EINDOUBT) /* put again: it is idempotent */
        return retry_later(osd, "registering osd/state", status);
    VS_INFO(OSD_LOG, "registered on lease %" PRIx64 " (ttl %" PRIu64 " ms)", osd->lease,
            osd->cfg->osd_lease_ttl);
    osd->registered = true;
    next_phase(osd, osd->view_loaded ? M_RUN : M_LOAD);
}

static int do_register(struct vs_osd *osd)
{
    char key[64];
    snprintf(key, sizeof(key), PREFIX_OSD "%u", osd->id);
    char *v = state_json(osd);
    if (!v)
        return -ENOMEM;
    int rc = vs_meta_put(osd->meta, key, (uint32_t)strlen(key), v, (uint32_t)strlen(v),
                         osd->lease, 0, register_cb, osd);
    free(v);
    return rc;
}

/* ---- LOAD and watches ------------------------------------------------------------------ */

static void osd_key(struct vs_osd *osd, const struct vs_meta_kv *kv, bool deleted)
{
    const char *k = (const char *)kv->key;
    size_t plen = strlen(PREFIX_OSD);
    if (kv->key_len <= plen || kv->key_len > plen + 10 || memcmp(k, PREFIX_OSD, plen) != 0)
        return;
    uint64_t id = 0;
    for (size_t i = plen; i < kv->key_len; i++) {
        if (k[i] < '0' || k[i] > '9')
            return;
        id = id * 10 + (uint64_t)(k[i] - '0');
    }
    if (id == 0 || id > UINT32_MAX)
        return;
    osd__view_apply_osd(osd, (uint32_t)id, deleted ? NULL : kv->value,
                        deleted ? 0 : kv->value_len);
}

static void apply_kv(struct vs_osd *osd, const struct vs_meta_kv *kv, bool deleted)
{
    const uint8_t *v = deleted ? NULL : kv->value;
    uint32_t len = deleted ? 0 : kv->value_len;
    if (kv->key_len == strlen(view_keys[0]) && !memcmp(kv->key, view_keys[0], kv->key_len))
        osd__view_apply_global(osd, v, len);
    else if (kv->key_len == strlen(view_keys[1]) && !memcmp(kv->key, view_keys[1], kv->key_len))
        osd__view_apply_pools(osd, v, len);
    else if (kv->key_len == strlen(view_keys[2]) && !memcmp(kv->key, view_keys[2], kv->key_len))
        osd__view_apply_pgs(osd, v, len, kv->mod_rev);
    else
        osd_key(osd, kv, deleted);
}

static void watch_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t revision)
{
    struct vs_osd *osd = ctx;
    (void)revision;
    if (osd->ms->closing)
        return;
    if (status < 0) {
        /* VS_ECOMPACTED: we fell behind the history; read everything again. */
        VS_WARN(OSD_LOG, "watch ended: %s; reloading the view", vs_strerror(status));
        for (int i = 0; i < 3; i++)
            if (osd->ms->watch[i])
                vs_meta_watch_cancel(osd->ms->watch[i]);
        if (osd->watch_osd)
            vs_meta_watch_cancel(osd->watch_osd);
        memset(osd->ms->watch, 0, sizeof(osd->ms->watch));
        osd->watch_osd = NULL;
        if (osd->ms->phase == M_RUN)
            next_phase(osd, M_LOAD);
        return;
    }
    for (unsigned i = 0; i < n; i++)
        apply_kv(osd, &ev[i].kv, ev[i].type == VS_META_EVENT_DELETE);
    osd__view_refresh(osd);
}

static int start_watches(struct vs_osd *osd, uint64_t rev)
{
    struct osd_meta_state *ms = osd->ms;
    for (int i = 0; i < 3; i++) {
        int rc = vs_meta_watch(osd->meta, view_keys[i], (uint32_t)strlen(view_keys[i]), NULL, 0,
                               rev + 1, watch_cb, osd, &ms->watch[i]);
        if (rc < 0)
            return rc;
    }
    uint8_t end[32];
    uint32_t elen = vs_meta_prefix_end(PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end);
    return vs_meta_watch(osd->meta, PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end, elen, rev + 1,
                         watch_cb, osd, &osd->watch_osd);
}

static void load_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct vs_osd *osd = ctx;
    if (osd->ms->closing)
        return;
    if (status < 0)
        return retry_later(osd, "loading the cluster view", status);
    VS_ASSERT(res->n_ops == 4);
    bool seen[3] = {false, false, false};
    for (unsigned o = 0; o < 4; o++)
        for (unsigned i = 0; i < res->ops[o].n_kvs; i++) {
            if (o < 3)
                seen[o] = true;
            apply_kv(osd, &res->ops[o].kvs[i], false);
        }
    if (!seen[0])
        osd__view_apply_global(osd, NULL, 0);
    int rc = start_watches(osd, res->revision);
    if (rc < 0)
        return retry_later(osd, "watching the cluster view", rc);
    osd->view_loaded = true;
    VS_INFO(OSD_LOG, "cluster view loaded at revision %" PRIu64, res->revision);
    next_phase(osd, M_RUN);
}

static int do_load(struct vs_osd *osd)
{
    static uint8_t end[32];
    uint32_t elen = vs_meta_prefix_end(PREFIX_OSD, (uint32_t)strlen(PREFIX_OSD), end);
    struct vs_meta_op ops[4];
    memset(ops, 0, sizeof(ops));
    for (int i = 0; i < 3; i++) {
        ops[i].type = VS_META_OP_RANGE;
        ops[i].key = view_keys[i];
        ops[i].key_len = (uint32_t)strlen(view_keys[i]);
    }
    ops[3].type = VS_META_OP_RANGE;
    ops[3].key = PREFIX_OSD;
    ops[3].key_len = (uint32_t)strlen(PREFIX_OSD);
    ops[3].range_end = end;
    ops[3].range_end_len = elen;
    struct vs_meta_txn txn = {.success = ops, .n_success = 4};
    return vs_meta_txn(osd->meta, &txn, load_cb, osd);
}

/* ---- The phase driver -------------------------------------------------------------------- */

static void phase_run(struct vs_osd *osd)
{
    struct osd_meta_state *ms = osd->ms;
    if (ms->closing || ms->busy)
        return;
    char key[64];
    int rc = 0;
    ms->busy = true;
    switch (ms->phase) {
    case M_CLUSTER:
        rc = vs_meta_status(osd->meta, NULL, status_cb, osd);
        break;
    case M_TAKEOVER:
        snprintf(key, sizeof(key), PREFIX_OSD "%u", osd->id);
        rc = vs_meta_range(osd->meta, key, (uint32_t)strlen(key), NULL, 0, 0, 0, old_state_cb,
                           osd);
        break;
    case M_GRANT:
        rc = vs_meta_lease_grant(osd->meta, 0, osd->cfg->osd_lease_ttl, grant_cb, osd);
        break;
    case M_REGISTER:
        rc = do_register(osd);
        break;
    case M_LOAD:
        rc = do_load(osd);
        break;
    case M_RUN:
        ms->busy = false;
        if (ms->warned)
            VS_INFO(OSD_LOG, "metadata service: back");
        ms->warned = false;
        osd__view_refresh(osd);
        return;
    case M_CLOSED:
        ms->busy = false;
        return;
    }
    if (rc < 0)
        retry_later(osd, "request", rc);
}

static void service_state_cb(void *ctx, enum vs_meta_service_state state)
{
    struct vs_osd *osd = ctx;
    if (state == VS_META_SERVICE_DOWN)
        VS_WARN(OSD_LOG, "metadata service unreachable; active PGs keep serving");
    else
        VS_INFO(OSD_LOG, "metadata service reachable (leader %s)",
                vs_meta_client_leader(osd->meta));
    if (state == VS_META_SERVICE_UP)
        for (uint32_t i = 0; i < osd->pg_hash_size; i++)
            for (struct osd_pg *pg = osd->pg_hash[i]; pg; pg = pg->hnext)
                osd__pg_kick(pg);
}

int osd__meta_start(struct vs_osd *osd)
{
    struct osd_meta_state *ms = calloc(1, sizeof(*ms));
    if (!ms)
        return -ENOMEM;
    osd->ms = ms;
    ms->mons_copy = strdup(osd->cfg->mon_address);
    int n = ms->mons_copy ? vs_config_list_split(ms->mons_copy, ms->mons, MONS_MAX) : 0;
    if (n <= 0) {
        VS_ERROR(OSD_LOG, "mon_address: no member given");
        return -EINVAL;
    }
    ms->n_mons = (unsigned)n;
    struct vs_meta_client_opts o = {.members = (const char *const *)ms->mons,
                                    .n_members = ms->n_mons,
                                    .op_timeout_ms = 10000,
                                    .state_cb = service_state_cb,
                                    .state_ctx = osd};
    int rc = vs_meta_client_create(&osd->loop->uv, &o, &osd->meta);
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "metadata client: %s", vs_strerror(rc));
        return rc;
    }
    uv_timer_init(&osd->loop->uv, &ms->retry);
    ms->retry.data = osd;
    ms->phase = M_CLUSTER;
    phase_run(osd);
    return 0;
}

/* ---- Stop ----------------------------------------------------------------------------------- */

static void client_closed(void *ctx)
{
    struct vs_osd *osd = ctx;
    osd->meta = NULL;
    void (*cb)(struct vs_osd *) = osd->meta_closed_cb;
    free(osd->ms->mons_copy);
    free(osd->ms);
    osd->ms = NULL;
    cb(osd);
}

static void retry_closed(uv_handle_t *h)
{
    struct vs_osd *osd = h->data;
    vs_meta_client_close(osd->meta, client_closed, osd);
}

static void final_revoke_cb(void *ctx, int status, uint64_t id, uint64_t ttl_ms)
{
    struct vs_osd *osd = ctx;
    (void)ttl_ms;
    if (status < 0)
        VS_WARN(OSD_LOG, "revoking lease %" PRIx64 ": %s (it expires by itself)", id,
                vs_strerror(status));
    else
        VS_INFO(OSD_LOG, "lease %" PRIx64 " revoked", id);
    uv_close((uv_handle_t *)&osd->ms->retry, retry_closed);
}

void osd__meta_stop(struct vs_osd *osd, void (*cb)(struct vs_osd *osd))
{
    struct osd_meta_state *ms = osd->ms;
    osd->meta_closed_cb = cb;
    ms->closing = true;
    ms->phase = M_CLOSED;
    uv_timer_stop(&ms->retry);
    for (int i = 0; i < 3; i++)
        if (ms->watch[i])
            vs_meta_watch_cancel(ms->watch[i]);
    if (osd->watch_osd)
        vs_meta_watch_cancel(osd->watch_osd);
    osd->watch_osd = NULL;
    if (osd->keeper)
        vs_meta_lease_keep_stop(osd->keeper);
    osd->keeper = NULL;
    if (osd->lease && vs_meta_lease_revoke(osd->meta, osd->lease, final_revoke_cb, osd) == 0)
        return;
    uv_close((uv_handle_t *)&ms->retry, retry_closed);
}

/* ---- PG keys: lock #1, history, state ---------------------------------------------------- */

struct pg_txn {
    struct osd_pg *pg;
    osd_pg_meta_cb cb;
    char key_state[48], key_hist[48];
    char *value;
};

static struct pg_txn *pg_txn_new(struct osd_pg *pg, osd_pg_meta_cb cb)
{
    struct pg_txn *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->pg = pg;
    t->cb = cb;
    snprintf(t->key_state, sizeof(t->key_state), "pg/state/%u/%u", pg->pool, pg->num);
    snprintf(t->key_hist, sizeof(t->key_hist), "pg/history/%u/%u", pg->pool, pg->num);
    return t;
}

static void pg_txn_done(struct pg_txn *t, int rc)
{
    struct osd_pg *pg = t->pg;
    osd_pg_meta_cb cb = t->cb;
    free(t->value);
    free(t);
    VS_ASSERT(pg->meta_busy);
    pg->meta_busy = false;
    cb(pg, rc);
}

/* Sends txn for t's PG, which is then busy until pg_txn_done; on a refusal
 * t is freed here and the PG stays idle. */
static int pg_txn_submit(struct pg_txn *t, const struct vs_meta_txn *txn, vs_meta_txn_cb cb)
{
    int rc = vs_meta_txn(t->pg->osd->meta, txn, cb, t);
    if (rc < 0) {
        free(t->value);
        free(t);
        return rc;
    }
    t->pg->meta_busy = true;
    return 0;
}


static int pg_history_from(struct osd_pg *pg, const struct vs_meta_op_result *r)
{
    char err[160];
    if (r->n_kvs == 0) {
        memset(&pg->hist, 0, sizeof(pg->hist));
        return 0;
    }
    int rc = vs_pg_history_parse((const char *)r->kvs[0].value, r->kvs[0].value_len, &pg->hist,
                                 err, sizeof(err));
    if (rc < 0)
        VS_ERROR(OSD_LOG, "pg/history/%u/%u: %s: the PG cannot start until it is fixed",
                 pg->pool, pg->num, err);
    return rc;
}

static void lock_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct pg_txn *t = ctx;
    struct osd_pg *pg = t->pg;
    if (status < 0)
        return pg_txn_done(t, status);
    const struct vs_meta_op_result *st = res->succeeded ? NULL : &res->ops[0];
    if (st && st->n_kvs && st->kvs[0].lease != t->pg->osd->lease) {
        snprintf(pg->why, sizeof(pg->why), "pg/state is held by lease %" PRIx64 ": %.*s",
                 st->kvs[0].lease, (int)VS_MIN(st->kvs[0].value_len, 120u),
                 (const char *)st->kvs[0].value);
        return pg_txn_done(t, VS_ECOMPARE);
    }
    /* Ours: created now, or still on our lease from before. */
    int rc = pg_history_from(pg, &res->ops[1]);
    pg->hist_dirty = false;
    if (rc == 0) {
        pg->lock1 = true;
        free(pg->state_stored); /* unknown when the key was ours from before */
        pg->state_stored = NULL;
        if (res->succeeded) {
            pg->state_stored = t->value;
            t->value = NULL;
        }
    }
    pg_txn_done(t, rc);
}

int osd__meta_pg_lock(struct osd_pg *pg, osd_pg_meta_cb cb)
{
    struct vs_osd *osd = pg->osd;
    VS_ASSERT(!pg->meta_busy);
    if (!osd->meta || !osd->lease)
        return VS_EUNAVAILABLE;
    struct pg_txn *t = pg_txn_new(pg, cb);
    if (!t || !(t->value = osd__pg_state_json(pg))) {
        free(t);
        return -ENOMEM;
    }
    struct vs_meta_compare cmp = {.key = t->key_state, .key_len = (uint32_t)strlen(t->key_state),
                                  .target = VS_META_CMP_CREATE, .op = VS_META_EQ, .number = 0};
    struct vs_meta_op ok[2], fail[2];
    memset(ok, 0, sizeof(ok));
    ok[0] = (struct vs_meta_op){.type = VS_META_OP_PUT, .key = t->key_state,
                                .key_len = (uint32_t)strlen(t->key_state), .value = t->value,
                                .value_len = (uint32_t)strlen(t->value), .lease = osd->lease};
    ok[1] = (struct vs_meta_op){.type = VS_META_OP_RANGE, .key = t->key_hist,
                                .key_len = (uint32_t)strlen(t->key_hist)};
    fail[0] = (struct vs_meta_op){.type = VS_META_OP_RANGE, .key = t->key_state,
                                  .key_len = (uint32_t)strlen(t->key_state)};
    fail[1] = ok[1];
    struct vs_meta_txn txn = {.cmp = &cmp, .n_cmp = 1, .success = ok, .n_success = 2,
                              .failure = fail, .n_failure = 2};
    return pg_txn_submit(t, &txn, lock_cb);
}

static void guarded_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct pg_txn *t = ctx;
    if (status == 0 && !res->succeeded) {
        t->pg->lock1 = false;
        status = VS_ECOMPARE;
    }
    pg_txn_done(t, status);
}

/* A txn of one op guarded by "pg/state is on our lease". */
static int guarded(struct osd_pg *pg, struct pg_txn *t, const struct vs_meta_op *op)
{
    struct vs_osd *osd = pg->osd;
    struct vs_meta_compare cmp = {.key = t->key_state, .key_len = (uint32_t)strlen(t->key_state),
                                  .target = VS_META_CMP_LEASE, .op = VS_META_EQ,
                                  .number = osd->lease};
    struct vs_meta_txn txn = {.cmp = &cmp, .n_cmp = 1, .success = op, .n_success = 1};
    return pg_txn_submit(t, &txn, guarded_cb);
}

int osd__meta_pg_history(struct osd_pg *pg, osd_pg_meta_cb cb)
{
    VS_ASSERT(!pg->meta_busy);
    if (!pg->osd->meta || !pg->osd->lease || !pg->lock1)
        return VS_EUNAVAILABLE;
    struct pg_txn *t = pg_txn_new(pg, cb);
    if (!t || !(t->value = vs_pg_history_dump(&pg->hist))) {
        free(t);
        return -ENOMEM;
    }
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = t->key_hist,
                            .key_len = (uint32_t)strlen(t->key_hist), .value = t->value,
                            .value_len = (uint32_t)strlen(t->value)};
    return guarded(pg, t, &op);
}

int osd__meta_pg_state(struct osd_pg *pg, const char *value, osd_pg_meta_cb cb)
{
    VS_ASSERT(!pg->meta_busy);
    if (!pg->osd->meta || !pg->osd->lease || !pg->lock1)
        return VS_EUNAVAILABLE;
    struct pg_txn *t = pg_txn_new(pg, cb);
    if (!t || (value && !(t->value = strdup(value)))) {
        free(t);
        return -ENOMEM;
    }
    struct vs_meta_op op = {.type = value ? VS_META_OP_PUT : VS_META_OP_DELETE,
                            .key = t->key_state, .key_len = (uint32_t)strlen(t->key_state),
                            .value = t->value,
                            .value_len = t->value ? (uint32_t)strlen(t->value) : 0,
                            .lease = value ? pg->osd->lease : 0};
    return guarded(pg, t, &op);
}
