#!/bin/bash
# What one small upload of a large plan costs on disk (issue 9: "a 409 KB upload became 802 MB").
# Starts the daemon of the tree given (default: this checkout) on a fresh home, submits the placebo plan
# with a ~400 MB file of zeros (a ~409 KB .tar.gz), waits for the run, prints `du` of the home and stops.
#   bash scripts/plan-disk-use.sh [tree] [port]
set -euo pipefail
tree=$(cd "${1:-$(dirname "$0")/..}" && pwd)
port=${2:-18770}
work=$(mktemp -d /tmp/tg-plan-disk-use-XXXXXX)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir "$work/plan"
cp "$(dirname "$0")/../plans/placebo/"{index.ts,manifest.toml,package.json} "$work/plan/"
head -c 420000000 /dev/zero >"$work/plan/data.bin"
tar -C "$work/plan" -cf - . | gzip -9 >"$work/plan.tar.gz"
home="$work/home"
(cd "$tree" && TESTGROUND_GC_INTERVAL=off exec node bin/testground.js daemon --listen "127.0.0.1:$port" --home "$home") \
  >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.2; done
echo "upload: $(stat -c %s "$work/plan.tar.gz") bytes"
composition='{"global":{"plan":"placebo","case":"ok","builder":"exec:node","runner":"local:exec"},"groups":[{"id":"single","instances":{"count":1}}]}'
task=$(curl -s -F "composition=$composition" -F "plan=@$work/plan.tar.gz" "http://127.0.0.1:$port/api/v1/runs" |
  sed -E 's/.*"task_id":"([a-z0-9]+)".*/\1/')
state=''
for _ in $(seq 1 300); do
  state=$(curl -s "http://127.0.0.1:$port/api/v1/tasks/$task" | sed -E 's/.*"state":"([a-z]+)".*/\1/')
  [ "$state" = complete ] || [ "$state" = canceled ] && break
  sleep 0.5
done
echo "task $task: $state"
echo "\$ du -sh --total home/tasks home/cache"
(cd "$home" && du -sh --total tasks cache)
