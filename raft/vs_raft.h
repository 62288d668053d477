/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_raft.h -- libvsraft, the embedded metadata service: canonical raft with
 * its log in SQLite and an etcd-like key-value state machine.
 * (Being built: see the raft issue.)
 */
#ifndef VS_RAFT_H
#define VS_RAFT_H

#endif /* VS_RAFT_H */
