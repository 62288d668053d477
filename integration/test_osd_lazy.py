# SPDX-License-Identifier: GPL-3.0-or-later
"""Lazy commit (docs/data-path.md D7.7): 1 mon + 3 OSDs on files on loopback,
running their stores with store_lazy_sync, and a pool with immediate_commit
none. OSDs acknowledge writes when written; a client SYNC makes the primary
sync its store and send SEC_SYNC to every OSD written since the last SYNC;
libvstor keeps the unsynced writes and replays them when a primary that
acknowledged them is lost. Data is written and checked byte by byte by
osd_verify (vstor/osd/tests/osd_verify.c)."""
import os
import signal

import pytest

from vstor_cluster import Cluster, ok
from vstor_fixtures import wait_for


@pytest.fixture
def cluster(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, osd_args=["--store-lazy-sync", "true"])
    c.add_osds(3)
    for osd in c.osds:
        wait_for(lambda osd=osd: "lazy sync" in c.osd_log(osd), 30, interval=0.1,
                 what=f"osd.{osd} on a lazy store")
    return c


def primaries(c, pool):
    """{osd id: number of PGs of pool it is the primary of}."""
    out = {}
    for st in c.pg_states(pool).values():
        out[st["primary"]] = out.get(st["primary"], 0) + 1
    return out


def test_lazy_sync_then_kill9_reads_back(cluster, tmp_path):
    """Write, sync, kill -9 an OSD: everything reads back, from the OSDs left and
    then, with the OSD back and another one killed, from the restarted one."""
    c = cluster
    c.pool("lazy", 2, 1, 8, immediate_commit="none")
    c.image("img", "32M", "lazy")
    c.wait_active("lazy", clean=True)
    go = tmp_path / "go"
    go.touch()
    r = ok(c.verify("img", ops=400, depth=8, sync_wait=str(go), save=tmp_path / "model"))
    assert "(lazy 1)" in r.stdout and "synced" in r.stdout
    c.kill_osd(1)
    c.wait_active("lazy")
    ok(c.verify("img", check=tmp_path / "model"))
    c.start_osd(1)
    c.wait_active("lazy", clean=True)
    c.kill_osd(2)
    c.wait_active("lazy")
    ok(c.verify("img", check=tmp_path / "model"))
    for osd in (1, 3):
        assert "ERROR" not in c.osd_log(osd), c.osd_log(osd)


def test_lazy_unsynced_writes_replayed_after_primary_kill9(cluster, tmp_path):
    """Writes acknowledged but not synced, then kill -9 of a primary that
    acknowledged some of them, then the sync: it completes (the client replays
    the kept writes to the new primaries) and every byte reads back, then again
    from a fresh client after the killed OSD is back."""
    c = cluster
    c.pool("lazy1", 2, 1, 8, immediate_commit="none")
    c.image("img", "16M", "lazy1")
    c.wait_active("lazy1", clean=True)
    go = tmp_path / "go"
    # 120 ops of up to 256 KiB stay under the client's 32 MiB dirty bound: none is synced
    # before the kill.
    w = c.start_verify("img", ops=120, depth=4, sync_wait=str(go), save=tmp_path / "model")
    wait_for(lambda: "waiting for" in w.log() or not w.alive(), 120, interval=0.2,
             what="the writer done writing")
    assert "(lazy 1)" in w.log(), w.log()
    victim = max(primaries(c, "lazy1").items(), key=lambda kv: kv[1])[0]
    c.kill_osd(victim)
    go.touch()
    assert w.wait(300) == 0, w.log()
    assert "synced" in w.log() and "verified" in w.log(), w.log()
    assert "replayed" in w.log(), w.log()  # the kept writes went to the new primaries
    c.start_osd(victim)
    c.wait_active("lazy1", clean=True)
    ok(c.verify("img", check=tmp_path / "model"))
    others = [o for o in c.osds if o != victim]
    c.kill_osd(others[0])
    c.wait_active("lazy1")
    ok(c.verify("img", check=tmp_path / "model"))
    assert os.path.exists(tmp_path / "model")


def test_immediate_pool_on_lazy_stores(cluster, tmp_path):
    """A pool that commits immediately on OSDs whose stores are lazy: every write is
    synced before its ack, so after kill -9 of every OSD (no client sync at all)
    the data reads back."""
    c = cluster
    c.pool("imm", 2, 1, 8, immediate_commit="all")
    c.image("img", "16M", "imm")
    c.wait_active("imm", clean=True)
    ok(c.verify("img", ops=200, depth=8, save=tmp_path / "model"))
    for osd in c.osds:
        c.kill_osd(osd, signal.SIGKILL)
    for osd in c.osds:
        c.start_osd(osd)
    c.wait_active("imm")
    ok(c.verify("img", check=tmp_path / "model"))
