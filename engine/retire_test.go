package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"luamods/luaapi"
)

// TestRetiredStateIsRebuilt: a retired state takes no calls; the engine
// starts a fresh one in its place (init runs again), counts it, and the
// module answers again.
func TestRetiredStateIsRebuilt(t *testing.T) {
	eng, logs, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m.lua\n",
		"m.lua": `local M = {}
local inits = 0
function M.init(api)
  inits = inits + 1
  api.register_spam_checker_callbacks{ user_may_invite = function() return inits == 1 and "NOT_SPAM" or "M_FORBIDDEN" end }
end
return M`,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := eng.Current().Modules[0]
	old := m.States()[0]
	old.Retire("test")
	if _, err := old.Call(ctx, "cb:spam_checker.user_may_invite"); !errors.Is(err, luaapi.ErrRetired) {
		t.Fatalf("the retired state took a call: %v", err)
	}
	for m.States()[0] == old { // the rebuild runs on a goroutine of its own
		time.Sleep(5 * time.Millisecond)
	}
	// A fresh state: its globals start over, so inits is 1 again.
	if got, err := eng.Invoke(ctx, "spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x"); err != nil || got != "NOT_SPAM" {
		t.Fatalf("after the rebuild: %v, %v", got, err)
	}
	if n := metricValue(t, eng, "luamods_state_retirements_total", "module", "m.lua"); n != 1 {
		t.Errorf("luamods_state_retirements_total = %v, want 1", n)
	}
	if !strings.Contains(logs.String(), "module state retired; starting a fresh one") {
		t.Errorf("no log line: %s", logs.String())
	}
}
