#!/usr/bin/env bash
# `npm run demo`: the seed walkthrough on a fresh machine. Installs what is missing, starts a daemon with
# its embedded Redis in a scratch home on a port the kernel picks, runs 10 instances of plans/example `sync`
# through the real CLI against that daemon only, prints the summary and the path of the archive (in the scratch home), and stops the
# daemon. Arguments are added to `testground run single` (`npm run demo -- --test-param sleep_scale=0.1`).
set -euo pipefail
cd "$(dirname "$0")/.."
# The demo runs on local:exec: it needs Redis, not Docker.
TESTGROUND_SKIP_DOCKER=1 bash scripts/ensure-deps.sh

# The demo is self-contained whatever the shell has set: TESTGROUND_ENDPOINT or TESTGROUND_TOKEN would send
# the CLI to (or authenticate it with) another daemon, and REDIS_URL, TESTGROUND_REDIS_PREFIX or
# TESTGROUND_HOME would make the demo's daemon share another one's queue and tasks.
while IFS= read -r name; do unset "$name"; done < <(compgen -e | grep -E '^(TESTGROUND_|REDIS_URL$)' || true)

home="$(mktemp -d /tmp/testground-demo.XXXXXX)"
log="$home/daemon.log"

# Port 0: a free port, never 8042, so a daemon already answering there is neither used nor disturbed.
node bin/testground.js daemon --listen 127.0.0.1:0 --home "$home" >"$log" 2>&1 &
daemon=$!
stop() {
  kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null || true
}
trap stop EXIT

# The daemon's own log names the address it listens on; nothing else is asked.
endpoint=""
for _ in $(seq 1 300); do
  endpoint="$(grep -o -m 1 'daemon listening on http://[0-9.:]*' "$log" | sed 's/^daemon listening on //' || true)"
  if [ -n "$endpoint" ]; then break; fi
  if ! kill -0 "$daemon" 2>/dev/null; then
    echo "the demo's daemon did not start; its log ($log):" >&2
    cat "$log" >&2
    exit 5
  fi
  sleep 0.1
done
if [ -z "$endpoint" ]; then
  echo "the demo's daemon did not say where it listens within 30 s; its log ($log):" >&2
  cat "$log" >&2
  exit 5
fi
echo "demo daemon: $endpoint (home $home)"

# From the scratch home, so the archive `--collect` writes lands there and not in the checkout.
repo="$PWD"
set +e
(cd "$home" && node "$repo/bin/testground.js" --endpoint "$endpoint" run single --plan "$repo/plans/example" \
  --testcase sync --builder exec:node --runner local:exec --instances 10 --wait --collect "$@")
code=$?
set -e
echo "daemon log: $log"
exit $code
