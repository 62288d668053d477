/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_lease.c -- the read lease arithmetic and the lock-move rule (rules
 * R1-R6 in osd_lease.h).
 */
#include "osd_lease.h"

#include "vs_assert.h"

#include <stddef.h>

uint64_t vs_read_lease_ms(uint64_t ttl_ms)
{
    VS_ASSERT(ttl_ms > 0);
    return ttl_ms / 2;
}

bool vs_read_lease_valid(uint64_t acked_ms, uint64_t lease_ms, uint64_t now_ms)
{
    if (acked_ms == 0)
        return false; /* nothing answered on this connection yet */
    return acked_ms + lease_ms - lease_ms / VS_LEASE_DRIFT_DIV > now_ms;
}

uint64_t vs_read_lease_renew_ms(uint64_t lease_ms)
{
    return lease_ms / 3 ? lease_ms / 3 : 1;
}

uint64_t vs_lease_activate_at(uint64_t reply_ms, uint64_t wait_ms)
{
    /* The wait was measured on the secondary's clock; ours may run up to a
     * tenth faster. Rounded up so that a short wait still gets its margin. */
    return reply_ms + wait_ms + (wait_ms + VS_LEASE_DRIFT_DIV - 1) / VS_LEASE_DRIFT_DIV;
}

static uint64_t remaining(uint64_t until_ms, uint64_t now_ms)
{
    return until_ms > now_ms ? until_ms - now_ms : 0;
}

struct vs_lock2_decision vs_lock2_decide(const struct vs_lock2_view *cur, uint32_t who,
                                         uint64_t rev, uint64_t lease_ms, uint64_t started_ms,
                                         uint64_t now_ms)
{
    struct vs_lock2_decision d = {.grant = true};
    VS_ASSERT(who != 0);
    /* R3: leases granted by an earlier run of this OSD are unknown. */
    uint64_t until = started_ms + lease_ms;
    if (cur->present && cur->holder != who && cur->held && rev <= cur->map_rev) {
        d.grant = false; /* L2: only a newer map moves a held lock */
        return d;
    }
    if (cur->present) {
        /* The leases of earlier holders still count, for whoever holds it next. */
        d.prior_until_ms = cur->prior_until_ms;
        if (cur->holder != who && !cur->self && cur->lease_until_ms > d.prior_until_ms)
            d.prior_until_ms = cur->lease_until_ms; /* the holder we move it from */
        d.close_old = cur->holder != who && cur->held && !cur->self;
        d.stop_own = cur->holder != who && cur->self; /* our PG stops before the reply */
    }
    if (d.prior_until_ms > until)
        until = d.prior_until_ms;
    d.wait_ms = remaining(until, now_ms);
    return d;
}
