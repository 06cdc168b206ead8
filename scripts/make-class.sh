#!/usr/bin/env bash
# Makes a synthetic class of N submissions from the fixtures, for benchmarks and demos:
#   scripts/make-class.sh N DIR
# Each student has a server and a client: about half the servers and a third of the
# clients are the correct fixture (`good`), the rest cycle through the buggy ones. Every
# 10th submission is a .zip and every 10th (offset 5) a Moodle-style nested folder, so
# the class also exercises unpacking and discovery. Deterministic: the same N gives the
# same class.
set -euo pipefail
if [[ $# -ne 2 ]] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 N DIR   (makes N submissions in DIR, which must not exist yet)" >&2
  exit 2
fi
n=$1
dir=$2
fx="$(cd "$(dirname "$0")/.." && pwd)/fixtures"
if [[ -e $dir ]]; then
  echo "$dir exists; choose a new folder" >&2
  exit 2
fi
mkdir -p "$dir"
servers=(server_never_closes server_single_client server_reply_after_two server_recv5
         server_rst_on_close server_ignores_sigint server_no_empty_recv_check server_syntax_error)
clients=(client_no_print client_crash_on_eof client_never_closes client_ignores_server_close)
for ((i = 0; i < n; i++)); do
  name=$(printf 'student%03d' "$i")
  if ((i % 2 == 0)); then server=good; else server=${servers[$(((i / 2) % ${#servers[@]}))]}; fi
  if ((i % 3 == 0)); then client=good; else client=${clients[$(((i / 3) % ${#clients[@]}))]}; fi
  work="$dir/$name"
  if ((i % 10 == 5)); then work="$dir/${name}_$((10000 + i))_assignsubmission_file_/hw"; fi
  mkdir -p "$work"
  cp "$fx/$server/tcp_server.py" "$work/tcp_server.py"
  cp "$fx/$client/tcp_client.py" "$work/tcp_client.py"
  if ((i % 10 == 0)); then
    (cd "$work" && python3 -m zipfile -c "../$name.zip" tcp_server.py tcp_client.py)
    rm -r "$work"
  fi
done
echo "made $n submissions in $dir"
