/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * supervisor.c -- child processes with restart back-off (see supervisor.h).
 *
 * Child states:
 *
 *      start()            exit (unwanted)            timer
 *   IDLE ----> RUNNING ------------------> BACKOFF -------> RUNNING
 *                 |  stop(): SIGTERM, kill timer
 *                 v
 *              STOPPING --exit--> IDLE (removed, restarted with a new argv, or stopped)
 *
 * A uv_process_t is single-use: each run gets its own, closed after exit.
 */
#include "supervisor.h"

#include "vs_assert.h"
#include "vs_log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

enum child_state { CHILD_IDLE, CHILD_RUNNING, CHILD_BACKOFF, CHILD_STOPPING };

struct child {
    struct vs_supervisor *sup;
    struct child *next;
    char name[VS_CHILD_NAME_MAX];
    char *argv[VS_CHILD_ARGV_MAX + 1]; /* owned copies */
    enum child_state state;
    uv_process_t *proc;                /* current run; NULL when not running */
    uv_timer_t timer;                  /* restart back-off, or SIGKILL deadline */
    bool remove_after_exit;            /* gone from the desired set */
    bool respawn_after_exit;           /* argv changed: start again at once */
    int pid;
    unsigned starts;
    int last_exit_status, last_term_signal;
    uint64_t started_ms, delay_ms;
};

struct vs_supervisor {
    uv_loop_t *loop;
    struct vs_supervisor_opts opts;
    struct child *children;
    char **env;
    bool stopping;
    uint64_t stop_timeout_ms;
    void (*stop_done)(void *ctx);
    void *stop_ctx;
};

static void child_start(struct child *c);

static void free_argv(char **argv)
{
    for (int i = 0; argv[i]; i++) {
        free(argv[i]);
        argv[i] = NULL;
    }
}

static int copy_argv(char **dst, const char *const *src)
{
    int i = 0;
    for (; src[i] && i < VS_CHILD_ARGV_MAX; i++) {
        dst[i] = strdup(src[i]);
        if (!dst[i]) {
            free_argv(dst);
            return -ENOMEM;
        }
    }
    dst[i] = NULL;
    return 0;
}

static bool argv_equal(char *const *a, const char *const *b)
{
    int i = 0;
    for (; a[i] && b[i]; i++)
        if (strcmp(a[i], b[i]) != 0)
            return false;
    return a[i] == NULL && b[i] == NULL;
}

static void free_child_cb(uv_handle_t *h)
{
    struct child *c = h->data;
    free_argv(c->argv);
    free(c);
}

static void unlink_child(struct child *c)
{
    struct child **p = &c->sup->children;
    while (*p != c)
        p = &(*p)->next;
    *p = c->next;
}

static void check_stop_done(struct vs_supervisor *s)
{
    if (!s->stopping || !s->stop_done)
        return;
    for (struct child *c = s->children; c; c = c->next)
        if (c->state == CHILD_RUNNING || c->state == CHILD_STOPPING)
            return;
    void (*done)(void *) = s->stop_done;
    s->stop_done = NULL;
    done(s->stop_ctx);
}

static void restart_timer_cb(uv_timer_t *t)
{
    struct child *c = t->data;
    VS_ASSERT(c->state == CHILD_BACKOFF);
    child_start(c);
}

static void schedule_restart(struct child *c, uint64_t ran_ms)
{
    const struct vs_supervisor_opts *o = &c->sup->opts;
    if (ran_ms >= o->stable_ms || c->delay_ms == 0)
        c->delay_ms = o->backoff_initial_ms;
    else
        c->delay_ms = VS_MIN(c->delay_ms * 2, o->backoff_max_ms);
    c->state = CHILD_BACKOFF;
    VS_INFO("serve", "%s: restarting in %llu ms", c->name, (unsigned long long)c->delay_ms);
    uv_timer_start(&c->timer, restart_timer_cb, c->delay_ms, 0);
}

static void log_exit(const struct child *c, uint64_t ran_ms, bool wanted)
{
    const char *why = wanted ? "stopped" : "died";
    if (c->last_term_signal)
        VS_LOG(wanted ? VS_LOG_INFO : VS_LOG_WARN, "serve",
               "%s (pid %d) %s: killed by signal %d (%s) after %llu ms", c->name, c->pid, why,
               c->last_term_signal, strsignal(c->last_term_signal), (unsigned long long)ran_ms);
    else
        VS_LOG(wanted ? VS_LOG_INFO : VS_LOG_WARN, "serve",
               "%s (pid %d) %s: exit status %d after %llu ms", c->name, c->pid, why,
               c->last_exit_status, (unsigned long long)ran_ms);
}

static void close_proc_cb(uv_handle_t *h)
{
    free(h);
}

static void exit_cb(uv_process_t *p, int64_t status, int term_signal)
{
    struct child *c = p->data;
    struct vs_supervisor *s = c->sup;
    uint64_t ran_ms = uv_now(s->loop) - c->started_ms;
    bool wanted = c->state == CHILD_STOPPING;
    c->last_exit_status = term_signal ? -1 : (int)status;
    c->last_term_signal = term_signal;
    log_exit(c, ran_ms, wanted);
    uv_close((uv_handle_t *)p, close_proc_cb);
    c->proc = NULL;
    c->pid = 0;
    uv_timer_stop(&c->timer);
    if (c->remove_after_exit) {
        unlink_child(c);
        uv_close((uv_handle_t *)&c->timer, free_child_cb);
    } else if (s->stopping) {
        c->state = CHILD_IDLE;
    } else if (c->respawn_after_exit) {
        c->respawn_after_exit = false;
        c->delay_ms = 0;
        child_start(c);
    } else {
        schedule_restart(c, ran_ms);
    }
    check_stop_done(s);
}

static void child_start(struct child *c)
{
    struct vs_supervisor *s = c->sup;
    uv_process_t *p = calloc(1, sizeof(*p));
    if (!p) {
        VS_ERROR("serve", "%s: out of memory starting child", c->name);
        schedule_restart(c, 0);
        return;
    }
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 1},
        {.flags = UV_INHERIT_FD, .data.fd = 2}};
    /* A session of its own (setsid): a terminal's Ctrl-C, sent to the whole
     * foreground process group, reaches only us, and we stop the children in
     * order (exports, OSDs, mon). Killed with us all the same: each child asks
     * for PR_SET_PDEATHSIG (cli.c, follow_supervisor). */
    uv_process_options_t o = {.exit_cb = exit_cb, .file = c->argv[0], .args = c->argv,
                              .env = s->env, .stdio_count = 3, .stdio = stdio,
                              .flags = UV_PROCESS_DETACHED};
    p->data = c;
    c->started_ms = uv_now(s->loop);
    c->starts++;
    int rc = uv_spawn(s->loop, p, &o);
    if (rc < 0) {
        VS_ERROR("serve", "%s: cannot start %s: %s", c->name, c->argv[0], uv_strerror(rc));
        uv_close((uv_handle_t *)p, close_proc_cb);
        c->last_exit_status = 127;
        c->last_term_signal = 0;
        schedule_restart(c, 0);
        return;
    }
    c->proc = p;
    c->pid = p->pid;
    c->state = CHILD_RUNNING;
    VS_INFO("serve", "%s: started pid %d (start #%u)", c->name, c->pid, c->starts);
}

static void kill_timer_cb(uv_timer_t *t)
{
    struct child *c = t->data;
    if (c->proc) {
        VS_WARN("serve", "%s (pid %d) did not stop in time: SIGKILL", c->name, c->pid);
        uv_process_kill(c->proc, SIGKILL);
    }
}

/* Asks a child to stop; its exit_cb finishes the job. */
static void child_stop(struct child *c, uint64_t timeout_ms)
{
    if (c->state == CHILD_RUNNING) {
        c->state = CHILD_STOPPING;
        uv_process_kill(c->proc, SIGTERM);
        uv_timer_start(&c->timer, kill_timer_cb, timeout_ms, 0);
    } else if (c->state == CHILD_BACKOFF || c->state == CHILD_IDLE) {
        uv_timer_stop(&c->timer);
        c->state = CHILD_IDLE;
        if (c->remove_after_exit) {
            unlink_child(c);
            uv_close((uv_handle_t *)&c->timer, free_child_cb);
        }
    }
}

static struct child *find_child(struct vs_supervisor *s, const char *name)
{
    for (struct child *c = s->children; c; c = c->next)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

static int build_env(struct vs_supervisor *s)
{
    size_t n = 0;
    while (environ[n])
        n++;
    s->env = calloc(n + 2, sizeof(char *));
    if (!s->env)
        return -ENOMEM;
    size_t j = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "VSTOR_SUPERVISOR_PID=", 21) != 0)
            s->env[j++] = environ[i];
    static char pid_var[48];
    snprintf(pid_var, sizeof(pid_var), "VSTOR_SUPERVISOR_PID=%d", (int)getpid());
    s->env[j] = pid_var;
    return 0;
}

int vs_supervisor_create(uv_loop_t *loop, const struct vs_supervisor_opts *opts,
                         struct vs_supervisor **out)
{
    struct vs_supervisor *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opts = *opts;
    if (s->opts.backoff_initial_ms == 0)
        s->opts.backoff_initial_ms = 1;
    if (s->opts.backoff_max_ms < s->opts.backoff_initial_ms)
        s->opts.backoff_max_ms = s->opts.backoff_initial_ms;
    int rc = build_env(s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int add_child(struct vs_supervisor *s, const struct vs_child_spec *spec)
{
    struct child *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    if (copy_argv(c->argv, spec->argv) < 0) {
        free(c);
        return -ENOMEM;
    }
    c->sup = s;
    snprintf(c->name, sizeof(c->name), "%s", spec->name);
    c->last_exit_status = -1;
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->next = s->children;
    s->children = c;
    child_start(c);
    return 0;
}

static void update_child(struct child *c, const struct vs_child_spec *spec)
{
    c->remove_after_exit = false;
    if (argv_equal(c->argv, spec->argv))
        return;
    char *fresh[VS_CHILD_ARGV_MAX + 1];
    if (copy_argv(fresh, spec->argv) < 0) {
        VS_ERROR("serve", "%s: out of memory applying new arguments", c->name);
        return;
    }
    free_argv(c->argv);
    memcpy(c->argv, fresh, sizeof(fresh));
    VS_INFO("serve", "%s: arguments changed, restarting", c->name);
    if (c->state == CHILD_RUNNING) {
        c->respawn_after_exit = true;
        child_stop(c, c->sup->stop_timeout_ms ? c->sup->stop_timeout_ms : 30000);
    } else if (c->state == CHILD_BACKOFF || c->state == CHILD_IDLE) {
        uv_timer_stop(&c->timer);
        child_start(c);
    } else {
        c->respawn_after_exit = true;
    }
}

int vs_supervisor_apply(struct vs_supervisor *s, const struct vs_child_spec *specs, unsigned n)
{
    if (s->stopping)
        return -ESHUTDOWN;
    for (struct child *c = s->children; c; c = c->next)
        c->remove_after_exit = true;
    for (unsigned i = 0; i < n; i++) {
        struct child *c = find_child(s, specs[i].name);
        if (c) {
            update_child(c, &specs[i]);
            continue;
        }
        int rc = add_child(s, &specs[i]);
        if (rc < 0)
            return rc;
    }
    for (struct child *c = s->children, *next; c; c = next) {
        next = c->next;
        if (c->remove_after_exit) {
            VS_INFO("serve", "%s: no longer configured, stopping", c->name);
            child_stop(c, 30000);
        }
    }
    return 0;
}

void vs_supervisor_stop_all(struct vs_supervisor *s, uint64_t timeout_ms,
                            void (*done)(void *ctx), void *ctx)
{
    s->stopping = true;
    s->stop_timeout_ms = timeout_ms;
    s->stop_done = done;
    s->stop_ctx = ctx;
    for (struct child *c = s->children; c; c = c->next) {
        c->respawn_after_exit = false;
        child_stop(c, timeout_ms);
    }
    check_stop_done(s);
}

unsigned vs_supervisor_count(const struct vs_supervisor *s)
{
    unsigned n = 0;
    for (const struct child *c = s->children; c; c = c->next)
        n++;
    return n;
}

bool vs_supervisor_info(const struct vs_supervisor *s, unsigned i, struct vs_child_info *out)
{
    const struct child *c = s->children;
    while (c && i--)
        c = c->next;
    if (!c)
        return false;
    *out = (struct vs_child_info){
        .name = c->name,
        .pid = c->pid,
        .starts = c->starts,
        .last_exit_status = c->last_exit_status,
        .last_term_signal = c->last_term_signal,
        .next_delay_ms = c->state == CHILD_BACKOFF ? c->delay_ms : 0,
    };
    return true;
}

void vs_supervisor_close(struct vs_supervisor *s)
{
    while (s->children) {
        struct child *c = s->children;
        VS_ASSERTF(c->proc == NULL, "child %s still running", c->name);
        s->children = c->next;
        uv_close((uv_handle_t *)&c->timer, free_child_cb);
    }
    free(s->env);
    free(s);
}
