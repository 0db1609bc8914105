#!/usr/bin/env bash
# `npm run demo`: the seed walkthrough on a fresh machine. Installs what is missing, starts a daemon with
# its embedded Redis in a scratch home, runs 10 instances of plans/example `sync` through the real CLI,
# prints the summary and the archive path, and stops the daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo runs on local:exec: it needs Redis, not Docker.
TESTGROUND_SKIP_DOCKER=1 bash scripts/ensure-deps.sh

home="$(mktemp -d /tmp/testground-demo.XXXXXX)"
log="$home/daemon.log"
port="${TESTGROUND_DEMO_PORT:-8042}"
endpoint="http://127.0.0.1:$port"

TESTGROUND_HOME="$home" node bin/testground.js daemon --listen "127.0.0.1:$port" >"$log" 2>&1 &
daemon=$!
stop() {
  kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
}
trap stop EXIT

for _ in $(seq 1 100); do
  if curl -fsS "$endpoint/api/v1/health" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "the daemon did not start; its log ($log):" >&2
    cat "$log" >&2
    exit 3
  fi
  sleep 0.1
done

set +e
node bin/testground.js --endpoint "$endpoint" run single --plan example --testcase sync \
  --builder exec:node --runner local:exec --instances 10 --wait --collect
code=$?
set -e
echo "daemon log: $log"
exit $code
