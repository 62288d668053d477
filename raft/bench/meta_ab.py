#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two builds of the metadata service side by side, in one run, on this machine.

Starts a 3-member `vstor mon` cluster of each binary on loopback (default
timeouts), then, alternating between the two for --rounds rounds so machine
noise hits both alike, runs `vstor meta bench --workload W --clients N` (the
binary's own bench, so both must have the workload) for each W:N of --runs.
Prints, per figure, the median over the rounds of each binary and B / A.

    raft/bench/meta_ab.py --a /tmp/vstor-before --b build/release/vstor/vstor \\
        --runs keepalive:1,keepalive:64 --rounds 5
"""
import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meta_vs_etcd import Vstor, free_ports, wait_leader  # noqa: E402

FIGURES = ("p50_ms", "p99_ms", "ops_per_s")
RESULT = {"put": "put_latency", "get": "get_latency", "throughput": "put_throughput",
          "keepalive": "keepalive"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="the vstor binary of build A")
    ap.add_argument("--b", required=True, help="the vstor binary of build B")
    ap.add_argument("--runs", default="keepalive:1,keepalive:64",
                    help="WORKLOAD:CLIENTS,... (default keepalive:1,keepalive:64)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the raw figures too")
    a = ap.parse_args()
    runs = [(w, int(n)) for w, n in (r.split(":") for r in a.runs.split(","))]
    tmp = tempfile.mkdtemp(prefix="meta_ab.")
    ports = free_ports(6, 23100)
    clusters = {"A": Vstor(a.a, os.path.join(tmp, "A"), ports[:3]),
                "B": Vstor(a.b, os.path.join(tmp, "B"), ports[3:])}
    raw = {k: {f"{w}:{n}": [] for w, n in runs} for k in clusters}
    try:
        for c in clusters.values():
            os.makedirs(c.tmp)
            for i in range(3):
                c.start(i)
        for c in clusters.values():
            wait_leader(c)
        for r in range(a.rounds):
            for k in (("A", "B") if r % 2 == 0 else ("B", "A")):
                for w, n in runs:
                    out = clusters[k].bench("--workload", w, "--clients", n,
                                            "--seconds", a.seconds)
                    raw[k][f"{w}:{n}"].append(out[RESULT[w]])
    finally:
        for c in clusters.values():
            c.stop_all()
    print("| run | figure | A | B | B / A |\n|---|---|---|---|---|")
    for w, n in runs:
        key = f"{w}:{n}"
        for f in FIGURES:
            ma = statistics.median(x.get(f) or 0 for x in raw["A"][key])
            mb = statistics.median(x.get(f) or 0 for x in raw["B"][key])
            print(f"| {w}, {n} client(s) | {f} | {ma:.3f} | {mb:.3f} | "
                  f"{mb / ma if ma else float('nan'):.2f} |")
    if a.json:
        print(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
