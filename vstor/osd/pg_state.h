/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pg_state.h -- the PG state machine of the OSD (STYLE B15): the base states,
 * the flags an active PG carries, the table of allowed transitions, and the
 * words the primary reports in pg/state/<pool>/<pg> (docs/data-path.md §3).
 *
 * Pure: no I/O, no allocation, thread-safe. osd_pg.c moves a PG only through
 * vs_pg_state_allowed(), which tests check edge by edge.
 *
 *            map names us primary
 *   OFFLINE ---------------------> STARTING   (lock #1: pg/state on our lease,
 *      ^                              |        connections to every peer)
 *      |                              v
 *      |   stopped             +-> PEERING    (lock #2 on peers, listings,
 *   STOPPING <---- any ---+    |      |  |     vs_pg_calc, flush, epoch bump)
 *  (in-flight ops drain,  |    |      |  +--------------> INCOMPLETE
 *   unlock, delete        |    |      v                       |
 *   pg/state)             |    +-- REPEERING <-- ACTIVE       | peer up, map change
 *                         |           ^    peer lost,          |
 *                         |           |    peer back           |
 *                         |           +------------------------+
 *
 * STOPPING is reachable from every state but OFFLINE; REPEERING waits for the
 * ops in flight to finish, then peers again. Only ACTIVE serves client I/O.
 */
#ifndef VSTOR_OSD_PG_STATE_H
#define VSTOR_OSD_PG_STATE_H

#include <stdbool.h>
#include <stdint.h>

enum vs_pg_state {
    VS_PG_OFFLINE = 0,
    VS_PG_STARTING,
    VS_PG_PEERING,
    VS_PG_INCOMPLETE,
    VS_PG_ACTIVE,
    VS_PG_REPEERING,
    VS_PG_STOPPING,
    VS_PG_STATE_COUNT,
};

/* Flags of an ACTIVE PG (a PG in any other state carries none). */
enum vs_pg_flag {
    VS_PGF_DEGRADED = 1u << 0,       /* runs on fewer OSDs than its target set */
    VS_PGF_HAS_DEGRADED = 1u << 1,   /* some objects have fewer copies than the set */
    VS_PGF_HAS_MISPLACED = 1u << 2,  /* some objects are not where the set says */
    VS_PGF_HAS_INCOMPLETE = 1u << 3, /* some objects cannot be read (EC) */
    VS_PGF_HAS_UNCLEAN = 1u << 4,    /* flush actions (rollback/stabilize) pending */
    VS_PGF_MASK = (1u << 5) - 1,
};

/* True when the transition from -> to is in the table. */
bool vs_pg_state_allowed(enum vs_pg_state from, enum vs_pg_state to);

/* "offline", "starting", ...; "?" for a value outside the enum. */
const char *vs_pg_state_name(enum vs_pg_state s);

/* True when flags are valid for the state: no unknown bit, and none unless
 * ACTIVE. */
bool vs_pg_flags_valid(enum vs_pg_state s, uint32_t flags);

/* A PG is clean when it is ACTIVE with no flag at all. */
static inline bool vs_pg_is_clean(enum vs_pg_state s, uint32_t flags)
{
    return s == VS_PG_ACTIVE && flags == 0;
}

#define VS_PG_WORDS_MAX 6

/* The words of pg/state "state": the base state name first, then one word per
 * flag ("degraded", "has_degraded", "has_misplaced", "has_incomplete",
 * "has_unclean"). Returns the count (<= VS_PG_WORDS_MAX). */
unsigned vs_pg_state_words(enum vs_pg_state s, uint32_t flags,
                           const char *out[VS_PG_WORDS_MAX]);

#endif /* VSTOR_OSD_PG_STATE_H */
