/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * mon.h -- `vstor mon`: one member of the metadata service (raft/vs_raft.h)
 * plus the monitor logic that runs only on the Raft leader.
 *
 * Structure. mon_main.c owns the process: the loop, the member, signals,
 * and the leader switch. Monitor logic lives in leader-only *tasks*, one file
 * each, listed in mon_tasks.c: a task's start() runs when this member becomes
 * leader (after it applied an entry of its own term, so its reads of the
 * applied state see every committed write) and its stop() when it stops
 * being leader or the process stops. A task talks to the metadata service
 * in process: vs_raft_server_range() (synchronous reads of applied state),
 * vs_raft_server_txn() (proposals; fail with VS_ENOTLEADER once leadership
 * is gone), vs_raft_server_watch() and vs_raft_server_volatile_range().
 * Everything runs on the one loop thread.
 *
 * Tasks today: the monitor (monitor.h: placement, primaries, PG histories,
 * statistics folded at a bounded rate), created once per process and started
 * and stopped with leadership.
 */
#ifndef VSTOR_MON_H
#define VSTOR_MON_H

#include "cli.h"
#include "loop.h"
#include "vs_raft.h"

#include <stdbool.h>
#include <stdint.h>

struct vs_mon;

struct mon_task {
    const char *name;
    /* Called when this member becomes leader; *state is the task's own. */
    int (*start)(struct vs_mon *m, void **state);
    /* Called when it stops being leader, or at shutdown; frees state. */
    void (*stop)(struct vs_mon *m, void *state);
};

extern const struct mon_task vs_mon_tasks[];
extern const unsigned vs_mon_task_count;

#define VS_MON_TASKS_MAX 16

struct vs_monitor;

struct vs_mon {
    struct vs_loop loop;
    struct vs_raft_server *server;
    struct vs_monitor *monitor; /* monitor.h */
    const struct vs_config *cfg;
    uint64_t id;
    bool leader;
    uint64_t term;
    void *task_state[VS_MON_TASKS_MAX];
    bool task_running[VS_MON_TASKS_MAX];
    int exit_code;
    bool stopping;
};

/* Parses "1=10.0.0.1:4000,2=10.0.0.2:4000"; returns the count or -EINVAL
 * with a message in err. */
int vs_mon_parse_members(const char *list, struct vs_raft_member *out, unsigned max, char *err,
                         size_t err_size);

#endif /* VSTOR_MON_H */
