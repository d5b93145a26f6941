package engine

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestMemoryGovernorFailsCallsInFlight: with the heap over the limit (here
// a limit of one byte), the call running in a module fails with "memory
// limit exceeded" naming the module, and the module answers again after its
// state is rebuilt.
func TestMemoryGovernorFailsCallsInFlight(t *testing.T) {
	eng, _, err := startEngine(t, map[string]string{
		"luamods.yaml": "modules:\n  - module: m.lua\n    timeout: 1h\n",
		"m.lua": `local M = {}
function M.init(api)
  api.register_spam_checker_callbacks{ user_may_invite = function(inviter)
    if inviter == "spin" then while true do end end
    return "NOT_SPAM"
  end }
end
return M`,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m := eng.Current().Modules[0]
	old := m.States()[0]
	done := make(chan error, 1)
	go func() {
		_, err := eng.Invoke(ctx, "spam_checker.user_may_invite", "spin", "@b:x", "!r:x")
		done <- err
	}()
	for old.Inflight() == 0 {
		time.Sleep(time.Millisecond)
	}
	govern, stop := context.WithCancel(ctx)
	defer stop()
	go eng.GovernMemory(govern, 1, time.Millisecond)
	if err := <-done; err == nil || !strings.Contains(err.Error(), "memory limit exceeded (module m.lua") {
		t.Fatalf("err = %v, want memory limit exceeded naming the module", err)
	}
	stop()
	for m.States()[0] == old {
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := eng.Invoke(ctx, "spam_checker.user_may_invite", "@a:x", "@b:x", "!r:x"); err != nil || got != "NOT_SPAM" {
		t.Fatalf("after the rebuild: %v, %v", got, err)
	}
	if n := metricValue(t, eng, "luamods_memory_limit_kills_total", "module", "m.lua"); n < 1 {
		t.Errorf("luamods_memory_limit_kills_total = %v", n)
	}
}
