/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_msg.c -- raft messages <-> bytes for the peer transport.
 *
 * Layout (all little-endian; docs/metadata.md, "Peer protocol"):
 *
 *   header           type u8, version u8, reserved u16
 *   REQUEST_VOTE     term u64, candidate_id u64, last_log_index u64,
 *                    last_log_term u64, flags u8 (1 disrupt_leader, 2 pre_vote)
 *   REQUEST_VOTE_RESULT term u64, granted u8, pre_vote u8, features u16,
 *                    capacity u16
 *   APPEND_ENTRIES   term u64, prev_log_index u64, prev_log_term u64,
 *                    leader_commit u64, n u32, n x (term u64, type u8,
 *                    len u32, data)
 *   APPEND_ENTRIES_RESULT term u64, rejected u64, last_log_index u64,
 *                    features u16, capacity u16
 *   INSTALL_SNAPSHOT term u64, last_index u64, last_term u64, conf_index u64,
 *                    conf blob (raft's configuration encoding), data blob
 *   TIMEOUT_NOW      term u64, last_log_index u64, last_log_term u64
 *
 * The decoder is the gate between the network and raft, whose own code
 * asserts on impossible values: it refuses anything raft would assert on
 * (zero terms, a non-zero prev_log_term with prev_log_index 0, a snapshot at
 * index 0, a configuration that raft_configuration_decode() could misread),
 * so a malformed or hostile frame costs a dropped connection, never a crash.
 * Memory of a decoded message is allocated with raft_malloc() in the shapes
 * raft expects to free (raft_node.c documents who frees what).
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define AE_ENTRY_HEADER (8 + 1 + 4)

void raft__msg_encode_head(struct raft_buf *b, const struct raft_message *m)
{
    raft__buf_u8(b, (uint8_t)m->type);
    raft__buf_u8(b, 0);
    raft__buf_u16(b, 0);
    switch (m->type) {
    case RAFT_REQUEST_VOTE: {
        const struct raft_request_vote *p = &m->request_vote;
        raft__buf_u64(b, p->term);
        raft__buf_u64(b, p->candidate_id);
        raft__buf_u64(b, p->last_log_index);
        raft__buf_u64(b, p->last_log_term);
        raft__buf_u8(b, (uint8_t)((p->disrupt_leader ? 1 : 0) | (p->pre_vote ? 2 : 0)));
        break;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        const struct raft_request_vote_result *p = &m->request_vote_result;
        raft__buf_u64(b, p->term);
        raft__buf_u8(b, p->vote_granted ? 1 : 0);
        raft__buf_u8(b, p->pre_vote ? 1 : 0);
        raft__buf_u16(b, p->features);
        raft__buf_u16(b, p->capacity);
        break;
    }
    case RAFT_APPEND_ENTRIES: {
        const struct raft_append_entries *p = &m->append_entries;
        raft__buf_u64(b, p->term);
        raft__buf_u64(b, p->prev_log_index);
        raft__buf_u64(b, p->prev_log_term);
        raft__buf_u64(b, p->leader_commit);
        raft__buf_u32(b, p->n_entries); /* the entries follow: raft__msg_encode_entry */
        break;
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
        const struct raft_append_entries_result *p = &m->append_entries_result;
        raft__buf_u64(b, p->term);
        raft__buf_u64(b, p->rejected);
        raft__buf_u64(b, p->last_log_index);
        raft__buf_u16(b, p->features);
        raft__buf_u16(b, p->capacity);
        break;
    }
    case RAFT_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *p = &m->install_snapshot;
        raft__buf_u64(b, p->term);
        raft__buf_u64(b, p->last_index);
        raft__buf_u64(b, p->last_term);
        raft__buf_u64(b, p->conf_index); /* conf and data blobs follow */
        break;
    }
    case RAFT_TIMEOUT_NOW: {
        const struct raft_timeout_now *p = &m->timeout_now;
        raft__buf_u64(b, p->term);
        raft__buf_u64(b, p->last_log_index);
        raft__buf_u64(b, p->last_log_term);
        break;
    }
    }
}

void raft__msg_encode_entry(struct raft_buf *b, uint64_t term, uint8_t type, const void *data,
                            uint32_t len)
{
    raft__buf_u64(b, term);
    raft__buf_u8(b, type);
    raft__buf_blob(b, data, len);
}

static const uint8_t *rd_blob(struct vs_cursor *c, uint32_t *len)
{
    *len = vs_rd_u32(c);
    if (!c->ok || vs_cursor_left(c) < *len) {
        c->ok = false;
        *len = 0;
        return NULL;
    }
    const uint8_t *p = c->p;
    c->p += *len;
    return p;
}

/* Entries: one raft_malloc'd array and one batch holding every payload, the
 * shape raft frees with raft_free(entries[0].batch). */
static int decode_entries(struct vs_cursor *c, struct raft_append_entries *p)
{
    uint32_t n = vs_rd_u32(c);
    if (!c->ok || (uint64_t)n * AE_ENTRY_HEADER > vs_cursor_left(c))
        return -EINVAL;
    p->n_entries = n;
    p->entries = NULL;
    if (n == 0)
        return 0;
    /* First pass: validate and size. */
    struct vs_cursor scan = *c;
    size_t total = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t term = vs_rd_u64(&scan);
        uint8_t type = vs_rd_u8(&scan);
        uint32_t len;
        const uint8_t *data = rd_blob(&scan, &len);
        if (!scan.ok || term == 0 || term > p->term || type < RAFT_COMMAND || type > RAFT_CHANGE)
            return -EINVAL;
        if (type == RAFT_CHANGE && raft__conf_check(data, len) < 0)
            return -EINVAL;
        total += len;
    }
    p->entries = raft_malloc(n * sizeof(*p->entries));
    uint8_t *batch = raft_malloc(total ? total : 1);
    if (!p->entries || !batch) {
        raft_free(p->entries);
        raft_free(batch);
        p->entries = NULL;
        return -ENOMEM;
    }
    size_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        struct raft_entry *e = &p->entries[i];
        e->term = vs_rd_u64(c);
        e->type = (enum raft_entry_type)vs_rd_u8(c);
        uint32_t len;
        const uint8_t *data = rd_blob(c, &len);
        if (len)
            memcpy(batch + off, data, len);
        e->buf.base = batch + off;
        e->buf.len = len;
        e->batch = batch;
        off += len;
    }
    VS_ASSERT(c->ok);
    return 0;
}

static int decode_snapshot(struct vs_cursor *c, struct raft_install_snapshot *p)
{
    p->term = vs_rd_u64(c);
    p->last_index = vs_rd_u64(c);
    p->last_term = vs_rd_u64(c);
    p->conf_index = vs_rd_u64(c);
    uint32_t conf_len, data_len;
    const uint8_t *conf = rd_blob(c, &conf_len);
    const uint8_t *data = rd_blob(c, &data_len);
    if (!c->ok || p->last_index == 0 || p->last_term == 0 || p->last_term > p->term ||
        p->conf_index > p->last_index || raft__conf_check(conf, conf_len) < 0)
        return -EINVAL;
    struct raft_buffer cb = {.base = (void *)conf, .len = conf_len};
    raft_configuration_init(&p->conf);
    if (raft_configuration_decode(&cb, &p->conf) != 0)
        return -EINVAL;
    p->data.base = raft_malloc(data_len ? data_len : 1);
    if (!p->data.base) {
        raft_configuration_close(&p->conf);
        return -ENOMEM;
    }
    if (data_len)
        memcpy(p->data.base, data, data_len);
    p->data.len = data_len;
    return 0;
}

static int decode_body(struct vs_cursor *c, struct raft_message *m)
{
    switch (m->type) {
    case RAFT_REQUEST_VOTE: {
        struct raft_request_vote *p = &m->request_vote;
        p->term = vs_rd_u64(c);
        p->candidate_id = vs_rd_u64(c);
        p->last_log_index = vs_rd_u64(c);
        p->last_log_term = vs_rd_u64(c);
        uint8_t flags = vs_rd_u8(c);
        p->disrupt_leader = flags & 1;
        p->pre_vote = flags & 2;
        p->version = 2;
        return c->ok && p->term && p->candidate_id ? 0 : -EINVAL;
    }
    case RAFT_REQUEST_VOTE_RESULT: {
        struct raft_request_vote_result *p = &m->request_vote_result;
        p->term = vs_rd_u64(c);
        p->vote_granted = vs_rd_u8(c) != 0;
        p->pre_vote = vs_rd_u8(c) != 0;
        p->features = vs_rd_u16(c);
        p->capacity = vs_rd_u16(c);
        p->version = 2;
        return c->ok && p->term ? 0 : -EINVAL;
    }
    case RAFT_APPEND_ENTRIES: {
        struct raft_append_entries *p = &m->append_entries;
        p->term = vs_rd_u64(c);
        p->prev_log_index = vs_rd_u64(c);
        p->prev_log_term = vs_rd_u64(c);
        p->leader_commit = vs_rd_u64(c);
        p->version = 0;
        if (!c->ok || p->term == 0 || (p->prev_log_index == 0) != (p->prev_log_term == 0) ||
            p->prev_log_term > p->term)
            return -EINVAL;
        return decode_entries(c, p);
    }
    case RAFT_APPEND_ENTRIES_RESULT: {
        struct raft_append_entries_result *p = &m->append_entries_result;
        p->term = vs_rd_u64(c);
        p->rejected = vs_rd_u64(c);
        p->last_log_index = vs_rd_u64(c);
        p->features = vs_rd_u16(c);
        p->capacity = vs_rd_u16(c);
        p->version = 1;
        return c->ok && p->term ? 0 : -EINVAL;
    }
    case RAFT_INSTALL_SNAPSHOT:
        m->install_snapshot.version = 0;
        return decode_snapshot(c, &m->install_snapshot);
    case RAFT_TIMEOUT_NOW: {
        struct raft_timeout_now *p = &m->timeout_now;
        p->term = vs_rd_u64(c);
        p->last_log_index = vs_rd_u64(c);
        p->last_log_term = vs_rd_u64(c);
        p->version = 0;
        return c->ok && p->term ? 0 : -EINVAL;
    }
    default:
        return -EINVAL;
    }
}

int raft__msg_decode(const uint8_t *p, size_t len, struct raft_message *m)
{
    memset(m, 0, sizeof(*m));
    struct vs_cursor c = vs_cursor_make((void *)p, len);
    uint8_t type = vs_rd_u8(&c);
    vs_rd_u8(&c);
    vs_rd_u16(&c);
    if (!c.ok || type < RAFT_APPEND_ENTRIES || type > RAFT_TIMEOUT_NOW)
        return -EINVAL;
    m->type = (enum raft_message_type)type;
    int rc = decode_body(&c, m);
    if (rc == 0 && vs_cursor_left(&c) != 0) {
        raft__msg_release(m);
        rc = -EINVAL;
    }
    if (rc < 0)
        memset(m, 0, sizeof(*m));
    return rc;
}

void raft__msg_release(struct raft_message *m)
{
    if (m->type == RAFT_APPEND_ENTRIES && m->append_entries.n_entries) {
        raft_free(m->append_entries.entries[0].batch);
        raft_free(m->append_entries.entries);
    } else if (m->type == RAFT_INSTALL_SNAPSHOT && m->install_snapshot.data.base) {
        raft_free(m->install_snapshot.data.base);
        raft_configuration_close(&m->install_snapshot.conf);
    }
    memset(m, 0, sizeof(*m));
}
