/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_verify -- the data checker of the integration tests (integration/
 * test_osd*.py): writes random patterns to an image through libvstor, keeps
 * in memory what every acknowledged write and discard left there, and reads
 * the whole image back to compare, byte by byte.
 *
 *   osd_verify --mon ADDR --image NAME [--seconds S | --ops N] [--depth D]
 *              [--seed X] [--span BYTES] [--save FILE] [--check FILE]
 *              [--base FILE] [--past-end] [--sync-wait FILE] [--spin-lone-us N]
 *
 * Write phase: D ops in flight, never two overlapping (overlapping writes in
 * flight are the caller's business on a block device); offsets and lengths
 * on 512-byte sectors (so the OSD's read-modify-write of partial 4 KiB
 * granules is exercised), up to 256 KiB (so ops cross object boundaries),
 * one in eight a discard. Prints "progress N" after every 100 completed ops,
 * so a test can wait for the writer to be under way before killing things.
 * Every op must complete: the client retries transient errors forever, so
 * any error here is a failure.
 * The model starts as zeros (a fresh image), or as --base FILE (what a
 * previous run --save'd). Before writing, the image is read and compared
 * with that starting model: an image that a previous run wrote, checked
 * against a zero model, fails here at once with a clear message instead of
 * as a "mismatch" later, and only where the new run happened not to
 * overwrite the old data.
 * Check phase: reads [0, span) back and compares with the model; with
 * --check FILE the model is loaded from a file a previous run --save'd (a
 * fresh client after restarts). Exit 0 when every byte matches, 1 with the
 * first mismatches printed otherwise, 2 on usage errors.
 * --past-end: a read and a write that cross the image's end must fail with
 * -EINVAL; exit 0 if they do.
 * --sync-wait FILE: after the write phase print "waiting for FILE (lazy L)",
 * wait until FILE exists, vstor_sync(), print "synced", then check (lazy-pool
 * tests kill OSDs between the acknowledgements and the sync).
 * --rand4k: no model, no check: 4 KiB writes at random 4 KiB-aligned offsets
 * for --seconds at --depth, then "ops N" (the load of the OSD CPU benchmark,
 * vstor/osd/bench/osd_bench.py).
 * --blk-write OFF:LEN:SEED: one blocking write of a pattern, with ENOSPC
 * returned rather than retried (fail_enospc); prints "rc N" and exits 0.
 * --dump FILE:LEN: reads [0, LEN) and writes it to FILE (the fence check of
 * integration/test_osd_faults.py compares two dumps).
 * --spin-lone-us N: the client's lone-request spin (vstor_client_opts
 * spin_lone_us; integration/test_spin.py).
 * --poll-read OFF:LEN:OLD:NEW:SECONDS: blocking reads of [OFF, OFF+LEN), one
 * after the other (20 ms apart) for SECONDS; after each prints
 * "read START_US END_US RC OLDSECT NEWSECT SECTORS": wall-clock start and end
 * of the read, and how many 512-byte sectors hold the --blk-write pattern of
 * seed OLD and of seed NEW (the stale-read check of
 * integration/test_osd_netns.py: a read that started after the NEW write was
 * acknowledged must find no OLD sector).
 */
#include "vs_log.h"
#include "vstor.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <uv.h>

#define DEPTH_MAX 128
#define LEN_MAX (256u << 10)
#define SECTOR 512u

struct ctx;

struct slot {
    struct vstor_io io;
    struct ctx *x;
    bool busy, discard;
    uint8_t *buf;
};

struct ctx {
    uv_loop_t loop;
    struct vstor_client *c;
    struct vstor_image *img;
    const char *image, *save, *check, *base, *sync_wait;
    uint32_t spin_lone_us; /* --spin-lone-us: the client's lone-request spin */
    struct vstor_io sync_io;
    uv_timer_t wait_timer;
    uint64_t span, ops_target, ops_started, ops_done, seed, deadline_ms;
    unsigned depth;
    int rc;
    bool past_end, writing, rand4k, prechecking;
    uint8_t *model;
    struct slot slots[DEPTH_MAX];
    uint64_t rng;
};

static uint64_t next_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static bool overlaps(struct ctx *x, uint64_t off, uint64_t len)
{
    for (unsigned i = 0; i < x->depth; i++) {
        const struct slot *s = &x->slots[i];
        if (s->busy && off < s->io.offset + s->io.len && s->io.offset < off + len)
            return true;
    }
    return false;
}

static void close_cb(void *ctx)
{
    (void)ctx;
}

static void stop(struct ctx *x)
{
    if (x->img)
        vstor_image_close(x->img);
    x->img = NULL;
    vstor_client_close(x->c, close_cb, x);
}

static void fail(struct ctx *x, const char *what, uint64_t off, uint64_t len, int rc)
{
    fprintf(stderr, "osd_verify: %s at %" PRIu64 " (%" PRIu64 " bytes): %s\n", what, off, len,
            vstor_strerror(rc));
    x->rc = 1;
}

/* ---- Write phase ------------------------------------------------------------- */

static void check_start(struct ctx *x);
static void sync_wait_start(struct ctx *x);
static void start_one(struct ctx *x, struct slot *s);

static bool more_to_do(struct ctx *x)
{
    if (x->rc || !x->writing)
        return false;
    if (x->ops_target)
        return x->ops_started < x->ops_target;
    return uv_now(&x->loop) < x->deadline_ms;
}

static bool any_busy(struct ctx *x)
{
    for (unsigned i = 0; i < x->depth; i++)
        if (x->slots[i].busy)
            return true;
    return false;
}

static void write_cb(struct vstor_io *io, int rc)
{
    struct slot *s = io->ctx;
    struct ctx *x = s->x;
    s->busy = false;
    if (rc < 0) {
        fail(x, s->discard ? "discard" : "write", io->offset, io->len, rc);
    } else {
        /* Acknowledged: this is what the image holds now. */
        if (x->rand4k)
            ;
        else if (s->discard)
            memset(x->model + io->offset, 0, io->len);
        else
            memcpy(x->model + io->offset, s->buf, io->len);
        if (++x->ops_done % 100 == 0) {
            printf("progress %" PRIu64 "\n", x->ops_done);
            fflush(stdout);
        }
    }
    if (more_to_do(x))
        return start_one(x, s);
    if (!any_busy(x)) {
        x->writing = false;
        if (x->rc)
            return stop(x);
        printf("wrote %" PRIu64 " ops\n", x->ops_done);
        fflush(stdout);
        if (x->rand4k)
            return stop(x);
        if (x->sync_wait)
            return sync_wait_start(x);
        check_start(x);
    }
}

/* ---- --sync-wait FILE: wait for FILE to exist, then sync, then check ---------- */

static void sync_cb(struct vstor_io *io, int rc)
{
    struct ctx *x = io->ctx;
    if (rc < 0) {
        fail(x, "sync", 0, 0, rc);
        return stop(x);
    }
    printf("synced\n");
    fflush(stdout);
    check_start(x);
}

static void wait_tick(uv_timer_t *t)
{
    struct ctx *x = t->data;
    if (access(x->sync_wait, F_OK) != 0)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
    x->sync_io = (struct vstor_io){.cb = sync_cb, .ctx = x};
    int rc = vstor_sync(x->img, &x->sync_io);
    if (rc < 0)
        sync_cb(&x->sync_io, rc);
}

static void sync_wait_start(struct ctx *x)
{
    struct vstor_image_info info;
    vstor_image_info(x->img, &info);
    printf("waiting for %s (lazy %d)\n", x->sync_wait, info.lazy);
    fflush(stdout);
    uv_timer_init(&x->loop, &x->wait_timer);
    x->wait_timer.data = x;
    uv_timer_start(&x->wait_timer, wait_tick, 0, 100);
}

static void start_one(struct ctx *x, struct slot *s)
{
    uint64_t off, len;
    if (x->rand4k) {
        s->discard = false;
        s->io = (struct vstor_io){.offset = next_rand(&x->rng) % (x->span / 4096) * 4096,
                                  .len = 4096, .buf = s->buf, .cb = write_cb, .ctx = s};
        s->busy = true;
        x->ops_started++;
        int rc = vstor_write(x->img, &s->io);
        if (rc < 0)
            write_cb(&s->io, rc);
        return;
    }
    do {
        len = (next_rand(&x->rng) % (LEN_MAX / SECTOR) + 1) * SECTOR;
        if (next_rand(&x->rng) % 4 == 0) /* many small ones, like a VM */
            len = (next_rand(&x->rng) % 16 + 1) * SECTOR;
        off = next_rand(&x->rng) % ((x->span - len) / SECTOR + 1) * SECTOR;
    } while (overlaps(x, off, len));
    s->discard = next_rand(&x->rng) % 8 == 0;
    for (uint64_t i = 0; i < len; i += 8) {
        uint64_t v = next_rand(&x->rng);
        memcpy(s->buf + i, &v, 8);
    }
    s->io = (struct vstor_io){.offset = off, .len = len, .buf = s->discard ? NULL : s->buf,
                              .cb = write_cb, .ctx = s};
    s->busy = true;
    x->ops_started++;
    int rc = s->discard ? vstor_discard(x->img, &s->io) : vstor_write(x->img, &s->io);
    if (rc < 0)
        write_cb(&s->io, rc);
}

/* ---- Check phase: read everything back ---------------------------------------------- */

static uint64_t check_off;
static unsigned mismatches;

static void check_next(struct ctx *x);
static void writes_start(struct ctx *x);

static void read_cb(struct vstor_io *io, int rc)
{
    struct slot *s = io->ctx;
    struct ctx *x = s->x;
    if (rc < 0) {
        fail(x, "read", io->offset, io->len, rc);
        return stop(x);
    }
    for (uint64_t i = 0; i < io->len; i++) {
        if (s->buf[i] == x->model[io->offset + i])
            continue;
        if (mismatches++ < 10)
            fprintf(stderr, "osd_verify: %sbyte %" PRIu64 ": read 0x%02x, expected 0x%02x\n",
                    x->prechecking ? "before writing: " : "", io->offset + i, s->buf[i],
                    x->model[io->offset + i]);
        x->rc = 1;
    }
    check_next(x);
}

static void check_next(struct ctx *x)
{
    if (check_off >= x->span && x->prechecking) {
        x->prechecking = false;
        if (!mismatches)
            return writes_start(x);
        fprintf(stderr, "osd_verify: before writing, %u bytes differ from the model this run "
                        "starts from (%s): an image that a previous run wrote needs --base "
                        "with the model that run --save'd\n", mismatches,
                x->base ? x->base : "zeros, a fresh image");
        return stop(x);
    }
    if (check_off >= x->span) {
        if (mismatches)
            fprintf(stderr, "osd_verify: %u bytes differ\n", mismatches);
        else
            printf("verified %" PRIu64 " bytes\n", x->span);
        return stop(x);
    }
    struct slot *s = &x->slots[0];
    uint64_t len = x->span - check_off < LEN_MAX ? x->span - check_off : LEN_MAX;
    s->io = (struct vstor_io){.offset = check_off, .len = len, .buf = s->buf, .cb = read_cb,
                              .ctx = s};
    check_off += len;
    int rc = vstor_read(x->img, &s->io);
    if (rc < 0)
        read_cb(&s->io, rc);
}

static void check_start(struct ctx *x)
{
    if (x->save) {
        FILE *f = fopen(x->save, "wb");
        if (!f || fwrite(x->model, 1, x->span, f) != x->span) {
            fprintf(stderr, "osd_verify: saving the model to %s failed\n", x->save);
            x->rc = 1;
        }
        if (f)
            fclose(f);
    }
    check_next(x);
}

/* ---- --past-end ------------------------------------------------------------------------ */

static int past_step;

static void past_cb(struct vstor_io *io, int rc)
{
    struct slot *s = io->ctx;
    struct ctx *x = s->x;
    if (rc != -EINVAL) {
        fprintf(stderr, "osd_verify: %s across the end: %s, expected -EINVAL\n",
                past_step ? "write" : "read", rc ? vstor_strerror(rc) : "success");
        x->rc = 1;
    } else {
        printf("%s across the end: %s\n", past_step ? "write" : "read", vstor_strerror(rc));
    }
    if (past_step++ == 1)
        return stop(x);
    struct vstor_image_info info;
    vstor_image_info(x->img, &info);
    s->io = (struct vstor_io){.offset = info.size - 4096, .len = 8192, .buf = s->buf,
                              .cb = past_cb, .ctx = s};
    rc = vstor_write(x->img, &s->io);
    if (rc < 0)
        past_cb(&s->io, rc);
}

static void past_start(struct ctx *x)
{
    struct vstor_image_info info;
    vstor_image_info(x->img, &info);
    struct slot *s = &x->slots[0];
    s->io = (struct vstor_io){.offset = info.size - 4096, .len = 8192, .buf = s->buf,
                              .cb = past_cb, .ctx = s};
    int rc = vstor_read(x->img, &s->io);
    if (rc < 0)
        past_cb(&s->io, rc);
}

/* ---- Main -------------------------------------------------------------------------------- */

static void open_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct ctx *x = ctx;
    if (rc < 0) {
        fprintf(stderr, "osd_verify: opening %s: %s\n", x->image, vstor_strerror(rc));
        x->rc = 1;
        return stop(x);
    }
    x->img = img;
    struct vstor_image_info info;
    vstor_image_info(img, &info);
    if (!x->span || x->span > info.size)
        x->span = info.size;
    x->model = calloc(1, x->span);
    if (!x->model)
        return (void)(x->rc = 1), stop(x);
    if (x->past_end)
        return past_start(x);
    const char *load = x->check ? x->check : x->base;
    if (load) {
        FILE *f = fopen(load, "rb");
        size_t n = f ? fread(x->model, 1, x->span, f) : 0;
        if (f)
            fclose(f);
        if (n != x->span) {
            fprintf(stderr, "osd_verify: %s holds %zu bytes, not %" PRIu64 "\n", load, n,
                    x->span);
            x->rc = 1;
            return stop(x);
        }
        if (x->check)
            return check_next(x);
    }
    if (x->rand4k) /* no model: nothing to compare */
        return writes_start(x);
    x->prechecking = true;
    check_next(x);
}

static void writes_start(struct ctx *x)
{
    check_off = 0;
    x->writing = true;
    x->deadline_ms += uv_now(&x->loop);
    for (unsigned i = 0; i < x->depth && more_to_do(x); i++)
        start_one(x, &x->slots[i]);
    if (!any_busy(x))
        check_start(x);
}

/* The blocking modes (--blk-write, --dump, --poll-read); -1 when none is asked for. */
/* --mon takes one address or a comma-separated list of the members. */
static unsigned mon_list(const char *arg, char *copy, size_t size, const char **out,
                         unsigned max)
{
    unsigned n = 0;
    snprintf(copy, size, "%s", arg);
    for (char *save = NULL, *t = strtok_r(copy, ",", &save); t && n < max;
         t = strtok_r(NULL, ",", &save))
        out[n++] = t;
    return n;
}

static void pattern(uint8_t *buf, uint64_t len, uint64_t seed)
{
    for (uint64_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 7 + seed * 131 + (i >> 9));
}

static uint64_t wall_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000 + (uint64_t)tv.tv_usec;
}

/* --poll-read: sectors of buf equal to the patterns of two seeds. */
static void poll_count(const uint8_t *buf, const uint8_t *a, const uint8_t *b, uint64_t len,
                       uint64_t *na, uint64_t *nb)
{
    *na = *nb = 0;
    for (uint64_t s = 0; s + SECTOR <= len; s += SECTOR) {
        *na += memcmp(buf + s, a + s, SECTOR) == 0;
        *nb += memcmp(buf + s, b + s, SECTOR) == 0;
    }
}

static int poll_read(struct vstor_blk *b, uint8_t *buf, const char *spec)
{
    unsigned long long o, l, old_seed, new_seed, secs;
    if (sscanf(spec, "%llu:%llu:%llu:%llu:%llu", &o, &l, &old_seed, &new_seed, &secs) != 5)
        return 1;
    uint8_t *a = malloc(l), *n = malloc(l);
    if (!a || !n)
        return free(a), free(n), 1;
    pattern(a, l, old_seed);
    pattern(n, l, new_seed);
    uint64_t end = wall_us() + secs * 1000000ull;
    while (wall_us() < end) {
        uint64_t t0 = wall_us(), na = 0, nb = 0;
        int rc = vstor_blk_read(b, buf, l, o);
        uint64_t t1 = wall_us();
        if (rc == 0)
            poll_count(buf, a, n, l, &na, &nb);
        printf("read %" PRIu64 " %" PRIu64 " %d %" PRIu64 " %" PRIu64 " %llu\n", t0, t1, rc,
               na, nb, l / SECTOR);
        usleep(20000);
    }
    free(a), free(n);
    return 0;
}

static int blk_mode(int argc, char **argv)
{
    const char *mon = NULL, *image = NULL, *wr = NULL, *dump = NULL, *poll = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--mon"))
            mon = v;
        else if (!strcmp(a, "--image"))
            image = v;
        else if (!strcmp(a, "--blk-write"))
            wr = v;
        else if (!strcmp(a, "--dump"))
            dump = v;
        else if (!strcmp(a, "--poll-read"))
            poll = v;
    }
    if (!wr && !dump && !poll)
        return -1;
    unsigned long long off = 0, len = 0, seed = 0;
    char file[512] = "";
    if ((wr && sscanf(wr, "%llu:%llu:%llu", &off, &len, &seed) != 3) ||
        (dump && sscanf(dump, "%511[^:]:%llu", file, &len) != 2) ||
        (poll && sscanf(poll, "%llu:%llu", &off, &len) != 2) || !mon || !image || !len)
        return 2;
    struct vstor_client_opts o;
    char mon_copy[1024];
    const char *mons[8];
    vstor_client_opts_init(&o);
    o.n_mon = mon_list(mon, mon_copy, sizeof(mon_copy), mons, 8);
    o.mon_addresses = mons;
    o.fail_enospc = true;
    struct vstor_blk *b;
    char err[256];
    if (vstor_blk_open(&o, image, &b, err, sizeof(err)) < 0) {
        fprintf(stderr, "osd_verify: %s\n", err);
        return 1;
    }
    uint8_t *buf = aligned_alloc(4096, (len + 4095) & ~4095ull);
    int rc = 0;
    if (poll) {
        rc = poll_read(b, buf, poll);
    } else if (wr) {
        pattern(buf, len, seed);
        printf("rc %d\n", vstor_blk_write(b, buf, len, off));
    } else {
        rc = vstor_blk_read(b, buf, len, 0);
        FILE *f = rc == 0 ? fopen(file, "wb") : NULL;
        if (!f || fwrite(buf, 1, len, f) != len)
            rc = 1;
        if (f)
            fclose(f);
        printf("dump rc %d\n", rc);
    }
    free(buf);
    vstor_blk_close(b);
    return rc ? 1 : 0;
}

static int parse_args(struct ctx *x, int argc, char **argv, const char **mon)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--past-end") || !strcmp(a, "--rand4k")) {
            x->past_end |= !strcmp(a, "--past-end");
            x->rand4k |= !strcmp(a, "--rand4k");
            continue;
        }
        if (!v)
            return -1;
        i++;
        if (!strcmp(a, "--mon"))
            *mon = v;
        else if (!strcmp(a, "--image"))
            x->image = v;
        else if (!strcmp(a, "--seconds"))
            x->deadline_ms = strtoull(v, NULL, 10) * 1000;
        else if (!strcmp(a, "--ops"))
            x->ops_target = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--depth"))
            x->depth = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--seed"))
            x->seed = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--span"))
            x->span = strtoull(v, NULL, 10);
        else if (!strcmp(a, "--save"))
            x->save = v;
        else if (!strcmp(a, "--check"))
            x->check = v;
        else if (!strcmp(a, "--base"))
            x->base = v;
        else if (!strcmp(a, "--sync-wait"))
            x->sync_wait = v;
        else if (!strcmp(a, "--spin-lone-us"))
            x->spin_lone_us = (uint32_t)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--log-level")) {
            enum vs_log_level level;
            if (vs_log_level_parse(v, &level) < 0)
                return -1;
            vs_log_set_level(level);
        } else
            return -1;
    }
    return *mon && x->image && x->depth >= 1 && x->depth <= DEPTH_MAX ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct ctx x;
    const char *mon = NULL;
    x.depth = 8;
    x.seed = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    int brc = blk_mode(argc, argv);
    if (brc >= 0)
        return brc;
    if (parse_args(&x, argc, argv, &mon) < 0) {
        fprintf(stderr, "usage: osd_verify --mon ADDR --image NAME [--seconds S | --ops N] "
                        "[--depth D] [--seed X] [--span BYTES] [--save FILE] [--check FILE] "
                        "[--base FILE] [--past-end] [--rand4k] [--sync-wait FILE] "
                        "[--log-level debug]\n");
        return 2;
    }
    if (!x.ops_target && !x.deadline_ms)
        x.ops_target = 1000;
    x.rng = x.seed * 0x9E3779B97F4A7C15ull | 1;
    uv_loop_init(&x.loop);
    for (unsigned i = 0; i < DEPTH_MAX; i++) {
        x.slots[i].x = &x;
        x.slots[i].buf = aligned_alloc(4096, LEN_MAX);
    }
    struct vstor_client_opts o;
    char err[256], mon_copy[1024];
    const char *mons[8];
    vstor_client_opts_init(&o);
    o.n_mon = mon_list(mon, mon_copy, sizeof(mon_copy), mons, 8);
    o.mon_addresses = mons;
    o.spin_lone_us = x.spin_lone_us;
    if (vstor_client_create(&x.loop, &o, &x.c, err, sizeof(err)) < 0) {
        fprintf(stderr, "osd_verify: %s\n", err);
        return 1;
    }
    if (vstor_image_open(x.c, x.image, open_cb, &x) < 0)
        return 1;
    uv_run(&x.loop, UV_RUN_DEFAULT);
    uv_loop_close(&x.loop);
    for (unsigned i = 0; i < DEPTH_MAX; i++)
        free(x.slots[i].buf);
    free(x.model);
    return x.rc;
}
