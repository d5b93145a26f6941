package httpbridge

import (
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// ConnLimiter is a listener that holds at most a maximum number of
// accepted connections open at once (luamods serve's max_connections), as
// golang.org/x/net/netutil.LimitListener does: at the maximum, Accept waits
// for a connection to close before it accepts the next one, so further
// clients wait in the kernel's backlog instead of costing the process a
// file descriptor each. The maximum is read again at every Accept, so a
// change (a reload) applies to the next connection; Recheck lets an Accept
// that is waiting see a raised maximum at once.
type ConnLimiter struct {
	net.Listener
	limit   func() int            // the maximum now
	atLimit func(open, limit int) // called (outside the lock) each time Accept finds the maximum reached

	mu      sync.Mutex
	open    int           // accepted and not closed yet
	reached uint64        // times Accept found the maximum reached
	wake    chan struct{} // closed when a connection closes or Recheck is called; nil while nobody waits

	closeOnce sync.Once
	done      chan struct{} // closed by Close
}

// LimitConnections wraps ln so that at most limit() of its connections are
// open at once. atLimit, when not nil, is called each time Accept finds
// limit() open and starts waiting.
func LimitConnections(ln net.Listener, limit func() int, atLimit func(open, limit int)) *ConnLimiter {
	return &ConnLimiter{Listener: ln, limit: limit, atLimit: atLimit, done: make(chan struct{})}
}

// Accept waits until fewer than the maximum connections are open, then
// accepts the next one. Once the listener is closed it returns the
// underlying listener's error.
func (l *ConnLimiter) Accept() (net.Conn, error) {
	if !l.acquire() {
		return l.acceptClosed()
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// acceptClosed is Accept on the closed listener: its error, as
// netutil.LimitListener does; a connection some listener still hands out
// after Close is closed at once.
func (l *ConnLimiter) acceptClosed() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c.Close()
	}
}

// acquire takes a slot, waiting while the maximum is open; false when the
// listener was closed meanwhile.
func (l *ConnLimiter) acquire() bool {
	l.mu.Lock()
	counted := false
	for {
		limit := l.limit()
		if l.open < limit {
			break
		}
		if !counted {
			counted = true
			l.reached++
			if l.atLimit != nil {
				open := l.open
				l.mu.Unlock()
				l.atLimit(open, limit)
				l.mu.Lock()
				continue // look again: a connection may have closed meanwhile
			}
		}
		if l.wake == nil {
			l.wake = make(chan struct{})
		}
		wake := l.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-l.done:
			return false
		}
		l.mu.Lock()
	}
	l.open++
	l.mu.Unlock()
	return true
}

// release frees a slot and wakes a waiting Accept.
func (l *ConnLimiter) release() {
	l.mu.Lock()
	l.open--
	l.wakeLocked()
	l.mu.Unlock()
}

func (l *ConnLimiter) wakeLocked() {
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// Recheck makes a waiting Accept read the maximum again (after a reload
// raised it). Without it, the waiting Accept reads it when the next
// connection closes.
func (l *ConnLimiter) Recheck() {
	l.mu.Lock()
	l.wakeLocked()
	l.mu.Unlock()
}

// Close closes the listener; a waiting Accept returns.
func (l *ConnLimiter) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// Open is the number of accepted connections not closed yet.
func (l *ConnLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Reached is how many times Accept found the maximum open and waited.
func (l *ConnLimiter) Reached() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reached
}

// Metrics are luamods_open_connections and
// luamods_connection_limit_reached_total, read from l when scraped.
func (l *ConnLimiter) Metrics() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "luamods_open_connections",
			Help: "Client connections open now (at most max_connections)."},
			func() float64 { return float64(l.Open()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "luamods_connection_limit_reached_total",
			Help: "Times max_connections connections were open and luamods serve stopped accepting until one closed."},
			func() float64 { return float64(l.Reached()) }),
	}
}

// limitedConn gives its slot back when first closed.
type limitedConn struct {
	net.Conn
	l    *ConnLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
