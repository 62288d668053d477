# SPDX-License-Identifier: GPL-3.0-or-later
"""Chaos soak with a metadata service of three members: no acknowledged write
is lost while the faults hit the raft group as well as the OSDs (issue 6).

Four network-namespace hosts: the clients on hosts[0]; mon N and osd.N on
hosts[N] (like `vstor serve` nodes), so cutting a host off the network takes a
mon and an OSD at once. A pool of pg_size 3 / pg_minsize 2 and one of pg_size
2 / pg_minsize 1, an image in each, an osd_verify writer at depth 8 on each.
A seeded schedule (`mon_schedule`) draws, each held 0.5-5 s and overlapping:
  kill        kill -9 an OSD, start it again
  freeze      SIGSTOP an OSD, SIGCONT it
  cut         host N off the network (link down, or nftables drop): mon N and osd.N
  cut_mons    host N's traffic to and from the mon port of the other hosts dropped:
              mon N is cut off the raft group, osd.N reaches only mon N (a minority)
  mon_kill    kill -9 a mon, start it again
  mon_freeze  SIGSTOP a mon, SIGCONT it
  mon_stop    SIGTERM a mon (it must exit 0, with no leak report), start it again
The target of cut, mon_kill, mon_freeze and mon_stop is a fixed host or mon, or "the
leader": the member that says it is the leader when the fault starts (the
fault log names it). At most VSTOR_CHAOS_MAX_DOWN OSDs (default 1) and
VSTOR_CHAOS_MAX_MONS_DOWN mons (default 1: the raft group keeps its quorum)
are under a fault at once. Then, with every fault healed: every PG is active
and clean, the writers completed every op (an error is a failure) and read
every byte back equal to their model, a fresh client reads the same, no daemon
crashed (exit or sanitizer report), no two members were leader in one term
(their logs), and the raft group has one leader that every member follows,
and every member holds the same metadata at the same revision.

  VSTOR_CHAOS_SEED     the first run's seed (default 1); run k uses SEED + k
  VSTOR_CHAOS_SECONDS  how long faults start (default 40)
  VSTOR_CHAOS_RUNS     how many runs (default 1)
  VSTOR_CHAOS_MAX_DOWN, VSTOR_CHAOS_MAX_MONS_DOWN  faults at once (default 1, 1)

`make test` runs one 40 s run; `make chaos-mons-soak` runs several long ones.
On failure the test prints the seed, the fault log and the tail of every
daemon's log; the same seed replays the same schedule (the member a "leader"
fault hits is the one leading at that moment)."""
import dataclasses
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

from chaos import Chaos, Fault, run_writers, setup_osds_and_images
from vstor_cluster import Cluster
from vstor_fixtures import sanitizer_env, sh, wait_for

SEED = int(os.environ.get("VSTOR_CHAOS_SEED", "1"))
SECONDS = float(os.environ.get("VSTOR_CHAOS_SECONDS", "40"))
RUNS = int(os.environ.get("VSTOR_CHAOS_RUNS", "1"))
MAX_DOWN = int(os.environ.get("VSTOR_CHAOS_MAX_DOWN", "1"))
MAX_MONS_DOWN = int(os.environ.get("VSTOR_CHAOS_MAX_MONS_DOWN", "1"))
IMAGES = {"a": ("three", 3, 2, 32 << 20), "b": ("two", 2, 1, 32 << 20)}

KINDS = ("kill", "freeze", "cut", "cut_mons", "mon_kill", "mon_freeze", "mon_stop")
WEIGHTS = (3, 2, 2, 1, 3, 2, 1)
HITS_OSD = ("kill", "freeze", "cut", "cut_mons")
HITS_MON = ("cut", "cut_mons", "mon_kill", "mon_freeze", "mon_stop")
LEADER = 0  # a target resolved when the fault starts

pytestmark = pytest.mark.netns


@dataclasses.dataclass
class MonFault(Fault):
    """A Fault whose target is host/mon/osd number N (they share a host), or
    LEADER until inject resolves it (`chosen` then says which)."""
    chosen: int = 0

    def __str__(self):
        n = self.chosen or self.target
        what = f"osd.{n}" if self.kind in ("kill", "freeze") else \
            f"mon.{n}" if self.kind.startswith("mon") else f"host {n} (mon.{n}, osd.{n})"
        lead = " (the leader)" if self.target == LEADER else ""
        how = f" ({self.how})" if self.how else ""
        return f"{self.kind}{how} {what}{lead} for {self.hold:.2f}s"


def mon_schedule(rng, seconds, n, max_down=1, max_mons_down=1):
    """Faults starting within [0, seconds) on hosts 1..n, each 0.2-3 s after the
    previous one. A fault on "the leader" held blocks every other fault on a mon
    (and a cut of the leader's host every other fault on an OSD): which one it
    hits is known only when it starts."""
    faults, t = [], rng.uniform(0.5, 2.0)
    while t < seconds:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        hold = round(rng.uniform(0.5, 5.0), 2)
        how = rng.choice(("link", "nft")) if kind == "cut" else ""
        to_leader = kind in ("cut", "mon_kill", "mon_freeze", "mon_stop") and \
            rng.random() < 0.5
        held = [f for f in faults if f.end > t]
        osds_down = {f.target for f in held if f.kind in HITS_OSD}
        mons_down = {f.target for f in held if f.kind in HITS_MON}
        free = set(range(1, n + 1))
        if kind in HITS_OSD:
            free -= osds_down
            if len(osds_down) >= max_down or LEADER in osds_down:
                free = set()
        if kind in HITS_MON:
            free -= mons_down
            if len(mons_down) >= max_mons_down or LEADER in mons_down:
                free = set()
        target = None
        if to_leader and len(free) == n:
            target = LEADER
        elif free:
            target = rng.choice(sorted(free))
        if target is not None:
            faults.append(MonFault(round(t, 2), hold, kind, target, how))
        t += rng.uniform(0.2, 3.0)
    return faults


class MonChaos(Chaos):
    """Plays a mon_schedule on a Cluster of three mons, mon N and osd.N on hosts[N]."""

    def __init__(self, cluster, hosts):
        super().__init__(cluster, hosts[0])
        self.hosts = hosts  # hosts[N]: mon N and osd.N

    def status(self, n, timeout="2s"):
        """Mon n's own status (asked from its host), or None."""
        addr = self.c.mon_addrs[n - 1]
        try:
            r = subprocess.run(
                [*self.hosts[n].prefix(), self.c.bin, "meta", "status", "--member", addr,
                 "--json", "--mon-address", addr, "--meta-timeout", timeout],
                capture_output=True, text=True, timeout=30, env=sanitizer_env())
        except subprocess.TimeoutExpired:
            return None
        if r.returncode != 0:
            return None
        st = json.loads(r.stdout)[0]
        return None if "error" in st else st

    def leader(self, among):
        for n in among:
            st = self.status(n, timeout="1s")
            if st and st.get("state") == "leader":
                return n
        return None

    def resolve(self, f):
        """The leader among the members no other fault holds (mon 1 if none answers)."""
        busy = {g.chosen or g.target for g in self.held if g is not f and g.kind in HITS_MON}
        among = [n for n in range(1, len(self.c.mons) + 1) if n not in busy]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            n = self.leader(among)
            if n:
                return n
        self.note(f"no leader answered among {among}: taking mon.{among[0]}")
        return among[0]

    def _mon(self, n, what):
        if not self.c.mons[n - 1].alive():
            self.problems.append(f"mon.{n} exited ({self.c.mons[n - 1].popen.returncode}) "
                                 f"before: {what}")

    def inject(self, f):
        if f.target == LEADER:
            f.chosen = self.resolve(f)
        n = f.chosen or f.target
        self.note(f"inject {f}")
        self.held.append(f)
        if f.kind in HITS_MON:
            self._mon(n, f)
        if f.kind in HITS_OSD:
            self._osd(dataclasses.replace(f, target=n))
        if f.kind == "kill":
            self.c.kill_osd(n)
        elif f.kind == "freeze":
            self.c.osds[n]["proc"].signal(signal.SIGSTOP)
        elif f.kind == "mon_kill":
            self.c.kill_mon(n - 1)
        elif f.kind == "mon_freeze":
            self.c.mons[n - 1].signal(signal.SIGSTOP)
        elif f.kind == "mon_stop":
            self.c.kill_mon(n - 1, signal.SIGTERM)
            if self.c.mons[n - 1].popen.returncode != 0:
                self.problems.append(f"mon.{n} exited {self.c.mons[n - 1].popen.returncode} "
                                     f"on SIGTERM: {f}")
        elif f.kind == "cut" and f.how == "link":
            self.hosts[n].link_down()
        elif f.kind == "cut":
            self.hosts[n].nft_cut()
        else:
            self.cut_mons(n)

    def cut_mons(self, n):
        """Drops every packet between hosts[n] and the mon port of another host,
        both ways: mon n is cut off the raft group and the other OSDs, osd.n
        reaches only mon n (nftables table vscut, removed by nft_heal)."""
        port = str(self.c.MON_PORT)
        nft = (*self.hosts[n].prefix(), "nft")
        sh(*nft, "add", "table", "inet", "vscut")
        for chain, hook, addr in (("in", "input", "saddr"), ("out", "output", "daddr")):
            sh(*nft, "add", "chain", "inet", "vscut", chain, "{", "type", "filter", "hook",
               hook, "priority", "0", ";", "}")
            for k, h in enumerate(self.hosts[1:], 1):
                if k == n:
                    continue
                for p in ("sport", "dport"):
                    sh(*nft, "add", "rule", "inet", "vscut", chain, "ip", addr, h.addr,
                       "tcp", p, port, "drop")

    def heal(self, f):
        n = f.chosen or f.target
        self.note(f"heal   {f}")
        self.held.remove(f)
        if f.kind == "kill":
            self._keep_log(self.c.osds[n]["proc"])
            self.c.start_osd(n)
        elif f.kind == "freeze":
            self.c.osds[n]["proc"].signal(signal.SIGCONT)
        elif f.kind in ("mon_kill", "mon_stop"):
            self._keep_log(self.c.mons[n - 1])
            self.c.start_mon(n - 1)
        elif f.kind == "mon_freeze":
            self.c.mons[n - 1].signal(signal.SIGCONT)
        elif f.kind == "cut" and f.how == "link":
            self.hosts[n].link_up()
        else:
            self.hosts[n].nft_heal()

    def leaders_by_term(self):
        """{term: {member}} from every mon log ("member N is leader (term T)")."""
        terms = {}
        logs = [p.log() for p in self.c.mons]
        for path in self.old_logs:
            if os.path.basename(path).startswith("mon"):
                with open(path, errors="replace") as f:
                    logs.append(f.read())
        for log in logs:
            for m in re.finditer(r"member (\d+) is leader \(term (\d+)\)", log):
                terms.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
        return terms


def one_leader(chaos):
    """Every member answers; exactly one is leader, and every member names it in
    the same term. Returns the statuses, or None. Every member's configuration
    must be the three voters it started with."""
    sts = [chaos.status(n) for n in range(1, len(chaos.c.mons) + 1)]
    if None in sts:
        return None
    leaders = [st["id"] for st in sts if st["state"] == "leader"]
    if len(leaders) != 1 or any(st["leader_id"] != leaders[0] or st["term"] != sts[0]["term"]
                                for st in sts):
        return None
    voters = [sorted((m["id"], m["address"], m["role"]) for m in st["members"]) for st in sts]
    want = sorted((n + 1, a, "voter") for n, a in enumerate(chaos.c.mon_addrs))
    assert all(v == want for v in voters), f"the members' configurations: {voters}"
    return sts


def member_dump(chaos, n):
    """Mon n's whole key space, read from its own state (serializable): the
    revision and every key with its value, revisions, version and lease."""
    addr = chaos.c.mon_addrs[n - 1]
    r = subprocess.run([*chaos.hosts[n].prefix(), chaos.c.bin, "meta", "get", "", "--prefix",
                        "--serializable", "--json", "--mon-address", addr,
                        "--meta-timeout", "5s"],
                       capture_output=True, text=True, timeout=60, env=sanitizer_env())
    assert r.returncode == 0, (n, r.stderr)
    return json.loads(r.stdout)


def same_metadata(chaos, timeout=60):
    """Waits until the members' dumps are taken at one revision, then asserts
    they are equal (the monitor keeps writing, so a round may see members at
    different revisions: those are retried)."""
    seen = []

    def equal_revisions():
        dumps = [member_dump(chaos, n) for n in range(1, len(chaos.c.mons) + 1)]
        seen.append([d.get("revision") for d in dumps])
        return dumps if len({d.get("revision") for d in dumps}) == 1 else None
    dumps = wait_for(equal_revisions, timeout, interval=0.2,
                     what="every member's metadata at one revision")
    for n, d in enumerate(dumps[1:], 2):
        assert d == dumps[0], (f"mon.{n} differs from mon.1 at revision {d.get('revision')}",
                               [kv for kv in d["kvs"] if kv not in dumps[0]["kvs"]],
                               [kv for kv in dumps[0]["kvs"] if kv not in d["kvs"]])
    return dumps[0]


@pytest.mark.parametrize("run", range(RUNS))
def test_no_acknowledged_write_lost_under_mon_chaos(procs, vstor_bin, tmp_path, netns, run):
    seed = SEED + run
    print(f"chaos seed {seed}, {SECONDS:g} s, at most {MAX_DOWN} OSD(s) and "
          f"{MAX_MONS_DOWN} mon(s) down")
    hosts = netns.make_hosts(4)
    c = Cluster(procs, vstor_bin, tmp_path, mons=3, hosts=hosts[1:], lease_ttl="3s")
    setup_osds_and_images(c, hosts[1:], IMAGES)
    faults = mon_schedule(random.Random(seed), SECONDS, 3, MAX_DOWN, MAX_MONS_DOWN)
    chaos = MonChaos(c, hosts)
    def raft_checks():
        sts = wait_for(lambda: one_leader(chaos), 60, interval=0.5,
                       what="one leader that every member follows")
        print(f"leader mon.{[s['id'] for s in sts if s['state'] == 'leader'][0]}, "
              f"term {sts[0]['term']}")
        two = {t: m for t, m in chaos.leaders_by_term().items() if len(m) > 1}
        assert not two, f"two leaders in one term: {two}"
        dump = same_metadata(chaos)
        print(f"every member holds {len(dump['kvs'])} keys at revision {dump['revision']}")

    run_writers(c, chaos, faults, SECONDS, hosts[0], tmp_path, seed, IMAGES, raft_checks)
