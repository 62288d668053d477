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

int main(void)
{
    enum vs_log_level lvl = getenv("RAFT_TEST_DEBUG") ? VS_LOG_DEBUG : VS_LOG_WARN;
    vs_log_set_level(getenv("RAFT_TEST_TRACE") ? VS_LOG_TRACE : lvl);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv),
        cmocka_unit_test(test_watch_failover),
        cmocka_unit_test(test_leases_and_outage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
