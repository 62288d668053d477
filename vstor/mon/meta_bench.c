/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_bench.c -- `vstor meta bench`: metadata service workloads, against
 * vstor or etcd (meta_bench.h), reported as JSON or a table.
 *
 * Workloads (--workload, default all = put,get,throughput,watch):
 *   put         one client, sequential puts of --value-size bytes: latency
 *   get         one client, sequential linearizable gets of one key: latency
 *   throughput  --clients clients (default 64), each with one put in flight,
 *               for --seconds: puts/s and latency
 *   watch       a watcher on a prefix while one client puts: delay from the
 *               put's reply to the event's arrival
 *   fill        --keys keys of --value-size bytes with --clients clients (for
 *               memory and database size per key, measured from outside)
 *   stats       --clients simulated OSDs, each reporting statistics of --keys
 *               images (one JSON document) to osd/stats/<id> every second
 *               through the volatile path, for --seconds; reports how much
 *               the leader's log grew meanwhile (vstor only)
 *   keepalive   --clients clients, each keeping its own lease with one
 *               keepalive in flight, for --seconds: keepalives/s and
 *               latency (the light path; vstor only)
 *   lincheck    --clients clients doing get/put/cas on --keys keys for
 *               --seconds, each op recorded in --history (JSON lines) for the
 *               linearizability checker in integration/; vstor only
 * Latencies are measured with the monotonic clock around each op; the
 * machine is shared, so compare targets measured in the same run.
 */
#include "cmd.h"
#include "meta.h"
#include "meta_bench.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench {
    uv_loop_t loop;
    const struct bench_target_ops *ops;
    void *t;
    unsigned clients, keys, value_size;
    uint64_t ops_n, seconds;
    char *value;
    uint64_t *lat;   /* ns */
    size_t n_lat, cap_lat;
    /* the op in flight (sequential workloads) */
    bool done;
    int status;
    /* throughput and lincheck */
    uint64_t deadline_ns, completed, failed, next_key;
    unsigned active;
    FILE *history;
    uint64_t *seq; /* per client */
    /* watch */
    uint64_t put_reply_ns, event_ns;
    struct bench_log_counters counters;
    uint64_t stats_report_bytes; /* what the reports would have logged as puts */
    bool got_event, got_reply;
    bool closed;
};

struct slot {
    struct bench *b;
    unsigned client;
    uint64_t start_ns;
    int f; /* lincheck: 0 get, 1 put, 2 cas */
    uint64_t lease; /* keepalive */
    unsigned key;
    char value[64], expect[64];
    bool has_expect;
};

static uint64_t now_ns(void)
{
    return vs_clock_mono_ns();
}

static void record(struct bench *b, uint64_t ns)
{
    if (b->n_lat == b->cap_lat) {
        b->cap_lat = b->cap_lat ? b->cap_lat * 2 : 4096;
        b->lat = realloc(b->lat, b->cap_lat * sizeof(*b->lat));
    }
    b->lat[b->n_lat++] = ns;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static json_t *percentiles(struct bench *b)
{
    if (b->n_lat == 0)
        return json_null();
    qsort(b->lat, b->n_lat, sizeof(*b->lat), cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < b->n_lat; i++)
        sum += (double)b->lat[i];
    json_t *o = json_object();
    json_object_set_new(o, "n", json_integer((json_int_t)b->n_lat));
    json_object_set_new(o, "p50_ms", json_real((double)b->lat[b->n_lat / 2] / 1e6));
    json_object_set_new(o, "p99_ms", json_real((double)b->lat[b->n_lat * 99 / 100] / 1e6));
    json_object_set_new(o, "max_ms", json_real((double)b->lat[b->n_lat - 1] / 1e6));
    json_object_set_new(o, "mean_ms", json_real(sum / (double)b->n_lat / 1e6));
    b->n_lat = 0;
    return o;
}

static void run_until_done(struct bench *b)
{
    while (!b->done)
        uv_run(&b->loop, UV_RUN_ONCE);
}

/* ---- sequential latency ------------------------------------------------------------ */

static void seq_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct bench *b = arg;
    (void)v;
    (void)len;
    (void)swapped;
    b->status = status;
    b->done = true;
}

static int one_op(struct bench *b, bool put, const char *key)
{
    b->done = false;
    uint64_t t0 = now_ns();
    int rc = put ? b->ops->put(b->t, 0, key, b->value, b->value_size, seq_done, b)
                 : b->ops->get(b->t, 0, key, seq_done, b);
    if (rc < 0)
        return rc;
    run_until_done(b);
    record(b, now_ns() - t0);
    return b->status;
}

static json_t *run_latency(struct bench *b, bool put)
{
    char key[64];
    int rc = 0;
    if (!put)
        rc = one_op(b, true, "bench/get");
    b->n_lat = 0;
    for (uint64_t i = 0; i < b->ops_n && rc == 0; i++) {
        snprintf(key, sizeof(key), "bench/put/%" PRIu64, i % 10000);
        rc = one_op(b, put, put ? key : "bench/get");
    }
    if (rc < 0)
        fprintf(stderr, "vstor meta bench: %s failed: %s\n", put ? "put" : "get",
                vs_strerror(rc));
    return percentiles(b);
}

/* ---- many clients: throughput and fill ---------------------------------------------------- */

static void tp_next(struct slot *s);

static void tp_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    (void)v;
    (void)len;
    (void)swapped;
    uint64_t t = now_ns();
    if (status == 0) {
        b->completed++;
        record(b, t - s->start_ns);
    } else {
        b->failed++;
    }
    tp_next(s);
}

static void tp_next(struct slot *s)
{
    struct bench *b = s->b;
    bool more = b->deadline_ns ? now_ns() < b->deadline_ns : b->next_key < b->keys;
    if (!more) {
        if (--b->active == 0)
            b->done = true;
        return;
    }
    char key[64];
    snprintf(key, sizeof(key), "bench/fill/%08" PRIu64, b->next_key++);
    s->start_ns = now_ns();
    if (b->ops->put(b->t, s->client, key, b->value, b->value_size, tp_done, s) < 0) {
        b->failed++;
        if (--b->active == 0)
            b->done = true;
    }
}

/* Runs the clients started at T0 until done; the latency percentiles with the
 * throughput, failures and duration. Frees SLOTS. */
static json_t *run_and_report(struct bench *b, uint64_t t0, void *slots)
{
    run_until_done(b);
    double secs = (double)(now_ns() - t0) / 1e9;
    json_t *o = percentiles(b);
    if (json_is_object(o)) {
        json_object_set_new(o, "clients", json_integer(b->clients));
        json_object_set_new(o, "ops_per_s", json_real((double)b->completed / secs));
        json_object_set_new(o, "failed", json_integer((json_int_t)b->failed));
        json_object_set_new(o, "seconds", json_real(secs));
    }
    free(slots);
    return o;
}

static json_t *run_many(struct bench *b, bool fill)
{
    struct slot *slots = calloc(b->clients, sizeof(*slots));
    b->completed = b->failed = b->next_key = 0;
    b->n_lat = 0;
    b->done = false;
    b->active = b->clients;
    b->deadline_ns = fill ? 0 : now_ns() + b->seconds * 1000000000ull;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < b->clients; i++) {
        slots[i] = (struct slot){.b = b, .client = i};
        tp_next(&slots[i]);
    }
    return run_and_report(b, t0, slots);
}

/* ---- lease keepalives ------------------------------------------------------------------ */

static void ka_next(struct slot *s);

static void ka_granted(void *arg, int status, uint64_t id)
{
    struct slot *s = arg;
    s->lease = id;
    if (status != 0) {
        s->b->failed++;
        s->b->status = status;
    }
    if (--s->b->active == 0)
        s->b->done = true;
}

static void ka_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    (void)v;
    (void)len;
    (void)swapped;
    if (status == 0) {
        b->completed++;
        record(b, now_ns() - s->start_ns);
    } else {
        b->failed++;
    }
    ka_next(s);
}

static void ka_next(struct slot *s)
{
    struct bench *b = s->b;
    s->start_ns = now_ns();
    if (s->start_ns >= b->deadline_ns ||
        b->ops->lease_keepalive(b->t, s->client, s->lease, ka_done, s) < 0) {
        if (--b->active == 0)
            b->done = true;
    }
}

static json_t *run_keepalive(struct bench *b)
{
    if (!b->ops->lease_keepalive)
        return json_null();
    struct slot *slots = calloc(b->clients, sizeof(*slots));
    b->failed = 0;
    b->done = false;
    b->active = b->clients;
    for (unsigned i = 0; i < b->clients; i++) {
        slots[i] = (struct slot){.b = b, .client = i};
        if (b->ops->lease_grant(b->t, i, 60000, ka_granted, &slots[i]) < 0 &&
            --b->active == 0)
            b->done = true;
    }
    run_until_done(b);
    if (b->failed) {
        fprintf(stderr, "vstor meta bench: keepalive: grant: %s\n", vs_strerror(b->status));
        free(slots);
        return json_null();
    }
    b->completed = 0;
    b->n_lat = 0;
    b->done = false;
    b->active = b->clients;
    b->deadline_ns = now_ns() + b->seconds * 1000000000ull;
    uint64_t t0 = now_ns();
    for (unsigned i = 0; i < b->clients; i++)
        ka_next(&slots[i]);
    return run_and_report(b, t0, slots);
}

/* ---- watch delay ---------------------------------------------------------------------- */

static void w_event(void *arg, const uint8_t *key, size_t len)
{
    struct bench *b = arg;
    (void)key;
    (void)len;
    b->event_ns = now_ns();
    b->got_event = true;
    b->done = b->got_reply;
}

static void w_reply(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct bench *b = arg;
    (void)v;
    (void)len;
    (void)swapped;
    b->status = status;
    b->put_reply_ns = now_ns();
    b->got_reply = true;
    b->done = b->got_event || status != 0;
}

static json_t *run_watch(struct bench *b)
{
    if (b->ops->watch(b->t, "bench/w/", w_event, b) < 0)
        return json_null();
    int64_t *delays = calloc(b->ops_n + 1, sizeof(*delays));
    uint64_t n = 0;
    for (uint64_t i = 0; i <= b->ops_n; i++) {
        char key[64];
        snprintf(key, sizeof(key), "bench/w/%" PRIu64, i % 1000);
        b->got_event = b->got_reply = b->done = false;
        if (b->ops->put(b->t, 0, key, b->value, b->value_size, w_reply, b) < 0)
            break;
        uint64_t give_up = now_ns() + 5000000000ull;
        while (!b->done && now_ns() < give_up)
            uv_run(&b->loop, UV_RUN_ONCE);
        if (i == 0 || !b->got_event || b->status != 0)
            continue; /* the first put only proves the watch is in place */
        delays[n++] = (int64_t)b->event_ns - (int64_t)b->put_reply_ns;
    }
    json_t *o = json_null();
    if (n > 0) {
        qsort(delays, n, sizeof(*delays), cmp_i64);
        o = json_pack("{s:I, s:f, s:f, s:f}", "n", (json_int_t)n, "p50_ms",
                      (double)delays[n / 2] / 1e6, "p99_ms", (double)delays[n * 99 / 100] / 1e6,
                      "max_ms", (double)delays[n - 1] / 1e6);
    }
    free(delays);
    return o;
}

/* ---- stats: many OSDs reporting through the volatile path ------------------------------ */

struct stats_osd {
    struct bench *b;
    unsigned id;
    uint64_t reports;
    uv_timer_t timer;
    bool busy;
    char *doc;
    size_t cap;
};

static void stats_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct stats_osd *o = arg;
    (void)v;
    (void)len;
    (void)swapped;
    o->busy = false;
    if (status == 0)
        o->b->completed++;
    else
        o->b->failed++;
}

/* One report in the monitor's format (vstor/mon/monitor_stats.c): cumulative
 * counters of the OSD and of each image (inode = pool 1 << 48 | number). */
static size_t op_counters(char *p, size_t cap, uint64_t k)
{
    return (size_t)snprintf(p, cap,
                            "{\"read\":{\"count\":%" PRIu64 ",\"bytes\":%" PRIu64
                            ",\"usec\":%" PRIu64 "},\"write\":{\"count\":%" PRIu64
                            ",\"bytes\":%" PRIu64 ",\"usec\":%" PRIu64 "}}",
                            k, k * 4096, k * 100, 2 * k, k * 8192, k * 300);
}

static void stats_report(uv_timer_t *t)
{
    struct stats_osd *o = t->data;
    struct bench *b = o->b;
    if (o->busy || now_ns() >= b->deadline_ns)
        return;
    size_t need = (size_t)b->keys * 200 + 512, len = 0;
    if (o->cap < need) {
        o->doc = realloc(o->doc, need);
        o->cap = need;
    }
    uint64_t k = ++o->reports * 100;
    len += (size_t)snprintf(o->doc + len, o->cap - len,
                            "{\"size_bytes\":1000000000000,\"free_bytes\":500000000000,"
                            "\"ops\":");
    len += op_counters(o->doc + len, o->cap - len, k * b->keys);
    len += (size_t)snprintf(o->doc + len, o->cap - len, ",\"inodes\":{");
    for (unsigned i = 1; i <= b->keys; i++) {
        len += (size_t)snprintf(o->doc + len, o->cap - len, "%s\"%" PRIu64 "\":",
                                i > 1 ? "," : "", ((uint64_t)1 << 48) | i);
        len += op_counters(o->doc + len, o->cap - len, k + i);
    }
    len += (size_t)snprintf(o->doc + len, o->cap - len, "}}");
    char key[64];
    snprintf(key, sizeof(key), "osd/stats/%u", o->id);
    o->busy = b->ops->volatile_put(b->t, o->id % b->clients, key, o->doc, len, stats_done,
                                   o) == 0;
    if (o->busy)
        b->stats_report_bytes += len;
}

static void setup_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct bench *b = arg;
    (void)v;
    (void)len;
    (void)swapped;
    if (status != 0) {
        b->failed++;
        b->status = status;
    }
    if (--b->active == 0)
        b->done = true;
}

/* The OSDs are up (osd/state/<id>) and the images exist (config/inode/1/<n>):
 * the monitor folds statistics of those only. */
static int stats_setup(struct bench *b)
{
    b->active = b->clients + b->keys;
    b->done = false;
    b->failed = 0;
    char key[64];
    for (unsigned i = 1; i <= b->clients; i++) {
        snprintf(key, sizeof(key), "osd/state/%u", i);
        b->ops->put(b->t, i % b->clients, key, "{\"state\":\"up\"}", 14, setup_done, b);
    }
    for (unsigned i = 1; i <= b->keys; i++) {
        snprintf(key, sizeof(key), "config/inode/1/%u", i);
        b->ops->put(b->t, i % b->clients, key, "{\"size\":1073741824}", 19, setup_done, b);
    }
    run_until_done(b);
    return b->failed ? b->status : 0;
}

static void counters_cb(void *arg, int status, const struct bench_log_counters *c)
{
    struct bench *b = arg;
    b->status = status;
    b->counters = *c;
    b->done = true;
}

static int log_counters(struct bench *b, struct bench_log_counters *out)
{
    b->done = false;
    int rc = b->ops->log_counters(b->t, counters_cb, b);
    if (rc < 0)
        return rc;
    run_until_done(b);
    *out = b->counters;
    return b->status;
}

static void stats_closed(uv_handle_t *h)
{
    struct stats_osd *o = h->data;
    free(o->doc);
    o->b->active--;
}

static json_t *run_stats(struct bench *b)
{
    if (!b->ops->volatile_put)
        return json_null();
    struct bench_log_counters c0 = {0}, c1 = {0};
    int rc = stats_setup(b);
    if (rc == 0)
        rc = log_counters(b, &c0);
    if (rc < 0) {
        fprintf(stderr, "vstor meta bench: stats setup: %s\n", vs_strerror(rc));
        return json_null();
    }
    struct stats_osd *osds = calloc(b->clients, sizeof(*osds));
    b->completed = b->failed = 0;
    b->deadline_ns = now_ns() + b->seconds * 1000000000ull;
    for (unsigned i = 0; i < b->clients; i++) {
        osds[i] = (struct stats_osd){.b = b, .id = i + 1};
        uv_timer_init(&b->loop, &osds[i].timer);
        osds[i].timer.data = &osds[i];
        uv_timer_start(&osds[i].timer, stats_report, i * 1000 / b->clients, 1000);
    }
    bool busy = true;
    while (now_ns() < b->deadline_ns || busy) { /* then let the reports in flight finish */
        uv_run(&b->loop, UV_RUN_ONCE);
        busy = false;
        for (unsigned i = 0; i < b->clients; i++)
            busy |= osds[i].busy;
    }
    b->active = b->clients;
    for (unsigned i = 0; i < b->clients; i++)
        uv_close((uv_handle_t *)&osds[i].timer, stats_closed);
    while (b->active > 0)
        uv_run(&b->loop, UV_RUN_ONCE);
    free(osds);
    uint64_t reports = b->completed, failed = b->failed;
    log_counters(b, &c1);
    /* one leader throughout, or the two counters are of different members */
    bool same = c0.leader == c1.leader && c0.term == c1.term;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:I}", "osds",
                     (json_int_t)b->clients, "images", (json_int_t)b->keys, "seconds",
                     (json_int_t)b->seconds, "reports", (json_int_t)reports, "failed",
                     (json_int_t)failed, "log_entries", (json_int_t)(c1.entries - c0.entries),
                     "log_bytes", (json_int_t)(c1.bytes - c0.bytes), "one_leader", same,
                     "report_bytes", (json_int_t)b->stats_report_bytes);
}

/* ---- lincheck: a history for the linearizability checker ------------------------------ */

static void lc_next(struct slot *s);

static void lc_done(void *arg, int status, const uint8_t *v, size_t len, bool swapped)
{
    struct slot *s = arg;
    struct bench *b = s->b;
    const char *result = status == 0 ? "ok" : "unknown";
    if (status == VS_EUNAVAILABLE || status == VS_ENOTLEADER || status == -EAGAIN ||
        (s->f == 0 && status != 0))
        result = "fail"; /* certainly without effect (never sent, or a read) */
    char out[80] = "";
    if (s->f == 0 && status == 0)
        snprintf(out, sizeof(out), "%.*s", (int)VS_MIN(len, 70), v ? (const char *)v : "");
    fprintf(b->history,
            "{\"c\":%u,\"k\":%u,\"f\":\"%s\",\"v\":\"%s\",\"e\":%s%s%s,\"s\":%" PRIu64
            ",\"t\":%" PRIu64 ",\"r\":\"%s\",\"o\":%s%s%s,\"x\":%s}\n",
            s->client, s->key, s->f == 0 ? "get" : (s->f == 1 ? "put" : "cas"), s->value,
            s->has_expect ? "\"" : "", s->has_expect ? s->expect : "null",
            s->has_expect ? "\"" : "", s->start_ns, now_ns(), result,
            s->f == 0 && status == 0 && v ? "\"" : "", s->f == 0 && status == 0 && v ? out : "null",
            s->f == 0 && status == 0 && v ? "\"" : "", swapped ? "true" : "false");
    b->completed++;
    lc_next(s);
}

static void lc_next(struct slot *s)
{
    struct bench *b = s->b;
    if (now_ns() >= b->deadline_ns) {
        if (--b->active == 0)
            b->done = true;
        return;
    }
    s->key = (unsigned)(b->seq[s->client] * 7 + s->client * 3) % b->keys;
    s->f = (int)((b->seq[s->client] * 5 + s->client) % 3);
    snprintf(s->value, sizeof(s->value), "c%u-%" PRIu64, s->client, b->seq[s->client]++);
    char key[32];
    snprintf(key, sizeof(key), "lin/%u", s->key);
    s->has_expect = false;
    s->start_ns = now_ns();
    int rc;
    if (s->f == 0) {
        rc = b->ops->get(b->t, s->client, key, lc_done, s);
    } else if (s->f == 1) {
        rc = b->ops->put(b->t, s->client, key, s->value, strlen(s->value), lc_done, s);
    } else {
        /* swap from a value some client wrote recently (often the current one) */
        unsigned other = (unsigned)(b->seq[s->client] % b->clients);
        uint64_t n = b->seq[other] > 1 ? b->seq[other] - 2 : 0;
        snprintf(s->expect, sizeof(s->expect), "c%u-%" PRIu64, other, n);
        s->has_expect = true;
        rc = b->ops->cas(b->t, s->client, key, s->expect, strlen(s->expect), s->value,
                         strlen(s->value), lc_done, s);
    }
    if (rc < 0)
        lc_done(s, rc, NULL, 0, false);
}

static json_t *run_lincheck(struct bench *b)
{
    if (!b->ops->cas || !b->history)
        return json_null();
    struct slot *slots = calloc(b->clients, sizeof(*slots));
    b->seq = calloc(b->clients, sizeof(*b->seq));
    b->active = b->clients;
    b->done = false;
    b->completed = 0;
    b->deadline_ns = now_ns() + b->seconds * 1000000000ull;
    for (unsigned i = 0; i < b->clients; i++) {
        slots[i] = (struct slot){.b = b, .client = i};
        lc_next(&slots[i]);
    }
    run_until_done(b);
    free(slots);
    free(b->seq);
    return json_pack("{s:I}", "ops", (json_int_t)b->completed);
}

/* ---- the command --------------------------------------------------------------------------- */

static void closed_cb(void *arg)
{
    ((struct bench *)arg)->closed = true;
}

static bool want(const char *list, const char *name)
{
    if (strcmp(list, "all") == 0)
        return strcmp(name, "fill") != 0 && strcmp(name, "lincheck") != 0 &&
               strcmp(name, "stats") != 0 && strcmp(name, "keepalive") != 0;
    size_t n = strlen(name);
    for (const char *p = list; (p = strstr(p, name)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
            return true;
    return false;
}

static int parse_bench_opts(struct vs_cmd_ctx *ctx, struct bench *b)
{
    uint64_t clients = 64, keys = 0, vsize = 100, ops = 2000, secs = 5;
    if (vs_cmd_opt_u64(ctx, "clients", &clients) < 0 || vs_cmd_opt_u64(ctx, "keys", &keys) < 0 ||
        vs_cmd_opt_u64(ctx, "value-size", &vsize) < 0 || vs_cmd_opt_u64(ctx, "ops", &ops) < 0 ||
        vs_cmd_opt_u64(ctx, "seconds", &secs) < 0)
        return VS_EXIT_USAGE;
    if (clients == 0 || clients > 4096 || vsize == 0 || vsize > 1000 || ops == 0) {
        vs_cmd_error(ctx, "--clients 1..4096, --value-size 1..1000, --ops > 0");
        return VS_EXIT_USAGE;
    }
    const char *w = vs_cmd_opt(ctx, "workload");
    bool lin = w && want(w, "lincheck");
    b->clients = (unsigned)clients;
    b->keys = (unsigned)(keys ? keys : (lin ? 3 : 100000));
    b->value_size = (unsigned)vsize;
    b->ops_n = ops;
    b->seconds = secs;
    b->value = malloc(vsize + 1);
    for (uint64_t i = 0; i < vsize; i++)
        b->value[i] = (char)('a' + i % 26);
    b->value[vsize] = 0;
    return VS_EXIT_OK;
}

static int open_target(struct vs_cmd_ctx *ctx, struct bench *b, struct meta_members *mm)
{
    const char *target = vs_cmd_opt(ctx, "target") ? vs_cmd_opt(ctx, "target") : "vstor";
    b->ops = strcmp(target, "etcd") == 0 ? &bench_etcd_ops : &bench_vstor_ops;
    if (strcmp(target, "etcd") != 0 && strcmp(target, "vstor") != 0) {
        vs_cmd_error(ctx, "--target is vstor or etcd");
        return VS_EXIT_USAGE;
    }
    const char *ep = vs_cmd_opt(ctx, "endpoints");
    struct vs_meta_client_opts o = {0};
    if (ep) {
        snprintf(mm->buf, sizeof(mm->buf), "%s", ep);
        int n = vs_config_list_split(mm->buf, mm->items, META_MEMBERS_MAX);
        for (int i = 0; i < n; i++)
            mm->ptrs[i] = mm->items[i];
        o.members = mm->ptrs;
        o.n_members = (unsigned)n;
    } else if (vs_meta_client_opts_from(ctx, &o, mm) != VS_EXIT_OK) {
        return VS_EXIT_USAGE;
    }
    unsigned timeout = (unsigned)ctx->cfg.meta_timeout;
    int rc = b->ops->open(&b->loop, o.members, o.n_members, b->clients, timeout, &b->t);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s: %s", b->ops->name, vs_strerror(rc));
        return VS_EXIT_FAIL;
    }
    return VS_EXIT_OK;
}

static json_t *run_all(struct vs_cmd_ctx *ctx, struct bench *b)
{
    const char *w = vs_cmd_opt(ctx, "workload") ? vs_cmd_opt(ctx, "workload") : "all";
    json_t *r = json_pack("{s:s, s:I}", "target", b->ops->name, "value_size",
                          (json_int_t)b->value_size);
    if (want(w, "put"))
        json_object_set_new(r, "put_latency", run_latency(b, true));
    if (want(w, "get"))
        json_object_set_new(r, "get_latency", run_latency(b, false));
    if (want(w, "throughput"))
        json_object_set_new(r, "put_throughput", run_many(b, false));
    if (want(w, "watch"))
        json_object_set_new(r, "watch_delay", run_watch(b));
    if (want(w, "fill"))
        json_object_set_new(r, "fill", run_many(b, true));
    if (want(w, "lincheck"))
        json_object_set_new(r, "lincheck", run_lincheck(b));
    if (want(w, "stats"))
        json_object_set_new(r, "stats", run_stats(b));
    if (want(w, "keepalive"))
        json_object_set_new(r, "keepalive", run_keepalive(b));
    return r;
}

static void print_table(json_t *r)
{
    const char *rows[] = {"put_latency", "get_latency", "put_throughput", "watch_delay", "fill",
                          "keepalive"};
    printf("%-16s %10s %10s %10s %12s\n", "workload", "p50 ms", "p99 ms", "max ms", "ops/s");
    for (unsigned i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        json_t *o = json_object_get(r, rows[i]);
        if (!json_is_object(o))
            continue;
        printf("%-16s %10.3f %10.3f %10.3f %12.0f\n", rows[i],
               json_real_value(json_object_get(o, "p50_ms")),
               json_real_value(json_object_get(o, "p99_ms")),
               json_real_value(json_object_get(o, "max_ms")),
               json_real_value(json_object_get(o, "ops_per_s")));
    }
}

int vs_cmd_meta_bench(struct vs_cmd_ctx *ctx)
{
    static struct bench bench;
    struct bench *b = &bench;
    memset(b, 0, sizeof(*b));
    int rc = parse_bench_opts(ctx, b);
    if (rc != VS_EXIT_OK)
        return rc;
    const char *hist = vs_cmd_opt(ctx, "history");
    if (hist && !(b->history = fopen(hist, "w"))) {
        vs_cmd_error(ctx, "%s: %s", hist, strerror(errno));
        return VS_EXIT_FAIL;
    }
    uv_loop_init(&b->loop);
    struct meta_members mm;
    rc = open_target(ctx, b, &mm);
    if (rc == VS_EXIT_OK) {
        json_t *r = run_all(ctx, b);
        if (vs_cmd_flag(ctx, "json"))
            meta_print_json(r);
        else {
            print_table(r);
            json_decref(r);
        }
        b->ops->close(b->t, closed_cb, b);
        while (!b->closed)
            uv_run(&b->loop, UV_RUN_ONCE);
    }
    uv_run(&b->loop, UV_RUN_NOWAIT);
    uv_loop_close(&b->loop);
    if (b->history)
        fclose(b->history);
    free(b->lat);
    free(b->value);
    return rc;
}
