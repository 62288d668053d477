/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_server.c -- listeners, accepting connections, the handshake phase,
 * connection close, the per-turn attend hooks and orderly shutdown. The
 * transmission phase is in nbd_conn.c.
 *
 * NOTES
 * (1) A connection's memory is freed only when both its handle is closed
 *     and no request of it is still in the backend (nbd__conn_maybe_free),
 *     because a backend completion writes into the request slot.
 * (2) Handshake replies are small and few, so each is copied into its own
 *     write request (control plane; allocation is fine here). A handshake
 *     that must end after a reply (NBD_OPT_ABORT) closes from the write
 *     callback of its last reply, so the reply is not cancelled.
 * (3) The attend hooks flush replies gathered during the turn, resume
 *     connections blocked on a slot, close drained ones, and serve buffer
 *     waiters (nbd_conn.c). They run twice per loop turn: as a check hook,
 *     after the poll phase (requests read, io_uring completions), and as a
 *     prepare hook, just before the loop blocks (completions that libvstor
 *     delivers from its idle handle, before this turn's poll). While a
 *     connection is dirty an idle handle keeps the loop from blocking, so a
 *     reply never waits in the queue for an unrelated event.
 * (4) The reply spin (reply_spin_us, config key nbd_reply_spin_us). At
 *     queue depth 1 a client sends its next request right after it read the
 *     reply (fio --fsync=1: the FLUSH right after its WRITE's reply), and the
 *     export, blocked in epoll by then, pays a wake-up for it (10-40 us on a
 *     VM whose idle vCPUs halt). So in the prepare hook, when a reply went
 *     out this turn, no request of any connection is in the backend (nothing
 *     in flight toward the OSDs, whose CPU the spin would otherwise take),
 *     that connection has nothing queued, and the loop would block, the
 *     server polls that client's socket (recv MSG_PEEK, non-blocking, with
 *     sched_yield between tries) for at most reply_spin_us, and never past
 *     the loop's next timer. Data, EOF or an error ends it: an idle handle
 *     then makes this turn's poll non-blocking, and the ordinary read path
 *     handles the bytes. A spin that finds nothing just lets the loop block.
 *     Not taken at depth (requests in flight), nor after a reply that went
 *     out through libuv's write queue. Off by default: on the 2-vCPU test
 *     machine it found the next request after 99.8% of Q1 replies, yet made
 *     Q1 no faster in a 10-round A/B (docs/performance.md, "NBD"); a likely
 *     cause is that the reply's socket wake-up is a sync one, which places
 *     the client on the spinning export's vCPU.
 */
#include "nbd_server_priv.h"

#include "loop.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void server_maybe_finish(struct vs_nbd_server *srv);

/* ---- Connection lifecycle ----------------------------------------------- */

static void kick_cb(uv_idle_t *h)
{
    (void)h; /* only keeps the loop from blocking; the attend hooks do the work */
}

void nbd__conn_mark_dirty(struct nbd_conn *c)
{
    if (c->dirty || c->state == CONN_CLOSING)
        return;
    struct vs_nbd_server *srv = c->srv;
    c->dirty = true;
    c->dirty_next = srv->dirty_head;
    srv->dirty_head = c;
    if (!srv->kick_on && !uv_is_closing((uv_handle_t *)&srv->kick)) {
        srv->kick_on = true;
        uv_idle_start(&srv->kick, kick_cb);
    }
}

void nbd__conn_update_reading(struct nbd_conn *c)
{
    bool want = false;
    if (c->state == CONN_HANDSHAKE)
        want = c->hs && c->hs->state != VS_NBD_HS_CLOSE && c->hs->state != VS_NBD_HS_GO;
    else if (c->state == CONN_TRANSMISSION || c->state == CONN_DRAINING)
        want = nbd__conn_wants_input(c);
    if (want && !c->reading) {
        nbd__read_start(c);
    } else if (!want && c->reading) {
        uv_read_stop(&c->h.stream);
        c->reading = false;
    }
}

static void list_unlink_dirty(struct vs_nbd_server *srv, struct nbd_conn *c)
{
    for (struct nbd_conn **pp = &srv->dirty_head; *pp; pp = &(*pp)->dirty_next) {
        if (*pp == c) {
            *pp = c->dirty_next;
            break;
        }
    }
    c->dirty = false;
}

static void list_unlink_bufwait(struct vs_nbd_server *srv, struct nbd_conn *c)
{
    struct nbd_conn *prev = NULL;
    for (struct nbd_conn *p = srv->bufwait_head; p; prev = p, p = p->bufwait_next) {
        if (p != c)
            continue;
        if (prev)
            prev->bufwait_next = p->bufwait_next;
        else
            srv->bufwait_head = p->bufwait_next;
        if (srv->bufwait_tail == c)
            srv->bufwait_tail = prev;
        break;
    }
    c->bufwait = false;
}

void nbd__conn_maybe_free(struct nbd_conn *c)
{
    if (!c->handle_closed || c->busy > 0)
        return;
    struct vs_nbd_server *srv = c->srv;
    if (srv->spin_conn == c)
        srv->spin_conn = NULL;
    if (c->dirty)
        list_unlink_dirty(srv, c);
    if (c->bufwait)
        list_unlink_bufwait(srv, c);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    srv->stats.conns_open--;
    void (*on_close)(void *) = c->on_close;
    void *arg = c->on_close_arg;
    free(c->slots);
    free(c->priv_area);
    free(c->rbuf);
    free(c->hs);
    free(c);
    if (on_close)
        on_close(arg);
    server_maybe_finish(srv);
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct nbd_conn *c = h->data;
    VS_ASSERT(c->handles_open > 0);
    if (--c->handles_open > 0)
        return;
    c->handle_closed = true;
    nbd__conn_maybe_free(c);
}

/* Releases requests that are not in the backend or in libuv's hands. */
static void conn_release_idle_reqs(struct nbd_conn *c)
{
    struct nbd_req *req = c->out_head;
    if (c->writing)
        req = req->next; /* the head is released by write_cb */
    while (req) {
        struct nbd_req *next = req->next;
        if (req->buf)
            vs_nbd_buf_put(c->srv->pool, req->buf);
        req->buf = NULL;
        req->state = REQ_FREE;
        c->busy--;
        req = next;
    }
    if (c->writing) {
        c->out_head->next = NULL;
        c->out_tail = c->out_head;
    } else {
        c->out_head = c->out_tail = NULL;
    }
    if (c->rx == RX_PAYLOAD && c->rx_req) {
        struct nbd_req *rq = c->rx_req;
        vs_nbd_buf_put(c->srv->pool, rq->buf);
        rq->buf = NULL;
        rq->state = REQ_FREE;
        c->busy--;
        c->rx_req = NULL;
    }
}

void nbd__conn_close(struct nbd_conn *c, const char *why)
{
    if (c->state == CONN_CLOSING)
        return;
    VS_INFO("nbd", "conn %llu (%s): closed: %s (%llu requests, %llu reply spins, %llu found "
            "a request)", (unsigned long long)c->id, c->peer, why,
            (unsigned long long)c->requests, (unsigned long long)c->spins,
            (unsigned long long)c->spin_hits);
    c->state = CONN_CLOSING;
    if (c->reading)
        uv_read_stop(&c->h.stream);
    c->reading = false;
    conn_release_idle_reqs(c);
    uv_close(&c->h.handle, conn_closed_cb);
    if (c->has_timer)
        uv_close((uv_handle_t *)&c->hs_timer, conn_closed_cb);
}

/* ---- Reading ------------------------------------------------------------ */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct nbd_conn *c = h->data;
    (void)suggested;
    if (c->rx == RX_PAYLOAD && c->rpos == c->rend && c->state != CONN_HANDSHAKE) {
        struct nbd_req *req = c->rx_req; /* NOTES (1) of nbd_conn.c: zero copy */
        c->alloc_to_payload = true;
        *buf = uv_buf_init((char *)req->buf + req->rx_got, req->r.length - req->rx_got);
        return;
    }
    c->alloc_to_payload = false;
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rend - c->rpos);
        c->rend -= c->rpos;
        c->rpos = 0;
    }
    *buf = uv_buf_init((char *)c->rbuf + c->rend, (unsigned)(NBD_RBUF_BYTES - c->rend));
}

static void handshake_process(struct nbd_conn *c);

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct nbd_conn *c = s->data;
    (void)buf;
    if (nread == 0 || c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        nbd__conn_close(c, nread == UV_EOF ? "client hung up" : uv_strerror((int)nread));
        return;
    }
    if (c->alloc_to_payload)
        nbd__conn_payload_received(c, (size_t)nread);
    else
        c->rend += (size_t)nread;
    if (c->state == CONN_HANDSHAKE)
        handshake_process(c);
    if (c->state == CONN_TRANSMISSION || c->state == CONN_DRAINING)
        nbd__conn_rx_process(c);
}

void nbd__read_start(struct nbd_conn *c)
{
    int rc = uv_read_start(&c->h.stream, alloc_cb, read_cb);
    if (rc < 0) {
        nbd__conn_close(c, uv_strerror(rc));
        return;
    }
    c->reading = true;
}

/* ---- Handshake ---------------------------------------------------------- */

struct hs_write {
    uv_write_t w;
    struct nbd_conn *c;
    uint8_t data[];
};

static void hs_write_cb(uv_write_t *w, int status)
{
    struct hs_write *hw = (struct hs_write *)w;
    struct nbd_conn *c = hw->c;
    free(hw);
    VS_ASSERT(c->hs_writes > 0);
    c->hs_writes--;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0)
        nbd__conn_close(c, uv_strerror(status));
    else if (c->close_after_write && c->hs_writes == 0)
        nbd__conn_close(c, c->hs ? c->hs->close_reason : "handshake ended");
}

static int hs_send(struct nbd_conn *c, const uint8_t *data, size_t len)
{
    struct hs_write *hw = malloc(sizeof(*hw) + len);
    if (!hw)
        return -ENOMEM;
    hw->c = c;
    memcpy(hw->data, data, len);
    uv_buf_t b = uv_buf_init((char *)hw->data, (unsigned)len);
    int rc = uv_write(&hw->w, &c->h.stream, &b, 1, hs_write_cb);
    if (rc < 0) {
        free(hw);
        return rc;
    }
    c->hs_writes++;
    return 0;
}

static void handshake_done(struct nbd_conn *c)
{
    struct vs_nbd_hs *hs = c->hs;
    if (hs->state == VS_NBD_HS_CLOSE) {
        VS_INFO("nbd", "conn %llu (%s): handshake ended: %s", (unsigned long long)c->id, c->peer,
                hs->close_reason);
        c->close_after_write = true;
        nbd__conn_update_reading(c);
        if (c->hs_writes == 0)
            nbd__conn_close(c, hs->close_reason);
        return;
    }
    struct vs_nbd_session s;
    vs_nbd_session_from_hs(&s, hs);
    if (!hs->block_size_agreed && s.block_min > 1)
        VS_DEBUG_LOG("nbd",
                     "conn %llu: client did not ask for block sizes; unaligned "
                     "requests will get EINVAL",
                     (unsigned long long)c->id);
    free(c->hs);
    c->hs = NULL;
    if (c->has_timer)
        uv_timer_stop(&c->hs_timer);
    nbd__conn_enter_transmission(c, &s);
}

static void handshake_process(struct nbd_conn *c)
{
    uint8_t out[VS_NBD_HS_OUT_MAX];
    while (c->state == CONN_HANDSHAKE && c->rpos < c->rend) {
        struct vs_nbd_obuf ob = {out, 0, sizeof(out)};
        size_t n = vs_nbd_hs_feed(c->hs, c->rbuf + c->rpos, c->rend - c->rpos, &ob);
        c->rpos += n;
        if (ob.len > 0 && hs_send(c, out, ob.len) < 0) {
            nbd__conn_close(c, "cannot send handshake reply");
            return;
        }
        if (c->hs->state == VS_NBD_HS_GO || c->hs->state == VS_NBD_HS_CLOSE) {
            handshake_done(c);
            return;
        }
        VS_ASSERT(n > 0 || ob.len > 0);
    }
}

/* ---- Accepting ---------------------------------------------------------- */

static struct nbd_conn *conn_new(struct vs_nbd_server *srv)
{
    struct nbd_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->rbuf = malloc(NBD_RBUF_BYTES);
    if (!c->rbuf) {
        free(c);
        return NULL;
    }
    c->srv = srv;
    c->id = ++srv->next_id;
    c->h.handle.data = c;
    return c;
}

static void conn_link(struct vs_nbd_server *srv, struct nbd_conn *c)
{
    c->handles_open = 1; /* the stream */
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    srv->stats.conns_open++;
}

static void refused_closed_cb(uv_handle_t *h)
{
    struct nbd_conn *c = h->data;
    free(c->rbuf);
    free(c);
}

static void peer_name(struct nbd_conn *c, bool is_unix)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    snprintf(c->peer, sizeof(c->peer), "unix");
    if (is_unix || uv_tcp_getpeername(&c->h.tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    char ip[64] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    } else if (ss.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static void hs_timeout_cb(uv_timer_t *t)
{
    struct nbd_conn *c = t->data;
    if (c->state == CONN_HANDSHAKE)
        nbd__conn_close(c, "handshake not finished in time (nbd_handshake_timeout)");
}

static int conn_start_handshake(struct nbd_conn *c)
{
    uint8_t g[VS_NBD_HS_OUT_MAX];
    struct vs_nbd_obuf ob = {g, 0, sizeof(g)};
    c->hs = malloc(sizeof(*c->hs));
    if (!c->hs)
        return -ENOMEM;
    vs_nbd_hs_init(c->hs, &c->srv->exp, &ob);
    c->state = CONN_HANDSHAKE;
    uv_timer_init(&c->srv->loop->uv, &c->hs_timer);
    c->hs_timer.data = c;
    c->has_timer = true;
    c->handles_open++;
    if (c->srv->hs_timeout_ms > 0)
        uv_timer_start(&c->hs_timer, hs_timeout_cb, c->srv->hs_timeout_ms, 0);
    int rc = hs_send(c, g, ob.len);
    if (rc == 0)
        nbd__conn_update_reading(c);
    return rc;
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct nbd_listener *l = ls->data;
    struct vs_nbd_server *srv = l->srv;
    if (status < 0) {
        VS_WARN("nbd", "%s: accept: %s", l->name, uv_strerror(status));
        return;
    }
    struct nbd_conn *c = conn_new(srv);
    if (!c) {
        VS_ERROR("nbd", "%s: out of memory for a connection", l->name);
        return;
    }
    int rc = l->is_unix ? uv_pipe_init(&srv->loop->uv, &c->h.pipe, 0)
                        : uv_tcp_init(&srv->loop->uv, &c->h.tcp);
    if (rc == 0)
        rc = uv_accept(ls, &c->h.stream);
    if (rc < 0 || srv->shutting_down || srv->nconns >= srv->conn_max) {
        srv->stats.conns_refused++;
        VS_WARN("nbd", "%s: connection refused: %s", l->name,
                rc < 0 ? uv_strerror(rc)
                       : (srv->shutting_down ? "shutting down" : "nbd_conn_max reached"));
        uv_close(&c->h.handle, refused_closed_cb);
        return;
    }
    if (!l->is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1); /* small replies must not wait for Nagle */
    peer_name(c, l->is_unix);
    conn_link(srv, c);
    srv->stats.conns_accepted++;
    VS_INFO("nbd", "conn %llu (%s): connected on %s", (unsigned long long)c->id, c->peer, l->name);
    if (conn_start_handshake(c) < 0)
        nbd__conn_close(c, "cannot start the handshake");
}

/* ---- The attend hooks (NOTES 3) ----------------------------------------- */

static void conn_attend(struct nbd_conn *c)
{
    nbd__conn_flush(c);
    if (c->state == CONN_TRANSMISSION && c->blocked == BLOCK_SLOT && c->free_slots) {
        c->blocked = BLOCK_NONE;
        nbd__conn_rx_process(c);
        nbd__conn_flush(c);
    }
    if (c->state == CONN_DRAINING && c->busy == 0 && !c->writing)
        nbd__conn_close(c, "drained");
}

static void attend_dirty(struct vs_nbd_server *srv)
{
    /* Two rounds: attending one connection can release buffers that let a
     * waiter run, whose error replies are then flushed in the second round. */
    for (int round = 0; round < 2; round++) {
        struct nbd_conn *list = srv->dirty_head;
        srv->dirty_head = NULL;
        while (list) {
            struct nbd_conn *c = list;
            list = c->dirty_next;
            c->dirty = false;
            if (c->state != CONN_CLOSING)
                conn_attend(c);
        }
        if (srv->bufwait_head)
            nbd__wake_bufwaiters(srv);
        if (!srv->dirty_head)
            break;
    }
    if (!srv->dirty_head && srv->kick_on) {
        srv->kick_on = false;
        uv_idle_stop(&srv->kick);
    }
}

static void check_cb(uv_check_t *h)
{
    attend_dirty(h->data);
}

/* The spin's window in ns for c now, or 0 when it must not be taken. */
static uint64_t spin_window_ns(struct vs_nbd_server *srv, struct nbd_conn *c)
{
    if (!c || srv->spin_us == 0 || srv->inflight > 0 || srv->dirty_head || srv->kick_on)
        return 0;
    if (c->state != CONN_TRANSMISSION || !c->reading || c->busy > 0 || c->rpos < c->rend)
        return 0;
    int timeout_ms = uv_backend_timeout(&srv->loop->uv); /* -1: no timer */
    if (timeout_ms == 0)
        return 0; /* the loop will not block anyway */
    uint64_t ns = srv->spin_us * 1000ull;
    if (timeout_ms > 0 && (uint64_t)timeout_ms * 1000000ull < ns)
        ns = (uint64_t)timeout_ms * 1000000ull;
    return ns;
}

/* NOTES 4: polls the socket of the connection that was just answered. */
static void reply_spin(struct vs_nbd_server *srv)
{
    struct nbd_conn *c = srv->spin_conn;
    srv->spin_conn = NULL;
    uint64_t window = spin_window_ns(srv, c);
    int fd;
    if (window == 0 || uv_fileno(&c->h.handle, &fd) != 0)
        return;
    uint64_t start = uv_hrtime(), now = start;
    bool hit = false;
    srv->stats.spins++;
    c->spins++;
    while (!hit && now - start < window) {
        char b;
        ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
        hit = n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
        if (!hit) {
            sched_yield();
            now = uv_hrtime();
        }
    }
    srv->stats.spin_ns += uv_hrtime() - start;
    if (hit && !uv_is_closing((uv_handle_t *)&srv->kick)) {
        srv->stats.spin_hits++;
        c->spin_hits++;
        srv->kick_on = true; /* this turn's poll must not block: the read path takes it */
        uv_idle_start(&srv->kick, kick_cb);
    }
}

static void prepare_cb(uv_prepare_t *h)
{
    attend_dirty(h->data);
    reply_spin(h->data);
}

/* ---- Listeners ---------------------------------------------------------- */

static struct nbd_listener *listener_slot(struct vs_nbd_server *srv, char *err, size_t err_size)
{
    if (srv->nlisteners >= NBD_LISTENERS_MAX) {
        snprintf(err, err_size, "at most %d listeners", NBD_LISTENERS_MAX);
        return NULL;
    }
    struct nbd_listener *l = &srv->listeners[srv->nlisteners];
    memset(l, 0, sizeof(*l));
    l->srv = srv;
    l->h.handle.data = l;
    return l;
}

/* A socket file nobody listens on is stale and may be replaced. */
static int unix_path_check(const char *path, char *err, size_t err_size)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return 0;
    if (!S_ISSOCK(st.st_mode)) {
        snprintf(err, err_size, "%s: exists and is not a socket", path);
        return -EEXIST;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if (rc == 0) {
        snprintf(err, err_size, "%s: another server is listening there", path);
        return -EADDRINUSE;
    }
    unlink(path);
    return 0;
}

int vs_nbd_server_listen_unix(struct vs_nbd_server *srv, const char *path, char *err,
                              size_t err_size)
{
    struct nbd_listener *l = listener_slot(srv, err, err_size);
    if (!l)
        return -ENOSPC;
    if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path) ||
        strlen(path) >= sizeof(l->name)) {
        snprintf(err, err_size, "%s: socket path too long", path);
        return -ENAMETOOLONG;
    }
    int rc = unix_path_check(path, err, err_size);
    if (rc < 0)
        return rc;
    l->is_unix = true;
    snprintf(l->name, sizeof(l->name), "%s", path);
    uv_pipe_init(&srv->loop->uv, &l->h.pipe, 0);
    l->open = true;
    srv->nlisteners++;
    rc = uv_pipe_bind(&l->h.pipe, path);
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 128, on_connection);
    if (rc < 0) {
        snprintf(err, err_size, "%s: %s", path, uv_strerror(rc));
        return rc;
    }
    return 0;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" into a sockaddr. */
static int parse_addr_port(const char *s, struct sockaddr_storage *ss)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -EINVAL;
    size_t hlen = (size_t)(colon - s);
    const char *hp = s;
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return -EINVAL;
        hp = s + 1;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return -EINVAL;
    memcpy(host, hp, hlen);
    host[hlen] = 0;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535)
        return -EINVAL;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return -EINVAL;
}

static int bound_port(struct nbd_listener *l)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int vs_nbd_server_listen_tcp(struct vs_nbd_server *srv, const char *addr_port, int *port_out,
                             char *err, size_t err_size)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (parse_addr_port(addr_port, &ss) < 0) {
        snprintf(err, err_size,
                 "'%s' is not ADDR:PORT (for example 127.0.0.1:10809 or "
                 "[::1]:10809)",
                 addr_port);
        return VS_EUSAGE;
    }
    struct nbd_listener *l = listener_slot(srv, err, err_size);
    if (!l)
        return -ENOSPC;
    uv_tcp_init(&srv->loop->uv, &l->h.tcp);
    l->open = true;
    srv->nlisteners++;
    int rc = uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen(&l->h.stream, 128, on_connection);
    if (rc < 0) {
        snprintf(err, err_size, "%s: %s", addr_port, uv_strerror(rc));
        return rc;
    }
    int port = bound_port(l);
    const char *colon = strrchr(addr_port, ':');
    snprintf(l->name, sizeof(l->name), "%.*s:%d", (int)(colon - addr_port), addr_port, port);
    if (port_out)
        *port_out = port;
    return 0;
}

/* ---- Kernel sockets ----------------------------------------------------- */

int vs_nbd_server_adopt_fd(struct vs_nbd_server *srv, int fd, void (*on_close)(void *arg),
                           void *arg, char *err, size_t err_size)
{
    struct nbd_conn *c = conn_new(srv);
    if (!c) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    uv_pipe_init(&srv->loop->uv, &c->h.pipe, 0);
    int rc = uv_pipe_open(&c->h.pipe, fd);
    if (rc < 0) {
        snprintf(err, err_size, "adopting fd %d: %s", fd, uv_strerror(rc));
        uv_close(&c->h.handle, refused_closed_cb);
        return rc;
    }
    snprintf(c->peer, sizeof(c->peer), "kernel");
    c->on_close = on_close;
    c->on_close_arg = arg;
    conn_link(srv, c);
    srv->stats.conns_accepted++;
    struct vs_nbd_session s = {
        .size_bytes = srv->exp.size_bytes,
        .tx_flags = srv->exp.tx_flags,
        .structured = false,
        .block_min = srv->exp.block_min,
        .block_max = srv->exp.block_max,
    };
    nbd__conn_enter_transmission(c, &s);
    if (c->state == CONN_TRANSMISSION)
        nbd__conn_update_reading(c);
    return 0;
}

/* ---- Create and shut down ----------------------------------------------- */

static uint16_t export_flags(const struct vs_nbd_backend *be)
{
    const struct vs_nbd_backend_props *p = &be->props;
    unsigned f = VS_NBD_FLAG_HAS_FLAGS | VS_NBD_FLAG_SEND_FLUSH | VS_NBD_FLAG_SEND_FUA;
    if (p->read_only) {
        f |= VS_NBD_FLAG_READ_ONLY;
    } else {
        f |= VS_NBD_FLAG_SEND_WRITE_ZEROES;
        if (be->ops->trim)
            f |= VS_NBD_FLAG_SEND_TRIM;
        if (p->can_fast_zero)
            f |= VS_NBD_FLAG_SEND_FAST_ZERO;
    }
    /* proto.md: with CAN_MULTI_CONN, "the effects of NBD_CMD_FLUSH and
     * NBD_CMD_FLAG_FUA MUST be visible across all connections". */
    if (p->flush_is_global || p->read_only)
        f |= VS_NBD_FLAG_CAN_MULTI_CONN;
    return (uint16_t)f;
}

static int fill_export(struct vs_nbd_server *srv, const struct vs_nbd_server_config *cfg, char *err,
                       size_t err_size)
{
    const struct vs_nbd_backend *be = srv->be;
    struct vs_nbd_export *e = &srv->exp;
    const char *name = cfg->export_name ? cfg->export_name : "";
    if (strlen(name) > VS_NBD_NAME_MAX) {
        snprintf(err, err_size, "export name longer than %d bytes", VS_NBD_NAME_MAX);
        return VS_EUSAGE;
    }
    snprintf(e->name, sizeof(e->name), "%s", name);
    snprintf(e->description, sizeof(e->description), "%s", be->desc);
    e->size_bytes = be->props.size_bytes;
    e->tx_flags = export_flags(be);
    e->no_structured = cfg->no_structured;
    e->block_min = be->props.block_min_bytes;
    e->block_pref = VS_MAX(be->props.block_pref_bytes, VS_MAX(e->block_min, 512u));
    e->block_max = VS_MIN(be->props.block_max_bytes, VS_NBD_PAYLOAD_MAX);
    if (vs_nbd_export_check(e) != 0) {
        snprintf(err, err_size,
                 "backend %s reports inconsistent sizes (size %llu, block "
                 "min %u pref %u max %u)",
                 be->ops->name, (unsigned long long)e->size_bytes, e->block_min, e->block_pref,
                 e->block_max);
        return -EINVAL;
    }
    return 0;
}

int vs_nbd_server_create(struct vs_loop *loop, struct vs_nbd_backend *be,
                         const struct vs_nbd_server_config *cfg, struct vs_nbd_server **out,
                         char *err, size_t err_size)
{
    struct vs_nbd_server *srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(err, err_size, "out of memory");
        return -ENOMEM;
    }
    srv->loop = loop;
    srv->be = be;
    srv->iodepth = cfg->iodepth;
    srv->conn_max = cfg->conn_max;
    srv->hs_timeout_ms = cfg->handshake_timeout_ms;
    srv->spin_us = cfg->reply_spin_us;
    srv->priv_stride = (be->props.io_priv_bytes + 15u) & ~(size_t)15;
    int rc = fill_export(srv, cfg, err, err_size);
    if (rc == 0 && cfg->buffer_bytes < 2ull * srv->exp.block_max) {
        snprintf(err, err_size,
                 "nbd_buffer_size %llu is below twice the largest request "
                 "(%u bytes)",
                 (unsigned long long)cfg->buffer_bytes, srv->exp.block_max);
        rc = VS_ECONFIG;
    }
    if (rc == 0 && (rc = vs_nbd_bufpool_create(cfg->buffer_bytes, &srv->pool)) < 0)
        snprintf(err, err_size, "nbd buffers (%llu bytes): %s",
                 (unsigned long long)cfg->buffer_bytes, strerror(-rc));
    if (rc < 0) {
        free(srv);
        return rc;
    }
    uv_check_init(&loop->uv, &srv->check);
    uv_prepare_init(&loop->uv, &srv->prepare);
    uv_idle_init(&loop->uv, &srv->kick);
    srv->check.data = srv->prepare.data = srv->kick.data = srv;
    uv_check_start(&srv->check, check_cb);
    uv_prepare_start(&srv->prepare, prepare_cb);
    uv_unref((uv_handle_t *)&srv->check);
    uv_unref((uv_handle_t *)&srv->prepare);
    uv_unref((uv_handle_t *)&srv->kick);
    *out = srv;
    return 0;
}

uint16_t vs_nbd_server_tx_flags(const struct vs_nbd_server *srv)
{
    return srv->exp.tx_flags;
}

void vs_nbd_server_get_stats(const struct vs_nbd_server *srv, struct vs_nbd_server_stats *st)
{
    *st = srv->stats;
}

static void hook_closed_cb(uv_handle_t *h)
{
    struct vs_nbd_server *srv = h->data;
    if (--srv->hooks_open > 0)
        return;
    vs_nbd_server_stopped_cb cb = srv->stopped_cb;
    void *arg = srv->stopped_arg;
    vs_nbd_bufpool_destroy(srv->pool);
    free(srv);
    if (cb)
        cb(arg);
}

static void backend_closed_cb(void *arg)
{
    struct vs_nbd_server *srv = arg;
    srv->hooks_open = 3;
    uv_close((uv_handle_t *)&srv->check, hook_closed_cb);
    uv_close((uv_handle_t *)&srv->prepare, hook_closed_cb);
    uv_close((uv_handle_t *)&srv->kick, hook_closed_cb);
}

static void server_maybe_finish(struct vs_nbd_server *srv)
{
    if (!srv->shutting_down || srv->backend_closing || srv->nconns > 0 ||
        srv->listeners_closing > 0)
        return;
    srv->backend_closing = true;
    VS_INFO("nbd", "all connections closed; closing the backend");
    srv->be->ops->close(srv->be, backend_closed_cb, srv);
}

static void listener_closed_cb(uv_handle_t *h)
{
    struct nbd_listener *l = h->data;
    struct vs_nbd_server *srv = l->srv;
    if (l->is_unix)
        unlink(l->name);
    srv->listeners_closing--;
    server_maybe_finish(srv);
}

void vs_nbd_server_shutdown(struct vs_nbd_server *srv, vs_nbd_server_stopped_cb cb, void *arg)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    srv->stopped_cb = cb;
    srv->stopped_arg = arg;
    for (unsigned i = 0; i < srv->nlisteners; i++) {
        struct nbd_listener *l = &srv->listeners[i];
        if (!l->open)
            continue;
        l->open = false;
        srv->listeners_closing++;
        uv_close(&l->h.handle, listener_closed_cb);
    }
    for (struct nbd_conn *c = srv->conns; c; c = c->next) {
        if (c->state == CONN_HANDSHAKE)
            nbd__conn_close(c, "server shutting down");
        else
            nbd__conn_begin_drain(c, "server shutting down");
    }
    server_maybe_finish(srv);
}
