# syntax=docker/dockerfile:1
# flowlens image: `docker build -t flowlens .` (docker-compose.yml builds it once for every service).
#
# Two stages. `build` has the toolchain (g++, make, python3 for the pcap addon, libpcap-dev) and runs
# `npm ci` (whose prepare script compiles the server and the web client), then drops the dev
# dependencies. The runtime stage is Debian slim with libpcap and the built app only, and runs as
# the unprivileged user `flowlens`.
#
# Capture without root: a copy of node carries the file capabilities cap_net_raw and cap_net_admin,
# and the entrypoint uses it for `capture` and `run` only. Node itself carries none, because a
# binary whose file capabilities exceed the container's bounding set cannot be executed: the API
# container drops every capability and would not start.

ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# The prepare script (npm run build) needs the sources, so the install runs once they are in.
COPY tsconfig.json ./
COPY schema ./schema
COPY src ./src
COPY web ./web
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund \
 && test -f dist/cli/main.js && test -f dist/web/index.html

FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="flowlens" \
      org.opencontainers.image.description="Network traffic monitor: capture and pcap import, bidirectional flows, per-host aggregates, time-series store, GraphQL API and web client" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/node:${NODE_VERSION}-bookworm-slim"
# libpcap0.8: the capture addon's library; libcap2-bin: setcap, removed after use; curl: HEALTHCHECK.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 libcap2-bin curl ca-certificates \
 && install -d -m 0755 /usr/local/lib/flowlens \
 && cp /usr/local/bin/node /usr/local/lib/flowlens/node-capture \
 && setcap cap_net_raw,cap_net_admin+eip /usr/local/lib/flowlens/node-capture \
 && apt-get purge -y libcap2-bin && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 flowlens \
 && useradd --system --uid 10001 --gid flowlens --home-dir /var/lib/flowlens --shell /usr/sbin/nologin flowlens \
 && install -d -o flowlens -g flowlens -m 0750 /var/lib/flowlens /run/flowlens
WORKDIR /opt/flowlens
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/schema ./schema
COPY deploy/docker/entrypoint.sh /usr/local/bin/flowlens-entrypoint
COPY deploy/docker/healthcheck.sh /usr/local/bin/flowlens-healthcheck
COPY deploy/docker/make-token.sh /usr/local/bin/flowlens-make-token

ENV NODE_ENV=production \
    FLOWLENS_HOME=/opt/flowlens \
    FLOWLENS_DB=/var/lib/flowlens/flowlens.duckdb \
    FLOWLENS_SPOOL_DIR=/var/lib/flowlens/spool \
    FLOWLENS_LOG_FORMAT=json
USER flowlens:flowlens
WORKDIR /var/lib/flowlens
VOLUME ["/var/lib/flowlens"]
# 4000: the API and web client (serve, run); 9464: a capture worker's /metrics (--metrics-listen).
EXPOSE 4000 9464
# /health of the API, or of a capture worker's metrics listener: whichever the container runs.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["flowlens-healthcheck"]
ENTRYPOINT ["flowlens-entrypoint"]
CMD ["serve"]
