package authz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the decision metrics served on /metrics.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	// Reloads counts policy reloads by result ("ok" or "error").
	Reloads *prometheus.CounterVec
}

// NewMetrics registers the decision metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_decisions_total",
			Help: "Decisions by outcome and deciding rule (policy/rule).",
		}, []string{"outcome", "rule"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "airlock_check_duration_seconds",
			Help:    "Time to decide one request, approval hold included.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 30},
		}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_policy_reloads_total",
			Help: "Policy reloads by result: ok, or error (the previous set stays in force).",
		}, []string{"result"}),
	}
	reg.MustRegister(m.decisions, m.latency, m.Reloads)
	return m
}

func (m *Metrics) observe(r *Result, d time.Duration) {
	rule := ""
	if r.Decision.Policy != "" {
		rule = ruleName(r.Decision.Policy, r.Decision.Rule)
	}
	m.decisions.WithLabelValues(r.Outcome.String(), rule).Inc()
	m.latency.Observe(d.Seconds())
}
