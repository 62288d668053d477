/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_file.c -- the file backend: NBD ops as io_uring ops on one fd.
 *
 * NOTES
 * (1) Each vs_nbd_io runs a small state machine in its private area (struct
 *     file_op): one or more io_uring ops in sequence (a short read or write
 *     continues where it stopped; trim and write_zeroes with FUA end with an
 *     fdatasync), then io->cb once (nbd_backend.h, B9).
 * (2) When the ring is full, vs_ring_sqe() returns NULL; the op waits in a
 *     FIFO and is retried from our own completions, or -- when none of ours
 *     is in flight, the ring being full of other modules' ops -- from a
 *     uv_check handle that runs after every loop turn while the FIFO is
 *     non-empty. No op is ever dropped or failed for want of a slot.
 * (3) fallocate support is learned: the first -EOPNOTSUPP for a mode turns
 *     that mode off for this backend, so later write_zeroes go straight to
 *     the fallback, and FAST_ZERO requests fail fast with -ENOTSUP.
 */
#include "nbd_file.h"

#include "loop.h"
#include "nbd_proto.h"
#include "vs_assert.h"
#include "vs_log.h"
#include "vs_ring.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define ZEROES_BYTES (1u << 20)

enum step {
    STEP_READ,
    STEP_WRITE,
    STEP_FSYNC,
    STEP_PUNCH,      /* fallocate(PUNCH_HOLE | KEEP_SIZE) */
    STEP_ZERO_RANGE, /* fallocate(ZERO_RANGE | KEEP_SIZE) */
    STEP_WRITE_ZERO, /* write from the shared zero buffer */
    STEP_NOP,        /* completes at once (a trim the file system cannot do) */
};

struct file_backend;

/* The per-io private area (props.io_priv_bytes). */
struct file_op {
    struct vs_ring_op rop; /* first: the ring hands this pointer back */
    struct file_backend *fb;
    struct vs_nbd_io *io;
    enum step step;
    bool is_trim;
    uint32_t done; /* bytes done by the current read/write step */
    struct file_op *next_wait;
};

struct file_backend {
    struct vs_nbd_backend be; /* first */
    struct vs_loop *loop;
    int fd;
    bool direct;
    bool punch_ok, zero_range_ok; /* NOTES (3) */
    void *zeroes;
    unsigned inflight;
    struct file_op *wait_head, *wait_tail; /* NOTES (2) */
    uv_check_t retry;
    vs_nbd_backend_close_cb close_cb;
    void *close_arg;
    char path[200];
};

static void op_submit(struct file_op *op);

static void op_finish(struct file_op *op, int res)
{
    struct file_backend *fb = op->fb;
    VS_ASSERT(fb->inflight > 0);
    fb->inflight--;
    op->io->cb(op->io, res);
}

/* The next step after a successful fallocate or zero-write pass. */
static void op_after_zeroing(struct file_op *op)
{
    if (op->io->flags & VS_NBD_IO_FUA) {
        op->step = STEP_FSYNC;
        op_submit(op);
    } else {
        op_finish(op, 0);
    }
}

/* fallocate failed with res: learn, then fall back or fail (NOTES 3). */
static void op_falloc_failed(struct file_op *op, int res)
{
    struct file_backend *fb = op->fb;
    if (res != -EOPNOTSUPP && res != -EINVAL) {
        op_finish(op, res);
        return;
    }
    if (op->step == STEP_PUNCH)
        fb->punch_ok = false;
    else
        fb->zero_range_ok = false;
    VS_INFO("nbd", "%s: fallocate mode unsupported (%s); writing zeroes instead", fb->path,
            strerror(-res));
    if (op->is_trim) {
        op_finish(op, 0); /* trim is only a hint */
    } else if (op->io->flags & VS_NBD_IO_FAST_ZERO) {
        op_finish(op, -ENOTSUP);
    } else {
        op->step = STEP_WRITE_ZERO;
        op->done = 0;
        op_submit(op);
    }
}

/* A read or write step moved res > 0 bytes: continue or finish. */
static void op_rw_progress(struct file_op *op, int res)
{
    op->done += (uint32_t)res;
    VS_ASSERT(op->done <= op->io->length);
    if (op->done < op->io->length)
        op_submit(op);
    else if (op->step == STEP_WRITE_ZERO)
        op_after_zeroing(op);
    else
        op_finish(op, 0);
}

static void drain_waiters(struct file_backend *fb);
static void retry_cb(uv_check_t *h);

static void op_ring_cb(struct vs_ring_op *rop, int res)
{
    struct file_op *op = (struct file_op *)rop;
    struct file_backend *fb = op->fb;
    if (res == -EAGAIN || res == -EINTR) {
        op_submit(op);
    } else if (op->step == STEP_PUNCH || op->step == STEP_ZERO_RANGE) {
        if (res < 0)
            op_falloc_failed(op, res);
        else if (op->is_trim && !(op->io->flags & VS_NBD_IO_FUA))
            op_finish(op, 0);
        else
            op_after_zeroing(op);
    } else if (op->step == STEP_FSYNC || op->step == STEP_NOP) {
        op_finish(op, res < 0 ? res : 0);
    } else if (res < 0) {
        op_finish(op, res);
    } else if (res == 0) {
        /* End of file inside the export: the file shrank under us. */
        VS_ERROR("nbd", "%s: unexpected end of file at %llu", fb->path,
                 (unsigned long long)(op->io->offset + op->done));
        op_finish(op, -EIO);
    } else {
        op_rw_progress(op, res);
    }
    if (fb->wait_head) /* a slot is free now (NOTES 2) */
        drain_waiters(fb);
}

static void prep(struct file_op *op, struct io_uring_sqe *sqe)
{
    struct file_backend *fb = op->fb;
    struct vs_nbd_io *io = op->io;
    uint64_t off = io->offset + op->done;
    uint32_t left = io->length - op->done;
    switch (op->step) {
    case STEP_READ:
        io_uring_prep_read(sqe, fb->fd, (char *)io->buf + op->done, left, off);
        break;
    case STEP_WRITE:
        io_uring_prep_write(sqe, fb->fd, (char *)io->buf + op->done, left, off);
        if (io->flags & VS_NBD_IO_FUA)
            sqe->rw_flags = RWF_DSYNC;
        break;
    case STEP_WRITE_ZERO:
        io_uring_prep_write(sqe, fb->fd, fb->zeroes, left < ZEROES_BYTES ? left : ZEROES_BYTES,
                            off);
        break;
    case STEP_FSYNC:
        io_uring_prep_fsync(sqe, fb->fd, IORING_FSYNC_DATASYNC);
        break;
    case STEP_NOP:
        io_uring_prep_nop(sqe);
        break;
    case STEP_PUNCH:
        io_uring_prep_fallocate(sqe, fb->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, io->offset,
                                io->length);
        break;
    case STEP_ZERO_RANGE:
        io_uring_prep_fallocate(sqe, fb->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, io->offset,
                                io->length);
        break;
    }
}

static void wait_push(struct file_backend *fb, struct file_op *op)
{
    op->next_wait = NULL;
    if (fb->wait_tail)
        fb->wait_tail->next_wait = op;
    else
        fb->wait_head = op;
    fb->wait_tail = op;
    if (!uv_is_active((uv_handle_t *)&fb->retry))
        uv_check_start(&fb->retry, retry_cb);
}

/* Queues the op's current step, in FIFO order behind any waiting op. */
static void op_submit(struct file_op *op)
{
    struct file_backend *fb = op->fb;
    struct io_uring_sqe *sqe = NULL;
    if (!fb->wait_head)
        sqe = vs_ring_sqe(fb->loop->ring, &op->rop);
    if (!sqe) {
        wait_push(fb, op);
        return;
    }
    prep(op, sqe);
}

static void drain_waiters(struct file_backend *fb)
{
    while (fb->wait_head) {
        struct file_op *op = fb->wait_head;
        struct io_uring_sqe *sqe = vs_ring_sqe(fb->loop->ring, &op->rop);
        if (!sqe)
            return;
        fb->wait_head = op->next_wait;
        if (!fb->wait_head)
            fb->wait_tail = NULL;
        prep(op, sqe);
    }
    uv_check_stop(&fb->retry);
}

static void retry_cb(uv_check_t *h)
{
    drain_waiters(h->data);
}

/* ---- The ops ------------------------------------------------------------ */

static int op_start(struct vs_nbd_backend *be, struct vs_nbd_io *io, enum step step, bool is_trim)
{
    struct file_backend *fb = (struct file_backend *)be;
    struct file_op *op = io->priv;
    VS_ASSERT(fb->close_cb == NULL);
    op->rop.cb = op_ring_cb;
    op->fb = fb;
    op->io = io;
    op->step = step;
    op->is_trim = is_trim;
    op->done = 0;
    fb->inflight++;
    op_submit(op);
    return 0;
}

static int file_read(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    return op_start(be, io, STEP_READ, false);
}

static int file_write(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    VS_ASSERT(!be->props.read_only);
    return op_start(be, io, STEP_WRITE, false);
}

static int file_flush(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    return op_start(be, io, STEP_FSYNC, false);
}

static int file_trim(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    struct file_backend *fb = (struct file_backend *)be;
    VS_ASSERT(!be->props.read_only);
    if (!fb->punch_ok) /* a hint we cannot act on; FUA still means durable */
        return op_start(be, io, (io->flags & VS_NBD_IO_FUA) ? STEP_FSYNC : STEP_NOP, true);
    return op_start(be, io, STEP_PUNCH, true);
}

static int file_write_zeroes(struct vs_nbd_backend *be, struct vs_nbd_io *io)
{
    struct file_backend *fb = (struct file_backend *)be;
    VS_ASSERT(!be->props.read_only);
    bool no_hole = (io->flags & VS_NBD_IO_NO_HOLE) != 0;
    bool fast_ok = no_hole ? fb->zero_range_ok : fb->punch_ok;
    if (!fast_ok && (io->flags & VS_NBD_IO_FAST_ZERO))
        return -ENOTSUP; /* fails at once, changing nothing */
    if (!fast_ok)
        return op_start(be, io, STEP_WRITE_ZERO, false);
    return op_start(be, io, no_hole ? STEP_ZERO_RANGE : STEP_PUNCH, false);
}

static void retry_closed_cb(uv_handle_t *h)
{
    struct file_backend *fb = h->data;
    vs_nbd_backend_close_cb cb = fb->close_cb;
    void *arg = fb->close_arg;
    free(fb->zeroes);
    free(fb);
    cb(arg);
}

static void file_close(struct vs_nbd_backend *be, vs_nbd_backend_close_cb cb, void *arg)
{
    struct file_backend *fb = (struct file_backend *)be;
    VS_ASSERTF(fb->inflight == 0, "inflight=%u", fb->inflight);
    VS_ASSERT(cb != NULL);
    /* A last fdatasync, so data acknowledged without FUA survives a power
     * loss right after a clean stop. Blocking is fine here: we are stopping. */
    if (!be->props.read_only && fdatasync(fb->fd) != 0)
        VS_WARN("nbd", "%s: fdatasync at close: %s", fb->path, strerror(errno));
    close(fb->fd);
    fb->close_cb = cb;
    fb->close_arg = arg;
    uv_close((uv_handle_t *)&fb->retry, retry_closed_cb);
}

static const struct vs_nbd_backend_ops file_ops = {
    .name = "file",
    .read = file_read,
    .write = file_write,
    .flush = file_flush,
    .trim = file_trim,
    .write_zeroes = file_write_zeroes,
    .close = file_close,
};

/* ---- Open --------------------------------------------------------------- */

/* The direct-I/O offset alignment of a regular file, or 4096 if unknown. */
static uint32_t file_dio_align(int fd)
{
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN) && stx.stx_dio_offset_align != 0 &&
        stx.stx_dio_offset_align <= 65536 && stx.stx_dio_mem_align <= 4096)
        return stx.stx_dio_offset_align;
    return 4096;
}

static int open_fd(struct file_backend *fb, const char *path, bool read_only, bool blockdev,
                   char *err, size_t err_size)
{
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (blockdev && !read_only)
        flags |= O_EXCL; /* refused while mounted or exported elsewhere */
    fb->fd = open(path, flags | O_DIRECT);
    fb->direct = fb->fd >= 0;
    if (fb->fd < 0 && errno == EINVAL) {
        VS_INFO("nbd", "%s: O_DIRECT not supported here; using the page cache", path);
        fb->fd = open(path, flags);
    }
    if (fb->fd < 0) {
        int rc = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return rc;
    }
    if (!blockdev && flock(fb->fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        int rc = -errno;
        snprintf(err, err_size, "%s: %s", path,
                 errno == EWOULDBLOCK ? "in use by another process (file is locked)"
                                      : strerror(errno));
        return rc;
    }
    return 0;
}

/* Size and block sizes into fb->be.props. */
static int probe_geometry(struct file_backend *fb, const struct stat *st, bool blockdev, char *err,
                          size_t err_size)
{
    struct vs_nbd_backend_props *p = &fb->be.props;
    uint64_t size = (uint64_t)st->st_size;
    uint32_t min = 1, pref = 4096;
    if (blockdev) {
        int lbs = 512, pbs = 4096;
        if (ioctl(fb->fd, BLKGETSIZE64, &size) != 0 || ioctl(fb->fd, BLKSSZGET, &lbs) != 0) {
            int rc = -errno;
            snprintf(err, err_size, "%s: block device size: %s", fb->path, strerror(-rc));
            return rc;
        }
        if (ioctl(fb->fd, BLKPBSZGET, &pbs) != 0)
            pbs = 4096;
        min = fb->direct ? (uint32_t)lbs : 1;
        pref = VS_MAX((uint32_t)pbs, 4096u);
    } else if (fb->direct) {
        min = file_dio_align(fb->fd);
    }
    pref = VS_MAX(pref, min);
    p->size_bytes = size / min * min;
    if (p->size_bytes == 0) {
        snprintf(err, err_size,
                 "%s: size %llu is too small to serve (create it with "
                 "`truncate -s 1G %s`)",
                 fb->path, (unsigned long long)size, fb->path);
        return -EINVAL;
    }
    if (p->size_bytes != size)
        VS_WARN("nbd", "%s: the last %llu bytes are not served (not a multiple of %u)", fb->path,
                (unsigned long long)(size - p->size_bytes), min);
    p->block_min_bytes = min;
    p->block_pref_bytes = pref;
    p->block_max_bytes = VS_NBD_PAYLOAD_MAX;
    return 0;
}

static void fill_props(struct file_backend *fb, bool read_only, bool blockdev)
{
    struct vs_nbd_backend_props *p = &fb->be.props;
    p->io_priv_bytes = sizeof(struct file_op);
    p->read_only = read_only;
    p->flush_is_global = true; /* fdatasync covers every write to the file */
    p->can_fast_zero = true;
    fb->punch_ok = true;
    fb->zero_range_ok = true;
    fb->be.ops = &file_ops;
    snprintf(fb->be.desc, sizeof(fb->be.desc), "%s %s%s%s", blockdev ? "block device" : "file",
             fb->path, fb->direct ? " (O_DIRECT)" : " (page cache)", read_only ? " read-only" : "");
}

int vs_nbd_file_open(struct vs_loop *loop, const char *path, bool read_only,
                     struct vs_nbd_backend **out, char *err, size_t err_size)
{
    VS_ASSERT(loop->ring != NULL);
    struct stat st;
    if (stat(path, &st) != 0) {
        int rc = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(-rc));
        return rc;
    }
    bool blockdev = S_ISBLK(st.st_mode);
    if (!blockdev && !S_ISREG(st.st_mode)) {
        snprintf(err, err_size, "%s: not a regular file or a block device", path);
        return -EINVAL;
    }
    struct file_backend *fb = calloc(1, sizeof(*fb));
    void *zeroes = NULL;
    if (!fb || posix_memalign(&zeroes, 4096, ZEROES_BYTES) != 0) {
        free(fb);
        snprintf(err, err_size, "%s: out of memory", path);
        return -ENOMEM;
    }
    memset(zeroes, 0, ZEROES_BYTES);
    fb->zeroes = zeroes;
    fb->loop = loop;
    snprintf(fb->path, sizeof(fb->path), "%s", path);
    int rc = open_fd(fb, path, read_only, blockdev, err, err_size);
    if (rc == 0)
        rc = probe_geometry(fb, &st, blockdev, err, err_size);
    if (rc < 0)
        goto err_after_alloc;
    fill_props(fb, read_only, blockdev);
    uv_check_init(&loop->uv, &fb->retry);
    uv_unref((uv_handle_t *)&fb->retry);
    fb->retry.data = fb;
    *out = &fb->be;
    return 0;

err_after_alloc:
    if (fb->fd >= 0)
        close(fb->fd);
    free(fb->zeroes);
    free(fb);
    VS_ASSERT(rc < 0);
    return rc;
}
