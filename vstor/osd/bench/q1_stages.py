#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where a T1Q1 write's time goes, stage by stage (docs/performance.md, "Data path").

Starts 1 mon + 3 OSDs on files of one disk (osd_bench.Bench: pool pg_size 2),
runs `osd_verify --rand4k --depth 1` and records half a second of it with the
kernel's tracefs (CLOCK_MONOTONIC timestamps, no change to the binaries):
the client's, the OSDs' and the io-wq threads' system calls (writev, write,
read, epoll_wait, io_uring_enter), io_uring submissions and completions, and
the block layer's request issue and completion (journal writes `WS`, cache
flushes `FF`). Each client send starts an op; the OSD that reads the 4 KiB
frame first is its primary, the other one its secondary. Prints, per stage,
the median time after the client's send over every op of the window, and
how many cache flushes each op cost.

    make release
    flock /work/team/bench.lock vstor/osd/bench/q1_stages.py [--bin PATH] [--trace FILE]
                                                             [--pg-size 1]

Needs root (tracefs at /sys/kernel/tracing). Every process it starts is stopped
by pid; the device files (--osd-mb each, in --dir) are deleted at the end.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osd_bench  # noqa: E402

TRACEFS = "/sys/kernel/tracing"
EVENTS = ["syscalls:sys_enter_writev", "syscalls:sys_enter_write", "syscalls:sys_exit_read",
          "syscalls:sys_exit_epoll_wait", "syscalls:sys_enter_io_uring_enter",
          "io_uring:io_uring_submit_req", "io_uring:io_uring_complete",
          "io_uring:io_uring_queue_async_work", "block:block_rq_issue",
          "block:block_rq_complete"]
LINE = re.compile(r"^\s*(\S+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): ([a-z_0-9]+)[:(]?\s*(.*)$")
FRAME_4K = "-> 0x1080"  # a 4 KiB write frame: 128-byte header + 4096 bytes
REPLY = "-> 0x80"       # a reply: the header alone


def tw(path, text):
    with open(os.path.join(TRACEFS, path), "w") as f:
        f.write(text)


def record(pids, seconds):
    """Traces `seconds` of the system; syscalls only of `pids`. Returns the text."""
    tw("tracing_on", "0")
    tw("trace", "")
    tw("buffer_size_kb", "65536")
    tw("set_event", "\n".join(EVENTS) + "\n")
    filt = " || ".join(f"common_pid == {p}" for p in pids)
    sys_events = [e.split(":")[1] for e in EVENTS if e.startswith("syscalls:")]
    for e in sys_events:
        tw(f"events/syscalls/{e}/filter", filt)
    try:
        tw("tracing_on", "1")
        time.sleep(seconds)
        tw("tracing_on", "0")
        with open(os.path.join(TRACEFS, "trace")) as f:
            return f.read()
    finally:
        for e in sys_events:
            tw(f"events/syscalls/{e}/filter", "0")
        tw("set_event", "")
        tw("trace", "")


def parse(text):
    """[(time_us, pid, event, rest)] and {io_uring ring: pid of its submitter}."""
    events, ring_pid = [], {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid, ts, name, rest = int(m.group(2)), float(m.group(3)) * 1e6, m.group(4), m.group(5)
        if name == "io_uring_submit_req":
            ring_pid[rest.split(",")[0].split()[1]] = pid
        events.append((ts, pid, name, rest))
    return events, ring_pid


def op_stages(op, osds, client, ring_pid, pg_size):
    """{stage: µs after the client's send} of one op, or None if incomplete."""
    t0, prim, sec, m = op[0][0], None, None, {}
    flushes = []

    def first(key, t):
        m.setdefault(key, t)
    for ts, pid, name, rest in op[1:]:
        t = ts - t0
        if name == "sys_read" and rest.startswith(FRAME_4K) and pid in osds:
            if prim is None:
                prim = pid
                first("P: 4 KiB frame read", t)
            elif sec is None and pid != prim:
                sec = pid
                first("S: 4 KiB frame read", t)
        role = "P" if pid == prim else "S" if pid == sec else None
        if role and name == "sys_writev":
            first(f"{role}: writev (forward)", t)
        if role and name == "sys_io_uring_enter" and "to_submit: 2" in rest:
            first(f"{role}: io_uring_enter (write -> fsync)", t)
        if role and name == "block_rq_issue" and " WS " in rest:
            first(f"{role}: journal write issued", t)
        if name == "block_rq_issue" and " FF " in rest:
            flushes.append(t)
            first(f"flush {len(flushes)} issued", t)
        if name == "block_rq_complete" and " FF " in rest:
            n = sum(1 for k in m if k.startswith("flush") and k.endswith("done")) + 1
            first(f"flush {n} done", t)
        if name in ("io_uring_complete", "io_uring_queue_async_work"):
            owner = ring_pid.get(rest.split(",")[0].split()[1])
            r = "P" if owner == prim else "S" if owner == sec else None
            res = re.search(r"result (-?\d+)", rest)
            if r and name == "io_uring_queue_async_work":
                first(f"{r}: fsync handed to io-wq", t)
            elif r and res and int(res.group(1)) > 0:
                first(f"{r}: journal write completion (cqe)", t)
            elif r and res and int(res.group(1)) == 0:
                first(f"{r}: fsync completion (cqe)", t)
        if pid == sec and name == "sys_write" and "S: fsync completion (cqe)" in m:
            first("S: reply sent (write)", t)
        if pid == prim and name == "sys_read" and rest.startswith(REPLY):
            first("P: secondary's reply read", t)
        if pid == prim and name == "sys_write" and "P: secondary's reply read" in m:
            first("P: reply sent (write)", t)
        if pid == client and name == "sys_read" and rest.startswith(REPLY):
            first("C: reply read", t)
    if "C: reply read" not in m or (sec is None and pg_size > 1):
        return None, 0
    return m, len(flushes)


def stages(text, osds, client, pg_size=2):
    events, ring_pid = parse(text)
    ops, cur = [], None
    for e in events:
        if e[1] == client and e[2] == "sys_writev":
            cur = [e]
            ops.append(cur)
        elif cur is not None:
            cur.append(e)
    per, nflush = {}, []
    for op in ops[1:-1]:  # the first and last may be cut by the window
        m, nf = op_stages(op, osds, client, ring_pid, pg_size)
        if m is None:
            continue
        nflush.append(nf)
        for k, v in m.items():
            per.setdefault(k, []).append(v)
    return per, nflush


def report(per, nflush):
    n = len(nflush)
    print(f"{n} ops; cache flushes per op: "
          + ", ".join(f"{k}: {sum(1 for x in nflush if x == k)}" for k in sorted(set(nflush))))
    print(f"{'stage (P primary, S secondary, C client)':44} {'median':>7} {'p25':>7} {'p75':>7}"
          f" {'ops':>5}")
    rare = [k for k in per if len(per[k]) < n / 2]  # other processes' flushes, mostly
    for k in sorted(per, key=lambda k: statistics.median(per[k])):
        v = per[k]
        if k in rare:
            continue
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        print(f"{k:44} {statistics.median(v):7.1f} {q[0]:7.1f} {q[2]:7.1f} {len(v):5}")
    if rare:
        print(f"(not shown: {len(rare)} stages seen in fewer than half of the ops)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=osd_bench.BIN, help="the vstor binary of the OSDs")
    ap.add_argument("--dir", default="/var/tmp/q1-stages")
    ap.add_argument("--seconds", type=int, default=6, help="length of the depth-1 run")
    ap.add_argument("--osd-mb", type=int, default=512, help="size of each OSD's device file")
    ap.add_argument("--pg-size", type=int, default=2, choices=(1, 2),
                    help="1: write to an image of a second pool with pg_size 1 (no secondary)")
    ap.add_argument("--trace", help="keep the raw trace in this file")
    ap.add_argument("--from-trace", help="analyse a kept trace instead of running")
    a = ap.parse_args()
    if a.from_trace:
        with open(a.from_trace) as f:
            head, text = f.readline().split(), f.read()
        return report(*stages(text, {int(x) for x in head[2:5]}, int(head[6])))
    osd_bench.BIN = a.bin
    os.makedirs(a.dir, exist_ok=True)
    b = osd_bench.Bench(a.dir)
    span = ["--span", str(64 << 20)]
    try:
        b.cluster(a.osd_mb, "128m")
        osds = {p.pid for p in b.osds}
        image = "bench"
        if a.pg_size == 1:
            image = "bench1"
            b.run("pool", "create", "one", "--scheme", "replicated", "--pg-size", 1,
                  "--pg-minsize", 1, "--pg-count", 32, "--failure-domain", "osd")
            b.run("create", image, "--size", "2G", "--pool", "one")
        # one pass over the span first, so the depth-1 writes overwrite objects
        subprocess.run([osd_bench.VERIFY, "--mon", osd_bench.MON, "--image", image, "--rand4k",
                        "--seconds", "3", "--depth", "32"] + span, check=True,
                       capture_output=True)
        v = subprocess.Popen([osd_bench.VERIFY, "--mon", osd_bench.MON, "--image", image,
                              "--rand4k", "--seconds", str(a.seconds), "--depth", "1"] + span,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        time.sleep(a.seconds / 2)
        text = record(osds | {v.pid}, 0.5)
        out = v.communicate()[0]
    finally:
        b.stop()
        shutil.rmtree(a.dir, ignore_errors=True)
    ops = int(re.search(r"wrote (\d+) ops", out).group(1))
    print(f"osd_verify --depth 1: {ops} writes in {a.seconds} s = {a.seconds * 1e6 / ops:.1f} us "
          "per write (mean, whole run)")
    if a.trace:
        with open(a.trace, "w") as f:
            f.write(f"# osds {' '.join(map(str, sorted(osds)))} client {v.pid}\n{text}")
    report(*stages(text, osds, v.pid, a.pg_size))


if __name__ == "__main__":
    sys.exit(main())
