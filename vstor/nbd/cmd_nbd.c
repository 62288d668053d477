/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * cmd_nbd.c -- `vstor nbd-export`, `vstor map` and `vstor unmap`.
 *
 * A backend is chosen by one command option; the table `backends` below maps
 * each option to its open function. libvstor's image backend will be one new
 * file (nbd_image.c with vs_nbd_image_open) plus one row here and one option
 * row in each opts table.
 */
#include "cmd.h"

#include "loop.h"
#include "nbd_file.h"
#include "nbd_image.h"
#include "nbd_kernel.h"
#include "nbd_proto.h"
#include "nbd_server.h"
#include "vs_assert.h"
#include "vs_err.h"
#include "vs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RING_ENTRIES 1024

typedef int (*backend_open_fn)(struct vs_loop *loop, const char *target, bool read_only,
                               const struct vs_config *cfg, struct vs_nbd_backend **out,
                               char *err, size_t err_size);

static int open_file(struct vs_loop *loop, const char *target, bool read_only,
                     const struct vs_config *cfg, struct vs_nbd_backend **out, char *err,
                     size_t err_size)
{
    (void)cfg;
    return vs_nbd_file_open(loop, target, read_only, out, err, err_size);
}

static const struct {
    const char *opt;
    backend_open_fn open;
} backends[] = {
    {"image", vs_nbd_image_open},
    {"file", open_file},
};

const struct vs_cmd_opt vs_nbd_export_opts[] = {
    {"image", "NAME", "serve the vstor image NAME (the cluster from mon_address)", false},
    {"file", "PATH", "serve a local file or block device (developer and test mode)", false},
    {"socket", "PATH", "listen on a unix socket at PATH", false},
    {"bind", "ADDR:PORT", "listen on TCP, e.g. 127.0.0.1:10809 or [::1]:0 (0 = any port)", false},
    {"readonly", NULL, "refuse writes, trims and zeroing (EPERM)", false},
    {"name", "EXPORT", "the export's name (default: the image name, or the file's base name)",
     false},
    {NULL, NULL, NULL, false},
};

const struct vs_cmd_opt vs_nbd_map_opts[] = {
    {"image", "NAME", "attach the vstor image NAME (the cluster from mon_address)", false},
    {"file", "PATH", "serve a local file or block device (developer and test mode)", false},
    {"device", "/dev/nbdN", "the device to use (default: the kernel picks a free one)", false},
    {"readonly", NULL, "map read-only", false},
    {"foreground", NULL, "stay in the foreground (for systemd); logs go to stderr", false},
    {NULL, NULL, NULL, false},
};

/* ---- Shared: backend, server, loop -------------------------------------- */

struct nbd_run {
    struct vs_loop loop;
    struct vs_nbd_backend *be;
    struct vs_nbd_server *srv;
    const char *target; /* what the backend option named */
    bool server_stopping;
    int map_index; /* vstor map: the device, or -1 */
    int ready_fd;  /* vstor map: the parent waiting for "ready", or -1 */
};

/* The one backend option given; prints a usage error when none or several. */
static int pick_backend(struct vs_cmd_ctx *ctx, backend_open_fn *open, const char **target)
{
    int found = 0;
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++) {
        const char *v = vs_cmd_opt(ctx, backends[i].opt);
        if (!v)
            continue;
        found++;
        *open = backends[i].open;
        *target = v;
    }
    if (found == 1)
        return 0;
    vs_cmd_error(ctx, found ? "give only one of --image and --file"
                            : "nothing to serve: give --image NAME (or --file PATH)");
    return VS_EXIT_USAGE;
}

static void server_stopped_cb(void *arg)
{
    struct nbd_run *run = arg;
    run->srv = NULL;
    vs_loop_stop(&run->loop);
}

static void stop_server(struct nbd_run *run)
{
    if (run->server_stopping || !run->srv)
        return;
    run->server_stopping = true;
    vs_nbd_server_shutdown(run->srv, server_stopped_cb, run);
}

static void backend_closed_cb(void *arg)
{
    (void)arg;
}

/* Opens the backend and creates the server. Returns 0 or an exit code. */
static int run_setup(struct vs_cmd_ctx *ctx, struct nbd_run *run, backend_open_fn open,
                     const char *export_name)
{
    char err[VS_ERRMSG_SIZE + 256];
    int rc = vs_loop_init(&run->loop, RING_ENTRIES);
    if (rc == 0)
        rc = vs_loop_busy_poll(&run->loop, (unsigned)ctx->cfg.loop_busy_poll_us);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", run->loop.errmsg);
        return VS_EXIT_FAIL;
    }
    rc = open(&run->loop, run->target, vs_cmd_flag(ctx, "readonly"), &ctx->cfg, &run->be, err,
              sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    struct vs_nbd_server_config cfg = {
        .export_name = export_name,
        .iodepth = (unsigned)ctx->cfg.nbd_iodepth,
        .conn_max = (unsigned)ctx->cfg.nbd_conn_max,
        .buffer_bytes = ctx->cfg.nbd_buffer_size,
        .handshake_timeout_ms = ctx->cfg.nbd_handshake_timeout,
        .reply_spin_us = (unsigned)ctx->cfg.nbd_reply_spin_us,
        .no_structured = !ctx->cfg.nbd_structured_replies,
    };
    rc = vs_nbd_server_create(&run->loop, run->be, &cfg, &run->srv, err, sizeof(err));
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        run->be->ops->close(run->be, backend_closed_cb, NULL);
        run->be = NULL;
        return rc == VS_ECONFIG || rc == VS_EUSAGE ? VS_EXIT_USAGE : VS_EXIT_FAIL;
    }
    return 0;
}

/* Runs the loop until the server has stopped, then closes the loop. */
static int run_loop(struct nbd_run *run, int exit_code)
{
    if (exit_code != 0)
        stop_server(run);
    vs_loop_run(&run->loop);
    if (run->srv) { /* the loop ended early: finish the shutdown */
        stop_server(run);
        run->loop.stopping = false;
        vs_loop_run(&run->loop);
    }
    if (vs_loop_close(&run->loop) < 0 && exit_code == 0)
        exit_code = VS_EXIT_FAIL;
    return exit_code;
}

/* ---- nbd-export --------------------------------------------------------- */

static void export_signal_cb(struct vs_loop *loop, int signum, void *arg)
{
    (void)loop;
    (void)signum;
    stop_server(arg);
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

static int export_listen(struct vs_cmd_ctx *ctx, struct nbd_run *run, const char *name)
{
    char err[VS_ERRMSG_SIZE + 256];
    const char *sock = vs_cmd_opt(ctx, "socket");
    const char *bind = vs_cmd_opt(ctx, "bind");
    if (!sock && !bind)
        bind = "127.0.0.1:10809";
    if (sock) {
        if (vs_nbd_server_listen_unix(run->srv, sock, err, sizeof(err)) < 0) {
            vs_cmd_error(ctx, "%s", err);
            return VS_EXIT_FAIL;
        }
        printf("nbd-export: listening on unix %s  (nbd+unix:///%s?socket=%s)\n", sock, name, sock);
    }
    if (bind) {
        int port = 0;
        int rc = vs_nbd_server_listen_tcp(run->srv, bind, &port, err, sizeof(err));
        if (rc < 0) {
            vs_cmd_error(ctx, "%s", err);
            return rc == VS_EUSAGE ? VS_EXIT_USAGE : VS_EXIT_FAIL;
        }
        const char *colon = strrchr(bind, ':');
        printf("nbd-export: listening on tcp %.*s:%d  (nbd://%.*s:%d/%s)\n", (int)(colon - bind),
               bind, port, (int)(colon - bind), bind, port, name);
    }
    return 0;
}

int vs_cmd_nbd_export(struct vs_cmd_ctx *ctx)
{
    static struct nbd_run run; /* static: lives for the whole process */
    backend_open_fn open;
    memset(&run, 0, sizeof(run));
    run.map_index = -1;
    run.ready_fd = -1;
    int rc = pick_backend(ctx, &open, &run.target);
    if (rc)
        return rc;
    const char *name = vs_cmd_opt(ctx, "name");
    if (!name)
        name = base_name(run.target);
    rc = run_setup(ctx, &run, open, name);
    if (rc)
        return run.be ? run_loop(&run, rc) : rc;
    vs_loop_on_shutdown(&run.loop, export_signal_cb, &run);
    rc = export_listen(ctx, &run, name);
    if (rc == 0) {
        const struct vs_nbd_backend_props *p = &run.be->props;
        printf("nbd-export: serving %s as '%s': %llu bytes, block sizes %u/%u/%u%s\n", run.be->desc,
               name, (unsigned long long)p->size_bytes, p->block_min_bytes, p->block_pref_bytes,
               p->block_max_bytes, p->read_only ? ", read-only" : "");
        fflush(stdout);
    }
    return run_loop(&run, rc);
}

/* ---- map ---------------------------------------------------------------- */

static void map_disconnect(struct nbd_run *run)
{
    char err[VS_ERRMSG_SIZE + 256];
    if (run->map_index < 0)
        return;
    int index = run->map_index;
    run->map_index = -1;
    if (vs_nbd_kernel_disconnect(index, err, sizeof(err)) < 0) {
        VS_ERROR("nbd", "%s", err);
        stop_server(run); /* the kernel keeps its socket; we stop serving anyway */
    }
}

static void map_signal_cb(struct vs_loop *loop, int signum, void *arg)
{
    (void)loop;
    VS_INFO("nbd", "signal %d: unmapping", signum);
    map_disconnect(arg); /* the kernel closes the socket; kernel_closed_cb follows */
}

static void kernel_closed_cb(void *arg)
{
    struct nbd_run *run = arg;
    VS_INFO("nbd", "the kernel closed the device's socket");
    run->map_index = -1;
    stop_server(run);
}

/* Tells the waiting parent how it went, once: "/dev/nbdN", or "" after a
 * "!" after a failure this process has already explained on stderr. On success the
 * daemon lets go of the caller's terminal or pipes. */
static void map_report(struct nbd_run *run, const char *msg)
{
    if (run->ready_fd < 0)
        return;
    ssize_t n = write(run->ready_fd, msg, strlen(msg));
    (void)n;
    close(run->ready_fd);
    run->ready_fd = -1;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (msg[0] == '/' && null >= 0) {
        fflush(stdout);
        dup2(null, STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
    }
    if (null >= 0)
        close(null);
}

static int map_attach(struct vs_cmd_ctx *ctx, struct nbd_run *run, int index)
{
    char err[VS_ERRMSG_SIZE + 256];
    const struct vs_nbd_backend_props *p = &run->be->props;
    uint32_t bs = VS_MAX(512u, p->block_min_bytes);
    if (bs > 4096) {
        vs_cmd_error(ctx, "block size %u is above what the nbd driver takes (4096)", bs);
        return VS_EXIT_FAIL;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        vs_cmd_error(ctx, "socketpair: %s", strerror(errno));
        return VS_EXIT_FAIL;
    }
    struct vs_nbd_kernel_conn kc = {
        .index = index,
        .size_bytes = p->size_bytes / bs * bs,
        .block_size = bs,
        .tx_flags = vs_nbd_server_tx_flags(run->srv),
        .timeout_s = (uint32_t)((ctx->cfg.nbd_timeout + 999) / 1000),
        .sock_fd = sv[1],
    };
    int rc = vs_nbd_kernel_connect(&kc, err, sizeof(err));
    close(sv[1]);
    if (rc == 0)
        rc = vs_nbd_server_adopt_fd(run->srv, sv[0], kernel_closed_cb, run, err, sizeof(err));
    else
        close(sv[0]);
    if (rc < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    run->map_index = kc.index;
    VS_INFO("nbd", "/dev/nbd%d: serving %s (%s)", kc.index, run->be->desc,
            kc.used_netlink ? "netlink" : "ioctl");
    return 0;
}

/* Forks; the parent prints what the child reports and exits. */
static int map_daemonize(struct nbd_run *run)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0) {
        close(pfd[1]);
        char msg[1024];
        ssize_t n = read(pfd[0], msg, sizeof(msg) - 1);
        close(pfd[0]);
        msg[n > 0 ? n : 0] = 0;
        if (strncmp(msg, "/dev/", 5) != 0) {
            if (n <= 0)
                fprintf(stderr, "vstor map: the serving process died before the device "
                                "was ready\n");
            _exit(VS_EXIT_FAIL);
        }
        printf("%s\n", msg);
        _exit(VS_EXIT_OK);
    }
    close(pfd[0]);
    setsid();
    run->ready_fd = pfd[1];
    return 0;
}

int vs_cmd_map(struct vs_cmd_ctx *ctx)
{
    static struct nbd_run run;
    char err[VS_ERRMSG_SIZE + 512];
    backend_open_fn open;
    memset(&run, 0, sizeof(run));
    run.map_index = -1;
    run.ready_fd = -1;
    int rc = pick_backend(ctx, &open, &run.target);
    if (rc)
        return rc;
    int index = -1;
    const char *dev = vs_cmd_opt(ctx, "device");
    if (dev && vs_nbd_kernel_parse_device(dev, &index) < 0) {
        vs_cmd_error(ctx, "--device: '%s' is not an nbd device such as /dev/nbd0", dev);
        return VS_EXIT_USAGE;
    }
    if (vs_nbd_kernel_probe("/sys", err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    if (!vs_cmd_flag(ctx, "foreground") && map_daemonize(&run) < 0) {
        vs_cmd_error(ctx, "fork: %s", strerror(errno));
        return VS_EXIT_FAIL;
    }
    rc = run_setup(ctx, &run, open, base_name(run.target));
    if (rc == 0)
        rc = map_attach(ctx, &run, index);
    if (rc) {
        map_report(&run, "!"); /* the error is already on stderr */
        return run.be ? run_loop(&run, rc) : rc;
    }
    vs_loop_on_shutdown(&run.loop, map_signal_cb, &run);
    char ready[64];
    snprintf(ready, sizeof(ready), "/dev/nbd%d", run.map_index);
    if (vs_cmd_flag(ctx, "foreground")) {
        printf("%s\n", ready);
        fflush(stdout);
    }
    map_report(&run, ready);
    return run_loop(&run, 0);
}

/* ---- unmap -------------------------------------------------------------- */

int vs_cmd_unmap(struct vs_cmd_ctx *ctx)
{
    char err[VS_ERRMSG_SIZE + 512];
    int index;
    if (vs_nbd_kernel_parse_device(ctx->argv[0], &index) < 0) {
        vs_cmd_error(ctx, "'%s' is not an nbd device such as /dev/nbd0", ctx->argv[0]);
        return VS_EXIT_USAGE;
    }
    if (vs_nbd_kernel_probe("/sys", err, sizeof(err)) < 0 ||
        vs_nbd_kernel_disconnect(index, err, sizeof(err)) < 0) {
        vs_cmd_error(ctx, "%s", err);
        return VS_EXIT_FAIL;
    }
    printf("/dev/nbd%d disconnected\n", index);
    return VS_EXIT_OK;
}
