#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Two durable writers on one disk: do their cache flushes merge or queue?
(docs/performance.md, "Data path").

Each round runs fio write+fdatasync at queue depth 1 (4 KiB, O_DIRECT, libaio)
on one file for --seconds, then two such jobs on two files of the same disk at
the same time, and prints each job's latency (1e6 / IOPS). The last round is
also traced with tracefs for one second: the two jobs' fdatasync calls and the
block layer's flush requests (`FF`), to count how many calls one flush ends.

    flock /work/team/bench.lock vstor/osd/bench/flush_pair.py [--dir /var/tmp/flush-pair]

Needs root (tracefs). The two 256 MiB files are deleted at the end.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

TRACEFS = "/sys/kernel/tracing"


def tw(path, text):
    if not os.path.exists(os.path.join(TRACEFS, "tracing_on")):  # not mounted on a fresh VM
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
    with open(os.path.join(TRACEFS, path), "w") as f:
        f.write(text)


def fio_cmd(files, seconds):
    cmd = ["fio", "--bs=4k", "--rw=randwrite", "--iodepth=1", "--fdatasync=1", "--thread",
           "--ioengine=libaio", "--direct=1", "--time_based", f"--runtime={seconds}",
           "--output-format=json"]
    for i, f in enumerate(files):
        cmd += [f"--name=j{i}", f"--filename={f}"]
    return cmd


def latencies(out):
    return [1e6 / j["write"]["iops"] for j in json.loads(out)["jobs"]]


def traced_pair(files, seconds):
    """Runs the pair, tracing one second of it; returns (calls, flushes, shared)."""
    p = subprocess.Popen(fio_cmd(files, seconds), stdout=subprocess.DEVNULL)
    tw("tracing_on", "0")
    tw("trace", "")
    tw("buffer_size_kb", "32768")
    tw("set_event", "syscalls:sys_enter_fdatasync\nsyscalls:sys_exit_fdatasync\n"
       "block:block_rq_issue\nblock:block_rq_complete\n")
    try:
        time.sleep(seconds / 2 - 0.5)
        tids = {int(t) for t in os.listdir(f"/proc/{p.pid}/task")}
        tw("tracing_on", "1")
        time.sleep(1)
        tw("tracing_on", "0")
        with open(os.path.join(TRACEFS, "trace")) as f:
            text = f.read()
    finally:
        tw("set_event", "")
        tw("trace", "")
        p.wait()
    calls, started, flush_done, flushes = [], {}, [], 0
    for line in text.splitlines():
        m = re.match(r"\s*\S+-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): (\S+)", line)
        if not m:
            continue
        pid, t, name = int(m.group(1)), float(m.group(2)) * 1e6, m.group(3)
        if name.startswith("sys_fdatasync") and pid in tids:
            if "(" in name:
                started[pid] = t
            elif pid in started:
                calls.append((started.pop(pid), t))
        elif name == "block_rq_issue:" and " FF " in line:
            flushes += 1
        elif name == "block_rq_complete:" and " FF " in line:
            flush_done.append(t)
    # the flush that ended a call: the last one to complete inside it
    ended = {}
    for a, b in calls:
        inside = [t for t in flush_done if a < t < b]
        if inside:
            ended[inside[-1]] = ended.get(inside[-1], 0) + 1
    return len(calls), flushes, sum(1 for n in ended.values() if n > 1), \
        statistics.median(b - a for a, b in calls)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/flush-pair")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    files = [os.path.join(a.dir, n) for n in ("a", "b")]
    try:
        for f in files:  # allocated blocks, as the OSDs' device files are
            subprocess.run(["dd", "if=/dev/zero", f"of={f}", "bs=1M", "count=256",
                            "oflag=direct", "status=none"], check=True)
        def run(fs):
            return latencies(subprocess.run(fio_cmd(fs, a.seconds), check=True,
                                            capture_output=True, text=True).stdout)
        one, two = [], []
        for r in range(a.rounds):
            one.append(run(files[:1])[0])
            two.append(run(files))
            print(f"round {r + 1}: one writer {one[-1]:.1f} us; two at once "
                  f"{two[-1][0]:.1f} / {two[-1][1]:.1f} us", flush=True)
        print(f"median: one writer {statistics.median(one):.1f} us; two at once "
              f"{statistics.median(x for t in two for x in t):.1f} us per write")
        calls, flushes, shared, med = traced_pair(files, a.seconds)
        print(f"traced 1 s of the pair: {calls} fdatasync calls (median {med:.1f} us), "
              f"{flushes} flush requests on the disk (any process), {shared} of them ended "
              "two calls at once")
    finally:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
