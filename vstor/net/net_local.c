/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_local.c -- the local transport: a unix socket next to the TCP
 * listener, tried first by outgoing connections on the same host (net.h,
 * "Local transport").
 *
 * Design notes:
 *  (1) Why. On a same-host hop (a client or NBD export next to its OSDs,
 *      OSD to OSD in `vstor demo`) a TCP loopback frame costs the sender the
 *      whole TCP/IP transmit path plus, in its softirq, the receiver's
 *      receive path and the ACKs; a unix stream socket queues the bytes on
 *      the peer's socket. Frames, handshake and everything above the stream
 *      are unchanged: the connection's handle is a uv_pipe_t instead of a
 *      uv_tcp_t (a union in struct vs_net_conn).
 *  (2) The name is derived from the address the listener bound, so a
 *      client needs nothing but the address it was given (the OSD map).
 *      A listener creates its socket only after binding that address over
 *      TCP: no other live listener can have the name, so a file already
 *      there is stale and is replaced.
 *  (3) Connecting is synchronous: connect(2) on a unix stream socket
 *      succeeds or fails at once (ENOENT, ECONNREFUSED for a stale file,
 *      EAGAIN for a full backlog), so the attempt falls back to TCP at once,
 *      without a DOWN event and without failing the ops that wait for it.
 *      A local attempt that connected but failed before READY (a refused
 *      handshake) marks the connection so that its next attempt uses TCP.
 */
#include "net_int.h"

#include "vs_err.h"
#include "vs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

_Static_assert(VS_NET_LOCAL_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
               "VS_NET_LOCAL_PATH_MAX is sun_path's size");

int vs_net_local_path(const char *dir, const char *addr, char *out, size_t size)
{
    struct sockaddr_storage sa;
    char canon[NET_ADDR_STR];
    if (!dir || dir[0] != '/' || net__parse_addr(addr, &sa) < 0)
        return -EINVAL;
    net__format_addr(&sa, canon, sizeof(canon));
    size_t dlen = strlen(dir);
    while (dlen > 1 && dir[dlen - 1] == '/')
        dlen--;
    int n = snprintf(out, size, "%.*s/vstor-%s.sock", (int)dlen, dir, canon);
    if (n < 0 || (size_t)n >= size || n >= VS_NET_LOCAL_PATH_MAX)
        return -ENAMETOOLONG;
    return 0;
}

static bool wildcard(const struct sockaddr_storage *sa)
{
    static const uint8_t any6[16];
    if (sa->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)sa)->sin6_addr, any6, 16) == 0;
    return ((const struct sockaddr_in *)sa)->sin_addr.s_addr == htonl(INADDR_ANY);
}

void net__local_listen(struct vs_net *net, const struct sockaddr_storage *bound,
                       uv_connection_cb on_connection)
{
    char addr[NET_ADDR_STR], path[VS_NET_LOCAL_PATH_MAX];
    if (!net->local_dir[0])
        return;
    net__format_addr(bound, addr, sizeof(addr));
    if (wildcard(bound)) {
        VS_INFO(net->log_name, "no local socket for the wildcard address %s", addr);
        return;
    }
    int rc = vs_net_local_path(net->local_dir, addr, path, sizeof(path));
    if (rc < 0) {
        VS_WARN(net->log_name, "no local socket: %s/vstor-%s.sock: %s", net->local_dir, addr,
                vs_strerror(rc));
        return;
    }
    (void)unlink(path); /* stale: design note 2 */
    uv_pipe_init(net->loop, &net->local_listener, 0);
    net->local_listener.data = net;
    net->local_open = true;
    rc = uv_pipe_bind(&net->local_listener, path);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&net->local_listener, 512, on_connection);
    if (rc < 0) {
        VS_WARN(net->log_name, "no local socket: %s: %s", path, uv_strerror(rc));
        net__local_close(net);
        return;
    }
    snprintf(net->local_path, sizeof(net->local_path), "%s", path);
    VS_INFO(net->log_name, "listening on %s (local transport)", path);
}

static void local_closed_cb(uv_handle_t *h)
{
    struct vs_net *net = h->data;
    net->local_open = false;
    net__maybe_finish(net);
}

void net__local_close(struct vs_net *net)
{
    if (net->local_path[0]) {
        (void)unlink(net->local_path);
        net->local_path[0] = 0;
    }
    if (net->local_open && !uv_is_closing((uv_handle_t *)&net->local_listener))
        uv_close((uv_handle_t *)&net->local_listener, local_closed_cb);
}

/* A connected unix socket to path, or -errno. */
static int local_connect(const char *path)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        int rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

int net__local_try(struct vs_net_conn *conn)
{
    struct vs_net *net = conn->net;
    char path[VS_NET_LOCAL_PATH_MAX];
    conn->local = false;
    if (!net->local_dir[0] || conn->local_failed) {
        conn->local_failed = false; /* this attempt is TCP; the next may be local */
        return -ENOENT;
    }
    int rc = vs_net_local_path(net->local_dir, conn->addr_str, path, sizeof(path));
    if (rc < 0)
        return rc;
    int fd = local_connect(path);
    if (fd < 0) {
        VS_DEBUG_LOG(net->log_name, "conn %s: local socket %s: %s; using TCP", conn->addr_str,
                     path, vs_strerror(fd));
        return fd;
    }
    conn->local = true;
    return fd;
}
