/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_crc32c.h -- CRC-32C (Castagnoli), the checksum of every on-disk and
 * on-wire structure and of data blocks.
 *
 * Backed by ISA-L's crc32_iscsi (Debian libisal), which uses the SSE4.2 crc32
 * instruction with PCLMUL folding: several GB/s per core, so checksumming every
 * 4 KiB costs well under a microsecond. Standard conventions: initial value
 * ~0 and final xor ~0, so vs_crc32c("123456789") == 0xE3069283.
 */
#ifndef VS_CRC32C_H
#define VS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC-32C of buf[0..len). */
uint32_t vs_crc32c(const void *buf, size_t len);

/* Continues a CRC: vs_crc32c_extend(vs_crc32c(a), b) == vs_crc32c(a || b).
 * Start from 0 for an empty prefix. */
uint32_t vs_crc32c_extend(uint32_t crc, const void *buf, size_t len);

#endif /* VS_CRC32C_H */
