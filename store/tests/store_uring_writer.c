/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_uring_writer -- a helper for integration/test_store_restart.py and a
 * unit test of the io_uring disk:
 *
 *   store_uring_writer write FILE      format FILE, then write objects forever
 *                                      (8 in flight, durable on ack) and print
 *                                      "ack OBJ VERSION" after each ack
 *   store_uring_writer verify FILE     read "ack" lines on stdin, reopen the
 *                                      store (recovery) and check that every
 *                                      object is at an acked-or-newer version
 *                                      whose data is exactly that version's
 *   store_uring_writer selftest DIR    write, close, reopen, verify (ctest)
 *
 * Data of (obj, version) is a pattern derived from both, so any version read
 * back can be checked without remembering it.
 */
#include "vs_store.h"

#include "vs_err.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NOBJ 64
#define LEN (16u << 10)
#define DEPTH 8

struct w {
    struct vs_store_op op;
    int obj, busy;
    uint8_t *buf;
};

static struct vs_ring *ring;
static struct vs_disk *disk;
static struct vs_store *store;
static int busy[NOBJ];
static int depth = DEPTH;                     /* writes kept in flight */
static const struct vs_store_config *open_cfg; /* NULL: the defaults */
static long acks;
static bool print_acks;
static bool fixed_bufs; /* verify() reads into a registered buffer (READ_FIXED) */

static void pattern(uint8_t *p, int obj, uint64_t version, uint32_t len)
{
    uint64_t x = (uint64_t)obj * 0x9E3779B97F4A7C15ull ^ version * 0xC2B2AE3D27D4EB4Full;
    for (uint32_t i = 0; i < len; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(p + i, &x, 8);
    }
}

static int open_all(const char *file, bool format)
{
    char err[256];
    const char *paths[1] = {file};
    if (vs_ring_create(64, &ring, err, sizeof(err)) < 0 ||
        vs_disk_uring_open(ring, paths, 1, true, false, &disk, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct vs_store_format_opts fo = {.block_size = 128u << 10, .force = true};
    fo.layout.journal_size = 4u << 20;
    if (format && vs_store_format(disk, &fo, err, sizeof(err)) < 0) {
        fprintf(stderr, "format: %s\n", err);
        return 1;
    }
    if (vs_store_open(disk, open_cfg, &store, err, sizeof(err)) < 0) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    return 0;
}

static uint64_t versions[NOBJ];

static void write_cb(struct vs_store_op *op)
{
    struct w *w = (struct w *)op;
    if (op->result < 0) {
        fprintf(stderr, "write: %s\n", vs_strerror(op->result));
        exit(1);
    }
    if (print_acks) { /* the ack is durable: only now may the test count on it */
        printf("ack %d %llu\n", w->obj, (unsigned long long)op->out_version);
        fflush(stdout);
    }
    busy[w->obj] = 0;
    w->busy = 0;
    acks++;
}

static void start(struct w *w, unsigned *seed)
{
    int obj;
    do
        obj = (int)(rand_r(seed) % NOBJ);
    while (busy[obj]);
    busy[obj] = 1;
    w->obj = obj;
    w->busy = 1;
    uint64_t v = ++versions[obj];
    memset(&w->op, 0, sizeof(w->op));
    w->op.oid = (struct vs_store_oid){1, (uint64_t)obj << 17};
    w->op.version = v;
    w->op.len = LEN;
    w->op.offset = 0;
    w->op.buf = w->buf;
    w->op.flags = VS_STORE_STABLE;
    w->op.cb = write_cb;
    pattern(w->buf, obj, v, LEN);
    if (vs_store_write(store, &w->op) < 0)
        exit(1);
}

static int do_write(long limit)
{
    static struct w ws[DEPTH];
    unsigned seed = (unsigned)getpid();
    for (int i = 0; i < DEPTH; i++)
        if (posix_memalign((void **)&ws[i].buf, 4096, LEN))
            return 1;
    while (limit < 0 || acks < limit) {
        for (int i = 0; i < depth; i++)
            if (!ws[i].busy)
                start(&ws[i], &seed);
        if (vs_ring_run_once(ring) < 0)
            return 1;
    }
    vs_store_run_until_idle(store);
    for (int i = 0; i < DEPTH; i++)
        free(ws[i].buf);
    return 0;
}

static void read_cb(struct vs_store_op *op)
{
    *(int *)op->ctx = 1;
}

/* Every object: version >= the newest acked, data = that version's pattern. */
static int verify(const uint64_t *acked)
{
    uint8_t *buf, *want;
    if (posix_memalign((void **)&buf, 4096, LEN) || posix_memalign((void **)&want, 4096, LEN))
        return 1;
    if (fixed_bufs && vs_ring_register_buffer(ring, buf, LEN) < 0)
        return 1;
    int bad = 0;
    for (int obj = 0; obj < NOBJ; obj++) {
        int done = 0;
        struct vs_store_op op = {.oid = {1, (uint64_t)obj << 17},
                                 .version = VS_STORE_READ_LATEST, .len = LEN, .buf = buf,
                                 .cb = read_cb, .ctx = &done};
        int rc = vs_store_read(store, &op);
        while (rc == 0 && !done)
            vs_ring_run_once(ring);
        rc = rc < 0 ? rc : op.result;
        if (rc == -ENOENT && acked[obj] == 0)
            continue;
        pattern(want, obj, op.out_version, LEN);
        if (rc < 0 || op.out_version < acked[obj] || memcmp(buf, want, LEN) != 0) {
            fprintf(stderr, "object %d: rc %d version %llu, acked %llu%s\n", obj, rc,
                    (unsigned long long)op.out_version, (unsigned long long)acked[obj],
                    rc >= 0 && memcmp(buf, want, LEN) ? ", data differs" : "");
            bad++;
        }
    }
    if (fixed_bufs)
        vs_ring_unregister_buffer(ring, buf);
    free(buf);
    free(want);
    return bad;
}

static void count_cb(struct vs_store_op *op)
{
    (*(int *)op->ctx)--;
}

/* A checkpoint while reads fill the whole ring: its ios wait in the store's
 * retry queue, and the read completions alone must hand them to the ring
 * (once they did not, and the store stalled with nothing in flight). */
static int full_ring(void)
{
    static struct vs_store_op ops[NOBJ + 1];
    uint8_t *bufs;
    if (posix_memalign((void **)&bufs, 4096, (size_t)NOBJ * LEN))
        return 1;
    /* Registered, as the OSD's buffers: the reads go as READ_FIXED. */
    if (vs_ring_register_buffer(ring, bufs, (size_t)NOBJ * LEN) < 0)
        return 1;
    int pending = 0;
    for (int obj = 0; obj < NOBJ; obj++) {
        ops[obj] = (struct vs_store_op){.oid = {1, (uint64_t)obj << 17},
                                        .version = VS_STORE_READ_LATEST, .len = LEN,
                                        .buf = bufs + (size_t)obj * LEN, .cb = count_cb,
                                        .ctx = &pending};
        pending += vs_store_read(store, &ops[obj]) == 0;
    }
    ops[NOBJ] = (struct vs_store_op){.cb = count_cb, .ctx = &pending};
    pending += vs_store_checkpoint(store, &ops[NOBJ]) == 0;
    long idle = 0;
    while (pending > 0 && idle < 100000)
        idle += vs_ring_run_once(ring) == 0 && vs_ring_inflight(ring) == 0;
    vs_ring_unregister_buffer(ring, bufs);
    free(bufs);
    if (pending > 0)
        fprintf(stderr, "full ring: %d ops stalled with nothing in flight\n", pending);
    return pending > 0;
}

static void close_all(void)
{
    vs_store_close(store);
    vs_disk_destroy(disk);
    vs_ring_destroy(ring);
}

static void flag_cb(struct vs_store_op *op)
{
    *(int *)op->ctx = 1;
}

/* A write error on a real file, from the idle pair (pwrite in this thread) or
 * from io_uring: RLIMIT_FSIZE below the journal makes every write there fail
 * with EFBIG (SIGXFSZ ignored). Either way the write fails with -EIO, the
 * store is broken, and the next write is refused at once. */
static int write_error(const char *path, const struct vs_store_config *cfg)
{
    open_cfg = cfg;
    if (open_all(path, false))
        return 1;
    uint64_t pairs = disk->idle_syncs;
    uint8_t *buf;
    if (posix_memalign((void **)&buf, 4096, LEN))
        return 1;
    pattern(buf, 0, versions[0] + 1, LEN);
    struct rlimit old, low = {4096, 4096};
    signal(SIGXFSZ, SIG_IGN);
    getrlimit(RLIMIT_FSIZE, &old);
    low.rlim_max = old.rlim_max;
    setrlimit(RLIMIT_FSIZE, &low);
    int done = 0;
    struct vs_store_op op = {.oid = {1, 0}, .len = LEN, .buf = buf, .flags = VS_STORE_STABLE,
                             .cb = flag_cb, .ctx = &done};
    int rc = vs_store_write(store, &op);
    while (rc == 0 && !done)
        vs_ring_run_once(ring);
    setrlimit(RLIMIT_FSIZE, &old);
    struct vs_store_stats st;
    vs_store_get_stats(store, &st);
    int rc2 = vs_store_write(store, &op);
    int bad = rc != 0 || op.result != -EIO || !st.broken || rc2 != -EIO;
    bad |= cfg->idle_sync ? disk->idle_syncs != pairs + 1 : disk->idle_syncs != pairs;
    printf("selftest: write error, idle_sync %d: result %d, broken %d, then %d, pairs %llu\n",
           cfg->idle_sync, op.result, st.broken, rc2,
           (unsigned long long)(disk->idle_syncs - pairs));
    close_all();
    free(buf);
    return bad;
}

/* As the OSD opens it (fsync_no_drain), one write at a time: each goes out
 * linked to its fsync (IOSQE_IO_LINK) on the real kernel; then the same with
 * idle_sync, where each write and its fsync run in this thread (the idle
 * pair); verify after a reopen, then the write error of both ways. */
static int q1_modes(const char *path, uint64_t *acked)
{
    int bad = 0;
    struct vs_store_config nd = {.durability = VS_STORE_DURABLE_ACK, .fsync_no_drain = true};
    open_cfg = &nd;
    depth = 1;
    if (open_all(path, false) || do_write(acks + 200))
        return 1;
    struct vs_store_stats st;
    vs_store_get_stats(store, &st);
    printf("selftest: no_drain, Q1: %llu fsync batches, %llu linked to their write\n",
           (unsigned long long)st.fsyncs, (unsigned long long)st.fsyncs_linked);
    bad += st.fsyncs_linked < 100;
    /* The journal mirror and the checkpoint arena are registered buffers
     * (WRITE_FIXED); only root is sure to have the memlock room for them. */
    printf("selftest: journal memory registered: %s\n", st.mem_registered ? "yes" : "no");
    bad += geteuid() == 0 && !st.mem_registered;
    close_all();
    struct vs_store_config idle = nd;
    idle.idle_sync = true;
    open_cfg = &idle;
    if (open_all(path, false) || do_write(acks + 200))
        return 1;
    vs_store_get_stats(store, &st);
    printf("selftest: idle_sync, Q1: %llu fsync batches, %llu idle pairs\n",
           (unsigned long long)st.fsyncs, (unsigned long long)disk->idle_syncs);
    bad += disk->idle_syncs < 100;
    for (int i = 0; i < NOBJ; i++)
        acked[i] = versions[i];
    close_all();
    open_cfg = NULL;
    if (open_all(path, false))
        return 1;
    fixed_bufs = true;
    bad += verify(acked);
    close_all();
    bad += write_error(path, &idle) + write_error(path, &nd);
    open_cfg = NULL;
    if (open_all(path, false))
        return 1;
    bad += verify(acked); /* the failed writes took nothing acked away */
    close_all();
    return bad;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: store_uring_writer write|verify|selftest PATH\n");
        return 2;
    }
    if (strcmp(argv[1], "write") == 0) {
        print_acks = true;
        return open_all(argv[2], true) || do_write(-1);
    }
    uint64_t acked[NOBJ] = {0};
    if (strcmp(argv[1], "verify") == 0) {
        char line[128];
        int obj;
        unsigned long long v;
        while (fgets(line, sizeof(line), stdin))
            if (sscanf(line, "ack %d %llu", &obj, &v) == 2 && obj >= 0 && obj < NOBJ &&
                v > acked[obj])
                acked[obj] = v;
        if (open_all(argv[2], false))
            return 1;
        int bad = verify(acked);
        close_all();
        printf("verify: %d objects bad\n", bad);
        return bad ? 1 : 0;
    }
    char path[512];
    snprintf(path, sizeof(path), "%s/store_uring_selftest.img", argv[2]);
    FILE *f = fopen(path, "w");
    if (!f || ftruncate(fileno(f), 64 << 20) < 0)
        return 1;
    fclose(f);
    if (open_all(path, true) || do_write(2000))
        return 1;
    for (int i = 0; i < NOBJ; i++)
        acked[i] = versions[i];
    close_all();
    if (open_all(path, false))
        return 1;
    int bad = verify(acked);
    if (do_write(acks + 200) || full_ring())
        return 1; /* stalled ops would hang the close */
    close_all();
    bad += q1_modes(path, acked);
    unlink(path);
    printf("selftest: %ld writes through io_uring, %d objects bad\n", acks, bad);
    return bad ? 1 : 0;
}
