package luaapi

import (
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// timer is a background call of the module (touched by the state's owner only).
type timer struct {
	fn       *lua.LFunction
	args     []lua.LValue
	interval time.Duration // > 0: looping
	cancel   func() bool   // stops the pending clock timer
	stopped  bool
}

func (t *timer) stop() {
	t.stopped = true
	if t.cancel != nil {
		t.cancel()
	}
}

// apiLoopingCall is api.looping_background_call(fn, msec, ...): call fn(...)
// every msec milliseconds, the first time after msec; the next run is
// scheduled when the previous one ends. Errors are logged and the loop goes
// on. Returns a handle whose stop() ends the loop. An interval below
// min_timer_interval is raised to it, with a warning logged once per call
// site.
func (s *State) apiLoopingCall(L *lua.LState) int {
	const what = "looping_background_call"
	fn := L.CheckFunction(1)
	msec := float64(L.CheckNumber(2))
	if msec <= 0 {
		L.ArgError(2, "interval must be positive")
	}
	interval := floatDuration(msec, time.Millisecond)
	if floor := s.opts.Limits.MinTimerInterval; interval < floor {
		s.warnRaisedInterval(L, what, interval)
		interval = floor
	}
	return s.pushTimer(L, what, &timer{fn: fn, args: stackArgs(L, 3), interval: interval}, interval, "stop")
}

// apiDelayedCall is api.delayed_background_call(msec, fn, ...): call fn(...)
// once after msec milliseconds (at least min_timer_interval). Returns a
// handle whose cancel() stops it.
func (s *State) apiDelayedCall(L *lua.LState) int {
	msec := float64(L.CheckNumber(1))
	fn := L.CheckFunction(2)
	delay := max(floatDuration(msec, time.Millisecond), s.opts.Limits.MinTimerInterval)
	return s.pushTimer(L, "delayed_background_call", &timer{fn: fn, args: stackArgs(L, 3)}, delay, "cancel")
}

// warnRaisedInterval logs, once per call site, that a looping call's
// interval was raised to min_timer_interval.
func (s *State) warnRaisedInterval(L *lua.LState, what string, asked time.Duration) {
	where := strings.TrimSuffix(L.Where(1), ":")
	if s.warned[where] {
		return
	}
	if s.warned == nil {
		s.warned = map[string]bool{}
	}
	s.warned[where] = true
	s.log.Warn(what+": interval raised to min_timer_interval", "where", where,
		"asked", asked.String(), "min_timer_interval", s.opts.Limits.MinTimerInterval.String())
}

// pushTimer starts t, its first run after first, and pushes its handle. A
// state that already has max_timers live timers refuses it with an error
// at the caller's line.
func (s *State) pushTimer(L *lua.LState, what string, t *timer, first time.Duration, stopName string) int {
	if limit := s.opts.Limits.MaxTimers; len(s.timers) >= limit {
		if f := s.opts.Env.OnTimerRefused; f != nil {
			f()
		}
		L.RaiseError("%s: module %s has %d timers (max_timers): stop one first, or raise max_timers", what, s.opts.Module, limit)
	}
	s.nextID++
	id := s.nextID
	s.timers[id] = t
	s.liveTimers.Add(1)
	s.schedule(id, t, first)
	handle := L.CreateTable(0, 2)
	stop := L.NewFunction(func(L *lua.LState) int {
		if t, ok := s.timers[id]; ok {
			t.stop()
			s.dropTimer(id)
		}
		return 0
	})
	handle.RawSetString(stopName, stop)
	handle.RawSetString("stop", stop)
	L.Push(handle)
	return 1
}

func (s *State) schedule(id int, t *timer, d time.Duration) {
	t.cancel = s.opts.Env.clock().AfterFunc(d, func() {
		s.active.Add(1) // counted from the tick, so that a test clock waits for it
		s.postAlways(funcJob(func() { s.fire(id) }))
	})
}

// fire runs a timer's function as a background call, as the state's owner.
func (s *State) fire(id int) {
	t, ok := s.timers[id]
	if !ok || t.stopped || s.phase == phaseClosed {
		s.active.Add(-1)
		return
	}
	s.runBackground(backgroundDesc(t.fn), t.fn, t.args, func() {
		if t.interval > 0 && !t.stopped && s.phase != phaseClosed {
			s.schedule(id, t, t.interval)
			return
		}
		s.dropTimer(id)
	})
}

// dropTimer forgets the timer id, if it is still there: its slot is free.
func (s *State) dropTimer(id int) {
	if _, ok := s.timers[id]; ok {
		delete(s.timers, id)
		s.liveTimers.Add(-1)
	}
}
