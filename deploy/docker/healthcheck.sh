#!/bin/sh
# flowlens-healthcheck: GET /health of what this container serves. A capture worker with
# FLOWLENS_METRICS_LISTEN answers there; otherwise the API at FLOWLENS_HOST:FLOWLENS_PORT.
# /health needs no token and says only whether the store is up.
set -eu
if [ -n "${FLOWLENS_METRICS_LISTEN:-}" ]; then
  at=$FLOWLENS_METRICS_LISTEN
else
  host=${FLOWLENS_HOST:-127.0.0.1}
  case "$host" in 0.0.0.0) host=127.0.0.1 ;; :: | "[::]") host="[::1]" ;; esac
  at=$host:${FLOWLENS_PORT:-4000}
fi
# A wildcard listen address is reached on loopback.
case "$at" in 0.0.0.0:*) at=127.0.0.1:${at#0.0.0.0:} ;; "[::]":*) at="[::1]:${at#\[::\]:}" ;; esac
exec curl --fail --silent --show-error --max-time 4 --output /dev/null "http://$at/health"
