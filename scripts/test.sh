#!/usr/bin/env bash
# `npm test`: install what is needed, then type-check, lint and run every test against real Redis, a real
# Docker engine and real processes. Exits non-zero when any of them fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh

# node --test on Node 20 does not expand globs, and with no files it would find none and pass.
mapfile -t files < <(find test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
if [ "${#files[@]}" -eq 0 ]; then
  echo "no test files found under test/" >&2
  exit 1
fi

# cluster:swarm's tests run on a real 3-node swarm (scripts/swarm-cluster.sh): bring it up beside the
# first tests (they wait for it through the script's lock), and down at the end unless it was up before.
swarm_was_up=""
if bash scripts/swarm-cluster.sh status >/dev/null 2>&1; then swarm_was_up=1; fi
bash scripts/swarm-cluster.sh ensure >/dev/null 2>&1 &

# The static checks share nothing with the tests, and the tests spend much of their time waiting on
# containers and timers: run the checks beside them and report them at the end.
checks=$(mktemp -d)
trap 'rm -rf "$checks"' EXIT
npm run typecheck --silent >"$checks/typecheck" 2>&1 &
typecheck=$!
npx eslint . >"$checks/lint" 2>&1 &
lint=$!
npx prettier --check . >"$checks/format" 2>&1 &
format=$!

# Tests that measure the emulated network (they print `network-fidelity` lines) run after the others,
# one at a time: on two cores shared with three container-heavy files, a userspace delayer and TCP
# receivers wake late and the figures measure the machine instead of the shaper. Two at a time was not
# enough either: beside the local:exec netns e2e file, the lab's per-rule 10 Mbit/s class carried 6.6–7.4
# Mbit/s (three runs of three), alone 9.3–9.5 (six of six), and beside three busy CPU loops 9.6.
mapfile -t measuring < <(grep -l "network-fidelity" "${files[@]}")
mapfile -t others < <(grep -L "network-fidelity" "${files[@]}")

# Three files at a time: most of a file's time is spent waiting on containers, processes and timers.
echo "== ${#others[@]} test files (typecheck, lint and format run beside them)"
tests=0
node --import tsx --test --test-concurrency="${TESTGROUND_TEST_CONCURRENCY:-3}" --test-timeout=600000 \
  "${others[@]}" || tests=$?
if [ "${#measuring[@]}" -gt 0 ]; then
  echo "== ${#measuring[@]} test files measuring the emulated network"
  node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${measuring[@]}" || tests=$?
fi

if [ -z "$swarm_was_up" ]; then bash scripts/swarm-cluster.sh down >/dev/null 2>&1 || true; fi

failed=0
for check in typecheck lint format; do
  if wait "${!check}"; then
    echo "== $check: ok"
  else
    echo "== $check failed:" >&2
    cat "$checks/$check" >&2
    failed=1
  fi
done
if [ "$tests" -ne 0 ]; then
  echo "== tests failed (exit $tests); see the 'not ok' lines above" >&2
  failed=1
fi
exit "$failed"
