/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_server.h -- the NBD server: serves one backend (nbd_backend.h) as one
 * export to many clients at once, over unix sockets, TCP, or a socket that
 * the kernel's nbd driver holds (`vstor map`).
 *
 * Model (STYLE B10, B16): one libuv loop, one thread. Each connection has a
 * fixed array of request slots (nbd_iodepth) allocated when it enters the
 * transmission phase; data buffers come from one pre-allocated arena shared
 * by all connections (nbd_buf.h, nbd_buffer_size). Nothing is allocated per
 * request. When a connection runs out of slots or buffers it stops reading
 * until a request completes (backpressure). Replies are gathered during a
 * loop turn and written with one writev per connection after the turn's I/O
 * callbacks and again before the loop blocks (uv_check and uv_prepare hooks).
 * After a reply that leaves no request in flight, the server polls that
 * client's socket for a short bounded window before the loop blocks
 * (reply_spin_us; nbd_server.c NOTES 4).
 *
 * Connections are independent: a malformed request ends only its own
 * connection (see nbd_proto.h for which errors end a connection and which
 * get an error reply); the export keeps serving the others.
 *
 * Multi-conn: NBD_FLAG_CAN_MULTI_CONN is advertised only when the backend's
 * flush covers every connection's writes (props.flush_is_global) or the
 * export is read-only. All connections share the one backend object.
 *
 * Lifetime: create -> listen_* / adopt_fd -> ... -> shutdown(cb): stops
 * accepting, closes connections still in the handshake, lets every accepted
 * request finish and its reply go out, closes the backend, then calls cb.
 * The server owns the backend from create on.
 *
 * Errors: negative errno or VS_E* with srv->errmsg (or err) filled.
 */
#ifndef VSTOR_NBD_SERVER_H
#define VSTOR_NBD_SERVER_H

#include "nbd_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_loop;
struct vs_nbd_server;

struct vs_nbd_server_config {
    const char *export_name;       /* at most VS_NBD_NAME_MAX bytes */
    unsigned iodepth;              /* request slots per connection */
    unsigned conn_max;             /* connections at once; more are refused */
    uint64_t buffer_bytes;         /* data buffer arena, >= 2 x the largest request */
    uint64_t handshake_timeout_ms; /* a client still negotiating after this is
                                    * disconnected; 0 = never */
    unsigned reply_spin_us;        /* the reply spin's window (nbd_server.c NOTES 4);
                                    * 0 = off */
    bool no_structured;            /* refuse NBD_OPT_STRUCTURED_REPLY (ERR_UNSUP) */
};

typedef void (*vs_nbd_server_stopped_cb)(void *arg);

/* Creates a server for `be` on loop. On success the server owns be; on error
 * the caller still does. */
int vs_nbd_server_create(struct vs_loop *loop, struct vs_nbd_backend *be,
                         const struct vs_nbd_server_config *cfg, struct vs_nbd_server **out,
                         char *err, size_t err_size);

/* Listens on a unix socket at path. A stale socket file (nobody listening)
 * is replaced; a live one is an error (-EADDRINUSE). The file is removed at
 * shutdown. */
int vs_nbd_server_listen_unix(struct vs_nbd_server *srv, const char *path, char *err,
                              size_t err_size);
/* Listens on TCP "ADDR:PORT" ("127.0.0.1:10809", "[::1]:0"). Port 0 picks a
 * free port; *port_out (if not NULL) gets the bound port. */
int vs_nbd_server_listen_tcp(struct vs_nbd_server *srv, const char *addr_port, int *port_out,
                             char *err, size_t err_size);

/* Serves fd (a connected stream socket) in the transmission phase with no
 * handshake, as the kernel nbd driver expects: simple replies, the export's
 * flags as given to the kernel. The server owns fd from then on. When that
 * connection ends, on_close(arg) runs (the kernel disconnected). */
int vs_nbd_server_adopt_fd(struct vs_nbd_server *srv, int fd, void (*on_close)(void *arg),
                           void *arg, char *err, size_t err_size);

/* The transmission flags this export advertises (for the kernel driver). */
uint16_t vs_nbd_server_tx_flags(const struct vs_nbd_server *srv);

/* Starts an orderly stop; cb(arg) runs once everything is closed and the
 * server is freed. Idempotent: a second call is ignored. */
void vs_nbd_server_shutdown(struct vs_nbd_server *srv, vs_nbd_server_stopped_cb cb, void *arg);

/* Counters, for logs and tests. */
struct vs_nbd_server_stats {
    uint64_t conns_accepted, conns_refused, conns_open;
    uint64_t requests, protocol_errors;
    uint64_t spins;     /* reply spins taken (nbd_server.c NOTES 4) */
    uint64_t spin_hits; /* ... that found the client's next request */
    uint64_t spin_ns;   /* time spent in them */
};
void vs_nbd_server_get_stats(const struct vs_nbd_server *srv, struct vs_nbd_server_stats *st);

#endif /* VSTOR_NBD_SERVER_H */
