#!/usr/bin/env bash
# Runs examples/gradescope/ as Gradescope would, on this machine: lays out the
# /autograder tree in a temporary folder (AUTOGRADER_ROOT), runs setup.sh once, then
# run_autograder for a correct and a buggy submission, and checks each results.json
# field by field (scripts/check-gradescope-results.py).
#
#   scripts/test-gradescope.sh            uses target/debug/sockgrade (built if missing)
#   SOCKGRADE_BIN=path scripts/test-gradescope.sh
#
# Needs root for sockgrade's network namespaces (it falls back to the host loopback,
# one case at a time, without).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
BIN="${SOCKGRADE_BIN:-}"
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --quiet)
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/debug/sockgrade"
fi

ROOT="$(mktemp -d -t sockgrade-autograder.XXXXXX)"
trap 'rm -rf "$ROOT"' EXIT
export AUTOGRADER_ROOT="$ROOT"
export SOCKGRADE_INSTALL_DIR="$ROOT/usr/bin"

# What the instructor uploads: the zip's contents, in /autograder/source.
mkdir -p "$ROOT/source/bin" "$ROOT/results" "$ROOT/submission"
cp "$REPO/examples/gradescope/setup.sh" "$REPO/examples/gradescope/run_autograder" "$ROOT/source/"
cp "$REPO/specs/tcp-basics.toml" "$ROOT/source/spec.toml"
cp "$BIN" "$ROOT/source/bin/sockgrade"

# Image build: setup.sh once; Gradescope then copies run_autograder to /autograder.
bash "$ROOT/source/setup.sh"
cp "$ROOT/source/run_autograder" "$ROOT/run_autograder"

grade() { # fixture, then the checker's expectations
    local fixture="$1"; shift
    rm -rf "$ROOT/submission" "$ROOT/results"
    mkdir -p "$ROOT/submission" "$ROOT/results"
    cp -r "$REPO/fixtures/$fixture/." "$ROOT/submission/"
    (cd "$ROOT" && PATH="$SOCKGRADE_INSTALL_DIR:$PATH" ./run_autograder > "$ROOT/results/stdout")
    python3 "$REPO/scripts/check-gradescope-results.py" "$ROOT/results/results.json" "$@"
}

grade good --score 22 --max-score 22
grade server_no_empty_recv_check --max-score 22 \
    --failed "closes after the client closes" \
    --failed "does not busy-loop after the client closes" \
    --failed "serves the next client after the first leaves"

# A broken spec: run_autograder still leaves a results.json that explains itself.
echo 'this is not toml' > "$ROOT/source/spec.toml"
rm -rf "$ROOT/results"; mkdir -p "$ROOT/results"
(cd "$ROOT" && PATH="$SOCKGRADE_INSTALL_DIR:$PATH" ./run_autograder > "$ROOT/results/stdout")
python3 - "$ROOT/results/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["score"] == 0 and r["tests"] == [] and "could not grade" in r["output"], r
print(sys.argv[1] + ": ok (a spec error still yields a results.json)")
PY
echo "test-gradescope: all checks passed"
