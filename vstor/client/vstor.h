/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vstor.h -- libvstor, the vstor client library: block I/O on vstor images.
 *
 * CONTRACT (read this first; docs/client.md has the long form)
 *
 * Threads and loops. A client runs on ONE libuv loop supplied by the caller,
 * on the thread that runs it. No function is thread-safe. Every callback runs
 * on that loop. The blocking wrappers (vstor_blk_*) run a private loop of
 * their own and must not be called from a loop callback.
 *
 * Async contract (as libuv): when a function that takes a callback returns an
 * error, the callback never runs. When it returns 0 the callback runs exactly
 * once, and never before the function has returned.
 *
 * What the client does for you:
 *  - It follows the cluster through the metadata service (pools, the PG map,
 *    OSD addresses, the image's size and state), resuming its watches after
 *    any outage.
 *  - It splits every op at object boundaries and sends each part to the
 *    primary OSD of its placement group.
 *  - It retries every transient error until the op completes: PG not active,
 *    not the primary, stale epoch, connection lost, OSD restarting, metadata
 *    service unreachable. A client pauses while OSDs or the whole cluster
 *    restart; it never fails because of it. An op fails only on a real error
 *    (below) or, when opts.op_timeout_ms is set, with -ETIMEDOUT.
 *  - Lazy pools (immediate_commit "none" or "small"): a write is acknowledged
 *    before it is durable; vstor_sync() makes every write completed before it
 *    durable. The client keeps a copy of every unsynced write (bounded by
 *    opts.max_dirty_bytes / max_dirty_ops; it syncs by itself when the bound
 *    is reached) and replays them, in order, when a primary that acknowledged
 *    them drops its connection or loses its PG before the sync.
 *
 * Ordering: a write or discard waits for every earlier sync to complete; a
 * sync waits for every earlier write and sync and then covers every write
 * completed before it. Reads and writes in flight at the same time have no
 * order between them (concurrent overlapping writes are the caller's
 * business, as on any disk).
 *
 * Errors (negative errno or vstor code; vstor_strerror() names them):
 *   -EINVAL        offset/len outside the image, len 0, a NULL buffer, or a
 *                  lazy-pool write larger than max_dirty_bytes
 *   -EROFS         write or discard on a read-only image
 *   VS_ENOIMAGE    (-4017) the image does not exist, or was removed while open
 *   VS_ENOPOOL     (-4018) the image's pool does not exist
 *   -ETIMEDOUT     opts.op_timeout_ms passed before the op could complete
 *   -ECANCELED     the client was closed with the op in flight
 *   -ENOSPC        the OSDs are out of space, with opts.fail_enospc set; by
 *                  default such writes wait and are retried (a warning is
 *                  logged every 10 s while they wait)
 *   -EIO           never: device errors are retried (an OSD whose store fails
 *                  stops, and its PGs go on without it)
 * vstor_client_errmsg() holds a sentence about the last failure
 * ("image 'vm1' not found").
 */
#ifndef VSTOR_H
#define VSTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#define VSTOR_API_VERSION 1
#define VSTOR_NAME_MAX 255

struct vstor_client;
struct vstor_image;

/* ---- The client ------------------------------------------------------------ */

struct vstor_client_opts {
    const char *const *mon_addresses; /* metadata service members, "host:port" */
    unsigned n_mon;
    uint32_t op_timeout_ms;     /* fail an op with -ETIMEDOUT after this; 0 = never */
    uint32_t retry_interval_ms; /* delay before retrying a transient error; 50 */
    uint64_t max_dirty_bytes;   /* lazy pools: unsynced bytes kept for replay; 32 MiB */
    uint32_t max_dirty_ops;     /* lazy pools: unsynced object writes kept; 1024 */
    uint32_t parts_max;         /* object-sized parts in flight at once; 4096 */
    uint32_t meta_timeout_ms;   /* per metadata request before it is retried; 5000 */
    uint32_t net_payload_max;   /* largest frame payload (as net_payload_max); 64 MiB */
    const char *log_name;       /* log component; "client" */
    bool fail_enospc;           /* return -ENOSPC instead of retrying it; false (retry,
                                 * warning every 10 s; config client_retry_enospc) */
    uint32_t spin_lone_us;      /* with exactly one request on the wire, poll the loop
                                 * for its reply this long before it sleeps; 0 = off
                                 * (config loop_spin_lone_us); at most 10000 */
    const char *net_local_dir;  /* the local transport to OSDs on this host (config
                                 * net_local_dir; an absolute directory); NULL: TCP only.
                                 * Copied. */
};

/* Fills opts with the defaults above (and no metadata service). */
void vstor_client_opts_init(struct vstor_client_opts *opts);

/* Creates a client on loop. It connects to the metadata service in the
 * background; ops submitted before it has loaded the cluster state wait.
 * SIGPIPE at its default action is set to ignored (a write to a connection
 * an OSD reset must fail, not kill the process); a handler of the
 * application's own is left alone. The blocking vstor_blk_open does the same.
 * Returns 0, or -EINVAL (bad opts) / -ENOMEM with a sentence in err. */
int vstor_client_create(uv_loop_t *loop, const struct vstor_client_opts *opts,
                        struct vstor_client **out, char *err, size_t err_size);

/* Fails every op in flight with -ECANCELED (their callbacks run from the
 * loop), closes every connection and calls cb once the client's memory is
 * gone. Images still open are closed with it. Call once. */
void vstor_client_close(struct vstor_client *c, void (*cb)(void *ctx), void *ctx);

/* A sentence about the client's last failure ("" if none). */
const char *vstor_client_errmsg(const struct vstor_client *c);

/* ---- Images ---------------------------------------------------------------- */

typedef void (*vstor_open_cb)(void *ctx, int rc, struct vstor_image *img);

/* Opens the image called name (index/image/<name>), or the image pool/num.
 * cb gets 0 and the image, or VS_ENOIMAGE / VS_ENOPOOL / -ETIMEDOUT (only
 * with op_timeout_ms) / -ECANCELED. Waits while the metadata service is
 * unreachable. */
int vstor_image_open(struct vstor_client *c, const char *name, vstor_open_cb cb, void *ctx);
int vstor_image_open_inode(struct vstor_client *c, uint16_t pool, uint64_t num,
                           vstor_open_cb cb, void *ctx);

/* Forgets img. No op may be in flight on it (a programmer error). */
void vstor_image_close(struct vstor_image *img);

struct vstor_image_info {
    char name[VSTOR_NAME_MAX + 1];
    uint16_t pool;
    uint64_t num;
    uint64_t inode;       /* pool << 48 | num: the id on the wire */
    uint64_t size;        /* bytes; follows resizes */
    uint32_t object_size; /* ops are split at multiples of this */
    bool readonly;
    bool lazy;            /* the pool acknowledges writes before they are durable */
    bool removed;         /* the image was removed while open */
};
void vstor_image_info(const struct vstor_image *img, struct vstor_image_info *out);

/* ---- I/O ------------------------------------------------------------------- */

struct vstor_io;
typedef void (*vstor_io_cb)(struct vstor_io *io, int rc);

/* One request, embedded in the caller's memory (no allocation per op). The
 * caller sets offset, len, buf, cb and ctx, and owns io and buf until cb.
 * rc passed to cb is 0 or a negative code (see the top of this file). */
struct vstor_io {
    uint64_t offset; /* bytes from the start of the image */
    uint64_t len;    /* bytes; > 0 (ignored by sync) */
    void *buf;       /* read: destination; write: source; NULL otherwise */
    vstor_io_cb cb;
    void *ctx;
    uint64_t private_[16]; /* the library's; do not touch */
};

int vstor_read(struct vstor_image *img, struct vstor_io *io);
int vstor_write(struct vstor_image *img, struct vstor_io *io);
/* Makes every write completed before this call durable (a no-op, completing
 * at once, on pools with immediate commit). */
int vstor_sync(struct vstor_image *img, struct vstor_io *io);
/* Discards [offset, offset + len): the range then reads as zeroes. */
int vstor_discard(struct vstor_image *img, struct vstor_io *io);

/* "image not found", for negative errno and vstor codes alike. */
const char *vstor_strerror(int rc);

/* ---- Blocking wrappers (simple programs) ------------------------------------ */

/* A client with its own private loop and one open image. Each call runs the
 * loop until its op completes. */
struct vstor_blk;

/* Opens image name; 0 or a negative code with a sentence in err. */
int vstor_blk_open(const struct vstor_client_opts *opts, const char *name,
                   struct vstor_blk **out, char *err, size_t err_size);
/* Each returns 0 or a negative code. */
int vstor_blk_read(struct vstor_blk *b, void *buf, uint64_t len, uint64_t offset);
int vstor_blk_write(struct vstor_blk *b, const void *buf, uint64_t len, uint64_t offset);
int vstor_blk_sync(struct vstor_blk *b);
int vstor_blk_discard(struct vstor_blk *b, uint64_t len, uint64_t offset);
struct vstor_image *vstor_blk_image(struct vstor_blk *b);
void vstor_blk_close(struct vstor_blk *b);

#ifdef __cplusplus
}
#endif

#endif /* VSTOR_H */
