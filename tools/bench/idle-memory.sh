#!/usr/bin/env bash
# Memory per idle module: the resident set (VmRSS) of a real `luamods serve`
# with N trivial modules (one script each: init registers nothing) against
# one with a single module, after it has loaded and sat idle; also the Go
# heap in use from /metrics when it is exported. Repeats each measurement.
#   tools/bench/idle-memory.sh [modules=200] [repeats=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
n=${1:-200}
repeats=${2:-3}
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/luamods" ./cmd/luamods
for i in $(seq "$n"); do
  printf 'local M = {}\nfunction M.init(api, config)\nend\nreturn M\n' > "$work/m$i.lua"
done

# measure modules → "rss_kb heap_kb"
measure() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  { printf 'listen: 127.0.0.1:%s\nlog_level: warn\nmodules:\n' "$port"
    for i in $(seq "$1"); do printf '  - module: m%s.lua\n' "$i"; done; } > "$work/luamods.yaml"
  "$work/luamods" serve -c "$work/luamods.yaml" 2>"$work/serve.log" &
  pid=$!
  for _ in $(seq 300); do curl -sf -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.1; done
  sleep 3 # idle: let the runtime settle
  local rss heap
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
  heap=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '/^go_memstats_heap_inuse_bytes / {printf "%d", $2/1024}')
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
  echo "$rss ${heap:-?}"
}

echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$repeats"); do
  read -r rss1 heap1 <<<"$(measure 1)"
  read -r rssn heapn <<<"$(measure "$n")"
  python3 - "$n" "$rss1" "$rssn" "$heap1" "$heapn" <<'PY'
import sys
n, rss1, rssn = (int(x) for x in sys.argv[1:4])
heap1, heapn = sys.argv[4:6]
line = f"modules=1 RSS {rss1} KB, modules={n} RSS {rssn} KB: {(rssn - rss1) / (n - 1):.0f} KB RSS per idle module"
if heap1.isdigit() and heapn.isdigit():
    line += f"; heap in use {heap1} / {heapn} KB: {(int(heapn) - int(heap1)) / (n - 1):.0f} KB per module"
print(line)
PY
done
