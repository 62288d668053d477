#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# What bounds the Q128 row of issue 7's benchmark on this machine: the CPU.
#  1. `vstor demo` (1 mon + 3 OSDs, pool 'demo' pg_size 2, image 'demo'
#     exported over NBD); the image is filled once by `vstor bench`;
#  2. ROUNDS times, for randread and randwrite 4 KiB at Q128, alternating
#     which goes first: `vstor bench --image demo` (libvstor in-process) and
#     fio's nbd engine against the demo's export (one job, as fio-suite.sh).
#     Over a window of WINDOW seconds in the middle of each run: the machine's
#     busy time (/proc/stat) and the CPU time (the sum of /proc/PID/task/*/
#     schedstat, children included) of the client (vstor bench, or fio), the
#     export, each OSD, the mon and the demo's parent; divided by the ops of
#     the window (the run's IOPS x WINDOW): CPU µs per op of each;
#  3. the client floor: the same fio job against two servers that do no
#     storage work: `nbdkit null` (multi-threaded) and our own export with
#     the file backend on a file in /dev/shm (page cache); fio's and the
#     server's CPU per op, and the IOPS.
# Prints markdown tables of medians and the budget: with both cores busy,
# keeping 0.8x of vstor bench's IOPS needs the NBD setup's CPU per op
# <= 1.25x vstor bench's, i.e. (fio + export - vstor bench's client) <= 0.25x
# vstor bench's total CPU per op (OSDs and mon alike on both sides).
#   usage: nbd-q128-cpu.sh VSTOR_BIN [ROUNDS]
#   env:   WINDOW (measured seconds per run, default 8), IMAGE_SIZE (default
#          1G), KEEP=1 (keep the work directory with its logs), PERF=1 (also
#          `perf record -g` of the export during one more fio randread run),
#          CONNS2=1 (also fio with 2 connections of depth 64 each, i.e.
#          numjobs=2: multi-conn), FLOOR=0 (skip the client floor and perf)
# Every process it starts is stopped and every file it creates (the OSD
# images, the /dev/shm file) deleted on exit, error or signal included.
# Use a release build; run it under `flock /work/team/bench.lock`.
set -euo pipefail
. "$(dirname "$0")/demo_start.sh"
vstor=$(readlink -f "$1") rounds=${2:-3}
WINDOW=${WINDOW:-8}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
KEEP=${KEEP:-0}
work=$(mktemp -d /var/tmp/nbd-q128-cpu.XXXXXX)
shm=/dev/shm/nbd-q128-cpu.$$
demo_pid= null_pid= file_pid= run_pid=
stop() { # pid [signal]: stop one child and wait for it, tolerating its absence
    [ -n "$1" ] || return 0
    kill "-${2:-TERM}" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}
cleanup() {
    set +e
    if [ -n "$run_pid" ]; then
        for p in $(tree "$run_pid"); do kill -KILL "$p" 2>/dev/null; done
        wait "$run_pid" 2>/dev/null
    fi
    stop "$null_pid"
    stop "$file_pid" INT
    stop "$demo_pid" INT
    rm -f "$shm" "$work"/demo/osd*.img
    if [ "$KEEP" = 1 ]; then echo "logs in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
hz=$(getconf CLK_TCK)

start_demo "$vstor" "$work/demo" "$IMAGE_SIZE" "$work/demo.out"
started() { sed -n "s/.*serve: $1: started pid \([0-9]*\).*/\1/p" "$work/demo.out" | tail -1; }
export_pid=$(started nbd-export) mon_pid=$(started 'mon\.1')
osd_pids=$(for i in 1 2 3; do started "osd:.*osd$i.img"; done | tr '\n' ' ')
conf=$work/demo/vstor.conf
uri="nbd+unix:///demo?socket=$work/demo/nbd.sock"
echo "demo up: mon $mon_pid, osds $osd_pids, export $export_pid (demo $demo_pid)"
"$vstor" bench --image demo --config "$conf" --tests randwrite-4k-q128 --runtime 1 --ramp 0 \
    > "$work/fill.txt" 2>&1 || { cat "$work/fill.txt"; exit 1; }

tree() { # pid: the pid and its descendants
    echo "$1"
    local c
    for c in $(pgrep -P "$1" || true); do tree "$c"; done
}
machine() { # "busy_ns total_ns" from /proc/stat
    awk -v hz="$hz" '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i;
        printf "%.0f %.0f\n", (t - $5 - $6) * 1e9 / hz, t * 1e9 / hz}' /proc/stat
}
snapshot() { # client server: one line of CPU ns: machine busy, total, client, server, osds, mon, demo
    local s
    s="$(machine) $(cpu_ns $(tree "$1")) $(cpu_ns "$2")"
    for p in $osd_pids; do s="$s $(cpu_ns "$p")"; done
    echo "$s $(cpu_ns "$mon_pid") $(cpu_ns "$demo_pid")"
}
measure() { # label server_pid command...: run it, sample the window, append a line
    local label=$1 server=$2 a b
    shift 2
    "$@" > "$work/run.out" 2>> "$work/run.err" &
    run_pid=$!
    sleep 1.5
    a=$(snapshot "$run_pid" "$server")
    sleep "$WINDOW"
    b=$(snapshot "$run_pid" "$server")
    wait "$run_pid"
    run_pid=
    echo "$label $(iops_of "$work/run.out") $a / $b" >> "$work/samples.txt"
}
fio_job() { # rw uri [numjobs]: numjobs connections of depth 128/numjobs
    local n=${3:-1}
    fio --name=x --bs=4k --rw="$1" --iodepth=$((128 / n)) --numjobs="$n" --group_reporting \
        --time_based --runtime=$((WINDOW + 3)) --output-format=json --ioengine=nbd --uri="$2"
}
bench_job() { # rw
    "$vstor" bench --image demo --config "$conf" --no-fill --tests "$1-4k-q128" \
        --runtime $((WINDOW + 2)) --ramp 1
}

: > "$work/samples.txt"
echo "== 1. vstor bench vs fio nbd at Q128, $rounds rounds, window ${WINDOW}s"
for r in $(seq "$rounds"); do
    for rw in randread randwrite; do
        if [ $((r % 2)) = 1 ]; then
            measure "bench-$rw" "$export_pid" bench_job "$rw"
            measure "nbd-$rw" "$export_pid" fio_job "$rw" "$uri"
        else
            measure "nbd-$rw" "$export_pid" fio_job "$rw" "$uri"
            measure "bench-$rw" "$export_pid" bench_job "$rw"
        fi
        if [ "${CONNS2:-0}" = 1 ]; then
            measure "nbd2conn-$rw" "$export_pid" fio_job "$rw" "$uri" 2
        fi
    done
done
if [ "${FLOOR:-1}" = 1 ] && [ "${PERF:-0}" = 1 ]; then
    echo "== perf: the export during fio nbd randread Q128 (${WINDOW}s)"
    fio_job randread "$uri" > /dev/null 2>&1 &
    run_pid=$!
    sleep 1
    perf record -q -g -p "$export_pid" -o "$work/perf.data" -- sleep "$WINDOW" 2> /dev/null
    wait "$run_pid"
    run_pid=
    # (the whole report to a file first: `head` closing a pipe would end the script)
    perf report -i "$work/perf.data" --no-children -g none --sort dso,sym --stdio \
        > "$work/perf.txt" 2> /dev/null || true
    grep '%' "$work/perf.txt" | head -30 || true
    perf report -i "$work/perf.data" --no-children -g none --sort dso --stdio \
        > "$work/perf.txt" 2> /dev/null || true
    grep '%' "$work/perf.txt" | head -8 || true
    rm -f "$work/perf.data"
fi
stop "$demo_pid" INT
demo_pid=
rm -f "$work"/demo/osd*.img

[ "${FLOOR:-1}" = 1 ] && echo "== 2. client floor: fio nbd against servers that store nothing"
osd_pids= mon_pid=
nbdkit -U "$work/null.sock" -f null size=1G &
null_pid=$!
truncate -s 1G "$shm"
"$vstor" nbd-export --file "$shm" --socket "$work/file.sock" --name shm \
    > "$work/file.out" 2>&1 &
file_pid=$!
for _ in $(seq 100); do [ -S "$work/file.sock" ] && [ -S "$work/null.sock" ] && break; sleep 0.1; done
for r in $(seq $([ "${FLOOR:-1}" = 1 ] && echo "$rounds" || echo 0)); do
    for rw in randread randwrite; do
        measure "null-$rw" "$null_pid" fio_job "$rw" "nbd+unix:///?socket=$work/null.sock"
        measure "shm-$rw" "$file_pid" fio_job "$rw" "nbd+unix:///shm?socket=$work/file.sock"
    done
done

python3 - "$work/samples.txt" "$WINDOW" <<'PY'
import statistics, sys
from collections import defaultdict
med = statistics.median
window = float(sys.argv[2])
rows = defaultdict(list)
for line in open(sys.argv[1]):
    head, b = line.split(" / ")
    f = head.split()
    label, iops = f[0], float(f[1])
    a = [int(x) for x in f[2:]]
    d = [y - x for x, y in zip(a, [int(x) for x in b.split()])]
    busy, total, client, server, *osds, mon, demo = d
    ops = iops * window
    us = lambda ns: ns / 1e3 / ops
    rows[label].append(dict(iops=iops, busy=100 * busy / total, machine=us(busy),
                            client=us(client), server=us(server), osds=us(sum(osds)),
                            mon=us(mon + demo), osd=[us(x) for x in osds],
                            other=us(busy - client - server - sum(osds) - mon - demo)))
def m(label, key):
    return med(r[key] for r in rows[label])
print("\n1. Q128, medians of the rounds: IOPS, machine busy % (/proc/stat, 2 vCPUs = 100 %),"
      " CPU µs per op")
print("| run | IOPS | machine busy | machine µs/op | client µs/op | export µs/op "
      "| 3 OSDs µs/op | mon+demo µs/op | not ours µs/op |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for label in rows:
    if label.startswith(("bench", "nbd")):
        print(f"| {label} | {m(label, 'iops'):.0f} | {m(label, 'busy'):.0f} % "
              f"| {m(label, 'machine'):.2f} | {m(label, 'client'):.2f} "
              f"| {m(label, 'server') if label.startswith('nbd') else 0:.2f} "
              f"| {m(label, 'osds'):.2f} | {m(label, 'mon'):.2f} | {m(label, 'other'):.2f} |")
print("\n(vstor bench rows: the export column is the idle export's own CPU, not counted)")
for rw in ("randread", "randwrite"):
    b, n = rows[f"bench-{rw}"], rows[f"nbd-{rw}"]
    ratio = med(y["iops"] / x["iops"] for x, y in zip(b, n))
    ours_b = med(x["client"] + x["osds"] + x["mon"] for x in b)
    ours_n = med(y["client"] + y["server"] + y["osds"] + y["mon"] for y in n)
    extra = med(y["client"] + y["server"] - x["client"] for x, y in zip(b, n))
    print(f"\n{rw} Q128: fio nbd ÷ vstor bench = {ratio:.2f}× (median of per-round ratios)")
    print(f"  CPU per op, ours (client + export + OSDs + mon): vstor bench {ours_b:.2f} µs, "
          f"fio nbd {ours_n:.2f} µs")
    print(f"  budget for 0.8×: fio + export − vstor bench client <= 0.25 × {ours_b:.2f}"
          f" = {0.25 * ours_b:.2f} µs; measured {extra:.2f} µs "
          f"(fio {m(f'nbd-{rw}', 'client'):.2f}, export {m(f'nbd-{rw}', 'server'):.2f},"
          f" vstor bench client {m(f'bench-{rw}', 'client'):.2f})")
    print(f"  fio alone {m(f'nbd-{rw}', 'client'):.2f} µs vs the budget {0.25 * ours_b:.2f} µs:"
          f" {'exceeds' if m(f'nbd-{rw}', 'client') > 0.25 * ours_b else 'within'}")
    if f"nbd2conn-{rw}" in rows:
        n2 = rows[f"nbd2conn-{rw}"]
        print(f"  two connections (fio numjobs=2, depth 64 each) ÷ vstor bench = "
              f"{med(y['iops'] / x['iops'] for x, y in zip(b, n2)):.2f}×")
print("\n2. client floor: fio nbd, Q128, servers that store nothing; medians of the rounds")
print("| server | rw | IOPS | machine busy | fio µs/op | server µs/op |\n|---|---|---:|---:|---:|---:|")
for label in rows:
    if label.startswith(("null", "shm")):
        srv, rw = label.split("-")
        name = "nbdkit null" if srv == "null" else "vstor nbd-export --file /dev/shm"
        print(f"| {name} | {rw} | {m(label, 'iops'):.0f} | {m(label, 'busy'):.0f} % "
              f"| {m(label, 'client'):.2f} | {m(label, 'server'):.2f} |")
print("\nper round (label IOPS busy% client server osds µs/op):")
for label, v in rows.items():
    print(f"  {label}: " + "; ".join(f"{r['iops']:.0f} {r['busy']:.0f}% {r['client']:.2f} "
                                     f"{r['server']:.2f} {r['osds']:.2f}" for r in v))
PY
