#!/usr/bin/env bash
# Makes a synthetic UDP class of N submissions from fixtures/udp (specs/udp-basics.toml),
# for the class benchmark (`UDP=1 scripts/bench-class.sh`):
#   scripts/make-udp-class.sh N DIR
# About half the servers and a third of the clients are the correct fixture (echo_good),
# the rest cycle through the buggy ones. Deterministic: the same N gives the same class.
set -euo pipefail
if [[ $# -ne 2 ]] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 N DIR   (makes N submissions in DIR, which must not exist yet)" >&2
  exit 2
fi
n=$1
dir=$2
fx="$(cd "$(dirname "$0")/.." && pwd)/fixtures/udp"
if [[ -e $dir ]]; then
  echo "$dir exists; choose a new folder" >&2
  exit 2
fi
mkdir -p "$dir"
servers=(echo_reply_fixed_address echo_reply_other_socket echo_recvfrom5)
clients=(echo_client_new_socket_per_line)
for ((i = 0; i < n; i++)); do
  name=$(printf 'student%03d' "$i")
  if ((i % 2 == 0)); then server=echo_good; else server=${servers[$(((i / 2) % ${#servers[@]}))]}; fi
  if ((i % 3 == 0)); then client=echo_good; else client=${clients[$(((i / 3) % ${#clients[@]}))]}; fi
  mkdir -p "$dir/$name"
  cp "$fx/$server/udp_server.py" "$dir/$name/udp_server.py"
  cp "$fx/$client/udp_client.py" "$dir/$name/udp_client.py"
done
echo "made $n submissions in $dir"
