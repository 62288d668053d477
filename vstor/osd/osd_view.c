/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_view.c -- the cluster as the OSD follows it: config/global,
 * config/pools, config/pgs and osd/state/<id>. Every document is parsed with
 * the same parsers the monitor and the client use (placement/); a malformed
 * one is logged and the previous value kept. After each batch of changes,
 * osd__view_refresh() starts the PGs the map makes us primary of and stops
 * the ones it no longer does (docs/data-path.md §3, step 2).
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void osd__view_apply_global(struct vs_osd *osd, const uint8_t *v, uint32_t len)
{
    osd->global_block_size = 0;
    osd->global_lazy = false;
    if (!v)
        return;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)v, len, 0, &jerr);
    if (!json_is_object(j)) {
        VS_ERROR(OSD_LOG, "config/global: not a JSON object%s%s; using defaults",
                 j ? "" : ": ", j ? "" : jerr.text);
        json_decref(j);
        return;
    }
    json_t *bs = json_object_get(j, "block_size");
    if (json_is_integer(bs) && json_integer_value(bs) > 0)
        osd->global_block_size = (uint64_t)json_integer_value(bs);
    const char *ic = json_string_value(json_object_get(j, "immediate_commit"));
    osd->global_lazy = ic && strcmp(ic, "all") != 0;
    json_decref(j);
}

void osd__view_apply_pools(struct vs_osd *osd, const uint8_t *v, uint32_t len)
{
    struct vs_placement_pools *pools = NULL;
    char err[VS_ERRMSG_SIZE];
    if (v && vs_placement_pools_parse((const char *)v, len, &pools, err, sizeof(err)) < 0) {
        VS_ERROR(OSD_LOG, "config/pools: %s; keeping the previous pools", err);
        return;
    }
    vs_placement_pools_free(osd->pools);
    osd->pools = pools;
}

void osd__view_apply_pgs(struct vs_osd *osd, const uint8_t *v, uint32_t len, uint64_t rev)
{
    struct vs_pgmap *map = NULL;
    char err[VS_ERRMSG_SIZE];
    if (v && vs_pgmap_parse((const char *)v, len, &map, err, sizeof(err)) < 0) {
        VS_ERROR(OSD_LOG, "config/pgs: %s; keeping the previous PG map", err);
        return;
    }
    vs_pgmap_free(osd->pgmap);
    osd->pgmap = map;
    osd->pgmap_rev = rev;
}

void osd__view_apply_osd(struct vs_osd *osd, uint32_t id, const uint8_t *v, uint32_t len)
{
    if (!v) {
        osd__peer_set(osd, id, false, NULL);
        return;
    }
    json_t *j = json_loadb((const char *)v, len, 0, NULL);
    const char *addr = json_string_value(json_array_get(json_object_get(j, "addresses"), 0));
    if (!addr)
        VS_WARN(OSD_LOG, "osd/state/%u has no address: osd.%u cannot be reached", id, id);
    osd__peer_set(osd, id, true, addr);
    json_decref(j);
}

/* ---- Locating objects ------------------------------------------------------------ */

static uint64_t pool_obj_size(const struct vs_osd *osd, const struct vs_placement_pool *p)
{
    if (p->block_size)
        return p->block_size;
    return osd->global_block_size ? osd->global_block_size : osd->block_size;
}

int osd__locate(struct vs_osd *osd, uint64_t inode, uint64_t offset, uint64_t *stripe,
                uint32_t *pg)
{
    uint16_t pool_id = (uint16_t)vs_net_inode_pool(inode);
    const struct vs_placement_pool *p = osd->pools ? vs_placement_pools_find(osd->pools, pool_id)
                                                   : NULL;
    const struct vs_pgmap_pool *mp = osd->pgmap ? vs_pgmap_find(osd->pgmap, pool_id) : NULL;
    if (!p || !mp || mp->pg_count == 0)
        return -EINVAL;
    uint64_t osize = pool_obj_size(osd, p);
    *stripe = offset / osize * osize;
    uint64_t pss = p->pg_stripe_size ? p->pg_stripe_size : osize;
    *pg = (uint32_t)(*stripe / pss % mp->pg_count);
    return 0;
}

/* ---- Which PGs run here ------------------------------------------------------------ */

static bool pool_usable(struct vs_osd *osd, const struct vs_placement_pool *p)
{
    if (p->scheme != VS_POOL_REPLICATED) {
        VS_DEBUG_LOG(OSD_LOG, "pool %u: scheme not served yet (replicated only)", p->id);
        return false;
    }
    if (pool_obj_size(osd, p) != osd->block_size) {
        VS_ERROR(OSD_LOG, "pool %u: block_size %" PRIu64 " differs from this store's %u: not "
                 "serving its PGs", p->id, pool_obj_size(osd, p), osd->block_size);
        return false;
    }
    if (p->pg_size > OSD_SUBOPS + 1) {
        VS_ERROR(OSD_LOG, "pool %u: pg_size %u is above %u: not serving its PGs", p->id,
                 p->pg_size, OSD_SUBOPS + 1);
        return false;
    }
    return true;
}

static void refresh_pool(struct vs_osd *osd, const struct vs_pgmap_pool *mp)
{
    const struct vs_placement_pool *p = osd->pools ? vs_placement_pools_find(osd->pools,
                                                                             mp->pool_id)
                                                   : NULL;
    if (!p || !pool_usable(osd, p))
        return;
    for (uint32_t pg = 0; pg < mp->pg_count; pg++) {
        const struct vs_pgmap_pg *e = &mp->pgs[pg];
        if (e->primary == osd->id && !e->pause)
            osd__pg_map(osd, mp->pool_id, pg, mp, p, osd->pgmap_rev);
    }
}

/* Is pg still ours in the current map? */
static bool still_ours(struct vs_osd *osd, const struct osd_pg *pg)
{
    const struct vs_pgmap_pool *mp = osd->pgmap ? vs_pgmap_find(osd->pgmap, pg->pool) : NULL;
    const struct vs_placement_pool *p = osd->pools ? vs_placement_pools_find(osd->pools,
                                                                             pg->pool)
                                                   : NULL;
    if (!mp || !p || pg->num >= mp->pg_count || mp->pg_size != pg->pg_size)
        return false;
    const struct vs_pgmap_pg *e = &mp->pgs[pg->num];
    return e->primary == osd->id && !e->pause;
}

void osd__view_refresh(struct vs_osd *osd)
{
    if (!osd->registered || !osd->view_loaded || osd->stopping)
        return;
    for (uint32_t i = 0; osd->pgmap && i < osd->pgmap->pool_count; i++)
        refresh_pool(osd, &osd->pgmap->pools[i]);
    for (uint32_t i = 0; i < osd->pg_hash_size; i++) {
        struct osd_pg *pg = osd->pg_hash[i];
        while (pg) {
            struct osd_pg *next = pg->hnext;
            if (pg->state != VS_PG_OFFLINE && pg->state != VS_PG_STOPPING &&
                !still_ours(osd, pg)) {
                VS_INFO(OSD_LOG, "pg %s: the map no longer makes us its primary", pg->name);
                pg->stop_wanted = true;
                osd__pg_stop(pg);
            }
            pg = next;
        }
    }
}
