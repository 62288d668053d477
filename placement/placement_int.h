/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_int.h -- internals of libvsplacement shared by its files: the
 * tree's layout, the JSON helpers, and struct pl_work, the state of one
 * pool's solve. Nothing here is visible outside placement/.
 */
#ifndef PLACEMENT_INT_H
#define PLACEMENT_INT_H

#include "vs_placement.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#define PL_NONE UINT32_MAX

/* ---- Tree ---- */
struct pl_node {
    char *name;
    uint32_t level;  /* index into tree->levels */
    uint32_t parent; /* node index, or PL_NONE for a top-level node */
};

struct pl_osd {
    uint32_t id;
    uint32_t parent; /* node index, or PL_NONE */
    double weight;
    double reweight;
    uint32_t tag_count;
    char **tags;
    bool up, in, noout;
};

struct vs_placement_tree {
    uint32_t level_count; /* the last level is always "osd" */
    char **levels;
    uint32_t node_count;
    struct pl_node *nodes; /* sorted by name */
    uint32_t osd_count;
    struct pl_osd *osds; /* sorted by id */
};

uint32_t placement__tree_level(const struct vs_placement_tree *tree, const char *name);
uint32_t placement__tree_node(const struct vs_placement_tree *tree, const char *name);
/* The failure domain of osd o at `level`: its ancestor at that level; without
 * one, its highest ancestor below the level (an OSD in a host outside any rack
 * is separated at least by host); PL_NONE when it has neither (the OSD is
 * then a domain of its own). */
uint32_t placement__tree_domain(const struct vs_placement_tree *tree, uint32_t o, uint32_t level);
bool placement__tree_under(const struct vs_placement_tree *tree, uint32_t o, uint32_t node);
bool placement__osd_has_tags(const struct pl_osd *osd, uint32_t count, char *const *tags);

/* ---- JSON helpers (placement_json.c). Each returns 0 or VS_ECONFIG with err
 * set to "<path>: <problem>"; optional fields absent leave *out at def. ---- */
struct pl_err {
    char *buf;
    size_t size;
};

int placement__errf(struct pl_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int placement__json_keys(const json_t *obj, const char *path, const char *const *allowed,
                         struct pl_err *err);
int placement__json_u64(const json_t *obj, const char *key, const char *path, bool required,
                        uint64_t min, uint64_t max, uint64_t *out, struct pl_err *err);
int placement__json_num(const json_t *obj, const char *key, const char *path, double min,
                        double max, double *out, bool *present, struct pl_err *err);
int placement__json_bool(const json_t *obj, const char *key, const char *path, bool *out,
                         struct pl_err *err);
int placement__json_str(const json_t *obj, const char *key, const char *path, bool required,
                        char **out, struct pl_err *err);
int placement__json_strlist(const json_t *obj, const char *key, const char *path,
                            uint32_t *count, char ***out, struct pl_err *err);
/* Parses a decimal object key into [min, max]. */
int placement__parse_key(const char *key, const char *path, uint64_t min, uint64_t max,
                         uint64_t *out, struct pl_err *err);
json_t *placement__json_strarray(uint32_t count, char *const *items);
int placement__load_text(const char *text, size_t len, const char *what, json_t **out,
                         struct pl_err *err);
void placement__strlist_free(uint32_t count, char **items);
char *placement__strdup(const char *s);

/* ---- One pool's solve ---- */
enum pl_cell_kind {
    PL_CELL_EMPTY = 0,
    PL_CELL_FIXED = 1, /* held by a down OSD: stays, never moves */
    PL_CELL_KEPT = 2,  /* from the base map, on an up OSD */
    PL_CELL_NEW = 3,   /* placed by this solve */
};

/* An OSD eligible for the pool: under root_node, carrying osd_tags, in, with
 * weight > 0. Up OSDs take new members; down ones keep what they hold. */
struct pl_eosd {
    uint32_t id;
    uint32_t dom;
    double weight;
    bool up;
    bool primary_ok; /* carries primary_affinity_tags */
    uint32_t base_count; /* members it holds in the base map */
    uint32_t target;     /* members it should end with */
    double best;         /* the real-valued best share */
    double ideal;        /* the share by weight alone */
    uint32_t slots;      /* members it ends with */
    uint32_t prim_lo, prim_target; /* primaries: floor and ceiling of prim_ideal */
    double prim_ideal;
    uint32_t primaries;
};

/* A failure domain: a node at the pool's failure_domain level, or one OSD. */
struct pl_dom {
    uint32_t first, count; /* its OSDs: w->osds[first .. first + count) */
    double weight;         /* weight of its up OSDs */
    uint32_t fixed;        /* members held by its down OSDs */
    uint32_t cap;          /* at most one member per PG: pg_count, or fixed if all down */
    double best;           /* real-valued best share */
    uint32_t target;       /* members it should hold: fixed + its up OSDs' targets */
    uint32_t load;         /* members currently assigned to it */
};

struct pl_work {
    const struct vs_placement_tree *tree;
    const struct vs_placement_pool *pool;
    struct vs_placement_pool_report *rep;
    uint64_t seed;
    uint32_t pg_count, pg_size;
    uint32_t k; /* members per PG: min(pg_size, domains) */
    bool ec;    /* slot = chunk role */

    uint32_t osd_count;
    struct pl_eosd *osds; /* grouped by domain, then by id */
    uint32_t *by_id;      /* osd indexes sorted by OSD id */
    uint32_t dom_count;
    struct pl_dom *doms;

    /* Per cell (pg * pg_size + slot). */
    uint32_t *cdom;  /* domain, or PL_NONE */
    uint32_t *cosd;  /* OSD index, or PL_NONE until chosen */
    uint32_t *cpref; /* base-map OSD index to keep if possible, or PL_NONE */
    uint8_t *ckind;  /* enum pl_cell_kind */

    uint32_t *prev_ids;     /* previous sets scaled to pg_count x pg_size (ids), or NULL */
    uint32_t *prev_primary; /* pg_count, or NULL */
    uint32_t *primary;      /* pg_count: chosen primary OSD index or PL_NONE */
    struct pl_err err;
};

/* placement_target.c: eligible OSDs, domains, cells from the base map, targets. */
int placement__eligible(struct pl_work *w);
int placement__base_cells(struct pl_work *w, const uint32_t *base_ids);
int placement__targets(struct pl_work *w);
uint32_t placement__osd_by_id(const struct pl_work *w, uint32_t id);

/* placement_lp.c: which PGs use which failure domains (the linear program). */
int placement__assign_domains(struct pl_work *w);

/* placement_glpk.c: maximise obj . x subject to A x <= row_ub, 0 <= x <= col_ub,
 * A a 0/1 matrix given by columns. x receives cols values. 0, -ENOMEM, -EIO. */
struct pl_lpmodel {
    uint32_t rows, cols;
    double *row_ub;      /* rows */
    double *col_ub, *obj; /* cols */
    uint32_t *col_start; /* cols + 1: column j has rows row_of[col_start[j] .. col_start[j+1]) */
    uint32_t *row_of;
};
int placement__glpk_solve(const struct pl_lpmodel *m, double *x);

/* placement_assign.c: repair, mixing, OSDs inside domains, slot order. */
int placement__repair(struct pl_work *w, uint32_t *repaired);
int placement__mix(struct pl_work *w);
int placement__choose_osds(struct pl_work *w);
bool placement__pg_has_dom(const struct pl_work *w, uint32_t pg, uint32_t dom);
uint32_t placement__pg_members(const struct pl_work *w, uint32_t pg);
/* Puts a new member in domain dom into the first free slot of pg; the cell. */
uint32_t placement__add_cell(struct pl_work *w, uint32_t pg, uint32_t dom);
void placement__dom_loads(struct pl_work *w);

/* placement_primary.c */
int placement__primaries(struct pl_work *w);

/* placement_report.c */
int placement__report(const struct pl_work *w, const struct vs_pgmap_pool *out,
                      struct vs_placement_pool_report *rep);

/* placement_rng.c-free helpers: a splitmix64 generator (deterministic). */
static inline uint64_t placement__mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t placement__rand(uint64_t *state)
{
    *state += 0x9e3779b97f4a7c15ull;
    return placement__mix64(*state);
}

/* Uniform in [0, n) for n > 0 (the bias of a 64-bit modulo is negligible here). */
static inline uint32_t placement__rand_below(uint64_t *state, uint32_t n)
{
    return (uint32_t)(placement__rand(state) % n);
}

#endif /* PLACEMENT_INT_H */
