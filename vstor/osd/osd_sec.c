/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_sec.c -- the secondary side: every SEC_* op a primary sends, served
 * against the local store, and PG lock #2 (docs/data-path.md §3, step 3).
 *
 * Lock rules, checked on every secondary op but SEC_LOCK itself:
 *  (L1) A secondary op of PG p is served only for the OSD holding p's lock
 *       here, and only on the connection it locked through; anyone else gets
 *       VS_ENOTPRIMARY with the holder in the reply's version field.
 *  (L2) LOCK is granted when the PG is free here, or already held by the
 *       same OSD (a new connection of a restarted primary), or when the
 *       requester acts on a newer PG map than the holder did: the newest map
 *       names the rightful primary. An old primary that lost the lock fails
 *       its next write and re-peers.
 *  (L3) A lock ends with UNLOCK from its holder or when the holder's
 *       connection goes down; in the latter case its entry stays, released
 *       (conn NULL), until the holder's read lease has run out (R2).
 *  (L4) A primary holds the lock of each PG it peers in its own table
 *       (holder = us, conn NULL, osd__sec_lock_self): an old primary that
 *       still acts on an older map is refused here as everywhere else, and
 *       a lease we granted the old primary as its secondary counts before
 *       we activate. A newer SEC_LOCK for it makes our PG re-peer first.
 * Read leases (osd_lease.h R2, R3): every grant that moves a lock whose
 * holder's lease may still run closes the old holder's connection and tells
 * the new holder how long to wait (lock_wait_ms).
 * Ops come only from OSDs (the HELLO role); a client connecting to the
 * cluster port gets -EPERM. SEC_PURGE (a wipe of a superseded PG, or a
 * tombstone purge; osd_purge.c) is served under L1 like the rest; its fields
 * were checked by the decoder, and a wipe that cannot finish yet answers
 * -EAGAIN.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- The lock table (open addressing, backward-shift removal) --------------------- */

static uint64_t lock_key(uint32_t pool, uint32_t pg)
{
    return (uint64_t)pool << 32 | pg;
}

static uint32_t lock_home(const struct vs_osd *osd, uint64_t key)
{
    return (uint32_t)((key * 0x9E3779B97F4A7C15ull) >> 40) & (osd->locks_cap - 1);
}

static struct osd_lock2 *lock_find(struct vs_osd *osd, uint64_t key)
{
    if (!osd->locks_cap)
        return NULL;
    for (uint32_t i = lock_home(osd, key);; i = (i + 1) & (osd->locks_cap - 1)) {
        if (osd->locks[i].key == key)
            return &osd->locks[i];
        if (!osd->locks[i].key)
            return NULL;
    }
}

static void lock_insert_raw(struct vs_osd *osd, const struct osd_lock2 *l)
{
    uint32_t i = lock_home(osd, l->key);
    while (osd->locks[i].key)
        i = (i + 1) & (osd->locks_cap - 1);
    osd->locks[i] = *l;
    osd->locks_used++;
}

static struct osd_lock2 *lock_add(struct vs_osd *osd, uint64_t key)
{
    if ((osd->locks_used + 1) * 2 > osd->locks_cap) {
        uint32_t old_cap = osd->locks_cap, cap = old_cap ? old_cap * 2 : 256;
        struct osd_lock2 *old = osd->locks;
        osd->locks = calloc(cap, sizeof(*osd->locks));
        VS_ASSERTF(osd->locks, "out of memory for %u PG locks", cap);
        osd->locks_cap = cap;
        osd->locks_used = 0;
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[i].key)
                lock_insert_raw(osd, &old[i]);
        free(old);
    }
    struct osd_lock2 l = {.key = key};
    lock_insert_raw(osd, &l);
    return lock_find(osd, key);
}

static void lock_remove(struct vs_osd *osd, struct osd_lock2 *l)
{
    uint32_t mask = osd->locks_cap - 1, hole = (uint32_t)(l - osd->locks), i = hole;
    for (;;) {
        i = (i + 1) & mask;
        if (!osd->locks[i].key)
            break;
        uint32_t home = lock_home(osd, osd->locks[i].key);
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays)
            continue;
        osd->locks[hole] = osd->locks[i];
        hole = i;
    }
    memset(&osd->locks[hole], 0, sizeof(osd->locks[hole]));
    osd->locks_used--;
}

/* The holder let go of the lock, having stopped serving the PG: no lease of
 * its own is left, but the leases of the holders before it still count (R3),
 * so the entry stays, held by no one, until they are over. */
static void lock_release(struct vs_osd *osd, struct osd_lock2 *l)
{
    if (l->prior_until_ms <= osd__now_ms())
        return lock_remove(osd, l);
    l->holder = 0;
    l->conn = NULL;
    l->lease_until_ms = 0;
}

/* L3 + R2: the holder's connection went down; its lease runs on. */
void osd__sec_conn_down(struct vs_osd *osd, struct vs_net_conn *conn)
{
    uint64_t until = vs_net_conn_recv_ms(conn) + osd->lease_ms;
    for (uint32_t i = 0; i < osd->locks_cap; i++) {
        struct osd_lock2 *l = &osd->locks[i];
        if (l->key && l->conn == conn) {
            VS_DEBUG_LOG(OSD_LOG, "pg %u.%x: lock of osd.%u released (connection gone)",
                         (unsigned)(l->key >> 32), (unsigned)l->key, l->holder);
            l->conn = NULL;
            l->lease_until_ms = until;
        }
    }
}

static struct vs_lock2_view lock_view(struct vs_osd *osd, const struct osd_lock2 *l)
{
    struct vs_lock2_view v = {.present = l != NULL};
    if (!l)
        return v;
    v.holder = l->holder;
    v.self = l->holder == osd->id;
    v.held = l->conn != NULL || v.self;
    v.map_rev = l->map_rev;
    v.lease_until_ms = l->conn ? vs_net_conn_recv_ms(l->conn) + osd->lease_ms
                               : l->lease_until_ms;
    v.prior_until_ms = l->prior_until_ms;
    return v;
}

/* Carries out a grant decided by vs_lock2_decide (R3) and installs the new
 * holder. *l may move (the table may grow). */
static struct osd_lock2 *lock_move(struct vs_osd *osd, struct osd_lock2 *l, uint64_t key,
                                   const struct vs_lock2_decision *d, uint32_t who,
                                   struct vs_net_conn *conn, uint64_t rev)
{
    VS_ASSERT(d->grant);
    if (l && l->holder != who)
        VS_INFO(OSD_LOG, "pg %u.%x: lock moves from osd.%u to osd.%u (map revision %" PRIu64
                " > %" PRIu64 ")%s, wait %" PRIu64 " ms", (unsigned)(key >> 32),
                (unsigned)key, l->holder, who, rev, l->map_rev,
                d->close_old ? ", closing the old holder's connection" : "", d->wait_ms);
    struct vs_net_conn *old_conn = d->close_old ? l->conn : NULL;
    if (!l)
        l = lock_add(osd, key);
    l->holder = who;
    l->conn = conn;
    l->map_rev = rev;
    l->lease_until_ms = 0;
    l->prior_until_ms = d->prior_until_ms;
    /* The new holder is in place first: what follows may run peering, which
     * reads this table. */
    if (old_conn) /* R3: a reachable old primary learns it now */
        vs_net_conn_close(old_conn);
    if (d->stop_own) {
        struct osd_pg *pg = osd__pg_find(osd, (uint16_t)(key >> 32), (uint32_t)key);
        if (pg)
            osd__pg_repeer(pg, "a newer primary took its lock");
    }
    return l;
}

static uint32_t peer_id(const struct vs_net_req *req)
{
    const struct vs_net_hello *h = vs_net_conn_peer(req->conn);
    return h->role == VS_NET_ROLE_OSD && h->node_id <= UINT32_MAX ? (uint32_t)h->node_id : 0;
}

/* (L1): 0, or the error to reply with. */
static int lock_check(struct vs_osd *osd, struct vs_net_req *req, uint32_t pool, uint32_t pg)
{
    struct osd_lock2 *l = lock_find(osd, lock_key(pool, pg));
    if (l && l->conn == req->conn && l->holder == peer_id(req))
        return 0;
    req->rep.version = l ? l->holder : 0;
    return VS_ENOTPRIMARY;
}

static int lock_check_oid(struct vs_osd *osd, struct vs_net_req *req, uint64_t inode,
                          uint64_t stripe)
{
    uint64_t base;
    uint32_t pg;
    if (osd__locate(osd, inode, stripe & ~VS_ROLE_MASK, &base, &pg) < 0)
        return VS_EPGINACTIVE; /* we do not know the pool (yet) */
    return lock_check(osd, req, vs_net_inode_pool(inode), pg);
}

static void serve_lock(struct vs_osd *osd, struct vs_net_req *req)
{
    const struct vs_net_lock *lk = &req->hdr.req.lock;
    uint32_t who = peer_id(req);
    struct osd_lock2 *l = lock_find(osd, lock_key(lk->pool, lk->pg_num));
    if (lk->flags == VS_NET_LOCKF_UNLOCK) {
        if (l && l->holder == who && l->conn == req->conn)
            lock_release(osd, l);
        return vs_net_reply(req);
    }
    struct vs_lock2_view v = lock_view(osd, l);
    struct vs_lock2_decision d = vs_lock2_decide(&v, who, lk->map_revision, osd->lease_ms,
                                                 osd->started_ms, osd__now_ms());
    if (!d.grant) {
        req->rep.retval = VS_ENOTPRIMARY; /* (L2); version names the holder */
        req->rep.version = l->holder;
        return vs_net_reply(req);
    }
    lock_move(osd, l, lock_key(lk->pool, lk->pg_num), &d, who, req->conn, lk->map_revision);
    req->rep.lock_wait_ms = (uint32_t)VS_MIN(d.wait_ms, VS_NET_LOCK_WAIT_MAX_MS);
    osd__stat_add(osd, ST_SEC_LOCK, 0, 0, vs_clock_mono_ns());
    vs_net_reply(req);
}

int osd__sec_lock_self(struct vs_osd *osd, struct osd_pg *pg, uint64_t *wait_ms)
{
    uint64_t key = lock_key(pg->pool, pg->num);
    struct osd_lock2 *l = lock_find(osd, key);
    struct vs_lock2_view v = lock_view(osd, l);
    struct vs_lock2_decision d = vs_lock2_decide(&v, osd->id, pg->map_rev, osd->lease_ms,
                                                 osd->started_ms, osd__now_ms());
    VS_ASSERT(!d.stop_own); /* our own entry is never moved to ourselves */
    if (!d.grant) {
        VS_INFO(OSD_LOG, "pg %s: osd.%u holds its lock here with a map revision %" PRIu64
                " >= ours %" PRIu64, pg->name, l->holder, l->map_rev, pg->map_rev);
        return VS_ENOTPRIMARY;
    }
    lock_move(osd, l, key, &d, osd->id, NULL, pg->map_rev);
    *wait_ms = d.wait_ms;
    return 0;
}

void osd__sec_unlock_self(struct vs_osd *osd, struct osd_pg *pg)
{
    struct osd_lock2 *l = lock_find(osd, lock_key(pg->pool, pg->num));
    if (l && l->holder == osd->id)
        lock_release(osd, l);
}

/* ---- Op pool ---------------------------------------------------------------------- */

static struct osd_secop *secop_get(struct vs_osd *osd, struct vs_net_req *req)
{
    if (req->user)
        return req->user;
    struct osd_secop *s = osd->secop_free;
    VS_ASSERTF(s, "secondary op pool empty: the messenger pool is sized to match");
    osd->secop_free = s->next;
    osd->secops_used++;
    osd->ops_started++;
    s->req = req;
    s->rc = 0;
    s->count = s->done = 0;
    s->synced = false;
    s->start_ns = vs_clock_mono_ns();
    req->user = s;
    return s;
}

static void secop_put(struct vs_osd *osd, struct osd_secop *s)
{
    s->req->user = NULL;
    s->req = NULL;
    osd->secops_used--;
    s->next = osd->secop_free;
    osd->secop_free = s;
}

static void reply(struct vs_osd *osd, struct osd_secop *s, int rc)
{
    struct vs_net_req *req = s->req;
    req->rep.retval = rc < 0 ? rc : 0;
    if (rc < 0) {
        req->rep_meta = req->rep_data = NULL;
        req->rep_meta_len = req->rep_data_len = 0;
    }
    vs_net_reply(req);
    (void)osd;
}

static void done_cb(struct vs_net_req *req, int rc, void *ctx)
{
    struct vs_osd *osd = ctx;
    (void)rc;
    if (req->user)
        secop_put(osd, req->user);
}

/* ---- Payload buffers ------------------------------------------------------------------ */

static int sec_buffers(struct vs_net_req *req, void *ctx)
{
    struct vs_osd *osd = ctx;
    const struct vs_net_hdr *h = &req->hdr;
    /* On an error the messenger replies itself and never calls done(): take
     * an op only once the request is acceptable. */
    if (h->opcode == VS_NET_OP_SEC_WRITE || h->opcode == VS_NET_OP_SEC_WRITE_STABLE) {
        if (h->meta_len > osd->bitmap_bytes || h->data_len > osd->block_size)
            return -EINVAL;
        struct osd_secop *s = secop_get(osd, req);
        req->meta = s->bitmap;
        req->data = s->buf;
        return 0;
    }
    /* Batches: object versions; decoded in place later. */
    if (h->meta_len > osd->block_size)
        return -E2BIG;
    req->meta = secop_get(osd, req)->buf;
    return 0;
}

/* ---- Serving -------------------------------------------------------------------------- */

static enum osd_stat stat_of(uint16_t opcode)
{
    switch (opcode) {
    case VS_NET_OP_SEC_READ:
        return ST_SEC_READ;
    case VS_NET_OP_SEC_DELETE:
        return ST_SEC_DELETE;
    case VS_NET_OP_SEC_SYNC:
        return ST_SEC_SYNC;
    case VS_NET_OP_SEC_STABILIZE:
        return ST_SEC_STABILIZE;
    case VS_NET_OP_SEC_ROLLBACK:
        return ST_SEC_ROLLBACK;
    default:
        return ST_SEC_WRITE;
    }
}

static void store_cb(struct vs_store_op *sop);

/* A write or delete of a pool that commits immediately, on a lazy store: sync
 * it before the reply (D7.7). True when the sync was started. */
static bool sync_first(struct vs_osd *osd, struct osd_secop *s, int rc)
{
    uint16_t opcode = s->req->hdr.opcode;
    struct vs_store_op *sop = &s->sop;
    if (s->synced) {
        sop->out_version = s->wver;
        sop->len = s->wlen;
        return false;
    }
    if (rc < 0 || (opcode != VS_NET_OP_SEC_WRITE && opcode != VS_NET_OP_SEC_WRITE_STABLE &&
                   opcode != VS_NET_OP_SEC_DELETE) ||
        !osd__sync_after(osd, sop->oid.inode))
        return false;
    s->synced = true;
    s->wver = sop->out_version;
    s->wlen = sop->len;
    struct vs_store_oid oid = sop->oid;
    uint64_t version = sop->version;
    memset(sop, 0, sizeof(*sop));
    sop->oid = oid; /* for the log line */
    sop->version = version;
    sop->cb = store_cb;
    int src = vs_store_sync(osd->store, sop);
    if (src < 0) {
        sop->result = src;
        store_cb(sop);
    }
    return true;
}

static void store_cb(struct vs_store_op *sop)
{
    struct osd_secop *s = VS_CONTAINER_OF(sop, struct osd_secop, sop);
    struct vs_osd *osd = s->osd;
    struct vs_net_req *req = s->req;
    int rc = sop->result;
    uint16_t opcode = req->hdr.opcode;
    if (sync_first(osd, s, rc))
        return;
    if (rc >= 0 && opcode == VS_NET_OP_SEC_READ) {
        req->rep_meta = s->bitmap;
        req->rep_meta_len = osd->bitmap_bytes;
        req->rep_data = s->buf;
        req->rep_data_len = sop->len;
    }
    if (rc >= 0 && (opcode == VS_NET_OP_SEC_READ || opcode == VS_NET_OP_SEC_WRITE ||
                    opcode == VS_NET_OP_SEC_WRITE_STABLE || opcode == VS_NET_OP_SEC_DELETE))
        req->rep.version = sop->out_version;
    if (rc < 0 && rc != -ENOENT)
        VS_WARN(OSD_LOG, "%s of %" PRIx64 ":%" PRIx64 " v%" PRIx64 " from osd.%u: %s",
                vs_net_op_name(opcode), sop->oid.inode, sop->oid.stripe, sop->version,
                peer_id(req), vs_strerror(rc));
    osd__stat_add(osd, stat_of(opcode), sop->oid.inode,
                  opcode == VS_NET_OP_SEC_READ || opcode == VS_NET_OP_SEC_WRITE ||
                          opcode == VS_NET_OP_SEC_WRITE_STABLE ? sop->len : 0,
                  s->start_ns);
    reply(osd, s, rc);
}

static int start_rw(struct vs_osd *osd, struct osd_secop *s)
{
    struct vs_net_req *req = s->req;
    const struct vs_net_sec *sec = &req->hdr.req.sec;
    struct vs_store_op *sop = &s->sop;
    memset(sop, 0, sizeof(*sop));
    sop->oid = (struct vs_store_oid){sec->inode, sec->stripe};
    sop->offset = sec->offset;
    sop->len = sec->len;
    sop->buf = s->buf;
    sop->cb = store_cb;
    switch (req->hdr.opcode) {
    case VS_NET_OP_SEC_READ:
        if ((uint64_t)sec->offset + sec->len > osd->block_size)
            return -EINVAL;
        sop->version = sec->selector == VS_NET_SEL_EXACT ? sec->version
                       : sec->selector == VS_NET_SEL_LATEST_STABLE ? VS_STORE_READ_STABLE
                                                                   : VS_STORE_READ_LATEST;
        sop->bitmap = s->bitmap;
        return vs_store_read(osd->store, sop);
    case VS_NET_OP_SEC_WRITE:
    case VS_NET_OP_SEC_WRITE_STABLE:
        sop->version = sec->version;
        sop->flags = req->hdr.opcode == VS_NET_OP_SEC_WRITE_STABLE ? VS_STORE_STABLE : 0;
        return vs_store_write(osd->store, sop);
    default: /* SEC_DELETE */
        sop->version = sec->version;
        if (!(sec->flags & VS_NET_SECF_RECOVERY) && osd__tomb_reserve_hit(osd))
            return -ENOSPC; /* the last slots are for recovery (§5) */
        return vs_store_delete(osd->store, sop);
    }
}

static int start_batch(struct vs_osd *osd, struct osd_secop *s)
{
    struct vs_net_req *req = s->req;
    const struct vs_net_batch *b = &req->hdr.req.batch;
    /* Decode in place: item i is read whole before it is written. */
    struct vs_store_obj_ver *list = s->buf;
    VS_STATIC_ASSERT(sizeof(*list) == VS_NET_OBJVER_SIZE, "object versions decode in place");
    for (uint32_t i = 0; i < b->count; i++) {
        struct vs_net_objver v;
        vs_net_objver_get((const uint8_t *)s->buf + (size_t)i * VS_NET_OBJVER_SIZE, &v);
        int rc = lock_check_oid(osd, req, v.inode, v.stripe);
        if (rc < 0)
            return rc;
        list[i] = (struct vs_store_obj_ver){{v.inode, v.stripe}, v.version};
    }
    struct vs_store_op *sop = &s->sop;
    memset(sop, 0, sizeof(*sop));
    sop->list = list;
    sop->list_count = b->count;
    sop->cb = store_cb;
    return req->hdr.opcode == VS_NET_OP_SEC_STABILIZE ? vs_store_stabilize(osd->store, sop)
                                                      : vs_store_rollback(osd->store, sop);
}

static void serve_read_bitmap(struct vs_osd *osd, struct osd_secop *s)
{
    struct vs_net_req *req = s->req;
    const struct vs_net_batch *b = &req->hdr.req.batch;
    size_t item = 8 + (size_t)b->bitmap_len, need = (size_t)b->count * item;
    uint8_t *out = malloc(need ? need : 1), *bm = calloc(1, osd->bitmap_bytes);
    if (!out || !bm || need > osd->block_size) {
        free(out), free(bm);
        return reply(osd, s, need > osd->block_size ? -E2BIG : -ENOMEM);
    }
    uint64_t which = b->selector == VS_NET_SEL_LATEST_STABLE ? VS_STORE_READ_STABLE
                                                              : VS_STORE_READ_LATEST;
    for (uint32_t i = 0; i < b->count; i++) {
        struct vs_net_objver v;
        vs_net_objver_get((const uint8_t *)s->buf + (size_t)i * VS_NET_OBJVER_SIZE, &v);
        uint64_t ver = 0;
        uint8_t *o = out + i * item;
        memset(o, 0, item);
        if (vs_store_stat(osd->store, (struct vs_store_oid){v.inode, v.stripe},
                          b->selector == VS_NET_SEL_EXACT ? v.version : which, &ver, bm) == 0) {
            vs_put_u64(o, ver);
            memcpy(o + 8, bm, VS_MIN(b->bitmap_len, osd->bitmap_bytes));
        }
    }
    memcpy(s->buf, out, need);
    free(out), free(bm);
    req->rep.count = b->count;
    req->rep_meta = s->buf;
    req->rep_meta_len = (uint32_t)need;
    osd__stat_add(osd, ST_SEC_READ_BITMAP, 0, 0, s->start_ns);
    reply(osd, s, 0);
}

/* ---- SEC_PURGE ------------------------------------------------------------------------ */

static void purge_done(void *ctx, int rc)
{
    struct osd_secop *s = ctx;
    const struct vs_net_purge *u = &s->req->hdr.req.purge;
    if (rc < 0 && rc != -EAGAIN)
        VS_WARN(OSD_LOG, "pg %u.%x: %s for osd.%u: %s", u->pool, u->pg_num,
                u->flags == VS_NET_PURGEF_WIPE ? "wipe" : "tombstone purge", peer_id(s->req),
                vs_strerror(rc));
    else if (rc == 0 && u->flags == VS_NET_PURGEF_WIPE)
        VS_INFO(OSD_LOG, "pg %u.%x: wiped for osd.%u (superseded copies)", u->pool, u->pg_num,
                peer_id(s->req));
    reply(s->osd, s, rc);
}

/* Lock #2 is checked by the caller (L1); the decoder checked the fields. */
static int serve_purge(struct vs_osd *osd, struct osd_secop *s)
{
    const struct vs_net_purge *u = &s->req->hdr.req.purge;
    struct vs_store_purge f = {.pool_id = u->pool, .pg_count = u->pg_count, .pg = u->pg_num,
                               .pg_stripe_size = u->pg_stripe_size, .below = u->below};
    return osd__purge_start(osd, u->flags, &f, purge_done, s);
}

static void sec_recv(struct vs_net_req *req, void *ctx)
{
    struct vs_osd *osd = ctx;
    uint16_t opcode = req->hdr.opcode;
    if (peer_id(req) == 0) {
        if (req->user)
            secop_put(osd, req->user);
        return vs_net_reply_err(req, -EPERM);
    }
    if (opcode == VS_NET_OP_SEC_LOCK)
        return serve_lock(osd, req);
    struct osd_secop *s = secop_get(osd, req);
    int rc = 0;
    if (osd->store_failed) /* F1 (osd_fault.c): nothing is read from a failed store */
        opcode = 0;
    switch (opcode) {
    case VS_NET_OP_SEC_READ:
    case VS_NET_OP_SEC_WRITE:
    case VS_NET_OP_SEC_WRITE_STABLE:
    case VS_NET_OP_SEC_DELETE:
        rc = lock_check_oid(osd, req, req->hdr.req.sec.inode, req->hdr.req.sec.stripe);
        if (rc == 0)
            rc = start_rw(osd, s);
        break;
    case VS_NET_OP_SEC_SYNC:
        memset(&s->sop, 0, sizeof(s->sop));
        s->sop.cb = store_cb;
        rc = vs_store_sync(osd->store, &s->sop);
        break;
    case VS_NET_OP_SEC_STABILIZE:
    case VS_NET_OP_SEC_ROLLBACK:
        rc = start_batch(osd, s);
        break;
    case VS_NET_OP_SEC_READ_BITMAP:
        return serve_read_bitmap(osd, s);
    case VS_NET_OP_SEC_LIST:
        rc = lock_check(osd, req, req->hdr.req.list.pool, req->hdr.req.list.pg_num);
        if (rc == 0)
            return osd__sec_list(osd, s);
        break;
    case VS_NET_OP_SEC_PURGE:
        rc = lock_check(osd, req, req->hdr.req.purge.pool, req->hdr.req.purge.pg_num);
        if (rc == 0)
            rc = serve_purge(osd, s);
        break;
    default:
        rc = osd->store_failed ? -EIO : -EOPNOTSUPP;
    }
    if (rc < 0)
        reply(osd, s, rc);
}

void osd__sec_register(struct vs_osd *osd)
{
    static const uint16_t with_payload[] = {VS_NET_OP_SEC_WRITE, VS_NET_OP_SEC_WRITE_STABLE,
                                            VS_NET_OP_SEC_STABILIZE, VS_NET_OP_SEC_ROLLBACK,
                                            VS_NET_OP_SEC_READ_BITMAP};
    static const uint16_t plain[] = {VS_NET_OP_SEC_READ, VS_NET_OP_SEC_SYNC,
                                     VS_NET_OP_SEC_DELETE, VS_NET_OP_SEC_LIST,
                                     VS_NET_OP_SEC_LOCK, VS_NET_OP_SEC_PURGE};
    struct vs_net_handler h = {.buffers = sec_buffers, .recv = sec_recv, .done = done_cb};
    for (size_t i = 0; i < VS_ARRAY_SIZE(with_payload); i++)
        VS_ASSERT(vs_net_handle(osd->net, with_payload[i], &h, osd) == 0);
    h.buffers = NULL;
    for (size_t i = 0; i < VS_ARRAY_SIZE(plain); i++)
        VS_ASSERT(vs_net_handle(osd->net, plain[i], &h, osd) == 0);
}

/* ---- SEC_LIST ------------------------------------------------------------------------- */

static int cmp_ent(const void *pa, const void *pb)
{
    const struct vs_store_list_entry *a = pa, *b = pb;
    if (a->oid.inode != b->oid.inode)
        return a->oid.inode < b->oid.inode ? -1 : 1;
    if (a->oid.stripe != b->oid.stripe)
        return a->oid.stripe < b->oid.stripe ? -1 : 1;
    return a->version < b->version ? -1 : a->version > b->version;
}

static bool same_obj(const struct vs_store_list_entry *a, const struct vs_store_list_entry *b)
{
    return a->oid.inode == b->oid.inode && a->oid.stripe == b->oid.stripe;
}

static void put_ent(uint8_t *out, const struct vs_store_list_entry *e)
{
    struct vs_net_listent le = {
        .inode = e->oid.inode, .stripe = e->oid.stripe, .version = e->version,
        .flags = (uint8_t)((e->flags & VS_STORE_LIST_STABLE ? VS_NET_LISTENT_STABLE : 0) |
                           (e->flags & VS_STORE_LIST_DELETED ? VS_NET_LISTENT_DELETED : 0))};
    vs_net_listent_put(out, &le);
}

/* Lists the PG, sorted, and replies with the page that starts at the
 * request's start key, never splitting one object's versions over two
 * pages (docs/protocol.md, SEC_LIST). */
void osd__sec_list(struct vs_osd *osd, struct osd_secop *s)
{
    struct vs_net_req *req = s->req;
    const struct vs_net_list *l = &req->hdr.req.list;
    struct vs_store_list_entry *e = NULL;
    long n = vs_store_list(osd->store, l->pool, l->pg_count, l->pg_num, l->pg_stripe_size, &e);
    if (n < 0)
        return reply(osd, s, (int)n);
    if (n > 1)
        qsort(e, (size_t)n, sizeof(*e), cmp_ent);
    long i = 0;
    while (i < n && (e[i].oid.inode < l->start_inode ||
                     (e[i].oid.inode == l->start_inode && e[i].oid.stripe < l->start_stripe)))
        i++;
    uint32_t max = VS_MIN(l->max_entries, osd->block_size / VS_NET_LISTENT_SIZE);
    uint32_t count = 0;
    while (i < n) {
        long end = i + 1;
        while (end < n && same_obj(&e[end], &e[i]))
            end++;
        if (count + (uint64_t)(end - i) > max)
            break;
        for (; i < end; i++)
            put_ent((uint8_t *)s->buf + (size_t)count++ * VS_NET_LISTENT_SIZE, &e[i]);
    }
    if (i < n && count == 0) {
        free(e);
        return reply(osd, s, -E2BIG); /* one object with more versions than a page */
    }
    if (i < n) {
        req->rep.flags = VS_NET_RF_LIST_MORE;
        req->rep.next_inode = e[i].oid.inode;
        req->rep.next_stripe = e[i].oid.stripe;
    }
    free(e);
    req->rep.count = count;
    req->rep_meta = s->buf;
    req->rep_meta_len = count * VS_NET_LISTENT_SIZE;
    osd__stat_add(osd, ST_SEC_LIST, 0, 0, s->start_ns);
    reply(osd, s, 0);
}
