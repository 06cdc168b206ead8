#!/usr/bin/env python3
"""The floor of a class run: start and stop each student process as many times as the
spec has cases for it, with the same interpreter, in parallel on all cores, each in a
fresh network namespace (student programs all want port 8888). A server is stopped as
soon as it listens, a client runs until it exits (no server answers it). Nothing is
checked: this is what running the programs costs, whatever grades them.

    scripts/floor.py SPEC CLASS_DIR      (root: it makes network namespaces)
"""
import concurrent.futures
import ctypes
import glob
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def own_netns():
    if libc.unshare(CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")


def find(sub, patterns):
    for d in [sub] + sorted(p for p in glob.glob(os.path.join(sub, "*")) if os.path.isdir(p)):
        for pat in patterns:
            m = sorted(glob.glob(os.path.join(d, pat)))
            if len(m) == 1:
                return m[0]
            if m:
                return None
    return None


def listening(pid):
    try:
        with open(f"/proc/{pid}/net/tcp") as f:
            return any(line.split()[3] == "0A" for line in f.readlines()[1:])
    except OSError:
        return False


def run(job):
    interp, path, target = job
    p = subprocess.Popen([interp, os.path.basename(path)], cwd=os.path.dirname(path), stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=own_netns,
                         env={"PATH": os.environ["PATH"], "PYTHONUNBUFFERED": "1"})
    if target == "server":
        deadline = time.monotonic() + 5
        while p.poll() is None and not listening(p.pid) and time.monotonic() < deadline:
            time.sleep(0.001)
        p.kill()
    else:
        p.stdin.write(b"\n")
        p.stdin.close()
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
    p.wait()


def main():
    spec = tomllib.load(open(sys.argv[1], "rb"))
    cls = sys.argv[2]
    per_target = {}
    for c in spec["case"]:
        per_target[c["target"]] = per_target.get(c["target"], 0) + 1
    interp = subprocess.run(["pyenv", "which", "python3"], capture_output=True, text=True).stdout.strip() or shutil.which("python3")
    jobs = []
    for sub in sorted(glob.glob(os.path.join(cls, "*"))):
        if not os.path.isdir(sub):
            continue  # archives: the floor only runs folders
        for target, count in per_target.items():
            f = find(sub, spec[target]["file"] if isinstance(spec[target]["file"], list) else [spec[target]["file"]])
            if f:
                jobs += [(interp, f, target)] * count
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as ex:
        list(ex.map(run, jobs))
    wall = time.monotonic() - t0
    print(json.dumps({"starts": len(jobs), "wall_s": round(wall, 2), "ms_per_start": round(1000 * wall / max(len(jobs), 1), 2)}))


if __name__ == "__main__":
    main()
