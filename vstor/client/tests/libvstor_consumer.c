/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * libvstor_consumer -- a program that uses only vstor.h and libvstor.so, as an
 * outside user would: the library links on its own and its bad-input paths
 * answer with errors, not crashes.
 */
#include "vstor.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    struct vstor_client_opts o;
    struct vstor_client *c;
    struct vstor_blk *b;
    char err[256];
    uv_loop_t loop;
    uv_loop_init(&loop);
    vstor_client_opts_init(&o);
    int rc = vstor_client_create(&loop, &o, &c, err, sizeof(err));
    if (rc != -EINVAL || !strstr(err, "mon_address")) {
        fprintf(stderr, "create without a metadata address: %d %s\n", rc, err);
        return 1;
    }
    const char *mons[] = {"127.0.0.1:1"};
    o.mon_addresses = mons;
    o.n_mon = 1;
    o.retry_interval_ms = 0;
    if (vstor_blk_open(&o, "x", &b, err, sizeof(err)) != -EINVAL) {
        fprintf(stderr, "bad retry interval accepted\n");
        return 1;
    }
    printf("%s / %s\n", vstor_strerror(-4017), err);
    uv_loop_close(&loop);
    return 0;
}
