/* SPDX-License-Identifier: GPL-3.0-or-later */
/* osd_rules: version assignment (D1/D2), activation epochs (D6), the PG
 * history document and the activation check with its split-brain guard. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "osd_rules.h"
#include "vs_err.h"

#define V(e, c) (((uint64_t)(e) << VS_VERSION_EPOCH_SHIFT) | (c))

static void test_next_version(void **state)
{
    (void)state;
    uint64_t v = 0;
    assert_int_equal(vs_osd_next_version(0, 0, &v), 0); /* a new PG, a new object */
    assert_int_equal(v, V(0, 1));
    assert_int_equal(vs_osd_next_version(V(3, 7), 3, &v), 0);
    assert_int_equal(v, V(3, 8));
    assert_int_equal(vs_osd_next_version(V(3, 7), 5, &v), 0); /* a later interval wins */
    assert_int_equal(v, V(5, 1));
    assert_true(v > V(3, VS_VERSION_COUNTER_MAX));
    assert_int_equal(vs_osd_next_version(0, 9, &v), 0);
    assert_int_equal(v, V(9, 1));
    assert_int_equal(vs_osd_next_version(V(4, 1), 3, &v), VS_ESTALEEPOCH);
    assert_int_equal(vs_osd_next_version(V(3, VS_VERSION_COUNTER_MAX), 3, &v), -EOVERFLOW);
    assert_int_equal(vs_osd_next_version(V(3, VS_VERSION_COUNTER_MAX - 1), 3, &v), 0);
    assert_int_equal(v, V(3, VS_VERSION_COUNTER_MAX));
    assert_int_equal(vs_osd_next_version(0, VS_PG_EPOCH_MAX, &v), 0);
    assert_int_equal(VS_VERSION_EPOCH(v), VS_PG_EPOCH_MAX);
}

/* Any sequence of writes and epoch bumps yields strictly increasing versions. */
static void test_versions_increase(void **state)
{
    (void)state;
    uint64_t cur = 0, epoch = 0;
    srandom(3);
    for (int i = 0; i < 300000; i++) {
        if (random() % 1000 == 0)
            assert_int_equal(vs_pg_next_epoch(epoch, VS_VERSION_EPOCH(cur), true, &epoch), 0);
        uint64_t next;
        int rc = vs_osd_next_version(cur, epoch, &next);
        if (rc == -EOVERFLOW) {
            assert_int_equal(vs_pg_next_epoch(epoch, 0, true, &epoch), 0);
            assert_int_equal(vs_osd_next_version(cur, epoch, &next), 0);
        } else {
            assert_int_equal(rc, 0);
        }
        assert_true(next > cur);
        assert_int_equal(VS_VERSION_EPOCH(next), epoch);
        cur = next;
    }
}

static void test_next_epoch(void **state)
{
    (void)state;
    uint64_t e;
    assert_int_equal(vs_pg_next_epoch(4, 2, false, &e), 0);
    assert_int_equal(e, 4);
    assert_int_equal(vs_pg_next_epoch(4, 9, false, &e), 0); /* listings saw a newer epoch */
    assert_int_equal(e, 9);
    assert_int_equal(vs_pg_next_epoch(4, 9, true, &e), 0);
    assert_int_equal(e, 10);
    assert_int_equal(vs_pg_next_epoch(VS_PG_EPOCH_MAX, 0, true, &e), -EOVERFLOW);
    assert_int_equal(vs_pg_next_epoch(VS_PG_EPOCH_MAX, 0, false, &e), 0);
}

static void test_history_roundtrip(void **state)
{
    (void)state;
    struct vs_pg_history h;
    char err[128];
    const char *in = "{\"epoch\": 12, \"osd_sets\": [[1, 2, 0], [4, 5, 6]], "
                     "\"all_peers\": [1, 2, 7], \"extra\": true}";
    assert_int_equal(vs_pg_history_parse(in, strlen(in), &h, err, sizeof(err)), 0);
    assert_int_equal(h.epoch, 12);
    assert_int_equal(h.set_count, 2);
    assert_int_equal(h.set_size[0], 3);
    assert_int_equal(h.sets[0][2], 0);
    assert_int_equal(h.sets[1][0], 4);
    assert_int_equal(h.peer_count, 3);
    char *out = vs_pg_history_dump(&h);
    assert_string_equal(out, "{\"epoch\":12,\"osd_sets\":[[1,2,0],[4,5,6]],\"all_peers\":[1,2,7]}");
    struct vs_pg_history h2;
    assert_int_equal(vs_pg_history_parse(out, strlen(out), &h2, err, sizeof(err)), 0);
    assert_memory_equal(&h, &h2, sizeof(h));
    free(out);
    assert_int_equal(vs_pg_history_parse("{}", 2, &h, err, sizeof(err)), 0);
    assert_int_equal(h.epoch, 0);
    assert_int_equal(h.set_count, 0);
    assert_int_equal(h.superseded_count, 0);
    /* superseded: kept through a round trip, written only when non-empty */
    const char *sup = "{\"epoch\": 3, \"all_peers\": [1, 2], \"superseded\": [5, 9, 5]}";
    assert_int_equal(vs_pg_history_parse(sup, strlen(sup), &h, err, sizeof(err)), 0);
    assert_int_equal(h.superseded_count, 2);
    out = vs_pg_history_dump(&h);
    assert_string_equal(out, "{\"epoch\":3,\"osd_sets\":[],\"all_peers\":[1,2],"
                             "\"superseded\":[5,9]}");
    assert_int_equal(vs_pg_history_parse(out, strlen(out), &h2, err, sizeof(err)), 0);
    assert_memory_equal(&h, &h2, sizeof(h));
    free(out);
    assert_true(vs_pg_history_is_superseded(&h, 9));
    assert_true(vs_pg_history_unsupersede(&h, 5));
    assert_false(vs_pg_history_unsupersede(&h, 5));
    assert_false(vs_pg_history_is_superseded(&h, 5));
    assert_int_equal(h.superseded_count, 1);
}

static void test_history_rejects(void **state)
{
    (void)state;
    struct vs_pg_history h;
    char err[128];
    const char *bad[] = {
        "[1]", "{\"epoch\": -1}", "{\"epoch\": 281474976710656}", "{\"epoch\": \"x\"}",
        "{\"osd_sets\": 3}", "{\"osd_sets\": [[]]}", "{\"osd_sets\": [[1, -2]]}",
        "{\"osd_sets\": [3]}", "{\"all_peers\": [0]}", "{\"all_peers\": {}}", "{",
        "{\"superseded\": [0]}", "{\"superseded\": 4}", "{\"superseded\": [-1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(vs_pg_history_parse(bad[i], strlen(bad[i]), &h, err, sizeof(err)),
                         -EINVAL);
        assert_true(strlen(err) > 0);
    }
}

static void test_history_sets_and_clear(void **state)
{
    (void)state;
    struct vs_pg_history h;
    memset(&h, 0, sizeof(h));
    uint32_t s1[] = {1, 2, 0}, s2[] = {1, 2, 3};
    assert_int_equal(vs_pg_history_add_set(&h, s1, 3), 1);
    assert_int_equal(vs_pg_history_add_set(&h, s1, 3), 0);
    assert_int_equal(vs_pg_history_add_set(&h, s2, 3), 1);
    assert_int_equal(h.peer_count, 3); /* 1, 2, 3: the empty slot is no peer */
    for (uint32_t i = 0; i < VS_PG_HISTORY_SETS_MAX - 2; i++) {
        uint32_t s[] = {10 + i};
        assert_int_equal(vs_pg_history_add_set(&h, s, 1), 1);
    }
    uint32_t more[] = {99};
    assert_int_equal(vs_pg_history_add_set(&h, more, 1), -ENOSPC);
    h.epoch = 5;
    uint32_t target[] = {4, 0, 6};
    assert_int_equal(vs_pg_history_add_peer(&h, 6), 1);
    assert_int_equal(vs_pg_history_supersede(&h, 77), 1); /* from an earlier clean */
    vs_pg_history_clear(&h, target, 3);
    assert_int_equal(h.set_count, 0);
    assert_int_equal(h.peer_count, 2);
    assert_int_equal(h.peers[0], 4);
    assert_int_equal(h.peers[1], 6);
    assert_int_equal(h.epoch, 5);
    /* Every OSD the history named outside the target is superseded now. */
    assert_int_equal(h.superseded_count, 1 + 3 + VS_PG_HISTORY_SETS_MAX - 2); /* 77, 1-3, 10.. */
    assert_true(vs_pg_history_is_superseded(&h, 77));
    assert_true(vs_pg_history_is_superseded(&h, 1));
    assert_true(vs_pg_history_is_superseded(&h, 39));
    assert_false(vs_pg_history_is_superseded(&h, 6));
    assert_false(vs_pg_history_is_superseded(&h, 4));
}

static const char *check(const uint32_t *cur, uint32_t minsize, const uint32_t *reach,
                         uint32_t nreach, const uint32_t *hist, uint32_t hsize)
{
    static char buf[256];
    const uint32_t *sets[1] = {hist};
    uint32_t sizes[1] = {hsize};
    struct vs_pg_activation a = {.cur_set = cur, .pg_size = 3, .pg_minsize = minsize,
                                 .pg_data_size = 1, .reachable = reach,
                                 .reachable_count = nreach, .hist_sets = sets,
                                 .hist_sizes = sizes, .hist_count = hist ? 1 : 0};
    return vs_pg_why_incomplete(&a, buf, sizeof(buf));
}

static void test_activation_check(void **state)
{
    (void)state;
    uint32_t full[] = {1, 2, 3}, two[] = {1, 2, 0}, one[] = {1, 0, 0};
    uint32_t r123[] = {1, 2, 3}, r12[] = {1, 2}, r1[] = {1};
    assert_null(check(full, 2, r123, 3, NULL, 0));
    assert_null(check(two, 2, r12, 2, NULL, 0));
    assert_non_null(strstr(check(one, 2, r1, 1, NULL, 0), "pg_minsize is 2"));
    assert_null(check(one, 1, r1, 1, NULL, 0));
    /* Split brain: the PG ran on OSD 2 alone; OSD 1 alone must not activate. */
    uint32_t ran_on_2[] = {0, 2, 0};
    const char *why = check(one, 1, r1, 1, ran_on_2, 3);
    assert_non_null(why);
    assert_non_null(strstr(why, "[0,2,0]"));
    /* ... but it may once OSD 2 is reachable again. */
    assert_null(check(two, 1, r12, 2, ran_on_2, 3));
    /* A history set with no member at all demands nothing. */
    uint32_t empty[] = {0, 0, 0};
    assert_null(check(one, 1, r1, 1, empty, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next_version),
        cmocka_unit_test(test_versions_increase),
        cmocka_unit_test(test_next_epoch),
        cmocka_unit_test(test_history_roundtrip),
        cmocka_unit_test(test_history_rejects),
        cmocka_unit_test(test_history_sets_and_clear),
        cmocka_unit_test(test_activation_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
