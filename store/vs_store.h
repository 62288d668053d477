/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_store.h -- libvstore, the single-drive block store of one OSD.
 *
 * WHAT IT IS. A crash-safe store of fixed-size objects named (inode, stripe).
 * Every object holds `block_size` bytes (4 KiB .. 128 MiB, default 128 KiB)
 * with a bitmap of which 4 KiB granules were ever written, and a u64 version.
 * The byte layout, the numbered invariants and recovery are in
 * docs/disk-format.md; this header is the contract the OSD codes against.
 *
 * THREADING. One thread. Every call, and every callback, happens on the thread
 * that owns the disk (the OSD loop thread). Nothing here locks.
 *
 * THE DISK. The store reaches storage only through struct vs_disk (below). Two
 * implementations: io_uring (vs_disk_uring_open: O_DIRECT, the process's
 * struct vs_ring shared with other code, completions reaped by whoever polls
 * the ring's eventfd) and a deterministic simulated disk for tests
 * (vs_disk_sim_create: volatile write cache, crash, EIO injection). Tools and
 * tests without an event loop drive I/O to completion with vs_disk_run_once()
 * or vs_store_run_until_idle().
 *
 * ASYNC CONTRACT (STYLE B9). Every operation takes a caller-embedded struct
 * vs_store_op with a completion callback; the store never allocates on the
 * data path. If a vs_store_* call returns an error (< 0), the callback is never
 * called. If it returns 0, op->cb runs exactly once, never before the call has
 * returned, with the result in op->result. The op memory and its buffers
 * belong to the store until cb runs. Data buffers must be 4096-byte aligned
 * (O_DIRECT); lengths and offsets must be multiples of 4096 and inside the
 * block, else -EINVAL (never an assert).
 *
 * ONE WRITER PER OBJECT. At most one write or delete of an object may be in
 * flight at a time (the OSD primary serialises per object); reads, stabilize
 * and rollback may run beside it. Different objects are fully concurrent.
 *
 * VERSIONS. Each object carries a u64 version, strictly increasing per object
 * for as long as the object or its tombstone exists: a write or delete with an
 * explicit version must be greater than every version the object has (else
 * VS_EVERSIONCONFLICT); version 0 means "automatic" (current + 1, or 1). The
 * OSD puts the PG epoch in the high bits. Version UINT64_MAX is reserved.
 *
 * STABLE AND UNSTABLE. A write is either "stable at once" (VS_STORE_STABLE;
 * replication) or "unstable" (two-phase erasure-coded writes). An unstable
 * version is visible to reads of VS_STORE_READ_LATEST and of its own version,
 * but not to VS_STORE_READ_STABLE. vs_store_stabilize(v) makes v and every
 * older version of that object stable; a stable write does the same for older
 * versions. vs_store_rollback(v) discards every unstable version newer than v;
 * only unstable versions can be rolled back (rolling back below the newest
 * stable version is -EBUSY). Who may roll back: the OSD that is primary for the
 * object's PG, for versions it has not stabilized. An unstable version pins
 * the journal from its record on: stabilize or roll back promptly. Deletes
 * are stable at once. Only the newest stable version and the unstable versions
 * above it are retained; reading an older version returns -ENOENT.
 *
 * DURABILITY. With VS_STORE_DURABLE_ACK (the default) a write, delete,
 * stabilize or rollback completes only once it is on stable media: all
 * operations submitted in one loop turn share one fsync (group commit, through
 * the ring's submit hook: one fsync with IOSQE_IO_DRAIN appended to the turn's
 * batch). With VS_STORE_LAZY operations complete when written; vs_store_sync()
 * completes once every operation that completed before the sync call is
 * durable. A device flagged fsync_disabled (power-loss protected drive) gets no
 * fsync at all. Operations never fail because the journal is full: they wait
 * (back-pressure) until a checkpoint frees space. A read sees every operation
 * that has completed before the read was called.
 *
 * CRASHES. After a crash, vs_store_open() recovers: every operation that was
 * durable is present; an object is always one whole version, never a mix;
 * torn or partial records are caught by checksums and sequence numbers. A
 * write error (EIO) on any device makes the store read-only ("broken"): the
 * failing op and every mutation not yet completed fail with -EIO, and every new
 * mutation returns -EIO at once. Reads go on. Reopen to recover.
 *
 * ERRORS. Negative errno or a vstor code (vs_err.h): -EINVAL (bad request),
 * -ENOENT (no such object or version), -ENOSPC (no free data block for a new
 * object -- 1/64 of the blocks are kept for overwrites, which wait instead --
 * or no tombstone slot), -EBUSY (rollback below stable), -EIO (device error, or broken store),
 * -EROFS (opened read-only), VS_ECHECKSUM (a data checksum mismatch on read;
 * counted in stats; no data returned), VS_EVERSIONCONFLICT, VS_EBADFORMAT,
 * VS_EFORMATVERSION, VS_ECORRUPT, VS_EWRONGCLUSTER.
 */
#ifndef VS_STORE_H
#define VS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vs_ring.h"

/* On-disk format version this library formats (and the newest it reads).
 * Version 2: a journal write record may carry several small writes. A store
 * of version 1 stays at version 1 (docs/disk-format.md, "Format versions"). */
#define VS_STORE_FORMAT_VERSION 2

#define VS_STORE_GRANULE 4096u                /* bitmap granularity, bytes */
#define VS_STORE_BLOCK_MIN 4096u              /* smallest block_size */
#define VS_STORE_BLOCK_MAX (128u << 20)       /* largest block_size */
#define VS_STORE_BLOCK_DEFAULT (128u << 10)   /* default block_size */
#define VS_STORE_ALIGN 4096u                  /* buffer, offset, length alignment */
#define VS_STORE_DEVS_MAX 3                   /* meta, journal, data devices */

/* ------------------------------------------------------------------------ */
/* The disk interface                                                        */
/* ------------------------------------------------------------------------ */

enum vs_disk_opcode { VS_DISK_READ = 1, VS_DISK_WRITE, VS_DISK_FSYNC, VS_DISK_NOP };
#define VS_DISK_DRAIN 1u /* start only after every earlier op completed (IOSQE_IO_DRAIN) */
/* The op submitted next starts only when this one has completed in full; if
 * this one fails (or is short) the next completes with -ECANCELED
 * (IOSQE_IO_LINK). A backend that cannot keep the two together clears the flag
 * in submit: the submitter checks it after a successful submit. */
#define VS_DISK_LINK 2u
/* On a write flagged VS_DISK_LINK whose follower is an fsync of the same
 * device: when the pair turns out to be the only io in flight at the submit
 * point, the backend may run it synchronously in the calling thread (write,
 * then fdatasync, before the batch goes to the kernel) instead of through the
 * kernel's worker threads. Same order and results as the linked pair; the
 * callbacks still run later, from the completion path. Counted in
 * vs_disk.idle_syncs. A hint: a backend may ignore it. */
#define VS_DISK_IDLE_SYNC 4u

/* One disk request, embedded by its owner. cb runs exactly once with the byte
 * count or -errno, never from inside submit. */
struct vs_disk_io {
    struct vs_ring_op ring; /* backend use (io_uring user_data) */
    void (*cb)(struct vs_disk_io *io, int res);
    void *buf;
    uint64_t offset;
    uint32_t len;
    uint8_t opcode; /* enum vs_disk_opcode */
    uint8_t dev;    /* device index, < disk->dev_count */
    uint16_t flags; /* VS_DISK_DRAIN, VS_DISK_LINK */
    struct vs_disk_io *next; /* link for whoever owns the io at the moment */
    uint64_t seq;            /* backend use */
    void *owner;             /* the submitter's */
};

struct vs_disk;
struct vs_disk_ops {
    /* Queues io; returns 0, or -EAGAIN when the backend is full (the caller
     * retries after a completion). Never calls io->cb itself. */
    int (*submit)(struct vs_disk *d, struct vs_disk_io *io);
    /* Sets the function run just before each batch of queued ios goes to the
     * device (the group-commit point). One hook per disk. */
    void (*set_hook)(struct vs_disk *d, void (*fn)(void *ctx), void *ctx);
    /* Submits and waits until at least one io completed, or nothing is in
     * flight; returns the number of completions or -errno. For tools. */
    int (*run_once)(struct vs_disk *d);
    /* Number of ios queued or in flight. */
    unsigned (*inflight)(struct vs_disk *d);
    void (*destroy)(struct vs_disk *d);
    /* Optional (NULL when the backend has nothing to gain): tells the
     * backend that ios will often use [base, base + len), so it may pin that
     * memory once instead of per io (io_uring registered buffers). Returns 0
     * or -errno; on error nothing changes and ios there work as before. The
     * memory stays allocated until unregister_mem(base) has returned. */
    int (*register_mem)(struct vs_disk *d, void *base, size_t len);
    void (*unregister_mem)(struct vs_disk *d, const void *base);
};

struct vs_disk {
    const struct vs_disk_ops *ops;
    unsigned dev_count;
    uint64_t dev_size[VS_STORE_DEVS_MAX];
    char dev_name[VS_STORE_DEVS_MAX][128];
    uint64_t idle_syncs; /* VS_DISK_IDLE_SYNC pairs run synchronously */
};

static inline int vs_disk_run_once(struct vs_disk *d)
{
    return d->ops->run_once(d);
}
static inline void vs_disk_destroy(struct vs_disk *d)
{
    if (d)
        d->ops->destroy(d);
}

/* io_uring disk over 1..3 files or block devices, opened O_RDWR|O_DIRECT (or
 * without O_DIRECT when `direct` is false, e.g. on tmpfs) and flock()ed so two
 * processes never open one device. ring is borrowed: the caller owns it and
 * reaps its completions (vs_ring_process on its eventfd, or vs_disk_run_once).
 * On error returns -errno and an errmsg naming the path. */
int vs_disk_uring_open(struct vs_ring *ring, const char *const *paths, unsigned count, bool direct,
                       bool readonly, struct vs_disk **out, char *errmsg, size_t errmsg_size);

/* Simulated disk: `count` devices of the given sizes, held in memory. Writes
 * go to a volatile cache until an fsync of that device completes. Completion
 * order is chosen by the seeded PRNG (honouring VS_DISK_DRAIN). */
int vs_disk_sim_create(unsigned count, const uint64_t *sizes, uint64_t seed, struct vs_disk **out);
/* Completes every queued io (and whatever their callbacks queue) until idle;
 * returns the number of completions. */
unsigned vs_disk_sim_run(struct vs_disk *d);
/* Completes at most n ios; returns how many completed. */
unsigned vs_disk_sim_step(struct vs_disk *d, unsigned n);
/* Power loss: every io still queued or in flight is dropped without its
 * callback; each unsynced write is kept whole, dropped, or torn at 512 B or
 * 4 KiB granules, chosen by the PRNG. Afterwards the disk is idle and the
 * store that used it must be abandoned with vs_store_abandon(). */
void vs_disk_sim_crash(struct vs_disk *d);
/* EIO injection: the nth (1-based, counted from now) io of opcode op
 * (0 = any) on device dev (-1 = any) fails with -EIO; count times in a row. */
void vs_disk_sim_fail_nth(struct vs_disk *d, int opcode, int dev, uint64_t nth, unsigned count);
/* Every io on dev (-1 = any) of opcode (0 = any) fails with probability
 * ppm/1e6 until set back to 0. */
void vs_disk_sim_fail_random(struct vs_disk *d, int opcode, int dev, uint32_t ppm);
/* Direct access to the durable image plus cache, for tests that corrupt bytes. */
uint8_t *vs_disk_sim_durable(struct vs_disk *d, unsigned dev);
uint64_t vs_disk_sim_unsynced_writes(struct vs_disk *d);

/* ------------------------------------------------------------------------ */
/* Format and open                                                           */
/* ------------------------------------------------------------------------ */

/* Where the three areas go. Devices are indices into the vs_disk; all three
 * areas may share device 0. A size of 0 means "to the end of the device" for
 * the data area and "the default" for the journal (32 MiB). */
struct vs_store_layout {
    uint8_t meta_dev, journal_dev, data_dev;
    uint64_t meta_offset, journal_offset, data_offset;
    uint64_t journal_size, data_size;
};

struct vs_store_format_opts {
    uint32_t block_size;      /* 0 = VS_STORE_BLOCK_DEFAULT */
    uint32_t csum_block_size; /* 4096 (default when csum_enabled) */
    bool csum_disabled;       /* true: no data checksums */
    uint64_t tomb_count;      /* tombstone slots; 0 = block_count / 8 (at least 64) */
    uint64_t cluster_id, osd_id;
    uint8_t uuid[16];         /* all zero = generate */
    struct vs_store_layout layout;
    bool force; /* overwrite an existing vstor or foreign signature */
    uint32_t format_version; /* 0 = VS_STORE_FORMAT_VERSION; 1: what older binaries read */
};

/* Writes a fresh store. Refuses (VS_EBADFORMAT, nothing written) when the
 * first 64 KiB of any device hold a vstor superblock or a known foreign
 * signature (filesystem, partition table, LVM) unless force. Synchronous:
 * drives the disk itself; no other ios may be in flight on it. */
int vs_store_format(struct vs_disk *disk, const struct vs_store_format_opts *opts, char *errmsg,
                    size_t errmsg_size);

enum vs_store_durability { VS_STORE_DURABLE_ACK = 0, VS_STORE_LAZY = 1 };

struct vs_store_config {
    enum vs_store_durability durability;
    bool fsync_disabled[VS_STORE_DEVS_MAX]; /* per device: never fsync (PLP drive) */
    bool fsync_no_drain;  /* fsync after completions instead of IOSQE_IO_DRAIN */
    /* With fsync_no_drain: a lone durable journal write and its fsync go out
     * flagged VS_DISK_IDLE_SYNC (run in the calling thread when the disk is
     * otherwise idle; docs/performance.md "T1Q1 write, stage by stage"). */
    bool idle_sync;
    bool readonly;        /* no writes at all, not even recovery's */
    uint32_t journal_checkpoint_pct; /* start a checkpoint at this fill; 0 = 50 */
    uint64_t expect_cluster_id, expect_osd_id; /* 0 = accept any */
    /* Called once, when a device error makes the store read-only ("broken"),
     * whatever io failed: an op's, or a background flush's or checkpoint's
     * that no op waits for (after which ops fail at once, with no callback
     * to say why). Runs inside the store's io completion: it may only note
     * the fact or schedule work, not call into the store. NULL = none. */
    void (*on_broken)(void *arg, const char *why);
    void *on_broken_arg;
};

struct vs_store;

/* Opens and recovers the store on disk: reads the superblock, the metadata and
 * replays the journal (docs/disk-format.md, "Recovery"). Synchronous (drives
 * the disk). On error returns < 0 and errmsg names the device and the field. */
int vs_store_open(struct vs_disk *disk, const struct vs_store_config *cfg, struct vs_store **out,
                  char *errmsg, size_t errmsg_size);
/* Clean shutdown: waits for background work, writes a final checkpoint, frees.
 * Precondition: no operation of the caller is in flight. Returns 0 or -EIO
 * (the store was broken; nothing is lost that was durable). */
int vs_store_close(struct vs_store *s);
/* Frees the store without any I/O, after vs_disk_sim_crash (tests only). */
void vs_store_abandon(struct vs_store *s);

/* Drives the disk until the store has nothing in flight (tools and tests).
 * Returns -EDEADLK when ops still wait but nothing is in flight: the journal
 * is pinned by unstable versions that only a stabilize or rollback frees. */
int vs_store_run_until_idle(struct vs_store *s);

/* ------------------------------------------------------------------------ */
/* Operations                                                                */
/* ------------------------------------------------------------------------ */

struct vs_store_oid {
    uint64_t inode;  /* pool id = inode >> 48 */
    uint64_t stripe; /* byte offset of the object in the image (+ EC chunk role) */
};

struct vs_store_obj_ver {
    struct vs_store_oid oid;
    uint64_t version;
};

#define VS_STORE_READ_LATEST UINT64_MAX       /* newest version, stable or not */
#define VS_STORE_READ_STABLE (UINT64_MAX - 1) /* newest stable version */
#define VS_STORE_STABLE 1u                    /* write flag: stable at once */

struct vs_store;
struct vs_store_op;
typedef void (*vs_store_cb)(struct vs_store_op *op);

/* A caller-embedded request. Fill the "in" fields, call one vs_store_* op. */
struct vs_store_op {
    /* in */
    struct vs_store_oid oid;
    uint64_t version; /* write/delete: 0 = auto; read: READ_LATEST, READ_STABLE or N */
    uint32_t offset;  /* bytes inside the block, multiple of 4096 */
    uint32_t len;     /* bytes, multiple of 4096; 0 = bitmap/version only or bump */
    uint32_t flags;   /* VS_STORE_STABLE */
    void *buf;        /* data, 4096-aligned */
    uint8_t *bitmap;  /* read: receives the bitmap (vs_store_bitmap_bytes) or NULL */
    const struct vs_store_obj_ver *list; /* stabilize/rollback */
    uint32_t list_count;
    const struct vs_store_purge *purge;  /* vs_store_purge: which tombstones */
    vs_store_cb cb;
    void *ctx; /* caller's */
    /* out */
    int result;            /* 0 or bytes on success, < 0 on error */
    uint64_t out_version;  /* version read or written */
    /* private: the store's, until cb runs */
    struct {
        struct vs_disk_io io[2];
        struct vs_store_op *next, *jnext;
        struct vs_store *store;
        uint64_t start_version, base_version, fsync_gen, seq;
        uint32_t entry, base_block, obj, state;
        uint8_t kind, gen;
    } p;
};

/* Reads op->len bytes at op->offset of the version chosen by op->version
 * (READ_LATEST, READ_STABLE, or the newest retained version <= N) into buf;
 * fills bitmap and out_version. Granules never written read as zeros. Every
 * granule is verified against its checksum (VS_ECHECKSUM on mismatch).
 * -ENOENT: no object, or the version is deleted or no longer retained. */
int vs_store_read(struct vs_store *s, struct vs_store_op *op);
/* Writes op->len bytes at op->offset as a new version (op->version or auto);
 * VS_STORE_STABLE makes it stable at once. len 0 only creates the version. */
int vs_store_write(struct vs_store *s, struct vs_store_op *op);
/* Writes a tombstone version (stable at once). -ENOENT if no object. */
int vs_store_delete(struct vs_store *s, struct vs_store_op *op);
/* Which tombstones vs_store_purge drops: those of the objects whose pool id
 * is pool_id and whose PG, (stripe / pg_stripe_size) % pg_count, is pg
 * (pg_count 0 = every PG of the pool; VS_STORE_POOL_ANY = every pool), with
 * a version below `below`. */
struct vs_store_purge {
    uint64_t pool_id;
    uint32_t pg_count, pg;
    uint64_t pg_stripe_size;
    uint64_t below;
};
/* Drops the tombstones op->purge names: the object is gone (no version at
 * all, not listed) and its tombstone slot becomes free. Runs inside a
 * checkpoint (it waits for one, like vs_store_checkpoint): a tombstone still
 * in the journal is applied first, and one whose delete record the journal
 * would still replay after that checkpoint (an unstable version pins the
 * journal) is left for a later purge. Completes with op->result = the
 * tombstones dropped and op->out_version = those left (retry later).
 * CALLER'S PROMISE: every later write or delete of a dropped object carries
 * a version >= below (the OSD's epoch bump guarantees it): after a crash
 * before the checkpoint is durable the tombstone may come back, and a write
 * below it would then be ignored by replay. Until that checkpoint is durable
 * the store itself refuses versions not above the dropped tombstone's
 * (vs_store_newest still reports the object deleted at that version; it is
 * no longer listed). A purge right after open waits for a second checkpoint.
 * Crash safety: a purge torn by a crash leaves each matching tombstone either
 * dropped or still there, the store consistent (docs/disk-format.md,
 * "Purging tombstones"). -EINVAL (no op->purge, pg >= pg_count,
 * pg_stripe_size 0), -EROFS, -EIO. */
int vs_store_purge(struct vs_store *s, struct vs_store_op *op);
/* Completes when every operation completed before this call is durable. */
int vs_store_sync(struct vs_store *s, struct vs_store_op *op);
/* Makes each (oid, version) of op->list and all older versions stable.
 * -ENOENT if an object or version does not exist (nothing is changed). */
int vs_store_stabilize(struct vs_store *s, struct vs_store_op *op);
/* For each (oid, version) of op->list discards the unstable versions newer
 * than version. -EBUSY if that would discard a stable version. */
int vs_store_rollback(struct vs_store *s, struct vs_store_op *op);

/* ------------------------------------------------------------------------ */
/* Synchronous, in-memory queries (no I/O, so no callback)                   */
/* ------------------------------------------------------------------------ */

/* Version and bitmap of the version chosen like vs_store_read; bitmap may be
 * NULL. Returns 0, -ENOENT. */
int vs_store_stat(struct vs_store *s, struct vs_store_oid oid, uint64_t which, uint64_t *version,
                  uint8_t *bitmap);

/* The newest version the object has -- stable, unstable or a tombstone -- and
 * whether it is a tombstone: the version a new write must exceed. Returns 0,
 * or -ENOENT when the store holds no version of the object. */
int vs_store_newest(struct vs_store *s, struct vs_store_oid oid, uint64_t *version,
                    bool *deleted);

#define VS_STORE_LIST_STABLE 1u  /* the entry is the newest stable version */
#define VS_STORE_LIST_DELETED 2u /* the version is a tombstone */
struct vs_store_list_entry {
    struct vs_store_oid oid;
    uint64_t version;
    uint32_t flags;
};
/* Every version (stable first, then unstable) of every object whose pool id
 * is pool_id and whose PG, (stripe / pg_stripe_size) % pg_count, is pg
 * (0-based). pg_count 0 = every PG of the pool. Returns the count and a
 * malloc'ed array in *out (free() it), or -ENOMEM / -EINVAL. */
#define VS_STORE_POOL_ANY UINT64_MAX /* vs_store_list: every pool (tools) */
long vs_store_list(struct vs_store *s, uint64_t pool_id, uint32_t pg_count, uint32_t pg,
                   uint64_t pg_stripe_size, struct vs_store_list_entry **out);

/* One item of a live journal record, for `vstor disk dump --journal`: a
 * record of several writes (format 2) gives one per write item, a stabilize
 * or rollback record one per object version. */
struct vs_store_jrec {
    uint64_t seq, pos;     /* the record's sequence number and byte offset in the journal */
    const char *type;      /* "write", "delete", "stabilize", "rollback" */
    uint32_t items, item;  /* the record's item count; this item's index (0-based) */
    uint32_t flags;        /* writes: 1 stable, 2 big */
    struct vs_store_oid oid;
    uint64_t version;
    uint32_t offset, len;  /* writes: the bytes of the object written */
    uint32_t block;        /* big writes: the data block; UINT32_MAX otherwise */
    uint64_t data_pos;     /* small writes: journal byte offset of the data; UINT64_MAX none */
};
/* Calls fn for every item of every record from the journal start to its
 * head, in order (a record still being gathered is left out). Returns the
 * record count, or < 0 (VS_ECORRUPT, VS_ECHECKSUM, ...) when a record or one
 * of its items does not decode: the listing ends there, and *bad (may be
 * NULL) gets that record's seq and pos. */
long vs_store_dump_journal(struct vs_store *s, void (*fn)(void *ctx, const struct vs_store_jrec *r),
                           void *ctx, struct vs_store_jrec *bad);

/* Why the journal ends where it does (`vstor disk dump --journal`): *seq
 * gets the next sequence number; 0 when nothing of the chain follows the
 * last live record (zeros, a record of an earlier lap), or < 0 (VS_ECHECKSUM,
 * VS_ECORRUPT, ...) why replay refused the record at *pos (journal byte
 * offset) that carries *seq: torn by a crash, or damaged.
 * Meaningful on a store opened read-only (a writable open zeroes that area). */
int vs_store_journal_end(struct vs_store *s, uint64_t *seq, uint64_t *pos);

/* Areas of the io accounting in struct vs_store_stats. */
enum vs_store_io_area {
    VS_STORE_IO_JOURNAL, /* journal record writes (headers and small-write data) */
    VS_STORE_IO_DATA,    /* big-write data into fresh blocks */
    VS_STORE_IO_FLUSH,   /* checkpoint: journal data copied in place */
    VS_STORE_IO_META,    /* checkpoint: metadata pages and checkpoint blocks */
    VS_STORE_IO_READ,    /* reads of data blocks */
    VS_STORE_IO_FSYNC,   /* fsyncs (bytes 0) */
    VS_STORE_IO_AREAS
};

struct vs_store_stats {
    uint64_t block_size, block_count, blocks_used, blocks_free;
    uint64_t blocks_reserved; /* kept for overwrites: new objects fit in the rest */
    uint64_t bytes_used, bytes_free;
    uint64_t journal_size, journal_used, tomb_count, tomb_used;
    uint64_t object_count, entries_dirty;
    uint64_t csum_errors;
    uint64_t op_read, op_write, op_delete, op_sync, op_stabilize, op_rollback, op_list;
    uint64_t fsyncs, checkpoints, journal_waits, journal_replayed;
    /* Journal records written; writes_batched: small writes that went into a
     * record holding several (docs/disk-format.md, "Journal records"). */
    uint64_t journal_records, writes_batched;
    uint64_t fsyncs_linked; /* batches linked to their journal write (fsync_no_drain) */
    /* Checkpoint in-place writes saved by gathering side-by-side sectors of
     * different small writes into one io (io_count[VS_STORE_IO_FLUSH] counts
     * the ios issued). */
    uint64_t flush_merged;
    uint64_t bytes_user_written, bytes_disk_written;
    /* Every io the store issued since open, by area: ios and bytes. */
    uint64_t io_count[VS_STORE_IO_AREAS], io_bytes[VS_STORE_IO_AREAS];
    uint64_t ram_index_bytes; /* object table + hash + per-block arrays, no checksums */
    uint64_t ram_csum_bytes;  /* in-memory data checksums */
    bool broken;
    bool mem_registered; /* journal mirror and checkpoint arena pinned by the disk
                          * (vs_disk_ops.register_mem): their ios skip page pinning */
};
void vs_store_get_stats(struct vs_store *s, struct vs_store_stats *out);

struct vs_store_info {
    uint8_t uuid[16];
    uint64_t cluster_id, osd_id;
    uint32_t block_size, csum_block_size, format_version;
    uint64_t block_count, tomb_count;
    struct vs_store_layout layout;
};
void vs_store_get_info(struct vs_store *s, struct vs_store_info *out);
void vs_store_get_config(struct vs_store *s, struct vs_store_config *out);
uint32_t vs_store_bitmap_bytes(const struct vs_store *s);

/* Forces a checkpoint (flush journal data in place, write metadata, trim the
 * journal) and calls cb when it is durable. For tests and tools. */
int vs_store_checkpoint(struct vs_store *s, struct vs_store_op *op);

#endif /* VS_STORE_H */
