package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
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
		http.Error(w, fmt.Sprintf("unknown module %q", name), http.StatusBadRequest)
		return
	}
	target := q.Get("target")
	if target == "" {
		http.Error(w, "target parameter is missing", http.StatusBadRequest)
		return
	}
	if _, _, err := probe.ParseTarget(target); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
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
	logger := p.logger.With("target", target, "module", name)
	lines := newProbeLog()
	probeLogger := logger
	if debug {
		probeLogger = slog.New(slog.NewMultiHandler(logger.Handler(), lines))
	}
	res := probe.Run(r.Context(), target, name, &module, p.sessions, probeLogger)
	state := p.history.Observe(target, name, res.KeyNames)
	outcome := "failure"
	if res.Success {
		outcome = "success"
	}
	p.probes.WithLabelValues(name, outcome).Inc()
	if !res.Success {
		logger.Debug("Probe failed", "reason", res.Failure, "duration_seconds", res.Duration.Seconds())
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
		return 0, fmt.Errorf("X-Prometheus-Scrape-Timeout-Seconds %q is not a positive number", h)
	}
	t := time.Duration(secs*float64(time.Second)) - p.timeoutOffset
	if t <= 0 {
		return 0, fmt.Errorf("scrape timeout %ss leaves no time after --timeout-offset %s", h, p.timeoutOffset)
	}
	return min(t, moduleTimeout), nil
}

// probeLog is a slog.Handler that keeps a probe's records, one line each,
// for the debug=true response: the time, the message, then the mechanism
// the record is about, if any, and the other attributes.
type probeLog struct {
	attrs []slog.Attr // from WithAttrs; groups are not used by probe
	mu    *sync.Mutex
	buf   *bytes.Buffer
}

func newProbeLog() *probeLog { return &probeLog{mu: &sync.Mutex{}, buf: &bytes.Buffer{}} }

func (l *probeLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *probeLog) Handle(_ context.Context, r slog.Record) error {
	var mechanism string
	var kv []string
	add := func(a slog.Attr) bool {
		if a.Key == "mechanism" {
			mechanism = a.Value.String()
		} else {
			kv = append(kv, a.String())
		}
		return true
	}
	for _, a := range l.attrs {
		add(a)
	}
	r.Attrs(add)
	line := r.Time.UTC().Format("15:04:05.000") + " " + r.Message + " |"
	if mechanism != "" {
		line += " " + mechanism + ":"
	}
	line += " " + strings.Join(kv, " ")
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintln(l.buf, line)
	return nil
}

func (l *probeLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &probeLog{attrs: append(slices.Clip(l.attrs), attrs...), mu: l.mu, buf: l.buf}
}

func (l *probeLog) WithGroup(string) slog.Handler { return l }

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
