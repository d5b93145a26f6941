#!/usr/bin/env bash
# luamods against a native echo twin of the same routes (tools/bench/twin),
# and nginx with its Lua module when that is installed, on loopback:
#   hello      GET /_synapse/client/hello?name=wrk  (examples/embedded/hello.lua)
#   realistic  POST /bench/realistic, a 2 KB JSON body  (tools/bench/realistic.lua)
# Servers run side by side and are measured interleaved (A B A B ...), each
# run `wrk -t1 -c<conns> -d<secs>s`. Prints req/s, p50 and p99 of every run,
# the ratios of the sums, and the machine. Takes about
# 2 routes × rounds × servers × secs.
#   tools/bench/compare.sh [secs=10] [rounds=2] [conns=32]
# INSTANCES (default 2) sets the modules' Lua states; CPUPROFILE=file writes
# a CPU profile of luamods serve (go tool pprof -top), ROUTES=realistic
# measures that route alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
rounds=${2:-2}
conns=${3:-32}
instances=${INSTANCES:-2}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
here=$PWD
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
waitfor() { # url
  for _ in $(seq 200); do curl -sf -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; exit 1
}

go build -o "$work/luamods" ./cmd/luamods
go build -o "$work/twin" ./tools/bench/twin
declare -A port
port[luamods]=$(freeport)
port[twin]=$(freeport)
cat > "$work/luamods.yaml" <<YAML
listen: 127.0.0.1:${port[luamods]}
log_level: warn
modules:
  - module: $here/examples/embedded/hello.lua
    instances: $instances
  - module: $here/tools/bench/realistic.lua
    instances: $instances
YAML
LUAMODS_CPUPROFILE=${CPUPROFILE:-} "$work/luamods" serve -c "$work/luamods.yaml" 2>"$work/serve.log" &
pids+=($!)
luamods_pid=$!
"$work/twin" -listen "127.0.0.1:${port[twin]}" 2>"$work/twin.log" &
pids+=($!)
servers=(luamods twin)

# nginx + its Lua module (OpenResty's lua-nginx-module), when installed.
nginx_lua=$({ ls /usr/lib/nginx/modules/ndk_http_module.so /usr/lib/nginx/modules/ngx_http_lua_module.so 2>/dev/null || true; } | wc -l)
if command -v nginx >/dev/null && [ "$nginx_lua" = 2 ]; then
  port[nginx]=$(freeport)
  mkdir -p "$work/nginx"
  sed -e "s|@PORT@|${port[nginx]}|" -e "s|@WORK@|$work/nginx|" \
    tools/bench/nginx.conf > "$work/nginx/nginx.conf"
  nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -g 'daemon off;' 2>"$work/nginx/stderr" &
  pids+=($!)
  servers+=(nginx)
else
  echo "nginx with the Lua module is not installed: not measured (apt-get install nginx-light libnginx-mod-http-lua)" >&2
fi

# Every server must give the same answers before it is measured.
for s in "${servers[@]}"; do
  waitfor "http://127.0.0.1:${port[$s]}/_synapse/client/hello?name=wrk"
  curl -sf "http://127.0.0.1:${port[$s]}/_synapse/client/hello?name=wrk" > "$work/$s.hello"
  curl -sf -H 'Content-Type: application/json' --data-binary @tools/bench/realistic.json \
    "http://127.0.0.1:${port[$s]}/bench/realistic" > "$work/$s.realistic"
done
for s in "${servers[@]}"; do
  for r in hello realistic; do
    python3 - "$work/twin.$r" "$work/$s.$r" <<'PY' || { echo "$s answers $r differently from the twin" >&2; exit 1; }
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
sys.exit(a != b)
PY
  done
done

machine() {
  echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}
machine

# run route server → "req/s p50_ms p99_ms"
run() {
  local url="http://127.0.0.1:${port[$2]}" args=()
  case $1 in
    hello) url+="/_synapse/client/hello?name=wrk" ;;
    realistic) url+="/bench/realistic"; args=(-s tools/bench/post.lua) ;;
  esac
  timeout $((secs + 30)) wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s --latency "${args[@]}" "$url" -- "$here/tools/bench/realistic.json" > "$work/wrk.out"
  if grep -q 'Non-2xx' "$work/wrk.out"; then echo "$2 gave non-2xx answers on $1:" >&2; cat "$work/wrk.out" >&2; exit 1; fi
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$work/wrk.out"
}

for route in ${ROUTES:-hello realistic}; do
  # warm-up
  for s in "${servers[@]}"; do run "$route" "$s" >/dev/null; done 2>/dev/null || true
  declare -A rps=() p99=()
  for round in $(seq "$rounds"); do
    for s in "${servers[@]}"; do
      out=$(run "$route" "$s")
      read -r r p50 p <<<"$out"
      printf '%-9s round %d  %-7s %8s req/s  p50 %7s ms  p99 %7s ms\n' "$route" "$round" "$s" "$r" "$p50" "$p"
      rps[$s]=$(( ${rps[$s]:-0} + r ))
      p99[$s]="${p99[$s]:-} $p"
    done
  done
  for s in "${servers[@]}"; do
    [ "$s" = twin ] && continue
    python3 - "$route" "$s" "${rps[$s]}" "${rps[twin]}" "${p99[$s]}" "${p99[twin]}" <<'PY'
import statistics, sys
route, s, r, t, p, q = sys.argv[1:]
p = statistics.median(map(float, p.split())); q = statistics.median(map(float, q.split()))
print(f"{route:<9} {s}/twin: req/s {int(r)/int(t):.2f}x, p99 (median of rounds) {p:.2f} / {q:.2f} ms = {p/q:.2f}x")
PY
  done
  unset rps p99
done
machine
