/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_testlib.h -- helpers shared by the placement tests: build trees
 * and pools as JSON, solve, and check a map against the tree independently of
 * the library's own bookkeeping (the checks recompute failure domains and
 * eligibility from the JSON).
 */
#ifndef PLACEMENT_TESTLIB_H
#define PLACEMENT_TESTLIB_H

#include "vs_placement.h"

#include <stdbool.h>
#include <stdint.h>

/* A tree of `hosts` hosts named h0, h1 ... with `per_host` OSDs each, ids
 * from 1, weight w. Racks r0.. when racks > 0 (host i in rack i % racks). */
json_t *tl_tree(uint32_t hosts, uint32_t per_host, double w, uint32_t racks);
void tl_add_osd(json_t *tree, uint32_t id, const char *parent, double weight);
json_t *tl_osd(json_t *tree, uint32_t id); /* borrowed */
json_t *tl_pool(const char *scheme, uint32_t pg_size, uint32_t parity, uint32_t minsize,
                uint32_t pg_count);
json_t *tl_pools1(json_t *pool); /* {"1": pool}, steals pool; named "p1" */

struct tl_result {
    int rc;
    char errmsg[256];
    struct vs_pgmap *map;
    struct vs_placement_report *report;
};

/* Parses both documents (asserting they parse) and solves. */
void tl_solve(const json_t *tree, const json_t *pools, const struct vs_pgmap *prev, uint64_t seed,
              struct tl_result *out);
void tl_result_free(struct tl_result *r);
const struct vs_placement_pool_report *tl_rep(const struct tl_result *r, uint16_t pool);

/* Domain name of an OSD at `level` ("osd" = the OSD itself), from the JSON;
 * NULL-safe: an OSD with no ancestor at that level is its own domain. */
const char *tl_domain(const json_t *tree, uint32_t osd, const char *level, char *buf,
                      size_t size);
/* Asserts: no two members of a set share a domain, no OSD twice, every
 * member is in the tree. Returns the number of members. */
uint64_t tl_check_domains(const json_t *tree, const struct vs_pgmap_pool *pp, const char *level);
/* Slots per OSD id (index = id), array of max_id + 1. */
uint32_t *tl_slots(const struct vs_pgmap_pool *pp, uint32_t max_id);
/* Members of set that are not in prev (slot by slot when ec). */
uint32_t tl_moved(const struct vs_pgmap_pool *a, const struct vs_pgmap_pool *b, bool ec);

#endif /* PLACEMENT_TESTLIB_H */
