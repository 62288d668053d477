#!/bin/bash
# SPDX-License-Identifier: GPL-3.0-or-later
# A/B of two NBD exports of one `vstor demo` image at queue depth 1, with many
# short alternating rounds: T1Q1 write with fsync after each (fio --fsync=1:
# WRITE then FLUSH) and T1Q1 read, 4 KiB random, fio's nbd engine as in
# shared/bench/fio-suite.sh. Export A is `A_BIN nbd-export ... A_ARGS`, export B
# `B_BIN nbd-export ... B_ARGS`, both on the demo's image, each on its own
# unix socket; each round runs both jobs on both exports (the order flips each
# round). Prints per round and the medians of the per-round differences A − B
# in µs per op, and each export's CPU per request (/proc/PID/schedstat).
#   usage: nbd-q1-ab.sh VSTOR_BIN [ROUNDS]
#   env:   RUNTIME (seconds per job, default 5), A_BIN/B_BIN (default
#          VSTOR_BIN), A_ARGS/B_ARGS (e.g. B_ARGS=--nbd_reply_spin_us=0),
#          DEMO_DIR (default: a new directory under /var/tmp)
# The demo's OSD images are deleted at the end; logs stay in the work
# directory (printed).
set -euo pipefail
. "$(dirname "$0")/demo_start.sh"
vstor=$(readlink -f "$1") rounds=${2:-10}
RUNTIME=${RUNTIME:-5}
a_bin=$(readlink -f "${A_BIN:-$vstor}") b_bin=$(readlink -f "${B_BIN:-$vstor}")
A_ARGS=${A_ARGS:-} B_ARGS=${B_ARGS:-}
work=$(mktemp -d /var/tmp/nbd-q1-ab.XXXXXX)
demo_dir=${DEMO_DIR:-$work/demo}
demo_pid='' a_pid='' b_pid=''
cleanup() {
    for p in $a_pid $b_pid $demo_pid; do
        kill -INT "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -f "$demo_dir"/osd*.img
    echo "deleted the demo's OSD images; logs in $work" >&2
}
trap cleanup EXIT
start_demo "$vstor" "$demo_dir" 1G "$work/demo.out"
conf=$demo_dir/vstor.conf
start_export() { # name bin args (a child of this shell, so that cleanup can wait for it)
    # shellcheck disable=SC2086
    "$2" nbd-export --image=demo --socket="$work/$1.sock" --config="$conf" $3 \
        > "$work/$1.log" 2>&1 &
}
start_export a "$a_bin" "$A_ARGS"
a_pid=$!
start_export b "$b_bin" "$B_ARGS"
b_pid=$!
for s in a b; do
    for _ in $(seq 100); do [ -S "$work/$s.sock" ] && break; sleep 0.2; done
done
echo "A: pid $a_pid $a_bin $A_ARGS"
echo "B: pid $b_pid $b_bin $B_ARGS"
fio --name=fill --bs=4M --rw=write --iodepth=16 --ioengine=nbd \
    --uri="nbd+unix:///demo?socket=$work/a.sock" --output=/dev/null
one() { # export pid rw [extra] -> "us_per_op cpu_us_per_request"
    local before after
    before=$(awk '{print $1}' "/proc/$2/schedstat")
    fio --name=x --bs=4k --rw="$3" --iodepth=1 --numjobs=1 --time_based --runtime="$RUNTIME" \
        --output-format=json ${4:+"$4"} --ioengine=nbd \
        --uri="nbd+unix:///demo?socket=$work/$1.sock" > "$work/fio.json" 2>/dev/null
    after=$(awk '{print $1}' "/proc/$2/schedstat")
    python3 - "$work/fio.json" $((after - before)) <<'PY'
import json, sys
s = open(sys.argv[1]).read(); j = json.loads(s[s.index("{"):])["jobs"][0]
d = j["read"] if j["read"]["total_ios"] else j["write"]
n = d["total_ios"] * (2 if j["sync"]["total_ios"] else 1)  # WRITE + FLUSH requests
print(f"{1e6 / d['iops']:.1f} {int(sys.argv[2]) / 1000 / max(n, 1):.2f}")
PY
}
: > "$work/rounds.txt"
for r in $(seq "$rounds"); do
    order="a b"; [ $((r % 2)) = 0 ] && order="b a"
    for s in $order; do
        pid=$a_pid; [ "$s" = b ] && pid=$b_pid
        read -r w wc < <(one "$s" "$pid" randwrite --fsync=1)
        read -r rd rc < <(one "$s" "$pid" randread)
        echo "$r $s $w $wc $rd $rc" | tee -a "$work/rounds.txt"
    done
done
for s in a b; do
    echo "$s: $(grep -h 'closed:' "$work/$s.log" | grep -v ' 0 requests' | sed 's/.*closed: //' \
        | awk -F'[(,]' '{print $2","$3","$4}' | tr '\n' ';')"
done
python3 - "$work/rounds.txt" <<'PY'
import statistics, sys
from collections import defaultdict
rows = defaultdict(dict)
for line in open(sys.argv[1]):
    r, s, w, wc, rd, rc = line.split()
    rows[int(r)][s] = tuple(map(float, (w, wc, rd, rc)))
med = statistics.median
R = sorted(r for r in rows if len(rows[r]) == 2)
names = ["T1Q1 write+fsync µs/op", "export CPU µs/request (write, flush)",
         "T1Q1 read µs/op", "export CPU µs/request (read)"]
print(f"\nmedians of {len(R)} rounds")
print("| figure | A | B | A − B (median of per-round differences) |\n|---|---:|---:|---:|")
for k, name in enumerate(names):
    a = [rows[r]["a"][k] for r in R]; b = [rows[r]["b"][k] for r in R]
    d = [x - y for x, y in zip(a, b)]
    print(f"| {name} | {med(a):.1f} | {med(b):.1f} | {med(d):+.1f} |")
PY
