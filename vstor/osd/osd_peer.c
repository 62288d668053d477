/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_peer.c -- the other OSDs as this one sees them: whether each is up
 * (osd/state/<id> exists), its cluster address, and one outgoing connection
 * on the cluster messenger, opened when a PG first needs it and kept (the
 * messenger reconnects by itself). Connection events are turned into PG
 * events: a lost connection makes the PGs that use the peer re-peer, a new
 * one lets waiting PGs go on.
 *
 * Incoming connections on the cluster messenger come from primaries; when
 * one goes down, the PG locks (#2) it held here are released (osd_sec.c).
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct osd_peer *osd__peer(struct vs_osd *osd, uint32_t id)
{
    for (uint32_t i = 0; i < osd->npeers; i++)
        if (osd->peers[i]->id == id)
            return osd->peers[i];
    return NULL;
}

struct osd_peer *osd__peer_get(struct vs_osd *osd, uint32_t id)
{
    struct osd_peer *p = osd__peer(osd, id);
    if (p)
        return p;
    if (osd->npeers == osd->peers_cap) {
        uint32_t cap = osd->peers_cap ? osd->peers_cap * 2 : 16;
        struct osd_peer **np = realloc(osd->peers, cap * sizeof(*np));
        VS_ASSERTF(np, "out of memory for %u peers", cap); /* control plane */
        osd->peers = np;
        osd->peers_cap = cap;
    }
    p = calloc(1, sizeof(*p));
    VS_ASSERTF(p, "out of memory for a peer");
    p->id = id;
    osd->peers[osd->npeers++] = p;
    return p;
}

bool osd__peer_connect(struct vs_osd *osd, struct osd_peer *p)
{
    if (p->conn)
        return p->conn_up;
    if (!p->addr[0] || !osd->net || osd->stopping)
        return false;
    char err[VS_ERRMSG_SIZE];
    int rc = vs_net_connect(osd->net, p->addr, p, &p->conn, err, sizeof(err));
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "osd.%u: %s", p->id, err);
        p->conn = NULL;
    }
    return false;
}

/* Forgets the connection (without telling the PGs of the change: the caller
 * does), and so do the PGs holding it in cur_conn: closing frees it. */
static bool peer_disconnect(struct vs_osd *osd, struct osd_peer *p)
{
    if (!p->conn)
        return false;
    struct vs_net_conn *c = p->conn;
    bool was_up = p->conn_up;
    p->conn = NULL;
    p->conn_up = false;
    osd__pg_conn_gone(osd, c);
    vs_net_conn_set_user(c, NULL);
    vs_net_conn_close(c);
    return was_up;
}

void osd__peer_set(struct vs_osd *osd, uint32_t id, bool up, const char *addr)
{
    if (id == osd->id)
        return;
    struct osd_peer *p = osd__peer_get(osd, id);
    bool was_up = p->up, lost = false;
    if (addr && strcmp(addr, p->addr) != 0) {
        if (p->addr[0])
            VS_INFO(OSD_LOG, "osd.%u moved from %s to %s", id, p->addr, addr);
        /* The new address first: a PG told below may connect at once. */
        snprintf(p->addr, sizeof(p->addr), "%s", addr);
        lost = peer_disconnect(osd, p);
    }
    p->up = up;
    if (up != was_up)
        VS_INFO(OSD_LOG, "osd.%u is %s", id, up ? "up" : "down (its lease is gone)");
    if (lost)
        osd__pg_peer_changed(osd, id, false);
    if (up != was_up || (lost && up))
        osd__pg_peer_changed(osd, id, up);
}

void osd__peers_close(struct vs_osd *osd)
{
    for (uint32_t i = 0; i < osd->npeers; i++) {
        struct osd_peer *p = osd->peers[i];
        if (p->conn) {
            vs_net_conn_set_user(p->conn, NULL);
            vs_net_conn_close(p->conn);
        }
        free(p);
    }
    osd->npeers = 0;
}

void osd__peer_event(struct vs_net_conn *conn, enum vs_net_event ev, int rc, void *ctx)
{
    struct vs_osd *osd = ctx;
    if (!vs_net_conn_outgoing(conn)) {
        if (ev == VS_NET_EV_DOWN)
            osd__sec_conn_down(osd, conn);
        return;
    }
    struct osd_peer *p = vs_net_conn_user(conn);
    if (!p)
        return; /* closed by us */
    if (ev == VS_NET_EV_UP) {
        const struct vs_net_hello *h = vs_net_conn_peer(conn);
        if (h->role != VS_NET_ROLE_OSD || h->node_id != p->id) {
            VS_ERROR(OSD_LOG, "%s answers as node %llu, not as osd.%u: not using it", p->addr,
                     (unsigned long long)h->node_id, p->id);
            return;
        }
        if (h->block_size != osd->block_size)
            VS_WARN(OSD_LOG, "osd.%u has block_size %u, we have %u", p->id, h->block_size,
                    osd->block_size);
        p->conn_up = true;
        VS_DEBUG_LOG(OSD_LOG, "connected to osd.%u at %s", p->id, p->addr);
        osd__pg_peer_changed(osd, p->id, true);
    } else if (ev == VS_NET_EV_DOWN) {
        bool was = p->conn_up;
        p->conn_up = false;
        if (was) {
            VS_WARN(OSD_LOG, "connection to osd.%u lost: %s", p->id, vs_strerror(rc));
            osd__pg_peer_changed(osd, p->id, false);
        }
    } else if (ev == VS_NET_EV_CLOSED && p->conn == conn) {
        p->conn = NULL;
        p->conn_up = false;
        osd__pg_conn_gone(osd, conn);
    }
}
