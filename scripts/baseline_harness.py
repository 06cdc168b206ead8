#!/usr/bin/env python3
"""The baseline: a grading harness of the kind instructors write by hand, sequential
and sleep-based. For each student: start the server, sleep 0.5 s, connect, send,
read a reply, kill; then start a reference server, start the client, sleep, check what
it sent, kill. Four checks per student, named as the spec's cases so verdicts can be
compared with sockgrade's:

  accepts a connection, replies to a message         (server)
  connects to the server, sends what the user typed  (client)

    scripts/baseline_harness.py CLASS_DIR [--limit N] [--json OUT]

Run it in a network namespace of its own (it binds 127.0.0.1:8888), e.g.
    unshare -n sh -c 'ip link set lo up && python3 scripts/baseline_harness.py class'
"""
import argparse
import glob
import json
import os
import socket
import subprocess
import sys
import time


def find(sub, names):
    for d in [sub] + sorted(p for p in glob.glob(os.path.join(sub, "*")) if os.path.isdir(p)):
        for n in names:
            if os.path.exists(os.path.join(d, n)):
                return os.path.join(d, n)
    return None


def check_server(path):
    res = {"accepts a connection": False, "replies to a message": False}
    p = subprocess.Popen([sys.executable, os.path.basename(path)], cwd=os.path.dirname(path),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        s = socket.create_connection(("127.0.0.1", 8888), timeout=2)
        res["accepts a connection"] = True
        s.sendall(b"hello\n")
        s.settimeout(2)
        res["replies to a message"] = len(s.recv(1024)) > 0
        s.close()
    except OSError:
        pass
    p.kill()
    p.wait()
    return res


def check_client(path):
    res = {"connects to the server": False, "sends what the user typed": False}
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 8888))
    srv.listen(1)
    srv.settimeout(2)
    p = subprocess.Popen([sys.executable, os.path.basename(path)], cwd=os.path.dirname(path),
                         stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        conn, _ = srv.accept()
        res["connects to the server"] = True
        p.stdin.write(b"hello sockgrade\n")
        p.stdin.flush()
        conn.settimeout(2)
        got = b""
        while b"hello sockgrade" not in got:
            chunk = conn.recv(1024)
            if not chunk:
                break
            got += chunk
        res["sends what the user typed"] = b"hello sockgrade" in got
        conn.close()
    except OSError:
        pass
    p.kill()
    p.wait()
    srv.close()
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cls")
    ap.add_argument("--limit", type=int)
    ap.add_argument("--json")
    a = ap.parse_args()
    subs = [s for s in sorted(glob.glob(os.path.join(a.cls, "*"))) if os.path.isdir(s)][: a.limit]
    out = {}
    t0 = time.monotonic()
    for sub in subs:
        r = {}
        server = find(sub, ["tcp_server.py"])
        client = find(sub, ["tcp_client.py"])
        if server:
            r.update(check_server(server))
        if client:
            r.update(check_client(client))
        out[os.path.basename(sub)] = r
    wall = time.monotonic() - t0
    checks = sum(len(r) for r in out.values())
    summary = {"students": len(subs), "checks": checks, "wall_s": round(wall, 2), "ms_per_check": round(1000 * wall / max(checks, 1), 1)}
    print(json.dumps(summary))
    if a.json:
        json.dump({"summary": summary, "verdicts": out}, open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
