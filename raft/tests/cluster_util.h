/* SPDX-License-Identifier: GPL-3.0-or-later */
/* cluster_util.h -- members of a test cluster on one libuv loop (cluster_test,
 * client_test). */
#ifndef RAFT_CLUSTER_UTIL_H
#define RAFT_CLUSTER_UTIL_H

#include "vs_raft.h"

#include <stdbool.h>
#include <uv.h>

#define MAXM 5

struct member {
    struct vs_raft_server *s;
    char dir[256];
    char addr[64];
    bool leader;
    bool closed_done;
    unsigned election_timeout_ms; /* 0: 300 */
    uint64_t leader_since_ms;     /* loop time of the last on_leader(true) */
    uv_loop_t *loop;
};

struct cluster {
    uv_loop_t loop;
    struct member m[MAXM];
    struct vs_raft_member list[MAXM];
    unsigned n;
    unsigned threshold, trailing;
    bool alone; /* member 1 bootstraps alone and adds the others, which start empty */
    int port_base;
};


void member_open(struct cluster *c, unsigned i);
void run_for(struct cluster *c, unsigned ms);
typedef bool (*pred_fn)(struct cluster *c, void *arg);
bool run_until(struct cluster *c, pred_fn pred, void *arg, unsigned timeout_ms);
void member_close(struct cluster *c, unsigned i);
int leader_of(struct cluster *c);
bool has_leader(struct cluster *c, void *arg);
void cluster_init(struct cluster *c, unsigned n, const char *name);
void cluster_free(struct cluster *c);

#endif
