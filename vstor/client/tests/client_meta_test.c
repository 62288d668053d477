/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_meta_test -- libvstor through its production path: vstor_client_create()
 * with a real one-member metadata service (raft/ on SQLite, over TCP) and
 * fake OSDs on the real messenger, all on one loop. The member is restarted
 * while the client writes (I/O goes on, the watches resume), and a PG map
 * change made through the service re-targets the client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_int.h"
#include "fake_osd.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#define OBJ 4096u

struct env {
    uv_loop_t loop;
    struct vs_raft_server *srv;
    char dir[256], addr[64];
    struct fake_osd osd[2];
    struct vstor_client *c;
    struct vstor_image *img;
    uint64_t cluster_id;
    bool flag;
    int rc;
};

static void run_until(struct env *e, const bool *flag)
{
    uint64_t deadline = vs_clock_mono_us() + 30 * 1000000ull;
    while (!*flag) {
        uv_run(&e->loop, UV_RUN_ONCE);
        if (vs_clock_mono_us() > deadline)
            fail_msg("timed out waiting");
    }
}

static void leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    struct env *e = ctx;
    (void)term;
    e->flag = is_leader;
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    return ntohs(sa.sin_port);
}

static void srv_open(struct env *e)
{
    struct vs_raft_member m = {.id = 1, .role = 1 /* RAFT_VOTER */};
    snprintf(m.address, sizeof(m.address), "%s", e->addr);
    struct vs_raft_server_opts o = {.data_dir = e->dir, .id = 1, .address = e->addr,
                                    .initial = &m, .n_initial = 1, .election_timeout_ms = 200,
                                    .heartbeat_timeout_ms = 20};
    char err[512];
    if (vs_raft_server_open(&e->loop, &o, &e->srv, err, sizeof(err)) != 0)
        fail_msg("raft member: %s", err);
    e->flag = false;
    vs_raft_server_on_leader(e->srv, leader_cb, e);
    run_until(e, &e->flag);
    struct vs_raft_status st;
    vs_raft_server_status(e->srv, &st);
    e->cluster_id = st.cluster_id;
}

static void srv_closed(void *ctx)
{
    ((struct env *)ctx)->flag = true;
}

static void srv_close(struct env *e)
{
    e->flag = false;
    vs_raft_server_close(e->srv, srv_closed, e);
    run_until(e, &e->flag);
    e->srv = NULL;
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct env *e = ctx;
    (void)res;
    e->rc = status;
    e->flag = true;
}

static void put(struct env *e, const char *key, const char *value)
{
    struct vs_meta_op op = {.key = key, .key_len = (uint32_t)strlen(key), .value = value,
                            .value_len = (uint32_t)strlen(value), .type = VS_META_OP_PUT};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    e->flag = false;
    assert_int_equal(vs_raft_server_txn(e->srv, &txn, txn_cb, e), 0);
    run_until(e, &e->flag);
    assert_int_equal(e->rc, 0);
}

static void put_pgs(struct env *e, uint32_t a, uint32_t b)
{
    char buf[512];
    snprintf(buf, sizeof(buf), "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":["
             "{\"osd_set\":[%u],\"primary\":%u},{\"osd_set\":[%u],\"primary\":%u}]}}}", a, a, b,
             b);
    put(e, "config/pgs", buf);
}

static void open_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct env *e = ctx;
    e->rc = rc;
    e->img = img;
    e->flag = true;
}

static void io_cb(struct vstor_io *io, int rc)
{
    struct env *e = io->ctx;
    e->rc = rc;
    e->flag = true;
}

static int do_io(struct env *e, int (*fn)(struct vstor_image *, struct vstor_io *), void *buf,
                 uint64_t len, uint64_t off)
{
    struct vstor_io io = {.offset = off, .len = len, .buf = buf, .cb = io_cb, .ctx = e};
    e->flag = false;
    int rc = fn(e->img, &io);
    if (rc < 0)
        return rc;
    run_until(e, &e->flag);
    return e->rc;
}

static void setup_cluster(struct env *e)
{
    char val[256];
    memset(e, 0, sizeof(*e));
    uv_loop_init(&e->loop);
    snprintf(e->dir, sizeof(e->dir), "%s/client_meta_XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(e->dir));
    snprintf(e->addr, sizeof(e->addr), "127.0.0.1:%u", free_port());
    srv_open(e);
    for (unsigned i = 0; i < 2; i++) {
        fake_osd_start(&e->osd[i], &e->loop, i + 1, e->cluster_id, OBJ, false);
        char key[32];
        snprintf(key, sizeof(key), "osd/state/%u", i + 1);
        snprintf(val, sizeof(val), "{\"state\":\"up\",\"addresses\":[\"127.0.0.1:%u\"]}",
                 e->osd[i].port);
        put(e, key, val);
    }
    put(e, "config/pools", "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\",\"pg_size\":1,"
        "\"pg_minsize\":1,\"pg_count\":2,\"block_size\":4096}}");
    put_pgs(e, 1, 2);
    put(e, "index/image/vm1", "{\"pool\":1,\"num\":5}");
    put(e, "config/inode/1/5", "{\"name\":\"vm1\",\"size\":65536}");
}

static void test_real_metadata_service(void **state)
{
    (void)state;
    struct env e;
    setup_cluster(&e);
    struct vstor_client_opts o;
    const char *mons[] = {e.addr};
    vstor_client_opts_init(&o);
    o.mon_addresses = mons;
    o.n_mon = 1;
    o.meta_timeout_ms = 500;
    char err[256];
    assert_int_equal(vstor_client_create(&e.loop, &o, &e.c, err, sizeof(err)), 0);
    e.flag = false;
    assert_int_equal(vstor_image_open(e.c, "vm1", open_cb, &e), 0);
    run_until(&e, &e.flag);
    assert_int_equal(e.rc, 0);
    uint8_t buf[4 * OBJ], back[4 * OBJ];
    for (unsigned i = 0; i < sizeof(buf); i++)
        buf[i] = (uint8_t)(i * 7 + 1);
    assert_int_equal(do_io(&e, vstor_write, buf, sizeof(buf), 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE), 2);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 2);
    /* The metadata service goes away: I/O goes on. */
    srv_close(&e);
    assert_int_equal(do_io(&e, vstor_read, back, sizeof(back), 0), 0);
    assert_memory_equal(back, buf, sizeof(buf));
    /* It comes back; a map change made there reaches the client. */
    srv_open(&e);
    put_pgs(&e, 2, 2);
    while (e.c->pgmap->pools[0].pgs[0].primary != 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 3);
    /* Unknown image: a clear error. */
    e.flag = false;
    struct vstor_image *keep = e.img;
    assert_int_equal(vstor_image_open(e.c, "nope", open_cb, &e), 0);
    run_until(&e, &e.flag);
    assert_int_equal(e.rc, VS_ENOIMAGE);
    vstor_image_close(keep);
    e.flag = false;
    vstor_client_close(e.c, srv_closed, &e);
    run_until(&e, &e.flag);
    for (unsigned i = 0; i < 2; i++) {
        fake_osd_stop(&e.osd[i]);
        run_until(&e, &e.osd[i].stopped);
        fake_osd_free(&e.osd[i]);
    }
    srv_close(&e);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e.dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    vs_log_set_level(getenv("VS_TEST_LOG") ? VS_LOG_DEBUG : VS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_metadata_service),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
