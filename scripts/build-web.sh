#!/usr/bin/env bash
# Builds the web UI (web/ -> web/dist) that the server binary embeds:
# npm ci from the committed package-lock.json when node_modules is missing
# or older than the lock file, web/src/gen/fields.ts from the C table of
# figures, then a type check and the Vite build.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v npm > /dev/null; then
    echo "build-web: npm is missing (scripts/deps.sh installs it)" >&2
    exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    echo "build-web: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
fi
# the UI's field names come from the C table (src/lib/fields.c)
mkdir -p src/gen ../build
cc -std=c11 -O1 -Wall -Werror -o ../build/gen_fields ../tools/gen_fields.c ../src/lib/fields.c
../build/gen_fields src/gen/fields.ts
npm run --silent build
# the same UI with the test hooks (window.__gf) that tests and bench/ui.sh
# use, served by `gpufleet serve --ui-dir web/dist-test`; the binary embeds
# web/dist, which has none
npx vite build --mode test --outDir dist-test --emptyOutDir --logLevel warn
