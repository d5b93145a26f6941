package luaapi

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"luamods/internal/logbuf"
)

// recordingClock records the delays of the timers set on it and fires
// them only when the test says so. Call deadlines (an hour here) are set
// on it too: it ignores those.
type recordingClock struct {
	RealClock
	mu     sync.Mutex
	delays []time.Duration
	fns    []func()
}

const recordingDeadline = time.Hour

func (c *recordingClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d < recordingDeadline {
		c.delays = append(c.delays, d)
		c.fns = append(c.fns, f)
	}
	return func() bool { return true }
}

func (c *recordingClock) recorded() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.delays...)
}

// fire runs the i-th timer set.
func (c *recordingClock) fire(i int) {
	c.mu.Lock()
	f := c.fns[i]
	c.mu.Unlock()
	f()
}

const timersModule = `local M = {}
local api
local handles = {}
function M.init(a) api = a
  a.register_spam_checker_callbacks{ run = function(kind, msec)
    if kind == "loop" then
      handles[#handles + 1] = api.looping_background_call(function() end, msec)
    elseif kind == "later" then
      handles[#handles + 1] = api.delayed_background_call(msec, function() end)
    elseif kind == "stop" then
      table.remove(handles, 1):stop()
    end
  end }
end
return M`

func newTimersState(t *testing.T, limits Limits, env *Env) (*State, *recordingClock) {
	t.Helper()
	clock := &recordingClock{}
	env.Clock = clock
	s, _ := newTestStateOptions(t, timersModule, Options{Timeout: recordingDeadline, BackgroundTimeout: recordingDeadline, Limits: limits, Env: env})
	return s, clock
}

// TestMaxTimers: past max_timers a new timer is a Lua error at the
// caller's line naming the limit; a stopped timer and a fired delayed call
// free their slots.
func TestMaxTimers(t *testing.T) {
	var refused atomic.Int32
	s, clock := newTimersState(t, Limits{MaxTimers: 3}, &Env{OnTimerRefused: func() { refused.Add(1) }})
	ctx := context.Background()
	run := func(kind string, msec int) error {
		_, err := s.Call(ctx, "cb:spam_checker.run", kind, msec)
		return err
	}
	for _, kind := range []string{"loop", "loop", "later"} {
		if err := run(kind, 1000); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	if got := s.Timers(); got != 3 {
		t.Fatalf("Timers() = %d, want 3", got)
	}
	for kind, want := range map[string]string{
		"loop":  "test.lua:7: looping_background_call: module test has 3 timers (max_timers)",
		"later": "test.lua:9: delayed_background_call: module test has 3 timers (max_timers)",
	} {
		err := run(kind, 1000)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s past the limit: %v, want an error containing %q", kind, err, want)
		}
	}
	if refused.Load() != 2 || s.Timers() != 3 {
		t.Fatalf("refused %d, live %d; want 2 and 3", refused.Load(), s.Timers())
	}

	if err := run("stop", 0); err != nil { // the first loop
		t.Fatal(err)
	}
	if got := s.Timers(); got != 2 {
		t.Fatalf("after stop: Timers() = %d, want 2", got)
	}
	if err := run("loop", 1000); err != nil {
		t.Fatalf("a stopped timer's slot: %v", err)
	}

	clock.fire(2) // the delayed call runs once, and frees its slot
	if !s.Sync(ctx) {
		t.Fatal("state closed")
	}
	if got := s.Timers(); got != 2 {
		t.Fatalf("after the delayed call ran: Timers() = %d, want 2", got)
	}
	if err := run("later", 1000); err != nil {
		t.Fatalf("a fired delayed call's slot: %v", err)
	}
}

// TestMinTimerInterval: a looping interval or a delay below
// min_timer_interval is raised to it; the looping call's call site is
// warned about once.
func TestMinTimerInterval(t *testing.T) {
	var log logbuf.Buffer
	s, clock := newTimersState(t, Limits{MinTimerInterval: 25 * time.Millisecond},
		&Env{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	for _, c := range []struct {
		kind string
		msec float64
	}{{"loop", 1}, {"loop", 0.001}, {"loop", 50}, {"later", 0}, {"later", 5}, {"later", 30}} {
		if _, err := s.Call(context.Background(), "cb:spam_checker.run", c.kind, c.msec); err != nil {
			t.Fatalf("%s %v: %v", c.kind, c.msec, err)
		}
	}
	want := []time.Duration{25 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		25 * time.Millisecond, 25 * time.Millisecond, 30 * time.Millisecond}
	if got := clock.recorded(); !slices.Equal(got, want) {
		t.Fatalf("delays = %v, want %v", got, want)
	}
	warning := "looping_background_call: interval raised to min_timer_interval"
	if n := strings.Count(log.String(), warning); n != 1 || !strings.Contains(log.String(), "where=test.lua:7") {
		t.Fatalf("want one warning naming test.lua:7, got %d in:\n%s", n, log.String())
	}
}

// blockingGate is a Go function a module calls (host.block()) that holds
// the state until the test releases it.
type blockingGate struct {
	entered chan struct{}
	release chan struct{}
}

func (g *blockingGate) block() {
	g.entered <- struct{}{}
	<-g.release
}

// eventually polls cond until it holds, for at most a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(time.Minute); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("still not %s after a minute", what)
		}
	}
}

// TestMaxQueuedCalls: while a call holds the state, calls queue up to
// max_queued_calls; the next one fails at once with ErrOverloaded and
// nothing of it runs. Once the state is free, every queued call completes.
// Calls that started and wait on Go (here api.sleep) are not queued.
func TestMaxQueuedCalls(t *testing.T) {
	const limit = 3
	gate := &blockingGate{entered: make(chan struct{}), release: make(chan struct{})}
	clock := &recordingClock{} // api.sleep waits until the test fires it
	var releaseOnce sync.Once
	release := func() { releaseOnce.Do(func() { close(gate.release) }) }
	s, _ := newTestStateOptions(t, apiModule(`
    local kind = ...
    if kind == "block" then host.block() end
    if kind == "sleep" then api.sleep(1) end
    ran = (ran or 0) + 1
    return ran`), Options{Timeout: recordingDeadline, Limits: Limits{MaxQueuedCalls: limit},
		Env: &Env{Clock: clock, Expose: map[string]any{"block": gate.block}}})
	t.Cleanup(release) // before the state closes, whatever failed
	ctx := context.Background()

	// Calls waiting on Go are in flight, not queued: more of them than the
	// bound do not stop the next call.
	sleepers := make(chan error, 2*limit)
	for i := range 2 * limit { // one at a time: together they would queue
		go func() {
			_, err := s.Call(ctx, "cb:spam_checker.run", "sleep")
			sleepers <- err
		}()
		eventually(t, "sleeping", func() bool { return len(clock.recorded()) == i+1 })
	}
	if q := s.Queued(); q != 0 {
		t.Fatalf("Queued() = %d while every call sleeps, want 0", q)
	}

	blocked := make(chan error, 1)
	go func() {
		_, err := s.Call(ctx, "cb:spam_checker.run", "block")
		blocked <- err
	}()
	<-gate.entered // the state is held: what comes next queues
	queued := make(chan error, limit)
	for range limit {
		go func() {
			_, err := s.Call(ctx, "cb:spam_checker.run", "fast")
			queued <- err
		}()
	}
	eventually(t, "queued to the bound", func() bool { return s.Queued() == limit })
	if s.HasRoom() {
		t.Fatal("HasRoom() with a full queue")
	}
	bounded, cancel := context.WithTimeout(ctx, time.Minute) // were it queued, it would fail, not hang
	defer cancel()
	_, err := s.Call(bounded, "cb:spam_checker.run", "fast")
	if !errors.Is(err, ErrOverloaded) || !strings.Contains(err.Error(), "module test") || !strings.Contains(err.Error(), "max_queued_calls") {
		t.Fatalf("past the bound: %v, want ErrOverloaded naming the module and max_queued_calls", err)
	}
	if q := s.Queued(); q != limit {
		t.Fatalf("Queued() = %d after a refusal, want %d", q, limit)
	}

	release()
	for i := range 2 * limit {
		clock.fire(i)
	}
	for range limit {
		if err := <-queued; err != nil {
			t.Fatalf("queued call: %v", err)
		}
	}
	for range 2 * limit {
		if err := <-sleepers; err != nil {
			t.Fatalf("sleeping call: %v", err)
		}
	}
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	got, err := s.Call(ctx, "cb:spam_checker.run", "fast")
	if err != nil || got[0] != int64(3*limit+2) { // every call but the refused one ran
		t.Fatalf("after: %v, %v; want %d runs", got, err, 3*limit+2)
	}
	if s.Queued() != 0 || s.Inflight() != 0 {
		t.Fatalf("after: queued %d, in flight %d", s.Queued(), s.Inflight())
	}
}
