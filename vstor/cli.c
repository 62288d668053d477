/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cli.c -- command dispatch, option parsing and generated help.
 *
 * Parsing order for `vstor WORDS... [options] [args]`:
 *   1. find the command by the longest matching prefix of words;
 *   2. scan the rest: --help, --config PATH, command options, config keys
 *      (as --key value or --key=value), `--` ends options, the rest are args;
 *   3. load the config file, then apply the flags on top (flags win);
 *   4. check required options and the argument count, then run.
 */
#include "cli.h"

#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define DEFAULT_CONFIG_PATH "/etc/vstor/vstor.conf"

static unsigned name_words(const char *name, char words[][32], unsigned max)
{
    unsigned n = 0;
    const char *p = name;
    while (*p && n < max) {
        const char *sp = strchr(p, ' ');
        size_t len = sp ? (size_t)(sp - p) : strlen(p);
        snprintf(words[n], 32, "%.*s", (int)len, p);
        n++;
        p += len;
        while (*p == ' ')
            p++;
    }
    return n;
}

/* Returns the command whose words match argv[0..]; *used gets the word count. */
static const struct vs_cmd *find_command(int argc, char **argv, int *used)
{
    const struct vs_cmd *best = NULL;
    unsigned best_len = 0;
    for (unsigned i = 0; i < vs_command_count; i++) {
        char words[4][32];
        unsigned n = name_words(vs_commands[i].name, words, 4);
        if ((int)n > argc || n <= best_len)
            continue;
        unsigned j = 0;
        while (j < n && strcmp(words[j], argv[j]) == 0)
            j++;
        if (j == n) {
            best = &vs_commands[i];
            best_len = n;
        }
    }
    *used = (int)best_len;
    return best;
}

static bool is_group_prefix(const char *word)
{
    size_t len = strlen(word);
    for (unsigned i = 0; i < vs_command_count; i++)
        if (strncmp(vs_commands[i].name, word, len) == 0 && vs_commands[i].name[len] == ' ')
            return true;
    return false;
}

static void print_main_usage(FILE *f)
{
    fprintf(f, "usage: vstor COMMAND [options] [args]\n\n"
               "vstor is a distributed block storage system. Commands:\n");
    for (unsigned i = 0; i < vs_command_count; i++)
        fprintf(f, "  %-22s %s\n", vs_commands[i].name, vs_commands[i].summary);
    fprintf(f, "\nRun 'vstor COMMAND --help' for the options of one command.\n"
               "Every command accepts --config PATH (default " DEFAULT_CONFIG_PATH
               ") and --log-level LEVEL.\n");
}

static void print_group_usage(FILE *f, const char *group)
{
    size_t len = strlen(group);
    fprintf(f, "usage: vstor %s SUBCOMMAND [options]\n\nSubcommands:\n", group);
    for (unsigned i = 0; i < vs_command_count; i++)
        if (strncmp(vs_commands[i].name, group, len) == 0 && vs_commands[i].name[len] == ' ')
            fprintf(f, "  %-22s %s\n", vs_commands[i].name, vs_commands[i].summary);
}

static void print_key_help(FILE *f, const struct vs_cfg_key *k)
{
    static const char *const metavar[] = {
        [VS_CFG_STR] = "STR", [VS_CFG_U64] = "N",     [VS_CFG_SIZE] = "SIZE",
        [VS_CFG_BOOL] = "BOOL", [VS_CFG_LIST] = "LIST", [VS_CFG_MS] = "TIME",
    };
    char flag[64];
    snprintf(flag, sizeof(flag), "--%s %s", k->name, metavar[k->type]);
    fprintf(f, "  %-30s %s", flag, k->help);
    if (k->def)
        fprintf(f, " (default: %s)", k->def);
    fputc('\n', f);
}

static void print_command_help(FILE *f, const struct vs_cmd *c)
{
    fprintf(f, "usage: vstor %s [options]%s%s\n\n%s\n", c->name, c->args ? " " : "",
            c->args ? c->args : "", c->summary);
    if (c->help)
        fprintf(f, "\n%s\n", c->help);
    if (c->opts && c->opts[0].name) {
        fprintf(f, "\nOptions:\n");
        for (const struct vs_cmd_opt *o = c->opts; o->name; o++) {
            char flag[64];
            snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar ? " " : "",
                     o->metavar ? o->metavar : "");
            fprintf(f, "  %-30s %s%s\n", flag, o->help, o->required ? " (required)" : "");
        }
    }
    fprintf(f, "\nConfiguration keys (config file or --key value):\n");
    fprintf(f, "  %-30s %s\n", "--config PATH", "config file (default " DEFAULT_CONFIG_PATH ")");
    unsigned scopes = c->scopes | VS_SCOPE_GLOBAL;
    for (unsigned i = 0; i < vs_config_key_count; i++)
        if (vs_config_keys[i].scopes & scopes)
            print_key_help(f, &vs_config_keys[i]);
}

static int find_cmd_opt(const struct vs_cmd *c, const char *name)
{
    if (!c->opts)
        return -1;
    for (int i = 0; c->opts[i].name; i++) {
        const char *a = c->opts[i].name, *b = name;
        while (*a && *b && (*a == *b || ((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))) {
            a++;
            b++;
        }
        if (!*a && !*b)
            return i;
    }
    return -1;
}

struct pending_flag {
    const char *key;
    const char *value;
};

/* Splits "--name=value" or "--name value"; returns the value or NULL. */
static const char *flag_value(char *arg, int *i, int argc, char **argv, bool takes_value)
{
    char *eq = strchr(arg, '=');
    if (eq) {
        *eq = 0;
        return eq + 1;
    }
    if (!takes_value)
        return NULL;
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vstor%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nRun 'vstor%s%s --help' for usage.\n", cmd ? " " : "", cmd ? cmd : "");
    va_end(ap);
    return VS_EXIT_USAGE;
}

static int parse_args(struct vs_cmd_ctx *ctx, int argc, char **argv, const char **config_path,
                      struct pending_flag *flags, int *nflags, bool *want_help)
{
    const struct vs_cmd *c = ctx->cmd;
    bool options_done = false;
    for (int i = 0; i < argc; i++) {
        char *arg = argv[i];
        if (options_done || arg[0] != '-' || arg[1] != '-' || arg[2] == 0) {
            if (!options_done && strcmp(arg, "--") == 0) {
                options_done = true;
                continue;
            }
            if (arg[0] == '-' && arg[1] != 0 && !options_done && strcmp(arg, "-") != 0)
                return usage_error(c->name, "unknown option '%s'", arg);
            if (ctx->argc >= VS_CMD_ARGS_MAX)
                return usage_error(c->name, "too many arguments");
            ctx->argv[ctx->argc++] = arg;
            continue;
        }
        char *name = arg + 2;
        if (strcmp(name, "help") == 0) {
            *want_help = true;
            continue;
        }
        char bare[128]; /* the name without "=value" */
        snprintf(bare, sizeof(bare), "%.*s", (int)strcspn(name, "="), name);
        int oi = find_cmd_opt(c, bare);
        bool is_config = strcmp(bare, "config") == 0;
        bool takes_value = is_config || oi < 0 || c->opts[oi].metavar != NULL;
        const char *value = flag_value(name, &i, argc, argv, takes_value);
        if (takes_value && !value)
            return usage_error(c->name, "option '--%s' needs a value", name);
        if (is_config) {
            *config_path = value;
        } else if (oi >= 0) {
            if (!c->opts[oi].metavar && value)
                return usage_error(c->name, "option '--%s' takes no value", name);
            ctx->opt_value[oi] = value;
            ctx->opt_given[oi] = true;
        } else {
            int ki = vs_config_find(name);
            unsigned scopes = c->scopes | VS_SCOPE_GLOBAL;
            if (ki < 0 || !(vs_config_keys[ki].scopes & scopes))
                return usage_error(c->name, "unknown option '--%s'", name);
            flags[(*nflags)++] = (struct pending_flag){name, value};
        }
    }
    return 0;
}

static int load_config(struct vs_cmd_ctx *ctx, const char *config_path,
                       const struct pending_flag *flags, int nflags)
{
    char err[VS_ERRMSG_SIZE + 256];
    vs_config_init(&ctx->cfg);
    bool required = config_path != NULL;
    if (!config_path)
        config_path = getenv("VSTOR_CONFIG") ? getenv("VSTOR_CONFIG") : DEFAULT_CONFIG_PATH;
    if (vs_config_load_file(&ctx->cfg, config_path, required, err, sizeof(err)) < 0) {
        fprintf(stderr, "vstor %s: %s\n", ctx->cmd->name, err);
        return VS_EXIT_USAGE;
    }
    for (int i = 0; i < nflags; i++) {
        if (vs_config_set(&ctx->cfg, flags[i].key, flags[i].value, VS_CFG_SRC_FLAG, err,
                          sizeof(err)) < 0)
            return usage_error(ctx->cmd->name, "%s", err);
    }
    enum vs_log_level level;
    if (vs_log_level_parse(ctx->cfg.log_level, &level) == 0)
        vs_log_set_level(level);
    return 0;
}

static int check_required(const struct vs_cmd_ctx *ctx)
{
    const struct vs_cmd *c = ctx->cmd;
    for (int i = 0; c->opts && c->opts[i].name; i++)
        if (c->opts[i].required && !ctx->opt_given[i])
            return usage_error(c->name, "missing required option --%s", c->opts[i].name);
    if (ctx->argc < c->min_args)
        return usage_error(c->name, "expected %s", c->args ? c->args : "more arguments");
    if (c->max_args >= 0 && ctx->argc > c->max_args)
        return usage_error(c->name, "unexpected argument '%s'", ctx->argv[c->max_args]);
    return 0;
}

static int run_command(const struct vs_cmd *c, int argc, char **argv)
{
    static struct vs_cmd_ctx ctx; /* static: large, and lives for the whole process */
    struct pending_flag flags[VS_CMD_ARGS_MAX * 2];
    int nflags = 0;
    const char *config_path = NULL;
    bool want_help = false;
    memset(&ctx, 0, sizeof(ctx));
    ctx.cmd = c;
    if (argc > (int)VS_ARRAY_SIZE(flags))
        return usage_error(c->name, "too many arguments");
    int rc = parse_args(&ctx, argc, argv, &config_path, flags, &nflags, &want_help);
    if (rc)
        return rc;
    if (want_help) {
        print_command_help(stdout, c);
        return VS_EXIT_OK;
    }
    rc = load_config(&ctx, config_path, flags, nflags);
    if (rc == 0)
        rc = check_required(&ctx);
    if (rc == 0)
        rc = c->run(&ctx);
    vs_config_free(&ctx.cfg);
    return rc;
}

/* A child of `vstor serve` dies with its supervisor, so a killed supervisor
 * never leaves OSDs running that a restarted one would start twice. */
static void follow_supervisor(void)
{
    const char *pid = getenv("VSTOR_SUPERVISOR_PID");
    if (pid && strtol(pid, NULL, 10) == (long)getppid())
        prctl(PR_SET_PDEATHSIG, SIGTERM);
}

const struct vs_cmd *vs_cli_find(const char *name)
{
    for (unsigned i = 0; i < vs_command_count; i++)
        if (strcmp(vs_commands[i].name, name) == 0)
            return &vs_commands[i];
    return NULL;
}

int vs_cli_main(int argc, char **argv)
{
    follow_supervisor();
    if (argc < 2) {
        print_main_usage(stderr);
        return VS_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        print_main_usage(stdout);
        return VS_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0)
        argv[1] = (char *)"version";
    int used;
    const struct vs_cmd *c = find_command(argc - 1, argv + 1, &used);
    if (!c) {
        if (is_group_prefix(argv[1])) {
            bool help = argc > 2 && strcmp(argv[2], "--help") == 0;
            print_group_usage(help ? stdout : stderr, argv[1]);
            if (!help && argc > 2)
                fprintf(stderr, "\nvstor %s: unknown subcommand '%s'\n", argv[1], argv[2]);
            return help ? VS_EXIT_OK : VS_EXIT_USAGE;
        }
        fprintf(stderr, "vstor: unknown command '%s'\n\n", argv[1]);
        print_main_usage(stderr);
        return VS_EXIT_USAGE;
    }
    return run_command(c, argc - 1 - used, argv + 1 + used);
}

const char *vs_cmd_opt(const struct vs_cmd_ctx *ctx, const char *name)
{
    int i = find_cmd_opt(ctx->cmd, name);
    VS_ASSERTF(i >= 0, "command '%s' has no option '%s'", ctx->cmd->name, name);
    return ctx->opt_value[i];
}

bool vs_cmd_flag(const struct vs_cmd_ctx *ctx, const char *name)
{
    int i = find_cmd_opt(ctx->cmd, name);
    VS_ASSERTF(i >= 0, "command '%s' has no option '%s'", ctx->cmd->name, name);
    return ctx->opt_given[i];
}

static int opt_number(const struct vs_cmd_ctx *ctx, const char *name, uint64_t *out,
                      int (*parse)(const char *, uint64_t *), const char *what)
{
    const char *v = vs_cmd_opt(ctx, name);
    if (!v)
        return 0;
    if (parse(v, out) < 0) {
        usage_error(ctx->cmd->name, "--%s: '%s' is not %s", name, v, what);
        return VS_EUSAGE;
    }
    return 0;
}

int vs_cmd_opt_size(const struct vs_cmd_ctx *ctx, const char *name, uint64_t *out)
{
    return opt_number(ctx, name, out, vs_parse_size, "a size such as 4096, 128k, 2G");
}

int vs_cmd_opt_u64(const struct vs_cmd_ctx *ctx, const char *name, uint64_t *out)
{
    return opt_number(ctx, name, out, vs_parse_u64, "a non-negative integer");
}

void vs_cmd_error(const struct vs_cmd_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vstor %s: ", ctx->cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
