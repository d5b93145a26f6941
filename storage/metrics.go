package storage

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the database interaction metrics, by module and desc. Make
// them once per registry: they outlive the databases a reload replaces.
type Metrics struct {
	interactions *prometheus.CounterVec
	latency      *prometheus.HistogramVec
}

// NewMetrics makes the metrics and registers them in reg (when not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		interactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "luamods_db_interactions_total",
			Help: "api.run_db_interaction transactions by module, desc and result (ok, error).",
		}, []string{"module", "desc", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "luamods_db_interaction_seconds",
			Help:    "Duration of api.run_db_interaction transactions, from BEGIN to COMMIT or ROLLBACK.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"module", "desc"}),
	}
	if reg != nil {
		reg.MustRegister(m.interactions, m.latency)
	}
	return m
}

func (m *Metrics) observe(module, desc, result string, took time.Duration) {
	if m == nil {
		return
	}
	m.interactions.WithLabelValues(module, desc, result).Inc()
	m.latency.WithLabelValues(module, desc).Observe(took.Seconds())
}
