/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_pg.c -- the PGs this OSD is primary of: their state machine
 * (pg_state.h), the map's view of them, the metadata keys they own, and the
 * index of their unclean objects.
 *
 * Invariants (pg_invariants, checked after every move in debug builds):
 *  (1) flags are set only in ACTIVE (vs_pg_flags_valid);
 *  (2) a PG serves client I/O only in ACTIVE, and only after its epoch and
 *      history are stored (peering moves to ACTIVE only from there);
 *  (3) REPEERING and STOPPING move on only when no op references the PG
 *      (pg->inflight == 0), so no write of an old interval survives into a
 *      new one;
 *  (4) one metadata txn per PG at a time (pg->meta_busy), and a PG is freed
 *      only when none is in flight;
 *  (5) pg/state is written only while we hold it (every write is guarded by
 *      "its lease is ours"); losing it makes the PG re-peer.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_HASH_SIZE 4096
#define RECHECK_MS 5000


/* ---- Lookup -------------------------------------------------------------------- */

static uint32_t hash_idx(uint16_t pool, uint32_t num)
{
    uint64_t h = ((uint64_t)pool << 32 | num) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 52) & (PG_HASH_SIZE - 1);
}

struct osd_pg *osd__pg_find(struct vs_osd *osd, uint16_t pool, uint32_t num)
{
    if (!osd->pg_hash)
        return NULL;
    for (struct osd_pg *pg = osd->pg_hash[hash_idx(pool, num)]; pg; pg = pg->hnext)
        if (pg->pool == pool && pg->num == num)
            return pg;
    return NULL;
}

bool osd__sync_after(struct vs_osd *osd, uint64_t inode)
{
    if (!osd->store_lazy)
        return false;
    uint16_t pool_id = (uint16_t)vs_net_inode_pool(inode);
    const struct vs_placement_pool *p = osd->pools ? vs_placement_pools_find(osd->pools, pool_id)
                                                   : NULL;
    bool lazy = p && p->immediate_commit ? strcmp(p->immediate_commit, "all") != 0
                                         : osd->global_lazy;
    return !lazy; /* an unknown pool is synced: the safe side */
}

static void timer_cb(uv_timer_t *t)
{
    struct osd_pg *pg = t->data;
    pg->timer_armed = false;
    osd__pg_kick(pg);
}

static struct osd_pg *pg_new(struct vs_osd *osd, uint16_t pool, uint32_t num)
{
    if (!osd->pg_hash) {
        osd->pg_hash = calloc(PG_HASH_SIZE, sizeof(*osd->pg_hash));
        VS_ASSERTF(osd->pg_hash, "out of memory for the PG table");
        osd->pg_hash_size = PG_HASH_SIZE;
    }
    struct osd_pg *pg = calloc(1, sizeof(*pg));
    VS_ASSERTF(pg, "out of memory for pg %u.%x", pool, num);
    pg->osd = osd;
    pg->pool = pool;
    pg->num = num;
    osd__pg_name(pg->name, sizeof(pg->name), pool, num);
    uv_timer_init(&osd->loop->uv, &pg->timer);
    pg->timer.data = pg;
    uint32_t h = hash_idx(pool, num);
    pg->hnext = osd->pg_hash[h];
    osd->pg_hash[h] = pg;
    osd->pg_count++;
    return pg;
}

static void unclean_free(struct osd_pg *pg)
{
    vs_pg_calc_free(&pg->calc);
    free(pg->ustate);
    free(pg->uhash);
    pg->ustate = NULL;
    pg->uhash = NULL;
    pg->umask = 0;
    pg->unclean_left = 0;
    pg->recover_cursor = 0;
}

static void timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void state_forget(struct osd_pg *pg)
{
    free(pg->state_stored);
    pg->state_stored = NULL;
}

void osd__pg_free(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    VS_ASSERT(pg->state == VS_PG_OFFLINE && !pg->meta_busy && pg->inflight == 0);
    struct osd_pg **pp = &osd->pg_hash[hash_idx(pg->pool, pg->num)];
    while (*pp != pg)
        pp = &(*pp)->hnext;
    *pp = pg->hnext;
    osd->pg_count--;
    unclean_free(pg);
    state_forget(pg);
    VS_ASSERT(!pg->state_sending);
    free(pg->map_hist);
    uv_close((uv_handle_t *)&pg->timer, timer_closed);
}

/* ---- The state machine ------------------------------------------------------------ */

#ifdef VS_DEBUG
static bool pg_invariants(const struct osd_pg *pg)
{
    if (!vs_pg_flags_valid(pg->state, pg->flags)) /* (1) */
        return false;
    if (pg->state == VS_PG_OFFLINE && pg->peering)
        return false;
    return pg->recovering <= pg->inflight;
}
#endif

void osd__pg_move(struct osd_pg *pg, enum vs_pg_state to)
{
    VS_ASSERTF(vs_pg_state_allowed(pg->state, to), "pg=%s %s -> %s", pg->name,
               vs_pg_state_name(pg->state), vs_pg_state_name(to));
    enum vs_pg_state from = pg->state;
    pg->state = to;
    if (to != VS_PG_ACTIVE)
        pg->flags = 0;
    if (to == VS_PG_PEERING || to == VS_PG_STARTING) {
        pg->gen++;
        pg->rec_repeer_due = false; /* this peering settles the failed objects */
    }
    VS_DASSERT(pg_invariants(pg));
    if (to == VS_PG_ACTIVE || to == VS_PG_INCOMPLETE || from == VS_PG_ACTIVE)
        VS_INFO(OSD_LOG, "pg %s: %s -> %s", pg->name, vs_pg_state_name(from),
                vs_pg_state_name(to));
    else
        VS_DEBUG_LOG(OSD_LOG, "pg %s: %s -> %s", pg->name, vs_pg_state_name(from),
                     vs_pg_state_name(to));
    if (to != VS_PG_OFFLINE && to != VS_PG_STOPPING)
        osd__pg_report(pg);
}

void osd__pg_arm(struct osd_pg *pg, uint64_t ms)
{
    if (pg->timer_armed)
        return;
    pg->timer_armed = true;
    uv_timer_start(&pg->timer, timer_cb, ms, 0);
}

static void unlock_peers(struct osd_pg *pg);

static void finish_stop(struct osd_pg *pg)
{
    unlock_peers(pg);
    osd__sec_unlock_self(pg->osd, pg); /* osd_sec.c L4 */
    osd__pg_move(pg, VS_PG_OFFLINE);
    unclean_free(pg);
    osd__pg_meta_pump(pg); /* deletes pg/state: lock #1 (docs/data-path.md §3, step 7) */
    /* No delete went out (lock #1 already gone with an expired lease): nothing
     * would call offline_settle, and a PG the map names again stayed offline. */
    if (!pg->meta_busy)
        osd__pg_arm(pg, 0);
}

/* Called once the PG reached OFFLINE: it is freed, or started again, once
 * its pg/state is gone (another primary waits for that) -- unless the whole
 * OSD stops, when revoking the lease deletes every key at once. */
static void offline_settle(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    if (pg->state != VS_PG_OFFLINE || pg->meta_busy)
        return;
    if (pg->lock1 && !osd->stopping) {
        osd__pg_meta_pump(pg);
        if (!pg->meta_busy)
            osd__pg_arm(pg, OSD_RETRY_MS);
        return;
    }
    if (!pg->stop_wanted && !osd->stopping) {
        osd__pg_move(pg, VS_PG_STARTING); /* the map names us again */
        osd__pg_kick(pg);
        return;
    }
    osd__pg_free(pg);
    if (osd->stopping && osd->pg_count == 0)
        osd__all_pgs_stopped(osd);
}

static bool in_list(const uint32_t *v, uint32_t n, uint32_t id);

/* A clean PG re-peers for what only a peering does (osd_peering.c): wipe a
 * superseded OSD that is up (W2), or purge tombstones (rule T, with an
 * epoch bump), the latter at most once per OSD_PURGE_MIN_MS. */
static void purge_due(struct osd_pg *pg)
{
    if (!pg->clean_stored || pg->unclean_left)
        return;
    for (uint32_t i = 0; i < pg->hist.superseded_count && !pg->wipe_failed; i++) {
        struct osd_peer *p = osd__peer(pg->osd, pg->hist.superseded[i]);
        if (p && p->up && pg->hist.superseded[i] != pg->osd->id)
            return osd__pg_repeer(pg, "wiping a superseded OSD");
    }
    if (!pg->purge_wanted)
        return;
    uint64_t now = vs_clock_mono_us(), due = pg->purge_last_us + OSD_PURGE_MIN_MS * 1000ull;
    if (pg->purge_last_us && now < due)
        return osd__pg_arm(pg, (due - now) / 1000 + 1);
    pg->purge_last_us = now;
    pg->force_bump = true;
    pg->purge_go = true; /* clean, with its clean history stored: rule T may run */
    osd__pg_repeer(pg, "purging tombstones");
}

bool osd__tomb_reserve_hit(struct vs_osd *osd)
{
    struct vs_store_stats st;
    vs_store_get_stats(osd->store, &st);
    return st.tomb_count - st.tomb_used <= st.tomb_count / 4;
}

void osd__pg_tomb_check(struct osd_pg *pg, int rc)
{
    struct vs_store_stats st;
    vs_store_get_stats(pg->osd->store, &st);
    if (rc != -ENOSPC && st.tomb_used * 2 < st.tomb_count)
        return;
    if (!pg->purge_wanted)
        VS_INFO(OSD_LOG, "pg %s: %s (%" PRIu64 " of %" PRIu64 " tombstone slots used here): "
                "purging tombstones when clean", pg->name,
                rc == -ENOSPC ? "a delete ran out of space" : "tombstone slots half used",
                st.tomb_used, st.tomb_count);
    pg->purge_wanted = true;
    osd__pg_arm(pg, 0);
}

void osd__pg_kick(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    switch (pg->state) {
    case VS_PG_STARTING:
        if (osd->registered && !osd->stopping) {
            osd__pg_move(pg, VS_PG_PEERING);
            osd__peering_start(pg);
        }
        break;
    case VS_PG_PEERING:
        osd__peering_kick(pg);
        break;
    case VS_PG_INCOMPLETE:
        if (pg->map_changed) {
            osd__pg_move(pg, VS_PG_REPEERING);
            osd__pg_kick(pg);
        } else {
            osd__pg_arm(pg, RECHECK_MS);
        }
        break;
    case VS_PG_REPEERING:
        if (pg->inflight == 0 && !pg->peering) {
            pg->map_changed = false;
            osd__pg_move(pg, VS_PG_PEERING);
            osd__peering_start(pg);
        }
        break;
    case VS_PG_STOPPING:
        if (pg->inflight == 0 && !pg->peering)
            finish_stop(pg);
        break;
    case VS_PG_ACTIVE:
        if (pg->rec_repeer_due &&
            vs_clock_mono_us() >= pg->rec_fail_us + OSD_REC_FAIL_MS * 1000ull)
            return osd__pg_recovery_failed(pg);
        osd__recovery_pump(pg);
        osd__pg_clean_check(pg);
        osd__pg_meta_pump(pg);
        if (pg->state == VS_PG_ACTIVE)
            purge_due(pg);
        break;
    case VS_PG_OFFLINE:
        offline_settle(pg);
        break;
    default:
        break;
    }
}

void osd__pg_repeer(struct osd_pg *pg, const char *why)
{
    switch (pg->state) {
    case VS_PG_ACTIVE:
    case VS_PG_PEERING:
    case VS_PG_INCOMPLETE:
        VS_INFO(OSD_LOG, "pg %s: re-peering: %s", pg->name, why);
        osd__peering_abort(pg);
        osd__pg_move(pg, VS_PG_REPEERING);
        osd__pg_kick(pg);
        break;
    case VS_PG_REPEERING:
    case VS_PG_STARTING:
        pg->map_changed = true;
        break;
    default:
        break;
    }
}

/* The next peering settles an object whose recovery failed, but a store that
 * fails every write (full, broken) must not make the PG re-peer -- bumping
 * its epoch and rewriting pg/history -- in a tight loop: at most one such
 * re-peer per OSD_REC_FAIL_MS; a later failure waits for the timer. */
void osd__pg_recovery_failed(struct osd_pg *pg)
{
    uint64_t now = vs_clock_mono_us();
    uint64_t due = pg->rec_fail_us + OSD_REC_FAIL_MS * 1000ull;
    if (pg->rec_fail_us && now < due) {
        pg->rec_repeer_due = true;
        osd__pg_arm(pg, (due - now) / 1000 + 1);
        return;
    }
    pg->rec_repeer_due = false;
    pg->rec_fail_us = now;
    osd__pg_repeer(pg, "recovery failed");
}

void osd__pg_stop(struct osd_pg *pg)
{
    if (pg->state == VS_PG_OFFLINE || pg->state == VS_PG_STOPPING)
        return;
    osd__peering_abort(pg);
    osd__pg_move(pg, VS_PG_STOPPING);
    osd__pg_kick(pg);
}

void osd__pg_op_done(struct osd_pg *pg)
{
    VS_ASSERT(pg->inflight > 0);
    pg->inflight--;
    if (pg->inflight == 0 && (pg->state == VS_PG_REPEERING || pg->state == VS_PG_STOPPING))
        osd__pg_kick(pg);
}

void osd__pgs_stop_all(struct vs_osd *osd)
{
    if (osd->pg_count == 0) {
        osd__all_pgs_stopped(osd);
        return;
    }
    for (uint32_t i = 0; i < osd->pg_hash_size; i++) {
        struct osd_pg *pg = osd->pg_hash[i];
        while (pg) {
            struct osd_pg *next = pg->hnext;
            pg->stop_wanted = true;
            if (pg->state == VS_PG_OFFLINE)
                offline_settle(pg);
            else
                osd__pg_stop(pg);
            pg = next;
        }
    }
}

/* ---- The map ------------------------------------------------------------------------- */

static bool set_changed(struct osd_pg *pg, const struct vs_pgmap_pool *mp, uint32_t num)
{
    const uint32_t *set = vs_pgmap_osd_set(mp, num);
    const struct vs_pgmap_pg *e = &mp->pgs[num];
    if (pg->pg_size != mp->pg_size || memcmp(pg->target, set, mp->pg_size * 4) != 0)
        return true;
    if (pg->map_hist_count != e->history_count)
        return true;
    return e->history_count &&
           memcmp(pg->map_hist, e->history, (size_t)e->history_count * mp->pg_size * 4) != 0;
}

static void take_map(struct osd_pg *pg, const struct vs_pgmap_pool *mp, uint32_t num,
                     const struct vs_placement_pool *p, uint64_t rev)
{
    const struct vs_pgmap_pg *e = &mp->pgs[num];
    pg->pg_size = mp->pg_size;
    pg->pg_minsize = p->pg_minsize;
    pg->data_size = vs_placement_pool_data_chunks(p);
    pg->obj_size = pg->osd->block_size;
    pg->pg_stripe_size = p->pg_stripe_size ? p->pg_stripe_size : pg->obj_size;
    pg->lazy = p->immediate_commit ? strcmp(p->immediate_commit, "all") != 0
                                   : pg->osd->global_lazy;
    memset(pg->target, 0, sizeof(pg->target));
    memcpy(pg->target, vs_pgmap_osd_set(mp, num), mp->pg_size * 4);
    free(pg->map_hist);
    pg->map_hist = NULL;
    pg->map_hist_count = e->history_count;
    if (e->history_count) {
        size_t n = (size_t)e->history_count * mp->pg_size;
        pg->map_hist = malloc(n * 4);
        VS_ASSERTF(pg->map_hist, "out of memory for the history of pg %s", pg->name);
        memcpy(pg->map_hist, e->history, n * 4);
    }
    pg->map_rev = rev;
}

void osd__pg_map(struct vs_osd *osd, uint16_t pool, uint32_t num,
                 const struct vs_pgmap_pool *mp, const struct vs_placement_pool *p,
                 uint64_t map_rev)
{
    struct osd_pg *pg = osd__pg_find(osd, pool, num);
    if (!pg) {
        pg = pg_new(osd, pool, num);
        take_map(pg, mp, num, p, map_rev);
        VS_INFO(OSD_LOG, "pg %s: we are its primary", pg->name);
        osd__pg_move(pg, VS_PG_STARTING);
        osd__pg_kick(pg);
        return;
    }
    pg->stop_wanted = false;
    bool changed = set_changed(pg, mp, num);
    if (!changed) {
        pg->map_rev = map_rev;
        if (pg->state == VS_PG_STARTING || pg->state == VS_PG_OFFLINE)
            osd__pg_kick(pg);
        return;
    }
    take_map(pg, mp, num, p, map_rev);
    if (pg->state == VS_PG_STARTING || pg->state == VS_PG_OFFLINE ||
        pg->state == VS_PG_STOPPING) {
        osd__pg_kick(pg);
        return;
    }
    pg->map_changed = true;
    osd__pg_repeer(pg, "the PG map changed");
}

static bool in_list(const uint32_t *v, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

void osd__pg_conn_gone(struct vs_osd *osd, const struct vs_net_conn *conn)
{
    for (uint32_t h = 0; h < osd->pg_hash_size; h++)
        for (struct osd_pg *pg = osd->pg_hash[h]; pg; pg = pg->hnext)
            for (uint32_t i = 0; i < VS_PG_SIZE_MAX; i++)
                if (pg->cur_conn[i] == conn)
                    pg->cur_conn[i] = NULL;
}

void osd__pg_peer_changed(struct vs_osd *osd, uint32_t id, bool up)
{
    for (uint32_t i = 0; i < osd->pg_hash_size; i++)
        for (struct osd_pg *pg = osd->pg_hash[i]; pg; pg = pg->hnext) {
            bool used = in_list(pg->locked, pg->nlocked, id) ||
                        in_list(pg->cur, pg->pg_size, id);
            if (up && vs_pg_history_is_superseded(&pg->hist, id))
                pg->wipe_failed = false; /* try it again (W2) */
            if (pg->state == VS_PG_ACTIVE) {
                if (!up && used)
                    osd__pg_repeer(pg, "a peer was lost");
                else if (up && in_list(pg->target, pg->pg_size, id) &&
                         !in_list(pg->cur, pg->pg_size, id))
                    osd__pg_repeer(pg, "a member of the set is back");
                else if (up && vs_pg_history_is_superseded(&pg->hist, id))
                    osd__pg_kick(pg); /* purge_due wipes it once the PG is clean */
            } else if (pg->state == VS_PG_PEERING) {
                if (!up && used)
                    osd__pg_repeer(pg, "a peer was lost while peering");
                else if (up && in_list(pg->target, pg->pg_size, id) &&
                         osd__peering_left_out(pg, id))
                    osd__pg_repeer(pg, "a member of the set is back while peering");
                else
                    osd__pg_kick(pg);
            } else if (pg->state == VS_PG_INCOMPLETE &&
                       (in_list(pg->peers, pg->npeers, id) ||
                        in_list(pg->target, pg->pg_size, id))) {
                pg->map_changed = true;
                osd__pg_kick(pg);
            }
        }
}

/* ---- Peers' locks (#2) on stop -------------------------------------------------------- */

struct unlock_msg {
    struct vs_net_op op;
};

static void unlock_cb(struct vs_net_op *op, int rc)
{
    (void)rc;
    free(VS_CONTAINER_OF(op, struct unlock_msg, op));
}

static void unlock_peers(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    for (uint32_t i = 0; i < pg->nlocked; i++) {
        struct osd_peer *p = osd__peer(osd, pg->locked[i]);
        if (!p || !p->conn_up)
            continue;
        struct unlock_msg *m = calloc(1, sizeof(*m));
        if (!m)
            break;
        m->op.req.opcode = VS_NET_OP_SEC_LOCK;
        m->op.req.req.lock = (struct vs_net_lock){.pool = pg->pool, .pg_num = pg->num,
                                                  .flags = VS_NET_LOCKF_UNLOCK,
                                                  .map_revision = pg->map_rev};
        m->op.cb = unlock_cb;
        if (vs_net_send(p->conn, &m->op) < 0)
            free(m);
    }
    pg->nlocked = 0;
}

/* ---- Metadata: reports and lock #1 release ---------------------------------------------- */

char *osd__pg_state_json(struct osd_pg *pg)
{
    const char *words[VS_PG_WORDS_MAX];
    unsigned n = vs_pg_state_words(pg->state, pg->flags, words);
    json_t *st = json_array(), *peers = json_array();
    for (unsigned i = 0; st && i < n; i++)
        json_array_append_new(st, json_string(words[i]));
    for (uint32_t i = 0; peers && i < pg->pg_size; i++)
        if (pg->cur[i])
            json_array_append_new(peers, json_integer(pg->cur[i]));
    json_t *j = st && peers ? json_pack("{s:I,s:o,s:o,s:I}", "primary", (json_int_t)pg->osd->id,
                                        "state", st, "peers", peers, "epoch",
                                        (json_int_t)pg->epoch)
                            : NULL;
    if (!j) {
        json_decref(st);
        json_decref(peers);
        return NULL;
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void report_cb(struct osd_pg *pg, int rc)
{
    bool unlock = pg->report_busy == 2;
    char *sent = pg->state_sending;
    pg->state_sending = NULL;
    pg->report_busy = 0;
    state_forget(pg);
    if (rc == VS_ECOMPARE) {
        pg->lock1 = false;
        if (pg->state != VS_PG_OFFLINE) {
            VS_WARN(OSD_LOG, "pg %s: pg/state is no longer ours", pg->name);
            osd__pg_repeer(pg, "lost lock #1");
        }
    } else if (rc < 0) {
        pg->report_dirty = !unlock;
        osd__pg_arm(pg, OSD_RETRY_MS);
    } else if (unlock) {
        pg->lock1 = false;
    } else {
        pg->state_stored = sent;
        sent = NULL;
    }
    free(sent);
    osd__pg_meta_pump(pg); /* a newer state may wait */
    osd__pg_kick(pg);
}

/* Sends the pending pg/state write, or, for an OFFLINE PG, deletes it. A
 * value equal to the one stored is not written again: pg/state changes only
 * when the PG's state, flags, peers or epoch do (the Raft log sees nothing
 * of a PG that stays degraded). */
void osd__pg_meta_pump(struct osd_pg *pg)
{
    if (pg->meta_busy || !pg->lock1 || !osd__meta_up(pg->osd))
        return;
    bool unlock = pg->state == VS_PG_OFFLINE;
    if (!unlock && !pg->report_dirty)
        return;
    pg->report_dirty = false;
    char *value = unlock ? NULL : osd__pg_state_json(pg);
    if (!unlock && !value) {
        pg->report_dirty = true;
        osd__pg_arm(pg, OSD_RETRY_MS);
        return;
    }
    if (value && pg->state_stored && strcmp(value, pg->state_stored) == 0) {
        free(value);
        return;
    }
    int rc = osd__meta_pg_state(pg, value, report_cb);
    if (rc < 0) {
        free(value);
        pg->report_dirty = !unlock;
        osd__pg_arm(pg, OSD_RETRY_MS);
        return;
    }
    pg->state_sending = value;
    pg->report_busy = unlock ? 2 : 1;
}

void osd__pg_report(struct osd_pg *pg)
{
    pg->report_dirty = true;
    osd__pg_meta_pump(pg);
}

/* ---- Unclean objects ------------------------------------------------------------------- */

static uint32_t obj_hash(uint64_t inode, uint64_t stripe)
{
    uint64_t h = inode * 0x9E3779B97F4A7C15ull ^ (stripe >> 12) * 0xC2B2AE3D27D4EB4Full;
    return (uint32_t)(h ^ (h >> 31));
}

void osd__pg_set_unclean(struct osd_pg *pg)
{
    size_t n = pg->calc.obj_count;
    pg->unclean_left = n;
    pg->recover_cursor = 0;
    if (n == 0)
        return;
    uint32_t cap = 16;
    while (cap < 2 * n)
        cap *= 2;
    pg->ustate = calloc(n, sizeof(*pg->ustate));
    pg->uhash = calloc(cap, sizeof(*pg->uhash));
    VS_ASSERTF(pg->ustate && pg->uhash, "out of memory for %zu unclean objects", n);
    pg->umask = cap - 1;
    for (size_t i = 0; i < n; i++) {
        const struct vs_unclean_obj *u = &pg->calc.objs[i];
        uint32_t h = obj_hash(u->inode, u->stripe) & pg->umask;
        while (pg->uhash[h])
            h = (h + 1) & pg->umask;
        pg->uhash[h] = (uint32_t)i + 1;
    }
}

struct osd_unclean *osd__pg_unclean(struct osd_pg *pg, uint64_t inode, uint64_t stripe,
                                    uint32_t *idx)
{
    if (!pg->unclean_left)
        return NULL;
    for (uint32_t h = obj_hash(inode, stripe) & pg->umask; pg->uhash[h];
         h = (h + 1) & pg->umask) {
        uint32_t i = pg->uhash[h] - 1;
        const struct vs_unclean_obj *u = &pg->calc.objs[i];
        if (u->inode == inode && u->stripe == stripe) {
            if (pg->ustate[i].state == 2)
                return NULL;
            *idx = i;
            return &pg->ustate[i];
        }
    }
    return NULL;
}

uint32_t osd__pg_unclean_flags(struct osd_pg *pg)
{
    uint32_t f = 0;
    for (uint32_t i = 0; i < pg->pg_size; i++)
        if (pg->target[i] && !pg->cur[i])
            f |= VS_PGF_DEGRADED;
    if (pg->calc.degraded_count)
        f |= VS_PGF_HAS_DEGRADED;
    if (pg->calc.misplaced_count)
        f |= VS_PGF_HAS_MISPLACED;
    if (pg->calc.incomplete_count)
        f |= VS_PGF_HAS_INCOMPLETE;
    return f;
}

void osd__pg_object_clean(struct osd_pg *pg, uint32_t idx)
{
    VS_ASSERT(idx < pg->calc.obj_count && pg->ustate[idx].state != 2);
    const struct vs_unclean_obj *u = &pg->calc.objs[idx];
    pg->ustate[idx].state = 2;
    pg->unclean_left--;
    if (u->state & VS_OBJ_INCOMPLETE)
        pg->calc.incomplete_count--;
    else if (u->state & VS_OBJ_DEGRADED)
        pg->calc.degraded_count--;
    else if (u->state & VS_OBJ_MISPLACED)
        pg->calc.misplaced_count--;
    uint32_t f = osd__pg_unclean_flags(pg);
    if (f != pg->flags && pg->state == VS_PG_ACTIVE) {
        pg->flags = f;
        if (pg->unclean_left || f) /* else clean_check stores the history first */
            osd__pg_report(pg);
    }
    if (pg->unclean_left == 0)
        osd__pg_clean_check(pg);
}

/* The clean history is stored: the OSDs outside the set are superseded. A
 * peering that found enough old tombstones here wants a purge. */
static void clean_stored(struct osd_pg *pg)
{
    pg->clean_stored = true;
    if (pg->old_tombs && pg->old_tombs * 8 >= pg->osd->info.tomb_count) {
        pg->purge_wanted = true;
        VS_INFO(OSD_LOG, "pg %s: %" PRIu64 " tombstones of older epochs here: purging them",
                pg->name, pg->old_tombs);
    }
    osd__pg_arm(pg, 0); /* purge_due */
}

static void clean_history_cb(struct osd_pg *pg, int rc)
{
    if (rc < 0) {
        VS_WARN(OSD_LOG, "pg %s: clearing pg/history: %s; retrying", pg->name,
                vs_strerror(rc));
        pg->clean_reported = false;
        osd__pg_meta_pump(pg);
        if (rc == VS_ECOMPARE)
            return osd__pg_repeer(pg, "lost lock #1");
        osd__pg_arm(pg, OSD_RETRY_MS);
        return;
    }
    pg->hist_dirty = false;
    VS_INFO(OSD_LOG, "pg %s: clean (epoch %" PRIu64 ")%s", pg->name, pg->epoch,
            pg->hist.superseded_count ? ", superseded OSDs left to wipe" : "");
    clean_stored(pg);
    osd__pg_report(pg);
}

static bool same_history(const struct vs_pg_history *a, const struct vs_pg_history *b)
{
    if (a->epoch != b->epoch || a->set_count != b->set_count ||
        a->peer_count != b->peer_count || a->superseded_count != b->superseded_count ||
        memcmp(a->superseded, b->superseded, a->superseded_count * sizeof(uint32_t)) != 0)
        return false;
    for (uint32_t i = 0; i < a->set_count; i++)
        if (a->set_size[i] != b->set_size[i] ||
            memcmp(a->sets[i], b->sets[i], a->set_size[i] * sizeof(uint32_t)) != 0)
            return false;
    return memcmp(a->peers, b->peers, a->peer_count * sizeof(uint32_t)) == 0;
}

void osd__pg_clean_check(struct osd_pg *pg)
{
    if (pg->state != VS_PG_ACTIVE || pg->unclean_left || pg->clean_reported)
        return;
    uint32_t f = osd__pg_unclean_flags(pg);
    if (f) {
        if (f != pg->flags) { /* an unchanged degraded PG writes nothing */
            pg->flags = f;
            osd__pg_report(pg);
        }
        return;
    }
    pg->flags = 0;
    /* Clean: every object is on every OSD of the target set. The history is
     * no longer needed; the monitor clears the map's once it reads "active"
     * with an empty pg/history (docs/monitor.md §3). The history is stored
     * cleared before "active" alone is reported. */
    struct vs_pg_history h = pg->hist;
    /* The OSDs this peering asked outside the set (the map's history too)
     * hold only outdated copies now: superseded, not forgotten (W1). */
    for (uint32_t i = 0; i < pg->npeers; i++)
        if (pg->peers[i] != pg->osd->id && !in_list(pg->target, pg->pg_size, pg->peers[i]) &&
            !in_list(pg->wiped, pg->nwiped, pg->peers[i]))
            (void)vs_pg_history_supersede(&h, pg->peers[i]);
    vs_pg_history_clear(&h, pg->target, pg->pg_size);
    if (same_history(&h, &pg->hist) && !pg->hist_dirty) {
        pg->clean_reported = true;
        clean_stored(pg);
        osd__pg_report(pg);
        return;
    }
    if (pg->meta_busy)
        return osd__pg_arm(pg, OSD_RETRY_MS);
    struct vs_pg_history old = pg->hist;
    pg->hist = h;
    pg->hist_dirty = true;
    if (osd__meta_pg_history(pg, clean_history_cb) < 0) {
        pg->hist = old;
        return osd__pg_arm(pg, OSD_RETRY_MS);
    }
    pg->clean_reported = true;
}
