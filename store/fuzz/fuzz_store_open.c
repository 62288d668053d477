/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * Fuzz target: recovery of a damaged store. A small store is formatted on the
 * simulated disk and filled (objects, a delete, an unstable version, a
 * checkpoint, journal records after it, one of them holding several writes);
 * the input is a list of patches (u32 offset, u8 xor) applied to the durable
 * image; then vs_store_open must
 * either fail with an error or produce a store whose every object reads back
 * (data or a clean error such as VS_ECHECKSUM) and lists, whose journal
 * lists whole (vs_store_dump_journal: every record replay accepted, each item
 * inside its record and the journal), and closes.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEV (3u << 20)

static void done_cb(struct vs_store_op *op)
{
    *(int *)op->ctx = 1;
}

static int run(struct vs_disk *d, struct vs_store *s, struct vs_store_op *op,
               int (*fn)(struct vs_store *, struct vs_store_op *))
{
    int flag = 0;
    op->cb = done_cb;
    op->ctx = &flag;
    int rc = fn(s, op);
    if (rc < 0)
        return rc;
    while (!flag && vs_disk_sim_step(d, 1))
        ;
    return flag ? op->result : -EIO;
}

static void count_cb(struct vs_store_op *op)
{
    ++*(int *)op->ctx;
}

/* Writes started together: after the first, they share one journal record
 * of several writes (format 2). */
static void write_group(struct vs_disk *d, struct vs_store *s, uint8_t *buf)
{
    struct vs_store_op grp[5];
    int done = 0;
    for (int i = 0; i < 5; i++) {
        grp[i] = (struct vs_store_op){.oid = {1, (uint64_t)(6 + i)}, .offset = 4096, .len = 4096,
                                      .buf = buf, .flags = VS_STORE_STABLE, .cb = count_cb,
                                      .ctx = &done};
        if (vs_store_write(s, &grp[i]) < 0)
            abort();
    }
    while (done < 5 && vs_disk_sim_step(d, 1))
        ;
    struct vs_store_stats st;
    vs_store_get_stats(s, &st);
    if (done < 5 || st.writes_batched == 0)
        abort();
}

static uint8_t *image;

static void build_image(void)
{
    struct vs_disk *d;
    uint64_t size = DEV;
    if (vs_disk_sim_create(1, &size, 1, &d) != 0)
        abort();
    struct vs_store_format_opts fo;
    memset(&fo, 0, sizeof(fo));
    fo.block_size = 16384;
    fo.layout.journal_size = 128u << 10;
    fo.tomb_count = 8;
    char err[256];
    struct vs_store *s;
    if (vs_store_format(d, &fo, err, sizeof(err)) || vs_store_open(d, NULL, &s, err, sizeof(err)))
        abort();
    uint8_t *buf = aligned_alloc(4096, 16384);
    for (int i = 0; i < 12; i++) {
        memset(buf, i + 1, 16384);
        struct vs_store_op op = {.oid = {1, (uint64_t)i}, .offset = 4096u * (uint32_t)(i % 3),
                                 .len = i % 2 ? 4096 : 8192, .buf = buf, .flags = VS_STORE_STABLE};
        run(d, s, &op, vs_store_write);
        if (i == 5) {
            struct vs_store_op ck = {0};
            run(d, s, &ck, vs_store_checkpoint);
        }
    }
    write_group(d, s, buf);
    struct vs_store_op del = {.oid = {1, 3}};
    run(d, s, &del, vs_store_delete);
    struct vs_store_op un = {.oid = {1, 4}, .len = 4096, .buf = buf};
    run(d, s, &un, vs_store_write);
    free(buf);
    vs_store_abandon(s); /* leave the journal as it is: replay must do the work */
    vs_disk_sim_crash(d);
    image = malloc(DEV);
    memcpy(image, vs_disk_sim_durable(d, 0), DEV);
    vs_disk_destroy(d);
}

/* Every listed item lies inside its record, and its data inside the journal. */
static void dump_cb(void *ctx, const struct vs_store_jrec *r)
{
    const struct vs_store *s = ctx;
    if (r->item >= r->items || r->pos >= s->jsize ||
        (r->data_pos != UINT64_MAX &&
         (r->data_pos <= r->pos || r->data_pos + r->len > s->jsize)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!image)
        build_image();
    struct vs_disk *d;
    uint64_t devsize = DEV;
    if (vs_disk_sim_create(1, &devsize, 2, &d) != 0)
        return 0;
    uint8_t *img = vs_disk_sim_durable(d, 0);
    memcpy(img, image, DEV);
    for (size_t i = 0; i + 5 <= size; i += 5) {
        uint32_t off = (uint32_t)data[i] | (uint32_t)data[i + 1] << 8 |
                       (uint32_t)data[i + 2] << 16 | (uint32_t)data[i + 3] << 24;
        img[off % (2u << 20)] ^= data[i + 4]; /* superblock, metadata, journal */
    }
    char err[256];
    struct vs_store *s;
    if (vs_store_open(d, NULL, &s, err, sizeof(err)) == 0) {
        struct vs_store_list_entry *le;
        long n = vs_store_list(s, 0, 0, 0, 0, &le);
        uint8_t *buf = aligned_alloc(4096, 16384);
        uint8_t bm[4];
        for (long k = 0; k < n; k++) {
            struct vs_store_op op = {.oid = le[k].oid, .version = le[k].version, .len = 16384,
                                     .buf = buf, .bitmap = bm};
            run(d, s, &op, vs_store_read);
        }
        if (n >= 0)
            free(le);
        free(buf);
        if (vs_store_dump_journal(s, dump_cb, s, NULL) != (long)(s->next_seq - s->start_seq))
            abort(); /* replay accepted every live record: they all list */
        uint64_t seq, pos = UINT64_MAX;
        if (vs_store_journal_end(s, &seq, &pos) < 0 && pos >= s->jsize)
            abort();
        vs_store_close(s);
    }
    vs_disk_destroy(d);
    return 0;
}
