/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Unit tests for vs_err, vs_byte, vs_crc32c and vs_log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "vs_byte.h"
#include "vs_crc32c.h"
#include "vs_err.h"
#include "vs_log.h"

static void test_strerror(void **state)
{
    (void)state;
    assert_string_equal(vs_strerror(-EIO), "Input/output error");
    assert_string_equal(vs_strerror(EIO), "Input/output error");
    assert_string_equal(vs_strerror(VS_ECHECKSUM), "checksum mismatch");
    assert_string_equal(vs_errname(VS_ECHECKSUM), "VS_ECHECKSUM");
    assert_string_equal(vs_errname(-ENOSPC), "ENOSPC");
    assert_string_equal(vs_strerror(-4999), "unknown vstor error");
    assert_string_equal(vs_strerror(0), "success");
    /* Every vstor code is inside the reserved range and below every errno. */
#define CHECK_RANGE(name, value, msg) assert_true((value) <= VS_ERR_MAX && (value) >= VS_ERR_MIN);
    VS_ERR_MAP(CHECK_RANGE)
#undef CHECK_RANGE
}

static void test_byte_roundtrip(void **state)
{
    (void)state;
    uint8_t buf[15];
    vs_put_u64(buf, 0x0102030405060708ull);
    assert_int_equal(buf[0], 0x08);
    assert_int_equal(buf[7], 0x01);
    assert_true(vs_get_u64(buf) == 0x0102030405060708ull);
    vs_put_u32(buf + 8, 0xdeadbeef);
    assert_int_equal(buf[8], 0xef);
    assert_true(vs_get_u32(buf + 8) == 0xdeadbeef);
    vs_put_u16(buf + 12, 0xa55a);
    assert_int_equal(vs_get_u16(buf + 12), 0xa55a);

    struct vs_cursor w = vs_cursor_make(buf, sizeof(buf));
    vs_wr_u64(&w, 42);
    vs_wr_u32(&w, 7);
    vs_wr_u16(&w, 3);
    assert_true(w.ok);
    vs_wr_u16(&w, 3); /* one byte left: refused */
    assert_false(w.ok);

    struct vs_cursor r = vs_cursor_make(buf, sizeof(buf));
    assert_true(vs_rd_u64(&r) == 42);
    assert_int_equal(vs_rd_u32(&r), 7);
    assert_int_equal(vs_rd_u16(&r), 3);
    assert_int_equal(vs_cursor_left(&r), 1);
    assert_int_equal(vs_rd_u32(&r), 0); /* past the end: zero and !ok */
    assert_false(r.ok);
    assert_int_equal(vs_cursor_left(&r), 0);
}

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(vs_crc32c("123456789", 9), 0xE3069283u);
    assert_int_equal(vs_crc32c("", 0), 0);
    uint32_t a = vs_crc32c("12345", 5);
    assert_int_equal(vs_crc32c_extend(a, "6789", 4), 0xE3069283u);
    /* 32 bytes of zeros: a published iSCSI test vector (RFC 3720 B.4). */
    uint8_t zeros[32] = {0};
    assert_int_equal(vs_crc32c(zeros, 32), 0x8A9136AAu);
    uint8_t ones[32];
    memset(ones, 0xff, sizeof(ones));
    assert_int_equal(vs_crc32c(ones, 32), 0x62A8AB43u);
}

struct captured {
    int count;
    enum vs_log_level level;
    char component[32];
    char msg[256];
};

static void capture_sink(void *ctx, enum vs_log_level level, const char *component,
                         const char *msg)
{
    struct captured *c = ctx;
    c->count++;
    c->level = level;
    snprintf(c->component, sizeof(c->component), "%s", component);
    snprintf(c->msg, sizeof(c->msg), "%s", msg);
}

static void test_log_levels(void **state)
{
    (void)state;
    struct captured c = {0};
    vs_log_set_sink(capture_sink, &c);
    vs_log_set_level(VS_LOG_WARN);
    VS_INFO("test", "hidden %d", 1);
    assert_int_equal(c.count, 0);
    VS_WARN("store", "shown %d", 2);
    assert_int_equal(c.count, 1);
    assert_int_equal(c.level, VS_LOG_WARN);
    assert_string_equal(c.component, "store");
    assert_string_equal(c.msg, "shown 2");
    vs_log_set_level(VS_LOG_TRACE);
    VS_TRACE("x", "t");
    assert_int_equal(c.count, 2);
    vs_log_set_sink(NULL, NULL);
    vs_log_set_level(VS_LOG_INFO);

    enum vs_log_level l;
    assert_int_equal(vs_log_level_parse("debug", &l), 0);
    assert_int_equal(l, VS_LOG_DEBUG);
    assert_int_equal(vs_log_level_parse("loud", &l), -EINVAL);
    assert_string_equal(vs_log_level_name(VS_LOG_ERROR), "error");
}

static void test_log_format(void **state)
{
    (void)state;
    char line[256];
    vs_log_set_process("osd.3");
    int n = vs_log_format_line(line, sizeof(line), VS_LOG_INFO, "store", "replayed 5 entries");
    assert_true(n > 0);
    /* 2026-11-28T08:21:11.123456Z INFO  osd.3 store: replayed 5 entries\n */
    assert_int_equal(line[4], '-');
    assert_int_equal(line[10], 'T');
    assert_int_equal(line[26], 'Z');
    assert_non_null(strstr(line, " INFO  osd.3 store: replayed 5 entries\n"));
    /* A message longer than the buffer is cut but still ends the line. */
    char small[40];
    n = vs_log_format_line(small, sizeof(small), VS_LOG_ERROR, "c", "a long long long message");
    assert_int_equal(n, (int)sizeof(small) - 1);
    assert_int_equal(small[sizeof(small) - 2], '\n');
    vs_log_set_process(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strerror),   cmocka_unit_test(test_byte_roundtrip),
        cmocka_unit_test(test_crc32c),     cmocka_unit_test(test_log_levels),
        cmocka_unit_test(test_log_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
