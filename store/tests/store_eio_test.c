/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * EIO injection: errors reach the caller, the store stays consistent (reads go
 * on; mutations fail with -EIO once a write failed), nothing crashes, and a
 * reopen recovers every acknowledged write. The fault loop (STYLE B20) fails
 * the 1st, 2nd, 3rd ... io of a workload with checkpoints until a run
 * completes without the fault firing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"

#define BS (16u << 10)
#define NOBJ 8

static int put(struct vs_disk *d, struct vs_store *s, int obj, uint8_t fill, uint32_t off,
               uint32_t len)
{
    uint8_t *buf = t_alloc(len);
    memset(buf, fill, len);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, (uint64_t)obj};
    t.op.offset = off;
    t.op.len = len;
    t.op.buf = buf;
    t.op.flags = VS_STORE_STABLE;
    int rc = t_run(d, s, &t, vs_store_write);
    free(buf);
    return rc;
}

static int get(struct vs_disk *d, struct vs_store *s, int obj, uint8_t *buf)
{
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, (uint64_t)obj};
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = BS;
    t.op.buf = buf;
    return t_run(d, s, &t, vs_store_read);
}

static void test_read_eio(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(4 << 20, 1, BS, 256 << 10, false);
    struct vs_store *s = t_open(d, NULL);
    assert_int_equal(put(d, s, 0, 7, 0, BS), (int)BS);
    uint8_t *buf = t_alloc(BS);
    vs_disk_sim_fail_nth(d, VS_DISK_READ, -1, 1, 1);
    assert_int_equal(get(d, s, 0, buf), -EIO);
    assert_int_equal(get(d, s, 0, buf), (int)BS); /* a read error breaks nothing */
    assert_int_equal(buf[100], 7);
    assert_int_equal(put(d, s, 0, 8, 0, 4096), 4096);
    assert_int_equal(vs_store_close(s), 0);
    free(buf);
    vs_disk_destroy(d);
}

/* Also with fsync_no_drain, where a lone 4 KiB overwrite goes out linked to
 * its fsync: a failed write cancels the fsync (-ECANCELED), a failed fsync
 * fails the write's ack. And with idle_sync, where that pair is done at the
 * submit point (the idle pair): the same errors, the same way. */
static void test_write_and_fsync_eio(void **st)
{
    (void)st;
    struct vs_store_config nd = {.durability = VS_STORE_DURABLE_ACK, .fsync_no_drain = true};
    struct vs_store_config idle = nd;
    idle.idle_sync = true;
    for (int v = 0; v < 6; v++) {
        int op = v % 2 ? VS_DISK_FSYNC : VS_DISK_WRITE;
        const struct vs_store_config *cfg = v >= 4 ? &idle : v >= 2 ? &nd : NULL;
        struct vs_disk *d = t_sim_format(4 << 20, 1, BS, 256 << 10, false);
        struct vs_store *s = t_open(d, cfg);
        assert_int_equal(put(d, s, 0, 7, 0, BS), (int)BS);
        assert_int_equal(put(d, s, 1, 7, 0, BS), (int)BS);
        assert_int_equal(put(d, s, 3, 7, 0, BS), (int)BS);
        assert_int_equal(put(d, s, 3, 8, 0, 4096), 4096); /* an overwrite: one journal io */
        vs_disk_sim_fail_nth(d, op, -1, 1, 1);
        assert_int_equal(put(d, s, 1, 9, 0, 4096), -EIO);
        assert_int_equal(put(d, s, 2, 9, 0, 4096), -EIO); /* broken: refused at once */
        struct vs_store_stats stats;
        vs_store_get_stats(s, &stats);
        assert_true(stats.broken);
        uint8_t *buf = t_alloc(BS);
        assert_int_equal(get(d, s, 0, buf), (int)BS); /* reads go on */
        assert_int_equal(buf[5], 7);
        assert_true(cfg == NULL ? stats.fsyncs_linked == 0 : stats.fsyncs_linked >= 2);
        /* the overwrite and the failed write went as idle pairs */
        assert_int_equal(d->idle_syncs, cfg == &idle ? 2 : 0);
        assert_int_equal(vs_store_close(s), -EIO);
        s = t_open(d, cfg); /* recovery: the acked writes are there */
        assert_int_equal(get(d, s, 0, buf), (int)BS);
        assert_int_equal(buf[BS - 1], 7);
        assert_int_equal(get(d, s, 3, buf), (int)BS);
        assert_int_equal(buf[4095], 8);
        assert_int_equal(buf[4096], 7);
        assert_int_equal(vs_store_close(s), 0);
        free(buf);
        vs_disk_destroy(d);
    }
}

static void t_write_op(struct t_op *t, int obj, uint8_t *buf)
{
    t_init(t);
    t->op.oid = (struct vs_store_oid){1, (uint64_t)obj};
    t->op.len = 4096;
    t->op.buf = buf;
    t->op.flags = VS_STORE_STABLE;
}

/* The idle pair on the simulated disk: a lone durable overwrite is written
 * and flushed at the submit point and acked durable; not when another io is
 * in flight; a power loss after the pair ran but before the ack keeps it. */
static void test_idle_pair(void **st)
{
    (void)st;
    struct vs_store_config idle = {.durability = VS_STORE_DURABLE_ACK, .fsync_no_drain = true,
                                   .idle_sync = true};
    struct vs_disk *d = t_sim_format(4 << 20, 3, BS, 256 << 10, false);
    struct vs_store *s = t_open(d, &idle);
    assert_int_equal(put(d, s, 0, 7, 0, BS), (int)BS); /* a big write: no pair */
    assert_int_equal(put(d, s, 1, 7, 0, BS), (int)BS);
    assert_int_equal(d->idle_syncs, 0);
    assert_int_equal(put(d, s, 0, 8, 0, 4096), 4096);
    assert_int_equal(d->idle_syncs, 1);
    assert_int_equal(vs_disk_sim_unsynced_writes(d), 0); /* durable when acked */
    /* A read in flight: the write goes the io_uring way (linked, no pair). */
    uint8_t *rbuf = t_alloc(BS), *wbuf = t_alloc(4096);
    memset(wbuf, 9, 4096);
    struct t_op r, w;
    t_init(&r);
    r.op.oid = (struct vs_store_oid){1, 1};
    r.op.version = VS_STORE_READ_LATEST;
    r.op.len = BS;
    r.op.buf = rbuf;
    assert_int_equal(t_start(s, &r, vs_store_read), 0);
    t_write_op(&w, 0, wbuf);
    assert_int_equal(t_start(s, &w, vs_store_write), 0);
    vs_disk_sim_run(d);
    assert_int_equal(r.calls + w.calls, 2);
    assert_int_equal(w.op.result, 4096);
    assert_int_equal(d->idle_syncs, 1);
    /* Power loss after the pair ran, its write's completion in, no ack yet. */
    memset(wbuf, 10, 4096);
    t_write_op(&w, 1, wbuf);
    assert_int_equal(t_start(s, &w, vs_store_write), 0);
    assert_int_equal(vs_disk_sim_step(d, 1), 1);
    assert_int_equal(d->idle_syncs, 2);
    assert_int_equal(w.calls, 0);
    vs_disk_sim_crash(d);
    vs_store_abandon(s);
    s = t_open(d, &idle);
    assert_int_equal(get(d, s, 1, rbuf), (int)BS);
    assert_int_equal(rbuf[0], 10); /* flushed before the crash */
    assert_int_equal(rbuf[4096], 7);
    assert_int_equal(get(d, s, 0, rbuf), (int)BS);
    assert_int_equal(rbuf[0], 9);
    assert_int_equal(vs_store_close(s), 0);
    free(rbuf);
    free(wbuf);
    vs_disk_destroy(d);
}

static void test_open_eio(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(4 << 20, 1, BS, 256 << 10, false);
    for (uint64_t nth = 1; nth < 6; nth++) {
        vs_disk_sim_fail_nth(d, 0, -1, nth, 1);
        struct vs_store *s;
        char err[256];
        int rc = vs_store_open(d, NULL, &s, err, sizeof(err));
        if (rc == 0)
            assert_int_equal(vs_store_close(s), 0);
        else
            assert_true(strlen(err) > 0);
    }
    vs_disk_sim_fail_nth(d, 0, -1, 0, 0);
    vs_disk_destroy(d);
}

static int doubt_obj = -1; /* the write that failed may or may not have happened */
static uint8_t doubt[BS];

/* Writes until the fault fires; returns the number of acked writes. */
static int workload(struct vs_disk *d, struct vs_store *s, uint8_t *acked, bool *fired)
{
    doubt_obj = -1;
    int n = 0;
    for (int i = 0; i < 40; i++) {
        int obj = i % NOBJ;
        bool full = i % 5 == 0;
        int rc = put(d, s, obj, (uint8_t)(i + 1), full ? 0 : (uint32_t)(i % 4) * 4096,
                     full ? BS : 4096);
        if (rc < 0) {
            assert_int_equal(rc, -EIO);
            *fired = true;
            doubt_obj = obj;
            memcpy(doubt, acked + obj * BS, BS);
            memset(doubt + (full ? 0 : (i % 4) * 4096), i + 1, full ? BS : 4096);
            return n;
        }
        if (full) { /* a full-block write sets the whole object */
            memset(acked + obj * BS, i + 1, BS);
        } else {
            memset(acked + obj * BS + (i % 4) * 4096, i + 1, 4096);
        }
        n++;
        if (i % 13 == 12) {
            struct t_op t;
            t_init(&t);
            if (t_run(d, s, &t, vs_store_checkpoint) < 0) {
                *fired = true;
                return n;
            }
        }
    }
    return n;
}

static int broken_calls;
static char broken_why[256];

static void on_broken(void *arg, const char *why)
{
    assert_ptr_equal(arg, &broken_calls);
    broken_calls++;
    snprintf(broken_why, sizeof(broken_why), "%s", why);
}

/* on_broken fires once, exactly when the store broke, whichever io failed:
 * an op's journal or data write, its fsync, or a checkpoint's or a
 * background flush's io that no op waits for (the OSD stops on it). */
static void check_on_broken(struct vs_store *s)
{
    struct vs_store_stats stats;
    vs_store_get_stats(s, &stats);
    assert_int_equal(broken_calls, stats.broken ? 1 : 0);
    if (stats.broken)
        assert_non_null(strstr(broken_why, "the store is read-only until reopened"));
}

static void test_fault_loop(void **st)
{
    (void)st;
    uint8_t *acked = calloc(NOBJ, BS), *buf = t_alloc(BS);
    bool fired = true;
    uint64_t nth, runs_broken = 0;
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK,
                                  .on_broken = on_broken, .on_broken_arg = &broken_calls};
    for (nth = 1; fired && nth < 400; nth++) {
        struct vs_disk *d = t_sim_format(4 << 20, nth, BS, 128 << 10, false);
        struct vs_store *s = t_open(d, &cfg);
        memset(acked, 0, (size_t)NOBJ * BS);
        fired = false;
        broken_calls = 0;
        vs_disk_sim_fail_nth(d, 0, -1, nth, 1);
        workload(d, s, acked, &fired);
        vs_store_run_until_idle(s); /* background ios too */
        check_on_broken(s);
        runs_broken += broken_calls;
        vs_store_close(s);
        assert_true(broken_calls <= 1);
        vs_disk_sim_fail_nth(d, 0, -1, 0, 0);
        s = t_open(d, NULL);
        for (int obj = 0; obj < NOBJ; obj++) {
            int rc = get(d, s, obj, buf);
            bool any = false;
            for (uint32_t i = 0; i < BS; i++)
                any = any || acked[obj * BS + i];
            if (!any && (rc == -ENOENT || obj == doubt_obj))
                continue;
            assert_int_equal(rc, (int)BS);
            if (obj == doubt_obj && memcmp(buf, doubt, BS) == 0)
                continue;
            assert_memory_equal(buf, acked + obj * BS, BS);
        }
        struct vs_store_stats stats;
        vs_store_get_stats(s, &stats);
        assert_int_equal(stats.csum_errors, 0);
        assert_int_equal(vs_store_close(s), 0);
        vs_disk_destroy(d);
    }
    printf("fault loop: %llu runs until the workload completed without a fault, "
           "%llu of them broke the store\n", (unsigned long long)nth - 1,
           (unsigned long long)runs_broken);
    assert_false(fired);
    assert_true(runs_broken > 0);
    free(acked);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_eio),
        cmocka_unit_test(test_write_and_fsync_eio),
        cmocka_unit_test(test_idle_pair),
        cmocka_unit_test(test_open_eio),
        cmocka_unit_test(test_fault_loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
