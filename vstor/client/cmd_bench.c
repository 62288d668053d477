/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_bench.c -- `vstor bench --image NAME`: the six tests of the seed
 * (shared/bench/fio-suite.sh) run through libvstor on one loop, printed in the
 * same table: 4 MiB sequential write and read at Q32, 4 KiB random write at
 * T1Q1 with a sync after each write, 4 KiB random read at T1Q1, 4 KiB random
 * write and read at Q128. Like fio-suite.sh it fills the tested range first
 * (so reads hit written blocks), ramps up for --ramp seconds, then measures
 * --runtime seconds. Latencies go into a log-linear histogram (64 buckets per
 * power of two, about 1.5 % resolution) for the p99.
 */
#include "cmd.h"
#include "cmd_client.h"

#include "vs_clock.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HIST_SUB 64u
#define HIST_BUCKETS (64u * HIST_SUB)

struct bench_test {
    const char *name;
    uint32_t bs;
    unsigned qd;
    bool write, rand, sync_each;
};

static const struct bench_test tests[] = {
    {"seqwrite-4M-q32", 4u << 20, 32, true, false, false},
    {"seqread-4M-q32", 4u << 20, 32, false, false, false},
    {"randwrite-4k-q1", 4096, 1, true, true, true},
    {"randread-4k-q1", 4096, 1, false, true, false},
    {"randwrite-4k-q128", 4096, 128, true, true, false},
    {"randread-4k-q128", 4096, 128, false, true, false},
};
static const struct bench_test fill_test = {"fill", 4u << 20, 16, true, false, false};

struct bench;

struct bench_slot {
    struct vstor_io io;
    struct bench *b;
    uint8_t *buf;
    uint64_t start_ns;
    bool syncing;
};

struct bench {
    struct cmd_client *cc;
    const struct bench_test *t;
    struct bench_slot *slots;
    uv_timer_t timer;
    uint64_t size;        /* bytes of the image used */
    uint64_t limit;       /* stop issuing after this many bytes (fill); 0 = timed */
    uint64_t issued, cursor, rng;
    uint64_t ops, bytes, t0_ns, t1_ns, lat_sum_ns;
    uint64_t hist[HIST_BUCKETS];
    uint64_t ramp_ms, runtime_ms;
    unsigned active;
    int rc;
    bool measuring, stopping;
};

/* ---- Latency histogram -------------------------------------------------------------- */

static unsigned hist_index(uint64_t v)
{
    if (v < HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    return (e - 5u) * HIST_SUB + (unsigned)((v >> (e - 6u)) & (HIST_SUB - 1));
}

static uint64_t hist_value(unsigned i)
{
    unsigned row = i / HIST_SUB, sub = i % HIST_SUB;
    return row == 0 ? sub : (uint64_t)(HIST_SUB + sub) << (row - 1);
}

static uint64_t hist_quantile(const struct bench *b, double q)
{
    uint64_t want = (uint64_t)((double)b->ops * q + 0.5), seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += b->hist[i];
        if (seen >= want && seen > 0)
            return hist_value(i);
    }
    return 0;
}

/* ---- The engine ------------------------------------------------------------------------ */

static uint64_t next_offset(struct bench *b)
{
    uint64_t bs = b->t->bs;
    if (b->t->rand) {
        b->rng ^= b->rng << 13, b->rng ^= b->rng >> 7, b->rng ^= b->rng << 17;
        return b->rng % (b->size / bs) * bs;
    }
    if (b->cursor + bs > b->size)
        b->cursor = 0;
    uint64_t off = b->cursor;
    b->cursor += bs;
    return off;
}

static void slot_cb(struct vstor_io *io, int rc);

static void slot_issue(struct bench *b, struct bench_slot *s)
{
    s->io = (struct vstor_io){.offset = next_offset(b), .len = b->t->bs, .buf = s->buf,
                              .cb = slot_cb, .ctx = s};
    s->syncing = false;
    s->start_ns = vs_clock_mono_ns();
    b->issued += b->t->bs;
    int rc = b->t->write ? vstor_write(b->cc->img, &s->io) : vstor_read(b->cc->img, &s->io);
    if (rc < 0) {
        b->rc = rc;
        b->stopping = true;
        return;
    }
    b->active++;
}

static void slot_cb(struct vstor_io *io, int rc)
{
    struct bench_slot *s = io->ctx;
    struct bench *b = s->b;
    if (rc == 0 && b->t->sync_each && !s->syncing) {
        s->syncing = true; /* the write, then its sync, count as one op */
        s->io.cb = slot_cb;
        rc = vstor_sync(b->cc->img, &s->io);
        if (rc == 0)
            return;
    }
    b->active--;
    if (rc < 0 && b->rc == 0) {
        b->rc = rc;
        b->stopping = true;
    }
    if (b->measuring && !b->stopping) {
        uint64_t lat = vs_clock_mono_ns() - s->start_ns;
        b->hist[hist_index(lat)]++;
        b->lat_sum_ns += lat;
        b->ops++;
        b->bytes += b->t->bs;
    }
    if (b->limit && b->issued >= b->limit)
        b->stopping = true;
    if (!b->stopping)
        slot_issue(b, s);
    if (b->active == 0)
        b->cc->done = true;
}

static void timer_cb(uv_timer_t *t)
{
    struct bench *b = t->data;
    if (!b->measuring) {
        b->measuring = true;
        b->t0_ns = vs_clock_mono_ns();
        uv_timer_start(&b->timer, timer_cb, b->runtime_ms, 0);
    } else {
        b->stopping = true;
        b->t1_ns = vs_clock_mono_ns();
    }
}

/* Runs one test to completion; 0 or the first error of an op. */
static int run_test(struct bench *b, const struct bench_test *t)
{
    b->t = t;
    b->ops = b->bytes = b->lat_sum_ns = b->issued = b->cursor = 0;
    memset(b->hist, 0, sizeof(b->hist));
    b->measuring = b->stopping = false;
    b->limit = t == &fill_test ? b->size : 0;
    b->cc->done = false;
    if (!b->limit)
        uv_timer_start(&b->timer, timer_cb, b->ramp_ms, 0);
    for (unsigned i = 0; i < t->qd && !b->stopping; i++)
        slot_issue(b, &b->slots[i]);
    if (b->active)
        cmd_client_wait(b->cc);
    uv_timer_stop(&b->timer);
    if (!b->t1_ns || b->t1_ns < b->t0_ns)
        b->t1_ns = vs_clock_mono_ns();
    return b->rc;
}

static void print_row(const struct bench *b, const char *label)
{
    double secs = (double)(b->t1_ns - b->t0_ns) / 1e9;
    double iops = secs > 0 ? (double)b->ops / secs : 0;
    double mbs = secs > 0 ? (double)b->bytes / secs / 1e6 : 0;
    /* As fio-suite.sh: at queue depth 1 the latency is 1/iops. */
    double avg_us = b->t->qd == 1 ? (iops > 0 ? 1e6 / iops : 0)
                    : b->ops ? (double)b->lat_sum_ns / (double)b->ops / 1e3 : 0;
    printf("%-10s %-20s %10.0f %9.1f %11.1f %11.1f\n", label, b->t->name, iops, mbs, avg_us,
           (double)hist_quantile(b, 0.99) / 1e3);
    fflush(stdout);
}

/* ---- The command ----------------------------------------------------------------------- */

/* Is test NAME in the comma-separated LIST (NULL: every test)? */
static bool test_selected(const char *list, const char *name)
{
    if (!list)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, name, n) == 0)
            return true;
        p += len + (p[len] == ',');
    }
    return false;
}

/* Every name in --tests must be one of the six: a typo must not run nothing. */
static int check_test_list(struct vs_cmd_ctx *ctx, const char *list)
{
    for (const char *p = list; p && *p;) {
        size_t len = strcspn(p, ",");
        bool known = false;
        for (unsigned i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
            known |= strlen(tests[i].name) == len && memcmp(p, tests[i].name, len) == 0;
        if (!known) {
            vs_cmd_error(ctx, "--tests: unknown test '%.*s' (known: seqwrite-4M-q32, "
                         "seqread-4M-q32, randwrite-4k-q1, randread-4k-q1, randwrite-4k-q128, "
                         "randread-4k-q128)", (int)len, p);
            return VS_EXIT_USAGE;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

static int bench_opts(struct vs_cmd_ctx *ctx, struct bench *b)
{
    uint64_t runtime = 20, ramp = 2, size = 0;
    if (vs_cmd_opt_u64(ctx, "runtime", &runtime) < 0 || vs_cmd_opt_u64(ctx, "ramp", &ramp) < 0 ||
        vs_cmd_opt_size(ctx, "size", &size) < 0)
        return VS_EXIT_USAGE;
    if (runtime < 1 || runtime > 86400 || ramp > 3600) {
        vs_cmd_error(ctx, "--runtime must be 1..86400 s and --ramp 0..3600 s");
        return VS_EXIT_USAGE;
    }
    if (check_test_list(ctx, vs_cmd_opt(ctx, "tests")))
        return VS_EXIT_USAGE;
    b->runtime_ms = runtime * 1000;
    b->ramp_ms = ramp * 1000;
    b->size = size;
    return 0;
}

static int bench_alloc(struct bench *b)
{
    b->slots = calloc(128, sizeof(*b->slots));
    if (!b->slots)
        return -ENOMEM;
    for (unsigned i = 0; i < 128; i++) {
        b->slots[i].b = b;
        if (posix_memalign((void **)&b->slots[i].buf, 4096, i < 32 ? 4u << 20 : 4096))
            return -ENOMEM;
        for (uint32_t k = 0; k < (i < 32 ? 4u << 20 : 4096); k++)
            b->slots[i].buf[k] = (uint8_t)(k * 131 + i);
    }
    return 0;
}

static int bench_run_all(struct vs_cmd_ctx *ctx, struct bench *b)
{
    const char *label = vs_cmd_opt(ctx, "label") ? vs_cmd_opt(ctx, "label") : "vstor";
    const char *list = vs_cmd_opt(ctx, "tests");
    int rc = vs_cmd_flag(ctx, "no-fill") ? 0 : run_test(b, &fill_test);
    if (rc == 0)
        printf("%-10s %-20s %10s %9s %11s %11s\n", "target", "test", "iops", "MB/s",
               "lat_avg_us", "lat_p99_us");
    for (unsigned i = 0; rc == 0 && i < sizeof(tests) / sizeof(tests[0]); i++) {
        if (!test_selected(list, tests[i].name))
            continue;
        b->t0_ns = b->t1_ns = 0;
        rc = run_test(b, &tests[i]);
        if (rc == 0)
            print_row(b, label);
    }
    if (rc < 0)
        vs_cmd_error(ctx, "%s: %s", b->t->name, vs_strerror(rc));
    return rc;
}

int vs_cmd_bench(struct vs_cmd_ctx *ctx)
{
    struct bench *b = calloc(1, sizeof(*b));
    struct cmd_client cc;
    if (!b)
        return VS_EXIT_FAIL;
    int rc = bench_opts(ctx, b);
    if (rc == 0)
        rc = cmd_client_open(ctx, &cc, vs_cmd_opt(ctx, "image"));
    if (rc) {
        free(b);
        return rc;
    }
    b->cc = &cc;
    b->rng = 0x9e3779b97f4a7c15ull;
    if (!b->size || b->size > cc.info.size)
        b->size = cc.info.size;
    b->size -= b->size % (4u << 20);
    if (b->size < (4u << 20)) {
        vs_cmd_error(ctx, "image %s is smaller than 4 MiB", cc.info.name);
        rc = VS_EXIT_USAGE;
    } else if (bench_alloc(b) < 0) {
        vs_cmd_error(ctx, "out of memory for the I/O buffers");
        rc = VS_EXIT_FAIL;
    } else {
        uv_timer_init(&cc.loop, &b->timer);
        b->timer.data = b;
        rc = bench_run_all(ctx, b) < 0 ? VS_EXIT_FAIL : VS_EXIT_OK;
        uv_close((uv_handle_t *)&b->timer, NULL);
    }
    for (unsigned i = 0; b->slots && i < 128; i++)
        free(b->slots[i].buf);
    free(b->slots);
    cmd_client_close(&cc);
    free(b);
    return rc;
}
