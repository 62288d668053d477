/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_lease.h -- the read lease between a primary and the other OSDs of its
 * set (docs/data-path.md §3, "No stale reads"): the pure arithmetic and the
 * lock-move rule of PG lock #2, so that both can be tested without a cluster.
 *
 * Why. A primary serves reads from its local copy without asking anyone. A
 * primary that lost its PG to another OSD without hearing of it (it is cut
 * off the metadata service only) would go on serving the old data after the
 * new primary acknowledged a write. The lease closes that: the old primary
 * may read locally only while every other OSD of its set has promised not
 * to let another primary in, and a new primary waits until those promises
 * have run out before it accepts a write.
 *
 * Rules (cited as R1..R6 in osd_sec.c, osd_peering.c and osd_primary.c):
 *  (R1) Length. L = osd_lease_ttl / 2 (vs_read_lease_ms). All times are
 *       milliseconds of CLOCK_MONOTONIC on one host; no two hosts' clocks are
 *       ever compared, only durations, whose rates may differ by up to
 *       VS_LEASE_DRIFT_DIV (10%).
 *  (R2) Secondary. The holder of a PG's lock #2 here holds a read lease on
 *       it until the last time a frame from the holder arrived on the
 *       connection it locked through, + L. When that connection goes down
 *       the lock ends (osd_sec.c L3) but its lease is remembered until it
 *       runs out.
 *  (R3) Lock move. A SEC_LOCK of another OSD with a newer map revision takes
 *       the lock (L2) while the old holder's lease may still run: the old
 *       holder's connection is closed at once (a reachable old primary
 *       learns it now and stops the PGs that use this OSD) and the new
 *       holder is told, in the reply's lock_wait_ms, how long the old lease
 *       can still last -- again if it asks again (its peering restarted),
 *       and so is the next holder after it. The OSD's own PGs take part too: a primary holds a
 *       lock in its own table (conn NULL); a newer SEC_LOCK for it makes that
 *       PG leave ACTIVE before the reply, so no wait is needed for it. An OSD
 *       forgets every lease it granted before it started: for L after its
 *       start every grant waits until start + L.
 *  (R4) Primary. An ACTIVE PG may serve a read locally only while, for every
 *       other OSD of its current set, the connection to it is up and a
 *       request sent at most L - L/10 ago (primary's clock, the send time of
 *       the newest request that got a reply) was answered
 *       (vs_read_lease_valid). Otherwise the read gets VS_EPGINACTIVE and the
 *       client retries.
 *  (R5) Renewal. The messenger pings an outgoing connection whose newest
 *       answered request is L/3 old (vs_read_lease_renew_ms), even while the
 *       peer keeps it busy, so a quiet PG keeps its lease.
 *  (R6) Activation. A new primary activates a PG (accepts client ops) only
 *       once every lock_wait_ms it was given has passed, measured from when
 *       each reply arrived, + 1/10 for clock-rate drift
 *       (vs_lease_activate_at).
 * Why it holds: a request the old primary sent at S and that got a reply
 * arrived at the secondary after S and before the lock moved (the move
 * closes the connection, so no later request is answered). Its lease ends,
 * on the old primary, at S + L - L/10; the secondary's promise ends at
 * arrival + L >= S + L; the new primary waits at least that long from when
 * it heard the promise's remaining length. So the old primary's last local
 * read starts before the new primary's first write.
 *
 * Pure (STYLE B17): no clock, no I/O, no allocation. Thread-safe.
 */
#ifndef VSTOR_OSD_LEASE_H
#define VSTOR_OSD_LEASE_H

#include <stdbool.h>
#include <stdint.h>

#define VS_LEASE_DRIFT_DIV 10   /* clock rates may differ by 1/10 */

/* R1: the read lease length for an OSD metadata lease of ttl_ms. */
uint64_t vs_read_lease_ms(uint64_t ttl_ms);

/* R4: the lease of one secondary is valid at now when a request sent at
 * acked_ms (0 = none answered yet) was answered and
 * acked_ms + lease - lease/10 > now. */
bool vs_read_lease_valid(uint64_t acked_ms, uint64_t lease_ms, uint64_t now_ms);

/* R5: the age of the newest answered request at which a ping renews it. */
uint64_t vs_read_lease_renew_ms(uint64_t lease_ms);

/* R6: when a PG may activate after a lock reply that arrived at reply_ms
 * with wait_ms. */
uint64_t vs_lease_activate_at(uint64_t reply_ms, uint64_t wait_ms);

/* ---- Lock #2 moves (R2, R3) --------------------------------------------------- */

/* A PG's lock #2 entry as a secondary keeps it. */
struct vs_lock2_view {
    bool present;            /* an entry exists */
    uint32_t holder;         /* its OSD */
    bool held;               /* the lock is held (a connection, or our own PG);
                              * false: released, only its lease may still run */
    bool self;               /* holder is this OSD (its own PG) */
    uint64_t map_rev;        /* the map revision the holder locked with */
    uint64_t lease_until_ms; /* R2: last frame + L (held) or as remembered */
    uint64_t prior_until_ms; /* R3: the lease of the holders before this one ends
                              * then: a holder that asks again (a new peering)
                              * still waits for it */
};

struct vs_lock2_decision {
    bool grant;          /* false: refuse with VS_ENOTPRIMARY (L2) */
    bool close_old;      /* R3: close the old holder's connection */
    bool stop_own;       /* R3: our own PG leaves ACTIVE first */
    uint64_t wait_ms;    /* R3: lock_wait_ms for the reply */
    uint64_t prior_until_ms; /* for the entry of the new holder */
};

/* L2 + R3: what a SEC_LOCK of OSD `who` with map revision rev does to the
 * entry cur, at now, on an OSD that started at started_ms. */
struct vs_lock2_decision vs_lock2_decide(const struct vs_lock2_view *cur, uint32_t who,
                                         uint64_t rev, uint64_t lease_ms, uint64_t started_ms,
                                         uint64_t now_ms);

#endif /* VSTOR_OSD_LEASE_H */
