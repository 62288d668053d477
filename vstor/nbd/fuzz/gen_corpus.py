#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the seed corpus of fuzz_nbd: python3 gen_corpus.py corpus/nbd

Byte 0 selects the export and the read size (see fuzz_nbd.c); the rest is
what a client sends."""
import struct, os, sys
d = sys.argv[1]
OPTS = 0x49484156454F5054
def opt(o, data=b""): return struct.pack(">QII", OPTS, o, len(data)) + data
def go(name=b"disk", infos=(3,)): return struct.pack(">I", len(name)) + name + struct.pack(">H", len(infos)) + b"".join(struct.pack(">H", i) for i in infos)
def req(t, off, ln, flags=0, cookie=1): return struct.pack(">IHHQQI", 0x25609513, flags, t, cookie, off, ln)
flags = struct.pack(">I", 3)
seeds = {
 "go_structured_rw": bytes([0x01]) + flags + opt(8) + opt(7, go()) + req(1, 0, 4096) + b"\xab"*4096 + req(0, 0, 4096) + req(3,0,0) + req(4, 4096, 8192, 1) + req(6, 0, 4096, 2) + req(2,0,0),
 "go_simple_chunked": bytes([0x31]) + flags + opt(7, go(b"", ())) + req(0, 512, 512) + req(1, 100, 10) + b"x"*10 + req(9, 0, 0),
 "export_name": bytes([0x00]) + struct.pack(">I", 1) + opt(1, b"disk") + req(0, 0, 1) + req(1, 0, 3) + b"abc",
 "export_name_unknown": bytes([0x00]) + flags + opt(1, b"nope"),
 "list_info_abort": bytes([0x02]) + flags + opt(3) + opt(6, go(b"disk", (0,1,2,3))) + opt(2),
 "bad_options": bytes([0x51]) + flags + opt(3, b"zz") + opt(8, b"z") + opt(6, b"\x00\x00\x00\x09ab") + opt(99, b"123") + opt(5) + opt(9, go()) + opt(7, go(b"other")),
 "bad_client_flags": bytes([0x00]) + struct.pack(">I", 0x10),
 "bad_opt_magic": bytes([0x00]) + flags + b"IHAVEOPX" + b"\x00"*8,
 "readonly_writes": bytes([0x03]) + flags + opt(7, go()) + req(1, 0, 512) + b"\x00"*512 + req(4, 0, 512) + req(6, 0, 512) + req(0, 0, 512),
 "bad_request_magic": bytes([0x01]) + flags + opt(7, go()) + b"\x25\x60\x95\x14" + b"\x00"*24,
 "huge_write": bytes([0x01]) + flags + opt(7, go()) + req(1, 0, (32<<20)+1),
 "ranges": bytes([0x01]) + flags + opt(8) + opt(7, go()) + req(0, (1<<24)-512, 1024) + req(1, 2**64-512, 1024) + b"q"*1024 + req(0, 0, 0, 4) + req(0, 0, 512, 0x20),
}
os.makedirs(d, exist_ok=True)
for k, v in seeds.items():
    open(os.path.join(d, k), "wb").write(v)
print(len(seeds), "seeds")
