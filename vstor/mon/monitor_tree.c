/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * monitor_tree.c -- the placement tree the monitor hands to
 * vs_placement_solve(), in the format of docs/placement.md section 1:
 *
 *   nodes: config/nodes (racks, rooms, ...), plus one {"level": "host"} node
 *          for every host an OSD names that config/nodes does not;
 *   osds:  every OSD known from config/osd/<id>, osd/state/<id> or the
 *          monitor's record mon/osd/<id>:
 *            parent   = the host (from the state, else from the record),
 *            weight   = size_bytes / 1e12 (TB; from the state, else the record),
 *            reweight, tags, noout = config/osd/<id>,
 *            up       = osd/state/<id> exists,
 *            in       = true (marking OSDs out is not done yet).
 *
 * The record is what keeps a down OSD in its host: without it, an OSD that is
 * down when a new leader starts (or when the whole cluster restarts) would
 * look like a new, hostless OSD, and its PGs would move.
 */
#include "monitor_int.h"

#include <stdio.h>

static int add_osd(json_t *nodes, json_t *osds, const struct mon_osd *o)
{
    json_t *e = json_object();
    if (!e)
        return -1;
    int rc = 0;
    if (o->host) {
        rc |= json_object_set_new(e, "parent", json_string(o->host));
        if (!json_object_get(nodes, o->host))
            rc |= json_object_set_new(nodes, o->host, json_pack("{s:s}", "level", "host"));
    }
    rc |= json_object_set_new(e, "weight", json_real((double)o->size_bytes /
                                                     VS_MON_WEIGHT_UNIT_BYTES));
    static const char *const from_config[] = {"reweight", "tags", "noout"};
    for (unsigned i = 0; o->config && i < 3; i++) {
        json_t *f = json_object_get(o->config, from_config[i]);
        if (f)
            rc |= json_object_set(e, from_config[i], f);
    }
    rc |= json_object_set_new(e, "up", json_boolean(o->up));
    rc |= json_object_set_new(e, "in", json_true());
    char id[16];
    snprintf(id, sizeof(id), "%u", o->id);
    rc |= json_object_set_new(osds, id, e);
    return rc ? -1 : 0;
}

json_t *mon__tree_json(const struct mon_view *v)
{
    json_t *nodes = json_is_object(v->nodes.json) ? json_deep_copy(v->nodes.json)
                                                   : json_object();
    json_t *osds = json_object();
    int rc = nodes && osds ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < v->n_osds; i++)
        rc = add_osd(nodes, osds, &v->osds[i]);
    if (rc < 0) {
        json_decref(nodes);
        json_decref(osds);
        return NULL;
    }
    return json_pack("{s:o,s:o}", "nodes", nodes, "osds", osds);
}
