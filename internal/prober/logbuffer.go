package prober

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// probeLog is a slog.Handler that keeps a probe's records, one line each,
// for the /probe?debug=true response: the time, the message, then the
// mechanism the record is about, if any, and the other attributes. Lines
// read like blackbox_exporter's debug output rather than like logfmt, since
// a person reads them.
type probeLog struct {
	attrs []slog.Attr // from WithAttrs; probe uses no groups
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

// Bytes returns a copy of the lines kept so far.
func (l *probeLog) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.buf.Bytes())
}
