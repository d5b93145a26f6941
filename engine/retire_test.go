package engine

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
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
