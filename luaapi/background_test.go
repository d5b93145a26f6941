package luaapi

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// observed records background processes as an engine would.
type observed struct {
	mu     sync.Mutex
	starts map[string]int
	ends   chan error
}

func (o *observed) Start(desc string) func(error) {
	o.mu.Lock()
	o.starts[desc]++
	o.mu.Unlock()
	return func(err error) { o.ends <- err }
}

// napModule's run(nap, n) starts a background process that sleeps nap
// seconds, then adds n to naps; run() returns naps.
const napModule = `local nap, n = ...
    if nap == nil then return naps end
    api.run_as_background_process("nap", function(seconds, n)
      api.sleep(seconds)
      naps = (naps or 0) + n
    end, nap, n)
    return "started"`

func backgroundState(t *testing.T, timeout, background time.Duration, obs *observed) *State {
	t.Helper()
	return backgroundModuleState(t, napModule, timeout, background, obs)
}

// backgroundModuleState loads body as the spam_checker callback "run" of a
// module with the given call and background timeouts, reporting its
// background processes to obs.
func backgroundModuleState(t *testing.T, body string, timeout, background time.Duration, obs *observed) *State {
	t.Helper()
	s, err := NewState(Options{Module: "bg", Sandbox: true, Timeout: timeout, BackgroundTimeout: background,
		Env: &Env{Catalog: testCatalog{"spam_checker"}, Background: obs}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	proto, err := Compile(apiModule(body), "bg.lua")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Load(ctx, &Chunk{proto: proto}); err != nil {
		t.Fatal(err)
	}
	if err := s.Init(ctx, &recorder{}); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestRunAsBackgroundProcessOutlivesTheCallTimeout(t *testing.T) {
	obs := &observed{starts: map[string]int{}, ends: make(chan error, 1)}
	s := backgroundState(t, 50*time.Millisecond, time.Minute, obs)
	got, err := s.Call(context.Background(), "cb:spam_checker.run", 0.2, 7)
	if err != nil || got[0] != "started" {
		t.Fatalf("the caller waited or failed: %v %v", got, err)
	}
	select {
	case err := <-obs.ends:
		if err != nil {
			t.Fatalf("a background process sleeping 200 ms under a 50 ms call timeout failed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the background process never ended")
	}
	if obs.starts["nap"] != 1 {
		t.Errorf("starts by desc: %v", obs.starts)
	}
	got, err = s.Call(context.Background(), "cb:spam_checker.run")
	if err != nil || got[0] != int64(7) {
		t.Errorf("the process's work is not visible: %v %v", got, err)
	}
}

func TestBackgroundTimeoutBindsBackgroundProcesses(t *testing.T) {
	obs := &observed{starts: map[string]int{}, ends: make(chan error, 1)}
	s := backgroundState(t, time.Minute, 100*time.Millisecond, obs)
	if _, err := s.Call(context.Background(), "cb:spam_checker.run", 3600, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-obs.ends:
		if !errors.Is(err, context.DeadlineExceeded) && (err == nil || !strings.Contains(err.Error(), "deadline exceeded")) {
			t.Fatalf("want a deadline error, got %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("background_timeout did not stop the process")
	}
}

// TestASpinningBackgroundCallIsStoppedAtTheCallTimeout: a background call
// that runs without waiting for longer than the module's call timeout is
// stopped, instead of holding the state (and every call of its module)
// until background_timeout; the module answers again.
func TestASpinningBackgroundCallIsStoppedAtTheCallTimeout(t *testing.T) {
	obs := &observed{starts: map[string]int{}, ends: make(chan error, 1)}
	s := backgroundModuleState(t, `if ... == "spin" then
      api.run_as_background_process("spin", function() api.sleep(0.01) while true do end end)
      return "started"
    end
    return "alive"`, 100*time.Millisecond, time.Hour, obs)
	ctx := context.Background()
	if got, err := s.Call(ctx, "cb:spam_checker.run", "spin"); err != nil || got[0] != "started" {
		t.Fatalf("start: %v %v", got, err)
	}
	select {
	case err := <-obs.ends:
		if err == nil || !strings.Contains(err.Error(), "without waiting") {
			t.Fatalf("the spinning background call ended with %v", err)
		}
	case <-time.After(2 * time.Minute): // a guard against a hang, not a judgement of speed
		t.Fatal("the spinning background call was not stopped")
	}
	if got, err := s.Call(ctx, "cb:spam_checker.run"); err != nil || got[0] != "alive" {
		t.Fatalf("after the spin: %v %v", got, err)
	}
}
