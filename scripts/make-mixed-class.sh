#!/usr/bin/env bash
# A class in the proportions seen in real submissions (issue 14), from the fixtures:
# per 20 students, 10 correct, 3 servers that spin on b'' (server_no_empty_recv_check),
# 3 that close with RST (server_rst_on_close), 2 that never listen
# (hostile_sleeps_forever), 2 that bind a classroom IP (server_classroom_ip). Each
# student also hands in the correct client.
#   scripts/make-mixed-class.sh N DIR
set -euo pipefail
n=${1:?N}
dir=${2:?DIR}
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$dir"
kinds=(good good good good good good good good good good
  server_no_empty_recv_check server_no_empty_recv_check server_no_empty_recv_check
  server_rst_on_close server_rst_on_close server_rst_on_close
  hostile_sleeps_forever hostile_sleeps_forever
  server_classroom_ip server_classroom_ip)
# CORRECT=1: the same class with every student correct (the comparison issue 14 asks for).
if [[ ${CORRECT:-0} == 1 ]]; then
  kinds=(good)
fi
for ((i = 0; i < n; i++)); do
  kind=${kinds[$((i % ${#kinds[@]}))]}
  s="$dir/$(printf 's%04d' "$i")"
  mkdir -p "$s"
  cp "$repo/fixtures/$kind/tcp_server.py" "$s/tcp_server.py"
  cp "$repo/fixtures/good/tcp_client.py" "$s/tcp_client.py"
done
