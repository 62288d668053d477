/* SPDX-License-Identifier: GPL-3.0-or-later */
/*
 * vs_store.h -- libvstore, the single-drive block store of one OSD.
 * (Being built: see the store issue and docs/disk-format.md.)
 */
#ifndef VS_STORE_H
#define VS_STORE_H

/* On-disk format version this library writes. */
#define VS_STORE_FORMAT_VERSION 1

#endif /* VS_STORE_H */
