package engine

import (
	"errors"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/luaapi"
)

// The per-state limits (luaapi.Limits: max_timers, min_timer_interval,
// max_queued_calls): how the engine spreads calls over a module's states
// when one is full, answers a call no state takes, and exports the limits'
// metrics.

// withState runs f on the state State picks and, when that state refuses
// the call because its queue is full (luaapi.ErrOverloaded; nothing of
// the call ran), on each other state in service with room, until one takes
// it. A call that no state takes is counted in luamods_refused_calls_total.
func (m *Module) withState(f func(*luaapi.State) error) error {
	return m.startingWith(m.State(), f)
}

// startingWith is withState with the state to try first.
func (m *Module) startingWith(s *luaapi.State, f func(*luaapi.State) error) error {
	err := f(s)
	if errors.Is(err, luaapi.ErrOverloaded) {
		for _, other := range m.States() {
			if other == s || other.Retired() || !other.HasRoom() {
				continue
			}
			if err = f(other); !errors.Is(err, luaapi.ErrOverloaded) {
				break
			}
		}
	}
	if m.metrics != nil {
		switch {
		case errors.Is(err, luaapi.ErrOverloaded):
			m.metrics.RefusedCalls.WithLabelValues(m.Name, "queue_full").Inc()
		case errors.Is(err, luaapi.ErrRetired):
			m.metrics.RefusedCalls.WithLabelValues(m.Name, "retired").Inc()
		}
	}
	return err
}

// overloadedAnswer is the answer to a call refused because its module's
// states all had max_queued_calls calls waiting: 503, Retry-After: 1, and
// Matrix's M_LIMIT_EXCEEDED with retry_after_ms, so that clients back off.
func overloadedAnswer() (int, map[string]any, http.Header) {
	return http.StatusServiceUnavailable,
		map[string]any{"errcode": "M_LIMIT_EXCEEDED", "error": "Too many requests queued; try again later", "retry_after_ms": 1000},
		http.Header{"Retry-After": {"1"}}
}

// limitsCollector exports the live timers and queued calls of the modules
// of the current generation, read from their states at each scrape.
type limitsCollector struct{ e *Engine }

var (
	timersDesc = prometheus.NewDesc("luamods_timers",
		"Live looping and delayed background calls of a module (max_timers bounds each state's).", []string{"module"}, nil)
	queuedDesc = prometheus.NewDesc("luamods_queued_calls",
		"Calls waiting for a module's states to start them (max_queued_calls bounds each state's).", []string{"module"}, nil)
)

func (c limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- timersDesc
	ch <- queuedDesc
}

func (c limitsCollector) Collect(ch chan<- prometheus.Metric) {
	g := c.e.Current()
	if g == nil {
		return
	}
	for _, m := range g.Modules {
		ch <- prometheus.MustNewConstMetric(timersDesc, prometheus.GaugeValue, float64(m.Timers()), m.Name)
		ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(m.Queued()), m.Name)
	}
}

// Queued is the number of calls waiting for the module's states to start
// them (each state holds at most max_queued_calls).
func (m *Module) Queued() (n int64) {
	for _, s := range m.States() {
		n += s.Queued()
	}
	return n
}

// Timers is the number of live looping and delayed background calls of
// the module's states (each holds at most max_timers).
func (m *Module) Timers() (n int64) {
	for _, s := range m.States() {
		n += s.Timers()
	}
	return n
}
