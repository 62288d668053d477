#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The latency floor of a replicated T1Q1 op on this machine (issue 6's Q1 rows;
docs/performance.md, "The floor of a replicated T1Q1 op").

Runs `q1_floor` (vstor/osd/bench/q1_floor.c, built by `make release`) for
--rounds rounds, the order of its four modes rotated between rounds:
raw-read / raw-write (one process on the disk, as fio's T1Q1 jobs) and
rep-read / rep-write (client -> server over TCP loopback, and client -> P ->
S with both durable writes: the least any design with separate OSD
processes on one disk can do, every process blocking in the one system call
it needs), and rtt (a request and its reply between two processes, no io).
--unix: unix socket pairs instead of TCP; --poll: every process spins on its
sockets instead of sleeping (what polling could gain, at a vCPU per process). Prints each round's figures and the medians of the per-round
ratios rep / raw, which bound from below what vstor's Q1 rows can reach here.

    flock /work/team/bench.lock vstor/osd/bench/q1_floor.py [--rounds 5] [--seconds 4] [--unix] [--poll]

The two 256 MiB files under --dir are deleted at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
FLOOR = os.path.join(ROOT, "build", "release", "vstor", "osd", "q1_floor")
MODES = ["raw-read", "rep-read", "raw-write", "rep-write", "rtt"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/q1-floor")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=4)
    ap.add_argument("--bin", default=FLOOR)
    ap.add_argument("--unix", action="store_true", help="unix socket pairs instead of TCP")
    ap.add_argument("--poll", action="store_true", help="every process spins on its sockets")
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    files = [os.path.join(a.dir, n) for n in ("p.dev", "s.dev")]
    try:
        for f in files:  # written once, so no measured write allocates
            subprocess.run(["dd", "if=/dev/zero", f"of={f}", "bs=1M", "count=256",
                            "oflag=direct", "status=none"], check=True)
        os.sync()
        rows = []
        for r in range(a.rounds):
            k = r % len(MODES)
            got = {}
            for m in MODES[k:] + MODES[:k]:
                flags = (["-u"] if a.unix else []) + (["-p"] if a.poll else [])
                out = subprocess.run([a.bin, "-t", str(a.seconds)] + flags + [m] + files[:2 if m == "rep-write" else 1],
                                     check=True, capture_output=True, text=True).stdout
                got[m] = json.loads(out)
            rows.append(got)
            print(f"round {r + 1}: " + ", ".join(
                f"{m} {got[m]['mean_us']:.1f}/{got[m]['p50_us']:.1f}" for m in MODES) +
                " us (mean/p50)", flush=True)
        for kind in ("read", "write"):
            for stat in ("mean_us", "p50_us"):
                ratios = [g[f"rep-{kind}"][stat] / g[f"raw-{kind}"][stat] for g in rows]
                print(f"{kind} {stat[:-3]}: raw {statistics.median(g[f'raw-{kind}'][stat] for g in rows):.1f} us, "
                      f"replicated floor {statistics.median(g[f'rep-{kind}'][stat] for g in rows):.1f} us, "
                      f"ratio median {statistics.median(ratios):.2f}x "
                      f"(rounds {', '.join(f'{x:.2f}' for x in ratios)})")
        print(f"process round trip (rtt): mean {statistics.median(g['rtt']['mean_us'] for g in rows):.1f} us, "
              f"p50 {statistics.median(g['rtt']['p50_us'] for g in rows):.1f} us (medians of the rounds)")
    finally:
        for f in files:
            if os.path.exists(f):
                os.unlink(f)
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
