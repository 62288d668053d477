/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_run_test.c -- the monitor's shell against a real one-member
 * metadata service on one libuv loop (loopback TCP, a temporary data dir):
 * it starts when the member leads, publishes config/pgs for a pool, moves
 * primaries when an OSD's state key vanishes, retries a txn whose compares a
 * concurrent writer broke, coalesces bursts of changes into few plans, and
 * closes cleanly with a txn in flight.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "free_port.h"
#include "mon/monitor.h"
#include "vs_placement.h"

struct env {
    uv_loop_t loop;
    struct vs_raft_server *srv;
    struct vs_monitor *mon;
    char dir[256], addr[64];
    unsigned events[16];
    bool interfere; /* on the next PROPOSING, write config/pgs first */
    int txn_status;
    bool txn_done;
};

static struct env E;

/* ---- loop helpers ---- */

static void run_ms(unsigned ms)
{
    uint64_t end = uv_now(&E.loop) + ms;
    uv_timer_t t;
    uv_timer_init(&E.loop, &t);
    uv_timer_start(&t, (uv_timer_cb)(void (*)(void))uv_stop, 2, 2);
    while (uv_now(&E.loop) < end)
        uv_run(&E.loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&E.loop, UV_RUN_NOWAIT);
}

static bool run_until(bool (*pred)(void *), void *arg, unsigned timeout_ms)
{
    uint64_t end = uv_now(&E.loop) + timeout_ms;
    while (!pred(arg)) {
        if (uv_now(&E.loop) > end)
            return false;
        run_ms(5);
    }
    return true;
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    (void)ctx;
    E.txn_status = status < 0 ? status : (res->succeeded ? 0 : -1);
    E.txn_done = true;
}

static bool txn_done(void *arg)
{
    (void)arg;
    return E.txn_done;
}

static void put(const char *key, const char *value, bool wait)
{
    struct vs_meta_op op = {.type = value ? VS_META_OP_PUT : VS_META_OP_DELETE,
                            .key = key,
                            .key_len = (uint32_t)strlen(key),
                            .value = value,
                            .value_len = value ? (uint32_t)strlen(value) : 0};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    E.txn_done = false;
    assert_int_equal(vs_raft_server_txn(E.srv, &txn, txn_cb, NULL), 0);
    if (wait) {
        assert_true(run_until(txn_done, NULL, 5000));
        assert_int_equal(E.txn_status, 0);
    }
}

static void osd_up(uint32_t id, const char *host, bool wait)
{
    char key[64], value[512];
    snprintf(key, sizeof(key), "osd/state/%u", id);
    snprintf(value, sizeof(value),
             "{\"state\":\"up\",\"addresses\":[\"127.0.0.1:%u\"],\"host\":\"%s\","
             "\"size_bytes\":1000000000000}",
             7000 + id, host);
    put(key, value, wait);
}

struct got {
    char *value;
    uint64_t mod_rev;
};

static void get_cb(void *ctx, int status, const struct vs_meta_op_result *res, uint64_t rev)
{
    struct got *g = ctx;
    (void)rev;
    if (status == 0 && res->n_kvs == 1) {
        g->value = strndup((const char *)res->kvs[0].value, res->kvs[0].value_len);
        g->mod_rev = res->kvs[0].mod_rev;
    }
}

static struct got get(const char *key)
{
    struct got g = {0};
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = key,
                            .key_len = (uint32_t)strlen(key)};
    assert_int_equal(vs_raft_server_range(E.srv, &op, get_cb, &g), 0);
    return g;
}

static struct vs_pgmap *pgmap(void)
{
    struct got g = get("config/pgs");
    struct vs_pgmap *map = NULL;
    if (g.value && vs_pgmap_parse(g.value, strlen(g.value), &map, NULL, 0) < 0)
        map = NULL;
    free(g.value);
    return map;
}

/* ---- the monitor's observer ---- */

static void event_cb(void *ctx, enum vs_monitor_event ev, uint64_t rev)
{
    (void)ctx, (void)rev;
    E.events[ev]++;
    if (ev == VS_MONITOR_PROPOSING && E.interfere) {
        /* Proposed before the monitor's txn, so applied first: its compare fails. */
        E.interfere = false;
        struct got g = get("config/pgs");
        assert_non_null(g.value);
        put("config/pgs", g.value, false);
        free(g.value);
    }
}

static bool started(void *arg)
{
    (void)arg;
    return E.events[VS_MONITOR_STARTED] > 0;
}

static void closed_cb(void *ctx)
{
    *(bool *)ctx = true;
}

static int setup(void **state)
{
    (void)state;
    memset(&E, 0, sizeof(E));
    uv_loop_init(&E.loop);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(E.dir, sizeof(E.dir), "%s/monitor_run_%d", tmp, (int)getpid());
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
    assert_int_equal(system(cmd), 0);
    static unsigned round;
    snprintf(E.addr, sizeof(E.addr), "127.0.0.1:%d",
             test_free_port((unsigned)getpid() * 31 + 101 * round++));
    struct vs_raft_member m = {.id = 1, .role = RAFT_VOTER};
    snprintf(m.address, sizeof(m.address), "%s", E.addr);
    struct vs_raft_server_opts o = {.data_dir = E.dir, .id = 1, .address = E.addr,
                                    .initial = &m, .n_initial = 1, .election_timeout_ms = 200,
                                    .heartbeat_timeout_ms = 20};
    char err[256];
    if (vs_raft_server_open(&E.loop, &o, &E.srv, err, sizeof(err)) != 0)
        fail_msg("open: %s", err);
    struct vs_monitor_opts mo = {.change_delay_ms = 50, .retry_delay_ms = 20, .seed = 7,
                                 .stats_interval_ms = 200, .event_cb = event_cb};
    assert_int_equal(vs_monitor_create(&E.loop, E.srv, &mo, &E.mon), 0);
    vs_raft_server_on_leader(E.srv, vs_monitor_leader_cb, E.mon);
    assert_true(run_until(started, NULL, 10000));
    return 0;
}

static bool bool_true(void *arg)
{
    return *(bool *)arg;
}

static int teardown(void **state)
{
    (void)state;
    bool mon_closed = false, srv_closed = false;
    vs_raft_server_on_leader(E.srv, NULL, NULL);
    vs_monitor_close(E.mon, closed_cb, &mon_closed);
    assert_true(run_until(bool_true, &mon_closed, 2000));
    vs_raft_server_close(E.srv, closed_cb, &srv_closed);
    while (!srv_closed)
        uv_run(&E.loop, UV_RUN_ONCE);
    uv_run(&E.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&E.loop), 0);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", E.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- the tests ---- */

static bool pool_placed(void *arg)
{
    struct vs_pgmap *map = pgmap();
    bool ok = map && vs_pgmap_find(map, 1) != NULL;
    if (ok && arg) {
        const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
        for (uint32_t pg = 0; pg < pp->pg_count; pg++)
            ok = ok && pp->pgs[pg].primary != *(uint32_t *)arg && pp->pgs[pg].primary != 0;
    }
    vs_pgmap_free(map);
    return ok;
}

static void place_pool(void)
{
    osd_up(1, "h1", true);
    osd_up(2, "h2", true);
    osd_up(3, "h3", true);
    put("config/pools",
        "{\"1\":{\"name\":\"rbd\",\"scheme\":\"replicated\",\"pg_size\":3,\"pg_minsize\":2,"
        "\"pg_count\":32}}",
        true);
    assert_true(run_until(pool_placed, NULL, 5000));
}

static void test_places_and_moves_primaries(void **state)
{
    (void)state;
    place_pool();
    run_ms(300);
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    assert_true(st.active);
    assert_true(st.publishes >= 1);
    uint64_t publishes = st.publishes;
    /* Quiet: nothing more is written while nothing changes. */
    struct got before = get("config/pgs");
    run_ms(300);
    struct got after = get("config/pgs");
    assert_int_equal(before.mod_rev, after.mod_rev);
    free(before.value), free(after.value);
    /* OSD 2's lease expired: its key vanished. */
    put("osd/state/2", NULL, true);
    uint32_t gone = 2;
    assert_true(run_until(pool_placed, &gone, 5000));
    vs_monitor_status(E.mon, &st);
    assert_true(st.publishes > publishes);
}

static void test_conflict_is_retried(void **state)
{
    (void)state;
    place_pool();
    run_ms(200);
    E.interfere = true;
    put("osd/state/3", NULL, true); /* the next plan moves primaries off OSD 3 */
    uint32_t gone = 3;
    assert_true(run_until(pool_placed, &gone, 5000));
    assert_false(E.interfere);
    assert_true(E.events[VS_MONITOR_CONFLICT] >= 1);
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    assert_true(st.conflicts >= 1);
}

static void test_bursts_coalesce(void **state)
{
    (void)state;
    place_pool();
    run_ms(300);
    struct vs_monitor_status st0, st1;
    vs_monitor_status(E.mon, &st0);
    for (uint32_t o = 10; o < 40; o++) {
        char host[16];
        snprintf(host, sizeof(host), "h%u", o);
        osd_up(o, host, false); /* 30 registrations in one loop turn */
    }
    run_ms(600);
    vs_monitor_status(E.mon, &st1);
    assert_true(st1.solves - st0.solves <= 2);
    assert_true(st1.plans - st0.plans <= 4);
    struct vs_pgmap *map = pgmap();
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    unsigned high = 0;
    for (uint32_t pg = 0; pg < pp->pg_count; pg++)
        for (uint32_t r = 0; r < 3; r++)
            high += vs_pgmap_osd_set(pp, pg)[r] >= 10;
    assert_true(high > 60); /* the new OSDs took most members */
    vs_pgmap_free(map);
}

static void test_close_with_txn_in_flight(void **state)
{
    (void)state;
    place_pool();
    /* Counted before the put: on a loaded machine the monitor may already
     * propose while the put itself is being waited for. */
    unsigned proposing = E.events[VS_MONITOR_PROPOSING];
    put("osd/state/1", NULL, true);
    /* Run until the monitor proposes, then close it at once (teardown). */
    uint64_t end = uv_now(&E.loop) + 3000;
    while (E.events[VS_MONITOR_PROPOSING] == proposing && uv_now(&E.loop) < end)
        uv_run(&E.loop, UV_RUN_ONCE);
    assert_true(E.events[VS_MONITOR_PROPOSING] > proposing);
}

/* ---- statistics through the volatile path ---- */

static void vput_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    (void)res;
    *(int *)ctx = status == 0 ? 1 : -1;
}

static void client_closed(void *ctx)
{
    *(bool *)ctx = true;
}

static bool flag_set(void *arg)
{
    return *(int *)arg != 0;
}

/* An OSD's report, as vs_meta_volatile_put from another process would send it. */
static void report(struct vs_meta_client *cl, uint64_t writes)
{
    char value[512];
    snprintf(value, sizeof(value),
             "{\"size_bytes\":1000,\"free_bytes\":600,\"ops\":{\"write\":{\"count\":%llu,"
             "\"bytes\":%llu,\"usec\":%llu}}}",
             (unsigned long long)writes, (unsigned long long)writes * 4096,
             (unsigned long long)writes * 50);
    int done = 0;
    assert_int_equal(vs_meta_volatile_put(cl, "osd/stats/1", 11, value,
                                          (uint32_t)strlen(value), vput_cb, &done),
                     0);
    assert_true(run_until(flag_set, &done, 5000));
    assert_int_equal(done, 1);
}

static bool stats_written(void *arg)
{
    (void)arg;
    struct got g = get("stats");
    json_t *j = g.value ? json_loads(g.value, 0, NULL) : NULL;
    json_t *w = json_object_get(json_object_get(j, "ops"), "write");
    bool ok = json_integer_value(json_object_get(w, "iops")) > 0 &&
              json_integer_value(json_object_get(j, "free_bytes")) == 600;
    json_decref(j);
    free(g.value);
    return ok;
}

static void test_stats_folded(void **state)
{
    (void)state;
    osd_up(1, "h1", true);
    const char *members[] = {E.addr};
    struct vs_meta_client_opts co = {.members = members, .n_members = 1};
    struct vs_meta_client *cl;
    assert_int_equal(vs_meta_client_create(&E.loop, &co, &cl), 0);
    report(cl, 100);
    run_ms(300); /* the monitor's baseline */
    report(cl, 5000);
    assert_true(run_until(stats_written, NULL, 5000));
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    assert_true(st.stats_writes >= 1);
    bool closed = false;
    vs_meta_client_close(cl, client_closed, &closed);
    assert_true(run_until(bool_true, &closed, 2000));
}

/* One report of 1,000 images (~100 KB): its fold takes a while on the thread
 * pool. */
static void big_report(struct vs_meta_client *cl)
{
    size_t cap = 200 * 1024, len = 0;
    char *v = malloc(cap);
    len += (size_t)snprintf(v + len, cap - len,
                            "{\"size_bytes\":1000,\"free_bytes\":600,\"inodes\":{");
    for (unsigned i = 1; i <= 1000; i++)
        len += (size_t)snprintf(v + len, cap - len,
                                "%s\"%llu\":{\"write\":{\"count\":%u,\"bytes\":%u,"
                                "\"usec\":%u}}",
                                i > 1 ? "," : "", (1ull << 48) | i, i, i * 4096, i * 50);
    len += (size_t)snprintf(v + len, cap - len, "}}");
    int done = 0;
    assert_int_equal(vs_meta_volatile_put(cl, "osd/stats/1", 11, v, (uint32_t)len, vput_cb,
                                          &done),
                     0);
    assert_true(run_until(flag_set, &done, 5000));
    assert_int_equal(done, 1);
    free(v);
}

static bool folding(void *arg)
{
    (void)arg;
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    return st.stats_folding;
}

static bool folds_past(void *arg)
{
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    return st.stats_folds > *(uint64_t *)arg;
}

/* The monitor stops, starts again and finally closes (teardown) while folds
 * run on the thread pool: the fold of a stopped monitor is dropped, and
 * nothing is freed early or leaked (ASan and LeakSanitizer watch). */
static void test_fold_in_flight(void **state)
{
    (void)state;
    osd_up(1, "h1", true);
    const char *members[] = {E.addr};
    struct vs_meta_client_opts co = {.members = members, .n_members = 1};
    struct vs_meta_client *cl;
    assert_int_equal(vs_meta_client_create(&E.loop, &co, &cl), 0);
    big_report(cl);
    bool closed = false;
    vs_meta_client_close(cl, client_closed, &closed);
    assert_true(run_until(bool_true, &closed, 2000));
    assert_true(run_until(folding, NULL, 5000));
    struct vs_raft_status rs;
    vs_raft_server_status(E.srv, &rs);
    vs_monitor_leader_cb(E.mon, false, rs.term); /* stops with a fold running */
    vs_monitor_leader_cb(E.mon, true, rs.term);
    struct vs_monitor_status st;
    vs_monitor_status(E.mon, &st);
    assert_true(st.active);
    assert_true(st.stats_folding); /* still the old fold: one at a time */
    uint64_t folds = st.stats_folds;
    assert_true(run_until(folds_past, &folds, 5000)); /* the old one ends, dropped */
    assert_true(run_until(folding, NULL, 5000));      /* the new monitor's own fold */
    /* teardown closes the monitor now, most likely with this fold running */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_places_and_moves_primaries, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflict_is_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bursts_coalesce, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_txn_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_folded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fold_in_flight, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
