/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_bench_etcd.c -- the benchmark's etcd target: etcd 3.4's JSON gateway
 * (/v3/kv/put, /v3/kv/range, /v3/watch) over keep-alive HTTP/1.1, one
 * connection per bench client, all to the leader (found with
 * /v3/maintenance/status at open) so etcd pays no follower forwarding -- its
 * best case. Keys and values travel base64-encoded, as the gateway wants.
 */
#include "meta_bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum { REQ_PUT = 1, REQ_GET, REQ_WATCH };

struct hconn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct et *t;
    char *rbuf;
    size_t rlen, rcap;
    int kind;
    bench_done_fn cb;
    void *arg;
    bench_event_fn ev_cb;
    void *ev_arg;
    bool busy, connected, chunked, in_body;
    size_t body_left;  /* content-length mode */
    char *stream;      /* watch: newline-delimited JSON messages */
    size_t slen, scap;
    char pending[1024]; /* a request waiting for the connection */
    size_t pending_len;
};

struct et {
    uv_loop_t *loop;
    struct sockaddr_in leader;
    char host[128];
    struct hconn *conns; /* n clients + 1 watcher */
    unsigned n, closing;
    void (*close_cb)(void *);
    void *close_arg;
};

/* ---- base64 ------------------------------------------------------------------------ */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static size_t b64_enc(const uint8_t *in, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
    return o;
}

static size_t b64_dec(const char *in, size_t n, uint8_t *out)
{
    size_t o = 0;
    uint32_t v = 0;
    int bits = 0;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *p = strchr(b64, in[i]);
        if (!p || !*p)
            continue;
        v = (v << 6) | (uint32_t)(p - b64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(v >> bits);
        }
    }
    return o;
}

/* ---- setup: find the leader with blocking calls ------------------------------------ */

static int parse_ep(const char *ep, struct sockaddr_in *sa)
{
    char host[128];
    const char *p = strstr(ep, "://");
    p = p ? p + 3 : ep;
    const char *colon = strrchr(p, ':');
    if (!colon || (size_t)(colon - p) >= sizeof(host))
        return -EINVAL;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = 0;
    return uv_ip4_addr(host, (int)strtol(colon + 1, NULL, 10), sa) == 0 ? 0 : -EINVAL;
}

/* One blocking POST; returns the parsed JSON body or NULL. */
static json_t *blocking_post(const struct sockaddr_in *sa, const char *path, const char *body)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    char req[512], resp[8192];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     path, strlen(body), body);
    size_t got = 0;
    if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 &&
        write(fd, req, (size_t)n) == n) {
        ssize_t r;
        while (got < sizeof(resp) - 1 && (r = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
            got += (size_t)r;
    }
    close(fd);
    resp[got] = 0;
    char *b = strstr(resp, "\r\n\r\n");
    return b ? json_loads(b + 4, 0, NULL) : NULL;
}

static int find_leader(struct et *t, const char *const *ep, unsigned n_ep)
{
    for (unsigned i = 0; i < n_ep; i++) {
        struct sockaddr_in sa;
        if (parse_ep(ep[i], &sa) < 0)
            return -EINVAL;
        json_t *st = blocking_post(&sa, "/v3/maintenance/status", "{}");
        const char *me = json_string_value(
            json_object_get(json_object_get(st, "header"), "member_id"));
        const char *leader = json_string_value(json_object_get(st, "leader"));
        bool is_leader = me && leader && strcmp(me, leader) == 0;
        json_decref(st);
        if (is_leader) {
            t->leader = sa;
            return 0;
        }
    }
    return -EAGAIN;
}

/* ---- the HTTP connections ------------------------------------------------------------- */

static void hc_write_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static int hc_send(struct hconn *c, const char *req, size_t len)
{
    if (!c->connected) {
        if (len > sizeof(c->pending))
            return -E2BIG;
        memcpy(c->pending, req, len);
        c->pending_len = len;
        return 0;
    }
    uv_write_t *w = malloc(sizeof(*w) + len);
    if (!w)
        return -ENOMEM;
    memcpy(w + 1, req, len);
    uv_buf_t buf = uv_buf_init((char *)(w + 1), (unsigned)len);
    int rc = uv_write(w, (uv_stream_t *)&c->tcp, &buf, 1, hc_write_cb);
    if (rc < 0)
        free(w);
    return rc;
}

static void finish_unary(struct hconn *c, int status, const char *body, size_t len)
{
    c->busy = false;
    bench_done_fn cb = c->cb;
    if (c->kind == REQ_GET && status == 0) {
        json_t *j = json_loadb(body, len, 0, NULL);
        json_t *kv = json_array_get(json_object_get(j, "kvs"), 0);
        const char *v = json_string_value(json_object_get(kv, "value"));
        uint8_t val[4096];
        size_t vlen = v ? b64_dec(v, strlen(v), val) : 0;
        cb(c->arg, 0, kv ? val : NULL, vlen, false);
        json_decref(j);
        return;
    }
    cb(c->arg, status, NULL, 0, false);
}

/* Watch: every complete line of the stream is one JSON message. */
static void body_append(struct hconn *c, const char *p, size_t n);

static void watch_data(struct hconn *c, const char *p, size_t n)
{
    body_append(c, p, n);
    char *nl;
    while ((nl = memchr(c->stream, '\n', c->slen)) != NULL) {
        json_t *j = json_loadb(c->stream, (size_t)(nl - c->stream), 0, NULL);
        json_t *evs = json_object_get(json_object_get(j, "result"), "events");
        size_t i;
        json_t *e;
        json_array_foreach(evs, i, e) {
            const char *k = json_string_value(json_object_get(json_object_get(e, "kv"), "key"));
            uint8_t key[512];
            size_t klen = k ? b64_dec(k, strlen(k), key) : 0;
            if (k)
                c->ev_cb(c->ev_arg, key, klen);
        }
        json_decref(j);
        size_t used = (size_t)(nl - c->stream) + 1;
        memmove(c->stream, c->stream + used, c->slen - used);
        c->slen -= used;
    }
}

static void body_append(struct hconn *c, const char *p, size_t n)
{
    if (c->slen + n > c->scap) {
        c->scap = (c->slen + n) * 2 + 64;
        c->stream = realloc(c->stream, c->scap);
    }
    memcpy(c->stream + c->slen, p, n);
    c->slen += n;
}

/* Consumes a chunked body as far as it goes; returns bytes used. */
static size_t parse_chunks(struct hconn *c, char *p, size_t n)
{
    size_t used = 0;
    while (c->in_body) {
        char *crlf = memmem(p + used, n - used, "\r\n", 2);
        if (!crlf)
            break;
        size_t size = strtoul(p + used, NULL, 16);
        size_t start = (size_t)(crlf - p) + 2;
        if (n - start < size + 2)
            break;
        if (c->kind == REQ_WATCH) {
            watch_data(c, p + start, size);
        } else if (size > 0) {
            body_append(c, p + start, size);
        } else {
            c->in_body = false;
            if (c->kind)
                finish_unary(c, 0, c->stream ? c->stream : "", c->slen);
            c->slen = 0;
        }
        used = start + size + 2;
    }
    return used;
}

/* Parses one response header block; returns its length or 0 if incomplete. */
static size_t parse_head(struct hconn *c)
{
    char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!end)
        return 0;
    *end = 0;
    int code = (int)strtol(c->rbuf + 9, NULL, 10);
    c->chunked = strcasestr(c->rbuf, "transfer-encoding: chunked") != NULL;
    char *cl = strcasestr(c->rbuf, "content-length:");
    c->body_left = cl ? strtoul(cl + 15, NULL, 10) : 0;
    c->in_body = true;
    if (code != 200 && c->kind != REQ_WATCH) {
        c->in_body = c->chunked || c->body_left > 0;
        c->busy = false;
        c->cb(c->arg, -EIO, NULL, 0, false);
        c->kind = 0;
    }
    return (size_t)(end - c->rbuf) + 4;
}

static void hc_parse(struct hconn *c)
{
    size_t off = 0;
    for (;;) {
        if (!c->in_body) {
            memmove(c->rbuf, c->rbuf + off, c->rlen - off);
            c->rlen -= off;
            off = 0;
            size_t h = parse_head(c);
            if (h == 0)
                break;
            off = h;
            continue;
        }
        if (c->chunked) {
            size_t used = parse_chunks(c, c->rbuf + off, c->rlen - off);
            off += used;
            if (used == 0 || c->in_body)
                break;
        } else {
            if (c->rlen - off < c->body_left)
                break;
            c->in_body = false;
            if (c->kind)
                finish_unary(c, 0, c->rbuf + off, c->body_left);
            off += c->body_left;
        }
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
}

static void hc_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    struct hconn *c = h->data;
    (void)sz;
    if (c->rcap - c->rlen < 65536) {
        c->rcap = c->rcap ? c->rcap * 2 : 131072;
        c->rbuf = realloc(c->rbuf, c->rcap);
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(c->rcap - c->rlen - 1));
}

static void hc_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct hconn *c = s->data;
    (void)buf;
    if (n < 0) {
        if (c->busy && c->kind != REQ_WATCH) {
            c->busy = false;
            c->cb(c->arg, -EIO, NULL, 0, false);
        }
        return;
    }
    c->rlen += (size_t)n;
    hc_parse(c);
}

static void hc_connected(uv_connect_t *req, int status)
{
    struct hconn *c = req->data;
    if (status < 0)
        return;
    c->connected = true;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, hc_alloc, hc_read);
    if (c->pending_len) {
        hc_send(c, c->pending, c->pending_len);
        c->pending_len = 0;
    }
}

static int et_open(uv_loop_t *loop, const char *const *ep, unsigned n_ep, unsigned n,
                   unsigned timeout_ms, void **out)
{
    (void)timeout_ms;
    struct et *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->loop = loop;
    int rc = -EAGAIN;
    for (int tries = 0; tries < 50 && rc == -EAGAIN; tries++) {
        rc = find_leader(t, ep, n_ep);
        if (rc == -EAGAIN)
            usleep(100000);
    }
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->n = n;
    t->conns = calloc(n + 1, sizeof(*t->conns));
    for (unsigned i = 0; i < n + 1; i++) {
        struct hconn *c = &t->conns[i];
        c->t = t;
        uv_tcp_init(loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&t->leader, hc_connected);
    }
    *out = t;
    return 0;
}

static int request(struct hconn *c, int kind, const char *path, const char *body,
                   bench_done_fn cb, void *arg)
{
    if (c->busy)
        return -EBUSY;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "POST %s HTTP/1.1\r\nHost: etcd\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, strlen(body), body);
    c->kind = kind;
    c->cb = cb;
    c->arg = arg;
    c->busy = true;
    return hc_send(c, req, (size_t)n);
}

static int et_put(void *vt, unsigned client, const char *key, const void *value, size_t len,
                  bench_done_fn cb, void *arg)
{
    struct et *t = vt;
    char k64[512], v64[1400], body[2048];
    b64_enc((const uint8_t *)key, strlen(key), k64);
    b64_enc(value, len > 1000 ? 1000 : len, v64);
    snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k64, v64);
    return request(&t->conns[client], REQ_PUT, "/v3/kv/put", body, cb, arg);
}

static int et_get(void *vt, unsigned client, const char *key, bench_done_fn cb, void *arg)
{
    struct et *t = vt;
    char k64[512], body[600];
    b64_enc((const uint8_t *)key, strlen(key), k64);
    snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k64);
    return request(&t->conns[client], REQ_GET, "/v3/kv/range", body, cb, arg);
}

static int et_watch(void *vt, const char *prefix, bench_event_fn cb, void *arg)
{
    struct et *t = vt;
    struct hconn *c = &t->conns[t->n];
    char k64[512], e64[512], body[1200];
    uint8_t end[256];
    size_t plen = strlen(prefix);
    memcpy(end, prefix, plen);
    end[plen - 1]++;
    b64_enc((const uint8_t *)prefix, plen, k64);
    b64_enc(end, plen, e64);
    snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}",
             k64, e64);
    c->ev_cb = cb;
    c->ev_arg = arg;
    return request(c, REQ_WATCH, "/v3/watch", body, NULL, NULL);
}

static void hc_closed(uv_handle_t *h)
{
    struct hconn *c = h->data;
    struct et *t = c->t;
    free(c->rbuf);
    free(c->stream);
    if (--t->closing > 0)
        return;
    void (*cb)(void *) = t->close_cb;
    void *arg = t->close_arg;
    free(t->conns);
    free(t);
    cb(arg);
}

static void et_close(void *vt, void (*cb)(void *), void *arg)
{
    struct et *t = vt;
    t->close_cb = cb;
    t->close_arg = arg;
    t->closing = t->n + 1;
    for (unsigned i = 0; i < t->n + 1; i++)
        uv_close((uv_handle_t *)&t->conns[i].tcp, hc_closed);
}

const struct bench_target_ops bench_etcd_ops = {
    .name = "etcd", .open = et_open, .put = et_put, .get = et_get, .cas = NULL,
    .watch = et_watch, .close = et_close,
};
