/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * store_io.c -- mutations (write, delete, stabilize, rollback, sync) and the
 * commit machinery: journal append, group commit, acknowledgement.
 *
 * DESIGN NOTES
 *
 * A mutation is one journal record, built in the journal mirror at the head
 * and written with one io (plus one data io for a big write). Records carry
 * consecutive sequence numbers. rec_state[] tracks, per record in flight,
 * whether its ios were all submitted and all completed, which gives
 *   oldest_unsubmitted / oldest_incomplete: every lower record is submitted /
 *   completed.
 * Group commit (STYLE B16): a write sets fsync_wanted; the disk's submit hook
 * (the ring's, just before io_uring_enter) appends one fsync per written
 * device flagged IOSQE_IO_DRAIN, so it covers every record submitted before
 * it: batch_covers = oldest_unsubmitted. When the batch completes,
 * synced_seq = batch_covers, and in VS_STORE_DURABLE_ACK mode the ops in ack_q
 * (in sequence order) with seq < synced_seq complete. Only one batch is in
 * flight; a batch wanted meanwhile is issued from the completion. With
 * fsync_no_drain the batch is issued only from completions and covers
 * oldest_incomplete instead, except that a record sent while no other one is
 * in flight and no batch is either (a lone T1Q1 write) goes out as one journal
 * write linked to the batch's fsync (VS_DISK_LINK, IOSQE_IO_LINK): the fsync
 * starts when that write completes, in the same submission, not a loop turn
 * after its completion, and the batch covers that record too. If the write
 * fails or is short the fsync completes with -ECANCELED; the write's own
 * error has already broken the store. With cfg.idle_sync that write is
 * flagged VS_DISK_IDLE_SYNC: a backend that finds the pair alone at its
 * submit point may run write and flush in this thread (same order, same
 * results, callbacks later). Devices flagged fsync_disabled are
 * never fsynced.
 *
 * Records of several small writes: the small writes of one loop turn go into
 * one open record (s->jb): one header sector of write items, then their
 * data, built in place in the journal mirror as each write arrives (so a
 * read or a checkpoint sees it at once) and sealed and sent at the submit
 * hook, or as soon as any other record is built (records stay in sequence
 * order). Its ops share its sequence number and one io (a jrun); each is
 * acknowledged when that record is durable, exactly as a record of its own.
 * No write waits for company: only what is queued in the turn joins, and the
 * hook runs before the turn's ios go to the kernel anyway. The hook runs only
 * when the turn has an io for the disk, so a turn's first small write opens
 * a record only when it can submit a NOP (a kick) to make sure of that, and
 * only while other records are in flight: a lone write (T1Q1) still goes
 * alone at once, linked to its fsync as above.
 *
 * Invariants (docs/disk-format.md): I2 journal chain, I6 block reuse, I9
 * zombie entries, I10 "an entry is durable iff its seq < synced_seq".
 */
#include "store_int.h"

#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_log.h"

#include <stdlib.h>
#include <string.h>

enum op_kind { OPK_READ = 1, OPK_WRITE, OPK_DELETE, OPK_STABLE, OPK_ROLLBACK, OPK_SYNC, OPK_CKPT };

static void q_push(struct op_list *q, struct vs_store_op *op)
{
    op->p.next = NULL;
    if (q->tail)
        q->tail->p.next = op;
    else
        q->head = op;
    q->tail = op;
}

static struct vs_store_op *q_pop(struct op_list *q)
{
    struct vs_store_op *op = q->head;
    if (op) {
        q->head = op->p.next;
        if (!q->head)
            q->tail = NULL;
    }
    return op;
}

static void q_remove(struct op_list *q, struct vs_store_op *op)
{
    struct vs_store_op *prev = NULL;
    for (struct vs_store_op *x = q->head; x; prev = x, x = x->p.next) {
        if (x != op)
            continue;
        if (prev)
            prev->p.next = x->p.next;
        else
            q->head = x->p.next;
        if (q->tail == x)
            q->tail = prev;
        return;
    }
}

void store__complete(struct vs_store *s, struct vs_store_op *op, int result)
{
    VS_ASSERT(s->ops_inflight > 0);
    s->ops_inflight--;
    op->result = result;
    op->cb(op);
}

/* ---- disk submission ------------------------------------------------------ */

static void mark_submitted(struct vs_store *s, struct vs_disk_io *io);

/* Hands io to the disk, or queues it until the disk has room; true when the
 * disk took it now (it then runs the submit hook before starting it). */
bool store__submit(struct vs_store *s, struct vs_disk_io *io)
{
    if (io->opcode == VS_DISK_WRITE)
        s->dirty_devs |= 1u << io->dev;
    if (io->opcode == VS_DISK_WRITE)
        s->st.bytes_disk_written += io->len;
    if (!s->retry_head && s->disk->ops->submit(s->disk, io) == 0) {
        s->turn_io = true;
        mark_submitted(s, io);
        return true;
    }
    io->next = NULL;
    if (s->retry_tail)
        s->retry_tail->next = io;
    else
        s->retry_head = io;
    s->retry_tail = io;
    return false;
}

/* Hands the ios the disk refused to it again; every completion calls it (a
 * completion is what makes room), or the queue could wait for ever. */
void store__retry_flush(struct vs_store *s)
{
    while (s->retry_head) {
        struct vs_disk_io *io = s->retry_head;
        if (s->disk->ops->submit(s->disk, io) < 0)
            return;
        s->retry_head = io->next;
        if (!s->retry_head)
            s->retry_tail = NULL;
        s->turn_io = true;
        mark_submitted(s, io);
    }
}

static void nop_cb(struct vs_disk_io *io, int res)
{
    struct vs_store *s = VS_CONTAINER_OF(io, struct vs_store, nop_io);
    (void)res;
    s->nop_inflight = false;
    struct op_list q = s->nop_q;
    s->nop_q.head = s->nop_q.tail = NULL;
    struct vs_store_op *op;
    while ((op = q_pop(&q)) != NULL)
        store__complete(s, op, op->result);
    store__retry_flush(s);
}

/* Completes op (with op->result) later, through a NOP io (B9: never inline). */
void store__defer(struct vs_store *s, struct vs_store_op *op)
{
    q_push(&s->nop_q, op);
    if (s->nop_inflight)
        return;
    s->nop_inflight = true;
    memset(&s->nop_io, 0, sizeof(s->nop_io));
    s->nop_io.cb = nop_cb;
    s->nop_io.opcode = VS_DISK_NOP;
    store__submit(s, &s->nop_io);
}

/* ---- record tracking and durability --------------------------------------- */

static uint8_t *rec_st(struct vs_store *s, uint64_t seq)
{
    return &s->rec_state[seq % s->rec_cap];
}

static void advance_marks(struct vs_store *s)
{
    while (s->oldest_unsubmitted < s->next_seq && (*rec_st(s, s->oldest_unsubmitted) & 1))
        s->oldest_unsubmitted++;
    while (s->oldest_incomplete < s->oldest_unsubmitted && (*rec_st(s, s->oldest_incomplete) & 2))
        s->oldest_incomplete++;
}

static void op_io0_cb(struct vs_disk_io *io, int res);
static void op_io1_cb(struct vs_disk_io *io, int res);
static void jrun_cb(struct vs_disk_io *io, int res);

/* p.state counts the op's ios: low byte still to submit, next byte still to
 * complete. When all are submitted (completed) the record is marked so. */
static void op_mark_submitted(struct vs_store *s, struct vs_store_op *op)
{
    VS_ASSERT(op->p.state & 0xff);
    op->p.state--;
    if ((op->p.state & 0xff) == 0) {
        *rec_st(s, op->p.seq) |= 1;
        advance_marks(s);
    }
}

static void mark_submitted(struct vs_store *s, struct vs_disk_io *io)
{
    if (io->cb == op_io0_cb) {
        op_mark_submitted(s, VS_CONTAINER_OF(io, struct vs_store_op, p.io[0]));
    } else if (io->cb == op_io1_cb) {
        op_mark_submitted(s, VS_CONTAINER_OF(io, struct vs_store_op, p.io[1]));
    } else if (io->cb == jrun_cb) {
        struct store_jrun *r = VS_CONTAINER_OF(io, struct store_jrun, io);
        for (struct vs_store_op *op = r->head; op; op = op->p.jnext)
            op_mark_submitted(s, op);
    }
}

static void process_acks(struct vs_store *s)
{
    struct vs_store_op *op;
    while ((op = s->ack_q.head) != NULL && op->p.seq < s->synced_seq &&
           (op->p.state & 0xff00) == 0) {
        q_pop(&s->ack_q);
        store__complete(s, op, op->result);
    }
    while ((op = s->sync_q.head) != NULL && op->p.seq <= s->synced_seq) {
        q_pop(&s->sync_q);
        store__complete(s, op, 0);
    }
    if (s->sync_q.head)
        s->fsync_wanted_plain = true;
}

/* Issues the batch someone waits for, if none is in flight. */
static void fsync_next(struct vs_store *s)
{
    if (s->fsync_batch_inflight || s->broken || s->in_hook)
        return;
    if (s->fsync_wanted)
        store__issue_fsync(s, !s->cfg.fsync_no_drain);
    else if (s->fsync_wanted_plain)
        store__issue_fsync(s, false);
}

static void fsync_cb(struct vs_disk_io *io, int res)
{
    struct vs_store *s = io->owner;
    /* -ECANCELED: the linked journal write failed; it broke the store. */
    if (res < 0)
        store__set_broken(s, res, "fsync");
    VS_ASSERT(s->fsync_ios_inflight > 0);
    if (--s->fsync_ios_inflight > 0)
        return;
    s->fsync_done = s->fsync_batch_inflight;
    s->fsync_batch_inflight = 0;
    s->st.fsyncs++;
    if (!s->broken)
        s->synced_seq = VS_MAX(s->synced_seq, s->batch_covers);
    process_acks(s);
    if (s->ck.state != CK_IDLE)
        store__ck_step(s);
    fsync_next(s);
    store__retry_flush(s);
}

/* Issues one fsync batch (one fsync per written device) unless one is in
 * flight. With nothing to fsync the batch is a NOP, still ordered.
 * A draining batch (the group commit of durable acks) starts after every io
 * submitted before it and covers those records; a plain one (what the
 * checkpoint and vs_store_sync need) covers only the records completed
 * before it and stalls nothing. */
static void issue_batch(struct vs_store *s, bool drain, uint64_t covers, int link_dev);

void store__issue_fsync(struct vs_store *s, bool drain)
{
    if (s->fsync_batch_inflight || s->broken)
        return;
    issue_batch(s, drain, drain ? s->oldest_unsubmitted : s->oldest_incomplete, -1);
}

/* link_dev >= 0: the io just submitted is a write to that device flagged
 * VS_DISK_LINK, and its fsync must be the very next io. */
static void issue_batch(struct vs_store *s, bool drain, uint64_t covers, int link_dev)
{
    s->batch_covers = covers;
    s->fsync_wanted_plain = false;
    /* Acks of records the batch does not cover need the next one. */
    s->fsync_wanted = s->ack_q.tail && s->ack_q.tail->p.seq >= s->batch_covers;
    s->fsync_batch_inflight = ++s->fsync_issued;
    /* With DRAIN the batch covers exactly the ios submitted before it; without,
     * a record submitted earlier may complete later, so fsync every device
     * (and leave dirty_devs to the next draining batch). */
    unsigned devs = drain ? s->dirty_devs : (1u << s->disk->dev_count) - 1;
    if (drain)
        s->dirty_devs = 0;
    unsigned n = 0;
    for (unsigned k = 0; k < s->disk->dev_count; k++) {
        /* the linked device first, then the others in order */
        unsigned d = link_dev < 0 ? k : k == 0 ? (unsigned)link_dev : k - (k <= (unsigned)link_dev);
        if (!(devs & (1u << d)) || s->cfg.fsync_disabled[d])
            continue;
        struct vs_disk_io *io = &s->fsync_ios[n++];
        memset(io, 0, sizeof(*io));
        io->opcode = VS_DISK_FSYNC;
        io->dev = (uint8_t)d;
    }
    if (n == 0) {
        memset(&s->fsync_ios[0], 0, sizeof(s->fsync_ios[0]));
        s->fsync_ios[0].opcode = VS_DISK_NOP;
        n = 1;
    }
    s->fsync_ios_inflight = n;
    for (unsigned i = 0; i < n; i++) {
        s->fsync_ios[i].cb = fsync_cb;
        s->fsync_ios[i].owner = s;
        s->fsync_ios[i].flags = drain ? VS_DISK_DRAIN : 0;
        if (s->fsync_ios[i].opcode == VS_DISK_FSYNC)
            store__count_io(s, VS_STORE_IO_FSYNC, 0);
        store__submit(s, &s->fsync_ios[i]);
    }
}

/* Asks for a batch covering the records completed so far (plain) or, in
 * fsync_no_drain mode, for the acks; issued now unless one is in flight
 * (then from its completion). */
void store__request_fsync(struct vs_store *s, bool plain)
{
    if (plain)
        s->fsync_wanted_plain = true;
    else
        s->fsync_wanted = true;
    fsync_next(s);
}

static void jrun_flush(struct vs_store *s);
static void jb_seal(struct vs_store *s);

/* The group-commit point: runs just before the turn's ios go to the disk.
 * The turn's gathered records go out as one write, then one draining fsync
 * covers them and every other io of the turn. */
void store__hook(void *ctx)
{
    struct vs_store *s = ctx;
    if (s->in_hook)
        return;
    s->in_hook = true;
    jb_seal(s);
    jrun_flush(s);
    if (s->fsync_wanted && !s->fsync_batch_inflight && !s->cfg.fsync_no_drain)
        store__issue_fsync(s, true);
    s->turn_io = false; /* what the hook submitted goes out with this turn */
    s->in_hook = false;
}

void store__set_broken(struct vs_store *s, int err, const char *what)
{
    bool first = !s->broken;
    if (first)
        snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s; the store is read-only until reopened",
                 what, vs_strerror(err));
    s->broken = true;
    s->st.broken = true;
    if (first && s->cfg.on_broken)
        s->cfg.on_broken(s->cfg.on_broken_arg, s->errmsg);
    /* Mutations whose ios are done fail now; the others when their ios end. */
    struct op_list q = s->ack_q;
    s->ack_q.head = s->ack_q.tail = NULL;
    struct vs_store_op *op;
    while ((op = q_pop(&q)) != NULL) {
        if (op->p.state & 0xff00)
            q_push(&s->ack_q, op);
        else
            store__complete(s, op, -EIO);
    }
    while ((op = q_pop(&s->sync_q)) != NULL)
        store__complete(s, op, -EIO);
    while ((op = q_pop(&s->wait_q)) != NULL)
        store__complete(s, op, -EIO);
    if (s->ck.state != CK_IDLE)
        store__ck_step(s); /* abandons the checkpoint once its own ios are done */
}

/* ---- chains --------------------------------------------------------------- */

void store__ent_link(struct vs_store *s, uint32_t oi, uint32_t ei)
{
    struct store_entry *e = &s->ents[ei];
    e->obj = oi;
    e->next = s->objs[oi].dirty;
    s->objs[oi].dirty = ei;
    s->ents_big += e->kind == ENT_BIG;
    if (!(e->flags & EF_STABLE)) {
        s->unstable_count++;
        s->jreserved += SECTOR;
    }
}

/* Makes every entry of the object with version <= version stable. */
void store__mark_stable(struct vs_store *s, uint32_t oi, uint64_t version)
{
    for (uint32_t ei = s->objs[oi].dirty; ei; ei = s->ents[ei].next) {
        struct store_entry *e = &s->ents[ei];
        if (e->version > version || (e->flags & EF_STABLE))
            continue;
        e->flags |= EF_STABLE;
        VS_ASSERT(s->unstable_count > 0);
        s->unstable_count--;
        s->jreserved -= SECTOR;
    }
}

/* Drops the unstable entries newer than version (they are the chain's head:
 * stable entries are always a suffix, I11). */
void store__rollback_obj(struct vs_store *s, uint32_t oi, uint64_t version, bool replay)
{
    struct store_obj *o = &s->objs[oi];
    while (o->dirty && s->ents[o->dirty].version > version &&
           !(s->ents[o->dirty].flags & EF_STABLE)) {
        uint32_t ei = o->dirty;
        struct store_entry *e = &s->ents[ei];
        o->dirty = e->next;
        s->unstable_count--;
        s->jreserved -= SECTOR;
        bool has_block = e->kind == ENT_BIG && !(e->flags & EF_NOBLOCK);
        if (replay) {
            if (has_block) {
                s->block_free[e->block / 64] |= 1ull << (e->block % 64);
                s->blocks_free++;
                s->block_owner[e->block] = NONE32;
            }
            s->ents_big -= e->kind == ENT_BIG;
            e->kind = ENT_FREE;
            e->next = s->ent_free;
            s->ent_free = ei;
            s->ents_live--;
        } else {
            if (has_block) {
                VS_ASSERT(s->rb_blocks_n < s->pend_max);
                s->rb_seq[s->rb_blocks_n] = s->next_seq; /* the rollback record */
                s->rb_blocks[s->rb_blocks_n++] = e->block;
            }
            store__ent_retire(s, ei);
        }
    }
    store__obj_maybe_drop(s, oi);
}

/* ---- records -------------------------------------------------------------- */

/* Reserves len contiguous journal bytes (a record never wraps, I2). */
static uint64_t jalloc(struct vs_store *s, uint64_t len, bool use_reserve, uint64_t reserve_more)
{
    jb_seal(s); /* a new record follows the open one */
    uint64_t waste = s->jhead + len > s->jsize ? s->jsize - s->jhead : 0;
    uint64_t reserve = use_reserve ? 0 : s->jreserved + reserve_more;
    if (waste + len + reserve > s->jsize - s->jused)
        return UINT64_MAX;
    uint64_t pos = waste ? 0 : s->jhead;
    s->jused += waste + len;
    s->jhead = (pos + len) % s->jsize;
    return pos;
}

static uint8_t *rec_begin(struct vs_store *s, uint64_t pos, uint32_t type, uint32_t hdr_len,
                          uint32_t data_len, uint32_t items)
{
    uint8_t *p = s->jbuf + pos;
    memset(p, 0, hdr_len);
    VS_ASSERT(!s->jb.run); /* sealed by jalloc: its crc is the new prev_crc */
    struct store_rec r = {
        .type = type, .version = s->sb.format_version, .hdr_len = hdr_len,
        .prev_crc = s->last_crc, .seq = s->next_seq, .synced_seq = s->synced_seq,
        .data_len = data_len, .item_count = items, .incarnation = s->incarnation,
    };
    store__rec_encode_hdr(&r, p);
    return p + REC_HDR_SIZE;
}

/* ---- merged journal writes ---------------------------------------------- */

static void op_io_done(struct vs_store_op *op, int res, const char *what);

static struct store_jrun *jrun_get(struct vs_store *s)
{
    for (unsigned i = 0; i < JRUN_MAX; i++) {
        if (!s->jruns[i].busy) {
            s->jruns[i].busy = true;
            return &s->jruns[i];
        }
    }
    return NULL;
}

/* Submits the open run; a run of one record goes as that record's own io. */
static void jrun_flush(struct vs_store *s)
{
    struct store_jrun *r = s->jrun_open;
    if (!r)
        return;
    s->jrun_open = NULL; /* before submitting: the disk may run the hook */
    if (r->head == r->tail) {
        r->busy = false;
        store__count_io(s, VS_STORE_IO_JOURNAL, r->head->p.io[0].len);
        store__submit(s, &r->head->p.io[0]);
        return;
    }
    store__count_io(s, VS_STORE_IO_JOURNAL, r->io.len);
    store__submit(s, &r->io);
}

static void jrun_cb(struct vs_disk_io *io, int res)
{
    struct store_jrun *r = VS_CONTAINER_OF(io, struct store_jrun, io);
    struct vs_store_op *op = r->head;
    r->busy = false;
    while (op) {
        struct vs_store_op *next = op->p.jnext; /* op may be reused from its cb */
        op_io_done(op, res, "journal write");
        op = next;
    }
}

/* Sends the record's journal io: alone when it is the turn's first io (the
 * disk then has one queued, so the submit hook will run), else gathered into
 * the open run if it continues it, else into a new run. */
static void journal_send(struct vs_store *s, struct vs_store_op *op)
{
    struct vs_disk_io *io = &op->p.io[0];
    struct store_jrun *r = s->jrun_open;
    op->p.jnext = NULL;
    if (r && r->io.dev == io->dev && r->io.offset + r->io.len == io->offset &&
        r->io.len + io->len <= JRUN_BYTES_MAX) {
        r->tail->p.jnext = op;
        r->tail = op;
        r->io.len += io->len;
        return;
    }
    jrun_flush(s);
    if (s->turn_io && (r = jrun_get(s)) != NULL) {
        memset(&r->io, 0, sizeof(r->io));
        r->io.cb = jrun_cb;
        r->io.opcode = VS_DISK_WRITE;
        r->io.dev = io->dev;
        r->io.offset = io->offset;
        r->io.buf = io->buf;
        r->io.len = io->len;
        r->io.owner = s;
        r->head = r->tail = op;
        s->jrun_open = r;
        return;
    }
    store__count_io(s, VS_STORE_IO_JOURNAL, io->len);
    store__submit(s, io);
}

/* In fsync_no_drain mode, sends a durable record that is the only one in
 * flight, with no batch in flight, as its own write linked to the batch that
 * covers it (see DESIGN NOTES); false when it does not qualify. */
static bool journal_send_linked(struct vs_store *s, struct vs_store_op *op, unsigned nios)
{
    struct vs_disk_io *io = &op->p.io[0];
    if (s->cfg.durability != VS_STORE_DURABLE_ACK || !s->cfg.fsync_no_drain || nios != 1 ||
        s->fsync_batch_inflight || s->broken || s->in_hook || s->retry_head || s->jrun_open ||
        s->jb.run ||
        s->oldest_incomplete != op->p.seq || s->cfg.fsync_disabled[io->dev])
        return false;
    op->p.jnext = NULL;
    io->flags = VS_DISK_LINK | (s->cfg.idle_sync ? VS_DISK_IDLE_SYNC : 0);
    store__count_io(s, VS_STORE_IO_JOURNAL, io->len);
    bool now = store__submit(s, io);
    if (!now || !(io->flags & VS_DISK_LINK)) {
        io->flags = 0; /* queued, or the disk could not link: fsync on completion */
        return true;
    }
    issue_batch(s, false, op->p.seq + 1, io->dev);
    s->st.fsyncs_linked++;
    return true;
}

/* Seals the record and sends it (and the op's data io, if prepared). */
static void rec_send(struct vs_store *s, struct vs_store_op *op, uint64_t pos, uint32_t len,
                     uint32_t hdr_len, unsigned nios)
{
    s->last_crc = store__rec_seal(s->jbuf + pos, hdr_len);
    s->st.journal_records++;
    op->p.seq = s->next_seq++;
    *rec_st(s, op->p.seq) = 0;
    s->rec_pos[op->p.seq % s->rec_cap] = (uint32_t)(pos / SECTOR);
    op->p.state = nios | (nios << 8);
    struct vs_disk_io *io = &op->p.io[0];
    io->cb = op_io0_cb;
    io->opcode = VS_DISK_WRITE;
    io->dev = s->sb.layout.journal_dev;
    io->offset = s->sb.layout.journal_offset + pos;
    io->buf = s->jbuf + pos;
    io->len = len;
    io->flags = 0;
    if (s->cfg.durability == VS_STORE_DURABLE_ACK) {
        q_push(&s->ack_q, op);
        s->fsync_wanted = true;
    }
    if (!journal_send_linked(s, op, nios))
        journal_send(s, op);
    if (nios > 1) {
        s->big_inflight += op->p.io[1].len;
        store__count_io(s, VS_STORE_IO_DATA, op->p.io[1].len);
        store__submit(s, &op->p.io[1]);
    }
}

/* ---- records of several small writes ------------------------------------- */

/* Largest record of several writes: one merged write's worth, and never
 * more than a quarter of the journal (what any record may take). */
static uint64_t jb_max(const struct vs_store *s)
{
    return VS_MIN((uint64_t)JRUN_BYTES_MAX, s->jsize / 4);
}

/* The record header as it stands; sealed (crc) only by jb_seal. */
static void jb_encode(struct vs_store *s)
{
    struct store_jbatch *b = &s->jb;
    struct store_rec r = {
        .type = REC_WRITE, .version = s->sb.format_version, .hdr_len = SECTOR,
        .prev_crc = b->prev_crc, .seq = b->seq, .synced_seq = s->synced_seq,
        .data_len = b->data_len, .item_count = b->items, .incarnation = s->incarnation,
    };
    store__rec_encode_hdr(&r, s->jbuf + b->pos); /* the first 64 bytes only */
}

/* Opens a record for len bytes of data and more: its header sector is
 * written at once with the chain's prev_crc (a checkpoint may start the
 * journal at it before it is sealed). False: no record could be opened. */
static bool jb_open(struct vs_store *s, uint32_t len, uint64_t reserve_more)
{
    struct store_jrun *r = jrun_get(s);
    if (!r)
        return false;
    uint64_t pos = jalloc(s, (uint64_t)SECTOR + len, false, reserve_more); /* seals any */
    if (pos == UINT64_MAX) {
        r->busy = false;
        return false;
    }
    struct store_jbatch *b = &s->jb;
    *b = (struct store_jbatch){.run = r, .pos = pos, .seq = s->next_seq++,
                               .prev_crc = s->last_crc, .hdr_used = REC_HDR_SIZE};
    memset(s->jbuf + pos, 0, SECTOR);
    jb_encode(s);
    *rec_st(s, b->seq) = 0;
    s->rec_pos[b->seq % s->rec_cap] = (uint32_t)(pos / SECTOR);
    memset(&r->io, 0, sizeof(r->io));
    r->io.cb = jrun_cb;
    r->io.opcode = VS_DISK_WRITE;
    r->io.dev = s->sb.layout.journal_dev;
    r->io.offset = s->sb.layout.journal_offset + pos;
    r->io.buf = s->jbuf + pos;
    r->io.owner = s;
    r->head = r->tail = NULL;
    return true;
}

/* Grows the open record by len bytes of data, in place (a record never
 * wraps); false when it can not. */
static bool jb_extend(struct vs_store *s, uint32_t len, uint64_t reserve_more)
{
    struct store_jbatch *b = &s->jb;
    uint64_t end = b->pos + SECTOR + b->data_len;
    if (end + len > s->jsize || SECTOR + b->data_len + (uint64_t)len > jb_max(s) ||
        len + s->jreserved + reserve_more > s->jsize - s->jused)
        return false;
    VS_ASSERT(s->jhead == end % s->jsize);
    s->jused += len;
    s->jhead = (end + len) % s->jsize;
    return true;
}

static void kick_cb(struct vs_disk_io *io, int res)
{
    struct vs_store *s = io->owner;
    (void)res;
    s->kick_busy &= ~(1u << (io - s->kick_ios));
    store__retry_flush(s);
}

/* Submits a NOP so that the disk runs the submit hook before this turn's ios
 * go out; false when every kick is in flight or the disk did not take it. */
static bool jb_kick(struct vs_store *s)
{
    for (unsigned i = 0; i < JKICK_MAX; i++) {
        if (s->kick_busy & (1u << i))
            continue;
        struct vs_disk_io *io = &s->kick_ios[i];
        memset(io, 0, sizeof(*io));
        io->cb = kick_cb;
        io->opcode = VS_DISK_NOP;
        io->owner = s;
        if (s->retry_head)
            return false; /* it would wait in the queue, not go out this turn */
        s->kick_busy |= 1u << i;
        return store__submit(s, io);
    }
    return false;
}

/* May a small write with an item of item bytes and len bytes of data open a
 * record of several writes? Only if the submit hook will seal it this turn:
 * an io went to the disk this turn, or, when other records are in flight
 * (never for a lone write), a kick did. */
static bool jb_may_open(struct vs_store *s, uint32_t item, uint32_t len)
{
    if (s->sb.format_version < 2 || s->in_hook || REC_HDR_SIZE + item > SECTOR ||
        SECTOR + (uint64_t)len > jb_max(s))
        return false;
    return s->turn_io || (s->oldest_incomplete < s->next_seq && jb_kick(s));
}

/* Places a small write into the open record, or into a new one that the
 * submit hook will seal; false: the write takes a record of its own. */
static bool jb_place(struct vs_store *s, uint32_t item, uint32_t len, uint64_t reserve_more,
                     uint64_t *pos, uint32_t *item_off, uint32_t *data_off)
{
    struct store_jbatch *b = &s->jb;
    bool joined = b->run && b->hdr_used + item <= SECTOR && jb_extend(s, len, reserve_more);
    if (!joined && (!jb_may_open(s, item, len) || !jb_open(s, len, reserve_more)))
        return false;
    *pos = b->pos;
    *item_off = b->hdr_used;
    *data_off = SECTOR + b->data_len;
    b->hdr_used += item;
    b->data_len += len;
    b->items++;
    return true;
}

/* The op of the write just placed joins the open record's io and acks. */
static void jb_add(struct vs_store *s, struct vs_store_op *op)
{
    struct store_jrun *r = s->jb.run;
    op->p.seq = s->jb.seq;
    op->p.state = 1 | (1 << 8);
    op->p.jnext = NULL;
    if (r->tail)
        r->tail->p.jnext = op;
    else
        r->head = op;
    r->tail = op;
    if (s->cfg.durability == VS_STORE_DURABLE_ACK) {
        q_push(&s->ack_q, op);
        s->fsync_wanted = true;
    }
}

/* Seals the open record (header and crc) and sends it as one io. */
static void jb_seal(struct vs_store *s)
{
    struct store_jbatch *b = &s->jb;
    struct store_jrun *r = b->run;
    if (!r)
        return;
    VS_ASSERT(r->head && s->last_crc == b->prev_crc);
    b->run = NULL;
    jb_encode(s);
    s->last_crc = store__rec_seal(s->jbuf + b->pos, SECTOR);
    s->st.journal_records++;
    if (b->items > 1)
        s->st.writes_batched += b->items;
    r->io.len = SECTOR + b->data_len;
    store__count_io(s, VS_STORE_IO_JOURNAL, r->io.len);
    store__submit(s, &r->io);
}

static void op_io_done(struct vs_store_op *op, int res, const char *what)
{
    struct vs_store *s = op->p.store;
    if (res < 0) {
        store__set_broken(s, res, what);
        op->result = -EIO;
    }
    VS_ASSERT(op->p.state & 0xff00);
    op->p.state -= 0x100;
    if (op->p.state & 0xff00)
        return;
    *rec_st(s, op->p.seq) |= 2;
    advance_marks(s);
    s->ck.progress = true; /* a checkpoint may now make this record durable */
    s->max_completed_seq = VS_MAX(s->max_completed_seq, op->p.seq);
    struct store_entry *e = op->p.entry ? &s->ents[op->p.entry] : NULL;
    if (e && e->seq == op->p.seq && !(e->flags & EF_ZOMBIE) && op->result >= 0)
        e->flags |= EF_WRITTEN;
    if (s->no_fsync_at_all && !s->broken)
        s->synced_seq = s->oldest_incomplete;
    if (s->cfg.durability != VS_STORE_DURABLE_ACK) {
        store__complete(s, op, s->broken && op->result >= 0 ? -EIO : op->result);
    } else if (op->result < 0 || s->broken) {
        q_remove(&s->ack_q, op);
        store__complete(s, op, -EIO);
    } else {
        process_acks(s);
        /* A batch in flight covers a record below batch_covers (only a
         * linked one can cover a record completed after it was issued). */
        uint64_t covered = s->fsync_batch_inflight ? s->batch_covers : s->synced_seq;
        if (s->cfg.fsync_no_drain && op->p.seq >= VS_MAX(covered, s->synced_seq))
            store__request_fsync(s, false); /* covers the records completed so far */
    }
    store__retry_flush(s);
}

static void op_io0_cb(struct vs_disk_io *io, int res)
{
    op_io_done(VS_CONTAINER_OF(io, struct vs_store_op, p.io[0]), res, "journal write");
}

static void op_io1_cb(struct vs_disk_io *io, int res)
{
    struct vs_store_op *op = VS_CONTAINER_OF(io, struct vs_store_op, p.io[1]);
    struct vs_store *s = op->p.store;
    VS_ASSERT(s->big_inflight >= io->len);
    s->big_inflight -= io->len;
    op_io_done(op, res, "data write"); /* op may be reused from here on */
    if (s->wait_q.head) /* a big write may wait for the cap */
        store__kick_waiters(s);
}

static uint32_t roundup_sector(uint64_t x)
{
    return (uint32_t)((x + SECTOR - 1) / SECTOR * SECTOR);
}

/* ---- write ---------------------------------------------------------------- */

struct wplan {
    uint32_t oi, ei, block, hdr_len, data_len;
    uint32_t item_off, data_off; /* offsets in the record of the item and its data */
    uint64_t version, pos, seq;  /* pos: the record's */
    bool big, created, batched;
};

/* Checks versions and takes every resource, or takes none (-EAGAIN waits). */
static int write_plan(struct vs_store *s, struct vs_store_op *op, struct wplan *w)
{
    memset(w, 0, sizeof(*w));
    w->oi = store__obj_find(s, op->oid.inode, op->oid.stripe);
    if (w->oi == NONE32) {
        w->oi = store__obj_get(s, op->oid.inode, op->oid.stripe);
        if (w->oi == NONE32)
            return -ENOSPC;
        w->created = true;
    }
    bool deleted;
    uint64_t newest = store__newest_version(s, w->oi, &deleted);
    w->version = op->version ? op->version : newest + 1;
    if (w->version <= newest || w->version >= FREE_VERSION - 1)
        return VS_EVERSIONCONFLICT;
    w->big = op->len == s->block_size || deleted || newest == 0;
    w->hdr_len = roundup_sector(REC_HDR_SIZE + 40 + 4ull * (op->len / SECTOR));
    w->data_len = w->big ? 0 : op->len;
    if ((uint64_t)w->hdr_len + w->data_len > s->jsize / 4)
        return -E2BIG;
    if (s->ent_free == 0)
        return -EAGAIN;
    /* Unstable versions reserve a sector each for their stabilize/rollback
     * record; they may hold at most a quarter of the journal. */
    if (!(op->flags & VS_STORE_STABLE) && s->jreserved + SECTOR > s->jsize / 4)
        return -EAGAIN;
    /* A new object needs a block beyond the reserve; an overwrite may use the
     * reserve and otherwise waits: the checkpoint frees the block it replaces. */
    bool overwrite = newest != 0 && !deleted;
    if (w->big && !overwrite && s->blocks_free <= s->reserve_blocks &&
        s->blocks_free < s->block_count)
        return s->pend_blocks_n || s->rb_blocks_n ? -EAGAIN : -ENOSPC;
    if (w->big && s->blocks_free == 0)
        return -EAGAIN;
    if (w->big && s->big_inflight && s->big_inflight + op->len > s->big_inflight_max) {
        s->cap_wait = true; /* a data completion retries it; no checkpoint needed */
        return -EAGAIN;
    }
    /* An unstable write also reserves the sector of its own future record. */
    uint64_t more = op->flags & VS_STORE_STABLE ? 0 : SECTOR;
    w->batched = !w->big && jb_place(s, 40 + 4 * (op->len / SECTOR), w->data_len, more,
                                     &w->pos, &w->item_off, &w->data_off);
    if (w->batched) {
        w->seq = s->jb.seq;
    } else {
        w->pos = jalloc(s, (uint64_t)w->hdr_len + w->data_len, false, more);
        w->item_off = REC_HDR_SIZE;
        w->data_off = w->hdr_len;
        w->seq = s->next_seq;
    }
    if (w->pos == UINT64_MAX)
        return -EAGAIN;
    w->ei = store__ent_alloc(s);
    w->block = w->big ? store__block_alloc(s) : NONE32;
    if (w->big)
        VS_TRACE("store", "alloc: block %u for obj %u v%llu seq %llu", w->block, w->oi,
                 (unsigned long long)w->version, (unsigned long long)s->next_seq);
    return 0;
}

static void write_fill(struct vs_store *s, struct vs_store_op *op, const struct wplan *w)
{
    uint8_t *p = w->batched ? s->jbuf + w->pos + w->item_off
                            : rec_begin(s, w->pos, REC_WRITE, w->hdr_len, w->data_len, 1);
    uint32_t flags = (op->flags & VS_STORE_STABLE ? RECF_STABLE : 0) | (w->big ? RECF_BIG : 0);
    vs_put_u64(p, op->oid.inode);
    vs_put_u64(p + 8, op->oid.stripe);
    vs_put_u64(p + 16, w->version);
    vs_put_u32(p + 24, op->offset);
    vs_put_u32(p + 28, op->len);
    vs_put_u32(p + 32, w->block);
    vs_put_u32(p + 36, flags);
    struct store_entry *e = &s->ents[w->ei];
    e->version = w->version;
    e->seq = w->seq;
    e->jpos = (uint32_t)(w->pos / SECTOR);
    e->data_sec = (uint16_t)(w->data_off / SECTOR);
    e->offset = op->offset;
    e->len = op->len;
    e->kind = w->big ? ENT_BIG : ENT_SMALL;
    e->block = w->block;
    e->flags = op->flags & VS_STORE_STABLE ? EF_STABLE : 0;
    uint8_t *data = s->jbuf + w->pos + w->data_off;
    if (!w->big && op->len)
        memcpy(data, op->buf, op->len);
    const uint8_t *src = w->big ? op->buf : data;
    uint8_t *bm = w->big ? store__bitmap(s, w->block) : NULL;
    if (bm)
        memset(bm, 0, s->bitmap_bytes);
    for (uint32_t i = 0; i < op->len / SECTOR; i++) {
        uint32_t crc = vs_crc32c(src + (size_t)i * SECTOR, SECTOR);
        vs_put_u32(p + 40 + 4 * i, crc);
        if (bm) {
            bit_set(bm, op->offset / SECTOR + i);
            if (s->ncsum)
                s->block_csum[(size_t)w->block * s->ncsum + op->offset / SECTOR + i] = crc;
        } else if (s->jcrc) {
            s->jcrc[e->jpos + e->data_sec + i] = crc;
        }
    }
    if (w->big)
        s->block_owner[w->block] = w->oi;
}

static int write_try(struct vs_store *s, struct vs_store_op *op)
{
    struct wplan w;
    int rc = write_plan(s, op, &w);
    if (rc < 0) {
        if (w.created)
            store__obj_maybe_drop(s, w.oi);
        return rc;
    }
    write_fill(s, op, &w);
    store__ent_link(s, w.oi, w.ei);
    if (op->flags & VS_STORE_STABLE)
        store__mark_stable(s, w.oi, w.version);
    op->p.entry = w.ei;
    op->out_version = w.version;
    op->result = (int)op->len;
    unsigned nios = 1;
    if (w.big && op->len) {
        struct vs_disk_io *io = &op->p.io[1];
        io->cb = op_io1_cb;
        io->opcode = VS_DISK_WRITE;
        io->dev = s->sb.layout.data_dev;
        io->offset = s->sb.layout.data_offset + (uint64_t)w.block * s->block_size + op->offset;
        io->buf = op->buf;
        io->len = op->len;
        io->flags = 0;
        nios = 2;
    }
    s->st.bytes_user_written += op->len;
    if (w.batched)
        jb_add(s, op);
    else
        rec_send(s, op, w.pos, w.hdr_len + w.data_len, w.hdr_len, nios);
    return 0;
}

/* ---- delete, stabilize, rollback ------------------------------------------ */

static int delete_try(struct vs_store *s, struct vs_store_op *op)
{
    uint32_t oi = store__obj_find(s, op->oid.inode, op->oid.stripe);
    bool deleted;
    uint64_t newest = oi == NONE32 ? 0 : store__newest_version(s, oi, &deleted);
    if (oi == NONE32 || deleted || newest == 0)
        return -ENOENT;
    uint64_t version = op->version ? op->version : newest + 1;
    if (version <= newest || version >= FREE_VERSION - 1)
        return VS_EVERSIONCONFLICT;
    if (s->ent_free == 0)
        return -EAGAIN;
    if (s->tombs_free == 0)
        return s->pend_tombs_n ? -EAGAIN : -ENOSPC;
    uint64_t pos = jalloc(s, SECTOR, false, 0);
    if (pos == UINT64_MAX)
        return -EAGAIN;
    uint32_t ei = store__ent_alloc(s);
    uint32_t t = store__tomb_alloc(s);
    uint8_t *p = rec_begin(s, pos, REC_DELETE, SECTOR, 0, 1);
    vs_put_u64(p, op->oid.inode);
    vs_put_u64(p + 8, op->oid.stripe);
    vs_put_u64(p + 16, version);
    struct store_entry *e = &s->ents[ei];
    e->version = version;
    e->seq = s->next_seq;
    e->jpos = (uint32_t)(pos / SECTOR);
    e->data_sec = 1;
    e->kind = ENT_DELETE;
    e->block = t;
    e->flags = EF_STABLE;
    s->tomb_owner[t] = oi;
    s->tomb_seq[t] = e->seq;
    store__ent_link(s, oi, ei);
    store__mark_stable(s, oi, version);
    op->p.entry = ei;
    op->out_version = version;
    op->result = 0;
    rec_send(s, op, pos, SECTOR, SECTOR, 1);
    return 0;
}

/* Does (oid, version) exist, stable or not? */
static bool version_exists(const struct vs_store *s, uint32_t oi, uint64_t version)
{
    const struct store_obj *o = &s->objs[oi];
    for (uint32_t ei = o->dirty; ei; ei = s->ents[ei].next)
        if (s->ents[ei].version == version)
            return true;
    return version <= o->version && o->version != 0;
}

static int list_check(struct vs_store *s, struct vs_store_op *op, bool rollback)
{
    if (op->list_count == 0 || !op->list)
        return -EINVAL;
    for (uint32_t i = 0; i < op->list_count; i++) {
        const struct vs_store_obj_ver *ov = &op->list[i];
        uint32_t oi = store__obj_find(s, ov->oid.inode, ov->oid.stripe);
        if (oi == NONE32)
            return -ENOENT;
        if (!rollback) {
            if (!version_exists(s, oi, ov->version))
                return -ENOENT;
            continue;
        }
        if (s->objs[oi].version > ov->version)
            return -EBUSY;
        for (uint32_t ei = s->objs[oi].dirty; ei; ei = s->ents[ei].next)
            if (s->ents[ei].version > ov->version && (s->ents[ei].flags & EF_STABLE))
                return -EBUSY;
    }
    return 0;
}

/* How many unstable entries the op would stabilize or drop. */
static uint32_t list_effect(struct vs_store *s, struct vs_store_op *op)
{
    uint32_t k = 0;
    for (uint32_t i = 0; i < op->list_count; i++) {
        const struct vs_store_obj_ver *ov = &op->list[i];
        uint32_t oi = store__obj_find(s, ov->oid.inode, ov->oid.stripe);
        for (uint32_t ei = oi == NONE32 ? 0 : s->objs[oi].dirty; ei; ei = s->ents[ei].next) {
            const struct store_entry *e = &s->ents[ei];
            bool stable = e->flags & EF_STABLE;
            k += op->p.kind == OPK_ROLLBACK ? (!stable && e->version > ov->version)
                                            : (!stable && e->version <= ov->version);
        }
    }
    return k;
}

static int list_try(struct vs_store *s, struct vs_store_op *op, bool rollback)
{
    int rc = list_check(s, op, rollback);
    if (rc < 0)
        return rc;
    uint32_t k = list_effect(s, op);
    if (k == 0) { /* nothing to change: no record (and no journal space) */
        op->result = 0;
        store__defer(s, op);
        return 0;
    }
    uint32_t hdr_len = roundup_sector(REC_HDR_SIZE + 24ull * op->list_count);
    if (hdr_len > s->jsize / 4)
        return -E2BIG;
    /* The reserve holds a sector per unstable entry: this record may use it. */
    uint64_t pos = jalloc(s, hdr_len, hdr_len / SECTOR <= k, 0);
    if (pos == UINT64_MAX)
        return -EAGAIN;
    uint8_t *p = rec_begin(s, pos, rollback ? REC_ROLLBACK : REC_STABLE, hdr_len, 0,
                           op->list_count);
    for (uint32_t i = 0; i < op->list_count; i++, p += 24) {
        const struct vs_store_obj_ver *ov = &op->list[i];
        vs_put_u64(p, ov->oid.inode);
        vs_put_u64(p + 8, ov->oid.stripe);
        vs_put_u64(p + 16, ov->version);
        uint32_t oi = store__obj_find(s, ov->oid.inode, ov->oid.stripe);
        if (oi == NONE32)
            continue; /* rolled back to nothing by an earlier item */
        if (rollback)
            store__rollback_obj(s, oi, ov->version, false);
        else
            store__mark_stable(s, oi, ov->version);
    }
    op->p.entry = 0;
    op->result = 0;
    rec_send(s, op, pos, hdr_len, hdr_len, 1);
    return 0;
}

static int op_try(struct vs_store *s, struct vs_store_op *op)
{
    s->cap_wait = false;
    switch (op->p.kind) {
    case OPK_WRITE:
        return write_try(s, op);
    case OPK_DELETE:
        return delete_try(s, op);
    case OPK_STABLE:
        return list_try(s, op, false);
    default:
        return list_try(s, op, true);
    }
}

/* Retries waiting mutations in order; called from completion paths only. */
void store__kick_waiters(struct vs_store *s)
{
    struct vs_store_op *op;
    while (!s->broken && (op = q_pop(&s->wait_q)) != NULL) {
        struct vs_store_op *rest = s->wait_q.head; /* op_try may link op elsewhere */
        int rc = op_try(s, op);
        if (rc == -EAGAIN) {
            op->p.next = rest; /* back to the head */
            s->wait_q.head = op;
            if (!rest)
                s->wait_q.tail = op;
            break;
        }
        if (rc < 0)
            store__complete(s, op, rc);
    }
    if (s->wait_q.head) {
        if (s->zn_cur)
            store__barrier_request(s);
        store__ck_maybe_start(s);
    }
    store__retry_flush(s);
}

static int op_start(struct vs_store *s, struct vs_store_op *op, int kind, bool ordered)
{
    if (s->broken)
        return -EIO;
    if (s->cfg.readonly)
        return -EROFS;
    if (!op || !op->cb)
        return -EINVAL;
    op->p.store = s;
    op->p.kind = (uint8_t)kind;
    op->p.entry = 0;
    op->result = 0;
    s->ops_inflight++;
    s->ck.progress = true; /* something changed: checkpoints may help again */
    int rc = ordered && s->wait_q.head ? -EAGAIN : op_try(s, op);
    if (rc == -EAGAIN && !ordered) { /* stabilize, rollback: ahead of writes */
        op->p.next = s->wait_q.head;
        s->wait_q.head = op;
        if (!s->wait_q.tail)
            s->wait_q.tail = op;
    } else if (rc == -EAGAIN) {
        q_push(&s->wait_q, op);
    }
    if (rc == -EAGAIN) {
        s->st.journal_waits++;
        if (s->zn_cur)
            store__barrier_request(s);
        store__ck_maybe_start(s);
        return 0;
    }
    if (rc < 0) {
        s->ops_inflight--;
        return rc;
    }
    store__ck_maybe_start(s);
    return 0;
}

int vs_store_write(struct vs_store *s, struct vs_store_op *op)
{
    if (!op || op->offset % SECTOR || op->len % SECTOR ||
        (uint64_t)op->offset + op->len > s->block_size || op->version >= FREE_VERSION - 1 ||
        (op->len && (!op->buf || (uintptr_t)op->buf % VS_STORE_ALIGN)))
        return -EINVAL;
    s->st.op_write++;
    return op_start(s, op, OPK_WRITE, true);
}

int vs_store_delete(struct vs_store *s, struct vs_store_op *op)
{
    if (!op || op->version >= FREE_VERSION - 1)
        return -EINVAL;
    s->st.op_delete++;
    return op_start(s, op, OPK_DELETE, true);
}

int vs_store_stabilize(struct vs_store *s, struct vs_store_op *op)
{
    s->st.op_stabilize++;
    return op_start(s, op, OPK_STABLE, false);
}

int vs_store_rollback(struct vs_store *s, struct vs_store_op *op)
{
    s->st.op_rollback++;
    return op_start(s, op, OPK_ROLLBACK, false);
}

int vs_store_sync(struct vs_store *s, struct vs_store_op *op)
{
    if (!op || !op->cb)
        return -EINVAL;
    if (s->broken)
        return -EIO;
    s->st.op_sync++;
    op->p.store = s;
    op->p.kind = OPK_SYNC;
    op->result = 0;
    op->p.seq = s->max_completed_seq + 1;
    s->ops_inflight++;
    if (s->synced_seq >= op->p.seq || s->cfg.readonly) {
        store__defer(s, op);
        return 0;
    }
    q_push(&s->sync_q, op);
    store__request_fsync(s, true);
    return 0;
}
