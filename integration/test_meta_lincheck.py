# SPDX-License-Identifier: GPL-3.0-or-later
"""Linearizability of the metadata service under faults.

Concurrent clients (`vstor meta bench --workload lincheck`) do get, put and
compare-and-swap on a few keys of a 3- or 5-member cluster while members are
killed with SIGKILL and restarted, and partitioned off the network and
healed; the recorded history is then checked by lincheck.py (WGL search with
memoisation). Any violation fails the run.

`make test` runs META_LINCHECK_RUNS (default 2) runs; the full campaign is
`make lincheck-soak` (20 runs, LINCHECK_RUNS=N for more), which totals the
runs' summary lines with `lincheck.py --summary`; its result is recorded in
docs/metadata.md ("Linearizability")."""
import json
import os
import random
import time

import pytest

from lincheck import check, load_history
from meta_cluster import MetaCluster

RUNS = int(os.environ.get("META_LINCHECK_RUNS", "2"))
SECONDS = int(os.environ.get("META_LINCHECK_SECONDS", "15"))
SEED = int(os.environ.get("META_LINCHECK_SEED", "1"))

pytestmark = pytest.mark.netns


def inject_faults(c, rng, until):
    """One fault at a time: kill -9 (the leader or anyone) and restart, or cut
    a member (the leader or anyone) off the network and heal it."""
    log = []
    n = len(c.members)
    while time.monotonic() < until:
        time.sleep(rng.uniform(0.8, 2.0))
        if time.monotonic() >= until:
            break
        leader = c.leader()
        kind = rng.choice(["kill_leader", "kill", "cut_leader", "cut"])
        victim = leader if "leader" in kind and leader is not None else rng.randrange(n)
        down = rng.uniform(0.5, 2.5)
        log.append((round(time.monotonic(), 2), kind, victim, round(down, 2)))
        if kind.startswith("kill"):
            c.kill(victim)
            time.sleep(down)
            c.start(victim, init=False)
        else:
            c.members[victim].host.link_down()
            time.sleep(down)
            c.members[victim].host.link_up()
    return log


@pytest.mark.parametrize("run", range(RUNS))
def test_linearizable_under_faults(netns, procs, vstor_bin, tmp_path, run):
    rng = random.Random(SEED * 1000 + run)
    n = 3 if run % 2 == 0 else 5
    c = MetaCluster(netns, procs, vstor_bin, tmp_path, n)
    c.start_all()
    hist = tmp_path / "history.jsonl"
    bench = procs.start("meta", "bench", "--workload", "lincheck", "--clients", 4, "--keys", 3,
                        "--seconds", SECONDS, "--history", hist, "--json",
                        "--mon-address", c.mon_addresses(), "--meta-timeout", "2s",
                        prefix=c.client.prefix(), name="bench")
    faults = inject_faults(c, rng, time.monotonic() + SECONDS - 1)
    assert bench.wait(120) == 0, bench.log()
    history = load_history(hist)
    ok = sum(1 for op in history if op["r"] == "ok")
    unknown = sum(1 for op in history if op["r"] == "unknown")
    bad = check(history)
    summary = {"run": run, "members": n, "ops": len(history), "ok": ok, "unknown": unknown,
               "faults": len(faults), "violations": bad}
    print(json.dumps(summary), faults)
    out = os.environ.get("META_LINCHECK_SUMMARY")
    if out:
        with open(out, "a") as f:
            f.write(json.dumps(summary) + "\n")
    assert ok > 100, summary  # the cluster did serve through the faults
    assert bad == [], summary
