#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Busy-polling on vs off (config key loop_busy_poll_us), side by side with the raw disk.

One round: fio on a raw file (the job lines of fio-suite.sh), then, for each
window value in --windows (in that order), a cluster of 1 mon + 3 OSDs on files
(pg_size 2, release build) whose every process -- mon, OSDs, `vstor bench` --
runs with loop_busy_poll_us set to it (VSTOR_CONFIG; "oN" sets it on the
OSDs only, "cN" on `vstor bench` only; "lN", "loN", "lcN" set the lone-op
spin loop_spin_lone_us instead; any of them followed by "@PATH" runs the
vstor binary PATH instead of build/release's), and `vstor bench --tests`
on an image. Prints one JSON line per round; --report FILE... prints the
medians of the rounds in those files. Sizes are small (the disk is shared).

    make release
    flock /work/team/bench.lock vstor/osd/bench/spin_ab.py --windows 0,200 >> r.jsonl
    flock /work/team/bench.lock vstor/osd/bench/spin_ab.py --windows 200,0 >> r.jsonl
    vstor/osd/bench/spin_ab.py --report r.jsonl

Every process it starts is stopped by pid; --dir is removed at the end.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osd_bench  # noqa: E402  (Bench, JOBS, table)

DEFAULT_TESTS = "randread-4k-q1,randwrite-4k-q1,randread-4k-q128,randwrite-4k-q128"


def raw_tests(tests, raw_file, size, runtime):
    """{test: (iops, mbs, lat_avg, lat_p99)} of fio on raw_file, fio-suite.sh's job lines."""
    target = ["--ioengine=libaio", "--direct=1", f"--filename={raw_file}", f"--size={size}"]
    subprocess.run(["fio", "--name=fill", "--bs=4M", "--rw=write", "--iodepth=16",
                    "--output=/dev/null"] + target, check=True)
    os.sync()
    out = {}
    for t in tests:
        bs, rw, qd, extra = osd_bench.JOBS[t]
        j = json.loads(subprocess.run(
            ["fio", f"--name={t}", f"--bs={bs}", f"--rw={rw}", f"--iodepth={qd}",
             "--time_based", f"--runtime={runtime}", "--ramp_time=2", "--output-format=json"]
            + extra + target, capture_output=True, text=True, check=True).stdout)["jobs"][0]
        d = j["write"] if "write" in t else j["read"]
        out[t] = (d["iops"], d["bw_bytes"] / 1e6, 1e6 / d["iops"], 0.0)
    return out


def cluster(b, osd_mb, image):
    """Like osd_bench.Bench.cluster, smaller: OSD files are written once and reformatted."""
    shutil.rmtree(os.path.join(b.d, "mon1"), ignore_errors=True)
    b.start("mon", "mon", "--id", 1, "--address", osd_bench.MON, "--init", "--members",
            f"1={osd_bench.MON}", "--data-dir", os.path.join(b.d, "mon1"))
    time.sleep(1.5)
    b.osds = []
    for i in (1, 2, 3):
        dev = os.path.join(b.d, f"osd{i}.dev")
        if not os.path.exists(dev) or os.path.getsize(dev) != osd_mb << 20:
            subprocess.run(["dd", "if=/dev/zero", f"of={dev}", "bs=4M", f"count={osd_mb // 4}",
                            "oflag=direct", "status=none"], check=True)
        b.run("disk", "format", dev, "--osd-id", i, "--store-journal-size", "64m", "--force")
        b.osds.append(b.start(f"osd{i}", "osd", "--device", dev, "--mon-address",
                              osd_bench.MON))
    time.sleep(1.5)
    b.run("pool", "create", "rbd", "--scheme", "replicated", "--pg-size", 2,
          "--pg-minsize", 1, "--pg-count", 32, "--failure-domain", "osd")
    b.run("create", "bench", "--size", image, "--pool", "rbd")
    deadline = time.time() + 60
    while time.time() < deadline:
        st = json.loads(b.run("meta", "get", "pg/state/1/", "--prefix", "--json"))
        if len([k for k in st.get("kvs", [])
                if json.loads(k["value"])["state"] == ["active"]]) == 32:
            return
        time.sleep(0.5)
    raise RuntimeError("PGs not active")


def one_round(a):
    tests = a.tests.split(",")
    os.makedirs(a.dir, exist_ok=True)
    default_bin = osd_bench.BIN
    row = {"raw": raw_tests(tests, os.path.join(a.dir, "raw.file"), a.size, a.runtime)}
    os.unlink(os.path.join(a.dir, "raw.file"))
    for w in a.windows.split(","):
        # "N": every process busy-polls N µs; "oN": only the OSDs; "cN": only
        # the client (vstor bench); the others run with 0.
        # "lN", "loN", "lcN": the same with the lone-op spin (loop_spin_lone_us).
        # "...@PATH": with the vstor binary PATH.
        spec, _, binary = w.partition("@")
        osd_bench.BIN = binary or default_bin
        key = "loop_spin_lone_us" if spec.startswith("l") else "loop_busy_poll_us"
        side = spec.lstrip("l")
        n = int(side.lstrip("oc"))
        osd_w = n if not side.startswith("c") else 0
        cli_w = n if not side.startswith("o") else 0
        conf = {}
        for v in {osd_w, cli_w}:
            conf[v] = os.path.join(a.dir, f"spin{v}.conf")
            with open(conf[v], "w") as f:
                json.dump({key: v}, f)
        b = osd_bench.Bench(a.dir)
        try:
            os.environ["VSTOR_CONFIG"] = conf[osd_w]
            cluster(b, a.osd_mb, a.size)
            os.environ["VSTOR_CONFIG"] = conf[cli_w]
            row[w] = osd_bench.table(b.run("bench", "--image", "bench", "--runtime",
                                           a.runtime, "--tests", a.tests))
        finally:
            b.stop()
            osd_bench.BIN = default_bin
    return row


def report(files):
    rows = [json.loads(line) for f in files for line in open(f) if line.strip()]
    med = statistics.median
    windows = [k for k in rows[0] if k != "raw"]
    tests = list(rows[0]["raw"])
    print(f"{len(rows)} rounds; T1Q1: latency µs (ratio to raw), Q128: IOPS (ratio to raw)")
    print("| test | raw | " + " | ".join(f"{w}" for w in windows) + " |")
    print("|---|---:|" + "---:|" * len(windows))
    for t in tests:
        q1 = t.endswith("q1")
        col = 2 if q1 else 0
        raw = med(r["raw"][t][col] for r in rows)
        cells = []
        for w in windows:
            v = med(r[w][t][col] for r in rows)
            ratio = med(r[w][t][col] / r["raw"][t][col] for r in rows)
            cells.append(f"{v:.1f} ({ratio:.2f}×)" if q1 else f"{v:.0f} ({ratio:.2f}×)")
        print(f"| {t} | {raw:.1f} | " + " | ".join(cells) + " |" if q1 else
              f"| {t} | {raw:.0f} | " + " | ".join(cells) + " |")
    base = windows[0]
    col = lambda t: 2 if t.endswith("q1") else 0
    print(f"\nside by side: median of the per-round ratios to busy_poll {base} "
          "(T1Q1 latency, Q128 IOPS)")
    for w in windows[1:]:
        print(f"  {w}: " + ", ".join(
            f"{t} {med(r[w][t][col(t)] / r[base][t][col(t)] for r in rows):.2f}"
            for t in tests))
    print("\nper round (T1Q1 µs / Q128 IOPS): raw, then each window")
    for i, r in enumerate(rows):
        print(f"  round {i + 1}: " + "; ".join(
            f"{t} " + "/".join(f"{r[k][t][2 if t.endswith('q1') else 0]:.0f}"
                               for k in ["raw"] + windows) for t in tests))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/spin-ab")
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--windows", default="0,200",
                    help="loop_busy_poll_us values, in order; oN: OSDs only, cN: client only; "
                    "lN, loN, lcN: loop_spin_lone_us instead")
    ap.add_argument("--tests", default=DEFAULT_TESTS)
    ap.add_argument("--size", default="768M", help="image and raw file size")
    ap.add_argument("--osd-mb", type=int, default=768)
    ap.add_argument("--keep", action="store_true", help="keep --dir (the OSD files)")
    ap.add_argument("--report", nargs="+", metavar="FILE")
    a = ap.parse_args()
    if a.report:
        report(a.report)
        return 0
    try:
        print(json.dumps(one_round(a)), flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
