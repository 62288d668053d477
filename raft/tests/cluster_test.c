/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cluster_test.c -- whole members on one libuv loop over loopback TCP: a
 * 1-member and a 3-member cluster elect a leader, replicate writes, serve
 * watches in order, survive the leader's close, restart members that catch
 * up by log and by snapshot, and refuse a data dir of another cluster.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "cluster_util.h"
#include "raft_int.h"
#include "vs_log.h"

/* ---- writes and reads ------------------------------------------------------------ */

struct put_state {
    int done, failed;
    uint64_t last_rev;
};

static void put_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct put_state *p = ctx;
    if (status == 0) {
        p->done++;
        p->last_rev = res->revision;
    } else {
        p->failed++;
    }
}

static int put(struct cluster *c, int who, const char *key, const char *value,
               struct put_state *ps)
{
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = key, .key_len = (uint32_t)strlen(key),
                            .value = value, .value_len = (uint32_t)strlen(value)};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    return vs_raft_server_txn(c->m[who].s, &txn, put_cb, ps);
}

struct count_arg {
    uint64_t count;
    uint64_t rev;
};

static void count_cb(void *ctx, int status, const struct vs_meta_op_result *res, uint64_t rev)
{
    struct count_arg *a = ctx;
    assert_int_equal(status, 0);
    a->count = res->count;
    a->rev = rev;
}

static uint64_t count_keys(struct cluster *c, unsigned i, const char *prefix)
{
    uint8_t end[64];
    uint32_t elen = vs_meta_prefix_end(prefix, (uint32_t)strlen(prefix), end);
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = prefix,
                            .key_len = (uint32_t)strlen(prefix), .range_end = end,
                            .range_end_len = elen, .flags = VS_META_COUNT_ONLY};
    struct count_arg a = {0};
    assert_int_equal(vs_raft_server_range(c->m[i].s, &op, count_cb, &a), 0);
    return a.count;
}

struct converge_arg {
    const char *prefix;
    uint64_t want;
};

static bool converged(struct cluster *c, void *arg)
{
    struct converge_arg *a = arg;
    for (unsigned i = 0; i < c->n; i++)
        if (c->m[i].s && count_keys(c, i, a->prefix) != a->want)
            return false;
    return true;
}

/* Writes n keys prefix/0..n-1 through the current leader. */
static void write_keys(struct cluster *c, const char *prefix, int first, int n)
{
    assert_true(run_until(c, has_leader, NULL, 10000));
    int l = leader_of(c);
    struct put_state ps = {0};
    for (int i = first; i < first + n; i++) {
        char key[64], val[64];
        snprintf(key, sizeof(key), "%s/%06d", prefix, i);
        snprintf(val, sizeof(val), "value-%d", i);
        assert_int_equal(put(c, l, key, val, &ps), 0);
        if (i % 16 == 15)
            run_for(c, 2);
    }
    uint64_t target = (uint64_t)n;
    struct put_state *p = &ps;
    uint64_t end = uv_now(&c->loop) + 10000;
    while ((uint64_t)(p->done + p->failed) < target && uv_now(&c->loop) < end)
        run_for(c, 5);
    assert_int_equal(ps.failed, 0);
    assert_int_equal(ps.done, n);
}

/* ---- watches --------------------------------------------------------------------- */

struct watch_log {
    uint64_t last_rev;
    unsigned events;
    bool ordered;
    int final_status;
};

static void watch_cb(void *ctx, int status, const struct vs_meta_event *ev, unsigned n,
                     uint64_t rev)
{
    struct watch_log *w = ctx;
    (void)rev;
    if (status != 0) {
        w->final_status = status; /* -ECANCELED when its member closes */
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        if (ev[i].kv.mod_rev <= w->last_rev)
            w->ordered = false;
        w->last_rev = ev[i].kv.mod_rev;
        w->events++;
    }
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_single(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 1, "single");
    member_open(&c, 0);
    assert_true(run_until(&c, has_leader, NULL, 5000));
    write_keys(&c, "k", 0, 200);
    assert_int_equal(count_keys(&c, 0, "k/"), 200);
    member_close(&c, 0);
    member_open(&c, 0); /* restart from the data dir */
    assert_true(run_until(&c, has_leader, NULL, 5000));
    assert_int_equal(count_keys(&c, 0, "k/"), 200);
    write_keys(&c, "k", 200, 10);
    assert_int_equal(count_keys(&c, 0, "k/"), 210);

    /* a burst of more proposals in one turn than one submit holds: none refused */
    struct put_state ps = {0};
    const int burst = RAFT_NODE_APPEND_MAX * 2 + 100;
    for (int i = 0; i < burst; i++) {
        char key[64];
        snprintf(key, sizeof(key), "b/%06d", i);
        assert_int_equal(put(&c, 0, key, "v", &ps), 0);
    }
    uint64_t end = uv_now(&c.loop) + 20000;
    while (ps.done + ps.failed < burst && uv_now(&c.loop) < end)
        run_for(&c, 5);
    assert_int_equal(ps.failed, 0);
    assert_int_equal(ps.done, burst);
    assert_int_equal(count_keys(&c, 0, "b/"), (uint64_t)burst);
    cluster_free(&c);
}

static void test_three(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 3, "three");
    for (unsigned i = 0; i < 3; i++)
        member_open(&c, i);
    assert_true(run_until(&c, has_leader, NULL, 10000));
    /* a watch on a follower sees every write, in order */
    int l = leader_of(&c);
    unsigned f = (unsigned)(l + 1) % 3;
    struct watch_log wl = {.ordered = true};
    uint64_t wid;
    assert_int_equal(vs_raft_server_watch(c.m[f].s, "k/", 2, "k0", 2, 0, watch_cb, &wl, &wid), 0);
    write_keys(&c, "k", 0, 300);
    struct converge_arg ca = {"k/", 300};
    assert_true(run_until(&c, converged, &ca, 10000));
    assert_true(wl.ordered);
    uint64_t want = 300;
    uint64_t end = uv_now(&c.loop) + 5000;
    while (wl.events < want && uv_now(&c.loop) < end)
        run_for(&c, 5);
    assert_int_equal(wl.events, 300);
    assert_int_equal(wl.final_status, 0);

    /* a follower restarts: catches up by log */
    member_close(&c, f);
    write_keys(&c, "k", 300, 20);
    member_open(&c, f);
    ca.want = 320;
    assert_true(run_until(&c, converged, &ca, 10000));

    /* a follower misses more than threshold + trailing: catches up by snapshot */
    l = leader_of(&c);
    f = (unsigned)(l + 1) % 3;
    member_close(&c, f);
    write_keys(&c, "k", 320, 300);
    member_open(&c, f);
    ca.want = 620;
    assert_true(run_until(&c, converged, &ca, 15000));
    struct vs_raft_status st;
    vs_raft_server_status(c.m[f].s, &st);
    assert_true(st.snapshot_index > 320);
    assert_true(st.snapshots_installed >= 1); /* it did not get the entries one by one */

    /* the leader goes away: the others elect one and keep writing */
    l = leader_of(&c);
    member_close(&c, (unsigned)l);
    assert_true(run_until(&c, has_leader, NULL, 10000));
    write_keys(&c, "k", 620, 30);
    member_open(&c, (unsigned)l);
    ca.want = 650;
    assert_true(run_until(&c, converged, &ca, 10000));
    (void)wid;
    cluster_free(&c);
}

/* A data dir bootstrapped for one member list refuses another list. */
static void test_wrong_cluster(void **state)
{
    (void)state;
    struct cluster c;
    cluster_init(&c, 1, "wrong");
    member_open(&c, 0);
    assert_true(run_until(&c, has_leader, NULL, 5000));
    member_close(&c, 0);
    c.list[0].id = 1;
    snprintf(c.list[0].address, sizeof(c.list[0].address), "127.0.0.1:%d", c.port_base + 7);
    struct vs_raft_server_opts o = {.data_dir = c.m[0].dir, .id = 1, .address = c.m[0].addr,
                                    .initial = c.list, .n_initial = 1};
    char err[512] = "";
    struct vs_raft_server *s;
    assert_int_equal(vs_raft_server_open(&c.loop, &o, &s, err, sizeof(err)), VS_EWRONGCLUSTER);
    assert_non_null(strstr(err, "belongs to cluster"));
    o.id = 2;
    o.n_initial = 0;
    assert_int_equal(vs_raft_server_open(&c.loop, &o, &s, err, sizeof(err)), VS_EWRONGCLUSTER);
    assert_non_null(strstr(err, "belongs to member 1"));
    cluster_free(&c);
}

int main(void)
{
    if (getenv("RAFT_TEST_TRACE"))
        vs_log_set_level(VS_LOG_TRACE);
    else
        vs_log_set_level(VS_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single),
        cmocka_unit_test(test_wrong_cluster),
        cmocka_unit_test(test_three),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
