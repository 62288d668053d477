/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_disk_uring.c -- the io_uring disk: 1..3 files or block devices opened
 * O_DIRECT, driven through the process's struct vs_ring. The ring is shared
 * with other code: we only take SQEs (vs_ring_sqe) and register one submit
 * hook, the store's group-commit point. Completions run when the owner of the
 * ring reaps it (vs_ring_process from the loop, or vs_disk_run_once here).
 * Each device is a registered file of the ring when a slot is free (no file
 * lookup per io), and an io whose buffer lies in memory the caller registered
 * with vs_ring_register_buffer() goes as READ_FIXED/WRITE_FIXED (no page
 * pinning per io): the OSD's and the bench's buffers, and the store's own
 * journal mirror and checkpoint arena (register_mem), for instance.
 *
 * Idle synchronous pair (VS_DISK_IDLE_SYNC): a journal write linked to its
 * fsync, submitted while nothing else is in flight, is remembered with its two
 * SQEs. If at the submit hook those two are still all the ring holds, the
 * write (pwrite) and the flush (fdatasync) run here, in the loop thread, and
 * the two SQEs become NOPs that carry the saved results to the callbacks
 * through the ring as usual. That skips io_uring's hand-off of the fsync to an
 * io-wq thread and the task wake-up between the write and the fsync (two
 * wake-ups of 10-40 us each on a VM: docs/performance.md "T1Q1 write, stage
 * by stage"). Under load the pair goes out as linked SQEs as before.
 */
#include "store_int.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct uring_disk {
    struct vs_disk base;
    struct vs_ring *ring;
    int fd[VS_STORE_DEVS_MAX];
    int slot[VS_STORE_DEVS_MAX]; /* registered file slot, or -1 */
    unsigned inflight;
    void (*hook)(void *);
    void *hook_ctx;
    bool hook_registered;
    /* The idle pair: candidate ios and their SQEs (write, fsync), and the
     * results of the pair run synchronously, until their NOPs complete. */
    struct vs_disk_io *pair_io[2];
    struct io_uring_sqe *pair_sqe[2];
    struct vs_disk_io *done_io[2];
    int done_res[2];
};

/* The blocking of an idle pair is bounded: a small record only. */
#define IDLE_SYNC_LEN_MAX (128u << 10)

static void uring_cb(struct vs_ring_op *op, int res)
{
    struct vs_disk_io *io = VS_CONTAINER_OF(op, struct vs_disk_io, ring);
    struct uring_disk *d = (struct uring_disk *)(uintptr_t)io->seq;
    VS_ASSERT(d->inflight > 0);
    d->inflight--;
    /* A short transfer on O_DIRECT means the device ended: report EIO. */
    if (res >= 0 && (io->opcode == VS_DISK_READ || io->opcode == VS_DISK_WRITE) &&
        (uint32_t)res != io->len)
        res = -EIO;
    io->cb(io, res);
}

/* The NOP of an idle pair completed: hand over the saved result. */
static void uring_pair_cb(struct vs_ring_op *op, int res)
{
    struct vs_disk_io *io = VS_CONTAINER_OF(op, struct vs_disk_io, ring);
    struct uring_disk *d = (struct uring_disk *)(uintptr_t)io->seq;
    (void)res;
    unsigned k = io == d->done_io[0] ? 0 : 1;
    VS_ASSERT(io == d->done_io[k]);
    d->done_io[k] = NULL;
    uring_cb(op, d->done_res[k]);
}

/* Tracks the idle pair: a flagged linked write with nothing else in flight,
 * then its fsync right after it; any other io drops the candidate. */
static void pair_track(struct uring_disk *d, struct vs_disk_io *io, struct io_uring_sqe *sqe)
{
    unsigned k = 2;
    d->pair_io[1] = NULL; /* an fsync is a candidate only right after its write */
    if (io->opcode == VS_DISK_WRITE && d->inflight == 0 &&
        (io->flags & (VS_DISK_IDLE_SYNC | VS_DISK_LINK | VS_DISK_DRAIN)) ==
            (VS_DISK_IDLE_SYNC | VS_DISK_LINK) &&
        io->len <= IDLE_SYNC_LEN_MAX)
        k = 0;
    else if (io->opcode == VS_DISK_FSYNC && d->inflight == 1 && d->pair_io[0] &&
             io->dev == d->pair_io[0]->dev && !(io->flags & (VS_DISK_DRAIN | VS_DISK_LINK)))
        k = 1;
    if (k == 2) {
        d->pair_io[0] = d->pair_io[1] = NULL;
        return;
    }
    d->pair_io[k] = io;
    d->pair_sqe[k] = sqe;
}

/* Runs the idle pair in this thread; its SQEs become NOPs (the write's still
 * linked to the fsync's, so they complete in order). A failed or short write
 * cancels the flush, as IOSQE_IO_LINK does. */
static void pair_run(struct uring_disk *d)
{
    struct vs_disk_io *w = d->pair_io[0];
    int fd = d->fd[w->dev];
    ssize_t n;
    do {
        n = pwrite(fd, w->buf, w->len, (off_t)w->offset);
    } while (n < 0 && errno == EINTR);
    int res[2] = {n < 0 ? -errno : (int)n, -ECANCELED};
    if (res[0] == (int)w->len) {
        int rc;
        do {
            rc = fdatasync(fd);
        } while (rc < 0 && errno == EINTR);
        res[1] = rc < 0 ? -errno : 0;
    }
    for (unsigned k = 0; k < 2; k++) {
        struct vs_disk_io *io = d->pair_io[k];
        struct io_uring_sqe *sqe = d->pair_sqe[k];
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, &io->ring);
        sqe->flags = k == 0 ? IOSQE_IO_LINK : 0;
        io->ring.cb = uring_pair_cb;
        d->done_io[k] = io;
        d->done_res[k] = res[k];
    }
    d->base.idle_syncs++;
}

static int uring_submit(struct vs_disk *base, struct vs_disk_io *io)
{
    struct uring_disk *d = (struct uring_disk *)base;
    io->ring.cb = uring_cb;
    io->seq = (uint64_t)(uintptr_t)d;
    /* A link needs its follower in the same submission: room for both now. */
    if ((io->flags & VS_DISK_LINK) && !vs_ring_has_room(d->ring, 2))
        io->flags &= (uint16_t)~VS_DISK_LINK;
    struct io_uring_sqe *sqe = vs_ring_sqe(d->ring, &io->ring);
    if (!sqe)
        return -EAGAIN;
    int fd = d->fd[io->dev], slot = d->slot[io->dev];
    switch (io->opcode) {
    case VS_DISK_READ:
    case VS_DISK_WRITE:
        vs_ring_prep_rw(d->ring, sqe, io->opcode == VS_DISK_WRITE, fd, slot, io->buf, io->len,
                        io->offset);
        break;
    case VS_DISK_FSYNC:
        io_uring_prep_fsync(sqe, slot >= 0 ? slot : fd, IORING_FSYNC_DATASYNC);
        if (slot >= 0)
            sqe->flags |= IOSQE_FIXED_FILE;
        break;
    default:
        io_uring_prep_nop(sqe);
        break;
    }
    if (io->flags & VS_DISK_DRAIN)
        sqe->flags |= IOSQE_IO_DRAIN;
    if (io->flags & VS_DISK_LINK)
        sqe->flags |= IOSQE_IO_LINK;
    pair_track(d, io, sqe);
    d->inflight++;
    return 0;
}

static void uring_hook(void *ctx)
{
    struct uring_disk *d = ctx;
    if (d->hook)
        d->hook(d->hook_ctx);
    /* What the hook submitted is in the ring too: the pair must be all of it. */
    if (d->pair_io[1] && vs_ring_inflight(d->ring) == 2)
        pair_run(d);
    d->pair_io[0] = d->pair_io[1] = NULL;
}

static void uring_set_hook(struct vs_disk *base, void (*fn)(void *), void *ctx)
{
    struct uring_disk *d = (struct uring_disk *)base;
    d->hook = fn;
    d->hook_ctx = ctx;
    if (!d->hook_registered && fn) {
        if (vs_ring_add_submit_hook(d->ring, uring_hook, d) == 0)
            d->hook_registered = true;
    }
}

static int uring_run_once(struct vs_disk *base)
{
    struct uring_disk *d = (struct uring_disk *)base;
    return vs_ring_run_once(d->ring);
}

static unsigned uring_inflight(struct vs_disk *base)
{
    return ((struct uring_disk *)base)->inflight;
}

static void uring_destroy(struct vs_disk *base)
{
    struct uring_disk *d = (struct uring_disk *)base;
    VS_ASSERTF(d->inflight == 0, "inflight=%u", d->inflight);
    if (d->hook_registered)
        vs_ring_remove_submit_hook(d->ring, uring_hook, d);
    for (unsigned i = 0; i < base->dev_count; i++) {
        if (d->slot[i] >= 0)
            vs_ring_unregister_file(d->ring, d->slot[i]);
        if (d->fd[i] >= 0)
            close(d->fd[i]);
    }
    free(d);
}

static int uring_register_mem(struct vs_disk *base, void *mem, size_t len)
{
    return vs_ring_register_buffer(((struct uring_disk *)base)->ring, mem, len);
}

static void uring_unregister_mem(struct vs_disk *base, const void *mem)
{
    vs_ring_unregister_buffer(((struct uring_disk *)base)->ring, mem);
}

static const struct vs_disk_ops uring_ops = {
    .submit = uring_submit,
    .set_hook = uring_set_hook,
    .run_once = uring_run_once,
    .inflight = uring_inflight,
    .destroy = uring_destroy,
    .register_mem = uring_register_mem,
    .unregister_mem = uring_unregister_mem,
};

/* Takes the device's flock, waiting up to LOCK_WAIT_MS for it: a process
 * killed with I/O in flight keeps its io_uring -- and so the file and its
 * lock -- until the kernel has drained that I/O, a little after the process
 * is gone. A restarted OSD must not fail on that. */
#define LOCK_WAIT_MS 5000
#define LOCK_RETRY_MS 20

static int lock_device(int fd, bool readonly)
{
    for (int waited = 0;; waited += LOCK_RETRY_MS) {
        if (flock(fd, (readonly ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0)
            return 0;
        if (errno != EWOULDBLOCK || waited >= LOCK_WAIT_MS)
            return -1;
        struct timespec ts = {0, LOCK_RETRY_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static int open_one(struct uring_disk *d, unsigned i, const char *path, bool direct,
                    bool readonly, char *errmsg, size_t esz)
{
    int flags = (readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
    int fd = open(path, flags);
    if (fd < 0) {
        int e = errno;
        snprintf(errmsg, esz, "%s: open: %s%s", path, strerror(e),
                 e == EINVAL && direct ? " (O_DIRECT unsupported here; tmpfs?)" : "");
        return -e;
    }
    d->fd[i] = fd;
    if (lock_device(fd, readonly) < 0) {
        int e = errno;
        snprintf(errmsg, esz, "%s: in use by another process (flock: %s)", path, strerror(e));
        return e == EWOULDBLOCK ? -EBUSY : -e;
    }
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    uint64_t size = (uint64_t)st.st_size;
    if (S_ISBLK(st.st_mode) && ioctl(fd, BLKGETSIZE64, &size) < 0) {
        int e = errno;
        snprintf(errmsg, esz, "%s: BLKGETSIZE64: %s", path, strerror(e));
        return -e;
    }
    if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
        snprintf(errmsg, esz, "%s: not a regular file or block device", path);
        return -EINVAL;
    }
    d->base.dev_size[i] = size & ~(uint64_t)(SECTOR - 1);
    int slot = vs_ring_register_file(d->ring, fd);
    d->slot[i] = slot >= 0 ? slot : -1; /* no slot: plain fd, one lookup per io */
    snprintf(d->base.dev_name[i], sizeof(d->base.dev_name[i]), "%s", path);
    return 0;
}

int vs_disk_uring_open(struct vs_ring *ring, const char *const *paths, unsigned count, bool direct,
                       bool readonly, struct vs_disk **out, char *errmsg, size_t errmsg_size)
{
    if (count == 0 || count > VS_STORE_DEVS_MAX) {
        snprintf(errmsg, errmsg_size, "need 1 to %u devices, got %u", VS_STORE_DEVS_MAX, count);
        return -EINVAL;
    }
    struct uring_disk *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->base.ops = &uring_ops;
    d->base.dev_count = count;
    d->ring = ring;
    for (unsigned i = 0; i < VS_STORE_DEVS_MAX; i++)
        d->fd[i] = d->slot[i] = -1;
    for (unsigned i = 0; i < count; i++) {
        int rc = open_one(d, i, paths[i], direct, readonly, errmsg, errmsg_size);
        if (rc < 0) {
            uring_destroy(&d->base);
            return rc;
        }
    }
    *out = &d->base;
    return 0;
}
