/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_replay.c -- journal replay (recovery steps 4 and 5) and vs_store_open.
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_clock.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

struct rec_ref {
    uint64_t pos;
    struct store_rec r;
};

/* Validates the record at pos as the successor (seq, prev) of the chain:
 * 0, or why not (VS_ECORRUPT, VS_ECHECKSUM: its header or its data). */
static int rec_check(struct vs_store *s, uint64_t pos, uint64_t seq, uint32_t prev,
                     struct store_rec *r)
{
    const uint8_t *p = s->jbuf + pos;
    int rc = store__rec_decode(p, s->jsize - pos, r);
    if (rc < 0)
        return rc;
    if (r->seq != seq || r->prev_crc != prev || (uint64_t)r->hdr_len + r->data_len > s->jsize - pos)
        return VS_ECORRUPT;
    if (r->type != REC_WRITE)
        return r->data_len == 0 ? 0 : VS_ECORRUPT;
    struct store_witer it;
    struct store_witem w;
    store__witer_init(&it, r);
    while ((rc = store__witer_next(p, r, &it, &w)) == 0) {
        bool big = w.flags & RECF_BIG;
        if ((uint64_t)w.offset + w.len > s->block_size || (big && w.block >= s->block_count))
            return VS_ECORRUPT;
        /* Small writes carry their data after the header area: verify it (I2). */
        const uint8_t *crcs = p + it.item + 40;
        for (uint32_t i = 0; !big && i < w.len / SECTOR; i++)
            if (vs_crc32c(p + it.data + (size_t)i * SECTOR, SECTOR) != vs_get_u32(crcs + 4 * i))
                return VS_ECHECKSUM;
    }
    return rc == 1 ? 0 : VS_ECORRUPT;
}

static bool rec_at(struct vs_store *s, uint64_t pos, uint64_t seq, uint32_t prev,
                   struct store_rec *r)
{
    return rec_check(s, pos, seq, prev, r) == 0;
}

int vs_store_journal_end(struct vs_store *s, uint64_t *seq, uint64_t *pos)
{
    *seq = s->next_seq;
    /* where the next record goes, or 0 if it did not fit before the end (I2) */
    uint64_t at[2] = {s->jhead, 0};
    for (unsigned i = 0; i < (s->jhead ? 2u : 1u); i++) {
        if (s->jsize < REC_HDR_SIZE || at[i] > s->jsize - REC_HDR_SIZE)
            continue;
        const uint8_t *p = s->jbuf + at[i];
        if (vs_get_u32(p) != REC_MAGIC || vs_get_u64(p + 16) != s->next_seq)
            continue; /* zeros, or a record of an earlier lap: the journal just ends */
        *pos = at[i];
        struct store_rec r;
        int rc = rec_check(s, at[i], s->next_seq, s->last_crc, &r);
        return rc < 0 ? rc : VS_ECHECKSUM; /* valid itself: its big write's data was not (I8) */
    }
    return 0;
}

/* Pass 1: walks the chain from the checkpoint; returns the record count. */
static uint32_t scan_journal(struct vs_store *s, const struct store_ckpt *ck, struct rec_ref *refs,
                             uint32_t max, uint64_t *max_synced)
{
    uint64_t pos = ck->jstart_pos, seq = ck->jstart_seq, used = 0;
    uint32_t prev = ck->jstart_prev_crc, n = 0;
    *max_synced = 0;
    while (n < max) {
        struct store_rec r;
        uint64_t waste = 0;
        if (!rec_at(s, pos, seq, prev, &r)) {
            /* A record that did not fit before the end starts at 0 (I2). */
            if (pos == 0 || !rec_at(s, 0, seq, prev, &r))
                break;
            waste = s->jsize - pos;
            pos = 0;
        }
        uint64_t len = r.hdr_len + r.data_len;
        if (used + waste + len > s->jsize)
            break;
        used += waste + len;
        refs[n].pos = pos;
        refs[n].r = r;
        n++;
        *max_synced = VS_MAX(*max_synced, r.synced_seq);
        prev = r.crc;
        seq++;
        pos = (pos + len) % s->jsize;
    }
    return n;
}

/* Pass 2: a big write whose record may have outrun its data is accepted only
 * if the data reads back with the record's checksums (I8). */
static uint32_t verify_big(struct vs_store *s, struct rec_ref *refs, uint32_t n,
                           uint64_t max_synced, uint8_t *buf)
{
    for (uint32_t i = 0; i < n; i++) {
        if (refs[i].r.type != REC_WRITE || refs[i].r.seq < max_synced)
            continue;
        const uint8_t *p = s->jbuf + refs[i].pos + REC_HDR_SIZE;
        struct store_witem w;
        VS_ASSERT(store__witem_decode(p, refs[i].r.hdr_len - REC_HDR_SIZE, &w) == 0);
        if (!(w.flags & RECF_BIG) || w.len == 0)
            continue;
        const struct vs_store_layout *l = &s->sb.layout;
        uint64_t off = l->data_offset + (uint64_t)w.block * s->block_size + w.offset;
        for (uint32_t done = 0; done < w.len; done += 1u << 20) {
            uint32_t len = VS_MIN(1u << 20, w.len - done);
            if (store__sync_io(s->disk, VS_DISK_READ, l->data_dev, off + done, buf, len) < 0)
                return i;
            for (uint32_t k = 0; k < len / SECTOR; k++)
                if (vs_crc32c(buf + (size_t)k * SECTOR, SECTOR) !=
                    vs_get_u32(p + 40 + 4 * ((done / SECTOR) + k)))
                    return i;
        }
    }
    return n;
}

/* One write item of the record ref: wi, decoded at the offsets in it. */
static int apply_witem(struct vs_store *s, const struct rec_ref *ref, const struct store_witem *wi,
                       const struct store_witer *it)
{
    const uint8_t *p = s->jbuf + ref->pos;
    struct store_witem w = *wi;
    uint32_t oi = store__obj_get(s, w.inode, w.stripe);
    if (oi == NONE32)
        return VS_ECORRUPT;
    bool deleted;
    if (store__newest_version(s, oi, &deleted) >= w.version) {
        store__obj_maybe_drop(s, oi);
        return 0; /* already in the metadata pages (I7) */
    }
    bool big = w.flags & RECF_BIG;
    /* A block in use already can only be one freed by a later rollback
     * record of this very version (I6); that record must follow. */
    bool noblock = big && !(s->block_free[w.block / 64] & (1ull << (w.block % 64)));
    uint32_t ei = store__ent_alloc(s);
    VS_ASSERT(ei != 0);
    struct store_entry *e = &s->ents[ei];
    e->version = w.version;
    e->seq = ref->r.seq;
    e->obj = oi;
    e->jpos = (uint32_t)(ref->pos / SECTOR);
    e->data_sec = (uint16_t)(it->data / SECTOR);
    e->offset = w.offset;
    e->len = w.len;
    e->kind = big ? ENT_BIG : ENT_SMALL;
    e->flags = EF_WRITTEN | (noblock ? EF_NOBLOCK : 0);
    if (noblock)
        VS_TRACE("store", "replay: seq %llu v%llu block %u in use (owner %u)",
                 (unsigned long long)ref->r.seq, (unsigned long long)w.version, w.block,
                 s->block_owner[w.block]);
    e->block = big ? w.block : NONE32;
    store__ent_link(s, oi, ei);
    const uint8_t *crcs = p + it->item + 40;
    if (big && !noblock) {
        store__block_mark_used(s, w.block);
        s->block_owner[w.block] = oi;
        uint8_t *bm = store__bitmap(s, w.block);
        memset(bm, 0, s->bitmap_bytes);
        for (uint32_t i = 0; i < w.len / SECTOR; i++) {
            bit_set(bm, w.offset / SECTOR + i);
            if (s->ncsum)
                s->block_csum[(size_t)w.block * s->ncsum + w.offset / SECTOR + i] =
                    vs_get_u32(crcs + 4 * i);
        }
    } else if (!big && s->jcrc) {
        for (uint32_t i = 0; i < w.len / SECTOR; i++)
            s->jcrc[e->jpos + e->data_sec + i] = vs_get_u32(crcs + 4 * i);
    }
    if (w.flags & RECF_STABLE)
        store__mark_stable(s, oi, w.version);
    return 0;
}

/* Every write item of the record, in order (several only from format 2 on). */
static int apply_write(struct vs_store *s, const struct rec_ref *ref)
{
    struct store_witer it;
    struct store_witem w;
    int rc, k;
    store__witer_init(&it, &ref->r);
    while ((k = store__witer_next(s->jbuf + ref->pos, &ref->r, &it, &w)) == 0)
        if ((rc = apply_witem(s, ref, &w, &it)) < 0)
            return rc;
    VS_ASSERT(k == 1); /* rec_at walked the same items */
    return 0;
}

static int apply_delete(struct vs_store *s, const struct rec_ref *ref)
{
    const uint8_t *p = s->jbuf + ref->pos + REC_HDR_SIZE;
    uint32_t oi = store__obj_get(s, vs_get_u64(p), vs_get_u64(p + 8));
    uint64_t version = vs_get_u64(p + 16);
    if (oi == NONE32 || version == 0 || version >= FREE_VERSION - 1)
        return VS_ECORRUPT;
    bool deleted;
    if (store__newest_version(s, oi, &deleted) >= version) {
        store__obj_maybe_drop(s, oi);
        return 0;
    }
    uint32_t t = store__tomb_alloc(s);
    uint32_t ei = store__ent_alloc(s);
    if (t == NONE32 || ei == 0)
        return VS_ECORRUPT;
    struct store_entry *e = &s->ents[ei];
    e->version = version;
    e->seq = ref->r.seq;
    e->obj = oi;
    e->jpos = (uint32_t)(ref->pos / SECTOR);
    e->data_sec = (uint16_t)(ref->r.hdr_len / SECTOR);
    e->kind = ENT_DELETE;
    e->flags = EF_WRITTEN | EF_STABLE;
    e->block = t;
    store__ent_link(s, oi, ei);
    s->tomb_owner[t] = oi;
    s->tomb_seq[t] = ref->r.seq;
    store__mark_stable(s, oi, version);
    return 0;
}

static int apply_list(struct vs_store *s, const struct rec_ref *ref)
{
    const uint8_t *p = s->jbuf + ref->pos + REC_HDR_SIZE;
    for (uint32_t i = 0; i < ref->r.item_count; i++, p += 24) {
        uint32_t oi = store__obj_find(s, vs_get_u64(p), vs_get_u64(p + 8));
        if (oi == NONE32)
            continue;
        if (ref->r.type == REC_STABLE)
            store__mark_stable(s, oi, vs_get_u64(p + 16));
        else
            store__rollback_obj(s, oi, vs_get_u64(p + 16), true);
    }
    return 0;
}

static int replay(struct vs_store *s, const struct store_ckpt *ck, char *err, size_t esz)
{
    uint32_t max = (uint32_t)(s->jsize / SECTOR);
    struct rec_ref *refs = malloc(max * sizeof(*refs));
    uint8_t *buf = store__aligned_alloc(1u << 20);
    if (!refs || !buf) {
        free(refs);
        free(buf);
        return -ENOMEM;
    }
    uint64_t max_synced;
    uint32_t n = scan_journal(s, ck, refs, max, &max_synced);
    /* Blocks are reused only after a checkpoint, whose FSYNC1 made every
     * record that referenced them durable: such records are never rechecked. */
    max_synced = VS_MAX(max_synced, ck->synced_seq);
    uint32_t n0 = n;
    n = verify_big(s, refs, n, max_synced, buf);
    VS_DEBUG_LOG("store",
                 "replay: from seq %llu pos %llu: %u records, %u after verify "
                 "(max_synced %llu)",
                 (unsigned long long)ck->jstart_seq, (unsigned long long)ck->jstart_pos, n0, n,
                 (unsigned long long)max_synced);
    int rc = 0;
    for (uint32_t i = 0; VS_LOG_TRACE <= vs_log_level_current && i < n0; i++) {
        const uint8_t *p = s->jbuf + refs[i].pos + REC_HDR_SIZE;
        VS_TRACE("store", "  rec seq %llu pos %llu type %u stripe %llx v%llu len %u",
                 (unsigned long long)refs[i].r.seq, (unsigned long long)refs[i].pos, refs[i].r.type,
                 (unsigned long long)vs_get_u64(p + 8), (unsigned long long)vs_get_u64(p + 16),
                 refs[i].r.hdr_len + refs[i].r.data_len);
    }
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        s->rec_pos[refs[i].r.seq % s->rec_cap] = (uint32_t)(refs[i].pos / SECTOR);
        switch (refs[i].r.type) {
        case REC_WRITE:
            rc = apply_write(s, &refs[i]);
            break;
        case REC_DELETE:
            rc = apply_delete(s, &refs[i]);
            break;
        default:
            rc = apply_list(s, &refs[i]);
            break;
        }
        if (rc < 0)
            snprintf(err, esz, "%s: journal record seq %llu at %llu: inconsistent with metadata",
                     s->disk->dev_name[s->sb.layout.journal_dev],
                     (unsigned long long)refs[i].r.seq, (unsigned long long)refs[i].pos);
    }
    for (uint32_t ei = 1; rc == 0 && ei < s->ent_cap; ei++) {
        if (s->ents[ei].kind != ENT_FREE && (s->ents[ei].flags & EF_NOBLOCK)) {
            snprintf(err, esz, "%s: journal: a big write's block %u is in use elsewhere",
                     s->disk->dev_name[s->sb.layout.journal_dev], s->ents[ei].block);
            rc = VS_ECORRUPT;
        }
    }
    s->jstart = ck->jstart_pos;
    s->start_seq = ck->jstart_seq;
    s->start_prev_crc = ck->jstart_prev_crc;
    s->next_seq = ck->jstart_seq + n;
    s->last_crc = n ? refs[n - 1].r.crc : ck->jstart_prev_crc;
    s->jhead = n ? (refs[n - 1].pos + refs[n - 1].r.hdr_len + refs[n - 1].r.data_len) % s->jsize
                 : ck->jstart_pos;
    s->jused = n ? (s->jhead + s->jsize - s->jstart) % s->jsize : 0;
    if (n && s->jused == 0)
        s->jused = s->jsize;
    s->synced_seq = s->next_seq;
    s->ckpt_seq = VS_MAX(ck->ckpt_seq, s->max_page_seq);
    s->ckpt_synced = ck->synced_seq;
    s->st.journal_replayed = n;
    free(refs);
    free(buf);
    return rc;
}

static int read_journal(struct vs_store *s)
{
    const struct vs_store_layout *l = &s->sb.layout;
    for (uint64_t done = 0; done < s->jsize; done += 4u << 20) {
        uint32_t n = (uint32_t)VS_MIN(4ull << 20, s->jsize - done);
        int rc = store__sync_io(s->disk, VS_DISK_READ, l->journal_dev, l->journal_offset + done,
                                s->jbuf + done, n);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* After a truncated replay a stale record may sit at the end position, or at
 * 0 where the next record goes if it does not fit: it could carry exactly the
 * next seq and prev_crc. Zero both (unless live) so a later replay can never
 * take it for the record written there now (I2). */
static int invalidate_tail(struct vs_store *s)
{
    if (s->jused == s->jsize)
        return 0;
    const struct vs_store_layout *l = &s->sb.layout;
    uint8_t *zero = store__aligned_alloc(SECTOR);
    if (!zero)
        return -ENOMEM;
    memset(zero, 0, SECTOR);
    int rc = store__sync_io(s->disk, VS_DISK_WRITE, l->journal_dev, l->journal_offset + s->jhead,
                            zero, SECTOR);
    bool zero_live = s->jused && (s->jstart == 0 || s->jstart + s->jused > s->jsize);
    if (rc == 0 && s->jhead != 0 && !zero_live)
        rc = store__sync_io(s->disk, VS_DISK_WRITE, l->journal_dev, l->journal_offset, zero,
                            SECTOR);
    free(zero);
    return rc;
}

static int open_steps(struct vs_store *s, char *err, size_t esz)
{
    int rc = store__read_superblock(s, err, esz);
    if (rc == 0)
        rc = store__check_layout(s, err, esz);
    if (rc == 0 && (rc = store__setup_geometry(s)) < 0)
        snprintf(err, esz, "out of memory for the index");
    struct store_ckpt ck;
    if (rc == 0)
        rc = store__load_ckpt(s, &ck, err, esz);
    if (rc == 0)
        rc = store__load_pages(s, err, esz);
    if (rc == 0 && (rc = read_journal(s)) < 0)
        snprintf(err, esz, "%s: journal read: %s", s->disk->dev_name[s->sb.layout.journal_dev],
                 vs_strerror(rc));
    if (rc == 0)
        rc = replay(s, &ck, err, esz);
    if (rc == 0)
        store__purge_open(s, s->max_page_seq > ck.ckpt_seq);
    VS_DASSERT(rc < 0 || store__invariants(s));
    if (rc == 0 && !s->cfg.readonly && (rc = invalidate_tail(s)) < 0)
        snprintf(err, esz, "%s: journal write: %s", s->disk->dev_name[s->sb.layout.journal_dev],
                 vs_strerror(rc));
    for (unsigned d = 0; rc == 0 && !s->cfg.readonly && d < s->disk->dev_count; d++)
        if (!s->cfg.fsync_disabled[d])
            rc = store__sync_io(s->disk, VS_DISK_FSYNC, d, 0, NULL, 0);
    return rc;
}

int vs_store_open(struct vs_disk *disk, const struct vs_store_config *cfg, struct vs_store **out,
                  char *err, size_t esz)
{
    struct vs_store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->disk = disk;
    if (cfg)
        s->cfg = *cfg;
    if (!s->cfg.journal_checkpoint_pct || s->cfg.journal_checkpoint_pct > 90)
        s->cfg.journal_checkpoint_pct = 50;
    int rc = open_steps(s, err, esz);
    if (rc < 0) {
        store__free(s);
        return rc;
    }
    s->oldest_unsubmitted = s->oldest_incomplete = s->next_seq;
    store__register_mem(s);
    /* After a crash the same records may be written again byte for byte (a
     * retried stabilize): a fresh incarnation makes their crcs differ, so a
     * stale successor can never chain onto them (I2). */
    s->incarnation = vs_crc32c(&s, sizeof(s)) ^ (uint32_t)vs_clock_mono_ns() ^
                     (uint32_t)s->next_seq * 2654435761u ^ store__random_u32();
    if (!s->cfg.readonly) /* a read-only instance may share the disk with a live one */
        disk->ops->set_hook(disk, store__hook, s);
    *out = s;
    return 0;
}
