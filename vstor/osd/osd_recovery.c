/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_recovery.c -- recovery of the objects peering found unclean
 * (docs/data-path.md §6): for each one, its target version is read from an
 * OSD that holds it and written, with that same version, to every OSD of the
 * current set that lacks it; a deleted object gets its tombstone there
 * instead. Then the object is clean. The PG is clean when none is left.
 *
 * Two ways in:
 *  - the background pump: up to osd_recovery_depth objects per PG at a time,
 *    degraded ones first, each taking its turn in the object's write queue
 *    like any write, so client writes and recovery never interleave on one
 *    object;
 *  - inline: a client write to an unclean object first recovers it, under
 *    the write's own place in the queue (recovery rides on writes, §4 D7.4).
 *
 * What is written, at the target version: to an OSD holding nothing of the
 * object, the span from its first to its last written 4 KiB granule (the
 * source's bitmap; unwritten granules inside it read as zeros on the source,
 * so the copy holds the same bytes); to an OSD holding an older version, the
 * whole object, because a partial write would leave that version's bytes
 * outside the span where the target reads zeros. Outdated copies on OSDs
 * outside the current set are left where they are: they are never read (the
 * set's copies are newer) and go out of the PG's history once it is clean.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

enum { U_PENDING = 0, U_RECOVERING = 1, U_DONE = 2, U_STUCK = 3 };
enum { R_READ = 1, R_WRITE };

static void rec_finish(struct osd_op *op, int rc);

static const struct vs_unclean_obj *uobj(const struct osd_op *op)
{
    return &op->pg->calc.objs[op->uidx];
}

static bool holds_target(const struct osd_pg *pg, const struct vs_unclean_obj *u, uint32_t osd)
{
    if (u->target_deleted)
        return false;
    for (uint32_t i = 0; i < u->loc_count; i++) {
        const struct vs_obj_loc *l = &pg->calc.locs[u->loc_first + i];
        if (l->osd == osd && !l->outdated)
            return true;
    }
    return false;
}

static bool holds_outdated(const struct osd_pg *pg, const struct vs_unclean_obj *u,
                           uint32_t osd)
{
    for (uint32_t i = 0; i < u->loc_count; i++) {
        const struct vs_obj_loc *l = &pg->calc.locs[u->loc_first + i];
        if (l->osd == osd && l->outdated)
            return true;
    }
    return false;
}

/* ---- Write the target to the set ------------------------------------------------ */

static void part_done(struct osd_op *op, int rc)
{
    VS_ASSERT(op->pending > 0);
    if (rc < 0 && op->rc == 0)
        op->rc = rc;
    if (--op->pending == 0)
        rec_finish(op, op->rc);
}

static void sub_cb(struct vs_net_op *nop, int rc)
{
    struct osd_subop *s = VS_CONTAINER_OF(nop, struct osd_subop, net);
    struct osd_op *op = s->op;
    if (rc < 0 && !(rc == -ENOENT && nop->req.opcode == VS_NET_OP_SEC_DELETE)) {
        VS_WARN(OSD_LOG, "pg %s: recovery of %" PRIx64 ":%" PRIx64 " on osd.%u: %s",
                op->pg->name, op->inode, op->stripe, s->osd, vs_strerror(rc));
        part_done(op, rc);
        return;
    }
    part_done(op, 0);
}

static void local_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    int rc = sop->result == -ENOENT && !sop->buf ? 0 : sop->result;
    if (rc >= 0 && osd__local_sync(op))
        return;
    if (rc < 0)
        VS_ERROR(OSD_LOG, "pg %s: local recovery write of %" PRIx64 ":%" PRIx64 ": %s",
                 op->pg->name, op->inode, op->stripe, vs_strerror(rc));
    part_done(op, rc < 0 ? rc : 0);
}

/* The span [first, last] of written granules, from the bitmap. */
static void span(const struct osd_op *op, uint32_t *off, uint32_t *len)
{
    uint32_t n = (uint32_t)(op->pg->obj_size / VS_STORE_GRANULE), first = n, last = 0;
    for (uint32_t i = 0; i < n; i++)
        if (op->bitmap[i / 8] & (1u << (i % 8))) {
            if (first == n)
                first = i;
            last = i;
        }
    *off = first == n ? 0 : first * VS_STORE_GRANULE;
    *len = first == n ? 0 : (last - first + 1) * VS_STORE_GRANULE;
}

static void write_one(struct osd_op *op, uint32_t slot, uint32_t off, uint32_t len, bool del)
{
    struct osd_pg *pg = op->pg;
    uint32_t osd = pg->cur[slot];
    op->pending++;
    if (osd == op->osd->id) {
        op->synced = false;
        struct vs_store_op *sop = &op->sop;
        memset(sop, 0, sizeof(*sop));
        sop->oid = (struct vs_store_oid){op->inode, op->stripe};
        sop->version = op->version;
        sop->cb = local_cb;
        int rc;
        if (del) {
            rc = vs_store_delete(op->osd->store, sop);
        } else {
            sop->offset = off;
            sop->len = len;
            sop->flags = VS_STORE_STABLE;
            sop->buf = (uint8_t *)op->buf + off;
            rc = vs_store_write(op->osd->store, sop);
        }
        if (rc < 0) {
            sop->result = rc;
            local_cb(sop);
        }
        return;
    }
    struct osd_subop *s = &op->sub[op->nsub++];
    memset(&s->net, 0, sizeof(s->net));
    s->op = op;
    s->osd = osd;
    s->net.req.opcode = del ? VS_NET_OP_SEC_DELETE : VS_NET_OP_SEC_WRITE_STABLE;
    s->net.req.req.sec = (struct vs_net_sec){.inode = op->inode, .stripe = op->stripe,
                                             .version = op->version,
                                             .offset = del ? 0 : off, .len = del ? 0 : len,
                                             .flags = VS_NET_SECF_RECOVERY};
    if (!del) {
        s->net.req.data_len = len;
        s->net.data = (uint8_t *)op->buf + off;
    }
    s->net.cb = sub_cb;
    int rc = pg->cur_conn[slot] ? vs_net_send(pg->cur_conn[slot], &s->net) : -ENOTCONN;
    if (rc < 0)
        part_done(op, rc);
}

static void rec_write(struct osd_op *op)
{
    struct osd_pg *pg = op->pg;
    const struct vs_unclean_obj *u = uobj(op);
    uint32_t off = 0, len = 0;
    if (!u->target_deleted)
        span(op, &off, &len);
    op->phase = R_WRITE;
    op->pending = 1; /* guard */
    op->nsub = 0;
    for (uint32_t i = 0; i < pg->pg_size && op->rc == 0; i++) {
        uint32_t osd = pg->cur[i];
        if (!osd)
            continue;
        if (u->target_deleted && holds_outdated(pg, u, osd))
            write_one(op, i, 0, 0, true);
        else if (!u->target_deleted && holds_outdated(pg, u, osd))
            write_one(op, i, 0, (uint32_t)pg->obj_size, false);
        else if (!u->target_deleted && !holds_target(pg, u, osd))
            write_one(op, i, off, len, false);
    }
    part_done(op, 0);
}

/* ---- Read the target from where it is ----------------------------------------------- */

static void read_local_cb(struct vs_store_op *sop)
{
    struct osd_op *op = VS_CONTAINER_OF(sop, struct osd_op, sop);
    if (sop->result < 0) {
        VS_ERROR(OSD_LOG, "pg %s: reading %" PRIx64 ":%" PRIx64 " v%" PRIx64 " to recover it: "
                 "%s", op->pg->name, op->inode, op->stripe, op->version,
                 vs_strerror(sop->result));
        return rec_finish(op, sop->result);
    }
    rec_write(op);
}

static void read_remote_cb(struct vs_net_op *nop, int rc)
{
    struct osd_subop *s = VS_CONTAINER_OF(nop, struct osd_subop, net);
    struct osd_op *op = s->op;
    op->pending--;
    if (rc < 0) {
        VS_WARN(OSD_LOG, "pg %s: reading %" PRIx64 ":%" PRIx64 " from osd.%u to recover it: %s",
                op->pg->name, op->inode, op->stripe, s->osd, vs_strerror(rc));
        return rec_finish(op, rc);
    }
    if (nop->reply.meta_len < op->osd->bitmap_bytes)
        memset(op->bitmap + nop->reply.meta_len, 0, op->osd->bitmap_bytes - nop->reply.meta_len);
    rec_write(op);
}

static int read_from(struct osd_op *op, uint32_t osd)
{
    struct osd_peer *p = osd__peer(op->osd, osd);
    if (!p || !p->conn_up)
        return -ENOTCONN;
    struct osd_subop *s = &op->sub[0];
    memset(&s->net, 0, sizeof(s->net));
    s->op = op;
    s->osd = osd;
    s->net.req.opcode = VS_NET_OP_SEC_READ;
    s->net.req.req.sec = (struct vs_net_sec){.inode = op->inode, .stripe = op->stripe,
                                             .version = op->version, .offset = 0,
                                             .len = (uint32_t)op->pg->obj_size,
                                             .flags = VS_NET_SECF_RECOVERY,
                                             .selector = VS_NET_SEL_EXACT};
    s->net.reply_data = op->buf;
    s->net.reply_data_cap = (uint32_t)op->pg->obj_size;
    s->net.reply_meta = op->bitmap;
    s->net.reply_meta_cap = op->osd->bitmap_bytes;
    s->net.cb = read_remote_cb;
    int rc = vs_net_send(p->conn, &s->net);
    if (rc == 0)
        op->pending++;
    return rc;
}

static void rec_read(struct osd_op *op)
{
    struct osd_pg *pg = op->pg;
    const struct vs_unclean_obj *u = uobj(op);
    op->version = u->target_version;
    op->phase = R_READ;
    if (u->target_deleted || u->target_version == 0)
        return rec_write(op);
    if (holds_target(pg, u, op->osd->id)) {
        struct vs_store_op *sop = &op->sop;
        memset(sop, 0, sizeof(*sop));
        sop->oid = (struct vs_store_oid){op->inode, op->stripe};
        sop->version = u->target_version;
        sop->offset = 0;
        sop->len = (uint32_t)pg->obj_size;
        sop->buf = op->buf;
        sop->bitmap = op->bitmap;
        sop->cb = read_local_cb;
        int rc = vs_store_read(op->osd->store, sop);
        if (rc < 0) {
            sop->result = rc;
            read_local_cb(sop);
        }
        return;
    }
    for (uint32_t i = 0; i < u->loc_count; i++) {
        const struct vs_obj_loc *l = &pg->calc.locs[u->loc_first + i];
        if (!l->outdated && read_from(op, l->osd) == 0)
            return;
    }
    rec_finish(op, -ENODATA); /* no OSD holding the target can be reached */
}

/* ---- Start and finish ---------------------------------------------------------------- */

static void rec_begin(struct osd_op *op)
{
    struct osd_pg *pg = op->pg;
    if (pg->state != VS_PG_ACTIVE || op->gen != pg->gen)
        return rec_finish(op, VS_EPGINACTIVE);
    if (pg->ustate[op->uidx].state == U_DONE)
        return rec_finish(op, 0); /* an inline recovery was faster */
    op->inode = uobj(op)->inode;
    op->stripe = uobj(op)->stripe;
    rec_read(op);
}

static void rec_finish(struct osd_op *op, int rc)
{
    struct vs_osd *osd = op->osd;
    struct osd_pg *pg = op->pg;
    struct osd_op *parent = op->parent;
    bool same_gen = op->gen == pg->gen && pg->state == VS_PG_ACTIVE;
    struct osd_unclean *st = same_gen ? &pg->ustate[op->uidx] : NULL;
    osd__stat_add(osd, ST_RECOVERY, 0, rc == 0 ? pg->obj_size : 0, op->start_ns);
    if (st && rc == 0 && st->state != U_DONE) {
        osd__pg_object_clean(pg, op->uidx);
    } else if (st && st->state != U_DONE) {
        st->state = rc == VS_EPGINACTIVE ? U_PENDING : U_STUCK;
        if (rc != -ENODATA && rc != VS_EPGINACTIVE)
            osd__pg_recovery_failed(pg); /* re-peers, at a bounded rate */
    }
    if (!parent) {
        pg->recovering--;
        osd__op_start_next(osd, op);
    }
    op->parent = NULL;
    osd__op_pg_unref(op);
    osd__op_put(osd, op);
    if (parent)
        osd__op_object_ready(parent, rc == 0 ? 0 : VS_EPGINACTIVE);
    else
        osd__recovery_pump(pg);
}

void osd__recovery_queued_start(struct osd_op *op)
{
    rec_begin(op);
}

void osd__recovery_inline(struct osd_op *parent, uint32_t uidx)
{
    struct vs_osd *osd = parent->osd;
    struct osd_pg *pg = parent->pg;
    struct osd_op *op = osd__op_get(osd, true);
    if (!op)
        return osd__op_object_ready(parent, -EAGAIN); /* the client retries */
    op->kind = OP_RECOVER;
    op->parent = parent;
    op->uidx = uidx;
    op->gen = pg->gen;
    op->pg = pg;
    pg->ustate[uidx].state = U_RECOVERING;
    osd__op_pg_ref(op, pg);
    rec_begin(op);
}

/* Degraded objects first, then the rest (§6). */
static bool pick(struct osd_pg *pg, uint32_t *idx)
{
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t i = 0; i < pg->calc.obj_count; i++) {
            const struct vs_unclean_obj *u = &pg->calc.objs[i];
            bool degraded = (u->state & (VS_OBJ_DEGRADED | VS_OBJ_INCOMPLETE)) != 0;
            if (pg->ustate[i].state == U_PENDING && degraded == (pass == 0)) {
                *idx = i;
                return true;
            }
        }
    return false;
}

void osd__recovery_pump(struct osd_pg *pg)
{
    struct vs_osd *osd = pg->osd;
    while (pg->state == VS_PG_ACTIVE && pg->unclean_left &&
           pg->recovering < osd->cfg->osd_recovery_depth) {
        uint32_t idx;
        if (!pick(pg, &idx))
            return;
        struct osd_op *op = osd__op_get(osd, true);
        if (!op)
            return; /* a finishing recovery op pumps again */
        const struct vs_unclean_obj *u = &pg->calc.objs[idx];
        op->kind = OP_RECOVER;
        op->uidx = idx;
        op->inode = u->inode;
        op->stripe = u->stripe;
        op->gen = pg->gen;
        pg->ustate[idx].state = U_RECOVERING;
        pg->recovering++;
        osd__op_pg_ref(op, pg);
        op->in_queue = true;
        if (vs_objq_push(&osd->objq, op->inode, op->stripe, &op->qlink))
            rec_begin(op);
    }
}
