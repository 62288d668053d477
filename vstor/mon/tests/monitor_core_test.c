/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_core_test.c -- the monitor's pure core (vs_mon_plan,
 * vs_mon_stats_fold) against an in-memory model of the metadata service
 * (fake_store.c): placement triggered by pool and OSD changes, primaries
 * moving off down OSDs, members staying, history cleared on clean reports
 * only, last_clean, conflicts retried, no churn, and bad input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_store.h"
#include "vs_placement.h"

static const struct vs_mon_plan_opts OPTS = {.seed = 42};

static const char POOL1[] = "{\"1\":{\"name\":\"rbd\",\"scheme\":\"replicated\",\"pg_size\":3,"
                            "\"pg_minsize\":2,\"pg_count\":16,\"failure_domain\":\"host\"}}";
static const char POOL12[] = "{\"1\":{\"name\":\"rbd\",\"scheme\":\"replicated\",\"pg_size\":3,"
                             "\"pg_minsize\":2,\"pg_count\":16,\"failure_domain\":\"host\"},"
                             "\"2\":{\"name\":\"two\",\"scheme\":\"replicated\",\"pg_size\":2,"
                             "\"pg_minsize\":1,\"pg_count\":8}}";

/* ---- helpers ---- */

static void osd_up(struct fake_store *s, uint32_t id, const char *host)
{
    char key[64];
    snprintf(key, sizeof(key), "osd/state/%u", id);
    fs_putf(s, key,
            "{\"state\":\"up\",\"addresses\":[\"127.0.0.1:%u\"],\"host\":\"%s\","
            "\"block_size\":131072,\"bitmap_granularity\":4096,\"immediate_commit\":\"all\","
            "\"size_bytes\":1000000000000}",
            7000 + id, host);
}

static void osd_down(struct fake_store *s, uint32_t id)
{
    char key[64];
    snprintf(key, sizeof(key), "osd/state/%u", id);
    fs_del(s, key);
}

/* One monitor round: plan, then apply. Returns whether the txn's compares held. */
static bool step(struct fake_store *s, struct vs_mon_plan *plan)
{
    static struct vs_meta_kv kvs[FS_MAX];
    unsigned n = fs_select(s, vs_mon_read_keys, kvs, FS_MAX);
    assert_int_equal(vs_mon_plan(kvs, n, &OPTS, plan), 0);
    if (plan->txn.n_ops == 0) {
        assert_int_equal(plan->txn.n_cmp, 0);
        return true;
    }
    struct vs_meta_txn t;
    vs_mon_txn_view(&plan->txn, &t);
    return fs_txn(s, &t);
}

/* Rounds until a plan is empty; returns how many wrote something. */
static unsigned settle(struct fake_store *s)
{
    for (unsigned rounds = 0; rounds < 5; rounds++) {
        struct vs_mon_plan plan;
        assert_true(step(s, &plan));
        bool empty = plan.txn.n_ops == 0;
        vs_mon_plan_free(&plan);
        if (empty)
            return rounds;
    }
    fail_msg("the monitor does not settle");
    return 0;
}

static void assert_quiet(struct fake_store *s)
{
    struct vs_mon_plan plan;
    uint64_t rev = s->rev;
    assert_true(step(s, &plan));
    assert_int_equal(plan.txn.n_ops, 0);
    assert_false(plan.solved);
    vs_mon_plan_free(&plan);
    assert_int_equal(s->rev, rev);
}

static struct vs_pgmap *pgmap(const struct fake_store *s)
{
    const struct fs_kv *kv = fs_get(s, "config/pgs");
    assert_non_null(kv);
    struct vs_pgmap *map = NULL;
    char err[256];
    int rc = vs_pgmap_parse(kv->value, strlen(kv->value), &map, err, sizeof(err));
    if (rc != 0)
        fail_msg("config/pgs: %s", err);
    return map;
}

static bool in_set(const uint32_t *set, uint32_t size, uint32_t osd)
{
    for (uint32_t r = 0; r < size; r++)
        if (set[r] == osd)
            return true;
    return false;
}

/* 3 hosts with one OSD each, pool 1 (size 3, 16 PGs), settled. */
static void cluster3(struct fake_store *s)
{
    fs_init(s);
    osd_up(s, 1, "h1");
    osd_up(s, 2, "h2");
    osd_up(s, 3, "h3");
    fs_put(s, "config/pools", POOL1);
    assert_int_equal(settle(s), 1);
}

static void report_clean(struct fake_store *s, const struct vs_pgmap_pool *pp, uint32_t pg,
                         const char *state)
{
    const uint32_t *set = vs_pgmap_osd_set(pp, pg);
    char key[64], peers[256] = "";
    size_t off = 0;
    for (uint32_t r = 0; r < pp->pg_size; r++)
        if (set[r])
            off += (size_t)snprintf(peers + off, sizeof(peers) - off, "%s%u", off ? "," : "",
                                    set[r]);
    snprintf(key, sizeof(key), "pg/state/%u/%u", pp->pool_id, pg);
    fs_putf(s, key, "{\"primary\":%u,\"state\":[%s],\"peers\":[%s],\"epoch\":1}",
            pp->pgs[pg].primary, state, peers);
}

/* ---- placement ---- */

static void test_pool_created_is_placed(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    assert_non_null(pp);
    assert_int_equal(pp->pg_count, 16);
    unsigned primaries[4] = {0};
    for (uint32_t pg = 0; pg < 16; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(pp, pg);
        for (uint32_t o = 1; o <= 3; o++)
            assert_true(in_set(set, 3, o)); /* 3 hosts, size 3: every OSD in every PG */
        assert_int_equal(set[0], pp->pgs[pg].primary); /* replicated: primary first */
        primaries[pp->pgs[pg].primary]++;
    }
    for (uint32_t o = 1; o <= 3; o++)
        assert_in_range(primaries[o], 5, 6); /* spread evenly */
    assert_non_null(fs_get(&s, "mon/osd/1")); /* records of every OSD seen */
    assert_non_null(fs_get(&s, "mon/osd/3"));
    assert_non_null(fs_get(&s, "mon/placement"));
    vs_pgmap_free(map);
    assert_quiet(&s);
    fs_free(&s);
}

static void test_no_churn(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    const struct fs_kv *pgs = fs_get(&s, "config/pgs");
    uint64_t pgs_rev = pgs->mod_rev;
    /* Unrelated keys, and an OSD re-registering with the same value. */
    fs_put(&s, "config/inode/1/1", "{\"name\":\"img\",\"size\":1048576}");
    fs_put(&s, "index/image/img", "{\"pool\":1,\"num\":1}");
    fs_put(&s, "inode/stats/1/1", "{}");
    osd_up(&s, 2, "h2");
    fs_put(&s, "pg/state/1/0", "{\"primary\":1,\"state\":[\"peering\"],\"peers\":[1,2,3]}");
    assert_quiet(&s);
    /* The same pools written again (a no-op `pool create` race): no re-placement. */
    fs_put(&s, "config/pools", POOL1);
    assert_quiet(&s);
    assert_int_equal(fs_get(&s, "config/pgs")->mod_rev, pgs_rev);
    fs_free(&s);
}

static void test_pool_added_places_only_it(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    struct vs_pgmap *before = pgmap(&s);
    fs_put(&s, "config/pools", POOL12);
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_true(plan.solved);
    assert_true(plan.publish);
    assert_int_equal(plan.primary_moves, 0);
    vs_mon_plan_free(&plan);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *p1 = vs_pgmap_find(before, 1), *q1 = vs_pgmap_find(after, 1);
    const struct vs_pgmap_pool *q2 = vs_pgmap_find(after, 2);
    assert_non_null(q2);
    assert_int_equal(q2->pg_count, 8);
    assert_memory_equal(p1->osd_sets, q1->osd_sets, 16 * 3 * sizeof(uint32_t));
    vs_pgmap_free(before);
    vs_pgmap_free(after);
    assert_quiet(&s);
    /* Removing the pool drops its PGs. */
    fs_put(&s, "config/pools", POOL1);
    assert_int_equal(settle(&s), 1);
    after = pgmap(&s);
    assert_null(vs_pgmap_find(after, 2));
    vs_pgmap_free(after);
    fs_free(&s);
}

static void test_osd_added_moves_some_pgs_with_history(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    osd_up(&s, 4, "h4");
    assert_int_equal(settle(&s), 1);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    unsigned on4 = 0, with_history = 0;
    for (uint32_t pg = 0; pg < 16; pg++) {
        on4 += in_set(vs_pgmap_osd_set(pp, pg), 3, 4);
        with_history += pp->pgs[pg].history_count > 0;
    }
    assert_in_range(on4, 12, 12); /* 48 members over 4 equal OSDs */
    assert_int_equal(with_history, on4); /* every moved PG remembers its old set */
    vs_pgmap_free(map);
    assert_quiet(&s);
    fs_free(&s);
}

/* ---- OSD down ---- */

static void test_primary_moves_on_osd_down(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    struct vs_pgmap *before = pgmap(&s);
    const struct vs_pgmap_pool *bp = vs_pgmap_find(before, 1);
    osd_down(&s, 1); /* its lease expired */
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    unsigned led_by_1 = 0;
    for (uint32_t pg = 0; pg < 16; pg++)
        led_by_1 += bp->pgs[pg].primary == 1;
    assert_true(plan.solved);
    assert_int_equal(plan.primary_moves, led_by_1);
    vs_mon_plan_free(&plan);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(ap, pg);
        assert_int_not_equal(ap->pgs[pg].primary, 1);
        assert_true(in_set(set, 3, 1)); /* members stay: no out handling yet */
        assert_int_equal(ap->pgs[pg].history_count, 0); /* same set: nothing to remember */
        if (bp->pgs[pg].primary != 1)
            assert_int_equal(ap->pgs[pg].primary, bp->pgs[pg].primary);
    }
    assert_non_null(fs_get(&s, "mon/osd/1")); /* the record keeps its place */
    vs_pgmap_free(before);
    vs_pgmap_free(after);
    assert_quiet(&s);
    /* It comes back: placement runs again, members unchanged. */
    osd_up(&s, 1, "h1");
    settle(&s);
    after = pgmap(&s);
    ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        assert_true(in_set(vs_pgmap_osd_set(ap, pg), 3, 1));
    vs_pgmap_free(after);
    assert_quiet(&s);
    fs_free(&s);
}

static void test_cold_start_keeps_members(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    struct vs_pgmap *before = pgmap(&s);
    for (uint32_t o = 1; o <= 3; o++)
        osd_down(&s, o); /* the whole cluster stopped */
    settle(&s);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *bp = vs_pgmap_find(before, 1), *ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++) {
        assert_int_equal(ap->pgs[pg].primary, 0);
        for (uint32_t o = 1; o <= 3; o++)
            assert_true(in_set(vs_pgmap_osd_set(ap, pg), 3, o));
    }
    vs_pgmap_free(after);
    /* One OSD returns first: it leads everything, nothing moves. */
    osd_up(&s, 2, "h2");
    settle(&s);
    after = pgmap(&s);
    ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++) {
        assert_int_equal(ap->pgs[pg].primary, 2);
        assert_int_equal(ap->pgs[pg].history_count, 0);
    }
    vs_pgmap_free(after);
    /* All back: primaries spread again. */
    osd_up(&s, 1, "h1");
    osd_up(&s, 3, "h3");
    settle(&s);
    after = pgmap(&s);
    ap = vs_pgmap_find(after, 1);
    unsigned led[4] = {0};
    for (uint32_t pg = 0; pg < 16; pg++) {
        led[ap->pgs[pg].primary]++;
        assert_int_equal(ap->pgs[pg].history_count, 0);
    }
    assert_true(led[1] >= 5 && led[2] >= 5 && led[3] >= 5);
    (void)bp;
    vs_pgmap_free(before);
    vs_pgmap_free(after);
    fs_free(&s);
}

static void test_pg_with_no_up_member_gets_no_primary(void **state)
{
    (void)state;
    struct fake_store s;
    fs_init(&s);
    for (uint32_t o = 1; o <= 4; o++)
        osd_up(&s, o, o <= 2 ? "ha" : "hb");
    fs_put(&s, "config/pools", "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":2,"
                               "\"pg_minsize\":1,\"pg_count\":8}}");
    settle(&s);
    osd_down(&s, 1);
    osd_down(&s, 3);
    settle(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 8; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(pp, pg);
        bool any_up = in_set(set, 2, 2) || in_set(set, 2, 4);
        assert_int_equal(pp->pgs[pg].primary != 0, any_up);
        assert_true(pp->pgs[pg].primary != 1 && pp->pgs[pg].primary != 3);
    }
    vs_pgmap_free(map);
    fs_free(&s);
}

/* ---- history and last_clean ---- */

static void test_history_cleared_on_clean_report(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    osd_up(&s, 4, "h4");
    settle(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    uint32_t moved = UINT32_MAX;
    for (uint32_t pg = 0; pg < 16 && moved == UINT32_MAX; pg++)
        if (pp->pgs[pg].history_count)
            moved = pg;
    assert_int_not_equal(moved, UINT32_MAX);
    struct vs_mon_plan plan;
    /* Not clean yet, or a report about another set: the history stays. */
    report_clean(&s, pp, moved, "\"active\",\"has_misplaced\"");
    assert_quiet(&s);
    char key[64];
    snprintf(key, sizeof(key), "pg/state/1/%u", moved);
    fs_put(&s, key, "{\"primary\":1,\"state\":[\"active\"],\"peers\":[1,2,3],\"epoch\":1}");
    assert_quiet(&s);
    /* A clean report about another primary: not yet. */
    snprintf(key, sizeof(key), "pg/state/1/%u", moved);
    fs_putf(&s, key, "{\"primary\":%u,\"state\":[\"active\"],\"peers\":[%u,%u,%u]}",
            pp->pgs[moved].primary % 4 + 1, vs_pgmap_osd_set(pp, moved)[0],
            vs_pgmap_osd_set(pp, moved)[1], vs_pgmap_osd_set(pp, moved)[2]);
    assert_quiet(&s);
    /* Clean for exactly this set and primary. */
    report_clean(&s, pp, moved, "\"active\"");
    assert_true(step(&s, &plan));
    assert_int_equal(plan.history_cleared, 1);
    assert_int_equal(plan.last_clean_pools, 0); /* the other PGs did not report */
    assert_false(plan.solved);
    vs_mon_plan_free(&plan);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        assert_int_equal(ap->pgs[pg].history_count, pg == moved ? 0 : pp->pgs[pg].history_count);
    assert_memory_equal(ap->osd_sets, pp->osd_sets, 16 * 3 * sizeof(uint32_t));
    vs_pgmap_free(after);
    vs_pgmap_free(map);
    assert_quiet(&s);
    fs_free(&s);
}

static void test_last_clean_when_pool_clean(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    osd_up(&s, 4, "h4");
    settle(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        report_clean(&s, pp, pg, "\"active\"");
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_int_equal(plan.history_cleared, 12);
    assert_int_equal(plan.last_clean_pools, 1);
    vs_mon_plan_free(&plan);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *ap = vs_pgmap_find(after, 1);
    assert_non_null(ap->last_clean);
    assert_memory_equal(ap->last_clean, ap->osd_sets, 16 * 3 * sizeof(uint32_t));
    vs_pgmap_free(after);
    vs_pgmap_free(map);
    assert_quiet(&s);
    fs_free(&s);
}

/* ---- conflicts ---- */

static void test_conflict_then_retry(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    osd_up(&s, 4, "h4");
    settle(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        report_clean(&s, pp, pg, "\"active\"");
    /* Plan, then the primary of PG 0 changes its report before the txn applies. */
    static struct vs_meta_kv kvs[FS_MAX];
    unsigned n = fs_select(&s, vs_mon_read_keys, kvs, FS_MAX);
    struct vs_mon_plan plan;
    assert_int_equal(vs_mon_plan(kvs, n, &OPTS, &plan), 0);
    assert_true(plan.history_cleared > 0);
    uint32_t victim = UINT32_MAX;
    for (uint32_t pg = 0; pg < 16 && victim == UINT32_MAX; pg++)
        if (pp->pgs[pg].history_count)
            victim = pg;
    report_clean(&s, pp, victim, "\"active\",\"degraded\"");
    struct vs_meta_txn t;
    vs_mon_txn_view(&plan.txn, &t);
    assert_false(fs_txn(&s, &t)); /* refused: the report it relied on changed */
    vs_mon_plan_free(&plan);
    /* The retry reads again and clears every PG but the one that is not clean. */
    settle(&s);
    struct vs_pgmap *after = pgmap(&s);
    const struct vs_pgmap_pool *ap = vs_pgmap_find(after, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        assert_int_equal(ap->pgs[pg].history_count > 0, pg == victim);
    assert_null(ap->last_clean);
    vs_pgmap_free(after);
    /* A concurrent writer of config/pgs itself also makes the txn fail. */
    fs_put(&s, "config/pools", POOL12);
    n = fs_select(&s, vs_mon_read_keys, kvs, FS_MAX);
    assert_int_equal(vs_mon_plan(kvs, n, &OPTS, &plan), 0);
    fs_put(&s, "config/pgs", fs_get(&s, "config/pgs")->value);
    vs_mon_txn_view(&plan.txn, &t);
    assert_false(fs_txn(&s, &t));
    vs_mon_plan_free(&plan);
    settle(&s);
    after = pgmap(&s);
    assert_non_null(vs_pgmap_find(after, 2));
    vs_pgmap_free(after);
    vs_pgmap_free(map);
    fs_free(&s);
}

/* ---- bad input ---- */

static bool has_msg(const struct vs_mon_plan *plan, const char *needle)
{
    for (unsigned i = 0; i < plan->n_msgs; i++)
        if (strstr(plan->msgs[i].text, needle))
            return true;
    return false;
}

static void test_bad_pools_keep_map_but_move_primaries(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    fs_put(&s, "config/pools", "{\"1\":{\"name\":\"rbd\",\"scheme\":\"replicated\",\"pg_size\":3,"
                               "\"pg_minsize\":2,\"pg_count\":16,\"pg_sise\":3}}");
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_true(has_msg(&plan, "pg_sise"));
    assert_int_equal(plan.txn.n_ops, 0);
    vs_mon_plan_free(&plan);
    osd_down(&s, 2);
    assert_true(step(&s, &plan));
    assert_false(plan.solved);
    assert_true(plan.primary_moves > 0);
    vs_mon_plan_free(&plan);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 16; pg++) {
        assert_int_not_equal(pp->pgs[pg].primary, 2);
        /* Without a readable pool config the scheme is unknown: slots stay as they are. */
        assert_true(in_set(vs_pgmap_osd_set(pp, pg), 3, pp->pgs[pg].primary));
    }
    vs_pgmap_free(map);
    assert_quiet(&s);
    fs_free(&s);
}

static void test_bad_values_never_crash(void **state)
{
    (void)state;
    struct fake_store s;
    cluster3(&s);
    static const char *const junk[] = {"", "{", "null", "[]", "{\"host\":7}", "\"x\"", "1e999",
                                       "{\"primary\":-1,\"state\":\"active\",\"peers\":[0]}"};
    static const char *const keys[] = {"config/osd/1", "osd/state/2", "mon/osd/3",
                                       "pg/state/1/0", "pg/history/1/1", "config/nodes",
                                       "mon/placement", "osd/state/x", "pg/state/1/zz",
                                       "config/osd/0", "pg/state/70000/1"};
    for (unsigned k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
        for (unsigned j = 0; j < sizeof(junk) / sizeof(junk[0]); j++) {
            struct fake_store t;
            cluster3(&t);
            fs_put(&t, keys[k], junk[j]);
            struct vs_mon_plan plan;
            step(&t, &plan); /* whatever it decides, it must not crash or leak */
            vs_mon_plan_free(&plan);
            fs_free(&t);
        }
    }
    /* A config/pgs nobody can read is never overwritten. */
    fs_put(&s, "config/pgs", "{\"format\":2}");
    osd_down(&s, 1);
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_true(has_msg(&plan, "config/pgs"));
    vs_mon_plan_free(&plan);
    assert_string_equal(fs_get(&s, "config/pgs")->value, "{\"format\":2}");
    fs_free(&s);
}

static void test_infeasible_pool_reported_others_placed(void **state)
{
    (void)state;
    struct fake_store s;
    fs_init(&s);
    osd_up(&s, 1, "h1");
    osd_up(&s, 2, "h2");
    fs_put(&s, "config/pools", POOL12); /* pool 1 needs pg_minsize 2 of 3 hosts: degraded */
    fs_put(&s, "config/pools",
           "{\"1\":{\"name\":\"big\",\"scheme\":\"replicated\",\"pg_size\":3,\"pg_minsize\":3,"
           "\"pg_count\":4},\"2\":{\"name\":\"two\",\"scheme\":\"replicated\",\"pg_size\":2,"
           "\"pg_minsize\":1,\"pg_count\":8}}");
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_true(has_msg(&plan, "pool 1 (big)"));
    vs_mon_plan_free(&plan);
    struct vs_pgmap *map = pgmap(&s);
    assert_null(vs_pgmap_find(map, 1));
    assert_non_null(vs_pgmap_find(map, 2));
    vs_pgmap_free(map);
    assert_quiet(&s);
    /* A third host makes it feasible. */
    osd_up(&s, 3, "h3");
    settle(&s);
    map = pgmap(&s);
    assert_non_null(vs_pgmap_find(map, 1));
    vs_pgmap_free(map);
    fs_free(&s);
}

static void test_nodes_and_osd_config(void **state)
{
    (void)state;
    struct fake_store s;
    fs_init(&s);
    /* Two racks of two hosts; failure domain rack: no PG has two OSDs of one rack. */
    fs_put(&s, "config/nodes", "{\"r1\":{\"level\":\"rack\"},\"r2\":{\"level\":\"rack\"},"
                               "\"h1\":{\"level\":\"host\",\"parent\":\"r1\"},"
                               "\"h2\":{\"level\":\"host\",\"parent\":\"r1\"},"
                               "\"h3\":{\"level\":\"host\",\"parent\":\"r2\"},"
                               "\"h4\":{\"level\":\"host\",\"parent\":\"r2\"}}");
    for (uint32_t o = 1; o <= 4; o++) {
        char host[8];
        snprintf(host, sizeof(host), "h%u", o);
        osd_up(&s, o, host);
    }
    fs_put(&s, "config/pools", "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":2,"
                               "\"pg_minsize\":1,\"pg_count\":16,\"failure_domain\":\"rack\"}}");
    settle(&s);
    struct vs_pgmap *map = pgmap(&s);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 16; pg++) {
        const uint32_t *set = vs_pgmap_osd_set(pp, pg);
        assert_true((set[0] <= 2) != (set[1] <= 2));
    }
    vs_pgmap_free(map);
    /* reweight 0 drains OSD 4; a typo in config/osd stops re-placement. */
    fs_put(&s, "config/osd/4", "{\"reweight\":0}");
    settle(&s);
    map = pgmap(&s);
    pp = vs_pgmap_find(map, 1);
    for (uint32_t pg = 0; pg < 16; pg++)
        assert_false(in_set(vs_pgmap_osd_set(pp, pg), 2, 4));
    vs_pgmap_free(map);
    fs_put(&s, "config/osd/3", "{\"rewieght\":0}");
    struct vs_mon_plan plan;
    assert_true(step(&s, &plan));
    assert_true(has_msg(&plan, "rewieght"));
    assert_int_equal(plan.txn.n_ops, 0);
    vs_mon_plan_free(&plan);
    fs_free(&s);
}

/* ---- statistics ---- */

static void osd_sample(struct fake_store *vol, uint32_t id, uint64_t n)
{
    char key[64];
    snprintf(key, sizeof(key), "osd/stats/%u", id);
    /* inode 1/1 = 1 << 48 | 1 */
    fs_putf(vol, key,
            "{\"size_bytes\":1000,\"free_bytes\":400,"
            "\"ops\":{\"write\":{\"count\":%llu,\"bytes\":%llu,\"usec\":%llu}},"
            "\"inodes\":{\"281474976710657\":{\"write\":{\"count\":%llu,\"bytes\":%llu,"
            "\"usec\":%llu}}}}",
            (unsigned long long)n, (unsigned long long)n * 4096, (unsigned long long)n * 100,
            (unsigned long long)n, (unsigned long long)n * 4096, (unsigned long long)n * 100);
}

static void fold(struct vs_mon_stats *st, struct fake_store *s, struct fake_store *vol,
                 uint64_t now_ms)
{
    static struct vs_meta_kv kvs[FS_MAX];
    static const char *const volk[] = {VS_MON_STATS_VOLATILE, NULL};
    unsigned n = fs_select(s, vs_mon_stats_keys, kvs, FS_MAX);
    n += fs_select(vol, volk, kvs + n, FS_MAX - n);
    struct vs_mon_txn txn;
    vs_mon_txn_init(&txn);
    assert_int_equal(vs_mon_stats_fold(st, now_ms, kvs, n, &txn), 0);
    struct vs_meta_txn t;
    vs_mon_txn_view(&txn, &t);
    assert_int_equal(t.n_cmp, 0);
    fs_txn(s, &t);
    vs_mon_txn_free(&txn);
}

static json_t *stored(const struct fake_store *s, const char *key)
{
    const struct fs_kv *kv = fs_get(s, key);
    return kv ? json_loads(kv->value, 0, NULL) : NULL;
}

static void test_stats_rates(void **state)
{
    (void)state;
    struct fake_store s, vol;
    cluster3(&s);
    fs_init(&vol);
    fs_put(&s, "config/inode/1/1", "{\"name\":\"img\",\"size\":1048576}");
    struct vs_mon_stats *st;
    assert_int_equal(vs_mon_stats_create(&st), 0);
    osd_sample(&vol, 1, 1000);
    osd_sample(&vol, 2, 50);
    osd_sample(&vol, 9, 5000); /* not up: ignored */
    uint64_t rev = s.rev;
    fold(st, &s, &vol, 10000);
    assert_int_equal(s.rev, rev); /* a baseline writes nothing */
    osd_sample(&vol, 1, 3000);    /* +2000 writes in 2 s */
    osd_sample(&vol, 2, 10);      /* restarted: counts 10 from zero */
    osd_sample(&vol, 9, 99999);
    fold(st, &s, &vol, 12000);
    json_t *cl = stored(&s, "stats"), *im = stored(&s, "inode/stats/1/1");
    assert_non_null(cl);
    assert_non_null(im);
    json_t *w = json_object_get(json_object_get(cl, "ops"), "write");
    assert_int_equal(json_integer_value(json_object_get(w, "iops")), 1005);
    assert_int_equal(json_integer_value(json_object_get(w, "bps")), 1005 * 4096);
    assert_int_equal(json_integer_value(json_object_get(w, "lat_us")), 100);
    assert_int_equal(json_integer_value(json_object_get(cl, "osds_up")), 3);
    assert_int_equal(json_integer_value(json_object_get(cl, "free_bytes")), 800);
    w = json_object_get(im, "write");
    assert_int_equal(json_integer_value(json_object_get(w, "iops")), 1005);
    json_decref(cl);
    json_decref(im);
    /* Idle: zeros written once, then nothing at all. */
    fold(st, &s, &vol, 14000);
    rev = s.rev;
    fold(st, &s, &vol, 16000);
    fold(st, &s, &vol, 18000);
    assert_int_equal(s.rev, rev);
    /* Images that do not exist get no stats key. */
    assert_null(fs_get(&s, "inode/stats/1/2"));
    vs_mon_stats_free(st);
    fs_free(&vol);
    fs_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_created_is_placed),
        cmocka_unit_test(test_no_churn),
        cmocka_unit_test(test_pool_added_places_only_it),
        cmocka_unit_test(test_osd_added_moves_some_pgs_with_history),
        cmocka_unit_test(test_primary_moves_on_osd_down),
        cmocka_unit_test(test_cold_start_keeps_members),
        cmocka_unit_test(test_pg_with_no_up_member_gets_no_primary),
        cmocka_unit_test(test_history_cleared_on_clean_report),
        cmocka_unit_test(test_last_clean_when_pool_clean),
        cmocka_unit_test(test_conflict_then_retry),
        cmocka_unit_test(test_bad_pools_keep_map_but_move_primaries),
        cmocka_unit_test(test_bad_values_never_crash),
        cmocka_unit_test(test_infeasible_pool_reported_others_placed),
        cmocka_unit_test(test_nodes_and_osd_config),
        cmocka_unit_test(test_stats_rates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
