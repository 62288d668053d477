/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_byte.h -- explicit little-endian encoding for everything that goes to
 * disk or to the wire (STYLE B11). Never memcpy a struct to disk: encode each
 * field with these, so layout and endianness are a written contract.
 *
 * The cursor helpers (struct vs_cursor) never read or write past `end`: a
 * decoder checks vs_cursor_ok() once at the end instead of after every field.
 */
#ifndef VS_BYTE_H
#define VS_BYTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline void vs_put_u8(uint8_t *p, uint8_t v)
{
    p[0] = v;
}
static inline void vs_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static inline void vs_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void vs_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint8_t vs_get_u8(const uint8_t *p)
{
    return p[0];
}
static inline uint16_t vs_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t vs_get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}
static inline uint64_t vs_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A bounded cursor over a byte buffer. Reads past the end return zeros and
 * clear `ok`; writes past the end are dropped and clear `ok`. */
struct vs_cursor {
    uint8_t *p;
    uint8_t *end;
    bool ok;
};

static inline struct vs_cursor vs_cursor_make(void *buf, size_t len)
{
    struct vs_cursor c = {(uint8_t *)buf, (uint8_t *)buf + len, true};
    return c;
}
static inline bool vs_cursor_take(struct vs_cursor *c, size_t n)
{
    if (!c->ok || (size_t)(c->end - c->p) < n) {
        c->ok = false;
        return false;
    }
    return true;
}
static inline size_t vs_cursor_left(const struct vs_cursor *c)
{
    return c->ok ? (size_t)(c->end - c->p) : 0;
}

#define VS_CURSOR_RW(bits)                                                               \
    static inline void vs_wr_u##bits(struct vs_cursor *c, uint##bits##_t v)              \
    {                                                                                    \
        if (vs_cursor_take(c, bits / 8)) {                                               \
            vs_put_u##bits(c->p, v);                                                     \
            c->p += bits / 8;                                                            \
        }                                                                                \
    }                                                                                    \
    static inline uint##bits##_t vs_rd_u##bits(struct vs_cursor *c)                      \
    {                                                                                    \
        if (!vs_cursor_take(c, bits / 8))                                                \
            return 0;                                                                    \
        uint##bits##_t v = vs_get_u##bits(c->p);                                         \
        c->p += bits / 8;                                                                \
        return v;                                                                        \
    }
VS_CURSOR_RW(8)
VS_CURSOR_RW(16)
VS_CURSOR_RW(32)
VS_CURSOR_RW(64)
#undef VS_CURSOR_RW

static inline void vs_wr_bytes(struct vs_cursor *c, const void *src, size_t n)
{
    if (vs_cursor_take(c, n)) {
        if (n)
            memcpy(c->p, src, n);
        c->p += n;
    }
}
static inline void vs_rd_bytes(struct vs_cursor *c, void *dst, size_t n)
{
    if (vs_cursor_take(c, n)) {
        if (n)
            memcpy(dst, c->p, n);
        c->p += n;
    } else if (n) {
        memset(dst, 0, n);
    }
}
/* Writes n zero bytes (reserved space). */
static inline void vs_wr_zero(struct vs_cursor *c, size_t n)
{
    if (vs_cursor_take(c, n)) {
        memset(c->p, 0, n);
        c->p += n;
    }
}
static inline void vs_rd_skip(struct vs_cursor *c, size_t n)
{
    if (vs_cursor_take(c, n))
        c->p += n;
}

#endif /* VS_BYTE_H */
