/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * nbd_kernel.h -- attaching a socket to the Linux nbd driver (/dev/nbdN), for
 * `vstor map` and `vstor unmap`.
 *
 * The kernel is configured through the "nbd" generic netlink family
 * (NBD_CMD_CONNECT / NBD_CMD_DISCONNECT, libnl-genl), which can pick a free
 * device itself and needs no process blocked in an ioctl. When the family is
 * missing (kernels before 4.12), the ioctl interface is used instead: a
 * child process configures /dev/nbdN (NBD_SET_SOCK, _BLKSIZE, _SIZE, _FLAGS,
 * _TIMEOUT) and stays blocked in NBD_DO_IT for the device's lifetime --
 * configuring in the same process that calls NBD_DO_IT, as the driver
 * expects.
 *
 * The serving side is the ordinary NBD server (nbd_server.h), which adopts
 * the other end of the socket pair in the transmission phase.
 *
 * Timeouts (docs/nbd.md): requests never time out by default (timeout 0),
 * so a slow or restarting cluster pauses I/O instead of failing it -- the
 * XFS corruption that Vitastor's users met after NBD timeouts (reference
 * §10.8) comes from the kernel failing I/O on timeout.
 *
 * Threading: blocking calls, made before or outside the event loop.
 * Errors: negative errno with err filled in a sentence a user can act on.
 */
#ifndef VSTOR_NBD_KERNEL_H
#define VSTOR_NBD_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Is the nbd driver present? Checks /sys/module/nbd and the generic netlink
 * family, and if neither is there and modprobe exists, runs `modprobe nbd`
 * once. Returns 0, or -ENOENT with err saying the module is not loaded and
 * what to do instead. `sysfs_root` is "/sys" (tests point it elsewhere). */
int vs_nbd_kernel_probe(const char *sysfs_root, char *err, size_t err_size);

/* Parses "/dev/nbd3", "nbd3" or "3" into 3. Returns 0 or -EINVAL. */
int vs_nbd_kernel_parse_device(const char *s, int *index);

struct vs_nbd_kernel_conn {
    int index;           /* in: device to use, -1 for any free one; out: the device */
    uint64_t size_bytes; /* a multiple of block_size */
    uint32_t block_size; /* 512, 1024, 2048 or 4096 */
    uint16_t tx_flags;   /* the export's transmission flags */
    uint32_t timeout_s;  /* per-request timeout; 0 = never */
    int sock_fd;         /* the kernel's end of a connected socket pair */
    bool used_netlink;   /* out */
    pid_t ioctl_child;   /* out: the NBD_DO_IT process in ioctl mode, else 0 */
};

/* Connects kc->sock_fd to a device. The caller closes its copy of sock_fd
 * afterwards (the kernel, or the ioctl child, holds its own). */
int vs_nbd_kernel_connect(struct vs_nbd_kernel_conn *kc, char *err, size_t err_size);

/* Disconnects /dev/nbd<index>: the kernel sends NBD_CMD_DISC and closes the
 * socket, which ends the serving process. */
int vs_nbd_kernel_disconnect(int index, char *err, size_t err_size);

#endif /* VSTOR_NBD_KERNEL_H */
