/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_disk_bench.c -- `vstor disk bench FILE`: the six tests of
 * shared/bench/fio-suite.sh run through the store on FILE (io_uring,
 * O_DIRECT, durable acknowledgement), then fio-suite.sh raw on the same file,
 * printed side by side as ratios. Also: store CPU per write on the simulated
 * disk (--cpu) and RAM per object with a million objects (--ram-objects).
 * A benchmark, never a test: figures depend on the machine.
 */
#include "cli_disk.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define SLOTS_MAX 1024
#define BENCH_RAMP_S 2.0 /* unmeasured warm-up per shape, as fio-suite.sh's ramp_time */

struct bslot {
    struct vs_store_op op;
    struct bench *b;
    uint32_t obj;
    bool busy;
};

struct bench {
    struct vs_disk_cli *dc;
    struct vs_disk *sim; /* when driving the simulated disk */
    uint32_t bs, nobj, io_len, depth, per_io; /* per_io: block ops per fio io */
    bool write, random;
    uint64_t next_seq_obj, rng, done_ops, done_bytes, inflight, errors;
    int first_error;
    uint8_t *obj_busy;
    struct bslot slots[SLOTS_MAX];
    uint8_t *bufs;
};

static uint64_t rnd(struct bench *b)
{
    b->rng ^= b->rng << 13;
    b->rng ^= b->rng >> 7;
    b->rng ^= b->rng << 17;
    return b->rng;
}

static void issue(struct bench *b, struct bslot *sl);

static void bench_cb(struct vs_store_op *op)
{
    struct bslot *sl = (struct bslot *)op;
    struct bench *b = sl->b;
    if (op->result < 0 && !b->errors++)
        b->first_error = op->result;
    b->done_ops++;
    b->done_bytes += op->len;
    b->obj_busy[sl->obj] = 0;
    sl->busy = false;
    b->inflight--;
}

static void issue(struct bench *b, struct bslot *sl)
{
    uint32_t obj;
    if (b->random) {
        do
            obj = (uint32_t)(rnd(b) % b->nobj);
        while (b->obj_busy[obj]);
    } else {
        obj = (uint32_t)(b->next_seq_obj++ % b->nobj);
    }
    b->obj_busy[obj] = 1;
    struct vs_store_op *op = &sl->op;
    uint8_t *buf = op->buf;
    memset(op, 0, sizeof(*op));
    op->buf = buf;
    op->oid = (struct vs_store_oid){1, (uint64_t)obj * b->bs};
    op->len = b->io_len;
    op->offset = b->io_len && b->io_len < b->bs
                     ? (uint32_t)(rnd(b) % (b->bs / b->io_len)) * b->io_len
                     : 0;
    op->flags = VS_STORE_STABLE;
    op->version = b->write ? 0 : VS_STORE_READ_LATEST;
    op->cb = bench_cb;
    sl->obj = obj;
    sl->busy = true;
    b->inflight++;
    struct vs_store *s = b->dc->store;
    int rc = b->write ? vs_store_write(s, op) : vs_store_read(s, op);
    if (rc < 0) { /* counted as done, or a fill of N ops on a broken store never ends */
        if (!b->errors++)
            b->first_error = rc;
        b->done_ops++;
        b->obj_busy[obj] = 0;
        sl->busy = false;
        b->inflight--;
    }
}

static int pump(struct bench *b)
{
    if (b->sim) {
        vs_disk_sim_step(b->sim, 64);
        return 0;
    }
    int rc = vs_ring_run_once(b->dc->ring);
    return rc < 0 ? rc : 0;
}

/* Runs one shape for `seconds` (or `ops` operations); returns ops/s. */
static double run_shape(struct bench *b, double seconds, uint64_t ops)
{
    b->done_ops = b->done_bytes = b->errors = 0;
    b->first_error = 0;
    uint64_t t0 = vs_clock_mono_ns(), end = t0 + (uint64_t)(seconds * 1e9);
    for (;;) {
        bool more = ops ? b->done_ops + b->inflight < ops : vs_clock_mono_ns() < end;
        for (uint32_t i = 0; more && i < b->depth; i++)
            if (!b->slots[i].busy)
                issue(b, &b->slots[i]);
        if (!more && b->inflight == 0)
            break;
        if (pump(b) < 0)
            break;
    }
    double secs = (double)(vs_clock_mono_ns() - t0) / 1e9;
    return (double)b->done_ops / secs;
}

struct fig {
    const char *name;
    double iops, mbs, lat_us;
};

static void shape(struct bench *b, bool write, bool random, uint32_t len, uint32_t depth)
{
    b->write = write;
    b->random = random;
    b->io_len = VS_MIN(len, b->bs);
    b->per_io = len > b->bs ? len / b->bs : 1;
    b->depth = VS_MIN(depth * b->per_io, (uint32_t)SLOTS_MAX);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* What the store issued during one shape, per operation and per area, and
 * the process's CPU time (user + system: the store, the bench and the kernel's
 * inline io_uring work) per operation. */
static void print_io(const struct fig *f, const struct vs_store_stats *s0,
                     const struct vs_store_stats *s1, double ops, double cpu_s)
{
    static const char *const area[VS_STORE_IO_AREAS] = {"journal", "data", "flush", "meta",
                                                        "read", "fsync"};
    printf("  %s: per op:", f->name);
    for (int a = 0; a < VS_STORE_IO_AREAS; a++) {
        uint64_t n = s1->io_count[a] - s0->io_count[a];
        uint64_t bytes = s1->io_bytes[a] - s0->io_bytes[a];
        if (n)
            printf(" %s %.3f io %.1f KiB", area[a], (double)n / ops, (double)bytes / ops / 1024);
    }
    printf("; checkpoints %" PRIu64 ", journal waits %" PRIu64 "; cpu %.2f us/op\n",
           s1->checkpoints - s0->checkpoints, s1->journal_waits - s0->journal_waits,
           ops > 0 ? cpu_s * 1e6 / ops : 0.0);
}

static void measure(struct bench *b, struct fig *f, double secs, bool q1)
{
    struct vs_store_stats s0, s1;
    run_shape(b, BENCH_RAMP_S, 0); /* as fio's ramp_time: not measured */
    vs_store_get_stats(b->dc->store, &s0);
    double c0 = cpu_seconds();
    double ops = run_shape(b, secs, 0);
    double cpu_s = cpu_seconds() - c0;
    vs_store_get_stats(b->dc->store, &s1);
    f->iops = ops / b->per_io;
    f->mbs = ops * b->io_len / 1e6;
    f->lat_us = q1 ? 1e6 / ops : 0;
    if (!b->sim)
        print_io(f, &s0, &s1, (double)b->done_ops, cpu_s);
    uint64_t user = s1.bytes_user_written - s0.bytes_user_written;
    uint64_t disk = s1.bytes_disk_written - s0.bytes_disk_written;
    if (b->write && user)
        printf("  %s: write amplification %.2f (%" PRIu64 " bytes to disk for %" PRIu64 ")\n",
               f->name, (double)disk / (double)user, disk, user);
    if (b->errors)
        printf("  %s: %" PRIu64 " errors, the first: %s\n", f->name, b->errors,
               vs_strerror(b->first_error));
}

/* Reopens the store in the given mode (a clean close checkpoints first). */
static void reopen(struct bench *b, enum vs_store_durability mode)
{
    struct vs_store_config cfg;
    vs_store_get_config(b->dc->store, &cfg);
    if (cfg.durability == mode)
        return;
    cfg.durability = mode;
    char err[VS_ERRMSG_SIZE];
    vs_store_close(b->dc->store);
    b->dc->store = NULL;
    if (vs_store_open(b->dc->disk, &cfg, &b->dc->store, err, sizeof(err)) < 0) {
        fprintf(stderr, "vstor disk bench: reopen: %s\n", err);
        exit(VS_EXIT_FAIL);
    }
}

/* The six shapes of fio-suite.sh, in its order. The Q1 write is durable on
 * ack (group commit), like fio's --fsync=1; the other shapes are lazy
 * (durable at sync), like fio-suite.sh's, which never syncs them. */
static const struct bshape {
    const char *name;
    bool write, random, durable;
    uint32_t len, depth;
} shapes[6] = {
    {"seqwrite-4M-q32", true, false, false, 4u << 20, 32},
    {"seqread-4M-q32", false, false, false, 4u << 20, 32},
    {"randwrite-4k-q1", true, true, true, 4096, 1},
    {"randread-4k-q1", false, true, false, 4096, 1},
    {"randwrite-4k-q128", true, true, false, 4096, 128},
    {"randread-4k-q128", false, true, false, 4096, 128},
};

/* Is name one of the comma-separated items of list? */
static bool in_list(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == ',' || p[n] == '\0'))
            return true;
    return false;
}

static void run_suite(struct bench *b, struct fig *f, double secs, const char *only)
{
    for (int i = 0; i < 6; i++)
        f[i].name = shapes[i].name;
    reopen(b, VS_STORE_LAZY);
    shape(b, true, false, 4u << 20, 32);
    run_shape(b, 0, b->nobj); /* fill, as fio-suite.sh does */
    for (int i = 0; i < 6; i++) {
        if (only && !in_list(only, shapes[i].name))
            continue;
        reopen(b, shapes[i].durable ? VS_STORE_DURABLE_ACK : VS_STORE_LAZY);
        shape(b, shapes[i].write, shapes[i].random, shapes[i].len, shapes[i].depth);
        measure(b, &f[i], secs, shapes[i].depth == 1);
    }
}

static int bench_alloc(struct bench *b, uint32_t bs, uint32_t nobj)
{
    b->bs = bs;
    b->nobj = nobj;
    b->rng = 0x9E3779B97F4A7C15ull;
    b->obj_busy = calloc(nobj, 1);
    if (!b->obj_busy || posix_memalign((void **)&b->bufs, 4096, (size_t)SLOTS_MAX * bs) != 0)
        return -ENOMEM;
    memset(b->bufs, 0x5a, (size_t)SLOTS_MAX * bs);
    for (uint32_t i = 0; i < SLOTS_MAX; i++) {
        b->slots[i].b = b;
        b->slots[i].op.buf = b->bufs + (size_t)i * bs;
    }
    return 0;
}

static void bench_free(struct bench *b)
{
    free(b->obj_busy);
    free(b->bufs);
}

/* ---- fio-suite.sh raw on the same file -------------------------------------- */

static int run_fio(const char *suite, const char *file, uint64_t size, double secs, struct fig *raw)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd),
             "RUNTIME=%d '%s' raw --ioengine=libaio --direct=1 --filename='%s' --size=%" PRIu64
             " 2>&1", (int)secs, suite, file, size);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -errno;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof(line), p)) {
        char label[32], test[64];
        double iops, mbs, lat, p99;
        if (sscanf(line, "%31s %63s %lf %lf %lf %lf", label, test, &iops, &mbs, &lat, &p99) != 6)
            continue;
        for (int i = 0; i < 6; i++) {
            if (strcmp(test, raw[i].name) == 0) {
                raw[i].iops = iops;
                raw[i].mbs = mbs;
                raw[i].lat_us = lat;
                found++;
            }
        }
    }
    int st = pclose(p);
    return found == 6 && st == 0 ? 0 : -EIO;
}

static void print_table(const struct fig *st, const struct fig *raw, bool have_raw)
{
    printf("\n%-18s %10s %9s %10s | %10s %9s %10s | %s\n", "test", "iops", "MB/s", "lat_us",
           "raw iops", "raw MB/s", "raw lat", "ratio");
    for (int i = 0; i < 6; i++) {
        bool lat = st[i].lat_us > 0;
        double ratio = !have_raw ? 0 : lat ? st[i].lat_us / raw[i].lat_us
                                           : st[i].iops / (raw[i].iops ? raw[i].iops : 1);
        printf("%-18s %10.0f %9.1f %10.1f | %10.0f %9.1f %10.1f | %.2fx %s\n", st[i].name,
               st[i].iops, st[i].mbs, st[i].lat_us, raw[i].iops, raw[i].mbs, raw[i].lat_us, ratio,
               lat ? "latency" : "iops");
    }
}

/* ---- the store on the file --------------------------------------------------- */

static int prepare_file(struct vs_cmd_ctx *ctx, uint64_t size)
{
    int fd = open(ctx->argv[0], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)size) < 0) {
        vs_cmd_error(ctx, "%s: %s", ctx->argv[0], strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* The bench's buffers are registered with the ring, as a caller with a
 * buffer pool would do: its reads and writes then go as READ/WRITE_FIXED. */
static int register_bufs(struct vs_cmd_ctx *ctx, struct bench *b)
{
    if (vs_cmd_flag(ctx, "no-fixed-bufs"))
        return -ENOTSUP;
    return vs_ring_register_buffer(b->dc->ring, b->bufs, (size_t)SLOTS_MAX * b->bs);
}

static int bench_file(struct vs_cmd_ctx *ctx, uint64_t size, double secs)
{
    if (vs_cmd_flag(ctx, "drain") && vs_cmd_flag(ctx, "no-drain")) {
        vs_cmd_error(ctx, "--drain and --no-drain exclude each other");
        return VS_EXIT_USAGE;
    }
    if (prepare_file(ctx, size) < 0)
        return VS_EXIT_FAIL;
    struct vs_disk_cli dc;
    if (vs_disk_cli_open(ctx, false, &dc) < 0)
        return VS_EXIT_FAIL;
    struct vs_store_format_opts fo = {.block_size = (uint32_t)ctx->cfg.store_block_size,
                                      .force = true};
    fo.layout.journal_size = ctx->cfg.store_journal_size;
    fo.csum_disabled = ctx->cfg.store_csum_block_size == 0;
    char err[VS_ERRMSG_SIZE];
    struct vs_store_config cfg;
    vs_disk_cli_config(ctx, &cfg);
    /* By default as the OSD opens its store; --drain measures the other mode. */
    cfg.fsync_no_drain = !vs_cmd_flag(ctx, "drain");
    if (vs_store_format(dc.disk, &fo, err, sizeof(err)) < 0 ||
        vs_store_open(dc.disk, &cfg, &dc.store, err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_disk_cli_close(&dc);
        return VS_EXIT_FAIL;
    }
    struct vs_store_stats st;
    vs_store_get_stats(dc.store, &st);
    struct bench *b = calloc(1, sizeof(*b));
    struct fig figs[6], raw[6];
    memset(raw, 0, sizeof(raw));
    memset(figs, 0, sizeof(figs));
    /* The overwrite reserve is kept free: new objects fit in the rest. */
    uint32_t nobj = (uint32_t)(st.block_count - st.blocks_reserved - 1);
    int rc = b ? bench_alloc(b, (uint32_t)st.block_size, nobj) : -ENOMEM;
    if (rc == 0) {
        b->dc = &dc;
        int reg = register_bufs(ctx, b);
        printf("store: %s, %" PRIu64 " blocks of %" PRIu64 " bytes, %.0f s per test, "
               "registered buffers: %s\n", ctx->argv[0], st.block_count, st.block_size, secs,
               reg == 0 ? "yes" : strerror(-reg));
        run_suite(b, figs, secs, vs_cmd_opt(ctx, "shapes"));
        if (reg == 0)
            vs_ring_unregister_buffer(dc.ring, b->bufs);
        for (int i = 0; i < 6; i++)
            raw[i].name = figs[i].name;
    }
    if (b)
        bench_free(b);
    free(b);
    vs_disk_cli_close(&dc);
    if (rc < 0)
        return VS_EXIT_FAIL;
    const char *suite = vs_cmd_opt(ctx, "fio-suite");
    bool have_raw = suite && run_fio(suite, ctx->argv[0], size, secs, raw) == 0;
    if (suite && !have_raw)
        vs_cmd_error(ctx, "fio-suite.sh failed; printing the store's figures only");
    print_table(figs, raw, have_raw);
    return VS_EXIT_OK;
}

/* ---- CPU and RAM on the simulated disk ---------------------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

/* A store on the simulated disk (no delays): the store's own CPU cost. */
static int sim_store(uint64_t size, uint32_t bs, struct vs_disk_cli *dc)
{
    memset(dc, 0, sizeof(*dc));
    if (vs_disk_sim_create(1, &size, 1, &dc->disk) < 0)
        return -ENOMEM;
    struct vs_store_format_opts fo = {.block_size = bs};
    char err[VS_ERRMSG_SIZE];
    int rc = vs_store_format(dc->disk, &fo, err, sizeof(err));
    if (rc == 0)
        rc = vs_store_open(dc->disk, NULL, &dc->store, err, sizeof(err));
    if (rc < 0)
        fprintf(stderr, "vstor disk bench: %s\n", err);
    return rc;
}

static int bench_sim(uint64_t cpu_writes, uint64_t ram_objects)
{
    struct vs_disk_cli dc;
    uint32_t bs = 128u << 10;
    uint64_t nobj = ram_objects ? ram_objects : 4096;
    long rss0 = rss_kb();
    if (sim_store(nobj * bs / 32 * 33 + (256ull << 20), bs, &dc) < 0) /* + the reserve */
        return VS_EXIT_FAIL;
    struct bench *b = calloc(1, sizeof(*b));
    if (!b || bench_alloc(b, bs, (uint32_t)nobj) < 0)
        return VS_EXIT_FAIL;
    b->dc = &dc;
    b->sim = dc.disk;
    if (ram_objects) { /* one version of every object: zero-length stable writes */
        shape(b, true, false, 0, 64);
        b->io_len = 0;
        run_shape(b, 0, nobj);
        struct vs_store_stats st;
        vs_store_get_stats(dc.store, &st);
        printf("ram: %" PRIu64 " objects, index %" PRIu64 " bytes = %.1f bytes/object "
               "(+ %" PRIu64 " bytes of checksums = 4 per 4 KiB), process RSS +%ld KiB "
               "(includes the simulated disk's touched pages)\n", st.object_count,
               st.ram_index_bytes, (double)st.ram_index_bytes / (double)st.object_count,
               st.ram_csum_bytes, rss_kb() - rss0);
    }
    if (cpu_writes) {
        shape(b, true, true, 4096, 64);
        run_shape(b, 0, nobj); /* every object exists: the 4 KiB writes are small */
        double c0 = cpu_seconds();
        run_shape(b, 0, cpu_writes);
        double c = cpu_seconds() - c0;
        printf("cpu: %" PRIu64 " durable 4 KiB writes in %.2f CPU-s = %.0f writes per CPU-second"
               " (simulated disk, no delays; includes the simulator)\n", cpu_writes, c,
               (double)cpu_writes / c);
    }
    bench_free(b);
    free(b);
    vs_store_close(dc.store);
    vs_disk_destroy(dc.disk);
    return VS_EXIT_OK;
}

int vs_cmd_disk_bench(struct vs_cmd_ctx *ctx)
{
    uint64_t size = 2ull << 30, secs = 10, cpu = 0, ram = 0;
    if (vs_cmd_opt_size(ctx, "size", &size) || vs_cmd_opt_u64(ctx, "runtime", &secs) ||
        vs_cmd_opt_u64(ctx, "cpu-writes", &cpu) || vs_cmd_opt_u64(ctx, "ram-objects", &ram))
        return VS_EXIT_USAGE;
    if (cpu || ram)
        return bench_sim(cpu, ram);
    if (ctx->argc != 1) {
        vs_cmd_error(ctx, "needs one FILE (or --cpu-writes / --ram-objects)");
        return VS_EXIT_USAGE;
    }
    return bench_file(ctx, size, (double)secs);
}
