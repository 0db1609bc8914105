#!/usr/bin/env bash
# Builds, from this host's own binaries, the two base images the compose deployment needs where nothing
# can be pulled (docker-compose.yml; docs/operating.md "Running a shared daemon"), and prints the variables that
# point docker-compose at them:
#
#   bash scripts/compose-images.sh > .env && docker-compose up -d --build
#
# - testground-host/redis:<digest>: `FROM scratch` with the host's redis-server and the libraries it links.
# - testground-host/daemon-base:<digest>: `FROM scratch` with the host's node and npm, sh/bash/ldd and a
#   few coreutils (chown and chmod among them), setpriv (plan code runs as nobody), the network emulation's tools (ip, tc and its distribution tables, iptables with its
#   extensions, nsenter, unshare) and the packet delayer compiled here from native/packet-delayer.c, each
#   with the libraries it links. Dockerfile.offline copies the repository onto it.
#
# Each image is built the way builders/runtime-image.ts builds the plans' runtime image: files at the
# paths the host has them under, libraries as ldd finds them. The tag is a digest of those files' paths,
# sizes and times (inputs_key), so an unchanged host reuses the image (a cache that may stay: a second
# call takes seconds) and any change (a new libc, a new redis) gets a new one. Needs: docker, ldd, tar, sha256sum, and to build the packet delayer gcc with
# libnetfilter-queue-dev (scripts/ensure-deps.sh installs them); without those the daemon image has no
# packet delayer and the variables say so (latency and loss on kernels without netem are then refused).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "compose-images: $*" >&2; }

# Where a host path lives inside the image: the image has the merged-/usr layout (/bin, /sbin, /lib and
# /lib64 are symlinks into /usr), so a file found through /lib is stored under /usr/lib.
image_path() {
  local dir
  dir=$(realpath -m "$(dirname "$1")")
  echo "$dir/$(basename "$1")"
}

# Copies the bytes of $2 (default: $1 itself) to path $1 of rootfs $3, and the libraries it links.
add_file() {
  local at="$1" source="$2" rootfs="$3" target
  target="$rootfs$(image_path "$at")"
  mkdir -p "$(dirname "$target")"
  cp -L --preserve=mode "$source" "$target"
  add_libraries "$rootfs" "$source"
}

# The libraries the given binaries link (one ldd for all of them: it is most of this script's time).
add_libraries() {
  local rootfs="$1" out line library target
  shift
  # ldd exits 1 when any file is static or a script; real failures show as "not found" or no output.
  out=$(ldd "$@" 2>&1) || true
  if grep -q 'not found' <<<"$out"; then
    say "a binary needs a library this host lacks: $(grep 'not found' <<<"$out" | head -1)"
    exit 1
  fi
  local pattern='^([^[:space:]]+[[:space:]]+=>[[:space:]]+)?(/[^[:space:]]+)[[:space:]]+\(0x[0-9a-f]+\)$'
  while read -r line; do
    # `libc.so.6 => /lib/…/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`; the vDSO has no file.
    [[ $line =~ $pattern ]] || continue
    library=${BASH_REMATCH[2]}
    target="$rootfs$(image_path "$library")"
    [ -e "$target" ] && continue
    mkdir -p "$(dirname "$target")"
    cp -L --preserve=mode "$library" "$target"
  done <<<"$out"
}

# A command at the path `command -v` finds it; a name that is a symlink to another binary (iptables to
# xtables-nft-multi, which looks at its argv[0]) stays a symlink to the real file.
add_command() {
  local name="$1" rootfs="$2" found real at
  found=$(type -P "$name") || {
    say "$name is not installed on this host (scripts/ensure-deps.sh installs what the daemon needs)"
    exit 1
  }
  real=$(realpath "$found")
  at=$(image_path "$found")
  add_file "$real" "$real" "$rootfs"
  if [ "$(basename "$real")" != "$name" ] || [ "$(dirname "$real")" != "$(dirname "$at")" ]; then
    mkdir -p "$rootfs$(dirname "$at")"
    ln -sfn "$real" "$rootfs$at"
  fi
}

add_tree() {
  local dir="$1" rootfs="$2" files=()
  mkdir -p "$rootfs$(dirname "$dir")"
  cp -a "$dir" "$rootfs$(dirname "$dir")/"
  mapfile -d '' files < <(find "$dir" -type f -name '*.so*' -print0)
  if [ "${#files[@]}" -gt 0 ]; then add_libraries "$rootfs" "${files[@]}"; fi
}

base_rootfs() {
  local rootfs="$1"
  mkdir -p "$rootfs/usr/bin" "$rootfs/usr/sbin" "$rootfs/usr/lib" "$rootfs/usr/lib64" "$rootfs/etc" \
    "$rootfs/root" "$rootfs/tmp" "$rootfs/data" "$rootfs/run"
  chmod 1777 "$rootfs/tmp"
  chmod 700 "$rootfs/root"
  ln -s usr/bin "$rootfs/bin"
  ln -s usr/sbin "$rootfs/sbin"
  ln -s usr/lib "$rootfs/lib"
  ln -s usr/lib64 "$rootfs/lib64"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin' \
    >"$rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$rootfs/etc/group"
  # files first: localhost and the container's own name answer without DNS.
  printf '%s\n' 'passwd: files' 'group: files' 'hosts: files dns' >"$rootfs/etc/nsswitch.conf"
}

# A digest of what goes into an image, taken without assembling it (a rebuild copies ~130 MB): this
# script, the packet delayer's source and the compiler, and the size, time and path of every file copied
# (commands, the libraries ldd lists for them, the trees). A new libc, redis or node gets a new tag.
inputs_key() {
  local paths=() name dir
  for name in "$@"; do paths+=("$(realpath "$(type -P "$name")")"); done
  {
    cat "$0" "$repo/native/packet-delayer.c"
    gcc --version 2>&1 | head -1
    stat -L -c '%n %s %Y' "${paths[@]}"
    ldd "${paths[@]}" 2>&1 | grep -oE '/[^[:space:]]+ \(0x' | cut -d' ' -f1 | sort -u |
      xargs -r stat -L -c '%n %s %Y'
    # Files only, and no Python byte code: node-gyp (in npm's tree) writes __pycache__ when a package
    # with a native addon is installed, which would make every `npm ci` look like a new npm.
    for dir in "${trees[@]}"; do
      find "$dir" -name __pycache__ -prune -o \( -type f -o -type l \) -printf '%p %s %T@\n' | sort
    done
  } | sha256sum | cut -c1-12
}

# Builds $context (a Dockerfile plus rootfs/) as $tag.
build_image() {
  local tag="$1" context="$2"
  say "building $tag"
  if ! docker build -q --label testground.role=compose-base -t "$tag" "$context" >"$work/build.log" 2>&1; then
    say "docker build of $tag failed:"
    cat "$work/build.log" >&2
    exit 1
  fi
}

present() {
  if docker image inspect "$1" >/dev/null 2>&1; then
    say "$1 is present (built earlier from the same files)"
    return 0
  fi
  return 1
}

redis_commands=(redis-server)
trees=()
redis_image="testground-host/redis:$(inputs_key "${redis_commands[@]}")"
if ! present "$redis_image"; then
  redis_context="$work/redis"
  base_rootfs "$redis_context/rootfs"
  add_command redis-server "$redis_context/rootfs"
  cat >"$redis_context/Dockerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/bin:/usr/sbin
WORKDIR /data
CMD ["redis-server"]
EOF
  build_image "$redis_image" "$redis_context"
fi

daemon_commands=(node sh bash ldd env cat head tail cut stat rm mkdir ls sleep grep sed
  chown chmod setpriv ip tc iptables iptables-restore iptables-save nsenter unshare)
# npm is a node script (plans with npm dependencies are installed with it); iptables loads its matches
# and targets, and tc its delay distributions, from these directories at run time.
npm_dir=$(realpath "$(dirname "$(realpath "$(type -P npm)")")/..")
trees=("$npm_dir")
for dir in /usr/lib/x86_64-linux-gnu/xtables /usr/lib/x86_64-linux-gnu/tc /usr/lib/xtables /usr/lib/tc /etc/iproute2; do
  if [ -d "$dir" ]; then trees+=("$(realpath "$dir")"); fi
done
daemon_base="testground-host/daemon-base:$(inputs_key "${daemon_commands[@]}")"
if ! present "$daemon_base"; then
  daemon_context="$work/daemon"
  rootfs="$daemon_context/rootfs"
  base_rootfs "$rootfs"
  for name in "${daemon_commands[@]}"; do add_command "$name" "$rootfs"; done
  for dir in "${trees[@]}"; do add_tree "$dir" "$rootfs"; done
  ln -sfn "$npm_dir/bin/npm-cli.js" "$rootfs/usr/bin/npm"
  ln -sfn "$npm_dir/bin/npx-cli.js" "$rootfs/usr/bin/npx"
  delayer_env=""
  delayer_at=/usr/local/libexec/testground/packet-delayer
  if gcc -O2 -Wall -Wextra -std=gnu11 -o "$work/packet-delayer" "$repo/native/packet-delayer.c" \
    -Wl,-Bstatic -lnetfilter_queue -Wl,-Bdynamic -lmnl 2>"$work/gcc.err" ||
    gcc -O2 -Wall -Wextra -std=gnu11 -o "$work/packet-delayer" "$repo/native/packet-delayer.c" \
      -lnetfilter_queue -lmnl 2>"$work/gcc.err"; then
    add_file "$delayer_at" "$work/packet-delayer" "$rootfs"
    delayer_env="ENV TESTGROUND_PACKET_DELAYER=$delayer_at"
  else
    say "no packet delayer (gcc: $(head -3 "$work/gcc.err" | tr '\n' ' ')); latency on kernels without netem will be refused"
  fi
  cat >"$daemon_context/Dockerfile" <<EOF
FROM scratch
COPY rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/usr/sbin
$delayer_env
CMD ["node"]
EOF
  build_image "$daemon_base" "$daemon_context"
fi

echo "TESTGROUND_REDIS_IMAGE=$redis_image"
echo "TESTGROUND_DAEMON_BASE=$daemon_base"
echo "TESTGROUND_DOCKERFILE=Dockerfile.offline"
