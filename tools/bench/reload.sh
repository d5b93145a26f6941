#!/usr/bin/env bash
# Load during reloads: wrk against a Lua route for N seconds while the
# script is changed and luamods serve is sent SIGHUP 20 times; then the same
# load without reloads. Prints non-2xx answers, socket errors and latency
# percentiles of both runs.
#   tools/bench/reload.sh [seconds] [reloads]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
reloads=${2:-20}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/luamods" ./cmd/luamods
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
module() { # version
  cat > "$work/app.lua" <<LUA
local M = {}
function M.init(api)
  api.register_web_resource("/_synapse/client/app", function(request)
    return { status = 200, json = { version = $1, name = request.query.name } }
  end)
end
return M
LUA
}
module 0
printf 'listen: 127.0.0.1:%s\nlog_level: warn\nmodules:\n  - module: app.lua\n' "$port" > "$work/luamods.yaml"
"$work/luamods" serve -c "$work/luamods.yaml" 2>"$work/serve.log" &
pid=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

# wrk's Lua hook counts non-2xx answers.
cat > "$work/count.lua" <<'LUA'
local bad = 0
function response(status) if status < 200 or status > 299 then bad = bad + 1 end end
function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, socket errors %d (connect %d, read %d, write %d, timeout %d)\n",
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("latency p50 %.2fms p99 %.2fms max %.2fms\n", latency:percentile(50)/1000, latency:percentile(99)/1000, latency.max/1000))
end
LUA
url="http://127.0.0.1:$port/_synapse/client/app?name=wrk"
echo "== $secs s of load, $reloads reloads"
wrk -t2 -c32 -d"${secs}s" -s "$work/count.lua" "$url" > "$work/with.txt" &
wrkpid=$!
interval=$(python3 -c "print($secs / ($reloads + 1))")
for v in $(seq "$reloads"); do
  sleep "$interval"
  module "$v"
  kill -HUP "$pid"
done
wait "$wrkpid"
grep -E "requests|latency" "$work/with.txt"
final=$(curl -s "$url")
echo "final answer: $final (expect version $reloads)"
echo "== $secs s of load, no reloads"
wrk -t2 -c32 -d"${secs}s" -s "$work/count.lua" "$url" | grep -E "requests|latency"
