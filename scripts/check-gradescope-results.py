#!/usr/bin/env python3
"""Checks a results.json against Gradescope's autograder output format, field by field.

Usage: check-gradescope-results.py RESULTS_JSON [--score N] [--max-score N] [--failed NAME]...

Every documented field sockgrade writes is checked for presence, type and allowed
values; the top-level score must equal the sum of the tests' scores (Gradescope uses the
top-level score when given, so the two must agree). Exits 1 with a list of problems.
"""
import argparse
import json
import sys

VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
FORMATS = {"text", "html", "simple_format", "md", "ansi"}
STATUS = {"passed", "failed"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--score", type=float)
    ap.add_argument("--max-score", type=float)
    ap.add_argument("--failed", action="append", default=[], help="a test that must have failed")
    args = ap.parse_args()
    with open(args.results, encoding="utf-8") as f:
        r = json.load(f)
    problems = []

    def need(cond, msg):
        if not cond:
            problems.append(msg)

    number = (int, float)
    need(isinstance(r.get("score"), number), "top-level score: a number")
    need(isinstance(r.get("execution_time"), int), "execution_time: whole seconds")
    need(isinstance(r.get("output"), str), "output: a string")
    for k in ("output_format", "test_output_format", "test_name_format"):
        need(r.get(k) in FORMATS, f"{k}: one of {sorted(FORMATS)}")
    need(r.get("visibility") in VISIBILITY, "visibility: one of " + str(sorted(VISIBILITY)))
    need(r.get("stdout_visibility") in VISIBILITY, "stdout_visibility: one of " + str(sorted(VISIBILITY)))
    need(isinstance(r.get("extra_data"), dict), "extra_data: an object")
    tests = r.get("tests")
    need(isinstance(tests, list) and tests, "tests: a non-empty list")
    tests = tests or []
    total = 0.0
    max_total = 0.0
    numbers = set()
    for i, t in enumerate(tests):
        where = f"tests[{i}] ({t.get('name')!r})"
        need(isinstance(t.get("name"), str) and t["name"], f"{where}.name: a non-empty string")
        need(isinstance(t.get("number"), str), f"{where}.number: a string such as \"1.1\"")
        numbers.add(t.get("number"))
        need(t.get("status") in STATUS, f"{where}.status: passed or failed")
        need(isinstance(t.get("output"), str), f"{where}.output: a string")
        need(t.get("output_format") in FORMATS, f"{where}.output_format")
        need(t.get("name_format") in FORMATS, f"{where}.name_format")
        need(isinstance(t.get("tags"), list) and all(isinstance(x, str) for x in t.get("tags", [])), f"{where}.tags: a list of strings")
        need(t.get("visibility") in VISIBILITY, f"{where}.visibility")
        need(isinstance(t.get("extra_data"), dict), f"{where}.extra_data: an object")
        if "informational" in t.get("tags", []):
            need("score" not in t and "max_score" not in t, f"{where}: an informational test carries no score")
        else:
            need(isinstance(t.get("score"), number) and isinstance(t.get("max_score"), number), f"{where}: score and max_score")
            s, m = t.get("score", 0), t.get("max_score", 0)
            need(0 <= s <= m, f"{where}: 0 <= score <= max_score")
            need((t.get("status") == "passed") == (s == m), f"{where}: status agrees with the score")
            total += s
            max_total += m
        if t.get("status") == "failed" and t.get("visibility") != "hidden":
            need(t.get("output"), f"{where}: a failed test explains itself in output")
    need(len(numbers) == len(tests), "test numbers are unique")
    need(abs(total - r.get("score", -1)) < 1e-9, f"top-level score {r.get('score')} equals the sum of the tests' scores {total}")
    if args.score is not None:
        need(r.get("score") == args.score, f"score {r.get('score')} == {args.score}")
    if args.max_score is not None:
        need(max_total == args.max_score, f"max score {max_total} == {args.max_score}")
    failed = {t.get("name") for t in tests if t.get("status") == "failed"}
    for name in args.failed:
        need(name in failed, f"{name!r} failed")
    if problems:
        print(f"{args.results}: {len(problems)} problem(s):", file=sys.stderr)
        for p in problems:
            print("  - " + p, file=sys.stderr)
        sys.exit(1)
    print(f"{args.results}: ok ({len(tests)} tests, score {r['score']}/{max_total})")


if __name__ == "__main__":
    main()
