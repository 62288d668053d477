/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_int.h -- messenger internals shared by net.c, net_conn.c, net_rx.c and
 * net_tx.c. Nothing outside vstor/net includes this.
 *
 * Connection states (conn_move() asserts the edges of this table):
 *
 *     vs_net_connect            accept
 *          |                       |
 *          v                       v
 *   +--> CONNECTING --tcp up--> HANDSHAKE --HELLO ok--> READY
 *   |        |                     |                      |
 *   |        +------ failure, timeout, local close -------+
 *   |                              v
 *   |                          DRAINING   (TCP handle closing; in its close
 *   |                              |       callback every op completes)
 *   +-- IDLE <--outgoing, open-----+-----incoming or closing--> CLOSED
 *     (back-off timer)                                (timer closes, then
 *        |                                             CLOSED event; memory
 *        +--------vs_net_conn_close---------------->   freed when no request
 *                                                      refers to it)
 *
 * Invariants:
 *  (1) The TCP handle is open exactly in CONNECTING, HANDSHAKE, READY and
 *      DRAINING.
 *  (2) Ops occupy reply slots only in HANDSHAKE and READY; in every other
 *      state slots[] is empty and the send queue holds no op.
 *  (3) Before DOWN is reported, every op of the connection has completed.
 *  (4) Connection memory outlives every request that points to it (refs).
 */
#ifndef VSTOR_NET_INT_H
#define VSTOR_NET_INT_H

#include "net.h"

#include <sys/socket.h>

#define NET_SLOT_BITS 20
#define NET_SLOT_MASK ((1u << NET_SLOT_BITS) - 1)
#define NET_ADDR_STR 64
#define NET_ERRMSG 256

enum conn_state {
    CONN_IDLE,
    CONN_CONNECTING,
    CONN_HANDSHAKE,
    CONN_READY,
    CONN_DRAINING,
    CONN_CLOSED,
};

enum rx_state { RX_HDR, RX_META, RX_DATA };

/* What a send-queue frame belongs to. */
enum tx_kind { TX_OP = 1, TX_REQ = 2 };

/* Op states. */
enum op_state { OP_IDLE, OP_PENDING, OP_WAIT, OP_INFLIGHT };

/* Request states. */
enum req_state { REQ_FREE, REQ_HANDLER, REQ_SENDING, REQ_DROPPED };

struct net_rx {
    uint8_t *buf;
    uint32_t size, pos, end; /* unparsed bytes are buf[pos..end) */
    enum rx_state state;
    struct vs_net_hdr hdr;   /* the frame being received */
    uint8_t *dst;            /* where the current segment goes; NULL: skip it */
    uint32_t left;           /* bytes of the current segment still to come */
    struct vs_net_op *op;    /* a reply's op */
    struct vs_net_req *req;  /* a request's req */
    int skip_rc;             /* request payload skipped: reply with this */
    bool paused;             /* waiting for a request from the pool */
    bool big;                /* the current (or, before the next header is
                              * parsed, the last) frame's data is big: read
                              * exactly its header and meta (net_rx.c, note 1) */
};

struct vs_net_conn {
    struct vs_net *net;
    struct vs_net_conn *prev, *next;     /* net->conns */
    struct vs_net_conn *dirty_next;      /* net->dirty */
    struct vs_net_conn *wait_next;       /* net->waiters */
    union {                              /* the stream of the current attempt */
        uv_tcp_t tcp;
        uv_pipe_t pipe;                  /* local: the unix socket (net_local.c) */
    };
    uv_timer_t timer;
    uv_connect_t connect_req;
    uv_write_t write_req;
    enum conn_state state;
    bool outgoing, closing, was_up, visible, tcp_open, timer_open, in_dirty, in_wait;
    bool write_pending, close_after_flush, ping_busy, closed_reported;
    bool local;                          /* this attempt is over the local socket */
    bool local_failed;                   /* ...and failed before READY: next is TCP */
    int down_rc;                         /* why the current connection ends */
    int refused_rc;                      /* close_after_flush: the reason */
    uint32_t refs;                       /* requests pointing here */
    uint32_t reqs_held;                  /* requests of this conn in use */
    uint64_t write_len;                  /* bytes in the pending uv_write */
    uint64_t last_recv_ms, ping_sent_ms;
    uint64_t recv_fresh_ms;              /* vs_net_conn_recv_ms */
    uint64_t acked_ms;                   /* vs_net_conn_acked_ms */
    uint64_t last_sent_ms;               /* last send progress, or when the queue filled */
    uint32_t backoff_ms;
    uint16_t proto_version;
    struct sockaddr_storage addr;
    char addr_str[NET_ADDR_STR];
    char errmsg[NET_ERRMSG];
    void *user;
    struct vs_net_hello peer;
    struct net_rx rx;
    /* Send queue. */
    struct vs_net_tx *txq_head, *txq_tail;
    /* Ops: waiting for the connection, waiting for a slot, in flight. */
    struct vs_net_op *pending_head, *pending_tail;
    struct vs_net_op *wait_head, *wait_tail;
    struct vs_net_op **slots;
    uint32_t *free_slots;
    uint32_t nfree, nslots;
    uint64_t seq;
    /* Embedded: our HELLO and PING ops, the reply to the peer's HELLO. */
    struct vs_net_op hello_op, ping_op;
    struct vs_net_req hello_req;
};

/* Request pools by opcode class (net.h, "Deadlock freedom"). */
enum { NET_POOL_CLIENT, NET_POOL_SEC, NET_POOLS };
struct net_pool {
    struct vs_net_req *free;
    uint32_t nfree, size;
};

struct net_handler {
    struct vs_net_handler h;
    void *ctx;
    bool set;
};

struct vs_net {
    uv_loop_t *loop;
    struct vs_net_cfg cfg;
    char log_name[32];
    struct vs_net_hello hello; /* ours */
    uv_tcp_t listener;
    union {                              /* refuses a connection when out of memory */
        uv_tcp_t reject;
        uv_pipe_t reject_pipe;
    };
    bool reject_busy;
    uv_pipe_t local_listener;            /* net_local.c */
    bool local_open;
    char local_dir[VS_NET_LOCAL_PATH_MAX];
    char local_path[VS_NET_LOCAL_PATH_MAX]; /* our socket, "" when none */
    uv_prepare_t prepare;
    uv_idle_t idle;
    bool listening, listener_open, prepare_open, idle_open, idle_on, closing;
    uint16_t port;
    struct net_handler handlers[VS_NET_OP_LIMIT];
    struct vs_net_req *reqs;             /* both pools, one allocation */
    struct net_pool pools[NET_POOLS];
    struct vs_net_req *dropped;          /* replies to dead conns: done(-ECONNRESET) */
    struct vs_net_conn *conns;
    struct vs_net_conn *dirty;
    struct vs_net_conn *waiters;
    uint32_t incoming;
    bool resume;                         /* a request went back to the pool */
    void (*close_cb)(void *ctx);
    void *close_ctx;
    struct vs_net_stats stats;
};

/* net.c */
struct vs_net_req *net__req_get(struct vs_net *net, struct vs_net_conn *conn, uint16_t opcode);
void net__req_finish(struct vs_net_req *req, int rc);
void net__kick(struct vs_net *net);
void net__maybe_finish(struct vs_net *net);
void net__emit(struct vs_net_conn *conn, enum vs_net_event ev, int rc);
/* "IP:PORT" or "[IPv6]:PORT", numeric; returns 0 or -EINVAL. */
int net__parse_addr(const char *s, struct sockaddr_storage *out);

/* net_conn.c */
struct vs_net_conn *net__conn_new(struct vs_net *net, bool outgoing);
void net__conn_fail(struct vs_net_conn *conn, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Like net__conn_fail, keeping the reason already in conn->errmsg. */
void net__conn_fail_keepmsg(struct vs_net_conn *conn, int rc);
void net__conn_hello_req(struct vs_net_conn *conn, const struct vs_net_hdr *hdr);
void net__conn_hello_reply(struct vs_net_conn *conn);
void net__conn_unref(struct vs_net_conn *conn);
void net__conn_start_incoming(struct vs_net_conn *conn);

/* net_local.c */
/* After the TCP listener is bound to `bound`: the local socket, if
 * configured (a failure is logged; TCP still serves). */
void net__local_listen(struct vs_net *net, const struct sockaddr_storage *bound,
                       uv_connection_cb on_connection);
/* Removes the socket file and closes the local listener (net__maybe_finish
 * runs from its close callback). */
void net__local_close(struct vs_net *net);
/* For an outgoing attempt: a unix socket fd already connected to the
 * listener's local socket (conn->local is then set), or -errno: use TCP. */
int net__local_try(struct vs_net_conn *conn);
/* "IP:PORT" or "[IPv6]:PORT" of sa. */
void net__format_addr(const struct sockaddr_storage *sa, char *buf, size_t size);

/* net_rx.c */
void net__rx_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void net__rx_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
void net__rx_resume(struct vs_net_conn *conn);

/* net_tx.c */
void net__tx_push(struct vs_net_conn *conn, struct vs_net_tx *tx);
void net__tx_flush(struct vs_net_conn *conn);
void net__tx_drop_all(struct vs_net_conn *conn);
void net__op_assign(struct vs_net_conn *conn, struct vs_net_op *op);
void net__op_complete(struct vs_net_op *op, int rc);
void net__conn_fill_slots(struct vs_net_conn *conn);
void net__ops_fail_all(struct vs_net_conn *conn);
int net__send_internal(struct vs_net_conn *conn, struct vs_net_op *op);

#endif /* VSTOR_NET_INT_H */
