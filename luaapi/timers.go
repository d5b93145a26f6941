package luaapi

import (
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
// on. Returns a handle whose stop() ends the loop.
func (s *State) apiLoopingCall(L *lua.LState) int {
	fn := L.CheckFunction(1)
	msec := float64(L.CheckNumber(2))
	if msec <= 0 {
		L.ArgError(2, "interval must be positive")
	}
	return s.pushTimer(L, &timer{fn: fn, args: stackArgs(L, 3), interval: msDuration(msec)}, msDuration(msec), "stop")
}

// apiDelayedCall is api.delayed_background_call(msec, fn, ...): call fn(...)
// once after msec milliseconds. Returns a handle whose cancel() stops it.
func (s *State) apiDelayedCall(L *lua.LState) int {
	msec := float64(L.CheckNumber(1))
	fn := L.CheckFunction(2)
	return s.pushTimer(L, &timer{fn: fn, args: stackArgs(L, 3)}, msDuration(msec), "cancel")
}

func msDuration(msec float64) time.Duration {
	if msec < 0 {
		msec = 0
	}
	return time.Duration(msec * float64(time.Millisecond))
}

func (s *State) pushTimer(L *lua.LState, t *timer, first time.Duration, stopName string) int {
	s.nextID++
	id := s.nextID
	s.timers[id] = t
	s.schedule(id, t, first)
	handle := L.CreateTable(0, 2)
	stop := L.NewFunction(func(L *lua.LState) int {
		if t, ok := s.timers[id]; ok {
			t.stop()
			delete(s.timers, id)
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
		delete(s.timers, id)
	})
}
