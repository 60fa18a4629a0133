#!/bin/sh
# flowlens-make-token DIR NAME...: makes sure DIR/NAME holds a secret token, for each NAME.
# An existing non-empty file is kept (restarts keep their tokens). FLOWLENS_TOKEN, when set, is
# written to DIR/api-token instead, so that a token chosen in .env takes effect.
set -eu
[ $# -ge 2 ] || { echo "usage: flowlens-make-token DIR NAME..." >&2; exit 2; }
dir=$1
shift
umask 022 # Prometheus reads the tokens as another user; the volume is mounted only where needed.
mkdir -p "$dir"
for name in "$@"; do
  file=$dir/$name
  if [ "$name" = api-token ] && [ -n "${FLOWLENS_TOKEN:-}" ]; then
    printf '%s\n' "$FLOWLENS_TOKEN" >"$file.new"
  elif [ -s "$file" ]; then
    continue
  else
    # 32 random bytes as 64 hex digits: no character that needs quoting in a header or a config.
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$file.new"
    echo >>"$file.new"
  fi
  mv "$file.new" "$file"
  echo "flowlens-make-token: wrote $file"
done
