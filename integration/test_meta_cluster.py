# SPDX-License-Identifier: GPL-3.0-or-later
"""The metadata service as real `vstor mon` processes, each in its own network
namespace: bootstrap of 1, 3 and 5 members, kill -9 of the leader, restarts
that catch up by log and by snapshot, a partitioned minority, membership
changes, a full or read-only disk, corrupt databases and hostile frames."""
import json
import os
import socket
import struct
import subprocess
import time

import pytest

from meta_cluster import MetaCluster
from vstor_fixtures import sh, wait_for

pytestmark = pytest.mark.netns


def put_many(c, prefix, first, n):
    for i in range(first, first + n):
        c.meta_ok("put", f"{prefix}/{i:04d}", f"v{i}")


def fill(c, keys, clients=8, value_size=100, host=None):
    """Writes bench/fill/00000000.. through `vstor meta bench` (fast)."""
    r = c.vstor("meta", "bench", "--workload", "fill", "--keys", keys, "--clients", clients,
                "--value-size", value_size, "--json", "--mon-address", c.mon_addresses(),
                "--meta-timeout", "5s", timeout=300, host=host)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["fill"]


def test_single_member_restarts_from_its_data_dir(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 1)
    c.start_all()
    c.meta_ok("put", "config/global", '{"block_size":131072}')
    c.stop(0)
    c.start(0, init=False)
    c.wait_leader()
    assert c.get("config/global") == '{"block_size":131072}'
    st = c.status(0)
    assert st["members"] == [{"id": 1, "address": c.members[0].addr, "role": "voter"}]


def test_lease_keepalive_starts_with_little_ttl_left(netns, procs, vstor_bin, tmp_path):
    """`vstor meta lease keepalive` on a lease with under 1 s left keeps it."""
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 1)
    c.start_all()
    lease = json.loads(c.meta_ok("lease", "grant", "1500ms", "--json"))["id"]
    c.meta_ok("put", "osd/state/1", "up", "--lease", lease)
    time.sleep(0.9)  # 600 ms left, less than the keeper's 1 s minimum
    keeper = procs.start("meta", "lease", "keepalive", lease, "--mon-address",
                         c.mon_addresses(), prefix=c.client.prefix(), name="keeper")
    time.sleep(3)  # two TTLs
    assert keeper.alive(), keeper.log()
    assert c.get("osd/state/1") == "up"
    keeper.signal(15)
    keeper.wait(10)


def test_kill_leader_no_acknowledged_write_lost(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3)
    old = c.start_all()
    put_many(c, "k", 0, 20)
    c.kill(old)
    others = [i for i in range(3) if i != old]
    t0 = time.monotonic()
    new = c.wait_leader(among=others)
    assert new != old
    put_many(c, "k", 20, 10)  # the new leader serves writes
    print(f"new leader {new} writing {time.monotonic() - t0:.2f}s after kill -9")
    assert c.count("k/") == 30  # every acknowledged write is there
    # The killed member restarts from its data dir and catches up by log.
    c.start(old, init=False)
    c.wait_converged("k/", 30, [0, 1, 2])


def test_restart_catches_up_by_snapshot(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3,
                    extra=("--mon-snapshot-threshold", "64", "--mon-snapshot-trailing", "16"))
    leader = c.start_all()
    follower = (leader + 1) % 3
    fill(c, 20)
    c.stop(follower)
    fill(c, 600)  # far more than threshold + trailing: the log it needs is gone
    c.start(follower, init=False)
    c.wait_converged("bench/fill/", 600, [0, 1, 2])
    st = c.status(follower)
    assert st["snapshots_installed"] >= 1, st
    # and a brief absence is caught up by log
    c.stop(follower)
    fill(c, 5)
    c.start(follower, init=False)
    c.wait_converged("bench/fill/", 600, [0, 1, 2])


def test_minority_partition(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 5)
    leader = c.start_all()
    follower = (leader + 1) % 5
    put_many(c, "before", 0, 5)
    minority = [leader, follower]
    for i in minority:
        c.members[i].host.link_down()
    # The old leader, alone, cannot commit a write...
    r = c.vstor("meta", "put", "minority/x", "1", "--mon-address", c.members[leader].addr,
                "--meta-timeout", "3s", host=c.members[leader].host)
    assert r.returncode != 0, r.stdout
    # ...while the majority elects a leader and commits.
    majority = [i for i in range(5) if i not in minority]
    c.wait_leader(among=majority)
    put_many(c, "majority", 0, 5)
    for i in minority:
        c.members[i].host.link_up()
    c.wait_converged("majority/", 5, range(5))
    c.wait_converged("before/", 5, range(5))
    assert all(c.count("minority/", member=i) == 0 for i in range(5))
    assert c.count("minority/") == 0


def test_membership_add_and_remove(netns, procs, vstor_bin, tmp_path):
    hosts = netns.make_hosts(5)
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 4, hosts=hosts)
    base = c.members[:3]
    # --init on the first member only; the others start empty and are added.
    c.start(0, alone=True, members=base)
    c.start(1, init=False)
    c.start(2, init=False)
    mons = ",".join(m.addr for m in base)

    def three_voters():
        st = c.status(0)
        return st and [m["role"] for m in st["members"]] == ["voter"] * 3
    wait_for(three_voters, 60, interval=0.5, what="the initial members to be voters")
    c.meta_ok("put", "a", "1", mons=mons)
    c.start(3, init=False)
    out = c.meta_ok("member", "add", "4", c.members[3].addr, "--json", mons=mons,
                    timeout=200, meta_timeout="150s")
    assert {m["id"]: m["role"] for m in json.loads(out)} == {1: "voter", 2: "voter",
                                                              3: "voter", 4: "voter"}
    c.wait_converged("a", 1, [3])
    # remove the leader itself: the others carry on
    leader = c.leader([0, 1, 2, 3])
    out = c.meta_ok("member", "remove", str(leader + 1), "--json", timeout=60)
    assert leader + 1 not in [m["id"] for m in json.loads(out)]
    rest = [i for i in range(4) if i != leader]
    c.wait_leader(among=rest)
    c.meta_ok("put", "b", "2", mons=",".join(c.members[i].addr for i in rest))


def test_wrong_cluster_and_corrupt_database_are_refused(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3)
    c.start_all()
    c.meta_ok("put", "k", "v")
    c.stop(2)
    # the same data dir started with another member list: another cluster
    other = [c.members[2]]
    p = c.start(2, members=other)
    assert p.wait(30) == 1
    assert "belongs to cluster" in p.log()
    # a corrupt database: never served
    db = os.path.join(c.members[2].data_dir, "mon", "meta.db")
    with open(db, "r+b") as f:
        f.write(b"this is not an sqlite database!!" * 4)
    p = c.start(2, init=False)
    assert p.wait(30) == 1
    assert "meta.db" in p.log() and ("not a database" in p.log() or "corrupt" in p.log())
    c.meta_ok("put", "k2", "v2")  # the others carry on


def _mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path)


def test_full_disk_stops_the_member_cleanly(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3)
    small = c.members[2].data_dir
    _mount_tmpfs(small, "3m")
    try:
        c.start_all()
        fill(c, 6000, value_size=1000)  # ~6 MB of values: member 3's disk fills up
        p = c.members[2].proc
        assert p.wait(60) == 1
        assert "No space left on device" in p.log() or "full" in p.log()
        c.meta_ok("put", "after", "1")  # the other two carry on
        assert c.get("after") == "1"
    finally:
        procs.cleanup()
        sh("umount", "-l", small, check=False)


def test_unwritable_data_dir_stops_the_member_cleanly(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3)
    ro = c.members[1].data_dir
    _mount_tmpfs(ro, "64m")
    try:
        c.start_all()
        put_many(c, "more", 0, 5)
        c.stop(1)
        sh("mount", "-o", "remount,ro", ro)  # nothing is open now
        p = c.start(1, init=False)
        assert p.wait(30) == 1  # it refuses to run on a data dir it cannot write
        assert "meta.db" in p.log(), p.log()
        put_many(c, "more", 5, 5)  # the other two carry on
        sh("mount", "-o", "remount,rw", ro)
        c.start(1, init=False)  # writable again: it rejoins and catches up
        c.wait_converged("more/", 10, [0, 1, 2])
    finally:
        procs.cleanup()
        sh("umount", "-l", ro, check=False)


HOSTILE = r'''
import socket, struct, sys, zlib
host, port = sys.argv[1], int(sys.argv[2])
def frame(typ, payload, magic=0x4d525356, length=None, crc=None):
    import binascii
    return struct.pack("<IHHII", magic, typ, 0, len(payload) if length is None else length,
                       crc if crc is not None else crc32c(payload)) + payload
def crc32c(data):
    crc = 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82f63b78 if crc & 1 else 0)
    return crc ^ 0xffffffff
hello = struct.pack("<HBBQQ", 1, 2, 0, 0, 0) + struct.pack("<I", 0)
cases = [
    b"GET / HTTP/1.0\r\n\r\n" * 3,                              # not our protocol
    frame(1, hello, magic=0xdeadbeef),                          # bad magic
    frame(1, hello, length=1 << 31),                            # oversized length
    frame(1, hello, crc=1),                                     # bad checksum
    frame(1, b"\x01"),                                          # truncated hello
    frame(1, hello) + frame(10, b"\x00" * 3),                   # request too short
    frame(1, hello) + frame(10, struct.pack("<QBBH", 7, 99, 0, 0)),  # unknown op
    frame(1, hello) + frame(10, struct.pack("<QBBH", 8, 2, 0, 0) + b"\xff" * 40),  # bad txn
    frame(1, hello) + frame(10, struct.pack("<QBBH", 9, 1, 0, 0) + b"\x00" * 200),
    frame(1, hello) + frame(10, b"x" * (17 << 20), crc=0),      # over the request limit
]
for i, data in enumerate(cases):
    s = socket.create_connection((host, port), timeout=5)
    try:
        s.sendall(data)
        s.settimeout(2)
        got = s.recv(4096)  # an error reply, or the connection closed
    except OSError:
        got = b""
    s.close()
    print(i, len(got))
'''


def test_hostile_frames_leave_the_member_serving(netns, procs, vstor_bin, tmp_path):
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3)
    c.start_all()
    script = tmp_path / "hostile.py"
    script.write_text(HOSTILE)
    for m in c.members:
        r = c.client.run("/usr/bin/python3", str(script), m.host.addr, "4000", timeout=120)
        assert len(r.stdout.splitlines()) == 10
    for i in range(3):
        assert c.alive(i)
    c.meta_ok("put", "still", "serving")
    assert c.get("still") == "serving"


def test_statistics_do_not_flood_the_log(netns, procs, vstor_bin, tmp_path):
    """100 OSDs x 1,000 images, each OSD reporting every second: the log grows
    by one entry per stats interval, not by one per report, and folding the
    reports (10 MB of JSON per interval) does not cost the leader its office."""
    interval, seconds = 2, 12
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, 3,
                    extra=("--mon-stats-interval", f"{interval}s"))
    c.start_all()
    r = c.vstor("meta", "bench", "--workload", "stats", "--clients", 100, "--keys", 1000,
                "--seconds", seconds, "--json", "--mon-address", c.mon_addresses(),
                timeout=300)
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)["stats"]
    print(stats, r.stderr)
    assert stats is not None, r.stderr  # the setup (1,100 puts at once) failed
    assert stats["failed"] == 0, stats
    assert stats["one_leader"], stats  # the counters below are one member's
    assert stats["reports"] >= 100 * seconds // 2, stats  # every OSD, most seconds
    entries, logged = stats["log_entries"], stats["log_bytes"]
    # one stats transaction per interval (plus leases and compaction), never per report
    assert entries <= seconds // interval + 3, entries
    # the folds did reach the log: at least one with the rates of every image
    assert logged >= 1000 * 50, logged
    # its size is bounded by images + OSDs, not by reports (100 KB each)
    assert logged <= (seconds // interval + 3) * (1000 + 1) * 300, logged
    assert logged * 10 <= stats["report_bytes"], stats
    wait_for(lambda: c.count("inode/stats/") == 1000, 30, what="1000 inode/stats keys")
