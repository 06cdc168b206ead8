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

# In the page's own clock, free of Chromium's start-up (which varies by a second on a
# loaded machine): a copy without the CSP, with a timing script run after the page's own
# (the load event, then a forced style and layout of the whole document); Chromium's
# --dump-dom prints the page once loaded, timing included.
python3 - "$page" "$work/timed.html" <<'PY'
import re, sys
s = open(sys.argv[1], encoding="utf-8").read()
s = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", s)
probe = """<script>window.addEventListener("load", function () {
  var n = performance.getEntriesByType("navigation")[0];
  var t0 = performance.now(); document.body.offsetHeight; var t1 = performance.now();
  document.documentElement.setAttribute("data-timing",
    "dom " + Math.round(n.domContentLoadedEventEnd) + " ms, load " + Math.round(n.loadEventEnd || t0) +
    " ms, layout " + Math.round(t1 - t0) + " ms, total " + Math.round(t1) + " ms");
});</script>"""
s = s.replace("</body>", probe + "</body>") if "</body>" in s else s + probe
open(sys.argv[2], "w", encoding="utf-8").write(s)
PY
t=()
for _ in 1 2 3; do
  rm -rf "$work/profile"
  t+=("$("$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --window-size=1280,1600 --user-data-dir="$work/profile" --virtual-time-budget=60000 \
    --dump-dom "file://$work/timed.html" 2>/dev/null | grep -o 'data-timing="[^"]*"' | head -1)")
done
printf 'in the page (navigation start to the whole document laid out), 3 runs:\n'
printf '   %s\n' "${t[@]}"
