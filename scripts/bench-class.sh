#!/usr/bin/env bash
# Benchmark of a class run, in one go on this machine (as root: namespaces):
#   scripts/bench-class.sh [N=200] [BASELINE_N=40]
#   MIXED=1 scripts/bench-class.sh 20 20   # the mixed class of issue 14
#   MIXED=1 CORRECT=1 scripts/bench-class.sh 20 20   # the same class, every student correct
#   UDP=1 scripts/bench-class.sh 100       # a UDP class (issue 16): specs/udp-basics.toml
#   MIXED=1 RENDER=1 scripts/bench-class.sh 1000 0   # 1,000 students, no floor/baseline,
#                                           # with Chromium's render time of report.html
#
# 1. sockgrade grade on a synthetic class of N submissions (scripts/make-class.sh),
#    under /usr/bin/time -v for the grader's peak memory;
# 2. the floor: every student process started and stopped as many times as the spec
#    has cases for it, same interpreter, in parallel on all cores (scripts/floor.py);
# 3. the baseline: a sequential sleep-based harness (scripts/baseline_harness.py) on the
#    first BASELINE_N students (it takes ~2 s per student), in its own network namespace.
# Prints time per graded check for each, and whether the baseline's verdicts agree with
# sockgrade's on the checks both make.
set -euo pipefail
n=${1:-200}
bn=${2:-40}
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin=${SOCKGRADE:-$repo/target/release/sockgrade}
if [[ ${UDP:-0} == 1 ]]; then
  spec=${SPEC:-$repo/specs/udp-basics.toml}
else
  spec=${SPEC:-$repo/specs/tcp-basics.toml}
fi
if [[ ! -x $bin ]]; then
  echo "no $bin: run \`cargo build --release\` first (or set SOCKGRADE=path)" >&2
  exit 2
fi
work=$(mktemp -d /tmp/sockgrade-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
# MIXED=1: the mixed class of issue 14 (scripts/make-mixed-class.sh) instead.
if [[ ${MIXED:-0} == 1 ]]; then
  "$repo/scripts/make-mixed-class.sh" "$n" "$work/class"
elif [[ ${UDP:-0} == 1 ]]; then
  "$repo/scripts/make-udp-class.sh" "$n" "$work/class" >/dev/null
else
  "$repo/scripts/make-class.sh" "$n" "$work/class" >/dev/null
fi
cases=$(grep -c '^\[\[case\]\]' "$spec")
checks=$((n * cases))

echo "== sockgrade grade: $n submissions × $cases cases = $checks checks (default --jobs: 32 per core, at most 64)"
/usr/bin/time -v "$bin" grade "$spec" "$work/class" --out "$work/out" >"$work/summary.txt" 2>"$work/time.txt" || true
wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time.txt")
rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$work/time.txt")
secs=$(python3 -c "import sys; p=sys.argv[1].split(':'); print(sum(float(x)*60**i for i,x in enumerate(reversed(p))))" "$wall")
echo "   user $(awk -F": " "/User time/ {print \$2}" "$work/time.txt") s, system $(awk -F": " "/System time/ {print \$2}" "$work/time.txt") s"
echo "   wall ${secs} s, $(python3 -c "print(round(1000*$secs/$checks,1))") ms per check, grader peak RSS $((rss / 1024)) MiB"
echo "   load average when it ended: $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -f $work/out/report.html ]]; then
  echo "   report.html: $(($(stat -c %s "$work/out/report.html") / 1024)) KiB"
  # RENDER=1: Chromium's render time of it (scripts/bench-render.sh).
  if [[ ${RENDER:-0} == 1 ]]; then
    "$repo/scripts/bench-render.sh" "$work/out/report.html" | sed 's/^/   render: /'
  fi
fi
# BASELINE_N=0: the class run only (a 1,000-student class: the floor would take minutes).
if [[ $bn == 0 ]]; then
  exit 0
fi

# The floor and the baseline start TCP servers and connect TCP clients: no UDP analogue.
if [[ ${UDP:-0} == 1 ]]; then
  exit 0
fi

echo "== floor: the same process starts, no checks, parallel on $(nproc) cores"
floor=$(python3 "$repo/scripts/floor.py" "$spec" "$work/class")
echo "   $floor"

echo "== baseline: sequential sleep-based harness on $bn students"
unshare -n sh -c "ip link set lo up && python3 '$repo/scripts/baseline_harness.py' '$work/class' --limit $bn --json '$work/baseline.json'"

python3 - "$work/out/gradebook.csv" "$work/baseline.json" "$secs" "$checks" <<'PY'
import csv, json, sys
book = {r["student"]: r for r in csv.DictReader(open(sys.argv[1]))}
base = json.load(open(sys.argv[2]))
cols = {c.split(" (")[0]: c for c in next(iter(book.values())).keys()}
agree = differ = 0
for student, verdicts in base["verdicts"].items():
    sid = student.split("_")[0]
    if sid not in book:
        continue
    for case, ok in verdicts.items():
        cell = book[sid][cols[case]]
        ours = cell not in ("0", "error", "failed", "")
        if ours == ok:
            agree += 1
        else:
            differ += 1
            print(f"   differs: {sid} / {case}: sockgrade {cell!r}, baseline {'pass' if ok else 'fail'}")
ms = 1000 * float(sys.argv[3]) / int(sys.argv[4])
b = base["summary"]["ms_per_check"]
print(f"== verdicts on the checks both make: {agree} agree, {differ} differ")
print(f"== per check: sockgrade {ms:.1f} ms, baseline {b} ms ({b/ms:.0f}× slower)")
PY
