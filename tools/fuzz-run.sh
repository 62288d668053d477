#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# fuzz-run.sh FUZZER CORPUS_DIR SECONDS
# Runs a libFuzzer target for SECONDS, writing new inputs to a scratch
# directory so the committed corpus only changes when someone copies them in.
set -eu
fuzzer=$1 corpus=$2 seconds=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$corpus"
exec_dir=$(mktemp -d)
trap 'rm -rf "$scratch" "$exec_dir"' EXIT
cd "$exec_dir"
"$fuzzer" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    "$scratch" "$corpus"
