package collector

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
)

// NewHistoryMetrics registers on reg the exporter's own metrics about h, all
// read from h at scrape time: resumption_exporter_key_histories,
// resumption_exporter_key_histories_evicted_total and
// resumption_exporter_history_save_failures_total. Like MustRegister, it
// panics if they are already registered.
func NewHistoryMetrics(reg prometheus.Registerer, h *history.KeyHistory) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "resumption_exporter_key_histories",
			Help: "(target, module) ticket-key histories held in memory.",
		}, func() float64 { return float64(h.Len()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "resumption_exporter_key_histories_evicted_total",
			Help: "Ticket-key histories dropped to stay within --history.max-targets, the least recently seen with a key first.",
		}, func() float64 { return float64(h.Evicted()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "resumption_exporter_history_save_failures_total",
			Help: "Failed writes of the key history file (--history.path).",
		}, func() float64 { return float64(h.WriteFailures()) }),
	)
}
