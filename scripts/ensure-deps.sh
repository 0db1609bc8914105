#!/usr/bin/env bash
# Installs and starts what the project needs on a fresh machine of our kind (Debian 12, Node 20, root):
# the npm packages, redis-server from Debian, the network emulation's tools, and a running Docker engine (docker.io from Debian, dockerd
# started in the background when none answers).
set -euo pipefail
cd "$(dirname "$0")/.."

# What the installed tree was made from: the lock file's digest, kept beside it. A checkout gives the lock
# file a new date without changing it, so its date alone would reinstall for nothing.
lock_digest="$(sha256sum package-lock.json | cut -d' ' -f1)"
installed_from="node_modules/.testground-lock-sha256"
if [ ! -e node_modules ]; then
  # A fresh clone: exactly the lock file (it lists every platform's build of the optional dependencies,
  # e.g. msgpackr-extract's under BullMQ, so npm 10 and npm 11 both accept it).
  echo "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$lock_digest" >"$installed_from"
elif [ -f "$installed_from" ] && [ "$(cat "$installed_from")" = "$lock_digest" ]; then
  : # installed from this very lock file
elif [ -f "$installed_from" ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # A lock changed since the last install (a pull): bring the installed tree to it without deleting it.
  echo "updating npm packages (npm install, from package-lock.json)"
  npm install --no-audit --no-fund --loglevel=error
  echo "$lock_digest" >"$installed_from"
else
  # Installed before the digest was kept, and not older than the lock: note what it was made from.
  echo "$lock_digest" >"$installed_from"
fi

as_root() {
  if [ "$(id -u)" != "0" ]; then
    echo "$1 is missing and installing it needs root: $2" >&2
    exit 1
  fi
}

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then
    apt-get update -qq
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v redis-server >/dev/null 2>&1; then
  as_root redis-server "sudo apt-get install -y redis-server"
  echo "installing redis-server from Debian"
  apt_install redis-server
  # The package may start a system server on 6379; the daemon runs its own, so leave that one off.
  (systemctl stop redis-server || service redis-server stop || true) >/dev/null 2>&1
fi

# xmllint validates the JUnit reports in the tests against a schema.
if ! command -v xmllint >/dev/null 2>&1; then
  as_root xmllint "sudo apt-get install -y libxml2-utils"
  echo "installing libxml2-utils (xmllint) from Debian"
  apt_install libxml2-utils
fi

# Network emulation: tc (iproute2) and iptables in the instances' namespaces, and gcc with libnetfilter_queue
# to build the packet delayer that gives latency, jitter and loss on kernels without netem.
missing_network=()
command -v tc >/dev/null 2>&1 || missing_network+=(iproute2)
command -v iptables >/dev/null 2>&1 || missing_network+=(iptables)
command -v gcc >/dev/null 2>&1 || missing_network+=(gcc)
[ -f /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || missing_network+=(libnetfilter-queue-dev)
if [ "${#missing_network[@]}" -gt 0 ]; then
  as_root "${missing_network[*]}" "sudo apt-get install -y ${missing_network[*]}"
  echo "installing ${missing_network[*]} from Debian (network emulation)"
  apt_install "${missing_network[@]}"
fi

# The dashboard's browser tests drive Debian's chromium through playwright-core; no browser is downloaded.
if [ ! -x /usr/bin/chromium ]; then
  as_root chromium "sudo apt-get install -y chromium"
  echo "installing chromium from Debian (the dashboard's browser tests)"
  apt_install chromium
fi

# The daemon serves the dashboard from web/dist: build it when missing or older than its sources.
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/index.html -newer web/dist/index.html -print -quit)" ]; then
  echo "building the dashboard (npm run build:web)"
  node --import tsx scripts/build-web.ts
fi

if [ "${TESTGROUND_SKIP_DOCKER:-}" = "1" ]; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  as_root dockerd "sudo apt-get install -y docker.io"
  echo "installing docker.io from Debian"
  apt_install docker.io
fi
# The compose deployment's test brings docker-compose.yml up with Debian's docker-compose (v1).
if ! command -v docker-compose >/dev/null 2>&1; then
  as_root docker-compose "sudo apt-get install -y docker-compose"
  echo "installing docker-compose from Debian"
  apt_install docker-compose
fi
if ! docker info >/dev/null 2>&1; then
  as_root "a running Docker engine" "start one with 'sudo dockerd &'"
  # A dockerd killed without shutting down (a machine's session ending) leaves pid files that make the
  # next one refuse to start; remove them when no live process holds them.
  for pidfile in /var/run/docker.pid /var/run/docker/containerd/containerd.pid; do
    if [ -f "$pidfile" ] && ! kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
      rm -f "$pidfile"
    fi
  done
  echo "starting dockerd (log: /var/log/testground-dockerd.log)"
  nohup dockerd >/var/log/testground-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  if ! docker info >/dev/null 2>&1; then
    echo "dockerd did not come up within 30 s; its log:" >&2
    tail -20 /var/log/testground-dockerd.log >&2
    exit 1
  fi
fi
