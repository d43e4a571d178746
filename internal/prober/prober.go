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
	// Registry holds the probe's metrics, to serve or to gather; nil when
	// the probe was refused (Result.Refused).
	Registry *prometheus.Registry
	// Log holds the probe's log lines (one per record, for people) when Probe was asked to keep
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
	// The exporter's log gets target and module on every record; the
	// debug=true response answers one request that already names them.
	logger, kept := p.logger.With("target", target, "module", moduleName), (*probeLog)(nil)
	if keepLog {
		kept = newProbeLog()
		logger = slog.New(slog.NewMultiHandler(logger.Handler(), kept))
	}

	o := &Outcome{}
	o.Result = probe.Run(ctx, target, moduleName, &m, p.sessions, logger)
	if o.Result.Refused != nil {
		// Not a fact about the target: nothing enters its history, and
		// the caller answers the request with the refusal instead.
		return o
	}
	var err error
	if o.Keys, err = p.keys.ObserveDurable(ctx, target, moduleName, HistoryServerName(&o.Result), o.Result.KeyNames); err != nil {
		// The journal counted and logged a failed write; the answer is
		// still the probe's.
		logger.Debug("Key history not saved before answering", "err", err)
	}
	o.Registry = prometheus.NewRegistry()
	o.Registry.MustRegister(collector.NewProbeCollector(&o.Result, &o.Keys))
	if kept != nil {
		o.Log = kept.Bytes()
	}
	return o
}

// HistoryServerName is the server name r's key history is kept under: the
// name the probe sent, or empty when that is the target's own host (as every
// history saved before server names were kept is). Virtual hosts on one
// address, told apart by server_name, may have their own ticket keys; one
// history for them all would read as one pool whose rotations interleave.
func HistoryServerName(r *probe.Result) string {
	if t, err := probe.ParseTarget(r.Target); err == nil && t.Host == r.ServerName {
		return ""
	}
	return r.ServerName
}
