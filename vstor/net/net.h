/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net.h -- the messenger: vstor frames (net_proto.h) over TCP on the
 * process's one libuv loop. OSDs serve requests through it and send
 * secondary ops to their peers; clients send ops to OSDs.
 *
 * Threading: everything runs on the loop thread; no call is thread-safe.
 *
 * Objects and ownership:
 *  - struct vs_net (opaque): one per process; owns the listener, every
 *    connection and the pool of server-side requests, sized at creation.
 *  - struct vs_net_conn (opaque): one TCP connection. Outgoing connections
 *    (vs_net_connect) reconnect by themselves with back-off until
 *    vs_net_conn_close(); incoming ones end when the peer goes away.
 *  - struct vs_net_op (public, caller-embedded): one request this process
 *    sends and the reply it gets. The caller owns it and every buffer it
 *    points to until its callback runs.
 *  - struct vs_net_req (public, from the messenger's pool): one request this
 *    process serves. The handler owns it from recv() until vs_net_reply().
 *
 * Data path: no allocation. Ops are embedded by the caller; requests come
 * from a pool allocated by vs_net_create(); reply slots are allocated per
 * connection when it is created. Payloads are never copied when they are
 * large: a request's payload is read straight into the buffers the handler
 * gives, a reply's straight into the op's reply buffers, and header and
 * payloads leave in one writev. Everything queued during one loop turn is
 * sent in one batch just before the loop polls (a uv_prepare hook).
 *
 * Async contract (STYLE B9): a function that takes a callback and returns an
 * error never calls it; one that returns 0 calls it exactly once, never
 * before it has returned.
 *
 * Op results (the rc of vs_net_op_cb):
 *  - op->replied is true: rc is the peer's retval (0 or a negative errno /
 *    vstor code) and op->reply holds the decoded reply header.
 *  - -ENOTCONN: the op was never sent whole (the connection was not up, or
 *    went down before the op left): the peer cannot have executed it.
 *  - -ECONNRESET: the op was sent but the connection went down before its
 *    reply (peer closed, reset, keepalive timeout, protocol violation): the
 *    peer may or may not have executed it.
 *  - -ECANCELED: vs_net_conn_close() or vs_net_close() was called first.
 *  vs_net_retryable() is true for -ENOTCONN and -ECONNRESET: the caller
 *  (libvstor, the OSD primary) retries those, typically on a fresh map.
 *
 * Deadlock freedom. A request needs a vs_net_req from its pool before its
 * payload is read; with none free, the connection stops reading (TCP pushes
 * back) -- and frames queued behind that request wait too. Two rules keep
 * this from closing a cycle between OSDs:
 *  - client requests and secondary requests come from separate pools, so an
 *    OSD whose client pool is full of writes waiting for their secondaries
 *    still reads the secondary writes its peers send it;
 *  - a handler of a secondary opcode (SEC_*) must complete without waiting
 *    for any network request of its own (it may wait for its disk).
 * A client never serves requests, and PING is answered at once.
 *
 * Connection events (cfg.on_event), per connection, in this order:
 *  - outgoing:  (UP DOWN)* ... CLOSED. A DOWN also reports every failed
 *    connection attempt, with rc: -ECONNREFUSED, -ETIMEDOUT (connect or
 *    keepalive), VS_EPROTO (a malformed frame), VS_EWRONGCLUSTER,
 *    -EPROTONOSUPPORT (handshake refused), -ECONNRESET (peer went away).
 *    After DOWN a reconnect is scheduled; CLOSED only follows
 *    vs_net_conn_close() or vs_net_close().
 *  - incoming:  UP DOWN CLOSED; nothing is reported for a connection that
 *    never completed the handshake.
 *  A local close of a connection that was up reports DOWN with -ECANCELED.
 *  Every op of the connection has completed before DOWN is reported. Ops
 *  sent on an outgoing connection while it is down wait for the next
 *  attempt (and fail with -ENOTCONN if it fails). The conn pointer is
 *  invalid once the CLOSED callback returns -- except through the requests
 *  a handler still holds: a connection's memory lives until each of its
 *  requests has been replied to, so vs_net_conn_is_up(req->conn) and
 *  vs_net_conn_peer(req->conn) stay valid until vs_net_reply(req).
 */
#ifndef VSTOR_NET_H
#define VSTOR_NET_H

#include "net_proto.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct vs_net;
struct vs_net_conn;
struct vs_net_op;
struct vs_net_req;
struct vs_config;

/* Private: one frame on a connection's send queue (embedded in ops and
 * requests). */
struct vs_net_tx {
    struct vs_net_tx *next;
    const void *seg[2];   /* meta, data */
    uint32_t seg_len[2];
    uint64_t sent;        /* bytes of this frame already written */
    uint8_t hdr[VS_NET_HDR_SIZE];
    uint8_t kind;
};

enum vs_net_event {
    VS_NET_EV_UP = 1, /* handshake done; vs_net_conn_peer() is valid */
    VS_NET_EV_DOWN,   /* connection or attempt ended; rc says why */
    VS_NET_EV_CLOSED, /* final; the conn is freed after the callback */
};

typedef void (*vs_net_event_fn)(struct vs_net_conn *conn, enum vs_net_event ev, int rc,
                                void *ctx);
typedef void (*vs_net_op_cb)(struct vs_net_op *op, int rc);

/* ---- Configuration ------------------------------------------------------ */

struct vs_net_cfg {
    /* Identity sent in HELLO; a peer of another cluster is refused. */
    uint8_t cluster_id[VS_NET_CLUSTER_ID_SIZE];
    uint8_t role;                 /* enum vs_net_role */
    uint64_t node_id;             /* OSD number, or 0 */
    uint32_t block_size;          /* 0 unless an OSD */
    uint32_t bitmap_granularity;  /* 0 unless an OSD */
    uint64_t features;
    struct vs_net_limits limits;  /* frame limits (net_proto.h) */
    /* Pools and queues. */
    uint32_t req_pool_size;       /* client requests (READ, WRITE, SYNC, DELETE) served
                                   * at once, all connections together */
    uint32_t sec_pool_size;       /* every other request (SEC_*, PING) served at once:
                                   * a separate pool, so that client requests waiting
                                   * for secondaries can never starve the secondary
                                   * requests they wait for (see "Deadlock" above) */
    uint32_t conn_req_max;        /* requests served at once for one connection */
    uint32_t conn_op_max;         /* ops awaiting a reply per connection; more wait */
    uint32_t conn_max;            /* incoming connections; more are refused */
    uint32_t read_buf_size;       /* per-connection buffer for headers and small payloads */
    /* Timing (milliseconds). */
    uint32_t ping_interval_ms;    /* silence before a PING */
    uint32_t ping_timeout_ms;     /* no byte for this long after a PING, or our
                                   * queue stuck this long: peer dead */
    uint32_t connect_timeout_ms;  /* TCP connect + handshake */
    uint32_t reconnect_min_ms;    /* first back-off delay; doubles per failure */
    uint32_t reconnect_max_ms;    /* back-off ceiling */
    uint32_t lease_renew_ms;      /* 0, or: ping an outgoing connection whose newest
                                   * answered request was sent this long ago, even
                                   * when it is not silent (read leases, see
                                   * vs_net_conn_acked_ms) */
    /* Events of every connection, incoming and outgoing. */
    vs_net_event_fn on_event;
    void *event_ctx;
    const char *log_name;         /* log component, default "net" */
    /* The local transport (see "Local transport" below): an absolute
     * directory, or NULL / "" for TCP only. Copied by vs_net_create. */
    const char *local_dir;
};

/* ---- Local transport ----------------------------------------------------
 *
 * With cfg.local_dir set, a listener also listens on a unix socket,
 * local_dir/vstor-ADDR.sock (ADDR: the bound "IP:PORT", as vs_net_listen
 * reports it; none for a wildcard address), and every outgoing connection
 * to ADDR first tries that socket: same frames, same handshake, but no TCP
 * stack on a same-host hop. Falls back to TCP when the socket is missing,
 * refuses (a stale file of a dead listener), or a local attempt fails
 * before its handshake completes; the attempt after a TCP one tries local
 * again (a restarted listener re-creates its socket). Safe against a stale
 * file naming another process: a listener creates its socket only after it
 * has bound ADDR over TCP, so no other live process can own that name, and
 * it replaces whatever file was there. The socket is removed when the
 * messenger closes. The directory must belong to one host and one network
 * namespace: a directory shared by two (NFS, or namespaces on one machine
 * given the same path) would let a connection to another host's address
 * reach it through the file system, around a cut link, and two listeners
 * bound to the same address in two namespaces would replace each other's
 * socket. */
#define VS_NET_LOCAL_PATH_MAX 108 /* sizeof(sockaddr_un.sun_path) */

/* The local socket path for a listener bound to addr ("IP:PORT" or
 * "[IPv6]:PORT", numeric) under dir. Returns 0, -EINVAL (not an address, or
 * dir not absolute) or -ENAMETOOLONG (over VS_NET_LOCAL_PATH_MAX - 1). */
int vs_net_local_path(const char *dir, const char *addr, char *out, size_t size);

/* Fills cfg with defaults (no cluster id, role client). */
void vs_net_cfg_init(struct vs_net_cfg *cfg);
/* Copies the net_* keys of the config (config.h) into cfg. */
void vs_net_cfg_from_config(struct vs_net_cfg *cfg, const struct vs_config *config);

/* ---- Lifetime ----------------------------------------------------------- */

/* Creates the messenger on loop (the process's vs_loop.uv). Allocates the
 * request pool. Returns 0, or -EINVAL (bad cfg) / -ENOMEM with err filled. */
int vs_net_create(uv_loop_t *loop, const struct vs_net_cfg *cfg, struct vs_net **out,
                  char *err, size_t err_size);

/* Stops listening, closes every connection (their ops complete with
 * -ECANCELED, CLOSED is reported for each) and calls cb once every handle is
 * closed and every request has been replied to by its handler. The vs_net
 * is already freed when cb runs. Call once. */
void vs_net_close(struct vs_net *net, void (*cb)(void *ctx), void *ctx);

/* Listens on "IP:PORT" (IPv4, or "[IPv6]:PORT"; numeric only; port 0 picks
 * one). One listener per messenger. Returns 0 or -errno (err filled). */
int vs_net_listen(struct vs_net *net, const char *addr, char *err, size_t err_size);
/* The bound port, or 0 when not listening. */
uint16_t vs_net_listen_port(const struct vs_net *net);

/* ---- Serving (OSD side) ------------------------------------------------- */

struct vs_net_handler {
    /* Requests whose opcode carries a payload (vs_net_op_has_req_payload):
     * set req->meta and req->data to buffers of req->hdr.meta_len and
     * req->hdr.data_len bytes and return 0; the payload is read straight
     * into them. Return a negative errno instead (for example -ENOMEM when
     * out of buffers) and the messenger skips the payload and replies with
     * it; recv() is not called then. NULL for opcodes without payload. */
    int (*buffers)(struct vs_net_req *req, void *ctx);
    /* A whole, valid request. The handler must call vs_net_reply() exactly
     * once, now or later. */
    void (*recv)(struct vs_net_req *req, void *ctx);
    /* Optional: the reply has left (rc 0) or was dropped because the
     * connection is gone (rc < 0); the reply buffers and the request
     * payload buffers may be reused now. Also called (rc < 0) without
     * recv() when the connection ends while the payload that buffers()
     * took is arriving: the handler then releases what buffers() took. */
    void (*done)(struct vs_net_req *req, int rc, void *ctx);
};

/* Serves opcode with h (copied). HELLO and PING are served by the messenger
 * itself; a request for an opcode without a handler gets -EOPNOTSUPP.
 * Returns 0 or -EINVAL. */
int vs_net_handle(struct vs_net *net, uint16_t opcode, const struct vs_net_handler *h,
                  void *ctx);

struct vs_net_req {
    /* Set by the messenger. */
    struct vs_net_conn *conn;
    struct vs_net_hdr hdr; /* the decoded, validated request */
    /* Set by buffers(): where the request payload goes. */
    void *meta, *data;
    /* Set by the handler before vs_net_reply(). rep.retval is 0 or a
     * negative errno / vstor code; an error reply carries no payload. */
    struct vs_net_reply rep;
    const void *rep_meta, *rep_data;
    uint32_t rep_meta_len, rep_data_len;
    void *user; /* for the handler */
    /* Private. */
    struct vs_net_req *next;
    struct vs_net_tx tx;
    uint8_t state;
    uint8_t pool; /* which pool it came from */
    bool owned;   /* the handler has seen it (buffers() or recv()) */
};

/* Sends req's reply (rep, rep_meta, rep_data). After this call the handler
 * may touch req only in its done() callback. A reply the protocol would
 * refuse (a programmer error) is logged and replaced by -EIO. */
void vs_net_reply(struct vs_net_req *req);
/* Shorthand: reply with retval rc and nothing else. */
void vs_net_reply_err(struct vs_net_req *req, int rc);

/* ---- Sending (client and primary side) ---------------------------------- */

/* Connects to "IP:PORT" and keeps the connection up: on failure it retries
 * after reconnect_min_ms, doubling up to reconnect_max_ms, until
 * vs_net_conn_close(). user is returned by vs_net_conn_user(). Returns 0 or
 * -EINVAL for a malformed address (err filled). */
int vs_net_connect(struct vs_net *net, const char *addr, void *user, struct vs_net_conn **out,
                   char *err, size_t err_size);

/* Closes conn for good: ops complete with -ECANCELED, then DOWN (if it was
 * up) and CLOSED are reported. Idempotent. */
void vs_net_conn_close(struct vs_net_conn *conn);

struct vs_net_op {
    /* Set by the caller. */
    struct vs_net_hdr req;   /* opcode and req.* fields; meta_len/data_len too */
    const void *meta;        /* request payload: req.meta_len bytes */
    const void *data;        /* request payload: req.data_len bytes */
    void *reply_meta;        /* reply meta lands here: at most reply_meta_cap bytes */
    void *reply_data;        /* reply data lands here: at most reply_data_cap bytes */
    uint32_t reply_meta_cap, reply_data_cap;
    vs_net_op_cb cb;
    void *ctx;
    /* Set by the messenger before cb. */
    bool replied;            /* a reply arrived: see reply.rep.retval */
    struct vs_net_hdr reply; /* the decoded reply header */
    /* Private. */
    struct vs_net_op *next;
    struct vs_net_conn *conn;
    struct vs_net_tx tx;
    uint32_t slot;
    uint8_t state;
    bool sent;
    uint64_t sent_ms;        /* loop time when it was queued on the connection */
};

/* Sends op on conn. req.version, req.id and req.flags are set by the
 * messenger. An op sent while the connection is not up yet waits for it
 * (and completes with -ENOTCONN if that attempt fails). A reply larger than
 * the op's reply buffers is a protocol violation by the peer.
 * Returns 0, -EINVAL for a request the protocol refuses (a programmer
 * error, also logged), or -ENOTCONN when conn is closing. */
int vs_net_send(struct vs_net_conn *conn, struct vs_net_op *op);

/* True for the transport errors worth a retry (-ENOTCONN, -ECONNRESET). */
bool vs_net_retryable(int rc);

/* ---- Introspection ------------------------------------------------------ */

void *vs_net_conn_user(const struct vs_net_conn *conn);
void vs_net_conn_set_user(struct vs_net_conn *conn, void *user);
bool vs_net_conn_outgoing(const struct vs_net_conn *conn);
bool vs_net_conn_is_up(const struct vs_net_conn *conn);
/* The peer's HELLO; valid from UP until CLOSED. */
const struct vs_net_hello *vs_net_conn_peer(const struct vs_net_conn *conn);
/* "IP:PORT" of the peer. */
const char *vs_net_conn_addr(const struct vs_net_conn *conn);
/* Why the connection last went down, as a sentence ("" if it never did). */
const char *vs_net_conn_errmsg(const struct vs_net_conn *conn);
/* Whether the connection's current attempt runs over the local transport. */
bool vs_net_conn_is_local(const struct vs_net_conn *conn);
/* Read leases (vstor/osd/osd_lease.h). Times are milliseconds of the loop's
 * clock (uv_now(), CLOCK_MONOTONIC).
 * vs_net_conn_acked_ms: the send time of the newest request of ours that got
 * a reply on the connection's current attempt (when it was queued for the
 * socket: never later than it left), or 0 when none since it came up.
 * vs_net_conn_recv_ms: when bytes from the peer were last read, taken fresh
 * from the clock at the read (never earlier than they arrived); 0 before any. */
uint64_t vs_net_conn_acked_ms(const struct vs_net_conn *conn);
uint64_t vs_net_conn_recv_ms(const struct vs_net_conn *conn);

struct vs_net_stats {
    uint64_t frames_in, frames_out;
    uint64_t bytes_in, bytes_out;
    uint64_t writev_calls;    /* syscalls (uv_try_write/uv_write) that sent frames */
    uint64_t read_calls;      /* read callbacks with data */
    uint64_t payload_copied;  /* payload bytes copied out of the read buffer
                               * (the rest was read straight into place) */
    uint64_t conns_up, conns_down;
    uint64_t conns_local;     /* connections (either way) over the local transport */
    uint64_t proto_errors;    /* connections closed for a malformed frame */
    uint64_t ping_timeouts;   /* connections declared dead by keepalive */
    uint32_t reqs_in_use;     /* requests held by handlers or being sent */
    uint32_t conns_open;
};
void vs_net_get_stats(const struct vs_net *net, struct vs_net_stats *out);

#endif /* VSTOR_NET_H */
