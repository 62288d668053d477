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
          "block:block_rq_complete", "syscalls:sys_enter_pwrite64",
          "syscalls:sys_exit_pwrite64", "syscalls:sys_enter_fdatasync",
          "syscalls:sys_exit_fdatasync", "sched:sched_waking", "sched:sched_wakeup",
          "sched:sched_switch"]
LINE = re.compile(r"^\s*(\S+)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): ([a-z_0-9]+)[:(]?\s*(.*)$")
WAKEE = re.compile(r"pid=(\d+) .*target_cpu=(\d+)")
NEXT = re.compile(r"==> next_comm=.* next_pid=(\d+)")
FRAME_4K = "-> 0x1080"  # a 4 KiB write frame: 128-byte header + 4096 bytes
REPLY = "-> 0x80"       # a reply: the header alone


def tw(path, text):
    if not os.path.exists(os.path.join(TRACEFS, "tracing_on")):  # not mounted on a fresh VM
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
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
    # the wake-ups and switches of the traced processes only
    tw("events/sched/sched_waking/filter", " || ".join(f"pid == {p}" for p in pids))
    tw("events/sched/sched_wakeup/filter", " || ".join(f"pid == {p}" for p in pids))
    tw("events/sched/sched_switch/filter", " || ".join(f"next_pid == {p}" for p in pids))
    try:
        tw("tracing_on", "1")
        time.sleep(seconds)
        tw("tracing_on", "0")
        with open(os.path.join(TRACEFS, "trace")) as f:
            return f.read()
    finally:
        for e in sys_events:
            tw(f"events/syscalls/{e}/filter", "0")
        tw("events/sched/sched_waking/filter", "0")
        tw("events/sched/sched_wakeup/filter", "0")
        tw("events/sched/sched_switch/filter", "0")
        tw("set_event", "")
        tw("trace", "")


def parse(text):
    """[(time_us, pid, event, rest)] and {io_uring ring: pid of its submitter}."""
    events, ring_pid = [], {}
    for line in text.splitlines():
        m = LINE.match(line)
        if not m:
            continue
        pid, cpu, ts = int(m.group(2)), int(m.group(3)), float(m.group(4)) * 1e6
        name, rest = m.group(5), m.group(6)
        if name == "io_uring_submit_req":
            ring_pid[rest.split(",")[0].split()[1]] = pid
        events.append((ts, pid, name, rest, cpu))
    return events, ring_pid


def op_stages(op, osds, client, ring_pid, pg_size):
    """{stage: µs after the client's send} of one op, or None if incomplete."""
    t0, prim, sec, m = op[0][0], None, None, {}
    flushes = []
    # pid: [µs of its last wake-up (sched_waking), the waker's CPU, the CPU chosen for it
    # (sched_wakeup)] / µs of its switch-in after it
    woken, oncpu = {}, {}
    sectors = {}  # first sector of a journal write: the role that issued it

    def first(key, t):
        m.setdefault(key, t)

    def wake(key, pid):
        """The wake-up (and switch-in) that ended the sleep before `key` of `pid`."""
        w, r = woken.pop(pid, None), oncpu.pop(pid, None)
        if w is not None and key not in m:
            m[key + " (woken)"] = w[0]
            if w[2] is not None:
                m["~" + key + ": placed on the waker's CPU"] = float(w[1] == w[2])
        if r is not None and key not in m:
            m[key + " (on CPU)"] = r
    for ts, pid, name, rest, cpu in op[1:]:
        t = ts - t0
        if name == "sched_waking":
            wm = WAKEE.search(rest)
            if wm:
                woken[int(wm.group(1))] = [t, cpu, None]
                oncpu.pop(int(wm.group(1)), None)
            continue
        if name == "sched_wakeup":
            wm = WAKEE.search(rest)
            if wm and int(wm.group(1)) in woken:
                woken[int(wm.group(1))][2] = int(wm.group(2))
            continue
        if name == "sched_switch":
            nm = NEXT.search(rest)
            if nm and int(nm.group(1)) in woken:
                oncpu.setdefault(int(nm.group(1)), t)
            continue
        role0 = "P" if pid == prim else "S" if pid == sec else None
        if role0 and name in ("sys_pwrite64", "sys_fdatasync"):
            what = "pwrite" if "pwrite" in name else "fdatasync"
            if rest.startswith("->"):
                wake(f"{role0}: {what} returns", pid)
                first(f"{role0}: {what} returns", t)
            else:
                first(f"{role0}: {what} called", t)
        if name == "sys_read" and rest.startswith(FRAME_4K) and pid in osds:
            if prim is None:
                prim = pid
                wake("P: 4 KiB frame read", pid)
                first("P: 4 KiB frame read", t)
            elif sec is None and pid != prim:
                sec = pid
                wake("S: 4 KiB frame read", pid)
                first("S: 4 KiB frame read", t)
        role = "P" if pid == prim else "S" if pid == sec else None
        if role and name == "sys_writev":
            first(f"{role}: writev (forward)", t)
        if role and name == "sys_io_uring_enter" and "to_submit: 2" in rest:
            first(f"{role}: io_uring_enter (write -> fsync)", t)
        if role and name == "block_rq_issue" and " WS " in rest:
            first(f"{role}: journal write issued", t)
            sectors.setdefault(rest.split("()")[1].split("+")[0].strip(), role)
        if name == "block_rq_complete" and " WS " in rest:
            r = sectors.get(rest.split("()")[1].split("+")[0].strip())
            if r:
                first(f"{r}: journal write done (disk)", t)
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
            wake("P: secondary's reply read", pid)
            first("P: secondary's reply read", t)
        if pid == prim and name == "sys_write" and "P: secondary's reply read" in m:
            first("P: reply sent (write)", t)
        if pid == client and name == "sys_read" and rest.startswith(REPLY):
            wake("C: reply read", pid)
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
        if k in rare or k.startswith("~"):
            continue
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        print(f"{k:44} {statistics.median(v):7.1f} {q[0]:7.1f} {q[2]:7.1f} {len(v):5}")
    if rare:
        print(f"(not shown: {len(rare)} stages seen in fewer than half of the ops)")
    for k in sorted(k for k in per if k.startswith("~")):
        print(f"{k[1:]}: {100 * statistics.mean(per[k]):.0f}% of {len(per[k])} wake-ups")


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
