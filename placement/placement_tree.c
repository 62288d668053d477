/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_tree.c -- the placement tree: levels, named nodes and OSDs, and
 * its JSON codec (the format is in vs_placement.h and docs/placement.md).
 *
 * Invariants of a parsed tree:
 *  (1) levels are unique and the last one is "osd";
 *  (2) a node's parent sits at a strictly higher (earlier) level, so the tree
 *      has no cycles and every walk up ends;
 *  (3) nodes are sorted by name and OSDs by id, so everything derived from
 *      the tree is independent of the order of keys in the input.
 */
#include "placement_int.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const default_levels[] = {"root", "dc", "rack", "host", "osd"};

void vs_placement_tree_free(struct vs_placement_tree *t)
{
    if (!t)
        return;
    placement__strlist_free(t->level_count, t->levels);
    for (uint32_t i = 0; t->nodes && i < t->node_count; i++)
        free(t->nodes[i].name);
    free(t->nodes);
    for (uint32_t i = 0; t->osds && i < t->osd_count; i++)
        placement__strlist_free(t->osds[i].tag_count, t->osds[i].tags);
    free(t->osds);
    free(t);
}

uint32_t vs_placement_tree_osd_count(const struct vs_placement_tree *t)
{
    return t->osd_count;
}

uint32_t placement__tree_level(const struct vs_placement_tree *t, const char *name)
{
    for (uint32_t i = 0; i < t->level_count; i++)
        if (strcmp(t->levels[i], name) == 0)
            return i;
    return PL_NONE;
}

uint32_t placement__tree_node(const struct vs_placement_tree *t, const char *name)
{
    uint32_t lo = 0, hi = t->node_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->nodes[mid].name, name);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return PL_NONE;
}

uint32_t placement__tree_domain(const struct vs_placement_tree *t, uint32_t o, uint32_t level)
{
    uint32_t below = PL_NONE; /* the highest ancestor under `level` seen so far */
    for (uint32_t n = t->osds[o].parent; n != PL_NONE; n = t->nodes[n].parent) {
        if (t->nodes[n].level == level)
            return n;
        if (t->nodes[n].level < level)
            break;
        below = n;
    }
    return below;
}

bool placement__tree_under(const struct vs_placement_tree *t, uint32_t o, uint32_t node)
{
    for (uint32_t n = t->osds[o].parent; n != PL_NONE; n = t->nodes[n].parent)
        if (n == node)
            return true;
    return false;
}

bool placement__osd_has_tags(const struct pl_osd *osd, uint32_t count, char *const *tags)
{
    for (uint32_t i = 0; i < count; i++) {
        bool found = false;
        for (uint32_t j = 0; j < osd->tag_count && !found; j++)
            found = strcmp(osd->tags[j], tags[i]) == 0;
        if (!found)
            return false;
    }
    return true;
}

static int parse_levels(struct vs_placement_tree *t, const json_t *root, struct pl_err *err)
{
    json_t *v = json_object_get(root, "levels");
    if (!v) {
        t->level_count = VS_ARRAY_SIZE(default_levels);
        t->levels = calloc(t->level_count, sizeof(char *));
        for (uint32_t i = 0; t->levels && i < t->level_count; i++)
            if (!(t->levels[i] = placement__strdup(default_levels[i])))
                return -ENOMEM;
        return t->levels ? 0 : -ENOMEM;
    }
    if (!json_is_array(v) || json_array_size(v) < 2 || json_array_size(v) > 16)
        return placement__errf(err, "tree.levels: must be an array of 2..16 level names");
    uint32_t n = (uint32_t)json_array_size(v);
    t->levels = calloc(n, sizeof(char *));
    if (!t->levels)
        return -ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        json_t *item = json_array_get(v, i);
        if (!json_is_string(item) || json_string_length(item) == 0)
            return placement__errf(err, "tree.levels[%u]: must be a non-empty string", i);
        const char *name = json_string_value(item);
        if (placement__tree_level(t, name) != PL_NONE)
            return placement__errf(err, "tree.levels: '%s' appears twice", name);
        if (!(t->levels[i] = placement__strdup(name)))
            return -ENOMEM;
        t->level_count++;
    }
    if (strcmp(t->levels[t->level_count - 1], "osd") != 0)
        return placement__errf(err, "tree.levels: the last level must be \"osd\"");
    return 0;
}

static int cmp_node(const void *a, const void *b)
{
    return strcmp(((const struct pl_node *)a)->name, ((const struct pl_node *)b)->name);
}

static int cmp_osd(const void *a, const void *b)
{
    uint32_t x = ((const struct pl_osd *)a)->id, y = ((const struct pl_osd *)b)->id;
    return x < y ? -1 : x > y;
}

static bool is_number(const char *s)
{
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* Fills names and levels; parents are resolved once every node is known. */
static int parse_node(struct vs_placement_tree *t, struct pl_node *n, const char *name,
                      const json_t *v, struct pl_err *err)
{
    static const char *const keys[] = {"level", "parent", NULL};
    char path[300];
    snprintf(path, sizeof(path), "tree.nodes.%s", name);
    if (!*name || is_number(name) || strlen(name) > 255)
        return placement__errf(err, "%s: a node name must be non-empty, not a number and at "
                               "most 255 bytes", path);
    int rc = placement__json_keys(v, path, keys, err);
    char *level = NULL;
    if (rc == 0)
        rc = placement__json_str(v, "level", path, true, &level, err);
    if (rc < 0)
        return rc;
    n->level = placement__tree_level(t, level);
    if (n->level == PL_NONE || n->level == t->level_count - 1)
        rc = placement__errf(err, "%s.level: '%s' is not a level above \"osd\"", path, level);
    free(level);
    n->name = placement__strdup(name);
    return rc < 0 ? rc : n->name ? 0 : -ENOMEM;
}

static int resolve_parent(const struct vs_placement_tree *t, const json_t *v, const char *path,
                          uint32_t level, uint32_t *parent, struct pl_err *err)
{
    json_t *p = json_object_get(v, "parent");
    *parent = PL_NONE;
    if (!p)
        return 0;
    if (!json_is_string(p))
        return placement__errf(err, "%s.parent: must be a node name", path);
    uint32_t n = placement__tree_node(t, json_string_value(p));
    if (n == PL_NONE)
        return placement__errf(err, "%s.parent: no node named '%s'", path,
                               json_string_value(p));
    if (t->nodes[n].level >= level)
        return placement__errf(err, "%s.parent: '%s' is at level %s, which is not above %s",
                               path, t->nodes[n].name, t->levels[t->nodes[n].level],
                               t->levels[level]);
    *parent = n;
    return 0;
}

static int parse_nodes(struct vs_placement_tree *t, const json_t *root, struct pl_err *err)
{
    json_t *v = json_object_get(root, "nodes");
    if (!v)
        return 0;
    if (!json_is_object(v))
        return placement__errf(err, "tree.nodes: must be an object of named nodes");
    t->nodes = calloc(json_object_size(v) + 1, sizeof(*t->nodes));
    if (!t->nodes)
        return -ENOMEM;
    const char *name;
    json_t *item;
    json_object_foreach(v, name, item) {
        int rc = parse_node(t, &t->nodes[t->node_count], name, item, err);
        t->node_count += t->nodes[t->node_count].name != NULL;
        if (rc < 0)
            return rc;
    }
    qsort(t->nodes, t->node_count, sizeof(*t->nodes), cmp_node);
    for (uint32_t i = 0; i < t->node_count; i++) {
        char path[300];
        snprintf(path, sizeof(path), "tree.nodes.%s", t->nodes[i].name);
        int rc = resolve_parent(t, json_object_get(v, t->nodes[i].name), path,
                                t->nodes[i].level, &t->nodes[i].parent, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int parse_osd(struct vs_placement_tree *t, struct pl_osd *o, const char *key,
                     const json_t *v, struct pl_err *err)
{
    static const char *const keys[] = {"parent", "weight", "reweight", "tags",
                                       "up",     "in",     "noout",    NULL};
    char path[64];
    uint64_t id = 0;
    snprintf(path, sizeof(path), "tree.osds.%.20s", key);
    int rc = placement__parse_key(key, "tree.osds", 1, UINT32_MAX, &id, err);
    if (rc == 0)
        rc = placement__json_keys(v, path, keys, err);
    if (rc < 0)
        return rc;
    o->id = (uint32_t)id;
    o->reweight = 1;
    o->up = o->in = true;
    bool has_weight = false;
    rc = placement__json_num(v, "weight", path, 0, 1e12, &o->weight, &has_weight, err);
    if (rc == 0 && !has_weight)
        rc = placement__errf(err, "%s.weight: required (capacity, for example in TB)", path);
    if (rc == 0)
        rc = placement__json_num(v, "reweight", path, 0, 1, &o->reweight, NULL, err);
    if (rc == 0)
        rc = placement__json_strlist(v, "tags", path, &o->tag_count, &o->tags, err);
    if (rc == 0)
        rc = placement__json_bool(v, "up", path, &o->up, err);
    if (rc == 0)
        rc = placement__json_bool(v, "in", path, &o->in, err);
    if (rc == 0)
        rc = placement__json_bool(v, "noout", path, &o->noout, err);
    if (rc == 0)
        rc = resolve_parent(t, v, path, t->level_count - 1, &o->parent, err);
    return rc;
}

static int parse_osds(struct vs_placement_tree *t, const json_t *root, struct pl_err *err)
{
    json_t *v = json_object_get(root, "osds");
    if (!v)
        return 0;
    if (!json_is_object(v))
        return placement__errf(err, "tree.osds: must be an object keyed by OSD id");
    t->osds = calloc(json_object_size(v) + 1, sizeof(*t->osds));
    if (!t->osds)
        return -ENOMEM;
    const char *key;
    json_t *item;
    json_object_foreach(v, key, item) {
        int rc = parse_osd(t, &t->osds[t->osd_count++], key, item, err);
        if (rc < 0)
            return rc;
    }
    qsort(t->osds, t->osd_count, sizeof(*t->osds), cmp_osd);
    return 0;
}

int vs_placement_tree_from_json(const json_t *root, struct vs_placement_tree **out, char *errmsg,
                                size_t errmsg_size)
{
    static const char *const keys[] = {"levels", "nodes", "osds", NULL};
    struct pl_err err = {errmsg, errmsg_size};
    struct vs_placement_tree *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc = placement__json_keys(root, "tree", keys, &err);
    if (rc == 0)
        rc = parse_levels(t, root, &err);
    if (rc == 0)
        rc = parse_nodes(t, root, &err);
    if (rc == 0)
        rc = parse_osds(t, root, &err);
    if (rc < 0) {
        if (rc == -ENOMEM)
            placement__errf(&err, "tree: out of memory");
        vs_placement_tree_free(t);
        return rc;
    }
    *out = t;
    return 0;
}

int vs_placement_tree_parse(const char *text, size_t len, struct vs_placement_tree **out,
                            char *errmsg, size_t errmsg_size)
{
    struct pl_err err = {errmsg, errmsg_size};
    json_t *root;
    int rc = placement__load_text(text, len, "tree", &root, &err);
    if (rc < 0)
        return rc;
    rc = vs_placement_tree_from_json(root, out, errmsg, errmsg_size);
    json_decref(root);
    return rc;
}

static json_t *osd_to_json(const struct vs_placement_tree *t, const struct pl_osd *o)
{
    json_t *j = json_object();
    if (!j)
        return NULL;
    if (o->parent != PL_NONE)
        json_object_set_new(j, "parent", json_string(t->nodes[o->parent].name));
    json_object_set_new(j, "weight", json_real(o->weight));
    if (o->reweight != 1)
        json_object_set_new(j, "reweight", json_real(o->reweight));
    if (o->tag_count)
        json_object_set_new(j, "tags", placement__json_strarray(o->tag_count, o->tags));
    json_object_set_new(j, "up", json_boolean(o->up));
    json_object_set_new(j, "in", json_boolean(o->in));
    if (o->noout)
        json_object_set_new(j, "noout", json_true());
    return j;
}

json_t *vs_placement_tree_to_json(const struct vs_placement_tree *t)
{
    json_t *root = json_object(), *nodes = json_object(), *osds = json_object();
    json_t *levels = placement__json_strarray(t->level_count, t->levels);
    if (!root || !nodes || !osds || !levels) {
        json_decref(root), json_decref(nodes), json_decref(osds), json_decref(levels);
        return NULL;
    }
    for (uint32_t i = 0; i < t->node_count; i++) {
        const struct pl_node *n = &t->nodes[i];
        json_t *j = json_pack("{ss}", "level", t->levels[n->level]);
        if (j && n->parent != PL_NONE)
            json_object_set_new(j, "parent", json_string(t->nodes[n->parent].name));
        json_object_set_new(nodes, n->name, j);
    }
    for (uint32_t i = 0; i < t->osd_count; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%u", t->osds[i].id);
        json_object_set_new(osds, key, osd_to_json(t, &t->osds[i]));
    }
    json_object_set_new(root, "levels", levels);
    json_object_set_new(root, "nodes", nodes);
    json_object_set_new(root, "osds", osds);
    return root;
}
