/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_file.h -- an NBD backend (nbd_backend.h) over a local regular file or
 * block device, through the process's io_uring (common/vs_ring.h, bridged to
 * the loop by vstor/loop.h). It serves `vstor nbd-export --file` and
 * `vstor map --file`: a developer and test mode, and the baseline against
 * which the NBD layer's own overhead is measured.
 *
 * Behaviour:
 *  - O_DIRECT when the file system allows it (then block_min_bytes is the
 *    direct-I/O alignment from statx, or the device's logical block size),
 *    else the page cache with block_min_bytes = 1;
 *  - write FUA is a write with RWF_DSYNC; flush is fdatasync; both cover the
 *    whole file, so flush_is_global is true (multi-conn is safe);
 *  - trim punches a hole (FALLOC_FL_PUNCH_HOLE), and is a no-op where that is
 *    unsupported; write_zeroes punches a hole, or with NO_HOLE uses
 *    FALLOC_FL_ZERO_RANGE, and falls back to writing zeroes (or -ENOTSUP
 *    with FAST_ZERO) where the file system has neither;
 *  - a writable export takes an exclusive flock(2) on a regular file, and
 *    opens a block device with O_EXCL, so two exports (or an export and a
 *    mount) never write the same device; a read-only export takes a shared
 *    lock.
 *  - the size is fixed at open (rounded down to block_min_bytes).
 *
 * Errors from vs_nbd_file_open: a negative errno with err filled ("PATH: ...").
 */
#ifndef VSTOR_NBD_FILE_H
#define VSTOR_NBD_FILE_H

#include "nbd_backend.h"

#include <stdbool.h>
#include <stddef.h>

struct vs_loop;

/* Opens path for serving. Precondition: loop was initialised with a ring. */
int vs_nbd_file_open(struct vs_loop *loop, const char *path, bool read_only,
                     struct vs_nbd_backend **out, char *err, size_t err_size);

#endif /* VSTOR_NBD_FILE_H */
