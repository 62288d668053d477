# SPDX-License-Identifier: GPL-3.0-or-later
"""`vstor osd` on three network-namespace hosts, one mon and one OSD each, with
the host as the failure domain: random patterns written and read back through
libvstor from the first host, then kill -9 of another host's OSD while a
writer runs: the writer pauses, completes, and every byte verifies."""
import pytest

from vstor_cluster import Cluster, progress, wait_progress

pytestmark = pytest.mark.netns


def test_three_hosts_patterns_and_kill9(procs, vstor_bin, tmp_path, netns):
    hosts = netns.make_hosts(3)
    c = Cluster(procs, vstor_bin, tmp_path, mons=3, hosts=hosts)
    c.add_osds(3)
    c.pool("rbd", 3, 2, 16, failure_domain="host")
    c.pool("two", 2, 1, 8, failure_domain="host")
    c.image("a", "48M", "rbd")
    c.image("b", "32M", "two")
    c.wait_active("rbd", clean=True)
    c.wait_active("two", clean=True)
    pgs = c.get("config/pgs")["pools"][str(c.pool_id("rbd"))]["pgs"]
    assert all(sorted(p["osd_set"]) == [1, 2, 3] for p in pgs), pgs
    for img, seed in (("a", 1), ("b", 2)):
        r = c.verify(img, host=hosts[0], ops=500, depth=8, seed=seed)
        assert r.returncode == 0 and "verified" in r.stdout, r.stderr
    w = c.start_verify("a", host=hosts[0], seconds=20, depth=16, seed=3)
    wait_progress(w, 300, 120)
    c.kill_osd(3)
    before = progress(w)
    assert w.wait(300) == 0, w.log()
    assert progress(w) > before
    assert "verified 50331648 bytes" in w.log()
    states = c.pg_states("rbd")
    assert all(s["state"][0] == "active" and 3 not in s["peers"] for s in states.values())
