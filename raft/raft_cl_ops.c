/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_cl_ops.c -- the client library's public operations (vs_raft.h): reads,
 * writes, leases and their keepers, watches that survive reconnects,
 * status and membership.
 */
#include "raft_cl.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEEPER_RETRY_MS 200

static bool key_ok(uint32_t len)
{
    return len >= 1 && len <= VS_META_KEY_MAX;
}

/* ---- reads and writes ------------------------------------------------------------------ */

int vs_meta_range(struct vs_meta_client *vc, const void *key, uint32_t key_len,
                  const void *range_end, uint32_t range_end_len, uint64_t limit, unsigned flags,
                  vs_meta_range_cb cb, void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!key_ok(key_len) || range_end_len > VS_META_KEY_MAX || !cb)
        return -EINVAL;
    struct cl_op *o = cl_op_new(c, RO_RANGE, true);
    if (!o)
        return c->closing ? -ECANCELED : -ENOMEM;
    struct vs_meta_op op = {.type = VS_META_OP_RANGE, .key = key, .key_len = key_len,
                            .range_end = range_end, .range_end_len = range_end_len,
                            .flags = (uint8_t)(flags & (VS_META_KEYS_ONLY | VS_META_COUNT_ONLY)),
                            .limit = limit};
    o->flags = (uint8_t)(flags & (VS_META_SERIALIZABLE | VS_META_VOLATILE));
    raft__op_encode(&o->body, &op);
    o->range_cb = cb;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}

static bool txn_read_only(const struct vs_meta_txn *t)
{
    for (unsigned i = 0; i < t->n_success; i++)
        if (t->success[i].type != VS_META_OP_RANGE)
            return false;
    for (unsigned i = 0; i < t->n_failure; i++)
        if (t->failure[i].type != VS_META_OP_RANGE)
            return false;
    return true;
}

int vs_meta_txn(struct vs_meta_client *vc, const struct vs_meta_txn *txn, vs_meta_txn_cb cb,
                void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!cb || (uint64_t)txn->n_cmp + txn->n_success + txn->n_failure > VS_META_TXN_OPS_MAX)
        return -EINVAL;
    struct raft_limits lim = {.value_max = c->frame_max};
    for (unsigned i = 0; i < txn->n_success; i++)
        if (raft__op_check(&txn->success[i], &lim) < 0)
            return -EINVAL;
    for (unsigned i = 0; i < txn->n_failure; i++)
        if (raft__op_check(&txn->failure[i], &lim) < 0)
            return -EINVAL;
    for (unsigned i = 0; i < txn->n_cmp; i++)
        if (!key_ok(txn->cmp[i].key_len) || txn->cmp[i].target > VS_META_CMP_LEASE ||
            txn->cmp[i].op > VS_META_GT)
            return -EINVAL;
    struct cl_op *o = cl_op_new(c, RO_TXN, txn_read_only(txn));
    if (!o)
        return c->closing ? -ECANCELED : -ENOMEM;
    raft__txn_encode(&o->body, txn);
    o->txn_cb = cb;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}

int vs_meta_put(struct vs_meta_client *c, const void *key, uint32_t key_len, const void *value,
                uint32_t value_len, uint64_t lease, unsigned flags, vs_meta_txn_cb cb, void *ctx)
{
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = key, .key_len = key_len,
                            .value = value, .value_len = value_len, .lease = lease,
                            .flags = (uint8_t)(flags & VS_META_PREV_KV)};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    return vs_meta_txn(c, &txn, cb, ctx);
}

int vs_meta_delete(struct vs_meta_client *c, const void *key, uint32_t key_len,
                   const void *range_end, uint32_t range_end_len, unsigned flags,
                   vs_meta_txn_cb cb, void *ctx)
{
    struct vs_meta_op op = {.type = VS_META_OP_DELETE, .key = key, .key_len = key_len,
                            .range_end = range_end, .range_end_len = range_end_len,
                            .flags = (uint8_t)(flags & VS_META_PREV_KV)};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    return vs_meta_txn(c, &txn, cb, ctx);
}

static int simple_op(struct meta_client *c, uint8_t op, bool idempotent, bool light,
                     const void *body, size_t len, struct cl_op **out)
{
    struct cl_op *o = cl_op_new(c, op, idempotent);
    if (!o)
        return c->closing ? -ECANCELED : -ENOMEM;
    o->light = light;
    raft__buf_bytes(&o->body, body, len);
    *out = o;
    return 0;
}

/* The compaction answer is a revision: give it to the caller as a txn result. */
static void compact_done(struct meta_client *c, struct cl_op *o, int status, const uint8_t *body,
                         size_t len)
{
    (void)c;
    struct vs_meta_txn_result res = {.revision = len >= 8 ? vs_get_u64(body) : 0,
                                     .succeeded = true};
    o->txn_cb(o->ctx, status, status == 0 ? &res : NULL);
}

int vs_meta_compact(struct vs_meta_client *vc, uint64_t rev, vs_meta_txn_cb cb, void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (rev == 0 || !cb)
        return -EINVAL;
    uint8_t body[8];
    vs_put_u64(body, rev);
    struct cl_op *o;
    int rc = simple_op(c, RO_COMPACT, false, false, body, sizeof(body), &o);
    if (rc < 0)
        return rc;
    o->txn_cb = cb;
    o->done_fn = compact_done;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}

int vs_meta_volatile_put(struct vs_meta_client *vc, const void *key, uint32_t key_len,
                         const void *value, uint32_t value_len, vs_meta_txn_cb cb, void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!key_ok(key_len) || !cb)
        return -EINVAL;
    struct cl_op *o = cl_op_new(c, RO_VOLATILE_PUT, true);
    if (!o)
        return c->closing ? -ECANCELED : -ENOMEM;
    raft__buf_blob(&o->body, key, key_len);
    raft__buf_blob(&o->body, value, value_len);
    o->txn_cb = cb;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}

/* ---- leases --------------------------------------------------------------------------- */

static int lease_op(struct meta_client *c, uint8_t op, uint64_t id, uint64_t ttl_ms,
                    vs_meta_lease_cb cb, void *ctx, cl_done_fn done, struct cl_op **out)
{
    uint8_t body[16];
    vs_put_u64(body, id);
    vs_put_u64(body + 8, ttl_ms);
    bool light = op == RO_LEASE_KEEPALIVE || op == RO_LEASE_TTL;
    struct cl_op *o;
    int rc = simple_op(c, op, light, light, body, op == RO_LEASE_GRANT ? 16 : 8, &o);
    if (rc < 0)
        return rc;
    o->lease_id = id;
    o->lease_cb = cb;
    o->done_fn = done;
    o->ctx = ctx;
    if (out)
        *out = o;
    return cl_op_submit(c, o);
}

int vs_meta_lease_grant(struct vs_meta_client *vc, uint64_t id, uint64_t ttl_ms,
                        vs_meta_lease_cb cb, void *ctx)
{
    if (!cb || ttl_ms < VS_META_LEASE_TTL_MIN_MS || ttl_ms > VS_META_LEASE_TTL_MAX_MS)
        return -EINVAL;
    return lease_op((struct meta_client *)vc, RO_LEASE_GRANT, id, ttl_ms, cb, ctx, NULL, NULL);
}

int vs_meta_lease_revoke(struct vs_meta_client *vc, uint64_t id, vs_meta_lease_cb cb, void *ctx)
{
    if (!cb || id == 0)
        return -EINVAL;
    return lease_op((struct meta_client *)vc, RO_LEASE_REVOKE, id, 0, cb, ctx, NULL, NULL);
}

int vs_meta_lease_keepalive(struct vs_meta_client *vc, uint64_t id, vs_meta_lease_cb cb,
                            void *ctx)
{
    if (!cb || id == 0)
        return -EINVAL;
    return lease_op((struct meta_client *)vc, RO_LEASE_KEEPALIVE, id, 0, cb, ctx, NULL, NULL);
}

int vs_meta_lease_ttl(struct vs_meta_client *vc, uint64_t id, vs_meta_lease_cb cb, void *ctx)
{
    if (!cb || id == 0)
        return -EINVAL;
    return lease_op((struct meta_client *)vc, RO_LEASE_TTL, id, 0, cb, ctx, NULL, NULL);
}

/* ---- lease keepers ----------------------------------------------------------------------- */

static uint64_t keeper_interval(const struct vs_meta_lease_keeper *k)
{
    return VS_MAX(k->ttl_ms / 3, 100u);
}

static void keeper_set(struct vs_meta_lease_keeper *k, enum vs_meta_lease_state st,
                       uint64_t ttl_ms)
{
    if (k->state == st)
        return;
    k->state = st;
    if (st == VS_META_LEASE_EXPIRED)
        k->dead = true;
    k->cb(k->ctx, st, ttl_ms);
}

static void keeper_done(struct meta_client *c, struct cl_op *o, int status, const uint8_t *body,
                        size_t len)
{
    struct vs_meta_lease_keeper *k = o->ctx;
    k->inflight = NULL;
    if (k->dead || c->closing)
        return; /* stopped meanwhile: vs_meta_lease_keep_stop or close frees it */
    uint64_t now = cl_now(c);
    if (status == 0) {
        k->last_ok_ms = now;
        k->next_ms = now + keeper_interval(k);
        keeper_set(k, VS_META_LEASE_ALIVE, len >= 8 ? vs_get_u64(body) : k->ttl_ms);
    } else if (status == VS_ELEASE) {
        keeper_set(k, VS_META_LEASE_EXPIRED, 0);
    } else {
        k->next_ms = now + VS_MIN(KEEPER_RETRY_MS, keeper_interval(k));
    }
}

void cl_keepers_tick(struct meta_client *c)
{
    uint64_t now = cl_now(c);
    struct vs_meta_lease_keeper **pp = &c->keepers;
    while (*pp) {
        struct vs_meta_lease_keeper *k = *pp;
        if (k->dead && !k->inflight) { /* expired, or stopped with a request in flight */
            *pp = k->next;
            free(k);
            continue;
        }
        pp = &k->next;
        if (k->dead)
            continue;
        /* One missed renewal makes the lease's fate unknown (vs_raft.h). */
        if (k->state != VS_META_LEASE_UNKNOWN && now - k->last_ok_ms > 2 * keeper_interval(k))
            keeper_set(k, VS_META_LEASE_UNKNOWN, 0);
        if (!k->inflight && now >= k->next_ms) {
            struct cl_op *o;
            if (lease_op(c, RO_LEASE_KEEPALIVE, k->id, 0, NULL, k, keeper_done, &o) == 0) {
                o->deadline_ms = now + keeper_interval(k);
                k->inflight = o;
            }
            k->next_ms = now + keeper_interval(k);
        }
    }
}

int vs_meta_lease_keep(struct vs_meta_client *vc, uint64_t id, uint64_t ttl_ms,
                       vs_meta_lease_state_cb cb, void *ctx, struct vs_meta_lease_keeper **out)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!cb || id == 0 || ttl_ms < VS_META_LEASE_TTL_MIN_MS)
        return -EINVAL;
    struct vs_meta_lease_keeper *k = calloc(1, sizeof(*k));
    if (!k)
        return -ENOMEM;
    k->client = c;
    k->id = id;
    k->ttl_ms = ttl_ms;
    k->cb = cb;
    k->ctx = ctx;
    k->last_ok_ms = cl_now(c);
    k->next_ms = cl_now(c);
    k->next = c->keepers;
    c->keepers = k;
    *out = k;
    return 0;
}

void vs_meta_lease_keep_stop(struct vs_meta_lease_keeper *k)
{
    struct meta_client *c = k->client;
    k->dead = true;
    if (k->inflight) {
        cl_op_cancel(c, k->inflight);
        k->inflight = NULL;
    }
    /* freed by the next tick */
}

void cl_keepers_close(struct meta_client *c)
{
    while (c->keepers) {
        struct vs_meta_lease_keeper *k = c->keepers;
        c->keepers = k->next;
        free(k);
    }
}

/* ---- watches -------------------------------------------------------------------------- */

static void watch_free(struct meta_client *c, struct vs_meta_watch *w)
{
    struct vs_meta_watch **pp = &c->watches;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp)
        *pp = w->next;
    free(w->key);
    free(w->end);
    free(w);
}

static void watch_end(struct meta_client *c, struct vs_meta_watch *w, int status)
{
    if (!w->dead)
        w->cb(w->ctx, status, NULL, 0, w->last_rev);
    watch_free(c, w);
}

static void watch_created(struct meta_client *c, struct cl_op *o, int status,
                          const uint8_t *body, size_t len)
{
    struct vs_meta_watch *w = o->ctx;
    w->create_op = NULL;
    w->creating = false;
    if (w->dead) {
        watch_free(c, w); /* cancelled while being created */
        return;
    }
    if (status != 0 || len != 8) {
        watch_end(c, w, status ? status : -EPROTO);
        return;
    }
    uint64_t start = vs_get_u64(body);
    if (w->last_rev == 0 && start > 0)
        w->last_rev = start - 1; /* resume from here if the connection drops */
    w->conn = o->conn;
    w->active = true;
}

static int watch_create(struct meta_client *c, struct vs_meta_watch *w)
{
    struct cl_op *o = cl_op_new(c, RO_WATCH, true);
    if (!o)
        return -ENOMEM;
    raft__buf_u64(&o->body, w->id);
    raft__buf_u64(&o->body, w->last_rev ? w->last_rev + 1 : w->start_rev);
    raft__buf_blob(&o->body, w->key, w->key_len);
    raft__buf_blob(&o->body, w->end, w->end_len);
    o->done_fn = watch_created;
    o->ctx = w;
    o->deadline_ms = 0; /* a watch waits for the service as long as it takes */
    w->creating = true;
    w->active = false;
    w->conn = NULL;
    w->create_op = o;
    return cl_op_submit(c, o);
}

int vs_meta_watch(struct vs_meta_client *vc, const void *key, uint32_t key_len,
                  const void *range_end, uint32_t range_end_len, uint64_t start_rev,
                  vs_meta_watch_cb cb, void *ctx, struct vs_meta_watch **out)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!key_ok(key_len) || range_end_len > VS_META_KEY_MAX || !cb || c->closing)
        return -EINVAL;
    struct vs_meta_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->client = c;
    w->id = ++c->next_watch_id;
    w->key = malloc(key_len);
    w->end = malloc(range_end_len ? range_end_len : 1);
    if (!w->key || !w->end) {
        free(w->key);
        free(w->end);
        free(w);
        return -ENOMEM;
    }
    memcpy(w->key, key, key_len);
    if (range_end_len)
        memcpy(w->end, range_end, range_end_len);
    w->key_len = key_len;
    w->end_len = range_end_len;
    w->start_rev = start_rev;
    w->cb = cb;
    w->ctx = ctx;
    w->next = c->watches;
    c->watches = w;
    int rc = watch_create(c, w);
    if (rc < 0) {
        watch_free(c, w);
        return rc;
    }
    *out = w;
    return 0;
}

void vs_meta_watch_cancel(struct vs_meta_watch *w)
{
    struct meta_client *c = w->client;
    w->dead = true;
    if (w->active && w->conn && w->conn->ready) {
        uint8_t body[8];
        vs_put_u64(body, w->id);
        size_t off = raft__conn_frame_begin(&w->conn->c, RF_REQ);
        raft__req_header(&w->conn->c.out, ++c->next_req_id, RO_WATCH_CANCEL, 0);
        raft__buf_bytes(&w->conn->c.out, body, sizeof(body));
        raft__conn_frame_end(&w->conn->c, off);
    }
    if (w->creating && w->create_op && w->create_op->where == OP_QUEUED) {
        cl_op_cancel(c, w->create_op);
        w->create_op = NULL;
        w->creating = false;
    }
    if (!w->creating)
        watch_free(c, w); /* otherwise freed when its create answer arrives */
}

void cl_watch_frame(struct meta_client *c, struct cl_conn *cc, uint16_t type, const uint8_t *p,
                    size_t len)
{
    if (len < 12)
        return;
    uint64_t id = vs_get_u64(p);
    struct vs_meta_watch *w = c->watches;
    while (w && !(w->id == id && w->conn == cc && w->active && !w->dead))
        w = w->next;
    if (!w)
        return; /* cancelled, or an old connection's copy */
    if (type == RF_WATCH_END) {
        watch_end(c, w, (int32_t)vs_get_u32(p + 8));
        return;
    }
    struct vs_meta_event *ev;
    unsigned n;
    uint64_t rev;
    if (raft__events_decode(p + 8, len - 8, &ev, &n, &rev) < 0) {
        raft__conn_close(&cc->c);
        return;
    }
    if (rev > w->last_rev) {
        w->last_rev = rev; /* complete up to here: resume after it */
        if (n > 0)
            w->cb(w->ctx, 0, ev, n, rev);
    }
    free(ev);
}

void cl_watches_lost(struct meta_client *c, struct cl_conn *cc)
{
    for (struct vs_meta_watch *w = c->watches; w; w = w->next) {
        if (w->active && w->conn == cc && !w->dead && !c->closing) {
            if (watch_create(c, w) < 0)
                w->active = false; /* retried at the next reconnect */
        }
    }
}

void cl_watches_resume(struct meta_client *c, struct cl_conn *cc)
{
    (void)cc;
    for (struct vs_meta_watch *w = c->watches; w; w = w->next)
        if (!w->active && !w->creating && !w->dead)
            watch_create(c, w);
}

void cl_watches_close(struct meta_client *c)
{
    while (c->watches) {
        struct vs_meta_watch *w = c->watches;
        if (!w->dead)
            w->cb(w->ctx, -ECANCELED, NULL, 0, w->last_rev);
        c->watches = w->next;
        free(w->key);
        free(w->end);
        free(w);
    }
}

/* ---- status and membership --------------------------------------------------------------- */

int vs_meta_status(struct vs_meta_client *vc, const char *address, vs_meta_status_cb cb,
                   void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!cb)
        return -EINVAL;
    struct cl_op *o;
    int rc = simple_op(c, RO_STATUS, true, false, NULL, 0, &o);
    if (rc < 0)
        return rc;
    if (address && address[0]) {
        o->fixed = cl_fixed_conn(c, address);
        if (!o->fixed) {
            cl_op_cancel(c, o);
            return -EINVAL;
        }
    }
    o->status_cb = cb;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}

int vs_meta_member_add(struct vs_meta_client *vc, uint64_t id, const char *address,
                       vs_meta_status_cb cb, void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    struct sockaddr_storage sa;
    if (!cb || id == 0 || !address || raft__parse_address(address, &sa) < 0)
        return -EINVAL;
    struct cl_op *o;
    int rc = simple_op(c, RO_MEMBER_ADD, false, false, NULL, 0, &o);
    if (rc < 0)
        return rc;
    raft__buf_u64(&o->body, id);
    raft__buf_blob(&o->body, address, (uint32_t)strlen(address));
    o->status_cb = cb;
    o->ctx = ctx;
    if (c->opts.op_timeout_ms)
        o->deadline_ms = cl_now(c) + VS_MAX(c->opts.op_timeout_ms, 130000u);
    return cl_op_submit(c, o);
}

int vs_meta_member_remove(struct vs_meta_client *vc, uint64_t id, vs_meta_status_cb cb,
                          void *ctx)
{
    struct meta_client *c = (struct meta_client *)vc;
    if (!cb || id == 0)
        return -EINVAL;
    uint8_t body[8];
    vs_put_u64(body, id);
    struct cl_op *o;
    int rc = simple_op(c, RO_MEMBER_REMOVE, false, false, body, sizeof(body), &o);
    if (rc < 0)
        return rc;
    o->status_cb = cb;
    o->ctx = ctx;
    return cl_op_submit(c, o);
}
