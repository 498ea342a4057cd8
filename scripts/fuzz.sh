#!/usr/bin/env bash
# Runs every libFuzzer target for a while on its seed corpus.
# usage: scripts/fuzz.sh [seconds per target]   (default 12; FUZZ_SECONDS too)
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${1:-${FUZZ_SECONDS:-12}}
scripts/build.sh Fuzz
work=tests/fuzz/corpus-work
failed=0
for bin in build-fuzz/tests/fuzz/fuzz_*; do
    name=$(basename "$bin")
    mkdir -p "$work/$name"
    seeds=tests/fuzz/corpus/$name
    # new inputs go to the work folder; the committed seeds stay as they are
    if "$bin" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=1024 \
        -artifact_prefix="$work/$name-" "$work/$name" "$seeds" > "$work/$name.log" 2>&1; then
        echo "fuzz $name: $(grep -E '^Done [0-9]+ runs' "$work/$name.log" | tail -1) ok"
    else
        echo "fuzz $name: FAILED (crash input under $work)"
        tail -n 30 "$work/$name.log"
        failed=$((failed + 1))
    fi
done
[ $failed -eq 0 ]
