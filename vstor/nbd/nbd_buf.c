/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_buf.c -- a buddy allocator over one mmap'd arena.
 *
 * NOTES
 * The arena is split into `units` units of VS_NBD_BUF_MIN bytes. A block of
 * order k covers 2^k units and starts at a unit index that is a multiple of
 * 2^k; its buddy is the block at index ^ 2^k. Bookkeeping lives outside the
 * arena (so free memory is never touched):
 *   order[i]  the order of the block starting at unit i (valid at block starts)
 *   state[i]  FREE or USED for the block starting at unit i, NONE elsewhere
 *   next/prev doubly-linked free list per order, by unit index (-1 = end)
 * Invariants:
 *   (1) free blocks never overlap used ones, and together they cover the arena;
 *   (2) two free buddies of the same order never coexist: put() merges them;
 *   (3) free_units equals the sum of the free blocks' sizes.
 */
#include "nbd_buf.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ORDER_MAX 31

enum { NONE = 0, FREE = 1, USED = 2 };

struct vs_nbd_bufpool {
    uint8_t *arena;
    size_t bytes;
    uint32_t units;
    unsigned top; /* order of the whole arena */
    uint32_t free_units;
    int32_t head[ORDER_MAX + 1];
    int32_t *next, *prev;
    uint8_t *order, *state;
};

static void list_push(struct vs_nbd_bufpool *p, unsigned k, int32_t i)
{
    p->order[i] = (uint8_t)k;
    p->state[i] = FREE;
    p->prev[i] = -1;
    p->next[i] = p->head[k];
    if (p->head[k] >= 0)
        p->prev[p->head[k]] = i;
    p->head[k] = i;
}

static void list_remove(struct vs_nbd_bufpool *p, unsigned k, int32_t i)
{
    VS_ASSERT(p->state[i] == FREE && p->order[i] == k);
    if (p->prev[i] >= 0)
        p->next[p->prev[i]] = p->next[i];
    else
        p->head[k] = p->next[i];
    if (p->next[i] >= 0)
        p->prev[p->next[i]] = p->prev[i];
    p->state[i] = NONE;
}

int vs_nbd_bufpool_create(size_t bytes, struct vs_nbd_bufpool **out)
{
    if (bytes < VS_NBD_BUF_MIN || bytes / VS_NBD_BUF_MIN > (1u << ORDER_MAX))
        return -EINVAL;
    unsigned top = 0;
    while (((size_t)VS_NBD_BUF_MIN << (top + 1)) <= bytes)
        top++;
    struct vs_nbd_bufpool *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->units = 1u << top;
    p->top = top;
    p->bytes = (size_t)p->units * VS_NBD_BUF_MIN;
    p->next = calloc(p->units, sizeof(int32_t));
    p->prev = calloc(p->units, sizeof(int32_t));
    p->order = calloc(p->units, 1);
    p->state = calloc(p->units, 1);
    void *a = mmap(NULL, p->bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!p->next || !p->prev || !p->order || !p->state || a == MAP_FAILED) {
        if (a != MAP_FAILED)
            munmap(a, p->bytes);
        p->arena = NULL;
        vs_nbd_bufpool_destroy(p);
        return -ENOMEM;
    }
    p->arena = a;
    for (unsigned k = 0; k <= ORDER_MAX; k++)
        p->head[k] = -1;
    list_push(p, top, 0);
    p->free_units = p->units;
    *out = p;
    return 0;
}

void vs_nbd_bufpool_destroy(struct vs_nbd_bufpool *p)
{
    if (!p)
        return;
    if (p->arena) {
        VS_ASSERTF(p->free_units == p->units, "free=%u units=%u", p->free_units, p->units);
        munmap(p->arena, p->bytes);
    }
    free(p->next);
    free(p->prev);
    free(p->order);
    free(p->state);
    free(p);
}

static unsigned order_for(size_t len)
{
    unsigned k = 0;
    while (((size_t)VS_NBD_BUF_MIN << k) < len)
        k++;
    return k;
}

void *vs_nbd_buf_get(struct vs_nbd_bufpool *p, size_t len)
{
    VS_ASSERT(len >= 1 && len <= p->bytes);
    unsigned want = order_for(len);
    unsigned k = want;
    while (k <= p->top && p->head[k] < 0)
        k++;
    if (k > p->top)
        return NULL;
    int32_t i = p->head[k];
    list_remove(p, k, i);
    /* Split down to the wanted order; the upper halves become free buddies. */
    while (k > want) {
        k--;
        list_push(p, k, i + (int32_t)(1u << k));
    }
    p->order[i] = (uint8_t)want;
    p->state[i] = USED;
    p->free_units -= 1u << want;
    return p->arena + (size_t)i * VS_NBD_BUF_MIN;
}

void vs_nbd_buf_put(struct vs_nbd_bufpool *p, void *buf)
{
    uint8_t *b = buf;
    VS_ASSERT(b >= p->arena && b < p->arena + p->bytes);
    VS_ASSERT((size_t)(b - p->arena) % VS_NBD_BUF_MIN == 0);
    int32_t i = (int32_t)((size_t)(b - p->arena) / VS_NBD_BUF_MIN);
    VS_ASSERTF(p->state[i] == USED, "double put of unit %d", i);
    unsigned k = p->order[i];
    p->state[i] = NONE;
    p->free_units += 1u << k;
    while (k < p->top) {
        int32_t buddy = i ^ (int32_t)(1u << k);
        if (p->state[buddy] != FREE || p->order[buddy] != k)
            break;
        list_remove(p, k, buddy);
        if (buddy < i)
            i = buddy;
        k++;
    }
    list_push(p, k, i);
}

size_t vs_nbd_bufpool_size(const struct vs_nbd_bufpool *p)
{
    return p->bytes;
}

size_t vs_nbd_bufpool_free_bytes(const struct vs_nbd_bufpool *p)
{
    return (size_t)p->free_units * VS_NBD_BUF_MIN;
}
