package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// The key history survives a SIGKILL: first-seen times are saved the moment
// a key appears, not only at shutdown. A truncated file is logged and the
// exporter starts with an empty history instead of crashing.
func TestHistorySurvivesKillAndCorruption(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	key := make([]byte, 80)
	rand.Read(key)
	keyPath := filepath.Join(dir, "ticket.key")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_ticket_key "+keyPath+";")
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf("modules:\n  default:\n    tls_config:\n      ca_file: %s\n      server_name: localhost\n", pki.CAFile))
	state := filepath.Join(dir, "history.json")
	args := []string{"--config.file=" + cfg, "--history.path=" + state}

	firstSeen := func(p *testservers.Server) float64 {
		t.Helper()
		_, body := get(t, p.URL("/probe?target="+srv.Addr), nil)
		mfs := parseMetrics(t, body)
		if fp, _ := value(t, mfs, "tls_session_ticket_key_fingerprint", nil); fp != float64(probe.Fingerprint(key[:16])) {
			t.Fatalf("fingerprint %v, want the key file's", fp)
		}
		v, ok := value(t, mfs, "tls_session_ticket_key_first_seen_timestamp_seconds", nil)
		if !ok {
			t.Fatalf("no first-seen time:\n%s", body)
		}
		return v
	}

	p := testservers.StartExporter(t, args...)
	first := firstSeen(p)
	for i := 0; i < 100; i++ { // the save is immediate but asynchronous
		if b, err := os.ReadFile(state); err == nil && strings.Contains(string(b), srv.Addr) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1100 * time.Millisecond) // a restarted exporter would see a later second
	p.Kill()

	p = testservers.StartExporter(t, args...)
	if again := firstSeen(p); again != first {
		t.Errorf("after SIGKILL and restart, first seen %v, was %v", again, first)
	}
	p.Stop()

	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), string(key[:16])) {
		t.Error("state file holds the raw key name")
	}
	writeFile(t, state, string(b[:len(b)/2]))
	p = testservers.StartExporter(t, args...)
	if !strings.Contains(p.Logs(), "Cannot read key history") {
		t.Errorf("truncated state file not reported:\n%s", p.Logs())
	}
	if kept, _ := filepath.Glob(state + ".bad-*"); len(kept) != 1 {
		t.Errorf("the unreadable file was not kept aside: %v", kept)
	}
	if fresh := firstSeen(p); fresh <= first {
		t.Errorf("with an unreadable state file, first seen %v should start afresh (was %v)", fresh, first)
	}
}
