# The daemon's image, for a team's shared host (see docker-compose.yml).
#
# BASE needs `node` (20); `npm` too if plans have npm dependencies (node:20-bookworm-slim has both).
# Air-gapped hosts: build from the local runtime image the daemon makes from the host's node
# (`testground healthcheck --runner local:docker --fix` builds it), e.g.
#   docker build --build-arg BASE=$(docker images testground-runtime/node --format '{{.Repository}}:{{.Tag}}' | head -1) -t testground-daemon .
# That image has no shell, so this file has no RUN steps: run `npm ci` on the host before building; the
# installed node_modules are copied in.
ARG BASE=node:20-bookworm-slim
FROM ${BASE}
WORKDIR /opt/testground
COPY . .
ENV TESTGROUND_LISTEN=0.0.0.0:8042 \
    TESTGROUND_HOME=/var/lib/testground
EXPOSE 8042
ENTRYPOINT ["node", "bin/testground.js", "daemon"]
