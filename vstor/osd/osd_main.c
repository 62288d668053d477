/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * osd_main.c -- `vstor osd --device PATH`: the process. Order of start
 * (docs/data-path.md §3, "OSD lifecycle"):
 *
 *   1. the loop and the process io_uring; the store (its superblock gives
 *      the OSD id and the cluster id);
 *   2. the metadata service: its cluster id must be the store's, else the
 *      OSD refuses to start (osd_meta.c);
 *   3. the messengers (their HELLO carries the cluster id) and the op pools;
 *   4. the lease, osd/state/<id>, the view, the PGs (osd_meta.c).
 *
 * Stop (SIGTERM/SIGINT): every PG stops (in-flight ops finish, lock #2 is
 * released, pg/state deleted), then the lease is revoked, the messengers and
 * the metadata client close, the store is closed cleanly. A second signal
 * exits at once (loop.h). If the PGs cannot stop within osd_stop_timeout
 * (a peer or the metadata service is gone) the OSD stops anyway: nothing it
 * acknowledged depends on the stop.
 */
#include "osd.h"
#include "osd_int.h"

#include "cmd.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"
#include "vs_ring.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RING_ENTRIES 1024
#define STOP_TIMEOUT_MS 15000

void osd__pg_name(char *buf, size_t size, uint16_t pool, uint32_t pg)
{
    snprintf(buf, size, "%u.%x", pool, pg);
}

void osd__fatal(struct vs_osd *osd, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    VS_ERROR(OSD_LOG, "%s", msg);
    osd->exit_code = VS_EXIT_FAIL;
    if (!osd->stopping)
        vs_osd_stop(osd);
}

/* ---- The store -------------------------------------------------------------- */

static int store_open(struct vs_osd *osd, const char *const *paths, unsigned n, bool direct)
{
    char err[VS_ERRMSG_SIZE];
    int rc = vs_disk_uring_open(osd->loop->ring, paths, n, direct, false, &osd->disk, err,
                                sizeof(err));
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "%s", err);
        return rc;
    }
    rc = osd__fault_wrap(osd);
    if (rc < 0) {
        vs_disk_destroy(osd->disk);
        osd->disk = NULL;
        return rc;
    }
    struct vs_store_config sc = {.durability = osd->store_lazy ? VS_STORE_LAZY
                                                               : VS_STORE_DURABLE_ACK,
                                 .expect_osd_id = 0,
                                 /* Measured (docs/performance.md): with a drained fsync
                                  * in every turn's batch, io_uring defers the next turn's
                                  * writes and runs them on io-wq worker threads, which
                                  * cost more CPU per write and added latency. */
                                 .fsync_no_drain = true,
                                 .idle_sync = osd->cfg->store_idle_sync,
                                 .journal_checkpoint_pct =
                                     (uint32_t)osd->cfg->store_checkpoint_pct,
                                 .on_broken = osd__store_broken,
                                 .on_broken_arg = osd};
    for (int d = 0; d < VS_STORE_DEVS_MAX; d++)
        sc.fsync_disabled[d] = osd->cfg->store_disable_fsync;
    rc = vs_store_open(osd->disk, &sc, &osd->store, err, sizeof(err));
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "opening the store on %s: %s", paths[0], err);
        vs_disk_destroy(osd->disk);
        osd->disk = NULL;
        return rc;
    }
    vs_store_get_info(osd->store, &osd->info);
    osd->block_size = osd->info.block_size;
    osd->bitmap_bytes = vs_store_bitmap_bytes(osd->store);
    return 0;
}

/* One line of the store's io counts since open: what a benchmark divides by
 * the client's writes (ios per write, by area). */
static void store_log_ios(struct vs_osd *osd)
{
    struct vs_store_stats st;
    vs_store_get_stats(osd->store, &st);
    const uint64_t *n = st.io_count, *b = st.io_bytes;
    VS_INFO(OSD_LOG,
            "store ios since open: writes %llu, journal %llu (%llu KiB; %llu records, %llu "
            "writes in records of several), data %llu (%llu KiB), "
            "flush %llu (%llu KiB, %llu merged), meta %llu, fsync %llu, checkpoints %llu, "
            "journal waits %llu",
            (unsigned long long)st.op_write, (unsigned long long)n[VS_STORE_IO_JOURNAL],
            (unsigned long long)(b[VS_STORE_IO_JOURNAL] >> 10),
            (unsigned long long)st.journal_records, (unsigned long long)st.writes_batched,
            (unsigned long long)n[VS_STORE_IO_DATA],
            (unsigned long long)(b[VS_STORE_IO_DATA] >> 10),
            (unsigned long long)n[VS_STORE_IO_FLUSH],
            (unsigned long long)(b[VS_STORE_IO_FLUSH] >> 10), (unsigned long long)st.flush_merged,
            (unsigned long long)n[VS_STORE_IO_META], (unsigned long long)n[VS_STORE_IO_FSYNC],
            (unsigned long long)st.checkpoints, (unsigned long long)st.journal_waits);
}

static void store_close(struct vs_osd *osd)
{
    if (osd->store) {
        store_log_ios(osd);
        int rc = vs_store_close(osd->store);
        if (rc < 0)
            VS_ERROR(OSD_LOG, "closing the store: %s", vs_strerror(rc));
        osd->store = NULL;
    }
    vs_disk_destroy(osd->disk);
    osd->disk = NULL;
}

/* ---- Op pools (STYLE B10) -------------------------------------------------------- */

static void *buf_at(struct vs_osd *osd, uint32_t i)
{
    return (uint8_t *)osd->bufs + (size_t)i * osd->block_size;
}

static int pools_alloc(struct vs_osd *osd)
{
    uint32_t nbufs = osd->op_count + osd->rec_count + osd->secop_count;
    osd->bufs_size = (size_t)nbufs * osd->block_size + (size_t)osd->op_count * 4096;
    osd->bufs = mmap(NULL, osd->bufs_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (osd->bufs == MAP_FAILED) {
        osd->bufs = NULL;
        return -ENOMEM;
    }
    uint32_t nops = osd->op_count + osd->rec_count;
    osd->bitmaps = calloc((size_t)nbufs, osd->bitmap_bytes);
    osd->ops = calloc(nops, sizeof(*osd->ops));
    osd->secops = calloc(osd->secop_count, sizeof(*osd->secops));
    if (!osd->bitmaps || !osd->ops || !osd->secops)
        return -ENOMEM;
    uint8_t *heads = (uint8_t *)osd->bufs + (size_t)nbufs * osd->block_size;
    for (uint32_t i = nops; i-- > 0;) {
        struct osd_op *op = &osd->ops[i];
        op->osd = osd;
        op->buf = buf_at(osd, i);
        op->bitmap = osd->bitmaps + (size_t)i * osd->bitmap_bytes;
        op->head_buf = i < osd->op_count ? heads + (size_t)i * 4096 : NULL;
        struct osd_op **list = i < osd->op_count ? &osd->op_free : &osd->rec_free;
        op->next = *list;
        *list = op;
    }
    for (uint32_t i = osd->secop_count; i-- > 0;) {
        struct osd_secop *s = &osd->secops[i];
        s->osd = osd;
        s->buf = buf_at(osd, nops + i);
        s->bitmap = osd->bitmaps + (size_t)(nops + i) * osd->bitmap_bytes;
        s->next = osd->secop_free;
        osd->secop_free = s;
    }
    return vs_objq_init(&osd->objq, nops);
}

static void pools_free(struct vs_osd *osd)
{
    if (osd->bufs)
        munmap(osd->bufs, osd->bufs_size);
    osd->bufs = NULL;
    free(osd->bitmaps);
    free(osd->ops);
    free(osd->secops);
    osd->bitmaps = NULL;
    osd->ops = NULL;
    osd->secops = NULL;
    vs_objq_free(&osd->objq);
}

/* ---- The messenger -------------------------------------------------------------- */

static int net_make(struct vs_osd *osd)
{
    struct vs_net_cfg nc;
    char err[VS_ERRMSG_SIZE], listen[96];
    vs_net_cfg_init(&nc);
    vs_net_cfg_from_config(&nc, osd->cfg);
    /* A primary cut off from its set notices within 2/5 of osd_lease_ttl
     * (silence plus an unanswered ping, plus the keepalive tick, 1/20) and
     * re-peers, well before the others can take its PGs over (its lease must
     * expire first). Stale reads do not depend on this timing: the read
     * lease (osd_lease.h) stops its reads in every partition. */
    uint32_t cap = (uint32_t)VS_MAX(osd->cfg->osd_lease_ttl / 5, 10);
    if (osd->cfg->debug_keepalive_uncapped) {
        /* Tests only (integration/test_osd_stale_read.py): with the cap off, a
         * primary cut off from its set stays active past the moment its PGs
         * move, and the read lease alone must stop its reads. */
        int rc = osd__debug_hook_allowed(osd, "debug_keepalive_uncapped");
        if (rc < 0)
            return rc;
        VS_WARN(OSD_LOG, "test-only: keepalive not capped by osd_lease_ttl: ping after %u ms "
                "of silence, dead after %u ms more", nc.ping_interval_ms, nc.ping_timeout_ms);
        cap = UINT32_MAX;
    }
    if (nc.ping_interval_ms > cap || nc.ping_timeout_ms > cap)
        VS_INFO(OSD_LOG, "keepalive: ping after %u ms of silence, dead after %u ms more "
                "(at most osd_lease_ttl/5 each)", VS_MIN(nc.ping_interval_ms, cap),
                VS_MIN(nc.ping_timeout_ms, cap));
    nc.ping_interval_ms = VS_MIN(nc.ping_interval_ms, cap);
    nc.ping_timeout_ms = VS_MIN(nc.ping_timeout_ms, cap);
    /* Read leases (osd_lease.h): R1, R5, and R3's start: no lock is granted
     * before we listen, and none granted by an earlier run is known. */
    osd->lease_ms = vs_read_lease_ms(osd->cfg->osd_lease_ttl);
    osd->started_ms = osd__now_ms();
    nc.lease_renew_ms = (uint32_t)vs_read_lease_renew_ms(osd->lease_ms);
    memcpy(nc.cluster_id, osd->cluster_id16, sizeof(nc.cluster_id));
    nc.role = VS_NET_ROLE_OSD;
    nc.node_id = osd->id;
    nc.block_size = osd->block_size;
    nc.bitmap_granularity = VS_STORE_GRANULE;
    nc.req_pool_size = osd->op_count;     /* client ops: one osd_op each */
    nc.sec_pool_size = osd->secop_count;  /* secondary ops: one osd_secop each */
    nc.conn_req_max = VS_MAX(osd->op_count, osd->secop_count);
    nc.conn_op_max = 4096;
    nc.on_event = osd__peer_event;
    nc.event_ctx = osd;
    nc.log_name = "osd-net";
    int rc = vs_net_create(&osd->loop->uv, &nc, &osd->net, err, sizeof(err));
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "%s", err);
        return rc;
    }
    const char *ip = osd->cfg->osd_address ? osd->cfg->osd_address : "127.0.0.1";
    bool v6 = strchr(ip, ':') != NULL;
    snprintf(listen, sizeof(listen), v6 ? "[%s]:%" PRIu64 : "%s:%" PRIu64, ip,
             osd->cfg->osd_port);
    rc = vs_net_listen(osd->net, listen, err, sizeof(err));
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "listening on %s: %s", listen, err);
        return rc;
    }
    snprintf(osd->addr, sizeof(osd->addr), v6 ? "[%s]:%u" : "%s:%u", ip,
             vs_net_listen_port(osd->net));
    return 0;
}

int osd__net_start(struct vs_osd *osd)
{
    for (int i = 0; i < VS_NET_CLUSTER_ID_SIZE; i++)
        osd->cluster_id16[i] = i < 8 ? (uint8_t)(osd->cluster_id >> (8 * i)) : 0;
    int rc = pools_alloc(osd);
    if (rc < 0) {
        VS_ERROR(OSD_LOG, "out of memory for %u ops of %u bytes", osd->op_count,
                 osd->block_size);
        return rc;
    }
    /* Every store write of a client or secondary op comes from these
     * buffers: registered with the ring, those writes skip the per-io page
     * pinning (io_uring fixed buffers). It pins them in memory; when the
     * kernel refuses (RLIMIT_MEMLOCK without CAP_IPC_LOCK, over 1 GiB) the
     * writes simply go unregistered. */
    rc = vs_ring_register_buffer(osd->loop->ring, osd->bufs, osd->bufs_size);
    if (rc < 0)
        VS_INFO(OSD_LOG, "op buffers (%zu MiB) not registered with io_uring: %s",
                osd->bufs_size >> 20, vs_strerror(rc));
    rc = net_make(osd);
    if (rc < 0)
        return rc;
    osd__sec_register(osd);
    osd__primary_register(osd);
    osd__stats_start(osd);
    VS_INFO(OSD_LOG, "serving on %s", osd->addr);
    return 0;
}

/* ---- Stop -------------------------------------------------------------------------- */

static void loop_done(struct vs_osd *osd)
{
    osd__fault_stop(osd);
    uv_close((uv_handle_t *)&osd->stop_timer, NULL);
    vs_loop_stop(osd->loop);
}

static void net_closed(void *ctx)
{
    struct vs_osd *osd = ctx;
    osd->net = NULL;
    loop_done(osd);
}

static void meta_closed(struct vs_osd *osd)
{
    osd__stats_stop(osd);
    osd__peers_close(osd);
    if (osd->net)
        vs_net_close(osd->net, net_closed, osd);
    else
        loop_done(osd);
}

void osd__all_pgs_stopped(struct vs_osd *osd)
{
    if (!osd->stopping || osd->meta_closed_cb)
        return;
    uv_timer_stop(&osd->stop_timer);
    osd__meta_stop(osd, meta_closed);
}

static void stop_timeout(uv_timer_t *t)
{
    struct vs_osd *osd = t->data;
    VS_WARN(OSD_LOG, "PGs did not stop within %u s: stopping anyway", STOP_TIMEOUT_MS / 1000);
    for (uint32_t i = 0; i < osd->pg_hash_size; i++)
        for (struct osd_pg *pg = osd->pg_hash[i]; pg; pg = pg->hnext)
            osd__peering_abort(pg);
    osd__all_pgs_stopped(osd);
}

void vs_osd_stop(struct vs_osd *osd)
{
    if (osd->stopping)
        return;
    osd->stopping = true;
    VS_INFO(OSD_LOG, "stopping: PGs first, then the lease");
    uv_timer_start(&osd->stop_timer, stop_timeout, STOP_TIMEOUT_MS, 0);
    osd__pgs_stop_all(osd);
}

static void on_signal(struct vs_loop *loop, int signum, void *ctx)
{
    (void)loop;
    VS_INFO(OSD_LOG, "signal %d", signum);
    vs_osd_stop(ctx);
}

/* ---- The command ---------------------------------------------------------------------- */

/* Devices in the order `vstor disk format` numbered them. */
static void parse_devices(struct vs_cmd_ctx *ctx, const char *paths[3], unsigned *n)
{
    const char *names[] = {"device", "device2", "device3"};
    *n = 0;
    for (int i = 0; i < 3; i++) {
        const char *v = vs_cmd_opt(ctx, names[i]);
        if (v)
            paths[(*n)++] = v;
    }
}

static int check_id(struct vs_cmd_ctx *ctx, struct vs_osd *osd, const char *dev)
{
    uint64_t want = 0;
    if (vs_cmd_opt_u64(ctx, "id", &want) < 0)
        return VS_EXIT_USAGE;
    if (osd->info.osd_id == 0 || osd->info.osd_id > UINT32_MAX) {
        vs_cmd_error(ctx, "%s: the store has no valid OSD id (%" PRIu64 "): format it with "
                     "`vstor disk format --osd-id N`", dev, osd->info.osd_id);
        return VS_EXIT_FAIL;
    }
    if (want && want != osd->info.osd_id) {
        vs_cmd_error(ctx, "%s holds osd.%" PRIu64 ", not osd.%" PRIu64, dev, osd->info.osd_id,
                     want);
        return VS_EXIT_FAIL;
    }
    osd->id = (uint32_t)osd->info.osd_id;
    return 0;
}

static void config_sizes(struct vs_osd *osd)
{
    const struct vs_config *c = osd->cfg;
    osd->op_count = (uint32_t)c->osd_op_max;
    osd->rec_count = (uint32_t)c->osd_recovery_depth * 4 + 16;
    osd->secop_count = (uint32_t)c->osd_op_max * 2;
    /* store_lazy_sync: the store acknowledges writes when written and the
     * client's SYNC makes them durable (SEC_SYNC fan-out, osd_primary.c);
     * writes to pools that commit immediately are synced before their ack
     * (osd__sync_after). Off: every acknowledged write is durable. */
    osd->store_lazy = c->store_lazy_sync;
}

static int run(struct vs_cmd_ctx *ctx, struct vs_osd *osd)
{
    const char *paths[3];
    unsigned n;
    parse_devices(ctx, paths, &n);
    if (!ctx->cfg.mon_address) {
        vs_cmd_error(ctx, "no metadata service: set mon_address (--mon-address HOST:PORT)");
        return VS_EXIT_USAGE;
    }
    if (store_open(osd, paths, n, !vs_cmd_flag(ctx, "no-direct")) < 0)
        return VS_EXIT_FAIL;
    int rc = check_id(ctx, osd, paths[0]);
    if (rc)
        return rc;
    snprintf(osd->name, sizeof(osd->name), "osd.%u", osd->id);
    vs_log_set_process(osd->name);
    osd__fault_start(osd);
    VS_INFO(OSD_LOG, "store on %s: block_size %u, %" PRIu64 " blocks, cluster %016" PRIx64
            ", %s", paths[0], osd->block_size, osd->info.block_count, osd->info.cluster_id,
            osd->store_lazy ? "lazy sync" : "durable acks");
    if (osd__meta_start(osd) < 0)
        return VS_EXIT_FAIL;
    vs_loop_on_shutdown(osd->loop, on_signal, osd);
    vs_loop_run(osd->loop);
    return osd->exit_code;
}

/* The lone-op spin's gate (loop.h): open while exactly one op -- a client
 * op, a recovery op or a secondary op -- is in service, named by the count of
 * ops started so far. */
static uint64_t spin_gate(void *ctx)
{
    const struct vs_osd *osd = ctx;
    return osd->ops_used + osd->recs_used + osd->secops_used == 1 ? osd->ops_started : 0;
}

int vs_cmd_osd(struct vs_cmd_ctx *ctx)
{
    static struct vs_loop loop;
    struct vs_osd *osd = calloc(1, sizeof(*osd));
    if (!osd)
        return VS_EXIT_FAIL;
    osd->cfg = &ctx->cfg;
    osd->loop = &loop;
    config_sizes(osd);
    if (vs_loop_init(&loop, RING_ENTRIES) < 0 ||
        vs_loop_busy_poll(&loop, (unsigned)ctx->cfg.loop_busy_poll_us) < 0 ||
        vs_loop_spin_lone(&loop, (unsigned)ctx->cfg.loop_spin_lone_us, spin_gate, osd) < 0) {
        vs_cmd_error(ctx, "%s", loop.errmsg);
        free(osd);
        return VS_EXIT_FAIL;
    }
    uv_timer_init(&loop.uv, &osd->stop_timer);
    osd->stop_timer.data = osd;
    int rc = run(ctx, osd);
    if (loop.spin.uv) /* what a benchmark checks: no windows at depth > 1 */
        VS_INFO(OSD_LOG, "%s spin: %llu windows, %llu turns, %llu completions reaped",
                loop.spin.gate ? "lone-op" : "busy-poll", (unsigned long long)loop.spin.windows,
                (unsigned long long)loop.spin.turns, (unsigned long long)loop.spin.reaped);
    if (!uv_is_closing((uv_handle_t *)&osd->stop_timer))
        uv_close((uv_handle_t *)&osd->stop_timer, NULL);
    osd__fault_stop(osd);
    store_close(osd);
    vs_loop_close(&loop);
    pools_free(osd);
    vs_placement_pools_free(osd->pools);
    vs_pgmap_free(osd->pgmap);
    free(osd->peers);
    free(osd->pg_hash);
    free(osd->locks);
    free(osd);
    return rc;
}
