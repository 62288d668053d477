/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_server.c -- one member of the metadata service: the database, the raft
 * node, the TCP listener shared by peers and clients, the outbound peer
 * connections with reconnects, and the end-of-turn hook that batches a loop
 * turn's commits and sends.
 *
 * NOTES
 *
 * Connections. Every connection starts with a HELLO frame saying what it is
 * (peer or client) and which cluster it belongs to; a member of another
 * cluster is refused (VS_EWRONGCLUSTER) and logged. Each member opens one
 * outbound connection to every other member of the configuration and sends
 * its raft messages there; it receives theirs on the connections they open.
 * A lost connection is retried with a back-off from 50 ms to 2 s.
 *
 * A loop turn (STYLE B16): frames are handled as they arrive (queueing
 * proposals, replies and raft messages), then the check handle (after the I/O
 * callbacks) and the prepare handle (before the loop blocks) run the end of
 * the turn: submit the turn's proposals as one raft entry batch, send
 * everything queued, commit the turn's transaction (one fsync), tell raft what
 * is durable, serve reads whose index was applied, deliver watch events, and
 * send again.
 *
 * Leadership (vs_raft_server_on_leader): a new leader proposes a no-op entry
 * of its term; once that is applied it knows every committed entry is applied
 * locally, and only then does it serve reads and keepalives, load the lease
 * table, and tell the monitor logic "leader".
 */
#include "raft_srv.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void conn_frame(struct raft_conn *c, uint16_t type, const uint8_t *p, size_t len);
static void server_handle_closed(uv_handle_t *h);
static void conn_connected(struct raft_conn *c, int status);
static void conn_closed(struct raft_conn *c);
static const struct raft_conn_ops srv_conn_ops = {conn_frame, conn_connected, conn_closed};
static void maybe_finish_close(struct meta_server *s);

uint64_t srv_now(struct meta_server *s)
{
    return uv_now(s->loop);
}

static struct srv_conn *conn_new(struct meta_server *s, int kind)
{
    struct srv_conn *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    sc->s = s;
    sc->kind = kind;
    sc->c.owner = sc;
    sc->next = s->conns;
    if (s->conns)
        s->conns->prev = sc;
    s->conns = sc;
    return sc;
}

/* ---- peers ------------------------------------------------------------------------ */

static void peer_retry_cb(uv_timer_t *t);

static void peer_connect(struct srv_peer *p)
{
    struct meta_server *s = p->s;
    if (p->conn || s->closing || s->fatal || !p->in_use)
        return;
    struct srv_conn *sc = conn_new(s, SC_PEER_OUT);
    if (!sc)
        return;
    sc->peer = p;
    sc->c.frame_max = SRV_HELLO_FRAME_MAX;
    snprintf(sc->c.name, sizeof(sc->c.name), "peer %" PRIu64 " (%.40s)", p->id, p->address);
    p->conn = sc;
    if (raft__conn_connect(&sc->c, s->loop, p->address, &srv_conn_ops, &s->flusher) < 0) {
        VS_WARN("meta", "member %" PRIu64 " has a bad address '%s'", p->id, p->address);
        p->conn = NULL;
        if (sc->next)
            sc->next->prev = sc->prev;
        if (sc->prev)
            sc->prev->next = sc->next;
        else
            s->conns = sc->next;
        free(sc);
    }
}

static void peer_schedule(struct srv_peer *p)
{
    if (p->s->closing || !p->in_use)
        return;
    p->backoff_ms = p->backoff_ms ? VS_MIN(p->backoff_ms * 2, 2000u) : 50u;
    p->retry_armed = true;
    uv_timer_start(&p->retry, peer_retry_cb, p->backoff_ms, 0);
}

static void peer_retry_cb(uv_timer_t *t)
{
    struct srv_peer *p = t->data;
    p->retry_armed = false;
    peer_connect(p);
}

static struct srv_peer *peer_slot(struct meta_server *s, uint64_t id, const char *address)
{
    struct srv_peer *free_slot = NULL;
    for (unsigned i = 0; i < VS_RAFT_MEMBERS_MAX; i++) {
        struct srv_peer *p = &s->peers[i];
        if (p->in_use && p->id == id) {
            if (address && strcmp(p->address, address) != 0) {
                snprintf(p->address, sizeof(p->address), "%s", address);
                if (p->conn)
                    raft__conn_close(&p->conn->c); /* reconnects to the new address */
            }
            return p;
        }
        if (!p->in_use && !free_slot && !uv_is_closing((uv_handle_t *)&p->retry))
            free_slot = p;
    }
    if (!free_slot || !address)
        return NULL;
    free_slot->in_use = true;
    free_slot->id = id;
    free_slot->backoff_ms = 0;
    snprintf(free_slot->address, sizeof(free_slot->address), "%s", address);
    peer_connect(free_slot);
    return free_slot;
}

static bool peer_cut(const struct meta_server *s, uint64_t id)
{
    for (unsigned i = 0; i < s->n_cut; i++)
        if (s->cut_ids[i] == id)
            return true;
    return false;
}

void vs_raft_server_cut(struct vs_raft_server *vs, uint64_t peer_id, bool cut)
{
    struct meta_server *s = (struct meta_server *)vs;
    for (unsigned i = 0; i < s->n_cut; i++) {
        if (s->cut_ids[i] == peer_id) {
            if (!cut)
                s->cut_ids[i] = s->cut_ids[--s->n_cut];
            return;
        }
    }
    if (cut && s->n_cut < VS_RAFT_MEMBERS_MAX)
        s->cut_ids[s->n_cut++] = peer_id;
}

struct raft_conn *srv_peer_conn(void *ctx, uint64_t id, const char *address)
{
    struct meta_server *s = ctx;
    struct srv_peer *p = peer_slot(s, id, address);
    if (peer_cut(s, id))
        return NULL; /* vs_raft_server_cut: the frame is lost on the way */
    if (!p || !p->open || !p->conn)
        return NULL;
    if (raft__conn_backlog(&p->conn->c) > SRV_PEER_BACKLOG_MAX) {
        p->dropped++;
        return NULL;
    }
    return &p->conn->c;
}

/* Keeps one outbound connection to every other member of the configuration. */
static void peers_sync(struct meta_server *s)
{
    const struct raft_configuration *conf = &s->node.raft.configuration;
    for (unsigned i = 0; i < conf->n; i++)
        if (conf->servers[i].id != s->opts.id)
            peer_slot(s, conf->servers[i].id, conf->servers[i].address);
    for (unsigned i = 0; i < VS_RAFT_MEMBERS_MAX; i++) {
        struct srv_peer *p = &s->peers[i];
        bool member = false;
        for (unsigned j = 0; j < conf->n && p->in_use; j++)
            member |= conf->servers[j].id == p->id;
        if (p->in_use && !member && conf->n > 0) {
            p->in_use = false;
            p->open = false;
            uv_timer_stop(&p->retry);
            if (p->conn)
                raft__conn_close(&p->conn->c);
        }
    }
}

/* ---- handshakes ----------------------------------------------------------------- */

static void send_hello(struct meta_server *s, struct srv_conn *sc)
{
    size_t off = raft__conn_frame_begin(&sc->c, RF_HELLO);
    raft__buf_u16(&sc->c.out, SRV_PROTO_VERSION);
    raft__buf_u8(&sc->c.out, HELLO_PEER);
    raft__buf_u8(&sc->c.out, 0);
    raft__buf_u64(&sc->c.out, s->cluster_id);
    raft__buf_u64(&sc->c.out, s->opts.id);
    raft__buf_blob(&sc->c.out, s->address, (uint32_t)strlen(s->address));
    raft__conn_frame_end(&sc->c, off);
}

static void send_hello_ack(struct meta_server *s, struct srv_conn *sc, int status)
{
    size_t off = raft__conn_frame_begin(&sc->c, RF_HELLO_ACK);
    raft__buf_u32(&sc->c.out, (uint32_t)status);
    raft__buf_u64(&sc->c.out, s->cluster_id);
    raft__buf_u64(&sc->c.out, s->opts.id);
    raft__buf_u32(&sc->c.out, s->client_frame_max);
    raft__conn_frame_end(&sc->c, off);
}

/* A joining member (no cluster id yet) takes the id of the first peer that
 * talks to it; from then on it refuses every other cluster. */
static int adopt_cluster(struct meta_server *s, uint64_t theirs)
{
    if (s->cluster_id != 0 || theirs == 0)
        return 0;
    int rc = raft__db_begin(s->db);
    if (rc == 0)
        rc = raft__db_meta_set_u64(s->db, "cluster_id", theirs);
    if (rc < 0) {
        raft__node_fail(&s->node, rc, "saving the cluster id");
        return rc;
    }
    raft__db_mark_durable(s->db);
    s->cluster_id = theirs;
    VS_INFO("meta", "joined cluster %016" PRIx64, theirs);
    return 0;
}

static bool cluster_ok(struct meta_server *s, uint64_t theirs)
{
    return theirs == 0 || s->cluster_id == 0 || theirs == s->cluster_id;
}

static void handle_hello(struct meta_server *s, struct srv_conn *sc, const uint8_t *p, size_t len)
{
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    uint16_t version = vs_rd_u16(&c);
    uint8_t kind = vs_rd_u8(&c);
    vs_rd_u8(&c);
    uint64_t cluster = vs_rd_u64(&c), id = vs_rd_u64(&c);
    uint32_t alen = vs_rd_u32(&c);
    if (!c.ok || version != SRV_PROTO_VERSION || alen > VS_RAFT_ADDRESS_MAX ||
        vs_cursor_left(&c) != alen || (kind != HELLO_PEER && kind != HELLO_CLIENT)) {
        VS_WARN("meta", "%s: bad hello: closing", sc->c.name);
        send_hello_ack(s, sc, VS_EPROTO);
        raft__conn_close(&sc->c);
        return;
    }
    if (!cluster_ok(s, cluster)) {
        VS_WARN("meta", "%s: refused: it belongs to cluster %016" PRIx64 ", we are %016" PRIx64,
                sc->c.name, cluster, s->cluster_id);
        send_hello_ack(s, sc, VS_EWRONGCLUSTER);
        raft__conn_flush(&sc->c);
        raft__conn_close(&sc->c);
        return;
    }
    sc->hello_done = true;
    if (kind == HELLO_PEER) {
        if (id == 0 || alen == 0 || adopt_cluster(s, cluster) < 0) {
            raft__conn_close(&sc->c);
            return;
        }
        sc->kind = SC_PEER_IN;
        sc->peer_id = id;
        memcpy(sc->peer_addr, c.p, alen);
        sc->peer_addr[alen] = 0;
        sc->c.frame_max = SRV_PEER_FRAME_MAX;
        snprintf(sc->c.name, sizeof(sc->c.name), "peer %" PRIu64 " (in)", id);
    } else {
        sc->kind = SC_CLIENT;
        sc->c.frame_max = s->client_frame_max;
    }
    send_hello_ack(s, sc, 0);
}

static void handle_hello_ack(struct meta_server *s, struct srv_conn *sc, const uint8_t *p,
                             size_t len)
{
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    int status = (int32_t)vs_rd_u32(&c);
    uint64_t cluster = vs_rd_u64(&c), id = vs_rd_u64(&c);
    struct srv_peer *peer = sc->peer;
    if (!c.ok || !peer || status != 0 || id != peer->id || !cluster_ok(s, cluster)) {
        VS_WARN("meta", "%s: handshake refused: %s (member id %" PRIu64 ", cluster %016" PRIx64
                        ")",
                sc->c.name, c.ok ? vs_strerror(status) : "malformed", id, cluster);
        raft__conn_close(&sc->c);
        return;
    }
    if (adopt_cluster(s, cluster) < 0)
        return;
    sc->hello_done = true;
    peer->open = true;
    peer->backoff_ms = 0;
    VS_DEBUG_LOG("meta", "connected to member %" PRIu64 " at %s", peer->id, peer->address);
}

/* ---- frames --------------------------------------------------------------------- */

static void conn_frame(struct raft_conn *c, uint16_t type, const uint8_t *p, size_t len)
{
    struct srv_conn *sc = c->owner;
    struct meta_server *s = sc->s;
    if (s->closing)
        return;
    if (!sc->hello_done) {
        if (sc->kind == SC_UNKNOWN && type == RF_HELLO)
            handle_hello(s, sc, p, len);
        else if (sc->kind == SC_PEER_OUT && type == RF_HELLO_ACK)
            handle_hello_ack(s, sc, p, len);
        else
            raft__conn_close(c);
        return;
    }
    if (sc->kind == SC_CLIENT && type == RF_REQ) {
        srv_handle_request(s, sc, p, len);
    } else if (sc->kind == SC_PEER_IN && peer_cut(s, sc->peer_id)) {
        return; /* vs_raft_server_cut: never arrived */
    } else if (sc->kind == SC_PEER_IN && type == RF_RAFT) {
        s->leader_rx_ms = srv_now(s);
        raft__node_receive(&s->node, sc->peer_id, sc->peer_addr, p, len);
    } else if (sc->kind == SC_PEER_IN && type == RF_RI_PING) {
        srv_ri_ping(s, sc, p, len);
    } else if (sc->kind == SC_PEER_IN && type == RF_RI_ACK) {
        srv_ri_ack(s, sc, p, len);
    } else {
        VS_WARN("meta", "%s: unexpected frame type %u: closing", c->name, type);
        s->bad_frames++;
        raft__conn_close(c);
    }
}

static void conn_connected(struct raft_conn *c, int status)
{
    struct srv_conn *sc = c->owner;
    (void)status;
    if (sc->kind == SC_PEER_OUT && !sc->s->closing)
        send_hello(sc->s, sc);
}

/* The leader's connection closed: most likely its process is gone (a crash
 * closes its sockets at once). Rather than waiting out the election timeout,
 * this member starts an election after twice the heartbeat interval (plus two
 * more for each voter ranked before it, so they do not split the vote) - if
 * nothing arrived from the leader meanwhile (a live leader reconnects and
 * sends a heartbeat well within that). Raft itself still checks that we are a
 * voter following that leader with a matching, durable log; starting an
 * election early is always safe, it only costs a term if the leader lives. A
 * partition closes no connection, so there the election timeout rules. */
static void leader_conn_closed(struct meta_server *s, uint64_t peer_id)
{
    if (!s->node_open || s->fatal || raft_state(&s->node.raft) != RAFT_FOLLOWER)
        return;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&s->node.raft, &lid, &laddr);
    if (lid == 0 || lid != peer_id)
        return;
    const struct raft_configuration *conf = &s->node.raft.configuration;
    unsigned rank = 0;
    bool voter = false;
    for (unsigned i = 0; i < conf->n; i++) {
        if (conf->servers[i].role != RAFT_VOTER || conf->servers[i].id == lid)
            continue;
        if (conf->servers[i].id == s->opts.id)
            voter = true;
        else if (conf->servers[i].id < s->opts.id)
            rank++;
    }
    if (!voter)
        return;
    uint64_t hb = s->opts.heartbeat_timeout_ms;
    s->gone_leader = lid;
    s->gone_at_ms = srv_now(s);
    s->gone_check_ms = s->gone_at_ms + 2 * hb + rank * 2 * hb;
}

static void leader_gone_tick(struct meta_server *s)
{
    if (!s->gone_leader || srv_now(s) < s->gone_check_ms)
        return;
    uint64_t id = s->gone_leader;
    s->gone_leader = 0;
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&s->node.raft, &lid, &laddr);
    if (raft_state(&s->node.raft) != RAFT_FOLLOWER || lid != id || s->leader_rx_ms >= s->gone_at_ms)
        return;
    char addr[VS_RAFT_ADDRESS_MAX + 1];
    snprintf(addr, sizeof(addr), "%s", laddr ? laddr : "");
    raft__node_leader_gone(&s->node, lid, addr);
    bool started = raft_state(&s->node.raft) == RAFT_CANDIDATE;
    s->quick_elections += started;
    VS_INFO("meta", "the connection from leader %" PRIu64 " closed and it stayed silent: %s", id,
            started ? "starting an election" : "raft declined an early election");
}

static void conn_closed(struct raft_conn *c)
{
    struct srv_conn *sc = c->owner;
    struct meta_server *s = sc->s;
    if (sc->next)
        sc->next->prev = sc->prev;
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        s->conns = sc->next;
    if (sc->kind == SC_PEER_IN && !s->closing)
        leader_conn_closed(s, sc->peer_id);
    if (sc->kind == SC_PEER_OUT && sc->peer && sc->peer->conn == sc) {
        struct srv_peer *p = sc->peer;
        p->conn = NULL;
        p->open = false;
        peer_schedule(p);
    }
    srv_forget_conn(s, sc);
    srv_watches_drop_conn(s, sc);
    free(sc);
    maybe_finish_close(s);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct meta_server *s = server->data;
    if (status < 0 || s->closing)
        return;
    struct srv_conn *sc = conn_new(s, SC_UNKNOWN);
    if (!sc)
        return;
    sc->c.frame_max = SRV_HELLO_FRAME_MAX;
    snprintf(sc->c.name, sizeof(sc->c.name), "connection");
    if (raft__conn_accept(&sc->c, server, &srv_conn_ops, &s->flusher) < 0) {
        s->conns = sc->next;
        if (s->conns)
            s->conns->prev = NULL;
        free(sc);
    }
}

/* ---- replies ------------------------------------------------------------------- */

void srv_leader_hint(struct meta_server *s, uint64_t *id, const char **address)
{
    raft_id lid = 0;
    const char *addr = NULL;
    if (s->node_open && !s->fatal)
        raft_leader(&s->node.raft, &lid, &addr);
    *id = lid;
    *address = addr ? addr : "";
}

static void reply_inprocess(const struct srv_sink *k, int status, const void *body, size_t len)
{
    if (k->status_cb) {
        struct vs_raft_status st;
        if (status == 0 && raft__status_decode(body, len, &st) < 0)
            status = -EPROTO;
        k->status_cb(k->ctx, status, status == 0 ? &st : NULL);
        return;
    }
    struct vs_meta_txn_result res = {0};
    void *arena = NULL;
    if (status == 0 && len > 0 && raft__txn_result_decode(body, len, &res, &arena) < 0)
        status = -EPROTO;
    if (k->txn_cb)
        k->txn_cb(k->ctx, status, status == 0 ? &res : NULL);
    else if (k->range_cb)
        k->range_cb(k->ctx, status, status == 0 && res.n_ops ? &res.ops[0] : NULL,
                    res.revision);
    free(arena);
}

void srv_reply(struct meta_server *s, const struct srv_sink *k, int status, const void *body,
               size_t len)
{
    if (!k->conn) {
        if (k->txn_cb || k->range_cb || k->status_cb)
            reply_inprocess(k, status, body, len);
        return;
    }
    struct raft_conn *c = &k->conn->c;
    if (c->state != RAFT_CONN_OPEN)
        return;
    uint64_t lid;
    const char *laddr;
    srv_leader_hint(s, &lid, &laddr);
    size_t off = raft__conn_frame_begin(c, RF_RESP);
    raft__buf_u64(&c->out, k->req_id);
    raft__buf_u32(&c->out, (uint32_t)status);
    raft__buf_u64(&c->out, lid);
    raft__buf_blob(&c->out, laddr, (uint32_t)strlen(laddr));
    raft__buf_bytes(&c->out, body, status == 0 ? len : 0);
    raft__conn_frame_end(c, off);
    if (raft__conn_backlog(c) > SRV_CLIENT_BACKLOG_MAX) {
        VS_WARN("meta", "%s: client does not read its replies: closing", c->name);
        raft__conn_close(c);
    }
}

/* ---- leadership, the end of a turn, the tick -------------------------------------- */

static void set_leader_ready(struct meta_server *s, bool ready)
{
    if (s->leader_ready == ready)
        return;
    s->leader_ready = ready;
    VS_INFO("meta", "member %" PRIu64 " %s leader (term %" PRIu64 ")", s->opts.id,
            ready ? "is" : "is no longer", s->leader_term);
    if (ready)
        srv_leases_load(s);
    if (s->leader_cb)
        s->leader_cb(s->leader_ctx, ready, s->leader_term);
}

static void state_changed(void *ctx, int old_state, int new_state)
{
    struct meta_server *s = ctx;
    if (new_state == RAFT_LEADER) {
        s->leader_term = raft_current_term(&s->node.raft);
        struct srv_sink none = {0};
        s->noop_index = 0;
        srv_propose(s, PK_NOOP, RAFT_CMD_NOOP, NULL, 0, &none);
    } else if (old_state == RAFT_LEADER) {
        set_leader_ready(s, false);
        srv_reads_fail(s, VS_ENOTLEADER);
        srv_leases_clear(s);
        srv_volatile_clear(s);
        s->noop_index = 0;
    }
}

static void restored(void *ctx)
{
    srv_watches_resync(ctx);
}

static void node_fatal(void *ctx, int status, const char *msg)
{
    struct meta_server *s = ctx;
    s->fatal = true;
    set_leader_ready(s, false);
    srv_pending_expire(s, true, VS_ESHUTDOWN);
    srv_reads_fail(s, VS_ESHUTDOWN);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, server_handle_closed); /* refuse new ones */
    for (struct srv_conn *sc = s->conns; sc; sc = sc->next)
        raft__conn_close(&sc->c);
    if (s->fatal_cb)
        s->fatal_cb(s->fatal_ctx, status, msg);
}

static void flush_net(void *ctx)
{
    struct meta_server *s = ctx;
    raft__flusher_run(&s->flusher);
}

/* Called when the noop of our term was applied: see srv_applied. */
void srv_noop_applied(struct meta_server *s, uint64_t term)
{
    if (raft_state(&s->node.raft) == RAFT_LEADER && term == s->leader_term)
        set_leader_ready(s, true);
}

static void end_turn(struct meta_server *s)
{
    if (s->fatal || s->closing)
        return;
    /* Events applied so far this turn go out with the turn's replies, not
     * after the commit of the applied state (up to a WAL checkpoint later).
     * Like the replies, they show only committed entries: an apply lost in
     * a crash is redone, identically, from the log. */
    if (s->node.sm.n_events > 0)
        srv_watches_deliver(s);
    raft__node_end_turn(&s->node);
    srv_reads_turn(s);
    srv_watches_deliver(s);
    if (raft__node_busy(&s->node))
        raft__node_end_turn(&s->node);
    raft__flusher_run(&s->flusher);
}

static void check_cb(uv_check_t *h)
{
    end_turn(h->data);
}

static void prepare_cb(uv_prepare_t *h)
{
    end_turn(h->data);
}

static void tick_cb(uv_timer_t *t)
{
    struct meta_server *s = t->data;
    if (s->fatal || s->closing)
        return;
    peers_sync(s);
    srv_pending_expire(s, false, VS_EINDOUBT);
    srv_leases_tick(s);
    srv_compact_tick(s);
    srv_mop_tick(s);
    srv_pending_tick(s);
    leader_gone_tick(s);
}

void srv_status(struct meta_server *s, struct vs_raft_status *st)
{
    memset(st, 0, sizeof(*st));
    struct raft_node *n = &s->node;
    st->id = s->opts.id;
    st->cluster_id = s->cluster_id;
    st->db_size_bytes = raft__db_size_bytes(s->db);
    st->fsyncs = s->db->fsyncs;
    if (!s->node_open)
        return;
    const char *laddr;
    srv_leader_hint(s, &st->leader_id, &laddr);
    snprintf(st->leader_address, sizeof(st->leader_address), "%s", laddr);
    st->term = raft_current_term(&n->raft);
    st->state = (int)raft_state(&n->raft);
    st->commit_index = raft_commit_index(&n->raft);
    st->applied_index = n->sm.applied_index;
    st->last_log_index = n->log.last;
    st->snapshot_index = n->log.snap_index;
    st->revision = n->sm.rev;
    st->compact_revision = n->sm.compact_rev;
    st->log_entries_written = n->log.entries_written;
    st->log_bytes_written = n->log.bytes_written;
    st->snapshots_taken = n->snapshots_taken;
    st->snapshots_installed = n->snapshots_installed;
    const struct raft_configuration *conf = &n->raft.configuration;
    for (unsigned i = 0; i < conf->n && i < VS_RAFT_MEMBERS_MAX; i++) {
        st->members[i].id = conf->servers[i].id;
        st->members[i].role = conf->servers[i].role;
        snprintf(st->members[i].address, sizeof(st->members[i].address), "%s",
                 conf->servers[i].address);
        st->n_members++;
    }
}

/* ---- open ------------------------------------------------------------------------ */

static int fail_open(char *errmsg, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_open(char *errmsg, size_t size, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, size, fmt, ap);
    va_end(ap);
    return rc;
}

static void set_defaults(struct meta_server *s, const struct vs_raft_server_opts *o)
{
    s->opts = *o;
    struct vs_raft_server_opts *d = &s->opts;
    d->election_timeout_ms = d->election_timeout_ms ? d->election_timeout_ms : 1000;
    d->heartbeat_timeout_ms = d->heartbeat_timeout_ms ? d->heartbeat_timeout_ms : 100;
    d->snapshot_threshold = d->snapshot_threshold ? d->snapshot_threshold : 2048;
    d->snapshot_trailing = d->snapshot_trailing ? d->snapshot_trailing : 1024;
    d->value_max_bytes = d->value_max_bytes ? d->value_max_bytes : VS_META_VALUE_MAX_DEFAULT;
    d->compact_retention_ms = d->compact_retention_ms ? d->compact_retention_ms : 600000;
    d->compact_interval_ms = d->compact_interval_ms ? d->compact_interval_ms : 60000;
    snprintf(s->data_dir, sizeof(s->data_dir), "%s", o->data_dir);
    snprintf(s->address, sizeof(s->address), "%s", o->address);
    d->data_dir = s->data_dir;
    d->address = s->address;
    s->lim.value_max = d->value_max_bytes;
    /* A request is at most a few values plus keys; a txn may carry many. */
    s->client_frame_max = VS_MAX(d->value_max_bytes + (64u << 10), 16u << 20);
}

/* The cluster id: a digest of the sorted member list and the token, so every
 * member bootstrapped with the same list computes the same id. */
static uint64_t cluster_id_of(const struct vs_raft_member *m, unsigned n, uint64_t token)
{
    char text[VS_RAFT_MEMBERS_MAX * (VS_RAFT_ADDRESS_MAX + 24)] = "";
    size_t used = 0;
    uint64_t last = 0;
    for (unsigned k = 0; k < n; k++) { /* ids in increasing order */
        uint64_t best = UINT64_MAX;
        unsigned at = 0;
        for (unsigned i = 0; i < n; i++)
            if (m[i].id > last && m[i].id <= best) {
                best = m[i].id;
                at = i;
            }
        last = best;
        int w = snprintf(text + used, sizeof(text) - used, "%" PRIu64 "=%s,", m[at].id,
                         m[at].address);
        used += w > 0 ? (size_t)w : 0;
    }
    uint64_t id = raft_digest(text, token);
    return id ? id : 1;
}

/* The id this member's list gives. Bootstrapping alone, the member's own id
 * is mixed in: members given `--init` by mistake each form their own cluster
 * and refuse each other, instead of merging two logs. */
static uint64_t expected_cluster_id(const struct meta_server *s)
{
    uint64_t token = s->opts.cluster_token;
    if (s->opts.bootstrap_alone)
        token ^= 0x9e3779b97f4a7c15ull * s->opts.id;
    return cluster_id_of(s->opts.initial, s->opts.n_initial, token);
}

static int check_identity(struct meta_server *s, char *errmsg, size_t size)
{
    uint64_t v = 0;
    bool found = false;
    int rc = raft__db_meta_get_u64(s->db, "member_id", &v, &found);
    if (rc < 0)
        return fail_open(errmsg, size, rc, "%s", s->db->errmsg);
    if (found && v != s->opts.id)
        return fail_open(errmsg, size, VS_EWRONGCLUSTER,
                         "%s/meta.db belongs to member %" PRIu64 ", not %" PRIu64, s->data_dir, v,
                         s->opts.id);
    rc = raft__db_meta_get_u64(s->db, "cluster_id", &s->cluster_id, &found);
    if (rc < 0)
        return fail_open(errmsg, size, rc, "%s", s->db->errmsg);
    if (s->opts.n_initial && s->cluster_id && !raft__node_is_empty(&s->node)) {
        uint64_t want = expected_cluster_id(s);
        if (want != s->cluster_id)
            return fail_open(errmsg, size, VS_EWRONGCLUSTER,
                             "%s/meta.db belongs to cluster %016" PRIx64
                             "; the member list given describes cluster %016" PRIx64
                             " (remove the list, or use an empty data dir)",
                             s->data_dir, s->cluster_id, want);
    }
    return 0;
}

/* Bootstraps this member alone and remembers the others, which the leader
 * adds one by one (srv_pending_tick) once they answer. */
static int bootstrap_alone(struct meta_server *s)
{
    struct vs_raft_member self = {.id = s->opts.id, .role = RAFT_VOTER};
    snprintf(self.address, sizeof(self.address), "%s", s->address);
    struct raft_buf b;
    raft__buf_init(&b);
    for (unsigned i = 0; i < s->opts.n_initial; i++) {
        if (s->opts.initial[i].id == s->opts.id)
            continue;
        raft__buf_u64(&b, s->opts.initial[i].id);
        raft__buf_blob(&b, s->opts.initial[i].address,
                       (uint32_t)strlen(s->opts.initial[i].address));
    }
    int rc = b.oom ? -ENOMEM : raft__db_meta_set_blob(s->db, "pending_members", b.p, b.len);
    raft__buf_free(&b);
    return rc < 0 ? rc : raft__node_bootstrap(&s->node, &self, 1);
}

static int bootstrap_if_new(struct meta_server *s, char *errmsg, size_t size)
{
    if (!raft__node_is_empty(&s->node))
        return 0;
    int rc = raft__db_begin(s->db);
    if (rc == 0)
        rc = raft__db_meta_set_u64(s->db, "member_id", s->opts.id);
    if (rc == 0 && s->opts.n_initial) {
        bool self = false;
        for (unsigned i = 0; i < s->opts.n_initial; i++)
            self |= s->opts.initial[i].id == s->opts.id;
        if (!self)
            return fail_open(errmsg, size, -EINVAL,
                             "member %" PRIu64 " is not in the initial member list", s->opts.id);
        s->cluster_id = expected_cluster_id(s);
        rc = raft__db_meta_set_u64(s->db, "cluster_id", s->cluster_id);
        if (rc == 0 && s->opts.bootstrap_alone)
            rc = bootstrap_alone(s);
        else if (rc == 0)
            rc = raft__node_bootstrap(&s->node, s->opts.initial, s->opts.n_initial);
        if (rc == 0)
            VS_INFO("meta", "bootstrapped cluster %016" PRIx64 " with %u member(s)%s",
                    s->cluster_id, s->opts.bootstrap_alone ? 1 : s->opts.n_initial,
                    s->opts.bootstrap_alone ? "; the others are added as they come up" : "");
    } else if (rc == 0) {
        raft__db_mark_durable(s->db);
        rc = raft__db_commit(s->db);
        VS_INFO("meta", "member %" PRIu64 " starts empty: waiting to be added to a cluster",
                s->opts.id);
    }
    return rc < 0 ? fail_open(errmsg, size, rc, "bootstrap: %s", s->db->errmsg) : 0;
}

static int start_listener(struct meta_server *s, char *errmsg, size_t size)
{
    struct sockaddr_storage sa;
    if (raft__parse_address(s->address, &sa) < 0)
        return fail_open(errmsg, size, -EINVAL, "bad address '%s' (want ip:port)", s->address);
    uv_tcp_init(s->loop, &s->listener);
    s->listener.data = s;
    s->handles_open++;
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc < 0)
        return fail_open(errmsg, size, rc, "listen on %s: %s", s->address, uv_strerror(rc));
    return 0;
}

static void start_handles(struct meta_server *s)
{
    uv_check_init(s->loop, &s->check);
    uv_prepare_init(s->loop, &s->prepare);
    uv_timer_init(s->loop, &s->tick);
    s->check.data = s->prepare.data = s->tick.data = s;
    s->handles_open += 3;
    uv_check_start(&s->check, check_cb);
    uv_prepare_start(&s->prepare, prepare_cb);
    uv_timer_start(&s->tick, tick_cb, SRV_TICK_MS, SRV_TICK_MS);
    for (unsigned i = 0; i < VS_RAFT_MEMBERS_MAX; i++) {
        uv_timer_init(s->loop, &s->peers[i].retry);
        s->peers[i].retry.data = &s->peers[i];
        s->peers[i].s = s;
        s->handles_open++;
    }
}

static unsigned seed_of(const struct meta_server *s)
{
    unsigned seed = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &seed, sizeof(seed)) != (ssize_t)sizeof(seed))
            seed = 0;
        close(fd);
    }
    return seed ^ (unsigned)(s->opts.id * 2654435761u) ^ (unsigned)getpid();
}

static int open_node(struct meta_server *s, char *errmsg, size_t size)
{
    struct raft_node_opts no = {
        .id = s->opts.id, .address = s->address,
        .election_timeout_ms = s->opts.election_timeout_ms,
        .heartbeat_timeout_ms = s->opts.heartbeat_timeout_ms,
        .snapshot_threshold = s->opts.snapshot_threshold,
        .snapshot_trailing = s->opts.snapshot_trailing, .seed = seed_of(s),
    };
    struct raft_node_cbs cbs = {
        .ctx = s, .peer_conn = srv_peer_conn, .flush_net = flush_net, .applied = srv_applied,
        .submit_failed = srv_submit_failed, .truncated = srv_truncated,
        .state_changed = state_changed, .restored = restored, .fatal = node_fatal,
    };
    int rc = raft__node_open(&s->node, s->loop, s->db, &s->lim, &no, &cbs);
    s->node_open = rc == 0 || s->node.raft_ready;
    if (rc < 0)
        return fail_open(errmsg, size, rc, "%s: %s", s->data_dir,
                         s->db->errmsg[0] ? s->db->errmsg : vs_strerror(rc));
    return 0;
}

/* mkdir -p: the data dir and its missing parents. */
static int mkdir_p(const char *path)
{
    char tmp[512];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, 0750) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int vs_raft_server_open(uv_loop_t *loop, const struct vs_raft_server_opts *opts,
                        struct vs_raft_server **out, char *errmsg, size_t errmsg_size)
{
    if (!opts->data_dir || !opts->address || opts->id == 0 ||
        opts->n_initial > VS_RAFT_MEMBERS_MAX)
        return fail_open(errmsg, errmsg_size, -EINVAL, "member id, address and data dir needed");
    struct meta_server *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    set_defaults(s, opts);
    char path[600];
    snprintf(path, sizeof(path), "%s/meta.db", s->data_dir);
    int mrc = mkdir_p(s->data_dir);
    if (mrc < 0) {
        fail_open(errmsg, errmsg_size, mrc, "%s: %s", s->data_dir, strerror(-mrc));
        free(s);
        return mrc;
    }
    int rc = raft__db_open(path, &s->db, errmsg, errmsg_size);
    if (rc == 0)
        rc = open_node(s, errmsg, errmsg_size);
    if (rc == 0)
        rc = check_identity(s, errmsg, errmsg_size);
    if (rc == 0)
        rc = bootstrap_if_new(s, errmsg, errmsg_size);
    if (rc == 0)
        rc = start_listener(s, errmsg, errmsg_size);
    if (rc < 0) {
        if (s->handles_open)
            uv_close((uv_handle_t *)&s->listener, NULL);
        raft__node_close(&s->node, NULL, NULL);
        /* the node's timer and the listener close on the next loop run */
        s->closing = true;
        s->fatal = true;
        uv_run(loop, UV_RUN_NOWAIT);
        raft__db_close(s->db);
        free(s);
        return rc;
    }
    start_handles(s);
    rc = raft__node_start(&s->node);
    if (rc < 0) {
        snprintf(errmsg, errmsg_size, "start: %s", s->node.fatal ? s->node.fatal_msg
                                                                 : vs_strerror(rc));
        vs_raft_server_close((struct vs_raft_server *)s, NULL, NULL);
        return rc;
    }
    peers_sync(s);
    VS_INFO("meta", "member %" PRIu64 " serving on %s (cluster %016" PRIx64 ", term %llu)",
            s->opts.id, s->address, s->cluster_id, raft_current_term(&s->node.raft));
    *out = (struct vs_raft_server *)s;
    return 0;
}

/* ---- close ------------------------------------------------------------------------ */

static void node_closed(void *ctx)
{
    struct meta_server *s = ctx;
    s->node_open = false;
    maybe_finish_close(s);
}

static void server_handle_closed(uv_handle_t *h)
{
    struct meta_server *s = h->data;
    s->handles_open--;
    maybe_finish_close(s);
}

static void peer_handle_closed(uv_handle_t *h)
{
    struct srv_peer *p = h->data;
    p->s->handles_open--;
    maybe_finish_close(p->s);
}

static void maybe_finish_close(struct meta_server *s)
{
    if (!s->closing || s->handles_open || s->conns || s->node_open)
        return;
    raft__db_close(s->db);
    s->db = NULL;
    vs_raft_server_close_cb cb = s->close_cb;
    void *ctx = s->close_ctx;
    free(s->pend);
    free(s->leases);
    free(s);
    if (cb)
        cb(ctx);
}

void vs_raft_server_close(struct vs_raft_server *vs, vs_raft_server_close_cb cb, void *ctx)
{
    struct meta_server *s = (struct meta_server *)vs;
    VS_ASSERT(!s->closing);
    s->close_cb = cb;
    s->close_ctx = ctx;
    set_leader_ready(s, false);
    if (s->node_open && !s->fatal)
        raft__node_end_turn(&s->node);
    s->closing = true;
    srv_pending_expire(s, true, -ECANCELED);
    srv_reads_fail(s, -ECANCELED);
    srv_watches_close(s);
    srv_leases_clear(s);
    srv_volatile_clear(s);
    for (struct srv_conn *sc = s->conns; sc; sc = sc->next)
        raft__conn_close(&sc->c);
    if (!uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, server_handle_closed);
    uv_close((uv_handle_t *)&s->check, server_handle_closed);
    uv_close((uv_handle_t *)&s->prepare, server_handle_closed);
    uv_close((uv_handle_t *)&s->tick, server_handle_closed);
    for (unsigned i = 0; i < VS_RAFT_MEMBERS_MAX; i++)
        uv_close((uv_handle_t *)&s->peers[i].retry, peer_handle_closed);
    if (s->node_open)
        raft__node_close(&s->node, node_closed, s);
}
