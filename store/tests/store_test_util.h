/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_test_util.h -- helpers shared by the store tests: a simulated disk
 * with a fresh store, synchronous wrappers around the async ops (submit, run
 * the disk until the op's callback ran), and a checker of the async contract
 * (STYLE B9: the callback runs exactly once and never inside the call).
 */
#ifndef STORE_TEST_UTIL_H
#define STORE_TEST_UTIL_H

#include "vs_store.h"

#include "vs_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct t_op {
    struct vs_store_op op;
    int calls;
    int in_call; /* set while the vs_store_* call runs */
};

static void t_cb(struct vs_store_op *op)
{
    struct t_op *t = (struct t_op *)op;
    if (t->in_call) {
        fprintf(stderr, "B9 violated: callback inside the call\n");
        abort();
    }
    t->calls++;
    if (t->calls != 1) {
        fprintf(stderr, "B9 violated: callback ran %d times\n", t->calls);
        abort();
    }
}

static inline void t_init(struct t_op *t)
{
    memset(t, 0, sizeof(*t));
    t->op.cb = t_cb;
}

typedef int (*t_fn)(struct vs_store *, struct vs_store_op *);

/* Starts fn(op); 0 when accepted (callback pending). */
static inline int t_start(struct vs_store *s, struct t_op *t, t_fn fn)
{
    t->in_call = 1;
    int rc = fn(s, &t->op);
    t->in_call = 0;
    if (rc < 0 && t->calls) {
        fprintf(stderr, "B9 violated: error return but callback ran\n");
        abort();
    }
    return rc;
}

/* Runs fn to completion on disk d; returns the sync error or op->result. */
static inline int t_run(struct vs_disk *d, struct vs_store *s, struct t_op *t, t_fn fn)
{
    int rc = t_start(s, t, fn);
    if (rc < 0)
        return rc;
    while (!t->calls) {
        if (vs_disk_run_once(d) <= 0 && !t->calls) {
            fprintf(stderr, "op never completed\n");
            abort();
        }
    }
    return t->op.result;
}

static inline void *t_alloc(size_t size)
{
    void *p = NULL;
    if (posix_memalign(&p, 4096, size ? size : 4096) != 0)
        abort();
    memset(p, 0, size ? size : 4096);
    return p;
}

/* A sim disk with one device of `size` bytes, formatted with the options. */
static inline struct vs_disk *t_sim_format(uint64_t size, uint64_t seed, uint32_t block_size,
                                           uint64_t journal_size, bool csum_off)
{
    struct vs_disk *d;
    if (vs_disk_sim_create(1, &size, seed, &d) != 0)
        abort();
    struct vs_store_format_opts fo;
    memset(&fo, 0, sizeof(fo));
    fo.block_size = block_size;
    fo.csum_disabled = csum_off;
    fo.layout.journal_size = journal_size;
    fo.cluster_id = 7;
    fo.osd_id = 3;
    char err[256];
    int rc = vs_store_format(d, &fo, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "format: %s\n", err);
        abort();
    }
    return d;
}

static inline struct vs_store *t_open(struct vs_disk *d, const struct vs_store_config *cfg)
{
    struct vs_store *s;
    char err[256];
    int rc = vs_store_open(d, cfg, &s, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "open: %s (%s)\n", err, vs_strerror(rc));
        abort();
    }
    return s;
}

/* xorshift PRNG for the tests (tidy bans rand()). */
static inline uint64_t t_rnd(uint64_t *st)
{
    uint64_t x = *st;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *st = x;
    return x * 0x2545F4914F6CDD1Dull;
}

#endif /* STORE_TEST_UTIL_H */
