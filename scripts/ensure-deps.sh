#!/usr/bin/env bash
# Installs what the project needs on a fresh machine of our kind (Debian, Node 20, root):
# the npm packages, and redis-server from Debian when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ]; then
    echo "redis-server is missing: install it with 'sudo apt-get install -y redis-server'" >&2
    exit 1
  fi
  echo "installing redis-server from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  # The Debian package starts a system server on 6379; we run our own, so leave that one off.
  (systemctl stop redis-server 2>/dev/null || service redis-server stop 2>/dev/null || true) >/dev/null
fi
