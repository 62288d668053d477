/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_log.h -- leveled logging with a pluggable sink, shared by the libraries
 * and the binary (in the manner of SQLITE_CONFIG_LOG).
 *
 * A line reads:  2026-11-28T08:21:11.123456Z INFO  osd.3 store: journal replayed
 *                (timestamp, level, process tag, component tag, message)
 *
 * The default sink writes whole lines to stderr with one write(2), so lines
 * from child processes sharing a terminal never interleave mid-line. Tests
 * install their own sink with vs_log_set_sink() to capture lines.
 *
 * Not thread-safe to configure; safe to log from one thread per process (the
 * vstor model). Level checks are a load and a compare, so disabled debug
 * logging costs nothing on the data path.
 */
#ifndef VS_LOG_H
#define VS_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum vs_log_level {
    VS_LOG_ERROR = 0,
    VS_LOG_WARN = 1,
    VS_LOG_INFO = 2,
    VS_LOG_DEBUG = 3,
    VS_LOG_TRACE = 4,
};

/* A sink receives one formatted message (no trailing newline). */
typedef void (*vs_log_sink_fn)(void *ctx, enum vs_log_level level, const char *component,
                               const char *msg);

extern enum vs_log_level vs_log_level_current;

void vs_log_set_level(enum vs_log_level level);
/* Sets the process tag printed on every line ("osd.3", "mon.1"); copied. */
void vs_log_set_process(const char *tag);
/* NULL sink restores the default stderr sink. */
void vs_log_set_sink(vs_log_sink_fn fn, void *ctx);

/* Parses "error|warn|info|debug|trace"; returns 0 or -EINVAL. */
int vs_log_level_parse(const char *s, enum vs_log_level *out);
const char *vs_log_level_name(enum vs_log_level level);

void vs_log_write(enum vs_log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void vs_log_vwrite(enum vs_log_level level, const char *component, const char *fmt,
                   va_list ap) __attribute__((format(printf, 3, 0)));

/* Formats one line exactly as the default sink does; for custom sinks. */
int vs_log_format_line(char *buf, unsigned long size, enum vs_log_level level,
                       const char *component, const char *msg);

#define VS_LOG(level, component, ...)                                                    \
    do {                                                                                 \
        if ((level) <= vs_log_level_current)                                             \
            vs_log_write((level), (component), __VA_ARGS__);                             \
    } while (0)

#define VS_ERROR(c, ...) VS_LOG(VS_LOG_ERROR, c, __VA_ARGS__)
#define VS_WARN(c, ...) VS_LOG(VS_LOG_WARN, c, __VA_ARGS__)
#define VS_INFO(c, ...) VS_LOG(VS_LOG_INFO, c, __VA_ARGS__)
#define VS_DEBUG_LOG(c, ...) VS_LOG(VS_LOG_DEBUG, c, __VA_ARGS__)
#define VS_TRACE(c, ...) VS_LOG(VS_LOG_TRACE, c, __VA_ARGS__)

#endif /* VS_LOG_H */
