/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_image.h -- the NBD backend (nbd_backend.h) over a vstor image, through
 * libvstor (vstor/client/vstor.h): what `vstor nbd-export --image` and
 * `vstor map --image` serve.
 *
 * Behaviour:
 *  - reads and writes go to the image through the client, which retries
 *    every transient cluster error: an OSD restart pauses NBD requests, it
 *    never fails them;
 *  - flush is vstor_sync(); the one client of the process carries every
 *    connection's writes, so a flush covers them all (flush_is_global: NBD
 *    multi-conn is safe);
 *  - a FUA write on a lazy pool is a write followed by a sync; on a pool with
 *    immediate commit every acknowledged write is already durable;
 *  - trim discards; write_zeroes discards (the range then reads as zeroes),
 *    or with NO_HOLE writes zeroes; FAST_ZERO with NO_HOLE is -ENOTSUP;
 *  - block sizes: 4 KiB minimum and preferred, 32 MiB maximum; the size is
 *    the image's size when opened.
 */
#ifndef VSTOR_NBD_IMAGE_H
#define VSTOR_NBD_IMAGE_H

#include "nbd_backend.h"

#include <stdbool.h>
#include <stddef.h>

struct vs_loop;
struct vs_config;

/* Connects to the cluster named by cfg (mon_address) and opens image `name`,
 * running the loop until that is done or cfg->meta_timeout passes. Returns 0
 * or a negative code with a sentence in err ("image 'x' not found"). */
int vs_nbd_image_open(struct vs_loop *loop, const char *name, bool read_only,
                      const struct vs_config *cfg, struct vs_nbd_backend **out, char *err,
                      size_t err_size);

#endif /* VSTOR_NBD_IMAGE_H */
