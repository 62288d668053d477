/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_fault.c -- what the OSD does when its store fails, and the test-only
 * hook that makes it fail.
 *
 * A STORE THAT FAILS. A device error (EIO) on a write or fsync makes the store
 * read-only ("broken", vs_store.h CRASHES): every later mutation fails with
 * -EIO until it is reopened. An OSD in that state can take no write, as
 * primary or as secondary, and every primary that writes to it would re-peer
 * and fail again, so its PGs would never complete a write. The OSD therefore
 * stops (exit code 1, as Vitastor's OSD does on a disk write error): it stops
 * serving ops at once (F1), its PGs stop, its lease is revoked, and the
 * primaries re-peer without it; the clients retry meanwhile and then
 * complete on the OSDs left. Restarting it reopens the store, which recovers
 * every durable write; peering then recovers what it missed. Nothing it
 * acknowledged is lost: an ack needs the mutation durable on its store
 * (docs/data-path.md D7.6, D7.7), and a failed mutation is never acknowledged.
 *  (F1) Once the store failed, secondary ops (but PG locks) fail with -EIO and
 *       client ops with VS_ESHUTDOWN: a broken store may still hold, in
 *       memory, versions whose writes never reached the disk, and they must
 *       not be read by anyone or recovered to another OSD.
 *
 * THE FAULT HOOK (tests only). With `debug_fault_dir DIR` -- refused unless
 * `enable_debug` is on too -- the store's disk is wrapped: while the file
 * DIR/osd.<id>.eio exists (polled every FAULT_POLL_MS), every write and fsync
 * the store submits completes with -EIO without reaching the device (it goes
 * to the ring as a NOP, so its completion arrives like any other). Reads pass.
 * While DIR/osd.<id>.enospc exists, the primary's local writes and deletes of
 * client ops fail with -ENOSPC before reaching the store (a full store, for
 * the fence of osd_primary.c); recovery and secondary writes pass.
 * integration/test_osd_faults.py uses both.
 */
#include "osd_int.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define FAULT_POLL_MS 20

/* ---- A store that failed ----------------------------------------------------------- */

static void store_failed_cb(uv_timer_t *t)
{
    struct vs_osd *osd = t->data;
    osd__fatal(osd, "the store failed (a device error made it read-only): stopping, so that "
               "the PGs go on without this OSD; restart it to recover the store");
}

void osd__store_broken(void *arg, const char *why)
{
    struct vs_osd *osd = arg;
    /* The store says so whatever io failed: a background flush's or
     * checkpoint's too, which no op waits for and after which ops fail at
     * once with no completion; the OSD once heard of it only from completions
     * and then never stopped. F1 holds from here on. */
    osd->store_failed = true;
    VS_ERROR(OSD_LOG, "store: %s", why);
    /* The stop runs from the loop, not inside the store's io completion:
     * stopping the PGs must not pull ops and peerings from under the
     * callbacks on the stack. Not once the OSD is closing its store. */
    if (!osd->stopping && !uv_is_closing((uv_handle_t *)&osd->stop_timer))
        uv_timer_start(&osd->stop_timer, store_failed_cb, 0, 0);
}

/* ---- The fault disk ------------------------------------------------------------------- */

struct fault_disk {
    struct vs_disk base;
    struct vs_disk *inner;
    struct vs_ring *ring;
    unsigned inflight; /* faulted ios whose NOP is in the ring */
    bool armed;
};

static void fault_cb(struct vs_ring_op *rop, int res)
{
    struct vs_disk_io *io = VS_CONTAINER_OF(rop, struct vs_disk_io, ring);
    struct fault_disk *d = (struct fault_disk *)(uintptr_t)io->seq;
    (void)res;
    VS_ASSERT(d->inflight > 0);
    d->inflight--;
    io->cb(io, -EIO);
}

static int fault_submit(struct vs_disk *base, struct vs_disk_io *io)
{
    struct fault_disk *d = (struct fault_disk *)base;
    if (!d->armed || (io->opcode != VS_DISK_WRITE && io->opcode != VS_DISK_FSYNC))
        return d->inner->ops->submit(d->inner, io);
    io->ring.cb = fault_cb;
    io->seq = (uint64_t)(uintptr_t)d;
    struct io_uring_sqe *sqe = vs_ring_sqe(d->ring, &io->ring);
    if (!sqe)
        return -EAGAIN;
    io_uring_prep_nop(sqe);
    io->flags &= (uint16_t)~VS_DISK_LINK; /* allowed: the submitter checks it */
    d->inflight++;
    return 0;
}

static void fault_set_hook(struct vs_disk *base, void (*fn)(void *ctx), void *ctx)
{
    struct fault_disk *d = (struct fault_disk *)base;
    d->inner->ops->set_hook(d->inner, fn, ctx);
}

static int fault_run_once(struct vs_disk *base)
{
    struct fault_disk *d = (struct fault_disk *)base;
    if (d->inflight)
        return vs_ring_run_once(d->ring);
    return d->inner->ops->run_once(d->inner);
}

static unsigned fault_inflight(struct vs_disk *base)
{
    struct fault_disk *d = (struct fault_disk *)base;
    return d->inflight + d->inner->ops->inflight(d->inner);
}

static void fault_destroy(struct vs_disk *base)
{
    struct fault_disk *d = (struct fault_disk *)base;
    VS_ASSERTF(d->inflight == 0, "inflight=%u", d->inflight);
    vs_disk_destroy(d->inner);
    free(d);
}

static int fault_register_mem(struct vs_disk *base, void *mem, size_t len)
{
    struct fault_disk *d = (struct fault_disk *)base;
    return d->inner->ops->register_mem ? d->inner->ops->register_mem(d->inner, mem, len)
                                       : -EOPNOTSUPP;
}

static void fault_unregister_mem(struct vs_disk *base, const void *mem)
{
    struct fault_disk *d = (struct fault_disk *)base;
    if (d->inner->ops->unregister_mem)
        d->inner->ops->unregister_mem(d->inner, mem);
}

static const struct vs_disk_ops fault_ops = {
    .submit = fault_submit,
    .set_hook = fault_set_hook,
    .run_once = fault_run_once,
    .inflight = fault_inflight,
    .destroy = fault_destroy,
    .register_mem = fault_register_mem,
    .unregister_mem = fault_unregister_mem,
};

int osd__debug_hook_allowed(const struct vs_osd *osd, const char *hook)
{
    if (osd->cfg->enable_debug)
        return 0;
    VS_ERROR(OSD_LOG, "%s is a test-only hook: it needs enable_debug true as well", hook);
    return -EINVAL;
}

int osd__fault_wrap(struct vs_osd *osd)
{
    if (!osd->cfg->debug_fault_dir)
        return 0;
    int rc = osd__debug_hook_allowed(osd, "debug_fault_dir");
    if (rc < 0)
        return rc;
    struct fault_disk *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->base = *osd->disk;
    d->base.ops = &fault_ops;
    d->inner = osd->disk;
    d->ring = osd->loop->ring;
    osd->disk = &d->base;
    osd->fault_disk = d;
    VS_WARN(OSD_LOG, "test-only fault hook on: store writes fail with EIO while %s/osd.<id>.eio "
            "exists", osd->cfg->debug_fault_dir);
    return 0;
}

static void fault_poll(uv_timer_t *t)
{
    struct vs_osd *osd = t->data;
    struct fault_disk *d = osd->fault_disk;
    char path[512];
    snprintf(path, sizeof(path), "%s/osd.%u.eio", osd->cfg->debug_fault_dir, osd->id);
    bool armed = access(path, F_OK) == 0;
    if (armed != d->armed)
        VS_WARN(OSD_LOG, "fault hook: store writes and fsyncs %s", armed ? "fail with EIO now"
                                                                        : "pass again");
    d->armed = armed;
    snprintf(path, sizeof(path), "%s/osd.%u.enospc", osd->cfg->debug_fault_dir, osd->id);
    armed = access(path, F_OK) == 0;
    if (armed != osd->fault_enospc)
        VS_WARN(OSD_LOG, "fault hook: local client writes %s",
                armed ? "fail with ENOSPC now" : "pass again");
    osd->fault_enospc = armed;
}

void osd__fault_start(struct vs_osd *osd)
{
    if (!osd->fault_disk)
        return;
    uv_timer_init(&osd->loop->uv, &osd->fault_timer);
    osd->fault_timer.data = osd;
    uv_timer_start(&osd->fault_timer, fault_poll, 0, FAULT_POLL_MS);
    uv_unref((uv_handle_t *)&osd->fault_timer);
    osd->fault_timer_on = true;
}

void osd__fault_stop(struct vs_osd *osd)
{
    if (!osd->fault_timer_on)
        return;
    osd->fault_timer_on = false;
    uv_close((uv_handle_t *)&osd->fault_timer, NULL);
}
