/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fake_meta.h -- an in-memory metadata service for libvstor's unit tests,
 * with the client-side contract of vs_raft.h: one global revision, ranges,
 * watches from a revision delivering whole revisions in order, compaction,
 * simple transactions, and outages (while down, requests fail with
 * VS_EUNAVAILABLE and watches deliver nothing; afterwards they resume where
 * they stopped). Every callback runs from the loop, never inside the call.
 */
#ifndef VSTOR_CLIENT_FAKE_META_H
#define VSTOR_CLIENT_FAKE_META_H

#include "client_int.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct fake_meta;

extern const struct client_meta_ops fake_meta_ops;

struct fake_meta *fake_meta_new(uv_loop_t *loop, uint64_t cluster_id);
/* Closes the timer; run the loop afterwards so it is gone. */
void fake_meta_free(struct fake_meta *m);

/* Writes as an operator or the monitor would (one revision each). */
void fake_meta_put(struct fake_meta *m, const char *key, const char *value);
void fake_meta_delete(struct fake_meta *m, const char *key);
/* Drops the history up to the current revision: watches behind it end with
 * VS_ECOMPACTED. */
void fake_meta_compact(struct fake_meta *m);
void fake_meta_set_down(struct fake_meta *m, bool down);
uint64_t fake_meta_revision(const struct fake_meta *m);
/* Whether the key exists. */
bool fake_meta_has(const struct fake_meta *m, const char *key);
unsigned fake_meta_watches(const struct fake_meta *m);

#endif
