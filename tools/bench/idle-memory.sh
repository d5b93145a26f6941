#!/usr/bin/env bash
# Memory per idle module: the resident set (VmRSS) of a real `luamods serve`
# with N trivial modules (one script each: init registers nothing) against
# one with a single module, after it has loaded and sat idle. Repeats each
# measurement.
#   [IDLE=seconds] tools/bench/idle-memory.sh [modules=200] [repeats=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
repeats=${2:-3}
work=$(mktemp -d)
trap '[ -f "$work/pid" ] && kill "$(cat "$work/pid")" 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/luamods" ./cmd/luamods
for i in $(seq "$n"); do
  printf 'local M = {}\nfunction M.init(api, config)\nend\nreturn M\n' > "$work/m$i.lua"
done

# measure modules → resident set in KB
measure() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  { printf 'listen: 127.0.0.1:%s\nlog_level: warn\nmodules:\n' "$port"
    for i in $(seq "$1"); do printf '  - module: m%s.lua\n' "$i"; done; } > "$work/luamods.yaml"
  "$work/luamods" serve -c "$work/luamods.yaml" 2>"$work/serve.log" &
  pid=$!
  echo "$pid" > "$work/pid"
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  sleep "${IDLE:-3}" # idle: let the runtime settle (IDLE=seconds)
  awk '/^VmRSS/ {print $2}' "/proc/$pid/status"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm "$work/pid"
}

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  rss1=$(measure 1)
  rssn=$(measure "$n")
  echo "modules=1 RSS $rss1 KB, modules=$n RSS $rssn KB: $(( (rssn - rss1) / (n - 1) )) KB RSS per idle module"
done
