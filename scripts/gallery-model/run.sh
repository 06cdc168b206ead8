#!/bin/sh
# Runs one assignment's model in a private network namespace (needs root):
#   scripts/gallery-model/run.sh echo_quit [fixture ...]
set -e
cd "$(dirname "$0")"
model="$1"
shift
exec unshare -n python3 -u "$model.py" "$@"
