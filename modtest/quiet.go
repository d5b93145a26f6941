package modtest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"luamods/luaapi"
)

// The rule of the virtual clock (docs/testing-modules.md): the clock moves
// only when every call the modules have started — callbacks, web requests,
// background calls, what those started with run_as_background_process — has
// finished or waits on the clock (api.sleep, a background call's next tick,
// a deadline). A wait on anything else (the fake homeserver, fake HTTP)
// counts as work in progress, so the clock waits for it. Each state tracks
// this in luaapi.State.Active; the harness reads it.

// pollStep bounds how long the harness sleeps between two looks at the
// states while they are busy. It affects speed only, never the outcome.
const pollStep = time.Millisecond

// quiet reports whether no call of any module state can make progress
// without the clock.
func (h *handle) quiet() bool {
	gen, release := h.eng.Acquire()
	defer release()
	for _, m := range gen.Modules {
		for _, s := range m.States() {
			if s.Active() > 0 {
				return false
			}
		}
	}
	return true
}

// settle waits until quiet.
func (h *handle) settle(ctx context.Context) error {
	for wait := 10 * time.Microsecond; !h.quiet(); wait = min(2*wait, pollStep) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("the modules were still busy when the test's time ran out: %w", ctx.Err())
		case <-time.After(wait):
		}
	}
	return nil
}

// advance moves the clock by d: each timer due fires at its instant, and the
// clock moves past it only once the modules have settled.
func (h *handle) advance(ctx context.Context, d time.Duration) error {
	if err := h.settle(ctx); err != nil {
		return err
	}
	var err error
	h.clock.AdvanceSettling(d, func() {
		if err == nil {
			err = h.settle(ctx)
		}
	})
	return err
}

// errNoTimer is the error of a call that waits on the clock with no timer
// pending: nothing could ever wake it.
var errNoTimer = errors.New("the call waits on the clock but no timer is pending")

// await runs f, a call into the modules made by the test, and lets virtual
// time pass while it waits on the clock: whenever the modules are quiet and
// f's call sleeps, the clock jumps to the next timer (firing it as advance
// does). A call that sleeps 30 s therefore returns at once, having seen
// 30 s pass, and the background calls due meanwhile have run.
func (h *handle) await(ctx context.Context, f func(ctx context.Context) error) error {
	waits := &luaapi.ClockWaits{}
	done := make(chan error, 1)
	go func() { done <- f(luaapi.WithClockWaits(ctx, waits)) }()
	for wait := 10 * time.Microsecond; ; wait = min(2*wait, pollStep) {
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return <-done
		case <-time.After(wait):
		}
		if waits.Waiting() == 0 || !h.quiet() {
			continue
		}
		next, ok := h.clock.Next()
		if !ok {
			return errNoTimer
		}
		if err := h.advance(ctx, next.Sub(h.clock.Now())); err != nil {
			return err
		}
		wait = 10 * time.Microsecond
	}
}
