/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * mon_main.c -- `vstor mon`: runs one member of the metadata service and, on
 * the leader, the monitor tasks (mon.h).
 *
 *   vstor mon --id 1 --address 10.0.0.1:4000 \
 *             --members 1=10.0.0.1:4000,2=10.0.0.2:4000,3=10.0.0.3:4000
 *
 * The database lives in DATA_DIR/mon. Three ways to start a cluster, with
 * empty data dirs:
 *  - the same --members list given to every member: each bootstraps the same
 *    configuration, and they elect a leader once a majority runs;
 *  - --init --members LIST on the first member only, the others started with
 *    no list: the first bootstraps a cluster of itself and, as leader, adds
 *    each of the others as it comes up (standby, caught up, then voter);
 *  - --init alone: a cluster of one member.
 * An empty member without a list waits until a leader adds it -- that is how
 * `vstor meta member add` grows a cluster. A member restarts from its data
 * dir (a list given again is only checked); a data dir of another cluster or
 * member id is refused.
 *
 * Exit status: 0 after SIGTERM/SIGINT; 1 when the member had to stop (its
 * disk is full or unwritable, its database failed) or could not start; 2 for
 * bad usage.
 */
#include "cmd.h"
#include "mon.h"
#include "monitor.h"

#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vs_mon_parse_members(const char *list, struct vs_raft_member *out, unsigned max, char *err,
                         size_t err_size)
{
    unsigned n = 0;
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        char *end;
        unsigned long long id = strtoull(p, &end, 10);
        if (!eq || end != eq || id == 0 || n == max || (size_t)(p + len - eq - 1) == 0 ||
            (size_t)(p + len - eq - 1) > VS_RAFT_ADDRESS_MAX) {
            snprintf(err, err_size, "bad member '%.*s' (want ID=IP:PORT, %u at most)", (int)len,
                     p, max);
            return -EINVAL;
        }
        out[n].id = id;
        snprintf(out[n].address, sizeof(out[n].address), "%.*s", (int)(p + len - eq - 1), eq + 1);
        out[n].role = 1;
        for (unsigned i = 0; i < n; i++) {
            if (out[i].id == id || strcmp(out[i].address, out[n].address) == 0) {
                snprintf(err, err_size, "member %llu or its address is listed twice", id);
                return -EINVAL;
            }
        }
        n++;
        p += len + (comma ? 1 : 0);
    }
    if (n == 0) {
        snprintf(err, err_size, "empty member list");
        return -EINVAL;
    }
    return (int)n;
}

/* ---- leadership: the monitor tasks --------------------------------------------- */

static void tasks_stop(struct vs_mon *m)
{
    for (unsigned i = vs_mon_task_count; i-- > 0;) {
        if (!m->task_running[i])
            continue;
        vs_mon_tasks[i].stop(m, m->task_state[i]);
        m->task_running[i] = false;
        m->task_state[i] = NULL;
    }
}

static void tasks_start(struct vs_mon *m)
{
    for (unsigned i = 0; i < vs_mon_task_count && i < VS_MON_TASKS_MAX; i++) {
        int rc = vs_mon_tasks[i].start(m, &m->task_state[i]);
        if (rc < 0)
            VS_ERROR("mon", "monitor task %s did not start: %s", vs_mon_tasks[i].name,
                     vs_strerror(rc));
        else
            m->task_running[i] = true;
    }
}

static void leader_cb(void *ctx, bool is_leader, uint64_t term)
{
    struct vs_mon *m = ctx;
    m->leader = is_leader;
    m->term = term;
    if (is_leader && !m->stopping) {
        VS_INFO("mon", "leader in term %" PRIu64 ": starting the monitor tasks", term);
        tasks_start(m);
    } else {
        tasks_stop(m);
    }
}

/* ---- lifetime --------------------------------------------------------------------- */

static void server_closed(void *ctx)
{
    struct vs_mon *m = ctx;
    m->server = NULL;
    vs_loop_stop(&m->loop);
}

/* The monitor closes first (monitor.h), then the member. */
static void monitor_closed(void *ctx)
{
    struct vs_mon *m = ctx;
    m->monitor = NULL;
    if (m->server)
        vs_raft_server_close(m->server, server_closed, m);
    else
        vs_loop_stop(&m->loop);
}

static void stop_mon(struct vs_mon *m, int exit_code)
{
    if (m->stopping)
        return;
    m->stopping = true;
    if (exit_code > m->exit_code)
        m->exit_code = exit_code;
    tasks_stop(m);
    if (m->server)
        vs_raft_server_on_leader(m->server, NULL, NULL);
    if (m->monitor)
        vs_monitor_close(m->monitor, monitor_closed, m);
    else
        monitor_closed(m);
}

static void fatal_cb(void *ctx, int status, const char *msg)
{
    struct vs_mon *m = ctx;
    VS_ERROR("mon", "member %" PRIu64 " stops: %s (%s)", m->id, msg, vs_strerror(status));
    fprintf(stderr, "vstor mon: member %" PRIu64 " stopped: %s\n", m->id, msg);
    stop_mon(m, VS_EXIT_FAIL);
}

static void shutdown_cb(struct vs_loop *loop, int signum, void *ctx)
{
    (void)loop;
    (void)signum;
    stop_mon(ctx, VS_EXIT_OK);
}

static int parse_opts(struct vs_cmd_ctx *ctx, struct vs_raft_server_opts *o,
                      struct vs_raft_member *members, char *dir, size_t dir_size)
{
    const struct vs_config *cfg = &ctx->cfg;
    uint64_t id = 0;
    if (vs_cmd_opt_u64(ctx, "id", &id) < 0 || id == 0) {
        vs_cmd_error(ctx, "--id must be a member id > 0");
        return VS_EXIT_USAGE;
    }
    const char *list = vs_cmd_opt(ctx, "members");
    if (list) {
        char err[256];
        int n = vs_mon_parse_members(list, members, VS_RAFT_MEMBERS_MAX, err, sizeof(err));
        if (n < 0) {
            vs_cmd_error(ctx, "--members: %s", err);
            return VS_EXIT_USAGE;
        }
        o->initial = members;
        o->n_initial = (unsigned)n;
        o->bootstrap_alone = vs_cmd_flag(ctx, "init") && n > 1;
    } else if (vs_cmd_flag(ctx, "init")) {
        members[0].id = id;
        snprintf(members[0].address, sizeof(members[0].address), "%s",
                 vs_cmd_opt(ctx, "address"));
        members[0].role = 1;
        o->initial = members;
        o->n_initial = 1;
    }
    snprintf(dir, dir_size, "%s/mon", cfg->data_dir);
    o->data_dir = dir;
    o->id = id;
    o->address = vs_cmd_opt(ctx, "address");
    o->election_timeout_ms = (unsigned)cfg->mon_election_timeout;
    o->heartbeat_timeout_ms = (unsigned)cfg->mon_heartbeat_interval;
    o->snapshot_threshold = (unsigned)cfg->mon_snapshot_threshold;
    o->snapshot_trailing = (unsigned)cfg->mon_snapshot_trailing;
    o->value_max_bytes = (uint32_t)cfg->mon_max_value;
    o->compact_retention_ms = cfg->mon_history_retention;
    o->compact_interval_ms = cfg->mon_compact_interval;
    if (o->heartbeat_timeout_ms * 2 > o->election_timeout_ms) {
        vs_cmd_error(ctx, "mon_heartbeat_interval must be at most half mon_election_timeout");
        return VS_EXIT_USAGE;
    }
    return VS_EXIT_OK;
}

int vs_cmd_mon(struct vs_cmd_ctx *ctx)
{
    static struct vs_mon mon; /* one per process; outlives every callback */
    struct vs_mon *m = &mon;
    struct vs_raft_member members[VS_RAFT_MEMBERS_MAX];
    struct vs_raft_server_opts o = {0};
    char dir[600];
    int rc = parse_opts(ctx, &o, members, dir, sizeof(dir));
    if (rc != VS_EXIT_OK)
        return rc;
    memset(m, 0, sizeof(*m));
    m->cfg = &ctx->cfg;
    m->id = o.id;
    char tag[32];
    snprintf(tag, sizeof(tag), "mon.%" PRIu64, o.id);
    vs_log_set_process(tag);
    if (vs_loop_init(&m->loop, 0) < 0) {
        vs_cmd_error(ctx, "%s", m->loop.errmsg);
        return VS_EXIT_FAIL;
    }
    char err[1024];
    rc = vs_raft_server_open(&m->loop.uv, &o, &m->server, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_loop_close(&m->loop);
        return rc == -EINVAL ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    struct vs_monitor_opts mo = {.change_delay_ms = ctx->cfg.mon_change_delay,
                                 .stats_interval_ms = ctx->cfg.mon_stats_interval};
    rc = vs_monitor_create(&m->loop.uv, m->server, &mo, &m->monitor);
    if (rc < 0)
        VS_ERROR("mon", "the monitor could not be created (%s): serving metadata only",
                 vs_strerror(rc));
    vs_raft_server_on_leader(m->server, leader_cb, m);
    vs_raft_server_on_fatal(m->server, fatal_cb, m);
    vs_loop_on_shutdown(&m->loop, shutdown_cb, m);
    vs_loop_run(&m->loop);
    if (m->server || m->monitor) { /* the loop stopped without a close: close now */
        m->stopping = false;
        stop_mon(m, m->exit_code);
        vs_loop_run(&m->loop);
    }
    vs_loop_close(&m->loop);
    VS_INFO("mon", "member %" PRIu64 " stopped", o.id);
    return m->exit_code;
}
