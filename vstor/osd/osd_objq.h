/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_objq.h -- the primary's per-object write queue (docs/data-path.md D7.1):
 * at most one write (or delete, or recovery) in flight per object; later ones
 * wait in arrival order and start when the one ahead of them finishes.
 *
 * A hash table keyed by (inode, stripe) with linear probing; each slot holds
 * an intrusive FIFO of caller-embedded links. The table is sized once for the
 * most ops that can be queued at the same time (every op is in at most one
 * queue), so it never allocates after vs_objq_init() (STYLE B10).
 *
 * Pure: no I/O, no clock; single-threaded like its owner.
 */
#ifndef VSTOR_OSD_OBJQ_H
#define VSTOR_OSD_OBJQ_H

#include <stdbool.h>
#include <stdint.h>

/* Embedded in the queued op. */
struct vs_objq_link {
    struct vs_objq_link *next;
};

struct vs_objq_slot {
    uint64_t inode, stripe;
    struct vs_objq_link *head, *tail; /* head == NULL: the slot is free */
};

struct vs_objq {
    struct vs_objq_slot *slots;
    uint32_t mask;     /* capacity - 1; capacity is a power of two */
    uint32_t count;    /* objects with a queue */
    uint32_t max;      /* the most links that may be queued at once */
    uint32_t queued;   /* links queued now (heads included) */
};

/* Sizes the table for `max` queued links. Returns 0, -EINVAL (max 0 or too
 * large) or -ENOMEM. */
int vs_objq_init(struct vs_objq *q, uint32_t max);
void vs_objq_free(struct vs_objq *q);

/* Appends link to the object's queue. Returns true when link is the head
 * (the caller starts it now), false when it waits behind another. The caller
 * guarantees queued < max (asserted). */
bool vs_objq_push(struct vs_objq *q, uint64_t inode, uint64_t stripe,
                  struct vs_objq_link *link);

/* The head of the object's queue has finished: removes it and returns the
 * new head (which the caller starts now), or NULL when the queue is empty. */
struct vs_objq_link *vs_objq_pop(struct vs_objq *q, uint64_t inode, uint64_t stripe);

/* The head of the object's queue (the op in flight), or NULL. */
struct vs_objq_link *vs_objq_head(const struct vs_objq *q, uint64_t inode, uint64_t stripe);

#endif /* VSTOR_OSD_OBJQ_H */
