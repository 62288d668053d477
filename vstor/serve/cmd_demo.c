/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_demo.c -- `vstor demo`: a whole cluster on this machine in one command.
 *
 * Everything lives in one directory (default ./vstor-demo):
 *   vstor.conf   the cluster's config (mon address, OSD files); also what
 *                `vstor ls --config DIR/vstor.conf` and friends use
 *   data/        the metadata member's database
 *   osdN.img     one file per OSD, formatted on first use and reused after
 *   nbd.sock     the NBD export's unix socket
 *   demo.log     output of the setup commands
 *
 * The first run formats the OSD files, creates pool `demo` and image `demo`;
 * later runs find them and keep the data. The mon and the OSDs run through
 * the same engine as `vstor serve` (serve.h); the NBD export of image `demo`
 * is an extra child of that engine, on the unix socket and on TCP 127.0.0.1.
 * Ctrl-C stops the export, then the OSDs, then the mon.
 *
 * Setup steps are ordinary vstor commands run as child processes and waited
 * for, before the engine's loop starts: the demo uses the cluster exactly as
 * an operator would.
 */
#include "cmd.h"
#include "serve.h"

#include "vs_err.h"
#include "vs_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEMO_OSDS_MAX 16
#define TMPFS_MAGIC_NUMBER 0x01021994

struct demo {
    char dir[PATH_MAX];
    char conf[PATH_MAX + 16];
    char log[PATH_MAX + 16];
    char sock[PATH_MAX + 16];
    char mon[64];            /* 127.0.0.1:PORT */
    char exe[PATH_MAX];
    unsigned osds;
    uint64_t osd_size, image_size;
    int nbd_port;
    bool local;              /* net_local_dir = dir (the local transport) */
    bool no_direct;          /* the directory is on tmpfs: no O_DIRECT */
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Runs `vstor ARGS...` with its output appended to the demo log; returns its
 * exit status, or -errno if it could not start. */
static int run_vstor(const struct demo *d, const char *const *args)
{
    const char *argv[32] = {d->exe};
    unsigned n = 1;
    for (; args[n - 1] && n < 31; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, d->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, d->exe, &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool port_free(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    return rc == 0;
}

static int first_free_port(int from)
{
    for (int p = from; p < from + 200; p++)
        if (port_free(p))
            return p;
    return -1;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* The mon address of an existing demo (its vstor.conf), or a new one. */
static int pick_mon(struct demo *d, char *err, size_t err_size)
{
    FILE *f = fopen(d->conf, "r");
    if (f) {
        char line[8192] = "";
        size_t n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = 0;
        const char *p = strstr(line, "\"127.0.0.1:");
        if (p && sscanf(p + 1, "%63[0-9.:]", d->mon) == 1)
            return 0;
        snprintf(err, err_size, "%s: no mon address found; remove the directory to start over",
                 d->conf);
        return VS_ECONFIG;
    }
    int port = first_free_port(2390);
    if (port < 0) {
        snprintf(err, err_size, "no free TCP port for the mon near 2390");
        return -EADDRINUSE;
    }
    snprintf(d->mon, sizeof(d->mon), "127.0.0.1:%d", port);
    return 0;
}

/* Writes vstor.conf with the OSD files formatted so far (count of them). */
static int write_conf(const struct demo *d, unsigned formatted, char *err, size_t err_size)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof(tmp), "%s.new", d->conf);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
        return -errno;
    }
    fprintf(f, "{\n  \"mon_address\": [\"%s\"],\n  \"serve_mon_id\": 1,\n", d->mon);
    if (d->local)
        fprintf(f, "  \"net_local_dir\": \"%s\",\n", d->dir);
    fprintf(f, "  \"data_dir\": \"%s/data\",\n  \"osd_devices\": [", d->dir);
    for (unsigned i = 1; i <= formatted; i++)
        fprintf(f, "%s\"%s/osd%u.img\"", i > 1 ? ", " : "", d->dir, i);
    fprintf(f, "]\n}\n");
    if (fclose(f) != 0 || rename(tmp, d->conf) != 0) {
        snprintf(err, err_size, "%s: %s", d->conf, strerror(errno));
        return -errno;
    }
    return 0;
}

static int wait_mon(const struct demo *d, char *err, size_t err_size)
{
    const char *args[] = {"meta", "status", "--mon_address", d->mon, "--meta_timeout", "2s", NULL};
    for (int i = 0; i < 60; i++) {
        if (run_vstor(d, args) == 0)
            return 0;
        sleep_ms(500);
    }
    snprintf(err, err_size, "the metadata service at %s did not start (see %s)", d->mon, d->log);
    return -ETIMEDOUT;
}

/* Formats osdN.img for N up to d->osds where missing; returns how many exist. */
static int format_osds(const struct demo *d, unsigned *count, char *err, size_t err_size)
{
    for (unsigned i = 1; i <= d->osds; i++) {
        char img[PATH_MAX + 16], tmp[PATH_MAX + 32], id[16], size[32];
        snprintf(img, sizeof(img), "%s/osd%u.img", d->dir, i);
        *count = i - 1;
        if (file_exists(img))
            continue;
        snprintf(tmp, sizeof(tmp), "%s.new", img);
        unlink(tmp);
        snprintf(id, sizeof(id), "%u", i);
        snprintf(size, sizeof(size), "%llu", (unsigned long long)d->osd_size);
        int fd = open(tmp, O_CREAT | O_WRONLY | O_TRUNC, 0644);
        if (fd < 0 || ftruncate(fd, (off_t)d->osd_size) != 0) {
            snprintf(err, err_size, "%s: %s", tmp, strerror(errno));
            if (fd >= 0)
                close(fd);
            return -errno;
        }
        close(fd);
        const char *args[] = {"disk", "format", "--osd-id", id, "--mon_address", d->mon,
                              d->no_direct ? "--no-direct" : tmp, d->no_direct ? tmp : NULL,
                              NULL};
        printf("vstor demo: formatting OSD %u (%s, %s bytes)\n", i, img, size);
        fflush(stdout);
        if (run_vstor(d, args) != 0 || rename(tmp, img) != 0) {
            snprintf(err, err_size, "formatting %.1000s failed (see %.1000s)", img, d->log);
            return -EIO;
        }
    }
    *count = d->osds;
    for (unsigned i = d->osds + 1; i <= DEMO_OSDS_MAX; i++) { /* keep OSDs of earlier runs */
        char img[PATH_MAX + 16];
        snprintf(img, sizeof(img), "%s/osd%u.img", d->dir, i);
        if (!file_exists(img))
            break;
        *count = i;
    }
    return 0;
}

/* Creates pool `demo` and image `demo` unless the image exists already. */
static int make_image(const struct demo *d, unsigned osds, char *err, size_t err_size)
{
    const char *info[] = {"info", "demo", "--mon_address", d->mon, NULL};
    if (run_vstor(d, info) == 0)
        return 0;
    char pg_size[8], isize[32];
    snprintf(pg_size, sizeof(pg_size), "%u", osds >= 2 ? 2u : 1u);
    snprintf(isize, sizeof(isize), "%llu", (unsigned long long)d->image_size);
    const char *pool[] = {"pool", "create", "demo", "--scheme", "replicated", "--pg-size",
                          pg_size, "--pg-minsize", "1", "--pg-count", "32", "--failure-domain",
                          "osd", "--mon_address", d->mon, NULL};
    const char *ls[] = {"pool", "ls", "--mon_address", d->mon, NULL};
    if (run_vstor(d, pool) != 0 && run_vstor(d, ls) != 0) {
        snprintf(err, err_size, "creating pool 'demo' failed (see %s)", d->log);
        return -EIO;
    }
    const char *create[] = {"create", "demo", "--size", isize, "--pool", "demo",
                            "--mon_address", d->mon, NULL};
    if (run_vstor(d, create) != 0) {
        snprintf(err, err_size, "creating image 'demo' failed (see %s)", d->log);
        return -EIO;
    }
    return 0;
}

/* The NBD export of image `demo`, as an extra child of the engine. */
#define ARG_SIZE (PATH_MAX + 32)

static void export_spec(const struct demo *d, struct vs_child_spec *spec, char args[][ARG_SIZE])
{
    memset(spec, 0, sizeof(*spec));
    snprintf(spec->name, sizeof(spec->name), "nbd-export");
    snprintf(args[0], ARG_SIZE, "%s", d->exe);
    snprintf(args[1], ARG_SIZE, "nbd-export");
    snprintf(args[2], ARG_SIZE, "--image=demo");
    snprintf(args[3], ARG_SIZE, "--socket=%s", d->sock);
    snprintf(args[4], ARG_SIZE, "--bind=127.0.0.1:%d", d->nbd_port);
    snprintf(args[5], ARG_SIZE, "--config=%s", d->conf);
    for (int i = 0; i < 6; i++)
        spec->argv[i] = args[i];
}

static bool export_ready(const struct demo *d)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, d->sock, strlen(d->sock) + 1); /* length checked by demo_options */
    bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    close(fd);
    return ok;
}

static void print_next_steps(const struct demo *d, unsigned osds)
{
    printf("\nvstor demo is running: 1 mon (%s), %u OSDs, pool 'demo', image 'demo' "
           "(%llu MiB)\n\n",
           d->mon, osds, (unsigned long long)(d->image_size >> 20));
    printf("  NBD over TCP:  nbd://127.0.0.1:%d/demo\n", d->nbd_port);
    printf("  NBD over unix: nbd+unix:///demo?socket=%s\n", d->sock);
    printf("  clients and OSDs on this host: %s\n\n",
           d->local ? "unix sockets in the demo directory (net_local_dir)" : "TCP");
    printf("Try:\n");
    printf("  qemu-io -f raw -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' "
           "nbd://127.0.0.1:%d/demo\n", d->nbd_port);
    printf("  nbdinfo nbd://127.0.0.1:%d/demo\n", d->nbd_port);
    printf("  nbdcopy disk.raw nbd://127.0.0.1:%d/demo\n", d->nbd_port);
    printf("  fio --name=t --ioengine=nbd --uri=nbd://127.0.0.1:%d/demo --rw=randwrite "
           "--bs=4k --size=256M --runtime=10\n", d->nbd_port);
    printf("  vstor ls --config %s\n", d->conf);
    printf("  vstor bench --image demo --config %s\n\n", d->conf);
    printf("Ctrl-C stops the cluster; run the same command again to get it back with its "
           "data.\n");
    fflush(stdout);
}

static int demo_options(struct vs_cmd_ctx *ctx, struct demo *d)
{
    const char *dir = vs_cmd_opt(ctx, "dir");
    uint64_t osds = 3, port = 10809;
    d->osd_size = 2ull << 30;
    d->image_size = 1ull << 30;
    if (vs_cmd_opt_u64(ctx, "osds", &osds) || vs_cmd_opt_size(ctx, "size", &d->osd_size) ||
        vs_cmd_opt_size(ctx, "image-size", &d->image_size) ||
        vs_cmd_opt_u64(ctx, "nbd-port", &port))
        return VS_EXIT_USAGE;
    if (osds < 1 || osds > DEMO_OSDS_MAX || d->osd_size < (256ull << 20) ||
        d->image_size < (1ull << 20) || d->image_size % 4096 || port < 1 || port > 65535) {
        vs_cmd_error(ctx, "need 1 to %d OSDs of at least 256M, an image of at least 1M (a "
                     "multiple of 4 KiB), and a port from 1 to 65535", DEMO_OSDS_MAX);
        return VS_EXIT_USAGE;
    }
    d->osds = (unsigned)osds;
    mkdir(dir ? dir : "vstor-demo", 0755);
    if (!realpath(dir ? dir : "vstor-demo", d->dir)) {
        vs_cmd_error(ctx, "%s: %s", dir ? dir : "vstor-demo", strerror(errno));
        return VS_EXIT_FAIL;
    }
    struct statfs sf;
    d->no_direct = statfs(d->dir, &sf) == 0 && sf.f_type == TMPFS_MAGIC_NUMBER;
    snprintf(d->conf, sizeof(d->conf), "%s/vstor.conf", d->dir);
    snprintf(d->log, sizeof(d->log), "%s/demo.log", d->dir);
    snprintf(d->sock, sizeof(d->sock), "%s/nbd.sock", d->dir);
    if (strlen(d->sock) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
        vs_cmd_error(ctx, "%s: the path is too long for a unix socket; use a shorter --dir",
                     d->sock);
        return VS_EXIT_USAGE;
    }
    /* The local transport when its socket paths fit (net.h, VS_NET_LOCAL_PATH_MAX). */
    d->local = !vs_cmd_flag(ctx, "tcp-only") && strlen(d->dir) < 70;
    d->nbd_port = first_free_port((int)port);
    if (d->nbd_port < 0) {
        vs_cmd_error(ctx, "no free TCP port for NBD near %llu", (unsigned long long)port);
        return VS_EXIT_FAIL;
    }
    return 0;
}

/* Everything before the engine's loop: mon, OSD files, pool, image, export. */
static int demo_setup(struct demo *d, struct vs_serve *s, char *err, size_t err_size)
{
    static char export_args[6][ARG_SIZE];
    struct vs_child_spec exp;
    unsigned formatted = 0;
    int rc = vs_serve_apply(s, err, err_size); /* the mon */
    if (rc == 0)
        rc = wait_mon(d, err, err_size);
    if (rc == 0)
        rc = format_osds(d, &formatted, err, err_size);
    if (rc == 0)
        rc = write_conf(d, formatted, err, err_size);
    if (rc == 0)
        rc = vs_serve_reload(s, err, err_size); /* the OSDs */
    if (rc == 0)
        rc = make_image(d, formatted, err, err_size);
    if (rc < 0)
        return rc;
    export_spec(d, &exp, export_args);
    vs_serve_set_extras(s, &exp, 1);
    rc = vs_serve_apply(s, err, err_size);
    for (int i = 0; rc == 0 && !export_ready(d); i++) {
        if (i == 600) {
            snprintf(err, err_size, "the NBD export did not start");
            return -ETIMEDOUT;
        }
        sleep_ms(100);
    }
    if (rc == 0)
        print_next_steps(d, formatted);
    return rc;
}

int vs_cmd_demo(struct vs_cmd_ctx *ctx)
{
    static struct demo d;
    char err[VS_ERRMSG_SIZE + PATH_MAX];
    memset(&d, 0, sizeof(d));
    int rc = demo_options(ctx, &d);
    if (rc)
        return rc;
    vs_log_set_process("demo");
    if (pick_mon(&d, err, sizeof(err)) < 0 || write_conf(&d, 0, err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    struct vs_serve *s;
    if (vs_serve_init(&s, ctx, d.conf, err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    snprintf(d.exe, sizeof(d.exe), "%s", vs_serve_exe(s));
    printf("vstor demo: starting in %s\n", d.dir);
    fflush(stdout);
    rc = demo_setup(&d, s, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        vs_serve_stop(s);
        vs_serve_run(s);
        return VS_EXIT_FAIL;
    }
    return vs_serve_run(s);
}
