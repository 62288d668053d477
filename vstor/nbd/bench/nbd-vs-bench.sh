#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# What NBD adds on top of libvstor, on a real cluster, side by side in one run:
#  1. `vstor demo` starts 1 mon + 3 OSDs (pool 'demo', pg_size 2) and exports
#     image 'demo' over NBD (the libvstor backend, vstor/nbd/nbd_image.c);
#  2. ROUNDS times, alternating which goes first: `vstor bench --image demo`
#     (libvstor directly) and shared/bench/fio-suite.sh with fio's nbd engine
#     against the demo's unix socket: the same six tests on the same image;
#  3. the export's CPU time per 4 KiB request (schedstat of all its threads);
#  4. if nbdkit is installed, the NBD client's own floor on this machine: the
#     same fio nbd client against `nbdkit null` (a server with no storage),
#     with its default thread pool and with one thread (`-t 1`, the faster at
#     Q1); at Q1 this is a lower bound of what any NBD server adds.
# Prints medians, the added T1Q1 latency (target ≤ 25 µs) and the Q128 IOPS
# ratio (target ≥ 0.8) as a markdown table.
# A/B: with B_BIN and/or B_ARGS set, a second export of the same image runs
# next to the demo's (`B_BIN nbd-export ... B_ARGS`, on its own socket), and
# every round and CPU sample runs fio-suite against both exports (rotating
# the order); then each export's figures and the medians of the per-round
# differences between them (A = the demo's export, built from VSTOR_BIN).
#   usage: nbd-vs-bench.sh VSTOR_BIN [ROUNDS]
#   env:   RUNTIME (seconds per test, default 20), SUITE (path of fio-suite.sh),
#          DEMO_DIR (default: a new directory under /var/tmp; must not be tmpfs
#          for O_DIRECT), IMAGE_SIZE (default 1G), KEEP=1 (keep the demo's OSD
#          images at the end), B_BIN (second export's binary, default VSTOR_BIN),
#          B_ARGS (extra arguments of the second export, e.g.
#          --nbd_reply_spin_us=0), FLOOR=0 (skip the nbdkit null floor)
# Use a release build. The OSD images the demo created (osdN.img, 2 GiB each)
# are deleted at the end unless KEEP=1; the logs stay in the work directory
# (its path is printed), and the tables go to stdout.
set -euo pipefail
# shellcheck source=vstor/nbd/bench/demo_start.sh
. "$(dirname "$0")/demo_start.sh"
vstor=$(readlink -f "$1") rounds=${2:-3}
SUITE=${SUITE:-$(cd "$(dirname "$0")/../../.." && pwd)/../shared/bench/fio-suite.sh}
[ -x "$SUITE" ] || SUITE=/work/shared/bench/fio-suite.sh
RUNTIME=${RUNTIME:-20}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
KEEP=${KEEP:-0}
FLOOR=${FLOOR:-1}
B_ARGS=${B_ARGS:-}
ab=0
if [ -n "${B_BIN:-}" ] || [ -n "$B_ARGS" ]; then ab=1; fi
b_bin=$(readlink -f "${B_BIN:-$1}")
work=$(mktemp -d /var/tmp/nbd-vs-bench.XXXXXX)
demo_dir=${DEMO_DIR:-$work/demo}
demo_pid='' null_pid='' null1_pid='' b_pid=''
fresh_images=
for i in 1 2 3; do [ -e "$demo_dir/osd$i.img" ] || fresh_images="$fresh_images $demo_dir/osd$i.img"; done
cleanup() {
    [ -n "$null_pid" ] && kill "$null_pid" 2>/dev/null
    [ -n "$null1_pid" ] && kill "$null1_pid" 2>/dev/null
    if [ -n "$b_pid" ]; then
        kill -INT "$b_pid" 2>/dev/null
        wait "$b_pid" 2>/dev/null || true
    fi
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

start_demo "$vstor" "$demo_dir" "$IMAGE_SIZE" "$work/demo.out"
export_pid=$(sed -n 's/.*nbd-export: started pid \([0-9]*\).*/\1/p' "$work/demo.out" | tail -1)
conf=$demo_dir/vstor.conf
nbd_uri="nbd+unix:///demo?socket=$demo_dir/nbd.sock"
echo "demo up: $(grep -c 'started pid' "$work/demo.out") children, export pid $export_pid"
b_uri="nbd+unix:///demo?socket=$work/b.sock"
if [ "$ab" = 1 ]; then
    # shellcheck disable=SC2086
    "$b_bin" nbd-export --image=demo --socket="$work/b.sock" --config="$conf" $B_ARGS \
        > "$work/b.out" 2>&1 &
    b_pid=$!
    for _ in $(seq 100); do [ -S "$work/b.sock" ] && break; sleep 0.2; done
    [ -S "$work/b.sock" ] || { cat "$work/b.out"; exit 1; }
    echo "export B up: pid $b_pid ($b_bin $B_ARGS)"
fi

run_bench() { # label
    "$vstor" bench --image demo --config "$conf" --runtime "$RUNTIME" --ramp 2 --label "$1" \
        > "$work/out/$1.txt" 2>> "$work/bench.log"
    cat "$work/out/$1.txt"
}
run_nbd() { # label [uri]
    OUTDIR=$work/out RUNTIME=$RUNTIME "$SUITE" "$1" --ioengine=nbd --uri="${2:-$nbd_uri}" \
        | tee "$work/out/$1.txt"
}
run_nbdb() { run_nbd "$1" "$b_uri"; }
mkdir -p "$work/out"
echo "== 1. vstor bench and fio-suite (nbd), $rounds alternating rounds, RUNTIME=$RUNTIME"
for r in $(seq "$rounds"); do
    if [ "$ab" = 1 ]; then
        case $((r % 3)) in
        1) run_bench "bench$r"; run_nbd "nbd$r"; run_nbdb "nbdb$r" ;;
        2) run_nbdb "nbdb$r"; run_bench "bench$r"; run_nbd "nbd$r" ;;
        0) run_nbd "nbd$r"; run_nbdb "nbdb$r"; run_bench "bench$r" ;;
        esac
    elif [ $((r % 2)) = 1 ]; then run_bench "bench$r"; run_nbd "nbd$r"
    else run_nbd "nbd$r"; run_bench "bench$r"; fi
done

syscalls() { awk '/^sysc[rw]:/ {n += $2} END {print n}' "/proc/$1/io"; }
cpu_sample() { # file pid uri rw qd
    local before sc_before after sc_after iops ios
    before=$(cpu_ns "$2") sc_before=$(syscalls "$2")
    read -r iops ios < <(fio4k "$4" "$5" 10 --ioengine=nbd --uri="$3")
    after=$(cpu_ns "$2") sc_after=$(syscalls "$2")
    echo "$4-q$5 $iops $ios $((after - before)) $((sc_after - sc_before))" >> "$1"
}

echo "== 2. export CPU and syscalls per request"
: > "$work/cpu.txt"
: > "$work/cpub.txt"
if [ -n "$export_pid" ] && [ -r "/proc/$export_pid/schedstat" ]; then
    for r in $(seq "$rounds"); do
        for job in "randread 1" "randwrite 1" "randread 128" "randwrite 128"; do
            # shellcheck disable=SC2086 # split "rw qd" into $1 $2
            set -- $job
            if [ "$ab" = 1 ] && [ $((r % 2)) = 0 ]; then
                cpu_sample "$work/cpub.txt" "$b_pid" "$b_uri" "$1" "$2"
            fi
            cpu_sample "$work/cpu.txt" "$export_pid" "$nbd_uri" "$1" "$2"
            if [ "$ab" = 1 ] && [ $((r % 2)) = 1 ]; then
                cpu_sample "$work/cpub.txt" "$b_pid" "$b_uri" "$1" "$2"
            fi
        done
    done
fi

: > "$work/floor.txt"
if [ "$FLOOR" = 1 ] && command -v nbdkit > /dev/null; then
    echo "== 3. client floor: fio nbd against nbdkit null"
    nbdkit -U "$work/null.sock" -P "$work/null.pid" null size=1G
    nbdkit -t 1 -U "$work/null1.sock" -P "$work/null1.pid" null size=1G
    for _ in $(seq 50); do [ -s "$work/null.pid" ] && [ -s "$work/null1.pid" ] && break; sleep 0.1; done
    null_pid=$(cat "$work/null.pid") null1_pid=$(cat "$work/null1.pid")
    # randwrite+flush: fio-suite's T1Q1 write job (a FLUSH after every
    # WRITE), the floor of what NBD adds to `vstor bench`'s write+sync
    for r in $(seq "$rounds"); do
        for job in "randread 1" "randwrite 1" "randwrite+flush 1" "randread 128" \
                   "randwrite 128"; do
            # shellcheck disable=SC2086 # split "rw qd" into $1 $2
            set -- $job
            rw=${1%+flush} extra=
            [ "$rw" != "$1" ] && extra=--fsync=1
            for srv in null null1; do
                # shellcheck disable=SC2086 # extra: no word, or one
                read -r iops _ < <(fio4k "$rw" "$2" 10 --ioengine=nbd $extra \
                    --uri="nbd+unix:///?socket=$work/$srv.sock")
                echo "$1-q$2 $srv $iops" >> "$work/floor.txt"
            done
        done
    done
fi

python3 - "$work" "$rounds" "$ab" <<'PY'
import json, os, statistics, sys
from collections import defaultdict
work, rounds, ab = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
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
def report(nbd, title):
    print(f"\n1{title}. medians of {rounds} alternating rounds "
          "(latency at Q1 = 1/IOPS, as fio-suite.sh)")
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
nbd = [table(f"nbd{r}") for r in R]
report(nbd, " (export A, the demo's)" if ab else "")
if ab:
    nbdb = [table(f"nbdb{r}") for r in R]
    report(nbdb, "b (export B)")
    print("\nA vs B, medians of the per-round differences (Q1: µs, A − B; else IOPS A÷B):")
    for t in tests:
        if t.endswith("q1"):
            v = [1e6 / nbd[i][t] - 1e6 / nbdb[i][t] for i in range(rounds)]
            print(f"  {t}: {med(v):+.1f} µs  (rounds: " +
                  ", ".join(f"{x:+.1f}" for x in v) + ")")
        else:
            v = [nbd[i][t] / nbdb[i][t] for i in range(rounds)]
            print(f"  {t}: {med(v):.2f}×  (rounds: " + ", ".join(f"{x:.2f}" for x in v) + ")")
def cpu_table(fname, title):
    cpu = defaultdict(list)
    for line in open(os.path.join(work, fname)):
        name, iops, ios, ns, sc = line.split()
        n = max(int(ios), 1)
        cpu[name].append((int(ns) / 1000 / n, float(iops), int(sc) / n))
    if not cpu:
        return
    print(f"\n2{title}. the export's CPU (schedstat) and syscalls (/proc/PID/io) per 4 KiB "
          f"request, medians of {rounds}")
    print("| job | fio nbd IOPS | export CPU µs per request | syscalls per request |\n"
          "|---|---:|---:|---:|")
    for name, v in cpu.items():
        print(f"| {name} | {med(x[1] for x in v):.0f} | {med(x[0] for x in v):.2f} "
              f"| {med(x[2] for x in v):.2f} |")
cpu_table("cpu.txt", " (export A)" if ab else "")
if ab:
    cpu_table("cpub.txt", "b (export B)")
floor = defaultdict(list)
for line in open(os.path.join(work, "floor.txt")):
    name, srv, v = line.split()
    floor[name, srv].append(float(v))
if floor:
    print(f"\n3. client floor: fio nbd against nbdkit null, medians of {rounds}"
          " (default threads | -t 1)")
    print("| job | IOPS | µs per op | IOPS (-t 1) | µs per op (-t 1) |\n"
          "|---|---:|---:|---:|---:|")
    for name in dict.fromkeys(n for n, _ in floor):
        a, b = med(floor[name, "null"]), med(floor[name, "null1"])
        print(f"| {name} | {a:.0f} | {1e6 / a:.1f} | {b:.0f} | {1e6 / b:.1f} |")
PY
