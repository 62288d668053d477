/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_rm.c -- `vstor rm NAME`: removes an image. First its data: a DELETE of
 * every object, --parallel at a time, through libvstor (so it waits out OSD
 * restarts like any client), with a progress bar on a terminal and a line
 * per 10 % otherwise; then a sync; then its metadata in one transaction that
 * deletes config/inode/<pool>/<num> and index/image/<name> only if neither
 * changed since the image was opened.
 */
#include "cmd.h"
#include "cmd_client.h"

#include "vs_assert.h"
#include "vs_clock.h"
#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RM_PARALLEL_MAX 1024

struct rm_slot {
    struct vstor_io io;
    struct rm_state *st;
};

struct rm_state {
    struct cmd_client *cc;
    struct rm_slot *slots;
    uint64_t objects, next, done;
    uint64_t last_print_us;
    unsigned active;
    unsigned last_decile;
    int rc;
    bool tty;
    bool finished;
};

static void progress(struct rm_state *st, bool last)
{
    uint64_t now = vs_clock_mono_us();
    unsigned pct = st->objects ? (unsigned)(st->done * 100 / st->objects) : 100;
    if (st->tty) {
        if (!last && now - st->last_print_us < 100000)
            return;
        st->last_print_us = now;
        char bar[41];
        unsigned fill = pct * 40 / 100;
        memset(bar, '#', fill);
        memset(bar + fill, ' ', 40 - fill);
        bar[40] = 0;
        fprintf(stderr, "\r[%s] %3u%% %" PRIu64 "/%" PRIu64 " objects%s", bar, pct, st->done,
                st->objects, last ? "\n" : "");
    } else if (pct / 10 > st->last_decile || last) {
        st->last_decile = pct / 10;
        fprintf(stderr, "removed %" PRIu64 " of %" PRIu64 " objects (%u%%)\n", st->done,
                st->objects, pct);
    }
}

static void rm_issue(struct rm_state *st, struct rm_slot *s);

static void rm_cb(struct vstor_io *io, int rc)
{
    struct rm_slot *s = io->ctx;
    struct rm_state *st = s->st;
    st->active--;
    st->done++;
    if (rc < 0 && st->rc == 0)
        st->rc = rc;
    progress(st, false);
    if (st->rc == 0 && st->next < st->objects)
        rm_issue(st, s);
    if (st->active == 0) {
        st->finished = true;
        st->cc->done = true;
    }
}

static void rm_issue(struct rm_state *st, struct rm_slot *s)
{
    const struct vstor_image_info *info = &st->cc->info;
    uint64_t off = st->next++ * info->object_size;
    s->io = (struct vstor_io){.offset = off, .len = VS_MIN(info->object_size, info->size - off),
                              .cb = rm_cb, .ctx = s};
    int rc = vstor_discard(st->cc->img, &s->io);
    if (rc < 0) {
        st->rc = rc;
        return;
    }
    st->active++;
}

/* Deletes every object of the image; 0 or a negative code. */
static int remove_data(struct cmd_client *cc, unsigned parallel)
{
    struct rm_state st = {.cc = cc, .tty = isatty(STDERR_FILENO) == 1};
    st.objects = (cc->info.size + cc->info.object_size - 1) / cc->info.object_size;
    st.slots = calloc(parallel, sizeof(*st.slots));
    if (!st.slots)
        return -ENOMEM;
    cc->done = false;
    for (unsigned i = 0; i < parallel && st.next < st.objects && st.rc == 0; i++) {
        st.slots[i].st = &st;
        rm_issue(&st, &st.slots[i]);
    }
    if (st.active)
        cmd_client_wait(cc);
    progress(&st, true);
    free(st.slots);
    return st.rc;
}

static void sync_cb(struct vstor_io *io, int rc)
{
    struct cmd_client *cc = io->ctx;
    cc->rc = rc;
    cc->done = true;
}

static void range_cb(void *ctx, int status, const struct vs_meta_op_result *res,
                     uint64_t revision)
{
    struct cmd_client *cc = ctx;
    (void)revision;
    cc->rc = status < 0 ? status : res->n_kvs ? 0 : VS_ENOIMAGE;
    cc->mod_rev = status == 0 && res->n_kvs ? res->kvs[0].mod_rev : 0;
    cc->done = true;
}

static void txn_cb(void *ctx, int status, const struct vs_meta_txn_result *res)
{
    struct cmd_client *cc = ctx;
    cc->rc = status < 0 ? status : res->succeeded ? 0 : VS_ECOMPARE;
    cc->done = true;
}

/* The mod_rev of key, or a negative code. */
static int64_t key_mod_rev(struct cmd_client *cc, const char *key)
{
    struct vstor_client *c = cc->c;
    cc->done = false;
    int rc = c->meta->range(c->m, key, (uint32_t)strlen(key), NULL, 0, range_cb, cc);
    if (rc == 0) {
        cmd_client_wait(cc);
        rc = cc->rc;
    }
    return rc < 0 ? rc : (int64_t)cc->mod_rev;
}

/* Deletes the image's keys if neither changed meanwhile. */
static int remove_meta(struct cmd_client *cc, const char *name)
{
    char ikey[64], nkey[VSTOR_NAME_MAX + 16];
    snprintf(ikey, sizeof(ikey), "config/inode/%u/%" PRIu64, cc->info.pool, cc->info.num);
    snprintf(nkey, sizeof(nkey), "index/image/%s", name);
    int64_t irev = key_mod_rev(cc, ikey), nrev = key_mod_rev(cc, nkey);
    if (irev < 0)
        return (int)irev;
    struct vs_meta_compare cmp[2] = {
        {.key = ikey, .key_len = (uint32_t)strlen(ikey), .target = VS_META_CMP_MOD,
         .op = VS_META_EQ, .number = (uint64_t)irev},
        {.key = nkey, .key_len = (uint32_t)strlen(nkey), .target = VS_META_CMP_MOD,
         .op = VS_META_EQ, .number = nrev < 0 ? 0 : (uint64_t)nrev},
    };
    struct vs_meta_op ops[2] = {
        {.key = ikey, .key_len = (uint32_t)strlen(ikey), .type = VS_META_OP_DELETE},
        {.key = nkey, .key_len = (uint32_t)strlen(nkey), .type = VS_META_OP_DELETE},
    };
    struct vs_meta_txn txn = {.cmp = cmp, .success = ops, .n_cmp = 2, .n_success = 2};
    struct vstor_client *c = cc->c;
    cc->done = false;
    int rc = c->meta->txn(c->m, &txn, txn_cb, cc);
    if (rc == 0) {
        cmd_client_wait(cc);
        rc = cc->rc;
    }
    return rc;
}

int vs_cmd_rm(struct vs_cmd_ctx *ctx)
{
    uint64_t parallel = 32;
    if (vs_cmd_opt_u64(ctx, "parallel", &parallel) < 0)
        return VS_EXIT_USAGE;
    if (parallel < 1 || parallel > RM_PARALLEL_MAX) {
        vs_cmd_error(ctx, "--parallel must be 1..%u", RM_PARALLEL_MAX);
        return VS_EXIT_USAGE;
    }
    const char *name = ctx->argv[0];
    struct cmd_client cc;
    int rc = cmd_client_open(ctx, &cc, name);
    if (rc)
        return rc;
    if (cc.info.readonly) {
        vs_cmd_error(ctx, "image %s is read-only (a snapshot?): not removed", name);
        cmd_client_close(&cc);
        return VS_EXIT_FAIL;
    }
    rc = remove_data(&cc, (unsigned)parallel);
    if (rc == 0) {
        struct vstor_io io = {.cb = sync_cb, .ctx = &cc};
        cc.done = false;
        rc = vstor_sync(cc.img, &io);
        if (rc == 0) {
            cmd_client_wait(&cc);
            rc = cc.rc;
        }
    }
    if (rc < 0) {
        vs_cmd_error(ctx, "removing the data of %s: %s", name, vs_strerror(rc));
    } else if ((rc = remove_meta(&cc, name)) < 0) {
        vs_cmd_error(ctx, "removing the metadata of %s: %s", name,
                     rc == VS_ECOMPARE ? "the image changed meanwhile; run rm again"
                                       : vs_strerror(rc));
    } else {
        printf("removed image %s (%" PRIu64 " bytes)\n", name, cc.info.size);
    }
    cmd_client_close(&cc);
    return rc < 0 ? VS_EXIT_FAIL : VS_EXIT_OK;
}
