#!/usr/bin/env bash
# `npm run bench`: performance figures, each next to a floor measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
node --import tsx scripts/bench.ts "$@"
