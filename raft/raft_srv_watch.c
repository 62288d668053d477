/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_srv_watch.c -- watches, served by any member from its applied state.
 *
 * NOTES
 *
 * A watch has a key range and next_rev, the first revision it has not been
 * sent. At the end of every loop turn (after the turn's entries are applied,
 * and again before the turn's commit when entries were applied, so events
 * leave with the replies of the same writes):
 *  - a synced watch (it has every event before this turn's batch) gets the
 *    batch's events that are in its range and have revision >= next_rev,
 *    straight from the in-memory list the state machine built while applying;
 *  - an unsynced watch (created at an old revision, or after a snapshot
 *    restore) reads the history table from next_rev, a bounded window per
 *    turn, until it reaches the current revision and becomes synced.
 * Invariants: (1) next_rev only grows; (2) a watch is sent every event of its
 * range with revision >= its start, in order, each revision whole (the
 * history reader stops only at revision boundaries); (3) a start below the
 * compaction revision, or a history gap found while catching up, ends the
 * watch with VS_ECOMPACTED -- never a silent skip.
 *
 * Frames: RF_WATCH = watch_id u64, revision u64 (the watch is complete up to
 * it), n u32, events; RF_WATCH_END = watch_id u64, status i32. A synced watch
 * with no matching events gets an empty RF_WATCH at most every 5 s when the
 * store moved on, so a client resuming after a reconnect asks for a recent
 * revision rather than one that may have been compacted.
 */
#include "raft_srv.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CATCH_UP_EVENTS_MAX 2048
#define PROGRESS_MS 5000

static void watch_free(struct srv_watch *w)
{
    free(w->key);
    free(w->end);
    free(w);
}

static void unlink_watch(struct meta_server *s, struct srv_watch *w)
{
    if (w->next)
        w->next->prev = w->prev;
    if (w->prev)
        w->prev->next = w->next;
    else
        s->watches = w->next;
    if (w->conn) {
        struct srv_watch **pp = &w->conn->watches;
        while (*pp && *pp != w)
            pp = &(*pp)->conn_next;
        if (*pp)
            *pp = w->conn_next;
    }
}

static uint8_t *dup_bytes(const uint8_t *p, uint32_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (d && len)
        memcpy(d, p, len);
    return d;
}

int srv_watch_add(struct meta_server *s, struct srv_conn *sc, uint64_t id, const uint8_t *key,
                  uint32_t key_len, const uint8_t *end, uint32_t end_len, uint64_t start_rev,
                  vs_meta_watch_cb cb, void *ctx, uint64_t *first_rev)
{
    struct raft_sm *sm = &s->node.sm;
    if (sc)
        for (struct srv_watch *w = sc->watches; w; w = w->conn_next)
            if (w->id == id)
                return -EEXIST;
    if (start_rev != 0 && start_rev < sm->compact_rev)
        return VS_ECOMPACTED;
    struct srv_watch *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->key = dup_bytes(key, key_len);
    w->end = dup_bytes(end, end_len);
    if (!w->key || !w->end) {
        watch_free(w);
        return -ENOMEM;
    }
    w->key_len = key_len;
    w->end_len = end_len;
    w->id = sc ? id : ++s->next_watch_id;
    w->conn = sc;
    w->cb = cb;
    w->ctx = ctx;
    w->next_rev = start_rev ? start_rev : sm->rev + 1;
    w->synced = w->next_rev > sm->rev;
    if (first_rev)
        *first_rev = w->next_rev;
    w->progress_rev = w->next_rev - 1;
    w->progress_ms = srv_now(s);
    w->next = s->watches;
    if (s->watches)
        s->watches->prev = w;
    s->watches = w;
    if (sc) {
        w->conn_next = sc->watches;
        sc->watches = w;
    }
    return 0;
}

static void send_end(struct meta_server *s, struct srv_watch *w, int status)
{
    if (w->conn) {
        uint8_t body[12];
        vs_put_u64(body, w->id);
        vs_put_u32(body + 8, (uint32_t)status);
        raft__conn_send(&w->conn->c, RF_WATCH_END, body, sizeof(body));
    } else if (w->cb) {
        w->cb(w->ctx, status, NULL, 0, s->node.sm.rev);
    }
    w->dead = true;
}

int srv_watch_cancel(struct meta_server *s, struct srv_conn *sc, uint64_t id)
{
    for (struct srv_watch *w = s->watches; w; w = w->next) {
        if (w->conn == sc && w->id == id && !w->dead) {
            w->dead = true; /* reaped after the next delivery; no callback */
            return 0;
        }
    }
    return -ENOENT;
}

/* Sends events (encoded, n of them) to the watch, complete up to rev. */
static void send_events(struct meta_server *s, struct srv_watch *w, const struct raft_buf *ev,
                        unsigned n, uint64_t rev)
{
    w->progress_rev = rev;
    w->progress_ms = srv_now(s);
    if (w->conn) {
        struct raft_conn *c = &w->conn->c;
        size_t off = raft__conn_frame_begin(c, RF_WATCH);
        raft__buf_u64(&c->out, w->id);
        raft__buf_u64(&c->out, rev);
        raft__buf_u32(&c->out, n);
        raft__buf_bytes(&c->out, ev->p, ev->len);
        raft__conn_frame_end(c, off);
        return;
    }
    struct raft_buf b;
    raft__buf_init(&b);
    raft__buf_u64(&b, rev);
    raft__buf_u32(&b, n);
    raft__buf_bytes(&b, ev->p, ev->len);
    struct vs_meta_event *evs = NULL;
    unsigned count = 0;
    uint64_t r;
    int rc = b.oom ? -ENOMEM : raft__events_decode(b.p, b.len, &evs, &count, &r);
    if (rc == 0)
        w->cb(w->ctx, 0, evs, count, rev);
    free(evs);
    raft__buf_free(&b);
    if (rc < 0)
        send_end(s, w, rc);
}

/* The synced path: filter the batch the state machine produced. */
static void deliver_batch(struct meta_server *s, struct srv_watch *w, struct raft_buf *tmp)
{
    struct raft_sm *sm = &s->node.sm;
    struct vs_cursor c = vs_cursor_make(sm->events.p, sm->events.len);
    unsigned n = 0;
    raft__buf_reset(tmp);
    for (uint32_t i = 0; i < sm->n_events; i++) {
        const uint8_t *start = c.p;
        vs_rd_u8(&c);
        uint32_t klen = vs_rd_u32(&c);
        const uint8_t *key = c.p;
        vs_rd_skip(&c, klen);
        uint32_t vlen = vs_rd_u32(&c);
        vs_rd_skip(&c, vlen + 8);
        uint64_t mod_rev = vs_rd_u64(&c);
        vs_rd_skip(&c, 16);
        VS_ASSERT(c.ok);
        if (mod_rev >= w->next_rev &&
            raft__key_in_range(key, klen, w->key, w->key_len, w->end, w->end_len)) {
            raft__buf_bytes(tmp, start, (size_t)(c.p - start));
            n++;
        }
    }
    w->next_rev = sm->rev + 1;
    if (n > 0)
        send_events(s, w, tmp, n, sm->rev);
}

/* The catching-up path: read the history. */
static void deliver_history(struct meta_server *s, struct srv_watch *w, struct raft_buf *tmp)
{
    struct raft_sm *sm = &s->node.sm;
    raft__buf_reset(tmp);
    unsigned n = 0;
    uint64_t next = w->next_rev;
    int rc = raft__sm_events(sm, w->next_rev, w->key, w->key_len, w->end, w->end_len,
                             CATCH_UP_EVENTS_MAX, tmp, &n, &next);
    if (rc < 0) {
        send_end(s, w, rc);
        return;
    }
    VS_ASSERT(next >= w->next_rev);
    w->next_rev = next;
    w->synced = next > sm->rev;
    if (n > 0)
        send_events(s, w, tmp, n, next - 1);
}

void srv_watches_deliver(struct meta_server *s)
{
    struct raft_sm *sm = &s->node.sm;
    struct raft_buf tmp;
    raft__buf_init(&tmp);
    uint64_t now = srv_now(s);
    for (struct srv_watch *w = s->watches; w; w = w->next) {
        if (w->dead || (w->conn && w->conn->c.state != RAFT_CONN_OPEN))
            continue;
        if (w->synced && sm->n_events > 0)
            deliver_batch(s, w, &tmp);
        else if (!w->synced)
            deliver_history(s, w, &tmp);
        if (w->synced && !w->dead && w->conn && sm->rev > w->progress_rev &&
            now - w->progress_ms >= PROGRESS_MS) {
            raft__buf_reset(&tmp);
            w->next_rev = sm->rev + 1;
            send_events(s, w, &tmp, 0, sm->rev); /* progress: nothing new in range */
        }
    }
    raft__buf_free(&tmp);
    raft__sm_events_clear(sm);
    struct srv_watch *w = s->watches;
    while (w) {
        struct srv_watch *next = w->next;
        if (w->dead) {
            unlink_watch(s, w);
            watch_free(w);
        }
        w = next;
    }
}

void srv_watches_resync(struct meta_server *s)
{
    for (struct srv_watch *w = s->watches; w; w = w->next)
        w->synced = false;
}

void srv_watches_drop_conn(struct meta_server *s, struct srv_conn *sc)
{
    while (sc->watches) {
        struct srv_watch *w = sc->watches;
        unlink_watch(s, w);
        watch_free(w);
    }
}

void srv_watches_close(struct meta_server *s)
{
    while (s->watches) {
        struct srv_watch *w = s->watches;
        if (!w->conn && !w->dead && w->cb)
            w->cb(w->ctx, -ECANCELED, NULL, 0, s->node_open ? s->node.sm.rev : 0);
        unlink_watch(s, w);
        watch_free(w);
    }
}

/* ---- the in-process API ------------------------------------------------------------- */

int vs_raft_server_watch(struct vs_raft_server *vs, const void *key, uint32_t key_len,
                         const void *range_end, uint32_t range_end_len, uint64_t start_rev,
                         vs_meta_watch_cb cb, void *ctx, uint64_t *watch_id)
{
    struct meta_server *s = (struct meta_server *)vs;
    if (key_len == 0 || key_len > VS_META_KEY_MAX || range_end_len > VS_META_KEY_MAX || !cb)
        return -EINVAL;
    int rc = srv_watch_add(s, NULL, 0, key, key_len, range_end, range_end_len, start_rev, cb,
                           ctx, NULL);
    if (rc == 0)
        *watch_id = s->next_watch_id;
    return rc;
}

int vs_raft_server_watch_cancel(struct vs_raft_server *vs, uint64_t watch_id)
{
    return srv_watch_cancel((struct meta_server *)vs, NULL, watch_id);
}
