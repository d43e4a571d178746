package probe

import (
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// recordLog is a slog.Handler that keeps every record with its attributes.
type recordLog struct {
	mu      sync.Mutex
	records []map[string]string // attribute key -> value, plus "msg" and "level"
}

func (l *recordLog) Enabled(context.Context, slog.Level) bool { return true }
func (l *recordLog) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *recordLog) WithGroup(string) slog.Handler            { return l }

func (l *recordLog) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	l.mu.Lock()
	l.records = append(l.records, m)
	l.mu.Unlock()
	return nil
}

// count returns how many records hold text in their message or an attribute.
func (l *recordLog) count(text string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.records {
		for _, v := range r {
			if strings.Contains(v, text) {
				n++
				break
			}
		}
	}
	return n
}

// find returns the first record whose attributes include all of want.
func (l *recordLog) find(want map[string]string) map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, r := range l.records {
		for k, v := range want {
			if r[k] != v {
				continue next
			}
		}
		return r
	}
	return nil
}

// Every probe log line is a Debug record whose facts are attributes, so
// that --log.level=debug output can be filtered by mechanism or step.
func TestRunLogsStructuredRecords(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 })
	var log recordLog
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, slog.New(&log))
	if !r.Success {
		t.Fatalf("probe failed: %s", r.Failure)
	}
	for _, rec := range log.records {
		if rec["level"] != "DEBUG" {
			t.Errorf("record at level %s: %v", rec["level"], rec)
		}
	}
	for _, want := range []map[string]string{
		{"msg": "Probing", "addr": addr},
		{"msg": "Check done", "mechanism": "session_ticket", "completed": "true", "resumed": "true"},
		{"msg": "Version not supported", "step": "full_handshake", "version": "TLS 1.3"},
		{"msg": "Tickets seen", "step": "tickets", "version": "TLS 1.2"},
	} {
		if log.find(want) == nil {
			t.Errorf("no record with %v among %v", want, log.records)
		}
	}
	if rec := log.find(map[string]string{"msg": "Version not supported"}); rec != nil && rec["err"] == "" {
		t.Errorf("refusal record without err: %v", rec)
	}
	// nil discards.
	if r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, nil); !r.Success {
		t.Fatalf("probe with a nil logger failed: %s", r.Failure)
	}
}
