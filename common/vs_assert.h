/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_assert.h -- the four-word assertion vocabulary (STYLE B13).
 *
 *   VS_ASSERT(x)        always on, cheap; a programmer error aborts with context.
 *   VS_DASSERT(x)       debug builds only (VS_DEBUG); for O(n) whole-object checks.
 *   VS_NEVER(x)         "x is believed impossible": asserts in debug, and in release
 *                       returns x so the caller can degrade safely:
 *                           if (VS_NEVER(p == NULL)) return -EIO;
 *   VS_ALWAYS(x)        the mirror image of VS_NEVER.
 *   VS_STATIC_ASSERT    compile-time sizes and constants.
 *
 * Operating errors (EIO, ENOSPC, timeouts, bad input) are never asserts: they
 * are returned and tested. VS_ASSERTF adds a printf-style context line, such as
 * "pg=1.2f osd=3 epoch=812".
 */
#ifndef VS_ASSERT_H
#define VS_ASSERT_H

#include <stdbool.h>

_Noreturn void vs_assert_fail(const char *expr, const char *file, int line, const char *func,
                              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define VS_LIKELY(x) __builtin_expect(!!(x), 1)
#define VS_UNLIKELY(x) __builtin_expect(!!(x), 0)

#define VS_ASSERT(x)                                                                     \
    do {                                                                                 \
        if (VS_UNLIKELY(!(x)))                                                           \
            vs_assert_fail(#x, __FILE__, __LINE__, __func__, NULL);                      \
    } while (0)

#define VS_ASSERTF(x, ...)                                                               \
    do {                                                                                 \
        if (VS_UNLIKELY(!(x)))                                                           \
            vs_assert_fail(#x, __FILE__, __LINE__, __func__, __VA_ARGS__);               \
    } while (0)

#ifdef VS_DEBUG
#define VS_DASSERT(x) VS_ASSERT(x)
#define VS_NEVER(x) ((x) ? (vs_assert_fail("!(" #x ")", __FILE__, __LINE__, __func__, NULL), 1) : 0)
#define VS_ALWAYS(x) ((x) ? 1 : (vs_assert_fail(#x, __FILE__, __LINE__, __func__, NULL), 0))
#else
#define VS_DASSERT(x) ((void)0)
#define VS_NEVER(x) VS_UNLIKELY(x)
#define VS_ALWAYS(x) VS_LIKELY(x)
#endif

#define VS_STATIC_ASSERT(x, msg) _Static_assert(x, msg)

#define VS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define VS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VS_MAX(a, b) ((a) > (b) ? (a) : (b))
#define VS_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

#endif /* VS_ASSERT_H */
