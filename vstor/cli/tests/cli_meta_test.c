/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_meta_test.c -- pool and image metadata (cli_meta.h) and the commands
 * over a real one-member metadata service. The member runs on its own loop in
 * a background thread (a test harness only: vstor itself never uses threads);
 * the code under test uses the blocking vs_meta_sync_* helpers, as the
 * commands do. Covers every error of the commands (exit codes 1 and 2), the
 * compare-and-swap races (many threads creating one name: exactly one wins;
 * different names in one pool: all win with distinct numbers), a stale
 * index/maxid, and pool rm refusing while images exist.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <raft.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "../../mon/tests/free_port.h"
#include "cli.h"
#include "cli_meta.h"
#include "vs_err.h"

static struct {
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t stop;
    struct vs_raft_server *srv;
    char dir[256], addr[64], flag[96];
    atomic_int leader;
    atomic_int failed;
    const char *members[1];
    struct vs_meta_client_opts o;
} S;

/* ---- the member, on its own thread ---- */

static void leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    (void)ctx, (void)term;
    atomic_store(&S.leader, is_leader ? 1 : 0);
}

static void closed_cb(void *ctx)
{
    (void)ctx;
    uv_close((uv_handle_t *)&S.stop, NULL);
}

static void stop_cb(uv_async_t *a)
{
    (void)a;
    vs_raft_server_on_leader(S.srv, NULL, NULL);
    vs_raft_server_close(S.srv, closed_cb, NULL);
}

static void *server_main(void *arg)
{
    (void)arg;
    struct vs_raft_member m = {.id = 1, .role = RAFT_VOTER};
    snprintf(m.address, sizeof(m.address), "%s", S.addr);
    struct vs_raft_server_opts o = {.data_dir = S.dir, .id = 1, .address = S.addr,
                                    .initial = &m, .n_initial = 1, .election_timeout_ms = 200,
                                    .heartbeat_timeout_ms = 20};
    char err[256];
    if (vs_raft_server_open(&S.loop, &o, &S.srv, err, sizeof(err)) != 0) {
        fprintf(stderr, "open: %s\n", err);
        atomic_store(&S.failed, 1);
        return NULL;
    }
    vs_raft_server_on_leader(S.srv, leader_cb, NULL);
    uv_run(&S.loop, UV_RUN_DEFAULT);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    static int round;
    setenv("VSTOR_CONFIG", "/dev/null.absent", 1);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(S.dir, sizeof(S.dir), "%s/cli_meta_%d_%d", tmp, (int)getpid(), round);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
    assert_int_equal(system(cmd), 0);
    snprintf(S.addr, sizeof(S.addr), "127.0.0.1:%d",
             test_free_port((unsigned)getpid() * 17 + 89u * (unsigned)round++));
    snprintf(S.flag, sizeof(S.flag), "--mon-address=%s", S.addr);
    atomic_store(&S.leader, 0);
    atomic_store(&S.failed, 0);
    uv_loop_init(&S.loop);
    uv_async_init(&S.loop, &S.stop, stop_cb);
    assert_int_equal(pthread_create(&S.thread, NULL, server_main, NULL), 0);
    for (int i = 0; i < 1000 && !atomic_load(&S.leader) && !atomic_load(&S.failed); i++)
        usleep(10000);
    assert_true(atomic_load(&S.leader));
    S.members[0] = S.addr;
    S.o = (struct vs_meta_client_opts){.members = S.members, .n_members = 1,
                                       .op_timeout_ms = 5000};
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    uv_async_send(&S.stop);
    pthread_join(S.thread, NULL);
    assert_int_equal(uv_loop_close(&S.loop), 0);
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

/* ---- helpers ---- */

/* Runs `vstor ARGS... --mon-address=...` in this process; returns the exit code. */
static int run(const char *first, ...)
{
    char *argv[40];
    int argc = 0;
    argv[argc++] = strdup("vstor"); /* the parser may write into its arguments */
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a && argc < 38; a = va_arg(ap, const char *))
        argv[argc++] = strdup(a);
    va_end(ap);
    argv[argc++] = strdup(S.flag);
    argv[argc] = NULL;
    fflush(stdout);
    int rc = vs_cli_main(argc, argv);
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    return rc;
}

static void make_pool(const char *name)
{
    assert_int_equal(run("pool", "create", name, "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "1", "--pg-count", "8", NULL),
                     VS_EXIT_OK);
}

static json_t *get(const char *key)
{
    json_t *v = NULL;
    uint64_t rev;
    return cli_meta_get(&S.o, key, &v, &rev) == 0 ? v : NULL;
}

/* ---- pools ---- */

static void test_pool_create_ls_rm(void **state)
{
    (void)state;
    make_pool("rbd");
    assert_int_equal(run("pool", "create", "ssd", "--scheme", "replicated", "--pg-size", "3",
                         "--pg-minsize", "2", "--pg-count", "16", "--failure-domain", "osd",
                         "--osd-tags", "ssd,fast", "--block-size", "64k", NULL),
                     VS_EXIT_OK);
    json_t *pools = get("config/pools");
    assert_non_null(pools);
    json_t *ssd = json_object_get(pools, "2");
    assert_string_equal(json_string_value(json_object_get(ssd, "name")), "ssd");
    assert_int_equal(json_integer_value(json_object_get(ssd, "pg_count")), 16);
    assert_int_equal(json_integer_value(json_object_get(ssd, "block_size")), 65536);
    assert_int_equal(json_array_size(json_object_get(ssd, "osd_tags")), 2);
    assert_string_equal(json_string_value(json_object_get(ssd, "failure_domain")), "osd");
    json_decref(pools);
    assert_int_equal(run("pool", "ls", NULL), VS_EXIT_OK);
    assert_int_equal(run("pool", "ls", "--json", NULL), VS_EXIT_OK);
    assert_int_equal(run("pool", "rm", "ssd", NULL), VS_EXIT_OK);
    pools = get("config/pools");
    assert_null(json_object_get(pools, "2"));
    assert_non_null(json_object_get(pools, "1"));
    json_decref(pools);
    /* Ids are not reused while a higher one exists; here 2 is free again. */
    make_pool("again");
    pools = get("config/pools");
    assert_non_null(json_object_get(pools, "2"));
    json_decref(pools);
}

static void test_pool_errors(void **state)
{
    (void)state;
    make_pool("rbd");
    /* The name exists: 1. */
    assert_int_equal(run("pool", "create", "rbd", "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "1", "--pg-count", "8", NULL),
                     VS_EXIT_FAIL);
    /* Invalid options: 2, nothing written. */
    assert_int_equal(run("pool", "create", "x", "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "3", "--pg-count", "8", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("pool", "create", "x", "--scheme", "raid5", "--pg-size", "2",
                         "--pg-minsize", "1", "--pg-count", "8", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("pool", "create", "x", "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "1", "--pg-count", "eight", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("pool", "create", "x", "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "1", NULL),
                     VS_EXIT_USAGE); /* --pg-count is required */
    assert_int_equal(run("pool", "create", "123", "--scheme", "replicated", "--pg-size", "2",
                         "--pg-minsize", "1", "--pg-count", "8", NULL),
                     VS_EXIT_USAGE); /* a number would read as an id */
    json_t *pools = get("config/pools");
    assert_int_equal(json_object_size(pools), 1);
    json_decref(pools);
    assert_int_equal(run("pool", "rm", "nope", NULL), VS_EXIT_FAIL);
}

static void test_pool_rm_refused_with_images(void **state)
{
    (void)state;
    make_pool("rbd");
    assert_int_equal(run("create", "disk", "--size", "1g", "--pool", "rbd", NULL), VS_EXIT_OK);
    assert_int_equal(run("pool", "rm", "rbd", NULL), VS_EXIT_FAIL);
    struct vs_image_meta img;
    char err[512];
    assert_int_equal(vs_image_meta_mark_deleted(&S.o, "disk", &img, err, sizeof(err)), 0);
    assert_true(img.deleted);
    assert_int_equal(vs_image_meta_remove(&S.o, &img, err, sizeof(err)), 0);
    vs_image_meta_free(&img);
    assert_int_equal(run("pool", "rm", "rbd", NULL), VS_EXIT_OK);
    assert_null(get("index/maxid/1"));
}

/* ---- images ---- */

static void test_image_create_info_resize_ls(void **state)
{
    (void)state;
    make_pool("rbd");
    assert_int_equal(run("create", "vm1", "--size", "10g", "--pool", "rbd", NULL), VS_EXIT_OK);
    assert_int_equal(run("create", "vm2", "--size", "4096", "--pool", "1", NULL), VS_EXIT_OK);
    struct vs_image_meta img;
    char err[512];
    assert_int_equal(vs_image_meta_lookup(&S.o, "vm1", &img, err, sizeof(err)), 0);
    assert_int_equal(img.pool, 1);
    assert_int_equal(img.num, 1);
    assert_int_equal(img.inode, (UINT64_C(1) << 48) | 1);
    assert_int_equal(img.size, UINT64_C(10) << 30);
    vs_image_meta_free(&img);
    json_t *idx = get("index/image/vm2");
    assert_int_equal(json_integer_value(json_object_get(idx, "num")), 2);
    json_decref(idx);
    json_t *maxid = get("index/maxid/1");
    assert_int_equal(json_integer_value(maxid), 2);
    json_decref(maxid);
    assert_int_equal(run("info", "vm1", NULL), VS_EXIT_OK);
    assert_int_equal(run("info", "vm1", "--json", NULL), VS_EXIT_OK);
    assert_int_equal(run("ls", NULL), VS_EXIT_OK);
    assert_int_equal(run("ls", "--json", NULL), VS_EXIT_OK);
    assert_int_equal(run("resize", "vm1", "--size", "20g", NULL), VS_EXIT_OK);
    assert_int_equal(run("resize", "vm1", "--size", "20g", NULL), VS_EXIT_OK); /* no-op */
    assert_int_equal(vs_image_meta_lookup(&S.o, "vm1", &img, err, sizeof(err)), 0);
    assert_int_equal(img.size, UINT64_C(20) << 30);
    vs_image_meta_free(&img);
}

static void test_image_errors(void **state)
{
    (void)state;
    make_pool("rbd");
    assert_int_equal(run("create", "vm1", "--size", "1g", "--pool", "rbd", NULL), VS_EXIT_OK);
    /* runtime failures: 1 */
    assert_int_equal(run("create", "vm1", "--size", "1g", "--pool", "rbd", NULL), VS_EXIT_FAIL);
    assert_int_equal(run("create", "vm9", "--size", "1g", "--pool", "nope", NULL), VS_EXIT_FAIL);
    assert_int_equal(run("info", "nope", NULL), VS_EXIT_FAIL);
    assert_int_equal(run("resize", "nope", "--size", "2g", NULL), VS_EXIT_FAIL);
    /* bad input: 2 */
    assert_int_equal(run("create", "vm9", "--size", "0", "--pool", "rbd", NULL), VS_EXIT_USAGE);
    assert_int_equal(run("create", "vm9", "--size", "1000", "--pool", "rbd", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("create", "vm9", "--size", "huge", "--pool", "rbd", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("create", "vm9", "--size", "2048p", "--pool", "rbd", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("create", "a@b", "--size", "1g", "--pool", "rbd", NULL),
                     VS_EXIT_USAGE);
    assert_int_equal(run("create", "", "--size", "1g", "--pool", "rbd", NULL), VS_EXIT_USAGE);
    assert_int_equal(run("resize", "vm1", "--size", "512m", NULL), VS_EXIT_USAGE); /* shrink */
    assert_null(get("index/image/vm9"));
    struct vs_image_meta img;
    char err[512];
    assert_int_equal(vs_image_meta_lookup(&S.o, "nope", &img, err, sizeof(err)), VS_ENOIMAGE);
    assert_non_null(strstr(err, "does not exist"));
    assert_int_equal(vs_image_meta_create(&S.o, "vm1", "rbd", 4096, &img, err, sizeof(err)),
                     -EEXIST);
    assert_int_equal(vs_image_meta_create(&S.o, "vm2", "zz", 4096, &img, err, sizeof(err)),
                     VS_ENOPOOL);
}

static void test_stale_maxid_is_stepped_over(void **state)
{
    (void)state;
    make_pool("rbd");
    assert_int_equal(run("create", "a", "--size", "1m", "--pool", "rbd", NULL), VS_EXIT_OK);
    assert_int_equal(run("create", "b", "--size", "1m", "--pool", "rbd", NULL), VS_EXIT_OK);
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = "index/maxid/1", .key_len = 13,
                            .value = "1", .value_len = 1};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    struct vs_meta_sync_result res;
    assert_int_equal(vs_meta_sync_txn(&S.o, &txn, &res), 0);
    vs_meta_sync_free(&res);
    struct vs_image_meta img;
    char err[512];
    assert_int_equal(vs_image_meta_create(&S.o, "c", "rbd", 4096, &img, err, sizeof(err)), 0);
    assert_int_equal(img.num, 3);
    vs_image_meta_free(&img);
}

/* ---- races ---- */

#define RACERS 6

struct racer {
    pthread_t t;
    char name[32];
    int rc;
    uint64_t num;
};

static void *race_main(void *arg)
{
    struct racer *r = arg;
    struct vs_image_meta img;
    char err[512];
    r->rc = vs_image_meta_create(&S.o, r->name, "rbd", 1 << 20, &img, err, sizeof(err));
    if (r->rc == 0)
        r->num = img.num;
    vs_image_meta_free(&img);
    return NULL;
}

static void race(struct racer *rs, bool same_name)
{
    for (int i = 0; i < RACERS; i++) {
        snprintf(rs[i].name, sizeof(rs[i].name), same_name ? "contended" : "img%d", i);
        assert_int_equal(pthread_create(&rs[i].t, NULL, race_main, &rs[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(rs[i].t, NULL);
}

static void test_concurrent_creates(void **state)
{
    (void)state;
    make_pool("rbd");
    struct racer rs[RACERS] = {0};
    race(rs, true);
    int won = 0, exists = 0;
    for (int i = 0; i < RACERS; i++) {
        won += rs[i].rc == 0;
        exists += rs[i].rc == -EEXIST;
    }
    assert_int_equal(won, 1);
    assert_int_equal(exists, RACERS - 1);
    struct racer rd[RACERS] = {0};
    race(rd, false);
    uint64_t seen = 0;
    for (int i = 0; i < RACERS; i++) {
        assert_int_equal(rd[i].rc, 0);
        assert_in_range(rd[i].num, 2, RACERS + 1);
        assert_false(seen & (UINT64_C(1) << rd[i].num));
        seen |= UINT64_C(1) << rd[i].num;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_pool_create_ls_rm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_rm_refused_with_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_create_info_resize_ls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_maxid_is_stepped_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_creates, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
