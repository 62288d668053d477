/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_lazy.c -- lazy pools (immediate_commit none/small): the dirty
 * entries kept for replay, SYNC, and the replay itself (rules L1..L3 in
 * client_int.h). Vitastor's client does the same (reference section 6,
 * "lazy-commit bookkeeping"): keep every unsynced write, replay them in
 * order when the OSD that acknowledged them drops, then sync again.
 *
 * Memory: the entry array (max_dirty_ops) and the copy area (max_dirty_bytes)
 * are allocated once, the first time a lazy write needs them. Entries are
 * appended in dispatch order and released all together when a sync
 * completes (O1/O2 make that sync cover every one of them).
 */
#include "client_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

bool client__blocked(const struct vstor_client *c)
{
    return c->replay_needed || c->replaying;
}

/* ---- Dirty entries ------------------------------------------------------------------- */

static uint64_t parts_bound(const struct vstor_client *c, uint64_t offset, uint64_t len,
                            uint32_t obj_size)
{
    uint64_t objects = (offset + len - 1) / obj_size - offset / obj_size + 1;
    if (obj_size > c->opts.net_payload_max)
        objects += len / c->opts.net_payload_max + 1;
    return objects;
}

static void dirty_alloc(struct vstor_client *c)
{
    if (c->dirty)
        return;
    c->dirty = calloc(c->opts.max_dirty_ops, sizeof(*c->dirty));
    c->dirty_buf = malloc(c->opts.max_dirty_bytes);
    VS_ASSERTF(c->dirty && c->dirty_buf, "out of memory for %" PRIu64 " bytes of unsynced writes",
               c->opts.max_dirty_bytes);
}

/* 0: op may start now (or is not lazy); -EAGAIN: a sync must run first;
 * -EINVAL: op can never fit (errmsg says why). */
int client__lazy_fits(struct vstor_client *c, const struct client_op *op)
{
    if (op->type != OP_WRITE && op->type != OP_DISCARD)
        return 0;
    uint16_t pool = (uint16_t)vs_net_inode_pool(op->img->inode);
    const struct vs_placement_pool *p = client__pool(c, pool);
    if (!p || !client__pool_lazy(c, p))
        return 0;
    uint64_t len = op->end - op->cursor;
    uint64_t parts = parts_bound(c, op->cursor, len, client__object_size(c, p));
    uint64_t bytes = op->type == OP_WRITE ? len : 0;
    if (parts > c->opts.max_dirty_ops || bytes > c->opts.max_dirty_bytes) {
        client__errmsg(c, "image %s: a write to a lazy pool may cover at most %u objects and "
                       "%" PRIu64 " bytes (max_dirty_ops, max_dirty_bytes)", op->img->name,
                       c->opts.max_dirty_ops, c->opts.max_dirty_bytes);
        return -EINVAL;
    }
    dirty_alloc(c);
    if (c->n_dirty + c->resv_ops + parts > c->opts.max_dirty_ops ||
        c->dirty_used + c->resv_bytes + bytes > c->opts.max_dirty_bytes)
        return -EAGAIN;
    return 0;
}

/* Holds room for op's entries and copies until its parts are cut. */
int client__lazy_reserve(struct vstor_client *c, struct client_op *op)
{
    int rc = client__lazy_fits(c, op);
    if (rc < 0)
        return rc;
    uint64_t len = op->end - op->cursor;
    op->resv_ops = (uint32_t)parts_bound(c, op->cursor, len, op->obj_size);
    op->resv_bytes = op->type == OP_WRITE ? len : 0;
    c->resv_ops += op->resv_ops;
    c->resv_bytes += op->resv_bytes;
    return 0;
}

/* Gives back what op reserved and did not use. */
void client__lazy_unreserve(struct vstor_client *c, struct client_op *op)
{
    VS_ASSERT(c->resv_ops >= op->resv_ops && c->resv_bytes >= op->resv_bytes);
    c->resv_ops -= op->resv_ops;
    c->resv_bytes -= op->resv_bytes;
    op->resv_ops = 0;
    op->resv_bytes = 0;
}

/* A lazy write/discard part is about to leave: keep a copy (L1). */
void client__lazy_note(struct vstor_client *c, struct client_part *p)
{
    struct client_op *op = p->op;
    VS_ASSERT(c->n_dirty < c->opts.max_dirty_ops && op->resv_ops > 0);
    op->resv_ops--;
    c->resv_ops--;
    if (p->opcode == VS_NET_OP_WRITE) {
        VS_ASSERT(op->resv_bytes >= p->len);
        op->resv_bytes -= p->len;
        c->resv_bytes -= p->len;
    }
    struct client_dirty *e = &c->dirty[c->n_dirty];
    memset(e, 0, sizeof(*e));
    e->inode = p->inode;
    e->offset = p->offset;
    e->len = p->len;
    e->discard = p->opcode == VS_NET_OP_DELETE;
    if (!e->discard) {
        VS_ASSERT(c->dirty_used + p->len <= c->opts.max_dirty_bytes);
        e->copy_off = c->dirty_used;
        memcpy(c->dirty_buf + e->copy_off, p->buf, p->len);
        c->dirty_used += p->len;
        p->buf = c->dirty_buf + e->copy_off;
    }
    p->dirty = ++c->n_dirty;
}

void client__lazy_acked(struct vstor_client *c, struct client_part *p)
{
    VS_ASSERT(p->dirty >= 1 && p->dirty <= c->n_dirty);
    struct client_dirty *e = &c->dirty[p->dirty - 1];
    struct client_osd *o = client__osd_find(c, p->osd);
    e->acked_osd = p->osd;
    e->pg = p->pg;
    e->acked_gen = o ? o->gen : 0;
}

/* ---- Sync (L3) ----------------------------------------------------------------------- */

static void sync_done(struct vstor_client *c, int rc)
{
    struct client_op *op = c->sync_op;
    VS_ASSERT(op && op->sync_osds == 0);
    c->sync_op = NULL;
    c->syncs_active--;
    op->rc = rc;
    client__complete(c, op);
    client__pump(c);
}

static bool osd_listed(const uint32_t *list, uint32_t n, uint32_t id)
{
    for (uint32_t i = 0; i < n; i++)
        if (list[i] == id)
            return true;
    return false;
}

/* Sends SYNC to every OSD that acknowledged an unsynced entry. */
void client__sync_try(struct vstor_client *c)
{
    struct client_op *op = c->sync_op;
    if (!op || op->sync_osds > 0 || client__blocked(c) || c->state != CL_READY)
        return;
    uint32_t osds[64], n = 0;
    for (uint32_t i = 0; i < c->n_dirty && n < VS_ARRAY_SIZE(osds); i++) {
        uint32_t id = c->dirty[i].acked_osd;
        if (id && !osd_listed(osds, n, id))
            osds[n++] = id;
    }
    if (n == 0) {
        c->n_dirty = 0; /* nothing acknowledged: nothing to keep */
        c->dirty_used = 0;
        sync_done(c, 0);
        return;
    }
    if (c->parts_free < n)
        return; /* the retry tick tries again */
    c->sync_retry = false;
    for (uint32_t i = 0; i < n; i++) {
        struct client_part *p = client__part_get(c);
        p->kind = PART_SYNC;
        p->opcode = VS_NET_OP_SYNC;
        p->osd = osds[i];
        op->sync_osds++;
        client__part_send(c, p);
    }
}

void client__sync_start(struct vstor_client *c, struct client_op *op)
{
    VS_ASSERT(!c->sync_op && c->syncs_active == 1);
    c->sync_op = op;
    client__sync_try(c);
}

void client__sync_part_done(struct vstor_client *c, struct client_part *p, int rc)
{
    struct client_op *op = c->sync_op;
    uint32_t osd = p->osd;
    client__part_put(c, p);
    VS_ASSERT(op && op->sync_osds > 0);
    op->sync_osds--;
    if (rc < 0 && client__retryable(rc) && c->state != CL_CLOSING) {
        VS_DEBUG_LOG(c->log_name, "SYNC to osd.%u: %s; retrying", osd, vs_strerror(rc));
        c->sync_retry = true;
    } else if (rc < 0 && op->rc == 0) {
        op->rc = rc;
    }
    if (op->sync_osds > 0)
        return;
    if (op->rc < 0 || c->state == CL_CLOSING) {
        sync_done(c, op->rc < 0 ? op->rc : -ECANCELED);
    } else if (c->sync_retry || client__blocked(c)) {
        c->retries++; /* again after the replay, or on the next tick */
    } else {
        c->n_dirty = 0; /* L1: this sync covered every entry */
        c->dirty_used = 0;
        sync_done(c, 0);
    }
}

/* Fails the sync when it is not on the wire and has expired (or always). */
void client__sync_fail(struct vstor_client *c, int rc, uint64_t now_us)
{
    struct client_op *op = c->sync_op;
    if (!op || op->sync_osds > 0)
        return;
    if (rc == -ETIMEDOUT && !client__op_expired(op, now_us))
        return;
    sync_done(c, rc);
}

/* ---- Replay (L2) --------------------------------------------------------------------- */

void client__replay_check_osd(struct vstor_client *c, uint32_t osd)
{
    for (uint32_t i = 0; i < c->n_dirty; i++) {
        if (c->dirty[i].acked_osd == osd) {
            c->replay_needed = true;
            break;
        }
    }
    client__replay_pump(c);
}

void client__replay_check_map(struct vstor_client *c)
{
    for (uint32_t i = 0; i < c->n_dirty && !c->replay_needed; i++) {
        const struct client_dirty *e = &c->dirty[i];
        uint32_t pg, primary;
        if (!e->acked_osd)
            continue;
        if (client__locate(c, e->inode, e->offset, &pg, &primary) < 0 || primary != e->acked_osd)
            c->replay_needed = true;
    }
}

static void replay_send(struct vstor_client *c)
{
    while (c->replay_next < c->n_dirty) {
        const struct client_dirty *e = &c->dirty[c->replay_next];
        if (!e->acked_osd) {
            c->replay_next++;
            continue;
        }
        struct client_part *p = client__part_get(c);
        if (!p)
            return;
        p->kind = PART_REPLAY;
        p->opcode = e->discard ? VS_NET_OP_DELETE : VS_NET_OP_WRITE;
        p->inode = e->inode;
        p->offset = e->offset;
        p->len = e->len;
        p->buf = e->discard ? NULL : c->dirty_buf + e->copy_off;
        p->dirty = ++c->replay_next;
        c->replay_active++;
        client__part_send(c, p);
    }
}

static void replay_end(struct vstor_client *c)
{
    c->replaying = false;
    if (c->replay_failed) {
        c->replay_needed = true; /* the next retry tick starts a new pass */
        return;
    }
    if (c->replay_needed)
        return; /* something else dropped meanwhile: another pass on the tick */
    c->replays++;
    VS_INFO(c->log_name, "replayed %u unsynced writes", c->n_dirty);
    client__release_held(c);
    client__sync_try(c);
    client__pump(c);
}

/* Advances the replay: starts a pass once no write is on the wire, keeps
 * sending entries, and ends the pass when every one has come back. */
void client__replay_pump(struct vstor_client *c)
{
    if (c->state != CL_READY)
        return;
    if (!c->replaying) {
        if (!c->replay_needed || c->write_parts_on_wire > 0)
            return;
        c->replaying = true;
        c->replay_needed = false;
        c->replay_failed = false;
        c->replay_next = 0;
        c->replay_active = 0;
        VS_INFO(c->log_name, "an OSD that acknowledged unsynced writes dropped or lost its PG: "
                "replaying %u writes", c->n_dirty);
    }
    replay_send(c);
    if (c->replay_next == c->n_dirty && c->replay_active == 0)
        replay_end(c);
}

void client__replay_part_done(struct vstor_client *c, struct client_part *p, int rc)
{
    struct client_dirty *e = &c->dirty[p->dirty - 1];
    if (rc == 0) {
        struct client_osd *o = client__osd_find(c, p->osd);
        e->acked_osd = p->osd;
        e->pg = p->pg;
        e->acked_gen = o ? o->gen : 0;
    } else if (!client__retryable(rc)) {
        VS_ERROR(c->log_name, "replaying a write of inode 0x%" PRIx64 " at %" PRIu64 ": %s; "
                 "dropping it", e->inode, e->offset, vs_strerror(rc));
        e->acked_osd = 0;
    } else {
        c->replay_failed = true;
    }
    client__part_put(c, p);
    VS_ASSERT(c->replay_active > 0);
    c->replay_active--;
    if (c->state == CL_CLOSING) {
        c->replaying = c->replay_active > 0;
        return;
    }
    client__replay_pump(c);
}
