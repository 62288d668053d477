/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli_disk.c -- `vstor disk format|info|check|dump`: offline tools over one
 * store (1..3 devices), through libvstore on the process's io_uring.
 * `vstor disk bench` is in cli_disk_bench.c.
 */
#include "cli_disk.h"

#include "vs_err.h"
#include "vs_raft.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- shared helpers ------------------------------------------------------- */

int vs_disk_cli_open(struct vs_cmd_ctx *ctx, bool readonly, struct vs_disk_cli *dc)
{
    memset(dc, 0, sizeof(*dc));
    char err[VS_ERRMSG_SIZE];
    int rc = vs_ring_create(1024, &dc->ring, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        return rc;
    }
    const char *paths[3];
    for (int i = 0; i < ctx->argc && i < 3; i++)
        paths[i] = ctx->argv[i];
    bool direct = !vs_cmd_flag(ctx, "no-direct");
    rc = vs_disk_uring_open(dc->ring, paths, (unsigned)ctx->argc, direct, readonly, &dc->disk, err,
                            sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_ring_destroy(dc->ring);
        dc->ring = NULL;
    }
    return rc;
}

void vs_disk_cli_close(struct vs_disk_cli *dc)
{
    if (dc->store)
        vs_store_close(dc->store);
    vs_disk_destroy(dc->disk);
    vs_ring_destroy(dc->ring);
    memset(dc, 0, sizeof(*dc));
}

/* The store configuration from the config keys (scope store). */
void vs_disk_cli_config(const struct vs_cmd_ctx *ctx, struct vs_store_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->durability = ctx->cfg.store_lazy_sync ? VS_STORE_LAZY : VS_STORE_DURABLE_ACK;
    cfg->fsync_disabled[0] = ctx->cfg.store_disable_fsync;
    cfg->fsync_disabled[1] = ctx->cfg.store_disable_fsync;
    cfg->fsync_disabled[2] = ctx->cfg.store_disable_fsync;
    cfg->journal_checkpoint_pct = (uint32_t)ctx->cfg.store_checkpoint_pct;
    cfg->idle_sync = ctx->cfg.store_idle_sync;
}

int vs_disk_cli_open_store(struct vs_cmd_ctx *ctx, bool readonly, struct vs_disk_cli *dc)
{
    int rc = vs_disk_cli_open(ctx, readonly, dc);
    if (rc < 0)
        return rc;
    struct vs_store_config cfg;
    vs_disk_cli_config(ctx, &cfg);
    cfg.readonly = readonly;
    char err[VS_ERRMSG_SIZE];
    rc = vs_store_open(dc->disk, &cfg, &dc->store, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s (%s)", err, vs_errname(rc));
        vs_disk_cli_close(dc);
    }
    return rc;
}

static void uuid_str(const uint8_t *u, char *out)
{
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", u[i]);
}

/* ---- format ---------------------------------------------------------------- */

/* The cluster id of a new store: --cluster-id (decimal or 0x hex), else the
 * metadata service's (mon_address), which is what `vstor osd` checks the
 * store against (docs/data-path.md §1). */
static int format_cluster_id(struct vs_cmd_ctx *ctx, uint64_t *out)
{
    const char *v = vs_cmd_opt(ctx, "cluster-id");
    if (v) {
        char *end;
        errno = 0;
        unsigned long long id = strtoull(v, &end, strncmp(v, "0x", 2) == 0 ? 16 : 10);
        if (errno || *end || !*v || id == 0) {
            vs_cmd_error(ctx, "--cluster-id '%s': not a non-zero decimal or 0x hex number", v);
            return VS_EUSAGE;
        }
        *out = id;
        return 0;
    }
    if (!ctx->cfg.mon_address) {
        vs_cmd_error(ctx, "no cluster id: give --cluster-id, or mon_address so that the "
                     "metadata service can be asked");
        return VS_EUSAGE;
    }
    char *copy = strdup(ctx->cfg.mon_address), *mons[16];
    int n = copy ? vs_config_list_split(copy, mons, 16) : 0;
    struct vs_meta_client_opts o = {.members = (const char *const *)mons,
                                     .n_members = n > 0 ? (unsigned)n : 0,
                                     .op_timeout_ms = 10000};
    struct vs_meta_sync_result res;
    int rc = n > 0 ? vs_meta_sync_status(&o, NULL, &res) : -EINVAL;
    free(copy);
    if (rc < 0) {
        vs_cmd_error(ctx, "reading the cluster id from %s: %s", ctx->cfg.mon_address,
                     vs_strerror(rc));
        return rc;
    }
    *out = res.st.cluster_id;
    vs_meta_sync_free(&res);
    if (*out == 0) {
        vs_cmd_error(ctx, "the metadata service at %s has no cluster id yet",
                     ctx->cfg.mon_address);
        return -EAGAIN;
    }
    return 0;
}

static int parse_format_opts(struct vs_cmd_ctx *ctx, struct vs_store_format_opts *fo)
{
    memset(fo, 0, sizeof(*fo));
    fo->block_size = (uint32_t)ctx->cfg.store_block_size;
    fo->layout.journal_size = ctx->cfg.store_journal_size;
    fo->csum_disabled = ctx->cfg.store_csum_block_size == 0;
    fo->csum_block_size = (uint32_t)ctx->cfg.store_csum_block_size;
    fo->force = vs_cmd_flag(ctx, "force");
    uint64_t v = 0;
    if (vs_cmd_opt_u64(ctx, "osd-id", &fo->osd_id))
        return VS_EUSAGE;
    if (vs_cmd_opt_u64(ctx, "tombstones", &fo->tomb_count))
        return VS_EUSAGE;
    v = 0;
    if (vs_cmd_opt_u64(ctx, "journal-device", &v) || v >= (uint64_t)ctx->argc)
        return VS_EUSAGE;
    fo->layout.journal_dev = (uint8_t)v;
    v = 0;
    if (vs_cmd_opt_u64(ctx, "data-device", &v) || v >= (uint64_t)ctx->argc)
        return VS_EUSAGE;
    fo->layout.data_dev = (uint8_t)v;
    return 0;
}

int vs_cmd_disk_format(struct vs_cmd_ctx *ctx)
{
    struct vs_store_format_opts fo;
    if (parse_format_opts(ctx, &fo) < 0) {
        vs_cmd_error(ctx, "bad --osd-id, --tombstones or device index");
        return VS_EXIT_USAGE;
    }
    int crc = format_cluster_id(ctx, &fo.cluster_id);
    if (crc < 0)
        return crc == VS_EUSAGE ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    struct vs_disk_cli dc;
    if (vs_disk_cli_open(ctx, false, &dc) < 0)
        return VS_EXIT_FAIL;
    char err[VS_ERRMSG_SIZE];
    int rc = vs_store_format(dc.disk, &fo, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_disk_cli_close(&dc);
        return rc == -EINVAL ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    struct vs_store *s;
    struct vs_store_config cfg = {.readonly = true};
    rc = vs_store_open(dc.disk, &cfg, &s, err, sizeof(err));
    if (rc == 0) {
        struct vs_store_info info;
        vs_store_get_info(s, &info);
        char u[40];
        uuid_str(info.uuid, u);
        printf("formatted %s: uuid %s, %" PRIu64 " blocks of %u bytes, journal %" PRIu64
               " bytes\n", ctx->argv[0], u, info.block_count, info.block_size,
               info.layout.journal_size);
        vs_store_close(s);
    }
    vs_disk_cli_close(&dc);
    return rc == 0 ? VS_EXIT_OK : VS_EXIT_FAIL;
}

/* ---- info ------------------------------------------------------------------ */

static json_t *info_json(struct vs_store *s)
{
    struct vs_store_info in;
    struct vs_store_stats st;
    vs_store_get_info(s, &in);
    vs_store_get_stats(s, &st);
    char u[40];
    uuid_str(in.uuid, u);
    return json_pack(
        "{s:s, s:i, s:I, s:I, s:i, s:i, s:I, s:I, s:{s:i, s:I, s:i, s:I, s:I, s:i, s:I, s:I},"
        " s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
        "uuid", u, "format_version", (int)in.format_version, "cluster_id",
        (json_int_t)in.cluster_id, "osd_id", (json_int_t)in.osd_id, "block_size",
        (int)in.block_size, "csum_block_size", (int)in.csum_block_size, "block_count",
        (json_int_t)in.block_count, "tomb_count", (json_int_t)in.tomb_count, "layout",
        "meta_device", (int)in.layout.meta_dev, "meta_offset", (json_int_t)in.layout.meta_offset,
        "journal_device", (int)in.layout.journal_dev, "journal_offset",
        (json_int_t)in.layout.journal_offset, "journal_size", (json_int_t)in.layout.journal_size,
        "data_device", (int)in.layout.data_dev, "data_offset", (json_int_t)in.layout.data_offset,
        "data_size", (json_int_t)in.layout.data_size, "blocks_used", (json_int_t)st.blocks_used,
        "bytes_used", (json_int_t)st.bytes_used, "bytes_free", (json_int_t)st.bytes_free,
        "objects", (json_int_t)st.object_count, "tombstones_used", (json_int_t)st.tomb_used,
        "journal_used", (json_int_t)st.journal_used, "journal_records_replayed",
        (json_int_t)st.journal_replayed, "ram_index_bytes", (json_int_t)st.ram_index_bytes);
}

static void print_json(json_t *j)
{
    char *txt = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", txt);
    free(txt);
    json_decref(j);
}

int vs_cmd_disk_info(struct vs_cmd_ctx *ctx)
{
    struct vs_disk_cli dc;
    if (vs_disk_cli_open_store(ctx, true, &dc) < 0)
        return VS_EXIT_FAIL;
    json_t *j = info_json(dc.store);
    if (vs_cmd_flag(ctx, "json")) {
        print_json(j);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(j, key, v) {
            if (json_is_object(v)) {
                const char *k2;
                json_t *v2;
                json_object_foreach(v, k2, v2)
                    printf("%-26s %" JSON_INTEGER_FORMAT "\n", k2, json_integer_value(v2));
            } else if (json_is_string(v)) {
                printf("%-26s %s\n", key, json_string_value(v));
            } else {
                printf("%-26s %" JSON_INTEGER_FORMAT "\n", key, json_integer_value(v));
            }
        }
        json_decref(j);
    }
    vs_disk_cli_close(&dc);
    return VS_EXIT_OK;
}

/* ---- check ----------------------------------------------------------------- */

static void run_cb(struct vs_store_op *op)
{
    *(int *)op->ctx = 1;
}

int vs_disk_cli_run(struct vs_disk_cli *dc, struct vs_store_op *op,
                    int (*fn)(struct vs_store *, struct vs_store_op *))
{
    int done = 0;
    op->cb = run_cb;
    op->ctx = &done;
    int rc = fn(dc->store, op);
    if (rc < 0)
        return rc;
    while (!done) {
        rc = vs_ring_run_once(dc->ring);
        if (rc < 0 && !done)
            return rc;
    }
    return op->result;
}

/* Reads every retained version of every object in full: every checksum. */
int vs_cmd_disk_check(struct vs_cmd_ctx *ctx)
{
    struct vs_disk_cli dc;
    if (vs_disk_cli_open_store(ctx, true, &dc) < 0) {
        fprintf(stderr, "vstor disk check: DAMAGED: the store does not open\n");
        return VS_EXIT_FAIL;
    }
    struct vs_store_info in;
    vs_store_get_info(dc.store, &in);
    struct vs_store_list_entry *le;
    long n = vs_store_list(dc.store, VS_STORE_POOL_ANY, 0, 0, 0, &le);
    void *buf = NULL;
    if (n < 0 || posix_memalign(&buf, 4096, in.block_size) != 0) {
        vs_disk_cli_close(&dc);
        return VS_EXIT_FAIL;
    }
    uint8_t *bm = malloc(vs_store_bitmap_bytes(dc.store));
    long bad = 0, versions = 0;
    for (long i = 0; i < n; i++) {
        if (le[i].flags & VS_STORE_LIST_DELETED)
            continue;
        struct vs_store_op op;
        memset(&op, 0, sizeof(op));
        op.oid = le[i].oid;
        op.version = le[i].version;
        op.len = in.block_size;
        op.buf = buf;
        op.bitmap = bm;
        int rc = vs_disk_cli_run(&dc, &op, vs_store_read);
        versions++;
        if (rc < 0) {
            bad++;
            printf("object %#" PRIx64 ":%#" PRIx64 " v%" PRIu64 ": %s\n", le[i].oid.inode,
                   le[i].oid.stripe, le[i].version, vs_strerror(rc));
        }
    }
    printf("checked %ld versions of %ld entries: %ld damaged\n", versions, n, bad);
    free(le);
    free(buf);
    free(bm);
    vs_disk_cli_close(&dc);
    return bad ? VS_EXIT_FAIL : VS_EXIT_OK;
}

/* ---- dump ------------------------------------------------------------------ */

static void num_or_dash(char buf[24], bool has, uint64_t v)
{
    if (has)
        snprintf(buf, 24, "%" PRIu64, v);
    else
        snprintf(buf, 24, "-");
}

/* One item of a journal record: a JSON object, or a line of text. Fields
 * that do not apply (block of a small write, data of a big one, offset of a
 * stabilize item) are null in JSON and "-" in text. */
static void dump_rec(void *ctx, const struct vs_store_jrec *r)
{
    json_t *arr = ctx;
    bool wr = strcmp(r->type, "write") == 0;
    if (arr) {
        json_t *o = json_pack("{s:I, s:I, s:s, s:i, s:i, s:I, s:I, s:I}", "seq",
                              (json_int_t)r->seq, "pos", (json_int_t)r->pos, "type", r->type,
                              "items", (int)r->items, "item", (int)r->item, "inode",
                              (json_int_t)r->oid.inode, "stripe", (json_int_t)r->oid.stripe,
                              "version", (json_int_t)r->version);
        json_object_set_new(o, "offset", wr ? json_integer(r->offset) : json_null());
        json_object_set_new(o, "len", wr ? json_integer(r->len) : json_null());
        json_object_set_new(o, "block", r->block != UINT32_MAX ? json_integer(r->block)
                                                                : json_null());
        json_object_set_new(o, "data_pos", r->data_pos != UINT64_MAX
                                               ? json_integer((json_int_t)r->data_pos)
                                               : json_null());
        json_object_set_new(o, "stable", json_boolean(wr && (r->flags & 1)));
        json_object_set_new(o, "big", json_boolean(wr && (r->flags & 2)));
        json_array_append_new(arr, o);
        return;
    }
    char item[24], off[24], len[24], block[24], data[24];
    snprintf(item, sizeof(item), "%u/%u", r->item, r->items);
    num_or_dash(off, wr, r->offset);
    num_or_dash(len, wr, r->len);
    num_or_dash(block, r->block != UINT32_MAX, r->block);
    num_or_dash(data, r->data_pos != UINT64_MAX, r->data_pos);
    printf("%-10" PRIu64 " %-10" PRIu64 " %-9s %-7s %#18" PRIx64 " %#14" PRIx64 " v%-8" PRIu64
           " %8s %8s %10s %10s %s%s\n", r->seq, r->pos, r->type, item, r->oid.inode,
           r->oid.stripe, r->version, off, len, block, data, wr && (r->flags & 1) ? "stable" : "",
           wr && (r->flags & 2) ? " big" : "");
}

/* The journal listing; VS_EXIT_FAIL when a record does not decode (the
 * listing ends there, with a message on stderr). */
static int dump_journal(struct vs_cmd_ctx *ctx, struct vs_store *s, bool json)
{
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-10s %-10s %-9s %-7s %18s %14s %-9s %8s %8s %10s %10s %s\n", "seq", "pos",
               "type", "item", "inode", "stripe", "version", "offset", "len", "block", "data",
               "flags");
    struct vs_store_jrec bad;
    long n = vs_store_dump_journal(s, dump_rec, arr, &bad);
    if (json)
        print_json(arr);
    uint64_t seq = 0, pos = 0;
    int end = n >= 0 ? vs_store_journal_end(s, &seq, &pos) : 0;
    if (end < 0) /* not a failure of the listing: replay stopped there too */
        fprintf(stderr, "vstor: the journal ends before seq %" PRIu64 ": the record at %" PRIu64
                " was refused at replay (%s): torn by a crash, or damaged\n",
                seq, pos, vs_strerror(end));
    if (n >= 0)
        return VS_EXIT_OK;
    vs_cmd_error(ctx, "journal record seq %" PRIu64 " at %" PRIu64
                 " does not decode (%s): the listing ends there", bad.seq, bad.pos,
                 vs_strerror((int)n));
    return VS_EXIT_FAIL;
}

static void dump_objects(struct vs_store *s, bool json)
{
    struct vs_store_list_entry *le;
    long n = vs_store_list(s, VS_STORE_POOL_ANY, 0, 0, 0, &le);
    json_t *arr = json ? json_array() : NULL;
    if (!json)
        printf("%-18s %-14s %-10s %s\n", "inode", "stripe", "version", "flags");
    for (long i = 0; i < n; i++) {
        bool st = le[i].flags & VS_STORE_LIST_STABLE, del = le[i].flags & VS_STORE_LIST_DELETED;
        if (json)
            json_array_append_new(arr, json_pack("{s:I, s:I, s:I, s:b, s:b}", "inode",
                                                 (json_int_t)le[i].oid.inode, "stripe",
                                                 (json_int_t)le[i].oid.stripe, "version",
                                                 (json_int_t)le[i].version, "stable", st,
                                                 "deleted", del));
        else
            printf("%#-18" PRIx64 " %#-14" PRIx64 " %-10" PRIu64 " %s%s\n", le[i].oid.inode,
                   le[i].oid.stripe, le[i].version, st ? "stable" : "unstable",
                   del ? " deleted" : "");
    }
    if (n >= 0)
        free(le);
    if (json)
        print_json(arr);
}

int vs_cmd_disk_dump(struct vs_cmd_ctx *ctx)
{
    struct vs_disk_cli dc;
    if (vs_disk_cli_open_store(ctx, true, &dc) < 0)
        return VS_EXIT_FAIL;
    bool json = vs_cmd_flag(ctx, "json");
    int rc = VS_EXIT_OK;
    if (vs_cmd_flag(ctx, "journal"))
        rc = dump_journal(ctx, dc.store, json);
    else
        dump_objects(dc.store, json);
    vs_disk_cli_close(&dc);
    return rc;
}
