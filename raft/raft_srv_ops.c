/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_srv_ops.c -- what a member does with client requests: proposals that
 * wait for their entry to apply, linearizable reads through a read index,
 * leases on the leader, volatile keys, compaction and membership changes.
 *
 * NOTES
 *
 * Proposals. A write becomes a log entry; the request waits in `pend`
 * (ordered by log index) until that index is applied. The entry answers it
 * only if it is the same entry -- same index AND same term; an entry of
 * another term at that index means ours was overwritten and never committed,
 * which is safe to retry (VS_ENOTLEADER). A member that stopped being leader
 * keeps its pending requests: if the new leader commits them, they are still
 * answered. After SRV_PENDING_TIMEOUT_MS a request is answered VS_EINDOUBT.
 *
 * Read index (Raft dissertation 6.4). A linearizable read on the leader:
 *  (1) waits until the leader is ready (its no-op of this term is applied, so
 *      its commit index covers every committed entry);
 *  (2) joins the next confirmation round: the leader records its commit
 *      index, sends RF_RI_PING(term, round) to the voters, and a follower
 *      answers ok only while it still follows this leader in this term;
 *  (3) when a majority (the leader included) said ok, no other leader can
 *      have been elected before the round started (the majorities
 *      intersect, and a member that votes for a newer term stops saying ok),
 *      so the recorded commit index is at least that of any write
 *      acknowledged before the read arrived;
 *  (4) the read is served once the applied index reaches it.
 * Reads that arrive while a round is in flight wait for the next round. A
 * round costs one network round trip and no disk write.
 *
 * Leases. The leader holds every lease's deadline in memory; keepalives only
 * move a deadline (no log entry: the light path). Every SRV_TICK_MS the
 * leader proposes one revoke entry for all leases past their deadline. A new
 * leader loads the lease table and gives each lease a full TTL from then.
 *
 * A keepalive (and a TTL query) is answered only after a confirmation round
 * of the read index that started after it arrived has been acked by a
 * majority in the leader's term; the renewed deadline is arrival + TTL. The
 * keepalives waiting share one round with each other and with the reads. A
 * leader that is the only voter answers at once. Not confirmed within an
 * election timeout: VS_EUNAVAILABLE, which the client retries. Why a
 * deposed leader can no longer promise a lease past its revoke: a leader
 * cut off into a minority still believes it leads until raft's contact check
 * steps it down, up to two election timeouts later, while the majority may
 * elect a new leader (at E) well before that. The new leader revokes a lease
 * nobody renews through it no earlier than E + TTL (it gave every lease a
 * full TTL when it took office, after E). Take a renewal confirmed by the
 * round started at R >= arrival A: a majority acked R in our term, so one of
 * them votes for E's term only after its ack (a member that moved to a newer
 * term never acks ours), hence A <= R < E and the deadline A + TTL < E + TTL.
 * The client counts its lease from when it sent the keepalive (<= A) plus
 * the remaining time we answer (deadline - now), so no renewal it believes
 * in outlives the revoke (clock rates aside, for which the holder keeps a
 * margin). Without the round the deposed leader would have renewed from its
 * memory after E, to now + TTL > E + TTL (raft/tests/client_test.c,
 * test_deposed_leader_keepalive).
 */
#include "raft_srv.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static bool is_leader(struct meta_server *s)
{
    return !s->fatal && raft_state(&s->node.raft) == RAFT_LEADER;
}

/* ---- the pending queue (a ring, ordered by index) ------------------------------------ */

static struct srv_pending *pend_at(struct meta_server *s, size_t i)
{
    return &s->pend[(s->pend_head + i) % s->pend_cap];
}

static int pend_push(struct meta_server *s, const struct srv_pending *p)
{
    if (s->pend_n == s->pend_cap) {
        size_t cap = s->pend_cap ? s->pend_cap * 2 : 256;
        struct srv_pending *np = malloc(cap * sizeof(*np));
        if (!np)
            return -ENOMEM;
        for (size_t i = 0; i < s->pend_n; i++)
            np[i] = *pend_at(s, i);
        free(s->pend);
        s->pend = np;
        s->pend_cap = cap;
        s->pend_head = 0;
    }
    VS_ASSERT(s->pend_n == 0 || pend_at(s, s->pend_n - 1)->index < p->index);
    *pend_at(s, s->pend_n) = *p;
    s->pend_n++;
    return 0;
}

static struct srv_pending pend_pop_front(struct meta_server *s)
{
    VS_ASSERT(s->pend_n > 0);
    struct srv_pending p = *pend_at(s, 0);
    s->pend_head = (s->pend_head + 1) % s->pend_cap;
    s->pend_n--;
    return p;
}

static void pending_fail(struct meta_server *s, const struct srv_pending *p, int status)
{
    if (p->kind == PK_CHANGE && s->mop.stage != MOP_NONE && s->mop.index == p->index) {
        srv_reply(s, &s->mop.sink, status, NULL, 0);
        s->mop.stage = MOP_NONE;
    }
    srv_reply(s, &p->sink, status, NULL, 0);
}

void srv_pending_expire(struct meta_server *s, bool all, int status)
{
    uint64_t now = srv_now(s);
    while (s->pend_n > 0 && (all || pend_at(s, 0)->deadline_ms <= now)) {
        struct srv_pending p = pend_pop_front(s);
        pending_fail(s, &p, status);
    }
}

void srv_submit_failed(void *ctx, uint64_t first_index, unsigned n, int status)
{
    struct meta_server *s = ctx;
    /* The failed batch is the newest proposals: drop them from the back. */
    while (s->pend_n > 0) {
        struct srv_pending *p = pend_at(s, s->pend_n - 1);
        if (p->index < first_index || p->index >= first_index + n)
            break;
        struct srv_pending copy = *p;
        s->pend_n--;
        pending_fail(s, &copy, status);
    }
}

void srv_truncated(void *ctx, uint64_t from_index)
{
    struct meta_server *s = ctx;
    while (s->pend_n > 0 && pend_at(s, s->pend_n - 1)->index >= from_index) {
        struct srv_pending copy = *pend_at(s, s->pend_n - 1);
        s->pend_n--;
        pending_fail(s, &copy, VS_ENOTLEADER); /* never committed: retry is safe */
    }
}

int srv_propose(struct meta_server *s, uint8_t kind, uint8_t cmd, const void *body, size_t len,
                const struct srv_sink *sink)
{
    if (!is_leader(s))
        return s->fatal ? VS_ESHUTDOWN : VS_ENOTLEADER;
    struct raft_buf b;
    raft__buf_init(&b);
    raft__buf_u8(&b, RAFT_CMD_VERSION);
    raft__buf_u8(&b, cmd);
    raft__buf_bytes(&b, body, len);
    uint64_t index = 0;
    int rc = b.oom ? -ENOMEM : raft__node_propose(&s->node, RAFT_COMMAND, b.p, b.len, &index);
    raft__buf_free(&b);
    if (rc < 0)
        return rc;
    struct srv_pending p = {.index = index, .term = raft_current_term(&s->node.raft),
                            .deadline_ms = srv_now(s) + SRV_PENDING_TIMEOUT_MS, .kind = kind,
                            .sink = *sink};
    if (kind == PK_NOOP)
        s->noop_index = index;
    return pend_push(s, &p);
}

/* ---- applied entries ------------------------------------------------------------------ */

static struct srv_lease *lease_find(struct meta_server *s, uint64_t id, size_t *at)
{
    size_t lo = 0, hi = s->n_leases;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->leases[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *at = lo;
    return lo < s->n_leases && s->leases[lo].id == id ? &s->leases[lo] : NULL;
}

static void lease_add(struct meta_server *s, uint64_t id, uint64_t ttl_ms)
{
    size_t at;
    struct srv_lease *l = lease_find(s, id, &at);
    if (!l) {
        if (s->n_leases == s->cap_leases) {
            size_t cap = s->cap_leases ? s->cap_leases * 2 : 64;
            struct srv_lease *nl = realloc(s->leases, cap * sizeof(*nl));
            if (!nl)
                return; /* the lease then expires at the next leader; logged below */
            s->leases = nl;
            s->cap_leases = cap;
        }
        memmove(s->leases + at + 1, s->leases + at, (s->n_leases - at) * sizeof(*s->leases));
        s->n_leases++;
        l = &s->leases[at];
        l->id = id;
    }
    l->ttl_ms = ttl_ms;
    l->deadline_ms = srv_now(s) + ttl_ms;
    l->revoking = false;
}

static void lease_del(struct meta_server *s, uint64_t id)
{
    size_t at;
    if (!lease_find(s, id, &at))
        return;
    memmove(s->leases + at, s->leases + at + 1, (s->n_leases - at - 1) * sizeof(*s->leases));
    s->n_leases--;
}

/* Leader-local side effects of an applied command (lease table). */
static void command_effects(struct meta_server *s, const struct raft_log_entry *e,
                            const struct raft_sm_result *res)
{
    if (!s->leader_ready || e->len < 2 || res->status != 0)
        return;
    struct vs_cursor c = vs_cursor_make(e->data + 2, e->len - 2);
    if (e->data[1] == RAFT_CMD_LEASE_GRANT && res->out.len == 16) {
        lease_add(s, vs_get_u64(res->out.p), vs_get_u64(res->out.p + 8));
    } else if (e->data[1] == RAFT_CMD_LEASE_REVOKE) {
        uint32_t n = vs_rd_u32(&c);
        for (uint32_t i = 0; i < n && c.ok; i++)
            lease_del(s, vs_rd_u64(&c));
    }
}

static void mop_applied(struct meta_server *s, uint64_t index);

void srv_applied(void *ctx, uint64_t index, const struct raft_log_entry *e,
                 const struct raft_sm_result *res)
{
    struct meta_server *s = ctx;
    while (s->pend_n > 0 && pend_at(s, 0)->index < index) {
        struct srv_pending p = pend_pop_front(s); /* skipped (a restored snapshot held it) */
        pending_fail(s, &p, VS_EINDOUBT);
    }
    if (e->type == RAFT_COMMAND)
        command_effects(s, e, res);
    if (s->pend_n == 0 || pend_at(s, 0)->index != index)
        return;
    struct srv_pending p = pend_pop_front(s);
    if (p.term != e->term) {
        pending_fail(s, &p, VS_ENOTLEADER); /* another leader's entry took the slot */
        return;
    }
    if (p.kind == PK_NOOP)
        srv_noop_applied(s, e->term);
    else if (p.kind == PK_CHANGE)
        mop_applied(s, index);
    else
        srv_reply(s, &p.sink, res->status, res->out.p, res->out.len);
}

/* ---- reads ---------------------------------------------------------------------------- */

static void reply_range(struct meta_server *s, const struct srv_sink *k, struct raft_buf *b,
                        int rc)
{
    srv_reply(s, k, rc, b->p, b->len);
    raft__buf_free(b);
}

/* A range result in txn-result form: revision, succeeded, one op result. */
int srv_range_now(struct meta_server *s, const struct vs_meta_op *op, unsigned flags,
                  struct raft_buf *out)
{
    raft__buf_u64(out, s->node.sm.rev);
    raft__buf_u8(out, 1);
    raft__buf_u32(out, 1);
    if (flags & VS_META_VOLATILE) {
        size_t hdr = out->len;
        raft__buf_u8(out, VS_META_OP_RANGE);
        raft__buf_u8(out, 0);
        raft__buf_u64(out, 0);
        raft__buf_u64(out, 0);
        raft__buf_u32(out, 0);
        uint32_t n = 0;
        for (size_t i = 0; i < s->n_vol && (!op->limit || n < op->limit); i++) {
            struct srv_volatile *v = &s->vol[i];
            if (!raft__key_in_range(v->key, v->key_len, op->key, op->key_len, op->range_end,
                                    op->range_end_len))
                continue;
            struct vs_meta_kv kv = {.key = v->key, .key_len = v->key_len, .value = v->value,
                                    .value_len = v->value_len};
            if (!(flags & VS_META_COUNT_ONLY))
                raft__kv_encode(out, &kv);
            n++;
        }
        if (!out->oom) {
            vs_put_u64(out->p + hdr + 2, n);
            vs_put_u32(out->p + hdr + 18, (flags & VS_META_COUNT_ONLY) ? 0 : n);
        }
        return out->oom ? -ENOMEM : 0;
    }
    return raft__sm_range(&s->node.sm, op, out);
}

static int read_queue(struct meta_server *s, const struct srv_sink *k, const struct vs_meta_op *op)
{
    struct raft_buf b;
    raft__buf_init(&b);
    raft__op_encode(&b, op);
    struct srv_read *r = calloc(1, sizeof(*r));
    if (!r || b.oom) {
        free(r);
        raft__buf_free(&b);
        return -ENOMEM;
    }
    size_t len;
    r->bytes = raft__buf_take(&b, &len);
    /* Re-point the op into our copy: the frame it came from goes away. */
    r->op = *op;
    struct vs_cursor c = vs_cursor_make(r->bytes, len);
    vs_rd_skip(&c, 2);
    r->op.key_len = vs_rd_u32(&c);
    r->op.key = c.p;
    vs_rd_skip(&c, r->op.key_len);
    r->op.range_end_len = vs_rd_u32(&c);
    r->op.range_end = c.p;
    VS_ASSERT(c.ok);
    r->sink = *k;
    r->round = s->ri_round + 1;
    r->deadline_ms = srv_now(s) + SRV_PENDING_TIMEOUT_MS;
    if (s->reads_tail)
        s->reads_tail->next = r;
    else
        s->reads = r;
    s->reads_tail = r;
    return 0;
}

static void req_range(struct meta_server *s, const struct srv_sink *k, const struct vs_meta_op *op,
                      unsigned flags)
{
    struct raft_buf b;
    raft__buf_init(&b);
    if (flags & VS_META_VOLATILE) {
        int rc = !is_leader(s) ? VS_ENOTLEADER : (!s->leader_ready ? -EAGAIN : 0);
        reply_range(s, k, &b, rc == 0 ? srv_range_now(s, op, flags | op->flags, &b) : rc);
    } else if (flags & VS_META_SERIALIZABLE) {
        reply_range(s, k, &b, srv_range_now(s, op, 0, &b));
    } else if (!is_leader(s)) {
        reply_range(s, k, &b, s->fatal ? VS_ESHUTDOWN : VS_ENOTLEADER);
    } else {
        int rc = read_queue(s, k, op);
        if (rc < 0)
            reply_range(s, k, &b, rc);
    }
}

static void keepalives_fail(struct meta_server *s, int status);
static void keepalives_confirmed(struct meta_server *s);
static void keepalives_expire(struct meta_server *s, uint64_t now);

void srv_reads_fail(struct meta_server *s, int status)
{
    while (s->reads) {
        struct srv_read *r = s->reads;
        s->reads = r->next;
        srv_reply(s, &r->sink, status, NULL, 0);
        free(r->bytes);
        free(r);
    }
    s->reads_tail = NULL;
    keepalives_fail(s, status);
    s->ri_inflight = false;
}

static unsigned voters(struct meta_server *s, unsigned *acked)
{
    const struct raft_configuration *conf = &s->node.raft.configuration;
    unsigned n = 0;
    *acked = 0;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].role != RAFT_VOTER)
            continue;
        n++;
        for (unsigned j = 0; j < s->ri_n_acks; j++)
            *acked += s->ri_acks[j] == conf->servers[i].id;
    }
    return n;
}

static void round_check(struct meta_server *s)
{
    unsigned acked, n = voters(s, &acked);
    if (!s->ri_inflight || acked * 2 <= n)
        return;
    s->ri_inflight = false;
    for (struct srv_read *r = s->reads; r; r = r->next) {
        if (!r->ready && r->round <= s->ri_round) {
            r->ready = true;
            r->read_index = s->ri_index;
        }
    }
    keepalives_confirmed(s);
}

static void round_send(struct meta_server *s)
{
    const struct raft_configuration *conf = &s->node.raft.configuration;
    uint8_t body[16];
    vs_put_u64(body, raft_current_term(&s->node.raft));
    vs_put_u64(body + 8, s->ri_round);
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].id == s->opts.id || conf->servers[i].role != RAFT_VOTER)
            continue;
        struct raft_conn *c = srv_peer_conn(s, conf->servers[i].id, conf->servers[i].address);
        if (c)
            raft__conn_send(c, RF_RI_PING, body, sizeof(body));
    }
    s->ri_sent_ms = srv_now(s);
}

static void round_start(struct meta_server *s)
{
    s->ri_round++;
    s->ri_inflight = true;
    s->ri_index = raft_commit_index(&s->node.raft);
    s->ri_acks[0] = s->opts.id;
    s->ri_n_acks = 1;
    round_send(s);
    round_check(s);
}

static void serve_read(struct meta_server *s, struct srv_read *r)
{
    struct raft_buf b;
    raft__buf_init(&b);
    reply_range(s, &r->sink, &b, srv_range_now(s, &r->op, 0, &b));
    free(r->bytes);
    free(r);
}

void srv_reads_turn(struct meta_server *s)
{
    if ((!s->reads && !s->kas) || !s->leader_ready)
        return;
    uint64_t now = srv_now(s);
    bool wanted = (s->reads && s->reads_tail->round > s->ri_round) ||
                  (s->kas && s->kas_tail->round > s->ri_round);
    if (!s->ri_inflight && wanted)
        round_start(s);
    else if (s->ri_inflight && now - s->ri_sent_ms > SRV_READ_ROUND_RETRY_MS)
        round_send(s); /* pings or acks were lost: ask again, same round */
    keepalives_expire(s, now);
    struct srv_read **pp = &s->reads, *last = NULL;
    while (*pp) {
        struct srv_read *r = *pp;
        bool expired = r->deadline_ms <= now;
        if ((r->ready && s->node.sm.applied_index >= r->read_index) || expired) {
            *pp = r->next;
            if (expired && !r->ready) {
                srv_reply(s, &r->sink, VS_EUNAVAILABLE, NULL, 0);
                free(r->bytes);
                free(r);
            } else {
                serve_read(s, r);
            }
        } else {
            last = r;
            pp = &r->next;
        }
    }
    s->reads_tail = last;
}

void srv_ri_ping(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len)
{
    if (len != 16)
        return;
    raft_id lid;
    const char *laddr;
    raft_leader(&s->node.raft, &lid, &laddr);
    uint64_t term = vs_get_u64(p);
    bool ok = raft_state(&s->node.raft) == RAFT_FOLLOWER &&
              raft_current_term(&s->node.raft) == term && lid == sc->peer_id;
    uint8_t body[17];
    memcpy(body, p, 16);
    body[16] = ok ? 1 : 0;
    struct raft_conn *c = srv_peer_conn(s, sc->peer_id, sc->peer_addr);
    if (c)
        raft__conn_send(c, RF_RI_ACK, body, sizeof(body));
}

void srv_ri_ack(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len)
{
    if (len != 17 || !is_leader(s) || !s->ri_inflight || !p[16])
        return;
    if (vs_get_u64(p) != raft_current_term(&s->node.raft) || vs_get_u64(p + 8) != s->ri_round)
        return;
    for (unsigned j = 0; j < s->ri_n_acks; j++)
        if (s->ri_acks[j] == sc->peer_id)
            return;
    if (s->ri_n_acks < VS_RAFT_MEMBERS_MAX)
        s->ri_acks[s->ri_n_acks++] = sc->peer_id;
    round_check(s);
}

/* ---- leases ----------------------------------------------------------------------------- */

static void lease_load_one(void *ctx, uint64_t id, uint64_t ttl_ms)
{
    lease_add(ctx, id, ttl_ms);
}

void srv_leases_load(struct meta_server *s)
{
    s->n_leases = 0;
    if (raft__sm_lease_each(&s->node.sm, lease_load_one, s) < 0)
        raft__node_fail(&s->node, VS_ECORRUPT, "loading leases");
    VS_DEBUG_LOG("meta", "leader holds %zu lease(s), each with a full TTL from now", s->n_leases);
}

void srv_leases_clear(struct meta_server *s)
{
    s->n_leases = 0;
}

/* Answers a keepalive or TTL query once this member's leadership is
 * confirmed for a moment after arrived_ms (see NOTES). */
static void lease_answer(struct meta_server *s, const struct srv_sink *k, uint64_t id,
                         bool renew, uint64_t arrived_ms)
{
    size_t at;
    struct srv_lease *l = lease_find(s, id, &at);
    if (!l || l->revoking) {
        srv_reply(s, k, VS_ELEASE, NULL, 0);
        return;
    }
    uint64_t now = srv_now(s);
    if (renew && arrived_ms + l->ttl_ms > l->deadline_ms)
        l->deadline_ms = arrived_ms + l->ttl_ms;
    uint8_t body[16];
    vs_put_u64(body, l->deadline_ms > now ? l->deadline_ms - now : 0);
    vs_put_u64(body + 8, l->ttl_ms);
    srv_reply(s, k, 0, body, sizeof(body));
}

static void lease_keepalive(struct meta_server *s, const struct srv_sink *k, uint64_t id,
                            bool renew)
{
    int rc = !is_leader(s) ? VS_ENOTLEADER : (!s->leader_ready ? -EAGAIN : 0);
    unsigned acked;
    if (rc == 0 && voters(s, &acked) == 1) {
        lease_answer(s, k, id, renew, srv_now(s)); /* the only voter: nobody else can lead */
        return;
    }
    struct srv_keepalive *ka = rc == 0 ? calloc(1, sizeof(*ka)) : NULL;
    if (rc == 0 && !ka)
        rc = -ENOMEM;
    if (rc < 0) {
        srv_reply(s, k, rc, NULL, 0);
        return;
    }
    ka->sink = *k;
    ka->lease_id = id;
    ka->renew = renew;
    ka->arrived_ms = srv_now(s);
    ka->round = s->ri_round + 1; /* the next round to start: it starts after now */
    ka->deadline_ms = ka->arrived_ms + s->opts.election_timeout_ms;
    if (s->kas_tail)
        s->kas_tail->next = ka;
    else
        s->kas = ka;
    s->kas_tail = ka;
}

static struct srv_keepalive *keepalive_pop(struct meta_server *s)
{
    struct srv_keepalive *ka = s->kas;
    s->kas = ka->next;
    if (!s->kas)
        s->kas_tail = NULL;
    return ka;
}

/* A round reached a majority: answer every keepalive that arrived before it
 * started (they are in arrival order, so their rounds never decrease). */
static void keepalives_confirmed(struct meta_server *s)
{
    while (s->kas && s->kas->round <= s->ri_round) {
        struct srv_keepalive *ka = keepalive_pop(s);
        lease_answer(s, &ka->sink, ka->lease_id, ka->renew, ka->arrived_ms);
        free(ka);
    }
}

/* Not confirmed in an election timeout: this member is likely cut off from
 * its majority. The client retries (here, or at another member once this
 * one stays silent) and its keeper only reports the lease UNKNOWN. */
static void keepalives_expire(struct meta_server *s, uint64_t now)
{
    struct srv_keepalive **pp = &s->kas, *last = NULL;
    while (*pp) {
        struct srv_keepalive *ka = *pp;
        if (ka->deadline_ms <= now) {
            *pp = ka->next;
            srv_reply(s, &ka->sink, VS_EUNAVAILABLE, NULL, 0);
            free(ka);
        } else {
            last = ka;
            pp = &ka->next;
        }
    }
    s->kas_tail = last;
}

static void keepalives_fail(struct meta_server *s, int status)
{
    while (s->kas) {
        struct srv_keepalive *ka = keepalive_pop(s);
        srv_reply(s, &ka->sink, status, NULL, 0);
        free(ka);
    }
}

void srv_leases_tick(struct meta_server *s)
{
    if (!s->leader_ready || s->n_leases == 0)
        return;
    uint64_t now = srv_now(s);
    struct raft_buf b;
    raft__buf_init(&b);
    raft__buf_u32(&b, 0);
    uint32_t n = 0;
    for (size_t i = 0; i < s->n_leases && n < 1024; i++) {
        struct srv_lease *l = &s->leases[i];
        if (l->revoking || l->deadline_ms > now)
            continue;
        raft__buf_u64(&b, l->id);
        n++;
    }
    if (n > 0 && !b.oom) {
        vs_put_u32(b.p, n);
        struct srv_sink none = {0};
        if (srv_propose(s, PK_EXPIRE, RAFT_CMD_LEASE_REVOKE, b.p, b.len, &none) == 0) {
            for (uint32_t i = 0; i < n; i++) {
                size_t at;
                struct srv_lease *l = lease_find(s, vs_get_u64(b.p + 4 + 8 * i), &at);
                if (l)
                    l->revoking = true;
            }
            VS_INFO("meta", "%u lease(s) expired: revoking", n);
        }
    }
    raft__buf_free(&b);
}

/* ---- volatile keys ---------------------------------------------------------------------- */

static size_t vol_find(struct meta_server *s, const uint8_t *key, uint32_t len, bool *found)
{
    size_t lo = 0, hi = s->n_vol;
    *found = false;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        struct srv_volatile *v = &s->vol[mid];
        int c = memcmp(v->key, key, VS_MIN(v->key_len, len));
        if (c == 0)
            c = v->key_len < len ? -1 : (v->key_len > len ? 1 : 0);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int volatile_put(struct meta_server *s, const uint8_t *key, uint32_t klen,
                        const uint8_t *value, uint32_t vlen)
{
    bool found;
    size_t at = vol_find(s, key, klen, &found);
    uint8_t *v = malloc(vlen ? vlen : 1);
    if (!v)
        return -ENOMEM;
    if (vlen)
        memcpy(v, value, vlen);
    if (!found) {
        if (s->n_vol == s->cap_vol) {
            size_t cap = s->cap_vol ? s->cap_vol * 2 : 64;
            struct srv_volatile *nv = realloc(s->vol, cap * sizeof(*nv));
            if (!nv) {
                free(v);
                return -ENOMEM;
            }
            s->vol = nv;
            s->cap_vol = cap;
        }
        uint8_t *k = malloc(klen);
        if (!k) {
            free(v);
            return -ENOMEM;
        }
        memcpy(k, key, klen);
        memmove(s->vol + at + 1, s->vol + at, (s->n_vol - at) * sizeof(*s->vol));
        s->n_vol++;
        s->vol[at] = (struct srv_volatile){.key = k, .key_len = klen};
    }
    free(s->vol[at].value);
    s->vol[at].value = v;
    s->vol[at].value_len = vlen;
    s->volatile_puts++;
    return 0;
}

void srv_volatile_clear(struct meta_server *s)
{
    for (size_t i = 0; i < s->n_vol; i++) {
        free(s->vol[i].key);
        free(s->vol[i].value);
    }
    free(s->vol);
    s->vol = NULL;
    s->n_vol = s->cap_vol = 0;
}

/* ---- compaction --------------------------------------------------------------------------- */

void srv_compact_tick(struct meta_server *s)
{
    uint64_t now = srv_now(s);
    if (!s->leader_ready || now - s->last_sample_ms < s->opts.compact_interval_ms)
        return;
    s->last_sample_ms = now;
    const unsigned cap = VS_ARRAY_SIZE(s->compact_samples_ms);
    if (s->n_samples == cap) {
        memmove(s->compact_samples_ms, s->compact_samples_ms + 1, (cap - 1) * sizeof(uint64_t));
        memmove(s->compact_samples_rev, s->compact_samples_rev + 1, (cap - 1) * sizeof(uint64_t));
        s->n_samples--;
    }
    s->compact_samples_ms[s->n_samples] = now;
    s->compact_samples_rev[s->n_samples++] = s->node.sm.rev;
    /* The newest sample at least `retention` old is where history may start. */
    uint64_t target = 0;
    for (unsigned i = 0; i < s->n_samples; i++)
        if (now - s->compact_samples_ms[i] >= s->opts.compact_retention_ms)
            target = s->compact_samples_rev[i];
    if (target > s->node.sm.compact_rev) {
        uint8_t body[8];
        vs_put_u64(body, target);
        struct srv_sink none = {0};
        if (srv_propose(s, PK_COMPACT, RAFT_CMD_COMPACT, body, sizeof(body), &none) == 0)
            VS_INFO("meta", "compacting history below revision %" PRIu64, target);
    }
}

/* ---- membership --------------------------------------------------------------------------- */

static int conf_with(struct meta_server *s, struct raft_configuration *out, uint64_t skip_id,
                     uint64_t set_id, int set_role)
{
    const struct raft_configuration *cur = &s->node.raft.configuration;
    raft_configuration_init(out);
    for (unsigned i = 0; i < cur->n; i++) {
        const struct raft_server *m = &cur->servers[i];
        if (m->id == skip_id)
            continue;
        int role = m->id == set_id ? set_role : m->role;
        if (raft_configuration_add(out, m->id, m->address, role) != 0) {
            raft_configuration_close(out);
            return -ENOMEM;
        }
    }
    return 0;
}

static int mop_change(struct meta_server *s, struct raft_configuration *conf)
{
    uint64_t index;
    int rc = raft__node_change(&s->node, conf, &index);
    raft_configuration_close(conf);
    if (rc < 0)
        return rc;
    s->mop.index = index;
    struct srv_pending p = {.index = index, .term = raft_current_term(&s->node.raft),
                            .deadline_ms = srv_now(s) + SRV_PENDING_TIMEOUT_MS * 4,
                            .kind = PK_CHANGE};
    return pend_push(s, &p);
}

static void mop_done(struct meta_server *s, int status)
{
    struct vs_raft_status st;
    struct raft_buf b;
    raft__buf_init(&b);
    srv_status(s, &st);
    raft__status_encode(&b, &st);
    srv_reply(s, &s->mop.sink, status, b.p, b.len);
    raft__buf_free(&b);
    VS_INFO("meta", "membership change for member %" PRIu64 ": %s", s->mop.id,
            status ? vs_strerror(status) : "done");
    s->mop.stage = MOP_NONE;
}

static void mop_applied(struct meta_server *s, uint64_t index)
{
    if (s->mop.stage == MOP_NONE || index != s->mop.index)
        return;
    if (s->mop.stage == MOP_ADD_STANDBY) {
        s->mop.stage = MOP_CATCH_UP;
        int rc = raft__node_catch_up(&s->node, s->mop.id);
        if (rc < 0)
            mop_done(s, rc);
        return;
    }
    mop_done(s, 0); /* promoted, or removed */
}

void srv_mop_tick(struct meta_server *s)
{
    if (s->mop.stage == MOP_NONE)
        return;
    if (!is_leader(s) || srv_now(s) > s->mop.deadline_ms) {
        mop_done(s, is_leader(s) ? -ETIMEDOUT : VS_ENOTLEADER);
        return;
    }
    if (s->mop.stage != MOP_CATCH_UP)
        return;
    int status = RAFT_CATCH_UP_NONE;
    if (raft_catch_up(&s->node.raft, s->mop.id, &status) != 0) {
        mop_done(s, -ENOENT);
    } else if (status == RAFT_CATCH_UP_FINISHED) {
        struct raft_configuration conf;
        int rc = conf_with(s, &conf, 0, s->mop.id, RAFT_VOTER);
        if (rc == 0)
            rc = mop_change(s, &conf);
        if (rc < 0)
            mop_done(s, rc);
        else
            s->mop.stage = MOP_PROMOTE;
    } else if (status == RAFT_CATCH_UP_ABORTED || status == RAFT_CATCH_UP_NONE) {
        raft__node_catch_up(&s->node, s->mop.id); /* slow or unreachable: try again */
    }
}

static int mop_start(struct meta_server *s, const struct srv_sink *k, bool add, uint64_t id,
                     const uint8_t *addr, uint32_t addr_len)
{
    if (!is_leader(s))
        return VS_ENOTLEADER;
    if (s->mop.stage != MOP_NONE)
        return -EBUSY;
    const struct raft_configuration *cur = &s->node.raft.configuration;
    const struct raft_server *m = NULL;
    for (unsigned i = 0; i < cur->n; i++)
        if (cur->servers[i].id == id)
            m = &cur->servers[i];
    s->mop.id = id;
    s->mop.sink = *k;
    s->mop.deadline_ms = srv_now(s) + 120000;
    struct raft_configuration conf;
    int rc;
    if (!add) {
        if (!m)
            return -ENOENT;
        rc = conf_with(s, &conf, id, 0, 0);
        s->mop.stage = MOP_REMOVE;
    } else if (m && m->role == RAFT_VOTER) {
        return -EEXIST;
    } else if (m) {
        s->mop.stage = MOP_CATCH_UP; /* a standby from an earlier try: promote it */
        return raft__node_catch_up(&s->node, id);
    } else {
        snprintf(s->mop.address, sizeof(s->mop.address), "%.*s", (int)addr_len, addr);
        struct sockaddr_storage sa;
        if (raft__parse_address(s->mop.address, &sa) < 0 || cur->n >= VS_RAFT_MEMBERS_MAX)
            return -EINVAL;
        rc = conf_with(s, &conf, 0, 0, 0);
        if (rc == 0 && raft_configuration_add(&conf, id, s->mop.address, RAFT_STANDBY) != 0) {
            raft_configuration_close(&conf);
            return -EINVAL; /* duplicate address */
        }
        s->mop.stage = MOP_ADD_STANDBY;
    }
    if (rc == 0)
        rc = mop_change(s, &conf);
    if (rc < 0)
        s->mop.stage = MOP_NONE;
    return rc;
}

/* Initial members a member bootstrapped alone must still add (its own
 * database only, meta "pending_members": id u64, address blob, ...). One at a
 * time, retried until each is a voter; a member already voting is done. */
void srv_pending_tick(struct meta_server *s)
{
    uint64_t now = srv_now(s);
    if (!s->leader_ready || s->mop.stage != MOP_NONE || now < s->pending_next_ms ||
        s->pending_done)
        return;
    s->pending_next_ms = now + 1000;
    uint8_t *blob;
    size_t len;
    if (raft__db_meta_get_blob(s->db, "pending_members", &blob, &len) < 0 || !blob) {
        s->pending_done = true;
        return;
    }
    const struct raft_configuration *conf = &s->node.raft.configuration;
    struct vs_cursor c = vs_cursor_make(blob, len);
    bool all_voters = true;
    while (vs_cursor_left(&c) && c.ok) {
        uint64_t id = vs_rd_u64(&c);
        uint32_t alen = vs_rd_u32(&c);
        const uint8_t *addr = c.p;
        vs_rd_skip(&c, alen);
        bool voter = false;
        for (unsigned i = 0; i < conf->n; i++)
            voter |= conf->servers[i].id == id && conf->servers[i].role == RAFT_VOTER;
        if (voter || !c.ok)
            continue;
        all_voters = false;
        struct srv_sink none = {0};
        int rc = mop_start(s, &none, true, id, addr, alen);
        if (rc == 0)
            VS_INFO("meta", "adding initial member %" PRIu64 " (%.*s)", id, (int)alen, addr);
        break;
    }
    free(blob);
    s->pending_done = all_voters;
}

void srv_forget_conn(struct meta_server *s, struct srv_conn *sc)
{
    for (size_t i = 0; i < s->pend_n; i++)
        if (pend_at(s, i)->sink.conn == sc)
            pend_at(s, i)->sink.conn = NULL;
    for (struct srv_read *r = s->reads; r; r = r->next)
        if (r->sink.conn == sc)
            r->sink.conn = NULL;
    for (struct srv_keepalive *ka = s->kas; ka; ka = ka->next)
        if (ka->sink.conn == sc)
            ka->sink.conn = NULL;
    if (s->mop.sink.conn == sc)
        s->mop.sink.conn = NULL;
}

/* ---- the request dispatcher -------------------------------------------------------------- */

static int propose_req(struct meta_server *s, const struct srv_sink *k, const struct raft_req *r)
{
    uint8_t body[20];
    switch (r->op) {
    case RO_TXN:
        return srv_propose(s, PK_TXN, RAFT_CMD_TXN, r->body, r->body_len, k);
    case RO_LEASE_GRANT:
        vs_put_u64(body, r->lease_id);
        vs_put_u64(body + 8, r->ttl_ms);
        return srv_propose(s, PK_LEASE_GRANT, RAFT_CMD_LEASE_GRANT, body, 16, k);
    case RO_LEASE_REVOKE:
        vs_put_u32(body, 1);
        vs_put_u64(body + 4, r->lease_id);
        return srv_propose(s, PK_LEASE_REVOKE, RAFT_CMD_LEASE_REVOKE, body, 12, k);
    default:
        vs_put_u64(body, r->rev);
        return srv_propose(s, PK_COMPACT, RAFT_CMD_COMPACT, body, 8, k);
    }
}

static void dispatch(struct meta_server *s, struct srv_conn *sc, const struct srv_sink *k,
                     const struct raft_req *r)
{
    int rc = 0;
    struct raft_buf b;
    raft__buf_init(&b);
    switch (r->op) {
    case RO_RANGE:
        req_range(s, k, &r->range, r->flags);
        return;
    case RO_TXN:
    case RO_LEASE_GRANT:
    case RO_LEASE_REVOKE:
    case RO_COMPACT:
        rc = propose_req(s, k, r);
        if (rc < 0)
            srv_reply(s, k, rc, NULL, 0);
        return;
    case RO_LEASE_KEEPALIVE:
    case RO_LEASE_TTL:
        lease_keepalive(s, k, r->lease_id, r->op == RO_LEASE_KEEPALIVE);
        return;
    case RO_WATCH: {
        uint64_t first = 0;
        raft_id lid = 0;
        const char *laddr = NULL;
        raft_leader(&s->node.raft, &lid, &laddr);
        if (!is_leader(s) && lid != 0 && !(r->flags & VS_META_SERIALIZABLE)) {
            /* A follower learns of a commit only with the leader's next message
             * (up to a heartbeat later): send the watcher to the leader, which
             * applies first. Without a leader, any member serves it. */
            rc = VS_ENOTLEADER;
            break;
        }
        rc = srv_watch_add(s, sc, r->watch_id, r->key, r->key_len, r->end, r->end_len, r->rev,
                           NULL, NULL, &first);
        raft__buf_u64(&b, first); /* the client resumes from here if we go away */
        break;
    }
    case RO_WATCH_CANCEL:
        rc = srv_watch_cancel(s, sc, r->watch_id);
        break;
    case RO_STATUS: {
        struct vs_raft_status st;
        srv_status(s, &st);
        raft__status_encode(&b, &st);
        break;
    }
    case RO_MEMBER_ADD:
    case RO_MEMBER_REMOVE:
        rc = mop_start(s, k, r->op == RO_MEMBER_ADD, r->member_id, r->key, r->key_len);
        if (rc < 0)
            srv_reply(s, k, rc, NULL, 0);
        return;
    case RO_VOLATILE_PUT:
        rc = !is_leader(s) ? VS_ENOTLEADER : (!s->leader_ready ? -EAGAIN : 0);
        if (rc == 0)
            rc = volatile_put(s, r->key, r->key_len, r->value, r->value_len);
        raft__buf_u64(&b, s->node.sm.rev);
        raft__buf_u8(&b, 1);
        raft__buf_u32(&b, 0);
        break;
    }
    srv_reply(s, k, rc, b.p, b.len);
    raft__buf_free(&b);
}

void srv_handle_request(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len)
{
    struct raft_req r;
    s->client_requests++;
    int rc = raft__req_decode(p, len, &s->lim, &r);
    struct srv_sink k = {.conn = sc, .req_id = r.id};
    if (rc < 0) {
        if (r.header_ok) {
            srv_reply(s, &k, rc, NULL, 0); /* a bad request gets an error, not a hangup */
        } else {
            VS_WARN("meta", "%s: malformed request: closing", sc->c.name);
            raft__conn_close(&sc->c);
        }
        s->bad_frames++;
        return;
    }
    if (s->fatal)
        srv_reply(s, &k, VS_ESHUTDOWN, NULL, 0);
    else
        dispatch(s, sc, &k, &r);
    raft__req_free(&r);
}

/* ---- the in-process API ---------------------------------------------------------------------- */

void vs_raft_server_on_leader(struct vs_raft_server *vs, vs_raft_leader_cb cb, void *ctx)
{
    struct meta_server *s = (struct meta_server *)vs;
    s->leader_cb = cb;
    s->leader_ctx = ctx;
}

void vs_raft_server_on_fatal(struct vs_raft_server *vs, vs_raft_server_fatal_cb cb, void *ctx)
{
    struct meta_server *s = (struct meta_server *)vs;
    s->fatal_cb = cb;
    s->fatal_ctx = ctx;
}

bool vs_raft_server_is_leader(const struct vs_raft_server *vs)
{
    return ((const struct meta_server *)vs)->leader_ready;
}

void vs_raft_server_status(struct vs_raft_server *vs, struct vs_raft_status *out)
{
    srv_status((struct meta_server *)vs, out);
}

static int inproc_range(struct meta_server *s, const struct vs_meta_op *op, unsigned flags,
                        vs_meta_range_cb cb, void *ctx)
{
    if (op->type != VS_META_OP_RANGE || raft__op_check(op, &s->lim) < 0)
        return -EINVAL;
    if ((flags & VS_META_VOLATILE) && !s->leader_ready)
        return VS_ENOTLEADER;
    struct raft_buf b;
    raft__buf_init(&b);
    int rc = srv_range_now(s, op, flags, &b);
    struct srv_sink k = {.range_cb = cb, .ctx = ctx};
    srv_reply(s, &k, rc, b.p, b.len);
    raft__buf_free(&b);
    return 0;
}

int vs_raft_server_range(struct vs_raft_server *vs, const struct vs_meta_op *range,
                         vs_meta_range_cb cb, void *ctx)
{
    return inproc_range((struct meta_server *)vs, range, range->flags & VS_META_COUNT_ONLY, cb,
                        ctx);
}

int vs_raft_server_volatile_range(struct vs_raft_server *vs, const struct vs_meta_op *range,
                                  vs_meta_range_cb cb, void *ctx)
{
    return inproc_range((struct meta_server *)vs, range, VS_META_VOLATILE, cb, ctx);
}

int vs_raft_server_txn(struct vs_raft_server *vs, const struct vs_meta_txn *txn,
                       vs_meta_txn_cb cb, void *ctx)
{
    struct meta_server *s = (struct meta_server *)vs;
    struct raft_buf b;
    raft__buf_init(&b);
    raft__txn_encode(&b, txn);
    struct raft_txn check;
    int rc = b.oom ? -ENOMEM : raft__txn_decode(b.p, b.len, &s->lim, &check);
    if (rc == 0) {
        raft__txn_free(&check);
        struct srv_sink k = {.txn_cb = cb, .ctx = ctx};
        rc = srv_propose(s, PK_TXN, RAFT_CMD_TXN, b.p, b.len, &k);
    }
    raft__buf_free(&b);
    return rc;
}
