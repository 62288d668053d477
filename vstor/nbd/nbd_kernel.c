/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_kernel.c -- the Linux nbd driver: probe, connect and disconnect, by
 * generic netlink with an ioctl fallback (nbd_kernel.h).
 *
 * This machine has no nbd module, so only the probe and the argument
 * handling run in our tests; the netlink and ioctl sequences follow the
 * kernel's uapi (linux/nbd.h, linux/nbd-netlink.h) and drivers/block/nbd.c.
 */
#include "nbd_kernel.h"

#include "vs_assert.h"
#include "vs_log.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nbd-netlink.h>
#include <linux/nbd.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* ---- Probe -------------------------------------------------------------- */

/* The generic netlink family id of "nbd", or a negative libnl error. */
static int genl_family(struct nl_sock **out)
{
    struct nl_sock *sk = nl_socket_alloc();
    if (!sk)
        return -NLE_NOMEM;
    int rc = genl_connect(sk);
    if (rc == 0)
        rc = genl_ctrl_resolve(sk, NBD_GENL_FAMILY_NAME);
    if (rc < 0 || !out)
        nl_socket_free(sk);
    else
        *out = sk;
    return rc;
}

static bool module_present(const char *sysfs_root)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/module/nbd", sysfs_root);
    if (access(path, F_OK) == 0)
        return true;
    return genl_family(NULL) >= 0;
}

static const char *find_modprobe(void)
{
    static const char *const paths[] = {"/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe",
                                        "/bin/modprobe"};
    for (size_t i = 0; i < VS_ARRAY_SIZE(paths); i++)
        if (access(paths[i], X_OK) == 0)
            return paths[i];
    return NULL;
}

/* Runs `modprobe nbd`; returns its exit status, or -errno. */
static int run_modprobe(const char *modprobe)
{
    char *argv[] = {(char *)modprobe, (char *)"nbd", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, modprobe, NULL, NULL, argv, environ);
    if (rc != 0)
        return -rc;
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int vs_nbd_kernel_probe(const char *sysfs_root, char *err, size_t err_size)
{
    if (module_present(sysfs_root))
        return 0;
    const char *modprobe = find_modprobe();
    char tried[96];
    if (!modprobe) {
        snprintf(tried, sizeof(tried), "modprobe is not installed");
    } else {
        int st = run_modprobe(modprobe);
        if (st == 0 && module_present(sysfs_root))
            return 0;
        if (st < 0)
            snprintf(tried, sizeof(tried), "running modprobe failed: %s", strerror(-st));
        else
            snprintf(tried, sizeof(tried), "`modprobe nbd` exited with status %d", st);
    }
    snprintf(err, err_size,
             "the nbd kernel module is not loaded (no %s/module/nbd, no \"nbd\" generic "
             "netlink family; %s), so no /dev/nbdN device can be attached on this machine. "
             "Load it with `modprobe nbd` on a kernel that has it, or serve the data to "
             "userspace clients (qemu, nbdcopy, fio) with `vstor nbd-export`",
             sysfs_root, tried);
    return -ENOENT;
}

int vs_nbd_kernel_parse_device(const char *s, int *index)
{
    if (strncmp(s, "/dev/", 5) == 0)
        s += 5;
    if (strncmp(s, "nbd", 3) == 0)
        s += 3;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < 0 || v > 65535 || (s[0] == '0' && s[1] != 0))
        return -EINVAL;
    *index = (int)v;
    return 0;
}

/* ---- Netlink ------------------------------------------------------------ */

static int connect_reply_cb(struct nl_msg *msg, void *arg)
{
    int *index = arg;
    struct genlmsghdr *g = nlmsg_data(nlmsg_hdr(msg));
    struct nlattr *tb[NBD_ATTR_MAX + 1];
    if (nla_parse(tb, NBD_ATTR_MAX, genlmsg_attrdata(g, 0), genlmsg_attrlen(g, 0), NULL) == 0 &&
        tb[NBD_ATTR_INDEX])
        *index = (int)nla_get_u32(tb[NBD_ATTR_INDEX]);
    return NL_OK;
}

static int nl_put_connect(struct nl_msg *msg, const struct vs_nbd_kernel_conn *kc)
{
    int rc = 0;
    if (kc->index >= 0)
        rc |= nla_put_u32(msg, NBD_ATTR_INDEX, (uint32_t)kc->index);
    rc |= nla_put_u64(msg, NBD_ATTR_SIZE_BYTES, kc->size_bytes);
    rc |= nla_put_u64(msg, NBD_ATTR_BLOCK_SIZE_BYTES, kc->block_size);
    rc |= nla_put_u64(msg, NBD_ATTR_SERVER_FLAGS, kc->tx_flags);
    rc |= nla_put_u64(msg, NBD_ATTR_TIMEOUT, kc->timeout_s);
    struct nlattr *socks = nla_nest_start(msg, NBD_ATTR_SOCKETS);
    struct nlattr *item = socks ? nla_nest_start(msg, NBD_SOCK_ITEM) : NULL;
    if (!item)
        return -NLE_NOMEM;
    rc |= nla_put_u32(msg, NBD_SOCK_FD, (uint32_t)kc->sock_fd);
    nla_nest_end(msg, item);
    nla_nest_end(msg, socks);
    return rc ? -NLE_NOMEM : 0;
}

/* Sends one NBD_CMD_* request; returns 0, a negative libnl error, or
 * -NLE_OBJ_NOTFOUND when the family is missing. */
static int nl_request(uint8_t cmd, const struct vs_nbd_kernel_conn *kc, int index, int *index_out)
{
    struct nl_sock *sk;
    int family = genl_family(&sk);
    if (family < 0)
        return family;
    struct nl_msg *msg = nlmsg_alloc();
    int rc = -NLE_NOMEM;
    if (msg && genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, cmd, 0)) {
        rc = kc ? nl_put_connect(msg, kc) : nla_put_u32(msg, NBD_ATTR_INDEX, (uint32_t)index);
        if (rc == 0 && index_out)
            nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, connect_reply_cb, index_out);
        if (rc == 0) {
            rc = nl_send_sync(sk, msg); /* frees msg */
            msg = NULL;
        }
    }
    nlmsg_free(msg);
    nl_socket_free(sk);
    return rc;
}

/* ---- ioctl fallback ----------------------------------------------------- */

/* The first /dev/nbdN with no socket attached (no pid file in sysfs). */
static int find_free_device(void)
{
    for (int i = 0; i < 1024; i++) {
        char path[64];
        snprintf(path, sizeof(path), "/sys/block/nbd%d", i);
        if (access(path, F_OK) != 0)
            return -ENODEV;
        snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", i);
        if (access(path, F_OK) != 0)
            return i;
    }
    return -ENODEV;
}

/* In the child: configure and serve until disconnected. Never returns. */
static void ioctl_child(const struct vs_nbd_kernel_conn *kc, int status_fd)
{
    char dev[32];
    snprintf(dev, sizeof(dev), "/dev/nbd%d", kc->index);
    int err = 0;
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, NBD_SET_SOCK, kc->sock_fd) < 0 ||
        ioctl(fd, NBD_SET_BLKSIZE, (unsigned long)kc->block_size) < 0 ||
        ioctl(fd, NBD_SET_SIZE, (unsigned long)kc->size_bytes) < 0 ||
        ioctl(fd, NBD_SET_FLAGS, (unsigned long)kc->tx_flags) < 0 ||
        ioctl(fd, NBD_SET_TIMEOUT, (unsigned long)kc->timeout_s) < 0)
        err = errno ? errno : EIO;
    if (write(status_fd, &err, sizeof(err)) != sizeof(err) || err)
        _exit(1);
    close(status_fd);
    ioctl(fd, NBD_DO_IT); /* blocks until NBD_DISCONNECT or the socket dies */
    ioctl(fd, NBD_CLEAR_QUE);
    ioctl(fd, NBD_CLEAR_SOCK);
    _exit(0);
}

static int ioctl_connect(struct vs_nbd_kernel_conn *kc, char *err, size_t err_size)
{
    if (kc->index < 0)
        kc->index = find_free_device();
    if (kc->index < 0) {
        snprintf(err, err_size, "no free /dev/nbdN device (load nbd with nbds_max=N)");
        return -ENODEV;
    }
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -errno;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        ioctl_child(kc, pfd[1]);
    }
    close(pfd[1]);
    int child_err = EIO;
    ssize_t n = pid > 0 ? read(pfd[0], &child_err, sizeof(child_err)) : -1;
    close(pfd[0]);
    if (pid < 0 || n != sizeof(child_err) || child_err != 0) {
        int e = pid < 0 ? errno : (n == sizeof(child_err) ? child_err : EIO);
        snprintf(err, err_size, "/dev/nbd%d: configuring by ioctl: %s", kc->index, strerror(e));
        if (pid > 0)
            waitpid(pid, NULL, 0);
        return -e;
    }
    kc->ioctl_child = pid;
    kc->used_netlink = false;
    return 0;
}

int vs_nbd_kernel_connect(struct vs_nbd_kernel_conn *kc, char *err, size_t err_size)
{
    VS_ASSERT(kc->block_size >= 512 && kc->block_size <= 4096);
    VS_ASSERT(kc->size_bytes % kc->block_size == 0);
    int index = -1;
    int rc = nl_request(NBD_CMD_CONNECT, kc, -1, &index);
    if (rc == 0) {
        kc->used_netlink = true;
        kc->ioctl_child = 0;
        if (index >= 0)
            kc->index = index;
        if (kc->index < 0) {
            snprintf(err, err_size,
                     "nbd netlink connect: the kernel did not say which "
                     "device it used");
            return -EIO;
        }
        return 0;
    }
    if (rc != -NLE_OBJ_NOTFOUND) {
        snprintf(err, err_size, "nbd netlink connect%s: %s",
                 kc->index >= 0 ? " (device busy?)" : "", nl_geterror(rc));
        return -EIO;
    }
    VS_INFO("nbd", "no nbd netlink family; configuring the device by ioctl");
    return ioctl_connect(kc, err, err_size);
}

int vs_nbd_kernel_disconnect(int index, char *err, size_t err_size)
{
    int rc = nl_request(NBD_CMD_DISCONNECT, NULL, index, NULL);
    if (rc == 0)
        return 0;
    if (rc != -NLE_OBJ_NOTFOUND) {
        snprintf(err, err_size, "/dev/nbd%d: netlink disconnect: %s", index, nl_geterror(rc));
        return -EIO;
    }
    char dev[32];
    snprintf(dev, sizeof(dev), "/dev/nbd%d", index);
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0 || ioctl(fd, NBD_DISCONNECT) < 0) {
        int e = errno;
        snprintf(err, err_size, "%s: %s", dev, strerror(e));
        if (fd >= 0)
            close(fd);
        return -e;
    }
    close(fd);
    return 0;
}
