#!/usr/bin/env bash
# Requests per second of a Lua route (/_synapse/client/hello, served through
# luamods' httpbridge) against the same route written natively in echo
# (/native/hello), in one process (examples/embedded), same machine, same run.
#   tools/bench/http.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
bin=$(mktemp -d)/embedded
go build -o "$bin" ./examples/embedded
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" -listen "127.0.0.1:$port" -c examples/embedded/luamods.yaml 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$(dirname "$bin")"' EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.1; done

rps() { # path → requests/sec (wrk's own summary on stderr)
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port$1" | tee /dev/stderr | awk '/Requests\/sec/ {print $2}'
}
echo "== warm-up" >&2
wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$port/_synapse/client/hello?name=wrk" >/dev/null
wrk -t2 -c"$conns" -d2s "http://127.0.0.1:$port/native/hello?name=wrk" >/dev/null
echo "== native echo route" >&2
native=$(rps "/native/hello?name=wrk")
echo "== Lua route" >&2
lua=$(rps "/_synapse/client/hello?name=wrk")
python3 -c "n=$native; l=$lua; print(f'native {n:.0f} req/s, Lua {l:.0f} req/s, Lua/native = {l/n:.2f}')"
