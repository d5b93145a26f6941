package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const metricsModule = `local M = {}
function M.init(api)
  local seen = api.metrics.counter("events_seen_total", "Events checked", {"type"})
  local depth = api.metrics.gauge("queue_depth", "Items waiting")
  local took = api.metrics.histogram("lookup_seconds", "Lookup time", {}, {0.1, 1})
  api.register_test_callbacks{ run = function(cmd, arg)
    if cmd == "event" then seen:inc({type = arg}) end
    if cmd == "depth" then depth:set(arg) depth:inc() depth:dec(2) end
    if cmd == "took" then took:observe(arg) end
    if cmd == "bad-label" then seen:inc() end
    if cmd == "negative" then seen:add(-1, {type = "x"}) end
    if cmd == "set-counter" then seen:set(1, {type = "x"}) end
  end }
end
return M`

func TestModuleMetrics(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m1.lua\n",
		"m1.lua":       metricsModule,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, args := range [][]any{{"event", "m.room.message"}, {"event", "m.room.message"}, {"event", "m.reaction"}, {"depth", 5}, {"took", 0.5}} {
		if _, err := eng.Invoke(ctx, "test.run", args...); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP luamods_module_events_seen_total Events checked
# TYPE luamods_module_events_seen_total counter
luamods_module_events_seen_total{module="m1.lua",type="m.reaction"} 1
luamods_module_events_seen_total{module="m1.lua",type="m.room.message"} 2
# HELP luamods_module_queue_depth Items waiting
# TYPE luamods_module_queue_depth gauge
luamods_module_queue_depth{module="m1.lua"} 4
`
	if err := testutil.GatherAndCompare(eng.Registry(), strings.NewReader(want), "luamods_module_events_seen_total", "luamods_module_queue_depth"); err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(eng.Registry(), "luamods_module_lookup_seconds"); err != nil || n != 1 {
		t.Fatalf("histogram series = %d, %v", n, err)
	}
	for cmd, want := range map[string]string{
		"bad-label":   `label "type" needs a value`,
		"negative":    "a counter only goes up",
		"set-counter": "only a gauge can be set",
	} {
		if _, err := eng.Invoke(ctx, "test.run", cmd); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", cmd, err)
		}
	}
	// A reload of the changed module defines the same metrics again: no clash.
	rewrite(t, eng, "m1.lua", metricsModule+"\n-- changed\n")
	if _, err := eng.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Invoke(ctx, "test.run", "event", "m.room.message"); err != nil {
		t.Fatal(err)
	}
	// Another kind under the same name is refused at the defining line.
	rewrite(t, eng, "m1.lua", strings.Replace(metricsModule, `api.metrics.gauge("queue_depth"`, `api.metrics.counter("queue_depth"`, 1))
	if _, err := eng.Reload(ctx); err == nil || !strings.Contains(err.Error(), "luamods_module_queue_depth is already defined as a gauge") {
		t.Fatalf("kind clash: %v", err)
	}
}

func TestBackgroundProcessMetricsAndTimeout(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: bg.lua\n    timeout: 1s\n    background_timeout: 20m\n",
		"bg.lua": `local M = {}
function M.init(api)
  api.register_test_callbacks{ run = function(fail)
    api.run_as_background_process("sync_rooms", function()
      if fail then error("no luck") end
    end)
  end }
end
return M`,
	})
	if err != nil {
		t.Fatal(err)
	}
	gen, release := eng.Acquire()
	bt := gen.Modules[0].Config.BackgroundTimeout
	release()
	if bt != 20*time.Minute {
		t.Errorf("background_timeout: %v", bt)
	}
	ctx := context.Background()
	for _, fail := range []bool{false, false, true} {
		if _, err := eng.Invoke(ctx, "test.run", fail); err != nil {
			t.Fatal(err)
		}
	}
	want := `
# HELP luamods_background_process_errors_total Background processes that raised an error or timed out.
# TYPE luamods_background_process_errors_total counter
luamods_background_process_errors_total{desc="sync_rooms",module="bg.lua"} 1
# HELP luamods_background_process_start_total Background processes started, by description.
# TYPE luamods_background_process_start_total counter
luamods_background_process_start_total{desc="sync_rooms",module="bg.lua"} 3
`
	names := []string{"luamods_background_process_start_total", "luamods_background_process_errors_total"}
	// The processes run after their callers return: wait for them to be counted.
	deadline := time.Now().Add(30 * time.Second)
	for testutil.GatherAndCompare(eng.Registry(), strings.NewReader(want), names...) != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := testutil.GatherAndCompare(eng.Registry(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
}
