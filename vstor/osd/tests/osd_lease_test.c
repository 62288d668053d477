/* SPDX-License-Identifier: GPL-3.0-or-later */
/* osd_lease: the read lease arithmetic (R1, R4-R6) and the lock-move rule of
 * PG lock #2 (L2, R3), and a model check of why they hold: over random
 * delays, clock offsets and clock rates, the old primary's last local read
 * ends before the new primary activates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "osd_lease.h"

static void test_arithmetic(void **state)
{
    (void)state;
    assert_int_equal(vs_read_lease_ms(10000), 5000); /* R1: ttl / 2 */
    assert_int_equal(vs_read_lease_ms(1000), 500);
    /* R4: valid while acked + L - L/10 > now; never without an answer. */
    assert_false(vs_read_lease_valid(0, 5000, 1));
    assert_true(vs_read_lease_valid(1000, 5000, 1000));
    assert_true(vs_read_lease_valid(1000, 5000, 5499));
    assert_false(vs_read_lease_valid(1000, 5000, 5500));
    assert_false(vs_read_lease_valid(1000, 5000, 90000));
    /* R5: renewed at a third of L, never every 0 ms. */
    assert_int_equal(vs_read_lease_renew_ms(5000), 1666);
    assert_int_equal(vs_read_lease_renew_ms(2), 1);
    /* R6: + a tenth, rounded up; no wait, no delay. */
    assert_int_equal(vs_lease_activate_at(100, 0), 100);
    assert_int_equal(vs_lease_activate_at(100, 1000), 1200);
    assert_int_equal(vs_lease_activate_at(100, 1), 102);
}

#define L 5000
#define STARTED 1000 /* the granting OSD started at 1000: grants wait until 6000 */

static struct vs_lock2_decision decide(const struct vs_lock2_view *v, uint32_t who,
                                       uint64_t rev, uint64_t now)
{
    return vs_lock2_decide(v, who, rev, L, STARTED, now);
}

static void test_lock_move_rule(void **state)
{
    (void)state;
    struct vs_lock2_view none = {0};
    /* Free: granted; within L of our start every grant waits for it (R3). */
    struct vs_lock2_decision d = decide(&none, 2, 7, 2000);
    assert_true(d.grant);
    assert_false(d.close_old || d.stop_own);
    assert_int_equal(d.wait_ms, 4000);
    d = decide(&none, 2, 7, 60000);
    assert_true(d.grant);
    assert_int_equal(d.wait_ms, 0);
    /* Held by osd.1 through a connection, last frame at 59000 (lease until 64000). */
    struct vs_lock2_view held = {.present = true, .holder = 1, .held = true, .map_rev = 7,
                                 .lease_until_ms = 64000};
    d = decide(&held, 1, 7, 60000); /* the same OSD again: no wait, nothing closed */
    assert_true(d.grant);
    assert_false(d.close_old);
    assert_int_equal(d.wait_ms, 0);
    d = decide(&held, 2, 7, 60000); /* L2: an equal map revision does not move it */
    assert_false(d.grant);
    d = decide(&held, 2, 6, 60000);
    assert_false(d.grant);
    d = decide(&held, 2, 8, 60000); /* R3: moved, the old one closed, wait its lease */
    assert_true(d.grant);
    assert_true(d.close_old);
    assert_false(d.stop_own);
    assert_int_equal(d.wait_ms, 4000);
    assert_int_equal(d.prior_until_ms, 64000);
    /* osd.2 asks again (its peering restarted) a second later: it still waits
     * for osd.1's lease, and so does osd.3 taking the lock from osd.2. */
    struct vs_lock2_view moved = {.present = true, .holder = 2, .held = true, .map_rev = 8,
                                  .lease_until_ms = 66000, .prior_until_ms = 64000};
    d = decide(&moved, 2, 8, 61000);
    assert_true(d.grant);
    assert_false(d.close_old);
    assert_int_equal(d.wait_ms, 3000);
    assert_int_equal(d.prior_until_ms, 64000);
    d = decide(&moved, 3, 9, 62000);
    assert_true(d.grant && d.close_old);
    assert_int_equal(d.wait_ms, 4000); /* osd.2's own lease, the longer one */
    assert_int_equal(d.prior_until_ms, 66000);
    /* osd.2 stopped and let go (UNLOCK): held by no one (holder 0), osd.1's
     * lease still counts for the next one. */
    struct vs_lock2_view let_go = {.present = true, .prior_until_ms = 64000};
    d = decide(&let_go, 3, 1, 62500);
    assert_true(d.grant);
    assert_false(d.close_old || d.stop_own);
    assert_int_equal(d.wait_ms, 1500);
    d = decide(&held, 2, 8, 70000); /* a silent holder: its lease ran out */
    assert_true(d.grant && d.close_old);
    assert_int_equal(d.wait_ms, 0);
    /* Released (its connection went down): any revision takes it, the lease
     * still counts, and there is nothing to close. */
    struct vs_lock2_view rel = held;
    rel.held = false;
    d = decide(&rel, 2, 3, 61000);
    assert_true(d.grant);
    assert_false(d.close_old);
    assert_int_equal(d.wait_ms, 3000);
    /* Our own PG (L4): refused to an older or equal map; a newer one stops
     * our PG first and needs no wait for it. */
    struct vs_lock2_view own = {.present = true, .holder = 3, .held = true, .self = true,
                                .map_rev = 9};
    assert_false(decide(&own, 1, 9, 60000).grant);
    d = decide(&own, 1, 10, 60000);
    assert_true(d.grant && d.stop_own);
    assert_false(d.close_old);
    assert_int_equal(d.wait_ms, 0);
    d = decide(&own, 1, 10, 3000); /* ...but a young OSD's start still counts */
    assert_int_equal(d.wait_ms, 3000);
}

/* ---- Model check -------------------------------------------------------------- */

struct clk {
    double rate, off; /* local ms = rate * real + off */
};

static uint64_t now_of(const struct clk *c, double real)
{
    return (uint64_t)(c->rate * real + c->off); /* positive: truncation is floor */
}

static double real_of(const struct clk *c, double local)
{
    return (local - c->off) / c->rate;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static double unit(uint64_t *s)
{
    return (double)(rnd(s) % 1000001) / 1e6;
}

/* One history: the old primary A sends requests to secondary S; the last one
 * answered left A at t_send and reached S at t_arr; S moves the lock to the
 * new primary B at m >= t_arr + processing; B hears the reply at r. Clock rates
 * within 5% of real time (so within the 10% the rules allow of each other). */
static void one_history(uint64_t *seed)
{
    struct clk a = {0.95 + 0.1 * unit(seed), 1e6 * unit(seed)};
    struct clk s = {0.95 + 0.1 * unit(seed), 1e6 * unit(seed)};
    struct clk b = {0.95 + 0.1 * unit(seed), 1e6 * unit(seed)};
    double t_send = 20000 + 1000 * unit(seed);
    double t_arr = t_send + 50 * unit(seed) * unit(seed);
    double t_read = t_arr + 5 * unit(seed); /* S reads it: its clock taken now (fresh) */
    double m = t_read + 3 * L * unit(seed);
    double r = m + 50 * unit(seed);
    uint64_t acked = now_of(&a, t_send) - (rnd(seed) % 2); /* the loop's cached time */
    struct vs_lock2_view v = {.present = true, .holder = 1, .held = true, .map_rev = 1,
                              .lease_until_ms = now_of(&s, t_read) + L};
    struct vs_lock2_decision d = vs_lock2_decide(&v, 2, 2, L, 0, now_of(&s, m));
    assert_true(d.grant && d.close_old);
    /* B activates at this real time (R6, on B's clock from the reply). */
    double active = real_of(&b, (double)vs_lease_activate_at(now_of(&b, r), d.wait_ms));
    /* A's last local read: the last of its clock's ms at which R4 holds. */
    uint64_t last = acked;
    while (vs_read_lease_valid(acked, L, last + 1))
        last++;
    double a_end = real_of(&a, (double)last + 1);
    assert_true(a_end <= active);
    /* Nor does S grant before A's lease is over when the connection went down
     * first (released at any time after t_read). */
    v.held = false;
    d = vs_lock2_decide(&v, 2, 2, L, 0, now_of(&s, m));
    active = real_of(&b, (double)vs_lease_activate_at(now_of(&b, r), d.wait_ms));
    assert_true(a_end <= active);
}

static void test_model_old_reads_end_before_new_writes(void **state)
{
    (void)state;
    uint64_t seed = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < 200000; i++)
        one_history(&seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arithmetic),
        cmocka_unit_test(test_lock_move_rule),
        cmocka_unit_test(test_model_old_reads_end_before_new_writes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
