package engine

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"luamods/luaapi"
)

// TestLimitsConfig: the top-level limits apply to every module that does
// not set its own; bad values are errors at their YAML path.
func TestLimitsConfig(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.lua": "return {init = function() end}", "b.lua": "return {init = function() end}"})
	for _, c := range []struct {
		name, yaml string
		want       []luaapi.Limits // per module
		err        string
	}{
		{"defaults", "modules:\n  - module: a.lua\n", []luaapi.Limits{{}}, ""},
		{"top level and override",
			"max_timers: 8\nmin_timer_interval: 50ms\nmax_queued_calls: 20\nmodules:\n  - module: a.lua\n  - module: b.lua\n    max_timers: 2\n    max_queued_calls: 3\n    min_timer_interval: 1s\n",
			[]luaapi.Limits{{MaxTimers: 8, MinTimerInterval: 50 * time.Millisecond, MaxQueuedCalls: 20}, {MaxTimers: 2, MinTimerInterval: time.Second, MaxQueuedCalls: 3}}, ""},
		{"zero timers", "modules:\n  - module: a.lua\n    max_timers: 0\n", nil,
			"Error in configuration at 'modules.<item 0>.max_timers': expected a whole number of at least 1"},
		{"bad queue", "max_queued_calls: lots\nmodules: []\n", nil,
			"Error in configuration at 'max_queued_calls': expected a whole number of at least 1"},
		{"bad interval", "modules:\n  - module: a.lua\n    min_timer_interval: -5ms\n", nil,
			"Error in configuration at 'modules.<item 0>.min_timer_interval': expected a duration"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig(filepath.Join(dir, "luamods.yaml"), []byte(c.yaml))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range c.want {
				if got := cfg.Modules[i].Limits; got != want {
					t.Errorf("module %d: %+v, want %+v", i, got, want)
				}
			}
		})
	}
}
