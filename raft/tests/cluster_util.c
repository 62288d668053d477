/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cluster_util.c -- see cluster_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

static void leader_cb(void *ctx, bool is_leader, uint64_t term);
static void closed_cb(void *ctx);
static void tick_cb(uv_timer_t *t);

static void leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    struct member *m = ctx;
    (void)term;
    m->leader = is_leader;
    if (is_leader)
        m->leader_since_ms = uv_now(m->loop);
}

void member_open(struct cluster *c, unsigned i)
{
    unsigned et = c->m[i].election_timeout_ms ? c->m[i].election_timeout_ms : 300;
    struct vs_raft_server_opts o = {
        .data_dir = c->m[i].dir, .id = i + 1, .address = c->m[i].addr, .initial = c->list,
        .n_initial = c->alone && i > 0 ? 0 : c->n, .bootstrap_alone = c->alone && i == 0,
        .election_timeout_ms = et, .heartbeat_timeout_ms = 30,
        .snapshot_threshold = c->threshold, .snapshot_trailing = c->trailing,
    };
    c->m[i].loop = &c->loop;
    char err[512];
    int rc = vs_raft_server_open(&c->loop, &o, &c->m[i].s, err, sizeof(err));
    if (rc != 0)
        fail_msg("open member %u: %s", i + 1, err);
    vs_raft_server_on_leader(c->m[i].s, leader_cb, &c->m[i]);
}

static void closed_cb(void *ctx)
{
    struct member *m = ctx;
    m->closed_done = true;
}

static void tick_cb(uv_timer_t *t)
{
    (void)t; /* only makes uv_run(UV_RUN_ONCE) return */
}

void run_for(struct cluster *c, unsigned ms)
{
    uint64_t end = uv_now(&c->loop) + ms;
    uv_timer_t t;
    uv_timer_init(&c->loop, &t);
    uv_timer_start(&t, tick_cb, 1, 1);
    while (uv_now(&c->loop) < end)
        uv_run(&c->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&c->loop, UV_RUN_NOWAIT);
}

bool run_until(struct cluster *c, pred_fn pred, void *arg, unsigned timeout_ms)
{
    uint64_t end = uv_now(&c->loop) + timeout_ms;
    while (!pred(c, arg)) {
        if (uv_now(&c->loop) > end)
            return false;
        run_for(c, 5);
    }
    return true;
}

void member_close(struct cluster *c, unsigned i)
{
    c->m[i].closed_done = false;
    vs_raft_server_close(c->m[i].s, closed_cb, &c->m[i]);
    while (!c->m[i].closed_done)
        uv_run(&c->loop, UV_RUN_ONCE);
    c->m[i].s = NULL;
    c->m[i].leader = false;
}

int leader_of(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->m[i].s && c->m[i].leader)
            return (int)i;
    return -1;
}

bool has_leader(struct cluster *c, void *arg)
{
    (void)arg;
    return leader_of(c) >= 0;
}

/* True when every port of [base, base + n) can be bound on 127.0.0.1 now. */
static bool ports_free(int base, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + i)),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc != 0)
            return false;
    }
    return true;
}

/* Ports below the kernel's ephemeral range (32768+), so outgoing connections
 * of other tests never hold them; probed, since tests run in parallel. */
static int pick_port_base(unsigned n, unsigned seed)
{
    for (unsigned attempt = 0; attempt < 64; attempt++) {
        int base = 10000 + (int)((seed + attempt * 7919u) % 22000u);
        if (ports_free(base, n))
            return base;
    }
    return 10000 + (int)(seed % 22000u);
}

void cluster_init(struct cluster *c, unsigned n, const char *name)
{
    memset(c, 0, sizeof(*c));
    uv_loop_init(&c->loop);
    c->n = n;
    c->threshold = 64;
    c->trailing = 8;
    unsigned h = 0;
    for (const char *p = name; *p; p++)
        h = h * 31 + (unsigned char)*p;
    c->port_base = pick_port_base(n, (unsigned)getpid() * 7 + h * 13);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    for (unsigned i = 0; i < n; i++) {
        snprintf(c->m[i].dir, sizeof(c->m[i].dir), "%s/raft_cl_%s_%d_%u", tmp, name,
                 (int)getpid(), i);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->m[i].dir);
        assert_int_equal(system(cmd), 0);
        snprintf(c->m[i].addr, sizeof(c->m[i].addr), "127.0.0.1:%d", c->port_base + (int)i);
        c->list[i].id = i + 1;
        snprintf(c->list[i].address, sizeof(c->list[i].address), "%s", c->m[i].addr);
        c->list[i].role = RAFT_VOTER;
    }
}

void cluster_free(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++) {
        if (c->m[i].s)
            member_close(c, i);
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", c->m[i].dir);
        assert_int_equal(system(cmd), 0);
    }
    uv_run(&c->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
}

