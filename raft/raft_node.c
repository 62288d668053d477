/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_node.c -- the raft_step() driver: events go in, the struct
 * raft_update that comes out is carried out against SQLite and the network.
 *
 * NOTES
 *
 * raft_step() leaves persistence, transport and application to us. The rules
 * this file follows (cited as "node rule N"):
 *  (1) A new term or vote is committed with fsync before any message of the
 *      same step leaves (raft's own rule for RAFT_UPDATE_CURRENT_TERM and
 *      RAFT_UPDATE_VOTED_FOR); elections are rare, so this commits at once.
 *  (2) New entries go into the turn's transaction; raft hears
 *      RAFT_PERSISTED_ENTRIES only in raft__node_end_turn(), after the commit
 *      with fsync (db invariant 2). A follower therefore acknowledges only
 *      entries on its disk; a leader counts itself only when on its disk.
 *  (3) Our log mirrors raft's trail exactly: same first and last index, same
 *      terms (asserted after every step: raft_last_index() == log.last).
 *  (4) Committed entries are applied in order, in the same transaction as the
 *      writes of the turn; applied_index never passes commit_index except
 *      after a snapshot restore (whose data may be newer than its index).
 *  (5) Proposals of one turn go to raft as one RAFT_SUBMIT, so a turn costs
 *      one append and one AppendEntries per follower (STYLE B16).
 *  (6) No commit separates an applied entry's changes from the applied_index
 *      that counts it: the transaction is open before the first apply, and a
 *      mid-turn commit (node rule 1) saves applied_index first. Otherwise a
 *      crash in between would apply the entry again on restart (found by the
 *      kill -9 failover benchmark: a duplicate history row).
 *
 * Memory handed to and from raft (raft.h is terse about it):
 *  - RAFT_SUBMIT entries: one raft_malloc'd batch for all of them; on success
 *    raft returns them in update.entries and we free entries[0].batch after
 *    copying them into the log; on failure we free it.
 *  - update.entries produced by raft itself (a new leader's barrier): the
 *    same -- we free entries[0].batch.
 *  - update.entries that point into a received AppendEntries: the message's
 *    batch; raft__node_receive frees it (raft frees it itself when it did not
 *    hand the entries back). The entries array is always ours to free.
 *  - A received InstallSnapshot: raft frees data and conf when it does not
 *    install; when it does, update.snapshot.chunk is the data (we free it
 *    after restoring) and the metadata's conf goes back to raft inside
 *    RAFT_PERSISTED_SNAPSHOT. While an install is pending we drop further
 *    InstallSnapshot messages ourselves.
 *  - Configurations in RAFT_CONFIGURATION, RAFT_SNAPSHOT and RAFT_START
 *    events become raft's.
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int handle_update(struct raft_node *n, struct raft_update *u);

static raft_time now_ms(struct raft_node *n)
{
    return (raft_time)uv_now(n->loop);
}

void raft__node_fail(struct raft_node *n, int rc, const char *what)
{
    if (n->fatal)
        return;
    n->fatal = true;
    n->fatal_rc = rc;
    snprintf(n->fatal_msg, sizeof(n->fatal_msg), "%s: %s (%s)", what, vs_strerror(rc),
             n->db->errmsg[0] ? n->db->errmsg : "no detail");
    VS_ERROR("meta", "member %" PRIu64 " stops: %s", n->opts.id, n->fatal_msg);
    uv_timer_stop(&n->timer);
    if (n->cbs.fatal)
        n->cbs.fatal(n->cbs.ctx, rc, n->fatal_msg);
}

static void push_event(struct raft_node *n, const struct raft_event *ev)
{
    VS_ASSERT(n->evq_n < RAFT_NODE_EVQ_MAX);
    n->evq[n->evq_n++] = *ev;
}

/* One raft_step plus its update; queued follow-up events run after it. */
static int step(struct raft_node *n, struct raft_event *ev)
{
    if (n->fatal)
        return VS_ESHUTDOWN;
    ev->time = now_ms(n);
    ev->capacity = 0;
    struct raft_update u;
    int old_state = (int)raft_state(&n->raft);
    int rc = raft_step(&n->raft, ev, &u);
    if (rc != 0) {
        VS_WARN("meta", "raft_step(%d): %s (%s)", ev->type, raft_strerror(rc),
                raft_errmsg(&n->raft));
        return rc;
    }
    rc = handle_update(n, &u);
    if (rc < 0) {
        raft__node_fail(n, rc, "persisting raft state");
        return rc;
    }
    int new_state = (int)raft_state(&n->raft);
    if (new_state != old_state && n->cbs.state_changed)
        n->cbs.state_changed(n->cbs.ctx, old_state, new_state);
    VS_ASSERT(n->fatal || raft_last_index(&n->raft) == n->log.last); /* node rule 3 */
    return 0;
}

/* Runs queued events (configuration changes, snapshots) until none is left. */
static void drain_events(struct raft_node *n)
{
    while (n->evq_n > 0 && !n->fatal) {
        struct raft_event ev = n->evq[0];
        memmove(n->evq, n->evq + 1, (n->evq_n - 1) * sizeof(n->evq[0]));
        n->evq_n--;
        int rc = step(n, &ev);
        if (rc != 0 && !n->fatal)
            raft__node_fail(n, VS_ECORRUPT, "raft refused an internal event");
    }
}

static void arm_timer(struct raft_node *n)
{
    if (n->fatal || n->closing)
        return;
    raft_time at = raft_timeout(&n->raft), now = now_ms(n);
    uv_timer_start(&n->timer, n->timer_cb, at > now ? at - now : 0, 0);
}

/* ---- update handling ----------------------------------------------------------- */

static int persist_term_vote(struct raft_node *n)
{
    int rc = raft__log_set_term_vote(&n->log, raft_current_term(&n->raft),
                                     raft_voted_for(&n->raft));
    if (rc == 0 && n->sm_dirty)
        rc = raft__sm_save(&n->sm); /* node rule 6 */
    if (rc == 0)
        rc = raft__db_commit(n->db); /* node rule 1 */
    return rc;
}

static int persist_entries(struct raft_node *n, struct raft_update *u)
{
    struct raft_entry *src = u->entries.batch;
    unsigned count = u->entries.n;
    VS_ASSERT(count > 0 && count <= RAFT_NODE_APPEND_MAX);
    if (u->entries.index <= n->log.last && n->cbs.truncated)
        n->cbs.truncated(n->cbs.ctx, u->entries.index);
    for (unsigned i = 0; i < count; i++)
        n->append_tmp[i] = (struct raft_log_entry){src[i].term, (uint8_t)src[i].type,
                                                   (uint32_t)src[i].buf.len, src[i].buf.base};
    int rc = raft__log_append(&n->log, u->entries.index, n->append_tmp, count);
    bool from_rx = n->rx_entries && src >= n->rx_entries && src < n->rx_entries + n->rx_n;
    if (from_rx)
        n->rx_taken = true; /* raft__node_receive frees the message's batch */
    else
        raft_free(src[0].batch);
    return rc;
}

static int install_snapshot(struct raft_node *n, struct raft_update *u)
{
    struct raft_snapshot_metadata *md = &u->snapshot.metadata;
    struct raft_buffer conf;
    int rc = raft__db_begin(n->db); /* node rule 6: the restore and its index together */
    if (rc == 0)
        rc = raft__sm_restore(&n->sm, u->snapshot.chunk.base, u->snapshot.chunk.len);
    raft_free(u->snapshot.chunk.base);
    if (rc < 0) {
        VS_ERROR("meta", "snapshot %llu from the leader does not restore: %s", md->index,
                 vs_strerror(rc));
        return rc == -EINVAL ? VS_ECORRUPT : rc;
    }
    if (raft_configuration_encode(&md->configuration, &conf) != 0)
        return -ENOMEM;
    rc = raft__log_install(&n->log, md->index, md->term, conf.base, (uint32_t)conf.len,
                           md->configuration_index);
    raft_free(conf.base);
    if (rc < 0)
        return rc;
    n->install_pending = true;
    n->snapshots_installed++;
    n->install_meta = *md; /* its configuration goes back to raft when persisted */
    n->sm_dirty = true;
    VS_INFO("meta", "installed snapshot %llu (state at raft index %" PRIu64 ")", md->index,
            n->sm.applied_index);
    if (n->cbs.restored)
        n->cbs.restored(n->cbs.ctx);
    return 0;
}

/* The snapshot data we send: the current state, cached per snapshot index. */
static int snapshot_blob(struct raft_node *n)
{
    if (n->snap_blob.len && n->snap_blob_index == n->log.snap_index)
        return 0;
    raft__buf_reset(&n->snap_blob);
    int rc = raft__sm_snapshot(&n->sm, &n->snap_blob);
    if (rc == 0)
        n->snap_blob_index = n->log.snap_index;
    else
        raft__buf_reset(&n->snap_blob);
    return rc;
}

static void send_message(struct raft_node *n, struct raft_message *m)
{
    struct raft_conn *c = n->cbs.peer_conn(n->cbs.ctx, m->server_id, m->server_address);
    if (!c)
        return; /* not connected: raft retries with the next heartbeat */
    size_t off = raft__conn_frame_begin(c, RF_RAFT);
    raft__msg_encode_head(&c->out, m);
    int rc = 0;
    if (m->type == RAFT_APPEND_ENTRIES) {
        struct raft_append_entries *ae = &m->append_entries;
        for (unsigned i = 0; i < ae->n_entries && rc == 0; i++) {
            struct raft_log_entry e;
            rc = raft__log_entry(&n->log, ae->prev_log_index + 1 + i, &e, &n->scratch);
            if (rc == 0)
                raft__msg_encode_entry(&c->out, e.term, e.type, e.data, e.len);
        }
    } else if (m->type == RAFT_INSTALL_SNAPSHOT) {
        rc = m->install_snapshot.last_index == n->log.snap_index ? snapshot_blob(n) : -ENOENT;
        if (rc == 0) {
            raft__buf_blob(&c->out, n->log.snap_conf, n->log.snap_conf_len);
            raft__buf_blob(&c->out, n->snap_blob.p, (uint32_t)n->snap_blob.len);
        }
    }
    if (rc < 0) {
        VS_WARN("meta", "cannot send raft message %d to %llu: %s", m->type, m->server_id,
                vs_strerror(rc));
        c->out.len = off; /* drop the half-built frame */
        return;
    }
    raft__conn_frame_end(c, off);
}

/* Records a snapshot when enough entries were applied since the last one. */
static int maybe_snapshot(struct raft_node *n)
{
    struct raft *r = &n->raft;
    uint64_t idx = VS_MIN(n->sm.applied_index, raft_commit_index(r));
    idx = VS_MIN(idx, n->log.last);
    if (idx < n->log.snap_index + n->opts.snapshot_threshold || idx < n->log.first ||
        r->configuration_committed_index > idx || r->configuration_committed.n == 0)
        return 0;
    uint64_t term = raft__log_term_of(&n->log, idx);
    struct raft_buffer conf;
    if (term == 0 || raft_configuration_encode(&r->configuration_committed, &conf) != 0)
        return 0;
    int rc = raft__log_snapshot(&n->log, idx, term, conf.base, (uint32_t)conf.len,
                                r->configuration_committed_index, n->opts.snapshot_trailing);
    struct raft_event ev = {.type = RAFT_SNAPSHOT};
    if (rc == 0) {
        struct raft_buffer b = {conf.base, conf.len};
        raft_configuration_init(&ev.snapshot.metadata.configuration);
        rc = raft_configuration_decode(&b, &ev.snapshot.metadata.configuration) == 0 ? 0
                                                                                     : -ENOMEM;
    }
    raft_free(conf.base);
    if (rc < 0)
        return rc;
    ev.snapshot.metadata.index = idx;
    ev.snapshot.metadata.term = term;
    ev.snapshot.metadata.configuration_index = r->configuration_committed_index;
    ev.snapshot.trailing = n->opts.snapshot_trailing;
    push_event(n, &ev);
    raft__buf_reset(&n->snap_blob);
    n->snapshots_taken++;
    return 0;
}

static int apply_entry(struct raft_node *n, uint64_t idx, struct raft_log_entry *e)
{
    struct raft_sm_result res = {0};
    raft__buf_init(&res.out);
    int rc = 0;
    if (e->type == RAFT_COMMAND) {
        rc = raft__sm_apply(&n->sm, idx, e->data, e->len, &res);
    } else {
        raft__sm_skip(&n->sm, idx);
        if (e->type == RAFT_CHANGE) {
            struct raft_event ev = {.type = RAFT_CONFIGURATION};
            struct raft_buffer b = {e->data, e->len};
            ev.configuration.index = idx;
            if (raft_configuration_decode(&b, &ev.configuration.conf) != 0)
                rc = VS_ECORRUPT;
            else
                push_event(n, &ev);
        }
    }
    if (rc == 0 && n->cbs.applied)
        n->cbs.applied(n->cbs.ctx, idx, e, &res);
    raft__buf_free(&res.out);
    return rc;
}

static int apply_committed(struct raft_node *n)
{
    uint64_t commit = raft_commit_index(&n->raft);
    /* Node rule 6: the changes of an entry and the applied_index that counts
     * them share a transaction, so it opens before the first apply (outside
     * one, SQLite would commit each statement - or the sm savepoint - alone,
     * and a crash before the turn's commit would apply them twice). */
    int rc = n->sm.applied_index < commit ? raft__db_begin(n->db) : 0;
    while (rc == 0 && n->sm.applied_index < commit && !n->fatal) {
        uint64_t idx = n->sm.applied_index + 1;
        struct raft_log_entry e;
        rc = raft__log_entry(&n->log, idx, &e, &n->scratch);
        if (rc == -ENOENT) {
            VS_ERROR("meta", "committed entry %" PRIu64 " is not in the log [%" PRIu64
                     ", %" PRIu64 "]", idx, n->log.first, n->log.last);
            return VS_ECORRUPT;
        }
        if (rc == 0)
            rc = apply_entry(n, idx, &e);
        n->sm_dirty = true;
    }
    /* After a restart raft holds the last configuration entry as uncommitted;
     * if that entry was applied before the restart it is not applied again,
     * so tell raft here that it is committed. */
    uint64_t cu = n->raft.configuration_uncommitted_index;
    if (rc == 0 && cu != 0 && cu <= commit && cu <= n->sm.applied_index && cu >= n->log.first) {
        struct raft_log_entry e;
        struct raft_event ev = {.type = RAFT_CONFIGURATION};
        rc = raft__log_entry(&n->log, cu, &e, &n->scratch);
        struct raft_buffer b = {e.data, e.len};
        if (rc == 0 && e.type == RAFT_CHANGE &&
            raft_configuration_decode(&b, &ev.configuration.conf) == 0) {
            ev.configuration.index = cu;
            push_event(n, &ev);
        }
    }
    return rc == 0 ? maybe_snapshot(n) : rc;
}

static int handle_update(struct raft_node *n, struct raft_update *u)
{
    int rc = 0;
    if (u->flags & (RAFT_UPDATE_CURRENT_TERM | RAFT_UPDATE_VOTED_FOR))
        rc = persist_term_vote(n);
    if (rc == 0 && (u->flags & RAFT_UPDATE_ENTRIES))
        rc = persist_entries(n, u);
    if (rc == 0 && (u->flags & RAFT_UPDATE_SNAPSHOT))
        rc = install_snapshot(n, u);
    if (rc == 0 && (u->flags & RAFT_UPDATE_MESSAGES))
        for (unsigned i = 0; i < u->messages.n; i++)
            send_message(n, &u->messages.batch[i]);
    if (rc == 0 && (u->flags & RAFT_UPDATE_COMMIT_INDEX))
        rc = apply_committed(n);
    arm_timer(n);
    return rc;
}

/* ---- entry points --------------------------------------------------------------- */

static void timer_cb(uv_timer_t *t)
{
    struct raft_node *n = t->data;
    struct raft_event ev = {.type = RAFT_TIMEOUT};
    if (step(n, &ev) == 0)
        drain_events(n);
    arm_timer(n);
}

void raft__node_receive(struct raft_node *n, uint64_t from_id, const char *from_addr,
                        const uint8_t *p, size_t len)
{
    if (n->fatal || n->closing)
        return;
    struct raft_message m;
    if (raft__msg_decode(p, len, &m) < 0) {
        VS_WARN("meta", "malformed raft message from member %" PRIu64 ": dropped", from_id);
        n->bad_messages++;
        return;
    }
    if (m.type == RAFT_INSTALL_SNAPSHOT && n->install_pending) {
        raft__msg_release(&m); /* one install at a time: the leader retries */
        return;
    }
    m.server_id = from_id;
    m.server_address = from_addr;
    bool ae = m.type == RAFT_APPEND_ENTRIES && m.append_entries.n_entries > 0;
    n->rx_entries = ae ? m.append_entries.entries : NULL;
    n->rx_n = ae ? m.append_entries.n_entries : 0;
    n->rx_taken = false;
    struct raft_event ev = {.type = RAFT_RECEIVE, .receive.message = &m};
    int rc = step(n, &ev);
    if (ae) {
        if (n->rx_taken)
            raft_free(m.append_entries.entries[0].batch);
        raft_free(m.append_entries.entries);
    }
    n->rx_entries = NULL;
    if (rc != 0 && !n->fatal)
        raft__node_fail(n, VS_ECORRUPT, "raft refused a message");
    drain_events(n);
}

void raft__node_leader_gone(struct raft_node *n, uint64_t leader_id, const char *leader_addr)
{
    if (n->fatal || n->closing)
        return;
    uint64_t last = raft_last_index(&n->raft);
    struct raft_message m = {.type = RAFT_TIMEOUT_NOW,
                             .server_id = leader_id,
                             .server_address = leader_addr};
    m.timeout_now.term = raft_current_term(&n->raft);
    m.timeout_now.last_log_index = last;
    m.timeout_now.last_log_term = raft__log_term_of(&n->log, last);
    struct raft_event ev = {.type = RAFT_RECEIVE, .receive.message = &m};
    if (step(n, &ev) != 0 && !n->fatal)
        raft__node_fail(n, VS_ECORRUPT, "raft refused to start an election");
    drain_events(n);
}

static void submit_queued(struct raft_node *n);

/* A full queue (a burst of more proposals in one turn than one submit holds)
 * goes to raft at once and a new batch starts: a burst is never refused. */
int raft__node_propose(struct raft_node *n, uint8_t type, const void *data, size_t len,
                       uint64_t *index)
{
    if (n->subq_n == RAFT_NODE_APPEND_MAX)
        submit_queued(n);
    if (n->fatal || n->closing)
        return VS_ESHUTDOWN;
    if (raft_state(&n->raft) != RAFT_LEADER || raft_transferee(&n->raft) != 0)
        return VS_ENOTLEADER;
    n->subq_type[n->subq_n] = type;
    n->subq_len[n->subq_n] = (uint32_t)len;
    raft__buf_bytes(&n->subq_data, data, len);
    if (n->subq_data.oom)
        return -ENOMEM;
    n->subq_n++;
    *index = n->log.last + n->subq_n;
    return 0;
}

/* Node rule 5: everything proposed this turn goes to raft in one submit. */
static void submit_queued(struct raft_node *n)
{
    unsigned count = n->subq_n;
    if (count == 0 || n->fatal)
        return;
    uint64_t first = n->log.last + 1;
    uint8_t *batch = raft_malloc(n->subq_data.len ? n->subq_data.len : 1);
    int rc = batch ? 0 : RAFT_NOMEM;
    if (batch) {
        memcpy(batch, n->subq_data.p, n->subq_data.len);
        size_t off = 0;
        for (unsigned i = 0; i < count; i++) {
            n->submit_tmp[i] = (struct raft_entry){.term = raft_current_term(&n->raft),
                                                   .type = (enum raft_entry_type)n->subq_type[i],
                                                   .buf = {batch + off, n->subq_len[i]},
                                                   .batch = batch};
            off += n->subq_len[i];
        }
        struct raft_event ev = {.type = RAFT_SUBMIT,
                                .submit = {.entries = n->submit_tmp, .n = count}};
        rc = step(n, &ev);
        if (rc != 0)
            raft_free(batch); /* raft kept nothing */
    }
    n->subq_n = 0;
    raft__buf_reset(&n->subq_data);
    if (rc != 0 && !n->fatal && n->cbs.submit_failed)
        n->cbs.submit_failed(n->cbs.ctx, first, count,
                             rc == RAFT_NOMEM ? -ENOMEM : VS_ENOTLEADER);
    drain_events(n);
}

int raft__node_change(struct raft_node *n, const struct raft_configuration *conf,
                      uint64_t *index)
{
    struct raft_buffer buf;
    if (raft_configuration_encode(conf, &buf) != 0)
        return -ENOMEM;
    submit_queued(n); /* a change goes alone: raft refuses a batch with two */
    int rc = raft__node_propose(n, RAFT_CHANGE, buf.base, buf.len, index);
    raft_free(buf.base);
    if (rc == 0)
        submit_queued(n);
    return rc;
}

int raft__node_catch_up(struct raft_node *n, uint64_t id)
{
    if (raft_state(&n->raft) != RAFT_LEADER)
        return VS_ENOTLEADER;
    struct raft_event ev = {.type = RAFT_CATCH_UP, .catch_up.server_id = id};
    int rc = step(n, &ev);
    drain_events(n);
    return rc == 0 ? 0 : -EINVAL;
}

bool raft__node_busy(const struct raft_node *n)
{
    return n->subq_n > 0 || n->db->in_txn || n->evq_n > 0;
}

/* Commits the turn's transaction and tells raft what became durable. */
static int commit_and_report(struct raft_node *n)
{
    int rc = n->sm_dirty ? raft__sm_save(&n->sm) : 0;
    if (rc == 0)
        rc = raft__db_commit(n->db);
    if (rc < 0) {
        raft__node_fail(n, rc, "committing to the database");
        return rc;
    }
    n->sm_dirty = false;
    if (n->install_pending) {
        n->install_pending = false;
        struct raft_event ev = {.type = RAFT_PERSISTED_SNAPSHOT};
        ev.persisted_snapshot.metadata = n->install_meta;
        ev.persisted_snapshot.offset = 0;
        ev.persisted_snapshot.last = true;
        step(n, &ev);
    }
    int state = (int)raft_state(&n->raft);
    if (n->log.last > n->raft.last_stored && !n->fatal &&
        (state == RAFT_LEADER || state == RAFT_FOLLOWER)) {
        struct raft_event ev = {.type = RAFT_PERSISTED_ENTRIES};
        ev.persisted_entries.index = n->log.last; /* node rule 2 */
        step(n, &ev);
    }
    drain_events(n);
    return 0;
}

void raft__node_end_turn(struct raft_node *n)
{
    for (int round = 0; round < 16 && !n->fatal; round++) {
        submit_queued(n);
        if (n->cbs.flush_net)
            n->cbs.flush_net(n->cbs.ctx);
        if (!n->db->in_txn && n->subq_n == 0)
            break;
        if (n->db->in_txn && commit_and_report(n) < 0)
            return;
    }
    if (n->cbs.flush_net)
        n->cbs.flush_net(n->cbs.ctx);
}

/* ---- open, bootstrap, start, close ------------------------------------------------ */

static void trace_emit(struct raft_tracer *t, int type, const void *info)
{
    (void)t;
    if (type != RAFT_TRACER_DIAGNOSTIC || vs_log_level_current < VS_LOG_TRACE)
        return;
    const struct raft_tracer_info *i = info;
    VS_TRACE("raft", "%s", i->diagnostic.message);
}

int raft__node_open(struct raft_node *n, uv_loop_t *loop, struct raft_db *db,
                    const struct raft_limits *lim, const struct raft_node_opts *o,
                    const struct raft_node_cbs *cbs)
{
    memset(n, 0, sizeof(*n));
    n->loop = loop;
    n->db = db;
    n->opts = *o;
    n->cbs = *cbs;
    n->timer_cb = timer_cb;
    raft__buf_init(&n->scratch);
    raft__buf_init(&n->subq_data);
    raft__buf_init(&n->snap_blob);
    int rc = raft__log_load(&n->log, db);
    if (rc == 0)
        rc = raft__sm_init(&n->sm, db, lim);
    if (rc < 0)
        return rc;
    n->sm_ready = true;
    if (raft_init(&n->raft, NULL, NULL, o->id, o->address) != 0)
        return -ENOMEM;
    n->raft_ready = true;
    n->tracer = (struct raft_tracer){.impl = n, .version = 2, .emit = trace_emit};
    n->raft.tracer = &n->tracer;
    raft_set_election_timeout(&n->raft, o->election_timeout_ms);
    raft_set_heartbeat_timeout(&n->raft, o->heartbeat_timeout_ms);
    raft_set_max_inflight_entries(&n->raft, RAFT_NODE_APPEND_MAX);
    raft_set_pre_vote(&n->raft, true);
    raft_seed(&n->raft, o->seed);
    uv_timer_init(loop, &n->timer);
    n->timer.data = n;
    n->timer_ready = true;
    return 0;
}

bool raft__node_is_empty(const struct raft_node *n)
{
    return n->log.last == 0 && n->log.snap_index == 0 && n->log.term == 0;
}

int raft__node_bootstrap(struct raft_node *n, const struct vs_raft_member *members, unsigned count)
{
    VS_ASSERT(raft__node_is_empty(n));
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rc = 0;
    for (unsigned i = 0; i < count && rc == 0; i++)
        rc = raft_configuration_add(&conf, members[i].id, members[i].address, RAFT_VOTER);
    struct raft_buffer buf = {0};
    if (rc == 0)
        rc = raft_configuration_encode(&conf, &buf);
    raft_configuration_close(&conf);
    if (rc != 0)
        return -EINVAL;
    /* Entry 1 is the configuration, committed by definition (raft's own
     * bootstrap does the same); every member given the same list writes the
     * same entry. */
    struct raft_log_entry e = {1, RAFT_CHANGE, (uint32_t)buf.len, buf.base};
    rc = raft__log_append(&n->log, 1, &e, 1);
    raft_free(buf.base);
    if (rc == 0)
        rc = raft__log_set_term_vote(&n->log, 1, 0);
    return rc == 0 ? raft__db_commit(n->db) : rc;
}

/* RAFT_START needs every log entry in one raft_malloc'd batch. */
static int start_entries(struct raft_node *n, struct raft_entry **out, unsigned *count)
{
    uint64_t nent = n->log.last >= n->log.first ? n->log.last - n->log.first + 1 : 0;
    *out = NULL;
    *count = (unsigned)nent;
    if (nent == 0)
        return 0;
    struct raft_buf all;
    raft__buf_init(&all);
    struct raft_entry *es = raft_malloc(nent * sizeof(*es));
    int rc = es ? 0 : -ENOMEM;
    for (uint64_t i = 0; i < nent && rc == 0; i++) {
        struct raft_log_entry e;
        rc = raft__log_entry(&n->log, n->log.first + i, &e, &n->scratch);
        if (rc == 0) {
            es[i] = (struct raft_entry){.term = e.term, .type = (enum raft_entry_type)e.type,
                                        .buf = {NULL, e.len}};
            raft__buf_bytes(&all, e.data, e.len);
        }
    }
    uint8_t *batch = rc == 0 && !all.oom ? raft_malloc(all.len ? all.len : 1) : NULL;
    if (!batch) {
        raft_free(es);
        raft__buf_free(&all);
        return rc < 0 ? rc : -ENOMEM;
    }
    if (all.len)
        memcpy(batch, all.p, all.len);
    size_t off = 0;
    for (uint64_t i = 0; i < nent; i++) {
        es[i].buf.base = batch + off;
        es[i].batch = batch;
        off += es[i].buf.len;
    }
    raft__buf_free(&all);
    *out = es;
    return 0;
}

int raft__node_start(struct raft_node *n)
{
    struct raft_snapshot_metadata md;
    struct raft_event ev = {.type = RAFT_START};
    ev.start.term = n->log.term;
    ev.start.voted_for = n->log.vote;
    ev.start.start_index = n->log.first;
    if (n->log.snap_index) {
        struct raft_buffer b = {n->log.snap_conf, n->log.snap_conf_len};
        md.index = n->log.snap_index;
        md.term = n->log.snap_term;
        md.configuration_index = n->log.snap_conf_index;
        if (raft_configuration_decode(&b, &md.configuration) != 0)
            return VS_ECORRUPT;
        ev.start.metadata = &md;
    }
    int rc = start_entries(n, &ev.start.entries, &ev.start.n_entries);
    if (rc < 0)
        return rc;
    struct raft_entry *entries = ev.start.entries;
    rc = step(n, &ev);
    if (rc != 0)
        return rc < 0 ? rc : VS_ECORRUPT; /* raft freed the entries */
    if (entries) {
        raft_free(entries[0].batch);
        raft_free(entries);
    }
    drain_events(n);
    arm_timer(n);
    return n->fatal ? n->fatal_rc : 0;
}

static void timer_closed_cb(uv_handle_t *h)
{
    struct raft_node *n = h->data;
    if (n->close_cb)
        n->close_cb(n->close_ctx);
}

void raft__node_close(struct raft_node *n, void (*cb)(void *ctx), void *ctx)
{
    n->closing = true;
    n->close_cb = cb;
    n->close_ctx = ctx;
    if (!n->fatal && n->sm_ready && n->db->in_txn) {
        if (n->sm_dirty)
            raft__sm_save(&n->sm);
        raft__db_commit(n->db);
    }
    if (n->raft_ready)
        raft_close(&n->raft, NULL);
    n->raft_ready = false;
    raft__log_free(&n->log);
    if (n->sm_ready)
        raft__sm_free(&n->sm);
    n->sm_ready = false;
    raft__buf_free(&n->scratch);
    raft__buf_free(&n->subq_data);
    raft__buf_free(&n->snap_blob);
    if (!n->timer_ready) { /* open failed early: nothing on the loop */
        if (cb)
            cb(ctx);
        return;
    }
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, timer_closed_cb);
}
