/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_backend.h -- the block backend the NBD server serves: an asynchronous
 * byte-addressed disk with read, write (optionally FUA), flush, trim and
 * write-zeroes. The file backend (nbd_file.h) implements it today; libvstor
 * will implement it for `--image NAME`.
 *
 * Threading: every call is made on the process's loop thread, and every
 * completion callback runs on that thread.
 *
 * The async contract (STYLE B9), which every backend must keep:
 *  - If an op function returns a negative errno, io->cb is never called.
 *  - If it returns 0, io->cb runs exactly once, and never before the op
 *    function has returned (so never from inside it).
 *  - res passed to io->cb is 0 on success or a negative errno. -ENOTSUP is
 *    allowed only for a write_zeroes with VS_NBD_IO_FAST_ZERO.
 *  - close() is called only with no op in flight; its cb runs exactly once,
 *    never before close() returns, after which the backend's memory is gone.
 *
 * What the server guarantees to the backend for every op:
 *  - offset and length are multiples of props.block_min_bytes, length > 0,
 *    and offset + length <= props.size_bytes;
 *  - read and write lengths are at most props.block_max_bytes;
 *  - buf (read and write only) is aligned to 4096 bytes and holds length
 *    bytes; it stays valid and untouched until cb runs;
 *  - io->priv points to props.io_priv_bytes bytes (16-byte aligned) that the
 *    backend may use freely until cb runs -- so a backend needs no
 *    allocation per op;
 *  - no op is submitted on a read_only backend except read and flush;
 *  - trim is submitted only if ops->trim is not NULL.
 *
 * What the backend guarantees (the durability contract, as for a disk):
 *  - ops in flight at the same time have no order between them;
 *  - after a read's cb, buf holds the data of the latest completed writes;
 *  - a write or write_zeroes with VS_NBD_IO_FUA completes only once its data
 *    is durable;
 *  - a flush completes only once every write that completed before the flush
 *    was submitted is durable. If props.flush_is_global, this holds for the
 *    writes of every user of this backend object, not just the caller's: the
 *    server then lets clients use several connections (NBD multi-conn),
 *    because a FLUSH on one connection covers WRITEs answered on another;
 *  - write_zeroes: afterwards the range reads as zeroes. Without
 *    VS_NBD_IO_NO_HOLE it may deallocate the range; with it the range stays
 *    allocated. With VS_NBD_IO_FAST_ZERO it must fail at once with -ENOTSUP,
 *    changing nothing, unless it is cheaper than writing the zeroes;
 *  - trim is a hint: afterwards the range holds unspecified data.
 */
#ifndef VSTOR_NBD_BACKEND_H
#define VSTOR_NBD_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vs_nbd_backend;

/* io->flags */
#define VS_NBD_IO_FUA       (1u << 0) /* write, trim, write_zeroes: durable before cb */
#define VS_NBD_IO_NO_HOLE   (1u << 1) /* write_zeroes: keep the range allocated */
#define VS_NBD_IO_FAST_ZERO (1u << 2) /* write_zeroes: -ENOTSUP unless cheap */

/* One request, embedded in the caller's own request slot (no allocation). The
 * caller fills every field but priv's contents before calling an op. */
struct vs_nbd_io {
    uint64_t offset;
    uint32_t length;
    uint32_t flags; /* VS_NBD_IO_* */
    void *buf;      /* read: destination; write: source; NULL otherwise */
    void (*cb)(struct vs_nbd_io *io, int res);
    void *priv; /* props.io_priv_bytes bytes for the backend */
};

struct vs_nbd_backend_props {
    uint64_t size_bytes;       /* a multiple of block_min_bytes, > 0 */
    uint32_t block_min_bytes;  /* power of 2, 1..65536: alignment of offset and length */
    uint32_t block_pref_bytes; /* power of 2 >= max(block_min_bytes, 512) */
    uint32_t block_max_bytes;  /* largest read/write; multiple of block_min_bytes */
    uint32_t io_priv_bytes;    /* per-op private area the caller provides */
    bool read_only;
    bool flush_is_global; /* see the durability contract above */
    bool can_fast_zero;   /* write_zeroes honours VS_NBD_IO_FAST_ZERO */
};

typedef void (*vs_nbd_backend_close_cb)(void *arg);

struct vs_nbd_backend_ops {
    const char *name; /* "file", for logs */
    int (*read)(struct vs_nbd_backend *be, struct vs_nbd_io *io);
    int (*write)(struct vs_nbd_backend *be, struct vs_nbd_io *io);
    int (*flush)(struct vs_nbd_backend *be, struct vs_nbd_io *io);
    int (*trim)(struct vs_nbd_backend *be, struct vs_nbd_io *io); /* NULL: not offered */
    int (*write_zeroes)(struct vs_nbd_backend *be, struct vs_nbd_io *io);
    /* Flushes what it can, releases everything, then calls cb(arg). */
    void (*close)(struct vs_nbd_backend *be, vs_nbd_backend_close_cb cb, void *arg);
};

/* A backend object starts with this struct; its open function (for example
 * vs_nbd_file_open) fills it. props are fixed for the backend's lifetime. */
struct vs_nbd_backend {
    const struct vs_nbd_backend_ops *ops;
    struct vs_nbd_backend_props props;
    char desc[256]; /* what is served, for logs and NBD_INFO_DESCRIPTION */
};

#endif /* VSTOR_NBD_BACKEND_H */
