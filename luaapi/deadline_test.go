package luaapi

import (
	"context"
	"errors"
	"testing"
	"time"
)

// expired waits (generously) for c's deadline and checks its error.
func expired(t *testing.T, c *callContext) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the call's deadline never came")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the deadline", c.Err())
	}
}

// TestWatchdogOneTimer: the watchdog's one timer serves deadlines set in
// any order, earlier than the one it waits for or later, and calls that
// end before theirs.
func TestWatchdogOneTimer(t *testing.T) {
	w := newWatchdog()
	defer w.close()
	ctx := context.Background()

	long := w.start(ctx, time.Hour)
	short := w.start(ctx, time.Millisecond) // earlier than the timer's: it is set again
	expired(t, short)
	if long.Err() != nil {
		t.Fatalf("the hour-long call ended: %v", long.Err())
	}
	w.stop(long)

	ended := w.start(ctx, 5*time.Millisecond) // the timer waits for this one...
	w.stop(ended)                             // ...which ends first
	later := w.start(ctx, 20*time.Millisecond)
	expired(t, later) // the early firing set the timer again for this one
	if !errors.Is(ended.Err(), context.Canceled) {
		t.Fatalf("a stopped call's err = %v, want Canceled", ended.Err())
	}

	w.close()
	if c := w.start(ctx, time.Millisecond); c.Err() != nil {
		t.Fatalf("a call after close has err %v, want none (it gets no deadline)", c.Err())
	}
}

// TestParentEndStopsTheCall: a call ends when its caller's context does,
// whether that context ended before the call was made or while it ran
// (its caller passes the end on), long before the module's timeout.
func TestParentEndStopsTheCall(t *testing.T) {
	s, _ := newTestStateTimeout(t, evalModule("while true do end"), nil, time.Hour)
	for _, tc := range []struct {
		name   string
		before bool // cancelled before the call, else once it runs
	}{
		{"before the call", true},
		{"while it runs", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.before {
				cancel()
			} else {
				go func() {
					for s.Active() == 0 { // the call has started
						time.Sleep(time.Millisecond)
					}
					cancel()
				}()
			}
			done := make(chan error, 1)
			go func() {
				_, err := s.Call(ctx, "cb:spam_checker.run")
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("err = %v, want the caller's cancellation", err)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the call outlived its caller's context")
			}
			if s.Retired() {
				t.Fatal("the state was retired: the call did not stop in time")
			}
		})
	}
}
