/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_int.h -- internals of the monitor's pure core, shared by
 * monitor_view.c (key/values -> the cluster view), monitor_tree.c (the view ->
 * the placement tree) and monitor_plan.c (the view -> the transaction).
 */
#ifndef VSTOR_MON_MONITOR_INT_H
#define VSTOR_MON_MONITOR_INT_H

#include "monitor.h"
#include "vs_err.h"
#include "vs_placement.h"

#include <stdarg.h>

/* One OSD known from any source: its config, its state, or the record. */
struct mon_osd {
    uint32_t id;
    bool up;               /* osd/state/<id> exists */
    bool state_valid;      /* the state carries a host and size_bytes */
    const char *host;      /* state's host, else the record's; NULL = unknown */
    uint64_t size_bytes;   /* state's, else the record's; 0 = unknown */
    const char *rec_host;  /* mon/osd/<id>, or NULL */
    uint64_t rec_size;
    uint64_t rec_mod_rev;  /* 0: no record */
    json_t *state;         /* borrowed from the view's documents */
    json_t *config;        /* config/osd/<id> (an object), or NULL */
};

/* pg/state/<pool>/<pg>: what the primary reports. */
struct mon_pgstate {
    uint16_t pool;
    uint32_t pg;
    uint32_t primary;
    bool active_clean; /* state is exactly ["active"] */
    uint32_t n_peers;
    uint32_t peers[VS_PLACEMENT_PG_SIZE_MAX];
    uint64_t mod_rev;
};

/* A single-key JSON document (config/pools, config/nodes, ...). */
struct mon_doc {
    json_t *json; /* NULL when absent or not JSON */
    uint64_t mod_rev; /* 0 when absent */
};

struct mon_view {
    struct mon_doc pools, nodes, pgs, placement;
    struct vs_placement_pools *pool_cfg; /* NULL when config/pools is invalid */
    struct vs_pgmap *pgmap;              /* NULL when config/pgs is absent or invalid */
    bool inputs_ok;                      /* pools, nodes and every OSD config are valid */
    bool pgs_bad;                        /* config/pgs exists but cannot be read */
    struct mon_osd *osds;                /* sorted by id */
    uint32_t n_osds, cap_osds;
    struct mon_pgstate *states;          /* sorted by (pool, pg) */
    uint32_t n_states, cap_states;
    json_t *docs;                        /* owns every parsed per-key value */
};

/* monitor_view.c */
void mon__msg(struct vs_mon_plan *plan, enum vs_mon_msg_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int mon__view_build(struct mon_view *v, const struct vs_meta_kv *kvs, unsigned n,
                    struct vs_mon_plan *plan);
void mon__view_free(struct mon_view *v);
const struct mon_osd *mon__view_osd(const struct mon_view *v, uint32_t id);
const struct mon_pgstate *mon__view_state(const struct mon_view *v, uint16_t pool, uint32_t pg);
/* Strict decimal in [min, max] from s[0..len); false otherwise. */
bool mon__parse_dec(const char *s, size_t len, uint64_t min, uint64_t max, uint64_t *out);

/* monitor_tree.c: the placement tree as JSON (docs/placement.md section 1). */
json_t *mon__tree_json(const struct mon_view *v);

#endif /* VSTOR_MON_MONITOR_INT_H */
