#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the seed corpora of fuzz_net_frame (corpus/frame) and fuzz_net_stream
(corpus/stream).

This is a second, independent encoder of the frame layout, written from the
byte tables of docs/protocol.md. Files named valid-* must decode cleanly:
net_proto_test replays them and fails otherwise, so the document, this script
and the C codec are checked against each other.

frame/: one option byte (bit 0: the fuzz target repairs header CRCs, bit 1:
small limits), then a stream of frames (header + meta + data).
stream/: one option byte (bit 0: the target sends a HELLO first, bit 1: it
repairs CRCs), then what a client sends to a server.
Run: python3 vstor/net/fuzz/gen_corpus.py vstor/net/fuzz/corpus
"""
import os
import struct
import sys

MAGIC = 0x314E5356
REPLY = 1
OPS = {"HELLO": 1, "PING": 2, "READ": 16, "WRITE": 17, "SYNC": 18, "DELETE": 19,
       "SEC_READ": 32, "SEC_WRITE": 33, "SEC_WRITE_STABLE": 34, "SEC_SYNC": 35,
       "SEC_STABILIZE": 36, "SEC_ROLLBACK": 37, "SEC_DELETE": 38, "SEC_LIST": 39,
       "SEC_READ_BITMAP": 40, "SEC_LOCK": 41, "SEC_PURGE": 42}
CLUSTER = bytes(range(0xC0, 0xD0))


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def header(op, ident, flags=0, meta_len=0, data_len=0, body=b"", body_at=32, version=1):
    h = bytearray(128)
    struct.pack_into("<IHHQIII", h, 0, MAGIC, version, OPS[op], ident, flags, meta_len, data_len)
    h[body_at:body_at + len(body)] = body
    struct.pack_into("<I", h, 124, crc32c(bytes(h[:124])))
    return bytes(h)


def hello_body(cluster=CLUSTER, role=2, node=3, pmin=1, pmax=1):
    return (cluster + struct.pack("<HHB3xQQII", pmin, pmax, role, node, 0, 131072, 4096))


def reply(op, ident, retval=0, rflags=0, version=0, count=0, meta=b"", data=b"", extra=b""):
    body = struct.pack("<iIQI4x", retval, rflags, version, count) + extra
    return header(op, ident, REPLY, len(meta), len(data), body) + meta + data


def objvers(n):
    return b"".join(struct.pack("<QQQ", (1 << 48) | i, i << 17, 100 + i) for i in range(n))


def requests():
    """(name, request bytes, reply bytes) for every opcode."""
    rw = lambda inode, off, ln, ver=0: struct.pack("<QQIIQ", inode, off, ln, 0, ver)
    sec = lambda ver, off, ln, sel=0, fl=0: struct.pack("<QQQIIIB", 5, 1 << 17, ver, off, ln,
                                                        fl, sel)
    data = bytes((i * 7) & 0xFF for i in range(4096))
    bm = b"\xff\x00\x0f\xf0"
    yield ("hello", header("HELLO", 1, body=hello_body()),
           reply("HELLO", 1, extra=hello_body(role=2, node=9)))
    yield "ping", header("PING", 2), reply("PING", 2)
    yield ("read", header("READ", 3, body=rw(1 << 48, 4096, 4096)),
           reply("READ", 3, version=7, meta=bm, data=data))
    yield ("write", header("WRITE", 4, data_len=4096, body=rw(1 << 48, 0, 4096, 6)) + data,
           reply("WRITE", 4, version=7))
    yield "sync", header("SYNC", 5), reply("SYNC", 5)
    yield ("delete", header("DELETE", 6, body=rw(1 << 48, 0, 131072)),
           reply("DELETE", 6, version=8))
    yield ("sec_read", header("SEC_READ", 7, body=sec(0x10002, 0, 4096, sel=2)),
           reply("SEC_READ", 7, version=0x10002, meta=bm, data=data))
    yield ("sec_write", header("SEC_WRITE", 8, meta_len=4, data_len=4096,
                               body=sec(0x10003, 0, 4096, fl=1)) + bm + data,
           reply("SEC_WRITE", 8, version=0x10003))
    yield ("sec_write_stable", header("SEC_WRITE_STABLE", 9, meta_len=4, data_len=4096,
                                      body=sec(0x10004, 8192, 4096)) + bm + data,
           reply("SEC_WRITE_STABLE", 9, version=0x10004))
    yield ("sec_sync", header("SEC_SYNC", 10), reply("SEC_SYNC", 10))
    yield ("sec_stabilize", header("SEC_STABILIZE", 11, meta_len=72,
                                   body=struct.pack("<II", 3, 0)) + objvers(3),
           reply("SEC_STABILIZE", 11))
    yield ("sec_rollback", header("SEC_ROLLBACK", 12, meta_len=48,
                                  body=struct.pack("<II", 2, 1)) + objvers(2),
           reply("SEC_ROLLBACK", 12, retval=-5))
    yield ("sec_delete", header("SEC_DELETE", 13, body=sec(0x20001, 0, 0)),
           reply("SEC_DELETE", 13, version=0x20001))
    entries = b"".join(struct.pack("<QQQB", (2 << 48) | i, i << 22, 9, i & 3) for i in range(4))
    yield ("sec_list", header("SEC_LIST", 14, body=struct.pack("<IIIIQQQI", 2, 1, 8, 64, 1 << 22,
                                                               2 << 48, 0, 0)),
           reply("SEC_LIST", 14, rflags=1, count=4, meta=entries,
                 extra=struct.pack("<QQ", (2 << 48) | 4, 0)))
    bmp = b"".join(struct.pack("<Q", 100 + i) + bm for i in range(2))
    yield ("sec_read_bitmap", header("SEC_READ_BITMAP", 15, meta_len=48,
                                     body=struct.pack("<IIIB", 2, 0, 4, 1)) + objvers(2),
           reply("SEC_READ_BITMAP", 15, count=2, meta=bmp))
    yield ("sec_lock", header("SEC_LOCK", 16, body=struct.pack("<IIIIQ", 2, 7, 1, 0, 99)),
           reply("SEC_LOCK", 16, retval=-4010, version=3))
    yield ("sec_purge", header("SEC_PURGE", 17, body=struct.pack("<IIIIQQ", 2, 7, 32, 2,
                                                                 1 << 17, 5 << 16)),
           reply("SEC_PURGE", 17))
    yield ("sec_purge_wipe", header("SEC_PURGE", 18, body=struct.pack("<IIIIQQ", 2, 7, 32, 1,
                                                                      1 << 17, 0)),
           reply("SEC_PURGE", 18, retval=-22))


def stream_corpus(out):
    os.makedirs(out, exist_ok=True)
    files = {}
    hello = header("HELLO", 1, body=hello_body(cluster=b"fuzz-stream" + bytes(5), role=1,
                                               node=0))
    everything = b""
    for name, req, _ in requests():
        if name == "hello":
            continue
        files[f"op-{name}"] = b"\x01" + req
        files[f"op-{name}-twice"] = b"\x01" + req + req
        everything += req
    files["all-ops"] = b"\x01" + everything
    files["own-hello"] = b"\x00" + hello + everything
    files["no-hello"] = b"\x00" + everything
    files["bad-cluster"] = b"\x00" + header("HELLO", 1, body=hello_body(cluster=bytes(16)))
    files["hello-twice"] = b"\x00" + hello + hello
    files["reply-unknown"] = b"\x01" + reply("PING", 77)
    files["garbage-crc-fixed"] = b"\x03" + bytes(range(256)) * 2
    for name, blob in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(files)} files to {out}")


def main(root):
    stream_corpus(os.path.join(root, "stream"))
    out = os.path.join(root, "frame")
    os.makedirs(out, exist_ok=True)
    files = {}
    stream = b""
    for name, req, rep in requests():
        files[f"valid-{name}"] = b"\x00" + req + rep
        stream += req + rep
    files["valid-stream-all"] = b"\x00" + stream
    files["valid-hello-refused"] = b"\x00" + header("HELLO", 1, body=hello_body()) + reply(
        "HELLO", 1, retval=-4005, extra=hello_body(cluster=bytes(16)))
    # Malformed: each must be refused (the fuzz target checks the message).
    ping = bytearray(header("PING", 1))
    files["bad-magic"] = b"\x00" + b"XXXX" + bytes(ping[4:])
    flip = bytearray(ping)
    flip[9] ^= 1
    files["bad-crc"] = b"\x00" + bytes(flip)
    files["bad-version-2"] = b"\x00" + header("PING", 1, version=2)
    files["bad-reserved"] = b"\x01" + bytes(ping[:115]) + b"\x01" + bytes(ping[116:])
    files["bad-huge-data"] = b"\x00" + header("WRITE", 1, data_len=0xFFFFFFFF,
                                              body=struct.pack("<QQIIQ", 1, 0, 0xFFFFFFFF, 0, 0))
    files["bad-short"] = b"\x00" + bytes(ping[:100])
    files["small-limits-write"] = b"\x02" + header(
        "WRITE", 4, data_len=8192, body=struct.pack("<QQIIQ", 1, 0, 8192, 0, 0)) + bytes(8192)
    for name, blob in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"wrote {len(files)} files to {out}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "corpus")
