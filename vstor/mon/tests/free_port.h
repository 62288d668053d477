/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * free_port.h -- a loopback port for a test's metadata member: below the
 * kernel's ephemeral range (32768+), so outgoing connections of other tests
 * never hold it, and probed, since tests run in parallel.
 */
#ifndef VSTOR_MON_TESTS_FREE_PORT_H
#define VSTOR_MON_TESTS_FREE_PORT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

static inline int test_free_port(unsigned seed)
{
    for (unsigned attempt = 0; attempt < 256; attempt++) {
        int port = 12000 + (int)((seed + attempt * 7919u) % 20000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
        if (rc == 0)
            return port;
    }
    return 12000 + (int)(seed % 20000u);
}

#endif
