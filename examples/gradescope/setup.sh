#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image.
#
# The autograder zip holds (at its root, not in a folder):
#   setup.sh, run_autograder   these two files
#   spec.toml                  the assignment's sockgrade spec
#   bin/sockgrade              a prebuilt Linux x86-64 sockgrade (cargo build --release), or
#   sockgrade/                 sockgrade's source, built here with cargo (slower; needs cargo)
#
# AUTOGRADER_ROOT (default /autograder) and SOCKGRADE_INSTALL_DIR (default /usr/local/bin)
# exist so scripts/test-gradescope.sh can run this file outside Gradescope.
set -euo pipefail

ROOT="${AUTOGRADER_ROOT:-/autograder}"
SOURCE="$ROOT/source"
INSTALL_DIR="${SOCKGRADE_INSTALL_DIR:-/usr/local/bin}"
mkdir -p "$INSTALL_DIR"

# The students' programs are Python 3.
if ! command -v python3 >/dev/null; then
    apt-get install -y python3
fi

if [ -x "$SOURCE/bin/sockgrade" ]; then
    install -m 0755 "$SOURCE/bin/sockgrade" "$INSTALL_DIR/sockgrade"
elif [ -f "$SOURCE/sockgrade/Cargo.toml" ]; then
    if ! command -v cargo >/dev/null; then
        apt-get install -y cargo
    fi
    cargo install --locked --path "$SOURCE/sockgrade" --root "$(dirname "$INSTALL_DIR")"
else
    echo "error: the autograder zip has neither bin/sockgrade nor sockgrade/Cargo.toml" >&2
    echo "  help: put a release build at bin/sockgrade, or sockgrade's source in sockgrade/" >&2
    exit 1
fi

"$INSTALL_DIR/sockgrade" check "$SOURCE/spec.toml" >/dev/null
echo "sockgrade installed in $INSTALL_DIR; spec.toml is valid."
