#!/bin/sh
# deploy/kubernetes/make-secrets.sh [FILE]: writes the secrets the kustomization's secretGenerator
# reads (default: secrets.env beside this script), with random values, unless FILE exists already
# (re-running keeps the tokens). FLOWLENS_TOKEN, when set, becomes the API token.
#   api-token         the API's bearer token; Prometheus sends it to /metrics (API and capture)
#   bus-token         NATS token: the capture workers publish and the API subscribes with it
#   questdb-password  the password of QuestDB's PostgreSQL wire user `admin`
set -eu
file=${1:-$(dirname "$0")/secrets.env}
if [ -s "$file" ]; then
  echo "make-secrets: $file exists; keeping it (delete it for new tokens)" >&2
  exit 0
fi
# 32 random bytes as 64 hex digits: nothing to quote in a URL, a header or an env file.
random() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
{
  echo "api-token=${FLOWLENS_TOKEN:-$(random)}"
  echo "bus-token=$(random)"
  echo "questdb-password=$(random)"
} >"$file.new"
mv "$file.new" "$file"
echo "make-secrets: wrote $file" >&2
