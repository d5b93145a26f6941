package main

import (
	"log/slog"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/engine"
	"luamods/httpbridge"
)

// fdMargin is the file descriptors max_connections should leave for
// everything but client connections: the modules' database and Redis
// connections, their outgoing HTTP requests, SQLite files, the listener.
const fdMargin = 1024

// limitLogInterval is the least time between two log lines saying that
// max_connections was reached.
const limitLogInterval = 10 * time.Second

// limitConnections wraps ln so that at most max_connections of its
// connections are open at once. The maximum is the serving generation's,
// read at every accept: a reload applies it to the next connection. The
// metrics go to registry; reaching the limit is logged at most once per
// limitLogInterval.
func limitConnections(ln net.Listener, eng *engine.Engine, registry prometheus.Registerer, log *slog.Logger) *httpbridge.ConnLimiter {
	logged := &rateLimit{interval: limitLogInterval}
	l := httpbridge.LimitConnections(ln, func() int { return eng.Current().Config.MaxConnections }, func(open, limit int) {
		if ok, held := logged.allow(time.Now()); ok {
			log.Warn("max_connections reached: not accepting new connections until one closes",
				"open", open, "max_connections", limit, "not_logged_since_last", held)
		}
	})
	registry.MustRegister(l.Metrics()...)
	return l
}

// checkMaxConnections warns when max_connections is more than the process
// can open (RLIMIT_NOFILE) minus fdMargin.
func checkMaxConnections(log *slog.Logger, maxConns int) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Warn("cannot read the open files limit (RLIMIT_NOFILE) to check max_connections", "error", err.Error())
		return
	}
	warnOverFileLimit(log, maxConns, rl.Cur)
}

// warnOverFileLimit logs a warning when maxConns connections and fdMargin
// other files are more than nofile, the open files limit.
func warnOverFileLimit(log *slog.Logger, maxConns int, nofile uint64) {
	if uint64(maxConns)+fdMargin <= nofile {
		return
	}
	log.Warn("max_connections is more than this process can open: raise its open files limit (ulimit -n, systemd's LimitNOFILE=) or lower max_connections",
		"max_connections", maxConns, "rlimit_nofile", nofile, "kept_for_modules", fdMargin)
}

// rateLimit lets through one event per interval.
type rateLimit struct {
	interval time.Duration
	mu       sync.Mutex
	last     time.Time // of the last event let through; zero: none yet
	held     int       // events held back since
}

// allow reports whether the event at now goes through and, if so, how many
// were held back since the last one that did.
func (r *rateLimit) allow(now time.Time) (ok bool, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.last.IsZero() && now.Sub(r.last) < r.interval {
		r.held++
		return false, 0
	}
	held, r.held, r.last = r.held, 0, now
	return true, held
}
