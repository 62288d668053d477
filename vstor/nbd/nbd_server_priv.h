/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_server_priv.h -- the server's internal structures, shared by
 * nbd_server.c (listeners, accept, handshake, lifecycle) and nbd_conn.c (the
 * transmission phase). Not for use outside vstor/nbd/.
 *
 * A connection's states (B15):
 *
 *   HANDSHAKE --GO/EXPORT_NAME--> TRANSMISSION --DISC / shutdown--> DRAINING
 *       |                              |                                |
 *       +--ABORT, bad input, EOF-------+--bad framing, EOF, write error--+--idle--> CLOSING
 *
 * DRAINING reads no new request (only the rest of a WRITE payload already
 * under way), lets accepted requests finish and their replies go out, then
 * closes. CLOSING waits for the handle's close callback
 * and for the backend to return every request still in flight; only then is
 * the memory freed (nbd__conn_maybe_free).
 *
 * A request slot's states:
 *   FREE -> RX (WRITE payload arriving) -> BACKEND -> OUTQ -> [WRITING] -> FREE
 *   FREE -> BACKEND -> OUTQ ...;   FREE -> OUTQ (refused with an error reply)
 */
#ifndef VSTOR_NBD_SERVER_PRIV_H
#define VSTOR_NBD_SERVER_PRIV_H

#include "nbd_backend.h"
#include "nbd_buf.h"
#include "nbd_proto.h"
#include "nbd_server.h"

#include <uv.h>

#define NBD_RBUF_BYTES    (128u << 10) /* per-connection receive buffer */
#define NBD_LISTENERS_MAX 4
#define NBD_IOV_MAX       128 /* iovecs per writev of gathered replies */

enum nbd_req_state { REQ_FREE, REQ_RX, REQ_BACKEND, REQ_OUTQ, REQ_WRITING };

struct nbd_conn;

struct nbd_req {
    struct vs_nbd_io io; /* the backend request (caller-embedded) */
    struct nbd_conn *conn;
    struct vs_nbd_request r;
    enum nbd_req_state state;
    uint32_t nbd_err;
    uint8_t *buf;      /* from the server's pool, or NULL */
    uint32_t rx_got;   /* WRITE payload bytes received */
    uint32_t data_len; /* reply data bytes after hdr (a READ's payload) */
    uint8_t hdr_len;
    uint8_t hdr[VS_NBD_CHUNK_HDR_SIZE + 8]; /* a reply header, or a chunk with its offset */
    struct nbd_req *next;                   /* free list or output queue */
};

enum nbd_conn_state { CONN_HANDSHAKE, CONN_TRANSMISSION, CONN_DRAINING, CONN_CLOSING };
enum nbd_rx_state { RX_HDR, RX_PAYLOAD, RX_SKIP };
enum nbd_blocked { BLOCK_NONE, BLOCK_SLOT, BLOCK_BUF };

struct nbd_conn {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct vs_nbd_server *srv;
    uint64_t id;
    char peer[96];
    enum nbd_conn_state state;
    bool reading, handle_closed, close_after_write, alloc_to_payload;
    unsigned handles_open; /* h and, for accepted connections, hs_timer */
    uv_timer_t hs_timer;   /* ends a handshake that takes too long */
    bool has_timer;
    enum nbd_blocked blocked;
    /* receive: bytes [rpos, rend) of rbuf are unparsed */
    uint8_t *rbuf;
    size_t rpos, rend;
    enum nbd_rx_state rx;
    struct nbd_req *rx_req; /* RX_PAYLOAD */
    uint32_t rx_skip;       /* RX_SKIP: payload bytes still to discard */
    /* handshake */
    struct vs_nbd_hs *hs; /* freed when transmission starts */
    unsigned hs_writes;   /* handshake replies not yet written */
    /* transmission */
    struct vs_nbd_session sess;
    struct nbd_req *slots;
    void *priv_area;
    unsigned nslots, busy; /* busy = slots not FREE */
    struct nbd_req *free_slots;
    struct nbd_req *out_head, *out_tail; /* replies in order */
    size_t out_sent;                     /* bytes of out_head already written */
    bool writing;                        /* wreq in flight for out_head */
    uv_write_t wreq;
    /* server lists */
    struct nbd_conn *prev, *next; /* all connections */
    struct nbd_conn *dirty_next;  /* needs the attend hooks: flush, unblock, drain */
    bool dirty;
    struct nbd_conn *bufwait_next; /* FIFO of connections waiting for a buffer */
    bool bufwait;
    void (*on_close)(void *arg); /* adopted (kernel) connections */
    void *on_close_arg;
    uint64_t requests;
    uint64_t spins, spin_hits; /* reply spins after its replies (nbd_server.c NOTES 4) */
};

struct nbd_listener {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct vs_nbd_server *srv;
    bool is_unix, open;
    char name[128]; /* path or address:port */
};

struct vs_nbd_server {
    struct vs_loop *loop;
    struct vs_nbd_backend *be;
    struct vs_nbd_export exp;
    struct vs_nbd_bufpool *pool;
    unsigned iodepth, conn_max;
    uint64_t hs_timeout_ms;
    size_t priv_stride;
    struct nbd_listener listeners[NBD_LISTENERS_MAX];
    unsigned nlisteners, listeners_closing;
    uv_check_t check;     /* after each turn's I/O: flush replies, wake waiters */
    uv_prepare_t prepare; /* the same before the loop blocks (nbd_server.c NOTES 3) */
    uv_idle_t kick;       /* active while a connection is dirty: the loop must not block */
    bool kick_on;
    unsigned spin_us;           /* the reply spin's window (NOTES 4 of nbd_server.c) */
    struct nbd_conn *spin_conn; /* a reply of it went out this turn */
    uint64_t inflight;          /* requests in the backend, all connections */
    unsigned hooks_open;  /* while closing: check, prepare, kick */
    struct nbd_conn *conns;
    unsigned nconns;
    struct nbd_conn *dirty_head;
    struct nbd_conn *bufwait_head, *bufwait_tail;
    uint64_t next_id;
    bool shutting_down, backend_closing;
    vs_nbd_server_stopped_cb stopped_cb;
    void *stopped_arg;
    struct vs_nbd_server_stats stats;
};

/* nbd_conn.c */
void nbd__conn_enter_transmission(struct nbd_conn *c, const struct vs_nbd_session *s);
void nbd__conn_rx_process(struct nbd_conn *c);
void nbd__conn_payload_received(struct nbd_conn *c, size_t n);
bool nbd__conn_wants_input(const struct nbd_conn *c);
void nbd__conn_flush(struct nbd_conn *c);
void nbd__conn_begin_drain(struct nbd_conn *c, const char *why);
void nbd__wake_bufwaiters(struct vs_nbd_server *srv);

/* nbd_server.c */
void nbd__conn_close(struct nbd_conn *c, const char *why);
void nbd__conn_mark_dirty(struct nbd_conn *c);
void nbd__conn_update_reading(struct nbd_conn *c);
void nbd__conn_maybe_free(struct nbd_conn *c);
void nbd__read_start(struct nbd_conn *c);

#endif /* VSTOR_NBD_SERVER_PRIV_H */
