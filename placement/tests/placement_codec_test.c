/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * placement_codec_test.c -- the JSON codecs of the tree, the pools and the PG
 * map: every bad-input rule gives VS_ECONFIG and a message naming the field,
 * and what is read and written back reads the same.
 */
#include "vs_err.h"
#include "vs_placement.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { TREE, POOLS, MAP };

struct bad_case {
    enum kind kind;
    const char *json;
    const char *expect; /* substring of the message */
};

#define H1 "\"h1\":{\"level\":\"host\"}"
#define O1 "\"1\":{\"parent\":\"h1\",\"weight\":1}"
#define P(x) "{\"1\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":3,\"pg_minsize\":2," \
             "\"pg_count\":8" x "}}"
#define M(x) "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":2,\"pgs\":[" x "]}}}"

static const struct bad_case bad_cases[] = {
    {TREE, "{", "invalid JSON"},
    {TREE, "[]", "tree: must be an object"},
    {TREE, "{\"hosts\":{}}", "unknown field 'hosts'"},
    {TREE, "{\"levels\":[\"osd\"]}", "tree.levels: must be an array of 2..16"},
    {TREE, "{\"levels\":[\"host\",\"host\",\"osd\"]}", "'host' appears twice"},
    {TREE, "{\"levels\":[\"osd\",\"host\"]}", "the last level must be \"osd\""},
    {TREE, "{\"levels\":[\"host\",7]}", "tree.levels[1]"},
    {TREE, "{\"nodes\":[]}", "tree.nodes: must be an object"},
    {TREE, "{\"nodes\":{\"12\":{\"level\":\"host\"}}}", "not a number"},
    {TREE, "{\"nodes\":{\"h1\":{}}}", "tree.nodes.h1.level: required"},
    {TREE, "{\"nodes\":{\"h1\":{\"level\":\"shelf\"}}}", "'shelf' is not a level"},
    {TREE, "{\"nodes\":{\"h1\":{\"level\":\"osd\"}}}", "'osd' is not a level above"},
    {TREE, "{\"nodes\":{\"h1\":{\"level\":\"host\",\"parent\":\"r9\"}}}", "no node named 'r9'"},
    {TREE, "{\"nodes\":{\"r1\":{\"level\":\"rack\",\"parent\":\"h1\"}," H1 "}}",
     "which is not above rack"},
    {TREE, "{\"nodes\":{\"h1\":{\"level\":\"host\",\"size\":1}}}", "unknown field 'size'"},
    {TREE, "{\"osds\":{\"0\":{\"weight\":1}}}", "key '0' must be a decimal number"},
    {TREE, "{\"osds\":{\"01\":{\"weight\":1}}}", "key '01'"},
    {TREE, "{\"osds\":{\"x\":{\"weight\":1}}}", "key 'x'"},
    {TREE, "{\"osds\":{\"4294967296\":{\"weight\":1}}}", "key '4294967296'"},
    {TREE, "{\"osds\":{\"3\":{}}}", "tree.osds.3.weight: required"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":-1}}}", "tree.osds.3.weight: must be a number"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":\"1\"}}}", "tree.osds.3.weight"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"reweight\":2}}}", "tree.osds.3.reweight"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"tags\":5}}}", "tree.osds.3.tags"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"tags\":[\"\"]}}}", "every tag"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"up\":1}}}", "tree.osds.3.up: must be true"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"parent\":\"h9\"}}}", "no node named 'h9'"},
    {TREE, "{\"osds\":{\"3\":{\"weight\":1,\"host\":\"h1\"}}}", "unknown field 'host'"},
    {POOLS, "[]", "pools: must be an object"},
    {POOLS, "{\"0\":{}}", "key '0'"},
    {POOLS, "{\"65536\":{}}", "key '65536'"},
    {POOLS, "{\"1\":{\"scheme\":\"ec\"}}", "pools.1.name: required"},
    {POOLS, "{\"1\":{\"name\":\"a\"}}", "pools.1.scheme: required"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"raid5\"}}", "'raid5' is not"},
    {POOLS, P(",\"pg_size\":0"), "duplicate"}, /* jansson rejects duplicate keys */
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":33}}",
     "pools.1.pg_size: must be an integer in 1..32"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":2,\"pg_minsize\":3,"
            "\"pg_count\":8}}", "pg_minsize: 3 is above pg_size 2"},
    {POOLS, P(",\"parity_chunks\":1"), "a replicated pool has none"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"xor\",\"pg_size\":3,\"parity_chunks\":2,"
            "\"pg_minsize\":2,\"pg_count\":8}}", "an xor pool has exactly 1"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"ec\",\"pg_size\":6,\"pg_minsize\":4,"
            "\"pg_count\":8}}", "pools.1.parity_chunks: required"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"ec\",\"pg_size\":3,\"parity_chunks\":2,"
            "\"pg_minsize\":3,\"pg_count\":8}}", "fewer than 2 data chunks"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"ec\",\"pg_size\":6,\"parity_chunks\":2,"
            "\"pg_minsize\":3,\"pg_count\":8}}", "below the 4 data chunks"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":2,\"pg_minsize\":1,"
            "\"pg_count\":0}}", "pools.1.pg_count"},
    {POOLS, P(",\"block_size\":12288"), "block_size: must be a power of two"},
    {POOLS, P(",\"block_size\":4096,\"bitmap_granularity\":8192"), "bitmap_granularity"},
    {POOLS, P(",\"immediate_commit\":\"yes\""), "'yes' is not one of all|small|none"},
    {POOLS, P(",\"level_placement\":\"x\""), "unknown field 'level_placement'"},
    {POOLS, P(",\"osd_tags\":[1]"), "pools.1.osd_tags"},
    {POOLS, "{\"1\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":1,\"pg_minsize\":1,"
            "\"pg_count\":1},\"2\":{\"name\":\"a\",\"scheme\":\"replicated\",\"pg_size\":1,"
            "\"pg_minsize\":1,\"pg_count\":1}}", "both named 'a'"},
    {MAP, "{\"pools\":{}}", "pgmap.format: required"},
    {MAP, "{\"format\":2,\"pools\":{}}", "not a format this vstor reads"},
    {MAP, "{\"format\":1}", "pgmap.pools: required"},
    {MAP, "{\"format\":1,\"pools\":{\"x\":{}}}", "key 'x'"},
    {MAP, "{\"format\":1,\"pools\":{\"1\":{\"pgs\":[]}}}", "pgmap.pools.1.pg_size: required"},
    {MAP, M(""), "pgs: must be an array of 1.."},
    {MAP, M("{\"osd_set\":[1]}"), "pgs[0].osd_set: must be an array of pg_size (2)"},
    {MAP, M("{\"osd_set\":[1,-2]}"), "pgs[0].osd_set[1]: must be an OSD id"},
    {MAP, M("{\"osd_set\":[1,1]}"), "OSD 1 appears twice"},
    {MAP, M("{\"osd_set\":[1,2],\"primary\":3}"), "OSD 3 is not in the osd_set"},
    {MAP, M("{\"osd_set\":[1,2],\"pause\":0}"), "pause: must be true or false"},
    {MAP, M("{\"osd_set\":[1,2],\"history\":[[1]]}"), "pgs[0].history[0]: must be an array"},
    {MAP, M("{\"osd_set\":[1,2],\"epoch\":3}"), "unknown field 'epoch'"},
    {MAP, "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":[{\"osd_set\":[1]}],"
          "\"last_clean\":[]}}}", "last_clean: must hold one set per PG (1)"},
};

static int parse(enum kind kind, const char *json, char *err, size_t size, void **out)
{
    size_t len = strlen(json);
    switch (kind) {
    case TREE:
        return vs_placement_tree_parse(json, len, (struct vs_placement_tree **)out, err, size);
    case POOLS:
        return vs_placement_pools_parse(json, len, (struct vs_placement_pools **)out, err, size);
    case MAP:
        return vs_pgmap_parse(json, len, (struct vs_pgmap **)out, err, size);
    }
    return -1;
}

static void test_bad_inputs(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
        const struct bad_case *c = &bad_cases[i];
        char err[256] = "";
        void *out = NULL;
        int rc = parse(c->kind, c->json, err, sizeof(err), &out);
        if (rc != VS_ECONFIG || !strstr(err, c->expect))
            fail_msg("case %zu (%s): rc %d, message '%s', expected '%s'", i, c->json, rc, err,
                     c->expect);
        assert_null(out);
    }
}

static const char tree_json[] =
    "{\"levels\":[\"root\",\"rack\",\"host\",\"osd\"],"
    "\"nodes\":{\"r1\":{\"level\":\"rack\",\"parent\":\"top\"},\"top\":{\"level\":\"root\"},"
    "\"h1\":{\"level\":\"host\",\"parent\":\"r1\"},\"h2\":{\"level\":\"host\"}},"
    "\"osds\":{\"10\":{\"parent\":\"h1\",\"weight\":2.5,\"reweight\":0.5,\"tags\":[\"ssd\","
    "\"a\",\"ssd\"],\"noout\":true},\"2\":{\"parent\":\"h2\",\"weight\":1,\"up\":false},"
    "\"3\":{\"weight\":0,\"in\":false,\"tags\":\"hdd\"}}}";

static const char pools_json[] =
    "{\"7\":{\"name\":\"ec\",\"scheme\":\"jerasure\",\"pg_size\":6,\"parity_chunks\":2,"
    "\"pg_minsize\":5,\"pg_count\":64,\"failure_domain\":\"rack\",\"root_node\":\"top\","
    "\"osd_tags\":\"ssd\",\"primary_affinity_tags\":[\"a\"],\"block_size\":131072,"
    "\"bitmap_granularity\":4096,\"pg_stripe_size\":0,\"immediate_commit\":\"none\","
    "\"local_reads\":\"nearest\"},"
    "\"1\":{\"name\":\"rbd\",\"scheme\":\"replicated\",\"pg_size\":3,\"pg_minsize\":2,"
    "\"pg_count\":256}}";

static const char map_json[] =
    "{\"format\":1,\"pools\":{\"2\":{\"pg_size\":3,\"pgs\":[{\"osd_set\":[3,1,0],\"primary\":1,"
    "\"history\":[[3,1,4],[5,6,7]]},{\"osd_set\":[0,0,0],\"primary\":0,\"pause\":true}],"
    "\"last_clean\":[[3,1,4],[5,6,7]]},\"1\":{\"pg_size\":1,\"pgs\":[{\"osd_set\":[9]}]}}}";

/* Parse, write, parse again: the second text equals the first. */
static void roundtrip(enum kind kind, const char *json)
{
    char err[256];
    void *a = NULL, *b = NULL;
    assert_int_equal(parse(kind, json, err, sizeof(err), &a), 0);
    json_t *ja = kind == TREE    ? vs_placement_tree_to_json(a)
                 : kind == POOLS ? vs_placement_pools_to_json(a)
                                 : vs_pgmap_to_json(a);
    char *ta = json_dumps(ja, JSON_COMPACT);
    assert_int_equal(parse(kind, ta, err, sizeof(err), &b), 0);
    json_t *jb = kind == TREE    ? vs_placement_tree_to_json(b)
                 : kind == POOLS ? vs_placement_pools_to_json(b)
                                 : vs_pgmap_to_json(b);
    char *tb = json_dumps(jb, JSON_COMPACT);
    assert_string_equal(ta, tb);
    free(ta), free(tb);
    json_decref(ja), json_decref(jb);
    if (kind == TREE)
        vs_placement_tree_free(a), vs_placement_tree_free(b);
    else if (kind == POOLS)
        vs_placement_pools_free(a), vs_placement_pools_free(b);
    else
        vs_pgmap_free(a), vs_pgmap_free(b);
}

static void test_roundtrip(void **state)
{
    (void)state;
    roundtrip(TREE, tree_json);
    roundtrip(POOLS, pools_json);
    roundtrip(MAP, map_json);
}

static void test_fields(void **state)
{
    (void)state;
    char err[256];
    struct vs_placement_pools *pools;
    assert_int_equal(vs_placement_pools_parse(pools_json, strlen(pools_json), &pools, err,
                                              sizeof(err)), 0);
    assert_int_equal(pools->count, 2);
    assert_int_equal(pools->pools[0].id, 1); /* sorted by id */
    assert_string_equal(pools->pools[0].failure_domain, "host"); /* the default */
    const struct vs_placement_pool *ec = vs_placement_pools_find(pools, 7);
    assert_int_equal(ec->scheme, VS_POOL_EC);
    assert_int_equal(vs_placement_pool_data_chunks(ec), 4);
    assert_int_equal(ec->block_size, 131072);
    assert_string_equal(ec->osd_tags[0], "ssd");
    assert_null(vs_placement_pools_find(pools, 2));
    vs_placement_pools_free(pools);

    struct vs_pgmap *map;
    assert_int_equal(vs_pgmap_parse(map_json, strlen(map_json), &map, err, sizeof(err)), 0);
    const struct vs_pgmap_pool *pp = vs_pgmap_find(map, 2);
    assert_int_equal(pp->pg_count, 2);
    assert_int_equal(vs_pgmap_osd_set(pp, 0)[0], 3);
    assert_null(vs_pgmap_osd_set(pp, 2));
    assert_int_equal(pp->pgs[0].history_count, 2);
    assert_int_equal(pp->pgs[0].history[3], 5);
    assert_true(pp->pgs[1].pause);
    assert_int_equal(vs_pgmap_find(map, 1)->pgs[0].primary, 0);
    assert_int_equal(vs_pgmap_set_last_clean(map, 1), 0);
    assert_int_equal(vs_pgmap_find(map, 1)->last_clean[0], 9);
    assert_int_equal(vs_pgmap_set_last_clean(map, 3), VS_ENOPOOL);
    vs_pgmap_free(map);

    struct vs_placement_tree *tree;
    assert_int_equal(vs_placement_tree_parse(tree_json, strlen(tree_json), &tree, err,
                                             sizeof(err)), 0);
    assert_int_equal(vs_placement_tree_osd_count(tree), 3);
    vs_placement_tree_free(tree);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
