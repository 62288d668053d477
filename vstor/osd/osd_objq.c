/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_objq.c -- see osd_objq.h.
 *
 * Invariants (checked by objq_invariants in debug builds):
 *  (1) A slot is used iff head != NULL; tail is then the last link and
 *      tail->next == NULL.
 *  (2) Linear probing without tombstones: removal shifts later entries of the
 *      same probe run back, so every used slot is reachable from its home
 *      slot through used slots only.
 *  (3) The capacity is at least twice `max`, so the table is at most half
 *      full and probes stay short.
 */
#include "osd_objq.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdlib.h>

static uint32_t hash_of(uint64_t inode, uint64_t stripe)
{
    uint64_t h = inode * 0x9E3779B97F4A7C15ull ^ (stripe >> 12) * 0xC2B2AE3D27D4EB4Full;
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

int vs_objq_init(struct vs_objq *q, uint32_t max)
{
    if (max == 0 || max > (1u << 28))
        return -EINVAL;
    uint32_t cap = 16;
    while (cap < 2 * max)
        cap *= 2;
    q->slots = calloc(cap, sizeof(*q->slots));
    if (!q->slots)
        return -ENOMEM;
    q->mask = cap - 1;
    q->count = 0;
    q->max = max;
    q->queued = 0;
    return 0;
}

void vs_objq_free(struct vs_objq *q)
{
    free(q->slots);
    q->slots = NULL;
}

/* The slot of the object, or of the free slot where it would go. */
static uint32_t find(const struct vs_objq *q, uint64_t inode, uint64_t stripe)
{
    uint32_t i = hash_of(inode, stripe) & q->mask;
    while (q->slots[i].head && (q->slots[i].inode != inode || q->slots[i].stripe != stripe))
        i = (i + 1) & q->mask;
    return i;
}

#ifdef VS_DEBUG
static bool objq_invariants(const struct vs_objq *q)
{
    uint32_t used = 0;
    for (uint32_t i = 0; i <= q->mask; i++) {
        const struct vs_objq_slot *s = &q->slots[i];
        if (!s->head)
            continue;
        used++;
        if (!s->tail || s->tail->next) /* (1) */
            return false;
        for (uint32_t j = hash_of(s->inode, s->stripe) & q->mask; j != i; j = (j + 1) & q->mask)
            if (!q->slots[j].head) /* (2) */
                return false;
    }
    return used == q->count && 2 * q->max <= q->mask + 1; /* (3) */
}
#endif

bool vs_objq_push(struct vs_objq *q, uint64_t inode, uint64_t stripe,
                  struct vs_objq_link *link)
{
    VS_ASSERTF(q->queued < q->max, "queued=%u max=%u", q->queued, q->max);
    link->next = NULL;
    q->queued++;
    struct vs_objq_slot *s = &q->slots[find(q, inode, stripe)];
    if (s->head) {
        s->tail->next = link;
        s->tail = link;
        return false;
    }
    s->inode = inode;
    s->stripe = stripe;
    s->head = s->tail = link;
    q->count++;
    VS_ASSERT(q->count <= q->max);
    VS_DASSERT(objq_invariants(q));
    return true;
}

/* Backward-shift deletion (invariant 2). */
static void remove_slot(struct vs_objq *q, uint32_t hole)
{
    uint32_t i = hole;
    for (;;) {
        i = (i + 1) & q->mask;
        struct vs_objq_slot *s = &q->slots[i];
        if (!s->head)
            break;
        uint32_t home = hash_of(s->inode, s->stripe) & q->mask;
        /* Move s into the hole unless its home lies cyclically in (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        q->slots[hole] = *s;
        hole = i;
    }
    q->slots[hole].head = q->slots[hole].tail = NULL;
    q->count--;
}

struct vs_objq_link *vs_objq_pop(struct vs_objq *q, uint64_t inode, uint64_t stripe)
{
    uint32_t i = find(q, inode, stripe);
    struct vs_objq_slot *s = &q->slots[i];
    VS_ASSERTF(s->head, "pop of an object with no queue: inode=%llx stripe=%llx",
               (unsigned long long)inode, (unsigned long long)stripe);
    VS_ASSERT(q->queued > 0);
    q->queued--;
    struct vs_objq_link *next = s->head->next;
    s->head->next = NULL;
    if (next) {
        s->head = next;
        return next;
    }
    remove_slot(q, i);
    VS_DASSERT(objq_invariants(q));
    return NULL;
}

struct vs_objq_link *vs_objq_head(const struct vs_objq *q, uint64_t inode, uint64_t stripe)
{
    return q->slots[find(q, inode, stripe)].head;
}
