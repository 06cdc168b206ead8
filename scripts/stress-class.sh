#!/usr/bin/env bash
# A class of N copies of one correct submission (default 400 copies of fixtures/good),
# graded with `grade` at the default --jobs, R times (default 1): every student must get
# full marks every time. It found a listener-discovery race (a server seen listening on
# port 0 for an instant: about 1 case in 6,000) that a single submission never shows.
#   scripts/stress-class.sh [N=400] [R=1] [SUBMISSION=fixtures/good]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-400}; runs=${2:-1}; sub=${3:-fixtures/good}
cargo build -q --release
work=$(mktemp -d /tmp/sockgrade-stress-class.XXXXXX)
trap 'rm -rf "$work"' EXIT
for i in $(seq -w 1 "$n"); do cp -r "$sub" "$work/class/student$i" 2>/dev/null || { mkdir -p "$work/class"; cp -r "$sub" "$work/class/student$i"; }; done
bad=0
for r in $(seq "$runs"); do
  rm -rf "$work/out"
  start=$(date +%s)
  ./target/release/sockgrade grade specs/tcp-basics.toml "$work/class" --out "$work/out" >/dev/null 2>&1 || true
  python3 - "$work/out/gradebook.csv" "$n" "$r" "$(( $(date +%s) - start ))" <<'PY' || bad=1
import csv, sys
path, n, run, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = list(csv.DictReader(open(path)))
score = [k for k in rows[0] if k.lower() == "score"][0]
maxs = [k for k in rows[0] if k.lower() in ("max_score", "max")][0]
short = [r for r in rows if r[score] != r[maxs]]
print(f"run {run}: {len(rows)} students graded in {secs} s, {len(rows) - len(short)} with full marks")
for r in short[:10]:
    print("  ", {k: v for k, v in r.items() if v and k not in ("",)})
sys.exit(0 if len(rows) == n and not short else 1)
PY
done
exit $bad
