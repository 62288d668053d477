/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli.h -- `vstor <command> [options] [args]`: the command table, option
 * parsing and help.
 *
 * A command is one row of vs_commands[] (cmd_table.c). Its name may have
 * several words ("disk format", "meta get"); dispatch picks the longest name
 * that matches the leading words of argv. Every command gets --help, and its
 * help text lists its own options and the config keys of its scopes.
 *
 * Exit codes: 0 success, 1 failure at run time, 2 usage or configuration
 * error (unknown command or flag, bad config), as in most Unix tools.
 */
#ifndef VSTOR_CLI_H
#define VSTOR_CLI_H

#include "config.h"

#include <stdbool.h>
#include <stdint.h>

#define VS_EXIT_OK 0
#define VS_EXIT_FAIL 1
#define VS_EXIT_USAGE 2

#define VS_CMD_OPTS_MAX 32
#define VS_CMD_ARGS_MAX 32

/* A command-specific option (not a config key). metavar NULL means a boolean
 * flag that takes no value. */
struct vs_cmd_opt {
    const char *name;
    const char *metavar;
    const char *help;
    bool required;
};

struct vs_cmd_ctx;

struct vs_cmd {
    const char *name;    /* "version", "disk format" */
    const char *args;    /* positional synopsis, e.g. "KEY [VALUE]", or NULL */
    const char *summary; /* one line for `vstor --help` */
    const char *help;    /* paragraph(s) for `vstor CMD --help`, or NULL */
    unsigned scopes;     /* config key scopes (VS_SCOPE_*) the command reads */
    const struct vs_cmd_opt *opts; /* terminated by {NULL}; may be NULL */
    int min_args, max_args;        /* positional argument count bounds */
    int (*run)(struct vs_cmd_ctx *ctx);
};

struct vs_cmd_ctx {
    const struct vs_cmd *cmd;
    struct vs_config cfg;
    const char *opt_value[VS_CMD_OPTS_MAX]; /* by index in cmd->opts; NULL if unset */
    bool opt_given[VS_CMD_OPTS_MAX];
    int argc;                   /* positional arguments */
    char *argv[VS_CMD_ARGS_MAX];
};

extern const struct vs_cmd vs_commands[];
extern const unsigned vs_command_count;

/* The command named exactly `name` ("osd", "disk format"), or NULL. */
const struct vs_cmd *vs_cli_find(const char *name);

/* Entry point: parses argv, loads config, runs the command. Returns an exit code. */
int vs_cli_main(int argc, char **argv);

/* Option accessors for command implementations. Names are as in cmd->opts. */
const char *vs_cmd_opt(const struct vs_cmd_ctx *ctx, const char *name);
bool vs_cmd_flag(const struct vs_cmd_ctx *ctx, const char *name);
/* Parse an option as a size or an integer; a missing option leaves *out and
 * returns 0; a malformed one prints an error and returns VS_EUSAGE. */
int vs_cmd_opt_size(const struct vs_cmd_ctx *ctx, const char *name, uint64_t *out);
int vs_cmd_opt_u64(const struct vs_cmd_ctx *ctx, const char *name, uint64_t *out);

/* Prints "vstor CMD: message" to stderr, for failures inside commands. */
void vs_cmd_error(const struct vs_cmd_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* VSTOR_CLI_H */
