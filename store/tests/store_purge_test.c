/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_store_purge (store/store_purge.c, rules P1-P4):
 *   - it drops exactly the tombstones of the PG and below the bound it is
 *     given, frees their slots (a store whose deletes failed with ENOSPC for
 *     lack of slots takes deletes again), leaves live objects and other
 *     tombstones alone, and the result survives a reopen;
 *   - a tombstone whose delete record an unstable version pins in the
 *     journal is left (P1), and dropped by a purge after the stabilize;
 *   - bad input: no filter, pg >= pg_count, read-only;
 *   - crashes: random workloads of writes, deletes and purges on the
 *     simulated disk lose power at a random io; after recovery every
 *     acknowledged write is there with its bytes, every deleted object is
 *     deleted or gone (never back to an old version), the store's index
 *     equals a read-only rescan, and a purge after the crash finishes what
 *     was torn.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"
#include "vs_assert.h"

#define BS (16u << 10)

static struct vs_disk *fmt(uint64_t tombs, uint64_t seed)
{
    struct vs_disk *d;
    uint64_t size = 8 << 20;
    assert_int_equal(vs_disk_sim_create(1, &size, seed, &d), 0);
    struct vs_store_format_opts fo;
    memset(&fo, 0, sizeof(fo));
    fo.block_size = BS;
    fo.tomb_count = tombs;
    fo.layout.journal_size = 1 << 20;
    fo.cluster_id = 7;
    fo.osd_id = 3;
    char err[256];
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), 0);
    return d;
}

static int wr(struct vs_disk *d, struct vs_store *s, uint64_t inode, uint64_t stripe,
              uint64_t version, uint8_t fill, uint32_t flags)
{
    struct t_op t;
    t_init(&t);
    uint8_t *buf = t_alloc(4096);
    memset(buf, fill, 4096);
    t.op.oid = (struct vs_store_oid){inode, stripe};
    t.op.version = version;
    t.op.len = 4096;
    t.op.buf = buf;
    t.op.flags = flags;
    int rc = t_run(d, s, &t, vs_store_write);
    free(buf);
    return rc;
}

static int del(struct vs_disk *d, struct vs_store *s, uint64_t inode, uint64_t stripe,
               uint64_t version)
{
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){inode, stripe};
    t.op.version = version;
    return t_run(d, s, &t, vs_store_delete);
}

static int purge(struct vs_disk *d, struct vs_store *s, uint64_t pool, uint32_t pg_count,
                 uint32_t pg, uint64_t below, uint64_t *left)
{
    struct vs_store_purge f = {.pool_id = pool, .pg_count = pg_count, .pg = pg,
                               .pg_stripe_size = BS, .below = below};
    struct t_op t;
    t_init(&t);
    t.op.purge = &f;
    int rc = t_run(d, s, &t, vs_store_purge);
    if (left)
        *left = t.op.out_version;
    return rc;
}

/* -ENOENT: nothing; 1: a tombstone; 0: live. */
static int state(struct vs_store *s, uint64_t inode, uint64_t stripe, uint64_t *v)
{
    bool deleted = false;
    int rc = vs_store_newest(s, (struct vs_store_oid){inode, stripe}, v, &deleted);
    return rc < 0 ? rc : deleted;
}

static uint64_t tombs_used(struct vs_store *s)
{
    struct vs_store_stats st;
    vs_store_get_stats(s, &st);
    return st.tomb_used;
}

#define P1 (1ull << 48) /* inode of image 1 in pool 1 */
#define P2 (2ull << 48)

/* Objects 0..15 of pool 1 (PGs 0..3 by stripe, 4 PGs) and of pool 2; the
 * even ones deleted. Purging pool 1 PG 1 below version 100 drops exactly
 * stripes 2*BS... of PG 1 that are deleted below 100. */
static void test_purge_drops_what_it_names(void **st)
{
    (void)st;
    struct vs_disk *d = fmt(64, 1);
    struct vs_store *s = t_open(d, NULL);
    for (uint64_t i = 0; i < 16; i++) {
        assert_int_equal(wr(d, s, P1 | 1, i * BS, 10, (uint8_t)i, VS_STORE_STABLE), 4096);
        assert_int_equal(wr(d, s, P2 | 1, i * BS, 10, (uint8_t)i, VS_STORE_STABLE), 4096);
        if (i % 2 == 0) {
            /* object 12's tombstone is at version 200: above the bound */
            assert_int_equal(del(d, s, P1 | 1, i * BS, i == 12 ? 200 : 20), 0);
            assert_int_equal(del(d, s, P2 | 1, i * BS, 20), 0);
        }
    }
    assert_int_equal(tombs_used(s), 16);
    uint64_t left = 99, v;
    /* PG 0 of pool 1: stripes 0, 4, 8, 12; 12's tombstone is not below 100 */
    assert_int_equal(purge(d, s, 1, 4, 0, 100, &left), 3);
    assert_int_equal(left, 0);
    assert_int_equal(tombs_used(s), 13);
    for (uint64_t i = 0; i < 16; i++) {
        int want = i % 2 ? 0 : (i % 4 == 0 && i != 12) ? -ENOENT : 1;
        assert_int_equal(state(s, P1 | 1, i * BS, &v), want);
        assert_int_equal(state(s, P2 | 1, i * BS, &v), i % 2 ? 0 : 1);
    }
    struct vs_store_list_entry *le;
    long n = vs_store_list(s, 1, 4, 0, BS, &le);
    assert_int_equal(n, 1); /* only 12's tombstone is left in PG 0 */
    assert_int_equal(le[0].oid.stripe, 12 * BS);
    assert_true(le[0].flags & VS_STORE_LIST_DELETED);
    free(le);
    /* A dropped object is written anew at any version >= the bound. */
    assert_int_equal(wr(d, s, P1 | 1, 4 * BS, 100, 0xaa, VS_STORE_STABLE), 4096);
    /* The drop survives a reopen; so does the new write. */
    assert_int_equal(vs_store_close(s), 0);
    s = t_open(d, NULL);
    assert_int_equal(state(s, P1 | 1, 0, &v), -ENOENT);
    assert_int_equal(state(s, P1 | 1, 8 * BS, &v), -ENOENT);
    assert_int_equal(state(s, P1 | 1, 4 * BS, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(state(s, P1 | 1, 2 * BS, &v), 1);
    assert_int_equal(tombs_used(s), 13);
    /* Every pool, every PG. */
    assert_int_equal(purge(d, s, VS_STORE_POOL_ANY, 0, 0, 1000, &left), 13);
    assert_int_equal(tombs_used(s), 0);
    assert_int_equal(vs_store_close(s), 0);
    s = t_open(d, NULL);
    assert_int_equal(tombs_used(s), 0);
    assert_int_equal(state(s, P2 | 1, 0, &v), -ENOENT);
    assert_int_equal(state(s, P2 | 1, BS, &v), 0);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

/* Deletes fail with ENOSPC once the slots are used up; a purge frees them. */
static void test_purge_frees_slots(void **st)
{
    (void)st;
    struct vs_disk *d = fmt(64, 2);
    struct vs_store *s = t_open(d, NULL);
    uint64_t i;
    for (i = 0; i < 80; i++)
        assert_int_equal(wr(d, s, P1 | 1, i * BS, 1, 1, VS_STORE_STABLE), 4096);
    int rc = 0;
    for (i = 0; i < 80 && rc == 0; i++)
        rc = del(d, s, P1 | 1, i * BS, 2);
    assert_int_equal(rc, -ENOSPC);
    assert_int_equal(i - 1, 64);
    assert_int_equal(purge(d, s, 1, 0, 0, 3, NULL), 64);
    for (i = 64; i < 80; i++)
        assert_int_equal(del(d, s, P1 | 1, i * BS, 2), 0);
    assert_int_equal(tombs_used(s), 16);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

/* P1: an unstable version pins the journal, and with it the delete records
 * after it: those tombstones are left until the pin goes. */
static void test_purge_waits_for_the_journal(void **st)
{
    (void)st;
    struct vs_disk *d = fmt(64, 3);
    struct vs_store *s = t_open(d, NULL);
    assert_int_equal(wr(d, s, P2 | 1, 0, 5, 1, 0), 4096); /* unstable */
    for (uint64_t i = 0; i < 4; i++) {
        assert_int_equal(wr(d, s, P1 | 1, i * BS, 1, 1, VS_STORE_STABLE), 4096);
        assert_int_equal(del(d, s, P1 | 1, i * BS, 2), 0);
    }
    uint64_t left = 0, v;
    assert_int_equal(purge(d, s, 1, 0, 0, 3, &left), 0);
    assert_int_equal(left, 4);
    assert_int_equal(state(s, P1 | 1, 0, &v), 1);
    struct vs_store_obj_ver ov = {{P2 | 1, 0}, 5};
    struct t_op t;
    t_init(&t);
    t.op.list = &ov;
    t.op.list_count = 1;
    assert_int_equal(t_run(d, s, &t, vs_store_stabilize), 0);
    /* The purge's checkpoint applies the stabilize: its journal start moves
     * past the deletes. */
    assert_int_equal(purge(d, s, 1, 0, 0, 3, &left), 4);
    assert_int_equal(left, 0);
    assert_int_equal(state(s, P1 | 1, 0, &v), -ENOENT);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

static void test_purge_bad_input(void **st)
{
    (void)st;
    struct vs_disk *d = fmt(64, 4);
    struct vs_store *s = t_open(d, NULL);
    struct t_op t;
    t_init(&t);
    assert_int_equal(t_start(s, &t, vs_store_purge), -EINVAL); /* no filter */
    struct vs_store_purge f = {.pool_id = 1, .pg_count = 4, .pg = 4, .pg_stripe_size = BS};
    t.op.purge = &f;
    assert_int_equal(t_start(s, &t, vs_store_purge), -EINVAL);
    f.pg = 0;
    f.pg_stripe_size = 0;
    assert_int_equal(t_start(s, &t, vs_store_purge), -EINVAL);
    assert_int_equal(vs_store_close(s), 0);
    struct vs_store_config cfg = {.readonly = true};
    s = t_open(d, &cfg);
    f.pg_stripe_size = BS;
    assert_int_equal(t_start(s, &t, vs_store_purge), -EROFS);
    assert_int_equal(t.calls, 0);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

/* ---- crashes --------------------------------------------------------------------- */

#define NOBJ 24
#define NVER 512
static uint64_t cur_seed;

struct model {
    uint64_t acked[NOBJ]; /* newest acknowledged (or recovered) version, 0 none */
    bool acked_del[NOBJ]; /* ... is a tombstone */
    uint8_t vfill[NVER];  /* per version issued: its bytes (0: a delete) */
};

struct cop {
    struct t_op t;
    int obj; /* -1: a purge */
    bool del;
    uint64_t version;
    uint8_t *buf;
    struct vs_store_purge f;
};

static void start_one(struct vs_store *s, struct model *m, struct cop *c, int o, uint64_t *rnd,
                      uint64_t *next_v)
{
    c->obj = o;
    c->version = ++*next_v;
    VS_ASSERT(c->version < NVER);
    c->t.op.oid = (struct vs_store_oid){P1 | 1, (uint64_t)o * BS};
    c->t.op.version = c->version;
    c->del = m->acked[o] && !m->acked_del[o] && t_rnd(rnd) % 3 == 0;
    if (c->del) {
        m->vfill[c->version] = 0;
        assert_int_equal(t_start(s, &c->t, vs_store_delete), 0);
        return;
    }
    m->vfill[c->version] = (uint8_t)(t_rnd(rnd) | 1);
    c->buf = t_alloc(4096);
    memset(c->buf, m->vfill[c->version], 4096);
    c->t.op.buf = c->buf;
    c->t.op.len = 4096;
    c->t.op.flags = VS_STORE_STABLE;
    assert_int_equal(t_start(s, &c->t, vs_store_write), 0);
}

/* A batch of writes, deletes and purges started in one go. The purges'
 * bound is the next version: every later op of the model is above it (the
 * caller's promise). */
static void start_ops(struct vs_store *s, struct model *m, struct cop *ops, int n,
                      uint64_t *rnd, uint64_t *next_v)
{
    bool busy[NOBJ] = {false};
    for (int i = 0; i < n; i++) {
        struct cop *c = &ops[i];
        t_init(&c->t);
        c->obj = -1;
        c->buf = NULL;
        int o = (int)(t_rnd(rnd) % NOBJ);
        if (t_rnd(rnd) % 5 == 0 || busy[o]) { /* one writer per object */
            c->f = (struct vs_store_purge){.pool_id = 1, .pg_count = 2,
                                           .pg = (uint32_t)(t_rnd(rnd) % 2),
                                           .pg_stripe_size = BS, .below = *next_v + 1};
            c->t.op.purge = &c->f;
            assert_int_equal(t_start(s, &c->t, vs_store_purge), 0);
            continue;
        }
        busy[o] = true;
        start_one(s, m, c, o, rnd, next_v);
    }
}

static void collect(struct model *m, struct cop *ops, int n)
{
    for (int i = 0; i < n; i++) {
        struct cop *c = &ops[i];
        if (c->t.calls)
            assert_true(c->t.op.result >= 0);
        if (c->t.calls && c->obj >= 0) {
            m->acked[c->obj] = c->version;
            m->acked_del[c->obj] = c->del;
        }
        free(c->buf);
        c->buf = NULL;
    }
}

/* Never an older version than acknowledged, never other bytes than the
 * version's; gone only when the newest acknowledged version is a tombstone
 * (a purge may have dropped it) or nothing was acknowledged. */
static void check_obj(struct vs_store *s, const struct model *m, int o, uint8_t *buf)
{
    uint64_t v = 0;
    int st = state(s, P1 | 1, (uint64_t)o * BS, &v);
    if (st == -ENOENT) {
        assert_true(m->acked[o] == 0 || m->acked_del[o]);
        return;
    }
    assert_true(st >= 0 && v < NVER);
    if (v < m->acked[o])
        fprintf(stderr, "seed %llu: obj %d: version %llu (%s) is older than the acknowledged "
                "%llu (%s)\n", (unsigned long long)cur_seed, o, (unsigned long long)v,
                st ? "deleted" : "live",
                (unsigned long long)m->acked[o], m->acked_del[o] ? "deleted" : "live");
    assert_true(v >= m->acked[o]);
    if (st == 1) {
        assert_int_equal(m->vfill[v], 0);
        return;
    }
    assert_int_not_equal(m->vfill[v], 0);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){P1 | 1, (uint64_t)o * BS};
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = 4096;
    t.op.buf = buf;
    assert_int_equal(t_start(s, &t, vs_store_read), 0);
    assert_int_equal(vs_store_run_until_idle(s), 0);
    assert_int_equal(t.op.result, 4096);
    assert_int_equal(t.op.out_version, v);
    for (int i = 0; i < 4096; i++)
        assert_int_equal(buf[i], m->vfill[v]);
}

/* The index equals a read-only rescan of the same disk. */
static void check_rescan(struct vs_disk *d, struct vs_store *s)
{
    struct vs_store_config ro = {.readonly = true};
    struct vs_store *r = t_open(d, &ro);
    struct vs_store_list_entry *a, *b;
    long na = vs_store_list(s, VS_STORE_POOL_ANY, 0, 0, BS, &a);
    long nb = vs_store_list(r, VS_STORE_POOL_ANY, 0, 0, BS, &b);
    assert_int_equal(na, nb);
    for (long i = 0; i < na; i++) {
        assert_int_equal(a[i].oid.stripe, b[i].oid.stripe);
        assert_int_equal(a[i].version, b[i].version);
        assert_int_equal(a[i].flags, b[i].flags);
    }
    free(a);
    free(b);
    assert_int_equal(vs_store_close(r), 0);
}

/* After vs_disk_sim_crash: recover, check, and go on from what is there. */
static struct vs_store *recover(struct vs_disk *d, struct vs_store *s, struct model *m,
                                uint8_t *buf)
{
    vs_store_abandon(s);
    s = t_open(d, NULL);
    check_rescan(d, s);
    for (int o = 0; o < NOBJ; o++) {
        check_obj(s, m, o, buf);
        uint64_t v = 0; /* the model goes on from what the store holds */
        int st = state(s, P1 | 1, (uint64_t)o * BS, &v);
        m->acked[o] = st < 0 ? 0 : v;
        m->acked_del[o] = st == 1;
    }
    return s;
}

static void crash_round(uint64_t seed)
{
    cur_seed = seed;
    struct vs_disk *d = fmt(64, seed);
    struct vs_store *s = t_open(d, NULL);
    struct model m;
    memset(&m, 0, sizeof(m));
    uint64_t rnd = seed * 0x9E3779B97F4A7C15ull | 1, next_v = 1;
    uint8_t *buf = t_alloc(4096);
    struct cop ops[16];
    for (int round = 0; round < 10; round++) {
        int n = 4 + (int)(t_rnd(&rnd) % 12);
        start_ops(s, &m, ops, n, &rnd, &next_v);
        if (round == 9 || t_rnd(&rnd) % 3 == 0) { /* power loss at a random io */
            vs_disk_sim_step(d, (unsigned)(t_rnd(&rnd) % 48));
            vs_disk_sim_crash(d); /* drops what is in flight: no callback runs */
            collect(&m, ops, n);
            s = recover(d, s, &m, buf);
            continue;
        }
        assert_int_equal(vs_store_run_until_idle(s), 0);
        collect(&m, ops, n);
        for (int o = 0; o < NOBJ; o++)
            check_obj(s, &m, o, buf);
    }
    /* A record after the open (P1: tombstones loaded from newer pages wait
     * for one), then a purge of everything finishes what was torn. */
    assert_int_equal(wr(d, s, P2 | 1, 0, next_v + 1, 1, VS_STORE_STABLE), 4096);
    assert_true(purge(d, s, 1, 0, 0, UINT64_MAX - 2, NULL) >= 0);
    for (int o = 0; o < NOBJ; o++) {
        uint64_t v;
        assert_int_not_equal(state(s, P1 | 1, (uint64_t)o * BS, &v), 1);
    }
    assert_int_equal(tombs_used(s), 0);
    free(buf);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

static void test_purge_crashes(void **st)
{
    (void)st;
    const char *env = getenv("STORE_PURGE_ROUNDS");
    /* 400 (8 s): a release that left a former base's page claim behind (P5)
     * was caught first by seed 324; 10,000 passed once. */
    uint64_t rounds = env ? strtoull(env, NULL, 10) : 400;
    for (uint64_t seed = 1; seed <= rounds; seed++)
        crash_round(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_purge_drops_what_it_names),
        cmocka_unit_test(test_purge_frees_slots),
        cmocka_unit_test(test_purge_waits_for_the_journal),
        cmocka_unit_test(test_purge_bad_input),
        cmocka_unit_test(test_purge_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
