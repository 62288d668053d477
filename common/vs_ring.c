/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_ring.h"

#include "vs_assert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct vs_ring {
    struct io_uring uring;
    int event_fd;
    unsigned capacity;    /* max ops in flight; the CQ is twice this */
    unsigned inflight;    /* SQEs handed out and not yet completed */
    unsigned unsubmitted; /* SQEs handed out since the last submit */
    unsigned hook_count;
    struct {
        vs_ring_submit_hook_fn fn;
        void *ctx;
    } hooks[VS_RING_HOOKS_MAX];
    /* Registered buffers (slot i of the kernel's table; len 0 = free) and
     * files (-1 = free); each table is created sparse at its first use. */
    unsigned buf_count; /* slots in use */
    bool buf_table, file_table;
    struct {
        uintptr_t base;
        size_t len;
    } bufs[VS_RING_BUFS_MAX];
    int files[VS_RING_FILES_MAX];
};

/* Completions are run as task work only when this thread enters the kernel
 * to get events (DEFER_TASKRUN), never by an interrupt-driven IPI that stops
 * it wherever it is: with 128 reads in flight those IPIs and their signal
 * delivery were a sixth of the CPU (docs/performance.md, "Block store").
 * The price: the ring belongs to the thread that created it (SINGLE_ISSUER),
 * and a completion is visible only after io_uring_enter(GETEVENTS) -- reap()
 * does that whenever the kernel flags pending work (IORING_SQ_TASKRUN). Older
 * kernels refuse these flags with -EINVAL: then the ring runs without them. */
static int ring_init(struct vs_ring *r, unsigned cap)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
              IORING_SETUP_TASKRUN_FLAG;
    p.cq_entries = cap * 2;
    int rc = io_uring_queue_init_params(cap, &r->uring, &p);
    if (rc != -EINVAL)
        return rc;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = cap * 2;
    return io_uring_queue_init_params(cap, &r->uring, &p);
}

int vs_ring_create(unsigned entries, struct vs_ring **out, char *errmsg, unsigned long errmsg_size)
{
    struct vs_ring *r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errmsg, errmsg_size, "io_uring: out of memory");
        return -ENOMEM;
    }
    unsigned cap = 1;
    while (cap < entries)
        cap <<= 1;
    int rc = ring_init(r, cap);
    if (rc < 0) {
        snprintf(errmsg, errmsg_size, "io_uring_queue_init(%u): %s", cap, strerror(-rc));
        goto err_after_alloc;
    }
    r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->event_fd < 0) {
        rc = -errno;
        snprintf(errmsg, errmsg_size, "eventfd: %s", strerror(errno));
        goto err_after_queue;
    }
    rc = io_uring_register_eventfd(&r->uring, r->event_fd);
    if (rc < 0) {
        snprintf(errmsg, errmsg_size, "io_uring_register_eventfd: %s", strerror(-rc));
        goto err_after_eventfd;
    }
    r->capacity = cap;
    for (unsigned i = 0; i < VS_RING_FILES_MAX; i++)
        r->files[i] = -1;
    *out = r;
    return 0;

err_after_eventfd:
    close(r->event_fd);
err_after_queue:
    io_uring_queue_exit(&r->uring);
err_after_alloc:
    free(r);
    VS_ASSERT(rc < 0);
    return rc;
}

void vs_ring_destroy(struct vs_ring *r)
{
    if (!r)
        return;
    VS_ASSERTF(r->inflight == 0, "inflight=%u", r->inflight);
    io_uring_unregister_eventfd(&r->uring);
    close(r->event_fd);
    io_uring_queue_exit(&r->uring);
    free(r);
}

struct io_uring_sqe *vs_ring_sqe(struct vs_ring *r, struct vs_ring_op *op)
{
    VS_ASSERT(op != NULL && op->cb != NULL);
    if (r->inflight >= r->capacity)
        return NULL;
    struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
    if (!sqe) {
        /* SQ ring full of unsubmitted entries: flush them and try again. */
        if (vs_ring_submit(r) < 0)
            return NULL;
        sqe = io_uring_get_sqe(&r->uring);
        if (!sqe)
            return NULL;
    }
    io_uring_sqe_set_data(sqe, op);
    r->inflight++;
    r->unsubmitted++;
    return sqe;
}

bool vs_ring_has_room(const struct vs_ring *r, unsigned n)
{
    return r->inflight + n <= r->capacity && io_uring_sq_space_left(&r->uring) >= n;
}

int vs_ring_add_submit_hook(struct vs_ring *r, vs_ring_submit_hook_fn fn, void *ctx)
{
    VS_ASSERT(fn != NULL);
    if (r->hook_count >= VS_RING_HOOKS_MAX)
        return -ENOSPC;
    r->hooks[r->hook_count].fn = fn;
    r->hooks[r->hook_count].ctx = ctx;
    r->hook_count++;
    return 0;
}

void vs_ring_remove_submit_hook(struct vs_ring *r, vs_ring_submit_hook_fn fn, void *ctx)
{
    for (unsigned i = 0; i < r->hook_count; i++) {
        if (r->hooks[i].fn == fn && r->hooks[i].ctx == ctx) {
            memmove(&r->hooks[i], &r->hooks[i + 1], (r->hook_count - i - 1) * sizeof(r->hooks[0]));
            r->hook_count--;
            return;
        }
    }
}

static void run_hooks(struct vs_ring *r)
{
    for (unsigned i = 0; i < r->hook_count; i++)
        r->hooks[i].fn(r->hooks[i].ctx);
}

int vs_ring_submit(struct vs_ring *r)
{
    if (r->unsubmitted == 0)
        return 0;
    run_hooks(r);
    int rc;
    do {
        rc = io_uring_submit(&r->uring);
    } while (rc == -EINTR);
    if (rc >= 0) {
        r->unsubmitted -= VS_MIN((unsigned)rc, r->unsubmitted);
    }
    return rc;
}

bool vs_ring_has_unsubmitted(const struct vs_ring *r)
{
    return r->unsubmitted > 0;
}

int vs_ring_event_fd(const struct vs_ring *r)
{
    return r->event_fd;
}

/* Runs the callbacks of every ready completion; returns the count. */
static int reap(struct vs_ring *r)
{
    int done = 0;
    struct io_uring_cqe *cqe;
    for (;;) {
        if (io_uring_peek_cqe(&r->uring, &cqe) != 0) {
            /* Deferred task work pending: run it (it posts the CQEs). */
            if (!(IO_URING_READ_ONCE(*r->uring.sq.kflags) & IORING_SQ_TASKRUN) ||
                io_uring_get_events(&r->uring) < 0 || io_uring_peek_cqe(&r->uring, &cqe) != 0)
                break;
        }
        struct vs_ring_op *op = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&r->uring, cqe);
        VS_ASSERT(op != NULL);
        VS_ASSERT(r->inflight > 0);
        r->inflight--;
        op->cb(op, res);
        done++;
    }
    return done;
}

int vs_ring_process(struct vs_ring *r)
{
    uint64_t counter;
    /* Clear the eventfd first: a completion posted after this read re-arms it,
     * so no completion can be left behind unsignalled. */
    ssize_t n = read(r->event_fd, &counter, sizeof(counter));
    (void)n;
    return reap(r);
}

bool vs_ring_cq_ready(const struct vs_ring *r)
{
    /* Under DEFER_TASKRUN a finished io is first task work (IORING_SQ_TASKRUN)
     * and becomes a CQE only in vs_ring_process(): both count as ready. */
    return io_uring_cq_ready(&r->uring) > 0 ||
           (IO_URING_READ_ONCE(*r->uring.sq.kflags) & IORING_SQ_TASKRUN) != 0;
}

/* One io_uring_enter both submits and waits, and the eventfd is left alone
 * (nobody polls it here; a loop that does clears it in vs_ring_process): at
 * queue depth 1 that is one system call per io instead of three. */
int vs_ring_run_once(struct vs_ring *r)
{
    int rc;
    if (r->unsubmitted > 0) {
        run_hooks(r);
        do {
            rc = io_uring_submit_and_wait(&r->uring, 1);
        } while (rc == -EINTR);
        if (rc < 0)
            return rc;
        r->unsubmitted -= VS_MIN((unsigned)rc, r->unsubmitted);
    }
    if (r->inflight == 0)
        return 0;
    int done = reap(r);
    if (done > 0)
        return done;
    struct io_uring_cqe *cqe;
    do {
        rc = io_uring_wait_cqe(&r->uring, &cqe);
    } while (rc == -EINTR);
    if (rc < 0)
        return rc;
    return reap(r);
}

unsigned vs_ring_inflight(const struct vs_ring *r)
{
    return r->inflight;
}

unsigned vs_ring_capacity(const struct vs_ring *r)
{
    return r->capacity;
}

struct io_uring *vs_ring_uring(struct vs_ring *r)
{
    return &r->uring;
}

/* ---- registered buffers and files ------------------------------------------ */

int vs_ring_register_buffer(struct vs_ring *r, void *base, size_t len)
{
    if (!base || len == 0)
        return -EINVAL;
    if (!r->buf_table) {
        int rc = io_uring_register_buffers_sparse(&r->uring, VS_RING_BUFS_MAX);
        if (rc < 0)
            return rc;
        r->buf_table = true;
    }
    unsigned i = 0;
    while (i < VS_RING_BUFS_MAX && r->bufs[i].len)
        i++;
    if (i == VS_RING_BUFS_MAX)
        return -ENOSPC;
    struct iovec iov = {base, len};
    __u64 tag = 0;
    int rc = io_uring_register_buffers_update_tag(&r->uring, i, &iov, &tag, 1);
    if (rc < 0)
        return rc;
    r->bufs[i].base = (uintptr_t)base;
    r->bufs[i].len = len;
    r->buf_count++;
    return 0;
}

void vs_ring_unregister_buffer(struct vs_ring *r, const void *base)
{
    for (unsigned i = 0; i < VS_RING_BUFS_MAX; i++) {
        if (!r->bufs[i].len || r->bufs[i].base != (uintptr_t)base)
            continue;
        /* An io still using it keeps the pages pinned until it completes. */
        struct iovec iov = {NULL, 0};
        __u64 tag = 0;
        int rc = io_uring_register_buffers_update_tag(&r->uring, i, &iov, &tag, 1);
        VS_ASSERTF(rc >= 0, "unregister buffer %u: %d", i, rc);
        r->bufs[i].len = 0;
        r->buf_count--;
        return;
    }
}

int vs_ring_buffer_index(const struct vs_ring *r, const void *p, size_t len)
{
    if (r->buf_count == 0)
        return -1;
    uintptr_t a = (uintptr_t)p;
    for (unsigned i = 0; i < VS_RING_BUFS_MAX; i++)
        if (r->bufs[i].len && a >= r->bufs[i].base &&
            a - r->bufs[i].base + len <= r->bufs[i].len)
            return (int)i;
    return -1;
}

int vs_ring_register_file(struct vs_ring *r, int fd)
{
    if (fd < 0)
        return -EBADF;
    if (!r->file_table) {
        int rc = io_uring_register_files_sparse(&r->uring, VS_RING_FILES_MAX);
        if (rc < 0)
            return rc;
        r->file_table = true;
    }
    unsigned i = 0;
    while (i < VS_RING_FILES_MAX && r->files[i] >= 0)
        i++;
    if (i == VS_RING_FILES_MAX)
        return -ENOSPC;
    int rc = io_uring_register_files_update(&r->uring, i, &fd, 1);
    if (rc < 0)
        return rc;
    r->files[i] = fd;
    return (int)i;
}

void vs_ring_unregister_file(struct vs_ring *r, int slot)
{
    VS_ASSERT(slot >= 0 && slot < VS_RING_FILES_MAX && r->files[slot] >= 0);
    /* The kernel drops its file reference once no io uses the slot, so a
     * close() right after releases the file (and its flock). */
    int none = -1;
    int rc = io_uring_register_files_update(&r->uring, (unsigned)slot, &none, 1);
    VS_ASSERTF(rc >= 0, "unregister file %d: %d", slot, rc);
    r->files[slot] = -1;
}

void vs_ring_prep_rw(struct vs_ring *r, struct io_uring_sqe *sqe, bool write, int fd, int slot,
                     void *buf, unsigned len, uint64_t offset)
{
    int bi = vs_ring_buffer_index(r, buf, len);
    int f = slot >= 0 ? slot : fd;
    if (bi >= 0 && write)
        io_uring_prep_write_fixed(sqe, f, buf, len, offset, bi);
    else if (bi >= 0)
        io_uring_prep_read_fixed(sqe, f, buf, len, offset, bi);
    else if (write)
        io_uring_prep_write(sqe, f, buf, len, offset);
    else
        io_uring_prep_read(sqe, f, buf, len, offset);
    if (slot >= 0)
        sqe->flags |= IOSQE_FIXED_FILE;
}
