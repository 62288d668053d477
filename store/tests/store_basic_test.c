/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Targeted store tests: format refusals and bad input, the superblock and
 * layout checks, request validation (-EINVAL), versions, unstable versions
 * across reopen, back-pressure on a full journal, ENOSPC, split devices, the
 * checkpoint's gathered in-place writes and its io depth, records of several
 * writes (and format version 1, which keeps one write per record).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "store_test_util.h"

#include "store_int.h" /* store__ck_depth */
#include "vs_byte.h"

static int wr(struct vs_disk *d, struct vs_store *s, uint64_t stripe, uint64_t version,
              uint32_t off, uint32_t len, uint8_t fill, bool stable)
{
    uint8_t *buf = t_alloc(len);
    memset(buf, fill, len);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, stripe};
    t.op.version = version;
    t.op.offset = off;
    t.op.len = len;
    t.op.buf = buf;
    t.op.flags = stable ? VS_STORE_STABLE : 0;
    int rc = t_run(d, s, &t, vs_store_write);
    free(buf);
    return rc;
}

static uint64_t latest(struct vs_store *s, uint64_t stripe, uint64_t which)
{
    uint64_t v = 0;
    if (vs_store_stat(s, (struct vs_store_oid){1, stripe}, which, &v, NULL) < 0)
        return 0;
    return v;
}

static void test_unstable_survives_reopen(void **st)
{
    (void)st;
    for (int lazy = 0; lazy < 2; lazy++) {
        struct vs_disk *d = t_sim_format(16 << 20, 1, 128 << 10, 1 << 20, false);
        struct vs_store_config cfg = {.durability = lazy ? VS_STORE_LAZY : VS_STORE_DURABLE_ACK};
        struct vs_store *s = t_open(d, &cfg);
        assert_int_equal(wr(d, s, 0, 0, 0, 128 << 10, 1, true), 128 << 10);
        assert_int_equal(wr(d, s, 0, 0, 4096, 4096, 2, false), 4096);
        assert_int_equal(latest(s, 0, VS_STORE_READ_LATEST), 2);
        assert_int_equal(latest(s, 0, VS_STORE_READ_STABLE), 1);
        assert_int_equal(vs_store_close(s), 0);
        s = t_open(d, &cfg);
        assert_int_equal(latest(s, 0, VS_STORE_READ_LATEST), 2);
        assert_int_equal(latest(s, 0, VS_STORE_READ_STABLE), 1);
        assert_int_equal(vs_store_close(s), 0);
        s = t_open(d, &cfg);
        assert_int_equal(latest(s, 0, VS_STORE_READ_LATEST), 2);
        assert_int_equal(vs_store_close(s), 0);
        vs_disk_destroy(d);
    }
}

static void test_bad_requests(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 1, 128 << 10, 1 << 20, false);
    struct vs_store *s = t_open(d, NULL);
    assert_int_equal(wr(d, s, 0, 0, 4096, 4096, 1, true), 4096);
    assert_int_equal(wr(d, s, 0, 0, 100, 4096, 1, true), -EINVAL);
    assert_int_equal(wr(d, s, 0, 0, 0, 100, 1, true), -EINVAL);
    assert_int_equal(wr(d, s, 0, 0, 128 << 10, 4096, 1, true), -EINVAL);
    assert_int_equal(wr(d, s, 0, 1, 0, 4096, 1, true), VS_EVERSIONCONFLICT);
    assert_int_equal(wr(d, s, 0, UINT64_MAX, 0, 4096, 1, true), -EINVAL);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, 0};
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = 4096;
    t.op.offset = 124 << 10;
    t.op.buf = (void *)8; /* misaligned */
    assert_int_equal(t_start(s, &t, vs_store_read), -EINVAL);
    t.op.buf = NULL;
    t.op.offset = 128 << 10;
    t.op.len = 0;
    t.op.bitmap = NULL;
    assert_int_equal(t_start(s, &t, vs_store_read), 0);
    assert_int_equal(vs_store_run_until_idle(s), 0);
    assert_int_equal(t.calls, 1);
    assert_int_equal(t.op.out_version, 1);
    t_init(&t);
    t.op.oid = (struct vs_store_oid){2, 0};
    t.op.version = VS_STORE_READ_LATEST;
    assert_int_equal(t_start(s, &t, vs_store_read), -ENOENT);
    struct vs_store_list_entry *le;
    assert_int_equal(vs_store_list(s, 0, 4, 4, 1 << 20, &le), -EINVAL);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

static void test_format_refusals(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 1, 128 << 10, 1 << 20, false);
    struct vs_store_format_opts fo;
    memset(&fo, 0, sizeof(fo));
    char err[256];
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), VS_EBADFORMAT);
    assert_non_null(strstr(err, "vstor"));
    assert_non_null(strstr(err, "--force"));
    fo.block_size = 3000;
    fo.force = true;
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "block_size"));
    fo.block_size = 0;
    fo.csum_block_size = 8192;
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), -EINVAL);
    vs_disk_destroy(d);
    /* an ext4 signature */
    uint64_t size = 8 << 20;
    assert_int_equal(vs_disk_sim_create(1, &size, 1, &d), 0);
    vs_disk_sim_durable(d, 0)[1080] = 0x53;
    vs_disk_sim_durable(d, 0)[1081] = 0xef;
    memset(&fo, 0, sizeof(fo));
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), VS_EBADFORMAT);
    assert_non_null(strstr(err, "ext2/3/4"));
    assert_int_equal(vs_disk_sim_durable(d, 0)[0], 0); /* nothing written */
    /* too small */
    vs_disk_destroy(d);
    size = 64 << 10;
    assert_int_equal(vs_disk_sim_create(1, &size, 1, &d), 0);
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), -ENOSPC);
    assert_non_null(strstr(err, "too small"));
    vs_disk_destroy(d);
}

static void test_open_refusals(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 1, 128 << 10, 1 << 20, false);
    char err[256];
    struct vs_store *s;
    struct vs_store_config cfg = {.expect_cluster_id = 8};
    assert_int_equal(vs_store_open(d, &cfg, &s, err, sizeof(err)), VS_EWRONGCLUSTER);
    assert_non_null(strstr(err, "cluster_id"));
    /* a newer format version: nothing may be written */
    uint8_t *img = vs_disk_sim_durable(d, 0);
    img[8] = 9;
    assert_int_equal(vs_store_open(d, NULL, &s, err, sizeof(err)), VS_EFORMATVERSION);
    assert_non_null(strstr(err, "sim0"));
    assert_non_null(strstr(err, "format version"));
    img[8] = 1;
    img[100] ^= 1; /* superblock crc */
    assert_int_equal(vs_store_open(d, NULL, &s, err, sizeof(err)), VS_ECHECKSUM);
    img[100] ^= 1;
    vs_disk_destroy(d);
    /* foreign device */
    uint64_t size = 8 << 20;
    assert_int_equal(vs_disk_sim_create(1, &size, 1, &d), 0);
    assert_int_equal(vs_store_open(d, NULL, &s, err, sizeof(err)), VS_EBADFORMAT);
    assert_non_null(strstr(err, "sim0"));
    vs_disk_destroy(d);
}

/* Three devices (meta, journal, data); a device swapped for another store's
 * is refused by uuid. */
static void test_split_devices(void **st)
{
    (void)st;
    uint64_t sizes[3] = {2 << 20, 2 << 20, 16 << 20};
    struct vs_disk *d;
    assert_int_equal(vs_disk_sim_create(3, sizes, 1, &d), 0);
    struct vs_store_format_opts fo;
    memset(&fo, 0, sizeof(fo));
    fo.layout.journal_dev = 1;
    fo.layout.data_dev = 2;
    fo.layout.journal_size = 1 << 20;
    char err[256];
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), 0);
    struct vs_store *s = t_open(d, NULL);
    for (int i = 0; i < 40; i++)
        assert_int_equal(wr(d, s, (uint64_t)i << 17, 0, 4096 * (uint32_t)(i % 8), 8192, 3, true),
                         8192);
    assert_int_equal(vs_store_close(s), 0);
    s = t_open(d, NULL);
    assert_int_equal(latest(s, 5 << 17, VS_STORE_READ_LATEST), 1);
    assert_int_equal(vs_store_close(s), 0);
    memset(vs_disk_sim_durable(d, 1), 0, 4096);
    assert_int_equal(vs_store_open(d, NULL, &s, err, sizeof(err)), VS_EBADFORMAT);
    assert_non_null(strstr(err, "sim1"));
    vs_disk_destroy(d);
}

/* A journal far smaller than the data written: writes wait, never fail. */
static void test_backpressure_and_enospc(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(4 << 20, 1, 16 << 10, 64 << 10, false);
    struct vs_store *s = t_open(d, NULL);
    enum { N = 64 };
    struct t_op t[N];
    uint8_t *buf = t_alloc(16 << 10);
    for (int i = 0; i < N; i++) {
        t_init(&t[i]);
        t[i].op.oid = (struct vs_store_oid){1, (uint64_t)(i % 8)};
        t[i].op.offset = 4096;
        t[i].op.len = 4096;
        t[i].op.buf = buf;
        t[i].op.flags = VS_STORE_STABLE;
        assert_int_equal(t_start(s, &t[i], vs_store_write), 0);
    }
    assert_int_equal(vs_store_run_until_idle(s), 0);
    for (int i = 0; i < N; i++) {
        if (t[i].op.result != 4096)
            fprintf(stderr, "op %d: calls %d result %d\n", i, t[i].calls, t[i].op.result);
        assert_int_equal(t[i].op.result, 4096);
    }
    struct vs_store_stats stats;
    vs_store_get_stats(s, &stats);
    assert_true(stats.journal_waits > 0);
    assert_true(stats.checkpoints > 0);
    /* fill every block: then -ENOSPC, a real space error */
    uint64_t blocks = stats.block_count, i;
    int rc = 0;
    for (i = 0; i < blocks + 8 && rc >= 0; i++)
        rc = wr(d, s, 100 + i, 0, 0, 16 << 10, 5, true);
    assert_int_equal(rc, -ENOSPC);
    /* A full store still takes overwrites of whole objects: they wait for the
     * checkpoint that frees the blocks they replace, never fail. */
    uint64_t filled = i - 1;
    for (int round = 0; round < 2; round++)
        for (uint64_t k = 0; k < filled; k++)
            assert_int_equal(wr(d, s, 100 + k, 0, 0, 16 << 10, 6, true), 16 << 10);
    free(buf);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

static void rd_check(struct vs_disk *d, struct vs_store *s, const uint8_t *want, uint32_t len)
{
    uint8_t *buf = t_alloc(len);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, 0};
    t.op.version = VS_STORE_READ_LATEST;
    t.op.len = len;
    t.op.buf = buf;
    assert_int_equal(t_run(d, s, &t, vs_store_read), (int)len);
    assert_memory_equal(buf, want, len);
    free(buf);
}

/* Object 1 reads want (128 KiB) before and after a clean close and reopen;
 * then the disk and want are freed. */
static void check_close_reopen(struct vs_disk *d, struct vs_store *s,
                               const struct vs_store_config *cfg, uint8_t *want)
{
    rd_check(d, s, want, 128 << 10);
    assert_int_equal(vs_store_close(s), 0);
    s = t_open(d, cfg);
    rd_check(d, s, want, 128 << 10);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
    free(want);
}

/* A checkpoint writes side-by-side sectors of different small writes as one
 * in-place io (gathered through its arena slot of 8 sectors), and what it
 * wrote reads back, before and after a reopen from the data area alone. */
static void test_flush_gathers_side_by_side_writes(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 2, 128 << 10, 1 << 20, false);
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK};
    struct vs_store *s = t_open(d, &cfg);
    uint8_t *want = t_alloc(128 << 10);
    memset(want, 0xEE, 128 << 10);
    assert_int_equal(wr(d, s, 0, 0, 0, 128 << 10, 0xEE, true), 128 << 10);
    struct t_op t;
    t_init(&t);
    assert_int_equal(t_run(d, s, &t, vs_store_checkpoint), 0); /* the big write is the base */
    /* sectors 0, 1, 2 one by one; 10-11 in one write, then 12; 20..31 one by one */
    static const uint32_t sec[] = {0, 1, 2, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};
    for (unsigned i = 0; i < sizeof(sec) / sizeof(sec[0]); i++) {
        assert_int_equal(wr(d, s, 0, 0, sec[i] * 4096, 4096, (uint8_t)(i + 1), true), 4096);
        memset(want + sec[i] * 4096, i + 1, 4096);
    }
    assert_int_equal(wr(d, s, 0, 0, 10 * 4096, 8192, 0x55, true), 8192);
    memset(want + 10 * 4096, 0x55, 8192);
    struct vs_store_stats a, b;
    vs_store_get_stats(s, &a);
    t_init(&t);
    assert_int_equal(t_run(d, s, &t, vs_store_checkpoint), 0);
    vs_store_get_stats(s, &b);
    /* [0,3) and [10,13) one io each, [20,32) 8 + 4 sectors: 4 ios for 18 sectors */
    assert_int_equal(b.io_count[VS_STORE_IO_FLUSH] - a.io_count[VS_STORE_IO_FLUSH], 4);
    assert_int_equal(b.io_bytes[VS_STORE_IO_FLUSH] - a.io_bytes[VS_STORE_IO_FLUSH], 18 * 4096);
    assert_int_equal(b.flush_merged - a.flush_merged, 2 + 2 + 7 + 3);
    assert_int_equal(b.entries_dirty, 0);
    check_close_reopen(d, s, &cfg, want);
}

/* What vs_store_dump_journal listed: every item of every record. */
struct t_dump {
    const struct vs_store *s;
    uint32_t most, records, small, big;
    uint64_t last_seq, last_version, last_data, most_seq;
};

/* Checks each item against what several_writes_per_record wrote: one big
 * write (v1), then 4 KiB small writes of v2.. at (v - 2) % 32, bytes v - 1,
 * each one's data in the journal right after its record's header sector or
 * the previous item's data. */
static void dump_item(void *ctx, const struct vs_store_jrec *r)
{
    struct t_dump *t = ctx;
    assert_string_equal(r->type, "write");
    assert_true(r->item < r->items);
    assert_int_equal(r->item == 0, r->seq != t->last_seq);
    t->records += r->item == 0;
    if (r->items > t->most) {
        t->most = r->items;
        t->most_seq = r->seq;
    }
    t->last_seq = r->seq;
    assert_int_equal(r->oid.inode, 1);
    if (r->flags & 2) {
        t->big++;
        assert_int_equal(r->version, 1);
        assert_int_not_equal(r->block, UINT32_MAX);
        assert_true(r->data_pos == UINT64_MAX);
        return;
    }
    t->small++;
    assert_int_equal(r->version, t->last_version + 1);
    t->last_version = r->version;
    assert_int_equal(r->offset, (r->version - 2) % 32 * 4096);
    assert_int_equal(r->len, 4096);
    assert_int_equal(r->block, UINT32_MAX);
    assert_true(r->data_pos == (r->item == 0 ? r->pos + 4096 : t->last_data + 4096));
    t->last_data = r->data_pos;
    assert_true(r->data_pos + 4096 <= t->s->jsize);
    assert_int_equal(t->s->jbuf[r->data_pos], (uint8_t)(r->version - 1));
    assert_int_equal(t->s->jbuf[r->data_pos + 4095], (uint8_t)(r->version - 1));
}

static void dump_count(void *ctx, const struct vs_store_jrec *r)
{
    (void)r;
    (*(uint32_t *)ctx)++;
}

/* The journal listing stops at a damaged record with its seq: header bytes
 * (crc fails), then items that do not add up (crc made valid again). */
static void dump_damaged(struct vs_store *s, const struct t_dump *t)
{
    struct vs_store_jrec bad;
    uint64_t seq = t->most_seq, pos = (uint64_t)s->rec_pos[seq % s->rec_cap] * SECTOR;
    uint8_t *p = s->jbuf + pos, save[SECTOR];
    memcpy(save, p, SECTOR);
    uint32_t n = 0;
    p[64 + 44 * 5 + 16] ^= 1; /* item 5's version */
    assert_int_equal(vs_store_dump_journal(s, dump_count, &n, &bad), VS_ECHECKSUM);
    assert_int_equal(bad.seq, seq);
    assert_int_equal(bad.pos, pos);
    uint32_t before = n; /* the items of the records before it: the big write, the lone one */
    assert_int_equal(before, 2);
    /* item 5 of a record of several writes claims a big write: the walker refuses it */
    p[64 + 44 * 5 + 16] ^= 1;
    vs_put_u32(p + 64 + 44 * 5 + 36, vs_get_u32(p + 64 + 44 * 5 + 36) | 2);
    store__rec_seal(p, SECTOR);
    n = 0;
    assert_int_equal(vs_store_dump_journal(s, dump_count, &n, &bad), VS_ECORRUPT);
    assert_int_equal(bad.seq, seq);
    assert_int_equal(n, before + 5); /* items 0..4 listed, then the listing ends */
    /* a record whose size runs past the journal's end */
    memcpy(p, save, SECTOR);
    vs_put_u32(p + 36, (uint32_t)(s->jsize - pos));
    store__rec_seal(p, SECTOR);
    assert_int_equal(vs_store_dump_journal(s, dump_count, &n, &bad), VS_ECORRUPT);
    memcpy(p, save, SECTOR);
    n = 0;
    long listed = vs_store_dump_journal(s, dump_count, &n, NULL);
    assert_int_equal(listed, t->records);
    assert_int_equal(n, t->small + t->big);
}

/* The journal lists every item of the big write and the n small writes
 * (dump_item), in records of several writes from format 2 on; returns the
 * most items of one record. */
static uint32_t dump_check(struct vs_store *s, uint32_t version, uint32_t n)
{
    struct t_dump td = {.s = s, .last_seq = UINT64_MAX, .last_version = 1};
    long listed = vs_store_dump_journal(s, dump_item, &td, NULL);
    assert_int_equal(listed, td.records);
    assert_int_equal(td.big, 1);
    assert_int_equal(td.small, n);
    assert_int_equal(td.records, version >= 2 ? 5 : n + 1);
    if (version >= 2)
        dump_damaged(s, &td);
    return td.most;
}

/* 100 small writes to one block started in one loop turn, then 10 more in
 * the next turn while those are in flight, on a store of format version (2:
 * the first goes alone, the other 99 in records of several writes, 91 items
 * filling a header sector, then 8; the next turn's 10 in one record, opened
 * with a kick; 1: one record each, as older binaries read). They read back
 * from the journal, after a reopen (replay of the records' items) and after
 * a checkpoint (in place). */
static void several_writes_per_record(uint32_t version)
{
    uint64_t size = 32 << 20;
    struct vs_disk *d;
    assert_int_equal(vs_disk_sim_create(1, &size, 5, &d), 0);
    struct vs_store_format_opts fo = {.block_size = 128 << 10, .format_version = version};
    fo.layout.journal_size = 4 << 20;
    char err[256];
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), 0);
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK};
    struct vs_store *s = t_open(d, &cfg);
    struct vs_store_info info;
    vs_store_get_info(s, &info);
    assert_int_equal(info.format_version, version);
    uint8_t *want = t_alloc(128 << 10);
    assert_int_equal(wr(d, s, 0, 0, 0, 128 << 10, 0xEE, true), 128 << 10);
    memset(want, 0xEE, 128 << 10);
    enum { N = 110 };
    struct t_op t[N];
    uint8_t *bufs[N];
    struct vs_store_stats a, b;
    vs_store_get_stats(s, &a);
    for (int i = 0; i < N; i++) {
        bufs[i] = t_alloc(4096);
        memset(bufs[i], i + 1, 4096);
        memset(want + (i % 32) * 4096, i + 1, 4096);
        t_init(&t[i]);
        t[i].op.oid = (struct vs_store_oid){1, 0};
        t[i].op.offset = (uint32_t)(i % 32) * 4096;
        t[i].op.len = 4096;
        t[i].op.buf = bufs[i];
        t[i].op.flags = VS_STORE_STABLE;
        assert_int_equal(t_start(s, &t[i], vs_store_write), 0);
        if (i == 99) /* the hook seals; one io completes, the others stay in flight */
            assert_int_equal(vs_disk_sim_step(d, 1), 1);
    }
    assert_int_equal(vs_store_run_until_idle(s), 0);
    vs_store_get_stats(s, &b);
    for (int i = 0; i < N; i++) {
        assert_int_equal(t[i].calls, 1);
        assert_int_equal(t[i].op.result, 4096);
        assert_int_equal(t[i].op.out_version, 2 + i);
        free(bufs[i]);
    }
    uint32_t most = dump_check(s, version, N);
    assert_int_equal(b.journal_records - a.journal_records, version >= 2 ? 4 : N);
    assert_int_equal(b.writes_batched - a.writes_batched, version >= 2 ? N - 1 : 0);
    /* the same ios either way: records of one turn went as one write before */
    assert_int_equal(b.io_count[VS_STORE_IO_JOURNAL] - a.io_count[VS_STORE_IO_JOURNAL], 4);
    assert_int_equal(most, version >= 2 ? 91 : 1);
    /* 4 KiB of header per record: 4 + 110 sectors instead of 220 */
    assert_int_equal(b.io_bytes[VS_STORE_IO_JOURNAL] - a.io_bytes[VS_STORE_IO_JOURNAL],
                     (version >= 2 ? 4 + N : 2 * N) * 4096);
    rd_check(d, s, want, 128 << 10);
    vs_disk_sim_crash(d); /* all acknowledged, so durable: nothing is lost */
    vs_store_abandon(s);  /* no closing checkpoint: the reopen replays the records */
    s = t_open(d, &cfg);
    vs_store_get_stats(s, &b);
    assert_int_equal(b.journal_replayed, version >= 2 ? 5 : N + 1);
    rd_check(d, s, want, 128 << 10);
    t_init(&t[0]);
    assert_int_equal(t_run(d, s, &t[0], vs_store_checkpoint), 0);
    vs_store_get_stats(s, &b);
    assert_int_equal(b.entries_dirty, 0);
    check_close_reopen(d, s, &cfg, want);
}

/* Stabilize, rollback and delete records: one listed item per object version. */
#define T_DUMP_MAX 16
struct t_dump_all {
    unsigned n;
    struct vs_store_jrec it[T_DUMP_MAX];
};

static void dump_keep(void *ctx, const struct vs_store_jrec *r)
{
    struct t_dump_all *t = ctx;
    assert_true(t->n < T_DUMP_MAX);
    t->it[t->n++] = *r;
}

static void dump_torn(struct vs_disk *d, struct vs_store *s, uint64_t rb_pos);

static void t_versions(struct vs_disk *d, struct vs_store *s, const struct vs_store_obj_ver *ov,
                       uint32_t n, int (*fn)(struct vs_store *, struct vs_store_op *))
{
    struct t_op t;
    t_init(&t);
    t.op.list = ov;
    t.op.list_count = n;
    assert_int_equal(t_run(d, s, &t, fn), 0);
}

static void test_dump_journal_versions(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 3, 128 << 10, 1 << 20, false);
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK};
    struct vs_store *s = t_open(d, &cfg);
    for (uint64_t i = 0; i < 3; i++)
        assert_int_equal(wr(d, s, i, 0, 0, 8192, 1, false), 8192);
    assert_int_equal(wr(d, s, 2, 0, 0, 4096, 2, false), 4096);
    struct vs_store_obj_ver ov[3] = {{{1, 0}, 1}, {{1, 1}, 1}, {{1, 2}, 1}};
    t_versions(d, s, ov, 3, vs_store_stabilize);
    struct vs_store_obj_ver rb = {{1, 2}, 1};
    t_versions(d, s, &rb, 1, vs_store_rollback);
    struct t_op t;
    t_init(&t);
    t.op.oid = (struct vs_store_oid){1, 1};
    assert_int_equal(t_run(d, s, &t, vs_store_delete), 0);
    struct t_dump_all a = {0};
    assert_int_equal(vs_store_dump_journal(s, dump_keep, &a, NULL), 7);
    assert_int_equal(a.n, 4 + 3 + 1 + 1);
    for (unsigned i = 0; i < 4; i++) {
        assert_string_equal(a.it[i].type, "write");
        assert_int_equal(a.it[i].len, i < 3 ? 8192 : 4096);
        /* first writes are big (a fresh block), the overwrite is small */
        assert_int_equal(a.it[i].flags, i < 3 ? 2 : 0);
        assert_int_equal(a.it[i].block != UINT32_MAX, i < 3);
        assert_true(a.it[i].data_pos == (i < 3 ? UINT64_MAX : a.it[i].pos + 4096));
    }
    for (unsigned i = 0; i < 3; i++) {
        assert_string_equal(a.it[4 + i].type, "stabilize");
        assert_int_equal(a.it[4 + i].items, 3);
        assert_int_equal(a.it[4 + i].item, i);
        assert_int_equal(a.it[4 + i].seq, a.it[4].seq);
        assert_int_equal(a.it[4 + i].oid.stripe, i);
        assert_int_equal(a.it[4 + i].version, 1);
        assert_true(a.it[4 + i].data_pos == UINT64_MAX && a.it[4 + i].block == UINT32_MAX);
    }
    assert_string_equal(a.it[7].type, "rollback");
    assert_int_equal(a.it[7].oid.stripe, 2);
    assert_string_equal(a.it[8].type, "delete");
    assert_int_equal(a.it[8].oid.stripe, 1);
    assert_int_equal(a.it[8].version, 2);
    uint64_t seq, pos = 1;
    assert_int_equal(vs_store_journal_end(s, &seq, &pos), 0);
    assert_int_equal(seq, a.it[8].seq + 1); /* zeros follow the head */
    dump_torn(d, s, a.it[7].pos);
}

/* A damaged record on disk (the rollback, at rb_pos) ends the journal at
 * replay: a read-only open lists the 5 records before it, and
 * vs_store_journal_end says why the next one was refused, and where. */
static void dump_torn(struct vs_disk *d, struct vs_store *s, uint64_t rb_pos)
{
    struct vs_store_info info;
    vs_store_get_info(s, &info);
    vs_disk_sim_crash(d); /* all acknowledged, so durable */
    vs_store_abandon(s);  /* no closing checkpoint: the records stay live */
    uint8_t *img = vs_disk_sim_durable(d, 0);
    img[info.layout.journal_offset + rb_pos + 64 + 8] ^= 0x10; /* its item's stripe */
    struct vs_store_config ro = {.readonly = true};
    s = t_open(d, &ro);
    struct t_dump_all a = {0};
    assert_int_equal(vs_store_dump_journal(s, dump_keep, &a, NULL), 5);
    assert_int_equal(a.n, 4 + 3);
    uint64_t seq, pos = 0;
    assert_int_equal(vs_store_journal_end(s, &seq, &pos), VS_ECHECKSUM);
    assert_true(pos == rb_pos);
    assert_int_equal(seq, a.it[6].seq + 1);
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
}

static void test_records_of_several_writes(void **st)
{
    (void)st;
    several_writes_per_record(VS_STORE_FORMAT_VERSION);
    several_writes_per_record(1);
    /* a version this build can not write */
    uint64_t size = 16 << 20;
    struct vs_disk *d;
    assert_int_equal(vs_disk_sim_create(1, &size, 5, &d), 0);
    struct vs_store_format_opts fo = {.format_version = VS_STORE_FORMAT_VERSION + 1};
    char err[256];
    assert_int_equal(vs_store_format(d, &fo, err, sizeof(err)), -EINVAL);
    assert_non_null(strstr(err, "format_version"));
    vs_disk_destroy(d);
}

/* The checkpoint keeps CK_IOS_FG ios in flight while writes run and the
 * journal has room, and all CK_IOS when the store is idle, when a caller
 * waits for the checkpoint, or when the journal is 3/4 full (threshold 50%). */
static void test_checkpoint_depth_follows_writes(void **st)
{
    (void)st;
    struct vs_disk *d = t_sim_format(16 << 20, 3, 128 << 10, 1 << 20, false);
    struct vs_store_config cfg = {.durability = VS_STORE_DURABLE_ACK};
    struct vs_store *s = t_open(d, &cfg);
    assert_int_equal(store__ck_depth(s), CK_IOS); /* idle */
    uint8_t *buf = t_alloc(4096);
    struct t_op w;
    t_init(&w);
    w.op.oid = (struct vs_store_oid){1, 0};
    w.op.len = 4096;
    w.op.buf = buf;
    w.op.flags = VS_STORE_STABLE;
    assert_int_equal(t_start(s, &w, vs_store_write), 0);
    assert_int_equal(store__ck_depth(s), CK_IOS_FG); /* a write in flight */
    uint64_t jused = s->jused;
    s->jused = s->jsize * 3 / 4;
    assert_int_equal(store__ck_depth(s), CK_IOS); /* space runs short */
    s->jused = s->jsize * 3 / 4 - 4096;
    assert_int_equal(store__ck_depth(s), CK_IOS_FG);
    s->jused = jused;
    struct t_op c;
    t_init(&c);
    assert_int_equal(t_start(s, &c, vs_store_checkpoint), 0);
    assert_int_equal(store__ck_depth(s), CK_IOS); /* someone waits for it */
    while (!w.calls || !c.calls)
        assert_true(vs_disk_run_once(d) > 0);
    assert_int_equal(w.op.result, 4096);
    assert_int_equal(c.op.result, 0);
    assert_int_equal(store__ck_depth(s), CK_IOS); /* idle again */
    assert_int_equal(vs_store_close(s), 0);
    vs_disk_destroy(d);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unstable_survives_reopen),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_format_refusals),
        cmocka_unit_test(test_open_refusals),
        cmocka_unit_test(test_split_devices),
        cmocka_unit_test(test_backpressure_and_enospc),
        cmocka_unit_test(test_flush_gathers_side_by_side_writes),
        cmocka_unit_test(test_checkpoint_depth_follows_writes),
        cmocka_unit_test(test_records_of_several_writes),
        cmocka_unit_test(test_dump_journal_versions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
