#!/bin/sh
# flowlens container entrypoint: `flowlens-entrypoint COMMAND [ARGS...]`, COMMAND as for `flowlens`.
#
# - Secrets from files (Docker and Kubernetes secrets are files): FLOWLENS_X_FILE=/path sets
#   FLOWLENS_X to the file's content, for the settings below only. Other *_FILE variables, such
#   as FLOWLENS_BUS_NKEY_SEED_FILE, are paths that flowlens reads itself and are left alone.
# - `capture` and `run` (also the default when the first argument is a flag) run on the copy of node
#   that carries cap_net_raw and cap_net_admin; every other command runs on plain node.
# - node gets the V8 flags of dist/cli/main.js's shebang line, so they are written in one place.
set -eu

SECRET_SETTINGS="FLOWLENS_TOKEN FLOWLENS_METRICS_TOKEN FLOWLENS_BUS_PASSWORD FLOWLENS_BUS_TOKEN FLOWLENS_QUESTDB FLOWLENS_QUESTDB_PG"

die() {
  echo "flowlens-entrypoint: $*" >&2
  exit 2
}

for name in $SECRET_SETTINGS; do
  eval "file=\${${name}_FILE:-}"
  [ -n "$file" ] || continue
  eval "direct=\${${name}:-}"
  [ -z "$direct" ] || die "both $name and ${name}_FILE are set: set one"
  [ -r "$file" ] || die "${name}_FILE: cannot read $file"
  # $(...) drops the trailing newline an editor leaves in the file.
  value=$(cat "$file")
  [ -n "$value" ] || die "${name}_FILE: $file is empty"
  export "$name=$value"
  unset "${name}_FILE"
done

home=${FLOWLENS_HOME:-/opt/flowlens}
main=$home/dist/cli/main.js
[ -f "$main" ] || die "$main not found (FLOWLENS_HOME=$home)"

node=node
case "${1:-run}" in
  capture | run | -*) node=${FLOWLENS_CAPTURE_NODE:-/usr/local/lib/flowlens/node-capture} ;;
esac
[ -x "$node" ] || command -v "$node" >/dev/null 2>&1 || die "$node is not executable"

flags=$(sed -n '1s/^#!.* -S node //p' "$main")
# shellcheck disable=SC2086 # the flags are words
exec "$node" $flags "$main" "$@"
