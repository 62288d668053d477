/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_ring.h -- one io_uring per process, with completions signalled on an
 * eventfd so any event loop can poll them (the loop/io_uring bridge).
 *
 * Contract:
 *  - Single-threaded: every call happens on the thread that owns the loop.
 *  - Requests are caller-embedded (struct vs_ring_op, no allocation). A caller
 *    gets an SQE with vs_ring_sqe(), fills it with io_uring_prep_*(), and the
 *    op's cb runs exactly once, from vs_ring_process(), with the CQE result
 *    (bytes or -errno). It never runs before vs_ring_sqe()'s caller returns to
 *    the loop.
 *  - Batching: SQEs accumulate until vs_ring_submit(), which the loop glue
 *    calls once per loop turn just before it blocks (a "prepare" hook), so one
 *    turn costs one io_uring_enter no matter how many ops it queued.
 *  - Submit hooks: a module may register a function that runs at the start of
 *    every vs_ring_submit() that has SQEs to submit, to append work that must
 *    ride in the same batch -- the store appends one fsync (IOSQE_IO_DRAIN)
 *    after a turn's writes, which is how group commit costs one syscall.
 *  - Backpressure: vs_ring_sqe() returns NULL when the ring already holds
 *    `entries` ops in flight (so the completion queue can never overflow);
 *    the caller queues the op and retries from a completion callback.
 *
 *  - Owner thread: the ring is created with IORING_SETUP_SINGLE_ISSUER and
 *    DEFER_TASKRUN when the kernel has them (6.1+): only the creating thread
 *    may use it, and a finished io becomes a completion only when that thread
 *    asks the kernel for events -- vs_ring_process() and vs_ring_run_once()
 *    do; vs_ring_cq_ready() also reports work waiting for that. Never peek at
 *    the CQ through vs_ring_uring() directly.
 *
 * Errors: vs_ring_create() returns -errno (for example -ENOMEM, -EPERM when
 * io_uring is disabled) and fills errmsg.
 */
#ifndef VS_RING_H
#define VS_RING_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_ring;

struct vs_ring_op {
    /* Called once with cqe->res. The op may be reused or freed inside cb. */
    void (*cb)(struct vs_ring_op *op, int res);
};

/* Creates a ring with room for `entries` ops in flight (rounded up to a power
 * of two). On error returns -errno and writes a message to errmsg. */
int vs_ring_create(unsigned entries, struct vs_ring **out, char *errmsg, unsigned long errmsg_size);
/* Destroys the ring. Precondition: no ops in flight (vs_ring_inflight() == 0). */
void vs_ring_destroy(struct vs_ring *r);

/* Returns an SQE bound to op (user_data), or NULL if the ring is full. */
struct io_uring_sqe *vs_ring_sqe(struct vs_ring *r, struct vs_ring_op *op);
/* True when the next n vs_ring_sqe() calls will neither fail nor flush the
 * ring (so n SQEs go out together, e.g. an IOSQE_IO_LINK chain). */
bool vs_ring_has_room(const struct vs_ring *r, unsigned n);
/* Registers fn to run inside vs_ring_submit() before the SQEs go to the
 * kernel, whenever there are SQEs to submit. At most VS_RING_HOOKS_MAX hooks;
 * returns 0 or -ENOSPC. The hook may call vs_ring_sqe() to add SQEs. */
#define VS_RING_HOOKS_MAX 8
typedef void (*vs_ring_submit_hook_fn)(void *ctx);
int vs_ring_add_submit_hook(struct vs_ring *r, vs_ring_submit_hook_fn fn, void *ctx);
/* Removes a hook registered with the same fn and ctx; no-op when absent. */
void vs_ring_remove_submit_hook(struct vs_ring *r, vs_ring_submit_hook_fn fn, void *ctx);

/* Submits every queued SQE; returns the number submitted or -errno. */
int vs_ring_submit(struct vs_ring *r);
/* True when SQEs wait for vs_ring_submit(). */
bool vs_ring_has_unsubmitted(const struct vs_ring *r);

/* The eventfd that becomes readable when completions are ready. */
int vs_ring_event_fd(const struct vs_ring *r);
/* Reaps every ready completion and runs its callback; returns the count. */
int vs_ring_process(struct vs_ring *r);
/* True when completions wait to be reaped, as CQEs or as deferred task work
 * that vs_ring_process() turns into CQEs: a memory read, no system call (for
 * a loop that busy-polls instead of waiting for the eventfd). */
bool vs_ring_cq_ready(const struct vs_ring *r);
/* Submits and blocks until at least one completion has been processed or
 * nothing is in flight; for tools and tests that run without a loop. */
int vs_ring_run_once(struct vs_ring *r);

unsigned vs_ring_inflight(const struct vs_ring *r);
unsigned vs_ring_capacity(const struct vs_ring *r);
/* ---- registered buffers and files: optional, they only save kernel work --- */
#define VS_RING_BUFS_MAX 8
#define VS_RING_FILES_MAX 8
/* Registers [base, base + len) (at most 1 GiB) with the kernel, which pins its
 * pages once: reads and writes inside it then skip the per-io page pinning
 * (vs_ring_prep_rw). Returns 0 or -errno (-ENOMEM past RLIMIT_MEMLOCK, -ENOSPC
 * with VS_RING_BUFS_MAX regions, -EINVAL on kernels before 5.19); on error
 * nothing changes and ios on that memory simply go unregistered. The memory
 * must stay allocated until vs_ring_unregister_buffer() or vs_ring_destroy(). */
int vs_ring_register_buffer(struct vs_ring *r, void *base, size_t len);
/* Unregisters the region registered at base; a no-op when there is none. */
void vs_ring_unregister_buffer(struct vs_ring *r, const void *base);
/* The registered region holding all of [p, p + len), or -1. */
int vs_ring_buffer_index(const struct vs_ring *r, const void *p, size_t len);
/* Registers fd: returns its slot (>= 0) for IOSQE_FIXED_FILE, which skips the
 * per-io file lookup, or -errno (-ENOSPC with VS_RING_FILES_MAX files). The fd
 * must stay open until vs_ring_unregister_file(slot), which must come first. */
int vs_ring_register_file(struct vs_ring *r, int fd);
void vs_ring_unregister_file(struct vs_ring *r, int slot);
/* Prepares sqe as a read (or write) of len bytes at buf from offset of fd,
 * through its file slot when slot >= 0, and as READ_FIXED/WRITE_FIXED when
 * the buffer lies in a registered region. */
void vs_ring_prep_rw(struct vs_ring *r, struct io_uring_sqe *sqe, bool write, int fd, int slot,
                     void *buf, unsigned len, uint64_t offset);

/* The underlying io_uring, for what vs_ring does not wrap. */
struct io_uring *vs_ring_uring(struct vs_ring *r);

#endif /* VS_RING_H */
