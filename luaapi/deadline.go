package luaapi

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// callContext is the context of one call: done at its deadline or when its
// parent is. It replaces context.WithTimeout, whose timer per call costs
// more than the rest of a small call: the state's watchdog keeps one timer
// for all its calls. The parent's end is passed on by the call's caller,
// which waits on parentDone anyway (State.call): registering with the
// parent (context.AfterFunc) cost a lock, a goroutine-safe callback and
// three allocations per call of a served request.
type callContext struct {
	parent     context.Context
	parentDone <-chan struct{} // parent.Done(); nil when the parent never ends
	deadline   time.Time
	done       chan struct{}
	index      int // in the watchdog's heap; -1 when not in it

	mu  sync.Mutex
	err error

	stopVirtual func() bool // stops the deadline timer on a test clock
}

func (c *callContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *callContext) Done() <-chan struct{} { return c.done }

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *callContext) Value(key any) any { return c.parent.Value(key) }

// parentEnded ends c with its parent's cause; its caller calls it once
// parentDone is closed.
func (c *callContext) parentEnded() { c.cancel(context.Cause(c.parent)) }

func (c *callContext) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
		close(c.done)
	}
}

// watchdog cancels the calls of a state whose deadline has passed. It
// keeps one parked timer, set no later than the earliest deadline: a call
// costs a heap push and pop, not a goroutine or a timer of its own. When
// the timer fires early (the call it was set for ended), it is set again
// for the earliest deadline left, if any.
type watchdog struct {
	mu     sync.Mutex
	calls  deadlineHeap
	timer  *time.Timer // made on the first call
	armed  time.Time   // when timer fires; zero when it is stopped or has fired
	closed bool
}

func newWatchdog() *watchdog { return &watchdog{} }

// start returns the context of a call bounded by timeout and parent; stop
// it when the call is over. The parent's end reaches it only through
// parentEnded, which whoever waits on the call calls when parentDone is
// closed.
func (w *watchdog) start(parent context.Context, timeout time.Duration) *callContext {
	c := &callContext{}
	w.startIn(c, parent, timeout)
	return c
}

// startIn is start making c, a zero callContext, the call's context: a
// call keeps its context in itself, one allocation fewer per call.
func (w *watchdog) startIn(c *callContext, parent context.Context, timeout time.Duration) {
	c.parent, c.deadline, c.done, c.index = parent, time.Now().Add(timeout), make(chan struct{}), -1
	if c.parentDone = parent.Done(); c.parentDone != nil {
		if err := parent.Err(); err != nil {
			c.cancel(context.Cause(parent))
			return
		}
	}
	w.mu.Lock()
	if w.closed { // the state is closing: its calls end with it
		w.mu.Unlock()
		return
	}
	heap.Push(&w.calls, c)
	if w.armed.IsZero() || c.deadline.Before(w.armed) {
		w.arm(c.deadline)
	}
	w.mu.Unlock()
}

// arm sets the timer to fire at deadline. Callers hold w.mu.
func (w *watchdog) arm(deadline time.Time) {
	w.armed = deadline
	if w.timer == nil {
		w.timer = time.AfterFunc(time.Until(deadline), w.fire)
		return
	}
	w.timer.Reset(time.Until(deadline))
}

func (w *watchdog) stop(c *callContext) {
	w.mu.Lock()
	if c.index >= 0 {
		heap.Remove(&w.calls, c.index)
	}
	w.mu.Unlock()
	c.cancel(context.Canceled)
}

// failAll ends every call in flight now, with err as their error.
func (w *watchdog) failAll(err error) {
	w.mu.Lock()
	calls := append([]*callContext(nil), w.calls...)
	w.mu.Unlock()
	for _, c := range calls {
		c.cancel(err)
	}
}

// close stops the timer; calls started later get no deadline (the state
// they would run in is gone).
func (w *watchdog) close() {
	w.mu.Lock()
	w.closed = true
	for _, c := range w.calls {
		c.index = -1
	}
	w.calls = nil
	if w.timer != nil {
		w.timer.Stop()
	}
	w.armed = time.Time{}
	w.mu.Unlock()
}

// fire cancels the calls whose deadline has passed and sets the timer for
// the next one.
func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = time.Time{}
	if w.closed {
		return
	}
	now := time.Now()
	for len(w.calls) > 0 && !w.calls[0].deadline.After(now) {
		c := heap.Pop(&w.calls).(*callContext)
		c.cancel(context.DeadlineExceeded)
	}
	if len(w.calls) > 0 {
		w.arm(w.calls[0].deadline)
	}
}

// deadlineHeap orders calls by deadline.
type deadlineHeap []*callContext

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].deadline.Before(h[j].deadline) }
func (h deadlineHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *deadlineHeap) Push(x any) {
	c := x.(*callContext)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *deadlineHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	c.index = -1
	*h = old[:len(old)-1]
	return c
}
