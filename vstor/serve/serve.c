/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * serve.c -- the node engine behind `vstor serve` and `vstor demo` (serve.h).
 *
 * From the configuration it derives this node's children: the metadata
 * member `serve_mon_id` (if not 0) and one OSD per entry of `osd_devices`.
 * Each child is `vstor mon ...` or `vstor osd --device ...` started through
 * the supervisor (supervisor.h), which restarts a crashed child with back-off.
 *
 * Children get the same configuration: `--config PATH` when serve read a
 * file, and every key given to serve on the command line, passed on as a
 * flag when the child's command accepts that key.
 *
 * Signals: SIGHUP re-reads the config file (command-line keys still win) and
 * applies the difference: new devices start, removed ones stop, changed
 * arguments restart. SIGTERM (or SIGINT) stops the OSDs first, so they can
 * stop their PGs and revoke their leases while the local mon still runs, then
 * the mon; a child that does not stop within `serve_stop_timeout` is killed.
 */
#include "serve.h"

#include "cmd.h"
#include "loop.h"
#include "supervisor.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SERVE_CHILDREN_MAX 64
#define SERVE_ARG_MAX 512

struct vs_serve {
    struct vs_loop loop;
    struct vs_supervisor *sup;
    struct vs_cmd_ctx *ctx;      /* the command line: flags */
    const char *config_path;     /* the config file, or NULL */
    struct vs_config cfg;        /* the configuration in force */
    char exe[PATH_MAX];
    uv_signal_t sighup;
    uv_timer_t stop_poll;
    bool stopping;
    int stop_phase;              /* 0: extras, 1: OSDs, 2: the rest */
    struct vs_child_spec extras[VS_SERVE_EXTRA_MAX];
    unsigned nextras;
    /* Storage for the children's argv strings of the last build. */
    char args[SERVE_CHILDREN_MAX][VS_CHILD_ARGV_MAX][SERVE_ARG_MAX];
    struct vs_child_spec specs[SERVE_CHILDREN_MAX];
    unsigned nspecs;
};

/* Appends one argument to spec (copied into the serve's storage). */
static int spec_arg(struct vs_serve *s, unsigned child, unsigned *argc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int spec_arg(struct vs_serve *s, unsigned child, unsigned *argc, const char *fmt, ...)
{
    if (*argc >= VS_CHILD_ARGV_MAX)
        return -E2BIG;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->args[child][*argc], SERVE_ARG_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= SERVE_ARG_MAX)
        return -E2BIG;
    s->specs[child].argv[*argc] = s->args[child][*argc];
    (*argc)++;
    s->specs[child].argv[*argc] = NULL;
    return 0;
}

/* The config given to serve, handed on: --config and the command-line keys
 * that the child's command accepts. */
static int pass_config(struct vs_serve *s, unsigned child, unsigned *argc, const char *cmd_name)
{
    const struct vs_cmd *cmd = vs_cli_find(cmd_name);
    unsigned scopes = (cmd ? cmd->scopes : 0) | VS_SCOPE_GLOBAL;
    int rc = 0;
    if (s->cfg.path)
        rc = spec_arg(s, child, argc, "--config=%s", s->cfg.path);
    for (unsigned i = 0; rc == 0 && i < vs_config_key_count; i++) {
        if (s->ctx->cfg.source[i] != VS_CFG_SRC_FLAG || !(vs_config_keys[i].scopes & scopes))
            continue;
        char value[SERVE_ARG_MAX];
        vs_config_format(&s->cfg, i, value, sizeof(value));
        rc = spec_arg(s, child, argc, "--%s=%s", vs_config_keys[i].name, value);
    }
    return rc;
}

static int add_mon(struct vs_serve *s, char *err, size_t err_size)
{
    char list[4096], *items[64];
    snprintf(list, sizeof(list), "%s", s->cfg.mon_address ? s->cfg.mon_address : "");
    int n = vs_config_list_split(list, items, 64);
    uint64_t id = s->cfg.serve_mon_id;
    if (id > (uint64_t)n) {
        snprintf(err, err_size, "serve_mon_id %llu, but mon_address lists %d member(s)",
                 (unsigned long long)id, n);
        return VS_ECONFIG;
    }
    char members[4096];
    size_t used = 0;
    for (int i = 0; i < n; i++)
        used += (size_t)snprintf(members + used, sizeof(members) - used, "%s%d=%s", i ? "," : "",
                                 i + 1, items[i]);
    unsigned c = s->nspecs++, argc = 0;
    snprintf(s->specs[c].name, sizeof(s->specs[c].name), "mon.%llu", (unsigned long long)id);
    int rc = spec_arg(s, c, &argc, "%s", s->exe);
    rc = rc ? rc : spec_arg(s, c, &argc, "mon");
    rc = rc ? rc : spec_arg(s, c, &argc, "--id=%llu", (unsigned long long)id);
    rc = rc ? rc : spec_arg(s, c, &argc, "--address=%s", items[id - 1]);
    rc = rc ? rc : spec_arg(s, c, &argc, "--members=%s", members);
    rc = rc ? rc : pass_config(s, c, &argc, "mon");
    if (rc < 0)
        snprintf(err, err_size, "mon arguments are too long");
    return rc;
}

static int add_osds(struct vs_serve *s, char *err, size_t err_size)
{
    char list[8192], *items[SERVE_CHILDREN_MAX];
    snprintf(list, sizeof(list), "%s", s->cfg.osd_devices ? s->cfg.osd_devices : "");
    int n = vs_config_list_split(list, items, SERVE_CHILDREN_MAX);
    for (int i = 0; i < n; i++) {
        if (s->nspecs >= SERVE_CHILDREN_MAX) {
            snprintf(err, err_size, "too many osd_devices (at most %d)", SERVE_CHILDREN_MAX - 1);
            return VS_ECONFIG;
        }
        unsigned c = s->nspecs++, argc = 0;
        int len = snprintf(s->specs[c].name, sizeof(s->specs[c].name), "osd:%s", items[i]);
        if (len < 0 || (size_t)len >= sizeof(s->specs[c].name)) {
            snprintf(err, err_size, "device path too long: %.200s...", items[i]);
            return VS_ECONFIG;
        }
        int rc = spec_arg(s, c, &argc, "%s", s->exe);
        rc = rc ? rc : spec_arg(s, c, &argc, "osd");
        rc = rc ? rc : spec_arg(s, c, &argc, "--device=%s", items[i]);
        rc = rc ? rc : pass_config(s, c, &argc, "osd");
        if (rc < 0) {
            snprintf(err, err_size, "osd arguments are too long for %s", items[i]);
            return rc;
        }
    }
    return 0;
}

/* Derives the children from s->cfg (and the extras) into s->specs. */
static int build_specs(struct vs_serve *s, bool include_osds, bool include_extras, char *err,
                       size_t err_size)
{
    memset(s->specs, 0, sizeof(s->specs));
    s->nspecs = 0;
    int rc = 0;
    if (s->cfg.serve_mon_id)
        rc = add_mon(s, err, err_size);
    if (rc == 0 && include_osds)
        rc = add_osds(s, err, err_size);
    for (unsigned i = 0; rc == 0 && include_extras && i < s->nextras; i++) {
        if (s->nspecs >= SERVE_CHILDREN_MAX) {
            snprintf(err, err_size, "too many children");
            return VS_ECONFIG;
        }
        s->specs[s->nspecs++] = s->extras[i];
    }
    return rc;
}

/* Reads the config file again and re-applies the command-line keys. */
static int reload_config(struct vs_serve *s, char *err, size_t err_size)
{
    struct vs_config fresh;
    vs_config_init(&fresh);
    int rc = 0;
    if (s->config_path)
        rc = vs_config_load_file(&fresh, s->config_path, true, err, err_size);
    for (unsigned i = 0; rc == 0 && i < vs_config_key_count; i++) {
        if (s->ctx->cfg.source[i] != VS_CFG_SRC_FLAG)
            continue;
        char value[4096];
        vs_config_format(&s->ctx->cfg, i, value, sizeof(value));
        rc = vs_config_set(&fresh, vs_config_keys[i].name, value, VS_CFG_SRC_FLAG, err, err_size);
    }
    if (rc < 0) {
        vs_config_free(&fresh);
        return rc;
    }
    vs_config_free(&s->cfg);
    s->cfg = fresh;
    return 0;
}

static void sighup_cb(uv_signal_t *h, int signum)
{
    struct vs_serve *s = h->data;
    char err[VS_ERRMSG_SIZE + 512];
    (void)signum;
    if (s->stopping)
        return;
    VS_INFO("serve", "SIGHUP: reloading %s", s->cfg.path ? s->cfg.path : "the configuration");
    if (reload_config(s, err, sizeof(err)) < 0 ||
        build_specs(s, true, true, err, sizeof(err)) < 0) {
        VS_ERROR("serve", "reload refused, keeping the running set: %s", err);
        return;
    }
    vs_supervisor_apply(s->sup, s->specs, s->nspecs);
}

static void all_stopped_cb(void *ctx)
{
    struct vs_serve *s = ctx;
    VS_INFO("serve", "every child has stopped");
    vs_loop_stop(&s->loop);
}

static bool is_extra(const struct vs_serve *s, const char *name)
{
    for (unsigned i = 0; i < s->nextras; i++)
        if (strcmp(s->extras[i].name, name) == 0)
            return true;
    return false;
}

/* A stop goes in phases: the extras (NBD exports, which still need the
 * OSDs to finish their requests), then the OSDs (which still need the mon to
 * revoke their leases), then the rest. Each phase waits for the previous
 * one's children to exit. */
static void stop_poll_cb(uv_timer_t *t)
{
    struct vs_serve *s = t->data;
    char err[VS_ERRMSG_SIZE];
    struct vs_child_info info;
    for (unsigned i = 0; vs_supervisor_info(s->sup, i, &info); i++) {
        bool osd = strncmp(info.name, "osd:", 4) == 0;
        if ((s->stop_phase == 0 && is_extra(s, info.name)) || (s->stop_phase == 1 && osd))
            return; /* this phase's children are still stopping */
    }
    s->stop_phase++;
    if (s->stop_phase == 1) {
        if (build_specs(s, false, false, err, sizeof(err)) < 0)
            s->nspecs = 0;
        vs_supervisor_apply(s->sup, s->specs, s->nspecs);
        return;
    }
    uv_timer_stop(t);
    vs_supervisor_stop_all(s->sup, s->cfg.serve_stop_timeout, all_stopped_cb, s);
}

void vs_serve_stop(struct vs_serve *s)
{
    char err[VS_ERRMSG_SIZE];
    if (s->stopping)
        return;
    s->stopping = true;
    VS_INFO("serve", "stopping: exports, then OSDs, then the mon");
    if (build_specs(s, true, false, err, sizeof(err)) < 0)
        s->nspecs = 0;
    vs_supervisor_apply(s->sup, s->specs, s->nspecs);
    uv_timer_start(&s->stop_poll, stop_poll_cb, 0, 50);
}

static void shutdown_cb(struct vs_loop *loop, int signum, void *ctx)
{
    (void)loop;
    VS_INFO("serve", "signal %d", signum);
    vs_serve_stop(ctx);
}

int vs_serve_init(struct vs_serve **out, struct vs_cmd_ctx *ctx, const char *config_path,
                  char *err, size_t err_size)
{
    static struct vs_serve serve; /* large (argv storage); one per process */
    struct vs_serve *s = &serve;
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    s->config_path = config_path;
    int rc = reload_config(s, err, err_size);
    if (rc < 0)
        return rc;
    ssize_t n = readlink("/proc/self/exe", s->exe, sizeof(s->exe) - 1);
    if (n <= 0) {
        snprintf(err, err_size, "cannot find the vstor executable: %s", strerror(errno));
        return -errno;
    }
    s->exe[n] = 0;
    rc = vs_loop_init(&s->loop, 0);
    if (rc < 0) {
        snprintf(err, err_size, "%s", s->loop.errmsg);
        return rc;
    }
    struct vs_supervisor_opts o = {.backoff_initial_ms = s->cfg.serve_restart_delay,
                                   .backoff_max_ms = s->cfg.serve_restart_delay_max,
                                   .stable_ms = 60000};
    rc = vs_supervisor_create(&s->loop.uv, &o, &s->sup);
    if (rc < 0) {
        snprintf(err, err_size, "supervisor: %s", vs_strerror(rc));
        return rc;
    }
    vs_loop_on_shutdown(&s->loop, shutdown_cb, s);
    uv_signal_init(&s->loop.uv, &s->sighup);
    s->sighup.data = s;
    uv_signal_start(&s->sighup, sighup_cb, SIGHUP);
    uv_timer_init(&s->loop.uv, &s->stop_poll);
    s->stop_poll.data = s;
    *out = s;
    return 0;
}

int vs_serve_apply(struct vs_serve *s, char *err, size_t err_size)
{
    int rc = build_specs(s, true, true, err, err_size);
    if (rc == 0)
        rc = vs_supervisor_apply(s->sup, s->specs, s->nspecs);
    return rc;
}

int vs_serve_reload(struct vs_serve *s, char *err, size_t err_size)
{
    int rc = reload_config(s, err, err_size);
    return rc < 0 ? rc : vs_serve_apply(s, err, err_size);
}

int vs_serve_set_extras(struct vs_serve *s, const struct vs_child_spec *extras, unsigned n)
{
    if (n > VS_SERVE_EXTRA_MAX)
        return -E2BIG;
    memcpy(s->extras, extras, n * sizeof(*extras));
    s->nextras = n;
    return 0;
}

unsigned vs_serve_child_count(const struct vs_serve *s)
{
    return s->nspecs;
}

const struct vs_config *vs_serve_config(const struct vs_serve *s)
{
    return &s->cfg;
}

const char *vs_serve_exe(const struct vs_serve *s)
{
    return s->exe;
}

struct vs_loop *vs_serve_loop(struct vs_serve *s)
{
    return &s->loop;
}

int vs_serve_run(struct vs_serve *s)
{
    vs_loop_run(&s->loop);
    if (!s->stopping) { /* the loop ended on its own: stop the children too */
        vs_serve_stop(s);
        s->loop.stopping = false;
        vs_loop_run(&s->loop);
    }
    uv_close((uv_handle_t *)&s->sighup, NULL);
    uv_close((uv_handle_t *)&s->stop_poll, NULL);
    vs_supervisor_close(s->sup);
    int rc = vs_loop_close(&s->loop);
    vs_config_free(&s->cfg);
    return rc == 0 ? VS_EXIT_OK : VS_EXIT_FAIL;
}
