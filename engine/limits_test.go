package engine

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"luamods/luaapi"
)

// holdGate is a Go function modules call (host.hold()) that holds their
// state until the test releases it: calls to that state then queue.
type holdGate struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func newHoldGate() *holdGate {
	return &holdGate{entered: make(chan struct{}), release: make(chan struct{})}
}

// Hold tells the test it holds the state, and waits for open.
func (g *holdGate) Hold() {
	g.entered <- struct{}{}
	<-g.release
}

// open releases the held calls (again is a no-op).
func (g *holdGate) open() { g.once.Do(func() { close(g.release) }) }

const limitsModule = `local M = {}
local handles = {}
function M.init(api)
  api.register_test_callbacks{ run = function(cmd)
    if cmd == "hold" then host.gate:Hold() end
    if cmd == "timer" then
      handles[#handles + 1] = api.looping_background_call(function() end, 3600 * 1000)
    end
    return "done"
  end }
  api.register_web_resource("/limits", function() return {status = 200, body = "ok"} end)
end
return M`

func limitsEngine(t *testing.T, yaml string, gate *holdGate) *Engine {
	t.Helper()
	dir := writeFiles(t, map[string]string{"m.lua": limitsModule, "luamods.yaml": yaml})
	eng, err := New(context.Background(), Options{
		ConfigPath: filepath.Join(dir, "luamods.yaml"),
		Catalog:    catalogWithTestCategory(),
		Expose:     map[string]any{"gate": gate},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(eng.Close)
	t.Cleanup(gate.open) // before Close, whatever failed
	return eng
}

// waitFor polls cond until it holds, for at most a minute.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still not %s after a minute", what)
		}
	}
}

// TestQueueBoundAcrossInstances: with both states of a module held and
// their queues at max_queued_calls (the module's own, over the top level's),
// a call goes to the state with room; once neither has any, a callback
// fails at once with luaapi.ErrOverloaded (503, Retry-After: 1) and so does
// a route. Once released, every queued call completes.
func TestQueueBoundAcrossInstances(t *testing.T) {
	gate := newHoldGate()
	eng := limitsEngine(t, `max_queued_calls: 100
modules:
  - module: m.lua
    instances: 2
    timeout: 1h
    max_queued_calls: 1
`, gate)
	ctx := context.Background()
	m := eng.Current().Modules[0]
	results := make(chan error, 4)
	invoke := func(cmd string) {
		go func() {
			_, err := eng.Invoke(ctx, "test.run", cmd)
			results <- err
		}()
	}
	invoke("hold")
	<-gate.entered
	invoke("hold") // the idle state takes it
	<-gate.entered
	for i := int64(1); i <= 2; i++ { // one waits in each state's queue
		invoke("fast")
		waitFor(t, "queued", func() bool { return m.Queued() == i })
	}
	for _, s := range m.States() {
		if s.Queued() != 1 {
			t.Fatalf("queues %d and %d, want 1 and 1", m.States()[0].Queued(), m.States()[1].Queued())
		}
	}

	bounded, cancel := context.WithTimeout(ctx, time.Minute) // were it queued, it would fail, not hang
	defer cancel()
	_, err := eng.Invoke(bounded, "test.run", "fast")
	if !errors.Is(err, luaapi.ErrOverloaded) {
		t.Fatalf("Invoke past the bound: %v, want ErrOverloaded", err)
	}
	if status, body := HTTPAnswer(err); status != http.StatusServiceUnavailable || body["errcode"] != "M_LIMIT_EXCEEDED" {
		t.Fatalf("HTTPAnswer = %d %v", status, body)
	}
	if got := HTTPAnswerHeader(err).Get("Retry-After"); got != "1" {
		t.Fatalf("Retry-After = %q", got)
	}
	resp, err := eng.Serve(ctx, &WebRequest{Method: "GET", Path: "/limits"})
	if !errors.Is(err, luaapi.ErrOverloaded) || resp.Status != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
		t.Fatalf("route past the bound: %v, %d %v", err, resp.Status, resp.Header)
	}
	want := `# HELP luamods_queued_calls Calls waiting for a module's states to start them (max_queued_calls bounds each state's).
# TYPE luamods_queued_calls gauge
luamods_queued_calls{module="m.lua"} 2
# HELP luamods_refused_calls_total Calls refused at once: every state of the module had max_queued_calls waiting (queue_full), or was retired.
# TYPE luamods_refused_calls_total counter
luamods_refused_calls_total{module="m.lua",reason="queue_full"} 2
`
	if err := testutil.GatherAndCompare(eng.Registry(), strings.NewReader(want), "luamods_queued_calls", "luamods_refused_calls_total"); err != nil {
		t.Fatal(err)
	}

	gate.open()
	for range 4 {
		if err := <-results; err != nil {
			t.Fatalf("a held or queued call: %v", err)
		}
	}
	if got, err := eng.Invoke(ctx, "test.run", "fast"); err != nil || got != "done" {
		t.Fatalf("after release: %v, %v", got, err)
	}
}

// TestTimerLimitMetrics: max_timers at the top level applies to the
// module; the refused timer is counted and the live ones are a gauge.
func TestTimerLimitMetrics(t *testing.T) {
	eng := limitsEngine(t, "max_timers: 2\nmodules:\n  - module: m.lua\n", newHoldGate())
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := eng.Invoke(ctx, "test.run", "timer"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := eng.Invoke(ctx, "test.run", "timer")
	if err == nil || !strings.Contains(err.Error(), "m.lua:7: looping_background_call: module m.lua has 2 timers (max_timers)") {
		t.Fatalf("third timer: %v", err)
	}
	want := `# HELP luamods_refused_timers_total Looping and delayed background calls refused at max_timers.
# TYPE luamods_refused_timers_total counter
luamods_refused_timers_total{module="m.lua"} 1
# HELP luamods_timers Live looping and delayed background calls of a module (max_timers bounds each state's).
# TYPE luamods_timers gauge
luamods_timers{module="m.lua"} 2
`
	if err := testutil.GatherAndCompare(eng.Registry(), strings.NewReader(want), "luamods_timers", "luamods_refused_timers_total"); err != nil {
		t.Fatal(err)
	}
}

// TestWithStateTriesAnotherStateWithRoom: a call that the state first
// picked refuses (its queue filled up since) goes to another state of the
// module with room, and is not counted as refused.
func TestWithStateTriesAnotherStateWithRoom(t *testing.T) {
	gate := newHoldGate()
	eng := limitsEngine(t, "modules:\n  - module: m.lua\n    instances: 2\n    timeout: 1h\n    max_queued_calls: 1\n", gate)
	ctx := context.Background()
	m := eng.Current().Modules[0]
	full, other := m.States()[0], m.States()[1]
	results := make(chan error, 2)
	call := func(s *luaapi.State, cmd string) {
		go func() {
			_, err := s.Call(ctx, "cb:test.run", cmd)
			results <- err
		}()
	}
	call(full, "hold")
	<-gate.entered
	call(full, "fast")
	waitFor(t, "queued", func() bool { return full.Queued() == 1 })

	var tried []*luaapi.State
	// As if State had picked full before its queue filled up.
	err := m.startingWith(full, func(s *luaapi.State) error {
		tried = append(tried, s)
		_, err := s.Call(ctx, "cb:test.run", "fast")
		return err
	})
	if err != nil || len(tried) != 2 || tried[1] != other {
		t.Fatalf("startingWith: %v after %d tries (second on the other state: %v)", err, len(tried), len(tried) == 2 && tried[1] == other)
	}
	if n := testutil.ToFloat64(eng.metrics.RefusedCalls.WithLabelValues("m.lua", "queue_full")); n != 0 {
		t.Fatalf("refused calls = %v, want 0", n)
	}
	gate.open()
	for range 2 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
}
