/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_err.h -- the vstor error convention.
 *
 * Every fallible function returns an int: 0 (or a count) on success and a
 * negative number on failure. A failure is either a negative errno (-EIO,
 * -ENOSPC, ...; io_uring's cqe->res already is one) or a vstor-specific code in
 * the reserved range [VS_ERR_MIN, VS_ERR_MAX] (-4999 .. -4000), which no errno
 * reaches. vs_strerror() turns either kind into a human sentence.
 *
 * Thread-safety: all functions here are pure and thread-safe.
 */
#ifndef VS_ERR_H
#define VS_ERR_H

#include <errno.h>

/* X(NAME, value, message). Append only: values are part of the wire protocol. */
#define VS_ERR_MAP(X)                                                                    \
    X(VS_EBADFORMAT, -4001, "not a vstor device or unknown on-disk format")              \
    X(VS_EFORMATVERSION, -4002, "on-disk format version is newer than this binary")      \
    X(VS_ECHECKSUM, -4003, "checksum mismatch")                                          \
    X(VS_ECORRUPT, -4004, "on-disk structure is corrupt")                                \
    X(VS_EWRONGCLUSTER, -4005, "belongs to another cluster")                             \
    X(VS_ECONFIG, -4006, "invalid configuration")                                        \
    X(VS_EUSAGE, -4007, "invalid command-line usage")                                    \
    X(VS_ENOTLEADER, -4008, "this metadata member is not the leader")                    \
    X(VS_ECOMPACTED, -4009, "requested revision has been compacted")                     \
    X(VS_ENOTPRIMARY, -4010, "this OSD is not the primary of the PG")                    \
    X(VS_ESTALEEPOCH, -4011, "stale PG epoch")                                           \
    X(VS_EPGINACTIVE, -4012, "placement group is not active")                            \
    X(VS_EPROTO, -4013, "protocol violation")                                            \
    X(VS_ELEASE, -4014, "lease not found or expired")                                    \
    X(VS_ECOMPARE, -4015, "transaction compare failed")                                  \
    X(VS_EINFEASIBLE, -4016, "placement is infeasible")                                  \
    X(VS_ENOIMAGE, -4017, "image not found")                                             \
    X(VS_ENOPOOL, -4018, "pool not found")                                               \
    X(VS_EVERSIONCONFLICT, -4019, "object version conflict")                             \
    X(VS_ESHUTDOWN, -4020, "shutting down")                                              \
    X(VS_EUNAVAILABLE, -4021, "metadata service unavailable (no leader reachable)")      \
    X(VS_EINDOUBT, -4022, "write outcome unknown: connection lost after sending")

enum vs_err {
#define VS_ERR_ENUM(name, value, msg) name = (value),
    VS_ERR_MAP(VS_ERR_ENUM)
#undef VS_ERR_ENUM
};

#define VS_ERR_MAX (-4000)
#define VS_ERR_MIN (-4999)

/* Message for a negative errno or vstor code; never NULL, never freed. Also
 * accepts the positive errno form for convenience. */
const char *vs_strerror(int rc);

/* Symbolic name ("EIO", "VS_ECHECKSUM") or "E?" when unknown; never NULL. */
const char *vs_errname(int rc);

/* Size of the per-object error message buffers (see STYLE B8). */
#define VS_ERRMSG_SIZE 256

#endif /* VS_ERR_H */
