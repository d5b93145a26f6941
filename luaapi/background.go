package luaapi

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// DefaultBackgroundTimeout is the deadline of a background call (a looping
// or delayed background call, a run_as_background_process) when the module
// sets no background_timeout.
const DefaultBackgroundTimeout = 10 * time.Minute

// BackgroundObserver records the background work of a module by its
// description, as Synapse's run_as_background_process does in its metrics.
// The engine exports it to Prometheus.
type BackgroundObserver interface {
	// Start records that a background process desc started; done records
	// its end (err nil on success).
	Start(desc string) (done func(err error))
}

// apiRunAsBackgroundProcess is api.run_as_background_process(desc, fn, ...):
// run fn(...) as a call of its own, under the module's background_timeout
// rather than the caller's deadline, and return at once. Its errors are
// logged with desc; its runs, failures and duration are metrics by desc.
func (s *State) apiRunAsBackgroundProcess(L *lua.LState) int {
	desc := L.CheckString(1)
	fn := L.CheckFunction(2)
	args := stackArgs(L, 3)
	if s.phase == phaseClosed {
		return 0
	}
	// Counted as active from now, so that a test clock waits for it.
	s.active.Add(1)
	go s.postAlways(funcJob(func() { s.runBackground(desc, fn, args, nil) }))
	return 0
}

// runBackground starts fn(args...) as a background call, as the owner. The
// caller has counted it in s.active. then, if set, runs when it ends.
func (s *State) runBackground(desc string, fn *lua.LFunction, args []lua.LValue, then func()) {
	if s.phase == phaseClosed {
		s.active.Add(-1)
		return
	}
	done := func(error) {}
	if obs := s.opts.Env.Background; obs != nil {
		done = obs.Start(desc)
	}
	c := &call{s: s}
	c.ctx = s.startDeadline(c, context.Background(), s.opts.BackgroundTimeout)
	c.setup = func(*lua.LState) (*lua.LFunction, []lua.LValue, error) { return fn, args, nil }
	c.onDone = func(_ []lua.LValue, err error) {
		s.stopDeadline(c)
		done(err)
		if err != nil {
			s.log.Error("background process failed", "desc", desc, "error", err.Error(), "where", definedAt(fn))
		}
		if then != nil {
			then()
		}
	}
	s.startCall(c)
}

// backgroundDesc names a background call by where its function is defined
// ("expiry.lua:12"), as Synapse names looping calls by their function.
func backgroundDesc(fn *lua.LFunction) string {
	return filepath.Base(definedAt(fn))
}

// Active returns the calls of the state that can make progress: started
// (foreground or background) and not finished, less those waiting on the
// clock. A test clock that has fired its timers waits until every state's
// Active is zero: everything it started has finished or waits on the clock
// again.
func (s *State) Active() int64 { return s.active.Load() }

// virtualClock returns the module's clock when it is not the wall clock (a
// test's): call deadlines then also expire in its time.
func (s *State) virtualClock() Clock {
	switch c := s.opts.Env.Clock.(type) {
	case nil, RealClock:
		return nil
	default:
		return c
	}
}

// boundSlice bounds how long the background call c runs without waiting
// (on the clock, the homeserver, HTTP, the database): at most the module's
// call timeout, as a callback. Lua runs on the state's goroutine, so a
// background call that spins holds every call of its module until
// background_timeout otherwise. The returned function lifts the bound when
// the slice ends; nil for a foreground call, which its deadline bounds.
func (s *State) boundSlice(c *call) (lift func() bool) {
	if c.onDone == nil {
		return nil
	}
	timeout := s.opts.Timeout
	return s.opts.Env.clock().AfterFunc(timeout, func() {
		c.ctx.cancel(fmt.Errorf("%w: the background call ran %s without waiting (a background call may run at most the module's timeout between waits)",
			context.DeadlineExceeded, timeout))
	})
}

// startDeadline returns the context of c: bounded by timeout and parent in
// wall time, and, under a test clock, by timeout in the clock's time too, so
// a call that sleeps past its deadline fails in a test as it does in serve.
func (s *State) startDeadline(c *call, parent context.Context, timeout time.Duration) *callContext {
	ctx := &c.ctxBuf
	s.deadlines.startIn(ctx, parent, timeout)
	if clock := s.virtualClock(); clock != nil {
		ctx.stopVirtual = clock.AfterFunc(timeout, func() {
			ctx.cancel(context.DeadlineExceeded)
			c.unpark()
		})
	}
	return ctx
}

// stopDeadline releases what startDeadline took.
func (s *State) stopDeadline(c *call) {
	if c.ctx.stopVirtual != nil {
		c.ctx.stopVirtual()
	}
	s.deadlines.stop(c.ctx)
}

// park marks c as waiting on the clock: it no longer counts as active. The
// clock timer that wakes it must call unpark before it wakes it, so that the
// call counts as active again before the clock's Advance returns.
func (c *call) park() {
	if c.parked.CompareAndSwap(false, true) {
		if w := c.clockWaits(); w != nil {
			w.n.Add(1)
		}
		c.s.active.Add(-1)
	}
}

// unpark undoes park; it is safe to call from any goroutine, and more than
// once.
func (c *call) unpark() {
	if c.parked.CompareAndSwap(true, false) {
		c.s.active.Add(1)
		if w := c.clockWaits(); w != nil {
			w.n.Add(-1)
		}
	}
}

// sleepOn waits d on the module's clock for the call c (nil outside a
// call), parked while it waits. Under a test clock no timer fires while a
// call is active, so the order below (timer, then park) cannot lose a wake
// up; under the wall clock, woken catches a timer that fired first.
func (s *State) sleepOn(ctx context.Context, c *call, d time.Duration) error {
	fired := make(chan struct{})
	var woken atomic.Bool
	stop := s.opts.Env.clock().AfterFunc(d, func() {
		woken.Store(true)
		if c != nil {
			c.unpark()
		}
		close(fired)
	})
	if c != nil {
		c.park()
		if woken.Load() {
			c.unpark()
		}
	}
	select {
	case <-fired:
		return nil
	case <-ctx.Done():
		stop()
		if c != nil {
			c.unpark()
		}
		return ctx.Err()
	}
}

// ClockWaits counts the calls made with a context that are waiting on the
// clock. A test harness that runs a call and drives a test clock meanwhile
// puts one in the call's context (WithClockWaits): when every state is
// quiet (Active is zero) and its call still waits on the clock, it moves the
// clock on.
type ClockWaits struct{ n atomic.Int64 }

// Waiting returns how many of the calls are waiting on the clock now.
func (w *ClockWaits) Waiting() int64 { return w.n.Load() }

type clockWaitsKey struct{}

// WithClockWaits returns ctx carrying w: calls made with it report their
// waits on the clock to w.
func WithClockWaits(ctx context.Context, w *ClockWaits) context.Context {
	return context.WithValue(ctx, clockWaitsKey{}, w)
}

func (c *call) clockWaits() *ClockWaits {
	w, _ := c.ctx.Value(clockWaitsKey{}).(*ClockWaits)
	return w
}
