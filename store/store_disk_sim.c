/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_disk_sim.c -- the simulated disk: deterministic by seed, with a
 * volatile write cache, power loss at any point, and EIO injection (STYLE B20).
 *
 * Fault model (what a real drive without power-loss protection may do):
 *  - a completed write sits in the volatile cache until an fsync of its device
 *    that started after the write completed has itself completed;
 *  - ios complete in any order the PRNG picks, except that an io flagged
 *    VS_DISK_DRAIN starts only when every earlier io has completed and no
 *    later io starts before it completes (IOSQE_IO_DRAIN), and the io submitted
 *    after one flagged VS_DISK_LINK starts only when that one has completed,
 *    or completes with -ECANCELED if it failed (IOSQE_IO_LINK);
 *  - on power loss every unsynced or in-flight write is kept whole, dropped,
 *    or torn (a random subset of its 512-byte or 4 KiB sectors is applied);
 *  - reads never tear: they see the durable image overlaid by completed writes;
 *  - an idle pair (a write flagged VS_DISK_IDLE_SYNC linked to an fsync of its
 *    device, the only ios at the submit point) is done at once, as the io_uring
 *    disk does in the loop thread: the write, then the fsync, each may fail;
 *    the callbacks run later, as completions, in that order.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct cached_write {
    struct cached_write *next;
    unsigned dev;
    uint64_t offset;
    uint32_t len;
    uint64_t done_seq; /* completion order */
    uint8_t data[];
};

struct fail_rule {
    int opcode, dev;
    uint64_t countdown; /* 0 = off */
    unsigned count;
    uint32_t ppm;
};

struct sim_disk {
    struct vs_disk base;
    uint8_t *img[VS_STORE_DEVS_MAX];
    uint64_t rng;
    struct vs_disk_io *queue_head, *queue_tail; /* submitted, not started */
    struct vs_disk_io **inflight;               /* started, in start order */
    unsigned n_inflight, cap_inflight;
    struct cached_write *cache_head, *cache_tail;
    uint64_t cache_count, done_seq;
    void (*hook)(void *);
    void *hook_ctx;
    struct fail_rule nth, rnd;
    struct vs_disk_io *done_io[2]; /* an idle pair, done, its callbacks due */
    int done_res[2];
};

static uint64_t rnd_next(struct sim_disk *d)
{
    uint64_t x = d->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    d->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int sim_submit(struct vs_disk *base, struct vs_disk_io *io)
{
    struct sim_disk *d = (struct sim_disk *)base;
    VS_ASSERT(io->dev < base->dev_count);
    VS_ASSERTF(io->opcode == VS_DISK_FSYNC || io->opcode == VS_DISK_NOP ||
                   io->offset + io->len <= base->dev_size[io->dev],
               "dev=%u off=%llu len=%u", io->dev, (unsigned long long)io->offset, io->len);
    io->next = NULL;
    if (d->queue_tail)
        d->queue_tail->next = io;
    else
        d->queue_head = io;
    d->queue_tail = io;
    return 0;
}

static void sim_set_hook(struct vs_disk *base, void (*fn)(void *), void *ctx)
{
    struct sim_disk *d = (struct sim_disk *)base;
    d->hook = fn;
    d->hook_ctx = ctx;
}

static unsigned sim_inflight(struct vs_disk *base)
{
    struct sim_disk *d = (struct sim_disk *)base;
    unsigned n = d->n_inflight;
    for (struct vs_disk_io *io = d->queue_head; io; io = io->next)
        n++;
    return n;
}

static bool should_fail(struct sim_disk *d, const struct vs_disk_io *io);
static void sim_write(struct sim_disk *d, struct vs_disk_io *io);
static void sim_fsync(struct sim_disk *d, struct vs_disk_io *io);

/* Does the idle pair now, if the queue holds exactly one (see the header). */
static void sim_idle_pair(struct sim_disk *d)
{
    struct vs_disk_io *w = d->queue_head, *f = w->next;
    if (d->n_inflight || !f || f->next || w->opcode != VS_DISK_WRITE ||
        (w->flags & (VS_DISK_IDLE_SYNC | VS_DISK_LINK | VS_DISK_DRAIN)) !=
            (VS_DISK_IDLE_SYNC | VS_DISK_LINK) ||
        f->opcode != VS_DISK_FSYNC || f->dev != w->dev || (f->flags & VS_DISK_DRAIN))
        return;
    d->base.idle_syncs++;
    d->done_io[0] = w;
    d->done_io[1] = f;
    d->done_res[0] = should_fail(d, w) ? -EIO : (int)w->len;
    d->done_res[1] = -ECANCELED;
    if (d->done_res[0] < 0)
        return;
    sim_write(d, w);
    d->done_res[1] = should_fail(d, f) ? -EIO : 0;
    if (d->done_res[1] == 0) {
        f->seq = d->done_seq;
        sim_fsync(d, f);
    }
}

/* Moves queued ios to in flight ("io_uring_enter"), running the hook first. */
static void sim_start_queued(struct sim_disk *d)
{
    if (!d->queue_head)
        return;
    if (d->hook)
        d->hook(d->hook_ctx);
    sim_idle_pair(d);
    while (d->queue_head) {
        struct vs_disk_io *io = d->queue_head;
        d->queue_head = io->next;
        if (d->n_inflight == d->cap_inflight) {
            d->cap_inflight = d->cap_inflight ? d->cap_inflight * 2 : 64;
            d->inflight = realloc(d->inflight, d->cap_inflight * sizeof(*d->inflight));
            VS_ASSERT(d->inflight != NULL);
        }
        if (io != d->done_io[1])
            io->seq = d->done_seq; /* for fsync: writes completed before it started */
        d->inflight[d->n_inflight++] = io;
    }
    d->queue_tail = NULL;
}

static bool fail_matches(const struct fail_rule *r, const struct vs_disk_io *io)
{
    return (r->opcode == 0 || r->opcode == io->opcode) && (r->dev < 0 || r->dev == (int)io->dev);
}

static bool should_fail(struct sim_disk *d, const struct vs_disk_io *io)
{
    if (io->opcode == VS_DISK_NOP)
        return false;
    if (d->nth.countdown && fail_matches(&d->nth, io)) {
        if (--d->nth.countdown == 0) {
            if (--d->nth.count > 0)
                d->nth.countdown = 1;
            return true;
        }
    }
    if (d->rnd.ppm && fail_matches(&d->rnd, io))
        return rnd_next(d) % 1000000 < d->rnd.ppm;
    return false;
}

static void sim_read(struct sim_disk *d, struct vs_disk_io *io)
{
    memcpy(io->buf, d->img[io->dev] + io->offset, io->len);
    for (struct cached_write *w = d->cache_head; w; w = w->next) {
        if (w->dev != io->dev || w->offset >= io->offset + io->len ||
            w->offset + w->len <= io->offset)
            continue;
        uint64_t lo = VS_MAX(w->offset, io->offset);
        uint64_t hi = VS_MIN(w->offset + w->len, io->offset + io->len);
        memcpy((uint8_t *)io->buf + (lo - io->offset), w->data + (lo - w->offset), hi - lo);
    }
}

static void sim_write(struct sim_disk *d, struct vs_disk_io *io)
{
    struct cached_write *w = malloc(sizeof(*w) + io->len);
    VS_ASSERT(w != NULL);
    w->next = NULL;
    w->dev = io->dev;
    w->offset = io->offset;
    w->len = io->len;
    w->done_seq = ++d->done_seq;
    memcpy(w->data, io->buf, io->len);
    if (d->cache_tail)
        d->cache_tail->next = w;
    else
        d->cache_head = w;
    d->cache_tail = w;
    d->cache_count++;
}

/* Applies the cached writes of dev that completed before the fsync started. */
static void sim_fsync(struct sim_disk *d, struct vs_disk_io *io)
{
    struct cached_write **pp = &d->cache_head, *prev = NULL;
    while (*pp) {
        struct cached_write *w = *pp;
        if (w->dev == io->dev && w->done_seq <= io->seq) {
            memcpy(d->img[w->dev] + w->offset, w->data, w->len);
            *pp = w->next;
            free(w);
            d->cache_count--;
        } else {
            prev = w;
            pp = &w->next;
        }
    }
    d->cache_tail = prev;
}

/* Takes inflight[idx] out, keeping the others in submission order. */
static struct vs_disk_io *sim_take(struct sim_disk *d, unsigned idx)
{
    struct vs_disk_io *io = d->inflight[idx];
    memmove(&d->inflight[idx], &d->inflight[idx + 1],
            (d->n_inflight - idx - 1) * sizeof(*d->inflight));
    d->n_inflight--;
    return io;
}

static void sim_complete(struct sim_disk *d, unsigned idx)
{
    struct vs_disk_io *io = sim_take(d, idx);
    /* The io linked after this one (next in submission order, not started). */
    struct vs_disk_io *linked = NULL;
    if ((io->flags & VS_DISK_LINK) && idx < d->n_inflight)
        linked = d->inflight[idx];
    int res = (int)io->len;
    unsigned k = io == d->done_io[0] ? 0 : io == d->done_io[1] ? 1 : 2;
    if (k < 2) {
        res = d->done_res[k]; /* done already: only the callback is due */
        d->done_io[k] = NULL;
    } else if (should_fail(d, io)) {
        res = -EIO;
    } else if (io->opcode == VS_DISK_READ) {
        sim_read(d, io);
    } else if (io->opcode == VS_DISK_WRITE) {
        sim_write(d, io);
    } else if (io->opcode == VS_DISK_FSYNC) {
        /* A drained fsync really starts only now, after every earlier io. */
        if (io->flags & VS_DISK_DRAIN)
            io->seq = d->done_seq;
        sim_fsync(d, io);
        res = 0;
    } else {
        res = 0;
    }
    if (linked && res < 0) {
        sim_take(d, idx);
        if (linked == d->done_io[1])
            d->done_io[1] = NULL;
        io->cb(io, res);
        linked->cb(linked, -ECANCELED);
        return;
    }
    if (linked && linked != d->done_io[1])
        linked->seq = d->done_seq; /* it really starts only now */
    io->cb(io, res);
}

static bool sim_waits_link(const struct sim_disk *d, unsigned i)
{
    return i > 0 && (d->inflight[i - 1]->flags & VS_DISK_LINK);
}

/* Picks an io that may complete now, honouring DRAIN and LINK. */
static unsigned sim_pick(struct sim_disk *d)
{
    unsigned limit = d->n_inflight;
    for (unsigned i = 0; i < d->n_inflight; i++) {
        if (d->inflight[i]->flags & VS_DISK_DRAIN) {
            limit = i == 0 ? 1 : i; /* earlier ones first; the drain op alone */
            break;
        }
    }
    unsigned ready = 0;
    for (unsigned i = 0; i < limit; i++)
        ready += !sim_waits_link(d, i);
    VS_ASSERT(ready > 0); /* inflight[0] never waits */
    unsigned k = (unsigned)(rnd_next(d) % ready);
    for (unsigned i = 0;; i++)
        if (!sim_waits_link(d, i) && k-- == 0)
            return i;
}

unsigned vs_disk_sim_step(struct vs_disk *base, unsigned n)
{
    struct sim_disk *d = (struct sim_disk *)base;
    unsigned done = 0;
    while (done < n) {
        sim_start_queued(d);
        if (d->n_inflight == 0)
            break;
        sim_complete(d, sim_pick(d));
        done++;
    }
    return done;
}

unsigned vs_disk_sim_run(struct vs_disk *base)
{
    return vs_disk_sim_step(base, ~0u);
}

static int sim_run_once(struct vs_disk *base)
{
    return (int)vs_disk_sim_step(base, 1);
}

/* Applies a random subset of w's sectors of size gran. */
static void tear(struct sim_disk *d, unsigned dev, uint64_t off, const uint8_t *data, uint32_t len)
{
    uint64_t mode = rnd_next(d) % 4;
    if (mode == 0)
        return; /* dropped */
    if (mode == 1) {
        memcpy(d->img[dev] + off, data, len);
        return;
    }
    uint32_t gran = mode == 2 ? 512 : 4096;
    for (uint32_t o = 0; o < len; o += gran)
        if (rnd_next(d) & 1)
            memcpy(d->img[dev] + off + o, data + o, VS_MIN(gran, len - o));
}

void vs_disk_sim_crash(struct vs_disk *base)
{
    struct sim_disk *d = (struct sim_disk *)base;
    d->queue_head = NULL; /* queued ios never reached the device */
    d->queue_tail = NULL;
    for (unsigned i = 0; i < d->n_inflight; i++) {
        struct vs_disk_io *io = d->inflight[i];
        if (io->opcode == VS_DISK_WRITE && io != d->done_io[0])
            tear(d, io->dev, io->offset, io->buf, io->len);
    }
    d->n_inflight = 0;
    d->done_io[0] = d->done_io[1] = NULL;
    while (d->cache_head) {
        struct cached_write *w = d->cache_head;
        d->cache_head = w->next;
        tear(d, w->dev, w->offset, w->data, w->len);
        free(w);
    }
    d->cache_tail = NULL;
    d->cache_count = 0;
    d->hook = NULL;
    memset(&d->nth, 0, sizeof(d->nth));
    memset(&d->rnd, 0, sizeof(d->rnd));
}

void vs_disk_sim_fail_nth(struct vs_disk *base, int opcode, int dev, uint64_t nth, unsigned count)
{
    struct sim_disk *d = (struct sim_disk *)base;
    d->nth = (struct fail_rule){opcode, dev, nth, count, 0};
}

void vs_disk_sim_fail_random(struct vs_disk *base, int opcode, int dev, uint32_t ppm)
{
    struct sim_disk *d = (struct sim_disk *)base;
    d->rnd = (struct fail_rule){opcode, dev, 0, 0, ppm};
}

uint8_t *vs_disk_sim_durable(struct vs_disk *base, unsigned dev)
{
    struct sim_disk *d = (struct sim_disk *)base;
    VS_ASSERT(dev < base->dev_count);
    return d->img[dev];
}

uint64_t vs_disk_sim_unsynced_writes(struct vs_disk *base)
{
    return ((struct sim_disk *)base)->cache_count;
}

static void sim_destroy(struct vs_disk *base)
{
    struct sim_disk *d = (struct sim_disk *)base;
    while (d->cache_head) {
        struct cached_write *w = d->cache_head;
        d->cache_head = w->next;
        free(w);
    }
    for (unsigned i = 0; i < base->dev_count; i++)
        if (d->img[i])
            munmap(d->img[i], base->dev_size[i] ? base->dev_size[i] : 1);
    free(d->inflight);
    free(d);
}

static const struct vs_disk_ops sim_ops = {
    .submit = sim_submit,
    .set_hook = sim_set_hook,
    .run_once = sim_run_once,
    .inflight = sim_inflight,
    .destroy = sim_destroy,
};

int vs_disk_sim_create(unsigned count, const uint64_t *sizes, uint64_t seed, struct vs_disk **out)
{
    if (count == 0 || count > VS_STORE_DEVS_MAX)
        return -EINVAL;
    struct sim_disk *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->base.ops = &sim_ops;
    d->base.dev_count = count;
    d->rng = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
    if (d->rng == 0)
        d->rng = 1;
    for (unsigned i = 0; i < count; i++) {
        d->base.dev_size[i] = sizes[i];
        snprintf(d->base.dev_name[i], sizeof(d->base.dev_name[i]), "sim%u", i);
        /* Anonymous memory is zero and only backed once touched: a huge
         * simulated device costs only what is written to it. */
        void *m = mmap(NULL, sizes[i] ? sizes[i] : 1, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        d->img[i] = m == MAP_FAILED ? NULL : m;
        if (!d->img[i]) {
            sim_destroy(&d->base);
            return -ENOMEM;
        }
    }
    *out = &d->base;
    return 0;
}
