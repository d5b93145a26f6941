package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
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

// gate is what a test module's init asks whether it may start: closed, it
// raises an error, and counts the refusal.
type gate struct {
	mu      sync.Mutex
	closed  bool
	refused int
}

// Check fails while the gate is closed.
func (g *gate) Check() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		g.refused++
		return errors.New("gate closed")
	}
	return nil
}

func (g *gate) set(closed bool) (refused int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closed = closed
	return g.refused
}

// TestARetiredStateIsReplacedOnceAFreshOneCanStart: a fresh state whose
// init fails (here: a gate the host closed; under serve: the memory
// governor while the old state's memory is still being collected) is tried
// again until one starts, instead of leaving the module with nothing but a
// retired state until the next reload.
func TestARetiredStateIsReplacedOnceAFreshOneCanStart(t *testing.T) {
	g := &gate{}
	dir := writeFiles(t, map[string]string{"m.lua": `local M = {}
function M.init(api)
  local err = host.gate:Check()
  if err ~= nil then error(err:Error()) end
  api.register_test_callbacks{ run = function() return "alive" end }
end
return M`})
	eng, err := New(context.Background(), Options{
		Config:  &Config{Modules: []ModuleConfig{{Module: filepath.Join(dir, "m.lua")}}},
		Catalog: catalogWithTestCategory(),
		Expose:  map[string]any{"gate": g},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	ctx := context.Background()
	m := eng.Current().Modules[0]
	old := m.States()[0]
	g.set(true)
	old.FailCalls(errors.New("test: retired"))
	for g.set(true) < 2 { // two fresh states failed to start
		time.Sleep(time.Millisecond)
	}
	if _, err := eng.Invoke(ctx, "test.run"); err == nil || !strings.Contains(err.Error(), "test: retired") {
		t.Fatalf("while no fresh state starts: %v, want the retired state's error", err)
	}
	g.set(false)
	for m.States()[0] == old {
		time.Sleep(time.Millisecond)
	}
	if got, err := eng.Invoke(ctx, "test.run"); err != nil || got != "alive" {
		t.Fatalf("after the gate opened: %v, %v", got, err)
	}
}
