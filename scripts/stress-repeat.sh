#!/usr/bin/env bash
# Grades the same submission N times at once (default 50) with every CPU kept busy by
# extra spinning processes, and checks the verdicts never differ.
#   scripts/stress-repeat.sh [N] [SUBMISSION]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-50}; sub=${2:-fixtures/server_no_empty_recv_check}
cargo build -q --release
hogs=()
for _ in $(seq "$(nproc)"); do (while :; do :; done) & hogs+=($!); done
trap 'kill "${hogs[@]}" 2>/dev/null' EXIT
out=$(mktemp -d)
graders=()
for i in $(seq "$n"); do
  ./target/release/sockgrade run specs/tcp-basics.toml "$sub" --format json --target server > "$out/$i.json" &
  graders+=($!)
done
for p in "${graders[@]}"; do wait "$p" || true; done
python3 - "$out" "$n" <<'PY'
import json, sys, pathlib
out, n = pathlib.Path(sys.argv[1]), int(sys.argv[2])
runs = [{c["name"]: c["status"] for c in json.loads((out / f"{i}.json").read_text())["cases"]} for i in range(1, n + 1)]
distinct = {json.dumps(r, sort_keys=True) for r in runs}
print(f"{n} runs, {len(distinct)} distinct verdict set(s)")
for d in distinct:
    print(" ", d)
if len(distinct) > 1:
    # Say why the odd ones out differ: the reason of every case whose verdict varies.
    from collections import Counter
    for name in runs[0]:
        seen = Counter(r[name] for r in runs)
        if len(seen) > 1:
            rare = min(seen, key=seen.get)
            for i in range(1, n + 1):
                case = next(c for c in json.loads((out / f"{i}.json").read_text())["cases"] if c["name"] == name)
                if case["status"] == rare:
                    print(f"  run {i}, {name}: {rare}: {case['reason']}")
                    print("    stderr:", case["stderr_tail"][-3:], "transcript:", [(e["event"], e["at_ms"]) for e in case["transcript"]])
                    break
sys.exit(0 if len(distinct) == 1 else 1)
PY
