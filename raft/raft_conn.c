/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_conn.c -- one framed TCP connection on the libuv loop, used by the
 * member (peers and clients) and by the client library alike.
 *
 * A frame is a 16-byte header -- magic u32, type u16, flags u16, length u32,
 * crc32c u32 of the payload -- then the payload. A frame whose magic, length
 * (over conn->frame_max) or checksum is wrong closes the connection; nothing
 * else is affected (docs/metadata.md, "Frames").
 *
 * Writes are batched per loop turn (STYLE B16): raft__conn_frame_begin/_end
 * append frames to conn->out, and the owner's end-of-turn hook calls
 * raft__conn_flush(), which hands the whole turn's bytes to one uv_write.
 *
 * Lifetime: the owner allocates the struct, calls accept or connect, and
 * frees it only in ops->closed, which runs once, from the loop, after
 * raft__conn_close() (or a read/write error) closed the handle.
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_CHUNK (64u << 10)

#define RAFT_CONN_KEEP_BUF (1u << 20) /* an out buffer kept between flushes */

struct write_req {
    uv_write_t req;
    struct raft_conn *conn;
    uint8_t *data;
    size_t len;
};

int raft__parse_address(const char *address, struct sockaddr_storage *out)
{
    char host[VS_RAFT_ADDRESS_MAX + 1];
    const char *colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t)(colon - address) >= sizeof(host))
        return -EINVAL;
    char *end;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (*end || port == 0 || port > 65535 || colon[1] == 0)
        return -EINVAL;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = 0;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
        host[hl - 1] = 0;
        return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)out) == 0 ? 0 : -EINVAL;
    }
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)out) == 0 ? 0 : -EINVAL;
}

static void conn_closed_cb(uv_handle_t *h)
{
    struct raft_conn *c = h->data;
    raft__buf_free(&c->in);
    raft__buf_free(&c->out);
    c->state = RAFT_CONN_CLOSED;
    c->ops->closed(c);
}

void raft__conn_close(struct raft_conn *c)
{
    if (c->state == RAFT_CONN_CLOSING || c->state == RAFT_CONN_CLOSED)
        return;
    c->state = RAFT_CONN_CLOSING;
    raft__flusher_remove(c);
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct raft_conn *c = h->data;
    uint8_t *p = raft__buf_reserve(&c->in, READ_CHUNK);
    buf->base = (char *)p;
    buf->len = p ? READ_CHUNK : 0;
}

/* Parses every complete frame in c->in; returns false when c closed. */
static bool parse_frames(struct raft_conn *c)
{
    size_t off = 0;
    while (c->state == RAFT_CONN_OPEN && c->in.len - off >= RAFT_FRAME_HDR) {
        const uint8_t *h = c->in.p + off;
        uint32_t len = vs_get_u32(h + 8);
        if (vs_get_u32(h) != RAFT_FRAME_MAGIC || len > c->frame_max) {
            VS_WARN("meta", "%s: bad frame header (magic %08x, length %u, max %u): closing",
                    c->name, vs_get_u32(h), len, c->frame_max);
            raft__conn_close(c);
            return false;
        }
        if (c->in.len - off - RAFT_FRAME_HDR < len)
            break;
        const uint8_t *payload = h + RAFT_FRAME_HDR;
        if (vs_crc32c(payload, len) != vs_get_u32(h + 12)) {
            VS_WARN("meta", "%s: frame checksum mismatch: closing", c->name);
            raft__conn_close(c);
            return false;
        }
        off += RAFT_FRAME_HDR + len;
        c->frames_in++;
        c->ops->frame(c, vs_get_u16(h + 4), payload, len);
    }
    if (off > 0 && c->state == RAFT_CONN_OPEN) {
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
    }
    return c->state == RAFT_CONN_OPEN;
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct raft_conn *c = s->data;
    if (nread < 0 || c->in.oom) {
        if (nread != UV_EOF)
            VS_DEBUG_LOG("meta", "%s: read: %s", c->name,
                         nread < 0 ? uv_strerror((int)nread) : "out of memory");
        raft__conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    parse_frames(c);
}

static int start_reading(struct raft_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 10);
    int rc = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    return rc < 0 ? rc : 0;
}

static void conn_init(struct raft_conn *c, uv_loop_t *loop, const struct raft_conn_ops *ops,
                      struct raft_flusher *flusher)
{
    memset(&c->tcp, 0, sizeof(c->tcp));
    c->loop = loop;
    c->ops = ops;
    c->flusher = flusher;
    raft__buf_init(&c->in);
    raft__buf_init(&c->out);
    c->inflight_bytes = 0;
    c->frames_in = 0;
    c->dirty = false;
    c->next_dirty = NULL;
    if (c->frame_max == 0)
        c->frame_max = VS_META_VALUE_MAX_DEFAULT + (64u << 10);
}

int raft__conn_accept(struct raft_conn *c, uv_stream_t *server, const struct raft_conn_ops *ops,
                      struct raft_flusher *flusher)
{
    conn_init(c, server->loop, ops, flusher);
    int rc = uv_tcp_init(server->loop, &c->tcp);
    if (rc < 0)
        return rc;
    c->tcp.data = c;
    c->state = RAFT_CONN_OPEN;
    rc = uv_accept(server, (uv_stream_t *)&c->tcp);
    if (rc == 0)
        rc = start_reading(c);
    if (rc < 0)
        raft__conn_close(c); /* ops->closed runs later: the caller frees there */
    return 0;
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct raft_conn *c = req->data;
    if (c->state != RAFT_CONN_CONNECTING) {
        return; /* closed while connecting: conn_closed_cb does the rest */
    }
    if (status == 0) {
        c->state = RAFT_CONN_OPEN;
        status = start_reading(c);
    }
    if (status < 0) {
        raft__conn_close(c);
        return;
    }
    c->ops->connected(c, 0);
}

int raft__conn_connect(struct raft_conn *c, uv_loop_t *loop, const char *address,
                       const struct raft_conn_ops *ops, struct raft_flusher *flusher)
{
    struct sockaddr_storage sa;
    int rc = raft__parse_address(address, &sa);
    if (rc < 0)
        return rc;
    conn_init(c, loop, ops, flusher);
    rc = uv_tcp_init(loop, &c->tcp);
    if (rc < 0)
        return rc;
    c->tcp.data = c;
    c->connect_req.data = c;
    c->state = RAFT_CONN_CONNECTING;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)&sa, connect_cb);
    if (rc < 0) {
        raft__conn_close(c);
        return 0; /* reported through ops->closed */
    }
    return 0;
}

size_t raft__conn_frame_begin(struct raft_conn *c, uint16_t type)
{
    size_t off = c->out.len;
    uint8_t *h = raft__buf_reserve(&c->out, RAFT_FRAME_HDR);
    if (h) {
        vs_put_u32(h, RAFT_FRAME_MAGIC);
        vs_put_u16(h + 4, type);
        vs_put_u16(h + 6, 0);
        c->out.len += RAFT_FRAME_HDR;
    }
    return off;
}

void raft__conn_frame_end(struct raft_conn *c, size_t off)
{
    if (c->out.oom) {
        VS_WARN("meta", "%s: out of memory queueing a frame: closing", c->name);
        raft__conn_close(c);
        return;
    }
    uint8_t *h = c->out.p + off;
    size_t len = c->out.len - off - RAFT_FRAME_HDR;
    vs_put_u32(h + 8, (uint32_t)len);
    vs_put_u32(h + 12, vs_crc32c(h + RAFT_FRAME_HDR, len));
    if (!c->dirty && c->flusher) {
        c->dirty = true;
        c->next_dirty = c->flusher->head;
        c->flusher->head = c;
    }
}

void raft__conn_send(struct raft_conn *c, uint16_t type, const void *p, size_t len)
{
    if (c->state != RAFT_CONN_OPEN)
        return;
    size_t off = raft__conn_frame_begin(c, type);
    raft__buf_bytes(&c->out, p, len);
    raft__conn_frame_end(c, off);
}

static void write_cb(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct raft_conn *c = w->conn;
    c->inflight_bytes -= w->len;
    free(w->data);
    free(w);
    if (status < 0 && c->state == RAFT_CONN_OPEN) {
        VS_DEBUG_LOG("meta", "%s: write: %s", c->name, uv_strerror(status));
        raft__conn_close(c);
    }
}

/* With nothing queued in libuv, the bytes go out at once with
 * uv_try_write(): no request, no copy, no poll-for-writable round (one reply
 * per client connection per turn is the common case). Whatever the socket
 * does not take is queued with uv_write(), and later flushes queue behind it
 * so the order holds. */
void raft__conn_flush(struct raft_conn *c)
{
    if (c->state != RAFT_CONN_OPEN || c->out.len == 0)
        return;
    size_t done = 0;
    if (c->inflight_bytes == 0) {
        uv_buf_t now = uv_buf_init((char *)c->out.p, (unsigned)c->out.len);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &now, 1);
        if (n < 0 && n != UV_EAGAIN) {
            VS_DEBUG_LOG("meta", "%s: write: %s", c->name, uv_strerror(n));
            raft__conn_close(c);
            return;
        }
        done = n > 0 ? (size_t)n : 0;
        if (done == c->out.len) {
            if (c->out.cap > RAFT_CONN_KEEP_BUF)
                raft__buf_free(&c->out); /* after a snapshot: do not keep 1 GiB */
            raft__buf_reset(&c->out);
            return;
        }
    }
    struct write_req *w = malloc(sizeof(*w));
    if (!w) {
        raft__conn_close(c);
        return;
    }
    w->conn = c;
    size_t total;
    w->data = raft__buf_take(&c->out, &total);
    w->len = total - done;
    uv_buf_t buf = uv_buf_init((char *)w->data + done, (unsigned)w->len);
    c->inflight_bytes += w->len;
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, write_cb);
    if (rc < 0) {
        c->inflight_bytes -= w->len;
        free(w->data);
        free(w);
        raft__conn_close(c);
    }
}

size_t raft__conn_backlog(const struct raft_conn *c)
{
    return c->inflight_bytes + c->out.len;
}

void raft__flusher_run(struct raft_flusher *f)
{
    while (f->head) {
        struct raft_conn *c = f->head;
        f->head = c->next_dirty;
        c->dirty = false;
        c->next_dirty = NULL;
        raft__conn_flush(c);
    }
}

void raft__flusher_remove(struct raft_conn *c)
{
    if (!c->dirty || !c->flusher)
        return;
    struct raft_conn **pp = &c->flusher->head;
    while (*pp && *pp != c)
        pp = &(*pp)->next_dirty;
    if (*pp)
        *pp = c->next_dirty;
    c->dirty = false;
    c->next_dirty = NULL;
}
