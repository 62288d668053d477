/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pg_calc.h -- the pure half of PG peering: from the object listings of every
 * OSD that may hold data of a PG, decide for each object which version is the
 * truth, where it lives, what is missing, and which unstable leftovers must be
 * stabilized or rolled back.
 *
 * Pure (STYLE B17): no I/O, no clock, no globals; allocation only for the
 * result. The OSD's peering code gathers listings (local store list + SEC_LIST
 * from peers), calls vs_pg_calc(), then acts on the result: runs the flush
 * actions, marks the PG active with the returned flags, and feeds the unclean
 * objects to recovery.
 *
 * Objects and roles. An object is (inode, stripe). For erasure-coded pools the
 * chunk of role r of a stripe is stored as (inode, stripe | r): the low
 * VS_ROLE_BITS of `stripe` carry the role, since stripes are aligned to at
 * least 4 KiB. Replicated pools always use role 0 and every OSD of the set
 * holds a full copy.
 *
 * The target version of an object (numbered rules, cited by the code):
 *  (T1) Every version that is stable on at least one OSD was committed:
 *       the target is never older than the newest stable version.
 *  (T2) A newer unstable version is committed too when it is recoverable: at
 *       least pg_data_size distinct roles hold it (1 for replicas, k for EC).
 *       An EC write is acknowledged only after it reached every OSD of the
 *       set (>= pg_minsize >= k), so an acknowledged write is never lost.
 *  (T3) The target is the newest version that satisfies T1 or T2. Versions
 *       newer than the target are torn writes that were never acknowledged:
 *       they are rolled back on every OSD holding them.
 *  (T4) If the target is a tombstone, the object is deleted: copies of older
 *       live versions anywhere are outdated and must be deleted.
 *
 * Object state (VS_OBJ_* flags), with pg_cursize = non-empty slots of cur_set:
 *  - INCOMPLETE: fewer than pg_data_size roles hold the target (EC only):
 *    the object cannot be read until more OSDs return.
 *  - DEGRADED: fewer copies (replicas) or roles (EC) hold the target than
 *    pg_cursize: redundancy is reduced.
 *  - MISPLACED: not degraded, but some slot of cur_set lacks the target, or a
 *    copy lives outside its slot, or an outdated copy must be removed.
 *  - NEEDS_ROLLBACK / NEEDS_STABLE: flush actions are pending for the object.
 * An object with none of these flags is clean and is only counted.
 */
#ifndef VSTOR_OSD_PG_CALC_H
#define VSTOR_OSD_PG_CALC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_ROLE_BITS 12
#define VS_ROLE_MASK ((1ull << VS_ROLE_BITS) - 1)
#define VS_PG_SIZE_MAX 32

/* Versions carry the PG epoch in their high bits (docs/data-path.md). */
#define VS_VERSION_EPOCH_SHIFT 16
#define VS_VERSION_EPOCH(v) ((v) >> VS_VERSION_EPOCH_SHIFT)

/* One entry of an OSD's listing of the PG. */
struct vs_listed_obj {
    uint64_t inode;
    uint64_t stripe;  /* role in the low VS_ROLE_BITS for EC; 0 role for replicas */
    uint64_t version;
    uint32_t osd;     /* the OSD that listed it (>= 1) */
    uint8_t stable;   /* 1: stable (committed) on that OSD */
    uint8_t deleted;  /* 1: this version is a tombstone */
};

/* The PG as peering sees it. */
struct vs_pg_layout {
    uint32_t pg_size;      /* slots in the set, <= VS_PG_SIZE_MAX */
    uint32_t pg_data_size; /* 1 for replicated pools, k for EC/XOR */
    bool ec;               /* roles: slot i holds role i; else every slot role 0 */
    uint32_t cur_set[VS_PG_SIZE_MAX]; /* OSD per slot; 0 = slot empty (OSD missing) */
};

enum vs_obj_state {
    VS_OBJ_INCOMPLETE = 1u << 0,
    VS_OBJ_DEGRADED = 1u << 1,
    VS_OBJ_MISPLACED = 1u << 2,
    VS_OBJ_NEEDS_ROLLBACK = 1u << 3,
    VS_OBJ_NEEDS_STABLE = 1u << 4,
};

/* PG-level summary flags (combined with the base state by the OSD). */
enum vs_pg_calc_flags {
    VS_PGC_HAS_INCOMPLETE = 1u << 0,
    VS_PGC_HAS_DEGRADED = 1u << 1,
    VS_PGC_HAS_MISPLACED = 1u << 2,
    VS_PGC_HAS_UNCLEAN = 1u << 3, /* flush actions pending */
    VS_PGC_HAS_INVALID = 1u << 4, /* role out of range: the PG must not activate */
};

/* Where a version of an unclean object lives. */
struct vs_obj_loc {
    uint32_t osd;
    uint16_t role;
    uint8_t outdated; /* 1: holds only an older live version: delete or overwrite it */
    uint8_t reserved;
};

struct vs_unclean_obj {
    uint64_t inode;
    uint64_t stripe;         /* stripe with role bits cleared */
    uint64_t target_version; /* 0: no version survives (everything rolled back) */
    uint32_t state;          /* VS_OBJ_* */
    uint8_t target_deleted;  /* the target is a tombstone */
    uint32_t loc_first;      /* index into vs_pg_calc_result.locs */
    uint32_t loc_count;
};

enum vs_flush_kind {
    VS_FLUSH_ROLLBACK = 1,  /* roll back to `version` (drop everything newer) */
    VS_FLUSH_STABILIZE = 2, /* stabilize `version` */
};

struct vs_flush_action {
    uint64_t inode;
    uint64_t stripe; /* with role bits */
    uint64_t version;
    uint32_t osd;
    uint32_t kind; /* enum vs_flush_kind */
};

struct vs_pg_calc_result {
    uint64_t object_count; /* distinct objects seen (including clean ones) */
    uint64_t clean_count;
    uint64_t incomplete_count, degraded_count, misplaced_count, invalid_count;
    uint64_t max_epoch;    /* highest epoch of any listed version */
    uint32_t flags;        /* VS_PGC_* */
    struct vs_unclean_obj *objs;
    size_t obj_count;
    struct vs_obj_loc *locs;
    size_t loc_count;
    struct vs_flush_action *actions; /* sorted by osd, then object */
    size_t action_count;
};

/* Computes the result for one PG. `entries` is sorted in place. Returns 0, or
 * -EINVAL for a bad layout (pg_size 0 or too large, pg_data_size 0 or > pg_size),
 * or -ENOMEM. On 0, free the result with vs_pg_calc_free(). */
int vs_pg_calc(const struct vs_pg_layout *layout, struct vs_listed_obj *entries, size_t count,
               struct vs_pg_calc_result *out);

void vs_pg_calc_free(struct vs_pg_calc_result *r);

#endif /* VSTOR_OSD_PG_CALC_H */
