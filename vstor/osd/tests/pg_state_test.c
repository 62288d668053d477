/* SPDX-License-Identifier: GPL-3.0-or-later */
/* pg_state: every edge of the transition table, and the reported words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pg_state.h"

/* The edges docs/data-path.md §3 and the diagram in pg_state.h allow. */
static const struct {
    enum vs_pg_state from, to;
} edges[] = {
    {VS_PG_OFFLINE, VS_PG_STARTING},     {VS_PG_STARTING, VS_PG_PEERING},
    {VS_PG_STARTING, VS_PG_STOPPING},    {VS_PG_PEERING, VS_PG_ACTIVE},
    {VS_PG_PEERING, VS_PG_INCOMPLETE},   {VS_PG_PEERING, VS_PG_REPEERING},
    {VS_PG_PEERING, VS_PG_STOPPING},     {VS_PG_INCOMPLETE, VS_PG_REPEERING},
    {VS_PG_INCOMPLETE, VS_PG_STOPPING},  {VS_PG_ACTIVE, VS_PG_REPEERING},
    {VS_PG_ACTIVE, VS_PG_STOPPING},      {VS_PG_REPEERING, VS_PG_PEERING},
    {VS_PG_REPEERING, VS_PG_STOPPING},   {VS_PG_STOPPING, VS_PG_OFFLINE},
};

static bool listed(enum vs_pg_state a, enum vs_pg_state b)
{
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++)
        if (edges[i].from == a && edges[i].to == b)
            return true;
    return false;
}

static void test_table_is_exactly_the_diagram(void **state)
{
    (void)state;
    for (int a = 0; a < VS_PG_STATE_COUNT; a++)
        for (int b = 0; b < VS_PG_STATE_COUNT; b++)
            assert_int_equal(vs_pg_state_allowed(a, b), listed(a, b));
    assert_false(vs_pg_state_allowed(VS_PG_STATE_COUNT, VS_PG_OFFLINE));
    assert_false(vs_pg_state_allowed(VS_PG_OFFLINE, (enum vs_pg_state)99));
}

static void test_every_state_can_stop_and_only_active_serves(void **state)
{
    (void)state;
    for (int s = VS_PG_STARTING; s < VS_PG_STATE_COUNT; s++)
        if (s != VS_PG_STOPPING)
            assert_true(vs_pg_state_allowed(s, VS_PG_STOPPING));
    /* No path leads from a non-active state to ACTIVE except through PEERING. */
    for (int s = 0; s < VS_PG_STATE_COUNT; s++)
        if (s != VS_PG_PEERING)
            assert_false(vs_pg_state_allowed(s, VS_PG_ACTIVE));
    /* STOPPING ends only in OFFLINE; OFFLINE only starts. */
    for (int s = 0; s < VS_PG_STATE_COUNT; s++) {
        assert_int_equal(vs_pg_state_allowed(VS_PG_STOPPING, s), s == VS_PG_OFFLINE);
        assert_int_equal(vs_pg_state_allowed(VS_PG_OFFLINE, s), s == VS_PG_STARTING);
    }
}

static void test_flags_only_when_active(void **state)
{
    (void)state;
    assert_true(vs_pg_flags_valid(VS_PG_ACTIVE, VS_PGF_DEGRADED | VS_PGF_HAS_MISPLACED));
    assert_true(vs_pg_flags_valid(VS_PG_PEERING, 0));
    assert_false(vs_pg_flags_valid(VS_PG_PEERING, VS_PGF_DEGRADED));
    assert_false(vs_pg_flags_valid(VS_PG_ACTIVE, 1u << 20));
    assert_true(vs_pg_is_clean(VS_PG_ACTIVE, 0));
    assert_false(vs_pg_is_clean(VS_PG_ACTIVE, VS_PGF_HAS_DEGRADED));
    assert_false(vs_pg_is_clean(VS_PG_INCOMPLETE, 0));
}

static void test_words(void **state)
{
    (void)state;
    const char *w[VS_PG_WORDS_MAX];
    assert_int_equal(vs_pg_state_words(VS_PG_ACTIVE, 0, w), 1);
    assert_string_equal(w[0], "active");
    unsigned n = vs_pg_state_words(VS_PG_ACTIVE, VS_PGF_MASK, w);
    assert_int_equal(n, 6);
    assert_string_equal(w[1], "degraded");
    assert_string_equal(w[2], "has_degraded");
    assert_string_equal(w[3], "has_misplaced");
    assert_string_equal(w[4], "has_incomplete");
    assert_string_equal(w[5], "has_unclean");
    assert_int_equal(vs_pg_state_words(VS_PG_INCOMPLETE, 0, w), 1);
    assert_string_equal(w[0], "incomplete");
    assert_string_equal(vs_pg_state_name((enum vs_pg_state)42), "?");
    for (int s = 0; s < VS_PG_STATE_COUNT; s++)
        assert_string_not_equal(vs_pg_state_name(s), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_exactly_the_diagram),
        cmocka_unit_test(test_every_state_can_stop_and_only_active_serves),
        cmocka_unit_test(test_flags_only_when_active),
        cmocka_unit_test(test_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
