#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The NBD layer's own cost, measured side by side in one run:
#  1. the six fio tests of shared/bench/fio-suite.sh on FILE read directly
#     (fio libaio, O_DIRECT: the physical floor) and through
#     `vstor nbd-export --file FILE` (fio's nbd engine over a unix socket),
#     alternating ROUNDS times; medians and NBD/raw ratios;
#  2. the server's CPU time per 4 KiB request (schedstat of all its threads);
#  3. if nbdkit is installed, the NBD transport floor of this machine: the
#     same fio nbd client against `nbdkit null` (no storage at all).
#   usage: nbd-vs-raw.sh VSTOR_BIN FILE [ROUNDS]
#   env:   RUNTIME (seconds per test, default 20), SUITE (path of fio-suite.sh),
#          KEEP=1 (keep FILE at the end)
# FILE is created (2 GiB of random data) if missing, and then deleted at the
# end unless KEEP=1. Use a release build.
set -euo pipefail
# shellcheck source=vstor/nbd/bench/demo_start.sh
. "$(dirname "$0")/demo_start.sh" # fio4k, cpu_ns
vstor=$1 file=$2 rounds=${3:-3}
SUITE=${SUITE:-/work/shared/bench/fio-suite.sh}
RUNTIME=${RUNTIME:-20}
KEEP=${KEEP:-0}
created=0
if [ ! -e "$file" ]; then
    created=1
    fallocate -l 2G "$file"
    dd if=/dev/urandom of="$file" bs=4M count=512 oflag=direct conv=notrunc status=none
fi
size=$(stat -c %s "$file")
work=$(mktemp -d)
sock=$work/nbd.sock
"$vstor" nbd-export --file "$file" --socket "$sock" --name disk --nbd-buffer-size 256M \
    > "$work/export.log" 2>&1 &
pid=$!
nullpid=''
cleanup() {
    kill "$pid" ${nullpid:+"$nullpid"} 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
    if [ "$created" = 1 ] && [ "$KEEP" != 1 ]; then
        rm -f "$file"
        echo "deleted $file (KEEP=1 keeps it)" >&2
    fi
}
trap cleanup EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
nbd_uri="nbd+unix:///disk?socket=$sock"

echo "== 1. fio-suite, $rounds alternating rounds, RUNTIME=$RUNTIME"
for r in $(seq "$rounds"); do
    OUTDIR=$work/out RUNTIME=$RUNTIME "$SUITE" "raw$r" --ioengine=libaio --direct=1 \
        --filename="$file" --size="$size"
    OUTDIR=$work/out RUNTIME=$RUNTIME "$SUITE" "nbd$r" --ioengine=nbd --uri="$nbd_uri"
done


echo "== 2. server CPU per request"
: > "$work/cpu.txt"
for r in $(seq "$rounds"); do
    for job in "randread 1" "randwrite 1" "randread 128" "randwrite 128"; do
        # shellcheck disable=SC2086 # split "rw qd" into $1 $2
        set -- $job
        before=$(cpu_ns "$pid")
        read -r iops ios < <(fio4k "$1" "$2" 10 --ioengine=nbd --uri="$nbd_uri")
        after=$(cpu_ns "$pid")
        echo "$1-q$2 $iops $ios $((after - before))" >> "$work/cpu.txt"
    done
done

: > "$work/floor.txt"
if command -v nbdkit > /dev/null; then
    echo "== 3. transport floor: fio nbd against nbdkit null"
    nbdkit -U "$work/null.sock" -P "$work/null.pid" null size=2G
    for _ in $(seq 50); do [ -s "$work/null.pid" ] && break; sleep 0.1; done
    nullpid=$(cat "$work/null.pid")
    for r in $(seq "$rounds"); do
        for qd in 1 128; do
            read -r iops _ < <(fio4k randread $qd 10 --ioengine=nbd \
                --uri="nbd+unix:///?socket=$work/null.sock")
            echo "null randread-q$qd $iops" >> "$work/floor.txt"
            read -r iops _ < <(fio4k randread $qd 10 --ioengine=nbd --uri="$nbd_uri")
            echo "vstor randread-q$qd $iops" >> "$work/floor.txt"
        done
    done
fi

python3 - "$work" "$rounds" <<'PY'
import json, os, statistics, sys
from collections import defaultdict
work, rounds = sys.argv[1], int(sys.argv[2])
med = statistics.median
tests = ["seqwrite-4M-q32", "seqread-4M-q32", "randwrite-4k-q1", "randread-4k-q1",
         "randwrite-4k-q128", "randread-4k-q128"]
def job(label, t):
    return json.load(open(os.path.join(work, "out", f"{label}-{t}.json")))["jobs"][0]
def iops(label, t):
    j = job(label, t)
    return (j["write"] if "write" in t else j["read"])["iops"]
def fio_cpu_us(label, t):
    """fio's own CPU (user + system) per I/O."""
    j = job(label, t)
    ios = j["write"]["total_ios"] + j["read"]["total_ios"]
    return (j["usr_cpu"] + j["sys_cpu"]) / 100 * j["job_runtime"] * 1000 / max(ios, 1)
print(f"\n1. fio-suite: medians of {rounds} alternating rounds")
print(f"| test | raw IOPS | NBD IOPS | NBD/raw | raw µs | NBD µs | added µs |")
print(f"|---|---:|---:|---:|---:|---:|---:|")
for t in tests:
    raw = med(iops(f"raw{r}", t) for r in range(1, rounds + 1))
    nbd = med(iops(f"nbd{r}", t) for r in range(1, rounds + 1))
    line = f"| {t} | {raw:.0f} | {nbd:.0f} | {nbd / raw:.2f} |"
    if t.endswith("q1"):  # at queue depth 1, latency = 1 / IOPS (as fio-suite.sh)
        line += f" {1e6 / raw:.1f} | {1e6 / nbd:.1f} | {1e6 / nbd - 1e6 / raw:+.1f} |"
    else:
        line += " | | |"
    print(line)
cpu = defaultdict(list)
for line in open(os.path.join(work, "cpu.txt")):
    name, _, ios, ns = line.split()
    cpu[name].append(int(ns) / 1000 / max(int(ios), 1))
print(f"\n2. CPU per 4 KiB request, medians of {rounds}: the server (schedstat), and fio "
      f"itself in the fio-suite runs (raw: fio does the disk I/O; NBD: fio is the client)")
print("| job | vstor server µs | fio raw µs | fio NBD client µs |\n|---|---:|---:|---:|")
suite_name = {"randread-q1": "randread-4k-q1", "randread-q128": "randread-4k-q128",
              "randwrite-q128": "randwrite-4k-q128"}
for name, v in cpu.items():
    t = suite_name.get(name)
    raw = f"{med(fio_cpu_us(f'raw{r}', t) for r in range(1, rounds + 1)):.2f}" if t else ""
    nbd = f"{med(fio_cpu_us(f'nbd{r}', t) for r in range(1, rounds + 1)):.2f}" if t else ""
    print(f"| {name} | {med(v):.2f} | {raw} | {nbd} |")
floor = defaultdict(list)
for line in open(os.path.join(work, "floor.txt")):
    who, name, v = line.split()
    floor[(who, name)].append(float(v))
if floor:
    print(f"\n3. NBD transport floor (median of {rounds}; latency = 1/IOPS at q1)")
    print("| job | nbdkit null IOPS | vstor file IOPS | null µs | vstor µs |\n|---|---:|---:|---:|---:|")
    for name in ("randread-q1", "randread-q128"):
        n, v = med(floor[("null", name)]), med(floor[("vstor", name)])
        print(f"| {name} | {n:.0f} | {v:.0f} | {1e6 / n:.1f} | {1e6 / v:.1f} |")
PY
