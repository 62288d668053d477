/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_log.c -- raft's persistent state in the database: the log entries, the
 * current term and vote, and the metadata of the last snapshot; plus an
 * in-memory cache of the newest entries, so that replication to followers
 * rarely reads SQLite.
 *
 * NOTES
 *
 * Invariants (cited as "log invariant N"):
 *  (1) The log rows form one contiguous run [first, last] (or none); every
 *      change keeps it so: appends go at last+1 after truncating any suffix,
 *      snapshots delete a prefix, an installed snapshot deletes everything.
 *  (2) Every write here marks the turn's transaction durable (db invariant 2),
 *      so raft_node reports "persisted" only after an fsync that covers it.
 *  (3) The cache holds exactly the entries [cache_first, last] with
 *      cache_first >= first; entries below cache_first are read from SQLite.
 *  (4) A snapshot's metadata is written in the same transaction as the log
 *      truncation it allows, so a crash never leaves a log that starts past
 *      the snapshot without the snapshot that covers the gap.
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_SLOTS 4096u            /* power of two */
#define CACHE_BYTES_MAX (64u << 20)

static struct raft_log_entry *slot(struct raft_log *log, uint64_t index)
{
    return &log->cache[index & (CACHE_SLOTS - 1)];
}

static void cache_drop_front(struct raft_log *log)
{
    VS_ASSERT(log->cache_first <= log->last);
    struct raft_log_entry *e = slot(log, log->cache_first);
    log->cache_bytes -= e->len;
    free(e->data);
    memset(e, 0, sizeof(*e));
    log->cache_first++;
}

static void cache_clear_from(struct raft_log *log, uint64_t index)
{
    /* Drop [max(index, cache_first), last] from the cache. */
    for (uint64_t i = VS_MAX(index, log->cache_first); i <= log->last && log->last; i++) {
        struct raft_log_entry *e = slot(log, i);
        log->cache_bytes -= e->len;
        free(e->data);
        memset(e, 0, sizeof(*e));
    }
    if (log->cache_first > index)
        log->cache_first = index;
}

/* Adds entry `index` (== last + 1) to the cache; copies data. */
static int cache_push(struct raft_log *log, uint64_t index, uint64_t term, uint8_t type,
                      const void *data, uint32_t len)
{
    VS_ASSERT(index == log->last + 1);
    if (log->cache_first == 0 || log->cache_first > index)
        log->cache_first = index;
    while (log->cache_first < index &&
           (index - log->cache_first >= CACHE_SLOTS || log->cache_bytes + len > CACHE_BYTES_MAX))
        cache_drop_front(log);
    struct raft_log_entry *e = slot(log, index);
    e->data = malloc(len ? len : 1);
    if (!e->data)
        return -ENOMEM;
    if (len)
        memcpy(e->data, data, len);
    e->len = len;
    e->term = term;
    e->type = type;
    log->cache_bytes += len;
    return 0;
}

static int read_snapshot_meta(struct raft_log *log)
{
    uint8_t *blob;
    size_t len;
    int rc = raft__db_meta_get_blob(log->db, "snapshot", &blob, &len);
    if (rc < 0 || !blob)
        return rc;
    struct vs_cursor c = vs_cursor_make(blob, len);
    log->snap_index = vs_rd_u64(&c);
    log->snap_term = vs_rd_u64(&c);
    log->snap_conf_index = vs_rd_u64(&c);
    uint32_t conf_len = vs_rd_u32(&c);
    if (!c.ok || vs_cursor_left(&c) != conf_len || log->snap_term == 0 ||
        raft__conf_check(c.p, conf_len) < 0) {
        free(blob);
        snprintf(log->db->errmsg, sizeof(log->db->errmsg), "snapshot metadata is corrupt");
        return VS_ECORRUPT;
    }
    log->snap_conf = malloc(conf_len);
    if (!log->snap_conf) {
        free(blob);
        return -ENOMEM;
    }
    memcpy(log->snap_conf, c.p, conf_len);
    log->snap_conf_len = conf_len;
    free(blob);
    return 0;
}

int raft__log_load(struct raft_log *log, struct raft_db *db)
{
    memset(log, 0, sizeof(*log));
    log->db = db;
    log->cache = calloc(CACHE_SLOTS, sizeof(*log->cache));
    if (!log->cache)
        return -ENOMEM;
    bool found;
    int rc = raft__db_meta_get_u64(db, "term", &log->term, &found);
    if (rc == 0)
        rc = raft__db_meta_get_u64(db, "vote", &log->vote, &found);
    if (rc == 0)
        rc = read_snapshot_meta(log);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = raft__db_stmt(db, RS_LOG_BOUNDS);
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        log->first = (uint64_t)sqlite3_column_int64(st, 0);
        log->last = (uint64_t)sqlite3_column_int64(st, 1);
        uint64_t count = (uint64_t)sqlite3_column_int64(st, 2);
        if (log->last - log->first + 1 != count || log->first == 0) {
            sqlite3_reset(st);
            snprintf(db->errmsg, sizeof(db->errmsg), "log has holes (%llu rows in %llu..%llu)",
                     (unsigned long long)count, (unsigned long long)log->first,
                     (unsigned long long)log->last);
            return VS_ECORRUPT;
        }
    }
    sqlite3_reset(st);
    if (src != SQLITE_ROW)
        return raft__db_error(db, src, "log bounds");
    /* Log invariant 1 and 4: the log continues right after the snapshot. */
    if (log->last && log->snap_index && log->first > log->snap_index + 1) {
        snprintf(db->errmsg, sizeof(db->errmsg), "log starts at %llu after snapshot %llu",
                 (unsigned long long)log->first, (unsigned long long)log->snap_index);
        return VS_ECORRUPT;
    }
    if (!log->last) {
        log->first = log->snap_index + 1;
        log->last = log->snap_index;
    }
    log->cache_first = log->last + 1;
    return 0;
}

void raft__log_free(struct raft_log *log)
{
    if (log->cache) {
        for (unsigned i = 0; i < CACHE_SLOTS; i++)
            free(log->cache[i].data);
        free(log->cache);
    }
    free(log->snap_conf);
    memset(log, 0, sizeof(*log));
}

int raft__log_set_term_vote(struct raft_log *log, uint64_t term, uint64_t vote)
{
    int rc = raft__db_begin(log->db);
    if (rc == 0 && term != log->term)
        rc = raft__db_meta_set_u64(log->db, "term", term);
    if (rc == 0 && vote != log->vote)
        rc = raft__db_meta_set_u64(log->db, "vote", vote);
    if (rc < 0)
        return rc;
    raft__db_mark_durable(log->db);
    log->term = term;
    log->vote = vote;
    return 0;
}

static int insert_row(struct raft_log *log, uint64_t index, uint64_t term, uint8_t type,
                      const void *data, uint32_t len)
{
    sqlite3_stmt *st = raft__db_stmt(log->db, RS_LOG_INSERT);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)term);
    sqlite3_bind_int(st, 3, type);
    sqlite3_bind_blob(st, 4, len ? data : "", (int)len, SQLITE_STATIC);
    return raft__db_exec_stmt(log->db, RS_LOG_INSERT, "append log");
}

int raft__log_truncate(struct raft_log *log, uint64_t index)
{
    VS_ASSERT(index >= log->first);
    if (index > log->last)
        return 0;
    int rc = raft__db_begin(log->db);
    if (rc < 0)
        return rc;
    sqlite3_stmt *st = raft__db_stmt(log->db, RS_LOG_TRUNCATE_FROM);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    rc = raft__db_exec_stmt(log->db, RS_LOG_TRUNCATE_FROM, "truncate log");
    if (rc < 0)
        return rc;
    raft__db_mark_durable(log->db);
    cache_clear_from(log, index);
    log->last = index - 1;
    if (log->cache_first > log->last + 1)
        log->cache_first = log->last + 1;
    return 0;
}

int raft__log_append(struct raft_log *log, uint64_t index, const struct raft_log_entry *entries,
                     unsigned n)
{
    VS_ASSERT(index >= log->first && index <= log->last + 1);
    int rc = raft__log_truncate(log, index);
    if (rc == 0)
        rc = raft__db_begin(log->db);
    for (unsigned i = 0; i < n && rc == 0; i++) {
        const struct raft_log_entry *e = &entries[i];
        VS_ASSERT(e->term > 0);
        rc = insert_row(log, index + i, e->term, e->type, e->data, e->len);
        if (rc == 0)
            rc = cache_push(log, index + i, e->term, e->type, e->data, e->len);
        if (rc == 0) {
            log->last = index + i;
            log->entries_written++;
            log->bytes_written += e->len;
        }
    }
    if (rc == 0)
        raft__db_mark_durable(log->db);
    return rc;
}

int raft__log_entry(struct raft_log *log, uint64_t index, struct raft_log_entry *out,
                    struct raft_buf *scratch)
{
    if (index < log->first || index > log->last)
        return -ENOENT;
    if (index >= log->cache_first) {
        *out = *slot(log, index);
        return 0;
    }
    sqlite3_stmt *st = raft__db_stmt(log->db, RS_LOG_GET);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)index);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(st);
        return rc == SQLITE_DONE ? VS_ECORRUPT : raft__db_error(log->db, rc, "read log");
    }
    out->term = (uint64_t)sqlite3_column_int64(st, 0);
    out->type = (uint8_t)sqlite3_column_int(st, 1);
    out->len = (uint32_t)sqlite3_column_bytes(st, 2);
    raft__buf_reset(scratch);
    raft__buf_bytes(scratch, sqlite3_column_blob(st, 2), out->len);
    sqlite3_reset(st);
    out->data = scratch->p;
    return scratch->oom ? -ENOMEM : 0;
}

uint64_t raft__log_term_of(struct raft_log *log, uint64_t index)
{
    if (index == log->snap_index && index != 0)
        return log->snap_term;
    if (index >= log->cache_first && index <= log->last)
        return slot(log, index)->term;
    struct raft_log_entry e;
    struct raft_buf scratch;
    raft__buf_init(&scratch);
    uint64_t term = raft__log_entry(log, index, &e, &scratch) == 0 ? e.term : 0;
    raft__buf_free(&scratch);
    return term;
}

static int write_snapshot_meta(struct raft_log *log, uint64_t index, uint64_t term,
                               const void *conf, uint32_t conf_len, uint64_t conf_index)
{
    struct raft_buf b;
    raft__buf_init(&b);
    raft__buf_u64(&b, index);
    raft__buf_u64(&b, term);
    raft__buf_u64(&b, conf_index);
    raft__buf_blob(&b, conf, conf_len);
    int rc = b.oom ? -ENOMEM : raft__db_meta_set_blob(log->db, "snapshot", b.p, b.len);
    raft__buf_free(&b);
    if (rc < 0)
        return rc;
    uint8_t *copy = malloc(conf_len ? conf_len : 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, conf, conf_len);
    free(log->snap_conf);
    log->snap_conf = copy;
    log->snap_conf_len = conf_len;
    log->snap_index = index;
    log->snap_term = term;
    log->snap_conf_index = conf_index;
    raft__db_mark_durable(log->db);
    return 0;
}

int raft__log_snapshot(struct raft_log *log, uint64_t index, uint64_t term, const void *conf,
                       uint32_t conf_len, uint64_t conf_index, unsigned trailing)
{
    VS_ASSERT(index > log->snap_index && index <= log->last);
    int rc = raft__db_begin(log->db);
    if (rc == 0)
        rc = write_snapshot_meta(log, index, term, conf, conf_len, conf_index);
    if (rc < 0 || index <= trailing)
        return rc;
    uint64_t upto = index - trailing;
    if (upto < log->first)
        return 0;
    sqlite3_stmt *st = raft__db_stmt(log->db, RS_LOG_DELETE_UPTO);
    sqlite3_bind_int64(st, 1, (sqlite3_int64)upto);
    rc = raft__db_exec_stmt(log->db, RS_LOG_DELETE_UPTO, "compact log");
    if (rc < 0)
        return rc;
    while (log->cache_first <= upto && log->cache_first <= log->last)
        cache_drop_front(log);
    if (log->cache_first <= upto)
        log->cache_first = upto + 1;
    log->first = upto + 1;
    return 0;
}

int raft__log_install(struct raft_log *log, uint64_t index, uint64_t term, const void *conf,
                      uint32_t conf_len, uint64_t conf_index)
{
    int rc = raft__db_begin(log->db);
    if (rc == 0) {
        raft__db_stmt(log->db, RS_LOG_DELETE_ALL);
        rc = raft__db_exec_stmt(log->db, RS_LOG_DELETE_ALL, "discard log");
    }
    if (rc == 0)
        rc = write_snapshot_meta(log, index, term, conf, conf_len, conf_index);
    if (rc < 0)
        return rc;
    cache_clear_from(log, 0);
    log->first = index + 1;
    log->last = index;
    log->cache_first = index + 1;
    log->cache_bytes = 0;
    return 0;
}

/* ---- the raft configuration encoding (raft's own format) ------------------------- */

int raft__conf_check(const uint8_t *p, size_t len)
{
    /* format u8 (1), n u64, then per server: id u64 (> 0), address (NUL
     * terminated, 1..VS_RAFT_ADDRESS_MAX), role u8 (0..2); zero padding. */
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    if (len == 0 || vs_rd_u8(&c) != 1)
        return -EINVAL;
    uint64_t n = vs_rd_u64(&c);
    if (!c.ok || n == 0 || n > VS_RAFT_MEMBERS_MAX)
        return -EINVAL;
    uint64_t ids[VS_RAFT_MEMBERS_MAX];
    const char *addrs[VS_RAFT_MEMBERS_MAX];
    for (uint64_t i = 0; i < n; i++) {
        ids[i] = vs_rd_u64(&c);
        size_t left = vs_cursor_left(&c);
        const uint8_t *nul = left ? memchr(c.p, 0, VS_MIN(left, VS_RAFT_ADDRESS_MAX + 1)) : NULL;
        if (!c.ok || ids[i] == 0 || !nul || nul == c.p)
            return -EINVAL;
        addrs[i] = (const char *)c.p;
        vs_rd_skip(&c, (size_t)(nul - c.p) + 1);
        if (vs_rd_u8(&c) > 2 || !c.ok)
            return -EINVAL;
        for (uint64_t j = 0; j < i; j++)
            if (ids[j] == ids[i] || strcmp(addrs[j], addrs[i]) == 0)
                return -EINVAL;
    }
    while (vs_cursor_left(&c))
        if (vs_rd_u8(&c) != 0)
            return -EINVAL;
    return 0;
}
