package httpbridge

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeListener hands out connections without a network, counting the
// calls of Accept; errs are returned first, one per call.
type fakeListener struct {
	mu      sync.Mutex
	accepts int
	errs    []error
	closed  bool
}

func (f *fakeListener) Accept() (net.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.accepts++
	switch {
	case f.closed:
		return nil, net.ErrClosed
	case len(f.errs) > 0:
		err := f.errs[0]
		f.errs = f.errs[1:]
		return nil, err
	}
	return fakeConn{}, nil
}

func (f *fakeListener) Close() error   { f.mu.Lock(); f.closed = true; f.mu.Unlock(); return nil }
func (f *fakeListener) Addr() net.Addr { return &net.TCPAddr{} }
func (f *fakeListener) calls() int     { f.mu.Lock(); defer f.mu.Unlock(); return f.accepts }

type fakeConn struct{ net.Conn }

func (fakeConn) Close() error { return nil }

type accepted struct {
	c   net.Conn
	err error
}

// acceptAsync runs Accept in a goroutine; its result arrives on the channel.
func acceptAsync(l net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		c, err := l.Accept()
		ch <- accepted{c, err}
	}()
	return ch
}

// limited is a ConnLimiter over a fakeListener whose maximum the test sets,
// and whose atLimit reports on the returned channel.
func limited(t *testing.T, max int) (*ConnLimiter, *fakeListener, *atomic.Int64, <-chan [2]int) {
	t.Helper()
	fake := &fakeListener{}
	limit := &atomic.Int64{}
	limit.Store(int64(max))
	reached := make(chan [2]int, 16)
	l := LimitConnections(fake, func() int { return int(limit.Load()) }, func(open, max int) { reached <- [2]int{open, max} })
	return l, fake, limit, reached
}

// waitLimit waits for atLimit's report; the Accept meant to wait must not
// return first.
func waitLimit(t *testing.T, reached <-chan [2]int, waiting <-chan accepted) [2]int {
	t.Helper()
	select {
	case got := <-reached:
		return got
	case a := <-waiting:
		t.Fatalf("Accept returned at the limit: %v %v", a.c, a.err)
		return [2]int{}
	}
}

func mustAccept(t *testing.T, l net.Listener) net.Conn {
	t.Helper()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestConnLimiterWaitsForAClose: with max 2, two connections are accepted;
// the third Accept reports the limit and does not call the underlying
// Accept (the client stays in the kernel's backlog) until one of the two
// closes.
func TestConnLimiterWaitsForAClose(t *testing.T) {
	l, fake, _, reached := limited(t, 2)
	first, _ := mustAccept(t, l), mustAccept(t, l)
	if l.Open() != 2 || fake.calls() != 2 {
		t.Fatalf("open %d, underlying accepts %d; want 2, 2", l.Open(), fake.calls())
	}
	third := acceptAsync(l)
	if got := waitLimit(t, reached, third); got != [2]int{2, 2} {
		t.Fatalf("atLimit(%d, %d), want (2, 2)", got[0], got[1])
	}
	select {
	case a := <-third:
		t.Fatalf("the third Accept returned at the limit: %v %v", a.c, a.err)
	default:
	}
	if fake.calls() != 2 || l.Reached() != 1 {
		t.Fatalf("at the limit: underlying accepts %d, reached %d; want 2, 1", fake.calls(), l.Reached())
	}
	first.Close()
	if a := <-third; a.err != nil {
		t.Fatal(a.err)
	}
	first.Close() // a second Close frees nothing more
	if l.Open() != 2 || fake.calls() != 3 || l.Reached() != 1 {
		t.Fatalf("after a close: open %d, underlying accepts %d, reached %d; want 2, 3, 1", l.Open(), fake.calls(), l.Reached())
	}
}

// TestConnLimiterFollowsTheMaximum: a raised maximum lets a waiting Accept
// through on Recheck; a lowered one keeps the open connections and holds
// new ones until enough close.
func TestConnLimiterFollowsTheMaximum(t *testing.T) {
	l, _, limit, reached := limited(t, 1)
	a := mustAccept(t, l)
	waiting := acceptAsync(l)
	waitLimit(t, reached, waiting)
	limit.Store(3)
	l.Recheck()
	b := (<-waiting).c
	c := mustAccept(t, l)
	if l.Open() != 3 {
		t.Fatalf("open %d, want 3", l.Open())
	}
	limit.Store(2)
	next := acceptAsync(l)
	if got := waitLimit(t, reached, next); got != [2]int{3, 2} {
		t.Fatalf("atLimit(%d, %d), want (3, 2)", got[0], got[1])
	}
	a.Close() // 2 open: still the maximum
	b.Close() // 1 open
	if r := <-next; r.err != nil {
		t.Fatal(r.err)
	}
	c.Close()
	if l.Open() != 1 || l.Reached() != 2 {
		t.Fatalf("open %d, reached %d; want 1, 2", l.Open(), l.Reached())
	}
}

// TestConnLimiterClose: Close ends a waiting Accept with the underlying
// listener's error, and a failed Accept gives its slot back.
func TestConnLimiterClose(t *testing.T) {
	l, fake, _, reached := limited(t, 1)
	fake.errs = []error{errors.New("too many open files")}
	if _, err := l.Accept(); err == nil || l.Open() != 0 {
		t.Fatalf("a failing Accept: %v, open %d", err, l.Open())
	}
	mustAccept(t, l)
	waiting := acceptAsync(l)
	waitLimit(t, reached, waiting)
	l.Close()
	if r := <-waiting; !errors.Is(r.err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v %v, want net.ErrClosed", r.c, r.err)
	}
	l.Close() // twice is fine
}

// TestConnLimiterUnderContention: goroutines accepting and closing at once
// never hold more than the maximum, and every slot comes back.
func TestConnLimiterUnderContention(t *testing.T) {
	const max, workers, rounds = 3, 8, 200
	l := LimitConnections(&fakeListener{}, func() int { return max }, nil)
	var holding, peak atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range rounds {
				c, err := l.Accept()
				if err != nil {
					t.Error(err)
					return
				}
				n := holding.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				holding.Add(-1)
				c.Close()
			}
		})
	}
	wg.Wait()
	if peak.Load() > max || l.Open() != 0 {
		t.Fatalf("peak %d (max %d), open at the end %d", peak.Load(), max, l.Open())
	}
}
