/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "vs_crc32c.h"

#include <isa-l/crc.h>
#include <limits.h>

uint32_t vs_crc32c_extend(uint32_t crc, const void *buf, size_t len)
{
    /* ISA-L takes the raw register (no pre/post inversion) and an int length. */
    uint32_t reg = ~crc;
    const unsigned char *p = buf;
    while (len > 0) {
        int chunk = len > (size_t)(INT_MAX / 2) ? INT_MAX / 2 : (int)len;
        reg = crc32_iscsi((unsigned char *)(uintptr_t)p, chunk, reg);
        p += chunk;
        len -= (size_t)chunk;
    }
    return ~reg;
}

uint32_t vs_crc32c(const void *buf, size_t len)
{
    return vs_crc32c_extend(0, buf, len);
}
