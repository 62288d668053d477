/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_assert.h"

#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void vs_assert_fail(const char *expr, const char *file, int line, const char *func,
                    const char *fmt, ...)
{
    fprintf(stderr, "vstor: assertion failed: %s\n  at %s:%d in %s()\n", expr, file, line, func);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs("  context: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    fflush(stderr);
    void *frames[48];
    int n = backtrace(frames, (int)VS_ARRAY_SIZE(frames));
    backtrace_symbols_fd(frames, n, STDERR_FILENO);
    abort();
}
