/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_primary.c -- client READ, WRITE, DELETE and SYNC on the primary
 * (docs/data-path.md §4, rules D7.1-D7.8).
 *
 * A write:
 *   1. is checked: the range lies inside one object, the PG is ours and
 *      ACTIVE (else VS_ENOTPRIMARY / VS_EPGINACTIVE, which clients retry);
 *   2. waits its turn in the object's queue: one write in flight per object;
 *   3. if the object is unclean, is preceded by the object's recovery, run
 *      under the write's place in the queue (recovery rides on writes);
 *   4. if it does not cover whole 4 KiB granules, reads the partial head and
 *      tail granules from the local copy first;
 *   5. gets the next version (D1, D2) from the newest local version;
 *   6. is written to the local store (stable at once) and sent as
 *      SEC_WRITE_STABLE to every other OSD of the current set, in parallel;
 *   7. is acknowledged once all of them have answered: each store answers
 *      only when the write is durable (group commit, or a sync after it on a
 *      lazy store), so the ack means "durable on every OSD of the set" --
 *      2 round trips + 1 durable write; on a lazy pool each answers when
 *      written, and the client's SYNC makes it durable.
 *   Any failure answers the client with a retryable error and, when a peer
 *   failed, re-peers the PG (D7.8): the next peering settles the object.
 *   When the local write failed but the secondaries were sent it, they may
 *   hold the new version the primary lacks: the object is fenced (no write
 *   starts on it) and the PG re-peers (at most once per OSD_REC_FAIL_MS, as
 *   after a failed recovery), so the next write never reuses that version
 *   with other bytes -- two replicas with one version and different data.
 *
 * A DELETE of a whole object writes a tombstone version on every OSD of the
 * set (§5); a DELETE of part of an object writes zeros there.
 * A READ is served from the local store while the PG holds its read lease
 * from every other OSD of the set (osd_lease.h R4; else VS_EPGINACTIVE, which
 * clients retry); an object that peering found missing or stale here is read
 * from an OSD holding its target version (a SEC_READ, checked by its lock).
 * SYNC syncs the local store and, for lazy pools, the OSDs written since the
 * last SYNC (SEC_SYNC). With store_lazy_sync off every acknowledged write is
 * already durable and those syncs find nothing to do; with it on, writes of
 * pools that commit immediately are synced before their ack (D7.7).
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

enum { PH_NONE, PH_RECOVER, PH_RMW_HEAD, PH_RMW_TAIL, PH_WRITE, PH_READ, PH_SYNC, PH_SYNC_MORE };

void osd__recovery_inline(struct osd_op *parent, uint32_t uidx); /* osd_recovery.c */

/* ---- Ops ------------------------------------------------------------------------ */

struct osd_op *osd__op_get(struct vs_osd *osd, bool recovery)
{
    struct osd_op **list = recovery ? &osd->rec_free : &osd->op_free;
    struct osd_op *op = *list;
    if (!op)
        return NULL;
    *list = op->next;
    op->next = NULL;
    op->pg = NULL;
    op->req = NULL;
    op->phase = PH_NONE;
    op->rc = 0;
    op->pending = 0;
    op->nsub = 0;
    op->in_queue = op->pg_ref = false;
    op->start_ns = vs_clock_mono_ns();
    osd->ops_started++;
    if (recovery)
        osd->recs_used++;
    else
        osd->ops_used++;
    return op;
}

void osd__op_put(struct vs_osd *osd, struct osd_op *op)
{
    VS_ASSERT(!op->in_queue && !op->pg_ref && op->pending == 0);
    bool recovery = op >= osd->ops + osd->op_count;
    struct osd_op **list = recovery ? &osd->rec_free : &osd->op_free;
    op->next = *list;
    *list = op;
    if (recovery)
        osd->recs_used--;
    else
        osd->ops_used--;
}

void osd__op_pg_ref(struct osd_op *op, struct osd_pg *pg)
{
    op->pg = pg;
    op->pg_ref = true;
    pg->inflight++;
}

void osd__op_pg_unref(struct osd_op *op)
{
    if (!op->pg_ref)
        return;
    op->pg_ref = false;
    osd__pg_op_done(op->pg);
}

static enum osd_stat stat_of(const struct osd_op *op)
{
    switch (op->kind) {
    case OP_READ:
        return ST_READ;
    case OP_DELETE:
        return ST_DELETE;
    case OP_SYNC:
        return ST_SYNC;
    default:
        return ST_WRITE;
    }
}

/* Replies to the client; the op itself is returned in done(), once the
 * reply (which may point into op->buf) has left. */
static void reply(struct osd_op *op, int rc)
{
    struct vs_net_req *req = op->req;
    if (rc < 0) {
        req->rep_meta = req->rep_data = NULL;
        req->rep_meta_len = req->rep_data_len = 0;
    } else {
        osd__stat_add(op->osd, stat_of(op), op->inode, op->kind == OP_DELETE ? 0 : op->len,
                      op->start_ns);
    }
    req->rep.retval = rc < 0 ? rc : 0;
    osd__op_pg_unref(op);
    vs_net_reply(req);
}

/* ---- The object queue -------------------------------------------------------------- */

static void write_start(struct osd_op *op);

/* The op at the head of its object's queue finished: the next one starts. */
void osd__op_start_next(struct vs_osd *osd, struct osd_op *op)
{
    if (!op->in_queue)
        return;
    op->in_queue = false;
    struct vs_objq_link *next = vs_objq_pop(&osd->objq, op->inode, op->stripe);
    if (!next)
        return;
    struct osd_op *n = VS_CONTAINER_OF(next, struct osd_op, qlink);
    if (n->kind == OP_RECOVER)
        osd__recovery_queued_start(n);
    else
        write_start(n);
}

static void write_finish(struct osd_op *op, int rc)
{
    struct vs_osd *osd = op->osd;
    reply(op, rc);
    osd__op_start_next(osd, op);
}

/* ---- Locating the request ------------------------------------------------------------ */

static int locate(struct vs_osd *osd, struct osd_op *op, const struct vs_net_rw *rw)
{
    uint64_t stripe;
    uint32_t pgnum;
    if (osd->store_failed)
        return VS_ESHUTDOWN; /* F1 (osd_fault.c): stopping; the client retries */
    if (osd__locate(osd, rw->inode, rw->offset, &stripe, &pgnum) < 0)
        return VS_ENOTPRIMARY; /* a pool or map we do not know (yet) */
    struct osd_pg *pg = osd__pg_find(osd, (uint16_t)vs_net_inode_pool(rw->inode), pgnum);
    if (!pg || pg->stop_wanted)
        return VS_ENOTPRIMARY;
    if (pg->state != VS_PG_ACTIVE)
        return VS_EPGINACTIVE;
    uint64_t off = rw->offset - stripe;
    if (off + rw->len > pg->obj_size)
        return -EINVAL; /* clients split at object boundaries */
    op->inode = rw->inode;
    op->stripe = stripe;
    op->offset = (uint32_t)off;
    op->len = rw->len;
    op->aoff = op->offset & ~(VS_STORE_ALIGN - 1);
    uint64_t end = ((uint64_t)op->offset + op->len + VS_STORE_ALIGN - 1) &
                   ~(uint64_t)(VS_STORE_ALIGN - 1);
    op->alen = (uint32_t)(end - op->aoff);
    osd__op_pg_ref(op, pg);
    return 0;
}

/* ---- Sub-ops to the other OSDs of the set ----------------------------------------------- */

static void part_done(struct osd_op *op, int rc);

static void sub_cb(struct vs_net_op *nop, int rc)
{
    struct osd_subop *s = VS_CONTAINER_OF(nop, struct osd_subop, net);
    struct osd_op *op = s->op;
    if (rc == -ENOENT && op->kind == OP_DELETE)
        rc = 0; /* nothing to delete there */
    if (rc == -ENOSPC && op->kind == OP_DELETE)
        osd__pg_tomb_check(op->pg, rc); /* its tombstone slots ran out: purge (§5) */
    if (rc < 0) {
        VS_WARN(OSD_LOG, "pg %s: %s of %" PRIx64 ":%" PRIx64 " to osd.%u: %s", op->pg->name,
                vs_net_op_name(nop->req.opcode), op->inode, op->stripe, s->osd,
                vs_strerror(rc));
        osd__pg_repeer(op->pg, "a secondary write failed");
        rc = VS_EPGINACTIVE;
    }
    part_done(op, rc);
}

/* Sends opcode to every OSD of the current set but us; returns the count. */
static uint32_t send_subs(struct osd_op *op, uint16_t opcode)
{
    struct osd_pg *pg = op->pg;
    uint32_t n = 0;
    for (uint32_t i = 0; i < pg->pg_size; i++) {
        if (!pg->cur[i] || pg->cur[i] == op->osd->id)
            continue;
        VS_ASSERT(n < OSD_SUBOPS);
        struct osd_subop *s = &op->sub[n++];
        memset(&s->net, 0, sizeof(s->net));
        s->op = op;
        s->osd = pg->cur[i];
        s->net.req.opcode = opcode;
        s->net.req.req.sec = (struct vs_net_sec){.inode = op->inode, .stripe = op->stripe,
                                                 .version = op->version};
        if (opcode == VS_NET_OP_SEC_WRITE_STABLE) {
            s->net.req.req.sec.offset = op->aoff;
            s->net.req.req.sec.len = op->alen;
            s->net.req.data_len = op->alen;
            s->net.data = op->buf;
        }
        s->net.cb = sub_cb;
        op->pending++;
        int rc = pg->cur_conn[i] ? vs_net_send(pg->cur_conn[i], &s->net) : -ENOTCONN;
        if (rc < 0) {
            op->pending--;
            n--;
            op->rc = VS_EPGINACTIVE;
            osd__pg_repeer(pg, "a peer connection is gone");
        }
    }
    return n;
}

/* ---- Write ---------------------------------------------------------------------------------- */

static void part_done(struct osd_op *op, int rc)
{
    VS_ASSERT(op->pending > 0);
    if (rc < 0 && op->rc == 0)
        op->rc = rc;
    if (--op->pending)
        return;
    if (op->rc == 0 && op->pg->lazy)
        for (uint32_t i = 0; i < op->pg->pg_size; i++)
            op->pg->dirty[i] |= op->pg->cur[i] != 0;
    op->req->rep.version = op->rc == 0 ? op->version : 0;
    write_finish(op, op->rc);
}

static bool fenced(const struct osd_pg *pg, uint64_t inode, uint64_t stripe)
{
    for (uint32_t i = 0; i < pg->nfence; i++)
        if (pg->fence[i].inode == inode && pg->fence[i].stripe == stripe)
            return true;
    return false;
}

/* The local write of op failed after its secondaries were sent it. */
static void fence(struct osd_op *op)
{
    struct osd_pg *pg = op->pg;
    VS_WARN(OSD_LOG, "pg %s: object %" PRIx64 ":%" PRIx64 " v%" PRIx64 " failed here but was "
            "sent to %u secondaries: no write to it until the PG re-peers", pg->name,
            op->inode, op->stripe, op->version, op->nsub);
    if (pg->nfence == OSD_FENCE_MAX)
        return osd__pg_repeer(pg, "too many objects fenced");
    if (!fenced(pg, op->inode, op->stripe))
        pg->fence[pg->nfence++] = (struct vs_store_oid){op->inode, op->stripe};
    osd__pg_recovery_failed(pg);
}

static void local_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    int rc = sop->result;
    if (rc == -ENOENT && op->kind == OP_DELETE)
        rc = 0;
    if (op->kind == OP_DELETE && !op->synced)
        osd__pg_tomb_check(op->pg, rc); /* slots running low: purge (§5) */
    if (rc >= 0 && osd__local_sync(op))
        return;
    if (rc < 0 && op->nsub > 0 && op->pg->state == VS_PG_ACTIVE && op->gen == op->pg->gen)
        fence(op);
    if (rc < 0)
        VS_ERROR(OSD_LOG, "pg %s: local %s of %" PRIx64 ":%" PRIx64 " v%" PRIx64 ": %s",
                 op->pg->name, op->kind == OP_DELETE ? "delete" : "write", op->inode,
                 op->stripe, op->version, vs_strerror(rc));
    part_done(op, rc < 0 ? rc : 0);
}

bool osd__local_sync(struct osd_op *op)
{
    if (op->synced || !osd__sync_after(op->osd, op->inode))
        return false;
    op->synced = true;
    vs_store_cb cb = op->sop.cb;
    memset(&op->sop, 0, sizeof(op->sop));
    op->sop.cb = cb;
    int rc = vs_store_sync(op->osd->store, &op->sop);
    if (rc < 0) {
        op->sop.result = rc;
        cb(&op->sop);
    }
    return true;
}

static void local_cb_err(struct osd_op *op, int rc)
{
    op->sop.result = rc; /* the store refused it: no callback will come */
    local_cb(&op->sop);
}

static bool whole_object(const struct osd_op *op)
{
    return op->offset == 0 && op->len == op->pg->obj_size;
}

/* Only the recovery reserve of tombstone slots is left here: a delete
 * would fail locally after its secondaries took it (a fence). It fails
 * first, retryably, and the PG purges its tombstones (§5). */
static bool tomb_slots_out(struct osd_op *op)
{
    if (!osd__tomb_reserve_hit(op->osd))
        return false;
    osd__pg_tomb_check(op->pg, -ENOSPC);
    return true;
}

static void write_issue(struct osd_op *op)
{
    struct vs_osd *osd = op->osd;
    struct osd_pg *pg = op->pg;
    uint64_t cur = 0;
    bool deleted = false;
    (void)vs_store_newest(osd->store, (struct vs_store_oid){op->inode, op->stripe}, &cur,
                          &deleted);
    if (op->kind == OP_DELETE && whole_object(op) && (cur == 0 || deleted))
        return write_finish(op, 0); /* already gone everywhere: the object is clean */
    int rc = vs_osd_next_version(cur, pg->epoch, &op->version);
    if (rc < 0) {
        VS_WARN(OSD_LOG, "pg %s: object %" PRIx64 ":%" PRIx64 " v%" PRIx64 ": %s: bumping "
                "the epoch", pg->name, op->inode, op->stripe, cur, vs_strerror(rc));
        pg->force_bump = true;
        osd__pg_repeer(pg, "a version counter is exhausted");
        return write_finish(op, VS_EPGINACTIVE);
    }
    bool tomb = op->kind == OP_DELETE && whole_object(op);
    if (tomb && tomb_slots_out(op))
        return write_finish(op, -ENOSPC); /* before any secondary has it: no fence */
    op->phase = PH_WRITE;
    op->synced = false;
    op->pending = 1; /* the local part, and a guard while the subs go out */
    op->nsub = send_subs(op, tomb ? VS_NET_OP_SEC_DELETE : VS_NET_OP_SEC_WRITE_STABLE);
    struct vs_store_op *sop = &op->sop;
    memset(sop, 0, sizeof(*sop));
    sop->oid = (struct vs_store_oid){op->inode, op->stripe};
    sop->version = op->version;
    sop->cb = local_cb;
    if (op->rc < 0)
        return part_done(op, op->rc); /* a sub could not even be sent */
    if (VS_UNLIKELY(osd->fault_enospc)) {
        rc = -ENOSPC; /* the test-only hook (osd_fault.c) */
    } else if (tomb) {
        rc = vs_store_delete(osd->store, sop);
    } else {
        sop->offset = op->aoff;
        sop->len = op->alen;
        sop->flags = VS_STORE_STABLE;
        sop->buf = op->buf;
        rc = vs_store_write(osd->store, sop);
    }
    if (rc < 0)
        local_cb_err(op, rc);
}

/* ---- Unaligned writes: read the partial granules first ---------------------------------- */

static void rmw_next(struct osd_op *op);

static void rmw_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    uint8_t *g = op->head_buf, *buf = op->buf;
    if (sop->result == -ENOENT)
        memset(g, 0, VS_STORE_ALIGN); /* never written: zeros */
    else if (sop->result < 0)
        return write_finish(op, sop->result == VS_ECHECKSUM ? -EIO : sop->result);
    uint32_t gstart = sop->offset - op->aoff; /* granule position in buf */
    uint32_t head = op->offset - op->aoff, end = head + op->len;
    /* Keep the client's bytes; take the rest of the granule from the store. */
    for (uint32_t i = 0; i < VS_STORE_ALIGN; i++)
        if (gstart + i < head || gstart + i >= end)
            buf[gstart + i] = g[i];
    rmw_next(op);
}

static void rmw_read(struct osd_op *op, uint32_t obj_off)
{
    struct vs_store_op *sop = &op->sop;
    memset(sop, 0, sizeof(*sop));
    sop->oid = (struct vs_store_oid){op->inode, op->stripe};
    sop->version = VS_STORE_READ_LATEST;
    sop->offset = obj_off;
    sop->len = VS_STORE_ALIGN;
    sop->buf = op->head_buf;
    sop->cb = rmw_cb;
    int rc = vs_store_read(op->osd->store, sop);
    if (rc < 0) {
        sop->result = rc;
        rmw_cb(sop);
    }
}

static void rmw_next(struct osd_op *op)
{
    uint32_t head = op->offset - op->aoff, end = head + op->len;
    bool head_partial = head != 0;
    bool tail_partial = end % VS_STORE_ALIGN != 0;
    uint32_t last = op->aoff + op->alen - VS_STORE_ALIGN;
    if (op->phase == PH_NONE || op->phase == PH_RECOVER) {
        op->phase = PH_RMW_HEAD;
        if (head_partial)
            return rmw_read(op, op->aoff);
    }
    if (op->phase == PH_RMW_HEAD) {
        op->phase = PH_RMW_TAIL;
        if (tail_partial && (!head_partial || last != op->aoff))
            return rmw_read(op, last);
    }
    write_issue(op);
}

/* ---- Starting a write (the head of its object's queue) ------------------------------------ */

/* Called when the object is known clean: recovered, or never unclean. */
void osd__op_object_ready(struct osd_op *op, int rc)
{
    if (rc < 0)
        return write_finish(op, rc);
    rmw_next(op);
}

static void write_start(struct osd_op *op)
{
    struct osd_pg *pg = op->pg;
    if (pg->state != VS_PG_ACTIVE || op->gen != pg->gen ||
        (pg->nfence && fenced(pg, op->inode, op->stripe)))
        return write_finish(op, VS_EPGINACTIVE);
    uint32_t uidx;
    struct osd_unclean *u = osd__pg_unclean(pg, op->inode, op->stripe, &uidx);
    if (u) {
        op->phase = PH_RECOVER;
        return osd__recovery_inline(op, uidx); /* calls osd__op_object_ready */
    }
    rmw_next(op);
}

static void write_enqueue(struct osd_op *op)
{
    struct vs_osd *osd = op->osd;
    op->gen = op->pg->gen;
    op->in_queue = true;
    if (vs_objq_push(&osd->objq, op->inode, op->stripe, &op->qlink))
        write_start(op);
}

/* ---- Read ------------------------------------------------------------------------------ */

static void read_done(struct osd_op *op, int rc)
{
    struct vs_net_req *req = op->req;
    struct vs_osd *osd = op->osd;
    if (rc == -ENOENT) { /* never written, or deleted: zeros */
        memset(op->buf, 0, op->alen);
        memset(op->bitmap, 0, osd->bitmap_bytes);
        op->version = 0;
        rc = 0;
    }
    if (rc == VS_ECHECKSUM)
        rc = -EIO;
    if (rc == 0) {
        req->rep.version = op->version;
        req->rep_meta = op->bitmap;
        req->rep_meta_len = osd->bitmap_bytes;
        req->rep_data = (uint8_t *)op->buf + (op->offset - op->aoff);
        req->rep_data_len = op->len;
    }
    reply(op, rc);
}

static void read_local_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    op->version = sop->out_version;
    if (sop->result < 0 && sop->result != -ENOENT)
        VS_WARN(OSD_LOG, "pg %s: read of %" PRIx64 ":%" PRIx64 ": %s", op->pg->name, op->inode,
                op->stripe, vs_strerror(sop->result));
    read_done(op, sop->result < 0 ? sop->result : 0);
}

static void read_remote_cb(struct vs_net_op *nop, int rc)
{
    struct osd_subop *s = VS_CONTAINER_OF(nop, struct osd_subop, net);
    struct osd_op *op = s->op;
    op->pending--;
    if (rc < 0 && rc != -ENOENT) {
        VS_WARN(OSD_LOG, "pg %s: read of %" PRIx64 ":%" PRIx64 " from osd.%u: %s",
                op->pg->name, op->inode, op->stripe, s->osd, vs_strerror(rc));
        rc = VS_EPGINACTIVE;
        osd__pg_repeer(op->pg, "a peer read failed");
    }
    op->version = rc == 0 ? nop->reply.rep.version : 0;
    read_done(op, rc);
}

/* The object is unclean and we lack its target version: read it where it is. */
static bool read_remote(struct osd_op *op, uint32_t uidx)
{
    struct osd_pg *pg = op->pg;
    const struct vs_unclean_obj *u = &pg->calc.objs[uidx];
    if (u->target_deleted || u->target_version == 0) {
        read_done(op, -ENOENT);
        return true;
    }
    for (uint32_t i = 0; i < u->loc_count; i++) {
        const struct vs_obj_loc *l = &pg->calc.locs[u->loc_first + i];
        if (l->outdated)
            continue;
        if (l->osd == op->osd->id)
            return false; /* we hold it: read locally */
        struct osd_peer *p = osd__peer(op->osd, l->osd);
        if (!p || !p->conn_up)
            continue;
        struct osd_subop *s = &op->sub[0];
        memset(&s->net, 0, sizeof(s->net));
        s->op = op;
        s->osd = l->osd;
        s->net.req.opcode = VS_NET_OP_SEC_READ;
        s->net.req.req.sec = (struct vs_net_sec){.inode = op->inode, .stripe = op->stripe,
                                                 .version = u->target_version,
                                                 .offset = op->aoff, .len = op->alen,
                                                 .selector = VS_NET_SEL_EXACT};
        s->net.reply_data = op->buf;
        s->net.reply_data_cap = op->alen;
        s->net.reply_meta = op->bitmap;
        s->net.reply_meta_cap = op->osd->bitmap_bytes;
        s->net.cb = read_remote_cb;
        if (vs_net_send(p->conn, &s->net) == 0) {
            op->pending++;
            return true;
        }
    }
    read_done(op, VS_EPGINACTIVE); /* nowhere to read it now: the client retries */
    return true;
}

/* R4 (osd_lease.h): a local read needs a valid read lease from every other
 * OSD of the current set. One clock read and a compare per member. */
static bool read_lease_valid(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    uint64_t now = 0;
    for (uint32_t i = 0; i < pg->pg_size; i++) {
        if (!pg->cur[i] || pg->cur[i] == osd->id)
            continue;
        if (!now)
            now = osd__now_ms();
        struct vs_net_conn *c = pg->cur_conn[i];
        if (!c || !vs_read_lease_valid(vs_net_conn_acked_ms(c), osd->lease_ms, now)) {
            VS_DEBUG_LOG(OSD_LOG, "pg %s: no read lease from osd.%u: read refused", pg->name,
                         pg->cur[i]);
            return false;
        }
    }
    return true;
}

static void read_start(struct osd_op *op)
{
    uint32_t uidx;
    if (osd__pg_unclean(op->pg, op->inode, op->stripe, &uidx) && read_remote(op, uidx))
        return;
    if (!read_lease_valid(op->pg)) {
        op->osd->lease_refused++;
        return read_done(op, VS_EPGINACTIVE); /* the client retries */
    }
    struct vs_store_op *sop = &op->sop;
    memset(sop, 0, sizeof(*sop));
    sop->oid = (struct vs_store_oid){op->inode, op->stripe};
    sop->version = VS_STORE_READ_LATEST;
    sop->offset = op->aoff;
    sop->len = op->alen;
    sop->buf = op->buf;
    sop->bitmap = op->bitmap;
    sop->cb = read_local_cb;
    int rc = vs_store_read(op->osd->store, sop);
    if (rc < 0)
        read_done(op, rc);
}

/* ---- SYNC ------------------------------------------------------------------------------- */

/* Lazy pools: a SYNC syncs the local store and sends SEC_SYNC to every OSD
 * that a write of one of our PGs reached since the last SYNC (pg->dirty), at
 * most OSD_SUBOPS of them per round; it succeeds when all succeed. A failed
 * SEC_SYNC re-peers the PGs holding that OSD, puts it back in their dirty
 * marks and fails the SYNC with a retryable error. A PG that is not active
 * while it has dirty marks fails the SYNC (retryable) and keeps them: its
 * acknowledged writes are durable nowhere known yet, and its activation
 * marks every member of its new set dirty, so the SYNC the client retries
 * syncs them -- a SYNC never succeeds past a secondary whose sync failed. */
static void sync_start(struct osd_op *op);

static void sync_part_done(struct osd_op *op)
{
    VS_ASSERT(op->pending > 0);
    if (--op->pending)
        return;
    if (op->rc < 0)
        return reply(op, op->rc);
    if (op->phase == PH_SYNC_MORE)
        return sync_start(op);
    reply(op, 0);
}

static void sync_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    if (sop->result < 0 && op->rc == 0)
        op->rc = sop->result;
    sync_part_done(op);
}

static void sync_failed(struct osd_op *op, uint32_t peer, int rc)
{
    VS_WARN(OSD_LOG, "SEC_SYNC to osd.%u: %s", peer, vs_strerror(rc));
    struct vs_osd *osd = op->osd;
    for (uint32_t h = 0; h < osd->pg_hash_size; h++)
        for (struct osd_pg *pg = osd->pg_hash[h]; pg; pg = pg->hnext)
            for (uint32_t i = 0; i < pg->pg_size; i++)
                /* A PG already re-peering has no current set: its target names the
                 * members its SEC_SYNCs went to. */
                if (pg->cur[i] == peer ||
                    (pg->state != VS_PG_ACTIVE && pg->target[i] == peer)) {
                    pg->dirty[i] = pg->lazy;
                    osd__pg_repeer(pg, "a secondary sync failed");
                    break;
                }
    if (op->rc == 0)
        op->rc = VS_EPGINACTIVE;
}

static void sync_sub_cb(struct vs_net_op *nop, int rc)
{
    struct osd_subop *s = VS_CONTAINER_OF(nop, struct osd_subop, net);
    if (rc < 0)
        sync_failed(s->op, s->osd, rc);
    sync_part_done(s->op);
}

/* Takes the dirty members of pg into op->sub (one entry per OSD). */
static void sync_collect_pg(struct osd_op *op, struct osd_pg *pg)
{
    if (pg->state != VS_PG_ACTIVE) {
        for (uint32_t i = 0; i < pg->pg_size; i++)
            if (pg->dirty[i] && op->rc == 0)
                op->rc = VS_EPGINACTIVE; /* keeps the marks: see above */
        return;
    }
    for (uint32_t i = 0; i < pg->pg_size; i++) {
        uint32_t id = pg->cur[i];
        if (!pg->dirty[i])
            continue;
        uint32_t k = 0;
        while (k < op->nsub && op->sub[k].osd != id)
            k++;
        if (id != 0 && id != op->osd->id && k == op->nsub) {
            if (op->nsub == OSD_SUBOPS) {
                op->phase = PH_SYNC_MORE; /* the next round takes it */
                continue;
            }
            struct osd_subop *s = &op->sub[op->nsub++];
            memset(&s->net, 0, sizeof(s->net));
            s->op = op;
            s->osd = id;
            s->net.req.opcode = VS_NET_OP_SEC_SYNC;
            s->net.cb = sync_sub_cb;
            s->conn = pg->cur_conn[i];
        }
        pg->dirty[i] = 0;
    }
}

static void sync_start(struct osd_op *op)
{
    struct vs_osd *osd = op->osd;
    op->phase = PH_SYNC;
    op->nsub = 0;
    for (uint32_t h = 0; h < osd->pg_hash_size; h++)
        for (struct osd_pg *pg = osd->pg_hash[h]; pg; pg = pg->hnext)
            if (pg->lazy)
                sync_collect_pg(op, pg);
    op->pending = 1 + op->nsub;
    for (uint32_t k = 0; k < op->nsub; k++) {
        struct osd_subop *s = &op->sub[k];
        int rc = s->conn ? vs_net_send(s->conn, &s->net) : -ENOTCONN;
        if (rc < 0) {
            sync_failed(op, s->osd, rc);
            op->pending--;
        }
    }
    memset(&op->sop, 0, sizeof(op->sop));
    op->sop.cb = sync_cb;
    int rc = vs_store_sync(osd->store, &op->sop);
    if (rc < 0) {
        op->sop.result = rc;
        sync_cb(&op->sop);
    }
}

/* ---- The handlers --------------------------------------------------------------------------- */

static struct osd_op *req_op(struct vs_osd *osd, struct vs_net_req *req)
{
    if (req->user)
        return req->user;
    struct osd_op *op = osd__op_get(osd, false);
    VS_ASSERTF(op, "client op pool empty: the messenger pool is sized to match");
    op->req = req;
    req->user = op;
    return op;
}

static int cl_buffers(struct vs_net_req *req, void *ctx)
{
    struct vs_osd *osd = ctx;
    /* WRITE only. On an error the messenger replies itself and never calls
     * done(): the op goes back at once. */
    struct osd_op *op = req_op(osd, req);
    op->kind = OP_WRITE;
    int rc = locate(osd, op, &req->hdr.req.rw);
    if (rc < 0) {
        req->user = NULL;
        osd__op_put(osd, op);
        return rc;
    }
    req->data = (uint8_t *)op->buf + (op->offset - op->aoff);
    return 0;
}

static void cl_recv(struct vs_net_req *req, void *ctx)
{
    struct vs_osd *osd = ctx;
    struct osd_op *op = req_op(osd, req);
    uint16_t opcode = req->hdr.opcode;
    if (opcode == VS_NET_OP_SYNC) {
        op->kind = OP_SYNC;
        if (osd->store_failed)
            return reply(op, VS_ESHUTDOWN); /* F1 */
        return sync_start(op);
    }
    if (opcode == VS_NET_OP_WRITE)
        return write_enqueue(op); /* located in cl_buffers */
    op->kind = opcode == VS_NET_OP_READ ? OP_READ : OP_DELETE;
    int rc = locate(osd, op, &req->hdr.req.rw);
    if (rc < 0)
        return reply(op, rc);
    if (op->kind == OP_READ)
        return read_start(op);
    if (!whole_object(op)) /* a partial discard writes zeros */
        memset((uint8_t *)op->buf + (op->offset - op->aoff), 0, op->len);
    write_enqueue(op);
}

static void cl_done(struct vs_net_req *req, int rc, void *ctx)
{
    struct vs_osd *osd = ctx;
    (void)rc;
    struct osd_op *op = req->user;
    if (!op)
        return;
    req->user = NULL;
    op->req = NULL;
    /* Replied ops gave their PG back in reply(); a WRITE whose connection
     * ended while its data was arriving was located (cl_buffers) but never
     * started: it still holds its PG, which could not re-peer without it. */
    osd__op_pg_unref(op);
    osd__op_put(osd, op);
}

void osd__primary_register(struct vs_osd *osd)
{
    struct vs_net_handler w = {.buffers = cl_buffers, .recv = cl_recv, .done = cl_done};
    struct vs_net_handler r = {.recv = cl_recv, .done = cl_done};
    VS_ASSERT(vs_net_handle(osd->net, VS_NET_OP_WRITE, &w, osd) == 0);
    VS_ASSERT(vs_net_handle(osd->net, VS_NET_OP_READ, &r, osd) == 0);
    VS_ASSERT(vs_net_handle(osd->net, VS_NET_OP_DELETE, &r, osd) == 0);
    VS_ASSERT(vs_net_handle(osd->net, VS_NET_OP_SYNC, &r, osd) == 0);
}
