/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_rules.c -- versions, epochs, PG history and the activation check
 * (osd_rules.h).
 */
#include "osd_rules.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* ---- Versions and epochs ---------------------------------------------------- */

int vs_osd_next_version(uint64_t cur, uint64_t epoch, uint64_t *out)
{
    uint64_t cur_epoch = VS_VERSION_EPOCH(cur);
    if (cur_epoch > epoch)
        return VS_ESTALEEPOCH;
    if (cur_epoch < epoch || cur == 0) {
        if (epoch > VS_PG_EPOCH_MAX)
            return -EOVERFLOW;
        *out = epoch << VS_VERSION_EPOCH_SHIFT | 1;
        return 0;
    }
    if ((cur & VS_VERSION_COUNTER_MAX) == VS_VERSION_COUNTER_MAX)
        return -EOVERFLOW; /* D2: bump the epoch first */
    *out = cur + 1;
    VS_ASSERT(VS_VERSION_EPOCH(*out) == epoch);
    return 0;
}

int vs_pg_next_epoch(uint64_t stored, uint64_t listed_max, bool bump, uint64_t *out)
{
    uint64_t e = stored > listed_max ? stored : listed_max;
    if (e > VS_PG_EPOCH_MAX || (bump && e == VS_PG_EPOCH_MAX))
        return -EOVERFLOW;
    *out = e + (bump ? 1 : 0);
    return 0;
}

/* ---- History ------------------------------------------------------------------ */

static bool osd_id_ok(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0 &&
           json_integer_value(v) <= (json_int_t)UINT32_MAX;
}

static int parse_sets(const json_t *sets, struct vs_pg_history *h, char *err, size_t err_size)
{
    if (!json_is_array(sets)) {
        snprintf(err, err_size, "osd_sets is not an array");
        return -EINVAL;
    }
    if (json_array_size(sets) > VS_PG_HISTORY_SETS_MAX) {
        snprintf(err, err_size, "osd_sets holds more than %u sets", VS_PG_HISTORY_SETS_MAX);
        return -EINVAL;
    }
    size_t i, j;
    json_t *set, *v;
    json_array_foreach(sets, i, set) {
        if (!json_is_array(set) || json_array_size(set) == 0 ||
            json_array_size(set) > VS_PG_SIZE_MAX) {
            snprintf(err, err_size, "osd_sets[%zu] is not an array of 1..%u OSD ids", i,
                     VS_PG_SIZE_MAX);
            return -EINVAL;
        }
        json_array_foreach(set, j, v) {
            if (!osd_id_ok(v)) {
                snprintf(err, err_size, "osd_sets[%zu][%zu] is not an OSD id", i, j);
                return -EINVAL;
            }
            h->sets[i][j] = (uint32_t)json_integer_value(v);
        }
        h->set_size[i] = (uint32_t)json_array_size(set);
    }
    h->set_count = (uint32_t)json_array_size(sets);
    return 0;
}

/* all_peers or superseded: an array of OSD ids, duplicates folded. */
static int parse_ids(const json_t *ids, const char *name, struct vs_pg_history *h,
                     int (*add)(struct vs_pg_history *, uint32_t), char *err, size_t err_size)
{
    if (!json_is_array(ids) || json_array_size(ids) > VS_PG_PEERS_MAX) {
        snprintf(err, err_size, "%s is not an array of at most %u OSD ids", name,
                 VS_PG_PEERS_MAX);
        return -EINVAL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(ids, i, v) {
        if (!osd_id_ok(v) || json_integer_value(v) == 0) {
            snprintf(err, err_size, "%s[%zu] is not an OSD id", name, i);
            return -EINVAL;
        }
        if (add(h, (uint32_t)json_integer_value(v)) < 0)
            return -EINVAL;
    }
    return 0;
}

int vs_pg_history_parse(const char *text, size_t len, struct vs_pg_history *out, char *err,
                        size_t err_size)
{
    memset(out, 0, sizeof(*out));
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    if (!j) {
        snprintf(err, err_size, "malformed JSON: %s", jerr.text);
        return -EINVAL;
    }
    int rc = 0;
    json_t *epoch = json_object_get(j, "epoch"), *sets = json_object_get(j, "osd_sets");
    json_t *peers = json_object_get(j, "all_peers"), *sup = json_object_get(j, "superseded");
    if (!json_is_object(j)) {
        snprintf(err, err_size, "not a JSON object");
        rc = -EINVAL;
    } else if (epoch && (!json_is_integer(epoch) || json_integer_value(epoch) < 0 ||
                         (uint64_t)json_integer_value(epoch) > VS_PG_EPOCH_MAX)) {
        snprintf(err, err_size, "epoch is not an integer in 0..2^48-1");
        rc = -EINVAL;
    } else {
        out->epoch = epoch ? (uint64_t)json_integer_value(epoch) : 0;
        if (sets)
            rc = parse_sets(sets, out, err, err_size);
        if (rc == 0 && peers)
            rc = parse_ids(peers, "all_peers", out, vs_pg_history_add_peer, err, err_size);
        if (rc == 0 && sup)
            rc = parse_ids(sup, "superseded", out, vs_pg_history_supersede, err, err_size);
    }
    json_decref(j);
    return rc;
}

static json_t *u32_array(const uint32_t *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, json_integer(v[i])) < 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

char *vs_pg_history_dump(const struct vs_pg_history *h)
{
    json_t *sets = json_array();
    for (uint32_t i = 0; sets && i < h->set_count; i++) {
        json_t *s = u32_array(h->sets[i], h->set_size[i]);
        if (!s || json_array_append_new(sets, s) < 0) {
            json_decref(sets);
            sets = NULL;
        }
    }
    json_t *peers = u32_array(h->peers, h->peer_count);
    json_t *j = sets && peers ? json_pack("{s:I,s:o,s:o}", "epoch", (json_int_t)h->epoch,
                                          "osd_sets", sets, "all_peers", peers)
                              : NULL;
    if (!j) {
        json_decref(sets);
        json_decref(peers);
        return NULL;
    }
    /* Only when there are some: a history without them reads as before. */
    json_t *sup = h->superseded_count ? u32_array(h->superseded, h->superseded_count) : NULL;
    if (h->superseded_count && (!sup || json_object_set_new(j, "superseded", sup) < 0)) {
        json_decref(j);
        return NULL;
    }
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

int vs_pg_history_add_peer(struct vs_pg_history *h, uint32_t osd)
{
    VS_ASSERT(osd != 0);
    for (uint32_t i = 0; i < h->peer_count; i++)
        if (h->peers[i] == osd)
            return 0;
    if (h->peer_count == VS_PG_PEERS_MAX)
        return -ENOSPC;
    h->peers[h->peer_count++] = osd;
    return 1;
}

int vs_pg_history_add_set(struct vs_pg_history *h, const uint32_t *set, uint32_t size)
{
    VS_ASSERT(size >= 1 && size <= VS_PG_SIZE_MAX);
    for (uint32_t i = 0; i < h->set_count; i++)
        if (h->set_size[i] == size && memcmp(h->sets[i], set, size * sizeof(*set)) == 0)
            return 0;
    if (h->set_count == VS_PG_HISTORY_SETS_MAX)
        return -ENOSPC;
    for (uint32_t i = 0; i < size; i++)
        if (set[i] && vs_pg_history_add_peer(h, set[i]) < 0)
            return -ENOSPC;
    memcpy(h->sets[h->set_count], set, size * sizeof(*set));
    h->set_size[h->set_count++] = size;
    return 1;
}

static bool in_ids(const uint32_t *v, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i] == id)
            return true;
    return false;
}

void vs_pg_history_clear(struct vs_pg_history *h, const uint32_t *target, uint32_t size)
{
    for (uint32_t s = 0; s < h->set_count; s++)
        for (uint32_t i = 0; i < h->set_size[s]; i++)
            if (h->sets[s][i] && !in_ids(target, size, h->sets[s][i]))
                (void)vs_pg_history_supersede(h, h->sets[s][i]);
    for (uint32_t i = 0; i < h->peer_count; i++)
        if (!in_ids(target, size, h->peers[i]))
            (void)vs_pg_history_supersede(h, h->peers[i]);
    h->set_count = 0;
    h->peer_count = 0;
    for (uint32_t i = 0; i < size; i++)
        if (target[i])
            (void)vs_pg_history_add_peer(h, target[i]);
}

int vs_pg_history_supersede(struct vs_pg_history *h, uint32_t osd)
{
    VS_ASSERT(osd != 0);
    if (in_ids(h->superseded, h->superseded_count, osd))
        return 0;
    if (h->superseded_count == VS_PG_PEERS_MAX)
        return -ENOSPC;
    h->superseded[h->superseded_count++] = osd;
    return 1;
}

bool vs_pg_history_unsupersede(struct vs_pg_history *h, uint32_t osd)
{
    for (uint32_t i = 0; i < h->superseded_count; i++)
        if (h->superseded[i] == osd) {
            h->superseded[i] = h->superseded[--h->superseded_count];
            return true;
        }
    return false;
}

bool vs_pg_history_is_superseded(const struct vs_pg_history *h, uint32_t osd)
{
    return in_ids(h->superseded, h->superseded_count, osd);
}

/* ---- Activation ------------------------------------------------------------------ */

static bool is_reachable(const struct vs_pg_activation *a, uint32_t osd)
{
    for (uint32_t i = 0; i < a->reachable_count; i++)
        if (a->reachable[i] == osd)
            return true;
    return false;
}

static void set_str(const uint32_t *set, uint32_t n, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (uint32_t i = 0; i < n && at + 12 < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%" PRIu32, i ? "," : "[", set[i]);
    if (at + 2 < size)
        snprintf(buf + at, size - at, "]");
}

const char *vs_pg_why_incomplete(const struct vs_pg_activation *a, char *buf, size_t size)
{
    uint32_t up = 0;
    for (uint32_t i = 0; i < a->pg_size; i++)
        up += a->cur_set[i] != 0;
    if (up < a->pg_minsize) {
        snprintf(buf, size, "only %u OSD(s) of the set are up, pg_minsize is %u", up,
                 a->pg_minsize);
        return buf;
    }
    for (uint32_t s = 0; s < a->hist_count; s++) {
        uint32_t members = 0, reach = 0;
        for (uint32_t i = 0; i < a->hist_sizes[s]; i++) {
            uint32_t osd = a->hist_sets[s][i];
            members += osd != 0;
            reach += osd != 0 && is_reachable(a, osd);
        }
        if (members >= a->pg_data_size && reach < a->pg_data_size) {
            char set[128];
            set_str(a->hist_sets[s], a->hist_sizes[s], set, sizeof(set));
            snprintf(buf, size,
                     "the PG ran on %s and only %u of those OSDs can be reached (%u needed): "
                     "its newest data may be there",
                     set, reach, a->pg_data_size);
            return buf;
        }
    }
    return NULL;
}
