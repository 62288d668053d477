/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_flush_crash_test.c -- peering's flush actions (stabilize, rollback) on
 * lazy stores are not synced, and a crash after them never leaves a mix that
 * the next peering misreads (docs/data-path.md §3 step 5, "Flush on lazy
 * stores").
 *
 * Three stores on simulated disks (VS_STORE_LAZY), one PG over them, either
 * replicated (pg_data_size 1) or erasure-coded (k 2 of 3: OSD i holds role
 * i - 1). Per seed:
 *   1. every object gets a base version v1 on every OSD, synced;
 *   2. leftovers: some objects get a newer version u (epoch 1) on a random
 *      subset of the OSDs, unstable (a write torn by a crash), synced or not;
 *   3. peering #1: the stores' listings -> vs_pg_calc -> its flush actions
 *      run on the stores, as the OSD runs them: lazily, no sync;
 *   4. the next interval: writes w of random objects to random subsets of
 *      the OSDs, stable at once, with the version the primary (OSD 1) would
 *      assign -- (epoch 2 << 16) | 1, the epoch bumped because peering #1
 *      found unclean objects (rule D6) -- then some stores synced, some not;
 *   5. every disk loses power (unsynced writes kept, dropped or torn), every
 *      store is reopened;
 *   6. peering #2: vs_pg_calc again. Checked per object: the target is one
 *      peering #1 could lead to (its target, or w; v1 only when the version
 *      peering #1 committed was never synced) -- never a version peering #1
 *      rolled back -- and every OSD that lists the target holds the bytes of
 *      the write that made that version.
 * The argument this checks (why no sync is needed): a store recovers a
 * prefix of its journal, so a lost flush action takes everything that OSD did
 * after it with it; a lost action is recomputed by the next peering from the
 * same or fewer leftovers; and, with the epoch bumped, no version written
 * after the flush can equal one the flush rolled back. The control run
 * assigns versions without the bump (current + 1 on the primary) and must be
 * caught mixing two writes under one version for some seed: that is what
 * the bump prevents, and it shows the checker can see a mix.
 */
#include "pg_calc.h"

#include "../../../store/tests/store_test_util.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NOSD 3
#define NOBJ 12
#define BS (16u << 10)
#define INODE ((1ull << 48) | 5)
#define STRIPE(i) ((uint64_t)(i) << 20)
#define V1 ((1ull << 16) | 1)
#define VU ((1ull << 16) | 2)
#define VW_BUMPED ((2ull << 16) | 1)
#define SEEDS 60

struct osd {
    struct vs_disk *d;
    struct vs_store *s;
};

struct obj {
    uint64_t ver[3];   /* versions written: v1, u, w (0 = not written) */
    bool u_synced;     /* the leftover u was synced before the flush */
    uint64_t target1;  /* peering #1's decision */
};

struct world {
    struct osd osd[NOSD];
    struct obj obj[NOBJ];
    bool ec, bump;
    uint64_t rng;
    uint8_t *buf;
    unsigned mixes; /* OSDs found holding other bytes than their version's write */
};

static const struct vs_store_config LAZY = {.durability = VS_STORE_LAZY};

/* Over all seeds of a test: flush actions run, and those the crash undid --
 * so the test is known to reach the case it is about. */
static unsigned n_stabilized, n_rolled_back, n_stabilize_lost, n_rollback_lost;

static uint64_t oid_stripe(const struct world *w, int obj, int osd)
{
    return STRIPE(obj) | (w->ec ? (uint64_t)osd : 0);
}

/* The bytes of write `gen` (0 v1, 1 u, 2 w) of an object on an OSD. */
static void pattern(uint8_t *p, int obj, int gen, int osd)
{
    for (uint32_t i = 0; i < 4096; i++)
        p[i] = (uint8_t)(obj * 31 + gen * 7 + osd * 3 + (i >> 4));
}

static void store_write(struct world *w, int osd, int obj, int gen, uint64_t ver, bool stable)
{
    struct osd *o = &w->osd[osd];
    struct t_op t;
    t_init(&t);
    pattern(w->buf, obj, gen, osd);
    t.op.oid = (struct vs_store_oid){INODE, oid_stripe(w, obj, osd)};
    t.op.version = ver;
    t.op.len = 4096;
    t.op.buf = w->buf;
    t.op.flags = stable ? VS_STORE_STABLE : 0;
    assert_true(t_run(o->d, o->s, &t, vs_store_write) >= 0);
}

static void store_sync(struct osd *o)
{
    struct t_op t;
    t_init(&t);
    assert_int_equal(t_run(o->d, o->s, &t, vs_store_sync), 0);
}

/* Lists every store and runs vs_pg_calc. */
static void calc(struct world *w, struct vs_pg_calc_result *r)
{
    struct vs_listed_obj *all = NULL;
    size_t n = 0;
    for (int i = 0; i < NOSD; i++) {
        struct vs_store_list_entry *e = NULL;
        long c = vs_store_list(w->osd[i].s, INODE >> 48, 1, 0, STRIPE(1), &e);
        assert_true(c >= 0);
        all = realloc(all, (n + (size_t)c + 1) * sizeof(*all));
        assert_non_null(all);
        for (long k = 0; k < c; k++)
            all[n++] = (struct vs_listed_obj){
                .inode = e[k].oid.inode, .stripe = e[k].oid.stripe, .version = e[k].version,
                .osd = (uint32_t)i + 1, .stable = (e[k].flags & VS_STORE_LIST_STABLE) != 0,
                .deleted = (e[k].flags & VS_STORE_LIST_DELETED) != 0};
        free(e);
    }
    struct vs_pg_layout l = {.pg_size = NOSD, .pg_data_size = w->ec ? 2 : 1, .ec = w->ec,
                             .cur_set = {1, 2, 3}};
    assert_int_equal(vs_pg_calc(&l, all, n, r), 0);
    assert_false(r->flags & VS_PGC_HAS_INVALID);
    free(all);
}

/* The target of obj in r: its unclean entry's, else the version it has everywhere. */
static uint64_t target_of(const struct world *w, const struct vs_pg_calc_result *r, int obj)
{
    for (size_t i = 0; i < r->obj_count; i++)
        if (r->objs[i].inode == INODE && r->objs[i].stripe == STRIPE(obj))
            return r->objs[i].target_version;
    uint64_t v = 0; /* clean: every OSD holds the same newest version */
    for (int i = 0; i < NOSD; i++) {
        bool del;
        uint64_t x = 0;
        vs_store_newest(w->osd[i].s, (struct vs_store_oid){INODE, oid_stripe(w, obj, i)}, &x,
                        &del);
        v = x > v ? x : v;
    }
    return v;
}

static void run_flush(struct world *w, const struct vs_pg_calc_result *r)
{
    for (size_t i = 0; i < r->action_count; i++) {
        const struct vs_flush_action *a = &r->actions[i];
        a->kind == VS_FLUSH_STABILIZE ? n_stabilized++ : n_rolled_back++;
        struct osd *o = &w->osd[a->osd - 1];
        struct vs_store_obj_ver item = {{a->inode, a->stripe}, a->version};
        struct t_op t;
        t_init(&t);
        t.op.list = &item;
        t.op.list_count = 1;
        int rc = t_run(o->d, o->s, &t, a->kind == VS_FLUSH_STABILIZE ? vs_store_stabilize
                                                                      : vs_store_rollback);
        assert_int_equal(rc, 0);
    }
}

/* After the crash: was action a undone on its OSD (its journal record lost)? */
static void count_lost(struct world *w, const struct vs_flush_action *a)
{
    struct vs_store *s = w->osd[a->osd - 1].s;
    struct vs_store_oid oid = {a->inode, a->stripe};
    uint64_t v = 0;
    bool del;
    if (a->kind == VS_FLUSH_ROLLBACK) {
        if (vs_store_newest(s, oid, &v, &del) == 0 && v == VU)
            n_rollback_lost++; /* u is back (and w never reached this OSD) */
    } else if (vs_store_stat(s, oid, VS_STORE_READ_STABLE, &v, NULL) == 0 && v < a->version) {
        n_stabilize_lost++;
    }
}

static bool coin(struct world *w, unsigned one_in)
{
    return t_rnd(&w->rng) % one_in == 0;
}

static void setup(struct world *w, uint64_t seed)
{
    for (int i = 0; i < NOSD; i++) {
        w->osd[i].d = t_sim_format(8u << 20, seed * 3 + (uint64_t)i, BS, 256u << 10, false);
        w->osd[i].s = t_open(w->osd[i].d, &LAZY);
    }
    memset(w->obj, 0, sizeof(w->obj));
    for (int k = 0; k < NOBJ; k++) {
        w->obj[k].ver[0] = V1;
        for (int i = 0; i < NOSD; i++)
            store_write(w, i, k, 0, V1, true);
    }
    for (int i = 0; i < NOSD; i++)
        store_sync(&w->osd[i]);
    /* Leftovers: u, unstable, on a random subset; all synced, or none. */
    bool synced = coin(w, 2);
    for (int k = 0; k < NOBJ; k++) {
        if (coin(w, 4))
            continue;
        w->obj[k].ver[1] = VU;
        w->obj[k].u_synced = synced;
        for (int i = 0; i < NOSD; i++)
            if (coin(w, 2))
                store_write(w, i, k, 1, VU, false);
    }
    for (int i = 0; i < NOSD && synced; i++)
        store_sync(&w->osd[i]);
}

/* The version the primary (OSD 1) gives the next write of obj. */
static uint64_t next_version(struct world *w, int obj)
{
    if (w->bump)
        return VW_BUMPED;
    uint64_t cur = 0;
    bool del;
    vs_store_newest(w->osd[0].s, (struct vs_store_oid){INODE, oid_stripe(w, obj, 0)}, &cur, &del);
    return cur + 1;
}

static void next_interval(struct world *w)
{
    for (int k = 0; k < NOBJ; k++) {
        if (coin(w, 2))
            continue;
        uint64_t v = next_version(w, k);
        w->obj[k].ver[2] = v;
        for (int i = 0; i < NOSD; i++) {
            uint64_t cur = 0;
            bool del;
            vs_store_newest(w->osd[i].s, (struct vs_store_oid){INODE, oid_stripe(w, k, i)},
                            &cur, &del);
            if (v > cur && (i == 0 || coin(w, 3) != 0))
                store_write(w, i, k, 2, v, true);
        }
    }
    for (int i = 0; i < NOSD; i++)
        if (coin(w, 3))
            store_sync(&w->osd[i]);
}

static void power_loss(struct world *w)
{
    for (int i = 0; i < NOSD; i++) {
        vs_disk_sim_crash(w->osd[i].d);
        vs_store_abandon(w->osd[i].s);
        w->osd[i].s = t_open(w->osd[i].d, &LAZY);
    }
}

/* Every OSD listing `target` holds the bytes of the last write made with it. */
static void check_bytes(struct world *w, int obj, uint64_t target)
{
    int gen = -1;
    for (int g = 0; g < 3; g++)
        if (w->obj[obj].ver[g] == target)
            gen = g; /* the last write with that version: the one acknowledged */
    assert_true(gen >= 0);
    uint8_t want[4096];
    for (int i = 0; i < NOSD; i++) {
        struct t_op t;
        t_init(&t);
        t.op.oid = (struct vs_store_oid){INODE, oid_stripe(w, obj, i)};
        t.op.version = target;
        t.op.len = 4096;
        t.op.buf = w->buf;
        int rc = t_run(w->osd[i].d, w->osd[i].s, &t, vs_store_read);
        if (rc < 0 || t.op.out_version != target)
            continue; /* this OSD does not hold the target */
        pattern(want, obj, gen, i);
        if (memcmp(want, w->buf, 4096) != 0)
            w->mixes++;
    }
}

static void check(struct world *w, const struct vs_pg_calc_result *r)
{
    for (int k = 0; k < NOBJ; k++) {
        const struct obj *o = &w->obj[k];
        uint64_t t = target_of(w, r, k);
        bool ok = t == o->target1 || (o->ver[2] && t == o->ver[2]) ||
                  (t == V1 && o->target1 == VU && !o->u_synced);
        if (w->bump && !ok)
            fail_msg("object %d: target %llx after the crash; peering #1 chose %llx, w %llx",
                     k, (unsigned long long)t, (unsigned long long)o->target1,
                     (unsigned long long)o->ver[2]);
        if (w->bump && o->target1 == V1 && o->ver[1])
            assert_true(t != VU); /* a rolled-back version never comes back */
        if (t)
            check_bytes(w, k, t);
    }
}

static unsigned run_seed(bool ec, bool bump, uint64_t seed)
{
    struct world *w = calloc(1, sizeof(*w));
    assert_non_null(w);
    w->ec = ec;
    w->bump = bump;
    w->rng = seed * 0x9E3779B97F4A7C15ull + 1;
    w->buf = t_alloc(4096);
    setup(w, seed);
    struct vs_pg_calc_result r1;
    calc(w, &r1);
    for (int k = 0; k < NOBJ; k++)
        w->obj[k].target1 = target_of(w, &r1, k);
    run_flush(w, &r1); /* lazily: no sync, as osd_peering.c does */
    next_interval(w);
    power_loss(w);
    for (size_t i = 0; i < r1.action_count; i++)
        count_lost(w, &r1.actions[i]);
    vs_pg_calc_free(&r1);
    struct vs_pg_calc_result r2;
    calc(w, &r2);
    check(w, &r2);
    vs_pg_calc_free(&r2);
    unsigned mixes = w->mixes;
    for (int i = 0; i < NOSD; i++) {
        assert_int_equal(vs_store_close(w->osd[i].s), 0);
        vs_disk_destroy(w->osd[i].d);
    }
    free(w->buf);
    free(w);
    return mixes;
}

static void test_replicated(void **state)
{
    (void)state;
    n_stabilized = n_rolled_back = n_stabilize_lost = n_rollback_lost = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++)
        assert_int_equal(run_seed(false, true, seed), 0);
    printf("replicated: %u stabilized (%u undone by the crash), %u rolled back\n",
           n_stabilized, n_stabilize_lost, n_rolled_back);
    assert_true(n_stabilize_lost > 0);
    assert_int_equal(n_rolled_back, 0); /* T2: a replica's version is always committed */
}

static void test_erasure_coded(void **state)
{
    (void)state;
    n_stabilized = n_rolled_back = n_stabilize_lost = n_rollback_lost = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++)
        assert_int_equal(run_seed(true, true, seed), 0);
    printf("erasure-coded: %u stabilized (%u undone by the crash), %u rolled back (%u "
           "undone)\n", n_stabilized, n_stabilize_lost, n_rolled_back, n_rollback_lost);
    assert_true(n_stabilize_lost > 0 && n_rollback_lost > 0);
}

/* Without the epoch bump the checker sees two writes under one version. */
static void test_control_without_bump(void **state)
{
    (void)state;
    unsigned mixes = 0;
    uint64_t seed = 1;
    for (; seed <= SEEDS && mixes == 0; seed++)
        mixes += run_seed(true, false, seed);
    printf("without the bump: a mix found after %llu seed(s)\n", (unsigned long long)seed - 1);
    assert_true(mixes > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replicated),
        cmocka_unit_test(test_erasure_coded),
        cmocka_unit_test(test_control_without_bump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
