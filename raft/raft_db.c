/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_db.c -- the member's one SQLite database (data_dir/meta.db).
 *
 * NOTES
 *
 * One file holds raft's log, term and vote, the snapshot metadata, and the
 * state machine's tables, so that one SQLite transaction can change all of
 * them atomically (SQLite does not make a transaction across attached
 * databases atomic in WAL mode; one file avoids the question).
 *
 * Invariants (cited as "db invariant N"):
 *  (1) The database is in WAL mode with locking_mode=EXCLUSIVE: one process
 *      at a time, and a crash loses at most a suffix of transactions -- WAL
 *      frames carry a cumulative checksum, recovery stops at the first frame
 *      that does not match, so a transaction is never half there and never
 *      present without the ones before it.
 *  (2) A transaction that holds log entries, term, vote or snapshot metadata
 *      is followed by an fdatasync of the WAL before raft__db_commit returns,
 *      so raft hears "persisted" only for bytes on stable media.
 *  (3) A transaction that holds only state-machine changes commits without
 *      an fsync (synchronous=NORMAL). Losing it in a crash is harmless: by (1)
 *      the state then rolls back together with its applied_index, and the
 *      entries, durable by (2), are applied again.
 *  (4) All writes of one loop turn share one transaction (raft__db_begin opens
 *      it lazily; the node commits it once per turn), so a turn costs at most
 *      one fsync however many entries it appended.
 *
 * The schema is documented in docs/metadata.md ("On disk").
 */
#include "raft_int.h"

#include "vs_assert.h"

#include <errno.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RAFT_DB_FORMAT 1

static const char *const schema_sql =
    "CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,"
    " type INTEGER NOT NULL, data BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sm(id INTEGER PRIMARY KEY, rev INTEGER NOT NULL,"
    " compact_rev INTEGER NOT NULL, applied_index INTEGER NOT NULL,"
    " next_lease INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, ev INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS ev(id INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
    " key BLOB NOT NULL, value BLOB NOT NULL, create_rev INTEGER NOT NULL,"
    " version INTEGER NOT NULL, lease INTEGER NOT NULL);"
    "CREATE INDEX IF NOT EXISTS ev_lease ON ev(lease) WHERE lease != 0;"
    "CREATE TABLE IF NOT EXISTS lease(id INTEGER PRIMARY KEY, ttl_ms INTEGER NOT NULL);";

#define KV_SELECT "SELECT kv.key, ev.id, ev.create_rev, ev.version, ev.lease, ev.value FROM kv"
#define EV_COLS "id, kind, key, value, create_rev, version, lease"

static const char *const stmt_sql[RS_COUNT_] = {
    [RS_BEGIN] = "BEGIN IMMEDIATE",
    [RS_COMMIT] = "COMMIT",
    [RS_ROLLBACK] = "ROLLBACK",
    [RS_SAVEPOINT] = "SAVEPOINT sm",
    [RS_RELEASE] = "RELEASE sm",
    [RS_ROLLBACK_TO] = "ROLLBACK TO sm",
    [RS_META_GET] = "SELECT v FROM meta WHERE k=?1",
    [RS_META_SET] = "INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)",
    [RS_LOG_INSERT] = "INSERT OR REPLACE INTO log(idx, term, type, data) VALUES(?1, ?2, ?3, ?4)",
    [RS_LOG_TRUNCATE_FROM] = "DELETE FROM log WHERE idx >= ?1",
    [RS_LOG_DELETE_UPTO] = "DELETE FROM log WHERE idx <= ?1",
    [RS_LOG_GET] = "SELECT term, type, data FROM log WHERE idx=?1",
    [RS_LOG_RANGE] = "SELECT idx, term, type, data FROM log WHERE idx >= ?1 ORDER BY idx",
    [RS_LOG_BOUNDS] = "SELECT min(idx), max(idx), count(*) FROM log",
    [RS_LOG_DELETE_ALL] = "DELETE FROM log",
    [RS_SM_GET] = "SELECT rev, compact_rev, applied_index, next_lease FROM sm WHERE id=1",
    [RS_SM_SET] = "INSERT OR REPLACE INTO sm(id, rev, compact_rev, applied_index, next_lease)"
                  " VALUES(1, ?1, ?2, ?3, ?4)",
    [RS_KV_GET] = KV_SELECT " JOIN ev ON ev.id=kv.ev WHERE kv.key=?1",
    [RS_KV_PUT] = "INSERT OR REPLACE INTO kv(key, ev) VALUES(?1, ?2)",
    [RS_KV_DEL] = "DELETE FROM kv WHERE key=?1",
    [RS_RANGE_BOUNDED] = KV_SELECT " JOIN ev ON ev.id=kv.ev WHERE kv.key >= ?1 AND kv.key < ?2"
                         " ORDER BY kv.key LIMIT ?3",
    [RS_RANGE_OPEN] = KV_SELECT " JOIN ev ON ev.id=kv.ev WHERE kv.key >= ?1"
                      " ORDER BY kv.key LIMIT ?3",
    [RS_COUNT_BOUNDED] = "SELECT count(*) FROM kv WHERE key >= ?1 AND key < ?2",
    [RS_COUNT_OPEN] = "SELECT count(*) FROM kv WHERE key >= ?1",
    [RS_EV_INSERT] = "INSERT INTO ev(" EV_COLS ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [RS_EV_SINCE] = "SELECT " EV_COLS " FROM ev WHERE id >= ?1 AND id < ?2 ORDER BY id",
    [RS_EV_COMPACT] = "DELETE FROM ev WHERE id < ?1 AND NOT EXISTS"
                      " (SELECT 1 FROM kv WHERE kv.key=ev.key AND kv.ev=ev.id)",
    [RS_EV_BY_LEASE] = "SELECT kv.key FROM ev JOIN kv ON kv.ev=ev.id WHERE ev.lease=?1"
                       " ORDER BY kv.key",
    [RS_LEASE_GET] = "SELECT ttl_ms FROM lease WHERE id=?1",
    [RS_LEASE_PUT] = "INSERT INTO lease(id, ttl_ms) VALUES(?1, ?2)",
    [RS_LEASE_DEL] = "DELETE FROM lease WHERE id=?1",
    [RS_LEASE_ALL] = "SELECT id, ttl_ms FROM lease ORDER BY id",
    [RS_DUMP_EV] = "SELECT " EV_COLS " FROM ev ORDER BY id",
    [RS_DUMP_KV] = "SELECT key, ev FROM kv ORDER BY key",
};

/* vsnprintf through a helper keeps -Wformat-truncation quiet: a long path
 * is cut, never overflowed. */
__attribute__((format(printf, 2, 3))) static void set_err(struct raft_db *db, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->errmsg, sizeof(db->errmsg), fmt, ap);
    va_end(ap);
}

int raft__db_error(struct raft_db *db, int rc, const char *what)
{
    int primary = rc & 0xff;
    const char *msg = db->h ? sqlite3_errmsg(db->h) : sqlite3_errstr(rc);
    set_err(db, "%s: %s: %s", db->path, what, msg);
    switch (primary) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return VS_ECORRUPT;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    default:
        return -EIO;
    }
}

static int exec_sql(struct raft_db *db, const char *sql, const char *what)
{
    int rc = sqlite3_exec(db->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : raft__db_error(db, rc, what);
}

/* Runs a one-row text pragma and compares the answer. */
static int pragma_expect(struct raft_db *db, const char *sql, const char *want)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db->h, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return raft__db_error(db, rc, sql);
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return raft__db_error(db, rc, sql);
    }
    const char *got = (const char *)sqlite3_column_text(st, 0);
    bool ok = got && strcmp(got, want) == 0;
    if (!ok)
        set_err(db, "%s: %s said '%s', expected '%s'", db->path, sql, got ? got : "(null)",
                want);
    sqlite3_finalize(st);
    return ok ? 0 : VS_ECORRUPT;
}

/* Checks the format row of an existing database, or writes it in a new one. */
static int check_format(struct raft_db *db)
{
    uint64_t format = 0;
    bool found = false;
    int rc = raft__db_meta_get_u64(db, "format", &format, &found);
    if (rc < 0)
        return rc;
    if (!found)
        return raft__db_meta_set_u64(db, "format", RAFT_DB_FORMAT);
    if (format > RAFT_DB_FORMAT) {
        set_err(db, "%s: database format %" PRIu64 " is newer than this binary (%d)", db->path,
                format, RAFT_DB_FORMAT);
        return VS_EFORMATVERSION;
    }
    if (format != RAFT_DB_FORMAT) {
        set_err(db, "%s: unknown database format %" PRIu64, db->path, format);
        return VS_EBADFORMAT;
    }
    return 0;
}

static int prepare_all(struct raft_db *db)
{
    for (unsigned i = 0; i < RS_COUNT_; i++) {
        VS_ASSERT(stmt_sql[i] != NULL);
        int rc = sqlite3_prepare_v3(db->h, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->st[i],
                                    NULL);
        if (rc != SQLITE_OK)
            return raft__db_error(db, rc, stmt_sql[i]);
    }
    return 0;
}

/* Pragmas, integrity check, schema and statements of a freshly opened file. */
static int db_setup(struct raft_db *db, bool existed)
{
    int rc = exec_sql(db, "PRAGMA locking_mode=EXCLUSIVE", "locking mode");
    if (rc == 0)
        rc = pragma_expect(db, "PRAGMA journal_mode=WAL", "wal");
    if (rc == 0 && existed)
        rc = pragma_expect(db, "PRAGMA quick_check", "ok");
    if (rc == 0)
        rc = exec_sql(db,
                      "PRAGMA synchronous=NORMAL; PRAGMA temp_store=MEMORY;"
                      " PRAGMA cache_size=-16384; PRAGMA foreign_keys=OFF",
                      "pragmas");
    if (rc == 0)
        rc = exec_sql(db, schema_sql, "schema");
    if (rc == 0)
        rc = prepare_all(db);
    if (rc == 0)
        rc = check_format(db);
    return rc;
}

int raft__db_open(const char *path, struct raft_db **out, char *errmsg, size_t errmsg_size)
{
    struct raft_db *db = calloc(1, sizeof(*db));
    if (!db)
        return -ENOMEM;
    snprintf(db->path, sizeof(db->path), "%s", path);
    struct stat sb;
    bool existed = stat(path, &sb) == 0 && sb.st_size > 0;
    int rc = sqlite3_open_v2(path, &db->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        rc = raft__db_error(db, rc, "open");
        goto err;
    }
    sqlite3_extended_result_codes(db->h, 1);
    rc = db_setup(db, existed);
    if (rc < 0)
        goto err;
    *out = db;
    return 0;
err:
    snprintf(errmsg, errmsg_size, "%s", db->errmsg);
    raft__db_close(db);
    VS_ASSERT(rc < 0);
    return rc;
}

void raft__db_close(struct raft_db *db)
{
    if (!db)
        return;
    for (unsigned i = 0; i < RS_COUNT_; i++)
        sqlite3_finalize(db->st[i]);
    if (db->h && db->in_txn)
        sqlite3_exec(db->h, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db->h);
    free(db);
}

struct sqlite3_stmt *raft__db_stmt(struct raft_db *db, enum raft_stmt which)
{
    VS_ASSERT(which < RS_COUNT_);
    sqlite3_stmt *st = db->st[which];
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

int raft__db_exec_stmt(struct raft_db *db, enum raft_stmt which, const char *what)
{
    sqlite3_stmt *st = db->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return raft__db_error(db, rc, what);
    return 0;
}

int raft__db_begin(struct raft_db *db)
{
    if (db->in_txn)
        return 0;
    raft__db_stmt(db, RS_BEGIN);
    int rc = raft__db_exec_stmt(db, RS_BEGIN, "begin");
    if (rc == 0) {
        db->in_txn = true;
        db->txn_durable = false;
    }
    return rc;
}

void raft__db_mark_durable(struct raft_db *db)
{
    VS_ASSERT(db->in_txn);
    db->txn_durable = true;
}

/* Db invariant 2: fdatasync the WAL after a commit that holds raft state.
 * The connection runs with synchronous=NORMAL (no sync at COMMIT, which is
 * what invariant 3 wants), and SQLite does not let a transaction change the
 * level, so durable commits sync the WAL file themselves, through SQLite's
 * own file handle (SQLITE_FCNTL_JOURNAL_POINTER). */
static int sync_wal(struct raft_db *db)
{
    sqlite3_file *f = NULL;
    int rc = sqlite3_file_control(db->h, "main", SQLITE_FCNTL_JOURNAL_POINTER, &f);
    if (rc != SQLITE_OK || !f || !f->pMethods) {
        set_err(db, "%s: no WAL file to sync", db->path);
        return -EIO;
    }
    rc = f->pMethods->xSync(f, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY);
    return rc == SQLITE_OK ? 0 : raft__db_error(db, rc, "fsync WAL");
}

int raft__db_commit(struct raft_db *db)
{
    if (!db->in_txn)
        return 0;
    raft__db_stmt(db, RS_COMMIT);
    int rc = raft__db_exec_stmt(db, RS_COMMIT, "commit");
    if (rc == 0 && db->txn_durable)
        rc = sync_wal(db);
    if (rc < 0)
        return rc; /* the caller stops the member: nothing is reported durable */
    db->in_txn = false;
    db->commits++;
    if (db->txn_durable)
        db->fsyncs++;
    db->txn_durable = false;
    return 0;
}

int raft__db_meta_get_u64(struct raft_db *db, const char *key, uint64_t *out, bool *found)
{
    sqlite3_stmt *st = raft__db_stmt(db, RS_META_GET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *out = (uint64_t)sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return raft__db_error(db, rc, "read meta");
    return 0;
}

int raft__db_meta_set_u64(struct raft_db *db, const char *key, uint64_t v)
{
    sqlite3_stmt *st = raft__db_stmt(db, RS_META_SET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)v);
    return raft__db_exec_stmt(db, RS_META_SET, "write meta");
}

int raft__db_meta_get_blob(struct raft_db *db, const char *key, uint8_t **out, size_t *len)
{
    sqlite3_stmt *st = raft__db_stmt(db, RS_META_GET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *out = NULL;
    *len = 0;
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        *out = malloc(n > 0 ? (size_t)n : 1);
        if (!*out) {
            sqlite3_reset(st);
            return -ENOMEM;
        }
        if (n > 0)
            memcpy(*out, p, (size_t)n);
        *len = (size_t)n;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return raft__db_error(db, rc, "read meta");
    return 0;
}

int raft__db_meta_set_blob(struct raft_db *db, const char *key, const void *p, size_t len)
{
    sqlite3_stmt *st = raft__db_stmt(db, RS_META_SET);
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 2, len ? p : "", len, SQLITE_TRANSIENT);
    return raft__db_exec_stmt(db, RS_META_SET, "write meta");
}

uint64_t raft__db_size_bytes(struct raft_db *db)
{
    uint64_t total = 0;
    struct stat sb;
    char wal[600];
    if (stat(db->path, &sb) == 0)
        total += (uint64_t)sb.st_size;
    snprintf(wal, sizeof(wal), "%s-wal", db->path);
    if (stat(wal, &sb) == 0)
        total += (uint64_t)sb.st_size;
    return total;
}
