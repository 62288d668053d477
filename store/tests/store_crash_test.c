/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Crash test on the simulated disk: random batches of writes (partial and
 * full, stable and unstable), deletes, stabilizes and syncs; the disk loses
 * power at a random point (unsynced writes dropped, kept or torn at 512 B /
 * 4 KiB), the store recovers, and then:
 *   - every durable write is present: each object is at a version no older
 *     than the newest acknowledged-durable one (durable-ack mode: any acked
 *     write; lazy mode: writes completed before an acked sync);
 *   - nothing is torn or mixed: the data and bitmap equal exactly the image of
 *     the version read;
 *   - committed data has no checksum errors;
 *   - the index equals a full rescan: a second, read-only instance opened on
 *     the same disk lists the same versions with the same bitmaps.
 * Writes started together (in one loop turn) share journal records of several
 * writes: a crash may tear such a record or drop it, and after recovery its
 * writes are either all there or none (it replays whole or not at all).
 * The workload then goes on from the recovered state, crash after crash.
 * STORE_CRASH_POINTS scales the number of crash points (the soak target sets
 * it high); a failure prints the seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"
#include "vs_assert.h"

#define BS (16u << 10)
#define NOBJ 12
#define MAXC 64

struct cstate {
    uint64_t version; /* 0 = absent */
    bool deleted;
    uint8_t img[BS];
    uint8_t bm;
};

struct cobj {
    struct cstate c[MAXC]; /* candidates after a crash, oldest first; c[0] is the floor */
    int n;
    uint64_t completed; /* newest version whose op completed (lazy mode) */
    bool top_unstable;
};

struct slot {
    struct t_op t;
    int obj;
    uint8_t *buf;
    uint64_t *snap; /* sync: completed versions at call time */
    uint64_t expect; /* the version the model predicts */
    bool done;
};

struct crash {
    struct vs_disk *d;
    struct vs_store *s;
    struct vs_store_config cfg;
    struct cobj o[NOBJ];
    uint64_t rng;
    unsigned long points, ops_acked;
    unsigned long long fsyncs, fsyncs_linked, flush_merged; /* summed over the store's lives */
    unsigned long long batched, records;                   /* writes_batched, journal_records */
    unsigned long mid_record, groups_checked; /* crashes with a shared record unacked */
};

static struct vs_store_oid oid_of(int i)
{
    return (struct vs_store_oid){1, (uint64_t)i * BS};
}

static struct cstate *newest_c(struct cobj *o)
{
    return &o->c[o->n - 1];
}

/* Raises the floor to version v (drops older candidates). */
static void set_floor(struct cobj *o, uint64_t v)
{
    int k = 0;
    while (k + 1 < o->n && o->c[k + 1].version <= v)
        k++;
    if (k) {
        memmove(&o->c[0], &o->c[k], (size_t)(o->n - k) * sizeof(o->c[0]));
        o->n -= k;
    }
}

static void acked(struct crash *c, struct slot *sl)
{
    c->ops_acked++;
    struct cobj *o = &c->o[sl->obj];
    if (sl->snap) { /* a sync */
        for (int i = 0; i < NOBJ; i++)
            set_floor(&c->o[i], sl->snap[i]);
        return;
    }
    if (sl->expect && sl->t.op.out_version != sl->expect) {
        fprintf(stderr, "obj %d: version %llu, model expected %llu, after %lu crash points\n",
                sl->obj, (unsigned long long)sl->t.op.out_version,
                (unsigned long long)sl->expect, c->points);
        fail();
    }
    o->completed = VS_MAX(o->completed, sl->t.op.out_version);
    if (c->cfg.durability == VS_STORE_DURABLE_ACK)
        set_floor(o, sl->t.op.out_version);
}

static void plan_write(struct crash *c, struct slot *sl, int obj)
{
    struct cobj *o = &c->o[obj];
    assert_true(o->n < MAXC);
    struct cstate *prev = newest_c(o), *nx = &o->c[o->n];
    bool full = t_rnd(&c->rng) % 4 == 0;
    uint32_t off = full ? 0 : (uint32_t)(t_rnd(&c->rng) % 4), len = full ? 4 : 1;
    if (!full && off < 3 && t_rnd(&c->rng) % 2)
        len = 2;
    sl->buf = t_alloc(BS);
    for (uint32_t i = 0; i < len * 4096; i += 8) {
        uint64_t x = t_rnd(&c->rng);
        memcpy(sl->buf + i, &x, 8);
    }
    *nx = *prev;
    if (prev->deleted || prev->version == 0) {
        memset(nx->img, 0, BS);
        nx->bm = 0;
    }
    nx->deleted = false;
    nx->version = prev->version + 1;
    memcpy(nx->img + off * 4096, sl->buf, len * 4096);
    for (uint32_t i = off; i < off + len; i++)
        nx->bm = (uint8_t)(nx->bm | (1u << i));
    o->n++;
    sl->expect = nx->version;
    bool stable = t_rnd(&c->rng) % 4 != 0;
    if (getenv("STORE_TRACE"))
        fprintf(stderr, "plan write obj %d v%llu off %u len %u\n", obj,
                (unsigned long long)nx->version, off, len);
    o->top_unstable = !stable;
    sl->t.op.oid = oid_of(obj);
    sl->t.op.offset = off * 4096;
    sl->t.op.len = len * 4096;
    sl->t.op.buf = sl->buf;
    sl->t.op.flags = stable ? VS_STORE_STABLE : 0;
    assert_int_equal(t_start(c->s, &sl->t, vs_store_write), 0);
}

static void plan_delete(struct crash *c, struct slot *sl, int obj)
{
    struct cobj *o = &c->o[obj];
    struct cstate *prev = newest_c(o), *nx = &o->c[o->n];
    nx->version = prev->version + 1;
    nx->deleted = true;
    memset(nx->img, 0, BS);
    nx->bm = 0;
    o->n++;
    sl->expect = nx->version;
    o->top_unstable = false;
    sl->t.op.oid = oid_of(obj);
    assert_int_equal(t_start(c->s, &sl->t, vs_store_delete), 0);
}

static struct vs_store_obj_ver stab_item[NOBJ];

static void plan_stabilize(struct crash *c, struct slot *sl, int obj)
{
    struct cobj *o = &c->o[obj];
    stab_item[obj] = (struct vs_store_obj_ver){oid_of(obj), newest_c(o)->version};
    o->top_unstable = false;
    sl->t.op.list = &stab_item[obj];
    sl->t.op.list_count = 1;
    assert_int_equal(t_start(c->s, &sl->t, vs_store_stabilize), 0);
}

static bool any_over(const struct crash *c, int max)
{
    for (int i = 0; i < NOBJ; i++)
        if (c->o[i].n > max)
            return true;
    return false;
}

/* One batch: ops on objects from a random one on, now and then two on the
 * same object, maybe a sync; returns the count. more: another batch is in
 * flight (its writes may still wait for space). */
static int plan_batch(struct crash *c, struct slot *slots, bool more)
{
    int n = 0, first = (int)(t_rnd(&c->rng) % NOBJ), count = 1 + (int)(t_rnd(&c->rng) % 8);
    for (int i = 0, k = 0; i < count; i++) {
        bool again = i > 0 && t_rnd(&c->rng) % 4 == 0;
        k += i > 0 && !again;
        int obj = (first + k) % NOBJ;
        struct cobj *o = &c->o[obj];
        if ((again || more) && o->top_unstable)
            break; /* its write may wait for space: a stabilize now finds no version */
        struct slot *sl = &slots[n++];
        memset(sl, 0, sizeof(*sl));
        t_init(&sl->t);
        sl->obj = obj;
        if (o->top_unstable)
            plan_stabilize(c, sl, obj);
        else if (t_rnd(&c->rng) % 10 == 0 && newest_c(o)->version && !newest_c(o)->deleted)
            plan_delete(c, sl, obj);
        else
            plan_write(c, sl, obj);
    }
    bool lazy = c->cfg.durability == VS_STORE_LAZY;
    if (lazy && (t_rnd(&c->rng) % 3 == 0 || any_over(c, MAXC / 2))) {
        struct slot *sl = &slots[n++];
        memset(sl, 0, sizeof(*sl));
        t_init(&sl->t);
        sl->snap = calloc(NOBJ, sizeof(uint64_t));
        for (int i = 0; i < NOBJ; i++)
            sl->snap[i] = c->o[i].completed;
        assert_int_equal(t_start(c->s, &sl->t, vs_store_sync), 0);
    }
    return n;
}

static void harvest(struct crash *c, struct slot *slots, int n)
{
    for (int i = 0; i < n; i++) {
        if (slots[i].t.calls && !slots[i].done) {
            assert_true(slots[i].t.op.result >= 0);
            acked(c, &slots[i]);
            slots[i].done = true;
        }
    }
}

static void free_slots(struct slot *slots, int n)
{
    for (int i = 0; i < n; i++) {
        free(slots[i].buf);
        free(slots[i].snap);
    }
}

/* ---- verification after recovery ------------------------------------------- */

/* The version of object i's tombstone, or 0 when it has no version at all. */
static uint64_t tomb_version(struct crash *c, int i)
{
    struct vs_store_list_entry *le;
    long n = vs_store_list(c->s, 0, 0, 0, 0, &le);
    assert_true(n >= 0);
    uint64_t v = 0;
    for (long k = 0; k < n; k++)
        if (le[k].oid.stripe == oid_of(i).stripe && (le[k].flags & VS_STORE_LIST_DELETED))
            v = VS_MAX(v, le[k].version);
    free(le);
    return v;
}

static void verify_obj(struct crash *c, int i, uint8_t *buf)
{
    struct cobj *o = &c->o[i];
    uint8_t bm = 0;
    struct t_op t;
    t_init(&t);
    t.op.oid = oid_of(i);
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = BS;
    t.op.buf = buf;
    t.op.bitmap = &bm;
    int rc = t_run(c->d, c->s, &t, vs_store_read);
    if (rc != (int)BS && rc != -ENOENT)
        fprintf(stderr, "object %d: read: %s\n", i, vs_strerror(rc));
    assert_true(rc == (int)BS || rc == -ENOENT);
    uint64_t got = 0;
    bool unstable = false;
    if (rc == -ENOENT) {
        got = tomb_version(c, i); /* 0: no object at all */
    } else {
        got = t.op.out_version;
        uint64_t sv = 0;
        unstable = vs_store_stat(c->s, oid_of(i), VS_STORE_READ_STABLE, &sv, NULL) < 0 ||
                   sv != got;
    }
    for (int k = 0; k < o->n; k++) {
        struct cstate *cs = &o->c[k];
        bool absent = cs->version == 0 || cs->deleted;
        if (rc == -ENOENT ? (!absent || cs->version != got) : (absent || cs->version != got))
            continue;
        if (rc != -ENOENT) {
            assert_int_equal(bm, cs->bm);
            assert_memory_equal(buf, cs->img, BS);
        }
        if (getenv("STORE_TRACE"))
            fprintf(stderr, "recovered obj %d at v%llu%s (floor v%llu, %d candidates)\n", i,
                    (unsigned long long)cs->version, cs->deleted ? " deleted" : "",
                    (unsigned long long)o->c[0].version, o->n);
        o->c[0] = *cs;
        o->n = 1;
        o->completed = cs->version;
        o->top_unstable = unstable;
        return;
    }
    fprintf(stderr, "object %d: recovered version %llu (rc %d) is no candidate; floor %llu%s\n",
            i, (unsigned long long)got, rc, (unsigned long long)o->c[0].version,
            o->c[0].deleted ? " (deleted)" : "");
    fail();
}

static int cmp_list(const void *a, const void *b)
{
    const struct vs_store_list_entry *x = a, *y = b;
    if (x->oid.stripe != y->oid.stripe)
        return x->oid.stripe < y->oid.stripe ? -1 : 1;
    return x->version < y->version ? -1 : x->version > y->version;
}

/* A second, read-only instance rebuilds the index from the disk alone. */
static void verify_rescan(struct crash *c)
{
    struct vs_store_config ro = c->cfg;
    ro.readonly = true;
    struct vs_store *r = t_open(c->d, &ro);
    struct vs_store_list_entry *a, *b;
    long na = vs_store_list(c->s, 0, 0, 0, 0, &a), nb = vs_store_list(r, 0, 0, 0, 0, &b);
    assert_int_equal(na, nb);
    qsort(a, (size_t)na, sizeof(*a), cmp_list);
    qsort(b, (size_t)nb, sizeof(*b), cmp_list);
    for (long i = 0; i < na; i++) {
        assert_int_equal(a[i].oid.stripe, b[i].oid.stripe);
        assert_int_equal(a[i].version, b[i].version);
        assert_int_equal(a[i].flags, b[i].flags);
        uint8_t b1 = 0, b2 = 0;
        uint64_t v1 = 0, v2 = 0;
        assert_int_equal(vs_store_stat(c->s, a[i].oid, a[i].version, &v1, &b1),
                         vs_store_stat(r, b[i].oid, b[i].version, &v2, &b2));
        assert_int_equal(b1, b2);
    }
    free(a);
    free(b);
    assert_int_equal(vs_store_close(r), 0);
}

/* Stabilizes every unstable version already written, as an OSD would. */
static int unpin(struct crash *c)
{
    int rc = -EDEADLK;
    for (int round = 0; round < 8 && rc == -EDEADLK; round++) {
        struct slot sl[NOBJ];
        struct vs_store_obj_ver items[NOBJ];
        int n = 0;
        for (int i = 0; i < NOBJ; i++) {
            uint64_t lv = 0, sv = 0;
            if (vs_store_stat(c->s, oid_of(i), VS_STORE_READ_LATEST, &lv, NULL) < 0 ||
                (vs_store_stat(c->s, oid_of(i), VS_STORE_READ_STABLE, &sv, NULL) == 0 && sv == lv))
                continue;
            memset(&sl[n], 0, sizeof(sl[n]));
            t_init(&sl[n].t);
            items[n] = (struct vs_store_obj_ver){oid_of(i), lv};
            sl[n].t.op.list = &items[n];
            sl[n].t.op.list_count = 1;
            assert_int_equal(t_start(c->s, &sl[n].t, vs_store_stabilize), 0);
            if (newest_c(&c->o[i])->version == lv)
                c->o[i].top_unstable = false;
            n++;
        }
        rc = vs_store_run_until_idle(c->s);
        struct vs_store_stats st;
        vs_store_get_stats(c->s, &st);
        for (int i = 0; i < n; i++)
            if (sl[i].t.calls != 1)
                fprintf(stderr, "unpin: stabilize %d pending; journal %llu/%llu entries %llu "
                        "checkpoints %llu rc %d n %d\n", i,
                        (unsigned long long)st.journal_used, (unsigned long long)st.journal_size,
                        (unsigned long long)st.entries_dirty, (unsigned long long)st.checkpoints,
                        rc, n);
        for (int i = 0; i < n; i++)
            assert_int_equal(sl[i].t.calls, 1);
    }
    return rc;
}

/* The record (seq) of write slot i, if it shares it with another write of
 * the batch (a record of several writes); else 0. */
static uint64_t shared_seq(const struct slot *slots, int n, int i)
{
    uint64_t seq = slots[i].buf ? slots[i].t.op.p.seq : 0; /* 0: never got a record */
    for (int j = 0; seq && j < n; j++)
        if (j != i && slots[j].buf && slots[j].t.op.p.seq == seq)
            return seq;
    return 0;
}

/* After recovery: the writes of one record are all there or none. */
static void check_groups(struct crash *c, const struct slot *slots, int n, const uint64_t *seq)
{
    for (int i = 0; i < n; i++) {
        if (!seq[i])
            continue;
        bool here = c->o[slots[i].obj].c[0].version >= slots[i].expect;
        for (int j = 0; j < n; j++) {
            if (j == i || seq[j] != seq[i])
                continue;
            bool there = c->o[slots[j].obj].c[0].version >= slots[j].expect;
            if (here != there)
                fprintf(stderr, "record seq %llu replayed in part: obj %d v%llu %s, obj %d "
                        "v%llu %s, after %lu crash points\n", (unsigned long long)seq[i],
                        slots[i].obj, (unsigned long long)slots[i].expect,
                        here ? "there" : "lost", slots[j].obj,
                        (unsigned long long)slots[j].expect, there ? "there" : "lost", c->points);
            assert_true(here == there);
        }
    }
}

static void crash_and_recover(struct crash *c, uint8_t *buf, const struct slot *slots, int n)
{
    if (getenv("STORE_DEBUG"))
        fprintf(stderr, "CRASH %lu\n", c->points);
    uint64_t seq[2 * (NOBJ + 2)];
    bool unacked = false;
    for (int i = 0; i < n; i++) {
        seq[i] = shared_seq(slots, n, i);
        unacked |= seq[i] && !slots[i].done;
    }
    c->mid_record += unacked;
    struct vs_store_stats old;
    vs_store_get_stats(c->s, &old);
    c->fsyncs += old.fsyncs;
    c->fsyncs_linked += old.fsyncs_linked;
    c->flush_merged += old.flush_merged;
    c->batched += old.writes_batched;
    c->records += old.journal_records;
    vs_disk_sim_crash(c->d);
    vs_store_abandon(c->s);
    c->s = t_open(c->d, &c->cfg);
    c->points++;
    for (int i = 0; i < NOBJ; i++)
        verify_obj(c, i, buf);
    struct vs_store_stats st;
    vs_store_get_stats(c->s, &st);
    assert_int_equal(st.csum_errors, 0);
    check_groups(c, slots, n, seq);
    c->groups_checked += unacked;
    verify_rescan(c);
}

static void run_crash(struct vs_store_config cfg, uint64_t seed, unsigned long points)
{
    const char *only = getenv("STORE_CRASH_ONLY"); /* "no_drain" etc.: one variant */
    if (only && !(strcmp(only, "no_drain") == 0 ? cfg.fsync_no_drain
                  : strcmp(only, "lazy") == 0   ? cfg.durability == VS_STORE_LAZY
                                                : !cfg.fsync_no_drain &&
                                                      cfg.durability != VS_STORE_LAZY))
        return;
    struct crash *cp = calloc(1, sizeof(*cp)); /* 12 MiB: not on the stack */
    assert_non_null(cp);
#define c (*cp)
    c.cfg = cfg;
    c.rng = seed * 0x9E3779B97F4A7C15ull + 7;
    c.d = t_sim_format(3u << 20, seed, BS, 128u << 10, false);
    c.s = t_open(c.d, &c.cfg);
    for (int i = 0; i < NOBJ; i++)
        c.o[i].n = 1;
    uint8_t *buf = t_alloc(BS);
    printf("crash: durability=%d no_drain=%d plp=%d seed=%llu points=%lu\n", cfg.durability,
           cfg.fsync_no_drain, cfg.fsync_disabled[0], (unsigned long long)seed, points);
    struct slot slots[2 * (NOBJ + 2)];
    while (c.points < points) {
        int n = plan_batch(&c, slots, false);
        unsigned steps = (unsigned)(t_rnd(&c.rng) % 24);
        if (t_rnd(&c.rng) % 2) { /* a second loop turn while the first one's ios run */
            vs_disk_sim_step(c.d, 1 + steps / 4);
            n += plan_batch(&c, slots + n, true);
        }
        vs_disk_sim_step(c.d, steps);
        harvest(&c, slots, n);
        if (t_rnd(&c.rng) % 3 == 0) {
            crash_and_recover(&c, buf, slots, n);
        } else {
            int rc = vs_store_run_until_idle(c.s);
            if (rc == -EDEADLK) /* unstable versions pin the journal: stabilize them */
                rc = unpin(&c);
            assert_int_equal(rc, 0);
            harvest(&c, slots, n);
        }
        free_slots(slots, n);
    }
    struct vs_store_stats fin;
    vs_store_get_stats(c.s, &fin);
    printf("  %lu crash points, %lu ops acknowledged, %llu fsync batches, %llu of them linked"
           " to their journal write, %llu in-place writes saved by gathered flushes\n",
           c.points, c.ops_acked, c.fsyncs + fin.fsyncs, c.fsyncs_linked + fin.fsyncs_linked,
           c.flush_merged + fin.flush_merged);
    printf("  %llu journal records, %llu writes in records of several, %lu crashes with such a "
           "record not yet acknowledged\n", c.records + fin.journal_records,
           c.batched + fin.writes_batched, c.mid_record);
    assert_true(c.batched + fin.writes_batched > 0);
    if (points >= 1000) /* crashes hit records of several writes in flight */
        assert_true(c.mid_record > 0);
    if (points >= 1000) /* checkpoints gathered side-by-side sectors, and crashes hit them */
        assert_true(c.flush_merged + fin.flush_merged > 0);
    if (cfg.idle_sync) { /* the idle pair ran, and crashes hit around it */
        printf("  %llu idle write+fsync pairs done synchronously\n",
               (unsigned long long)c.d->idle_syncs);
        assert_true(c.d->idle_syncs > 0);
    }
    assert_int_equal(vs_store_close(c.s), 0);
    vs_disk_destroy(c.d);
    free(buf);
#undef c
    free(cp);
}

static unsigned long scaled(unsigned long n)
{
    const char *e = getenv("STORE_CRASH_POINTS");
    return e ? strtoul(e, NULL, 10) * n / 10000 : n;
}

static uint64_t seed_base(void)
{
    const char *e = getenv("STORE_SEED");
    return e ? strtoull(e, NULL, 10) : 1;
}

/* 4000 + 3000 + 1500 + 1000 + 1500 = 11,000 crash points per run. */
static void test_crash_durable(void **st)
{
    (void)st;
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK};
    run_crash(cfg, seed_base(), scaled(4000));
}

static void test_crash_lazy(void **st)
{
    (void)st;
    struct vs_store_config cfg = {.durability = VS_STORE_LAZY};
    run_crash(cfg, seed_base() + 100, scaled(3000));
}

static void test_crash_durable_no_drain(void **st)
{
    (void)st;
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK, .fsync_no_drain = true};
    run_crash(cfg, seed_base() + 200, scaled(1500));
}

/* As the OSD opens it: a lone durable write and its fsync may be done at the
 * submit point (the idle pair, VS_DISK_IDLE_SYNC). */
static void test_crash_durable_idle_sync(void **st)
{
    (void)st;
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK, .fsync_no_drain = true,
                                  .idle_sync = true};
    run_crash(cfg, seed_base() + 400, scaled(1000));
}

/* Checkpoints at 20% fill: many more checkpoints interrupted by crashes. */
static void test_crash_lazy_small_journal_pct(void **st)
{
    (void)st;
    struct vs_store_config cfg = {.durability = VS_STORE_LAZY, .journal_checkpoint_pct = 20};
    run_crash(cfg, seed_base() + 300, scaled(1500));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_durable),
        cmocka_unit_test(test_crash_lazy),
        cmocka_unit_test(test_crash_durable_no_drain),
        cmocka_unit_test(test_crash_durable_idle_sync),
        cmocka_unit_test(test_crash_lazy_small_journal_pct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
