# SPDX-License-Identifier: GPL-3.0-or-later
"""The lone-op spin (loop_spin_lone_us, vstor/loop.h) with real processes: 1 mon
+ 3 OSDs on files whose OSDs spin for their lone ops, and osd_verify clients
that spin for their lone requests. Data written at depth 1 (every op a lone
one: both sides spin) and at depth 8 (the gate mostly closed) reads back
intact; the OSDs survive a restart and the spinning client checks it again;
and `vstor bench` runs its T1Q1 tests with the key set on the command line."""
import signal

from vstor_cluster import Cluster, ok


def test_lone_spin_cluster_keeps_data(procs, vstor_bin, tmp_path):
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, osd_args=["--loop-spin-lone-us", "300"])
    c.add_osds(3)
    c.pool("p2", 2, 1, 8)
    c.image("q1", "16M", "p2")
    c.image("q8", "16M", "p2")
    c.wait_active("p2", clean=True)
    r = c.verify("q1", ops=400, depth=1, seed=3, spin_lone_us=300, save=tmp_path / "q1.model")
    ok(r)
    assert "verified 16777216 bytes" in r.stdout + r.stderr
    r = c.verify("q8", ops=600, depth=8, seed=4, spin_lone_us=300, save=tmp_path / "q8.model")
    ok(r)
    for osd in c.osds:
        c.kill_osd(osd, signal.SIGTERM)
    for osd in c.osds:
        c.start_osd(osd)
    c.wait_active("p2")
    ok(c.verify("q1", check=tmp_path / "q1.model", spin_lone_us=300))
    ok(c.verify("q8", check=tmp_path / "q8.model", spin_lone_us=300))
    b = c.vstor("bench", "--image", "q1", "--runtime", "1", "--ramp", "0", "--tests",
                "randwrite-4k-q1,randread-4k-q1", "--loop-spin-lone-us", "300")
    assert b.returncode == 0, b.stderr
    assert "randread-4k-q1" in b.stdout
    for osd in c.osds:  # a clean stop says so, and no sanitizer report
        assert "ERROR" not in c.osd_log(osd), c.osd_log(osd)
