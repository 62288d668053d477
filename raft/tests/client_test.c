/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_test.c -- the client library against a 3-member cluster on the same
 * loop: follows the leader from any member, reads, writes, transactions,
 * leases (expiry decided by the leader, keepers), watches that resume over a
 * leader change without gaps or repeats, and what a client sees when the
 * service is down and when it comes back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <raft.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_util.h"
#include "vs_err.h"
#include "vs_log.h"

struct ctx {
    struct cluster *c;
    struct vs_meta_client *cl;
    int pending;
    int status;
    uint64_t rev;
    bool succeeded;
    char value[256];
    uint64_t count;
    uint64_t lease;
    enum vs_meta_service_state svc;
    bool closed;
};

static bool none_pending(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct ctx *)arg)->pending == 0;
}

static void wait_all(struct ctx *x)
{
    assert_true(run_until(x->c, none_pending, x, 15000));
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct ctx *x = ctx;
    x->pending--;
    x->status = status;
    if (res) {
        x->rev = res->revision;
        x->succeeded = res->succeeded;
    }
}

static void range_cb(void *ctx, int status, const struct vs_meta_op_result *res, uint64_t rev)
{
    struct ctx *x = ctx;
    x->pending--;
    x->status = status;
    x->rev = rev;
    x->value[0] = 0;
    x->count = res ? res->count : 0;
    if (res && res->n_kvs)
        snprintf(x->value, sizeof(x->value), "%.*s", (int)res->kvs[0].value_len,
                 (const char *)res->kvs[0].value);
}

static void lease_cb(void *ctx, int status, uint64_t id, uint64_t ttl)
{
    struct ctx *x = ctx;
    (void)ttl;
    x->pending--;
    x->status = status;
    x->lease = id;
}

static void put(struct ctx *x, const char *k, const char *v, uint64_t lease)
{
    x->pending++;
    assert_int_equal(vs_meta_put(x->cl, k, (uint32_t)strlen(k), v, (uint32_t)strlen(v), lease, 0,
                                 txn_cb, x),
                     0);
    wait_all(x);
}

static void get(struct ctx *x, const char *k)
{
    x->pending++;
    assert_int_equal(vs_meta_range(x->cl, k, (uint32_t)strlen(k), NULL, 0, 0, 0, range_cb, x), 0);
    wait_all(x);
}

static void count_prefix(struct ctx *x, const char *prefix)
{
    uint8_t end[64];
    uint32_t elen = vs_meta_prefix_end(prefix, (uint32_t)strlen(prefix), end);
    x->pending++;
    assert_int_equal(vs_meta_range(x->cl, prefix, (uint32_t)strlen(prefix), end, elen, 1, 0,
                                   range_cb, x),
                     0);
    wait_all(x);
}

static void state_cb(void *ctx, enum vs_meta_service_state st)
{
    ((struct ctx *)ctx)->svc = st;
}

static void client_closed(void *ctx)
{
    ((struct ctx *)ctx)->closed = true;
}

static void open_client(struct ctx *x, struct cluster *c)
{
    memset(x, 0, sizeof(*x));
    x->c = c;
    /* Members listed last-first: the client must find the leader itself. */
    const char *members[3] = {c->m[2].addr, c->m[1].addr, c->m[0].addr};
    struct vs_meta_client_opts o = {.members = members, .n_members = 3, .op_timeout_ms = 10000,
                                    .down_after_ms = 1000, .state_cb = state_cb,
                                    .state_ctx = x};
    assert_int_equal(vs_meta_client_create(&c->loop, &o, &x->cl), 0);
}

static void close_client(struct ctx *x)
{
    vs_meta_client_close(x->cl, client_closed, x);
    while (!x->closed)
        run_for(x->c, 5);
}

static void test_kv(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3, "clkv");
    for (unsigned i = 0; i < 3; i++)
        member_open(&c, i);
    struct ctx x;
    open_client(&x, &c);
    put(&x, "config/pools", "{\"1\":{}}", 0);
    assert_int_equal(x.status, 0);
    uint64_t rev1 = x.rev;
    get(&x, "config/pools");
    assert_int_equal(x.status, 0);
    assert_string_equal(x.value, "{\"1\":{}}");
    assert_int_equal(x.rev, rev1);
    /* a compare-and-swap that fails, then one that succeeds */
    struct vs_meta_compare cmp = {.key = "config/pools", .key_len = 12,
                                  .target = VS_META_CMP_MOD, .op = VS_META_EQ,
                                  .number = rev1 - 1};
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = "config/pools", .key_len = 12,
                            .value = "{}", .value_len = 2};
    struct vs_meta_txn txn = {.cmp = &cmp, .n_cmp = 1, .success = &op, .n_success = 1};
    x.pending++;
    assert_int_equal(vs_meta_txn(x.cl, &txn, txn_cb, &x), 0);
    wait_all(&x);
    assert_int_equal(x.status, 0);
    assert_false(x.succeeded);
    cmp.number = rev1;
    x.pending++;
    assert_int_equal(vs_meta_txn(x.cl, &txn, txn_cb, &x), 0);
    wait_all(&x);
    assert_true(x.succeeded);
    assert_int_equal(x.rev, rev1 + 1);
    /* prefix range with a limit, and the count */
    for (int i = 0; i < 5; i++) {
        char k[32];
        snprintf(k, sizeof(k), "osd/state/%d", i);
        put(&x, k, "{\"state\":\"up\"}", 0);
    }
    count_prefix(&x, "osd/state/");
    assert_int_equal(x.count, 5);
    /* an invalid request is an error, the member keeps serving */
    char big[VS_META_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    assert_int_equal(vs_meta_put(x.cl, big, sizeof(big), "v", 1, 0, 0, txn_cb, &x), -EINVAL);
    get(&x, "config/pools");
    assert_string_equal(x.value, "{}");
    close_client(&x);
    cluster_free(&c);
}

struct keeper_log {
    enum vs_meta_lease_state last;
    int alive, unknown, expired;
};

static void keeper_cb(void *ctx, enum vs_meta_lease_state st, uint64_t ttl)
{
    struct keeper_log *k = ctx;
    (void)ttl;
    k->last = st;
    k->alive += st == VS_META_LEASE_ALIVE;
    k->unknown += st == VS_META_LEASE_UNKNOWN;
    k->expired += st == VS_META_LEASE_EXPIRED;
}

static bool gone(struct cluster *c, void *arg)
{
    (void)c;
    struct ctx *x = arg;
    get(x, "osd/state/9");
    return x->value[0] == 0;
}

static bool svc_down(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct ctx *)arg)->svc == VS_META_SERVICE_DOWN;
}

static bool svc_up_and_alive(struct cluster *c, void *arg)
{
    (void)c;
    struct keeper_log *k = arg;
    return k->last == VS_META_LEASE_ALIVE;
}

static bool keeper_unknown(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct keeper_log *)arg)->last == VS_META_LEASE_UNKNOWN;
}

static void test_leases_and_outage(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3, "cllease");
    for (unsigned i = 0; i < 3; i++)
        member_open(&c, i);
    struct ctx x;
    open_client(&x, &c);
    /* expiry: a lease nobody keeps alive disappears with its keys */
    x.pending++;
    assert_int_equal(vs_meta_lease_grant(x.cl, 0, 1000, lease_cb, &x), 0);
    wait_all(&x);
    assert_int_equal(x.status, 0);
    uint64_t short_lease = x.lease;
    put(&x, "osd/state/9", "up", short_lease);
    assert_int_equal(x.status, 0);
    assert_true(run_until(&c, gone, &x, 5000));
    x.pending++;
    assert_int_equal(vs_meta_lease_keepalive(x.cl, short_lease, lease_cb, &x), 0);
    wait_all(&x);
    assert_int_equal(x.status, VS_ELEASE);
    /* a put on an unknown lease fails whole */
    put(&x, "osd/state/8", "up", short_lease);
    assert_int_equal(x.status, VS_ELEASE);

    /* a kept lease survives a whole-service outage */
    x.pending++;
    assert_int_equal(vs_meta_lease_grant(x.cl, 0, 3000, lease_cb, &x), 0);
    wait_all(&x);
    uint64_t lease = x.lease;
    put(&x, "osd/state/1", "up", lease);
    struct keeper_log kl = {0};
    struct vs_meta_lease_keeper *k;
    assert_int_equal(vs_meta_lease_keep(x.cl, lease, 3000, keeper_cb, &kl, &k), 0);
    assert_true(run_until(&c, svc_up_and_alive, &kl, 5000));
    for (unsigned i = 0; i < 3; i++)
        member_close(&c, i);
    assert_true(run_until(&c, keeper_unknown, &kl, 5000));
    assert_true(run_until(&c, svc_down, &x, 5000));
    run_for(&c, 4000); /* longer than the TTL: only the leader decides expiry */
    for (unsigned i = 0; i < 3; i++)
        member_open(&c, i);
    assert_true(run_until(&c, svc_up_and_alive, &kl, 10000));
    assert_int_equal(x.svc, VS_META_SERVICE_UP);
    assert_int_equal(kl.expired, 0);
    get(&x, "osd/state/1");
    assert_string_equal(x.value, "up"); /* the key is still there */
    vs_meta_lease_keep_stop(k);
    close_client(&x);
    cluster_free(&c);
}

struct wlog {
    uint64_t last_rev;
    unsigned events;
    bool ordered;
    int final;
};

static void watch_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t rev)
{
    struct wlog *w = ctx;
    (void)rev;
    if (status != 0) {
        w->final = status;
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (ev[i].kv.mod_rev <= w->last_rev)
            w->ordered = false;
        w->last_rev = ev[i].kv.mod_rev;
        w->events++;
    }
}

static bool got_events(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct wlog *)arg)->events >= 40;
}

static void test_watch_failover(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3, "clwatch");
    for (unsigned i = 0; i < 3; i++)
        member_open(&c, i);
    struct ctx x;
    open_client(&x, &c);
    put(&x, "pg/x", "0", 0);
    struct wlog wl = {.ordered = true};
    struct vs_meta_watch *w;
    assert_int_equal(vs_meta_watch(x.cl, "pg/", 3, "pg0", 3, x.rev + 1, watch_cb, &wl, &w), 0);
    for (int i = 0; i < 20; i++) {
        char k[32];
        snprintf(k, sizeof(k), "pg/%d", i);
        put(&x, k, "v", 0);
    }
    /* the leader (which serves the watch) goes away */
    int l = leader_of(&c);
    assert_true(l >= 0);
    member_close(&c, (unsigned)l);
    for (int i = 20; i < 40; i++) {
        char k[32];
        snprintf(k, sizeof(k), "pg/%d", i);
        put(&x, k, "v", 0);
        assert_int_equal(x.status, 0);
    }
    assert_true(run_until(&c, got_events, &wl, 10000));
    assert_int_equal(wl.events, 40); /* none lost, none twice */
    assert_true(wl.ordered);
    assert_int_equal(wl.final, 0);
    vs_meta_watch_cancel(w);
    member_open(&c, (unsigned)l);
    close_client(&x);
    cluster_free(&c);
}

/* ---- a deposed leader and its leases ---------------------------------------------- */

struct ka_rec {
    uint64_t sent_ms, done_ms, remaining_ms;
    int status;
    bool done;
};

static void ka_cb(void *ctx, int status, uint64_t id, uint64_t remaining_ms)
{
    struct ka_rec *r = ctx;
    (void)id;
    r->status = status;
    r->remaining_ms = remaining_ms;
    r->done = true;
}

static bool three_voters(struct cluster *c, void *arg)
{
    (void)arg;
    struct vs_raft_status st;
    vs_raft_server_status(c->m[0].s, &st);
    unsigned voters = 0;
    for (unsigned i = 0; i < st.n_members; i++)
        voters += st.members[i].role == RAFT_VOTER;
    return c->m[0].leader && voters == 3;
}

static bool other_leader(struct cluster *c, void *arg)
{
    (void)arg;
    return c->m[1].leader || c->m[2].leader;
}

static bool lease_is_gone(struct cluster *c, void *arg)
{
    struct ctx *x = arg;
    struct ka_rec r = {0};
    assert_int_equal(vs_meta_lease_keepalive(x->cl, x->lease, ka_cb, &r), 0);
    uint64_t end = uv_now(&c->loop) + 5000;
    while (!r.done && uv_now(&c->loop) < end)
        run_for(c, 5);
    return r.done && r.status == VS_ELEASE;
}

/* Member 1 leads from the start (it bootstraps alone and adds 2 and 3); the
 * client knows only it. Returns a fresh lease of ttl it just renewed. */
static void deposed_setup(struct cluster *c, struct ctx *x, uint64_t ttl)
{
    cluster_init(c, 3, "cldeposed");
    c->alone = true;
    c->m[0].election_timeout_ms = 4000;
    member_open(c, 0);
    assert_true(run_until(c, has_leader, NULL, 10000));
    memset(x, 0, sizeof(*x));
    x->c = c;
    const char *members[1] = {c->m[0].addr};
    struct vs_meta_client_opts o = {.members = members, .n_members = 1, .op_timeout_ms = 1500,
                                    .down_after_ms = 60000};
    assert_int_equal(vs_meta_client_create(&c->loop, &o, &x->cl), 0);
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* three voters: a renewal now takes a round */
            member_open(c, 1);
            member_open(c, 2);
            assert_true(run_until(c, three_voters, NULL, 30000));
        }
        x->pending++;
        assert_int_equal(vs_meta_lease_grant(x->cl, 0, ttl, lease_cb, x), 0);
        wait_all(x);
        assert_int_equal(x->status, 0);
        struct ka_rec r = {0};
        assert_int_equal(vs_meta_lease_keepalive(x->cl, x->lease, ka_cb, &r), 0);
        uint64_t end = uv_now(&c->loop) + 5000;
        while (!r.done && uv_now(&c->loop) < end)
            run_for(c, 5);
        assert_true(r.done);
        assert_int_equal(r.status, 0); /* the only voter, or a leader with its majority */
        assert_true(r.remaining_ms > ttl - 500 && r.remaining_ms <= ttl);
    }
}

/* Cuts member 1 off from 2 and 3 and sends a keepalive every 100 ms until
 * it steps down (or 8 s); returns how many, all answered. */
static unsigned keepalives_while_cut(struct cluster *c, struct ctx *x, struct ka_rec *ka,
                                     unsigned max, uint64_t *cut_ms)
{
    vs_raft_server_cut(c->m[0].s, 2, true);
    vs_raft_server_cut(c->m[0].s, 3, true);
    *cut_ms = uv_now(&c->loop);
    unsigned n = 0;
    while (n < max && c->m[0].leader && uv_now(&c->loop) - *cut_ms < 8000) {
        ka[n].sent_ms = uv_now(&c->loop);
        assert_int_equal(vs_meta_lease_keepalive(x->cl, x->lease, ka_cb, &ka[n]), 0);
        n++;
        run_for(c, 100);
    }
    uint64_t end = uv_now(&c->loop) + 10000;
    for (unsigned i = 0; i < n; i++) {
        while (!ka[i].done && uv_now(&c->loop) < end)
            run_for(c, 5);
        assert_true(ka[i].done);
    }
    return n;
}

/* Member 1 leads; it is cut off from members 2 and 3 but not from the
 * client, which knows only it (an OSD that reaches only the old leader).
 * Member 1's election timeout is long, so it believes it leads for seconds
 * after 2 and 3 elected a new leader -- which gives every lease a full TTL
 * from then and revokes ours when nobody renews it there. Member 1 must
 * answer no keepalive sent after that election OK, and none it answers OK
 * may promise the lease past the revoke: sent at S with R ms left, the
 * client holds the lease until S + R, and the new leader revokes it at the
 * earliest TTL after it took office. */
static void test_deposed_leader_keepalive(void **state)
{
    (void)state;
    const uint64_t ttl = 2000;
    struct cluster c;
    struct ctx x;
    deposed_setup(&c, &x, ttl);
    enum { NKA = 80 };
    struct ka_rec ka[NKA];
    memset(ka, 0, sizeof(ka));
    uint64_t cut_ms;
    unsigned n = keepalives_while_cut(&c, &x, ka, NKA, &cut_ms);
    assert_true(run_until(&c, other_leader, NULL, 5000));
    uint64_t elected_ms = c.m[c.m[1].leader ? 1 : 2].leader_since_ms;
    unsigned after_election = 0;
    for (unsigned i = 0; i < n; i++) {
        bool after = ka[i].sent_ms > elected_ms;
        after_election += after;
        if (ka[i].status != 0)
            continue;
        if (after) /* no round started then can reach a majority */
            fail_msg("keepalive %u sent %" PRIu64 " ms after the new leader took office was "
                     "answered OK by the deposed leader",
                     i, ka[i].sent_ms - elected_ms);
        if (ka[i].sent_ms + ka[i].remaining_ms > elected_ms + ttl)
            fail_msg("keepalive %u sent %" PRIu64 " ms after the cut, answered OK by the "
                     "deposed leader with %" PRIu64 " ms left: the lease would outlive the new "
                     "leader's revoke (%" PRIu64 " ms after the cut)",
                     i, ka[i].sent_ms - cut_ms, ka[i].remaining_ms, elected_ms + ttl - cut_ms);
    }
    /* The window this test is about was there: member 1 still led after the
     * election, and keepalives reached it then. */
    assert_true(after_election > 0);

    /* Healed, member 1 follows the new leader, which has revoked the lease. */
    vs_raft_server_cut(c.m[0].s, 2, false);
    vs_raft_server_cut(c.m[0].s, 3, false);
    assert_true(run_until(&c, lease_is_gone, &x, 15000));
    close_client(&x);
    cluster_free(&c);
}

int main(void)
{
    enum vs_log_level lvl = getenv("RAFT_TEST_DEBUG") ? VS_LOG_DEBUG : VS_LOG_WARN;
    vs_log_set_level(getenv("RAFT_TEST_TRACE") ? VS_LOG_TRACE : lvl);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_watch_failover),
        cmocka_unit_test(test_leases_and_outage),
        cmocka_unit_test(test_deposed_leader_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
