# SPDX-License-Identifier: GPL-3.0-or-later
"""Device errors on the data path (docs/data-path.md D7.8, vstor/osd/osd_fault.c):
1 mon + 3 OSDs on files on loopback, pools of pg_size 2. The OSDs run with the
test-only fault hook (`enable_debug` + `debug_fault_dir`): while the file
DIR/osd.<id>.eio exists, that OSD's store writes and fsyncs fail with EIO, which
breaks its store (read-only until reopened). Such an OSD is primary of some PGs
and secondary of others, so both sides are exercised: the primaries whose
SEC_WRITE_STABLE / SEC_SYNC to it fail must not acknowledge, the client must
retry until the PGs run without it, and every acknowledged byte must read back,
also after the failed OSD comes back and is recovered. Data is written and
checked byte by byte by osd_verify (vstor/osd/tests/osd_verify.c)."""
import json
import re
import signal
import subprocess

from vstor_cluster import Cluster, assert_debug_option_refused, ok, progress, wait_progress
from vstor_fixtures import wait_for


def faulty_cluster(procs, vstor_bin, tmp_path, lazy=False, n=3):
    faults = tmp_path / "faults"
    faults.mkdir()
    args = ["--enable-debug", "true", "--debug-fault-dir", str(faults)]
    if lazy:
        args += ["--store-lazy-sync", "true"]
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, osd_args=args)
    c.add_osds(n)
    for osd in c.osds:
        wait_for(lambda osd=osd: "fault hook on" in c.osd_log(osd), 30, interval=0.1,
                 what=f"osd.{osd} with the fault hook")
    return c, faults


def wait_failed(c, osd):
    """The OSD whose store broke stops by itself, with exit code 1, and says why."""
    p = c.osds[osd]["proc"]
    wait_for(lambda: not p.alive(), 60, interval=0.2, what=f"osd.{osd} to stop")
    assert p.wait(1) == 1, p.log()
    assert "the store failed" in p.log(), p.log()


def test_fault_hook_needs_enable_debug(procs, vstor_bin, tmp_path):
    """The hook cannot be switched on by accident: without enable_debug the OSD
    refuses to start and says why."""
    assert_debug_option_refused(procs, vstor_bin, tmp_path, ["--debug-fault-dir", str(tmp_path)])


def test_secondary_eio_under_writer(procs, vstor_bin, tmp_path):
    """An OSD's device starts failing while a writer runs (durable acks): the writes
    it takes part in fail on it; no primary acknowledges them; the OSD stops; the
    writer pauses, completes on the two OSDs left, and every byte verifies. The OSD
    comes back (the fault gone): its store recovers, peering recovers its stale
    objects, and then the data is read from it and one other OSD alone."""
    c, faults = faulty_cluster(procs, vstor_bin, tmp_path)
    # osd.2 is never a primary (every PG of 2 holds osd.1 or osd.3, and they carry the
    # affinity tag): so its failure is always seen through secondary writes, never by
    # its own primary write failing first, which would leave no SEC error to check.
    for osd in (1, 3):
        c.ok("meta", "put", f"config/osd/{osd}", json.dumps({"tags": ["prim"]}))
    c.pool("rbd", 2, 1, 8, primary_affinity_tags="prim")
    c.image("img", "32M", "rbd")
    c.wait_active("rbd", clean=True)
    primaries = {pg["primary"] for pg in c.pg_states("rbd").values()}
    assert primaries <= {1, 3}, primaries
    w = c.start_verify("img", seconds=20, depth=16, save=tmp_path / "model")
    wait_progress(w, 200, 120)
    (faults / "osd.2.eio").touch()
    wait_failed(c, 2)
    at_fail = progress(w)
    # Secondary writes failed on it: the primaries answered the client with a retryable
    # error and re-peered (they did not acknowledge).
    logs = c.osd_log(1) + c.osd_log(3)
    assert re.search(r"SEC_(WRITE_STABLE|DELETE) of \S+ to osd.2: Input/output error", logs), logs
    assert w.wait(300) == 0, w.log()
    assert progress(w) > at_fail  # it went on without osd.2
    assert "verified 33554432 bytes" in w.log()
    (faults / "osd.2.eio").unlink()
    c.start_osd(2)
    c.wait_active("rbd", clean=True, timeout=180)
    ok(c.verify("img", check=tmp_path / "model"))
    c.kill_osd(3)  # osd.2's recovered copies serve the PGs it shares with osd.3
    c.wait_active("rbd", timeout=180)
    ok(c.verify("img", check=tmp_path / "model"))
    for osd in (1, 3):
        assert "the store failed" not in c.osd_log(osd)


def test_lazy_sync_fails_on_secondary_then_completes(procs, vstor_bin, tmp_path):
    """Lazy stores, a lazy pool: writes are acknowledged unsynced; then osd.2's device
    fails and the client's SYNC reaches it: its SEC_SYNC (and, where it is primary,
    its own sync) fails, so that SYNC is not acknowledged; the client retries and
    replays until the PGs run without osd.2, and the SYNC then completes. Every
    byte reads back, and again after the two other OSDs are killed with -9 and
    restarted (what the SYNC acknowledged is on them)."""
    c, faults = faulty_cluster(procs, vstor_bin, tmp_path, lazy=True)
    c.pool("lazy", 2, 1, 8, immediate_commit="none")
    c.image("img", "16M", "lazy")
    c.wait_active("lazy", clean=True)
    go = tmp_path / "go"
    w = c.start_verify("img", ops=120, depth=4, sync_wait=str(go), save=tmp_path / "model")
    wait_for(lambda: "waiting for" in w.log() or not w.alive(), 120, interval=0.2,
             what="the writer done writing")
    assert "(lazy 1)" in w.log(), w.log()
    (faults / "osd.2.eio").touch()
    wait_for(lambda: "fail with EIO now" in c.osd_log(2), 10, interval=0.05,
             what="the fault armed")
    go.touch()
    assert w.wait(300) == 0, w.log()
    assert "synced" in w.log() and "verified" in w.log(), w.log()
    wait_failed(c, 2)
    logs = c.osd_log(1) + c.osd_log(3)
    assert "SEC_SYNC to osd.2" in logs or "replayed" in w.log(), (logs, w.log())
    for osd in (1, 3):
        c.kill_osd(osd, signal.SIGKILL)
    (faults / "osd.2.eio").unlink()
    for osd in (1, 2, 3):
        c.start_osd(osd)
    c.wait_active("lazy", timeout=180)
    ok(c.verify("img", check=tmp_path / "model"))


def test_failed_local_write_fences_the_object(procs, vstor_bin, tmp_path):
    """The primary's own write fails (ENOSPC, from the hook) after its secondary took
    it: the secondary holds a version the primary lacks. The next write of that
    object must not reuse the version with other bytes (two replicas, one version,
    different data: reads would change when the primary fails over). The primary
    fences the object until the PG re-peers, which settles it; so the image reads
    the same from the primary and, after it is killed, from the secondary."""
    c, faults = faulty_cluster(procs, vstor_bin, tmp_path, n=2)
    c.pool("rbd", 2, 1, 1)
    c.image("img", "1M", "rbd")
    c.wait_active("rbd", clean=True)
    obj = 128 << 10

    def blk(*args):
        r = subprocess.run(c.verify_args("img") + list(args), capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    assert "rc 0" in blk("--blk-write", f"0:{obj}:1")
    primary = next(iter(c.pg_states("rbd").values()))["primary"]
    (faults / f"osd.{primary}.enospc").touch()
    wait_for(lambda: "fail with ENOSPC now" in c.osd_log(primary), 10, interval=0.05,
             what="the ENOSPC hook armed")
    assert "rc -28" in blk("--blk-write", "0:4096:2")  # failed here, taken by the secondary
    (faults / f"osd.{primary}.enospc").unlink()
    wait_for(lambda: "local client writes pass again" in c.osd_log(primary), 10,
             interval=0.05, what="the ENOSPC hook disarmed")
    assert "rc 0" in blk("--blk-write", "65536:4096:3")
    fenced = "no write to it until the PG re-peers" in c.osd_log(primary)
    blk("--dump", f"{tmp_path / 'from_primary'}:{obj}")
    c.kill_osd(primary)
    c.wait_active("rbd")
    blk("--dump", f"{tmp_path / 'from_secondary'}:{obj}")
    a = (tmp_path / "from_primary").read_bytes()
    b = (tmp_path / "from_secondary").read_bytes()
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    assert not diff, f"{len(diff)} bytes differ between the replicas, first at {diff[0]}"
    assert fenced
