#!/usr/bin/env bash
# Grades each submission N times (default 30), several submissions at once, with every
# CPU kept busy by an extra spinning process, and checks that each submission's verdicts
# never differ between runs. With no submissions given, it grades the fixtures of the
# behaviours real programs have (README, "Verdicts do not depend on load").
#   scripts/stress-repeat.sh [-n N] [-j PARALLEL] [SUBMISSION[:server|client]]...
set -euo pipefail
cd "$(dirname "$0")/.."
n=30; par=4
while getopts "n:j:" o; do case $o in n) n=$OPTARG;; j) par=$OPTARG;; *) exit 2;; esac; done
shift $((OPTIND - 1))
subs=("$@")
if [ ${#subs[@]} -eq 0 ]; then
  subs=(fixtures/server_reopens_listener:server fixtures/server_accept_timeout:server
        fixtures/server_recv5_slow:server fixtures/client_slow_recv:client
        fixtures/server_closes_first:server fixtures/server_closes_first_no_reuseaddr:server
        fixtures/client_close_unread:client fixtures/server_accept_close:server
        fixtures/python2_unicode:server fixtures/server_no_empty_recv_check:server
        fixtures/server_one_shot:server fixtures/client_one_shot:client fixtures/good:server
        fixtures/good:client)
fi
cargo build -q --release
hogs=()
for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
out=$(mktemp -d)
jobs_file=$(mktemp)
for s in "${subs[@]}"; do
  sub=${s%%:*}; target=${s#*:}; [ "$target" = "$s" ] && target=server
  key=$(echo "$sub-$target" | tr '/' '_')
  mkdir -p "$out/$key"
  for i in $(seq "$n"); do echo "$sub $target $out/$key/$i.json" >> "$jobs_file"; done
done
# Runs of different submissions interleave: several submissions are graded at once.
shuf "$jobs_file" | xargs -P "$par" -L 1 sh -c \
  './target/release/sockgrade run specs/tcp-basics.toml "$0" --format json --target "$1" > "$2" 2>/dev/null || true'
python3 - "$out" <<'PY'
import json, sys, pathlib
from collections import Counter
out = pathlib.Path(sys.argv[1])
bad = 0
for d in sorted(out.iterdir()):
    reports = [json.loads(f.read_text()) for f in sorted(d.glob("*.json"))]
    runs = [{c["name"]: c["status"] for c in r["cases"]} for r in reports]
    distinct = {json.dumps(r, sort_keys=True) for r in runs}
    failing = sorted(k for k, v in runs[0].items() if v != "passed")
    print(f"{d.name}: {len(runs)} runs, {len(distinct)} verdict set(s); not passed: {failing}")
    if len(distinct) > 1:
        bad += 1
        # Say why the odd ones out differ: the reason of every case whose verdict varies.
        for name in runs[0]:
            seen = Counter(r[name] for r in runs)
            if len(seen) > 1:
                rare = min(seen, key=seen.get)
                for r in reports:
                    case = next(c for c in r["cases"] if c["name"] == name)
                    if case["status"] == rare:
                        print(f"  {name}: {dict(seen)}; a {rare} run said: {case['reason']}")
                        print("    transcript:", [(e["event"], e["at_ms"]) for e in case["transcript"]])
                        break
sys.exit(1 if bad else 0)
PY
