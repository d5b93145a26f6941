package luaapi

import (
	"errors"
	"fmt"
	"time"
)

// Limits bound what one state of a module may hold at once
// (docs/operations.md, "Limits"). A zero field means its default.
type Limits struct {
	// MaxTimers bounds the live looping and delayed background calls of a
	// state (max_timers); past it, starting one raises a Lua error.
	MaxTimers int
	// MinTimerInterval is the shortest interval of a looping call and the
	// shortest delay of a delayed one (min_timer_interval): shorter ones
	// are raised to it.
	MinTimerInterval time.Duration
	// MaxQueuedCalls bounds the calls waiting for the state to start them
	// (max_queued_calls); past it, a call fails at once with ErrOverloaded.
	MaxQueuedCalls int
}

// The defaults of Limits.
const (
	DefaultMaxTimers        = 256
	DefaultMinTimerInterval = 10 * time.Millisecond
	DefaultMaxQueuedCalls   = 1000
)

// Or is l with each zero field taken from d.
func (l Limits) Or(d Limits) Limits {
	if l.MaxTimers == 0 {
		l.MaxTimers = d.MaxTimers
	}
	if l.MinTimerInterval == 0 {
		l.MinTimerInterval = d.MinTimerInterval
	}
	if l.MaxQueuedCalls == 0 {
		l.MaxQueuedCalls = d.MaxQueuedCalls
	}
	return l
}

// withDefaults is l with each zero field set to its default.
func (l Limits) withDefaults() Limits {
	return l.Or(Limits{MaxTimers: DefaultMaxTimers, MinTimerInterval: DefaultMinTimerInterval, MaxQueuedCalls: DefaultMaxQueuedCalls})
}

// ErrOverloaded is returned by a call refused because the state already
// has max_queued_calls calls waiting to start. Nothing of it ran: the
// caller may try another state, or answer 503.
var ErrOverloaded = errors.New("luaapi: module state overloaded")

func (s *State) overloadedError() error {
	return fmt.Errorf("%w (module %s: %d calls already queued, max_queued_calls)", ErrOverloaded, s.opts.Module, s.opts.Limits.MaxQueuedCalls)
}

// Queued returns the number of calls waiting for the state to start them.
// A call that has started and waits on Go (HTTP, sleep) is not queued.
func (s *State) Queued() int64 { return s.queued.Load() }

// HasRoom reports whether the state would queue one more call.
func (s *State) HasRoom() bool { return s.queued.Load() < int64(s.opts.Limits.MaxQueuedCalls) }

// Timers returns the number of live looping and delayed background calls.
func (s *State) Timers() int64 { return s.liveTimers.Load() }
