package main

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/resumption-exporter/resumption_exporter/collector"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// defaultModuleName is used when a request names no module.
const defaultModuleName = "default"

// prober serves /probe: request → module → probe → result → key history →
// metrics, in that order and no other.
type prober struct {
	config        *SafeConfig
	history       *collector.KeyHistory
	sessions      *probe.Sessions
	timeoutOffset time.Duration
	logger        *slog.Logger
	probes        *prometheus.CounterVec
}

func (p *prober) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("module")
	if name == "" {
		name = defaultModuleName
	}
	module, ok := p.config.Module(name)
	if !ok {
		http.Error(w, "unknown module "+probe.Echo(name), http.StatusBadRequest)
		return
	}
	target := q.Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing", http.StatusBadRequest)
		return
	}
	t, err := probe.ParseTarget(target)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	target = t.String() // the one spelling that keys sessions, history and logs
	timeout, err := p.timeout(r, module.Timeout)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	module.Timeout = timeout
	if module.TicketWait >= timeout {
		module.TicketWait = timeout / 2
	}

	debug := q.Get("debug") == "true"
	lines := &probeLog{logger: p.logger.With("target", target, "module", name), keep: debug}
	res := probe.Run(r.Context(), target, name, &module, p.sessions, lines.logf)
	if res.Refused != nil {
		http.Error(w, res.Refused.Error(), http.StatusForbidden)
		return
	}
	state := p.history.Observe(target, name, res.KeyNames)
	outcome := "failure"
	if res.Success {
		outcome = "success"
	}
	p.probes.WithLabelValues(name, outcome).Inc()
	if !res.Success {
		lines.logger.Debug("Probe failed", "reason", res.Failure, "duration_seconds", res.Duration.Seconds())
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collector.NewProbeCollector(&res, &state))
	if debug {
		writeDebug(w, lines, reg)
		return
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// timeout follows blackbox_exporter: the scrape timeout Prometheus sends,
// less --timeout-offset so the answer arrives in time, capped by the
// module's own timeout.
func (p *prober) timeout(r *http.Request, moduleTimeout time.Duration) (time.Duration, error) {
	h := r.Header.Get("X-Prometheus-Scrape-Timeout-Seconds")
	if h == "" {
		return moduleTimeout, nil
	}
	secs, err := strconv.ParseFloat(h, 64)
	if err != nil || !(secs > 0) || math.IsInf(secs, 0) {
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %s is not a positive number", probe.Echo(h))
	}
	t := time.Duration(secs*float64(time.Second)) - p.timeoutOffset
	if t <= 0 {
		return 0, fmt.Errorf("scrape timeout %ss leaves no time after --timeout-offset %s", h, p.timeoutOffset)
	}
	return min(t, moduleTimeout), nil
}

// probeLog sends a probe's log lines to the exporter's logger at debug level
// and, for debug=true, keeps them for the response.
type probeLog struct {
	logger *slog.Logger
	keep   bool
	mu     sync.Mutex
	buf    bytes.Buffer
}

func (l *probeLog) logf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.logger.Debug(msg)
	if l.keep {
		l.mu.Lock()
		fmt.Fprintf(&l.buf, "%s %s\n", time.Now().UTC().Format("15:04:05.000"), msg)
		l.mu.Unlock()
	}
}

func writeDebug(w http.ResponseWriter, l *probeLog, reg *prometheus.Registry) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "Logs for the probe:\n")
	l.mu.Lock()
	w.Write(l.buf.Bytes())
	l.mu.Unlock()
	fmt.Fprintf(w, "\n\nMetrics that would have been returned:\n")
	mfs, err := reg.Gather()
	if err != nil {
		fmt.Fprintf(w, "gathering metrics: %v\n", err)
		return
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		enc.Encode(mf)
	}
}
