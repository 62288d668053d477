/* SPDX-License-Identifier: GPL-3.0-or-later */
/* pg_calc: known cases exactly, then random write histories checked against
 * the rules of pg_calc.h (no acknowledged write is ever rolled back). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "pg_calc.h"

#define E(ino, str, ver, o, st) {.inode = (ino), .stripe = (str), .version = (ver), .osd = (o), \
                                 .stable = (st)}

static struct vs_pg_layout repl3(uint32_t a, uint32_t b, uint32_t c)
{
    struct vs_pg_layout l = {.pg_size = 3, .pg_data_size = 1, .ec = false};
    l.cur_set[0] = a, l.cur_set[1] = b, l.cur_set[2] = c;
    return l;
}

static struct vs_pg_layout ec21(uint32_t a, uint32_t b, uint32_t c)
{
    struct vs_pg_layout l = repl3(a, b, c);
    l.pg_data_size = 2;
    l.ec = true;
    return l;
}

static void test_all_clean(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 0, 7, 1, 1), E(5, 0, 7, 2, 1), E(5, 0, 7, 3, 1),
                                E(5, 0x20000, 3, 3, 1), E(5, 0x20000, 3, 1, 1),
                                E(5, 0x20000, 3, 2, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 6, &r), 0);
    assert_int_equal(r.object_count, 2);
    assert_int_equal(r.clean_count, 2);
    assert_int_equal(r.obj_count, 0);
    assert_int_equal(r.action_count, 0);
    assert_int_equal(r.flags, 0);
    vs_pg_calc_free(&r);
}

static void test_replica_stale_is_degraded(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 0, 2, 1, 1), E(5, 0, 2, 2, 1), E(5, 0, 1, 3, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 3, &r), 0);
    assert_int_equal(r.degraded_count, 1);
    assert_int_equal(r.obj_count, 1);
    assert_int_equal(r.objs[0].target_version, 2);
    assert_int_equal(r.objs[0].state, VS_OBJ_DEGRADED);
    assert_true(r.flags & VS_PGC_HAS_DEGRADED);
    assert_int_equal(r.objs[0].loc_count, 3);
    int outdated = 0;
    for (uint32_t i = 0; i < r.objs[0].loc_count; i++)
        if (r.locs[r.objs[0].loc_first + i].outdated) {
            outdated++;
            assert_int_equal(r.locs[r.objs[0].loc_first + i].osd, 3);
        }
    assert_int_equal(outdated, 1);
    vs_pg_calc_free(&r);
}

static void test_missing_osd_shrinks_set(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 0); /* OSD of slot 2 is down */
    struct vs_listed_obj e[] = {E(5, 0, 2, 1, 1), E(5, 0, 2, 2, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), 0);
    assert_int_equal(r.clean_count, 1);
    vs_pg_calc_free(&r);
}

static void test_copy_outside_set_is_misplaced(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 0, 2, 1, 1), E(5, 0, 2, 2, 1), E(5, 0, 2, 4, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 3, &r), 0);
    assert_int_equal(r.misplaced_count, 1);
    assert_int_equal(r.objs[0].state, VS_OBJ_MISPLACED);
    assert_true(r.flags & VS_PGC_HAS_MISPLACED);
    vs_pg_calc_free(&r);
}

static void test_ec_recoverable_unstable_is_kept(void **state)
{
    (void)state;
    struct vs_pg_layout l = ec21(1, 2, 3);
    /* v5 committed everywhere; v6 reached roles 0 and 1 only (k=2): recoverable. */
    struct vs_listed_obj e[] = {E(9, 0x40000 | 0, 5, 1, 1), E(9, 0x40000 | 1, 5, 2, 1),
                                E(9, 0x40000 | 2, 5, 3, 1), E(9, 0x40000 | 0, 6, 1, 0),
                                E(9, 0x40000 | 1, 6, 2, 0)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 5, &r), 0);
    assert_int_equal(r.obj_count, 1);
    assert_int_equal(r.objs[0].target_version, 6);
    assert_int_equal(r.objs[0].stripe, 0x40000);
    assert_true(r.objs[0].state & VS_OBJ_NEEDS_STABLE);
    assert_true(r.objs[0].state & VS_OBJ_DEGRADED); /* role 2 still holds v5 */
    assert_int_equal(r.action_count, 2);
    for (size_t i = 0; i < r.action_count; i++) {
        assert_int_equal(r.actions[i].kind, VS_FLUSH_STABILIZE);
        assert_int_equal(r.actions[i].version, 6);
        assert_int_equal(r.actions[i].stripe & VS_ROLE_MASK, r.actions[i].osd - 1);
    }
    vs_pg_calc_free(&r);
}

static void test_ec_torn_write_rolls_back(void **state)
{
    (void)state;
    struct vs_pg_layout l = ec21(1, 2, 3);
    struct vs_listed_obj e[] = {E(9, 0, 5, 1, 1), E(9, 1, 5, 2, 1), E(9, 2, 5, 3, 1),
                                E(9, 0, 6, 1, 0)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 4, &r), 0);
    assert_int_equal(r.obj_count, 1);
    assert_int_equal(r.objs[0].target_version, 5);
    assert_int_equal(r.objs[0].state, VS_OBJ_NEEDS_ROLLBACK);
    assert_int_equal(r.action_count, 1);
    assert_int_equal(r.actions[0].kind, VS_FLUSH_ROLLBACK);
    assert_int_equal(r.actions[0].osd, 1);
    assert_int_equal(r.actions[0].version, 5);
    assert_true(r.flags & VS_PGC_HAS_UNCLEAN);
    assert_false(r.flags & VS_PGC_HAS_DEGRADED);
    vs_pg_calc_free(&r);
}

static void test_ec_new_object_all_torn(void **state)
{
    (void)state;
    struct vs_pg_layout l = ec21(1, 2, 3);
    struct vs_listed_obj e[] = {E(9, 2, 1, 3, 0)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 1, &r), 0);
    assert_int_equal(r.objs[0].target_version, 0);
    assert_int_equal(r.actions[0].kind, VS_FLUSH_ROLLBACK);
    assert_int_equal(r.actions[0].version, 0);
    assert_int_equal(r.incomplete_count, 0);
    vs_pg_calc_free(&r);
}

static void test_ec_incomplete(void **state)
{
    (void)state;
    struct vs_pg_layout l = ec21(1, 0, 0);
    struct vs_listed_obj e[] = {E(9, 0, 5, 1, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 1, &r), 0);
    assert_int_equal(r.incomplete_count, 1);
    assert_int_equal(r.objs[0].state, VS_OBJ_INCOMPLETE);
    assert_true(r.flags & VS_PGC_HAS_INCOMPLETE);
    vs_pg_calc_free(&r);
}

static void test_tombstone_outdated_copy(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 0, 7, 1, 1), E(5, 0, 7, 2, 1), E(5, 0, 6, 3, 1)};
    e[0].deleted = e[1].deleted = 1;
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 3, &r), 0);
    assert_int_equal(r.obj_count, 1);
    assert_true(r.objs[0].target_deleted);
    assert_int_equal(r.objs[0].state, VS_OBJ_MISPLACED);
    assert_int_equal(r.objs[0].loc_count, 1);
    assert_int_equal(r.locs[r.objs[0].loc_first].osd, 3);
    assert_int_equal(r.locs[r.objs[0].loc_first].outdated, 1);
    /* A tombstone everyone agrees on is clean. */
    e[2].version = 7;
    e[2].deleted = 1;
    vs_pg_calc_free(&r);
    assert_int_equal(vs_pg_calc(&l, e, 3, &r), 0);
    assert_int_equal(r.clean_count, 1);
    vs_pg_calc_free(&r);
}

static void test_invalid_roles_and_layouts(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 1, 7, 1, 1), E(6, 0, 7, 1, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), 0);
    assert_int_equal(r.invalid_count, 1);
    assert_true(r.flags & VS_PGC_HAS_INVALID);
    vs_pg_calc_free(&r);
    struct vs_pg_layout e21 = ec21(1, 2, 3);
    struct vs_listed_obj bad[] = {E(5, 3, 7, 1, 1)}; /* role 3 in a 3-slot PG */
    assert_int_equal(vs_pg_calc(&e21, bad, 1, &r), 0);
    assert_int_equal(r.invalid_count, 1);
    vs_pg_calc_free(&r);
    l.pg_size = 0;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), -EINVAL);
    l = repl3(1, 2, 3);
    l.pg_data_size = 4;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), -EINVAL);
    l.pg_size = VS_PG_SIZE_MAX + 1;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), -EINVAL);
    assert_int_equal(vs_pg_calc(&e21, NULL, 0, &r), 0);
    assert_int_equal(r.object_count, 0);
    vs_pg_calc_free(&r);
}

static void test_epoch(void **state)
{
    (void)state;
    struct vs_pg_layout l = repl3(1, 2, 3);
    struct vs_listed_obj e[] = {E(5, 0, (7ull << 16) | 3, 1, 1), E(6, 0, (9ull << 16) | 1, 2, 1)};
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, 2, &r), 0);
    assert_int_equal(r.max_epoch, 9);
    vs_pg_calc_free(&r);
}

/* --- random histories ---------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(uint32_t n)
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)((rng_state >> 33) % n);
}

/* One object in a PG of `size` slots on OSDs 1..size. Each step writes version
 * v to some slots. An acknowledged step reached every slot of the set (the
 * primary acks only then); a torn step reached a random subset and the
 * primary died. For EC an acked write is stabilized; a torn one stays
 * unstable. Each slot keeps the versions it holds. */
struct sim {
    uint64_t held[VS_PG_SIZE_MAX][16];
    uint8_t stable[VS_PG_SIZE_MAX][16];
    int nheld[VS_PG_SIZE_MAX];
};

static void run_history(bool ec, uint32_t size, uint32_t k)
{
    struct sim s;
    memset(&s, 0, sizeof(s));
    uint64_t acked = 0, version = 0;
    int steps = 1 + (int)rnd(8);
    for (int st = 0; st < steps; st++) {
        version++;
        bool torn = rnd(3) == 0;
        for (uint32_t slot = 0; slot < size; slot++) {
            if (torn && rnd(2))
                continue;
            int n = s.nheld[slot]++;
            s.held[slot][n] = version;
            s.stable[slot][n] = !ec || !torn;
        }
        if (!torn)
            acked = version;
        else if (!ec)
            (void)0; /* replicated torn writes are stable where they landed */
    }
    struct vs_listed_obj e[VS_PG_SIZE_MAX * 16];
    size_t n = 0;
    struct vs_pg_layout l = {.pg_size = size, .pg_data_size = ec ? k : 1, .ec = ec};
    for (uint32_t slot = 0; slot < size; slot++) {
        l.cur_set[slot] = slot + 1;
        for (int i = 0; i < s.nheld[slot]; i++)
            e[n++] = (struct vs_listed_obj){.inode = 1, .stripe = ec ? slot : 0,
                                            .version = s.held[slot][i], .osd = slot + 1,
                                            .stable = s.stable[slot][i]};
    }
    struct vs_pg_calc_result r;
    assert_int_equal(vs_pg_calc(&l, e, n, &r), 0);
    uint64_t target = r.obj_count ? r.objs[0].target_version : 0;
    if (r.obj_count == 0 && n > 0) {
        /* clean: every slot holds the same newest version */
        target = s.held[0][s.nheld[0] - 1];
    }
    /* Rule: no acknowledged write is lost. */
    assert_true(target >= acked);
    for (size_t i = 0; i < r.action_count; i++) {
        if (r.actions[i].kind == VS_FLUSH_ROLLBACK)
            assert_true(r.actions[i].version >= acked);
    }
    /* The target was really written, and is readable (k roles hold it). */
    if (target) {
        uint32_t holders = 0;
        for (uint32_t slot = 0; slot < size; slot++)
            for (int i = 0; i < s.nheld[slot]; i++)
                holders += s.held[slot][i] == target;
        assert_true(holders >= (ec ? k : 1));
    }
    /* Clean exactly when every slot's newest version is the target and stable. */
    bool all_good = n > 0;
    for (uint32_t slot = 0; slot < size; slot++) {
        int last = s.nheld[slot] - 1;
        all_good = all_good && last >= 0 && s.held[slot][last] == target && s.stable[slot][last];
    }
    assert_int_equal(r.clean_count == 1, all_good);
    vs_pg_calc_free(&r);
}

static void test_random_histories(void **state)
{
    (void)state;
    rng_state = 42;
    for (int i = 0; i < 20000; i++) {
        if (rnd(2))
            run_history(false, 1 + rnd(5), 1);
        else {
            uint32_t size = 2 + rnd(7);
            run_history(true, size, 1 + rnd(size - 1));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_clean),
        cmocka_unit_test(test_replica_stale_is_degraded),
        cmocka_unit_test(test_missing_osd_shrinks_set),
        cmocka_unit_test(test_copy_outside_set_is_misplaced),
        cmocka_unit_test(test_ec_recoverable_unstable_is_kept),
        cmocka_unit_test(test_ec_torn_write_rolls_back),
        cmocka_unit_test(test_ec_new_object_all_torn),
        cmocka_unit_test(test_ec_incomplete),
        cmocka_unit_test(test_tombstone_outdated_copy),
        cmocka_unit_test(test_invalid_roles_and_layouts),
        cmocka_unit_test(test_epoch),
        cmocka_unit_test(test_random_histories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
