#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The block store against the raw file, side by side, robust to a noisy
# machine: for each of the six shapes of shared/bench/fio-suite.sh, ROUNDS
# alternating pairs of
#   `vstor disk bench FILE --shapes SHAPE` (format, fill with 4 MiB writes,
#       2 s warm-up, RUNTIME s measured), and
#   fio on the raw FILE with the job line of fio-suite.sh's run() for that
#       shape (libaio, O_DIRECT, ramp_time 2, RUNTIME s),
# then the median store/raw ratio per shape (latency for the Q1 shapes, IOPS
# otherwise) and the median figures of each side.
#   usage: store-vs-raw.sh VSTOR_BIN FILE [ROUNDS] [SHAPES]
#   env:   RUNTIME (seconds per run, default 5), SIZE (default 2G),
#          BENCH_ARGS (more `vstor disk bench` options, e.g. --drain),
#          KEEP=1 (keep FILE at the end)
# Use a release build. FILE is overwritten; when it did not exist before, it is
# deleted at the end (unless KEEP=1). The table goes to stdout.
set -euo pipefail
vstor=$1 file=$2 rounds=${3:-3}
shapes=${4:-seqwrite-4M-q32,seqread-4M-q32,randwrite-4k-q1,randread-4k-q1,randwrite-4k-q128,randread-4k-q128}
RUNTIME=${RUNTIME:-5}
SIZE=${SIZE:-2G}
BENCH_ARGS=${BENCH_ARGS:-}
KEEP=${KEEP:-0}
created=0
[ -e "$file" ] || created=1
work=$(mktemp -d)
cleanup() {
    rm -rf "$work"
    if [ "$created" = 1 ] && [ "$KEEP" != 1 ] && [ -f "$file" ]; then
        rm -f "$file"
        echo "deleted $file (KEEP=1 keeps it)" >&2
    fi
}
trap cleanup EXIT

fio_args() { # the arguments fio-suite.sh's run() gives each shape
    case $1 in
    seqwrite-4M-q32) echo "--bs=4M --rw=write --iodepth=32" ;;
    seqread-4M-q32) echo "--bs=4M --rw=read --iodepth=32" ;;
    randwrite-4k-q1) echo "--bs=4k --rw=randwrite --iodepth=1 --fsync=1" ;;
    randread-4k-q1) echo "--bs=4k --rw=randread --iodepth=1" ;;
    randwrite-4k-q128) echo "--bs=4k --rw=randwrite --iodepth=128" ;;
    randread-4k-q128) echo "--bs=4k --rw=randread --iodepth=128" ;;
    esac
}

for shape in ${shapes//,/ }; do
    for r in $(seq "$rounds"); do
        # shellcheck disable=SC2086
        "$vstor" disk bench "$file" --size "$SIZE" --runtime "$RUNTIME" --shapes "$shape" \
            $BENCH_ARGS > "$work/store.txt" 2>&1
        store=$(awk -v s="$shape" '$1 == s {print $2, $4}' "$work/store.txt")
        grep "^  $shape" "$work/store.txt" >> "$work/detail.txt" || true
        # shellcheck disable=SC2046
        fio --name="$shape" --numjobs=1 --time_based --runtime="$RUNTIME" --ramp_time=2 \
            --group_reporting --output-format=json $(fio_args "$shape") --ioengine=libaio \
            --direct=1 --filename="$file" --size="$SIZE" > "$work/raw.json"
        raw=$(python3 -c '
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
d = j["write"] if j["write"]["iops"] else j["read"]
print("%.0f %.1f" % (d["iops"], 1e6 / d["iops"]))' "$work/raw.json")
        echo "$shape $r $store $raw $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$work/pairs.txt"
    done
done
echo
cat "$work/detail.txt"
python3 - "$work/pairs.txt" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    shape, _, si, sl, ri, rl, load = line.split()
    rows.setdefault(shape, []).append((float(si), float(sl), float(ri), float(rl), float(load)))
print(f"\n{'test':18} {'rounds':>6} {'store iops':>10} {'raw iops':>10} {'store lat':>9} "
      f"{'raw lat':>9} {'ratio median':>12}  ratios (load)")
for shape, rs in rows.items():
    q1 = shape.endswith("q1")
    ratios = [(r[1] / r[3]) if q1 else (r[0] / r[2]) for r in rs]
    med = lambda i: statistics.median(r[i] for r in rs)
    print(f"{shape:18} {len(rs):6} {med(0):10.0f} {med(2):10.0f} {med(1):9.1f} {med(3):9.1f} "
          f"{statistics.median(ratios):11.2f}x  " +
          " ".join(f"{x:.2f}({r[4]:.0f})" for x, r in zip(ratios, rs)) +
          ("  (latency)" if q1 else "  (iops)"))
PY
