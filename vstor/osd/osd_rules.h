/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_rules.h -- the pure rules of the primary: object versions and PG
 * epochs (docs/data-path.md D1, D2, D6), the PG history kept in
 * pg/history/<pool>/<pg>, and the activation check with its split-brain
 * guard (§3 step 4).
 *
 * Pure (STYLE B17): no I/O, no clock, no allocation except the JSON text of
 * vs_pg_history_dump(). Thread-safe.
 *
 * Versions. A version is `epoch << 16 | counter` (VS_VERSION_EPOCH_SHIFT in
 * pg_calc.h), counter >= 1. Within one epoch the primary assigns
 * current + 1; the first write of an object in a newer epoch gets
 * (epoch << 16) | 1, so any write of a later interval beats every write of an
 * earlier one. When the counter is exhausted the PG must bump its epoch (and
 * store it) before the write can go on.
 *
 * Epochs. At activation the PG's epoch is the highest of the stored epoch
 * and every epoch seen in the listings; it is bumped by one unless the PG
 * comes up fully clean, and the bumped epoch is stored durably before any
 * write uses it.
 *
 * History. pg/history holds the epoch, the OSD sets the PG ran on while it
 * was not clean (osd_sets; 0 = an empty slot), and every OSD that may hold
 * its data (all_peers). It is cleared (no sets, all_peers = the target set)
 * once the PG is clean; the OSDs it named then that are not in the set
 * become `superseded` (docs/data-path.md §6): they hold only outdated copies
 * of the PG, which peering never lists and which are wiped from them before
 * they leave that list.
 */
#ifndef VSTOR_OSD_RULES_H
#define VSTOR_OSD_RULES_H

#include "pg_calc.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_PG_EPOCH_MAX ((1ull << (64 - VS_VERSION_EPOCH_SHIFT)) - 1)
#define VS_VERSION_COUNTER_MAX ((1ull << VS_VERSION_EPOCH_SHIFT) - 1)
#define VS_PG_HISTORY_SETS_MAX 32
#define VS_PG_PEERS_MAX 128

/* ---- Versions and epochs ---------------------------------------------------- */

/* D1/D2: the version for the next write of an object whose newest version
 * (stable, unstable or tombstone; 0 = none) is cur, in a PG at epoch epoch.
 * Returns 0 with *out, -EOVERFLOW when the counter is exhausted (bump the
 * epoch first), or VS_ESTALEEPOCH when cur comes from a newer epoch than the
 * PG's (peering must never let that happen). */
int vs_osd_next_version(uint64_t cur, uint64_t epoch, uint64_t *out);

/* D6: the epoch of a PG that activates: max(stored, listed) + (bump ? 1 : 0).
 * Returns 0 with *out, or -EOVERFLOW past VS_PG_EPOCH_MAX. */
int vs_pg_next_epoch(uint64_t stored, uint64_t listed_max, bool bump, uint64_t *out);

/* ---- History ------------------------------------------------------------------ */

struct vs_pg_history {
    uint64_t epoch;
    uint32_t set_count;
    uint32_t set_size[VS_PG_HISTORY_SETS_MAX];
    uint32_t sets[VS_PG_HISTORY_SETS_MAX][VS_PG_SIZE_MAX];
    uint32_t peer_count;
    uint32_t peers[VS_PG_PEERS_MAX];
    uint32_t superseded_count; /* OSDs left with outdated copies, not wiped yet */
    uint32_t superseded[VS_PG_PEERS_MAX];
};

/* Parses pg/history JSON: {"epoch": N, "osd_sets": [[...], ...],
 * "all_peers": [...], "superseded": [...]}; absent fields are empty, unknown fields ignored (the
 * monitor may add its own). Returns 0 or -EINVAL with a sentence in err. */
int vs_pg_history_parse(const char *text, size_t len, struct vs_pg_history *out, char *err,
                        size_t err_size);

/* Compact JSON text of h (malloc'ed; free it), or NULL on ENOMEM. */
char *vs_pg_history_dump(const struct vs_pg_history *h);

/* Adds set (size slots) unless an equal set is there. Returns 1 if added, 0
 * if already present, -ENOSPC when VS_PG_HISTORY_SETS_MAX sets are held. Its
 * non-empty members are added to the peers as well. */
int vs_pg_history_add_set(struct vs_pg_history *h, const uint32_t *set, uint32_t size);

/* Adds osd (>= 1) to all_peers unless present; -ENOSPC when full. */
int vs_pg_history_add_peer(struct vs_pg_history *h, uint32_t osd);

/* Clean: no sets; all_peers = the non-empty slots of target. Epoch kept.
 * Every OSD the sets or all_peers named that is not in target joins
 * superseded (which keeps its members). */
void vs_pg_history_clear(struct vs_pg_history *h, const uint32_t *target, uint32_t size);

/* Adds osd (>= 1) to superseded unless present (one in target too is added:
 * the caller decides); -ENOSPC when full. */
int vs_pg_history_supersede(struct vs_pg_history *h, uint32_t osd);
/* Removes osd from superseded (it was wiped); true if it was there. */
bool vs_pg_history_unsupersede(struct vs_pg_history *h, uint32_t osd);
bool vs_pg_history_is_superseded(const struct vs_pg_history *h, uint32_t osd);

/* ---- Activation ------------------------------------------------------------------ */

/* What peering knows when it decides whether the PG may activate. */
struct vs_pg_activation {
    const uint32_t *cur_set;  /* pg_size slots: the target set with unreachable OSDs as 0 */
    uint32_t pg_size;
    uint32_t pg_minsize;
    uint32_t pg_data_size;    /* 1 for replicated pools */
    const uint32_t *reachable; /* every OSD peering could list (this one included) */
    uint32_t reachable_count;
    /* Earlier sets whose data may be needed: config/pgs history and pg/history osd_sets. */
    const uint32_t *const *hist_sets;
    const uint32_t *hist_sizes;
    uint32_t hist_count;
};

/* Returns NULL when the PG may activate, else why not, as a sentence written
 * into buf: fewer than pg_minsize OSDs of the set are up, or some earlier set
 * has fewer than pg_data_size of its OSDs reachable (data written in that
 * interval could be missing: the split-brain guard). */
const char *vs_pg_why_incomplete(const struct vs_pg_activation *a, char *buf, size_t size);

#endif /* VSTOR_OSD_RULES_H */
