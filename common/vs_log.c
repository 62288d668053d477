/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_log.h"

#include "vs_err.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum vs_log_level vs_log_level_current = VS_LOG_INFO;

static char process_tag[32] = "vstor";
static vs_log_sink_fn sink_fn;
static void *sink_ctx;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};
static const char *const level_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG", "TRACE"};

void vs_log_set_level(enum vs_log_level level)
{
    vs_log_level_current = level;
}

void vs_log_set_process(const char *tag)
{
    snprintf(process_tag, sizeof(process_tag), "%s", tag ? tag : "vstor");
}

void vs_log_set_sink(vs_log_sink_fn fn, void *ctx)
{
    sink_fn = fn;
    sink_ctx = ctx;
}

int vs_log_level_parse(const char *s, enum vs_log_level *out)
{
    for (unsigned i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum vs_log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *vs_log_level_name(enum vs_log_level level)
{
    if ((unsigned)level > VS_LOG_TRACE)
        return "?";
    return level_names[level];
}

int vs_log_format_line(char *buf, unsigned long size, enum vs_log_level level,
                       const char *component, const char *msg)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    const char *tag = (unsigned)level <= VS_LOG_TRACE ? level_tags[level] : "?????";
    int n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ %s %s %s: %s\n",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000, tag, process_tag,
                     component ? component : "-", msg);
    if (n >= 0 && (unsigned long)n >= size && size > 1) {
        /* Truncated: keep the line a line. */
        buf[size - 2] = '\n';
        n = (int)size - 1;
    }
    return n;
}

static void default_sink(enum vs_log_level level, const char *component, const char *msg)
{
    char line[4096];
    int n = vs_log_format_line(line, sizeof(line), level, component, msg);
    if (n <= 0)
        return;
    /* One write per line; a short write to stderr is not worth retrying. */
    ssize_t rc = write(STDERR_FILENO, line, (size_t)n);
    (void)rc;
}

void vs_log_vwrite(enum vs_log_level level, const char *component, const char *fmt, va_list ap)
{
    char msg[3072];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (sink_fn)
        sink_fn(sink_ctx, level, component, msg);
    else
        default_sink(level, component, msg);
}

void vs_log_write(enum vs_log_level level, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vs_log_vwrite(level, component, fmt, ap);
    va_end(ap);
}
