/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_buf.h -- the NBD server's data buffers: one arena allocated at start-up
 * and carved with a buddy allocator, so requests of any size up to the arena
 * get contiguous, 4096-aligned buffers with no allocation on the data path
 * (STYLE B10).
 *
 * A buffer of n bytes takes the smallest power-of-two block of at least
 * max(n, VS_NBD_BUF_MIN) bytes. Get and put are O(log(arena / VS_NBD_BUF_MIN)).
 * When no block is free, get returns NULL and the caller waits for a put
 * (the server stops reading from that connection: backpressure).
 *
 * The arena is mmap'd, so pages are only touched (and counted in RSS) once
 * a request has used them.
 *
 * Threading: one thread (the loop's). Errors: create returns -ENOMEM/-EINVAL.
 */
#ifndef VSTOR_NBD_BUF_H
#define VSTOR_NBD_BUF_H

#include <stddef.h>
#include <stdint.h>

#define VS_NBD_BUF_MIN 4096u

struct vs_nbd_bufpool;

/* Creates a pool of `bytes` (rounded down to a power of two, at least
 * VS_NBD_BUF_MIN). Returns 0 or a negative errno. */
int vs_nbd_bufpool_create(size_t bytes, struct vs_nbd_bufpool **out);
/* Precondition: every buffer has been put back. */
void vs_nbd_bufpool_destroy(struct vs_nbd_bufpool *p);

/* A buffer of at least len bytes (1 <= len <= vs_nbd_bufpool_size(p)), or
 * NULL when none is free right now. */
void *vs_nbd_buf_get(struct vs_nbd_bufpool *p, size_t len);
/* Returns a buffer obtained from vs_nbd_buf_get. */
void vs_nbd_buf_put(struct vs_nbd_bufpool *p, void *buf);

size_t vs_nbd_bufpool_size(const struct vs_nbd_bufpool *p);
size_t vs_nbd_bufpool_free_bytes(const struct vs_nbd_bufpool *p);

#endif /* VSTOR_NBD_BUF_H */
