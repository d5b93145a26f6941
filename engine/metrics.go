package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"luamods/luaapi"
)

// Metrics are the engine's Prometheus metrics, all prefixed luamods_.
type Metrics struct {
	CallbackCalls   *prometheus.CounterVec   // callback, module
	CallbackErrors  *prometheus.CounterVec   // callback, module
	CallbackLatency *prometheus.HistogramVec // callback
	Inflight        *prometheus.GaugeVec     // module
	Retirements     *prometheus.CounterVec   // module: states retired and rebuilt
	MemoryKills     *prometheus.CounterVec   // module: states whose calls the memory governor failed
	Reloads         *prometheus.CounterVec   // result: ok, failed, unchanged
	RouteRequests   *prometheus.CounterVec   // route, method, code
	RouteLatency    *prometheus.HistogramVec // route
	// Background work by description (run_as_background_process, and the
	// looping and delayed calls, named file:line), as Synapse's
	// synapse_background_process_* metrics.
	BackgroundStarts   *prometheus.CounterVec   // module, desc
	BackgroundErrors   *prometheus.CounterVec   // module, desc
	BackgroundInflight *prometheus.GaugeVec     // module, desc
	BackgroundLatency  *prometheus.HistogramVec // module, desc
	// The limits (limits.go): calls no state took, timers refused.
	RefusedCalls  *prometheus.CounterVec // module, reason: queue_full, retired
	RefusedTimers *prometheus.CounterVec // module
	generation    prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) *Metrics {
	buckets := []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}
	m := &Metrics{
		CallbackCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_callback_calls_total",
			Help: "Calls of module callbacks."}, []string{"callback", "module"}),
		CallbackErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_callback_errors_total",
			Help: "Module callbacks that raised an error or timed out."}, []string{"callback", "module"}),
		CallbackLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "luamods_callback_duration_seconds",
			Help: "Time spent in one module's callback.", Buckets: buckets}, []string{"callback"}),
		Inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "luamods_inflight_calls",
			Help: "Calls into a module's Lua code in progress."}, []string{"module"}),
		Retirements: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_state_retirements_total",
			Help: "Module states taken out of service (stuck past a deadline, a recovered Go panic) and rebuilt."}, []string{"module"}),
		MemoryKills: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_memory_limit_kills_total",
			Help: "Module states whose calls in flight failed because the heap reached memory_limit."}, []string{"module"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_reloads_total",
			Help: "Reloads by result."}, []string{"result"}),
		RouteRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_route_requests_total",
			Help: "Requests served by module web resources."}, []string{"route", "method", "code"}),
		RouteLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "luamods_route_duration_seconds",
			Help: "Time to serve a module web resource.", Buckets: buckets}, []string{"route"}),
		BackgroundStarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_background_process_start_total",
			Help: "Background processes started, by description."}, []string{"module", "desc"}),
		BackgroundErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_background_process_errors_total",
			Help: "Background processes that raised an error or timed out."}, []string{"module", "desc"}),
		BackgroundInflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "luamods_background_process_in_flight",
			Help: "Background processes running now."}, []string{"module", "desc"}),
		BackgroundLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "luamods_background_process_duration_seconds",
			Help: "Time a background process ran.", Buckets: []float64{.001, .01, .1, 1, 10, 60, 300, 600}}, []string{"module", "desc"}),
		RefusedCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_refused_calls_total",
			Help: "Calls refused at once: every state of the module had max_queued_calls waiting (queue_full), or was retired."}, []string{"module", "reason"}),
		RefusedTimers: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_refused_timers_total",
			Help: "Looping and delayed background calls refused at max_timers."}, []string{"module"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "luamods_generation",
			Help: "The number of the generation of modules serving now."}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "luamods_build_info", Help: "luamods build.",
		ConstLabels: prometheus.Labels{"version": Version}})
	build.Set(1)
	reg.MustRegister(m.CallbackCalls, m.CallbackErrors, m.CallbackLatency, m.Inflight, m.Retirements, m.MemoryKills, m.Reloads,
		m.RouteRequests, m.RouteLatency, m.BackgroundStarts, m.BackgroundErrors, m.BackgroundInflight,
		m.BackgroundLatency, m.RefusedCalls, m.RefusedTimers, m.generation, build)
	for _, r := range []string{"ok", "failed", "unchanged"} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}

// moduleMetrics are the metrics modules define with api.metrics, exported
// as luamods_module_<name> with a module label. One vector per name serves
// every module and every generation, so a reload redefines nothing.
type moduleMetrics struct {
	reg  *prometheus.Registry
	mu   sync.Mutex
	vecs map[string]*moduleVec
}

type moduleVec struct {
	kind    luaapi.MetricKind
	labels  []string
	counter *prometheus.CounterVec
	gauge   *prometheus.GaugeVec
	hist    *prometheus.HistogramVec
}

func newModuleMetrics(reg *prometheus.Registry) *moduleMetrics {
	return &moduleMetrics{reg: reg, vecs: map[string]*moduleVec{}}
}

// provider is the luaapi.MetricsProvider of one module.
func (mm *moduleMetrics) provider(module string) luaapi.MetricsProvider {
	return moduleMetricsProvider{mm, module}
}

type moduleMetricsProvider struct {
	mm     *moduleMetrics
	module string
}

func (p moduleMetricsProvider) Metric(kind luaapi.MetricKind, name, help string, labels []string, buckets []float64) (luaapi.Metric, error) {
	v, err := p.mm.vec(kind, name, help, labels, buckets)
	if err != nil {
		return nil, err
	}
	return boundMetric{v, p.module}, nil
}

func (mm *moduleMetrics) vec(kind luaapi.MetricKind, name, help string, labels []string, buckets []float64) (*moduleVec, error) {
	full := "luamods_module_" + name
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if v, ok := mm.vecs[full]; ok {
		if v.kind != kind || !slices.Equal(v.labels, labels) {
			return nil, fmt.Errorf("%s is already defined as a %s with labels %v", full, v.kind, v.labels)
		}
		return v, nil
	}
	all := append([]string{"module"}, labels...)
	v := &moduleVec{kind: kind, labels: append([]string(nil), labels...)}
	var c prometheus.Collector
	switch kind {
	case luaapi.Counter:
		v.counter = prometheus.NewCounterVec(prometheus.CounterOpts{Name: full, Help: help}, all)
		c = v.counter
	case luaapi.Gauge:
		v.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: full, Help: help}, all)
		c = v.gauge
	case luaapi.Histogram:
		if len(buckets) == 0 {
			buckets = prometheus.DefBuckets
		}
		v.hist = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: full, Help: help, Buckets: buckets}, all)
		c = v.hist
	}
	if err := mm.reg.Register(c); err != nil {
		return nil, fmt.Errorf("%s: %w", full, err)
	}
	mm.vecs[full] = v
	return v, nil
}

// boundMetric is a module's view of a metric: its values carry the module.
type boundMetric struct {
	v      *moduleVec
	module string
}

func (b boundMetric) values(labelValues []string) []string {
	return append([]string{b.module}, labelValues...)
}

func (b boundMetric) Add(x float64, labelValues []string) error {
	switch {
	case b.v.counter != nil:
		if x < 0 {
			return errors.New("a counter only goes up")
		}
		b.v.counter.WithLabelValues(b.values(labelValues)...).Add(x)
	case b.v.gauge != nil:
		b.v.gauge.WithLabelValues(b.values(labelValues)...).Add(x)
	default:
		return errors.New("a histogram takes observe")
	}
	return nil
}

func (b boundMetric) Set(x float64, labelValues []string) error {
	if b.v.gauge == nil {
		return fmt.Errorf("only a gauge can be set, not a %s", b.v.kind)
	}
	b.v.gauge.WithLabelValues(b.values(labelValues)...).Set(x)
	return nil
}

func (b boundMetric) Observe(x float64, labelValues []string) error {
	if b.v.hist == nil {
		return fmt.Errorf("only a histogram observes, not a %s", b.v.kind)
	}
	b.v.hist.WithLabelValues(b.values(labelValues)...).Observe(x)
	return nil
}

// background is the luaapi.BackgroundObserver of one module.
func (m *Metrics) background(module string) luaapi.BackgroundObserver {
	return backgroundMetrics{m, module}
}

type backgroundMetrics struct {
	m      *Metrics
	module string
}

func (b backgroundMetrics) Start(desc string) func(error) {
	b.m.BackgroundStarts.WithLabelValues(b.module, desc).Inc()
	inflight := b.m.BackgroundInflight.WithLabelValues(b.module, desc)
	inflight.Inc()
	timer := prometheus.NewTimer(b.m.BackgroundLatency.WithLabelValues(b.module, desc))
	return func(err error) {
		timer.ObserveDuration()
		inflight.Dec()
		if err != nil {
			b.m.BackgroundErrors.WithLabelValues(b.module, desc).Inc()
		}
	}
}
