#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the seed corpora of fuzz_raft_msg and fuzz_client_proto (valid
messages of every kind plus a few near-misses). Run from this directory;
the output is committed, the script documents how it was made."""
import os
import struct


def u8(v): return struct.pack("<B", v)
def u16(v): return struct.pack("<H", v)
def u32(v): return struct.pack("<I", v)
def u64(v): return struct.pack("<Q", v)
def blob(b): return u32(len(b)) + b


def conf(servers):
    out = u8(1) + u64(len(servers))
    for sid, addr, role in servers:
        out += u64(sid) + addr.encode() + b"\0" + u8(role)
    out += b"\0" * (-len(out) % 8)
    return out


def ae(term, prev, prev_term, commit, entries):
    out = u8(1) + u8(0) + u16(0) + u64(term) + u64(prev) + u64(prev_term) + u64(commit)
    out += u32(len(entries))
    for t, typ, data in entries:
        out += u64(t) + u8(typ) + blob(data)
    return out


CONF = conf([(1, "10.0.0.1:4000", 1), (2, "10.0.0.2:4000", 1), (3, "10.0.0.3:4000", 0)])
RAFT = {
    "ae_heartbeat": ae(3, 0, 0, 0, []),
    "ae_entries": ae(5, 7, 4, 7, [(4, 1, b"\x01\x02" + b"x" * 30), (5, 3, CONF), (5, 2, u64(0))]),
    "ae_bad_prev": ae(5, 0, 3, 0, []),
    "ae_bad_conf": ae(5, 1, 1, 0, [(5, 3, b"\x01" + b"\xff" * 20)]),
    "aer": u8(2) + u8(0) + u16(0) + u64(5) + u64(0) + u64(10) + u16(1) + u16(0),
    "rv": u8(3) + u8(0) + u16(0) + u64(6) + u64(2) + u64(10) + u64(5) + u8(2),
    "rvr": u8(4) + u8(0) + u16(0) + u64(6) + u8(1) + u8(1) + u16(1) + u16(0),
    "is": u8(5) + u8(0) + u16(0) + u64(7) + u64(100) + u64(6) + u64(1) + blob(CONF)
          + blob(b"snapshot-bytes"),
    "is_zero_index": u8(5) + u8(0) + u16(0) + u64(7) + u64(0) + u64(6) + u64(1) + blob(CONF)
                     + blob(b""),
    "timeout_now": u8(6) + u8(0) + u16(0) + u64(8) + u64(10) + u64(7),
}


def op(typ, key, end=b"", value=b"", flags=0, lease=0, limit=0):
    return u8(typ) + u8(flags) + blob(key) + blob(end) + blob(value) + u64(lease) + u64(limit)


def cmp(target, o, key, value=b"", number=0):
    return u8(target) + u8(o) + blob(key) + blob(value) + u64(number)


TXN = (u32(2) + u32(2) + u32(1) + cmp(1, 0, b"config/pools", number=3)
       + cmp(0, 1, b"osd/state/1", b"{}") + op(1, b"config/pools", value=b'{"1":{}}', flags=1)
       + op(2, b"pg/", b"pg0") + op(0, b"config/", b"config0", limit=10))


def req(rid, o, body, flags=0):
    return u8(0) + u64(rid) + u8(o) + u8(flags) + u16(0) + body


def kv(key, value, c=1, m=2, v=1, lease=0):
    return blob(key) + blob(value) + u64(c) + u64(m) + u64(v) + u64(lease)


RESULT = (u64(42) + u8(1) + u32(2) + u8(0) + u8(0) + u64(1) + u64(0) + u32(1)
          + kv(b"a", b"1") + u8(2) + u8(0) + u64(0) + u64(3) + u32(0))
STATUS = (u64(1) + u64(0xabc) + u64(4) + u64(2) + blob(b"10.0.0.2:4000") + u8(2)
          + b"".join(u64(i) for i in range(12)) + u32(2) + u64(1) + u8(1) + blob(b"a:1")
          + u64(2) + u8(1) + blob(b"b:2"))
CLIENT = {
    "range": req(1, 1, op(0, b"config/", b"config0", limit=5), flags=8),
    "txn": req(2, 2, TXN),
    "lease_grant": req(3, 3, u64(0) + u64(5000)),
    "lease_keepalive": req(4, 5, u64(7)),
    "compact": req(5, 7, u64(100)),
    "watch": req(6, 8, u64(1) + u64(10) + blob(b"pg/") + blob(b"pg0")),
    "status": req(7, 10, b""),
    "member_add": req(8, 11, u64(4) + blob(b"10.0.0.4:4000")),
    "volatile": req(9, 13, blob(b"osd/stats/1") + blob(b'{"iops":1}')),
    "bad_op": req(10, 99, b""),
    "resp": u8(1) + u64(1) + u32(0) + u64(2) + blob(b"10.0.0.2:4000") + RESULT,
    "result": u8(2) + RESULT,
    "events": u8(3) + u64(9) + u32(2) + u8(0) + kv(b"k", b"v") + u8(1) + kv(b"k", b""),
    "status_reply": u8(4) + STATUS,
    "txn_raw": u8(5) + TXN,
}


def write(dirname, items):
    os.makedirs(dirname, exist_ok=True)
    for name, data in items.items():
        with open(os.path.join(dirname, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("corpus/raft_msg", RAFT)
    write("corpus/client_proto", CLIENT)
