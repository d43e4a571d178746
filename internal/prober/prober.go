// Package prober runs one probe from end to end: probe.Run, then the key
// history, then the probe's metrics. The /probe handler and the tests that
// must see what the handler publishes call the same Probe, so the order —
// request → module → probe → result → key history → metrics — is written
// once.
//
// It is not part of collector, which opens no sockets: Probe dials the
// target through probe.Run. It is internal because only the exporter's
// main package and its tests wire it.
package prober

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector"
	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Prober probes targets and keeps what outlives one probe: the exporter's
// earlier sessions per target and the ticket-key history. It is safe for
// concurrent use.
type Prober struct {
	sessions *probe.Sessions
	keys     *history.KeyHistory
	logger   *slog.Logger
}

// New returns a Prober that offers earlier sessions from sessions (nil: none,
// so no accepted age is measured), records ticket keys in keys and logs each
// probe's lines to logger at debug level.
func New(sessions *probe.Sessions, keys *history.KeyHistory, logger *slog.Logger) *Prober {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Prober{sessions: sessions, keys: keys, logger: logger}
}

// Outcome is one probe and what followed from it.
type Outcome struct {
	Result probe.Result
	// Keys is the target's key history after this probe.
	Keys history.KeyState
	// Registry holds the probe's metrics, to serve or to gather.
	Registry *prometheus.Registry
	// Log holds the probe's log lines (logfmt) when Probe was asked to keep
	// them, for /probe?debug=true; nil otherwise.
	Log []byte
}

// Probe probes target with m, named moduleName, records the ticket keys it
// saw and builds its metrics. Only a probe that saw a ticket key creates a
// key history; a failed one moves an existing history's last-probe time and
// never erases a key. When the probe saw a key for the first time or
// confirmed a rotation, Probe returns once the history's journal holds it,
// so that a crash after the answer loses nothing the answer showed. The
// probe's log lines are debug records with the attributes target and
// module; with keepLog they are also returned in Outcome.Log.
func (p *Prober) Probe(ctx context.Context, target, moduleName string, m probe.Module, keepLog bool) *Outcome {
	logger, buf := p.logger, (*lockedBuffer)(nil)
	if keepLog {
		buf = &lockedBuffer{}
		logger = slog.New(teeHandler{logger.Handler(), slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	}
	logger = logger.With("target", target, "module", moduleName)

	o := &Outcome{}
	// MERGE(probe-logger): probe.Run takes the *slog.Logger there; pass logger instead of logf(ctx, logger) and delete logf.
	o.Result = probe.Run(ctx, target, moduleName, &m, p.sessions, logf(ctx, logger))
	if !o.Result.Success {
		logger.Debug("Probe failed", "reason", o.Result.Failure, "duration_seconds", o.Result.Duration.Seconds())
	}
	var err error
	if o.Keys, err = p.keys.ObserveDurable(ctx, target, moduleName, o.Result.KeyNames); err != nil {
		// The journal counted and logged a failed write; the answer is
		// still the probe's.
		logger.Debug("Key history not saved before answering", "err", err)
	}
	o.Registry = prometheus.NewRegistry()
	o.Registry.MustRegister(collector.NewProbeCollector(&o.Result, &o.Keys))
	if buf != nil {
		o.Log = buf.Bytes()
	}
	return o
}

// logf adapts logger to probe.Run's printf-style log function, formatting
// only when debug records are wanted.
func logf(ctx context.Context, logger *slog.Logger) func(format string, args ...any) {
	return func(format string, args ...any) {
		if logger.Enabled(ctx, slog.LevelDebug) {
			logger.Debug(fmt.Sprintf(format, args...))
		}
	}
}
