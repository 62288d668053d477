#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Sleeps (voluntary context switches) and CPU per op of every process at T1Q1.

For each config in --confs (JSON objects, in that order) it starts a cluster of
1 mon + 3 OSDs on files (spin_ab.cluster: pg_size 2, release build) whose every
process runs with that config (VSTOR_CONFIG), starts `vstor bench --tests TEST`
and, over a steady window of the run, reads each process's voluntary and
involuntary context switches and user+system CPU (/proc/PID/status, stat),
plus the machine's idle and steal time (/proc/stat). A process that sleeps
once per op and is woken costs one wake-up; one that spins shows ~0 voluntary
switches per op. --hogs N runs N busy loops (`sh -c 'while :; do :; done'`,
nice 0, like a build) for the whole run, to see a spin on a busy machine.
Prints one JSON line per config.

    make release
    flock /work/team/bench.lock vstor/osd/bench/q1_wakeups.py [--bin PATH] \
        --confs '{"loop_busy_poll_us": 0}' '{"loop_busy_poll_us": 200}'

Every process it starts is stopped by pid; --dir is removed at the end.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osd_bench  # noqa: E402
import spin_ab  # noqa: E402


def proc_sample(pid):
    st = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                st[k[:4]] = int(v)
    with open(f"/proc/{pid}/stat") as f:
        fl = f.read().rsplit(")", 1)[1].split()
    st["cpu"] = (int(fl[11]) + int(fl[12])) / os.sysconf("SC_CLK_TCK")
    return st


def sys_sample():
    with open("/proc/stat") as f:
        c = [int(x) for x in f.readline().split()[1:]]
    return {"idle": c[3] / os.sysconf("SC_CLK_TCK"), "steal": c[7] / os.sysconf("SC_CLK_TCK")}


def one(a, conf):
    path = os.path.join(a.dir, "conf.json")
    with open(path, "w") as f:
        json.dump(conf, f)
    os.environ["VSTOR_CONFIG"] = path
    b = osd_bench.Bench(a.dir)
    try:
        spin_ab.cluster(b, a.osd_mb, a.size)
        cli = subprocess.Popen([osd_bench.BIN, "bench", "--image", "bench", "--runtime",
                                str(a.runtime), "--tests", a.test, "--mon-address",
                                osd_bench.MON], stdout=subprocess.PIPE, text=True)
        procs = {"mon": b.pids[0].pid, "client": cli.pid}
        for i, p in enumerate(b.osds):
            procs[f"osd{i + 1}"] = p.pid
        time.sleep(a.skip)
        s0 = {n: proc_sample(p) for n, p in procs.items()}
        y0, t0 = sys_sample(), time.time()
        time.sleep(a.window)
        s1 = {n: proc_sample(p) for n, p in procs.items()}
        y1, t1 = sys_sample(), time.time()
        out = cli.communicate()[0]
        res = osd_bench.table(out)[a.test]
        ops = res[0] * (t1 - t0)
        row = {"conf": conf, "test": a.test, "iops": res[0], "lat_us": res[2], "ops": round(ops)}
        for n in procs:
            row[n] = {"vol_per_op": round((s1[n]["volu"] - s0[n]["volu"]) / ops, 2),
                      "invol_per_op": round((s1[n]["nonv"] - s0[n]["nonv"]) / ops, 2),
                      "cpu_us_per_op": round((s1[n]["cpu"] - s0[n]["cpu"]) * 1e6 / ops, 1)}
        row["idle_cpus"] = round((y1["idle"] - y0["idle"]) / (t1 - t0), 2)
        row["steal_cpus"] = round((y1["steal"] - y0["steal"]) / (t1 - t0), 3)
        return row
    finally:
        b.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/q1-wakeups")
    ap.add_argument("--test", default="randread-4k-q1")
    ap.add_argument("--runtime", type=int, default=8)
    ap.add_argument("--skip", type=float, default=3.0, help="seconds before the window")
    ap.add_argument("--window", type=float, default=4.0)
    ap.add_argument("--size", default="768M")
    ap.add_argument("--osd-mb", type=int, default=768)
    ap.add_argument("--confs", nargs="+", default=['{"loop_busy_poll_us": 0}'])
    ap.add_argument("--bin", default=osd_bench.BIN, help="the vstor binary")
    ap.add_argument("--hogs", type=int, default=0, help="busy loops running meanwhile")
    a = ap.parse_args()
    osd_bench.BIN = a.bin
    os.makedirs(a.dir, exist_ok=True)
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(a.hogs)]
    try:
        for c in a.confs:
            row = one(a, json.loads(c))
            row["hogs"] = a.hogs
            print(json.dumps(row), flush=True)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        shutil.rmtree(a.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
