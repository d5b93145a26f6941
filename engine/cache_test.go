package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// cachedModule memoizes get(key): it counts its runs in runs[key], sleeps
// config.delay seconds, and fails for keys starting with "fail".
const cachedModule = `local M = {}
runs = {}
function M.init(api, config)
  local get = api.cached(function(key)
    runs[key] = (runs[key] or 0) + 1
    if config.delay then api.sleep(config.delay) end
    if string.sub(key, 1, 4) == "fail" then error("no value for " .. key) end
    if key == "fn" then return print end
    if key == "nil" then return nil end
    return {key = key, n = runs[key]}
  end, {max_entries = 100, ttl = config.ttl})
  api.register_cached_function(get)
  api.register_test_callbacks{
    run = function(cmd, key)
      if cmd == "get" then return get(key)
      elseif cmd == "runs" then return runs[key] or 0
      elseif cmd == "invalidate" then get:invalidate({key}) return true
      elseif cmd == "everywhere" then api.invalidate_cache(get, {key}) return true
      elseif cmd == "all" then get:invalidate_all() return true
      elseif cmd == "prefill" then get:prefill({key}, "prefilled") return true
      end
    end,
  }
end
return M`

// metricValue reads the counter or gauge name whose label has the value.
func metricValue(t *testing.T, e *Engine, name, label, value string) float64 {
	t.Helper()
	families, err := e.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					if m.GetCounter() != nil {
						return m.GetCounter().GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return -1
}

func cacheCall(t *testing.T, e *Engine, args ...any) any {
	t.Helper()
	res, err := e.Invoke(context.Background(), "test.run", args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCachedFunctionFromLua(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n    config: {delay: 0.05}\n",
		"m1.lua":       cachedModule,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// 100 concurrent misses on one state: one run.
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := eng.Invoke(ctx, "test.run", "get", "alice")
			if err != nil || res.(map[string]any)["n"] != int64(1) {
				t.Errorf("got %v, %v", res, err)
			}
		}()
	}
	wg.Wait()
	if runs := cacheCall(t, eng, "runs", "alice"); runs != int64(1) {
		t.Fatalf("100 concurrent misses ran the function %v times", runs)
	}
	// Hits and misses are metrics.
	if c := eng.Current().Modules[0].Caches().Caches()["m1.lua/m1.lua:4"]; c == nil || c.Len() != 1 {
		t.Errorf("cache m1.lua/m1.lua:4 = %v", c)
	}
	// Callers that arrived during the computation count as misses, later
	// ones as hits: how many of each depends on scheduling, their sum not.
	hits0 := metricValue(t, eng, "luamods_cache_hits_total", "cache", "m1.lua/m1.lua:4")
	misses0 := metricValue(t, eng, "luamods_cache_misses_total", "cache", "m1.lua/m1.lua:4")
	if hits0+misses0 != 100 || misses0 < 1 {
		t.Errorf("hits, misses = %v, %v; want 100 in all, at least one miss", hits0, misses0)
	}
	cacheCall(t, eng, "get", "alice")
	hits := metricValue(t, eng, "luamods_cache_hits_total", "cache", "m1.lua/m1.lua:4")
	misses := metricValue(t, eng, "luamods_cache_misses_total", "cache", "m1.lua/m1.lua:4")
	if hits != hits0+1 || misses != misses0 {
		t.Errorf("after one more call: hits, misses = %v, %v; want %v and %v", hits, misses, hits0+1, misses0)
	}
	// Errors are not cached and reach the caller.
	for i := 0; i < 2; i++ {
		_, err := eng.Invoke(ctx, "test.run", "get", "fail1")
		if err == nil || !strings.Contains(err.Error(), "m1.lua:7: no value for fail1") {
			t.Fatalf("err = %v", err)
		}
	}
	if runs := cacheCall(t, eng, "runs", "fail1"); runs != int64(2) {
		t.Fatalf("a failure was cached: %v runs", runs)
	}
	// A cached nil is a value; a function is refused, naming the function.
	cacheCall(t, eng, "get", "nil")
	cacheCall(t, eng, "get", "nil")
	if runs := cacheCall(t, eng, "runs", "nil"); runs != int64(1) {
		t.Fatalf("nil not cached: %v runs", runs)
	}
	if _, err := eng.Invoke(ctx, "test.run", "get", "fn"); err == nil || !strings.Contains(err.Error(), "m1.lua:4: result cannot be cached") {
		t.Fatalf("function value: %v", err)
	}
	// invalidate, prefill, invalidate_all.
	cacheCall(t, eng, "invalidate", "alice")
	if got := cacheCall(t, eng, "get", "alice").(map[string]any)["n"]; got != int64(2) {
		t.Fatalf("after invalidate n = %v", got)
	}
	cacheCall(t, eng, "prefill", "bob")
	if got := cacheCall(t, eng, "get", "bob"); got != "prefilled" {
		t.Fatalf("prefill: %v", got)
	}
	cacheCall(t, eng, "all")
	if got := cacheCall(t, eng, "get", "bob"); got.(map[string]any)["n"] != int64(1) {
		t.Fatalf("after invalidate_all: %v", got)
	}
}

func TestInvalidateDuringComputation(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n    config: {delay: 0.2}\n",
		"m1.lua":       cachedModule,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan any)
	go func() {
		res, _ := eng.Invoke(context.Background(), "test.run", "get", "k")
		done <- res
	}()
	time.Sleep(50 * time.Millisecond)
	cacheCall(t, eng, "invalidate", "k")
	if res := <-done; res.(map[string]any)["n"] != int64(1) {
		t.Fatalf("computation result = %v", res)
	}
	if got := cacheCall(t, eng, "get", "k").(map[string]any)["n"]; got != int64(2) {
		t.Fatalf("a result computed across an invalidation was stored (n = %v)", got)
	}
}

func TestCacheSharedByInstances(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n    instances: 3\n    config: {delay: 0.05}\n",
		"m1.lua":       cachedModule,
	})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); cacheCall(t, eng, "get", "shared") }()
	}
	wg.Wait()
	total := int64(0)
	for i := 0; i < 3; i++ { // each state counts its own runs: round robin visits all three
		total += cacheCall(t, eng, "runs", "shared").(int64)
	}
	if total != 1 {
		t.Fatalf("three instances ran the function %d times in all", total)
	}
}

func TestInvalidationReachesAnotherEngineThroughRedis(t *testing.T) {
	rs := startRedis(t)
	port := rs.port
	config := fmt.Sprintf("cache: {redis: {addr: '127.0.0.1:%d', channel: t}}\nmodules:\n  - module: m1.lua\n", port)
	files := map[string]string{"luamods.yaml": config, "m1.lua": cachedModule}
	a, _, err := startEngine(t, files)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := startEngine(t, files)
	if err != nil {
		t.Fatal(err)
	}
	// fanOut invalidates key on a until b computes it afresh.
	fanOut := func(key string) {
		t.Helper()
		cacheCall(t, a, "get", key)
		before := cacheCall(t, b, "get", key).(map[string]any)["n"].(int64)
		deadline := time.Now().Add(15 * time.Second)
		for {
			// Subscriptions are asynchronous: invalidate until b sees one.
			cacheCall(t, a, "everywhere", key)
			time.Sleep(50 * time.Millisecond)
			if got := cacheCall(t, b, "get", key).(map[string]any)["n"]; got != before {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("engine b never saw engine a's invalidation of %s", key)
			}
		}
	}
	fanOut("dept")

	rs.stop()
	// Without Redis both keep serving, and local invalidation works.
	cacheCall(t, a, "get", "down")
	cacheCall(t, a, "everywhere", "down")
	if got := cacheCall(t, a, "get", "down").(map[string]any)["n"]; got != int64(2) {
		t.Fatalf("local invalidation while Redis is down: n = %v", got)
	}
	cacheCall(t, b, "get", "down")
	if errs := metricValue(t, a, "luamods_cache_fanout_errors_total", "op", "publish"); errs < 1 {
		t.Errorf("publish failures not counted: %v", errs)
	}

	rs.start(t)
	fanOut("after-restart")
}
