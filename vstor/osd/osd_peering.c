/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_peering.c -- how a PG becomes active (docs/data-path.md §3, steps 3-6).
 *
 * Steps, each re-entered by osd__peering_kick() when what it waits for
 * changes (a connection, a metadata answer, a timer):
 *
 *   LOCK1    pg/state/<pool>/<pg> on our lease (lock #1), reading pg/history
 *   CONNECT  every peer: the target set, the map's history sets, the stored
 *            history's sets and all_peers. A peer that is up (osd/state
 *            exists) is waited for until connected -- a live OSD may hold the
 *            newest data -- or until its lease goes. Then the activation check
 *            (vs_pg_why_incomplete): pg_minsize, and the split-brain guard.
 *   LOCK2    lock #2 in our own table, then SEC_LOCK on every reachable peer;
 *            a refusal (a primary of a newer map holds it) is retried. Each
 *            grant names how long the read lease of the lock's previous
 *            holder may still last (osd_lease.h R3)
 *   WIPE     every reachable superseded OSD (pg/history "superseded") is
 *            wiped of the PG (SEC_PURGE WIPE, or the local store) before
 *            anything is listed (rules W1-W4 below)
 *   LIST     SEC_LIST, page by page, on every reachable peer that is not
 *            superseded, and the local store's list
 *   CALC     vs_pg_calc (rules T1-T4): target versions, object states, flush
 *            actions; the epoch (D6)
 *   FLUSH    the rollback/stabilize actions, batched per OSD; not synced on
 *            a lazy store (docs/data-path.md §3 step 5: safe because the
 *            epoch is bumped after any flush, so no later write reuses a
 *            rolled-back version; tests/osd_flush_crash_test.c)
 *   EPOCH    unless the PG comes up clean: the bumped epoch, and the set it
 *            runs on if that is not the whole target set, are stored in
 *            pg/history before any write uses them (D6); also when a wipe
 *            took OSDs off the superseded list (W3)
 *   PURGE    when asked for (pg->purge_wanted) and allowed (rule T below):
 *            the tombstones below the new epoch are dropped on every OSD of
 *            the set (SEC_PURGE TOMBS, and the local store)
 *   then ACTIVE (with flags), and recovery starts (osd_recovery.c) -- once
 *            the longest of those leases is over (R6): until then an old
 *            primary may still serve reads from its copy.
 *
 * Superseded OSDs (docs/data-path.md §6). When a PG becomes clean, the OSDs
 * its history named outside the target set hold only outdated copies of it;
 * osd_pg.c records them in pg/history "superseded" instead of forgetting
 * them (vs_pg_history_clear).
 *  (W1) A superseded OSD's copies of the PG are never listed: peering treats
 *       it as holding nothing, whatever set or history names it.
 *  (W2) A reachable superseded OSD is wiped (every object of the PG dropped,
 *       tombstones too) under our lock #2 before the listing; one whose wipe
 *       fails is treated as unreachable (not in the set this time) and stays
 *       superseded. One outside the set that is up but not connected is
 *       waited for SUPERSEDED_WAIT_MS only: its data is never needed.
 *  (W3) It leaves the superseded list only once wiped, and that list is
 *       stored in pg/history before the PG activates, so before it can take
 *       a write of the PG: no later primary ever wipes a copy that matters.
 *       A wipe repeated (the history store failed, the primary changed) finds
 *       nothing or a wiped OSD again: idempotent.
 *  (W4) A torn wipe (the OSD died or the connection dropped) leaves it
 *       superseded, so W1 still holds for whatever it kept.
 *
 * Tombstone purge (docs/data-path.md §5).
 *  (T)  Only in a peering where the PG is clean but for the forced epoch
 *       bump (its whole set reached, nothing unclean), where every peer that
 *       is not superseded is in the set (so no OSD outside the set can be
 *       listed later but superseded ones, whose copies W1 ignores), and only
 *       after the clean history was stored (the OSDs left outside are in the
 *       superseded list). The bound is the new epoch's first version, which
 *       is stored before the purge: every write after it carries a higher
 *       version than any tombstone dropped.
 *
 * A peering context is detached, not freed, when the PG leaves PEERING with
 * messages still in flight; the last reply frees it.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUPERSEDED_WAIT_MS 3000 /* a superseded OSD outside the set is waited for this long */

enum peering_step {
    P_LOCK1, P_CONNECT, P_LOCK2, P_WIPE, P_LIST, P_FLUSH, P_EPOCH, P_PURGE, P_DONE
};

struct pp_msg {                 /* one message to one peer */
    struct vs_net_op op;
    struct osd_peering *pe;
    uint32_t idx;               /* into pe->pp */
    uint8_t *payload;
};

struct peering_peer {
    uint32_t osd;
    bool self, reachable, locked, listed, refused;
    bool superseded, wiped, wipe_sent;
    uint64_t next_inode, next_stripe;
};

struct osd_peering {
    struct osd_pg *pg;          /* NULL once detached */
    enum peering_step step;
    uint32_t outstanding;       /* messages and store ops in flight */
    bool failed;                /* a message failed: re-peer when all are back */
    bool list_started;
    bool flush_sent;
    bool hist_sent;
    bool in_step;               /* step_run is on the stack: never free here */
    size_t flush_local;         /* next local flush action */
    bool waiting_logged;
    uint32_t npeers;
    struct peering_peer pp[VS_PG_PEERS_MAX];
    uint32_t cur[VS_PG_SIZE_MAX];
    struct vs_listed_obj *ents;
    size_t n, cap;
    uint64_t epoch;
    bool clean;
    bool self_locked;           /* lock #2 in our own table (osd_sec.c L4) */
    uint64_t active_at_ms;      /* R6: no activation before (osd__now_ms) */
    bool unsupersede;           /* W3: wiped OSDs leave pg/history's list */
    bool purge, purge_sent;     /* rule T: this peering purges tombstones */
    uint32_t purged_osds;
    uint64_t old_tombs;         /* local tombstones of older epochs (a purge may help) */
    uint64_t connect_since_us;  /* CONNECT began (SUPERSEDED_WAIT_MS) */
    struct vs_store_op sop;     /* local flush */
    struct vs_store_obj_ver *local_list;
};

static void step_run(struct osd_peering *pe);

/* ---- Lifetime ------------------------------------------------------------------- */

static void pe_free(struct osd_peering *pe)
{
    free(pe->ents);
    free(pe->local_list);
    free(pe);
}

void osd__peering_abort(struct osd_pg *pg)
{
    struct osd_peering *pe = pg->peering;
    if (!pe)
        return;
    pg->peering = NULL;
    pe->pg = NULL;
    if (pe->outstanding == 0 && !pe->in_step)
        pe_free(pe);
}

/* Called when a message or store op of pe completed: false when pe is gone
 * (detached and now freed) and the caller must stop. */
static bool pe_alive(struct osd_peering *pe)
{
    VS_ASSERT(pe->outstanding > 0);
    pe->outstanding--;
    if (pe->pg)
        return true;
    if (pe->outstanding == 0 && !pe->in_step)
        pe_free(pe);
    return false;
}

void osd__peering_start(struct osd_pg *pg)
{
    VS_ASSERT(pg->state == VS_PG_PEERING && !pg->peering);
    struct osd_peering *pe = calloc(1, sizeof(*pe));
    VS_ASSERTF(pe, "out of memory peering pg %s", pg->name);
    pe->pg = pg;
    pg->peering = pe;
    pg->nlocked = 0;
    pg->clean_reported = false;
    pg->clean_stored = false;
    memset(pg->cur, 0, sizeof(pg->cur));
    memset(pg->cur_conn, 0, sizeof(pg->cur_conn));
    pg->nfence = 0; /* this peering settles the fenced objects */
    vs_pg_calc_free(&pg->calc);
    free(pg->ustate);
    free(pg->uhash);
    pg->ustate = NULL;
    pg->uhash = NULL;
    pg->unclean_left = 0;
    pe->step = pg->lock1 ? P_CONNECT : P_LOCK1;
    step_run(pe);
}

void osd__peering_kick(struct osd_pg *pg)
{
    if (pg->peering && pg->peering->outstanding == 0)
        step_run(pg->peering);
}

bool osd__peering_left_out(struct osd_pg *pg, uint32_t osd)
{
    struct osd_peering *pe = pg->peering;
    if (!pe || pe->step <= P_CONNECT)
        return false; /* CONNECT will look at it */
    for (uint32_t i = 0; i < pe->npeers; i++)
        if (pe->pp[i].osd == osd)
            return !pe->pp[i].reachable;
    return true;
}

static void fail(struct osd_peering *pe, const char *why)
{
    osd__pg_repeer(pe->pg, why);
}

/* ---- LOCK1 ---------------------------------------------------------------------- */

static void lock1_cb(struct osd_pg *pg, int rc)
{
    struct osd_peering *pe = pg->peering;
    if (rc == 0 && pe && pe->step == P_LOCK1) {
        VS_DEBUG_LOG(OSD_LOG, "pg %s: lock #1 taken (epoch %" PRIu64 ")", pg->name,
                     pg->hist.epoch);
        pg->nwiped = 0; /* without the lock another primary may have written there */
        pe->step = P_CONNECT;
    } else if (rc == VS_ECOMPARE) {
        VS_INFO(OSD_LOG, "pg %s: waiting: %s", pg->name, pg->why);
    } else if (rc < 0) {
        VS_DEBUG_LOG(OSD_LOG, "pg %s: lock #1: %s", pg->name, vs_strerror(rc));
    }
    osd__pg_meta_pump(pg);
    if (pe && rc < 0)
        osd__pg_arm(pg, rc == VS_ECOMPARE ? 1000 : OSD_RETRY_MS);
    else if (pe)
        step_run(pe);
}

static void step_lock1(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    if (pg->meta_busy || !osd__meta_up(pg->osd)) {
        osd__pg_arm(pg, OSD_RETRY_MS);
        return;
    }
    int rc = osd__meta_pg_lock(pg, lock1_cb);
    if (rc < 0)
        osd__pg_arm(pg, OSD_RETRY_MS);
}

/* ---- CONNECT ------------------------------------------------------------------------- */

static void add_peer(struct osd_peering *pe, uint32_t id)
{
    if (id == 0)
        return;
    for (uint32_t i = 0; i < pe->npeers; i++)
        if (pe->pp[i].osd == id)
            return;
    if (pe->npeers == VS_PG_PEERS_MAX)
        return;
    pe->pp[pe->npeers++] = (struct peering_peer){.osd = id, .self = id == pe->pg->osd->id};
}

static void collect_peers(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    pe->npeers = 0;
    for (uint32_t i = 0; i < pg->pg_size; i++)
        add_peer(pe, pg->target[i]);
    for (uint32_t i = 0; i < pg->map_hist_count * pg->pg_size; i++)
        add_peer(pe, pg->map_hist[i]);
    for (uint32_t s = 0; s < pg->hist.set_count; s++)
        for (uint32_t i = 0; i < pg->hist.set_size[s]; i++)
            add_peer(pe, pg->hist.sets[s][i]);
    for (uint32_t i = 0; i < pg->hist.peer_count; i++)
        add_peer(pe, pg->hist.peers[i]);
    for (uint32_t i = 0; i < pg->hist.superseded_count; i++)
        add_peer(pe, pg->hist.superseded[i]);
    add_peer(pe, pg->osd->id);
    for (uint32_t i = 0; i < pe->npeers; i++) /* W1 */
        pe->pp[i].superseded = vs_pg_history_is_superseded(&pg->hist, pe->pp[i].osd);
    /* Kept past this peering: an incomplete PG peers again when any of them
     * comes back, even one named only by the history (osd__pg_peer_changed). */
    pg->npeers = pe->npeers;
    for (uint32_t i = 0; i < pe->npeers; i++)
        pg->peers[i] = pe->pp[i].osd;
}

static bool in_target(const struct osd_pg *pg, uint32_t osd)
{
    for (uint32_t i = 0; i < pg->pg_size; i++)
        if (pg->target[i] == osd)
            return true;
    return false;
}

/* Returns true when every peer is either connected or known down; a
 * superseded OSD outside the set is waited for SUPERSEDED_WAIT_MS only. */
static bool connect_all(struct osd_peering *pe, uint32_t *waiting)
{
    struct vs_osd *osd = pe->pg->osd;
    bool all = true;
    for (uint32_t i = 0; i < pe->npeers; i++) {
        struct peering_peer *q = &pe->pp[i];
        if (q->self) {
            q->reachable = true;
            continue;
        }
        struct osd_peer *p = osd__peer(osd, q->osd);
        q->reachable = p && (osd__peer_connect(osd, p) || p->conn_up);
        if (!q->reachable && p && p->up && q->superseded && !in_target(pe->pg, q->osd) &&
            vs_clock_mono_us() > pe->connect_since_us + SUPERSEDED_WAIT_MS * 1000ull) {
            pe->pg->wipe_failed = true; /* its data is never needed: go on, wipe it later */
            continue;
        }
        if (!q->reachable && p && p->up) {
            all = false;
            *waiting = q->osd;
        }
    }
    return all;
}

static const char *check_active(struct osd_peering *pe, char *buf, size_t size)
{
    struct osd_pg *pg = pe->pg;
    uint32_t reach[VS_PG_PEERS_MAX], nreach = 0;
    for (uint32_t i = 0; i < pe->npeers; i++)
        if (pe->pp[i].reachable)
            reach[nreach++] = pe->pp[i].osd;
    memset(pe->cur, 0, sizeof(pe->cur));
    for (uint32_t s = 0; s < pg->pg_size; s++)
        for (uint32_t i = 0; i < nreach; i++)
            if (pg->target[s] && pg->target[s] == reach[i])
                pe->cur[s] = reach[i];
    const uint32_t *sets[2 * VS_PG_HISTORY_SETS_MAX];
    uint32_t sizes[2 * VS_PG_HISTORY_SETS_MAX], n = 0;
    for (uint32_t s = 0; s < pg->map_hist_count && n < VS_PG_HISTORY_SETS_MAX; s++) {
        sets[n] = pg->map_hist + (size_t)s * pg->pg_size;
        sizes[n++] = pg->pg_size;
    }
    for (uint32_t s = 0; s < pg->hist.set_count; s++) {
        sets[n] = pg->hist.sets[s];
        sizes[n++] = pg->hist.set_size[s];
    }
    struct vs_pg_activation a = {.cur_set = pe->cur, .pg_size = pg->pg_size,
                                 .pg_minsize = pg->pg_minsize, .pg_data_size = pg->data_size,
                                 .reachable = reach, .reachable_count = nreach,
                                 .hist_sets = sets, .hist_sizes = sizes, .hist_count = n};
    return vs_pg_why_incomplete(&a, buf, size);
}

static void step_connect(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    if (!pe->connect_since_us)
        pe->connect_since_us = vs_clock_mono_us();
    collect_peers(pe);
    uint32_t waiting = 0;
    if (!connect_all(pe, &waiting)) {
        if (!pe->waiting_logged)
            VS_INFO(OSD_LOG, "pg %s: waiting for osd.%u (up, not connected yet)", pg->name,
                    waiting);
        pe->waiting_logged = true;
        osd__pg_arm(pg, 1000);
        return;
    }
    const char *why = check_active(pe, pg->why, sizeof(pg->why));
    if (why) {
        VS_WARN(OSD_LOG, "pg %s: incomplete: %s", pg->name, why);
        memcpy(pg->cur, pe->cur, sizeof(pg->cur));
        osd__peering_abort(pg);
        osd__pg_move(pg, VS_PG_INCOMPLETE);
        osd__pg_kick(pg);
        return;
    }
    pe->step = P_LOCK2;
    step_run(pe);
}

/* ---- Messages to peers ------------------------------------------------------------------ */

static struct pp_msg *msg_new(struct osd_peering *pe, uint32_t idx, uint16_t opcode,
                              void (*cb)(struct vs_net_op *, int))
{
    struct pp_msg *m = calloc(1, sizeof(*m));
    VS_ASSERTF(m, "out of memory peering");
    m->pe = pe;
    m->idx = idx;
    m->op.req.opcode = opcode;
    m->op.cb = cb;
    return m;
}

static int msg_send(struct osd_peering *pe, struct pp_msg *m)
{
    struct osd_peer *p = osd__peer(pe->pg->osd, pe->pp[m->idx].osd);
    int rc = p && p->conn ? vs_net_send(p->conn, &m->op) : -ENOTCONN;
    if (rc < 0) {
        free(m->payload);
        free(m);
        return rc;
    }
    pe->outstanding++;
    return 0;
}

/* Completes a message; false when the peering is gone or failed. */
static bool msg_done(struct pp_msg *m, int rc, const char *what)
{
    struct osd_peering *pe = m->pe;
    uint32_t osd = pe->pp[m->idx].osd;
    free(m->payload);
    free(m);
    if (!pe_alive(pe))
        return false;
    if (rc < 0 && rc != VS_ENOTPRIMARY) {
        VS_WARN(OSD_LOG, "pg %s: %s to osd.%u: %s", pe->pg->name, what, osd, vs_strerror(rc));
        pe->failed = true;
    }
    if (pe->failed) {
        if (pe->outstanding == 0)
            fail(pe, "a peer failed during peering");
        return false;
    }
    return true;
}

/* ---- LOCK2 ---------------------------------------------------------------------------- */

static void lock2_cb(struct vs_net_op *op, int rc)
{
    struct pp_msg *m = VS_CONTAINER_OF(op, struct pp_msg, op);
    struct osd_peering *pe = m->pe;
    struct peering_peer *q = &pe->pp[m->idx];
    uint64_t holder = op->replied ? op->reply.rep.version : 0;
    uint64_t wait_ms = rc == 0 ? op->reply.rep.lock_wait_ms : 0;
    if (!msg_done(m, rc, "SEC_LOCK"))
        return;
    if (rc == 0 && wait_ms) {
        uint64_t at = vs_lease_activate_at(osd__now_ms(), wait_ms); /* R6 */
        pe->active_at_ms = VS_MAX(pe->active_at_ms, at);
        VS_INFO(OSD_LOG, "pg %s: osd.%u grants lock #2 after %" PRIu64 " ms (the read "
                "lease of its previous holder, or its start)", pe->pg->name, q->osd, wait_ms);
    }
    if (rc == VS_ENOTPRIMARY) {
        q->refused = true;
        VS_INFO(OSD_LOG, "pg %s: osd.%u refuses lock #2: osd.%" PRIu64 " holds it", pe->pg->name,
                q->osd, holder);
    } else {
        q->locked = true;
    }
    if (pe->outstanding == 0)
        step_run(pe);
}

/* L4 + R3: our own table first; false when a newer primary holds it here. */
static bool lock_self(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    uint64_t wait_ms = 0;
    if (pe->self_locked)
        return true;
    if (osd__sec_lock_self(pg->osd, pg, &wait_ms) < 0) {
        osd__pg_arm(pg, 1000);
        return false;
    }
    pe->self_locked = true;
    if (wait_ms) {
        pe->active_at_ms = VS_MAX(pe->active_at_ms, osd__now_ms() + wait_ms);
        VS_INFO(OSD_LOG, "pg %s: activating after %" PRIu64 " ms at the earliest (a read lease "
                "we granted its previous primary, or our start)", pg->name, wait_ms);
    }
    return true;
}

static void step_lock2(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    bool refused = false, all = true;
    if (!lock_self(pe))
        return;
    for (uint32_t i = 0; i < pe->npeers; i++) {
        struct peering_peer *q = &pe->pp[i];
        refused |= q->refused;
        if (q->reachable && !q->self && !q->locked)
            all = false;
    }
    if (refused) { /* wait, then ask again those that refused */
        for (uint32_t i = 0; i < pe->npeers; i++)
            pe->pp[i].refused = false;
        osd__pg_arm(pg, 1000);
        return;
    }
    if (all) {
        pg->nlocked = 0;
        for (uint32_t i = 0; i < pe->npeers; i++)
            if (pe->pp[i].locked)
                pg->locked[pg->nlocked++] = pe->pp[i].osd;
        pe->step = P_WIPE;
        return step_run(pe);
    }
    for (uint32_t i = 0; i < pe->npeers; i++) {
        struct peering_peer *q = &pe->pp[i];
        if (!q->reachable || q->self || q->locked)
            continue;
        struct pp_msg *m = msg_new(pe, i, VS_NET_OP_SEC_LOCK, lock2_cb);
        m->op.req.req.lock = (struct vs_net_lock){.pool = pg->pool, .pg_num = pg->num,
                                                  .flags = VS_NET_LOCKF_LOCK,
                                                  .map_revision = pg->map_rev};
        if (msg_send(pe, m) < 0)
            return fail(pe, "a peer went away");
    }
}

/* ---- WIPE (rules W1-W4) ------------------------------------------------------------------ */

static void wipe_result(struct osd_peering *pe, uint32_t idx, int rc)
{
    struct peering_peer *q = &pe->pp[idx];
    if (rc == 0) {
        struct osd_pg *pg = pe->pg;
        q->wiped = true;
        pe->unsupersede = true;
        bool known = false;
        for (uint32_t i = 0; i < pg->nwiped; i++)
            known |= pg->wiped[i] == q->osd;
        if (!known && pg->nwiped < VS_PG_PEERS_MAX)
            pg->wiped[pg->nwiped++] = q->osd;
        VS_INFO(OSD_LOG, "pg %s: osd.%u wiped (superseded copies)", pe->pg->name, q->osd);
        return;
    }
    /* W2: not wiped, so not used: unreachable for this peering. */
    VS_WARN(OSD_LOG, "pg %s: wiping superseded osd.%u: %s; leaving it out", pe->pg->name,
            q->osd, vs_strerror(rc));
    q->reachable = false;
    pe->pg->wipe_failed = true;
}

static void wipe_cb(struct vs_net_op *op, int rc)
{
    struct pp_msg *m = VS_CONTAINER_OF(op, struct pp_msg, op);
    struct osd_peering *pe = m->pe;
    uint32_t idx = m->idx;
    free(m);
    if (!pe_alive(pe))
        return;
    wipe_result(pe, idx, rc);
    if (pe->outstanding == 0)
        step_run(pe);
}

static void wipe_local_cb(void *ctx, int rc)
{
    struct osd_peering *pe = ctx;
    if (!pe_alive(pe))
        return;
    for (uint32_t i = 0; i < pe->npeers; i++)
        if (pe->pp[i].self)
            wipe_result(pe, i, rc);
    if (pe->outstanding == 0)
        step_run(pe);
}

static struct vs_store_purge pg_filter(struct osd_pg *pg, uint64_t below);
static uint32_t pool_pg_count(struct osd_pg *pg);

static void wipe_send(struct osd_peering *pe, uint32_t i)
{
    struct osd_pg *pg = pe->pg;
    struct peering_peer *q = &pe->pp[i];
    q->wipe_sent = true;
    if (pool_pg_count(pg) == 0) /* never a filter of pg_count 0: that is the whole pool */
        return wipe_result(pe, i, -EINVAL);
    if (q->self) {
        struct vs_store_purge f = pg_filter(pg, 0);
        int rc = osd__purge_start(pg->osd, VS_NET_PURGEF_WIPE, &f, wipe_local_cb, pe);
        if (rc < 0)
            wipe_result(pe, i, rc);
        else
            pe->outstanding++;
        return;
    }
    struct pp_msg *m = msg_new(pe, i, VS_NET_OP_SEC_PURGE, wipe_cb);
    m->op.req.req.purge = (struct vs_net_purge){
        .pool = pg->pool, .pg_num = pg->num, .pg_count = pool_pg_count(pg),
        .flags = VS_NET_PURGEF_WIPE, .pg_stripe_size = pg->pg_stripe_size};
    if (msg_send(pe, m) < 0)
        wipe_result(pe, i, -ENOTCONN);
}

static void step_wipe(struct osd_peering *pe)
{
    bool lost_member = false;
    for (uint32_t i = 0; i < pe->npeers && pe->pg; i++) {
        struct peering_peer *q = &pe->pp[i];
        if (q->superseded && q->reachable && !q->wipe_sent)
            wipe_send(pe, i);
    }
    if (!pe->pg || pe->outstanding)
        return;
    for (uint32_t i = 0; i < pe->npeers; i++)
        for (uint32_t s = 0; s < VS_PG_SIZE_MAX; s++)
            lost_member |= pe->pp[i].wipe_sent && !pe->pp[i].reachable &&
                           pe->cur[s] == pe->pp[i].osd;
    if (lost_member) { /* W2: a set member left out: check activation again */
        const char *why = check_active(pe, pe->pg->why, sizeof(pe->pg->why));
        if (why) {
            struct osd_pg *pg = pe->pg;
            VS_WARN(OSD_LOG, "pg %s: incomplete: %s", pg->name, why);
            memcpy(pg->cur, pe->cur, sizeof(pg->cur));
            osd__peering_abort(pg);
            osd__pg_move(pg, VS_PG_INCOMPLETE);
            return osd__pg_kick(pg);
        }
    }
    pe->step = P_LIST;
}

/* ---- LIST ------------------------------------------------------------------------------ */

static void add_entries(struct osd_peering *pe, uint32_t osd, size_t n)
{
    if (pe->n + n > pe->cap) {
        size_t cap = pe->cap ? pe->cap : 1024;
        while (cap < pe->n + n)
            cap *= 2;
        struct vs_listed_obj *e = realloc(pe->ents, cap * sizeof(*e));
        VS_ASSERTF(e, "out of memory for %zu listed objects", cap);
        pe->ents = e;
        pe->cap = cap;
    }
    (void)osd;
}

static void list_local(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    struct vs_store_list_entry *e = NULL;
    long n = vs_store_list(pg->osd->store, pg->pool, pg->osd->pgmap ?
                           vs_pgmap_find(pg->osd->pgmap, pg->pool)->pg_count : 1, pg->num,
                           pg->pg_stripe_size, &e);
    VS_ASSERTF(n >= 0, "listing the local store: %s", vs_strerror((int)n));
    add_entries(pe, pg->osd->id, (size_t)n);
    for (long i = 0; i < n; i++)
        pe->ents[pe->n++] = (struct vs_listed_obj){
            .inode = e[i].oid.inode, .stripe = e[i].oid.stripe, .version = e[i].version,
            .osd = pg->osd->id, .stable = (e[i].flags & VS_STORE_LIST_STABLE) != 0,
            .deleted = (e[i].flags & VS_STORE_LIST_DELETED) != 0};
    free(e);
}

static uint32_t pool_pg_count(struct osd_pg *pg)
{
    const struct vs_pgmap_pool *mp = pg->osd->pgmap ? vs_pgmap_find(pg->osd->pgmap, pg->pool)
                                                    : NULL;
    return mp ? mp->pg_count : 0;
}

static void list_send(struct osd_peering *pe, uint32_t i);

static void list_cb(struct vs_net_op *op, int rc)
{
    struct pp_msg *m = VS_CONTAINER_OF(op, struct pp_msg, op);
    struct osd_peering *pe = m->pe;
    uint32_t idx = m->idx, count = op->reply.rep.count;
    uint8_t *page = m->payload;
    m->payload = NULL;
    bool more = rc == 0 && (op->reply.rep.flags & VS_NET_RF_LIST_MORE);
    uint64_t ni = op->reply.rep.next_inode, ns = op->reply.rep.next_stripe;
    if (rc == VS_ENOTPRIMARY)
        rc = VS_EPGINACTIVE; /* lost the lock while listing */
    if (!msg_done(m, rc, "SEC_LIST")) {
        free(page);
        return;
    }
    struct peering_peer *q = &pe->pp[idx];
    add_entries(pe, q->osd, count);
    for (uint32_t k = 0; k < count; k++) {
        struct vs_net_listent le;
        if (vs_net_listent_get(page + (size_t)k * VS_NET_LISTENT_SIZE, &le) < 0)
            continue;
        pe->ents[pe->n++] = (struct vs_listed_obj){
            .inode = le.inode, .stripe = le.stripe, .version = le.version, .osd = q->osd,
            .stable = (le.flags & VS_NET_LISTENT_STABLE) != 0,
            .deleted = (le.flags & VS_NET_LISTENT_DELETED) != 0};
    }
    free(page);
    if (more) {
        q->next_inode = ni;
        q->next_stripe = ns;
        list_send(pe, idx);
    } else {
        q->listed = true;
    }
    if (pe->outstanding == 0)
        step_run(pe);
}

static void list_send(struct osd_peering *pe, uint32_t i)
{
    struct osd_pg *pg = pe->pg;
    struct peering_peer *q = &pe->pp[i];
    struct pp_msg *m = msg_new(pe, i, VS_NET_OP_SEC_LIST, list_cb);
    uint32_t max = VS_MIN(OSD_LIST_PAGE, pg->osd->block_size / VS_NET_LISTENT_SIZE);
    m->payload = malloc((size_t)max * VS_NET_LISTENT_SIZE);
    VS_ASSERTF(m->payload, "out of memory for a listing page");
    m->op.req.req.list = (struct vs_net_list){
        .pool = pg->pool, .pg_num = pg->num, .pg_count = pool_pg_count(pg),
        .max_entries = VS_MAX(max, VS_NET_LIST_MIN_ENTRIES),
        .pg_stripe_size = pg->pg_stripe_size,
        .start_inode = q->next_inode ? q->next_inode : (uint64_t)pg->pool << 48,
        .start_stripe = q->next_stripe};
    m->op.reply_meta = m->payload;
    m->op.reply_meta_cap = max * VS_NET_LISTENT_SIZE;
    if (msg_send(pe, m) < 0)
        fail(pe, "a peer went away");
}

static void calc_run(struct osd_peering *pe);

static void step_list(struct osd_peering *pe)
{
    if (!pe->list_started) {
        pe->list_started = true;
        for (uint32_t i = 0; i < pe->npeers && pe->pg; i++) {
            struct peering_peer *q = &pe->pp[i];
            if (!q->reachable || q->superseded) /* W1: wiped, or left out */
                continue;
            if (q->self) {
                list_local(pe);
                q->listed = true;
            } else {
                list_send(pe, i);
            }
        }
    }
    if (pe->pg && pe->outstanding == 0)
        calc_run(pe);
}

/* ---- CALC --------------------------------------------------------------------------- */

static bool full_set(const struct osd_pg *pg, const uint32_t *cur)
{
    for (uint32_t i = 0; i < pg->pg_size; i++)
        if (pg->target[i] && !cur[i])
            return false;
    return true;
}

/* Rule T: the set reached whole, and no peer outside it but superseded ones. */
static bool purge_allowed(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    /* A full superseded list may have lost a member (vs_pg_history_clear):
     * then no purge is safe. */
    if (pg->hist.superseded_count >= VS_PG_PEERS_MAX)
        return false;
    if (!pg->purge_go || !pg->force_bump || !full_set(pg, pe->cur) ||
        pg->calc.obj_count || pg->calc.action_count)
        return false;
    for (uint32_t i = 0; i < pe->npeers; i++) {
        const struct peering_peer *q = &pe->pp[i];
        bool member = false;
        for (uint32_t s = 0; s < pg->pg_size; s++)
            member |= pe->cur[s] == q->osd;
        if (!q->superseded && !member)
            return false;
    }
    return true;
}

/* Local tombstones of epochs before `epoch`: what a purge would drop here. */
static uint64_t count_old_tombs(const struct osd_peering *pe, uint64_t epoch)
{
    uint64_t n = 0;
    for (size_t i = 0; i < pe->n; i++)
        n += pe->ents[i].osd == pe->pg->osd->id && pe->ents[i].deleted &&
             VS_VERSION_EPOCH(pe->ents[i].version) < epoch;
    return n;
}

static void calc_run(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    struct vs_pg_layout l = {.pg_size = pg->pg_size, .pg_data_size = pg->data_size,
                             .ec = false};
    memcpy(l.cur_set, pe->cur, sizeof(l.cur_set));
    int rc = vs_pg_calc(&l, pe->ents, pe->n, &pg->calc);
    if (rc == 0) {
        uint64_t e = VS_MAX(pg->hist.epoch, pg->calc.max_epoch);
        bool clean = full_set(pg, pe->cur) && pg->calc.obj_count == 0 && !pg->force_bump;
        pe->old_tombs = count_old_tombs(pe, clean ? e : e + 1);
    }
    free(pe->ents);
    pe->ents = NULL;
    pe->n = pe->cap = 0;
    if (rc < 0) {
        snprintf(pg->why, sizeof(pg->why), "peering calculation: %s", vs_strerror(rc));
    } else if (pg->calc.flags & VS_PGC_HAS_INVALID) {
        snprintf(pg->why, sizeof(pg->why), "%" PRIu64 " object(s) with an invalid chunk role",
                 pg->calc.invalid_count);
        rc = -EINVAL;
    }
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "pg %s: incomplete: %s", pg->name, pg->why);
        osd__peering_abort(pg);
        osd__pg_move(pg, VS_PG_INCOMPLETE);
        return;
    }
    osd__pg_set_unclean(pg);
    pe->purge = purge_allowed(pe);
    pg->purge_go = false; /* one try per trigger */
    pe->clean = full_set(pg, pe->cur) && pg->calc.obj_count == 0 && !pg->force_bump;
    /* Flush actions leave the PG unclean, so the epoch is bumped: the writes
     * after an unsynced rollback can never reuse its version (step 5). */
    VS_ASSERT(pg->calc.action_count == 0 || !pe->clean);
    rc = vs_pg_next_epoch(pg->hist.epoch, pg->calc.max_epoch, !pe->clean, &pe->epoch);
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "pg %s: the epoch is exhausted", pg->name);
        osd__peering_abort(pg);
        osd__pg_move(pg, VS_PG_INCOMPLETE);
        return;
    }
    VS_INFO(OSD_LOG, "pg %s: %" PRIu64 " object(s), %zu unclean (%" PRIu64 " degraded, %" PRIu64
            " misplaced), %zu flush action(s); epoch %" PRIu64, pg->name,
            pg->calc.object_count, pg->calc.obj_count, pg->calc.degraded_count,
            pg->calc.misplaced_count, pg->calc.action_count, pe->epoch);
    pe->step = pg->calc.action_count ? P_FLUSH : P_EPOCH;
    step_run(pe);
}

/* ---- FLUSH ------------------------------------------------------------------------------ */

static void flush_cb(struct vs_net_op *op, int rc)
{
    struct pp_msg *m = VS_CONTAINER_OF(op, struct pp_msg, op);
    struct osd_peering *pe = m->pe;
    if (!msg_done(m, rc == -ENOENT ? 0 : rc, "flush"))
        return;
    if (pe->outstanding == 0)
        step_run(pe);
}

static void local_flush_cb(struct vs_store_op *sop)
{
    struct osd_peering *pe = VS_CONTAINER_OF(sop, struct osd_peering, sop);
    int rc = sop->result;
    if (!pe_alive(pe))
        return;
    if (rc < 0 && rc != -ENOENT) {
        VS_ERROR(OSD_LOG, "pg %s: local flush: %s", pe->pg->name, vs_strerror(rc));
        pe->failed = true;
    }
    if (pe->outstanding == 0)
        pe->failed ? fail(pe, "a flush action failed") : step_run(pe);
}

/* Sends actions[from, to) (one OSD, one kind) as one batch. */
static void flush_batch(struct osd_peering *pe, const struct vs_flush_action *a, size_t n)
{
    struct osd_pg *pg = pe->pg;
    if (a[0].osd == pg->osd->id) {
        pe->local_list = calloc(n, sizeof(*pe->local_list));
        VS_ASSERTF(pe->local_list, "out of memory flushing");
        for (size_t i = 0; i < n; i++)
            pe->local_list[i] = (struct vs_store_obj_ver){{a[i].inode, a[i].stripe},
                                                          a[i].version};
        memset(&pe->sop, 0, sizeof(pe->sop));
        pe->sop.list = pe->local_list;
        pe->sop.list_count = (uint32_t)n;
        pe->sop.cb = local_flush_cb;
        int rc = a[0].kind == VS_FLUSH_ROLLBACK ? vs_store_rollback(pg->osd->store, &pe->sop)
                                                : vs_store_stabilize(pg->osd->store, &pe->sop);
        if (rc == 0)
            pe->outstanding++;
        else
            pe->failed = true;
        return;
    }
    uint32_t idx = 0;
    while (idx < pe->npeers && pe->pp[idx].osd != a[0].osd)
        idx++;
    if (idx == pe->npeers || !pe->pp[idx].reachable)
        return; /* the OSD is gone: its leftovers are rolled back when it returns */
    uint16_t op = a[0].kind == VS_FLUSH_ROLLBACK ? VS_NET_OP_SEC_ROLLBACK
                                                 : VS_NET_OP_SEC_STABILIZE;
    struct pp_msg *m = msg_new(pe, idx, op, flush_cb);
    m->payload = malloc(n * VS_NET_OBJVER_SIZE);
    VS_ASSERTF(m->payload, "out of memory flushing");
    for (size_t i = 0; i < n; i++) {
        struct vs_net_objver v = {a[i].inode, a[i].stripe, a[i].version};
        vs_net_objver_put(m->payload + i * VS_NET_OBJVER_SIZE, &v);
    }
    m->op.req.req.batch = (struct vs_net_batch){.count = (uint32_t)n};
    m->op.req.meta_len = (uint32_t)(n * VS_NET_OBJVER_SIZE);
    m->op.meta = m->payload;
    if (msg_send(pe, m) < 0)
        pe->failed = true;
}

/* The objects whose only trouble was a pending flush action are clean now. */
static void flush_settle(struct osd_pg *pg)
{
    const uint32_t trouble = VS_OBJ_INCOMPLETE | VS_OBJ_DEGRADED | VS_OBJ_MISPLACED;
    for (size_t i = 0; i < pg->calc.obj_count; i++)
        if (!(pg->calc.objs[i].state & trouble) && pg->ustate[i].state != 2)
            osd__pg_object_clean(pg, (uint32_t)i);
}

/* Remote batches all at once; local ones one after the other (one embedded
 * store op). A run is a stretch of actions for one OSD and one kind. */
static void step_flush(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    const struct vs_flush_action *a = pg->calc.actions;
    size_t n = pg->calc.action_count;
    if (pe->failed)
        return fail(pe, "a flush action failed");
    if (!pe->flush_sent) {
        pe->flush_sent = true;
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && j - i < OSD_BATCH_MAX && a[j].osd == a[i].osd &&
                   a[j].kind == a[i].kind)
                j++;
            if (a[i].osd != pg->osd->id)
                flush_batch(pe, a + i, j - i);
            i = j;
        }
    }
    free(pe->local_list);
    pe->local_list = NULL;
    while (pe->flush_local < n && a[pe->flush_local].osd != pg->osd->id)
        pe->flush_local++;
    if (pe->flush_local < n) {
        size_t i = pe->flush_local, j = i + 1;
        while (j < n && a[j].osd == a[i].osd && a[j].kind == a[i].kind)
            j++;
        pe->flush_local = j;
        flush_batch(pe, a + i, j - i);
        if (pe->outstanding)
            return;
    }
    if (pe->outstanding)
        return;
    if (pe->failed)
        return fail(pe, "a flush action failed");
    flush_settle(pg);
    pe->step = P_EPOCH;
    step_run(pe);
}

/* ---- EPOCH and activation ----------------------------------------------------------------- */

static bool in_cur(const struct osd_peering *pe, uint32_t osd)
{
    for (uint32_t s = 0; s < VS_PG_SIZE_MAX; s++)
        if (pe->cur[s] == osd)
            return true;
    return false;
}

static void activate(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    struct vs_osd *osd = pg->osd;
    pg->epoch = pe->epoch;
    memcpy(pg->cur, pe->cur, sizeof(pg->cur));
    for (uint32_t i = 0; i < pg->nwiped;) /* in the set: it takes writes now */
        if (in_cur(pe, pg->wiped[i]))
            pg->wiped[i] = pg->wiped[--pg->nwiped];
        else
            i++;
    for (uint32_t i = 0; i < pg->pg_size; i++) {
        struct osd_peer *p = pg->cur[i] && pg->cur[i] != osd->id ? osd__peer(osd, pg->cur[i])
                                                                  : NULL;
        pg->cur_conn[i] = p ? p->conn : NULL;
    }
    /* Lazy: recovery and the writes of the last interval may not be durable
     * on the members yet, so the next SYNC syncs every member. */
    for (uint32_t i = 0; i < VS_PG_SIZE_MAX; i++)
        pg->dirty[i] = pg->lazy && i < pg->pg_size && pg->cur[i] != 0;
    osd__peering_abort(pg);
    /* The flags go with the move: its pg/state report must never say
     * "active" alone for a PG that is not clean. */
    pg->flags = osd__pg_unclean_flags(pg);
    osd__pg_move(pg, VS_PG_ACTIVE);
    VS_INFO(OSD_LOG, "pg %s: active%s%s%s, epoch %" PRIu64, pg->name,
            pg->flags & VS_PGF_DEGRADED ? ", degraded" : "",
            pg->flags & VS_PGF_HAS_DEGRADED ? ", has degraded objects" : "",
            pg->flags & VS_PGF_HAS_MISPLACED ? ", has misplaced objects" : "", pg->epoch);
    osd__pg_report(pg);
    osd__pg_kick(pg); /* recovery, or the clean report */
}

static void history_cb(struct osd_pg *pg, int rc)
{
    struct osd_peering *pe = pg->peering;
    osd__pg_meta_pump(pg);
    if (!pe)
        return;
    if (rc == VS_ECOMPARE)
        return fail(pe, "lost lock #1 while storing the epoch");
    if (rc < 0) {
        VS_WARN(OSD_LOG, "pg %s: storing pg/history: %s; retrying", pg->name, vs_strerror(rc));
        pe->hist_sent = false;
        return osd__pg_arm(pg, OSD_RETRY_MS);
    }
    pg->force_bump = false;
    pe->step = P_PURGE;
    step_run(pe);
}

/* D6: unless the PG comes up clean, the new epoch -- and the set it runs on,
 * when that is not the whole target set -- are durable before any write. */
static void step_epoch(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    if (pe->clean && !pe->unsupersede) {
        pe->step = P_PURGE;
        return step_run(pe);
    }
    if (pe->hist_sent)
        return;
    struct vs_pg_history h = pg->hist;
    h.epoch = pe->epoch;
    for (uint32_t i = 0; i < pe->npeers; i++) /* W3 */
        if (pe->pp[i].wiped)
            (void)vs_pg_history_unsupersede(&h, pe->pp[i].osd);
    int rc = 0;
    if (!pe->clean && !full_set(pg, pe->cur))
        rc = vs_pg_history_add_set(&h, pe->cur, pg->pg_size);
    for (uint32_t i = 0; !pe->clean && rc >= 0 && i < pg->pg_size; i++)
        if (pe->cur[i])
            rc = vs_pg_history_add_peer(&h, pe->cur[i]);
    if (rc < 0) {
        snprintf(pg->why, sizeof(pg->why), "pg/history is full (%u sets)", h.set_count);
        VS_ERROR(OSD_LOG, "pg %s: incomplete: %s", pg->name, pg->why);
        osd__peering_abort(pg);
        return osd__pg_move(pg, VS_PG_INCOMPLETE);
    }
    if (pg->meta_busy || !osd__meta_up(pg->osd))
        return osd__pg_arm(pg, OSD_RETRY_MS);
    struct vs_pg_history old = pg->hist;
    pg->hist = h;
    rc = osd__meta_pg_history(pg, history_cb);
    if (rc < 0) {
        pg->hist = old;
        return osd__pg_arm(pg, OSD_RETRY_MS);
    }
    pe->hist_sent = true;
}

/* ---- PURGE (rule T) ---------------------------------------------------------------------- */

static struct vs_store_purge pg_filter(struct osd_pg *pg, uint64_t below)
{
    return (struct vs_store_purge){.pool_id = pg->pool, .pg_count = pool_pg_count(pg),
                                   .pg = pg->num, .pg_stripe_size = pg->pg_stripe_size,
                                   .below = below};
}

static void purge_result(struct osd_peering *pe, uint32_t osd, int rc)
{
    if (rc < 0) /* its tombstones stay: harmless, it is only space */
        VS_WARN(OSD_LOG, "pg %s: purging tombstones on osd.%u: %s", pe->pg->name, osd,
                vs_strerror(rc));
    else
        pe->purged_osds++;
}

static void purge_cb(struct vs_net_op *op, int rc)
{
    struct pp_msg *m = VS_CONTAINER_OF(op, struct pp_msg, op);
    struct osd_peering *pe = m->pe;
    uint32_t osd = pe->pp[m->idx].osd;
    free(m);
    if (!pe_alive(pe))
        return;
    purge_result(pe, osd, rc);
    if (pe->outstanding == 0)
        step_run(pe);
}

static void purge_local_cb(void *ctx, int rc)
{
    struct osd_peering *pe = ctx;
    if (!pe_alive(pe))
        return;
    purge_result(pe, pe->pg->osd->id, rc);
    if (pe->outstanding == 0)
        step_run(pe);
}

/* Every OSD of the set drops the PG's tombstones below the new epoch, which
 * pg/history holds already (step EPOCH). */
static void step_purge(struct osd_peering *pe)
{
    struct osd_pg *pg = pe->pg;
    if (pe->purge && pool_pg_count(pg) == 0) /* as in wipe_send */
        pe->purge = false;
    if (pe->purge && !pe->purge_sent) {
        pe->purge_sent = true;
        uint64_t below = pe->epoch << VS_VERSION_EPOCH_SHIFT;
        for (uint32_t i = 0; i < pe->npeers && pe->pg; i++) {
            struct peering_peer *q = &pe->pp[i];
            if (q->superseded || !q->reachable)
                continue;
            if (q->self) {
                struct vs_store_purge f = pg_filter(pg, below);
                int rc = osd__purge_start(pg->osd, VS_NET_PURGEF_TOMBS, &f, purge_local_cb, pe);
                if (rc < 0)
                    purge_result(pe, q->osd, rc);
                else
                    pe->outstanding++;
                continue;
            }
            struct pp_msg *m = msg_new(pe, i, VS_NET_OP_SEC_PURGE, purge_cb);
            m->op.req.req.purge = (struct vs_net_purge){
                .pool = pg->pool, .pg_num = pg->num, .pg_count = pool_pg_count(pg),
                .flags = VS_NET_PURGEF_TOMBS, .pg_stripe_size = pg->pg_stripe_size,
                .below = below};
            if (msg_send(pe, m) < 0)
                purge_result(pe, q->osd, -ENOTCONN);
        }
    }
    if (!pe->pg || pe->outstanding)
        return;
    if (pe->purge) {
        VS_INFO(OSD_LOG, "pg %s: tombstones below epoch %" PRIu64 " purged on %u OSD(s)",
                pg->name, pe->epoch, pe->purged_osds);
        pg->purge_wanted = false;
    }
    pg->old_tombs = pe->purge ? 0 : pe->old_tombs;
    pe->step = P_DONE;
}

/* ---- The driver ------------------------------------------------------------------------------ */

static void step_run(struct osd_peering *pe)
{
    if (pe->in_step || !pe->pg)
        return;
    pe->in_step = true;
    enum peering_step prev;
    do { /* a step that finishes at once moves on in this loop, not by recursion */
        prev = pe->step;
        switch (pe->step) {
        case P_LOCK1:
            step_lock1(pe);
            break;
        case P_CONNECT:
            step_connect(pe);
            break;
        case P_LOCK2:
            step_lock2(pe);
            break;
        case P_WIPE:
            step_wipe(pe);
            break;
        case P_LIST:
            step_list(pe);
            break;
        case P_FLUSH:
            step_flush(pe);
            break;
        case P_EPOCH:
            step_epoch(pe);
            break;
        case P_PURGE:
            step_purge(pe);
            break;
        case P_DONE:
            if (osd__now_ms() < pe->active_at_ms) { /* R6 */
                osd__pg_arm(pe->pg, pe->active_at_ms - osd__now_ms() + 1);
                break;
            }
            activate(pe);
            break;
        }
    } while (pe->pg && pe->step != prev && pe->outstanding == 0);
    pe->in_step = false;
    if (!pe->pg && pe->outstanding == 0)
        pe_free(pe);
}
