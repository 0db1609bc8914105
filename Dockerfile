# The daemon's image, for a team's shared host (see docker-compose.yml), with network emulation: tc and
# ip (iproute2), iptables, nsenter/unshare (util-linux) and what the packet delayer is compiled with (gcc,
# libnetfilter-queue-dev; the daemon builds native/packet-delayer.c on the first configuration that needs
# it). BASE must be Debian-based with apt and node 20 (node:20-bookworm-slim has both, and npm for plans
# with npm dependencies).
# Hosts that cannot pull: `bash scripts/compose-images.sh > .env` selects Dockerfile.offline on a base made
# from the host's own binaries (network emulation included; README "Running a shared daemon").
# Run `npm ci` on the host before building: the installed node_modules are copied in.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      iproute2 iptables util-linux gcc libc6-dev libnetfilter-queue-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/testground
COPY . .
ENV TESTGROUND_LISTEN=0.0.0.0:8042 \
    TESTGROUND_HOME=/var/lib/testground
EXPOSE 8042
ENTRYPOINT ["node", "bin/testground.js", "daemon"]
