# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# demo_start.sh -- sourced by the NBD benchmark scripts: start_demo VSTOR DIR
# IMAGE_SIZE OUT starts `vstor demo` (1 mon + 3 OSDs on 2 GiB files, image
# 'demo' exported on DIR/nbd.sock and on a free TCP port) in the background,
# sets demo_pid (so the caller's EXIT trap can stop it) and returns once the
# demo says it is running; when it dies first, its output is printed and the
# script exits 1. DEMO_ARGS (env, optional): more arguments of `vstor demo`
# (e.g. --tcp-only). Also the helpers the scripts share: cpu_ns PID...
# (CPU ns of these processes, all their threads), iops_of FILE (the IOPS
# of a vstor bench table or of fio's JSON output) and fio4k RW QD SECONDS
# TARGET... (one 4 KiB fio job; prints "iops total_ios").
start_demo() {
    local vstor=$1 dir=$2 size=$3 out=$4 port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0));
print(s.getsockname()[1])')
    # shellcheck disable=SC2086 # DEMO_ARGS is a list of arguments
    "$vstor" demo --dir "$dir" --osds 3 --size 2G --image-size "$size" --nbd-port "$port" \
        ${DEMO_ARGS:-} > "$out" 2>&1 &
    demo_pid=$!
    for _ in $(seq 900); do
        grep -q 'vstor demo is running' "$out" && return 0
        kill -0 "$demo_pid" 2>/dev/null || { cat "$out"; exit 1; }
        sleep 0.2
    done
    cat "$out"
    exit 1
}

cpu_ns() { # pid...: CPU ns of these processes, all their threads
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null || true; done |
        awk '{s += $1} END {printf "%.0f\n", s}'
}

iops_of() { # the IOPS of a vstor bench table or a fio JSON output
    python3 - "$1" <<'PY'
import json, sys
s = open(sys.argv[1]).read()
if "{" in s:
    j = json.loads(s[s.index("{"):])["jobs"][0]
    print(j["read"]["iops"] + j["write"]["iops"])
else:
    print([l.split()[2] for l in s.splitlines() if "-q128" in l][0])
PY
}

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
