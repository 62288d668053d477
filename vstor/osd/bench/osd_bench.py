#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The data-path benchmark of issue 6 (docs/performance.md, "Data path").

In one run, on one disk: fio-suite.sh raw on a file, then a cluster of 1 mon
and 3 OSDs on files (release build), a pool with pg_size 2, `vstor bench` on
an image, and the OSD CPU per 4 KiB client write (random 4 KiB writes at
depth 128 through libvstor, /proc/PID/stat of every OSD before and after).
Prints both tables and the ratios against the issue's targets.

    make release
    vstor/osd/bench/osd_bench.py [--dir /var/tmp/osd-bench] [--runtime 20] [--runs 3]
                                 [--tests randwrite-4k-q1,randread-4k-q1,cpu] [--keep]
                                 [--bin PATH]

--tests runs only the named tests on both sides (fio with fio-suite.sh's job
lines on the raw side, `vstor bench --tests` on the cluster); "cpu" names the
OSD CPU measurement. Without it: all six tests and the CPU.

Every process it starts is stopped by pid when it ends. The device files it
wrote (the raw file and the OSDs' osdN.dev, 2 GiB each) are deleted when it
ends, unless --keep; the logs and fio's JSON stay in the directory.
"""
import argparse
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BIN = os.path.join(ROOT, "build", "release", "vstor", "vstor")
VERIFY = os.path.join(ROOT, "build", "release", "vstor", "osd", "osd_verify")
SUITE = "/work/shared/bench/fio-suite.sh"
TESTS = ["seqwrite-4M-q32", "seqread-4M-q32", "randwrite-4k-q1", "randread-4k-q1",
         "randwrite-4k-q128", "randread-4k-q128"]
MON = "127.0.0.1:24301"


# fio-suite.sh's job line per test: (bs, rw, iodepth, extra options)
JOBS = {"seqwrite-4M-q32": ("4M", "write", 32, []), "seqread-4M-q32": ("4M", "read", 32, []),
        "randwrite-4k-q1": ("4k", "randwrite", 1, ["--fsync=1"]),
        "randread-4k-q1": ("4k", "randread", 1, []),
        "randwrite-4k-q128": ("4k", "randwrite", 128, []),
        "randread-4k-q128": ("4k", "randread", 128, [])}


def raw_subset(tests, raw_file, runtime):
    """fio-suite.sh's table for only TESTS: the same fill and job lines, run here."""
    target = ["--ioengine=libaio", "--direct=1", f"--filename={raw_file}", "--size=2G"]
    subprocess.run(["fio", "--name=fill", "--bs=4M", "--rw=write", "--iodepth=16",
                    "--numjobs=1", "--output=/dev/null"] + target, check=True)
    os.sync()  # the device's flush of the fill is not the first measured fsync's cost
    out = {}
    for t in tests:
        bs, rw, qd, extra = JOBS[t]
        j = json.loads(subprocess.run(
            ["fio", f"--name={t}", f"--bs={bs}", f"--rw={rw}", f"--iodepth={qd}", "--numjobs=1",
             "--time_based", f"--runtime={runtime}", "--ramp_time=2", "--group_reporting",
             "--output-format=json"] + extra + target,
            capture_output=True, text=True, check=True).stdout)["jobs"][0]
        d = j["write"] if "write" in t else j["read"]
        lat = d["clat_ns"] if d["clat_ns"]["mean"] else d["lat_ns"]
        avg = 1e6 / d["iops"] if t.endswith("q1") else lat["mean"] / 1e3
        out[t] = (d["iops"], d["bw_bytes"] / 1e6, avg,
                  lat.get("percentile", {}).get("99.000000", 0) / 1e3)
    return out


def table(text):
    """{test: (iops, mbs, lat_avg, lat_p99)} from a fio-suite style table."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 6 and f[1] in TESTS:
            out[f[1]] = tuple(float(x) for x in f[2:])
    return out


class Bench:
    def __init__(self, d):
        self.d, self.pids = d, []

    def run(self, *args, **kw):
        return subprocess.run([BIN] + [str(a) for a in args] + ["--mon-address", MON],
                              capture_output=True, text=True, check=True, **kw).stdout

    def start(self, name, *args):
        log = open(os.path.join(self.d, name + ".log"), "w")
        p = subprocess.Popen([BIN] + [str(a) for a in args], stdout=log, stderr=log)
        self.pids.append(p)
        return p

    def stop(self):
        for p in reversed(self.pids):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.pids = []

    def cluster(self, osd_mb, journal):
        for f in os.listdir(self.d):
            if f.startswith(("osd", "mon")):
                subprocess.run(["rm", "-rf", os.path.join(self.d, f)], check=True)
        self.start("mon", "mon", "--id", 1, "--address", MON, "--init", "--members",
                   f"1={MON}", "--data-dir", os.path.join(self.d, "mon1"))
        time.sleep(1.5)
        self.osds = []
        for i in (1, 2, 3):
            dev = os.path.join(self.d, f"osd{i}.dev")
            # Written once, so the OSDs' O_DIRECT writes overwrite allocated blocks
            # (as on a block device), not holes of a sparse file.
            subprocess.run(["dd", "if=/dev/zero", f"of={dev}", "bs=4M", f"count={osd_mb // 4}",
                            "oflag=direct", "status=none"], check=True)
            self.run("disk", "format", dev, "--osd-id", i, "--store-journal-size", journal)
            self.osds.append(self.start(f"osd{i}", "osd", "--device", dev, "--mon-address", MON))
        time.sleep(1.5)
        self.run("pool", "create", "rbd", "--scheme", "replicated", "--pg-size", 2,
                 "--pg-minsize", 1, "--pg-count", 32, "--failure-domain", "osd")
        self.run("create", "bench", "--size", "2G", "--pool", "rbd")
        deadline = time.time() + 60
        while time.time() < deadline:
            st = json.loads(self.run("meta", "get", "pg/state/1/", "--prefix", "--json"))
            if len([k for k in st.get("kvs", []) if json.loads(k["value"])["state"] == ["active"]]) == 32:
                return
            time.sleep(0.5)
        raise RuntimeError("PGs not active")

    def remove_devices(self, *files):
        """Deletes the OSD device files (and files) this benchmark wrote; logs stay."""
        paths = [os.path.join(self.d, f) for f in os.listdir(self.d)
                 if f.startswith("osd") and f.endswith(".dev")] + list(files)
        for p in paths:
            if os.path.exists(p):
                os.unlink(p)
        print(f"deleted the device files in {self.d} (--keep keeps them)", file=sys.stderr)

    def cpu(self):
        tck = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for p in self.osds:
            f = open(f"/proc/{p.pid}/stat").read().rsplit(")", 1)[1].split()
            total += (int(f[11]) + int(f[12])) / tck
        return total

    def cpu_per_write(self, seconds):
        c0 = self.cpu()
        out = subprocess.run([VERIFY, "--mon", MON, "--image", "bench", "--rand4k", "--seconds",
                              str(seconds), "--depth", "128"], capture_output=True, text=True,
                             check=True).stdout
        c1 = self.cpu()
        ops = int(re.search(r"wrote (\d+) ops", out).group(1))
        return (c1 - c0) / ops * 1e6, ops / seconds


def main():
    global BIN
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/osd-bench")
    ap.add_argument("--runtime", type=int, default=20)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--journal", default="256m")
    ap.add_argument("--tests", help="comma-separated tests (and/or 'cpu') to run; default all")
    ap.add_argument("--keep", action="store_true", help="keep the device files at the end")
    ap.add_argument("--bin", default=BIN, help="the vstor binary (A/B of two builds)")
    a = ap.parse_args()
    BIN = a.bin
    names = a.tests.split(",") if a.tests else TESTS
    tests = [t for t in TESTS if t in names]
    want_cpu = not a.tests or "cpu" in a.tests.split(",")
    bad = [t for t in names if t not in TESTS + ["cpu"]]
    if bad:
        ap.error(f"unknown test(s) {bad}; known: {TESTS + ['cpu']}")
    os.makedirs(a.dir, exist_ok=True)
    b = Bench(a.dir)
    env = dict(os.environ, RUNTIME=str(a.runtime), OUTDIR=os.path.join(a.dir, "fio"))
    raw_file = os.path.join(a.dir, "raw.file")
    rows = []
    try:
        for run in range(a.runs):
            if tests == TESTS:
                raw = table(subprocess.run(
                    [SUITE, "raw", "--ioengine=libaio", "--direct=1", f"--filename={raw_file}",
                     "--size=2G"], capture_output=True, text=True, check=True, env=env).stdout)
            else:
                raw = raw_subset(tests, raw_file, a.runtime)
            b.cluster(2048, a.journal)
            vs = {}
            if tests:
                vs = table(b.run("bench", "--image", "bench", "--runtime", a.runtime,
                                 "--tests", ",".join(tests)))
            cpu, iops = b.cpu_per_write(a.runtime) if want_cpu else (float("nan"), 0)
            b.stop()
            rows.append((raw, vs, cpu, iops))
            if want_cpu:
                print(f"run {run + 1}: cpu {cpu:.1f} us/write at {iops:.0f} writes/s", flush=True)
            else:
                print(f"run {run + 1} done", flush=True)
    finally:
        b.stop()
        if not a.keep:
            b.remove_devices(raw_file)
    report(rows, tests)


def report(rows, tests):
    print(f"{'test':20} {'raw iops':>10} {'vstor iops':>10} {'raw lat':>9} {'vstor lat':>9}"
          f" {'ratio':>7}")
    med = lambda xs: statistics.median(xs)
    for t in tests:
        raw_iops = med([r[0][t][0] for r in rows])
        vs_iops = med([r[1][t][0] for r in rows])
        raw_lat = med([r[0][t][2] for r in rows])
        vs_lat = med([r[1][t][2] for r in rows])
        ratio = med([r[1][t][0] / r[0][t][0] for r in rows])
        if t.endswith("q1"):
            ratio = med([r[1][t][2] / r[0][t][2] for r in rows])  # latency ratio
        print(f"{t:20} {raw_iops:10.0f} {vs_iops:10.0f} {raw_lat:9.1f} {vs_lat:9.1f} {ratio:7.2f}"
              + (" (latency)" if t.endswith("q1") else ""))
    if any(r[2] == r[2] for r in rows):  # not NaN: the CPU was measured
        print(f"OSD CPU per 4 KiB client write (3 OSDs, pg_size 2, depth 128): "
              f"{med([r[2] for r in rows]):.1f} us (runs: {[round(r[2], 1) for r in rows]})")


if __name__ == "__main__":
    sys.exit(main())
