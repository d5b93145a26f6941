package engine

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the engine's Prometheus metrics, all prefixed luamods_.
type Metrics struct {
	CallbackCalls   *prometheus.CounterVec   // callback, module
	CallbackErrors  *prometheus.CounterVec   // callback, module
	CallbackLatency *prometheus.HistogramVec // callback
	Inflight        *prometheus.GaugeVec     // module
	Reloads         *prometheus.CounterVec   // result: ok, failed, unchanged
	RouteRequests   *prometheus.CounterVec   // route, method, code
	RouteLatency    *prometheus.HistogramVec // route
	generation      prometheus.Gauge
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
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_reloads_total",
			Help: "Reloads by result."}, []string{"result"}),
		RouteRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "luamods_route_requests_total",
			Help: "Requests served by module web resources."}, []string{"route", "method", "code"}),
		RouteLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "luamods_route_duration_seconds",
			Help: "Time to serve a module web resource.", Buckets: buckets}, []string{"route"}),
		generation: prometheus.NewGauge(prometheus.GaugeOpts{Name: "luamods_generation",
			Help: "The number of the generation of modules serving now."}),
	}
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "luamods_build_info", Help: "luamods build.",
		ConstLabels: prometheus.Labels{"version": Version}})
	build.Set(1)
	reg.MustRegister(m.CallbackCalls, m.CallbackErrors, m.CallbackLatency, m.Inflight, m.Reloads,
		m.RouteRequests, m.RouteLatency, m.generation, build)
	for _, r := range []string{"ok", "failed", "unchanged"} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}
