/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fake_store.h -- a tiny in-memory model of the metadata service's key-value
 * state machine (revisions, mod/create revisions, compare-and-swap txns), so
 * the monitor's pure core can be driven without a server.
 */
#ifndef VSTOR_MON_FAKE_STORE_H
#define VSTOR_MON_FAKE_STORE_H

#include "mon/monitor.h"

#include <stdbool.h>
#include <stdint.h>

#define FS_MAX 4096

struct fs_kv {
    char *key, *value;
    uint64_t create_rev, mod_rev, version;
};

struct fake_store {
    struct fs_kv kv[FS_MAX];
    unsigned n;
    uint64_t rev;
};

void fs_init(struct fake_store *s);
void fs_free(struct fake_store *s);
void fs_put(struct fake_store *s, const char *key, const char *value);
void fs_putf(struct fake_store *s, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void fs_del(struct fake_store *s, const char *key);
const struct fs_kv *fs_get(const struct fake_store *s, const char *key);
/* Applies txn atomically at one new revision (when it changes anything);
 * returns whether the compares held. */
bool fs_txn(struct fake_store *s, const struct vs_meta_txn *txn);
/* Every key matching keys[] (prefixes end in '/'); returns the count. The
 * kvs point into the store: valid until it changes. */
unsigned fs_select(const struct fake_store *s, const char *const *keys, struct vs_meta_kv *out,
                   unsigned max);

#endif
