# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor osd` with real processes on loopback: 1 mon + 3 OSDs on files
(docs/data-path.md). Data is written and checked byte by byte by osd_verify
(vstor/osd/tests/osd_verify.c) through libvstor; PG states are read from
pg/state. Scenarios: patterns across pools of pg_size 1, 2 and 3 and several
images; kill -9 of an OSD under a writer; a stale replica recovered during
peering; the whole cluster restarted under a writer; split brain; the
metadata service down under a writer; bad input."""
import json
import signal
import socket
import struct
import time

import pytest

from vstor_cluster import Cluster, ok, progress, wait_progress
from vstor_fixtures import frame, hello_body, recv_exact, wait_for

MIB = 1 << 20


@pytest.fixture
def cluster(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(3)
    return c


def test_patterns_across_pools_and_images(cluster, tmp_path):
    """Pools with pg_size 1, 2 and 3; random patterns on four images at once, read
    back and compared; then every OSD is restarted and a fresh client checks again."""
    c = cluster
    c.pool("p1", 1, 1, 4)
    c.pool("p2", 2, 1, 8)
    c.pool("p3", 3, 2, 8)
    images = {"a1": "p1", "b2": "p2", "c2": "p2", "d3": "p3"}
    for img, pool in images.items():
        c.image(img, "48M", pool)
    for pool in ("p1", "p2", "p3"):
        c.wait_active(pool, clean=True)
    writers = {img: c.start_verify(img, name=f"w-{img}", ops=600, depth=8, seed=i + 1,
                                   save=tmp_path / f"{img}.model")
               for i, img in enumerate(images)}
    for img, w in writers.items():
        assert w.wait(300) == 0, w.log()
        assert "verified 50331648 bytes" in w.log()
    # Every acknowledged write is durable on every OSD of its set: restart them all.
    for osd in c.osds:
        c.kill_osd(osd, signal.SIGTERM)
    for osd in c.osds:
        c.start_osd(osd)
    for pool in ("p1", "p2", "p3"):
        c.wait_active(pool)
    for img in images:
        ok(c.verify(img, check=tmp_path / f"{img}.model"))
    for osd in c.osds:  # a clean stop says so, and no sanitizer report
        assert "ERROR" not in c.osd_log(osd), c.osd_log(osd)


def test_kill9_osd_under_writer_then_stale_replica_recovers(cluster, tmp_path):
    """kill -9 an OSD while a writer runs: the writer pauses, then completes, and every
    byte verifies. The OSD comes back with stale replicas: peering finds them and
    recovery rewrites them before the PGs report clean; then the OSDs that stayed up
    are killed and the data is read from the recovered replicas alone."""
    c = cluster
    c.pool("rbd", 2, 1, 8)
    c.image("img", "64M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", seconds=25, depth=16, save=tmp_path / "model")
    wait_progress(w, 300, 120)
    c.kill_osd(2)
    before = progress(w)
    assert w.wait(300) == 0, w.log()
    assert progress(w) > before + 300  # it went on after the kill
    assert "verified 67108864 bytes" in w.log()
    states = c.pg_states("rbd")
    assert any("degraded" in s["state"] for s in states.values()), states
    # osd.2 returns: its replicas are stale; recovery brings them up to date.
    c.start_osd(2)
    c.wait_active("rbd", clean=True, timeout=180)
    logs = "".join(c.osd_log(o) for o in (1, 3))
    assert "unclean (" in logs and "clean (epoch" in logs
    # Only osd.2's copies remain reachable for the PGs it shares with the killed ones.
    pgs = c.get("config/pgs")["pools"][str(c.pool_id("rbd"))]["pgs"]
    victim = next(o for o in (1, 3) if sum(2 in p["osd_set"] and o in p["osd_set"]
                                           for p in pgs) > 0)
    c.kill_osd(victim)
    c.wait_active("rbd", timeout=180)
    ok(c.verify("img", check=tmp_path / "model"))


def test_whole_cluster_restart_under_writer(cluster, tmp_path):
    """The mon and every OSD are killed and started again while a writer runs: the
    client pauses and resumes, and every byte verifies."""
    c = cluster
    c.pool("rbd", 2, 1, 8)
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", seconds=30, depth=8)
    wait_progress(w, 200, 120)
    for osd in c.osds:
        c.kill_osd(osd)
    c.kill_mon(0)
    time.sleep(1)
    c.start_mon(0)
    for osd in c.osds:
        c.start_osd(osd)
    paused_at = progress(w)
    assert w.wait(300) == 0, w.log()
    assert progress(w) > paused_at
    assert "verified 33554432 bytes" in w.log()


def test_clean_wait_returns_a_final_map(procs, vstor_bin, tmp_path):
    """An OSD returns: the PGs it led become clean under their interim primary
    before the monitor gives them back to it (placement balances primaries), so
    every PG reads clean on a map that is about to change. wait_active(clean=True)
    must not return on that map: a test acting on the primaries it names would
    act on ones about to lose their PGs. The monitor's change delay is 8 s here
    (osd.2 takes about 3 s to peer with the returned osd.1 under ASan), so that
    interim map lasts long enough to be seen; 8 s leaves room for a loaded
    CI machine)."""
    delay = 8
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, mon_change_delay=f"{delay}s")
    c.add_osds(2)
    pool = c.pool("rbd", 2, 1, 8)
    c.image("img", "8M", "rbd")
    c.wait_active("rbd", clean=True)

    def primaries():
        return [g["primary"] for g in c.get("config/pgs")["pools"][str(pool)]["pgs"]]
    assert set(primaries()) == {1, 2}, primaries()
    c.kill_osd(1, signal.SIGTERM)  # a clean stop revokes the lease: down at once
    wait_for(lambda: c.pgs_in("rbd", lambda w: w[0] == "active" and "degraded" in w,
                              current=True), 60, interval=0.3, what="every PG on osd.2 alone")
    ok(c.verify("img", ops=100, depth=4, save=tmp_path / "model"))
    time.sleep(delay + 0.5)  # no plan of the monitor due: osd.1's return starts the delay
    c.start_osd(1)
    # The case under test: every PG clean on the current map, all led by osd.2.
    wait_for(lambda: c.pgs_in("rbd", lambda w: w == ["active"], current=True) and
             all(s["primary"] == 2 for s in c.pg_states("rbd").values()), 60, interval=0.1,
             what="every PG clean under osd.2 before osd.1 gets primaries back")
    c.wait_active("rbd", clean=True, timeout=90)
    final = primaries()
    assert 1 in final, final
    time.sleep(delay + 1)  # longer than the monitor's change delay
    assert primaries() == final
    ok(c.verify("img", check=tmp_path / "model"))


def test_degraded_pg_state_written_on_change_only(cluster, tmp_path):
    """A PG that stays degraded stores pg/state when its state changes, not again and
    again: over 4 s of a degraded pool under a writer, no pg/state key is written and
    the whole metadata store moves by a handful of revisions (it used to be ~140
    writes per second per PG, all through the Raft log)."""
    c = cluster
    c.pool("rbd", 2, 1, 4)
    c.image("img", "16M", "rbd")
    c.wait_active("rbd", clean=True)
    c.kill_osd(3)
    pid = c.pool_id("rbd")

    def settled():
        st = c.pg_states(pid)
        return len(st) == 4 and all(s["state"][0] == "active" and 3 not in s["peers"]
                                    for s in st.values())
    wait_for(settled, 120, interval=0.3, what="every PG active without osd.3")
    assert any("degraded" in s["state"] for s in c.pg_states(pid).values())
    time.sleep(1)
    w = c.start_verify("img", seconds=6, depth=4)
    wait_progress(w, 50, 60)
    rev0, v0 = c.revisions(f"pg/state/{pid}/")
    time.sleep(4)
    rev1, v1 = c.revisions(f"pg/state/{pid}/")
    assert w.wait(120) == 0, w.log()
    assert v1 == v0, (v0, v1)
    assert rev1 - rev0 <= 8, (rev0, rev1)


def test_full_osd_does_not_loop_repeering(procs, vstor_bin, tmp_path):
    """An OSD whose store is full fails its writes and recoveries with ENOSPC: the
    PG re-peers (bumping its epoch and storing pg/history) at most once a second
    for it, not in a tight loop (it used to do ~1000 epochs per second)."""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osd(size="1G")
    c.add_osd(size="160M")
    c.pool("rbd", 2, 1, 2)
    c.image("img", "512M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", ops=100000, depth=8)
    wait_for(lambda: "No space left" in c.osd_log(1) + c.osd_log(2), 180, interval=0.5,
             what="a full store")
    pid = c.pool_id("rbd")
    time.sleep(2)
    rev0, v0 = c.revisions(f"pg/history/{pid}/")
    time.sleep(5)
    rev1, v1 = c.revisions(f"pg/history/{pid}/")
    w.signal(signal.SIGKILL)
    for k in v1:
        assert v1[k] - v0.get(k, 0) <= 2 * 6, (v0, v1)  # <= 1 re-peer/s, each 1-2 writes
    assert rev1 - rev0 < 200, (rev0, rev1)
    for o in (1, 2):
        assert c.osds[o]["proc"].alive()


def test_split_brain(procs, vstor_bin, tmp_path):
    """pg_size 2, pg_minsize 1: the PG runs on OSD 2 alone and takes writes; then OSD 2
    stops and OSD 1 returns alone: it must not become active with its stale data.
    When OSD 2 returns, the PG activates, recovers OSD 1, and the data is the newest."""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1)
    c.add_osds(2)
    c.pool("rbd", 2, 1, 1)
    c.image("img", "16M", "rbd")
    c.wait_active("rbd", clean=True)
    ok(c.verify("img", ops=200, depth=4, seed=1, save=tmp_path / "old"))
    c.kill_osd(1)
    wait_for(lambda: c.pgs_in("rbd", lambda w: w[0] == "active" and "degraded" in w), 120,
             interval=0.3, what="the PG active on OSD 2 alone")
    ok(c.verify("img", ops=300, depth=4, seed=2, base=tmp_path / "old", save=tmp_path / "new"))
    c.kill_osd(2)
    c.start_osd(1)
    wait_for(lambda: c.pgs_in("rbd", lambda w: w == ["incomplete"]), 120, interval=0.3,
             what="the PG incomplete on OSD 1 alone")
    time.sleep(2)  # and it stays so
    assert c.pgs_in("rbd", lambda w: w == ["incomplete"])
    assert "the PG ran on" in c.osd_log(1)
    c.start_osd(2)
    c.wait_active("rbd", clean=True, timeout=180)
    ok(c.verify("img", check=tmp_path / "new"))


def test_incomplete_pg_peers_again_when_an_osd_of_its_history_returns(procs, vstor_bin,
                                                                       tmp_path):
    """The PGs run on OSD 2 alone and take writes. OSD 2 hangs (SIGSTOP) while OSDs 1
    and 3 join, and the map moves some PGs to OSDs 1 and 3 alone; their new primaries
    wait for OSD 2, which holds the data. OSD 2 is killed and restarted: its new
    registration ends the old lease (down: those PGs become incomplete) and at once
    brings it back up -- outside those PGs' sets, named only by their history. They
    must peer again, take the data from it and activate with the newest data.
    (The demo hung on this: an fio run through NBD waited forever.)"""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, lease_ttl="30s")
    c.add_osds(3)
    c.wait_osds_registered()
    for o in (1, 3):
        c.kill_osd(o, signal.SIGTERM)  # a clean stop revokes the lease: down at once
    c.pool("rbd", 2, 1, 8)
    c.image("img", "32M", "rbd")
    wait_for(lambda: c.pgs_in("rbd", lambda w: w[0] == "active", current=True), 120,
             interval=0.3, what="the PGs active on OSD 2 alone")
    ok(c.verify("img", ops=300, depth=4, seed=1, save=tmp_path / "model"))
    c.osds[2]["proc"].signal(signal.SIGSTOP)
    c.start_osd(1)
    c.start_osd(3)

    def moved():
        pgs = c.get("config/pgs")["pools"][str(c.pool_id("rbd"))]["pgs"]
        return [i for i, m in enumerate(pgs) if 2 not in m["osd_set"]]
    wait_for(moved, 60, interval=0.3, what="PGs moved off OSD 2")
    ids = moved()
    c.kill_osd(2)
    c.start_osd(2)
    c.wait_active("rbd", clean=True, timeout=120)
    assert set(ids) & set(moved()), "the case under test: OSD 2 only in their history"
    # (Whether a PG went incomplete on the way depends on whether the new primaries
    # saw OSD 2's down and up as two events: most runs do, and without the fix
    # those hung here; the outcome is checked either way.)
    ok(c.verify("img", check=tmp_path / "model"))


def test_frozen_osd_under_writer(cluster, tmp_path):
    """An OSD hangs (SIGSTOP: a stuck disk, a frozen VM) while a writer runs. The
    writer pauses until the OSD's lease expires, then goes on without it; when the
    OSD thaws it finds its lease gone, steps back without serving anything stale,
    and rejoins. Every byte is verified at the end."""
    c = cluster
    c.pool("rbd", 2, 1, 8)
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", seconds=40, depth=8, save=tmp_path / "model")
    wait_progress(w, 200, 120)
    frozen = c.osds[2]["proc"]
    frozen.signal(signal.SIGSTOP)
    try:
        at = progress(w)
        wait_progress(w, at + 200, 60)  # resumed without OSD 2 (lease ttl 5 s)
    finally:
        frozen.signal(signal.SIGCONT)
    assert w.wait(300) == 0, w.log()
    assert "verified 33554432 bytes" in w.log()
    c.wait_active("rbd", clean=True, timeout=120)
    assert frozen.alive(), c.osd_log(2)[-3000:]
    ok(c.verify("img", check=tmp_path / "model"))


def test_metadata_service_outage_under_writer(cluster, tmp_path):
    """Every mon stops while a writer runs on active PGs: I/O goes on (longer than the
    OSD lease TTL); the mons return and everything resumes without operator action."""
    c = cluster
    c.pool("rbd", 2, 1, 8)
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", seconds=30, depth=8)
    wait_progress(w, 200, 120)
    c.kill_mon(0)
    down_at = progress(w)
    time.sleep(8)  # > osd_lease_ttl (5 s)
    during = progress(w)
    assert during > down_at + 100, (down_at, during)
    c.start_mon(0)
    assert w.wait(300) == 0, w.log()
    assert "verified 33554432 bytes" in w.log()
    # The OSDs kept their leases across the outage (a new leader restarts every TTL):
    # no PG re-peered because of it, and every PG is still active and reported.
    c.wait_active("rbd", clean=True)
    for osd in c.osds:
        log = c.osd_log(osd)
        assert "lease" in log and "expired" not in log, log


def test_peer_restarted_while_primary_frozen(procs, vstor_bin, tmp_path):
    """The primary of a PG hangs (SIGSTOP) under a writer; meanwhile another OSD
    of the set is killed -9 and starts again on a new port. When the primary
    thaws it learns both at once (down, moved, up) and closes its connection to
    the old address, while writes queued behind others on their objects go on
    to send to the set: they must not use the closed connection (a use after
    free found by test_chaos.py, seed 200 with two OSDs down), but fail
    retryably while the PG re-peers. Every byte verifies."""
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, lease_ttl="6s")  # the frozen keeps it
    c.add_osds(3)
    pool = c.pool("rbd", 3, 2, 1)
    c.image("img", "1M", "rbd")  # 8 objects: writes queue up behind each other
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", seconds=25, depth=8, save=tmp_path / "model")
    wait_progress(w, 200, 60)
    for _ in range(3):
        primary = c.get("config/pgs")["pools"][str(pool)]["pgs"][0]["primary"]
        other = next(o for o in c.osds if o != primary)
        old = c.get(f"osd/state/{other}")["addresses"]
        c.osds[primary]["proc"].signal(signal.SIGSTOP)
        try:
            c.kill_osd(other)
            c.start_osd(other)
            wait_for(lambda: (c.get(f"osd/state/{other}") or {}).get("addresses", old) != old,
                     30, what=f"osd.{other} registered again")
        finally:
            c.osds[primary]["proc"].signal(signal.SIGCONT)
        c.wait_active("rbd", timeout=60)
        assert c.osds[primary]["proc"].alive(), c.osd_log(primary)[-3000:]
    assert w.wait(300) == 0, w.log()
    assert "verified 1048576 bytes" in w.log()
    c.wait_active("rbd", clean=True, timeout=60)
    ok(c.verify("img", check=tmp_path / "model"))


def test_client_gone_mid_write_payload(cluster, tmp_path):
    """A client's connection ends while the primary receives a WRITE's data (the
    client died, or its link went down: found by test_chaos.py, seed 102). The
    primary drops that write without a trace: it stays up, the PG's count of
    ops in flight is back to zero (else it could never re-peer), and data
    written before and after verifies."""
    c = cluster
    pool = c.pool("rbd", 2, 1, 1)
    c.image("img", "8M", "rbd")
    c.wait_active("rbd", clean=True)
    ok(c.verify("img", ops=200, depth=4, seed=1, save=tmp_path / "model"))
    inode = json.loads(c.ok("info", "img", "--json"))["inode"]
    primary = c.get("config/pgs")["pools"][str(pool)]["pgs"][0]["primary"]
    ip, port = c.get(f"osd/state/{primary}")["addresses"][0].rsplit(":", 1)
    with socket.create_connection((ip, int(port)), timeout=10) as s:
        s.sendall(frame(1, 1, hello_body(c.cluster_id(), 1)))
        assert len(recv_exact(s, 128)) == 128  # its HELLO
        s.sendall(frame(17, 2, struct.pack("<QQII", inode, 0, 4096, 0), data_len=4096))
        s.sendall(b"\x5a" * 1000)  # 1000 of the 4096 bytes, then the connection ends
    time.sleep(1)
    assert c.osds[primary]["proc"].alive(), c.osd_log(primary)[-3000:]
    # The PG re-peers (the other OSD goes): it waits for no op in flight.
    other = next(o for o in c.osds if o != primary)
    c.kill_osd(other)
    c.wait_active("rbd", timeout=60)
    ok(c.verify("img", check=tmp_path / "model"))
    c.start_osd(other)
    c.wait_active("rbd", clean=True, timeout=60)
    ok(c.verify("img", ops=200, depth=4, seed=2, base=tmp_path / "model"))


def test_bad_input(cluster, tmp_path, vstor):
    c = cluster
    c.pool("rbd", 2, 1, 4)
    c.image("img", "8M", "rbd")
    c.wait_active("rbd", clean=True)
    # A malformed frame closes only that connection.
    addr = c.get("osd/state/1")["addresses"][0]
    ip, port = addr.rsplit(":", 1)
    with socket.create_connection((ip, int(port)), timeout=10) as s:
        s.sendall(b"\xff" * 128)
        s.settimeout(10)
        assert s.recv(4096) == b""  # closed by the OSD
    assert c.osds[1]["proc"].alive()
    assert "malformed frame" in c.osd_log(1)
    ok(c.verify("img", ops=100, depth=4, save=tmp_path / "model"))
    # The checker's own precondition: a run whose starting model is not what
    # the image holds (zeros on an image written before) stops before writing;
    # with the last run's model as --base it goes on (test_osd_netns.py's
    # writers once compared against zeros and failed where they left old data).
    r = c.verify("img", ops=50, depth=4, seed=7)
    assert r.returncode == 1 and "before writing" in r.stderr and "--base" in r.stderr, r.stderr
    ok(c.verify("img", ops=50, depth=4, seed=7, base=tmp_path / "model"))
    # Reads and writes across the image's end: -EINVAL.
    r = c.verify("img", past_end=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Invalid argument") == 2
    # An unknown image or pool: a clear error and exit code.
    r = c.verify("nosuch")
    assert r.returncode == 1 and "not found" in r.stderr
    r = c.vstor("create", "x", "--size", "8M", "--pool", "nosuch")
    assert r.returncode != 0 and "nosuch" in r.stderr
    # An OSD on a device of another cluster refuses to start, and says why.
    dev = tmp_path / "foreign.dev"
    dev.write_bytes(b"")
    import subprocess
    subprocess.run(["truncate", "-s", "256M", str(dev)], check=True)
    r = c.vstor("disk", "format", dev, "--osd-id", 9, "--cluster-id", "0x1234")
    assert r.returncode == 0, r.stderr
    p = c.procs.start("osd", "--device", dev, "--mon-address", c.mon_address, name="foreign")
    assert p.wait(60) == 1
    assert "belongs to cluster 0000000000001234" in p.log()
    assert c.get("osd/state/9") is None
