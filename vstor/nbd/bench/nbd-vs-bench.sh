#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# What NBD adds on top of libvstor, on a real cluster, side by side in one run:
#  1. `vstor demo` starts 1 mon + 3 OSDs (pool 'demo', pg_size 2) and exports
#     image 'demo' over NBD (the libvstor backend, vstor/nbd/nbd_image.c);
#  2. ROUNDS times, alternating which goes first: `vstor bench --image demo`
#     (libvstor directly) and shared/bench/fio-suite.sh with fio's nbd engine
#     against the demo's unix socket: the same six tests on the same image;
#  3. the export's CPU time per 4 KiB request (/proc/PID/schedstat);
#  4. if nbdkit is installed, the NBD client's own floor on this machine: the
#     same fio nbd client against `nbdkit null` (a server with no storage).
# Prints medians, the added T1Q1 latency (target ≤ 25 µs) and the Q128 IOPS
# ratio (target ≥ 0.8) as a markdown table.
#   usage: nbd-vs-bench.sh VSTOR_BIN [ROUNDS]
#   env:   RUNTIME (seconds per test, default 20), SUITE (path of fio-suite.sh),
#          DEMO_DIR (default: a new directory under /var/tmp; must not be tmpfs
#          for O_DIRECT), IMAGE_SIZE (default 1G), KEEP=1 (keep the demo's OSD
#          images at the end)
# Use a release build. The OSD images the demo created (osdN.img, 2 GiB each)
# are deleted at the end unless KEEP=1; the logs stay in the work directory
# (its path is printed), and the tables go to stdout.
set -euo pipefail
vstor=$(readlink -f "$1") rounds=${2:-3}
SUITE=${SUITE:-$(cd "$(dirname "$0")/../../.." && pwd)/../shared/bench/fio-suite.sh}
[ -x "$SUITE" ] || SUITE=/work/shared/bench/fio-suite.sh
RUNTIME=${RUNTIME:-20}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
KEEP=${KEEP:-0}
work=$(mktemp -d /var/tmp/nbd-vs-bench.XXXXXX)
demo_dir=${DEMO_DIR:-$work/demo}
demo_pid= null_pid=
fresh_images=
for i in 1 2 3; do [ -e "$demo_dir/osd$i.img" ] || fresh_images="$fresh_images $demo_dir/osd$i.img"; done
cleanup() {
    [ -n "$null_pid" ] && kill "$null_pid" 2>/dev/null
    if [ -n "$demo_pid" ]; then
        kill -INT "$demo_pid" 2>/dev/null
        wait "$demo_pid" 2>/dev/null
    fi
    if [ "$KEEP" != 1 ]; then
        # shellcheck disable=SC2086
        rm -f $fresh_images
        echo "deleted the demo's OSD images (KEEP=1 keeps them); logs in $work" >&2
    fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])')
"$vstor" demo --dir "$demo_dir" --osds 3 --size 2G --image-size "$IMAGE_SIZE" \
    --nbd-port "$port" > "$work/demo.out" 2>&1 &
demo_pid=$!
for _ in $(seq 900); do
    grep -q 'vstor demo is running' "$work/demo.out" && break
    kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.out"; exit 1; }
    sleep 0.2
done
grep -q 'vstor demo is running' "$work/demo.out" || { cat "$work/demo.out"; exit 1; }
export_pid=$(sed -n 's/.*nbd-export: started pid \([0-9]*\).*/\1/p' "$work/demo.out" | tail -1)
conf=$demo_dir/vstor.conf
nbd_uri="nbd+unix:///demo?socket=$demo_dir/nbd.sock"
echo "demo up: $(grep -c 'started pid' "$work/demo.out") children, export pid $export_pid"

run_bench() { # label
    "$vstor" bench --image demo --config "$conf" --runtime "$RUNTIME" --ramp 2 --label "$1" \
        > "$work/out/$1.txt" 2>> "$work/bench.log"
    cat "$work/out/$1.txt"
}
run_nbd() { # label
    OUTDIR=$work/out RUNTIME=$RUNTIME "$SUITE" "$1" --ioengine=nbd --uri="$nbd_uri" \
        | tee "$work/out/$1.txt"
}
mkdir -p "$work/out"
echo "== 1. vstor bench and fio-suite (nbd), $rounds alternating rounds, RUNTIME=$RUNTIME"
for r in $(seq "$rounds"); do
    if [ $((r % 2)) = 1 ]; then run_bench "bench$r"; run_nbd "nbd$r"
    else run_nbd "nbd$r"; run_bench "bench$r"; fi
done

# one 4 KiB fio job; prints "iops total_ios"
fio4k() { # rw qd seconds target...
    local rw=$1 qd=$2 sec=$3; shift 3
    fio --name=x --bs=4k --rw="$rw" --iodepth="$qd" --time_based --runtime="$sec" \
        --output-format=json "$@" 2>/dev/null | python3 -c '
import json, sys
s = sys.stdin.read(); j = json.loads(s[s.index("{"):])["jobs"][0]
d = j["read"] if j["read"]["total_ios"] else j["write"]
print(d["iops"], d["total_ios"])'
}
cpu_ns() { awk '{print $1}' "/proc/$export_pid/schedstat"; }

echo "== 2. export CPU per request"
: > "$work/cpu.txt"
if [ -n "$export_pid" ] && [ -r "/proc/$export_pid/schedstat" ]; then
    for r in $(seq "$rounds"); do
        for job in "randread 1" "randwrite 1" "randread 128" "randwrite 128"; do
            set -- $job
            before=$(cpu_ns)
            read -r iops ios < <(fio4k "$1" "$2" 10 --ioengine=nbd --uri="$nbd_uri")
            after=$(cpu_ns)
            echo "$1-q$2 $iops $ios $((after - before))" >> "$work/cpu.txt"
        done
    done
fi

: > "$work/floor.txt"
if command -v nbdkit > /dev/null; then
    echo "== 3. client floor: fio nbd against nbdkit null"
    nbdkit -U "$work/null.sock" -P "$work/null.pid" null size=1G
    for _ in $(seq 50); do [ -s "$work/null.pid" ] && break; sleep 0.1; done
    null_pid=$(cat "$work/null.pid")
    for r in $(seq "$rounds"); do
        for job in "randread 1" "randwrite 1" "randread 128" "randwrite 128"; do
            set -- $job
            read -r iops _ < <(fio4k "$1" "$2" 10 --ioengine=nbd \
                --uri="nbd+unix:///?socket=$work/null.sock")
            echo "$1-q$2 $iops" >> "$work/floor.txt"
        done
    done
fi

python3 - "$work" "$rounds" <<'PY'
import json, os, statistics, sys
from collections import defaultdict
work, rounds = sys.argv[1], int(sys.argv[2])
med = statistics.median
R = range(1, rounds + 1)
tests = ["seqwrite-4M-q32", "seqread-4M-q32", "randwrite-4k-q1", "randread-4k-q1",
         "randwrite-4k-q128", "randread-4k-q128"]
def table(label):
    """{test: iops} from the printed table of vstor bench or fio-suite.sh."""
    rows = {}
    for line in open(os.path.join(work, "out", f"{label}.txt")):
        f = line.split()
        if len(f) == 6 and f[1] in tests:
            rows[f[1]] = float(f[2])
    return rows
bench = [table(f"bench{r}") for r in R]
nbd = [table(f"nbd{r}") for r in R]
print(f"\n1. medians of {rounds} alternating rounds (latency at Q1 = 1/IOPS, as fio-suite.sh)")
print("| test | vstor bench IOPS | fio nbd IOPS | vstor bench µs | fio nbd µs "
      "| NBD adds | target | met |")
print("|---|---:|---:|---:|---:|---:|---|---|")
for t in tests:
    b, n = med(x[t] for x in bench), med(x[t] for x in nbd)
    line = f"| {t} | {b:.0f} | {n:.0f} |"
    if t.endswith("q1"):
        # the median of the per-round differences, each round side by side
        add = med(1e6 / nbd[i][t] - 1e6 / bench[i][t] for i in range(rounds))
        line += f" {1e6 / b:.1f} | {1e6 / n:.1f} | {add:+.1f} µs | ≤ +25 µs |" \
                f" {'yes' if add <= 25 else 'no'} |"
    else:
        ratio = med(nbd[i][t] / bench[i][t] for i in range(rounds))
        target, met = ("≥ 0.8×", "yes" if ratio >= 0.8 else "no") \
            if t.endswith("q128") else ("—", "")
        line += f" | | {ratio:.2f}× | {target} | {met} |"
    print(line)
print("\nper round, NBD adds at Q1 (µs) / NBD÷bench at Q128:")
for i in range(rounds):
    print(f"  round {i + 1}: " + ", ".join(
        f"{t} {1e6 / nbd[i][t] - 1e6 / bench[i][t]:+.1f}" if t.endswith("q1")
        else f"{t} {nbd[i][t] / bench[i][t]:.2f}" for t in tests[2:]))
cpu = defaultdict(list)
for line in open(os.path.join(work, "cpu.txt")):
    name, iops, ios, ns = line.split()
    cpu[name].append((int(ns) / 1000 / max(int(ios), 1), float(iops)))
if cpu:
    print(f"\n2. the export's CPU per 4 KiB request (schedstat), medians of {rounds}")
    print("| job | fio nbd IOPS | export CPU µs per request |\n|---|---:|---:|")
    for name, v in cpu.items():
        print(f"| {name} | {med(x[1] for x in v):.0f} | {med(x[0] for x in v):.2f} |")
floor = defaultdict(list)
for line in open(os.path.join(work, "floor.txt")):
    name, v = line.split()
    floor[name].append(float(v))
if floor:
    print(f"\n3. client floor: fio nbd against nbdkit null, medians of {rounds}")
    print("| job | IOPS | µs per op |\n|---|---:|---:|")
    for name, v in floor.items():
        print(f"| {name} | {med(v):.0f} | {1e6 / med(v):.1f} |")
PY
