package modtest

import (
	"sort"
	"sync"
	"time"
)

// VirtualClock is a luaapi.Clock that moves only when told: Advance fires
// the timers that fall due (background calls, api.sleep wake-ups, call
// deadlines), in order. Cache TTLs follow it too.
type VirtualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*virtualTimer
	seq    int
}

type virtualTimer struct {
	when    time.Time
	seq     int
	f       func()
	stopped bool
}

// NewVirtualClock starts at a fixed instant, so tests are repeatable.
func NewVirtualClock() *VirtualClock {
	return &VirtualClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// Now returns the virtual time.
func (c *VirtualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d.
func (c *VirtualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &virtualTimer{when: c.now.Add(d), seq: c.seq, f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock by d, calling each timer that falls due at its
// own instant, earliest first.
func (c *VirtualClock) Advance(d time.Duration) { c.AdvanceSettling(d, nil) }

// AdvanceSettling is Advance calling settle after each timer, so that what
// the timer started (and the timers it schedules) happens before the clock
// moves on.
func (c *VirtualClock) AdvanceSettling(d time.Duration, settle func()) {
	c.mu.Lock()
	target := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool {
			if !c.timers[i].when.Equal(c.timers[j].when) {
				return c.timers[i].when.Before(c.timers[j].when)
			}
			return c.timers[i].seq < c.timers[j].seq
		})
		var next *virtualTimer
		for len(c.timers) > 0 {
			t := c.timers[0]
			if t.stopped {
				c.timers = c.timers[1:]
				continue
			}
			if t.when.After(target) {
				break
			}
			next = t
			c.timers = c.timers[1:]
			break
		}
		if next == nil {
			c.now = target
			c.mu.Unlock()
			return
		}
		c.now = next.when
		c.mu.Unlock()
		next.f()
		if settle != nil {
			settle()
		}
	}
}

// Next returns the instant of the earliest pending timer.
func (c *VirtualClock) Next() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next time.Time
	found := false
	for _, t := range c.timers {
		if !t.stopped && (!found || t.when.Before(next)) {
			next, found = t.when, true
		}
	}
	return next, found
}
