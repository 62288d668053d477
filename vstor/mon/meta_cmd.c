/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * meta_cmd.c -- `vstor meta get|put|del|compact|lease ...|status|member ...`:
 * etcdctl-like commands on the metadata service, through the blocking
 * helpers of the client library. Every command takes --json.
 *
 * Output (text): get prints each key and value on their own lines (values
 * only with --print-value-only); put prints OK; del prints the count; lease
 * grant prints the id. Errors go to stderr as "vstor meta CMD: why" with exit
 * status 1; bad usage exits 2.
 */
#include "cmd.h"
#include "meta.h"

#include "vs_err.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int vs_meta_client_opts_from(struct vs_cmd_ctx *ctx, struct vs_meta_client_opts *o,
                             struct meta_members *mm)
{
    memset(o, 0, sizeof(*o));
    if (!ctx->cfg.mon_address || !ctx->cfg.mon_address[0]) {
        vs_cmd_error(ctx, "no metadata service address: set mon_address (or --mon-address)");
        return VS_EXIT_USAGE;
    }
    snprintf(mm->buf, sizeof(mm->buf), "%s", ctx->cfg.mon_address);
    int n = vs_config_list_split(mm->buf, mm->items, META_MEMBERS_MAX);
    for (int i = 0; i < n; i++)
        mm->ptrs[i] = mm->items[i];
    o->members = (const char *const *)mm->ptrs;
    o->n_members = (unsigned)n;
    o->op_timeout_ms = (unsigned)ctx->cfg.meta_timeout;
    return VS_EXIT_OK;
}

int meta_fail(struct vs_cmd_ctx *ctx, int status)
{
    vs_cmd_error(ctx, "%s", vs_strerror(status));
    return status == -EINVAL ? VS_EXIT_USAGE : VS_EXIT_FAIL;
}

/* ---- JSON helpers ----------------------------------------------------------------- */

json_t *meta_json_bytes(const uint8_t *p, uint32_t len)
{
    json_t *s = json_stringn((const char *)p, len);
    if (s)
        return s;
    /* not UTF-8: hex, so the output stays valid JSON */
    char *hex = malloc((size_t)len * 2 + 3);
    if (!hex)
        return json_null();
    memcpy(hex, "0x", 2);
    for (uint32_t i = 0; i < len; i++)
        snprintf(hex + 2 + 2 * i, 3, "%02x", p[i]);
    s = json_string(hex);
    free(hex);
    return s;
}

json_t *meta_json_kv(const struct vs_meta_kv *kv, bool with_value)
{
    json_t *o = json_object();
    json_object_set_new(o, "key", meta_json_bytes(kv->key, kv->key_len));
    if (with_value)
        json_object_set_new(o, "value", meta_json_bytes(kv->value, kv->value_len));
    json_object_set_new(o, "create_revision", json_integer((json_int_t)kv->create_rev));
    json_object_set_new(o, "mod_revision", json_integer((json_int_t)kv->mod_rev));
    json_object_set_new(o, "version", json_integer((json_int_t)kv->version));
    json_object_set_new(o, "lease", json_integer((json_int_t)kv->lease));
    return o;
}

void meta_print_json(json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        printf("%s\n", s);
        free(s);
    }
    json_decref(o);
}

/* ---- get -------------------------------------------------------------------------- */

/* The range of a key argument: itself, or everything with it as prefix. */
void meta_key_range(const char *key, bool prefix, struct vs_meta_op *op, uint8_t *end)
{
    memset(op, 0, sizeof(*op));
    op->type = VS_META_OP_RANGE;
    op->key = key;
    op->key_len = (uint32_t)strlen(key);
    if (prefix && op->key_len == 0) { /* "" --prefix: every key, as etcdctl */
        op->key = "\0";
        op->key_len = 1;
        end[0] = 0;
        op->range_end = end;
        op->range_end_len = 1;
        return;
    }
    if (prefix) {
        op->range_end = end;
        op->range_end_len = vs_meta_prefix_end(key, op->key_len, end);
    }
}

static void print_range(struct vs_cmd_ctx *ctx, const struct vs_meta_sync_result *r)
{
    const struct vs_meta_op_result *op = r->txn.n_ops ? &r->txn.ops[0] : NULL;
    bool keys_only = vs_cmd_flag(ctx, "keys-only");
    if (vs_cmd_flag(ctx, "json")) {
        json_t *o = json_object();
        json_object_set_new(o, "revision", json_integer((json_int_t)r->txn.revision));
        json_object_set_new(o, "count", json_integer(op ? (json_int_t)op->count : 0));
        json_object_set_new(o, "more", json_boolean(op && op->more));
        json_t *kvs = json_array();
        for (unsigned i = 0; op && i < op->n_kvs; i++)
            json_array_append_new(kvs, meta_json_kv(&op->kvs[i], !keys_only));
        json_object_set_new(o, "kvs", kvs);
        meta_print_json(o);
        return;
    }
    if (vs_cmd_flag(ctx, "count-only")) {
        printf("%" PRIu64 "\n", op ? op->count : 0);
        return;
    }
    bool value_only = vs_cmd_flag(ctx, "print-value-only");
    for (unsigned i = 0; op && i < op->n_kvs; i++) {
        const struct vs_meta_kv *kv = &op->kvs[i];
        if (!value_only)
            printf("%.*s\n", (int)kv->key_len, (const char *)kv->key);
        if (!keys_only)
            printf("%.*s\n", (int)kv->value_len, (const char *)kv->value);
    }
}

int vs_cmd_meta_get(struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    uint64_t limit = 0;
    if (vs_cmd_opt_u64(ctx, "limit", &limit) < 0)
        return VS_EXIT_USAGE;
    uint8_t end[VS_META_KEY_MAX + 1];
    struct vs_meta_op op;
    meta_key_range(ctx->argv[0], vs_cmd_flag(ctx, "prefix"), &op, end);
    op.limit = limit;
    unsigned flags = (vs_cmd_flag(ctx, "keys-only") ? VS_META_KEYS_ONLY : 0) |
                     (vs_cmd_flag(ctx, "count-only") ? VS_META_COUNT_ONLY : 0) |
                     (vs_cmd_flag(ctx, "serializable") ? VS_META_SERIALIZABLE : 0) |
                     (vs_cmd_flag(ctx, "volatile") ? VS_META_VOLATILE : 0);
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_range(&o, &op, flags, &r);
    if (rc == 0)
        print_range(ctx, &r);
    vs_meta_sync_free(&r);
    return rc == 0 ? VS_EXIT_OK : meta_fail(ctx, rc);
}

/* ---- put, del, compact ----------------------------------------------------------------- */

/* Reads stdin whole (for `put KEY -`). */
static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, stdin);
        n += got;
        if (got == 0)
            break;
        if (n == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

static int print_write(struct vs_cmd_ctx *ctx, const struct vs_meta_sync_result *r, bool del)
{
    const struct vs_meta_op_result *op = r->txn.n_ops ? &r->txn.ops[0] : NULL;
    if (vs_cmd_flag(ctx, "json")) {
        json_t *o = json_object();
        json_object_set_new(o, "revision", json_integer((json_int_t)r->txn.revision));
        if (del)
            json_object_set_new(o, "deleted", json_integer(op ? (json_int_t)op->deleted : 0));
        json_t *prev = json_array();
        for (unsigned i = 0; op && i < op->n_kvs; i++)
            json_array_append_new(prev, meta_json_kv(&op->kvs[i], true));
        json_object_set_new(o, "prev_kvs", prev);
        meta_print_json(o);
    } else if (del) {
        printf("%" PRIu64 "\n", op ? op->deleted : 0);
    } else {
        printf("OK\n");
    }
    return VS_EXIT_OK;
}

int vs_cmd_meta_put(struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    uint64_t lease = 0;
    if (vs_cmd_opt_u64(ctx, "lease", &lease) < 0)
        return VS_EXIT_USAGE;
    const char *key = ctx->argv[0];
    char *value = ctx->argv[1];
    size_t vlen = strlen(value);
    char *owned = NULL;
    if (strcmp(value, "-") == 0) {
        owned = value = read_stdin(&vlen);
        if (!owned)
            return meta_fail(ctx, -ENOMEM);
    }
    struct vs_meta_op op = {.type = VS_META_OP_PUT, .key = key, .key_len = (uint32_t)strlen(key),
                            .value = value, .value_len = (uint32_t)vlen, .lease = lease,
                            .flags = vs_cmd_flag(ctx, "prev-kv") ? VS_META_PREV_KV : 0};
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_txn(&o, &txn, &r);
    free(owned);
    if (rc == 0)
        print_write(ctx, &r, false);
    vs_meta_sync_free(&r);
    return rc == 0 ? VS_EXIT_OK : meta_fail(ctx, rc);
}

int vs_cmd_meta_del(struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    uint8_t end[VS_META_KEY_MAX + 1];
    struct vs_meta_op op;
    meta_key_range(ctx->argv[0], vs_cmd_flag(ctx, "prefix"), &op, end);
    op.type = VS_META_OP_DELETE;
    op.flags = vs_cmd_flag(ctx, "prev-kv") ? VS_META_PREV_KV : 0;
    struct vs_meta_txn txn = {.success = &op, .n_success = 1};
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_txn(&o, &txn, &r);
    if (rc == 0)
        print_write(ctx, &r, true);
    vs_meta_sync_free(&r);
    return rc == 0 ? VS_EXIT_OK : meta_fail(ctx, rc);
}

/* ---- leases ---------------------------------------------------------------------------- */

static int lease_cmd(struct vs_cmd_ctx *ctx, int what)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    uint64_t id = 0, ttl = 0;
    if (what == VS_META_SYNC_LEASE_GRANT) {
        if (vs_parse_ms(ctx->argv[0], &ttl) < 0 || ttl < VS_META_LEASE_TTL_MIN_MS) {
            vs_cmd_error(ctx, "TTL '%s': want a duration of at least 1s (e.g. 10s)",
                         ctx->argv[0]);
            return VS_EXIT_USAGE;
        }
        if (vs_cmd_opt_u64(ctx, "id", &id) < 0)
            return VS_EXIT_USAGE;
    } else if (vs_parse_u64(ctx->argv[0], &id) < 0 || id == 0) {
        vs_cmd_error(ctx, "lease id '%s' is not a number", ctx->argv[0]);
        return VS_EXIT_USAGE;
    }
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_lease(&o, what, id, ttl, &r);
    if (rc < 0)
        return meta_fail(ctx, rc);
    if (vs_cmd_flag(ctx, "json")) {
        json_t *j = json_object();
        json_object_set_new(j, "id", json_integer((json_int_t)r.lease_id));
        json_object_set_new(j, "ttl_ms", json_integer((json_int_t)r.ttl_ms));
        meta_print_json(j);
    } else if (what == VS_META_SYNC_LEASE_GRANT) {
        printf("lease %" PRIu64 " granted with TTL %" PRIu64 "ms\n", r.lease_id, r.ttl_ms);
    } else if (what == VS_META_SYNC_LEASE_REVOKE) {
        printf("lease %" PRIu64 " revoked\n", id);
    } else {
        printf("lease %" PRIu64 " has %" PRIu64 "ms left\n", id, r.ttl_ms);
    }
    return VS_EXIT_OK;
}

int vs_cmd_meta_lease_grant(struct vs_cmd_ctx *ctx)
{
    return lease_cmd(ctx, VS_META_SYNC_LEASE_GRANT);
}

int vs_cmd_meta_lease_revoke(struct vs_cmd_ctx *ctx)
{
    return lease_cmd(ctx, VS_META_SYNC_LEASE_REVOKE);
}

int vs_cmd_meta_lease_ttl(struct vs_cmd_ctx *ctx)
{
    return lease_cmd(ctx, VS_META_SYNC_LEASE_TTL);
}

int vs_cmd_meta_lease_keepalive(struct vs_cmd_ctx *ctx)
{
    if (vs_cmd_flag(ctx, "once"))
        return lease_cmd(ctx, VS_META_SYNC_LEASE_KEEPALIVE);
    return meta_keepalive_forever(ctx);
}

/* ---- status and members ---------------------------------------------------------------- */

static const char *state_name(int state)
{
    switch (state) {
    case 1:
        return "follower";
    case 2:
        return "candidate";
    case 3:
        return "leader";
    default:
        return "unavailable";
    }
}

static const char *role_name(int role)
{
    return role == 1 ? "voter" : (role == 0 ? "standby" : "spare");
}

json_t *meta_json_status(const struct vs_raft_status *st)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer((json_int_t)st->id));
    char cid[32];
    snprintf(cid, sizeof(cid), "%016" PRIx64, st->cluster_id);
    json_object_set_new(o, "cluster_id", json_string(cid));
    json_object_set_new(o, "state", json_string(state_name(st->state)));
    json_object_set_new(o, "term", json_integer((json_int_t)st->term));
    json_object_set_new(o, "leader_id", json_integer((json_int_t)st->leader_id));
    json_object_set_new(o, "leader", json_string(st->leader_address));
    const struct {
        const char *name;
        uint64_t v;
    } nums[] = {{"commit_index", st->commit_index},     {"applied_index", st->applied_index},
                {"last_log_index", st->last_log_index}, {"snapshot_index", st->snapshot_index},
                {"revision", st->revision},             {"compact_revision", st->compact_revision},
                {"db_size_bytes", st->db_size_bytes},
                {"log_entries_written", st->log_entries_written},
                {"log_bytes_written", st->log_bytes_written}, {"fsyncs", st->fsyncs},
                {"snapshots_taken", st->snapshots_taken},
                {"snapshots_installed", st->snapshots_installed}};
    for (unsigned i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        json_object_set_new(o, nums[i].name, json_integer((json_int_t)nums[i].v));
    json_t *members = json_array();
    for (unsigned i = 0; i < st->n_members; i++)
        json_array_append_new(members,
                              json_pack("{s:I, s:s, s:s}", "id", (json_int_t)st->members[i].id,
                                        "address", st->members[i].address, "role",
                                        role_name(st->members[i].role)));
    json_object_set_new(o, "members", members);
    return o;
}

static void print_status_text(const char *addr, const struct vs_raft_status *st)
{
    printf("%-22s id %-3" PRIu64 " %-9s term %-5" PRIu64 " leader %-3" PRIu64
           " commit %-8" PRIu64 " applied %-8" PRIu64 " revision %-8" PRIu64
           " db %" PRIu64 " KiB\n",
           addr, st->id, state_name(st->state), st->term, st->leader_id, st->commit_index,
           st->applied_index, st->revision, st->db_size_bytes >> 10);
}

int vs_cmd_meta_status(struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    const char *one = vs_cmd_opt(ctx, "member");
    bool json = vs_cmd_flag(ctx, "json");
    json_t *all = json_array();
    int failures = 0;
    unsigned count = one ? 1 : o.n_members;
    for (unsigned i = 0; i < count; i++) {
        const char *addr = one ? one : o.members[i];
        struct vs_meta_sync_result r;
        rc = vs_meta_sync_status(&o, addr, &r);
        if (rc < 0) {
            failures++;
            if (!json)
                printf("%-22s unreachable: %s\n", addr, vs_strerror(rc));
            json_array_append_new(all, json_pack("{s:s, s:s}", "address", addr, "error",
                                                 vs_strerror(rc)));
            continue;
        }
        if (json) {
            json_t *j = meta_json_status(&r.st);
            json_object_set_new(j, "address", json_string(addr));
            json_array_append_new(all, j);
        } else {
            print_status_text(addr, &r.st);
        }
    }
    if (json)
        meta_print_json(all);
    else
        json_decref(all);
    return failures == (int)count ? VS_EXIT_FAIL : VS_EXIT_OK;
}

static int member_print(struct vs_cmd_ctx *ctx, const struct vs_raft_status *st)
{
    if (vs_cmd_flag(ctx, "json")) {
        json_t *j = meta_json_status(st);
        meta_print_json(json_incref(json_object_get(j, "members")));
        json_decref(j);
        return VS_EXIT_OK;
    }
    for (unsigned i = 0; i < st->n_members; i++)
        printf("%" PRIu64 " %s %s%s\n", st->members[i].id, st->members[i].address,
               role_name(st->members[i].role), st->members[i].id == st->leader_id ? " leader" : "");
    return VS_EXIT_OK;
}

int vs_cmd_meta_member_list(struct vs_cmd_ctx *ctx)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_status(&o, NULL, &r);
    return rc < 0 ? meta_fail(ctx, rc) : member_print(ctx, &r.st);
}

static int member_change(struct vs_cmd_ctx *ctx, bool add)
{
    struct vs_meta_client_opts o;
    struct meta_members mm;
    int rc = vs_meta_client_opts_from(ctx, &o, &mm);
    if (rc != VS_EXIT_OK)
        return rc;
    uint64_t id;
    if (vs_parse_u64(ctx->argv[0], &id) < 0 || id == 0) {
        vs_cmd_error(ctx, "member id '%s' is not a number > 0", ctx->argv[0]);
        return VS_EXIT_USAGE;
    }
    struct vs_meta_sync_result r;
    rc = vs_meta_sync_member(&o, add, id, add ? ctx->argv[1] : NULL, &r);
    return rc < 0 ? meta_fail(ctx, rc) : member_print(ctx, &r.st);
}

int vs_cmd_meta_member_add(struct vs_cmd_ctx *ctx)
{
    return member_change(ctx, true);
}

int vs_cmd_meta_member_remove(struct vs_cmd_ctx *ctx)
{
    return member_change(ctx, false);
}
