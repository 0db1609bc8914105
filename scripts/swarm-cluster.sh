#!/usr/bin/env bash
# A real multi-node Docker Swarm on one machine, for cluster:swarm's tests and for trying it out:
#
#   scripts/swarm-cluster.sh up [N]      N nodes (default 3): node 1 the manager, the others workers, and a registry
#   scripts/swarm-cluster.sh down        removes every node, the registry and what they stored
#   scripts/swarm-cluster.sh status      prints the nodes, and the environment that points a daemon at the cluster
#   scripts/swarm-cluster.sh kill-node I ends node I as a power cut would: every process in its namespace, at once
#   scripts/swarm-cluster.sh env         prints TESTGROUND_SWARM_MANAGER=… and TESTGROUND_REGISTRY=…
#   scripts/swarm-cluster.sh ensure [N]  up, unless a cluster of N nodes is up and ready (what tests call;
#                                        concurrent callers wait for each other)
#
# Each node is a Docker engine of its own in its own network namespace (tgsw-n<I>), with its own data-root
# and run directory (its socket, exec-root, containerd): a private mount namespace puts
# $TG_SWARM_DIR/n<I>/lib over /var/lib/docker and $TG_SWARM_DIR/n<I>/run over /run, so each engine sees the
# usual paths, and containers that bind /var/run/docker.sock get their own node's engine. The nodes are
# joined by veth pairs on a host bridge (tgsw-br0, 10.240.77.0/24: the host 10.240.77.1, node I
# 10.240.77.(10+I)), with no route anywhere else. The registry is Debian's docker-registry on
# 10.240.77.1:5000 with TLS from a CA made here; the CA goes to /etc/docker/certs.d/10.240.77.1:5000/, which
# every engine on the machine (the host's and the nodes') reads at each push and pull, no restart needed.
#
# Namespaces are entered with nsenter, not `ip netns exec`: the latter remounts /sys, which hides the cgroup
# hierarchies an engine needs. The kernel here has no IPVS, so services on this cluster must use DNS
# round-robin endpoints and host-mode published ports (cluster:swarm does).
set -euo pipefail

dir="${TG_SWARM_DIR:-/var/lib/tg-swarm}"
bridge=tgsw-br0
prefix=10.240.77
host_address="$prefix.1"
registry="$host_address:5000"
certs_dir="/etc/docker/certs.d/$registry"
# Short heartbeats: a dead node is declared down within seconds (the default, 5 s, takes ~15 s).
heartbeat="${TG_SWARM_HEARTBEAT:-2s}"

node_socket() { echo "$dir/n$1/run/docker.sock"; }
node_address() { echo "$prefix.$((10 + $1))"; }
node_docker() {
  local index=$1
  shift
  docker -H "unix://$(node_socket "$index")" "$@"
}
node_count() { find "$dir" -maxdepth 1 -name 'n[0-9]*' -type d 2>/dev/null | wc -l; }

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" != "0" ]; then
      echo "$1 is missing: install $2 (needs root)" >&2
      exit 1
    fi
    echo "installing $2 from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null || {
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    }
  fi
}

wait_for() {
  local what=$1 seconds=$2
  shift 2
  for _ in $(seq 1 $((seconds * 5))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  echo "$what did not come up within ${seconds}s" >&2
  return 1
}

make_certificates() {
  mkdir -p "$dir/registry/certs"
  local certs="$dir/registry/certs"
  if [ ! -f "$certs/server.crt" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=testground swarm test CA" \
      -keyout "$certs/ca.key" -out "$certs/ca.crt" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$host_address" \
      -keyout "$certs/server.key" -out "$certs/server.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\n' "$host_address" >"$certs/san.ext"
    openssl x509 -req -in "$certs/server.csr" -CA "$certs/ca.crt" -CAkey "$certs/ca.key" -CAcreateserial \
      -days 3650 -extfile "$certs/san.ext" -out "$certs/server.crt" 2>/dev/null
  fi
  mkdir -p "$certs_dir"
  cp "$certs/ca.crt" "$certs_dir/ca.crt"
}

start_registry() {
  need docker-registry docker-registry
  make_certificates
  mkdir -p "$dir/registry/data"
  cat >"$dir/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $dir/registry/data
  delete:
    enabled: true
http:
  addr: $registry
  tls:
    certificate: $dir/registry/certs/server.crt
    key: $dir/registry/certs/server.key
EOF
  # 9>&-: long-lived processes must not inherit `ensure`'s lock (it would stay held as long as they run).
  nohup docker-registry serve "$dir/registry/config.yml" >"$dir/registry/registry.log" 2>&1 9>&- &
  echo $! >"$dir/registry/pid"
  wait_for "the registry on $registry" 20 curl -sf --cacert "$certs_dir/ca.crt" "https://$registry/v2/"
}

start_node() {
  local index=$1 namespace="tgsw-n$1" address
  address=$(node_address "$index")
  mkdir -p "$dir/n$index/lib" "$dir/n$index/run"
  ip netns add "$namespace"
  ip link add "tgsw-n$index" type veth peer name eth0 netns "$namespace"
  ip link set "tgsw-n$index" master "$bridge" up
  ip -n "$namespace" link set lo up
  ip -n "$namespace" addr add "$address/24" dev eth0
  ip -n "$namespace" link set eth0 up
  cat >"$dir/n$index/daemon.json" <<EOF
{ "log-driver": "json-file", "storage-driver": "overlay2", "cgroup-parent": "/tgsw-n$index" }
EOF
  # The engine in its own network, mount and UTS namespaces (its node's hostname), its own /run and /var/lib/docker bound in.
  nohup nsenter --net="/run/netns/$namespace" unshare --mount --uts --propagation private bash -c "
    hostname tgsw-n$index
    mount --bind '$dir/n$index/lib' /var/lib/docker
    mount --bind '$dir/n$index/run' /run
    exec dockerd --config-file '$dir/n$index/daemon.json' --pidfile /run/docker.pid
  " >"$dir/n$index/dockerd.log" 2>&1 9>&- &
  wait_for "node $index's engine" 60 node_docker "$index" info
}

up() {
  local count=${1:-3}
  if [ -d "$dir" ] && [ "$(node_count)" -gt 0 ]; then
    echo "a cluster is already up in $dir ($(node_count) nodes); '$0 down' first" >&2
    exit 1
  fi
  need dockerd docker.io
  need openssl openssl
  need curl curl
  mkdir -p "$dir"
  ip link add "$bridge" type bridge
  ip addr add "$host_address/24" dev "$bridge"
  ip link set "$bridge" up
  # Frames between nodes cross the host bridge; the host's iptables (Docker's FORWARD DROP policy) must not see them.
  if [ -w /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    iptables -C FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null ||
      iptables -I FORWARD -i "$bridge" -o "$bridge" -j ACCEPT
  fi
  start_registry
  local starting=()
  for index in $(seq 1 "$count"); do
    start_node "$index" &
    starting+=($!)
  done
  # Only these: a plain `wait` would also wait for the registry, which never ends.
  for pid in "${starting[@]}"; do wait "$pid"; done
  node_docker 1 swarm init --advertise-addr "$(node_address 1)" --listen-addr "$(node_address 1):2377" \
    --dispatcher-heartbeat "$heartbeat" >/dev/null
  local token
  token=$(node_docker 1 swarm join-token -q worker)
  local joining=()
  for index in $(seq 2 "$count"); do
    node_docker "$index" swarm join --token "$token" --advertise-addr "$(node_address "$index")" \
      --listen-addr "$(node_address "$index"):2377" "$(node_address 1):2377" >/dev/null &
    joining+=($!)
  done
  for pid in "${joining[@]}"; do wait "$pid"; done
  for index in $(seq 1 "$count"); do
    local id
    id=$(node_docker "$index" info --format '{{.Swarm.NodeID}}')
    node_docker 1 node update --label-add "testground.node=n$index" "$id" >/dev/null
  done
  wait_for "all $count nodes ready" 60 bash -c \
    "[ \"\$(docker -H unix://$(node_socket 1) node ls --format '{{.Status}}' | grep -c Ready)\" = $count ]"
  status
}

down() {
  for pidfile in "$dir"/n*/run/docker.pid "$dir/registry/pid"; do
    [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
  done
  for namespace in $(ip netns list 2>/dev/null | awk '/^tgsw-n/ {print $1}'); do
    # Whatever still runs in a node (containers, shims, a killed engine's containerd) ends with it.
    for pid in $(ip netns pids "$namespace" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
    for pid in $(node_container_pids "${namespace#tgsw-n}"); do kill -9 "$pid" 2>/dev/null || true; done
  done
  sleep 1
  # The nodes' emptied container cgroups, deepest first.
  find /sys/fs/cgroup/*/tgsw-n* -depth -type d -exec rmdir {} + 2>/dev/null || true
  for mountpoint in $(awk -v d="$dir" '$2 ~ "^"d {print $2}' /proc/mounts | sort -r); do
    umount -l "$mountpoint" 2>/dev/null || true
  done
  for namespace in $(ip netns list 2>/dev/null | awk '/^tgsw-n/ {print $1}'); do ip netns delete "$namespace"; done
  ip link delete "$bridge" 2>/dev/null || true
  iptables -D FORWARD -i "$bridge" -o "$bridge" -j ACCEPT 2>/dev/null || true
  rm -rf "$certs_dir" "$dir"
}

# Every process of node I's containers: they have network namespaces of their own, so the node's namespace
# does not hold them, and once their shim is gone nothing would stop them; the node's engine puts them all
# under this cgroup (daemon.json's cgroup-parent).
node_container_pids() {
  find "/sys/fs/cgroup/pids/tgsw-n$1" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

kill_node() {
  local index=$1
  for pid in $(ip netns pids "tgsw-n$index") $(node_container_pids "$index"); do kill -9 "$pid" 2>/dev/null || true; done
  echo "node $index ($(node_address "$index")) killed"
}

ready_nodes() {
  node_docker 1 node ls --format '{{.Status}} {{.Availability}}' 2>/dev/null | grep -c '^Ready Active' || true
}

ensure() {
  local count=${1:-3}
  mkdir -p "$(dirname "$dir")"
  exec 9>"$dir.lock"
  if ! flock -w 600 9; then
    echo "another swarm-cluster.sh has held $dir.lock for 10 minutes; is one stuck? (fuser -v $dir.lock)" >&2
    exit 1
  fi
  if [ "$(node_count)" = "$count" ] && [ "$(ready_nodes)" = "$count" ] &&
    curl -sf --cacert "$certs_dir/ca.crt" "https://$registry/v2/" >/dev/null; then
    print_env
    return
  fi
  down
  up "$count" >/dev/null
  print_env
}

print_env() {
  echo "TESTGROUND_SWARM_MANAGER=unix://$(node_socket 1)"
  echo "TESTGROUND_REGISTRY=$registry"
}

status() {
  node_docker 1 node ls
  print_env
}

case "${1:-}" in
  up) up "${2:-3}" ;;
  down) down ;;
  status) status ;;
  env) print_env ;;
  ensure) ensure "${2:-3}" ;;
  kill-node) kill_node "${2:?which node: 1, 2, …}" ;;
  *)
    echo "usage: $0 up [N] | down | status | env | ensure [N] | kill-node I" >&2
    exit 2
    ;;
esac
