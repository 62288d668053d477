/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_bench.h -- `vstor meta bench`: the same workloads against vstor's
 * metadata service (meta_bench_vstor.c, through the client library) and
 * against etcd 3.4 (meta_bench_etcd.c, through its JSON gateway with
 * keep-alive HTTP/1.1 connections), so both are measured in one run on the
 * same machine. Everything runs on one libuv loop.
 */
#ifndef VSTOR_META_BENCH_H
#define VSTOR_META_BENCH_H

#include "vs_raft.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Completion of one op: status 0 or negative; for a get the value (NULL when
 * the key does not exist); for a cas whether it swapped. */
typedef void (*bench_done_fn)(void *arg, int status, const uint8_t *value, size_t value_len,
                              bool swapped);
/* A watch event for key. */
typedef void (*bench_event_fn)(void *arg, const uint8_t *key, size_t key_len);

struct bench_log_counters {
    uint64_t entries, bytes, leader, term;
};

struct bench_target_ops {
    const char *name;
    /* n_clients independent clients (connections) on loop. */
    int (*open)(uv_loop_t *loop, const char *const *endpoints, unsigned n_endpoints,
                unsigned n_clients, unsigned timeout_ms, void **t);
    int (*put)(void *t, unsigned client, const char *key, const void *value, size_t len,
               bench_done_fn cb, void *arg);
    int (*get)(void *t, unsigned client, const char *key, bench_done_fn cb, void *arg);
    /* Swaps key from expect (NULL: absent) to value. */
    int (*cas)(void *t, unsigned client, const char *key, const void *expect, size_t expect_len,
               const void *value, size_t len, bench_done_fn cb, void *arg);
    int (*watch)(void *t, const char *prefix, bench_event_fn cb, void *arg);
    /* A statistics report: the leader's memory only (vs_meta_volatile_put). */
    int (*volatile_put)(void *t, unsigned client, const char *key, const void *value,
                        size_t len, bench_done_fn cb, void *arg);
    /* The leader's log counters (entries, bytes written since it started),
     * with its id and term: counters of two leaders do not subtract. */
    int (*log_counters)(void *t, void (*cb)(void *arg, int status,
                                            const struct bench_log_counters *c),
                        void *arg);
    /* A lease of ttl_ms for client (cb gets its id), and one keepalive of
     * it (vstor only: NULL for etcd). */
    int (*lease_grant)(void *t, unsigned client, uint64_t ttl_ms,
                       void (*cb)(void *arg, int status, uint64_t id), void *arg);
    int (*lease_keepalive)(void *t, unsigned client, uint64_t id, bench_done_fn cb, void *arg);
    /* Closes everything; cb from the loop when done. */
    void (*close)(void *t, void (*cb)(void *arg), void *arg);
};

extern const struct bench_target_ops bench_vstor_ops;
extern const struct bench_target_ops bench_etcd_ops;

#endif /* VSTOR_META_BENCH_H */
