/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * fake_osd.h -- an in-process OSD for libvstor's unit tests, built on the real
 * messenger (vs_net_handle): it serves client READ, WRITE, SYNC and DELETE
 * from memory, and the test scripts its faults: fail the next N requests of
 * an opcode with any code (the retryable ones included), hold replies,
 * restart (every connection drops; in lazy mode every write not yet synced
 * is lost, as on a real OSD that crashed), and log every request it served.
 */
#ifndef VSTOR_CLIENT_FAKE_OSD_H
#define VSTOR_CLIENT_FAKE_OSD_H

#include "net.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#define FAKE_OSD_LOG_MAX 8192
#define FAKE_OSD_HELD_MAX 1024

struct fake_obj {
    uint64_t inode, stripe;
    uint8_t *data;    /* what reads see */
    uint8_t *durable; /* what survives a restart */
};

struct fake_osd_log {
    uint16_t opcode;
    uint64_t inode, offset;
    uint32_t len;
    int rc;
};

struct fake_osd {
    uint32_t id;
    uv_loop_t *loop;
    struct vs_net *net;
    uint16_t port;
    uint64_t cluster_id;
    uint32_t obj_size;
    bool lazy;            /* writes are durable only after SYNC */
    struct fake_obj *objs;
    unsigned n_objs, cap_objs;
    /* Faults. */
    int fail_rc[VS_NET_OP_LIMIT];
    unsigned fail_count[VS_NET_OP_LIMIT];
    bool hold;            /* keep replies until fake_osd_release() */
    struct vs_net_req *held[FAKE_OSD_HELD_MAX];
    unsigned n_held;
    /* What it served. */
    struct fake_osd_log log[FAKE_OSD_LOG_MAX];
    unsigned n_log;
    unsigned restarts;
    bool restarting;
    bool stopped;
};

/* Starts serving on 127.0.0.1 (port 0 picks one; restarts keep it). */
void fake_osd_start(struct fake_osd *o, uv_loop_t *loop, uint32_t id, uint64_t cluster_id,
                    uint32_t obj_size, bool lazy);
/* Drops every connection and comes back on the same port (asynchronously:
 * run the loop until o->restarting is false). Lazy: unsynced data is lost. */
void fake_osd_restart(struct fake_osd *o);
/* Stops for good (run the loop until o->stopped). */
void fake_osd_stop(struct fake_osd *o);
void fake_osd_free(struct fake_osd *o);
/* The next count requests of opcode fail with rc. */
void fake_osd_fail(struct fake_osd *o, uint16_t opcode, int rc, unsigned count);
void fake_osd_release(struct fake_osd *o);
/* Copies what reads would return for [offset, offset + len) of inode. */
void fake_osd_peek(const struct fake_osd *o, uint64_t inode, uint64_t offset, uint32_t len,
                   uint8_t *out);
unsigned fake_osd_count(const struct fake_osd *o, uint16_t opcode);

#endif
