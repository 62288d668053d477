# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor osd` on three network-namespace hosts, one mon and one OSD each, with
the host as the failure domain, clients on the first host:
 - pools with pg_size 1, 2 and 3; random patterns written and read back
   through libvstor; kill -9 of another host's OSD while writers run (they
   pause, complete, and every byte verifies); the OSD returns with stale
   replicas, which peering finds and recovery rewrites before the PGs are
   clean; then the data is read back with the recovered replicas alone;
 - the whole cluster (3 mons, 3 OSDs) killed and started again under a
   writer: the client resumes and every byte verifies;
 - a host cut off the network (its OSD and mon keep running) under a writer,
   then connected again: its OSD rejoins and its stale replicas recover;
 - an OSD host cut off the mon host only (it still reaches its peers and a
   client on its own host): once another OSD took its PGs over and a write
   there was acknowledged, no read through it returns the old data (the read
   lease, docs/data-path.md §3)."""
import datetime
import signal
import time

import pytest

from vstor_cluster import Cluster, ok, progress, wait_progress
from vstor_fixtures import wait_for

pytestmark = pytest.mark.netns


def test_three_hosts_patterns_kill9_and_stale_replica(procs, vstor_bin, tmp_path, netns):
    hosts = netns.make_hosts(3)
    c = Cluster(procs, vstor_bin, tmp_path, mons=3, hosts=hosts)
    c.add_osds(3)
    c.pool("rbd", 3, 2, 16, failure_domain="host")
    c.pool("two", 2, 1, 8, failure_domain="host")
    c.pool("one", 1, 1, 4, failure_domain="host")
    c.image("a", "48M", "rbd")
    c.image("b", "32M", "two")
    c.image("c", "16M", "one")
    for pool in ("rbd", "two", "one"):
        c.wait_active(pool, clean=True)
    pgs = c.get("config/pgs")["pools"][str(c.pool_id("rbd"))]["pgs"]
    assert all(sorted(p["osd_set"]) == [1, 2, 3] for p in pgs), pgs
    for img, seed in (("a", 1), ("b", 2), ("c", 4)):
        ok(c.verify(img, host=hosts[0], ops=500, depth=8, seed=seed,
                    save=tmp_path / f"{img}.first"))
    # kill -9 osd.3 under two writers (pg_size 3 and pg_size 2). Each starts
    # from what the first run left (--base): bytes it never overwrites still
    # hold that run's data, not zeros.
    wa = c.start_verify("a", name="wa", host=hosts[0], seconds=20, depth=16, seed=3,
                        base=tmp_path / "a.first", save=tmp_path / "a.model")
    wb = c.start_verify("b", name="wb", host=hosts[0], seconds=20, depth=16, seed=5,
                        base=tmp_path / "b.first", save=tmp_path / "b.model")
    wait_progress(wa, 300, 120)
    c.kill_osd(3)
    before = progress(wa)
    assert wa.wait(300) == 0, wa.log()
    assert wb.wait(300) == 0, wb.log()
    assert progress(wa) > before
    assert "verified 50331648 bytes" in wa.log()
    assert "verified 33554432 bytes" in wb.log()
    states = c.pg_states("rbd")
    assert all(s["state"][0] == "active" and 3 not in s["peers"] for s in states.values())
    # osd.3 returns with stale replicas: recovered during peering, then clean.
    c.start_osd(3)
    c.wait_active("rbd", clean=True, timeout=180)
    c.wait_active("two", clean=True, timeout=180)
    logs = "".join(c.osd_log(o) for o in (1, 2, 3))
    assert "unclean (" in logs and "clean (epoch" in logs
    # The PGs of "two" that osd.3 shares with the victim now read osd.3's copies alone.
    pgs = c.get("config/pgs")["pools"][str(c.pool_id("two"))]["pgs"]
    victim = next(o for o in (1, 2) if any(sorted(p["osd_set"]) == [o, 3] for p in pgs))
    c.kill_osd(victim)
    c.wait_active("two", timeout=180)
    ok(c.verify("b", host=hosts[0], check=tmp_path / "b.model"))
    ok(c.verify("a", host=hosts[0], check=tmp_path / "a.model"))


def test_three_hosts_whole_cluster_restart_under_writer(procs, vstor_bin, tmp_path, netns):
    hosts = netns.make_hosts(3)
    c = Cluster(procs, vstor_bin, tmp_path, mons=3, hosts=hosts)
    c.add_osds(3)
    c.pool("rbd", 2, 1, 8, failure_domain="host")
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    w = c.start_verify("img", host=hosts[0], seconds=30, depth=8)
    wait_progress(w, 200, 120)
    for osd in c.osds:
        c.kill_osd(osd)
    for i in range(3):
        c.kill_mon(i, signal.SIGKILL)
    time.sleep(1)
    for i in range(3):
        c.start_mon(i)
    for osd in c.osds:
        c.start_osd(osd)
    paused_at = progress(w)
    assert w.wait(300) == 0, w.log()
    assert progress(w) > paused_at
    assert "verified 33554432 bytes" in w.log()


def stamp(log, text):
    """The timestamp (ISO text, sortable) of the first log line containing text."""
    return next((line.split()[0] for line in log.splitlines() if text in line), None)


def test_partitioned_host_under_writer(procs, vstor_bin, tmp_path, netns):
    """The cable of the host of the metadata leader is pulled while a writer on
    another host runs: that host's OSD and mon (now a minority of one) are cut off
    but keep running. The other mons elect a leader; the OSDs and the client leave
    the silent member for it, and the writer goes on after the cut-off OSD's lease
    expires. The cut-off OSD must stop serving before the others can take its PGs
    over (no stale read). The cable goes back: the OSD registers again and its
    stale replicas are recovered before the PGs are clean. Every byte verifies,
    also when read from the returned OSD's copies."""
    hosts = netns.make_hosts(3)
    c = Cluster(procs, vstor_bin, tmp_path, mons=3, hosts=hosts)
    c.add_osds(3)  # osd.N on hosts[N - 1], next to mon N
    c.pool("rbd", 2, 1, 8, failure_domain="host")
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    cut = wait_for(c.leader, 30, interval=0.5, what="a metadata leader")
    others = [o for o in (1, 2, 3) if o != cut]
    addr = {o: c.get(f"osd/state/{o}")["addresses"][0] for o in others}
    client = hosts[others[0] - 1]
    w = c.start_verify("img", host=client, seconds=40, depth=8, save=tmp_path / "model")
    wait_progress(w, 200, 120)
    cut_stamp = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")  # sorts with the logs' stamps
    hosts[cut - 1].link_down()
    try:
        cut_at = progress(w)
        wait_progress(w, cut_at + 300, 90)  # on without it (lease ttl 5 s)
    finally:
        hosts[cut - 1].link_up()
    assert w.wait(300) == 0, w.log()
    assert "verified 33554432 bytes" in w.log()
    assert c.osds[cut]["proc"].alive(), c.osd_log(cut)[-3000:]
    # No stale read: the cut-off OSD lost both of its peers (and so stopped its
    # PGs) before the others saw its lease expire and could take its PGs over.
    # (Only the peers it had a connection to when cut: with none, it serves
    # nothing of theirs. One it first connected to after the link came back --
    # e.g. to wipe it as a superseded OSD of a PG it is primary of -- had
    # nothing to lose.)
    log = c.osd_log(cut)
    used = [o for o in others
            if (stamp(log, f"connection to {addr[o]} up") or "~") < cut_stamp]
    lost = [stamp(log, f"connection to {addr[o]} lost") for o in used]
    down = [stamp(c.osd_log(o), f"osd.{cut} is down") for o in others]
    assert used and None not in lost + down, (used, lost, down)
    assert max(lost) < min(down), (lost, down)
    for o in others:  # they left the silent leader and kept their leases
        assert "expired" not in c.osd_log(o), c.osd_log(o)[-3000:]
    c.wait_active("rbd", clean=True, timeout=180)
    # Read back with the returned OSD's copies alone where it shares a PG.
    c.kill_osd(others[1])
    c.wait_active("rbd", timeout=180)
    ok(c.verify("img", host=client, check=tmp_path / "model"))


def poll_reads(proc):
    """[(start_us, end_us, rc, old, new, sectors)] of an osd_verify --poll-read."""
    return [tuple(int(v) for v in line.split()[1:]) for line in proc.log().splitlines()
            if line.startswith("read ")]


def test_no_stale_read_from_primary_cut_from_mons(procs, vstor_bin, tmp_path, netns):
    """The primary's host loses the mon host only: the primary A still reaches
    the other OSD B of its one PG (pg_size 2) and a reader on its own host,
    which keeps the old map (it cannot reach the mon either) and goes on
    reading through A. The mon makes B the primary once A's lease expires; B
    has no connection to A yet, so it peers without it, and a writer on the
    mon host writes a new pattern over the whole image through B alone. From
    the acknowledgement on, no read may return a sector of the old pattern:
    B took the PG lock A held on it, which must stop A at once (the reader
    may wait, until the cut heals). Then every read returns the new pattern."""
    hosts = netns.make_hosts(3)  # hosts[0]: the mon; hosts[1], hosts[2]: osd.1, osd.2
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, hosts=hosts, lease_ttl="3s")
    for i in (1, 2):
        c.add_osd(host=hosts[i])
    pool = c.pool("rbd", 2, 1, 1, failure_domain="host")
    c.image("img", "4M", "rbd")
    c.wait_active("rbd", clean=True)
    size, total = 4 << 20, (4 << 20) // 512

    def primary():
        return c.get("config/pgs")["pools"][str(pool)]["pgs"][0]["primary"]

    def blk_write(seed):  # from the mon host, which reaches everyone
        r = c.verify("img", host=hosts[0], blk_write=f"0:{size}:{seed}", timeout=120)
        assert "rc 0" in r.stdout, (r.stdout, r.stderr)
    blk_write(1)
    a = primary()
    reader = c.procs.start(*hosts[a].prefix(), *c.verify_args("img"), "--poll-read",
                           f"0:{size}:1:2:300", name="reader", vstor=False)
    wait_for(lambda: any(r[2] == 0 and r[3] == total for r in poll_reads(reader)), 60,
             what="the reader reading the first pattern")
    hosts[a].nft_cut(hosts[0].addr)
    try:
        wait_for(lambda: primary() != a, 60, interval=0.2, what="the mon moving the PG")
        blk_write(2)
        acked_us = int(time.time() * 1e6)
        time.sleep(3)  # the reader goes on through A (or waits)
    finally:
        hosts[a].nft_heal()
    healed_us = int(time.time() * 1e6)
    wait_for(lambda: any(r[0] > healed_us and r[2] == 0 and r[4] == total
                         for r in poll_reads(reader)), 90, interval=0.3,
             what="the reader reading the new pattern after the heal")
    reader.stop()
    reads = poll_reads(reader)
    after = [r for r in reads if r[0] > acked_us]
    stale = [r for r in after if r[2] == 0 and r[3] > 0]
    assert not stale, (f"stale read: {stale[0][3]} of {total} sectors of the old pattern, in "
                       f"a read started {(stale[0][0] - acked_us) / 1e3:.0f} ms after the "
                       f"new pattern was acknowledged ({len(stale)} of {len(after)} reads "
                       f"since then)")
    assert all(r[2] == 0 and r[3] + r[4] == total for r in reads), \
        [r for r in reads if r[2] != 0 or r[3] + r[4] != total][:5]
