# SPDX-License-Identifier: GPL-3.0-or-later
"""Seeded fault schedules for the chaos soak (test_chaos.py): which fault, on
what, when and for how long, drawn from random.Random(seed) alone, so a seed
names one schedule; then `Chaos` plays it on a Cluster and logs every step.

    faults = schedule(random.Random(seed), seconds=45, osds=[1, 2, 3], max_down=1)
    chaos = Chaos(c, mon_host)
    chaos.play(faults)          # every fault injected, held, healed
    print(chaos.report(seed))   # the seed, the fault log, each daemon's log tail

A fault is held 0.5-5 s, then healed; faults may overlap:
  kill     kill -9 an OSD, start it again
  freeze   SIGSTOP an OSD, SIGCONT it
  cut      an OSD's host off the network (link down, or nftables drop), back
  cut_mon  an OSD's host off the mon host only (nftables), back
  mon      kill -9 the mon, start it again
An OSD under kill, freeze, cut or cut_mon is "down"; at most max_down OSDs are
down at once (1 keeps a pg_size 3 / pg_minsize 2 pool writable).
"""
import dataclasses
import datetime
import os
import signal
import time

from vstor_cluster import ok, progress

KINDS = ("kill", "freeze", "cut", "cut_mon", "mon")
WEIGHTS = (3, 2, 2, 1, 1)
CRASH = ("AddressSanitizer", "runtime error", "assertion failed", "LeakSanitizer")


@dataclasses.dataclass
class Fault:
    start: float  # seconds from the schedule's start
    hold: float
    kind: str
    target: int  # an OSD id; 0 for the mon
    how: str = ""  # cut: "link" or "nft"

    @property
    def end(self):
        return self.start + self.hold

    def __str__(self):
        what = "mon" if self.kind == "mon" else f"osd.{self.target}"
        how = f" ({self.how})" if self.how else ""
        return f"{self.kind}{how} {what} for {self.hold:.2f}s"


def schedule(rng, seconds, osds, max_down=1):
    """The faults starting within [0, seconds), each 0.2-3 s after the previous
    one (so often while it is still held)."""
    faults, t = [], rng.uniform(0.5, 2.0)
    while t < seconds:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        hold = round(rng.uniform(0.5, 5.0), 2)
        how = rng.choice(("link", "nft")) if kind == "cut" else ""
        held = [f for f in faults if f.end > t]  # every one started at or before t
        if kind == "mon":
            target = None if any(f.kind == "mon" for f in held) else 0
        else:
            down = {f.target for f in held if f.kind != "mon"}
            free = [o for o in osds if o not in down]
            target = rng.choice(free) if free and len(down) < max_down else None
        if target is not None:
            faults.append(Fault(round(t, 2), hold, kind, target, how))
        t += rng.uniform(0.2, 3.0)
    return faults


def utc_stamp():
    """Now, as the daemons' log lines stamp it (ISO, sortable with them)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Chaos:
    """Plays a schedule on a Cluster of OSDs on netns hosts, one mon on mon_host."""

    def __init__(self, cluster, mon_host):
        self.c, self.mon_host = cluster, mon_host
        self.log, self.problems, self.held, self.old_logs = [], [], [], []
        self.t0 = time.monotonic()

    def note(self, what):
        self.log.append(f"{utc_stamp()} +{time.monotonic() - self.t0:6.2f}s {what}")

    def play(self, faults):
        events = sorted([(f.start, 1, i) for i, f in enumerate(faults)] +
                        [(f.end, 0, i) for i, f in enumerate(faults)])
        self.t0 = time.monotonic()
        try:
            for at, inject, i in events:
                time.sleep(max(0.0, self.t0 + at - time.monotonic()))
                (self.inject if inject else self.heal)(faults[i])
        finally:
            for f in list(self.held):
                self.heal(f)

    def _osd(self, f):
        proc = self.c.osds[f.target]["proc"]
        if not proc.alive():  # no fault of ours holds it: it died by itself
            self.problems.append(f"osd.{f.target} exited ({proc.popen.returncode}) "
                                 f"before: {f}")
        return proc, self.c.osds[f.target]["host"]

    def inject(self, f):
        self.note(f"inject {f}")
        self.held.append(f)
        if f.kind == "mon":
            if not self.c.mons[0].alive():
                self.problems.append(f"the mon exited ({self.c.mons[0].popen.returncode})")
            self.c.kill_mon(0)
            return
        proc, host = self._osd(f)
        if f.kind == "kill":
            self.c.kill_osd(f.target)
        elif f.kind == "freeze":
            proc.signal(signal.SIGSTOP)
        elif f.kind == "cut" and f.how == "link":
            host.link_down()
        else:
            host.nft_cut(self.mon_host.addr if f.kind == "cut_mon" else None)

    def heal(self, f):
        self.note(f"heal   {f}")
        self.held.remove(f)
        host = self.c.osds[f.target]["host"] if f.target else None
        if f.kind == "mon":
            self._keep_log(self.c.mons[0])
            self.c.start_mon(0)
        elif f.kind == "kill":
            self._keep_log(self.c.osds[f.target]["proc"])
            self.c.start_osd(f.target)
        elif f.kind == "freeze":
            self.c.osds[f.target]["proc"].signal(signal.SIGCONT)
        elif f.kind == "cut" and f.how == "link":
            host.link_up()
        else:
            host.nft_heal()

    def _keep_log(self, proc):
        """Moves a killed daemon's log aside (osd2.log -> osd2.log.1, ...): the
        restarted one writes a new osd2.log."""
        n = sum(1 for p in self.old_logs if p.startswith(proc.log_path + ".")) + 1
        os.rename(proc.log_path, f"{proc.log_path}.{n}")
        self.old_logs.append(f"{proc.log_path}.{n}")

    def daemons(self):
        """(name, proc) of every daemon the checks cover: the mons ("mon" when
        there is one, else "mon.N"), then the OSDs."""
        mons = self.c.mons
        return [("mon" if len(mons) == 1 else f"mon.{i + 1}", p) for i, p in enumerate(mons)] + \
            [(f"osd.{i}", o["proc"]) for i, o in self.c.osds.items()]

    def crashes(self):
        """Every daemon that is not running now, or whose log shows a crash."""
        out = list(self.problems)
        for name, p in self.daemons():
            if not p.alive():
                out.append(f"{name} exited ({p.popen.returncode})")
            out += [f"{name}: {s}" for s in CRASH if s in p.log()]
        for path in self.old_logs:
            with open(path, errors="replace") as f:
                log = f.read()
            out += [f"{path}: {s}" for s in CRASH if s in log]
        return out

    def report(self, seed, tail=3000):
        """The seed, the fault log, each daemon's log tail, and every crash report
        in the logs of the daemons killed before: what a failure prints."""
        lines = [f"chaos seed {seed} (VSTOR_CHAOS_SEED={seed} replays this schedule)",
                 "fault log:"] + ["  " + line for line in self.log]
        for _, p in self.daemons():
            lines += [f"---- {p.name} ({p.log_path}), last {tail} chars:", p.log()[-tail:]]
        for path in self.old_logs:
            with open(path, errors="replace") as f:
                log = f.read()
            at = min((log.find(s) for s in CRASH if s in log), default=-1)
            if at >= 0:
                lines += [f"---- {path}, from its crash:", log[max(0, at - 2000):at + tail]]
        return "\n".join(lines)


def setup_osds_and_images(c, osd_hosts, images):
    """One OSD on each of osd_hosts, then a pool (8 PGs, failure domain host)
    and an image for each of images ({image: (pool, pg_size, pg_minsize,
    bytes)}), every PG active and clean."""
    for h in osd_hosts:
        c.add_osd(host=h)
    for img, (pool, size, minsize, nbytes) in images.items():
        c.pool(pool, size, minsize, 8, failure_domain="host")
        c.image(img, nbytes, pool)
    for pool, *_ in images.values():
        c.wait_active(pool, clean=True)


def run_writers(c, chaos, faults, seconds, client_host, tmp_path, seed, images, checks=None):
    """The chaos tests' common body: an osd_verify writer at depth 8 on each of
    images ({image: (pool, pg_size, pg_minsize, bytes)}) while chaos plays
    faults (writing for seconds + 6 s); then every writer completed and verified, every PG active and
    clean, a fresh client reads each model back, checks() (the caller's own
    invariants) passes, and no daemon crashed. A failure prints the report."""
    writers = {img: c.start_verify(img, name=f"w{img}", host=client_host, depth=8,
                                   seconds=int(seconds) + 6,
                                   seed=seed * 10 + i, save=tmp_path / f"{img}.model")
               for i, img in enumerate(images)}
    try:
        chaos.play(faults)
        assert not chaos.crashes(), chaos.crashes()  # else the waits below time out
        for img, w in writers.items():
            assert w.wait(300) == 0, f"writer {img}:\n{w.log()[-3000:]}"
            assert f"verified {images[img][3]} bytes" in w.log(), w.log()[-3000:]
            print(f"writer {img}: {progress(w)} ops")
        for pool, *_ in images.values():
            c.wait_active(pool, clean=True, timeout=120)
        for img in images:
            ok(c.verify(img, host=client_host, check=tmp_path / f"{img}.model", timeout=120))
        if checks:
            checks()
        assert not chaos.crashes(), chaos.crashes()
    except BaseException:
        print(chaos.report(seed))
        raise
    print("\n".join(chaos.log))
