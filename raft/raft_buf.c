/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * raft_buf.c -- a growable byte buffer for the encoders. An append that cannot
 * allocate sets `oom` and drops the bytes, so an encoder writes its fields
 * unconditionally and checks once at the end (like struct vs_cursor).
 */
#include "raft_int.h"

#include "vs_assert.h"
#include "vs_byte.h"

#include <stdlib.h>
#include <string.h>

void raft__buf_init(struct raft_buf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->oom = false;
}

void raft__buf_free(struct raft_buf *b)
{
    free(b->p);
    raft__buf_init(b);
}

void raft__buf_reset(struct raft_buf *b)
{
    b->len = 0;
    b->oom = false;
}

uint8_t *raft__buf_reserve(struct raft_buf *b, size_t n)
{
    if (b->oom)
        return NULL;
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return NULL;
            }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return NULL;
        }
        b->p = p;
        b->cap = cap;
    }
    VS_ASSERT(b->cap - b->len >= n);
    return b->p + b->len;
}

void raft__buf_u8(struct raft_buf *b, uint8_t v)
{
    uint8_t *p = raft__buf_reserve(b, 1);
    if (p) {
        p[0] = v;
        b->len += 1;
    }
}

void raft__buf_u16(struct raft_buf *b, uint16_t v)
{
    uint8_t *p = raft__buf_reserve(b, 2);
    if (p) {
        vs_put_u16(p, v);
        b->len += 2;
    }
}

void raft__buf_u32(struct raft_buf *b, uint32_t v)
{
    uint8_t *p = raft__buf_reserve(b, 4);
    if (p) {
        vs_put_u32(p, v);
        b->len += 4;
    }
}

void raft__buf_u64(struct raft_buf *b, uint64_t v)
{
    uint8_t *p = raft__buf_reserve(b, 8);
    if (p) {
        vs_put_u64(p, v);
        b->len += 8;
    }
}

void raft__buf_bytes(struct raft_buf *b, const void *src, size_t n)
{
    if (n == 0)
        return;
    uint8_t *p = raft__buf_reserve(b, n);
    if (p) {
        memcpy(p, src, n);
        b->len += n;
    }
}

void raft__buf_blob(struct raft_buf *b, const void *src, uint32_t n)
{
    raft__buf_u32(b, n);
    raft__buf_bytes(b, src, n);
}

uint8_t *raft__buf_take(struct raft_buf *b, size_t *len)
{
    uint8_t *p = b->p;
    *len = b->len;
    raft__buf_init(b);
    return p;
}
