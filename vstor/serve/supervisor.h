/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * supervisor.h -- runs a set of child processes and keeps them running: the
 * engine of `vstor serve`.
 *
 * Each child is named and has an argv. The supervisor starts every child,
 * logs how any child ended (exit status or signal, and after how long), and
 * restarts it after an exponential back-off (initial_ms, doubling up to
 * max_ms; reset once a child has run for stable_ms). vs_supervisor_apply()
 * takes a new desired set: children that are new start, children that are
 * gone are stopped, children whose argv changed are restarted. stop_all sends
 * SIGTERM to every child and SIGKILL to those still alive after a timeout.
 *
 * Runs on the caller's libuv loop thread; children are spawned with uv_spawn
 * and inherit stdout and stderr, so their log lines reach the same place as
 * the supervisor's. The environment variable VSTOR_SUPERVISOR_PID is set in
 * each child, which asks the child to die with its parent (PR_SET_PDEATHSIG).
 */
#ifndef VSTOR_SERVE_SUPERVISOR_H
#define VSTOR_SERVE_SUPERVISOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include <limits.h>

/* Names must be unique: serve names OSD children after their device path. */
#define VS_CHILD_NAME_MAX (PATH_MAX + 16)
#define VS_CHILD_ARGV_MAX 32

struct vs_child_spec {
    char name[VS_CHILD_NAME_MAX];
    const char *argv[VS_CHILD_ARGV_MAX + 1]; /* NULL-terminated; argv[0] is the program */
};

struct vs_supervisor_opts {
    uint64_t backoff_initial_ms; /* first restart delay */
    uint64_t backoff_max_ms;     /* delay cap */
    uint64_t stable_ms;          /* a child that ran this long restarts at the initial delay */
};

struct vs_supervisor;

/* Observations for tests and the status page. */
struct vs_child_info {
    const char *name;
    int pid;               /* 0 when not running */
    unsigned starts;       /* how many times it has been started */
    int last_exit_status;  /* exit code of the last run, or -1 */
    int last_term_signal;  /* signal that ended the last run, or 0 */
    uint64_t next_delay_ms; /* back-off before the next restart */
};

int vs_supervisor_create(uv_loop_t *loop, const struct vs_supervisor_opts *opts,
                         struct vs_supervisor **out);

/* Makes the running set equal to specs[0..n). Returns 0 or -errno (a child
 * that cannot be spawned is logged and retried with back-off, not an error). */
int vs_supervisor_apply(struct vs_supervisor *s, const struct vs_child_spec *specs, unsigned n);

/* Stops every child: SIGTERM now, SIGKILL after timeout_ms. done(ctx) runs on
 * the loop once all children have exited. Children are not restarted after
 * this call. */
void vs_supervisor_stop_all(struct vs_supervisor *s, uint64_t timeout_ms,
                            void (*done)(void *ctx), void *ctx);

/* Number of children and their info (valid until the next loop turn). */
unsigned vs_supervisor_count(const struct vs_supervisor *s);
bool vs_supervisor_info(const struct vs_supervisor *s, unsigned i, struct vs_child_info *out);

/* Closes the supervisor's handles; precondition: stop_all completed (or no
 * child was ever started). close_cb runs when the memory may be reused. */
void vs_supervisor_close(struct vs_supervisor *s);

#endif /* VSTOR_SERVE_SUPERVISOR_H */
