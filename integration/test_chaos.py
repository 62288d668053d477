# SPDX-License-Identifier: GPL-3.0-or-later
"""Chaos soak of the replicated data path: no acknowledged write is lost under
random combinations and sequences of faults (issue 6).

Four network-namespace hosts: the mon and the clients on hosts[0], osd.N on
hosts[N] (host failure domain). A pool of pg_size 3 / pg_minsize 2 and one of
pg_size 2 / pg_minsize 1, an image in each, an osd_verify writer at depth 8 on
each. A seeded schedule (chaos.py) kills -9, freezes and cuts OSDs off the
network, cuts one off the mon only, and kills -9 the mon, each for 0.5-5 s,
overlapping; at most VSTOR_CHAOS_MAX_DOWN OSDs (default 1) down at once. Then,
with every fault healed: every PG is active and clean again, the writers
completed every op (an error is a failure) and read every byte back equal to
their model, a fresh client reads the same, and no daemon crashed.

  VSTOR_CHAOS_SEED     the first run's seed (default 1); run k uses SEED + k
  VSTOR_CHAOS_SECONDS  how long faults start (default 45)
  VSTOR_CHAOS_RUNS     how many runs (default 1)
  VSTOR_CHAOS_MAX_DOWN OSDs down at once (default 1; 2 pauses the pg_size 3 pool)

`make test` runs one 45 s run; `make chaos-soak` runs several long ones
(integration/README.md). On failure the test prints the seed, the fault log
and the tail of every daemon's log; the same seed replays the same schedule."""
import os
import random

import pytest

from chaos import Chaos, run_writers, setup_osds_and_images, schedule
from vstor_cluster import Cluster

SEED = int(os.environ.get("VSTOR_CHAOS_SEED", "1"))
SECONDS = float(os.environ.get("VSTOR_CHAOS_SECONDS", "45"))
RUNS = int(os.environ.get("VSTOR_CHAOS_RUNS", "1"))
MAX_DOWN = int(os.environ.get("VSTOR_CHAOS_MAX_DOWN", "1"))
IMAGES = {"a": ("three", 3, 2, 32 << 20), "b": ("two", 2, 1, 32 << 20)}

pytestmark = pytest.mark.netns


@pytest.mark.parametrize("run", range(RUNS))
def test_no_acknowledged_write_lost_under_chaos(procs, vstor_bin, tmp_path, netns, run):
    seed = SEED + run
    print(f"chaos seed {seed}, {SECONDS:g} s, at most {MAX_DOWN} OSD(s) down")
    hosts = netns.make_hosts(4)
    c = Cluster(procs, vstor_bin, tmp_path, mons=1, hosts=hosts, lease_ttl="3s")
    setup_osds_and_images(c, hosts[1:], IMAGES)
    faults = schedule(random.Random(seed), SECONDS, list(c.osds), MAX_DOWN)
    chaos = Chaos(c, hosts[0])
    run_writers(c, chaos, faults, SECONDS, hosts[0], tmp_path, seed, IMAGES)
