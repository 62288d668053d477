/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * mon_tasks.c -- the leader-only monitor tasks, in start order (mon.h). A new
 * piece of monitor logic adds its file and one row here.
 */
#include "mon.h"
#include "monitor.h"

#include <errno.h>

/* The monitor (monitor.h) exists for the whole process; leadership only
 * starts and stops it. */
static int monitor_start(struct vs_mon *m, void **state)
{
    if (!m->monitor)
        return -ENODEV;
    vs_monitor_leader_cb(m->monitor, true, m->term);
    *state = m->monitor;
    return 0;
}

static void monitor_stop(struct vs_mon *m, void *state)
{
    vs_monitor_leader_cb(state, false, m->term);
}

const struct mon_task vs_mon_tasks[] = {
    {"monitor", monitor_start, monitor_stop},
};

const unsigned vs_mon_task_count = sizeof(vs_mon_tasks) / sizeof(vs_mon_tasks[0]);
