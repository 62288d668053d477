/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_buf: the buddy allocator against a model. Random gets and puts; after
 * every step no two live buffers overlap, each is aligned and big enough, the
 * free count matches the model, and when everything is back the whole arena
 * is one block again (invariants 1-3 of nbd_buf.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nbd_buf.h"

struct live {
    uint8_t *p;
    size_t len, block;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static size_t block_of(size_t len)
{
    size_t b = VS_NBD_BUF_MIN;
    while (b < len)
        b <<= 1;
    return b;
}

static void check_disjoint(const struct live *l, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = i + 1; j < n; j++)
            assert_true(l[i].p + l[i].block <= l[j].p || l[j].p + l[j].block <= l[i].p);
}

static void test_model(void **state)
{
    (void)state;
    const size_t arena = 4u << 20;
    struct vs_nbd_bufpool *p;
    assert_int_equal(vs_nbd_bufpool_create(arena + 12345, &p), 0); /* rounded down */
    assert_int_equal(vs_nbd_bufpool_size(p), arena);
    struct live live[512];
    unsigned n = 0;
    size_t used = 0;
    unsigned fails = 0;
    for (int step = 0; step < 20000; step++) {
        if (n > 0 && (rng() % 100 < 45 || n == 512)) {
            unsigned i = (unsigned)(rng() % n);
            memset(live[i].p, 0xee, live[i].len); /* ASan: the buffer is really ours */
            vs_nbd_buf_put(p, live[i].p);
            used -= live[i].block;
            live[i] = live[--n];
        } else {
            /* mostly small, sometimes up to the whole arena */
            size_t len = rng() % 8 == 0 ? 1 + rng() % arena : 1 + rng() % (64u << 10);
            uint8_t *b = vs_nbd_buf_get(p, len);
            if (!b) {
                fails++;
                assert_true(arena - used < block_of(len) || used > 0);
                continue;
            }
            assert_int_equal(((uintptr_t)b) % 4096, 0);
            live[n++] = (struct live){b, len, block_of(len)};
            used += block_of(len);
        }
        assert_int_equal(vs_nbd_bufpool_free_bytes(p), arena - used);
        if (step % 256 == 0)
            check_disjoint(live, n);
    }
    check_disjoint(live, n);
    while (n > 0)
        vs_nbd_buf_put(p, live[--n].p);
    assert_int_equal(vs_nbd_bufpool_free_bytes(p), arena);
    assert_true(fails > 0); /* the run did exercise exhaustion */
    /* fully coalesced: the whole arena is available as one block */
    uint8_t *all = vs_nbd_buf_get(p, arena);
    assert_non_null(all);
    assert_null(vs_nbd_buf_get(p, 1));
    vs_nbd_buf_put(p, all);
    vs_nbd_bufpool_destroy(p);
}

static void test_exact_sizes(void **state)
{
    (void)state;
    struct vs_nbd_bufpool *p;
    assert_int_equal(vs_nbd_bufpool_create(64u << 10, &p), 0);
    uint8_t *a = vs_nbd_buf_get(p, 4096);
    uint8_t *b = vs_nbd_buf_get(p, 4097); /* 8 KiB block */
    uint8_t *c = vs_nbd_buf_get(p, 32u << 10);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_int_equal(vs_nbd_bufpool_free_bytes(p), (64u - 4 - 8 - 32) << 10);
    assert_null(vs_nbd_buf_get(p, 32u << 10)); /* 20 KiB free, but no 32 KiB block */
    vs_nbd_buf_put(p, c);
    vs_nbd_buf_put(p, a);
    vs_nbd_buf_put(p, b);
    assert_non_null(c = vs_nbd_buf_get(p, 64u << 10));
    vs_nbd_buf_put(p, c);
    vs_nbd_bufpool_destroy(p);
    assert_int_equal(vs_nbd_bufpool_create(100, &p), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
        cmocka_unit_test(test_exact_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
