package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
)

// HistoryMetrics are the exporter's own metrics about its KeyHistory, for
// its /metrics registry.
type HistoryMetrics struct {
	saveFailures prometheus.Counter
}

// NewHistoryMetrics registers resumption_exporter_key_histories (read from
// h at scrape time) and resumption_exporter_history_save_failures_total on
// reg. Like MustRegister, it panics if they are already registered.
func NewHistoryMetrics(reg prometheus.Registerer, h *history.KeyHistory) *HistoryMetrics {
	m := &HistoryMetrics{
		saveFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "resumption_exporter_history_save_failures_total",
			Help: "Failed writes of the key history file (--history.path).",
		}),
	}
	histories := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "resumption_exporter_key_histories",
		Help: "(target, module) ticket-key histories held in memory.",
	}, func() float64 { return float64(h.Len()) })
	reg.MustRegister(histories, m.saveFailures)
	return m
}

// SaveFailed counts one failed write of the history file.
func (m *HistoryMetrics) SaveFailed() { m.saveFailures.Inc() }
