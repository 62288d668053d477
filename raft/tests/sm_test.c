/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * sm_test.c -- the state machine against a model.
 *
 * A tiny in-memory model of the etcd semantics (keys, revisions, versions,
 * leases, history, compaction) runs beside the SQLite state machine. Random
 * commands (puts, deletes of keys and ranges, transactions with every compare
 * target, lease grants and revokes, compactions) go to both; after each one
 * the test checks the result, the events it produced, and, often, the whole
 * state, the history from a random revision, a snapshot restored into a fresh
 * database, and a reopened database. Seeds are fixed (RAFT_SM_SEEDS=n runs
 * more); a failure prints the seed and step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft_int.h"
#include "vs_byte.h"

/* ---- the model ----------------------------------------------------------------- */

#define NKEYS 10
static const char *const key_names[NKEYS] = {"a", "a/", "a/1", "a/2", "a/22", "ab", "b", "b/x",
                                             "c", "c\xff"};
#define NLEASE_IDS 6

struct mkv {
    bool live;
    uint8_t val[16];
    uint32_t vlen;
    uint64_t create, mod, version, lease;
};

struct mev {
    uint64_t rev;
    uint8_t type;
    int key;
    uint8_t val[16];
    uint32_t vlen;
    uint64_t create, version, lease;
};

struct model {
    struct mkv kv[NKEYS];
    struct mev *ev;
    size_t n_ev, cap_ev;
    bool lease_live[NLEASE_IDS + 40];
    uint64_t lease_ttl[NLEASE_IDS + 40];
    uint64_t rev, compact_rev, next_lease;
};

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static unsigned rndn(unsigned n)
{
    return (unsigned)(rnd() % n);
}

static int key_cmp(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    return c ? c : (alen < blen ? -1 : (alen > blen ? 1 : 0));
}

/* Model's own range test, written independently of raft__key_in_range. */
static bool m_in_range(int k, const uint8_t *start, uint32_t slen, const uint8_t *end,
                       uint32_t elen)
{
    const uint8_t *key = (const uint8_t *)key_names[k];
    uint32_t klen = (uint32_t)strlen(key_names[k]);
    if (elen == 0)
        return key_cmp(key, klen, start, slen) == 0;
    if (key_cmp(key, klen, start, slen) < 0)
        return false;
    if (elen == 1 && end[0] == 0)
        return true;
    return key_cmp(key, klen, end, elen) < 0;
}

static void m_event(struct model *m, uint64_t rev, uint8_t type, int k)
{
    if (m->n_ev == m->cap_ev) {
        m->cap_ev = m->cap_ev ? m->cap_ev * 2 : 64;
        m->ev = realloc(m->ev, m->cap_ev * sizeof(*m->ev));
    }
    struct mev *e = &m->ev[m->n_ev++];
    memset(e, 0, sizeof(*e));
    e->rev = rev;
    e->type = type;
    e->key = k;
    if (type == VS_META_EVENT_PUT) {
        memcpy(e->val, m->kv[k].val, m->kv[k].vlen);
        e->vlen = m->kv[k].vlen;
        e->create = m->kv[k].create;
        e->version = m->kv[k].version;
        e->lease = m->kv[k].lease;
    }
}

/* ---- helpers on the real thing ----------------------------------------------------- */

struct rig {
    char dir[256];
    char path[300];
    struct raft_db *db;
    struct raft_sm sm;
    struct raft_limits lim;
    uint64_t index;
};

static void rig_open(struct rig *r)
{
    char err[256];
    int rc = raft__db_open(r->path, &r->db, err, sizeof(err));
    if (rc != 0)
        fail_msg("open: %s", err);
    assert_int_equal(raft__sm_init(&r->sm, r->db, &r->lim), 0);
    assert_int_equal(raft__db_commit(r->db), 0);
}

static void rig_init(struct rig *r, const char *name)
{
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(r->dir, sizeof(r->dir), "%s/raft_sm_%s_%d", tmp, name, (int)getpid());
    snprintf(r->path, sizeof(r->path), "%s.db", r->dir);
    unlink(r->path);
    r->lim.value_max = 1024;
    r->index = 0;
    rig_open(r);
}

static void rig_close(struct rig *r, bool remove)
{
    raft__sm_free(&r->sm);
    raft__db_close(r->db);
    if (remove) {
        char p[320];
        unlink(r->path);
        snprintf(p, sizeof(p), "%s-wal", r->path);
        unlink(p);
        snprintf(p, sizeof(p), "%s-shm", r->path);
        unlink(p);
    }
}

/* Applies command bytes in a transaction of its own. */
static void apply_cmd(struct rig *r, struct raft_buf *cmd, struct raft_sm_result *res)
{
    assert_int_equal(raft__db_begin(r->db), 0);
    int rc = raft__sm_apply(&r->sm, ++r->index, cmd->p, cmd->len, res);
    assert_int_equal(rc, 0);
    assert_int_equal(raft__sm_save(&r->sm), 0);
    raft__db_mark_durable(r->db);
    assert_int_equal(raft__db_commit(r->db), 0);
}

static void cmd_header(struct raft_buf *b, uint8_t type)
{
    raft__buf_reset(b);
    raft__buf_u8(b, RAFT_CMD_VERSION);
    raft__buf_u8(b, type);
}

/* ---- checks ------------------------------------------------------------------------ */

static void check_kv(const struct model *m, int k, const struct vs_meta_kv *kv, bool with_value)
{
    const struct mkv *x = &m->kv[k];
    assert_true(x->live);
    assert_int_equal(kv->key_len, strlen(key_names[k]));
    assert_memory_equal(kv->key, key_names[k], kv->key_len);
    assert_int_equal(kv->create_rev, x->create);
    assert_int_equal(kv->mod_rev, x->mod);
    assert_int_equal(kv->version, x->version);
    assert_int_equal(kv->lease, x->lease);
    if (with_value) {
        assert_int_equal(kv->value_len, x->vlen);
        if (x->vlen)
            assert_memory_equal(kv->value, x->val, x->vlen);
    }
}

static int key_index(const struct vs_meta_kv *kv)
{
    for (int k = 0; k < NKEYS; k++)
        if (kv->key_len == strlen(key_names[k]) && memcmp(kv->key, key_names[k], kv->key_len) == 0)
            return k;
    fail_msg("unknown key");
    return -1;
}

/* The whole live state, through one open range. */
static void check_state(struct rig *r, const struct model *m)
{
    assert_int_equal(r->sm.rev, m->rev);
    assert_int_equal(r->sm.compact_rev, m->compact_rev);
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = "\0", .key_len = 1,
                            .range_end = "\0", .range_end_len = 1};
    struct raft_buf out;
    raft__buf_init(&out);
    /* wrap in a result header so the txn decoder reads it */
    raft__buf_u64(&out, 0);
    raft__buf_u8(&out, 1);
    raft__buf_u32(&out, 1);
    assert_int_equal(raft__sm_range(&r->sm, &op, &out), 0);
    struct vs_meta_txn_result res;
    void *arena;
    assert_int_equal(raft__txn_result_decode(out.p, out.len, &res, &arena), 0);
    unsigned live = 0;
    for (int k = 0; k < NKEYS; k++)
        live += m->kv[k].live;
    assert_int_equal(res.ops[0].n_kvs, live);
    unsigned i = 0;
    for (int k = 0; k < NKEYS; k++)
        if (m->kv[k].live)
            check_kv(m, k, &res.ops[0].kvs[i++], true);
    free(arena);
    raft__buf_free(&out);
}

/* Events the last command produced (in sm->events) against the model's tail. */
static void check_new_events(struct rig *r, const struct model *m, size_t first)
{
    struct raft_buf b;
    raft__buf_init(&b);
    raft__buf_u64(&b, 0);
    raft__buf_u32(&b, r->sm.n_events);
    raft__buf_bytes(&b, r->sm.events.p, r->sm.events.len);
    struct vs_meta_event *ev;
    unsigned n;
    uint64_t rev;
    assert_int_equal(raft__events_decode(b.p, b.len, &ev, &n, &rev), 0);
    assert_int_equal(n, m->n_ev - first);
    for (unsigned i = 0; i < n; i++) {
        const struct mev *e = &m->ev[first + i];
        assert_int_equal(ev[i].type, e->type);
        assert_int_equal(key_index(&ev[i].kv), e->key);
        assert_int_equal(ev[i].kv.mod_rev, e->rev);
        if (e->type == VS_META_EVENT_PUT) {
            assert_int_equal(ev[i].kv.value_len, e->vlen);
            assert_int_equal(ev[i].kv.version, e->version);
            assert_int_equal(ev[i].kv.create_rev, e->create);
            assert_int_equal(ev[i].kv.lease, e->lease);
        }
    }
    free(ev);
    raft__buf_free(&b);
    raft__sm_events_clear(&r->sm);
}

/* History from a random revision over a random range, via raft__sm_events. */
static void check_history(struct rig *r, const struct model *m)
{
    uint64_t from = m->compact_rev + rndn((unsigned)(m->rev - m->compact_rev + 2));
    if (from == 0)
        from = 1;
    int k = (int)rndn(NKEYS);
    uint8_t end[16];
    uint32_t elen = vs_meta_prefix_end(key_names[k], (uint32_t)strlen(key_names[k]), end);
    const uint8_t *start = (const uint8_t *)key_names[k];
    uint32_t slen = (uint32_t)strlen(key_names[k]);
    size_t want = 0;
    while (want < m->n_ev && m->ev[want].rev < from)
        want++;
    uint64_t next = from;
    while (next <= m->rev) {
        struct raft_buf b;
        raft__buf_init(&b);
        raft__buf_u64(&b, 0);
        raft__buf_u32(&b, 0);
        unsigned n;
        assert_int_equal(raft__sm_events(&r->sm, next, start, slen, end, elen, 1 + rndn(5), &b,
                                         &n, &next),
                         0);
        vs_put_u32(b.p + 8, n);
        struct vs_meta_event *ev;
        uint64_t rev;
        assert_int_equal(raft__events_decode(b.p, b.len, &ev, &n, &rev), 0);
        for (unsigned i = 0; i < n; i++) {
            while (want < m->n_ev && !m_in_range(m->ev[want].key, start, slen, end, elen))
                want++;
            assert_true(want < m->n_ev);
            assert_int_equal(key_index(&ev[i].kv), m->ev[want].key);
            assert_int_equal(ev[i].kv.mod_rev, m->ev[want].rev);
            assert_int_equal(ev[i].type, m->ev[want].type);
            want++;
        }
        free(ev);
        raft__buf_free(&b);
    }
    while (want < m->n_ev && !m_in_range(m->ev[want].key, start, slen, end, elen))
        want++;
    assert_int_equal(want, m->n_ev);
    if (m->compact_rev > 1) {
        struct raft_buf b;
        raft__buf_init(&b);
        unsigned n;
        assert_int_equal(raft__sm_events(&r->sm, m->compact_rev - 1, start, slen, end, elen, 10,
                                         &b, &n, &next),
                         VS_ECOMPACTED);
        raft__buf_free(&b);
    }
}

/* ---- random commands ------------------------------------------------------------------ */

struct gen_op {
    struct vs_meta_op op;
    uint8_t end[16];
    uint8_t val[16];
};

static void gen_range_bounds(struct gen_op *g, int k)
{
    g->op.key = key_names[k];
    g->op.key_len = (uint32_t)strlen(key_names[k]);
    unsigned how = rndn(4);
    if (how == 0) {
        g->op.range_end_len = 0;
    } else if (how == 1) {
        g->op.range_end_len = vs_meta_prefix_end(g->op.key, g->op.key_len, g->end);
        g->op.range_end = g->end;
    } else if (how == 2) {
        g->end[0] = 0;
        g->op.range_end = g->end;
        g->op.range_end_len = 1;
    } else {
        const char *e = key_names[rndn(NKEYS)];
        memcpy(g->end, e, strlen(e));
        g->op.range_end = g->end;
        g->op.range_end_len = (uint32_t)strlen(e);
    }
}

static void gen_op(struct gen_op *g, const struct model *m)
{
    memset(g, 0, sizeof(*g));
    int k = (int)rndn(NKEYS);
    unsigned t = rndn(10);
    if (t < 5) {
        g->op.type = VS_META_OP_PUT;
        g->op.key = key_names[k];
        g->op.key_len = (uint32_t)strlen(key_names[k]);
        g->op.value_len = rndn(8);
        for (unsigned i = 0; i < g->op.value_len; i++)
            g->val[i] = (uint8_t)rnd();
        g->op.value = g->val;
        if (rndn(4) == 0)
            g->op.lease = 1 + rndn(NLEASE_IDS);
        g->op.flags = rndn(2) ? VS_META_PREV_KV : 0;
        (void)m;
    } else if (t < 7) {
        g->op.type = VS_META_OP_DELETE;
        gen_range_bounds(g, k);
        g->op.flags = rndn(2) ? VS_META_PREV_KV : 0;
    } else {
        g->op.type = VS_META_OP_RANGE;
        gen_range_bounds(g, k);
        g->op.limit = rndn(3) == 0 ? 1 + rndn(3) : 0;
        unsigned f = rndn(4);
        g->op.flags = f == 1 ? VS_META_KEYS_ONLY : (f == 2 ? VS_META_COUNT_ONLY : 0);
    }
}

/* Model execution of ops; returns the status, appends expected results. */
struct expect_op {
    uint8_t type;
    bool more;
    uint64_t count, deleted;
    int keys[NKEYS];
    struct mkv prev[NKEYS];
    unsigned n;
};

static int m_range(const struct model *m, const struct vs_meta_op *op, struct expect_op *x)
{
    memset(x, 0, sizeof(*x));
    x->type = VS_META_OP_RANGE;
    for (int k = 0; k < NKEYS; k++) {
        if (!m->kv[k].live || !m_in_range(k, op->key, op->key_len, op->range_end,
                                          op->range_end_len))
            continue;
        x->count++;
        if (op->flags & VS_META_COUNT_ONLY)
            continue;
        if (op->limit && x->n == op->limit) {
            x->more = true;
            continue;
        }
        x->keys[x->n] = k;
        x->prev[x->n++] = m->kv[k];
    }
    return 0;
}

static int m_put(struct model *m, const struct vs_meta_op *op, uint64_t rev, struct expect_op *x)
{
    memset(x, 0, sizeof(*x));
    x->type = VS_META_OP_PUT;
    if (op->lease && !m->lease_live[op->lease])
        return VS_ELEASE;
    int k = -1;
    for (int i = 0; i < NKEYS; i++)
        if (op->key_len == strlen(key_names[i]) && memcmp(op->key, key_names[i], op->key_len) == 0)
            k = i;
    assert_true(k >= 0);
    struct mkv *kv = &m->kv[k];
    if (kv->live && (op->flags & VS_META_PREV_KV)) {
        x->keys[0] = k;
        x->prev[0] = *kv;
        x->n = 1;
    }
    kv->create = kv->live ? kv->create : rev;
    kv->version = kv->live ? kv->version + 1 : 1;
    kv->live = true;
    kv->mod = rev;
    kv->lease = op->lease;
    kv->vlen = op->value_len;
    memcpy(kv->val, op->value, op->value_len);
    m_event(m, rev, VS_META_EVENT_PUT, k);
    return 0;
}

static bool m_delete(struct model *m, const struct vs_meta_op *op, uint64_t rev,
                     struct expect_op *x)
{
    memset(x, 0, sizeof(*x));
    x->type = VS_META_OP_DELETE;
    bool wrote = false;
    for (int k = 0; k < NKEYS; k++) {
        if (!m->kv[k].live || !m_in_range(k, op->key, op->key_len, op->range_end,
                                          op->range_end_len))
            continue;
        x->deleted++;
        if (op->flags & VS_META_PREV_KV) {
            x->keys[x->n] = k;
            x->prev[x->n++] = m->kv[k];
        }
        m->kv[k].live = false;
        m_event(m, rev, VS_META_EVENT_DELETE, k);
        wrote = true;
    }
    return wrote;
}

static void check_op_result(const struct expect_op *x, const struct vs_meta_op_result *r,
                            const struct vs_meta_op *op)
{
    assert_int_equal(r->type, x->type);
    assert_int_equal(r->n_kvs, x->n);
    assert_int_equal(r->deleted, x->deleted);
    if (x->type == VS_META_OP_RANGE) {
        assert_int_equal(r->count, x->count);
        assert_int_equal(r->more, x->more);
    }
    for (unsigned i = 0; i < x->n; i++) {
        struct model tmp;
        memset(&tmp, 0, sizeof(tmp));
        tmp.kv[x->keys[i]] = x->prev[i];
        check_kv(&tmp, x->keys[i], &r->kvs[i], !(op->flags & VS_META_KEYS_ONLY));
    }
}

static bool m_compare(const struct model *m, const struct vs_meta_compare *c)
{
    int k = -1;
    for (int i = 0; i < NKEYS; i++)
        if (c->key_len == strlen(key_names[i]) && memcmp(c->key, key_names[i], c->key_len) == 0)
            k = i;
    const struct mkv *kv = &m->kv[k];
    int d;
    if (c->target == VS_META_CMP_VALUE) {
        if (!kv->live)
            return c->op == VS_META_NE;
        d = key_cmp(kv->val, kv->vlen, c->value, c->value_len);
    } else {
        uint64_t have = 0;
        if (kv->live)
            have = c->target == VS_META_CMP_VERSION ? kv->version
                   : c->target == VS_META_CMP_CREATE ? kv->create
                   : c->target == VS_META_CMP_MOD    ? kv->mod
                                                     : kv->lease;
        d = have < c->number ? -1 : (have > c->number ? 1 : 0);
    }
    switch (c->op) {
    case VS_META_EQ:
        return d == 0;
    case VS_META_NE:
        return d != 0;
    case VS_META_LT:
        return d < 0;
    default:
        return d > 0;
    }
}

static void gen_compare(struct vs_meta_compare *c, const struct model *m, uint8_t *val)
{
    int k = (int)rndn(NKEYS);
    memset(c, 0, sizeof(*c));
    c->key = key_names[k];
    c->key_len = (uint32_t)strlen(key_names[k]);
    c->target = (uint8_t)rndn(5);
    c->op = (uint8_t)rndn(4);
    const struct mkv *kv = &m->kv[k];
    if (c->target == VS_META_CMP_VALUE) {
        if (kv->live && rndn(2)) {
            memcpy(val, kv->val, kv->vlen);
            c->value_len = kv->vlen;
        } else {
            c->value_len = rndn(3);
            for (unsigned i = 0; i < c->value_len; i++)
                val[i] = (uint8_t)rnd();
        }
        c->value = val;
    } else {
        uint64_t have = kv->live ? (c->target == VS_META_CMP_VERSION ? kv->version
                                    : c->target == VS_META_CMP_CREATE ? kv->create
                                    : c->target == VS_META_CMP_MOD    ? kv->mod
                                                                      : kv->lease)
                                 : 0;
        c->number = rndn(2) ? have : have + rndn(3) - 1;
    }
}

/* The model runs one branch of a txn; a failed op undoes all of it. */
static int m_run(struct model *m, const struct vs_meta_op *run, unsigned n, struct expect_op *x)
{
    struct model saved = *m;
    size_t first = m->n_ev;
    uint64_t new_rev = m->rev + 1;
    bool wrote = false;
    int status = 0;
    for (unsigned i = 0; i < n && status == 0; i++) {
        if (run[i].type == VS_META_OP_RANGE)
            m_range(m, &run[i], &x[i]);
        else if (run[i].type == VS_META_OP_PUT)
            wrote |= (status = m_put(m, &run[i], new_rev, &x[i])) == 0;
        else
            wrote |= m_delete(m, &run[i], new_rev, &x[i]);
    }
    if (status != 0) {
        struct mev *ev = m->ev;
        size_t cap = m->cap_ev;
        *m = saved;
        m->ev = ev;
        m->cap_ev = cap;
        m->n_ev = first;
    } else if (wrote) {
        m->rev = new_rev;
    }
    return status;
}

/* One random transaction against both sides. */
static void step_txn(struct rig *r, struct model *m)
{
    struct vs_meta_compare cmp[3];
    uint8_t cval[3][16];
    struct gen_op ops[6];
    struct vs_meta_op flat[6];
    unsigned n_cmp = rndn(3), n_succ = 1 + rndn(3), n_fail = rndn(3);
    for (unsigned i = 0; i < n_cmp; i++)
        gen_compare(&cmp[i], m, cval[i]);
    for (unsigned i = 0; i < n_succ + n_fail; i++) {
        gen_op(&ops[i], m);
        flat[i] = ops[i].op;
        if (flat[i].type == VS_META_OP_PUT)
            flat[i].value = ops[i].val;
        if (flat[i].range_end_len && flat[i].range_end != NULL)
            flat[i].range_end = ops[i].end;
    }
    struct vs_meta_txn txn = {.cmp = cmp, .n_cmp = n_cmp, .success = flat, .n_success = n_succ,
                              .failure = flat + n_succ, .n_failure = n_fail};
    struct raft_buf cmd;
    raft__buf_init(&cmd);
    cmd_header(&cmd, RAFT_CMD_TXN);
    raft__txn_encode(&cmd, &txn);

    size_t first = m->n_ev;
    bool ok = true;
    for (unsigned i = 0; i < n_cmp && ok; i++)
        ok = m_compare(m, &cmp[i]);
    const struct vs_meta_op *run = ok ? flat : flat + n_succ;
    unsigned n = ok ? n_succ : n_fail;
    struct expect_op *x = calloc(n + 1, sizeof(*x));
    int status = m_run(m, run, n, x);

    struct raft_sm_result res;
    apply_cmd(r, &cmd, &res);
    assert_int_equal(res.status, status);
    if (status == 0) {
        struct vs_meta_txn_result tr;
        void *arena;
        assert_int_equal(raft__txn_result_decode(res.out.p, res.out.len, &tr, &arena), 0);
        assert_int_equal(tr.succeeded, ok);
        assert_int_equal(tr.revision, m->rev);
        assert_int_equal(tr.n_ops, n);
        for (unsigned i = 0; i < n; i++)
            check_op_result(&x[i], &tr.ops[i], &run[i]);
        free(arena);
    }
    check_new_events(r, m, first);
    free(x);
    raft__buf_free(&res.out);
    raft__buf_free(&cmd);
}

static void step_lease(struct rig *r, struct model *m)
{
    struct raft_buf cmd;
    raft__buf_init(&cmd);
    struct raft_sm_result res;
    size_t first = m->n_ev;
    if (rndn(2)) {
        uint64_t id = rndn(2) ? 0 : 1 + rndn(NLEASE_IDS);
        uint64_t ttl = 500 + rndn(5000);
        cmd_header(&cmd, RAFT_CMD_LEASE_GRANT);
        raft__buf_u64(&cmd, id);
        raft__buf_u64(&cmd, ttl);
        int status = 0;
        uint64_t got = id;
        if (id && m->lease_live[id]) {
            status = -EEXIST;
        } else if (!id) {
            for (got = m->next_lease; m->lease_live[got]; got++)
                ;
            m->next_lease = got + 1;
        }
        if (status == 0) {
            m->lease_live[got] = true;
            m->lease_ttl[got] = ttl < VS_META_LEASE_TTL_MIN_MS ? VS_META_LEASE_TTL_MIN_MS : ttl;
        }
        apply_cmd(r, &cmd, &res);
        assert_int_equal(res.status, status);
        if (status == 0) {
            assert_int_equal(vs_get_u64(res.out.p), got);
            assert_int_equal(vs_get_u64(res.out.p + 8), m->lease_ttl[got]);
        }
    } else {
        uint64_t id = 1 + rndn(NLEASE_IDS + 2);
        cmd_header(&cmd, RAFT_CMD_LEASE_REVOKE);
        raft__buf_u32(&cmd, 1);
        raft__buf_u64(&cmd, id);
        int status = m->lease_live[id] ? 0 : VS_ELEASE;
        if (status == 0) {
            bool wrote = false;
            for (int k = 0; k < NKEYS; k++) {
                if (m->kv[k].live && m->kv[k].lease == id) {
                    m->kv[k].live = false;
                    m_event(m, m->rev + 1, VS_META_EVENT_DELETE, k);
                    wrote = true;
                }
            }
            m->rev += wrote;
            m->lease_live[id] = false;
        }
        apply_cmd(r, &cmd, &res);
        assert_int_equal(res.status, status);
    }
    check_new_events(r, m, first);
    raft__buf_free(&res.out);
    raft__buf_free(&cmd);
}

static void step_compact(struct rig *r, struct model *m)
{
    uint64_t rev = m->compact_rev + rndn((unsigned)(m->rev - m->compact_rev + 2));
    struct raft_buf cmd;
    raft__buf_init(&cmd);
    cmd_header(&cmd, RAFT_CMD_COMPACT);
    raft__buf_u64(&cmd, rev);
    int status = 0;
    if (rev > m->rev || rev == 0)
        status = -EINVAL;
    else if (rev <= m->compact_rev)
        status = VS_ECOMPACTED;
    else
        m->compact_rev = rev;
    struct raft_sm_result res;
    apply_cmd(r, &cmd, &res);
    assert_int_equal(res.status, status);
    raft__buf_free(&res.out);
    raft__buf_free(&cmd);
}

/* Snapshot, restore into a fresh database, compare. */
static void check_snapshot(struct rig *r, const struct model *m)
{
    struct raft_buf snap;
    raft__buf_init(&snap);
    assert_int_equal(raft__sm_snapshot(&r->sm, &snap), 0);
    struct rig r2;
    rig_init(&r2, "restore");
    assert_int_equal(raft__db_begin(r2.db), 0);
    assert_int_equal(raft__sm_restore(&r2.sm, snap.p, snap.len), 0);
    assert_int_equal(raft__db_commit(r2.db), 0);
    assert_int_equal(r2.sm.applied_index, r->sm.applied_index);
    check_state(&r2, m);
    check_history(&r2, m);
    /* A damaged snapshot is refused and changes nothing. */
    snap.p[snap.len / 2] ^= 0x40;
    assert_int_equal(raft__db_begin(r2.db), 0);
    assert_int_equal(raft__sm_restore(&r2.sm, snap.p, snap.len), -EINVAL);
    assert_int_equal(raft__db_commit(r2.db), 0);
    check_state(&r2, m);
    rig_close(&r2, true);
    raft__buf_free(&snap);
}

static void run_seed(uint64_t seed, unsigned steps)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    struct rig r;
    rig_init(&r, "model");
    struct model *m = calloc(1, sizeof(*m));
    m->rev = 1;
    m->next_lease = 1;
    for (unsigned i = 0; i < steps; i++) {
        unsigned t = rndn(20);
        if (t < 14)
            step_txn(&r, m);
        else if (t < 18)
            step_lease(&r, m);
        else
            step_compact(&r, m);
        if (rndn(8) == 0)
            check_state(&r, m);
        if (rndn(8) == 0)
            check_history(&r, m);
        if (rndn(60) == 0)
            check_snapshot(&r, m);
        if (rndn(80) == 0) { /* reopen: everything persisted */
            rig_close(&r, false);
            rig_open(&r);
            check_state(&r, m);
        }
    }
    check_state(&r, m);
    check_history(&r, m);
    check_snapshot(&r, m);
    rig_close(&r, true);
    free(m->ev);
    free(m);
}

static void test_model(void **state)
{
    (void)state;
    unsigned seeds = getenv("RAFT_SM_SEEDS") ? (unsigned)strtoul(getenv("RAFT_SM_SEEDS"), 0, 10)
                                             : 12;
    for (unsigned s = 1; s <= seeds; s++) {
        print_message("seed %u\n", s);
        run_seed(s, 600);
    }
}

/* Decoders refuse garbage without crashing. */
static void test_decode_garbage(void **state)
{
    (void)state;
    struct raft_limits lim = {.value_max = 100};
    uint8_t buf[256];
    rng_state = 7;
    for (int i = 0; i < 20000; i++) {
        size_t len = rndn(sizeof(buf));
        for (size_t j = 0; j < len; j++)
            buf[j] = (uint8_t)(rndn(4) ? rndn(4) : rnd());
        struct raft_txn t;
        if (raft__txn_decode(buf, len, &lim, &t) == 0)
            raft__txn_free(&t);
        struct vs_meta_txn_result res;
        void *arena;
        if (raft__txn_result_decode(buf, len, &res, &arena) == 0)
            free(arena);
        struct vs_meta_event *ev;
        unsigned n;
        uint64_t rev;
        if (raft__events_decode(buf, len, &ev, &n, &rev) == 0)
            free(ev);
    }
}

static void test_prefix_end(void **state)
{
    (void)state;
    uint8_t out[8];
    assert_int_equal(vs_meta_prefix_end("ab", 2, out), 2);
    assert_memory_equal(out, "ac", 2);
    assert_int_equal(vs_meta_prefix_end("a\xff", 2, out), 1);
    assert_memory_equal(out, "b", 1);
    assert_int_equal(vs_meta_prefix_end("\xff\xff", 2, out), 1);
    assert_int_equal(out[0], 0);
    assert_true(raft__key_in_range((const uint8_t *)"a/1", 3, (const uint8_t *)"a/", 2,
                                   (const uint8_t *)"a0", 2));
    assert_false(raft__key_in_range((const uint8_t *)"a0", 2, (const uint8_t *)"a/", 2,
                                    (const uint8_t *)"a0", 2));
    assert_true(raft__key_in_range((const uint8_t *)"zz", 2, (const uint8_t *)"a", 1,
                                   (const uint8_t *)"\0", 1));
}

/* A corrupt or foreign file is refused with a clear message. */
static void test_corrupt_file(void **state)
{
    (void)state;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char path[300];
    snprintf(path, sizeof(path), "%s/raft_sm_garbage_%d.db", tmp, (int)getpid());
    FILE *f = fopen(path, "w");
    for (int i = 0; i < 8192; i++)
        fputc(i * 7 + 3, f);
    fclose(f);
    struct raft_db *db;
    char err[256] = "";
    int rc = raft__db_open(path, &db, err, sizeof(err));
    assert_true(rc == VS_ECORRUPT);
    assert_non_null(strstr(err, path));
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_end),
        cmocka_unit_test(test_decode_garbage),
        cmocka_unit_test(test_corrupt_file),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
