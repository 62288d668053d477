#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# A/B of the local transport (net_local_dir, vstor/net/net_local.c) on the
# Q128 row of issue 7's benchmark: per round, two fresh `vstor demo`s of the
# same binary, one as it starts by default (clients, the export's libvstor
# and the OSDs on unix sockets in the demo directory) and one with
# --tcp-only (TCP loopback, as before), in alternating order. On each: the
# image is filled, then for 4 KiB randread and randwrite at Q128 `vstor
# bench --image demo` and fio's nbd engine (one connection, as fio-suite.sh)
# against the export, alternating which goes first; IOPS, and the CPU of the
# export and of the 3 OSDs per op (/proc/PID/task/*/schedstat over the run).
# Prints per-round values, medians, fio nbd / vstor bench per arm and
# local / tcp per round.
#   usage: nbd-local-ab.sh VSTOR_BIN [ROUNDS]
#   env:   RUNTIME (seconds per run, default 10), IMAGE_SIZE (default 1G)
# Every process it starts is stopped and the demos' files deleted on exit.
# Use a release build; run it under `flock /work/team/bench.lock`.
set -euo pipefail
. "$(dirname "$0")/demo_start.sh"
vstor=$(readlink -f "$1") rounds=${2:-3}
RUNTIME=${RUNTIME:-10}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
work=$(mktemp -d /var/tmp/nbd-local-ab.XXXXXX)
demo_pid= run_pid=
stop_demo() {
    if [ -n "$demo_pid" ]; then
        kill -INT "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    demo_pid=
    rm -rf "$work/demo"
}
cleanup() {
    set +e
    if [ -n "$run_pid" ]; then
        kill "$run_pid" 2>/dev/null
        wait "$run_pid" 2>/dev/null
    fi
    stop_demo
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run() { # arm round label command...: run it, append "arm round label iops export_ns osds_ns"
    local arm=$1 r=$2 label=$3 e0 e1 o0 o1
    shift 3
    e0=$(cpu_ns "$export_pid") o0=$(cpu_ns $osd_pids)
    "$@" > "$work/run.out" 2>> "$work/run.err"
    e1=$(cpu_ns "$export_pid") o1=$(cpu_ns $osd_pids)
    echo "$arm $r $label $(iops_of "$work/run.out") $((e1 - e0)) $((o1 - o0))" \
        >> "$work/samples.txt"
}
fio_job() { # rw
    fio --name=x --bs=4k --rw="$1" --iodepth=128 --time_based --runtime="$RUNTIME" \
        --output-format=json --ioengine=nbd --uri="nbd+unix:///demo?socket=$work/demo/nbd.sock"
}
bench_job() { # rw
    "$vstor" bench --image demo --config "$work/demo/vstor.conf" --no-fill \
        --tests "$1-4k-q128" --runtime "$RUNTIME" --ramp 0
}
arm_round() { # arm round
    local arm=$1 r=$2 rw
    DEMO_ARGS=$([ "$arm" = tcp ] && echo --tcp-only || true) \
        start_demo "$vstor" "$work/demo" "$IMAGE_SIZE" "$work/demo.out"
    started() { sed -n "s/.*serve: $1: started pid \([0-9]*\).*/\1/p" "$work/demo.out" | tail -1; }
    export_pid=$(started nbd-export)
    osd_pids=$(for i in 1 2 3; do started "osd:.*osd$i.img"; done | tr '\n' ' ')
    "$vstor" bench --image demo --config "$work/demo/vstor.conf" --tests randwrite-4k-q128 \
        --runtime 1 --ramp 0 > "$work/fill.txt" 2>&1 || { cat "$work/fill.txt"; exit 1; }
    for rw in randread randwrite; do
        if [ $((r % 2)) = 1 ]; then
            run "$arm" "$r" "bench-$rw" bench_job "$rw"
            run "$arm" "$r" "nbd-$rw" fio_job "$rw"
        else
            run "$arm" "$r" "nbd-$rw" fio_job "$rw"
            run "$arm" "$r" "bench-$rw" bench_job "$rw"
        fi
    done
    stop_demo
}

: > "$work/samples.txt"
echo "== nbd-local-ab: $rounds rounds of RUNTIME=$RUNTIME s, $(date -u '+%F %T') UTC," \
    "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then arms="local tcp"; else arms="tcp local"; fi
    for arm in $arms; do arm_round "$arm" "$r"; done
    echo "round $r done, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
python3 - "$work/samples.txt" "$RUNTIME" <<'PY'
import statistics, sys
from collections import defaultdict
med = statistics.median
runtime = float(sys.argv[2])
v = defaultdict(dict)  # (arm, label) -> round -> (iops, export us/op, osds us/op)
for line in open(sys.argv[1]):
    arm, r, label, iops, e, o = line.split()
    iops = float(iops)
    ops = iops * runtime
    v[(arm, label)][int(r)] = (iops, int(e) / 1e3 / ops, int(o) / 1e3 / ops)
rounds = sorted(v[("local", "nbd-randread")])
print("\nper round: IOPS (export CPU µs/op, 3 OSDs CPU µs/op)")
for (arm, label), d in sorted(v.items()):
    print(f"{arm:5} {label:15}", "  ".join(f"{d[r][0]:8.0f} ({d[r][1]:.2f}, {d[r][2]:.2f})"
                                          for r in rounds))
print("\n| figure (medians of the rounds) | local | tcp | local / tcp (median of per-round) |")
print("|---|---:|---:|---:|")
for label in ("bench-randread", "nbd-randread", "bench-randwrite", "nbd-randwrite"):
    L, T = v[("local", label)], v[("tcp", label)]
    per = [L[r][0] / T[r][0] for r in rounds]
    print(f"| {label} IOPS | {med(L[r][0] for r in rounds):.0f} |"
          f" {med(T[r][0] for r in rounds):.0f} | {med(per):.3f} |")
    if label.startswith("nbd"):
        print(f"| {label} export CPU µs/op | {med(L[r][1] for r in rounds):.2f} |"
              f" {med(T[r][1] for r in rounds):.2f} | |")
    print(f"| {label} 3 OSDs CPU µs/op | {med(L[r][2] for r in rounds):.2f} |"
          f" {med(T[r][2] for r in rounds):.2f} | |")
for rw in ("randread", "randwrite"):
    for arm in ("local", "tcp"):
        n, b = v[(arm, "nbd-" + rw)], v[(arm, "bench-" + rw)]
        per = [n[r][0] / b[r][0] for r in rounds]
        print(f"fio nbd / vstor bench, {rw} Q128, {arm}: median {med(per):.3f}"
              f" (rounds {', '.join(f'{x:.3f}' for x in per)})")
PY
