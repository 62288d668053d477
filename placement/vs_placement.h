/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_placement.h -- libvsplacement: maps every PG of every pool to an ordered
 * set of OSDs, honouring failure domains, weights and tags, spreading PG
 * members and primaries as evenly as the weights allow, and moving as little
 * data as possible when anything changes. The core is a linear program solved
 * with GLPK; docs/placement.md explains the method and every JSON field.
 *
 * Contract
 *  - Pure: no I/O, no clock (the caller may pass one to time the solve), no
 *    randomness except a PRNG seeded from vs_placement_opts.seed. The same
 *    inputs and seed always give the same output, byte for byte, whatever the
 *    order of keys or array items in the input JSON.
 *  - Threads: call from any one thread at a time per object. GLPK keeps a
 *    per-thread environment; nothing else is global.
 *  - Ownership: every *_parse / *_from_json / vs_placement_solve() result is
 *    owned by the caller and freed with the matching *_free(). *_dump() returns
 *    a string to free(); *_to_json() a new jansson reference to json_decref().
 *  - Errors: 0 on success or a negative code: VS_ECONFIG (malformed or invalid
 *    input; errmsg names the field), VS_EINFEASIBLE (a pool cannot be placed;
 *    errmsg names the pool and the reason), -ENOMEM, -EIO (GLPK failed).
 *    errmsg, when not NULL, receives a sentence; it is untouched on success.
 *
 * The three JSON documents below are the cluster's canonical formats: the
 * monitor stores them in the metadata service (config/pools, config/osd/<id>
 * and the tree, config/pgs) exactly as these functions read and write them.
 *
 * Terms: a pool has pg_count PGs numbered 0..pg_count-1. A PG's osd_set has
 * pg_size slots; slot i of an EC/XOR pool holds chunk i (data chunks first,
 * then parity), and for a replicated pool slot 0 is the primary. OSD ids are
 * >= 1; the id 0 in a slot means "no OSD" (a degraded placement).
 */
#ifndef VS_PLACEMENT_H
#define VS_PLACEMENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VS_PLACEMENT_PG_SIZE_MAX 32u
#define VS_PLACEMENT_PG_COUNT_MAX (1u << 20)
#define VS_PLACEMENT_FORMAT 1 /* the "format" field of a PG map */

/* ---- The placement tree (opaque) -------------------------------------------
 *
 * { "levels": ["root", "dc", "rack", "host", "osd"],          optional
 *   "nodes": { "rack1": {"level": "rack"},
 *              "host1": {"level": "host", "parent": "rack1"} },
 *   "osds":  { "1": {"parent": "host1", "weight": 3.64, "reweight": 1,
 *                    "tags": ["ssd"], "up": true, "in": true} } }
 *
 * One entry of "osds" is also the value of config/osd/<id>. */
struct vs_placement_tree;

int vs_placement_tree_parse(const char *text, size_t len, struct vs_placement_tree **out,
                            char *errmsg, size_t errmsg_size);
int vs_placement_tree_from_json(const json_t *root, struct vs_placement_tree **out, char *errmsg,
                                size_t errmsg_size);
json_t *vs_placement_tree_to_json(const struct vs_placement_tree *tree);
void vs_placement_tree_free(struct vs_placement_tree *tree);
/* Number of OSDs in the tree, whatever their state. */
uint32_t vs_placement_tree_osd_count(const struct vs_placement_tree *tree);

/* ---- Pools (config/pools) ---------------------------------------------------
 *
 * { "1": {"name": "rbd", "scheme": "replicated", "pg_size": 3, "pg_minsize": 2,
 *         "pg_count": 256, "failure_domain": "host"}, "2": {...} }
 *
 * Keys are pool ids 1..65535 (the top 16 bits of an inode number). */
enum vs_pool_scheme {
    VS_POOL_REPLICATED = 0,
    VS_POOL_XOR = 1, /* n data chunks + 1 parity chunk, plain XOR */
    VS_POOL_EC = 2,  /* Reed-Solomon: pg_size - parity_chunks data chunks */
};

struct vs_placement_pool {
    uint16_t id;
    char *name;
    enum vs_pool_scheme scheme;
    uint32_t pg_size;       /* OSDs per PG */
    uint32_t parity_chunks; /* 0 for replicated, 1 for xor, >= 1 for ec */
    uint32_t pg_minsize;    /* live OSDs a PG needs to stay active */
    uint32_t pg_count;
    char *failure_domain;   /* a level name; "host" by default */
    char *root_node;        /* NULL: the whole tree */
    uint32_t osd_tag_count; /* an OSD must carry every one of these tags */
    char **osd_tags;
    uint32_t primary_tag_count; /* primaries are picked among OSDs with all of these */
    char **primary_affinity_tags;
    /* Data-path fields, validated and carried; 0 / NULL = inherit the global value. */
    uint64_t block_size;
    uint64_t bitmap_granularity;
    uint64_t pg_stripe_size;
    char *immediate_commit; /* "all" | "small" | "none" */
    char *local_reads;      /* "primary" | "nearest" | "random" */
};

struct vs_placement_pools {
    uint32_t count;
    struct vs_placement_pool *pools; /* sorted by id */
};

int vs_placement_pools_parse(const char *text, size_t len, struct vs_placement_pools **out,
                             char *errmsg, size_t errmsg_size);
int vs_placement_pools_from_json(const json_t *root, struct vs_placement_pools **out,
                                 char *errmsg, size_t errmsg_size);
json_t *vs_placement_pools_to_json(const struct vs_placement_pools *pools);
void vs_placement_pools_free(struct vs_placement_pools *pools);
const struct vs_placement_pool *vs_placement_pools_find(const struct vs_placement_pools *pools,
                                                        uint16_t id);
/* Data chunks per stripe: 1 for replicated, pg_size - parity_chunks otherwise. */
uint32_t vs_placement_pool_data_chunks(const struct vs_placement_pool *pool);

/* ---- The PG map (config/pgs) ------------------------------------------------
 *
 * { "format": 1,
 *   "pools": { "1": { "pg_size": 3,
 *                     "pgs": [ {"osd_set": [3, 7, 12], "primary": 3},
 *                              {"osd_set": [4, 9, 0], "primary": 9,
 *                               "history": [[4, 9, 11]]} ],
 *                     "last_clean": [[3, 7, 12], [4, 9, 11]] } } }
 *
 * history: earlier osd_sets of the PG whose data may not have moved yet (the
 * OSDs peering must ask). The solve appends the previous set when it changes a
 * PG; the monitor clears it when the PG is clean (vs_pgmap_clear_history).
 * last_clean: the sets of the last moment the whole pool was clean; when
 * present it is the base the next solve minimises movement against. */
struct vs_pgmap_pg {
    uint32_t primary;       /* 0 = none (no live OSD in the set) */
    bool pause;             /* set by the monitor: do not start the PG yet; solve clears it */
    uint32_t history_count; /* earlier sets, oldest first */
    uint32_t *history;      /* history_count * pg_size OSD ids */
};

struct vs_pgmap_pool {
    uint16_t pool_id;
    uint32_t pg_size;
    uint32_t pg_count;
    uint32_t *osd_sets;        /* pg_count * pg_size; set of PG p at p * pg_size */
    struct vs_pgmap_pg *pgs;   /* pg_count */
    uint32_t *last_clean;      /* NULL or pg_count * pg_size */
};

struct vs_pgmap {
    uint32_t pool_count;
    struct vs_pgmap_pool *pools; /* sorted by pool_id */
};

int vs_pgmap_parse(const char *text, size_t len, struct vs_pgmap **out, char *errmsg,
                   size_t errmsg_size);
int vs_pgmap_from_json(const json_t *root, struct vs_pgmap **out, char *errmsg,
                       size_t errmsg_size);
json_t *vs_pgmap_to_json(const struct vs_pgmap *map);
/* Compact canonical JSON text; free() it. NULL on ENOMEM. */
char *vs_pgmap_dump(const struct vs_pgmap *map);
void vs_pgmap_free(struct vs_pgmap *map);
const struct vs_pgmap_pool *vs_pgmap_find(const struct vs_pgmap *map, uint16_t pool_id);
/* The osd_set of PG pg (pg_size ids), or NULL when pg is out of range. */
const uint32_t *vs_pgmap_osd_set(const struct vs_pgmap_pool *pool, uint32_t pg);
/* Forget the history of one PG (it is clean: every OSD of its set has its data).
 * 0, or VS_ENOPOOL / -ERANGE. */
int vs_pgmap_clear_history(struct vs_pgmap *map, uint16_t pool_id, uint32_t pg);
/* Record the pool's current sets as its last clean layout. 0, VS_ENOPOOL or -ENOMEM. */
int vs_pgmap_set_last_clean(struct vs_pgmap *map, uint16_t pool_id);

/* ---- Solving ------------------------------------------------------------ */
struct vs_placement_opts {
    uint64_t seed; /* varies the layout of fresh placements; keep it fixed per cluster */
    /* Optional clock, only to report the solve time (the library has none). */
    uint64_t (*now_ns)(void *ctx);
    void *now_ctx;
};

/* Load of one OSD in one pool, against two references: "ideal" is its share of
 * the pool's PG slots by weight alone; "best" is the best share any placement
 * can give it (a failure domain holds at most one member of each PG, so a very
 * heavy domain cannot reach its weight share; down OSDs keep what they hold). */
struct vs_placement_osd_load {
    uint32_t osd;
    double weight; /* effective weight: weight * reweight */
    bool up;
    uint32_t slots; /* PG members placed on it */
    double ideal;
    double best;
    uint32_t primaries;
    double primary_ideal;
};

struct vs_placement_pool_report {
    uint16_t pool_id;
    char name[256];
    int rc;                      /* 0, or why this pool was not placed */
    char errmsg[256];            /* the reason when rc < 0; a warning when degraded */
    bool degraded;               /* some PGs have empty slots */
    uint32_t domain_count;       /* failure domains with eligible OSDs */
    uint32_t slots_per_pg;       /* members each PG gets: min(pg_size, domains) */
    uint64_t empty_slots;        /* slots holding 0 */
    uint32_t pgs_below_minsize;  /* PGs with fewer than pg_minsize members */
    uint64_t moved_members;      /* members that differ from the previous map */
    uint64_t moved_min;          /* a lower bound of moved members for these targets */
    uint32_t moved_pgs;          /* PGs with at least one moved member */
    uint32_t primary_changes;
    double ratio_min, ratio_max;           /* (slot share) / (weight share), up OSDs */
    double best_ratio_min, best_ratio_max; /* slots / best, up OSDs */
    double slot_dev_max;         /* max |slots - best| over up OSDs (< 1: optimal) */
    double primary_dev_max;      /* max |primaries - primary_ideal| */
    uint32_t lp_rows, lp_cols, lp_rounds; /* size of the last LP, and how many were run */
    uint32_t repaired;           /* slots placed by the augmenting-path repair */
    uint32_t osd_count;
    struct vs_placement_osd_load *osds; /* sorted by OSD id */
};

struct vs_placement_report {
    uint64_t solve_ns; /* 0 unless opts.now_ns was given */
    uint32_t pool_count;
    struct vs_placement_pool_report *pools; /* sorted by pool id */
};

/*
 * Computes the PG map for every pool of pools over tree. prev (may be NULL) is
 * the current map: its sets, history and last_clean are the starting point,
 * and PGs keep as many members as the new targets allow. A pool that cannot be
 * placed keeps its previous sets (or none) in *map_out, gets rc < 0 in its
 * report, and makes the call return VS_EINFEASIBLE with that pool's reason in
 * errmsg; the other pools are still placed. On 0 and on VS_EINFEASIBLE both
 * *map_out and *report_out are set; on other errors neither is.
 */
int vs_placement_solve(const struct vs_placement_tree *tree,
                       const struct vs_placement_pools *pools, const struct vs_pgmap *prev,
                       const struct vs_placement_opts *opts, struct vs_pgmap **map_out,
                       struct vs_placement_report **report_out, char *errmsg,
                       size_t errmsg_size);

json_t *vs_placement_report_to_json(const struct vs_placement_report *report);
void vs_placement_report_free(struct vs_placement_report *report);
const struct vs_placement_pool_report *
vs_placement_report_find(const struct vs_placement_report *report, uint16_t pool_id);

#endif /* VS_PLACEMENT_H */
