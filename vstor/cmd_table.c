/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_table.c -- every vstor command, one row each. Keep rows sorted by name
 * within their group; a new command family adds its rows and its cmd_*.c.
 */
#include "cmd.h"

static const struct vs_cmd_opt config_opts[] = {
    {"json", NULL, "print the effective configuration as JSON", false},
    {"doc", NULL, "print the table of every key as Markdown (docs/config.md)", false},
    {NULL, NULL, NULL, false},
};

const struct vs_cmd vs_commands[] = {
    {"config", NULL, "show the effective configuration and where each value came from",
     "Reads the config file and flags exactly as every other command does, and prints the\n"
     "result. Useful to check a config file before starting a daemon.",
     ~0u, config_opts, 0, 0, vs_cmd_config},
    {"version", NULL, "print the version of vstor and its libraries", NULL, VS_SCOPE_GLOBAL,
     NULL, 0, 0, vs_cmd_version},
};

const unsigned vs_command_count = sizeof(vs_commands) / sizeof(vs_commands[0]);
