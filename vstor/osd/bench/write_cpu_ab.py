#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""CPU per byte and per write of the whole cluster, two builds side by side.

One round: for each binary of --bin (in that order) a fresh cluster (1 mon +
3 OSDs on files, pg_size 2, release build), then
  - seqwrite: `vstor bench --tests seqwrite-4M-q32 --no-fill --ramp 0` for
    --runtime seconds: MB/s, and the CPU seconds (user+system) of the client
    (`vstor bench`, from wait4) and of the three OSDs (/proc/PID/stat, io-wq
    threads included) per GB the client wrote;
  - cpu: `osd_verify --rand4k --depth 128` for --runtime seconds: OSD CPU per
    4 KiB client write (what osd_bench.py calls "cpu"), and per client write
    the OSDs' context switches (cs_loop_vol: a loop went to sleep;
    cs_loop_invol: a loop was preempted; cs_iowq: io-wq workers, which run
    the fdatasyncs) and read/write-family system calls (/proc/PID/io syscr,
    syscw: the sockets' reads and writevs, the eventfd's reads). The counts
    move far less between runs than the CPU does.
A throughput figure of this 2-vCPU machine swings 2x between runs; CPU
seconds per GB is a quieter measure of what our code costs, and the builds
alternate inside each round. Prints one JSON line per round; --report FILE...
prints the medians of the rounds in those files and each binary's ratio to
the first one. --perf DIR records `perf record -g` of the OSDs and the
client during seqwrite, and of the OSDs during cpu (one file per test,
binary and round).

    make release   # copy build/release/vstor/vstor to /tmp/A and /tmp/B per build
    flock /work/team/bench.lock vstor/osd/bench/write_cpu_ab.py --bin /tmp/A,/tmp/B >> r.jsonl
    vstor/osd/bench/write_cpu_ab.py --report r.jsonl

Every process it starts is stopped by pid; the OSD files in --dir are deleted
at the end unless --keep.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osd_bench  # noqa: E402  (Bench, table, VERIFY)
import spin_ab  # noqa: E402  (cluster)


def proc_cpu(pids):
    """User+system CPU seconds of pids (every thread), from /proc/PID/stat."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        total += (int(f[11]) + int(f[12])) / tck
    return total


def task_counts(pids):
    """{tid: (is_io_wq, voluntary, involuntary context switches)} of every live thread."""
    out = {}
    for pid in pids:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                st = open(f"/proc/{pid}/task/{tid}/status").read()
            except FileNotFoundError:
                continue  # an io-wq worker that just exited
            f = dict(line.split(":", 1) for line in st.splitlines() if ":" in line)
            out[tid] = (f["Name"].strip().startswith("iou-"),
                        int(f["voluntary_ctxt_switches"]), int(f["nonvoluntary_ctxt_switches"]))
    return out


def proc_syscalls(pids):
    """read-family and write-family system calls of pids (/proc/PID/io syscr, syscw)."""
    r = w = 0
    for pid in pids:
        f = dict(line.split(": ") for line in open(f"/proc/{pid}/io").read().splitlines())
        r, w = r + int(f["syscr"]), w + int(f["syscw"])
    return r, w


def counts_per_write(t0, t1, s0, s1, ops):
    """Context switches and socket syscalls per client write: main threads (the
    loops) and io-wq workers (the fdatasyncs); threads that exited during the
    run are not counted (io-wq workers stay alive while fsyncs keep coming)."""
    cs = {"cs_loop_vol": 0, "cs_loop_invol": 0, "cs_iowq": 0}
    for tid, (iowq, vol, invol) in t1.items():
        _, vol0, invol0 = t0.get(tid, (iowq, 0, 0))
        if iowq:
            cs["cs_iowq"] += vol - vol0 + invol - invol0
        else:
            cs["cs_loop_vol"] += vol - vol0
            cs["cs_loop_invol"] += invol - invol0
    out = {k: v / ops for k, v in cs.items()}
    out["reads"] = (s1[0] - s0[0]) / ops
    out["writes"] = (s1[1] - s0[1]) / ops
    return out


def perf_start(a, pids, tag):
    if not a.perf:
        return None
    os.makedirs(a.perf, exist_ok=True)
    out = os.path.join(a.perf, f"{tag}.data")
    return subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", out, "-p",
                             ",".join(str(p) for p in pids)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def perf_stop(p):
    if p:
        p.send_signal(signal.SIGINT)
        p.wait(60)


def seqwrite(b, a, tag):
    osds = [p.pid for p in b.osds]
    c0 = proc_cpu(osds)
    cli = subprocess.Popen([osd_bench.BIN, "bench", "--image", "bench", "--runtime",
                            str(a.runtime), "--tests", "seqwrite-4M-q32", "--no-fill",
                            "--ramp", "0", "--mon-address", osd_bench.MON],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    perf = perf_start(a, osds + [cli.pid], tag)
    out = cli.stdout.read()
    _, status, ru = os.wait4(cli.pid, 0)
    cli.returncode = os.waitstatus_to_exitcode(status)
    perf_stop(perf)
    c1 = proc_cpu(osds)
    if cli.returncode:
        raise RuntimeError(f"vstor bench failed: {cli.returncode}")
    iops, mbs = osd_bench.table(out)["seqwrite-4M-q32"][:2]
    gb = iops * a.runtime * 4 * 2**20 / 1e9
    cli_cpu = ru.ru_utime + ru.ru_stime
    return {"mbs": mbs, "osd_s_per_gb": (c1 - c0) / gb, "cli_s_per_gb": cli_cpu / gb,
            "total_s_per_gb": (c1 - c0 + cli_cpu) / gb}


def rand4k(b, a, tag):
    osds = [p.pid for p in b.osds]
    c0, t0, s0 = proc_cpu(osds), task_counts(osds), proc_syscalls(osds)
    cli = subprocess.Popen([osd_bench.VERIFY, "--mon", osd_bench.MON, "--image", "bench",
                            "--rand4k", "--seconds", str(a.runtime), "--depth", "128"],
                           stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    perf = perf_start(a, osds, tag)
    out = cli.stdout.read()
    if cli.wait():
        raise RuntimeError(f"osd_verify failed: {cli.returncode}")
    perf_stop(perf)
    c1, t1, s1 = proc_cpu(osds), task_counts(osds), proc_syscalls(osds)
    ops = int(re.search(r"wrote (\d+) ops", out).group(1))
    r = {"osd_us_per_write": (c1 - c0) / ops * 1e6, "writes_per_s": ops / a.runtime}
    r.update(counts_per_write(t0, t1, s0, s1, ops))
    return r


def one_round(a, rnd):
    row = {}
    for i, path in enumerate(a.bin.split(",")):
        osd_bench.BIN = path
        b = osd_bench.Bench(a.dir)
        try:
            spin_ab.cluster(b, a.osd_mb, a.size)
            r = {}
            if "seqwrite" in a.tests:
                r.update(seqwrite(b, a, f"r{rnd}-b{i}"))
            if "cpu" in a.tests:
                r.update(rand4k(b, a, f"r{rnd}-b{i}-cpu"))
            row[f"b{i}"] = r
        finally:
            b.stop()
    return row


def fmt(v):
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def report(files):
    rows = [json.loads(line) for f in files for line in open(f) if line.strip()]
    med = statistics.median
    bins = list(rows[0])
    keys = list(rows[0][bins[0]])
    print(f"{len(rows)} rounds; medians, and the median of the per-round ratios to {bins[0]}")
    print("| figure | " + " | ".join(bins) + " |")
    print("|---|" + "---:|" * len(bins))
    for k in keys:
        cells = [fmt(med(r[bins[0]][k] for r in rows))]
        for b in bins[1:]:
            cells.append(f"{fmt(med(r[b][k] for r in rows))} "
                         f"({med(r[b][k] / r[bins[0]][k] for r in rows):.2f}×)")
        print(f"| {k} | " + " | ".join(cells) + " |")
    for i, r in enumerate(rows):
        print(f"  round {i + 1}: " + "; ".join(
            f"{k} " + "/".join(fmt(r[b][k]) for b in bins) for k in keys))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/write-cpu-ab")
    ap.add_argument("--bin", default=osd_bench.BIN, help="comma-separated vstor binaries")
    ap.add_argument("--runtime", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--tests", default="seqwrite,cpu", help="seqwrite and/or cpu")
    ap.add_argument("--size", default="2G", help="image size")
    ap.add_argument("--osd-mb", type=int, default=2048)
    ap.add_argument("--perf", metavar="DIR", help="perf record -g into DIR")
    ap.add_argument("--keep", action="store_true", help="keep --dir (the OSD files)")
    ap.add_argument("--report", nargs="+", metavar="FILE")
    a = ap.parse_args()
    if a.report:
        report(a.report)
        return 0
    os.makedirs(a.dir, exist_ok=True)
    try:
        for rnd in range(a.rounds):
            print(json.dumps(one_round(a, rnd)), flush=True)
    finally:
        if not a.keep:
            shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
