#!/usr/bin/env bash
# Installs what the tests need, then runs every test: unit and integration
# tests on the hardened build and again under ASan+UBSan, then each libFuzzer
# target for FUZZ_SECONDS (default 12: the whole run stays near 25 minutes).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh test

passed=0
failed=0
run_ctest() {
    local dir=$1 out
    out=$(mktemp)
    if ctest --test-dir "$dir" --output-on-failure 2>&1 | tee "$out"; then :; fi
    local line
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$out" | tail -1)
    rm -f "$out"
    [ -n "$line" ] || { failed=$((failed + 1)); return; }
    local f t
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/')
    t=$(echo "$line" | sed -E 's/.* tests failed out of ([0-9]+).*/\1/')
    passed=$((passed + t - f))
    failed=$((failed + f))
}

echo "== hardened build"
scripts/build.sh Release
run_ctest build

echo "== ASan + UBSan build"
scripts/build.sh Asan
run_ctest build-asan

echo "== fuzz targets"
if scripts/fuzz.sh "${FUZZ_SECONDS:-12}"; then
    passed=$((passed + $(ls tests/fuzz/fuzz_*.c | wc -l)))
else
    failed=$((failed + 1))
fi

echo "gpufleet: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
