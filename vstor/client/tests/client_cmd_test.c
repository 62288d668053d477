/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_cmd_test -- `vstor rm` and `vstor bench` end to end, run through
 * vs_cli_main() as from the shell, against a real one-member metadata service
 * and two fake OSDs served by a second thread on its own loop (until
 * `vstor osd` exists on main): bench prints its six rows, rm empties every
 * object and removes the image's keys, and a second rm says the image is not
 * found with exit status 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cli.h"
#include "cmd_client.h"
#include "config.h"
#include "fake_osd.h"
#include "vs_assert.h"
#include "vs_log.h"
#include "vs_raft.h"

#define OBJ 131072u
#define SIZE (8u << 20)
#define INODE ((1ull << 48) | 5)

struct srv {
    uv_loop_t loop;
    uv_async_t stop;
    struct vs_raft_server *raft;
    struct fake_osd osd[2];
    char dir[256], addr[64];
    pthread_t th;
    atomic_int ready;
    bool flag;
};

static void leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    (void)term;
    ((struct srv *)ctx)->flag = is_leader;
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    (void)res;
    VS_ASSERT(status == 0);
    ((struct srv *)ctx)->flag = true;
}

static void put(struct srv *s, const char *key, const char *value)
{
    struct vs_meta_op op = {.key = key, .key_len = (uint32_t)strlen(key), .value = value,
                            .value_len = (uint32_t)strlen(value), .type = VS_META_OP_PUT};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    s->flag = false;
    VS_ASSERT(vs_raft_server_txn(s->raft, &txn, txn_cb, s) == 0);
    while (!s->flag)
        uv_run(&s->loop, UV_RUN_ONCE);
}

static void closed_cb(void *ctx)
{
    ((struct srv *)ctx)->flag = true;
}

static void stop_cb(uv_async_t *a)
{
    struct srv *s = a->data;
    for (int i = 0; i < 2; i++)
        fake_osd_stop(&s->osd[i]);
    vs_raft_server_close(s->raft, closed_cb, s);
    uv_close((uv_handle_t *)a, NULL);
}

static void setup(struct srv *s)
{
    struct vs_raft_member m = {.id = 1, .role = 1};
    snprintf(m.address, sizeof(m.address), "%s", s->addr);
    struct vs_raft_server_opts o = {.data_dir = s->dir, .id = 1, .address = s->addr,
                                    .initial = &m, .n_initial = 1, .election_timeout_ms = 200,
                                    .heartbeat_timeout_ms = 20};
    char err[512], key[32], val[128];
    VS_ASSERTF(vs_raft_server_open(&s->loop, &o, &s->raft, err, sizeof(err)) == 0, "%s", err);
    vs_raft_server_on_leader(s->raft, leader_cb, s);
    while (!s->flag)
        uv_run(&s->loop, UV_RUN_ONCE);
    struct vs_raft_status st;
    vs_raft_server_status(s->raft, &st);
    for (unsigned i = 0; i < 2; i++) {
        fake_osd_start(&s->osd[i], &s->loop, i + 1, st.cluster_id, OBJ, true);
        snprintf(key, sizeof(key), "osd/state/%u", i + 1);
        snprintf(val, sizeof(val), "{\"addresses\":[\"127.0.0.1:%u\"]}", s->osd[i].port);
        put(s, key, val);
    }
    put(s, "config/pools", "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":1,"
        "\"pg_minsize\":1,\"pg_count\":2,\"immediate_commit\":\"none\"}}");
    put(s, "config/pgs", "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":["
        "{\"osd_set\":[1],\"primary\":1},{\"osd_set\":[2],\"primary\":2}]}}}");
    put(s, "index/image/vm1", "{\"pool\":1,\"num\":5}");
    put(s, "config/inode/1/5", "{\"name\":\"vm1\",\"size\":8388608}");
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    uv_loop_init(&s->loop);
    setup(s);
    uv_async_init(&s->loop, &s->stop, stop_cb);
    s->stop.data = s;
    atomic_store(&s->ready, 1);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    uv_loop_close(&s->loop);
    return NULL;
}

static int cli(const char *out_path, const char *const *args, int n)
{
    char *argv[16];
    argv[0] = (char *)"vstor";
    for (int i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    fflush(stdout);
    int saved = dup(1), fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 1);
    close(fd);
    int rc = vs_cli_main(n + 1, argv);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    return rc;
}

static char *slurp(const char *path)
{
    static char buf[8192];
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    buf[n] = 0;
    if (f)
        fclose(f);
    return buf;
}

static void test_bench_and_rm(void **state)
{
    (void)state;
    static struct srv s;
    char out[300];
    snprintf(s.dir, sizeof(s.dir), "%s/client_cmd_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(s.dir));
    snprintf(out, sizeof(out), "%s/out", s.dir);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    snprintf(s.addr, sizeof(s.addr), "127.0.0.1:%u", ntohs(sa.sin_port));
    assert_int_equal(pthread_create(&s.th, NULL, srv_main, &s), 0);
    while (!atomic_load(&s.ready))
        usleep(1000);
    setenv("VSTOR_CONFIG", "/nonexistent/vstor.conf", 1);
    const char *bench[] = {"bench", "--image", "vm1", "--runtime", "1", "--ramp", "0",
                           "--mon-address", s.addr};
    assert_int_equal(cli(out, bench, 9), 0);
    const char *text = slurp(out);
    assert_non_null(strstr(text, "lat_p99_us"));
    assert_non_null(strstr(text, "randwrite-4k-q1 "));
    assert_non_null(strstr(text, "randread-4k-q128"));
    const char *rm[] = {"rm", "vm1", "--parallel", "4", "--mon-address", s.addr};
    assert_int_equal(cli(out, rm, 6), 0);
    assert_non_null(strstr(slurp(out), "removed image vm1"));
    assert_int_equal(cli(out, rm, 6), 1); /* not found any more */
    uv_async_send(&s.stop);
    pthread_join(s.th, NULL);
    uint8_t *obj = malloc(OBJ), *zero = calloc(1, OBJ);
    for (uint64_t off = 0; off < SIZE; off += OBJ) {
        fake_osd_peek(&s.osd[(off / OBJ) % 2], INODE, off, OBJ, obj);
        assert_memory_equal(obj, zero, OBJ);
    }
    free(obj), free(zero);
    fake_osd_free(&s.osd[0]);
    fake_osd_free(&s.osd[1]);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", s.dir);
    assert_int_equal(system(cmd), 0);
}

/* Every client key of the config reaches libvstor's options, the same for
 * `vstor bench`/`rm` and the NBD export (which both call this). */
static void test_client_opts_from_config(void **state)
{
    (void)state;
    struct vs_config cfg;
    static struct cmd_client_opts co;
    char err[200];
    vs_config_init(&cfg);
    assert_int_equal(cmd_client_opts_from_config(&cfg, &co, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "no metadata service"));
    const char *set[][2] = {{"mon-address", "127.0.0.1:1,127.0.0.2:2"},
                            {"net-payload-max", "2M"}, {"client-retry-enospc", "false"},
                            {"loop-spin-lone-us", "30"}, {"net-local-dir", "/run/vstor"}};
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        assert_int_equal(vs_config_set(&cfg, set[i][0], set[i][1], VS_CFG_SRC_FLAG, err,
                                       sizeof(err)), 0);
    assert_int_equal(cmd_client_opts_from_config(&cfg, &co, err, sizeof(err)), 0);
    assert_int_equal(co.o.n_mon, 2);
    assert_string_equal(co.o.mon_addresses[1], "127.0.0.2:2");
    assert_int_equal(co.o.net_payload_max, 2u << 20);
    assert_true(co.o.fail_enospc);
    assert_int_equal(co.o.spin_lone_us, 30);
    assert_string_equal(co.o.net_local_dir, "/run/vstor");
    char *longest = malloc(sizeof(co.list) + 1);
    memset(longest, 'a', sizeof(co.list));
    longest[sizeof(co.list)] = 0;
    assert_int_equal(vs_config_set(&cfg, "mon-address", longest, VS_CFG_SRC_FLAG, err,
                                   sizeof(err)), 0);
    assert_int_equal(cmd_client_opts_from_config(&cfg, &co, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "longer than"));
    free(longest);
    vs_config_free(&cfg);
}

int main(void)
{
    vs_log_set_level(VS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_client_opts_from_config),
        cmocka_unit_test(test_bench_and_rm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
