/* SPDX-License-Identifier: GPL-3.0-or-later */
/* osd_objq: FIFO per object, one head per object, and a model-based random
 * run with colliding hashes and backward-shift removals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "osd_objq.h"

struct op {
    struct vs_objq_link link;
    uint64_t inode, stripe;
    unsigned seq;
};

static void test_fifo_per_object(void **state)
{
    (void)state;
    struct vs_objq q;
    assert_int_equal(vs_objq_init(&q, 8), 0);
    struct op a = {.seq = 1}, b = {.seq = 2}, c = {.seq = 3}, d = {.seq = 4};
    assert_true(vs_objq_push(&q, 1, 0, &a.link));
    assert_false(vs_objq_push(&q, 1, 0, &b.link));
    assert_true(vs_objq_push(&q, 1, 131072, &c.link)); /* another object runs at once */
    assert_false(vs_objq_push(&q, 1, 0, &d.link));
    assert_ptr_equal(vs_objq_head(&q, 1, 0), &a.link);
    assert_int_equal(q.count, 2);
    assert_int_equal(q.queued, 4);
    assert_ptr_equal(vs_objq_pop(&q, 1, 0), &b.link);
    assert_ptr_equal(vs_objq_pop(&q, 1, 0), &d.link);
    assert_null(vs_objq_pop(&q, 1, 0));
    assert_null(vs_objq_head(&q, 1, 0));
    assert_null(vs_objq_pop(&q, 1, 131072));
    assert_int_equal(q.count, 0);
    assert_int_equal(q.queued, 0);
    vs_objq_free(&q);
}

static void test_bad_sizes(void **state)
{
    (void)state;
    struct vs_objq q;
    assert_int_equal(vs_objq_init(&q, 0), -EINVAL);
    assert_int_equal(vs_objq_init(&q, 1u << 29), -EINVAL);
}

/* A model: per object, the list of queued seqs. Objects are drawn from a
 * small set so that probe runs collide and removals shift entries. */
#define OBJS 40
#define OPS 64

static void test_random_against_model(void **state)
{
    (void)state;
    struct vs_objq q;
    assert_int_equal(vs_objq_init(&q, OPS), 0);
    static struct op ops[OPS];
    unsigned model[OBJS][OPS], mlen[OBJS];
    memset(mlen, 0, sizeof(mlen));
    bool busy[OPS] = {false};
    unsigned seq = 0, inflight = 0;
    srandom(7);
    for (int step = 0; step < 200000; step++) {
        bool push = inflight < OPS && (inflight == 0 || random() % 2);
        if (push) {
            unsigned i = 0;
            while (busy[i])
                i++;
            unsigned o = (unsigned)random() % OBJS;
            ops[i] = (struct op){.inode = o % 5, .stripe = (uint64_t)(o / 5) << 17, .seq = seq};
            bool head = vs_objq_push(&q, ops[i].inode, ops[i].stripe, &ops[i].link);
            assert_int_equal(head, mlen[o] == 0);
            model[o][mlen[o]++] = seq++;
            busy[i] = true;
            inflight++;
        } else {
            unsigned o = (unsigned)random() % OBJS;
            if (mlen[o] == 0)
                continue;
            uint64_t ino = o % 5, str = (uint64_t)(o / 5) << 17;
            struct op *h = (struct op *)vs_objq_head(&q, ino, str);
            assert_non_null(h);
            assert_int_equal(h->seq, model[o][0]);
            struct op *n = (struct op *)vs_objq_pop(&q, ino, str);
            memmove(model[o], model[o] + 1, (mlen[o] - 1) * sizeof(unsigned));
            mlen[o]--;
            if (mlen[o])
                assert_int_equal(n->seq, model[o][0]);
            else
                assert_null(n);
            busy[h - ops] = false;
            inflight--;
        }
        assert_int_equal(q.queued, inflight);
    }
    vs_objq_free(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_per_object),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_random_against_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
