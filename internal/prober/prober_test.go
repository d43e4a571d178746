package prober

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// testModule decodes a module the way the configuration file does, trusting
// pki's CA.
func testModule(t *testing.T, pki *testservers.PKI) probe.Module {
	t.Helper()
	var m probe.Module
	src := fmt.Sprintf("timeout: 5s\nticket_wait: 500ms\ntls_config:\n  ca_file: %s\n  server_name: %s\n", pki.CAFile, testservers.ServerName)
	if err := yaml.Unmarshal([]byte(src), &m); err != nil {
		t.Fatal(err)
	}
	if err := m.Compile(); err != nil {
		t.Fatal(err)
	}
	return m
}

// gauge returns the value of the one series of name in o's registry.
func gauge(t *testing.T, o *Outcome, name string) (float64, bool) {
	t.Helper()
	mfs, err := o.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			ms := mf.GetMetric()
			if len(ms) != 1 {
				t.Fatalf("%s has %d series, want 1", name, len(ms))
			}
			return ms[0].GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// Probe runs the whole pipeline: the probe, the key history, the metrics,
// and the sessions that the next probe offers again. A crypto/tls server's
// tickets name no key, so the target gets no key history and no history
// gauge (TestProbeKeyHistory has one that names its key).
func TestProbePipeline(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := testservers.ServeTLS(t, pki, nil)
	m := testModule(t, pki)
	p := New(probe.NewSessions(probe.SessionsOptions{}), history.New(history.Options{}), nil)

	first := p.Probe(context.Background(), addr, "tls", m, false)
	if !first.Result.Success {
		t.Fatalf("probe of a crypto/tls server failed: %s", first.Result.Failure)
	}
	if v, _ := gauge(t, first, "probe_success"); v != 1 {
		t.Errorf("probe_success = %v, want 1", v)
	}
	if first.Keys != (history.KeyState{}) {
		t.Errorf("a target showing no key name got a key history: %+v", first.Keys)
	}
	if v, ok := gauge(t, first, "tls_session_ticket_history_since_timestamp_seconds"); ok {
		t.Errorf("history since = %v for a target with no key history", v)
	}
	if first.Log != nil {
		t.Errorf("log kept without being asked for:\n%s", first.Log)
	}

	second := p.Probe(context.Background(), addr, "tls", m, false)
	if age, ok := second.Result.AcceptedMaxAge[probe.MechanismPSK]; !ok || age <= 0 {
		t.Errorf("second probe: PSK accepted age %v (present %v); the first probe's session was not offered", age, ok)
	}
}

// A target whose tickets name their key (nginx with a key file) gets a key
// history that the next probe continues, and Probe returns only once the
// key's first sighting is in the journal.
func TestProbeKeyHistory(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "ticket.key")
	key := bytes.Repeat([]byte{7}, 80)
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_ticket_key "+keyFile+";")
	path := filepath.Join(dir, "history.json")
	keys, err := history.Open(path, history.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	p := New(probe.NewSessions(probe.SessionsOptions{}), keys, nil)
	m := testModule(t, pki)

	first := p.Probe(context.Background(), srv.Addr, "tls", m, false)
	if !first.Result.Success || first.Keys.Since.IsZero() {
		t.Fatalf("probe of nginx: success %v (%s), key history %+v", first.Result.Success, first.Result.Failure, first.Keys)
	}
	journal, err := os.ReadFile(path + ".journal")
	if err != nil || !bytes.Contains(journal, []byte(fmt.Sprint(probe.Fingerprint(key[:16])))) {
		t.Errorf("Probe answered before the key's first sighting was journaled (%v):\n%s", err, journal)
	}
	if v, ok := gauge(t, first, "tls_session_ticket_history_since_timestamp_seconds"); !ok || v != float64(first.Keys.Since.UnixNano())/1e9 {
		t.Errorf("history since = %v (present %v), want the history's %s", v, ok, first.Keys.Since)
	}
	second := p.Probe(context.Background(), srv.Addr, "tls", m, false)
	if !second.Keys.Since.Equal(first.Keys.Since) || !second.Keys.NewestActiveFirstSeen.Equal(first.Keys.NewestActiveFirstSeen) {
		t.Errorf("second probe: key history %+v, want the first probe's %+v", second.Keys, first.Keys)
	}
}

// The probe's lines are debug records carrying target and module: they go
// to the exporter's logger when it logs at debug level, and into
// Outcome.Log when asked for, whatever the exporter's level.
func TestProbeLog(t *testing.T) {
	pki := testservers.NewPKI(t)
	good := testservers.ServeTLS(t, pki, nil)
	closing := testservers.ServeTCP(t, func(c net.Conn) {}) // closes at once
	m := testModule(t, pki)

	tests := []struct {
		name      string
		target    string
		level     slog.Level
		keep      bool
		exporter  []string // lines the exporter's log must hold
		kept      []string // lines Outcome.Log must hold; nil: no Log
		successes float64
	}{
		{"debug exporter, no debug output", good, slog.LevelDebug, false,
			[]string{"level=DEBUG msg=Probing target=" + good + " module=tls addr="}, nil, 1},
		{"info exporter, debug output", good, slog.LevelInfo, true,
			nil, []string{"Probing | addr=" + good}, 1},
		{"failed probe, debug output", closing, slog.LevelInfo, true,
			nil, []string{"Probe failed | reason="}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var exporterLog bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&exporterLog, &slog.HandlerOptions{Level: tt.level}))
			p := New(nil, history.New(history.Options{}), logger)
			o := p.Probe(context.Background(), tt.target, "tls", m, tt.keep)
			if v, _ := gauge(t, o, "probe_success"); v != tt.successes {
				t.Errorf("probe_success = %v, want %v (%s)", v, tt.successes, o.Result.Failure)
			}
			for _, w := range tt.exporter {
				if !strings.Contains(exporterLog.String(), w) {
					t.Errorf("exporter log lacks %q:\n%s", w, exporterLog.String())
				}
			}
			if tt.exporter == nil && exporterLog.Len() > 0 {
				t.Errorf("exporter at level %s logged debug records:\n%s", tt.level, exporterLog.String())
			}
			if tt.kept == nil && o.Log != nil {
				t.Errorf("Log kept without being asked for:\n%s", o.Log)
			}
			for _, w := range tt.kept {
				if !bytes.Contains(o.Log, []byte(w)) {
					t.Errorf("Log lacks %q:\n%s", w, o.Log)
				}
			}
		})
	}
}
