#!/usr/bin/env bash
# `npm test`: install what is needed, then type-check, lint and run every test against real Redis and
# real processes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

echo "== typecheck"
npx tsc --noEmit -p tsconfig.json
echo "== lint"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --check . ; exit 1; }

# node --test on Node 20 does not expand globs, and with no files it would find none and pass.
mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi
echo "== ${#files[@]} test files"
node --import tsx --test --test-concurrency=2 --test-timeout=600000 "${files[@]}"
