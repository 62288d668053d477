/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor.c -- the monitor's shell on the mon's libuv loop: leadership,
 * watches, debouncing, reading, proposing, retrying. The decisions are made
 * by the pure core (vs_mon_plan, vs_mon_stats_fold).
 *
 *            leader(true)                        watch event (relevant key)
 *   IDLE ----------------> ACTIVE: plan now  <------------------------------+
 *    ^                       |                                              |
 *    | leader(false)         v  plan timer (change_delay after the first    |
 *    +---------------- read all keys (one revision, synchronous)  change)   |
 *                            |                                              |
 *                     vs_mon_plan() --- empty ---> wait for changes --------+
 *                            | txn
 *                     propose (one at a time) --- conflict/error: retry after
 *                            |                     back-off (100 ms .. 5 s)
 *                         applied: changes that arrived meanwhile plan again
 *
 * Rules:
 *   (1) One plan txn in flight at a time; changes arriving meanwhile set
 *       `dirty` and are planned after it completes.
 *   (2) Every read, plan and txn belongs to a generation (bumped on each
 *       leadership change): a callback of an older generation only frees
 *       its context.
 *   (3) A txn callback may come after vs_monitor_close (the server fails
 *       pending requests when it closes): the monitor orphans its pending
 *       contexts on close, and an orphan callback touches nothing else.
 *   (4) The statistics fold runs on libuv's thread pool (it is O(OSDs x
 *       images) and would hold up the member's heartbeats): one at a time,
 *       owning a copy of the keys and the fold state; the monitor frees
 *       itself only after it returns (monitor_unref).
 */
#include "monitor.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MAX_MS 5000u

struct pending {
    struct vs_monitor *m; /* NULL once orphaned by close */
    struct pending *next, *prev;
    uint64_t gen;
    bool stats;
    bool published, solved;
};

struct vs_monitor {
    uv_loop_t *loop;
    struct vs_raft_server *srv;
    struct vs_monitor_opts o;
    uv_timer_t plan_timer, stats_timer;
    unsigned handles_open;
    bool active, closing;
    uint64_t gen, seed;
    uint64_t watch_ids[4];
    unsigned n_watches;
    bool dirty, in_flight, stats_in_flight;
    uint64_t retry_ms;
    uint64_t msgs_hash; /* of the messages logged last */
    struct vs_mon_stats *stats;
    struct vs_mon_stats *fold_stats; /* the fold running on the thread pool, if any */
    struct pending *pending;
    struct vs_monitor_status st;
    void (*close_cb)(void *ctx);
    void *close_ctx;
};

static void emit(struct vs_monitor *m, enum vs_monitor_event ev, uint64_t rev)
{
    if (m->o.event_cb)
        m->o.event_cb(m->o.event_ctx, ev, rev);
}

/* ---- Reading: key/values owned until kvs_free ---- */

struct kvs {
    struct vs_meta_kv *kv;
    unsigned n, cap;
    uint64_t revision;
    int rc;
};

static void kvs_free(struct kvs *k)
{
    for (unsigned i = 0; i < k->n; i++)
        free((void *)k->kv[i].key);
    free(k->kv);
    memset(k, 0, sizeof(*k));
}

static void range_cb(void *ctx, int status, const struct vs_meta_op_result *res, uint64_t rev)
{
    struct kvs *k = ctx;
    k->revision = rev;
    if (status < 0) {
        k->rc = status;
        return;
    }
    for (unsigned i = 0; i < res->n_kvs && k->rc == 0; i++) {
        const struct vs_meta_kv *src = &res->kvs[i];
        if (k->n == k->cap) {
            unsigned cap = k->cap ? k->cap * 2 : 256;
            struct vs_meta_kv *p = realloc(k->kv, cap * sizeof(*p));
            if (!p) {
                k->rc = -ENOMEM;
                return;
            }
            k->kv = p, k->cap = cap;
        }
        uint8_t *mem = malloc((size_t)src->key_len + src->value_len + 1);
        if (!mem) {
            k->rc = -ENOMEM;
            return;
        }
        memcpy(mem, src->key, src->key_len);
        memcpy(mem + src->key_len, src->value, src->value_len);
        k->kv[k->n] = *src;
        k->kv[k->n].key = mem;
        k->kv[k->n].value = mem + src->key_len;
        k->n++;
    }
}

/* Reads every key of keys[] (an entry ending in '/' is a prefix). The in-process
 * range runs synchronously, so all of them see one revision. */
static int read_keys(struct vs_monitor *m, const char *const *keys, bool vol, struct kvs *k)
{
    for (unsigned i = 0; keys[i] && k->rc == 0; i++) {
        size_t len = strlen(keys[i]);
        uint8_t end[VS_META_KEY_MAX + 1];
        struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = keys[i],
                                .key_len = (uint32_t)len};
        if (keys[i][len - 1] == '/') {
            op.range_end = end;
            op.range_end_len = vs_meta_prefix_end(keys[i], (uint32_t)len, end);
        }
        int rc = vol ? vs_raft_server_volatile_range(m->srv, &op, range_cb, k)
                     : vs_raft_server_range(m->srv, &op, range_cb, k);
        if (rc < 0)
            k->rc = rc;
    }
    return k->rc;
}

/* ---- Proposing ---- */

static struct pending *pending_new(struct vs_monitor *m, bool stats)
{
    struct pending *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    *p = (struct pending){.m = m, .gen = m->gen, .stats = stats, .next = m->pending};
    if (m->pending)
        m->pending->prev = p;
    m->pending = p;
    return p;
}

static void pending_unlink(struct pending *p)
{
    if (p->m) {
        if (p->prev)
            p->prev->next = p->next;
        else
            p->m->pending = p->next;
        if (p->next)
            p->next->prev = p->prev;
    }
    free(p);
}


static void plan_timer_cb(uv_timer_t *t);

/* Plans after delay_ms, unless a plan is already due sooner (bursts coalesce:
 * the first change arms the timer, later ones ride along). */
static void schedule(struct vs_monitor *m, uint64_t delay_ms)
{
    m->dirty = true;
    if (!m->active || m->in_flight || m->closing)
        return; /* rule 1: planned when the txn in flight completes */
    if (uv_is_active((uv_handle_t *)&m->plan_timer) &&
        uv_timer_get_due_in(&m->plan_timer) <= delay_ms)
        return;
    uv_timer_start(&m->plan_timer, plan_timer_cb, delay_ms, 0);
}

static void log_msgs(struct vs_monitor *m, const struct vs_mon_plan *plan)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned i = 0; i < plan->n_msgs; i++)
        for (const char *c = plan->msgs[i].text; *c; c++)
            h = (h ^ (uint8_t)*c) * 0x100000001b3ull;
    if (h == m->msgs_hash)
        return; /* the same problems as last time: said already */
    m->msgs_hash = h;
    for (unsigned i = 0; i < plan->n_msgs; i++) {
        const struct vs_mon_msg *g = &plan->msgs[i];
        enum vs_log_level lv = g->level == VS_MON_MSG_ERROR  ? VS_LOG_ERROR
                               : g->level == VS_MON_MSG_WARN ? VS_LOG_WARN
                                                             : VS_LOG_INFO;
        VS_LOG(lv, "mon", "%s", g->text);
    }
}

static void retry_later(struct vs_monitor *m)
{
    uint64_t d = m->retry_ms;
    m->retry_ms = VS_MIN(m->retry_ms * 2, RETRY_MAX_MS);
    schedule(m, d);
}

static void plan_txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct pending *p = ctx;
    struct vs_monitor *m = p->m;
    if (!m || p->gen != m->gen) { /* rules 2 and 3 */
        pending_unlink(p);
        return;
    }
    m->in_flight = false;
    if (status < 0) {
        m->st.errors++;
        VS_WARN("mon", "publishing failed: %s: retrying", vs_strerror(status));
        retry_later(m);
    } else if (!res->succeeded) {
        m->st.conflicts++;
        emit(m, VS_MONITOR_CONFLICT, res->revision);
        VS_DEBUG_LOG("mon", "conflict at revision %" PRIu64 ": re-reading", res->revision);
        retry_later(m);
    } else {
        m->st.publishes += p->published;
        m->st.solves += p->solved;
        m->st.last_revision = res->revision;
        m->retry_ms = m->o.retry_delay_ms;
        emit(m, VS_MONITOR_APPLIED, res->revision);
        if (m->dirty)
            schedule(m, m->o.change_delay_ms);
    }
    pending_unlink(p);
}

static int propose(struct vs_monitor *m, struct vs_mon_plan *plan)
{
    struct pending *p = pending_new(m, false);
    if (!p)
        return -ENOMEM;
    p->published = plan->publish;
    p->solved = plan->solved;
    struct vs_meta_txn txn;
    vs_mon_txn_view(&plan->txn, &txn);
    emit(m, VS_MONITOR_PROPOSING, 0);
    int rc = vs_raft_server_txn(m->srv, &txn, plan_txn_cb, p);
    if (rc < 0) {
        pending_unlink(p);
        return rc;
    }
    m->in_flight = true;
    return 0;
}

/* The monitor runs on the member's loop: a long step delays the member's
 * heartbeats, and a step longer than the election timeout costs the
 * leadership. Say so, with the time, so it can be seen. */
static void warn_slow(const char *what, uint64_t t0_us, unsigned n_keys, bool on_loop)
{
    uint64_t us = vs_clock_mono_us() - t0_us;
    if (us >= 200000)
        VS_WARN("mon", "%s of %u keys took %" PRIu64 " ms%s", what, n_keys, us / 1000,
                on_loop ? ", holding up the member's loop" : " (on the thread pool)");
}

static void run_plan(struct vs_monitor *m)
{
    uint64_t t0 = vs_clock_mono_us();
    struct kvs k = {0};
    struct vs_mon_plan plan;
    struct vs_mon_plan_opts po = {.seed = m->seed};
    m->dirty = false;
    int rc = read_keys(m, vs_mon_read_keys, false, &k);
    if (rc == 0)
        rc = vs_mon_plan(k.kv, k.n, &po, &plan);
    warn_slow("planning", t0, k.n, true);
    kvs_free(&k);
    if (rc < 0) {
        m->st.errors++;
        VS_WARN("mon", "planning failed: %s: retrying", vs_strerror(rc));
        retry_later(m);
        return;
    }
    m->st.plans++;
    log_msgs(m, &plan);
    if (plan.txn.n_ops == 0) {
        emit(m, VS_MONITOR_IDLE, k.revision);
    } else if ((rc = propose(m, &plan)) < 0) {
        m->st.errors++;
        if (rc == -EINVAL) /* e.g. a config/pgs bigger than the service's value limit */
            VS_ERROR("mon", "the metadata service refused the monitor's transaction (%u ops, "
                            "largest value over mon_max_value?): retrying",
                     plan.txn.n_ops);
        else
            VS_WARN("mon", "proposing failed: %s: retrying", vs_strerror(rc));
        retry_later(m);
    }
    vs_mon_plan_free(&plan);
}

static void plan_timer_cb(uv_timer_t *t)
{
    struct vs_monitor *m = t->data;
    if (m->active && !m->in_flight && !m->closing)
        run_plan(m);
}

/* ---- Statistics ---- */

static void stats_txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct pending *p = ctx;
    struct vs_monitor *m = p->m;
    if (m && p->gen == m->gen) {
        m->stats_in_flight = false;
        if (status == 0 && res->succeeded) {
            m->st.stats_writes++;
            emit(m, VS_MONITOR_STATS, res->revision);
        } else if (status < 0) {
            VS_DEBUG_LOG("mon", "stats write failed: %s", vs_strerror(status));
        }
    }
    pending_unlink(p);
}

/* The fold parses every OSD's report (100 OSDs x 1,000 images is 10 MB of
 * JSON) and is O(OSDs x images): it runs on libuv's thread pool, never on
 * the member's loop, whose heartbeats it would otherwise hold up until the
 * followers elect another leader. The keys are copied on the loop (one
 * revision); the worker owns them, the fold state and the txn until
 * fold_after() runs back on the loop. One fold at a time (m->fold_stats). */
struct fold_work {
    uv_work_t req;
    struct vs_monitor *m;
    uint64_t gen, now_ms, t0_us;
    struct vs_mon_stats *stats;
    struct kvs k;
    struct vs_mon_txn txn;
    int rc;
};

static void monitor_unref(struct vs_monitor *m);

static void fold_run(uv_work_t *req)
{
    struct fold_work *w = req->data;
    w->rc = vs_mon_stats_fold(w->stats, w->now_ms, w->k.kv, w->k.n, &w->txn);
}

static void fold_after(uv_work_t *req, int status)
{
    struct fold_work *w = req->data;
    struct vs_monitor *m = w->m;
    warn_slow("the statistics fold", w->t0_us, w->k.n, false);
    m->fold_stats = NULL;
    m->st.stats_folding = false;
    m->st.stats_folds++;
    if (w->stats != m->stats)
        vs_mon_stats_free(w->stats); /* the monitor stopped meanwhile (stop()) */
    int rc = status < 0 ? status : w->rc;
    bool current = !m->closing && m->active && w->gen == m->gen;
    struct pending *p = current && rc == 0 && w->txn.n_ops ? pending_new(m, true) : NULL;
    if (p) {
        struct vs_meta_txn view;
        vs_mon_txn_view(&w->txn, &view);
        rc = vs_raft_server_txn(m->srv, &view, stats_txn_cb, p);
        if (rc < 0)
            pending_unlink(p);
        else
            m->stats_in_flight = true;
    }
    if (rc < 0 && current)
        VS_DEBUG_LOG("mon", "stats fold failed: %s", vs_strerror(rc));
    kvs_free(&w->k);
    vs_mon_txn_free(&w->txn);
    free(w);
    monitor_unref(m);
}

static void stats_timer_cb(uv_timer_t *t)
{
    struct vs_monitor *m = t->data;
    if (!m->active || m->stats_in_flight || !m->stats || m->fold_stats)
        return;
    static const char *const vol[] = {VS_MON_STATS_VOLATILE, NULL};
    struct fold_work *w = calloc(1, sizeof(*w));
    if (!w)
        return;
    *w = (struct fold_work){.m = m, .gen = m->gen, .now_ms = uv_now(m->loop),
                            .t0_us = vs_clock_mono_us(), .stats = m->stats};
    w->req.data = w;
    vs_mon_txn_init(&w->txn);
    int rc = read_keys(m, vs_mon_stats_keys, false, &w->k);
    if (rc == 0)
        rc = read_keys(m, vol, true, &w->k);
    if (rc == 0)
        rc = uv_queue_work(m->loop, &w->req, fold_run, fold_after);
    if (rc < 0) {
        VS_DEBUG_LOG("mon", "stats fold failed: %s", vs_strerror(rc));
        kvs_free(&w->k);
        vs_mon_txn_free(&w->txn);
        free(w);
        return;
    }
    m->fold_stats = m->stats;
    m->st.stats_folding = true;
    m->handles_open++; /* the monitor outlives the work (monitor_unref) */
}

/* ---- Watches ---- */

/* Keys whose change may change the plan: not images, not statistics. */
static bool relevant(const struct vs_meta_kv *kv)
{
    for (unsigned i = 0; vs_mon_read_keys[i]; i++) {
        size_t len = strlen(vs_mon_read_keys[i]);
        bool prefix = vs_mon_read_keys[i][len - 1] == '/';
        if ((prefix ? kv->key_len >= len : kv->key_len == len) &&
            memcmp(kv->key, vs_mon_read_keys[i], len) == 0)
            return true;
    }
    return false;
}

static void watches_start(struct vs_monitor *m, uint64_t from_rev);

static void watch_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t revision)
{
    struct vs_monitor *m = ctx;
    if (status == VS_ECOMPACTED && m->active) {
        /* Fell behind the history: re-read everything and watch from now. */
        VS_WARN("mon", "watch compacted at revision %" PRIu64 ": re-reading", revision);
        watches_start(m, revision + 1);
        schedule(m, 0);
        return;
    }
    for (unsigned i = 0; status == 0 && i < n; i++) {
        if (relevant(&ev[i].kv)) {
            schedule(m, m->o.change_delay_ms);
            return;
        }
    }
}

static void watches_stop(struct vs_monitor *m)
{
    for (unsigned i = 0; i < m->n_watches; i++)
        vs_raft_server_watch_cancel(m->srv, m->watch_ids[i]);
    m->n_watches = 0;
}

static void watches_start(struct vs_monitor *m, uint64_t from_rev)
{
    static const char *const prefixes[] = {"config/", "osd/state/", "mon/", "pg/"};
    watches_stop(m);
    for (unsigned i = 0; i < VS_ARRAY_SIZE(prefixes); i++) {
        uint8_t end[16];
        uint32_t len = (uint32_t)strlen(prefixes[i]);
        uint32_t end_len = vs_meta_prefix_end(prefixes[i], len, end);
        uint64_t id;
        int rc = vs_raft_server_watch(m->srv, prefixes[i], len, end, end_len, from_rev, watch_cb,
                                      m, &id);
        if (rc < 0) {
            VS_ERROR("mon", "watch %s: %s", prefixes[i], vs_strerror(rc));
            continue;
        }
        m->watch_ids[m->n_watches++] = id;
    }
}

/* ---- Leadership ---- */

static void start(struct vs_monitor *m)
{
    struct vs_raft_status st;
    vs_raft_server_status(m->srv, &st);
    m->active = true;
    m->gen++;
    m->seed = m->o.seed ? m->o.seed : st.cluster_id;
    m->retry_ms = m->o.retry_delay_ms;
    m->msgs_hash = 0;
    m->st.active = true;
    /* The plan reads at the current revision; the watches begin right after it,
     * in the same loop turn, so no change falls between them. */
    watches_start(m, st.revision + 1);
    if (!m->o.stats_off && vs_mon_stats_create(&m->stats) == 0)
        uv_timer_start(&m->stats_timer, stats_timer_cb, m->o.stats_interval_ms,
                       m->o.stats_interval_ms);
    VS_INFO("mon", "monitor active (term %" PRIu64 ", revision %" PRIu64 ")", st.term,
            st.revision);
    emit(m, VS_MONITOR_STARTED, st.revision);
    schedule(m, 0);
}

static void stop(struct vs_monitor *m)
{
    m->active = false;
    m->gen++; /* rule 2: a txn in flight is forgotten */
    m->in_flight = m->stats_in_flight = m->dirty = false;
    m->st.active = false;
    watches_stop(m);
    uv_timer_stop(&m->plan_timer);
    uv_timer_stop(&m->stats_timer);
    if (m->stats != m->fold_stats)
        vs_mon_stats_free(m->stats); /* else fold_after() frees it */
    m->stats = NULL;
    emit(m, VS_MONITOR_STOPPED, 0);
}

void vs_monitor_leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    struct vs_monitor *m = ctx;
    if (m->closing || is_leader == m->active)
        return;
    if (is_leader) {
        start(m);
    } else {
        VS_INFO("mon", "monitor stopped: not the leader any more (term %" PRIu64 ")", term);
        stop(m);
    }
}

/* ---- Life cycle ---- */

int vs_monitor_create(uv_loop_t *loop, struct vs_raft_server *srv,
                      const struct vs_monitor_opts *opts, struct vs_monitor **out)
{
    struct vs_monitor *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->loop = loop;
    m->srv = srv;
    m->o = *opts;
    if (!m->o.change_delay_ms)
        m->o.change_delay_ms = 100;
    if (!m->o.retry_delay_ms)
        m->o.retry_delay_ms = 100;
    if (!m->o.stats_interval_ms)
        m->o.stats_interval_ms = 10000;
    uv_timer_init(loop, &m->plan_timer);
    uv_timer_init(loop, &m->stats_timer);
    m->plan_timer.data = m->stats_timer.data = m;
    m->handles_open = 2;
    *out = m;
    return 0;
}

void vs_monitor_status(const struct vs_monitor *m, struct vs_monitor_status *out)
{
    *out = m->st;
}

/* Drops one of the things the monitor waits for before it frees itself: its
 * two timers and a fold in flight. */
static void monitor_unref(struct vs_monitor *m)
{
    VS_ASSERT(m->handles_open > 0);
    if (--m->handles_open > 0)
        return;
    void (*cb)(void *) = m->close_cb;
    void *ctx = m->close_ctx;
    free(m);
    if (cb)
        cb(ctx);
}

static void handle_closed(uv_handle_t *h)
{
    monitor_unref(h->data);
}

void vs_monitor_close(struct vs_monitor *m, void (*cb)(void *ctx), void *ctx)
{
    VS_ASSERT(!m->closing);
    if (m->active)
        stop(m);
    m->closing = true;
    m->close_cb = cb;
    m->close_ctx = ctx;
    for (struct pending *p = m->pending; p; p = p->next)
        p->m = NULL; /* rule 3 */
    m->pending = NULL;
    uv_close((uv_handle_t *)&m->plan_timer, handle_closed);
    uv_close((uv_handle_t *)&m->stats_timer, handle_closed);
}
