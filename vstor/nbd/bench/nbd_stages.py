#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Where an NBD T1Q1 write+flush's time goes, stage by stage (docs/performance.md, "NBD").

Starts `vstor demo` (1 mon + 3 OSDs, pool pg_size 2, image 'demo' exported on
a unix socket; the export's libvstor reaches the OSDs over the demo's local
transport), runs fio's nbd engine with fio-suite.sh's T1Q1 write job (4 KiB
random writes, iodepth 1, --fsync=1: an NBD FLUSH after each WRITE) and
records half a second of it with the kernel's tracefs, as
vstor/osd/bench/q1_stages.py does for `osd_verify`: the system calls of fio,
the export and the OSDs, their wake-ups (sched_waking, then the switch-in),
and the block layer's journal writes and cache flushes. Each op starts with
fio's send of a WRITE request (28 + 4096 bytes); prints, per stage, the median
time after it over every op of the window. With --test randread: the T1Q1
read job instead (an op starts with fio's READ request, 28 bytes).

    make release
    flock /work/team/bench.lock vstor/nbd/bench/nbd_stages.py [--bin PATH] [--trace FILE]

Needs root (tracefs). Every process it starts is stopped; the demo's directory
(--dir, with its 2 GiB OSD images) is deleted at the end.
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "../../osd/bench"))
import q1_stages  # noqa: E402

SYSCALLS = ["sendto", "sendmsg", "recvfrom", "recvmsg", "read", "write", "writev", "readv",
            "epoll_wait", "io_uring_enter", "pwrite64", "fdatasync"]
EVENTS = [f"syscalls:sys_{d}_{s}" for s in SYSCALLS for d in ("enter", "exit")] + [
    "sched:sched_waking", "sched:sched_wakeup", "sched:sched_switch",
    "block:block_rq_issue", "block:block_rq_complete"]
STARTED = re.compile(r"(\S+): started pid (\d+)")
WRITE_REQ, READ_REQ = 28 + 4096, 28    # NBD request header (+ the data of a 4 KiB write)
NBD_REPLY = 16                          # a simple reply's header
FRAME_4K = 128 + 4096                   # a vstor 4 KiB WRITE frame (export -> P -> S)


def record(pids, seconds):
    """Traces `seconds`; syscalls and wake-ups only of `pids`. Returns the text."""
    tw = q1_stages.tw
    tw("tracing_on", "0")
    tw("trace", "")
    tw("buffer_size_kb", "65536")
    tw("set_event", "\n".join(EVENTS) + "\n")
    filt = " || ".join(f"common_pid == {p}" for p in pids)
    filters = {f"events/syscalls/sys_{d}_{s}/filter": filt for s in SYSCALLS
               for d in ("enter", "exit")}
    filters["events/sched/sched_waking/filter"] = " || ".join(f"pid == {p}" for p in pids)
    filters["events/sched/sched_wakeup/filter"] = filters["events/sched/sched_waking/filter"]
    filters["events/sched/sched_switch/filter"] = " || ".join(f"next_pid == {p}" for p in pids)
    for path, f in filters.items():
        tw(path, f)
    try:
        tw("tracing_on", "1")
        time.sleep(seconds)
        tw("tracing_on", "0")
        with open(os.path.join(q1_stages.TRACEFS, "trace")) as f:
            return f.read()
    finally:
        for path in filters:
            tw(path, "0")
        tw("set_event", "")
        tw("trace", "")


def size_of(rest, enter):
    """Bytes of a send/recv-like call: its count on entry, its result on exit."""
    if enter:
        m = re.search(r"(?:len|count|vlen): (0x[0-9a-f]+)", rest)
        return int(m.group(1), 16) if m else -1
    m = re.match(r"-> (0x[0-9a-f]+)", rest)
    return int(m.group(1), 16) if m else -1


SENDS = ("sys_sendto", "sys_sendmsg", "sys_write", "sys_writev")
RECVS = ("sys_recvfrom", "sys_recvmsg", "sys_read", "sys_readv")


def op_stages(op, roles, req):
    """{stage: µs after fio's request} of one op (a WRITE and its FLUSH, or a READ)."""
    t0, m, woken, oncpu, seen = op[0][0], {}, {}, {}, {}
    sectors = {}

    def first(key, t):
        m.setdefault(key, t)

    def nth(key, t):
        """`key #n`: the n-th time this happens in the op."""
        seen[key] = seen.get(key, 0) + 1
        m[f"{key} #{seen[key]}"] = t
        return seen[key]

    def wake(key, pid):
        w, r = woken.pop(pid, None), oncpu.pop(pid, None)
        if w is not None:
            m[key + " (woken)"] = w
        if r is not None:
            m[key + " (on CPU)"] = r
    osd_role, sending = {}, {}  # OSD pid: "P" or "S" in this op; pid: (µs, call) of a send
    for ts, pid, name, rest, _cpu in op:
        t = ts - t0
        if name == "sched_waking":
            wm = q1_stages.WAKEE.search(rest)
            if wm:
                woken[int(wm.group(1))] = t
                oncpu.pop(int(wm.group(1)), None)
            continue
        if name == "sched_switch":
            nm = q1_stages.NEXT.search(rest)
            if nm and int(nm.group(1)) in woken:
                oncpu.setdefault(int(nm.group(1)), t)
            continue
        role = roles.get(pid)
        if role and role.startswith("osd"):
            frame = FRAME_4K if req == WRITE_REQ else 128  # a READ's frame: the header alone
            if name in RECVS and size_of(rest, False) == frame and pid not in osd_role:
                osd_role[pid] = "P" if "P" not in osd_role.values() else "S"
            role = osd_role.get(pid)
        elif role not in ("fio", "export"):
            role = None
        if name == "block_rq_issue" and role and " R " in rest:
            first(f"{role}: disk read issued", t)
            sectors[rest.split("()")[1].split("+")[0].strip()] = role
        elif name == "block_rq_complete" and " R " in rest:
            r = sectors.get(rest.split("()")[1].split("+")[0].strip())
            if r:
                first(f"{r}: disk read done", t)
        if name == "block_rq_issue" and role and " WS " in rest:
            sectors[rest.split("()")[1].split("+")[0].strip()] = role
            first(f"{role}: journal write issued", t)
        elif name == "block_rq_complete" and " WS " in rest:
            r = sectors.get(rest.split("()")[1].split("+")[0].strip())
            if r:
                first(f"{r}: journal write done (disk)", t)
        elif name == "block_rq_issue" and " FF " in rest:
            nth("flush issued", t)
        elif name == "block_rq_complete" and " FF " in rest:
            nth("flush done", t)
        if not role:
            continue
        exit_ = rest.startswith("->")
        if name in SENDS and not exit_:
            sending[pid] = t
        elif name in SENDS and pid in sending:
            nth(f"{role}: sends {size_of(rest, False)} B", sending.pop(pid))
        elif name in RECVS and exit_ and size_of(rest, False) > 0:
            key = f"{role}: reads {size_of(rest, False)} B"
            wake(f"{key} #{seen.get(key, 0) + 1}", pid)
            nth(key, t)
        elif name == "sys_io_uring_enter" and not exit_:
            nth(f"{role}: io_uring_enter", t)
        elif name in ("sys_pwrite64", "sys_fdatasync"):
            what = "pwrite" if "pwrite" in name else "fdatasync"
            if exit_:
                wake(f"{role}: {what} returns", pid)
                first(f"{role}: {what} returns", t)
            else:
                first(f"{role}: {what} called", t)
    return m


def is_request(rest, req):
    """fio's (libnbd's) send of a request header: a WRITE's goes with MSG_MORE (its
    data follows in a second send), a READ's (and a FLUSH's) without."""
    if size_of(rest, True) != 28:
        return False
    m = re.search(r"flags: (0x[0-9a-f]+)", rest)
    more = bool(m and int(m.group(1), 16) & 0x8000)
    return more == (req == WRITE_REQ)


def stages(text, roles, req):
    events, _ = q1_stages.parse(text)
    fio = {p for p, r in roles.items() if r == "fio"}
    ops, cur = [], None
    for e in events:
        if e[1] in fio and e[2] in SENDS and not e[3].startswith("->") and is_request(e[3], req):
            cur = [e]
            ops.append(cur)
        elif cur is not None:
            cur.append(e)
    per = {}
    for op in ops[1:-1]:
        for k, v in op_stages(op, roles, req).items():
            per.setdefault(k, []).append(v)
    return per, len(ops) - 2


def report(per, n):
    print(f"{n} ops")
    print(f"{'stage':48} {'median':>7} {'p25':>7} {'p75':>7} {'ops':>5}")
    for k in sorted(per, key=lambda k: statistics.median(per[k])):
        v = per[k]
        if len(v) < n / 2:
            continue
        q = statistics.quantiles(v, n=4) if len(v) > 1 else [v[0]] * 3
        print(f"{k:48} {statistics.median(v):7.1f} {q[0]:7.1f} {q[2]:7.1f} {len(v):5}")


def child_pids(pid):
    out = set()
    for t in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{t}/children") as f:
            out |= {int(x) for x in f.read().split()}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "../../../build/release/vstor/vstor"))
    ap.add_argument("--dir", default="/var/tmp/nbd-stages")
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--test", default="randwrite", choices=("randwrite", "randread"))
    ap.add_argument("--trace", help="keep the raw trace in this file")
    ap.add_argument("--from-trace", help="analyse a kept trace instead of running")
    a = ap.parse_args()
    req = WRITE_REQ if a.test == "randwrite" else READ_REQ
    if a.from_trace:
        with open(a.from_trace) as f:
            head = dict(x.split("=") for x in f.readline().split()[1:])
            if head.pop("test", a.test) == "randread":
                req = READ_REQ
            roles = {int(k): v for k, v in head.items()}
            return report(*stages(f.read(), roles, req))
    shutil.rmtree(a.dir, ignore_errors=True)
    os.makedirs(a.dir)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = open(os.path.join(a.dir, "demo.out"), "w+")
    demo = subprocess.Popen([a.bin, "demo", "--dir", a.dir, "--osds", "3", "--size", "2G",
                             "--image-size", "1G", "--nbd-port", str(port)],
                            stdout=out, stderr=subprocess.STDOUT)
    fio = None
    try:
        for _ in range(900):
            text = open(out.name).read()
            if "vstor demo is running" in text or demo.poll() is not None:
                break
            time.sleep(0.2)
        if "vstor demo is running" not in text:
            sys.exit("the demo did not start:\n" + text)
        roles = {}
        for name, pid in STARTED.findall(text):
            roles[int(pid)] = {"nbd-export": "export"}.get(name, name)
        uri = f"nbd+unix:///demo?socket={a.dir}/nbd.sock"
        job = ["fio", "--name=x", "--bs=4k", "--iodepth=1", "--numjobs=1", "--time_based",
               f"--runtime={a.seconds}", "--ioengine=nbd", f"--uri={uri}",
               "--output-format=json", f"--rw={a.test}", "--size=256M"]
        if a.test == "randwrite":
            job.append("--fsync=1")
        subprocess.run(["fio", "--name=fill", "--bs=4M", "--rw=write", "--iodepth=16",
                        "--size=256M", "--ioengine=nbd", f"--uri={uri}",
                        "--output=/dev/null"], check=True)
        fio = subprocess.Popen(job, stdout=subprocess.PIPE, text=True)
        time.sleep(a.seconds / 2)
        for p in {fio.pid} | child_pids(fio.pid):
            roles[p] = "fio"
        trace = record(set(roles), 0.5)
        res = fio.communicate()[0]
    finally:
        if fio and fio.poll() is None:
            fio.kill()
            fio.wait()
        demo.send_signal(signal.SIGINT)
        demo.wait(60)
        shutil.rmtree(a.dir, ignore_errors=True)
    d = json.loads(res[res.index("{"):])["jobs"][0]
    d = d["write"] if a.test == "randwrite" else d["read"]
    print(f"fio --rw={a.test} --iodepth=1{' --fsync=1' if req == WRITE_REQ else ''}: "
          f"{d['iops']:.0f} IOPS = {1e6 / d['iops']:.1f} us per op (whole run)")
    if a.trace:
        with open(a.trace, "w") as f:
            f.write(f"# test={a.test} " + " ".join(f"{p}={r}" for p, r in roles.items())
                    + "\n" + trace)
    report(*stages(trace, roles, req))


if __name__ == "__main__":
    sys.exit(main())
