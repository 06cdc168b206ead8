#!/usr/bin/env bash
# How long headless Chromium takes to render a class report (issue 14: < 2 s for 1,000
# students). The page's own Content-Security-Policy allows only its one script, so no
# timing script can be injected; instead this measures, 3 times each, the wall time of
# `chromium --headless --screenshot` on the report and on an empty page with the same
# flags and a fresh profile, and prints the difference of the medians: parsing, the
# report's script (sorting, filters), style, layout and the first paint of the page.
#   scripts/bench-render.sh OUT/report.html
set -euo pipefail
page=$(realpath "${1:?report.html}")
chromium=${CHROMIUM:-/usr/bin/chromium}
if [[ ! -x $chromium ]]; then
  echo "no $chromium: install Debian's chromium (or set CHROMIUM=path)" >&2
  exit 2
fi
work=$(mktemp -d /tmp/sockgrade-render.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo '<!doctype html><title>empty</title>' >"$work/empty.html"
shot() {
  rm -rf "$work/profile"
  local t0 t1
  t0=$(date +%s%N)
  "$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --window-size=1280,1600 --user-data-dir="$work/profile" \
    --screenshot="$work/shot.png" "file://$1" >/dev/null 2>&1
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
e=(); r=()
for _ in 1 2 3; do
  e+=("$(shot "$work/empty.html")")
  r+=("$(shot "$page")")
done
em=$(median "${e[@]}"); rm_=$(median "${r[@]}")
echo "report $(du -h "$page" | cut -f1) ($(stat -c %s "$page") bytes): ${rm_} ms, empty page ${em} ms, render $((rm_ - em)) ms (medians of 3)"
