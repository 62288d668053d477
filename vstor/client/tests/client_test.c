/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * client_test -- libvstor against in-process fake OSDs (the real messenger
 * over loopback TCP) and a fake metadata service, all on one libuv loop:
 * slicing across objects and PGs, every retryable error retried, a
 * connection dropped mid-write, lazy-mode replay after a drop with
 * overlapping writes, replay after a primary change, SYNC ordering, the
 * automatic sync at the dirty bound, metadata outages, timeouts, out-of-range
 * and unknown-image errors, and the blocking wrappers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_int.h"
#include "fake_meta.h"
#include "fake_osd.h"
#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"
#include "vs_log.h"

#define CLUSTER 0x5eed
#define OBJ 4096u
#define IMG_SIZE (1u << 20)
#define INODE ((1ull << 48) | 1)
#define NOSD 2
#define PGS 4

struct env {
    uv_loop_t loop;
    struct fake_meta *meta;
    struct fake_osd osd[NOSD];
    struct vstor_client *c;
    struct vstor_image *img;
    int open_rc;
    bool opened;
    bool lazy;
};

struct io_wait {
    struct vstor_io io;
    int rc;
    bool done;
    unsigned order; /* completion sequence number */
};

static unsigned completions;

/* ---- Harness ------------------------------------------------------------------------- */

static void run_until(struct env *e, const bool *flag)
{
    uint64_t deadline = vs_clock_mono_us() + 20 * 1000000ull;
    while (!*flag) {
        uv_run(&e->loop, UV_RUN_ONCE);
        if (vs_clock_mono_us() > deadline)
            fail_msg("timed out waiting");
    }
}

static void run_ms(struct env *e, unsigned ms)
{
    uint64_t until = vs_clock_mono_us() + ms * 1000ull;
    while (vs_clock_mono_us() < until)
        uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* PG p's primary: OSD 1 for even PGs, OSD 2 for odd ones (or `all`). */
static void put_pgs(struct env *e, uint32_t all)
{
    char buf[1024];
    int n = snprintf(buf, sizeof(buf), "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":[");
    for (int p = 0; p < PGS; p++) {
        uint32_t osd = all ? all : 1 + (uint32_t)(p % 2);
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s{\"osd_set\":[%u],\"primary\":%u}",
                      p ? "," : "", osd, osd);
    }
    snprintf(buf + n, sizeof(buf) - (size_t)n, "]}}}");
    fake_meta_put(e->meta, "config/pgs", buf);
}

static void put_osd(struct env *e, int i)
{
    char key[64], val[256];
    snprintf(key, sizeof(key), "osd/state/%u", e->osd[i].id);
    snprintf(val, sizeof(val), "{\"state\":\"up\",\"addresses\":[\"127.0.0.1:%u\"]}",
             e->osd[i].port);
    fake_meta_put(e->meta, key, val);
}

static void open_cb(void *ctx, int rc, struct vstor_image *img)
{
    struct env *e = ctx;
    e->open_rc = rc;
    e->img = img;
    e->opened = true;
}

static void cluster_up(struct env *e, bool lazy, const struct vstor_client_opts *opts)
{
    char pools[512];
    memset(e, 0, sizeof(*e));
    e->lazy = lazy;
    uv_loop_init(&e->loop);
    e->meta = fake_meta_new(&e->loop, CLUSTER);
    for (int i = 0; i < NOSD; i++) {
        fake_osd_start(&e->osd[i], &e->loop, (uint32_t)i + 1, CLUSTER, OBJ, lazy);
        put_osd(e, i);
    }
    fake_meta_put(e->meta, "config/global", "{\"block_size\":131072}");
    snprintf(pools, sizeof(pools), "{\"1\":{\"name\":\"p\",\"scheme\":\"replicated\","
             "\"pg_size\":1,\"pg_minsize\":1,\"pg_count\":%d,\"block_size\":%u,"
             "\"immediate_commit\":\"%s\"}}", PGS, OBJ, lazy ? "none" : "all");
    fake_meta_put(e->meta, "config/pools", pools);
    put_pgs(e, 0);
    fake_meta_put(e->meta, "index/image/img1", "{\"pool\":1,\"num\":1}");
    fake_meta_put(e->meta, "config/inode/1/1", "{\"name\":\"img1\",\"size\":1048576}");
    struct vstor_client_opts o;
    vstor_client_opts_init(&o);
    if (opts)
        o = *opts;
    char err[256];
    assert_int_equal(client__create(&e->loop, &o, &fake_meta_ops, e->meta, &e->c, err,
                                    sizeof(err)), 0);
}

static void open_img(struct env *e, const char *name)
{
    e->opened = false;
    assert_int_equal(vstor_image_open(e->c, name, open_cb, e), 0);
    run_until(e, &e->opened);
}

static void closed_cb(void *ctx)
{
    *(bool *)ctx = true;
}

static void cluster_down(struct env *e)
{
    bool closed = false;
    if (e->img)
        vstor_image_close(e->img);
    vstor_client_close(e->c, closed_cb, &closed);
    run_until(e, &closed);
    for (int i = 0; i < NOSD; i++) {
        if (!e->osd[i].stopped) {
            fake_osd_stop(&e->osd[i]);
            run_until(e, &e->osd[i].stopped);
        }
        fake_osd_free(&e->osd[i]);
    }
    fake_meta_free(e->meta);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void io_cb(struct vstor_io *io, int rc)
{
    struct io_wait *w = io->ctx;
    w->rc = rc;
    w->done = true;
    w->order = ++completions;
}

static int submit(struct env *e, int (*fn)(struct vstor_image *, struct vstor_io *),
                  struct io_wait *w, void *buf, uint64_t len, uint64_t off)
{
    memset(w, 0, sizeof(*w));
    w->io = (struct vstor_io){.offset = off, .len = len, .buf = buf, .cb = io_cb, .ctx = w};
    return fn(e->img, &w->io);
}

static int do_io(struct env *e, int (*fn)(struct vstor_image *, struct vstor_io *), void *buf,
                 uint64_t len, uint64_t off)
{
    struct io_wait w;
    int rc = submit(e, fn, &w, buf, len, off);
    if (rc < 0)
        return rc;
    run_until(e, &w.done);
    return w.rc;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)((i * 2654435761u + seed) >> 13);
}

static struct fake_osd *osd_of(struct env *e, uint64_t off)
{
    uint32_t pg = (uint32_t)(off / OBJ % PGS);
    return &e->osd[pg % 2];
}

/* ---- Tests ------------------------------------------------------------------------------ */

static void test_slicing(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    open_img(&e, "img1");
    assert_int_equal(e.open_rc, 0);
    struct vstor_image_info info;
    vstor_image_info(e.img, &info);
    assert_int_equal(info.size, IMG_SIZE);
    assert_int_equal(info.object_size, OBJ);
    assert_false(info.lazy);
    uint8_t *buf = malloc(70000), *back = malloc(70000), *peek = malloc(OBJ);
    fill(buf, 70000, 1);
    uint64_t off = 1000;
    assert_int_equal(do_io(&e, vstor_write, buf, 70000, off), 0);
    /* Every part lies inside one object and went to its PG's primary. */
    unsigned parts = 0;
    uint64_t bytes = 0;
    for (int i = 0; i < NOSD; i++) {
        for (unsigned k = 0; k < e.osd[i].n_log; k++) {
            const struct fake_osd_log *l = &e.osd[i].log[k];
            assert_int_equal(l->opcode, VS_NET_OP_WRITE);
            assert_true(l->offset / OBJ == (l->offset + l->len - 1) / OBJ);
            assert_ptr_equal(osd_of(&e, l->offset), &e.osd[i]);
            assert_int_equal(l->inode, INODE);
            parts++, bytes += l->len;
        }
    }
    assert_int_equal(bytes, 70000);
    assert_int_equal(parts, (off + 70000 - 1) / OBJ - off / OBJ + 1);
    for (uint64_t at = off; at < off + 70000; at += OBJ - at % OBJ) {
        uint32_t n = (uint32_t)VS_MIN(OBJ - at % OBJ, off + 70000 - at);
        fake_osd_peek(osd_of(&e, at), INODE, at, n, peek);
        assert_memory_equal(peek, buf + (at - off), n);
    }
    assert_int_equal(do_io(&e, vstor_read, back, 70000, off), 0);
    assert_memory_equal(back, buf, 70000);
    /* Discard, then the range reads as zeroes. */
    assert_int_equal(do_io(&e, vstor_discard, NULL, 3 * OBJ, 2 * OBJ), 0);
    assert_int_equal(do_io(&e, vstor_read, back, 3 * OBJ, 2 * OBJ), 0);
    for (unsigned i = 0; i < 3 * OBJ; i++)
        assert_int_equal(back[i], 0);
    free(buf), free(back), free(peek);
    cluster_down(&e);
}

static void test_retryable_errors(void **state)
{
    (void)state;
    static const int codes[] = {VS_EPGINACTIVE, VS_ENOTPRIMARY, VS_ESTALEEPOCH, -EPIPE, -EIO,
                                -ENOSPC, VS_ESHUTDOWN, -EAGAIN, -ETIMEDOUT};
    struct vstor_client_opts o;
    vstor_client_opts_init(&o);
    o.retry_interval_ms = 5;
    struct env e;
    cluster_up(&e, false, &o);
    open_img(&e, "img1");
    uint8_t buf[OBJ], back[OBJ];
    for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        fill(buf, OBJ, i);
        fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, codes[i], 3);
        unsigned before = fake_osd_count(&e.osd[0], VS_NET_OP_WRITE);
        assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
        assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) - before, 4);
        fake_osd_fail(&e.osd[0], VS_NET_OP_READ, codes[i], 2);
        assert_int_equal(do_io(&e, vstor_read, back, OBJ, 0), 0);
        assert_memory_equal(back, buf, OBJ);
    }
    assert_true(e.c->retries >= 45);
    /* A real error fails the op with it. */
    fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, VS_EVERSIONCONFLICT, 1);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), VS_EVERSIONCONFLICT);
    cluster_down(&e);
}

static unsigned enospc_warnings;

static void enospc_sink(void *ctx, enum vs_log_level level, const char *component,
                        const char *msg)
{
    (void)ctx, (void)component;
    if (level == VS_LOG_WARN && strstr(msg, "no space left") && strstr(msg, "retrying"))
        enospc_warnings++;
}

/* ENOSPC (client_retry_enospc): retried by default with one warning per
 * CLIENT_ENOSPC_WARN_MS while it lasts; with fail_enospc the caller gets it. */
static void test_enospc(void **state)
{
    (void)state;
    struct vstor_client_opts o;
    vstor_client_opts_init(&o);
    assert_false(o.fail_enospc);
    o.retry_interval_ms = 2;
    struct env e;
    cluster_up(&e, false, &o);
    open_img(&e, "img1");
    uint8_t buf[OBJ], back[OBJ];
    fill(buf, OBJ, 42);
    enum vs_log_level saved = vs_log_level_current;
    vs_log_set_level(VS_LOG_WARN);
    vs_log_set_sink(enospc_sink, NULL);
    enospc_warnings = 0;
    unsigned before = fake_osd_count(&e.osd[0], VS_NET_OP_WRITE);
    fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, -ENOSPC, 30);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) - before, 31);
    assert_int_equal(enospc_warnings, 1); /* 30 retries within one interval: one line */
    assert_int_equal(e.c->enospc_waits, 30);
    /* The interval has passed: the next wait warns again, once. */
    e.c->enospc_warned_us -= CLIENT_ENOSPC_WARN_MS * 1000ull;
    fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, -ENOSPC, 5);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    assert_int_equal(enospc_warnings, 2);
    assert_int_equal(do_io(&e, vstor_read, back, OBJ, 0), 0);
    assert_memory_equal(back, buf, OBJ);
    vs_log_set_sink(NULL, NULL);
    cluster_down(&e);
    /* Switched off: the write fails with ENOSPC at once, nothing is retried. */
    o.fail_enospc = true;
    cluster_up(&e, false, &o);
    open_img(&e, "img1");
    vs_log_set_sink(enospc_sink, NULL);
    before = fake_osd_count(&e.osd[0], VS_NET_OP_WRITE);
    fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, -ENOSPC, 1);
    fill(buf, OBJ, 43);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), -ENOSPC);
    assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) - before, 1);
    assert_int_equal(e.c->retries, 0);
    assert_int_equal(enospc_warnings, 2);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0); /* space again */
    assert_int_equal(do_io(&e, vstor_read, back, OBJ, 0), 0);
    assert_memory_equal(back, buf, OBJ);
    vs_log_set_sink(NULL, NULL);
    vs_log_set_level(saved);
    cluster_down(&e);
}

static void test_conn_drop_mid_write(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    open_img(&e, "img1");
    uint8_t *buf = malloc(8 * OBJ), *back = malloc(8 * OBJ);
    fill(buf, 8 * OBJ, 7);
    e.osd[0].hold = true;
    struct io_wait w;
    assert_int_equal(submit(&e, vstor_write, &w, buf, 8 * OBJ, 0), 0);
    while (fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) < 4)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_false(w.done);
    e.osd[0].hold = false;
    fake_osd_restart(&e.osd[0]); /* the held replies never arrive */
    run_until(&e, &w.done);
    assert_int_equal(w.rc, 0);
    assert_true(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) >= 8);
    assert_int_equal(do_io(&e, vstor_read, back, 8 * OBJ, 0), 0);
    assert_memory_equal(back, buf, 8 * OBJ);
    free(buf), free(back);
    cluster_down(&e);
}

/* Lazy pool: two overlapping writes acknowledged, the OSD crashes before any
 * sync; the client replays both in order, so the image ends as if nothing
 * had happened; after a sync the data survives another crash. */
static void test_lazy_replay_after_drop(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, true, NULL);
    open_img(&e, "img1");
    struct vstor_image_info info;
    vstor_image_info(e.img, &info);
    assert_true(info.lazy);
    uint8_t a[2 * OBJ], b[2 * OBJ], expect[3 * OBJ], back[3 * OBJ];
    fill(a, sizeof(a), 11);
    fill(b, sizeof(b), 22);
    /* Objects 0, 2 (OSD 1) and 1 (OSD 2)... use only even objects: 0 and 2. */
    assert_int_equal(do_io(&e, vstor_write, a, 2 * OBJ, 0), 0);
    assert_int_equal(do_io(&e, vstor_write, b, 2 * OBJ, OBJ), 0);
    memcpy(expect, a, OBJ);
    memcpy(expect + OBJ, b, 2 * OBJ);
    unsigned writes = fake_osd_count(&e.osd[0], VS_NET_OP_WRITE);
    fake_osd_restart(&e.osd[0]);
    run_until(&e, (bool[]){true});
    while (e.osd[0].restarting)
        uv_run(&e.loop, UV_RUN_ONCE);
    /* The reads wait for the replay, then see both writes in order. */
    assert_int_equal(do_io(&e, vstor_read, back, 3 * OBJ, 0), 0);
    assert_memory_equal(back, expect, 3 * OBJ);
    assert_true(e.c->replays >= 1);
    assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_WRITE) - writes, 2);
    assert_int_equal(do_io(&e, vstor_sync, NULL, 0, 0), 0);
    assert_int_equal(e.c->n_dirty, 0);
    fake_osd_restart(&e.osd[0]);
    while (e.osd[0].restarting)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(do_io(&e, vstor_read, back, 3 * OBJ, 0), 0);
    assert_memory_equal(back, expect, 3 * OBJ);
    cluster_down(&e);
}

/* Lazy pool: the PG moves to another primary before a sync; the unsynced
 * write is replayed to the new primary, and the sync goes there. */
static void test_lazy_replay_after_primary_change(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, true, NULL);
    open_img(&e, "img1");
    uint8_t a[OBJ], back[OBJ];
    fill(a, OBJ, 5);
    assert_int_equal(do_io(&e, vstor_write, a, OBJ, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 0);
    put_pgs(&e, 2); /* every PG on OSD 2 now */
    while (e.c->pgmap->pools[0].pgs[0].primary != 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_true(client__blocked(e.c) || e.c->replays == 1);
    assert_int_equal(do_io(&e, vstor_sync, NULL, 0, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 1);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_SYNC), 1);
    fake_osd_peek(&e.osd[1], INODE, 0, OBJ, back);
    assert_memory_equal(back, a, OBJ);
    cluster_down(&e);
}

/* W1, S, W2 submitted together: S leaves only after W1 completed, W2 only
 * after S completed. */
static void test_sync_ordering(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, true, NULL);
    open_img(&e, "img1");
    uint8_t a[OBJ], b[OBJ];
    fill(a, OBJ, 1);
    fill(b, OBJ, 2);
    e.osd[0].hold = true;
    struct io_wait w1, s, w2;
    assert_int_equal(submit(&e, vstor_write, &w1, a, OBJ, 0), 0);
    assert_int_equal(submit(&e, vstor_sync, &s, NULL, 0, 0), 0);
    assert_int_equal(submit(&e, vstor_write, &w2, b, OBJ, 2 * OBJ), 0);
    run_ms(&e, 50);
    assert_int_equal(e.osd[0].n_log, 1);
    assert_int_equal(e.osd[0].log[0].opcode, VS_NET_OP_WRITE);
    fake_osd_release(&e.osd[0]);
    while (e.osd[0].n_log < 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    run_ms(&e, 30);
    assert_int_equal(e.osd[0].n_log, 2);
    assert_int_equal(e.osd[0].log[1].opcode, VS_NET_OP_SYNC);
    assert_true(w1.done && !s.done && !w2.done);
    e.osd[0].hold = false;
    fake_osd_release(&e.osd[0]);
    run_until(&e, &w2.done);
    assert_int_equal(e.osd[0].log[2].opcode, VS_NET_OP_WRITE);
    assert_int_equal(e.osd[0].log[2].offset, 2 * OBJ);
    assert_true(w1.order < s.order && s.order < w2.order);
    assert_int_equal(w1.rc | s.rc | w2.rc, 0);
    /* With immediate commit a sync is a no-op that completes at once. */
    cluster_down(&e);
    cluster_up(&e, false, NULL);
    open_img(&e, "img1");
    assert_int_equal(do_io(&e, vstor_sync, NULL, 0, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[0], VS_NET_OP_SYNC), 0);
    cluster_down(&e);
}

/* The dirty bound: past max_dirty_ops the client syncs by itself. */
static void test_auto_sync(void **state)
{
    (void)state;
    struct vstor_client_opts o;
    vstor_client_opts_init(&o);
    o.max_dirty_ops = 16;
    struct env e;
    cluster_up(&e, true, &o);
    open_img(&e, "img1");
    static uint8_t buf[64][OBJ];
    struct io_wait w[64];
    for (int i = 0; i < 64; i++) {
        fill(buf[i], OBJ, (uint32_t)i);
        assert_int_equal(submit(&e, vstor_write, &w[i], buf[i], OBJ, (uint64_t)i * 2 * OBJ), 0);
    }
    run_until(&e, &w[63].done);
    for (int i = 0; i < 64; i++)
        assert_int_equal(w[i].rc, 0);
    assert_true(e.c->auto_syncs >= 3);
    assert_true(e.c->n_dirty <= 16);
    assert_true(fake_osd_count(&e.osd[0], VS_NET_OP_SYNC) >= 3);
    /* A single write larger than the bound is refused, not split silently. */
    static uint8_t big[17 * OBJ];
    struct io_wait wb;
    assert_int_equal(submit(&e, vstor_write, &wb, big, sizeof(big), 0), 0);
    run_until(&e, &wb.done);
    assert_int_equal(wb.rc, -EINVAL);
    cluster_down(&e);
}

static void test_errors(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    open_img(&e, "nope");
    assert_int_equal(e.open_rc, VS_ENOIMAGE);
    assert_non_null(strstr(vstor_client_errmsg(e.c), "image 'nope' not found"));
    e.img = NULL;
    open_img(&e, "img1");
    assert_int_equal(e.open_rc, 0);
    uint8_t buf[OBJ];
    struct io_wait w;
    assert_int_equal(submit(&e, vstor_write, &w, buf, OBJ, IMG_SIZE - 100), -EINVAL);
    assert_non_null(strstr(vstor_client_errmsg(e.c), "outside the image"));
    assert_int_equal(submit(&e, vstor_read, &w, buf, 0, 0), -EINVAL);
    assert_int_equal(submit(&e, vstor_read, &w, NULL, OBJ, 0), -EINVAL);
    assert_int_equal(submit(&e, vstor_read, &w, buf, OBJ, IMG_SIZE), -EINVAL);
    assert_int_equal(do_io(&e, vstor_read, buf, 100, IMG_SIZE - 100), 0);
    /* A resize is followed; then the image goes read-only, then away. */
    fake_meta_put(e.meta, "config/inode/1/1", "{\"name\":\"img1\",\"size\":2097152}");
    while (e.img->size != 2u << 20)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, IMG_SIZE), 0);
    fake_meta_put(e.meta, "config/inode/1/1",
                  "{\"name\":\"img1\",\"size\":2097152,\"readonly\":true}");
    while (!e.img->readonly)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(submit(&e, vstor_write, &w, buf, OBJ, 0), -EROFS);
    fake_meta_delete(e.meta, "config/inode/1/1");
    while (!e.img->removed)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(submit(&e, vstor_read, &w, buf, OBJ, 0), VS_ENOIMAGE);
    /* An image whose pool does not exist. */
    fake_meta_put(e.meta, "index/image/orphan", "{\"pool\":9,\"num\":1}");
    fake_meta_put(e.meta, "config/inode/9/1", "{\"name\":\"orphan\",\"size\":4096}");
    vstor_image_close(e.img);
    open_img(&e, "orphan");
    assert_int_equal(e.open_rc, VS_ENOPOOL);
    e.img = NULL;
    cluster_down(&e);
}

/* The metadata service is down when the client starts: ops wait, then run.
 * Down again later: I/O to known PGs goes on. Its history compacted while
 * a watch was behind: the client reloads. */
static void test_meta_outage(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    fake_meta_set_down(e.meta, true);
    e.opened = false;
    assert_int_equal(vstor_image_open(e.c, "img1", open_cb, &e), 0);
    run_ms(&e, 300);
    assert_false(e.opened);
    fake_meta_set_down(e.meta, false);
    run_until(&e, &e.opened);
    assert_int_equal(e.open_rc, 0);
    uint8_t buf[OBJ], back[OBJ];
    fill(buf, OBJ, 3);
    fake_meta_set_down(e.meta, true);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    assert_int_equal(do_io(&e, vstor_read, back, OBJ, 0), 0);
    assert_memory_equal(back, buf, OBJ);
    /* Changes made during the outage arrive when it ends. */
    put_pgs(&e, 2);
    fake_meta_set_down(e.meta, false);
    fake_meta_compact(e.meta);
    while (!e.c->pgmap || e.c->pgmap->pools[0].pgs[0].primary != 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 1);
    cluster_down(&e);
}

/* A PG without a primary: the op waits, and fails after op_timeout_ms. The
 * primary moves while an op retries: it follows the map. */
static void test_timeout_and_failover(void **state)
{
    (void)state;
    struct vstor_client_opts o;
    vstor_client_opts_init(&o);
    o.op_timeout_ms = 300;
    o.retry_interval_ms = 10;
    struct env e;
    cluster_up(&e, false, &o);
    open_img(&e, "img1");
    uint8_t buf[OBJ];
    fill(buf, OBJ, 9);
    fake_meta_put(e.meta, "config/pgs", "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":["
                  "{\"osd_set\":[0],\"primary\":0},{\"osd_set\":[2],\"primary\":2},"
                  "{\"osd_set\":[1],\"primary\":1},{\"osd_set\":[2],\"primary\":2}]}}}");
    run_ms(&e, 20);
    uint64_t t0 = vs_clock_mono_us();
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), -ETIMEDOUT);
    assert_true(vs_clock_mono_us() - t0 >= 290000);
    /* OSD 1 says it is not the primary until the map moves PG 2 to OSD 2. */
    fake_osd_fail(&e.osd[0], VS_NET_OP_WRITE, VS_ENOTPRIMARY, 1000);
    struct io_wait w;
    assert_int_equal(submit(&e, vstor_write, &w, buf, OBJ, 2 * OBJ), 0);
    run_ms(&e, 50);
    assert_false(w.done);
    put_pgs(&e, 2);
    run_until(&e, &w.done);
    assert_int_equal(w.rc, 0);
    assert_int_equal(fake_osd_count(&e.osd[1], VS_NET_OP_WRITE), 1);
    cluster_down(&e);
}

/* The OSD re-registers at another address (it restarted elsewhere). */
static void test_osd_moves(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    open_img(&e, "img1");
    uint8_t buf[OBJ], back[OBJ];
    fill(buf, OBJ, 4);
    assert_int_equal(do_io(&e, vstor_write, buf, OBJ, 0), 0);
    fake_osd_stop(&e.osd[0]);
    run_until(&e, &e.osd[0].stopped);
    struct fake_osd moved;
    fake_osd_start(&moved, &e.loop, 1, CLUSTER, OBJ, false);
    struct io_wait w;
    assert_int_equal(submit(&e, vstor_read, &w, back, OBJ, 0), 0);
    run_ms(&e, 100);
    assert_false(w.done);
    char val[128];
    snprintf(val, sizeof(val), "{\"state\":\"up\",\"addresses\":[\"127.0.0.1:%u\"]}", moved.port);
    fake_meta_put(e.meta, "osd/state/1", val);
    run_until(&e, &w.done);
    assert_int_equal(w.rc, 0); /* the new OSD has no data: zeroes */
    assert_int_equal(fake_osd_count(&moved, VS_NET_OP_READ), 1);
    fake_osd_stop(&moved);
    run_until(&e, &moved.stopped);
    fake_osd_free(&moved);
    cluster_down(&e);
}

static void test_blocking(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, true, NULL);
    struct vstor_blk b;
    char err[256];
    memset(&b, 0, sizeof(b));
    assert_int_equal(client__blk_attach(&b, &e.loop, e.c, "missing", err, sizeof(err)),
                     VS_ENOIMAGE);
    assert_non_null(strstr(err, "not found"));
    assert_int_equal(client__blk_attach(&b, &e.loop, e.c, "img1", err, sizeof(err)), 0);
    uint8_t buf[3 * OBJ], back[3 * OBJ];
    fill(buf, sizeof(buf), 8);
    assert_int_equal(vstor_blk_write(&b, buf, sizeof(buf), 100), 0);
    assert_int_equal(vstor_blk_sync(&b), 0);
    assert_int_equal(vstor_blk_read(&b, back, sizeof(back), 100), 0);
    assert_memory_equal(back, buf, sizeof(buf));
    assert_int_equal(vstor_blk_discard(&b, OBJ, 0), 0);
    assert_int_equal(vstor_blk_read(&b, back, OBJ, 0), 0);
    for (unsigned i = 0; i < OBJ; i++)
        assert_int_equal(back[i], 0);
    assert_int_equal(vstor_blk_write(&b, buf, OBJ, IMG_SIZE), -EINVAL);
    assert_non_null(vstor_blk_image(&b));
    client__blk_detach(&b);
    for (int i = 0; i < NOSD; i++) {
        fake_osd_stop(&e.osd[i]);
        run_until(&e, &e.osd[i].stopped);
        fake_osd_free(&e.osd[i]);
    }
    fake_meta_free(e.meta);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

/* Closing with ops waiting: they complete with -ECANCELED. */
static void test_close_cancels(void **state)
{
    (void)state;
    struct env e;
    cluster_up(&e, false, NULL);
    open_img(&e, "img1");
    put_pgs(&e, 0);
    fake_meta_put(e.meta, "config/pgs", "{\"format\":1,\"pools\":{\"1\":{\"pg_size\":1,\"pgs\":["
                  "{\"osd_set\":[0],\"primary\":0},{\"osd_set\":[0],\"primary\":0},"
                  "{\"osd_set\":[0],\"primary\":0},{\"osd_set\":[0],\"primary\":0}]}}}");
    run_ms(&e, 20);
    uint8_t buf[OBJ];
    struct io_wait w;
    assert_int_equal(submit(&e, vstor_write, &w, buf, OBJ, 0), 0);
    run_ms(&e, 20);
    bool closed = false;
    vstor_client_close(e.c, closed_cb, &closed);
    run_until(&e, &closed);
    assert_true(w.done);
    assert_int_equal(w.rc, -ECANCELED);
    for (int i = 0; i < NOSD; i++) {
        fake_osd_stop(&e.osd[i]);
        run_until(&e, &e.osd[i].stopped);
        fake_osd_free(&e.osd[i]);
    }
    fake_meta_free(e.meta);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

static void on_sigpipe(int sig)
{
    (void)sig;
}

/* A write to a connection its peer reset raises SIGPIPE, which by default
 * kills the process (osd_verify died so under integration/test_chaos.py,
 * seed 202): a client ignores it, and the write fails with EPIPE. A
 * disposition the application chose is left alone. */
static void test_sigpipe(void **state)
{
    (void)state;
    struct sigaction dfl = {.sa_handler = SIG_DFL}, mine = {.sa_handler = on_sigpipe}, got;
    assert_int_equal(sigaction(SIGPIPE, &dfl, NULL), 0);
    struct env e;
    cluster_up(&e, false, NULL);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    assert_int_equal(write(sv[0], "x", 1), -1); /* the process died here */
    assert_int_equal(errno, EPIPE);
    close(sv[0]);
    cluster_down(&e);
    assert_int_equal(sigaction(SIGPIPE, &mine, NULL), 0);
    cluster_up(&e, false, NULL);
    assert_int_equal(sigaction(SIGPIPE, NULL, &got), 0);
    assert_true(got.sa_handler == on_sigpipe);
    cluster_down(&e);
    assert_int_equal(sigaction(SIGPIPE, &dfl, NULL), 0);
}

int main(void)
{
    vs_log_set_level(getenv("VS_TEST_LOG") ? VS_LOG_DEBUG : VS_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slicing),
        cmocka_unit_test(test_retryable_errors),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_conn_drop_mid_write),
        cmocka_unit_test(test_lazy_replay_after_drop),
        cmocka_unit_test(test_lazy_replay_after_primary_change),
        cmocka_unit_test(test_sync_ordering),
        cmocka_unit_test(test_auto_sync),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_meta_outage),
        cmocka_unit_test(test_timeout_and_failover),
        cmocka_unit_test(test_osd_moves),
        cmocka_unit_test(test_blocking),
        cmocka_unit_test(test_close_cancels),
        cmocka_unit_test(test_sigpipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
