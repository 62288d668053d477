/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * net_proto.h -- the vstor wire protocol: frame header codec, opcodes, the
 * fields of every message, and the validation rules (docs/protocol.md holds
 * the byte tables; this header and that document change together).
 *
 * A frame is a fixed 128-byte little-endian header followed by up to two
 * payload segments: `meta` (a bitmap, a list of object versions, ...) and
 * then `data` (object bytes). Requests and replies share the header layout;
 * the REPLY flag tells them apart and the request id pairs them.
 *
 * Contract:
 *  - Pure functions: no I/O, no allocation, no globals; thread-safe.
 *  - Decoding validates every field before anything is used: magic, version,
 *    opcode, flags, the header CRC, both payload lengths against the limits,
 *    the op fields against the opcode's rules, and that unused op bytes and
 *    the reserved tail are zero. A frame that fails is a protocol violation
 *    (VS_EPROTO, with a sentence in err): the messenger closes that
 *    connection and nothing else. Rules that need the state of the object
 *    (is the offset inside the object? is the version current?) are not
 *    protocol rules: the OSD answers those with an error reply.
 *  - Encoding runs the same checks, so whatever we send, our own decoder
 *    accepts; decode(encode(h)) == h and encode(decode(b)) == b.
 *  - Payload items (object versions, list entries, bitmap-read results) are
 *    encoded and decoded with the item helpers below, which validate too.
 *
 * Object ids are (inode u64, stripe u64); the pool id is inode >> 48.
 */
#ifndef VSTOR_NET_PROTO_H
#define VSTOR_NET_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Constants ---------------------------------------------------------- */

#define VS_NET_HDR_SIZE 128
#define VS_NET_MAGIC 0x314E5356u /* "VSN1" as little-endian bytes */
#define VS_NET_PROTO_MIN 1       /* oldest protocol version we speak */
#define VS_NET_PROTO_MAX 1       /* newest protocol version we speak */
#define VS_NET_CLUSTER_ID_SIZE 16
#define VS_NET_POOL_BITS 16      /* pool id = inode >> (64 - VS_NET_POOL_BITS) */
#define VS_NET_POOL_MAX 0xFFFFu
#define VS_NET_LIST_MIN_ENTRIES 64 /* SEC_LIST max_entries lower bound */
#define VS_NET_LOCK_WAIT_MAX_MS 600000u /* SEC_LOCK reply lock_wait_ms upper bound */

/* Header flags. */
#define VS_NET_F_REPLY 0x1u

/* Opcodes. Values are part of the wire protocol: append, never renumber.
 * Gaps are room for later ops of the same family. */
enum vs_net_opcode {
    VS_NET_OP_HELLO = 1, /* handshake: the first frame each way */
    VS_NET_OP_PING = 2,
    /* client -> primary */
    VS_NET_OP_READ = 16,
    VS_NET_OP_WRITE = 17,
    VS_NET_OP_SYNC = 18,
    VS_NET_OP_DELETE = 19,
    /* primary -> secondary (OSD <-> OSD) */
    VS_NET_OP_SEC_READ = 32,
    VS_NET_OP_SEC_WRITE = 33,
    VS_NET_OP_SEC_WRITE_STABLE = 34,
    VS_NET_OP_SEC_SYNC = 35,
    VS_NET_OP_SEC_STABILIZE = 36,
    VS_NET_OP_SEC_ROLLBACK = 37,
    VS_NET_OP_SEC_DELETE = 38,
    VS_NET_OP_SEC_LIST = 39,
    VS_NET_OP_SEC_READ_BITMAP = 40,
    VS_NET_OP_SEC_LOCK = 41, /* PG lock #2 (docs/data-path.md section 3) */
    VS_NET_OP_SEC_PURGE = 42, /* wipe a PG, or purge its tombstones (data-path.md §5) */
};
/* Opcodes are < VS_NET_OP_LIMIT (the size of handler tables). */
#define VS_NET_OP_LIMIT 64

/* Peer roles in HELLO. */
enum vs_net_role {
    VS_NET_ROLE_CLIENT = 1,
    VS_NET_ROLE_OSD = 2,
    VS_NET_ROLE_MON = 3,
};

/* SEC_READ / SEC_READ_BITMAP version selector. */
enum vs_net_sel {
    VS_NET_SEL_LATEST = 0,        /* newest version, stable or not; version field 0 */
    VS_NET_SEL_LATEST_STABLE = 1, /* newest stable version; version field 0 */
    VS_NET_SEL_EXACT = 2,         /* exactly `version` (nonzero), else -ENOENT */
};
#define VS_NET_SEL_COUNT 3

/* Op flags (request `flags` fields). Unknown bits are a protocol violation. */
#define VS_NET_SECF_RECOVERY 0x1u /* SEC_*: issued by recovery, not by a client */
#define VS_NET_SECF_MASK 0x1u
#define VS_NET_LOCKF_LOCK 0x1u   /* SEC_LOCK: take the PG lock */
#define VS_NET_LOCKF_UNLOCK 0x2u /* SEC_LOCK: release it */
#define VS_NET_PURGEF_WIPE 0x1u  /* SEC_PURGE: drop every object of the PG (below: 0) */
#define VS_NET_PURGEF_TOMBS 0x2u /* SEC_PURGE: drop its tombstones below `below` */
/* Reply flags. */
#define VS_NET_RF_LIST_MORE 0x1u /* SEC_LIST: more entries after next_{inode,stripe} */

/* Payload items. */
#define VS_NET_OBJVER_SIZE 24  /* inode u64, stripe u64, version u64 */
#define VS_NET_LISTENT_SIZE 25 /* inode u64, stripe u64, version u64, flags u8 */
#define VS_NET_LISTENT_STABLE 0x1u  /* the version is stable on the lister */
#define VS_NET_LISTENT_DELETED 0x2u /* the version is a delete tombstone */
#define VS_NET_LISTENT_MASK 0x3u

/* ---- Decoded header ----------------------------------------------------- */

struct vs_net_hello {
    uint8_t cluster_id[VS_NET_CLUSTER_ID_SIZE];
    uint16_t proto_min, proto_max;
    uint8_t role;               /* enum vs_net_role */
    uint64_t node_id;           /* OSD or mon number; 0 for clients */
    uint64_t features;          /* capability bits; unknown bits are ignored */
    uint32_t block_size;        /* 0 when the sender has no store */
    uint32_t bitmap_granularity;
};

/* READ, WRITE, DELETE from a client. */
struct vs_net_rw {
    uint64_t inode;
    uint64_t offset;  /* byte offset in the image */
    uint32_t len;     /* READ: bytes to read (0 = bitmap only); WRITE: data_len */
    uint32_t flags;   /* none defined: 0 */
    uint64_t version; /* WRITE/DELETE: compare-and-swap, 0 = unconditional; READ: 0 */
};

/* SEC_READ, SEC_WRITE, SEC_WRITE_STABLE, SEC_DELETE. */
struct vs_net_sec {
    uint64_t inode, stripe;
    uint64_t version;  /* writes/deletes: the version to create; reads: see selector */
    uint32_t offset;   /* byte offset inside the object */
    uint32_t len;      /* bytes */
    uint32_t flags;    /* VS_NET_SECF_* */
    uint8_t selector;  /* SEC_READ only: enum vs_net_sel */
};

/* SEC_STABILIZE, SEC_ROLLBACK, SEC_READ_BITMAP: `count` object versions in meta. */
struct vs_net_batch {
    uint32_t count;
    uint32_t flags;      /* VS_NET_SECF_* */
    uint32_t bitmap_len; /* SEC_READ_BITMAP: bitmap bytes per object; else 0 */
    uint8_t selector;    /* SEC_READ_BITMAP: enum vs_net_sel; else 0 */
};

/* SEC_LIST: the objects of one PG of one pool, paged. */
struct vs_net_list {
    uint32_t pool;        /* <= VS_NET_POOL_MAX */
    uint32_t pg_num;      /* 0-based, < pg_count */
    uint32_t pg_count;
    uint32_t max_entries; /* >= VS_NET_LIST_MIN_ENTRIES */
    uint64_t pg_stripe_size;
    uint64_t start_inode, start_stripe; /* inclusive; start_inode's pool == pool */
    uint32_t flags;       /* none defined: 0 */
};

/* SEC_LOCK: lock or unlock one PG on a secondary. */
struct vs_net_lock {
    uint32_t pool;          /* <= VS_NET_POOL_MAX */
    uint32_t pg_num;        /* 0-based */
    uint32_t flags;         /* exactly one of VS_NET_LOCKF_LOCK, VS_NET_LOCKF_UNLOCK */
    uint64_t map_revision;  /* revision of the PG map the primary acts on */
};

/* SEC_PURGE: one PG of one pool, on a secondary that holds our lock #2
 * for it (WIPE is sent to an OSD outside the set, TOMBS to the set). */
struct vs_net_purge {
    uint32_t pool;           /* <= VS_NET_POOL_MAX */
    uint32_t pg_num;         /* 0-based, < pg_count */
    uint32_t pg_count;       /* >= 1 */
    uint32_t flags;          /* exactly one of VS_NET_PURGEF_WIPE, VS_NET_PURGEF_TOMBS */
    uint64_t pg_stripe_size; /* > 0 */
    uint64_t below;          /* TOMBS: versions below it (> 0); WIPE: 0 */
};

/* SYNC, SEC_SYNC. */
struct vs_net_sync {
    uint32_t flags; /* none defined: 0 */
};

/* The reply fields, common to every reply. */
struct vs_net_reply {
    int32_t retval;   /* 0 or a negative errno / vstor code (common/vs_err.h) */
    uint32_t flags;   /* VS_NET_RF_* */
    uint64_t version; /* object version written or read; on a SEC_LOCK
                       * refusal, the OSD holding the lock */
    uint32_t count;   /* items in meta (SEC_LIST, SEC_READ_BITMAP) */
    uint64_t next_inode, next_stripe; /* SEC_LIST with VS_NET_RF_LIST_MORE */
    uint32_t lock_wait_ms;  /* SEC_LOCK success: how long the old holder's read lease
                             * may still last (vstor/osd/osd_lease.h, R3);
                             * <= VS_NET_LOCK_WAIT_MAX_MS; 0 in every other reply */
    struct vs_net_hello hello;        /* HELLO: the replier's identity */
};

struct vs_net_hdr {
    uint16_t version; /* protocol version of this frame */
    uint16_t opcode;  /* enum vs_net_opcode */
    uint32_t flags;   /* VS_NET_F_* */
    uint64_t id;      /* chosen by the requester, echoed in the reply */
    uint32_t meta_len, data_len;
    union {
        struct vs_net_hello hello;
        struct vs_net_rw rw;
        struct vs_net_sec sec;
        struct vs_net_batch batch;
        struct vs_net_list list;
        struct vs_net_lock lock;
        struct vs_net_purge purge;
        struct vs_net_sync sync;
    } req;                  /* requests */
    struct vs_net_reply rep; /* replies */
};

/* Configurable limits, applied by both the encoder and the decoder. */
struct vs_net_limits {
    uint32_t data_max;   /* data segment bytes */
    uint32_t meta_max;   /* meta segment bytes */
    uint32_t bitmap_max; /* bytes of one object bitmap */
};
#define VS_NET_DATA_MAX_DEFAULT (64u << 20)
#define VS_NET_META_MAX_DEFAULT (64u << 20)
#define VS_NET_BITMAP_MAX_DEFAULT 4096u
void vs_net_limits_default(struct vs_net_limits *lim);

/* ---- Payload items ------------------------------------------------------ */

struct vs_net_objver {
    uint64_t inode, stripe, version;
};
struct vs_net_listent {
    uint64_t inode, stripe, version;
    uint8_t flags; /* VS_NET_LISTENT_* */
};

/* ---- Codec -------------------------------------------------------------- */

/* Decodes and validates one header. Returns 0, or VS_EPROTO with a sentence
 * in err ("data_len 80000000 exceeds the limit 67108864"). err may be NULL. */
int vs_net_hdr_decode(const uint8_t in[VS_NET_HDR_SIZE], const struct vs_net_limits *lim,
                      struct vs_net_hdr *out, char *err, size_t err_size);

/* Validates h by the same rules as the decoder, then writes it with its CRC.
 * Returns 0 or VS_EPROTO (err filled); out is untouched on error. */
int vs_net_hdr_encode(const struct vs_net_hdr *h, const struct vs_net_limits *lim,
                      uint8_t out[VS_NET_HDR_SIZE], char *err, size_t err_size);

/* The checks of a reply that need its request: same opcode, a READ returns
 * exactly the bytes asked for, a bitmap read answers every object, a listing
 * stays within max_entries. Returns 0 or VS_EPROTO. */
int vs_net_reply_check(const struct vs_net_hdr *req, const struct vs_net_hdr *rep, char *err,
                       size_t err_size);

/* Handshake: may `ours` talk to `theirs` (both HELLO bodies)? Returns 0 and
 * the protocol version to use in *version, or VS_EWRONGCLUSTER /
 * -EPROTONOSUPPORT with a sentence naming both sides in err. */
int vs_net_hello_check(const struct vs_net_hello *ours, const struct vs_net_hello *theirs,
                       uint16_t *version, char *err, size_t err_size);

void vs_net_objver_put(uint8_t *p, const struct vs_net_objver *v);
void vs_net_objver_get(const uint8_t *p, struct vs_net_objver *v);
void vs_net_listent_put(uint8_t *p, const struct vs_net_listent *e);
/* Returns 0, or VS_EPROTO for unknown flag bits. */
int vs_net_listent_get(const uint8_t *p, struct vs_net_listent *e);

/* ---- Names -------------------------------------------------------------- */

/* "SEC_WRITE_STABLE", or NULL for an opcode that does not exist. */
const char *vs_net_op_name(unsigned opcode);
/* True for a defined opcode. */
bool vs_net_op_valid(unsigned opcode);
/* True when requests of this opcode carry a payload (the server needs buffers). */
bool vs_net_op_has_req_payload(unsigned opcode);
/* Pool of an inode. */
static inline uint32_t vs_net_inode_pool(uint64_t inode)
{
    return (uint32_t)(inode >> (64 - VS_NET_POOL_BITS));
}
/* Formats a cluster id as 32 hex digits into buf (>= 33 bytes). */
const char *vs_net_cluster_id_str(const uint8_t id[VS_NET_CLUSTER_ID_SIZE], char *buf);

#endif /* VSTOR_NET_PROTO_H */
