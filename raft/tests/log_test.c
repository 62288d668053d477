/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * log_test.c -- raft's persistent state in SQLite: appends, truncations,
 * snapshots and installs against a simple model, reopening the database at
 * random points, and "crashes" (closing with the turn's transaction still
 * open) that must lose exactly the uncommitted suffix.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft_int.h"
#include "vs_byte.h"

static uint64_t rng_state;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

struct mentry {
    uint64_t term;
    uint8_t type;
    uint32_t len;
    uint8_t data[64];
};

/* Model: entries by index (1-based), first/last, snapshot. */
struct lmodel {
    struct mentry e[4096];
    uint64_t first, last, snap_index, snap_term, term, vote;
};

struct lrig {
    char path[300];
    struct raft_db *db;
    struct raft_log log;
};

static void lrig_open(struct lrig *r)
{
    char err[256];
    if (raft__db_open(r->path, &r->db, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    assert_int_equal(raft__log_load(&r->log, r->db), 0);
}

static void lrig_close(struct lrig *r)
{
    raft__log_free(&r->log);
    raft__db_close(r->db); /* an open transaction is rolled back: a crash */
}

static void check(struct lrig *r, const struct lmodel *m)
{
    assert_int_equal(r->log.last, m->last);
    assert_int_equal(r->log.first, m->first);
    assert_int_equal(r->log.term, m->term);
    assert_int_equal(r->log.vote, m->vote);
    assert_int_equal(r->log.snap_index, m->snap_index);
    struct raft_buf scratch;
    raft__buf_init(&scratch);
    for (uint64_t i = m->first; i <= m->last; i++) {
        struct raft_log_entry e;
        assert_int_equal(raft__log_entry(&r->log, i, &e, &scratch), 0);
        assert_int_equal(e.term, m->e[i].term);
        assert_int_equal(e.type, m->e[i].type);
        assert_int_equal(e.len, m->e[i].len);
        assert_memory_equal(e.data, m->e[i].data, e.len);
        assert_int_equal(raft__log_term_of(&r->log, i), m->e[i].term);
    }
    struct raft_log_entry e;
    assert_int_equal(raft__log_entry(&r->log, m->last + 1, &e, &scratch), -ENOENT);
    raft__buf_free(&scratch);
}

/* Appends 1..4 random entries, sometimes over a suffix of the log. */
static void random_append(struct lrig *r, struct lmodel *m)
{
    uint64_t index = m->last + 1;
    /* Raft never truncates at or below a snapshot (it is committed). */
    uint64_t low = m->snap_index + 1 > m->first ? m->snap_index + 1 : m->first;
    if (rnd() % 5 == 0 && m->last >= low)
        index = low + rnd() % (m->last - low + 1);
    unsigned n = 1 + (unsigned)(rnd() % 4);
    struct raft_log_entry es[4];
    uint64_t term = m->term ? m->term : 1;
    for (unsigned i = 0; i < n; i++) {
        struct mentry *x = &m->e[index + i];
        x->term = term;
        x->type = (uint8_t)(1 + rnd() % 3);
        x->len = (uint32_t)(rnd() % 64);
        for (uint32_t k = 0; k < x->len; k++)
            x->data[k] = (uint8_t)rnd();
        es[i] = (struct raft_log_entry){x->term, x->type, x->len, x->data};
    }
    assert_int_equal(raft__log_append(&r->log, index, es, n), 0);
    m->last = index + n - 1;
}

static void test_log_model(void **state)
{
    (void)state;
    struct lrig r;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(r.path, sizeof(r.path), "%s/raft_log_%d.db", tmp, (int)getpid());
    unlink(r.path);
    lrig_open(&r);
    struct lmodel *m = calloc(1, sizeof(*m)), *durable = calloc(1, sizeof(*m));
    m->first = 1;
    *durable = *m;
    rng_state = 42;
    uint8_t conf[64];
    memset(conf, 0, sizeof(conf));
    conf[0] = 1;
    vs_put_u64(conf + 1, 1);
    vs_put_u64(conf + 9, 7);
    memcpy(conf + 17, "x:1", 4);
    uint32_t conf_len = 24;
    assert_int_equal(raft__conf_check(conf, conf_len), 0);
    for (int step = 0; step < 3000; step++) {
        unsigned t = (unsigned)(rnd() % 100);
        if (t < 60 && m->last < 4000) {
            random_append(&r, m);
        } else if (t < 70) {
            m->term += 1 + rnd() % 2;
            m->vote = rnd() % 4;
            assert_int_equal(raft__log_set_term_vote(&r.log, m->term, m->vote), 0);
        } else if (t < 75 && m->last > m->snap_index) {
            uint64_t index = m->snap_index + 1 + rnd() % (m->last - m->snap_index);
            unsigned trailing = (unsigned)(rnd() % 8);
            assert_int_equal(raft__log_snapshot(&r.log, index, m->e[index].term, conf, conf_len,
                                                1, trailing),
                             0);
            m->snap_index = index;
            m->snap_term = m->e[index].term;
            if (index > trailing && index - trailing >= m->first)
                m->first = index - trailing + 1;
        } else if (t < 77 && m->last < 3900) {
            uint64_t index = m->last + 1 + rnd() % 10;
            assert_int_equal(raft__log_install(&r.log, index, 9, conf, conf_len, 1), 0);
            m->snap_index = index;
            m->snap_term = 9;
            m->first = index + 1;
            m->last = index;
        } else if (t < 90) {
            assert_int_equal(raft__db_commit(r.db), 0);
            *durable = *m;
        } else if (t < 95) {
            /* crash: the open transaction is lost, the committed state stays */
            lrig_close(&r);
            lrig_open(&r);
            *m = *durable;
        } else {
            assert_int_equal(raft__db_commit(r.db), 0);
            *durable = *m;
            lrig_close(&r);
            lrig_open(&r);
        }
        check(&r, m);
    }
    lrig_close(&r);
    unlink(r.path);
    free(m);
    free(durable);
}

/* The configuration validator accepts what raft encodes and refuses damage. */
static void test_conf_check(void **state)
{
    (void)state;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    assert_int_equal(raft_configuration_add(&conf, 1, "10.0.0.1:4000", RAFT_VOTER), 0);
    assert_int_equal(raft_configuration_add(&conf, 2, "10.0.0.2:4000", RAFT_STANDBY), 0);
    struct raft_buffer buf;
    assert_int_equal(raft_configuration_encode(&conf, &buf), 0);
    assert_int_equal(raft__conf_check(buf.base, buf.len), 0);
    uint8_t *p = buf.base;
    rng_state = 5;
    for (int i = 0; i < 20000; i++) {
        size_t at = rnd() % buf.len;
        uint8_t old = p[at];
        p[at] = (uint8_t)rnd();
        size_t len = rnd() % 3 ? buf.len : rnd() % buf.len;
        if (raft__conf_check(p, len) == 0) {
            struct raft_configuration c2;
            struct raft_buffer b2 = {p, len};
            /* Must be safe to hand to raft now. */
            assert_int_equal(raft_configuration_decode(&b2, &c2), 0);
            raft_configuration_close(&c2);
        }
        p[at] = old;
    }
    raft_free(buf.base);
    raft_configuration_close(&conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_check),
        cmocka_unit_test(test_log_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
