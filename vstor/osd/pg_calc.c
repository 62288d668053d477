/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * pg_calc.c -- object states and flush actions from PG listings.
 *
 * The rules (T1)..(T4) and the state definitions are in pg_calc.h. The walk:
 * sort every entry by (inode, stripe without role, version descending, role,
 * osd); then for each object find the target version (first qualifying
 * version group in descending order), summarise each (osd, role) pair that
 * holds the object, and derive actions, locations and state from the pairs.
 */
#include "pg_calc.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Per object, the distinct (osd, role) pairs. A PG's peers are its set plus
 * its history; more than this many pairs for one object means corrupt input. */
#define PAIRS_MAX 256

struct pair {
    uint32_t osd;
    uint16_t role;
    bool has_newer;     /* holds a version newer than the target */
    bool has_target;    /* holds the target version */
    bool target_stable; /* ... and it is stable there */
    uint64_t best_older;
    bool older_live;    /* best_older is a live version, not a tombstone */
};

struct calc {
    const struct vs_pg_layout *layout;
    struct vs_pg_calc_result *out;
    size_t objs_cap, locs_cap, actions_cap;
    uint32_t cursize;
};

static uint64_t stripe_base(uint64_t stripe)
{
    return stripe & ~VS_ROLE_MASK;
}

static uint16_t role_of(uint64_t stripe)
{
    return (uint16_t)(stripe & VS_ROLE_MASK);
}

static int cmp_entries(const void *pa, const void *pb)
{
    const struct vs_listed_obj *a = pa, *b = pb;
    if (a->inode != b->inode)
        return a->inode < b->inode ? -1 : 1;
    uint64_t sa = stripe_base(a->stripe), sb = stripe_base(b->stripe);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (a->version != b->version)
        return a->version > b->version ? -1 : 1; /* newest first */
    if (role_of(a->stripe) != role_of(b->stripe))
        return role_of(a->stripe) < role_of(b->stripe) ? -1 : 1;
    if (a->osd != b->osd)
        return a->osd < b->osd ? -1 : 1;
    return 0;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 64;
    while (n < need)
        n *= 2;
    void *p = realloc(*arr, n * elem);
    if (!p)
        return -ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static bool role_valid(const struct vs_pg_layout *l, uint16_t role)
{
    return l->ec ? role < l->pg_size : role == 0;
}

/* (T1)-(T3): the newest version that is stable somewhere or held by at least
 * pg_data_size distinct roles; 0 when no version qualifies. */
static uint64_t find_target(const struct vs_pg_layout *l, const struct vs_listed_obj *e, size_t n,
                            bool *deleted)
{
    size_t i = 0;
    while (i < n) {
        uint64_t v = e[i].version;
        uint64_t roles = 0;
        bool stable = false, del = false;
        for (; i < n && e[i].version == v; i++) {
            roles |= 1ull << role_of(e[i].stripe);
            stable |= e[i].stable != 0;
            del |= e[i].deleted != 0;
        }
        if (stable || (uint32_t)__builtin_popcountll(roles) >= l->pg_data_size) {
            *deleted = del;
            return v;
        }
    }
    *deleted = false;
    return 0;
}

static struct pair *get_pair(struct pair *pairs, size_t *npairs, uint32_t osd, uint16_t role)
{
    for (size_t i = 0; i < *npairs; i++)
        if (pairs[i].osd == osd && pairs[i].role == role)
            return &pairs[i];
    if (*npairs >= PAIRS_MAX)
        return NULL;
    struct pair *p = &pairs[(*npairs)++];
    memset(p, 0, sizeof(*p));
    p->osd = osd;
    p->role = role;
    return p;
}

static int summarise_pairs(const struct vs_listed_obj *e, size_t n, uint64_t target,
                           struct pair *pairs, size_t *npairs)
{
    *npairs = 0;
    for (size_t i = 0; i < n; i++) {
        struct pair *p = get_pair(pairs, npairs, e[i].osd, role_of(e[i].stripe));
        if (!p)
            return -E2BIG;
        if (e[i].version > target) {
            p->has_newer = true;
        } else if (e[i].version == target) {
            p->has_target = true;
            p->target_stable = e[i].stable != 0;
        } else if (e[i].version > p->best_older) {
            p->best_older = e[i].version;
            p->older_live = !e[i].deleted;
        }
    }
    return 0;
}

static int add_action(struct calc *c, const struct vs_listed_obj *obj, const struct pair *p,
                      uint64_t version, enum vs_flush_kind kind)
{
    struct vs_pg_calc_result *r = c->out;
    if (grow((void **)&r->actions, &c->actions_cap, r->action_count + 1, sizeof(*r->actions)))
        return -ENOMEM;
    r->actions[r->action_count++] = (struct vs_flush_action){
        .inode = obj->inode,
        .stripe = stripe_base(obj->stripe) | p->role,
        .version = version,
        .osd = p->osd,
        .kind = kind,
    };
    r->flags |= VS_PGC_HAS_UNCLEAN;
    return 0;
}

/* Does the slot layout expect (osd, role)? */
static bool in_slot(const struct vs_pg_layout *l, uint32_t osd, uint16_t role)
{
    if (l->ec)
        return role < l->pg_size && l->cur_set[role] == osd;
    for (uint32_t i = 0; i < l->pg_size; i++)
        if (l->cur_set[i] == osd)
            return true;
    return false;
}

static bool slot_has_target(const struct pair *pairs, size_t npairs, uint32_t osd, uint16_t role)
{
    for (size_t i = 0; i < npairs; i++)
        if (pairs[i].osd == osd && pairs[i].role == role && pairs[i].has_target)
            return true;
    return false;
}

/* State of a live target from its pairs (see pg_calc.h). */
static uint32_t live_state(const struct calc *c, const struct pair *pairs, size_t npairs)
{
    const struct vs_pg_layout *l = c->layout;
    uint64_t roles = 0;
    uint32_t copies = 0;
    bool outside = false, outdated = false, missing = false;
    for (size_t i = 0; i < npairs; i++) {
        if (pairs[i].has_target) {
            roles |= 1ull << pairs[i].role;
            copies++;
            outside |= !in_slot(l, pairs[i].osd, pairs[i].role);
        } else if (pairs[i].best_older && pairs[i].older_live) {
            outdated = true;
        }
    }
    if (l->ec)
        copies = (uint32_t)__builtin_popcountll(roles);
    for (uint32_t s = 0; s < l->pg_size; s++) {
        uint16_t role = l->ec ? (uint16_t)s : 0;
        if (l->cur_set[s] && !slot_has_target(pairs, npairs, l->cur_set[s], role))
            missing = true;
    }
    if (l->ec && copies < l->pg_data_size)
        return VS_OBJ_INCOMPLETE;
    if (copies < c->cursize)
        return VS_OBJ_DEGRADED;
    if (missing || outside || outdated)
        return VS_OBJ_MISPLACED;
    return 0;
}

static int record_unclean(struct calc *c, const struct vs_listed_obj *obj, uint64_t target,
                          bool deleted, uint32_t state, const struct pair *pairs, size_t npairs)
{
    struct vs_pg_calc_result *r = c->out;
    if (grow((void **)&r->objs, &c->objs_cap, r->obj_count + 1, sizeof(*r->objs)) ||
        grow((void **)&r->locs, &c->locs_cap, r->loc_count + npairs, sizeof(*r->locs)))
        return -ENOMEM;
    struct vs_unclean_obj *u = &r->objs[r->obj_count++];
    *u = (struct vs_unclean_obj){
        .inode = obj->inode,
        .stripe = stripe_base(obj->stripe),
        .target_version = target,
        .state = state,
        .target_deleted = deleted,
        .loc_first = (uint32_t)r->loc_count,
    };
    for (size_t i = 0; i < npairs; i++) {
        bool holds_target = pairs[i].has_target && !deleted;
        bool outdated = !pairs[i].has_target && pairs[i].best_older && pairs[i].older_live;
        if (!holds_target && !outdated)
            continue;
        r->locs[r->loc_count++] = (struct vs_obj_loc){
            .osd = pairs[i].osd, .role = pairs[i].role, .outdated = outdated};
    }
    u->loc_count = (uint32_t)(r->loc_count - u->loc_first);
    if (state & VS_OBJ_INCOMPLETE) {
        r->incomplete_count++;
        r->flags |= VS_PGC_HAS_INCOMPLETE;
    } else if (state & VS_OBJ_DEGRADED) {
        r->degraded_count++;
        r->flags |= VS_PGC_HAS_DEGRADED;
    } else if (state & VS_OBJ_MISPLACED) {
        r->misplaced_count++;
        r->flags |= VS_PGC_HAS_MISPLACED;
    }
    return 0;
}

static int calc_object(struct calc *c, const struct vs_listed_obj *e, size_t n)
{
    struct vs_pg_calc_result *r = c->out;
    r->object_count++;
    for (size_t i = 0; i < n; i++) {
        if (!role_valid(c->layout, role_of(e[i].stripe))) {
            r->invalid_count++;
            r->flags |= VS_PGC_HAS_INVALID;
            return 0;
        }
    }
    bool deleted;
    uint64_t target = find_target(c->layout, e, n, &deleted);
    struct pair pairs[PAIRS_MAX];
    size_t npairs;
    int rc = summarise_pairs(e, n, target, pairs, &npairs);
    if (rc < 0)
        return rc;
    uint32_t state = 0;
    for (size_t i = 0; i < npairs; i++) {
        if (pairs[i].has_newer) {
            state |= VS_OBJ_NEEDS_ROLLBACK; /* (T3) */
            if ((rc = add_action(c, e, &pairs[i], target, VS_FLUSH_ROLLBACK)) < 0)
                return rc;
        }
        if (pairs[i].has_target && !pairs[i].target_stable) {
            state |= VS_OBJ_NEEDS_STABLE; /* (T2) */
            if ((rc = add_action(c, e, &pairs[i], target, VS_FLUSH_STABILIZE)) < 0)
                return rc;
        }
    }
    if (target != 0 && !deleted) {
        state |= live_state(c, pairs, npairs);
    } else {
        /* (T4), or nothing survived: live older copies must go. */
        for (size_t i = 0; i < npairs; i++)
            if (!pairs[i].has_target && pairs[i].best_older && pairs[i].older_live)
                state |= VS_OBJ_MISPLACED;
    }
    if (state == 0) {
        r->clean_count++;
        return 0;
    }
    return record_unclean(c, e, target, deleted, state, pairs, npairs);
}

static int cmp_actions(const void *pa, const void *pb)
{
    const struct vs_flush_action *a = pa, *b = pb;
    if (a->osd != b->osd)
        return a->osd < b->osd ? -1 : 1;
    if (a->inode != b->inode)
        return a->inode < b->inode ? -1 : 1;
    if (a->stripe != b->stripe)
        return a->stripe < b->stripe ? -1 : 1;
    return (int)a->kind - (int)b->kind;
}

int vs_pg_calc(const struct vs_pg_layout *layout, struct vs_listed_obj *entries, size_t count,
               struct vs_pg_calc_result *out)
{
    memset(out, 0, sizeof(*out));
    if (layout->pg_size == 0 || layout->pg_size > VS_PG_SIZE_MAX || layout->pg_data_size == 0 ||
        layout->pg_data_size > layout->pg_size)
        return -EINVAL;
    struct calc c = {.layout = layout, .out = out};
    for (uint32_t i = 0; i < layout->pg_size; i++)
        c.cursize += layout->cur_set[i] != 0;
    if (count > 1)
        qsort(entries, count, sizeof(*entries), cmp_entries);
    size_t i = 0;
    while (i < count) {
        size_t j = i + 1;
        while (j < count && entries[j].inode == entries[i].inode &&
               stripe_base(entries[j].stripe) == stripe_base(entries[i].stripe))
            j++;
        for (size_t k = i; k < j; k++)
            if (VS_VERSION_EPOCH(entries[k].version) > out->max_epoch)
                out->max_epoch = VS_VERSION_EPOCH(entries[k].version);
        int rc = calc_object(&c, entries + i, j - i);
        if (rc < 0) {
            vs_pg_calc_free(out);
            return rc;
        }
        i = j;
    }
    if (out->action_count > 1)
        qsort(out->actions, out->action_count, sizeof(*out->actions), cmp_actions);
    VS_ASSERT(out->clean_count + out->obj_count + out->invalid_count == out->object_count);
    return 0;
}

void vs_pg_calc_free(struct vs_pg_calc_result *r)
{
    free(r->objs);
    free(r->locs);
    free(r->actions);
    memset(r, 0, sizeof(*r));
}
