/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_int.h -- libvstore internals shared by the store_*.c files.
 *
 * Main data structure: struct vs_store, holding
 *   - the object table (struct store_obj, 32 bytes, in one array) and an
 *     open-addressing hash of u32 indices into it;
 *   - per data block: owner object, bitmap and data checksums (arrays);
 *   - the dirty entries (struct store_entry): versions still in the journal,
 *     chained per object newest first;
 *   - the journal mirror (the whole journal area in RAM) and its write head;
 *   - the checkpoint state machine (store_ckpt.c).
 * The numbered invariants (I1..I12) are in docs/disk-format.md; code cites them.
 */
#ifndef STORE_INT_H
#define STORE_INT_H

#include "vs_store.h"

#include "vs_assert.h"
#include "vs_err.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define NONE32 0xFFFFFFFFu
#define TOMB_BIT 0x80000000u
#define SECTOR 4096u
#define FREE_VERSION UINT64_MAX /* object record not in use */

/* ---- on-disk formats (store_format.c) ---------------------------------- */

#define SB_MAGIC 0x3142535246545356ull   /* "VSTFRSB1" */
#define DEVHDR_MAGIC 0x3144565246545356ull /* "VSTFRVD1" */
#define CKPT_MAGIC 0x4b43504bu           /* "KPCK" */
#define PAGE_MAGIC 0x45474150u           /* "PAGE" */
#define REC_MAGIC 0x4352534au            /* "JSRC" */
#define SB_SIZE 4096u
#define CKPT_SIZE 4096u
#define PAGE_HDR_SIZE 32u
#define ENTRY_HDR_SIZE 32u
#define REC_HDR_SIZE 64u

enum rec_type { REC_WRITE = 1, REC_DELETE = 2, REC_STABLE = 3, REC_ROLLBACK = 4 };
#define RECF_STABLE 1u
#define RECF_BIG 2u
#define PENT_USED 1u
#define PENT_TOMB 2u

struct store_sb {
    uint32_t format_version;
    uint8_t uuid[16];
    uint64_t cluster_id, osd_id;
    uint32_t block_size, granule, csum_type, csum_block_size;
    uint32_t page_size, entry_size;
    uint64_t block_count, tomb_count;
    struct vs_store_layout layout;
    uint32_t dev_count;
    uint64_t dev_size[VS_STORE_DEVS_MAX];
    uint64_t created_ms;
};

struct store_ckpt {
    uint64_t ckpt_seq;   /* checkpoint number */
    uint64_t jstart_pos; /* byte offset in the journal area of the first live record */
    uint64_t jstart_seq; /* its sequence number */
    uint32_t jstart_prev_crc;
    uint64_t synced_seq; /* every record below it was durable when this was written */
    uint32_t version;    /* format version written (encode only) */
};

/* One journal record header (item payload follows at REC_HDR_SIZE). */
struct store_rec {
    uint32_t type;
    uint32_t version;  /* format version of the record */
    uint32_t hdr_len;  /* bytes, multiple of 4096, header + items */
    uint32_t crc;      /* stored crc (decode) */
    uint32_t prev_crc; /* crc of the previous record */
    uint64_t seq;
    uint64_t synced_seq; /* every record < synced_seq was durable when this was built */
    uint32_t data_len;   /* bytes of data after the header area (small writes) */
    uint32_t item_count;
    uint32_t incarnation; /* random per open: a rewritten record never equals the old one */
};

struct store_witem { /* REC_WRITE payload: item_count items, one unless format >= 2 */
    uint64_t inode, stripe, version;
    uint32_t offset, len, block, flags;
    /* followed by len/4096 crc32c values, one per 4 KiB of data */
};

/* Walks the write items of a record: item i's small-write data follows the
 * data of items 0..i-1, right after the header area. */
struct store_witer {
    uint32_t next_item, next_data, left; /* byte offsets in the record; items left */
    uint32_t item, data;                 /* offsets of the item last decoded and its data */
};

void store__sb_encode(const struct store_sb *sb, uint8_t *buf);
int store__sb_decode(const uint8_t *buf, size_t len, struct store_sb *sb, char *err, size_t esz);
void store__devhdr_encode(const uint8_t uuid[16], unsigned dev, uint32_t version, uint8_t *buf);
int store__devhdr_decode(const uint8_t *buf, size_t len, const uint8_t uuid[16], unsigned dev,
                         char *err, size_t esz);
void store__ckpt_encode(const struct store_ckpt *c, uint8_t *buf);
int store__ckpt_decode(const uint8_t *buf, size_t len, struct store_ckpt *c);
/* Page: header {magic, page_no, seq, crc}, then entries of entry_size. */
void store__page_seal(uint8_t *page, uint32_t page_size, uint64_t page_no, uint64_t seq,
                      uint32_t version);
int store__page_check(const uint8_t *page, uint32_t page_size, uint64_t page_no, uint64_t *seq);
void store__rec_encode_hdr(const struct store_rec *r, uint8_t *buf);
/* Seals a record whose header and items are in buf[0..hdr_len): sets crc. */
uint32_t store__rec_seal(uint8_t *buf, uint32_t hdr_len);
/* Validates the record at buf (avail bytes): magic, sizes, crc. 0 or < 0. */
int store__rec_decode(const uint8_t *buf, size_t avail, struct store_rec *r);
int store__witem_decode(const uint8_t *p, size_t avail, struct store_witem *w);
void store__witer_init(struct store_witer *it, const struct store_rec *r);
/* Decodes the next write item of the record at rec (whose header decoded
 * into r): 0 and *w, 1 after the last one, < 0 when the items are corrupt
 * (outside the header area, a big write among several, data lengths that do
 * not add up to data_len). Checks no data crc. */
int store__witer_next(const uint8_t *rec, const struct store_rec *r, struct store_witer *it,
                      struct store_witem *w);
uint32_t store__entry_size(uint32_t block_size, uint32_t ncsum);
bool store__foreign_signature(const uint8_t *buf, size_t len, char *what, size_t wsz);

/* ---- in-memory index ---------------------------------------------------- */

struct store_obj {
    uint64_t inode, stripe;
    uint64_t version; /* base (durable, stable, in the metadata pages) version */
    uint32_t block;   /* base block, TOMB_BIT|slot for a tombstone, NONE32 none */
    uint32_t dirty;   /* newest entry (index into ents), 0 = none */
};
VS_STATIC_ASSERT(sizeof(struct store_obj) == 32, "object record is 32 bytes (RAM target)");

enum ent_kind { ENT_FREE = 0, ENT_SMALL, ENT_BIG, ENT_DELETE };
#define EF_STABLE 1u
#define EF_WRITTEN 2u
#define EF_ZOMBIE 4u
#define EF_NOBLOCK 8u /* replay: block reused after a rollback we have yet to see */

struct store_entry {
    uint64_t version;
    uint64_t seq;       /* journal record sequence number */
    uint64_t fsync_gen; /* durable once written and fsync batch fsync_gen completed */
    uint32_t next;      /* older entry of the same object; kept intact in zombies */
    uint32_t obj;
    uint32_t jpos;   /* journal sector of the record header */
    uint32_t block;  /* BIG: data block; DELETE: tomb slot */
    uint32_t offset, len;
    uint8_t kind, flags;
    uint16_t data_sec; /* sectors from the record (jpos) to this entry's data */
};

/* ---- checkpoint state machine (store_ckpt.c) --------------------------- */

enum ck_state {
    CK_IDLE,
    CK_FSYNC1,   /* fsync everything written: entries become durable */
    CK_BARRIER1, /* reads that might see in-place writes drain */
    CK_MARK,     /* checkpoint block recording synced_seq, before in-place writes */
    CK_MARK_FSYNC,
    CK_FLUSH,    /* in-place writes of stable journal data into base blocks */
    CK_FSYNC2,
    CK_BARRIER2,
    CK_PAGES, /* metadata pages to their alternate copies */
    CK_FSYNC3,
    CK_CKPT, /* the checkpoint block */
    CK_FSYNC4,
    CK_BARRIER3,
};

/* Cap of big-write data in flight (bytes): enough to keep a drive busy, small
 * enough that a checkpoint's ios do not wait long behind it. */
#define BIG_INFLIGHT_MAX (4u << 20)

/* 1/RESERVE_DIV of the data blocks are kept for overwrites (redirect on
 * write): new objects may not take them. On a full store every full-block
 * overwrite waits for a checkpoint to free the block it replaces, so the
 * reserve is the runway of a stream of them between checkpoints. */
#define RESERVE_DIV 32u

#define CK_IOS 128               /* checkpoint ios in flight */
#define CK_IOS_FG 32             /* ... while writes run and the journal has room */
#define CK_RUN_BYTES (1u << 20)  /* largest merged write of consecutive pages */
#define CK_ARENA_BYTES (4u << 20) /* page buffers of the ios in flight */

struct store_ck {
    enum ck_state state;
    bool requested;
    unsigned ios_inflight;
    int error;
    uint64_t fsync_wait;    /* batch to wait for */
    uint64_t barrier_ticket;
    uint64_t next_page;     /* CK_PAGES cursor */
    uint32_t *flush_obj, *flush_top; /* objects with journal data to flush in place */
    uint32_t *flush_src; /* spb entries: per sector, the entry flushed there (store_ckpt.c) */
    uint32_t flush_n, flush_i, flush_sec;
    bool in_step, again, progress;
    uint32_t pend_frozen_blocks, pend_frozen_tombs;
    uint64_t new_start_pos, new_start_seq;
    uint32_t new_start_prev_crc;
    bool ghosts; /* this checkpoint purged tombstones: drop their objects at its end */
    struct vs_disk_io ios[CK_IOS];
    uint8_t *arena;     /* page runs being written: ck_arena_size(s) bytes */
    size_t arena_used;  /* reset when no checkpoint io is in flight */
    uint8_t *ckpt_buf;  /* the checkpoint block */
    uint64_t applied_synced; /* synced_seq the last apply used */
    uint64_t block_synced;   /* synced_seq in the checkpoint block being written */
    struct vs_store_op *waiters; /* vs_store_checkpoint callers */
    struct vs_store_op *waiters_next; /* arrived during a running checkpoint */
};

/* ---- merged journal writes (store_io.c) --------------------------------- */

/* Records laid out back to back in one loop turn go to the disk as one
 * write: a run. The turn's first record is written alone at once (so the
 * disk has an io queued and runs the submit hook); the records after it
 * gather in the open run, which the hook submits. */
#define JRUN_MAX 32                 /* runs in flight */
#define JRUN_BYTES_MAX (1u << 20)   /* largest merged write */
#define JKICK_MAX 4                 /* NOPs in flight that only run the submit hook */

struct store_jrun {
    struct vs_disk_io io;
    struct vs_store_op *head, *tail; /* its records' ops, linked by p.jnext */
    bool busy;
};

/* The open record of several small writes (store_io.c, "records of several
 * small writes"): one header sector of write items, their data after it. */
struct store_jbatch {
    struct store_jrun *run; /* its io and its ops; NULL when none is open */
    uint64_t pos, seq;      /* the record's journal offset and sequence number */
    uint32_t prev_crc;      /* the previous record's crc (written at open) */
    uint32_t hdr_used;      /* bytes of the header sector taken: 64 + items */
    uint32_t data_len, items;
};

/* ---- the store ---------------------------------------------------------- */

struct op_list {
    struct vs_store_op *head, *tail;
};

struct vs_store {
    struct vs_disk *disk;
    struct vs_store_config cfg;
    struct store_sb sb;
    /* geometry */
    uint32_t block_size, spb /* sectors per block */, bitmap_bytes, ncsum;
    uint64_t block_count, tomb_count;
    uint32_t page_size, entry_size, epp /* entries per page */;
    uint64_t page_count;
    uint64_t meta_pages_offset; /* of copy 0; copy 1 follows page_count pages later */
    uint8_t *page_copy;  /* bit per page: copy holding the newest image */
    uint8_t *page_dirty; /* bit per page */
    uint64_t pages_dirty;
    /* objects */
    struct store_obj *objs;
    uint32_t obj_cap, obj_used, obj_free;
    uint32_t *hash;
    uint32_t hash_mask;
    uint32_t *block_owner;
    uint8_t *block_bitmap;
    uint32_t *block_csum; /* NULL when checksums are off */
    uint32_t *tomb_owner;
    /* Per tombstone slot: the seq of the delete record that made it
     * (vs_store_purge drops it only once the journal no longer replays that
     * record); a tombstone loaded from the pages gets the seq after replay. */
    uint64_t *tomb_seq;
    /* allocators: bit set = free */
    uint64_t *block_free, *tomb_free;
    uint64_t blocks_free, tombs_free, block_hint, tomb_hint;
    uint32_t *pend_blocks, *pend_tombs; /* freed, released at a checkpoint's end */
    uint32_t pend_blocks_n, pend_tombs_n, pend_max;
    /* Former base blocks replaced by the running checkpoint's apply: released
     * once its pages are durable (I6). */
    uint32_t *pend_base, pend_base_n;
    /* Every base block's record is below ckpt_synced: true once a checkpoint
     * completed since open (the pages read at open may be newer than the
     * checkpoint block); only then may former bases be released early. */
    bool bases_synced;
    /* entries */
    struct store_entry *ents;
    uint32_t ent_cap, ent_free, ents_live;
    uint32_t ents_big; /* live big-write entries: blocks a checkpoint may free */
    uint32_t zombies, zombies_pending; /* lists linked through .next? no: via obj */
    uint32_t *zlist;                   /* zombie indices: [0,zn) current, [zn,..) */
    uint32_t zn_cur, zn_pend;
    /* journal */
    uint8_t *jbuf;
    bool mem_registered; /* jbuf and ck.arena registered with the disk (register_mem) */
    uint64_t jsize, jhead, jstart, jused;
    uint32_t *jcrc; /* per journal sector; NULL when checksums are off */
    uint64_t next_seq, start_seq, synced_seq, max_completed_seq;
    uint64_t jreserved; /* one sector per unstable entry, for its stabilize/rollback */
    uint32_t unstable_count;
    /* per in-flight record: bit 0 all ios submitted, bit 1 all ios completed */
    uint8_t *rec_state;
    uint32_t rec_cap;
    uint64_t oldest_unsubmitted, oldest_incomplete;
    uint64_t batch_covers; /* synced_seq once the batch in flight completes */
    bool no_fsync_at_all;
    uint32_t *rb_blocks; /* blocks freed by rollbacks, not yet covered by an fsync */
    uint64_t *rb_seq;    /* the rollback record's seq, per rb_blocks item */
    uint32_t *rec_pos;   /* journal sector of each record in the journal, by seq % rec_cap */
    uint32_t rb_blocks_n;
    /* Big-write data in flight, bytes, and its cap: a deep queue of data
     * writes delays every checkpoint io and fsync queued behind it, and the
     * checkpoints are what free the blocks those writes need. */
    uint64_t big_inflight, big_inflight_max; /* see BIG_INFLIGHT_MAX */
    uint64_t reserve_blocks;                 /* see RESERVE_DIV */
    bool cap_wait; /* the wait queue's head waits for big_inflight only */
    uint32_t last_crc, start_prev_crc;
    uint32_t incarnation;
    unsigned ckpt_slot; /* slot holding the newest valid checkpoint block */
    uint64_t max_page_seq;
    uint64_t ckpt_seq;
    uint64_t ckpt_synced; /* synced_seq recorded in the newest checkpoint block */
    /* durability */
    uint64_t fsync_issued, fsync_done;
    unsigned dirty_devs;   /* devices written since the last fsync batch */
    bool fsync_wanted;     /* acks wait: a draining batch at the next hook / completion */
    bool fsync_wanted_plain; /* the checkpoint or a sync waits: any batch will do */
    unsigned fsync_ios_inflight;
    uint64_t fsync_batch_inflight; /* batch number in flight, 0 none */
    struct vs_disk_io fsync_ios[VS_STORE_DEVS_MAX];
    struct op_list ack_q;  /* written, waiting for their fsync batch */
    struct op_list sync_q; /* vs_store_sync callers */
    struct op_list wait_q; /* waiting for journal space, blocks or entries */
    struct op_list nop_q;  /* to be completed through a NOP io */
    struct vs_disk_io nop_io;
    bool nop_inflight;
    struct vs_disk_io *retry_head, *retry_tail; /* ios the disk refused (-EAGAIN) */
    struct store_jrun jruns[JRUN_MAX];
    struct store_jrun *jrun_open; /* gathering this turn's records */
    struct store_jbatch jb;       /* gathering this turn's small writes */
    /* NOPs that make the disk run the submit hook in a turn whose first
     * record is a record of several writes (store_io.c, jb_kick). */
    struct vs_disk_io kick_ios[JKICK_MAX];
    unsigned kick_busy; /* bit per kick_ios entry in flight */
    bool turn_io;                 /* an io reached the disk since the last hook */
    /* reads */
    uint32_t rgen;
    uint32_t reads[2];
    bool barrier_active, barrier_again;
    uint32_t barrier_parity;
    uint64_t barriers_started, barriers_done;
    /* checkpoint */
    struct store_ck ck;
    /* state */
    bool broken, closing, in_hook;
    unsigned ops_inflight;
    struct vs_store_stats st;
    char errmsg[VS_ERRMSG_SIZE];
};

/* store_index.c */
int store__index_alloc(struct vs_store *s);
void store__index_free(struct vs_store *s);
uint32_t store__obj_find(const struct vs_store *s, uint64_t inode, uint64_t stripe);
uint32_t store__obj_get(struct vs_store *s, uint64_t inode, uint64_t stripe); /* NONE32: full */
void store__obj_maybe_drop(struct vs_store *s, uint32_t oi);
uint32_t store__ent_alloc(struct vs_store *s);
void store__ent_retire(struct vs_store *s, uint32_t ei); /* to the zombie list */
void store__zombies_release(struct vs_store *s);
uint32_t store__block_alloc(struct vs_store *s);
void store__block_mark_used(struct vs_store *s, uint32_t b);
void store__block_release(struct vs_store *s, uint32_t b); /* pending free */
void store__base_release(struct vs_store *s, uint32_t b); /* free once the pages are durable */
void store__base_release_now(struct vs_store *s);
uint32_t store__tomb_alloc(struct vs_store *s);
void store__tomb_mark_used(struct vs_store *s, uint32_t t);
void store__tomb_release(struct vs_store *s, uint32_t t);
void store__pending_release(struct vs_store *s, uint32_t nblocks, uint32_t ntombs);
void store__page_mark_dirty(struct vs_store *s, uint64_t slot);
bool store__invariants(struct vs_store *s);
uint64_t store__newest_version(const struct vs_store *s, uint32_t oi, bool *deleted);
static inline uint8_t *store__bitmap(struct vs_store *s, uint32_t b)
{
    return s->block_bitmap + (size_t)b * s->bitmap_bytes;
}
static inline bool bit_get(const uint8_t *bm, uint32_t i)
{
    return (bm[i >> 3] >> (i & 7)) & 1;
}
static inline void bit_set(uint8_t *bm, uint32_t i)
{
    bm[i >> 3] = (uint8_t)(bm[i >> 3] | (1u << (i & 7)));
}
static inline bool ent_durable(const struct vs_store *s, const struct store_entry *e)
{
    return (e->flags & EF_WRITTEN) && e->fsync_gen <= s->fsync_done;
}

/* store_open.c / store_replay.c */
int store__read_superblock(struct vs_store *s, char *err, size_t esz);
int store__check_layout(struct vs_store *s, char *err, size_t esz);
int store__setup_geometry(struct vs_store *s);
int store__load_ckpt(struct vs_store *s, struct store_ckpt *out, char *err, size_t esz);
int store__load_pages(struct vs_store *s, char *err, size_t esz);
void store__free(struct vs_store *s);

/* store_io.c */
void store__mark_stable(struct vs_store *s, uint32_t oi, uint64_t version);
void store__rollback_obj(struct vs_store *s, uint32_t oi, uint64_t version, bool replay);
void store__defer(struct vs_store *s, struct vs_store_op *op);
uint64_t store__barrier_request(struct vs_store *s);
void store__barrier_check(struct vs_store *s);
void store__issue_fsync(struct vs_store *s, bool drain);
void store__ent_link(struct vs_store *s, uint32_t oi, uint32_t ei);
void store__ck_maybe_start(struct vs_store *s);
bool store__submit(struct vs_store *s, struct vs_disk_io *io);
void store__retry_flush(struct vs_store *s);
static inline void store__count_io(struct vs_store *s, enum vs_store_io_area area, uint64_t len)
{
    s->st.io_count[area]++;
    s->st.io_bytes[area] += len;
}
void store__hook(void *ctx);
void store__request_fsync(struct vs_store *s, bool plain);
void store__complete(struct vs_store *s, struct vs_store_op *op, int result);
void store__set_broken(struct vs_store *s, int err, const char *what);
void store__kick_waiters(struct vs_store *s);

/* store_purge.c */
#define STORE_OPK_PURGE 200 /* op->p.kind of a purge waiting for its checkpoint */
/* Queues op for the next checkpoint (vs_store_checkpoint; a purge with purge). */
int store__ck_wait(struct vs_store *s, struct vs_store_op *op, bool purge);
void store__purge_apply(struct vs_store *s); /* in a checkpoint, after the new start */
void store__purge_done(struct vs_store *s);  /* at its end: ghosts go */
void store__purge_open(struct vs_store *s, bool pages_newer); /* seqs of loaded tombstones */

/* store_ckpt.c */
void store__ck_step(struct vs_store *s);
void store__ck_fsync_done(struct vs_store *s);
void store__page_build(struct vs_store *s, uint64_t page_no, uint8_t *buf);
void store__ck_compute_start(struct vs_store *s);
unsigned store__ck_depth(const struct vs_store *s); /* checkpoint ios allowed in flight */
static inline size_t store__ck_arena_size(const struct vs_store *s)
{
    return VS_MAX((size_t)CK_ARENA_BYTES, 2 * (size_t)s->page_size);
}

/* store_open.c helpers shared with the checker */
int store__sync_io(struct vs_disk *d, int opcode, unsigned dev, uint64_t off, void *buf,
                   uint32_t len);
void *store__aligned_alloc(size_t size);
uint32_t store__random_u32(void);
void store__register_mem(struct vs_store *s);

#endif /* STORE_INT_H */
