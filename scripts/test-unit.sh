#!/usr/bin/env bash
# `npm run test:unit`: the pure and in-process tests, in seconds. They need a redis-server (the in-process
# tests of the task runner, task service and API run against a real one) but no Docker engine and no
# daemon process. A test file counts as a system test, and is left to `npm test`, when it uses the Docker
# fixtures, the swarm cluster or a browser, starts a daemon or the CLI (or `npm run demo`, scripts/demo.sh) as processes, or measures the emulated network in namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
TESTGROUND_SKIP_DOCKER=1 bash scripts/ensure-deps.sh

mapfile -t files < <(
  find test -name '*.test.ts' -not -path '*/node_modules/*' | sort |
    xargs grep -L -E "docker-fixtures|swarm-cluster|launchChromium|startDaemonProcess|runCli\(|network-fidelity|scripts/demo\.sh"
)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no unit test files found under test/" >&2
  exit 1
fi
echo "== ${#files[@]} unit test files (npm test runs these and the system tests)"
# A test that cannot end fails after 2 minutes instead of holding the run.
node --import tsx --test --test-concurrency=2 --test-timeout=120000 "${files[@]}"
