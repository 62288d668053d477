/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_test.c -- known small cases of vs_placement_solve(), checked
 * exactly: loads, failure domains, movement on changes, degraded and
 * infeasible pools, down/out OSDs, PG count changes, EC roles, primaries,
 * history and determinism.
 */
#include "placement_int.h"
#include "placement_testlib.h"
#include "vs_err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *pools_rep(uint32_t size, uint32_t minsize, uint32_t count)
{
    return tl_pools1(tl_pool("replicated", size, 0, minsize, count));
}

/* 12 OSDs in 4 hosts, pg_size 3, 256 PGs: every OSD holds exactly 64. */
static void test_uniform_12(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 3, 1.0, 0), *pools = pools_rep(3, 2, 256);
    struct tl_result r;
    tl_solve(tree, pools, NULL, 0, &r);
    assert_int_equal(r.rc, 0);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(r.map, 1);
    assert_non_null(pp);
    assert_int_equal(tl_check_domains(tree, pp, "host"), 768);
    uint32_t *slots = tl_slots(pp, 12), prim[13] = {0};
    for (uint32_t id = 1; id <= 12; id++)
        assert_int_equal(slots[id], 64);
    for (uint32_t pg = 0; pg < 256; pg++) {
        assert_int_equal(pp->pgs[pg].primary, vs_pgmap_osd_set(pp, pg)[0]); /* primary first */
        prim[pp->pgs[pg].primary]++;
    }
    for (uint32_t id = 1; id <= 12; id++) /* 256 / 12 = 21.33 */
        assert_true(prim[id] == 21 || prim[id] == 22);
    const struct vs_placement_pool_report *rep = tl_rep(&r, 1);
    assert_true(rep->ratio_min > 0.9999 && rep->ratio_max < 1.0001);
    assert_false(rep->degraded);
    free(slots);
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

/* Three single-OSD hosts and pg_size 3: every PG is {1, 2, 3}. */
static void test_three_hosts_exact(void **state)
{
    (void)state;
    json_t *tree = tl_tree(3, 1, 1.0, 0), *pools = pools_rep(3, 2, 6);
    struct tl_result r;
    tl_solve(tree, pools, NULL, 7, &r);
    assert_int_equal(r.rc, 0);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(r.map, 1);
    uint32_t prim[4] = {0};
    for (uint32_t pg = 0; pg < 6; pg++) {
        const uint32_t *s = vs_pgmap_osd_set(pp, pg);
        assert_int_equal(s[0] + s[1] + s[2], 6);
        assert_int_equal(s[0] * s[1] * s[2], 6);
        prim[pp->pgs[pg].primary]++;
    }
    assert_int_equal(prim[1], 2), assert_int_equal(prim[2], 2), assert_int_equal(prim[3], 2);
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

/* A heavy host is capped: it can hold at most one member of each PG. */
static void test_heavy_host_capped(void **state)
{
    (void)state;
    json_t *tree = tl_tree(3, 1, 1.0, 0), *pools = pools_rep(2, 1, 100);
    json_object_set_new(tl_osd(tree, 1), "weight", json_real(10));
    struct tl_result r;
    tl_solve(tree, pools, NULL, 0, &r);
    assert_int_equal(r.rc, 0);
    uint32_t *slots = tl_slots(vs_pgmap_find(r.map, 1), 3);
    assert_int_equal(slots[1], 100); /* in every PG: its best share */
    assert_int_equal(slots[2], 50), assert_int_equal(slots[3], 50);
    const struct vs_placement_pool_report *rep = tl_rep(&r, 1);
    assert_true(rep->osds[0].best > 99.99 && rep->osds[0].best < 100.01);
    assert_true(rep->osds[0].ideal > 160); /* 200 * 10 / 12: unreachable */
    assert_true(rep->best_ratio_min > 0.999 && rep->best_ratio_max < 1.001);
    free(slots);
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

/* Fewer hosts than pg_size but enough for pg_minsize: a degraded placement. */
static void test_degraded(void **state)
{
    (void)state;
    json_t *tree = tl_tree(2, 2, 1.0, 0), *pools = pools_rep(3, 2, 32);
    struct tl_result r;
    tl_solve(tree, pools, NULL, 0, &r);
    assert_int_equal(r.rc, 0);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(r.map, 1);
    for (uint32_t pg = 0; pg < 32; pg++) {
        const uint32_t *s = vs_pgmap_osd_set(pp, pg);
        assert_true(s[0] && s[1]);
        assert_int_equal(s[2], 0); /* the empty slot */
    }
    tl_check_domains(tree, pp, "host");
    const struct vs_placement_pool_report *rep = tl_rep(&r, 1);
    assert_true(rep->degraded);
    assert_int_equal(rep->empty_slots, 32);
    assert_int_equal(rep->slots_per_pg, 2);
    assert_non_null(strstr(rep->errmsg, "degraded"));
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

static void expect_infeasible(json_t *tree, json_t *pools, const char *reason)
{
    struct tl_result r;
    tl_solve(tree, pools, NULL, 0, &r);
    assert_int_equal(r.rc, VS_EINFEASIBLE);
    assert_non_null(strstr(r.errmsg, "pool 1 (p1)"));
    if (!strstr(r.errmsg, reason))
        fail_msg("'%s' does not say '%s'", r.errmsg, reason);
    assert_int_equal(tl_rep(&r, 1)->rc, VS_EINFEASIBLE);
    assert_null(vs_pgmap_find(r.map, 1)); /* no previous map: nothing to keep */
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

static void test_infeasible(void **state)
{
    (void)state;
    expect_infeasible(tl_tree(2, 2, 1.0, 0), pools_rep(3, 3, 8), "pg_minsize is 3");
    json_t *pool = tl_pool("replicated", 2, 0, 1, 8);
    json_object_set_new(pool, "osd_tags", json_string("nvme"));
    expect_infeasible(tl_tree(2, 2, 1.0, 0), tl_pools1(pool), "osd_tags");
    expect_infeasible(tl_tree(2, 2, 0.0, 0), pools_rep(2, 1, 8), "weight 0");
    json_t *tree = tl_tree(1, 2, 1.0, 0);
    json_object_set_new(tl_osd(tree, 1), "in", json_false());
    json_object_set_new(tl_osd(tree, 2), "in", json_false());
    expect_infeasible(tree, pools_rep(1, 1, 8), "are out");
    pool = tl_pool("replicated", 2, 0, 1, 8);
    json_object_set_new(pool, "root_node", json_string("nowhere"));
    expect_infeasible(tl_tree(2, 2, 1.0, 0), tl_pools1(pool), "root_node 'nowhere'");
    pool = tl_pool("replicated", 2, 0, 2, 8);
    json_object_set_new(pool, "failure_domain", json_string("rack"));
    expect_infeasible(tl_tree(2, 2, 1.0, 1), tl_pools1(pool), "only 1 failure domain (rack)");
    pool = tl_pool("replicated", 2, 0, 1, 8);
    json_object_set_new(pool, "failure_domain", json_string("row"));
    expect_infeasible(tl_tree(2, 2, 1.0, 0), tl_pools1(pool), "'row' is not a level");
    expect_infeasible(json_pack("{}"), pools_rep(2, 1, 8), "no OSDs");
}

/* One infeasible pool does not stop the others, and keeps its previous map. */
static void test_multi_pool_partial(void **state)
{
    (void)state;
    json_t *tree = tl_tree(3, 2, 1.0, 0);
    json_t *pools = json_pack("{s o s o}", "1", tl_pool("replicated", 3, 0, 2, 16), "2",
                              tl_pool("replicated", 2, 0, 1, 16));
    json_object_set_new(json_object_get(pools, "2"), "name", json_string("p2"));
    struct tl_result r1, r2;
    tl_solve(tree, pools, NULL, 0, &r1);
    assert_int_equal(r1.rc, 0);
    /* Pool 1 now needs 4 failure domains (3 exist); pool 2 is fine. */
    json_object_set_new(json_object_get(pools, "1"), "pg_minsize", json_integer(4));
    json_object_set_new(json_object_get(pools, "1"), "pg_size", json_integer(4));
    tl_solve(tree, pools, r1.map, 0, &r2);
    assert_int_equal(r2.rc, VS_EINFEASIBLE);
    assert_non_null(strstr(r2.errmsg, "pool 1 (p1)"));
    assert_int_equal(tl_rep(&r2, 2)->rc, 0);
    const struct vs_pgmap_pool *old1 = vs_pgmap_find(r1.map, 1), *new1 = vs_pgmap_find(r2.map, 1);
    assert_non_null(new1);
    assert_memory_equal(old1->osd_sets, new1->osd_sets, 16 * 3 * sizeof(uint32_t));
    assert_non_null(vs_pgmap_find(r2.map, 2));
    tl_result_free(&r1), tl_result_free(&r2);
    json_decref(tree), json_decref(pools);
}

/* Adding a 13th OSD moves exactly its share; removing one moves about its own. */
static void test_add_remove_osd(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 3, 1.0, 0), *pools = pools_rep(3, 2, 256);
    struct tl_result base, add, rem;
    tl_solve(tree, pools, NULL, 0, &base);
    tl_add_osd(tree, 13, "h0", 1.0);
    tl_solve(tree, pools, base.map, 0, &add);
    assert_int_equal(add.rc, 0);
    const struct vs_placement_pool_report *rep = tl_rep(&add, 1);
    uint32_t moved = tl_moved(vs_pgmap_find(base.map, 1), vs_pgmap_find(add.map, 1), false);
    assert_int_equal(moved, rep->moved_members);
    assert_int_equal(rep->moved_min, 59); /* 768 / 13 = 59.08: the new OSD's share */
    assert_int_equal(moved, 59);
    assert_true(rep->slot_dev_max < 1);
    json_object_del(json_object_get(tree, "osds"), "13");
    json_object_del(json_object_get(tree, "osds"), "5");
    tl_solve(tree, pools, base.map, 0, &rem);
    assert_int_equal(rem.rc, 0);
    moved = tl_moved(vs_pgmap_find(base.map, 1), vs_pgmap_find(rem.map, 1), false);
    assert_true(moved >= 64 && moved * 10 <= 64 * 11);
    uint32_t *slots = tl_slots(vs_pgmap_find(rem.map, 1), 13);
    assert_int_equal(slots[5], 0);
    free(slots);
    tl_check_domains(tree, vs_pgmap_find(rem.map, 1), "host");
    tl_result_free(&base), tl_result_free(&add), tl_result_free(&rem);
    json_decref(tree), json_decref(pools);
}

/* A down OSD keeps its members (no data moves) but takes no new ones and is
 * never primary; an out OSD loses all of them. */
static void test_down_and_out(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 3, 1.0, 0), *pools = pools_rep(3, 2, 128);
    struct tl_result base, down, out;
    tl_solve(tree, pools, NULL, 0, &base);
    json_object_set_new(tl_osd(tree, 4), "up", json_false());
    tl_solve(tree, pools, base.map, 0, &down);
    assert_int_equal(down.rc, 0);
    const struct vs_pgmap_pool *b = vs_pgmap_find(base.map, 1), *d = vs_pgmap_find(down.map, 1);
    assert_int_equal(tl_moved(b, d, false), 0);
    for (uint32_t pg = 0; pg < 128; pg++)
        assert_int_not_equal(d->pgs[pg].primary, 4);
    json_object_set_new(tl_osd(tree, 4), "up", json_true());
    json_object_set_new(tl_osd(tree, 4), "in", json_false());
    tl_solve(tree, pools, base.map, 0, &out);
    uint32_t *slots = tl_slots(vs_pgmap_find(out.map, 1), 12), *before = tl_slots(b, 12);
    assert_int_equal(slots[4], 0);
    uint32_t moved = tl_moved(b, vs_pgmap_find(out.map, 1), false);
    assert_true(moved >= before[4] && moved * 10 <= before[4] * 11);
    free(slots), free(before);
    tl_result_free(&base), tl_result_free(&down), tl_result_free(&out);
    json_decref(tree), json_decref(pools);
}

static bool same_set(const uint32_t *a, const uint32_t *b)
{
    return a[0] + a[1] + a[2] == b[0] + b[1] + b[2] &&
           a[0] * a[1] * a[2] == b[0] * b[1] * b[2] &&
           a[0] * a[0] + a[1] * a[1] + a[2] * a[2] == b[0] * b[0] + b[1] * b[1] + b[2] * b[2];
}

static bool in_history(const struct vs_pgmap_pool *pp, uint32_t pg, const uint32_t *set)
{
    for (uint32_t i = 0; i < pp->pgs[pg].history_count; i++)
        if (same_set(&pp->pgs[pg].history[i * 3], set))
            return true;
    return false;
}

/* Doubling pg_count splits PG p into p and p + n on the same set; halving
 * keeps PG p's set and records the merged PG's set in the history. */
static void test_pg_count_power_of_two(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 3, 1.0, 0), *pools = pools_rep(3, 2, 64);
    struct tl_result base, dbl, half;
    tl_solve(tree, pools, NULL, 0, &base);
    json_object_set_new(json_object_get(pools, "1"), "pg_count", json_integer(128));
    tl_solve(tree, pools, base.map, 0, &dbl);
    assert_int_equal(dbl.rc, 0);
    const struct vs_pgmap_pool *b = vs_pgmap_find(base.map, 1), *d = vs_pgmap_find(dbl.map, 1);
    assert_int_equal(d->pg_count, 128);
    assert_int_equal(tl_rep(&dbl, 1)->moved_members, 0);
    for (uint32_t pg = 0; pg < 128; pg++)
        assert_true(same_set(vs_pgmap_osd_set(d, pg), vs_pgmap_osd_set(b, pg % 64)));
    json_object_set_new(json_object_get(pools, "1"), "pg_count", json_integer(32));
    tl_solve(tree, pools, base.map, 0, &half);
    const struct vs_pgmap_pool *h = vs_pgmap_find(half.map, 1);
    assert_int_equal(h->pg_count, 32);
    for (uint32_t pg = 0; pg < 32; pg++) /* both merged PGs' data is findable */
        for (uint32_t q = pg; q < 64; q += 32)
            assert_true(same_set(vs_pgmap_osd_set(h, pg), vs_pgmap_osd_set(b, q)) ||
                        in_history(h, pg, vs_pgmap_osd_set(b, q)));
    tl_check_domains(tree, h, "host");
    tl_result_free(&base), tl_result_free(&dbl), tl_result_free(&half);
    json_decref(tree), json_decref(pools);
}

/* EC 4+2 over 12 hosts: every chunk keeps its slot across a change unless its
 * OSD changes, and each host holds one chunk per PG. */
static void test_ec_roles_kept(void **state)
{
    (void)state;
    json_t *tree = tl_tree(12, 1, 1.0, 0);
    json_t *pools = tl_pools1(tl_pool("ec", 6, 2, 5, 256));
    struct tl_result base, add;
    tl_solve(tree, pools, NULL, 0, &base);
    assert_int_equal(base.rc, 0);
    uint32_t *slots = tl_slots(vs_pgmap_find(base.map, 1), 12);
    for (uint32_t id = 1; id <= 12; id++)
        assert_int_equal(slots[id], 128);
    free(slots);
    tl_add_osd(tree, 13, NULL, 1.0); /* no host: a failure domain of its own */
    tl_solve(tree, pools, base.map, 0, &add);
    const struct vs_pgmap_pool *b = vs_pgmap_find(base.map, 1), *a = vs_pgmap_find(add.map, 1);
    uint32_t moved = tl_moved(b, a, true);
    assert_int_equal(moved, tl_rep(&add, 1)->moved_members);
    assert_int_equal(moved, tl_rep(&add, 1)->moved_min); /* 1536 / 13 = 118.15 */
    assert_true(moved == 118 || moved == 119);
    for (uint32_t pg = 0; pg < 256; pg++)
        for (uint32_t i = 0; i < 6; i++) {
            uint32_t now = vs_pgmap_osd_set(a, pg)[i];
            assert_true(now == vs_pgmap_osd_set(b, pg)[i] || now == 13);
        }
    tl_check_domains(tree, a, "host");
    tl_result_free(&base), tl_result_free(&add);
    json_decref(tree), json_decref(pools);
}

/* With primary_affinity_tags, primaries are the tagged OSDs when a PG has one. */
static void test_primary_affinity(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 2, 1.0, 0);
    for (uint32_t id = 1; id <= 8; id += 2)
        json_object_set_new(tl_osd(tree, id), "tags", json_pack("[s]", "fast"));
    json_t *pool = tl_pool("replicated", 2, 0, 1, 64);
    json_object_set_new(pool, "primary_affinity_tags", json_pack("[s]", "fast"));
    json_t *pools = tl_pools1(pool);
    struct tl_result r;
    tl_solve(tree, pools, NULL, 0, &r);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(r.map, 1);
    for (uint32_t pg = 0; pg < 64; pg++) {
        const uint32_t *s = vs_pgmap_osd_set(pp, pg);
        bool tagged = (s[0] % 2) || (s[1] % 2);
        assert_true(!tagged || pp->pgs[pg].primary % 2 == 1);
    }
    tl_result_free(&r);
    json_decref(tree), json_decref(pools);
}

/* The same input in another key order and the same seed give the same bytes. */
static void test_deterministic(void **state)
{
    (void)state;
    json_t *tree = tl_tree(6, 2, 1.0, 2), *pools = pools_rep(3, 2, 128);
    json_object_set_new(tl_osd(tree, 3), "weight", json_real(2.5));
    json_t *osds = json_object_get(tree, "osds"), *rev = json_object();
    for (int id = 12; id >= 1; id--) {
        char key[16];
        snprintf(key, sizeof(key), "%d", id);
        json_object_set(rev, key, json_object_get(osds, key));
    }
    json_t *tree2 = json_pack("{sOso}", "nodes", json_object_get(tree, "nodes"), "osds", rev);
    struct tl_result a, b, c;
    tl_solve(tree, pools, NULL, 42, &a);
    tl_solve(tree2, pools, NULL, 42, &b);
    tl_solve(tree, pools, NULL, 43, &c);
    char *da = vs_pgmap_dump(a.map), *db = vs_pgmap_dump(b.map), *dc = vs_pgmap_dump(c.map);
    assert_string_equal(da, db);
    assert_string_not_equal(da, dc); /* the seed varies the layout ... */
    uint32_t *sa = tl_slots(vs_pgmap_find(a.map, 1), 12);
    uint32_t *sc = tl_slots(vs_pgmap_find(c.map, 1), 12);
    assert_memory_equal(sa, sc, 13 * sizeof(uint32_t)); /* ... not the loads */
    free(da), free(db), free(dc), free(sa), free(sc);
    tl_result_free(&a), tl_result_free(&b), tl_result_free(&c);
    json_decref(tree), json_decref(tree2), json_decref(pools);
}

/* A changed PG records its previous set; the monitor clears it when clean. */
static void test_history(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 1, 1.0, 0), *pools = pools_rep(3, 2, 16);
    struct tl_result base, out;
    tl_solve(tree, pools, NULL, 0, &base);
    json_object_set_new(tl_osd(tree, 2), "in", json_false());
    tl_solve(tree, pools, base.map, 0, &out);
    const struct vs_pgmap_pool *b = vs_pgmap_find(base.map, 1), *o = vs_pgmap_find(out.map, 1);
    uint32_t changed = 0;
    for (uint32_t pg = 0; pg < 16; pg++) {
        bool had2 = false;
        for (uint32_t i = 0; i < 3; i++)
            had2 = had2 || vs_pgmap_osd_set(b, pg)[i] == 2;
        assert_int_equal(o->pgs[pg].history_count, had2 ? 1 : 0);
        if (had2)
            assert_memory_equal(o->pgs[pg].history, vs_pgmap_osd_set(b, pg), 12);
        changed += had2;
    }
    assert_int_equal(changed, 12); /* 16 * 3 / 4 */
    for (uint32_t pg = 0; pg < 16; pg++)
        assert_int_equal(vs_pgmap_clear_history(out.map, 1, pg), 0);
    assert_int_equal(vs_pgmap_clear_history(out.map, 1, 16), -ERANGE);
    assert_int_equal(vs_pgmap_clear_history(out.map, 9, 0), VS_ENOPOOL);
    assert_int_equal(vs_pgmap_find(out.map, 1)->pgs[0].history_count, 0);
    tl_result_free(&base), tl_result_free(&out);
    json_decref(tree), json_decref(pools);
}

/* With last_clean, a returning OSD gets its PGs back: movement is measured
 * against where the data is complete, not against a half-recovered map. */
static void test_last_clean(void **state)
{
    (void)state;
    json_t *tree = tl_tree(4, 1, 1.0, 0), *pools = pools_rep(3, 2, 16);
    struct tl_result base, out, back;
    tl_solve(tree, pools, NULL, 0, &base);
    assert_int_equal(vs_pgmap_set_last_clean(base.map, 1), 0);
    json_object_set_new(tl_osd(tree, 2), "in", json_false());
    tl_solve(tree, pools, base.map, 0, &out);
    assert_non_null(vs_pgmap_find(out.map, 1)->last_clean);
    json_object_set_new(tl_osd(tree, 2), "in", json_true());
    tl_solve(tree, pools, out.map, 0, &back);
    assert_int_equal(tl_moved(vs_pgmap_find(base.map, 1), vs_pgmap_find(back.map, 1), false), 0);
    tl_result_free(&base), tl_result_free(&out), tl_result_free(&back);
    json_decref(tree), json_decref(pools);
}

/* GLPK reports internal errors through a hook and would then abort; the
 * hook must turn them into -EIO, and GLPK must work again afterwards. */
static void test_glpk_error_is_eio(void **state)
{
    (void)state;
    double row_ub[1] = {3}, col_ub[2] = {2, 2}, obj[2] = {1, 2}, x[2] = {-1, -1};
    uint32_t col_start[3] = {0, 1, 2}, row_of[2] = {0, 7}; /* row 7 does not exist */
    struct pl_lpmodel m = {.rows = 1, .cols = 2, .row_ub = row_ub, .col_ub = col_ub,
                           .obj = obj, .col_start = col_start, .row_of = row_of};
    assert_int_equal(placement__glpk_solve(&m, x), -EIO);
    row_of[1] = 0; /* max x0 + 2 x1, x0 + x1 <= 3, 0 <= x <= 2: x = (1, 2) */
    assert_int_equal(placement__glpk_solve(&m, x), 0);
    assert_true(x[0] > 0.999 && x[0] < 1.001 && x[1] > 1.999 && x[1] < 2.001);
    m.cols = 0; /* an empty program is solved without GLPK */
    assert_int_equal(placement__glpk_solve(&m, x), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uniform_12),
        cmocka_unit_test(test_three_hosts_exact),
        cmocka_unit_test(test_heavy_host_capped),
        cmocka_unit_test(test_degraded),
        cmocka_unit_test(test_infeasible),
        cmocka_unit_test(test_multi_pool_partial),
        cmocka_unit_test(test_add_remove_osd),
        cmocka_unit_test(test_down_and_out),
        cmocka_unit_test(test_pg_count_power_of_two),
        cmocka_unit_test(test_ec_roles_kept),
        cmocka_unit_test(test_primary_affinity),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_last_clean),
        cmocka_unit_test(test_glpk_error_is_eio),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
