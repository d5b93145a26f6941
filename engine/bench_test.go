package engine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func event20() map[string]any {
	return map[string]any{
		"type": "m.room.message", "sender": "@alice:example.com", "room_id": "!room:example.com",
		"event_id": "$abcdefghijklmnop", "origin_server_ts": int64(1732600000000), "depth": 12,
		"content": map[string]any{
			"msgtype": "m.text", "body": "hello world", "format": "org.matrix.custom.html",
			"formatted_body": "<b>hello</b> world", "m.mentions": map[string]any{"user_ids": []any{"@bob:example.com"}},
		},
		"unsigned": map[string]any{"age": 1234, "transaction_id": "txn1"},
		"hashes":   map[string]any{"sha256": "aGVsbG8"},
	}
}

const spamBody = `local ev = ... if ev.content.body == "buy now" then return api.errors.FORBIDDEN end return api.NOT_SPAM`

func benchEngine(b *testing.B, modules int) *Engine {
	files := map[string]string{"luamods.yaml": modulesConfig(modules)}
	for i := 1; i <= modules; i++ {
		files[fmt.Sprintf("m%d.lua", i)] = moduleSource(reg{"spam_checker", "check_event_for_spam", spamBody})
	}
	eng, _, err := startEngine(b, files)
	if err != nil {
		b.Fatal(err)
	}
	return eng
}

// BenchmarkCheckEventForSpam runs check_event_for_spam on a chain of 1 and
// 5 modules that all allow (so every module runs).
func BenchmarkCheckEventForSpam(b *testing.B) {
	for _, n := range []int{1, 5} {
		b.Run(fmt.Sprintf("modules=%d", n), func(b *testing.B) {
			eng := benchEngine(b, n)
			ev := event20()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				res, err := eng.Invoke(ctx, "spam_checker.check_event_for_spam", ev)
				if err != nil || res != "NOT_SPAM" {
					b.Fatal(res, err)
				}
			}
		})
	}
}

// BenchmarkCatalogOverhead compares Invoke on one module with calling the
// module's state directly (what the catalog adds: lookup, combiner,
// metrics, generation hold).
func BenchmarkCatalogOverhead(b *testing.B) {
	eng := benchEngine(b, 1)
	ev := event20()
	ctx := context.Background()
	b.Run("invoke", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := eng.Invoke(ctx, "spam_checker.check_event_for_spam", ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("state", func(b *testing.B) {
		s := eng.Current().Modules[0].State()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Call(ctx, "cb:spam_checker.check_event_for_spam", ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

const cacheBenchModule = `local M = {}
function M.init(api)
  local function plain(k) return k end
  local scalar = api.cached(function(k) return k end)
  local big = api.cached(function(k)
    local t = {}
    for i = 1, 20 do t["field" .. i] = i end
    return t
  end)
  local miss = api.cached(function(k) return k end, {max_entries = 1})
  api.register_test_callbacks{ run = function(cmd, n)
    local f = ({plain = plain, scalar = scalar, big = big, miss = miss})[cmd]
    local r
    if cmd == "miss" then
      for i = 1, n do r = f(i) end  -- every key new: a miss each time
    else
      for i = 1, n do r = f("key") end
    end
    return nil
  end }
end
return M`

// BenchmarkCachedFunction calls a memoized function from Lua, 1000 times per
// op: a hit with a scalar value, a hit with a 20-field table, a miss, and
// the same plain Lua function without caching (ns/op ÷ 1000 = per call).
func BenchmarkCachedFunction(b *testing.B) {
	eng, _, err := startEngine(b, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n",
		"m1.lua":       cacheBenchModule,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for _, kind := range []string{"plain", "scalar", "big", "miss"} {
		b.Run(kind, func(b *testing.B) {
			if _, err := eng.Invoke(ctx, "test.run", kind, 1); err != nil { // warm
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := eng.Invoke(ctx, "test.run", kind, 1000); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkReload reloads a configuration of N modules of which one changed
// (the others are carried over) and, separately, with all of them changed.
func BenchmarkReload(b *testing.B) {
	for _, n := range []int{1, 20, 100} {
		for _, all := range []bool{false, true} {
			name := fmt.Sprintf("modules=%d/changed=one", n)
			if all {
				name = fmt.Sprintf("modules=%d/changed=all", n)
			}
			b.Run(name, func(b *testing.B) {
				files := map[string]string{"luamods.yaml": modulesConfig(n)}
				for i := 1; i <= n; i++ {
					files[fmt.Sprintf("m%d.lua", i)] = moduleSource(reg{"spam_checker", "check_event_for_spam", spamBody})
				}
				eng, _, err := startEngine(b, files)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				version := 0
				for b.Loop() {
					version++
					for i := 1; i <= n; i++ {
						if all || i == 1 {
							rewrite(b, eng, fmt.Sprintf("m%d.lua", i), strings.Replace(files[fmt.Sprintf("m%d.lua", i)], "buy now", fmt.Sprintf("buy now %d", version), 1))
						}
					}
					if _, err := eng.Reload(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRouteCounter is the request counter of a served request:
// looked up in the vector by its labels, or in the route's own map.
func BenchmarkRouteCounter(b *testing.B) {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "requests"}, []string{"route", "method", "code"})
	b.Run("WithLabelValues", func(b *testing.B) {
		for b.Loop() {
			vec.WithLabelValues("/_synapse/client/hello", "GET", strconv.Itoa(200)).Inc()
		}
	})
	b.Run("route", func(b *testing.B) {
		var rr routeRequests
		for b.Loop() {
			rr.counter(vec, "/_synapse/client/hello", "GET", 200).Inc()
		}
	})
}
