# SPDX-License-Identifier: GPL-3.0-or-later
"""Tombstone purge and superseded-OSD wipes (docs/data-path.md §5, §6;
vstor/osd/osd_peering.c rules W1-W4 and T).

- test_rm_with_more_objects_than_tombstone_slots: `vstor rm` of an image with
  more written objects than each OSD has tombstone slots completes (it stalled
  forever: deletes failed with ENOSPC and were retried), and another image
  verifies afterwards.
- test_superseded_osd_is_wiped: an OSD the PG moved off holds outdated copies;
  once the PG is clean it is wiped (its store holds nothing of the pool).
- test_no_resurrection_after_purge: an OSD is down while objects are deleted;
  the PG moves off it, becomes clean and purges its tombstones; the OSD comes
  back and the PG moves back onto it: the deleted objects read as zeros, and
  every byte verifies.
- test_purge_request_without_the_lock: SEC_PURGE from an OSD without the PG's
  lock #2 gets VS_ENOTPRIMARY and wipes nothing; a malformed one closes only
  that connection.
"""
import json
import signal
import socket
import struct
import subprocess

from vstor_cluster import Cluster, ok
from vstor_fixtures import frame, hello_body, recv_exact, sanitizer_env, wait_for

TOMBS = ("--tombstones", "64")


def store_objects(c, osd_id, pool_id):
    """Entries (live or deleted) of a pool in an OSD's store; the OSD must be stopped."""
    r = subprocess.run([c.bin, "disk", "dump", c.osds[osd_id]["dev"], "--json"],
                       capture_output=True, text=True, timeout=60, env=sanitizer_env())
    assert r.returncode == 0, r.stderr
    return [o for o in json.loads(r.stdout) if o["inode"] >> 48 == pool_id]


def reweight(c, osd_id, w):
    c.ok("meta", "put", f"config/osd/{osd_id}", json.dumps({"reweight": w}))


def pg_set(c, pool):
    return c.get("config/pgs")["pools"][str(c.pool_id(pool))]["pgs"][0]["osd_set"]


def test_rm_with_more_objects_than_tombstone_slots(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(3, size="512M", format_args=TOMBS)
    c.pool("rbd", 2, 1, 4)
    c.image("big", "48M", "rbd")  # 384 objects: ~256 on each OSD, 64 slots each
    c.image("keep", "8M", "rbd")
    c.wait_active("rbd", clean=True)
    r = c.verify("big", blk_write="0:50331648:3")
    assert "rc 0" in r.stdout, r.stdout + r.stderr
    ok(c.verify("keep", ops=300, depth=8, seed=1, save=tmp_path / "keep"))
    r = c.vstor("rm", "big", timeout=90)  # stalled forever before the purge
    assert r.returncode == 0, r.stderr
    logs = "".join(c.osd_log(o) for o in (1, 2, 3))
    assert "purged on" in logs
    c.wait_active("rbd", clean=True)
    ok(c.verify("keep", check=tmp_path / "keep"))


def test_superseded_osd_is_wiped(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(2, size="256M")
    c.pool("rbd", 2, 1, 1)
    c.image("img", "16M", "rbd")
    c.wait_active("rbd", clean=True)
    ok(c.verify("img", ops=300, depth=8, seed=1, save=tmp_path / "m"))
    c.add_osd(size="256M")
    reweight(c, 2, 0)  # drain OSD 2: the PG moves to [1, 3]
    wait_for(lambda: 2 not in pg_set(c, "rbd"), 60, interval=0.3, what="the PG off OSD 2")
    c.wait_active("rbd", clean=True)
    wait_for(lambda: "wiped for osd." in c.osd_log(2), 60, interval=0.3,
             what="OSD 2 wiped of the PG")
    prim = pg_set(c, "rbd")
    assert any("osd.2 wiped" in c.osd_log(o) for o in prim)
    c.kill_osd(2, signal.SIGTERM)
    assert store_objects(c, 2, c.pool_id("rbd")) == []
    c.start_osd(2)
    ok(c.verify("img", check=tmp_path / "m"))


def test_no_resurrection_after_purge(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(2, size="256M", format_args=TOMBS)
    c.pool("rbd", 2, 1, 1)
    c.image("img", "4M", "rbd")  # 32 objects: half the slots (a degraded PG cannot purge)
    c.wait_active("rbd", clean=True)
    r = c.verify("img", blk_write="0:4194304:5")  # every object live on OSDs 1 and 2
    assert "rc 0" in r.stdout, r.stdout + r.stderr
    gone = c.get("index/image/img")
    gone = gone["pool"] << 48 | gone["num"]
    c.kill_osd(2)  # keeps the old live copies
    wait_for(lambda: c.pgs_in("rbd", lambda w: w[0] == "active" and "degraded" in w), 120,
             interval=0.3, what="the PG active on OSD 1 alone")
    r = c.vstor("rm", "img", timeout=60)  # tombstones on OSD 1 alone
    assert r.returncode == 0, r.stderr
    c.image("img2", "8M", "rbd")
    ok(c.verify("img2", ops=200, depth=4, seed=2, save=tmp_path / "m2"))
    c.add_osd(size="256M", format_args=TOMBS)  # OSD 3
    reweight(c, 2, 0)
    wait_for(lambda: 2 not in pg_set(c, "rbd"), 60, interval=0.3, what="the PG off OSD 2")
    wait_for(lambda: any("purged on" in c.osd_log(o) for o in (1, 3)), 90, interval=0.5,
             what="the tombstones purged")
    c.start_osd(2)  # its old copies of img are back in the cluster
    reweight(c, 2, 1)
    reweight(c, 3, 0)  # and the PG moves back onto it
    wait_for(lambda: 3 not in pg_set(c, "rbd"), 60, interval=0.3, what="the PG back on OSD 2")
    c.wait_active("rbd", clean=True, timeout=120)
    ok(c.verify("img2", check=tmp_path / "m2"))
    for o in (1, 2):
        c.kill_osd(o, signal.SIGTERM)
        live = [e for e in store_objects(c, o, c.pool_id("rbd"))
                if e["inode"] == gone and not e["deleted"]]
        assert live == [], f"osd.{o}: deleted objects came back: {live[:4]}"


def test_purge_request_without_the_lock(procs, vstor_bin, tmp_path):
    """A SEC_PURGE WIPE from an OSD that does not hold the PG's lock #2 is refused
    (VS_ENOTPRIMARY) and wipes nothing; one whose fields break a rule closes that
    connection; the OSD serves on and the data verifies."""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(2, size="256M")
    c.pool("rbd", 2, 1, 1)
    c.image("img", "8M", "rbd")
    c.wait_active("rbd", clean=True)
    ok(c.verify("img", ops=200, depth=4, seed=1, save=tmp_path / "m"))
    hello = hello_body(c.cluster_id(), 2, node_id=99, block_size=131072, granularity=4096)
    wipe = struct.pack("<IIIIQQ", c.pool_id("rbd"), 0, 1, 1, 131072, 0)
    ip, port = c.get("osd/state/1")["addresses"][0].rsplit(":", 1)
    with socket.create_connection((ip, int(port)), timeout=10) as s:
        s.sendall(frame(1, 1, hello))
        assert len(recv_exact(s, 128)) == 128  # its HELLO
        s.sendall(frame(42, 2, wipe))
        rep = recv_exact(s, 128)
        assert struct.unpack_from("<i", rep, 32)[0] == -4010  # VS_ENOTPRIMARY
        bad = struct.pack("<IIIIQQ", c.pool_id("rbd"), 0, 1, 3, 131072, 0)  # WIPE|TOMBS
        s.sendall(frame(42, 3, bad))
        assert recv_exact(s, 128) == b""  # a protocol violation: closed
    assert c.osds[1]["proc"].alive()
    ok(c.verify("img", check=tmp_path / "m"))
