/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pg_state.c -- the transition table of pg_state.h and the state words.
 */
#include "pg_state.h"

#include <stddef.h>

#define BIT(s) (1u << (s))

/* allowed[from] = the set of states `from` may move to. */
static const uint32_t allowed[VS_PG_STATE_COUNT] = {
    [VS_PG_OFFLINE] = BIT(VS_PG_STARTING),
    [VS_PG_STARTING] = BIT(VS_PG_PEERING) | BIT(VS_PG_STOPPING),
    [VS_PG_PEERING] = BIT(VS_PG_ACTIVE) | BIT(VS_PG_INCOMPLETE) | BIT(VS_PG_REPEERING) |
                      BIT(VS_PG_STOPPING),
    [VS_PG_INCOMPLETE] = BIT(VS_PG_REPEERING) | BIT(VS_PG_STOPPING),
    [VS_PG_ACTIVE] = BIT(VS_PG_REPEERING) | BIT(VS_PG_STOPPING),
    [VS_PG_REPEERING] = BIT(VS_PG_PEERING) | BIT(VS_PG_STOPPING),
    [VS_PG_STOPPING] = BIT(VS_PG_OFFLINE),
};

static const char *const names[VS_PG_STATE_COUNT] = {
    [VS_PG_OFFLINE] = "offline",       [VS_PG_STARTING] = "starting",
    [VS_PG_PEERING] = "peering",       [VS_PG_INCOMPLETE] = "incomplete",
    [VS_PG_ACTIVE] = "active",         [VS_PG_REPEERING] = "repeering",
    [VS_PG_STOPPING] = "stopping",
};

static const char *const flag_words[] = {"degraded", "has_degraded", "has_misplaced",
                                         "has_incomplete", "has_unclean"};

bool vs_pg_state_allowed(enum vs_pg_state from, enum vs_pg_state to)
{
    if ((unsigned)from >= VS_PG_STATE_COUNT || (unsigned)to >= VS_PG_STATE_COUNT)
        return false;
    return (allowed[from] & BIT(to)) != 0;
}

const char *vs_pg_state_name(enum vs_pg_state s)
{
    return (unsigned)s < VS_PG_STATE_COUNT ? names[s] : "?";
}

bool vs_pg_flags_valid(enum vs_pg_state s, uint32_t flags)
{
    if (flags & ~(uint32_t)VS_PGF_MASK)
        return false;
    return s == VS_PG_ACTIVE || flags == 0;
}

unsigned vs_pg_state_words(enum vs_pg_state s, uint32_t flags,
                           const char *out[VS_PG_WORDS_MAX])
{
    unsigned n = 0;
    out[n++] = vs_pg_state_name(s);
    for (unsigned i = 0; i < sizeof(flag_words) / sizeof(flag_words[0]); i++)
        if (flags & (1u << i))
            out[n++] = flag_words[i];
    return n;
}
