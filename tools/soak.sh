#!/usr/bin/env bash
# Soak: a real `luamods serve` on loopback under mixed load for a bounded
# time, while it is reloaded (some reloads broken), attacked by a module and
# from outside, and its Redis is restarted once. Reports what an operator
# would check: requests, non-2xx and socket errors of the regular traffic,
# the attack answers, reloads, and RSS and goroutines over time.
#   tools/soak.sh [seconds=600] [wrk connections=16] [sample every N seconds=10]
# SOAK_LOG=FILE keeps serve's log; SOAK_VERBOSE=1 lists every attack;
# SOAK_ATTACKS=0 leaves the attacks out (to tell their effect from the rest).
# Needs wrk, redis-server and curl. Everything listens on 127.0.0.1 and
# lives in a temporary folder removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
conns=${2:-16}
every=${3:-10}
for tool in wrk redis-server curl; do
  command -v "$tool" >/dev/null || { echo "soak: $tool is not installed" >&2; exit 1; }
done
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${SOAK_LOG:-}" ] && cp "$work/serve.log" "$SOAK_LOG"
  rm -rf "$work"
}
trap cleanup EXIT
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
go build -o "$work/luamods" ./cmd/luamods
port=$(freeport)
redis_port=$(freeport)
base="http://127.0.0.1:$port"
token=soak-token

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    >"$work/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 100); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
}
start_redis

# app.lua is rewritten at every reload; version "broken" does not compile,
# so that reload fails and the previous generation keeps serving.
app() { # version
  if [ "$1" = broken ]; then
    printf 'local M = {}\nfunction M.init(api)\n  this is not Lua\nend\nreturn M\n' >"$work/app.lua"
    return
  fi
  cat >"$work/app.lua" <<LUA
local M = {}
local banned = {}
for _, w in ipairs({ "viagra", "casino", "lottery", "bitcoin", "prize" }) do banned[w] = true end
function M.init(api)
  local square = api.cached(function(n) return { n = n * n, version = $1 } end, { max_entries = 1000 })
  api.register_web_resource("/_synapse/client/soak/square", function(request)
    local n = tonumber(request.query.n) or 0
    if request.method == "DELETE" then
      api.invalidate_cache(square, { n })
      return { status = 200, json = {} }
    end
    return { status = 200, json = square(n) }
  end)
  api.register_web_resource("/_synapse/client/soak/words", function(request)
    local doc = request.json
    local words, hits = 0, 0
    for word in string.gmatch(string.lower(doc.text), "%a+") do
      words = words + 1
      if banned[word] then hits = hits + 1 end
    end
    local count = api.store.incr("posts", 1)
    return { status = 200, json = { words = words, banned = hits, posts = count, version = $1 } }
  end)
end
return M
LUA
}
app 0
# attack.lua: the attack table's module (cmd/luamods/attack_test.go) without
# its last line (return M), then an init that also runs an attack of its own
# every 2 s in the background (a spin stopped by background_timeout, a
# string.rep over the size cap).
sed -n '/^const attackModule = `/,/^`$/p' cmd/luamods/attack_test.go | sed '1s/^const attackModule = `//; $d' | sed '$d' >"$work/attack.lua"
cat >>"$work/attack.lua" <<'LUA'
local inner_init = M.init
function M.init(api_)
  inner_init(api_)
  local round = 0
  api_.looping_background_call(function()
    round = round + 1
    if round % 2 == 0 then while true do end end
    return string.rep("x", 2^40)
  end, 2000)
end
return M
LUA
cp scripts/hello.lua scripts/spam_filter.lua "$work/"
cat >"$work/luamods.yaml" <<YAML
listen: 127.0.0.1:$port
admin_token: $token
log_level: warn
memory_limit: 1GiB
redis: {enabled: true, host: 127.0.0.1, port: $redis_port}
modules:
  - module: hello.lua
    config: {greeting: hello}
  - module: spam_filter.lua
    config: {banned_words: [viagra], blocked_servers: [spam.example]}
  - module: app.lua
    instances: 2
  - module: attack.lua
    timeout: 1s
    background_timeout: 1s
YAML
"$work/luamods" serve -c "$work/luamods.yaml" 2>"$work/serve.log" &
pid=$!
pids+=("$pid")
for _ in $(seq 300); do curl -sf "$base/health" >/dev/null && break; sleep 0.1; done
curl -sf "$base/health" >/dev/null || { echo "soak: serve did not start"; cat "$work/serve.log"; exit 1; }

# The regular traffic: four kinds of request in turn. Every one should be 2xx.
cat >"$work/mixed.lua" <<LUA
local n, bad, kinds = 0, 0, {}
-- The requests are formatted in init: wrk.host is known only then.
function init(args)
  local event = '{"type":"m.room.message","sender":"@a:example.com","room_id":"!r:example.com","content":{"msgtype":"m.text","body":"hello there"}}'
  local text = string.rep("The quick brown fox wins a prize and jumps over the lazy dog. ", 30)
  kinds[1] = wrk.format("GET", "/_synapse/client/hello?name=soak")
  kinds[2] = wrk.format("POST", "/_synapse/client/soak/words", {["Content-Type"] = "application/json"}, '{"text":"' .. text .. '"}')
  kinds[3] = wrk.format("POST", "/_luamods/v1/invoke/spam_checker/check_event_for_spam",
    {["Authorization"] = "Bearer $token", ["Content-Type"] = "application/json"}, "[" .. event .. "]")
  kinds[4] = wrk.format("GET", "/_synapse/client/soak/square?n=7")
end
function request() n = n + 1 return kinds[n % 4 + 1] end
function response(status) if status < 200 or status > 299 then bad = bad + 1 end end
function done(summary, latency, requests)
  io.write(string.format("requests %d, non-2xx %d, socket errors %d (connect %d, read %d, write %d, timeout %d)\n",
    summary.requests, bad, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
  io.write(string.format("latency p50 %.2fms p99 %.2fms max %.2fms\n", latency:percentile(50)/1000,
    latency:percentile(99)/1000, latency.max/1000))
end
LUA

metric() { curl -s "$base/metrics" | awk -v m="$1" '$1 == m { print $2; exit }'; }
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$pid/status"; }
sample() { # second: RSS, goroutines and the Go heap in use (KB)
  printf '%6d %10s %10s %10s\n' "$1" "$(rss)" "$(metric go_goroutines)" \
    "$(metric go_memstats_heap_inuse_bytes | awk '{ printf "%d", $1 / 1024 }')" >>"$work/samples.txt"
}
echo "soak: ${secs}s, wrk -t1 -c$conns, serve pid $pid on :$port, redis on :$redis_port"
wrk -t1 -c"$conns" -d"${secs}s" --timeout 30s -s "$work/mixed.lua" "$base" >"$work/wrk.txt" &
wrk_pid=$!
pids+=("$wrk_pid")

attacks=(rep_overflow format_width gsub_expand concat json_dag unpack byte find_backtrack pcall_recursion spin
  concat_doubling sparse_array table_growth)
start=$SECONDS
next_sample=0 next_reload=5 next_attack=3 next_delete=1 reloads=0 broken=0 attacks_sent=0 attacks_odd=0
deletes=0 deletes_failed=0 redis_restarted=no
printf '%6s %10s %10s %10s\n' second rss_kb goroutines heap_kb >"$work/samples.txt"
while kill -0 "$wrk_pid" 2>/dev/null; do
  t=$((SECONDS - start))
  if [ "$t" -ge "$next_sample" ]; then
    sample "$t"
    next_sample=$((next_sample + every))
  fi
  if [ "$t" -ge "$next_reload" ]; then
    reloads=$((reloads + 1))
    if [ $((reloads % 4)) -eq 0 ]; then app broken; broken=$((broken + 1)); else app "$reloads"; fi
    kill -HUP "$pid"
    next_reload=$((next_reload + 5))
  fi
  if [ "${SOAK_ATTACKS:-1}" != 0 ] && [ "$t" -ge "$next_attack" ]; then
    name=${attacks[$((attacks_sent % ${#attacks[@]}))]}
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$base/_synapse/client/attack?a=$name" || echo 000)
    attacks_sent=$((attacks_sent + 1))
    echo "$t $name $status $(rss)" >>"$work/attacks.txt"
    want=500
    [ "$name" = sparse_array ] && want=200 # one hash entry (luaapi.MaxArrayPart)
    [ "$status" = "$want" ] || { attacks_odd=$((attacks_odd + 1)); echo "attack $name answered $status" >>"$work/odd.txt"; }
    next_attack=$((next_attack + 3))
  fi
  if [ "$t" -ge "$next_delete" ]; then
    deletes=$((deletes + 1))
    curl -sf -o /dev/null -X DELETE "$base/_synapse/client/soak/square?n=7" || deletes_failed=$((deletes_failed + 1))
    next_delete=$((next_delete + 1))
  fi
  if [ "$redis_restarted" = no ] && [ "$t" -ge $((secs / 2)) ]; then
    kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
    sleep 5
    start_redis
    redis_restarted="at ${t}s, down 5 s"
  fi
  sleep 0.2
done
wait "$wrk_pid" || true
sample "$((SECONDS - start))"

echo "== regular traffic (hello, words + api.store, invoke check_event_for_spam, cached square)"
cat "$work/wrk.txt" | grep -E "^requests|^latency"
echo "== reloads: $reloads SIGHUP, $broken of them broken (kept the previous generation)"
curl -s "$base/metrics" | grep -E '^luamods_reloads_total' || true
echo "== attacks from outside: $attacks_sent sent, $attacks_odd answered other than intended (500; sparse_array 200)"
[ -f "$work/odd.txt" ] && cat "$work/odd.txt"
curl -s "$base/metrics" | grep -E '^luamods_(state_retirements_total|memory_limit_kills_total|background_process_errors_total)\{module="attack.lua"' || true
echo "== cache invalidations (DELETE): $deletes sent, $deletes_failed failed; redis restarted $redis_restarted"
echo "== the server after the soak"
final=$(curl -s "$base/_synapse/client/soak/square?n=3")
echo "square?n=3 → $final"
kill -0 "$pid" && echo "serve still running (pid $pid)"
echo "== RSS, goroutines and Go heap in use every $every s"
cat "$work/samples.txt"
awk 'NR > 1 && $1 >= 120 { if (min == "" || $2 < min) min = $2; if ($2 > max) max = $2; if (gmin == "" || $3 < gmin) gmin = $3; if ($3 > gmax) gmax = $3 }
  END { printf "from minute 2: RSS min %d KB, max %d KB; goroutines min %d, max %d\n", min, max, gmin, gmax }' "$work/samples.txt"
[ -n "${SOAK_VERBOSE:-}" ] && { echo "== attacks: second, name, status, RSS KB after"; cat "$work/attacks.txt"; }
echo "== errors logged by serve (first 5 kinds)"
grep -o 'msg="[^"]*"' "$work/serve.log" | sort | uniq -c | sort -rn | head -5
