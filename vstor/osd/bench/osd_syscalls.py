#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Syscalls the OSDs make per 4 KiB client write (docs/performance.md, "Messenger").

Starts the cluster of osd_bench.py (1 mon, 3 OSDs on 2 GiB files, pg_size 2),
writes random 4 KiB blocks at depth 128 through libvstor (osd_verify --rand4k)
for SECONDS, and counts with `perf stat` the syscalls of the three OSDs, then
prints them per client write next to the OSDs' CPU per write.

    make release
    vstor/osd/bench/osd_syscalls.py [--dir /var/tmp/osd-syscalls] [--seconds 5] [--keep]

The OSDs' device files are deleted when it ends, unless --keep; the logs stay.
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import osd_bench as ob  # noqa: E402

SYSCALLS = ("read", "readv", "write", "writev", "epoll_wait", "epoll_pwait",
            "io_uring_enter", "recvfrom", "sendto", "sendmsg", "recvmsg")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="/var/tmp/osd-syscalls")
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the device files at the end")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    b = ob.Bench(args.dir)
    try:
        b.cluster(2048, "256m")
        pids = ",".join(str(p.pid) for p in b.osds)
        events = ",".join(["raw_syscalls:sys_enter"] +
                          ["syscalls:sys_enter_" + s for s in SYSCALLS])
        perf = subprocess.Popen(["perf", "stat", "-x", ",", "-e", events, "-p", pids],
                                stderr=subprocess.PIPE, text=True)
        c0 = b.cpu()
        out = subprocess.run([ob.VERIFY, "--mon", ob.MON, "--image", "bench", "--rand4k",
                              "--seconds", str(args.seconds), "--depth", "128"],
                             capture_output=True, text=True, check=True).stdout
        c1 = b.cpu()
        perf.send_signal(2)
        err = perf.communicate()[1]
        ops = int(re.search(r"wrote (\d+) ops", out).group(1))
        print(f"{ops} writes, {ops / args.seconds:.0f}/s, "
              f"OSD CPU {(c1 - c0) / ops * 1e6:.1f} us per write")
        for line in err.splitlines():
            f = line.split(",")
            if len(f) > 2 and f[0].strip().isdigit():
                print(f"  {f[2]:40} {int(f[0]):>10} {int(f[0]) / ops:8.3f} per write")
    finally:
        b.stop()
        if not args.keep:
            b.remove_devices()


if __name__ == "__main__":
    main()
