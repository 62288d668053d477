/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Model-based random test: random sequences of every operation (overlapping
 * partial writes, full-block writes, stable and unstable versions, explicit
 * and automatic versions, deletes, stabilize, rollback, sync, list, forced
 * checkpoints, clean reopen) run against the store on the simulated disk and
 * against an in-memory model; every read and every listing must equal the
 * model. Parameterised by block size (4 KiB, 128 KiB, 1 MiB) and durability
 * mode. Seeds are printed so a failure reproduces.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"
#include "vs_assert.h"

#define MAXV 8
#define NOBJ_MAX 24

struct mver {
    uint64_t version;
    bool stable, deleted;
    uint8_t *img, *bm;
};

struct mobj {
    struct vs_store_oid oid;
    struct mver v[MAXV];
    int n;
};

struct model {
    struct vs_disk *d;
    struct vs_store *s;
    struct vs_store_config cfg;
    uint32_t bs, bmb;
    int nobj;
    struct mobj o[NOBJ_MAX];
    uint64_t rng;
    uint8_t *wbuf, *rbuf, *rbm;
    unsigned long checks;
    uint64_t checkpoints; /* of closed instances */
    uint64_t batched;     /* writes_batched of closed instances */
};

static void mver_free(struct mver *v)
{
    free(v->img);
    free(v->bm);
    v->img = v->bm = NULL;
}

/* Keeps the newest stable version and the unstable ones above it. */
static void collapse(struct mobj *o)
{
    int last_stable = -1;
    for (int i = 0; i < o->n; i++)
        if (o->v[i].stable)
            last_stable = i;
    if (last_stable <= 0)
        return;
    for (int i = 0; i < last_stable; i++)
        mver_free(&o->v[i]);
    memmove(&o->v[0], &o->v[last_stable], (size_t)(o->n - last_stable) * sizeof(o->v[0]));
    o->n -= last_stable;
}

static void mark_stable(struct mobj *o, uint64_t version)
{
    for (int i = 0; i < o->n; i++)
        if (o->v[i].version <= version)
            o->v[i].stable = true;
    collapse(o);
}

static struct mver *push(struct model *m, struct mobj *o, uint64_t version)
{
    assert_true(o->n < MAXV);
    struct mver *nv = &o->v[o->n];
    struct mver *top = o->n ? &o->v[o->n - 1] : NULL;
    nv->version = version;
    nv->stable = nv->deleted = false;
    nv->img = calloc(1, m->bs);
    nv->bm = calloc(1, m->bmb);
    if (top && !top->deleted) {
        memcpy(nv->img, top->img, m->bs);
        memcpy(nv->bm, top->bm, m->bmb);
    }
    o->n++;
    return nv;
}

static uint64_t newest(const struct mobj *o)
{
    return o->n ? o->v[o->n - 1].version : 0;
}

static void fill_random(struct model *m, uint8_t *p, uint32_t len)
{
    for (uint32_t i = 0; i < len; i += 8) {
        uint64_t x = t_rnd(&m->rng);
        memcpy(p + i, &x, 8);
    }
}

/* ---- operations ---------------------------------------------------------- */

static void do_write(struct model *m, struct mobj *o, bool run)
{
    uint32_t sectors = m->bs / 4096, off, len;
    if (t_rnd(&m->rng) % 5 == 0) {
        off = 0;
        len = m->bs;
    } else {
        uint32_t maxlen = sectors > 4 ? sectors / 4 : sectors;
        off = (uint32_t)(t_rnd(&m->rng) % sectors);
        len = 1 + (uint32_t)(t_rnd(&m->rng) % maxlen);
        if (off + len > sectors)
            len = sectors - off;
        off *= 4096;
        len *= 4096;
    }
    if (t_rnd(&m->rng) % 40 == 0)
        len = 0; /* a version bump only */
    bool stable = o->n == 0 || t_rnd(&m->rng) % 4 != 0;
    uint64_t version = t_rnd(&m->rng) % 3 ? 0 : newest(o) + 1 + t_rnd(&m->rng) % 3;
    fill_random(m, m->wbuf, len);
    struct t_op t;
    t_init(&t);
    t.op.oid = o->oid;
    t.op.version = version;
    t.op.offset = off;
    t.op.len = len;
    t.op.buf = m->wbuf;
    t.op.flags = stable ? VS_STORE_STABLE : 0;
    int rc = run ? t_run(m->d, m->s, &t, vs_store_write) : 0;
    assert_int_equal(rc, (int)len);
    uint64_t expect = version ? version : newest(o) + 1;
    if (getenv("STORE_TRACE"))
        fprintf(stderr, "write %llx v%llu off %u len %u %s\n", (unsigned long long)o->oid.stripe,
                (unsigned long long)expect, off, len, stable ? "stable" : "unstable");
    assert_int_equal(t.op.out_version, expect);
    struct mver *nv = push(m, o, expect);
    memcpy(nv->img + off, m->wbuf, len);
    for (uint32_t i = off / 4096; i < (off + len) / 4096; i++)
        nv->bm[i / 8] = (uint8_t)(nv->bm[i / 8] | (1u << (i % 8)));
    if (stable)
        mark_stable(o, expect);
}

static void check_read(struct model *m, struct mobj *o)
{
    int pick = (int)(t_rnd(&m->rng) % 3);
    uint64_t which = pick == 0 ? VS_STORE_READ_LATEST : pick == 1 ? VS_STORE_READ_STABLE : 0;
    const struct mver *exp = NULL;
    if (pick == 0 && o->n)
        exp = &o->v[o->n - 1];
    if (pick == 1 && o->n && o->v[0].stable)
        exp = &o->v[0];
    if (pick == 2) {
        if (!o->n)
            return;
        exp = &o->v[t_rnd(&m->rng) % (uint64_t)o->n];
        which = exp->version;
    }
    uint32_t sectors = m->bs / 4096;
    uint32_t off = (uint32_t)(t_rnd(&m->rng) % sectors);
    uint32_t len = 1 + (uint32_t)(t_rnd(&m->rng) % (sectors - off));
    off *= 4096;
    len *= 4096;
    struct t_op t;
    t_init(&t);
    t.op.oid = o->oid;
    t.op.version = which;
    t.op.offset = off;
    t.op.len = len;
    t.op.buf = m->rbuf;
    t.op.bitmap = m->rbm;
    int rc = t_run(m->d, m->s, &t, vs_store_read);
    m->checks++;
    if (!exp || exp->deleted) {
        assert_int_equal(rc, -ENOENT);
        return;
    }
    assert_int_equal(rc, (int)len);
    assert_int_equal(t.op.out_version, exp->version);
    assert_memory_equal(m->rbuf, exp->img + off, len);
    assert_memory_equal(m->rbm, exp->bm, m->bmb);
}

static void do_delete(struct model *m, struct mobj *o)
{
    struct t_op t;
    t_init(&t);
    t.op.oid = o->oid;
    bool exists = o->n && !o->v[o->n - 1].deleted;
    int rc = t_run(m->d, m->s, &t, vs_store_delete);
    if (!exists) {
        assert_int_equal(rc, -ENOENT);
        return;
    }
    assert_int_equal(rc, 0);
    uint64_t v = newest(o) + 1;
    assert_int_equal(t.op.out_version, v);
    struct mver *nv = push(m, o, v);
    nv->deleted = true;
    memset(nv->img, 0, m->bs);
    memset(nv->bm, 0, m->bmb);
    mark_stable(o, v);
}

static int list_op(struct model *m, struct mobj *o, bool rollback, uint64_t version)
{
    if (getenv("STORE_TRACE"))
        fprintf(stderr, "%s %llx v%llu\n", rollback ? "rollback" : "stabilize",
                (unsigned long long)o->oid.stripe, (unsigned long long)version);
    struct vs_store_obj_ver ov = {o->oid, version};
    struct t_op t;
    t_init(&t);
    t.op.list = &ov;
    t.op.list_count = 1;
    return t_run(m->d, m->s, &t, rollback ? vs_store_rollback : vs_store_stabilize);
}

static void do_stabilize(struct model *m, struct mobj *o)
{
    int first_unstable = -1;
    for (int i = 0; i < o->n && first_unstable < 0; i++)
        if (!o->v[i].stable)
            first_unstable = i;
    if (first_unstable < 0) {
        assert_int_equal(list_op(m, o, false, newest(o) + 5), o->n ? -ENOENT : -ENOENT);
        return;
    }
    int i = first_unstable + (int)(t_rnd(&m->rng) % (uint64_t)(o->n - first_unstable));
    int rc = list_op(m, o, false, o->v[i].version);
    if (rc != 0) {
        uint64_t v1 = 0, v2 = 0;
        int r1 = vs_store_stat(m->s, o->oid, VS_STORE_READ_LATEST, &v1, NULL);
        int r2 = vs_store_stat(m->s, o->oid, VS_STORE_READ_STABLE, &v2, NULL);
        fprintf(stderr, "stabilize %llu: %d; store latest %d/%llu stable %d/%llu; model:",
                (unsigned long long)o->v[i].version, rc, r1, (unsigned long long)v1, r2,
                (unsigned long long)v2);
        for (int k = 0; k < o->n; k++)
            fprintf(stderr, " v%llu%s%s", (unsigned long long)o->v[k].version,
                    o->v[k].stable ? "s" : "u", o->v[k].deleted ? "d" : "");
        fprintf(stderr, "\n");
    }
    assert_int_equal(rc, 0);
    mark_stable(o, o->v[i].version);
}

static void do_rollback(struct model *m, struct mobj *o)
{
    if (!o->n)
        return;
    if (o->v[0].stable && o->v[0].version > 1 && t_rnd(&m->rng) % 4 == 0) {
        assert_int_equal(list_op(m, o, true, o->v[0].version - 1), -EBUSY);
        return;
    }
    int keep = o->v[0].stable ? 1 + (int)(t_rnd(&m->rng) % (uint64_t)o->n) : 0;
    if (keep > o->n)
        keep = o->n;
    uint64_t to = keep ? o->v[keep - 1].version : 0;
    int rc = list_op(m, o, true, to);
    if (rc != 0) {
        fprintf(stderr, "rollback oid %llx to %llu: %d; model:", (unsigned long long)o->oid.stripe,
                (unsigned long long)to, rc);
        for (int i = 0; i < o->n; i++)
            fprintf(stderr, " v%llu%s%s", (unsigned long long)o->v[i].version,
                    o->v[i].stable ? "s" : "u", o->v[i].deleted ? "d" : "");
        fprintf(stderr, "\n");
    }
    assert_int_equal(rc, 0);
    for (int i = keep; i < o->n; i++)
        mver_free(&o->v[i]);
    o->n = keep;
}

static int cmp_le(const void *a, const void *b)
{
    const struct vs_store_list_entry *x = a, *y = b;
    if (x->oid.stripe != y->oid.stripe)
        return x->oid.stripe < y->oid.stripe ? -1 : 1;
    if (x->version != y->version)
        return x->version < y->version ? -1 : 1;
    return 0;
}

static void check_list(struct model *m, uint32_t pg_count, uint32_t pg)
{
    struct vs_store_list_entry *got = NULL, exp[NOBJ_MAX * MAXV];
    long n = vs_store_list(m->s, 0, pg_count, pg, 4 << 20, &got);
    assert_true(n >= 0);
    long k = 0;
    for (int i = 0; i < m->nobj; i++) {
        const struct mobj *o = &m->o[i];
        if ((o->oid.inode >> 48) != 0 ||
            (pg_count && (o->oid.stripe / (4 << 20)) % pg_count != pg))
            continue;
        for (int j = 0; j < o->n; j++)
            exp[k++] = (struct vs_store_list_entry){
                o->oid, o->v[j].version,
                (o->v[j].stable ? VS_STORE_LIST_STABLE : 0u) |
                    (o->v[j].deleted ? VS_STORE_LIST_DELETED : 0u)};
    }
    assert_int_equal(n, k);
    /* Stable entries come first. */
    bool seen_unstable = false;
    for (long i = 0; i < n; i++) {
        if (!(got[i].flags & VS_STORE_LIST_STABLE))
            seen_unstable = true;
        else
            assert_false(seen_unstable);
    }
    qsort(got, (size_t)n, sizeof(*got), cmp_le);
    qsort(exp, (size_t)k, sizeof(*exp), cmp_le);
    for (long i = 0; i < n; i++) {
        assert_int_equal(got[i].oid.stripe, exp[i].oid.stripe);
        assert_int_equal(got[i].version, exp[i].version);
        assert_int_equal(got[i].flags, exp[i].flags);
    }
    free(got);
}

static void do_simple(struct model *m, int kind)
{
    if (getenv("STORE_TRACE"))
        fprintf(stderr, "simple %d\n", kind);
    struct t_op t;
    t_init(&t);
    if (kind == 0) {
        assert_int_equal(t_run(m->d, m->s, &t, vs_store_sync), 0);
    } else if (kind == 1) {
        assert_int_equal(t_run(m->d, m->s, &t, vs_store_checkpoint), 0);
    } else {
        struct vs_store_stats st;
        vs_store_get_stats(m->s, &st);
        m->checkpoints += st.checkpoints;
        m->batched += st.writes_batched;
        assert_int_equal(vs_store_close(m->s), 0);
        m->s = t_open(m->d, &m->cfg);
    }
}

/* Reads the newest version of o in full and compares it with the model. */
static int unstable_count(const struct mobj *o);

static void check_latest(struct model *m, struct mobj *o)
{
    struct t_op t;
    t_init(&t);
    t.op.oid = o->oid;
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = m->bs;
    t.op.buf = m->rbuf;
    t.op.bitmap = m->rbm;
    int rc = t_run(m->d, m->s, &t, vs_store_read);
    m->checks++;
    const struct mver *exp = o->n ? &o->v[o->n - 1] : NULL;
    if (!exp || exp->deleted) {
        assert_int_equal(rc, -ENOENT);
        return;
    }
    assert_int_equal(rc, (int)m->bs);
    assert_int_equal(t.op.out_version, exp->version);
    assert_memory_equal(m->rbuf, exp->img, m->bs);
    assert_memory_equal(m->rbm, exp->bm, m->bmb);
}

/* The batch's writes, planned and started in one go (one loop turn). */
struct mbatch {
    struct t_op t[12];
    uint8_t *bufs[12];
    int obj[12], n;
};

/* Starts write i of the batch on object o: partial (or zero-length), stable
 * or not; the model takes it at once (the next write to o builds on it). */
static void batch_write(struct model *m, struct mbatch *b, int i, struct mobj *o)
{
    uint32_t sectors = m->bs / 4096, maxlen = sectors > 4 ? sectors / 4 : sectors;
    uint32_t off = (uint32_t)(t_rnd(&m->rng) % sectors);
    uint32_t len = (uint32_t)(t_rnd(&m->rng) % (maxlen + 1)); /* 0: a version bump only */
    len = VS_MIN(len, sectors - off) * 4096;
    off *= 4096;
    bool stable = o->n == 0 || unstable_count(o) > 0 || o->n >= MAXV - 3 ||
                  t_rnd(&m->rng) % 4 != 0;
    b->bufs[i] = t_alloc(VS_MAX(len, 4096u));
    fill_random(m, b->bufs[i], len);
    t_init(&b->t[i]);
    b->t[i].op.oid = o->oid;
    b->t[i].op.offset = off;
    b->t[i].op.len = len;
    b->t[i].op.buf = b->bufs[i];
    b->t[i].op.flags = stable ? VS_STORE_STABLE : 0;
    assert_int_equal(t_start(m->s, &b->t[i], vs_store_write), 0);
    struct mver *nv = push(m, o, newest(o) + 1);
    memcpy(nv->img + off, b->bufs[i], len);
    for (uint32_t k = off / 4096; k < (off + len) / 4096; k++)
        nv->bm[k / 8] = (uint8_t)(nv->bm[k / 8] | (1u << (k % 8)));
    if (stable)
        mark_stable(o, nv->version);
}

/* Several writes in flight at once (group commit): after the turn's first
 * record, the small writes gather into one journal record of several writes
 * (docs/disk-format.md, "Journal records"), sometimes two to one object. A
 * read started before any of them is written sees the version before them;
 * once they are done every object reads back from the journal, and after a
 * forced checkpoint from its block (the batched items copied in place). */
static void do_batch(struct model *m)
{
    struct mbatch b;
    b.n = 2 + (int)(t_rnd(&m->rng) % 11);
    int base = (int)(t_rnd(&m->rng) % (uint64_t)m->nobj), k = 0;
    struct t_op rd;
    uint8_t *pre_img = NULL, pre_bm[32] = {0};
    uint64_t pre_v = 0;
    for (int i = 0; i < b.n; i++) {
        if (i == 0 || t_rnd(&m->rng) % 4) /* else the same object again */
            k++;
        b.obj[i] = (base + k) % m->nobj;
        struct mobj *o = &m->o[b.obj[i]];
        if (o->n >= MAXV - 2) { /* keep the model bounded */
            b.n = i;
            break;
        }
        const struct mver *pre = o->n ? &o->v[o->n - 1] : NULL;
        if (i == 1 && b.obj[1] != b.obj[0] && pre && !pre->deleted) {
            /* Started after the turn's first write, before this one: it
             * must see the version before the batch, all of it unwritten. */
            pre_img = t_alloc(m->bs);
            memcpy(pre_img, pre->img, m->bs);
            memcpy(pre_bm, pre->bm, m->bmb);
            pre_v = pre->version;
            t_init(&rd);
            rd.op.oid = o->oid;
            rd.op.version = VS_STORE_READ_LATEST;
            rd.op.len = m->bs;
            rd.op.buf = m->rbuf;
            rd.op.bitmap = m->rbm;
            assert_int_equal(t_start(m->s, &rd, vs_store_read), 0);
        }
        batch_write(m, &b, i, o);
        if (i == b.n / 2 && t_rnd(&m->rng) % 2)
            vs_disk_sim_step(m->d, 1); /* the rest in the next loop turn */
    }
    assert_int_equal(vs_store_run_until_idle(m->s), 0);
    if (pre_img) {
        m->checks++;
        assert_int_equal(rd.calls, 1);
        assert_int_equal(rd.op.result, (int)m->bs);
        assert_int_equal(rd.op.out_version, pre_v);
        assert_memory_equal(m->rbuf, pre_img, m->bs);
        assert_memory_equal(m->rbm, pre_bm, m->bmb);
        free(pre_img);
    }
    for (int i = 0; i < b.n; i++) {
        assert_int_equal(b.t[i].calls, 1);
        assert_int_equal(b.t[i].op.result, (int)b.t[i].op.len);
        free(b.bufs[i]);
    }
    for (int i = 0; i < b.n; i++)
        check_latest(m, &m->o[b.obj[i]]);
    if (t_rnd(&m->rng) % 3 == 0) {
        do_simple(m, 1);
        for (int i = 0; i < b.n; i++)
            check_latest(m, &m->o[b.obj[i]]);
    }
}

/* Like an OSD: stabilize every unstable version now and then, so unstable
 * versions never pin the whole journal. */
static void stabilize_all(struct model *m)
{
    for (int i = 0; i < m->nobj; i++) {
        struct mobj *o = &m->o[i];
        if (o->n && !o->v[o->n - 1].stable) {
            assert_int_equal(list_op(m, o, false, newest(o)), 0);
            mark_stable(o, newest(o));
        }
    }
}

static int unstable_count(const struct mobj *o)
{
    int n = 0;
    for (int i = 0; i < o->n; i++)
        n += !o->v[i].stable;
    return n;
}

static void step(struct model *m, int i)
{
    if (i % 64 == 63)
        stabilize_all(m);
    struct mobj *o = &m->o[t_rnd(&m->rng) % (uint64_t)m->nobj];
    unsigned r = (unsigned)(t_rnd(&m->rng) % 100);
    if (o->n >= MAXV - 1 && r < 40)
        r = 50; /* stabilize to make room */
    if (r < 40)
        do_write(m, o, true);
    else if (r < 65)
        check_read(m, o);
    else if (r < 70)
        do_delete(m, o);
    else if (r < 80)
        do_stabilize(m, o);
    else if (r < 85)
        do_rollback(m, o);
    else if (r < 88)
        check_list(m, (uint32_t)(t_rnd(&m->rng) % 3), 0);
    else if (r < 91)
        do_simple(m, 0);
    else if (r < 93)
        do_simple(m, 1);
    else if (r < 94)
        do_simple(m, 2);
    else if (r < 97)
        do_batch(m);
    else
        check_read(m, o);
    if (o->n >= MAXV - 1 || unstable_count(o) > 2) /* keep the model bounded */
        do_stabilize(m, o);
}

static void run_model(uint32_t bs, enum vs_store_durability dur, uint64_t seed, int steps)
{
    struct model m;
    memset(&m, 0, sizeof(m));
    m.bs = bs;
    m.bmb = (bs / 4096 + 7) / 8;
    m.rng = seed * 2654435761u + 1;
    m.nobj = bs >= (1u << 20) ? 8 : bs >= (128u << 10) ? 16 : 24;
    uint64_t jsize = bs >= (1u << 20) ? (4u << 20) : bs >= (128u << 10) ? (2u << 20) : (1u << 20);
    uint64_t dev = (uint64_t)bs * (uint64_t)m.nobj * 6 + jsize + (4u << 20);
    m.d = t_sim_format(dev, seed, bs, jsize, false);
    m.cfg.durability = dur;
    m.s = t_open(m.d, &m.cfg);
    m.wbuf = t_alloc(bs);
    m.rbuf = t_alloc(bs);
    m.rbm = calloc(1, m.bmb);
    for (int i = 0; i < m.nobj; i++)
        m.o[i].oid = (struct vs_store_oid){(uint64_t)(i % 3) << 48 | 5, (uint64_t)i << 22};
    printf("model: bs=%u dur=%d seed=%llu steps=%d\n", bs, dur, (unsigned long long)seed, steps);
    for (int i = 0; i < steps; i++)
        step(&m, i);
    for (int i = 0; i < m.nobj; i++)
        for (int k = 0; k < 3; k++)
            check_read(&m, &m.o[i]);
    struct vs_store_stats st;
    vs_store_get_stats(m.s, &st);
    printf("  checks=%lu checkpoints=%llu fsyncs=%llu csum_errors=%llu flush_merged=%llu "
           "writes_batched=%llu\n",
           m.checks, (unsigned long long)st.checkpoints, (unsigned long long)st.fsyncs,
           (unsigned long long)st.csum_errors, (unsigned long long)st.flush_merged,
           (unsigned long long)(st.writes_batched + m.batched));
    assert_int_equal(st.csum_errors, 0);
    assert_true(st.writes_batched + m.batched > 0); /* records of several writes were built */
    assert_true(st.checkpoints + m.checkpoints > 0);
    assert_int_equal(vs_store_close(m.s), 0);
    vs_disk_destroy(m.d);
    for (int i = 0; i < m.nobj; i++)
        for (int j = 0; j < m.o[i].n; j++)
            mver_free(&m.o[i].v[j]);
    free(m.wbuf);
    free(m.rbuf);
    free(m.rbm);
}

static uint64_t seed_base(void)
{
    const char *e = getenv("STORE_SEED");
    return e ? strtoull(e, NULL, 10) : 1;
}

static void test_4k_durable(void **st)
{
    (void)st;
    run_model(4096, VS_STORE_DURABLE_ACK, seed_base(), 4000);
}
static void test_4k_lazy(void **st)
{
    (void)st;
    run_model(4096, VS_STORE_LAZY, seed_base() + 1, 4000);
}
static void test_128k_durable(void **st)
{
    (void)st;
    run_model(128 << 10, VS_STORE_DURABLE_ACK, seed_base() + 2, 3000);
}
static void test_128k_lazy(void **st)
{
    (void)st;
    run_model(128 << 10, VS_STORE_LAZY, seed_base() + 3, 3000);
}
static void test_1m_durable(void **st)
{
    (void)st;
    run_model(1 << 20, VS_STORE_DURABLE_ACK, seed_base() + 4, 800);
}
static void test_1m_lazy(void **st)
{
    (void)st;
    run_model(1 << 20, VS_STORE_LAZY, seed_base() + 5, 800);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_4k_durable),   cmocka_unit_test(test_4k_lazy),
        cmocka_unit_test(test_128k_durable), cmocka_unit_test(test_128k_lazy),
        cmocka_unit_test(test_1m_durable),   cmocka_unit_test(test_1m_lazy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
