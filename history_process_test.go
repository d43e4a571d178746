package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
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
	for i := 0; i < 100; i++ { // the journal holds it before the probe answers
		if b, err := os.ReadFile(state + ".journal"); err == nil && strings.Contains(string(b), srv.Addr) {
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

// keyedNginx starts nginx with a fixed ticket-key file and returns it and
// the fingerprint of its key.
func keyedNginx(t *testing.T, pki *testservers.PKI, dir string) (*testservers.Server, float64) {
	t.Helper()
	key := make([]byte, 80)
	rand.Read(key)
	keyPath := filepath.Join(dir, "ticket.key")
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv := testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_ticket_key "+keyPath+";")
	return srv, float64(probe.Fingerprint(key[:16]))
}

// probeKey probes target through p and returns the key fingerprint and
// first-seen time it published (ok false when there are none).
func probeKey(t *testing.T, p *testservers.Server, target string) (fp, firstSeen float64, ok bool) {
	t.Helper()
	_, body := get(t, p.URL("/probe?target="+url.QueryEscape(target)), nil)
	mfs := parseMetrics(t, body)
	fp, _ = value(t, mfs, "tls_session_ticket_key_fingerprint", nil)
	firstSeen, ok = value(t, mfs, "tls_session_ticket_key_first_seen_timestamp_seconds", nil)
	return fp, firstSeen, ok
}

// exporterMetric returns the value of a metric on p's /metrics.
func exporterMetric(t *testing.T, p *testservers.Server, name string) float64 {
	t.Helper()
	_, body := get(t, p.URL("/metrics"), nil)
	v, ok := value(t, parseMetrics(t, body), name, nil)
	if !ok {
		t.Fatalf("/metrics has no %s", name)
	}
	return v
}

// The first sighting of a key is on disk when the probe that saw it
// answers: SIGKILL right after the answer loses nothing. A stale temporary
// file of an interrupted save is removed at start.
func TestHistoryCrashRightAfterFirstSighting(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	srv, fp := keyedNginx(t, pki, dir)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf("modules:\n  default:\n    tls_config:\n      ca_file: %s\n      server_name: localhost\n", pki.CAFile))
	state := filepath.Join(dir, "history.json")
	args := []string{"--config.file=" + cfg, "--history.path=" + state}

	p := testservers.StartExporter(t, args...)
	gotFP, first, ok := probeKey(t, p, srv.Addr)
	p.Kill() // at once: no save interval, no shutdown
	if gotFP != fp || !ok {
		t.Fatalf("first probe: fingerprint %v (want %v), first seen present %v", gotFP, fp, ok)
	}
	stale := filepath.Join(dir, ".history.json.tmp4242")
	if err := os.WriteFile(stale, make([]byte, 2<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	time.Sleep(10 * time.Millisecond) // a new sighting would get a later time
	p = testservers.StartExporter(t, args...)
	if _, again, ok := probeKey(t, p, srv.Addr); !ok || again != first {
		t.Errorf("after SIGKILL right after the first probe, first seen %v (present %v), was %v", again, ok, first)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("stale temporary file not removed at start: %v", err)
	}
	// A second exporter on the same history refuses to start.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang bound
	defer cancel()
	out, err := exec.CommandContext(ctx, testservers.BuildExporter(t), append(args, "--web.listen-address=127.0.0.1:0")...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "another process") {
		t.Errorf("second exporter on %s: %v, want exit 1 saying the history is in use:\n%s", state, err, out)
	}
	p.Stop()
}

// ipv6LoopbackSpellings returns n distinct spellings of [::1]:port.
func ipv6LoopbackSpellings(n, port int) []string {
	zeros := []string{"0", "00", "000", "0000"}
	out := make([]string, n)
	for i := range out {
		groups := make([]string, 7)
		for g, v := 0, i; g < 7; g, v = g+1, v/4 {
			groups[g] = zeros[v%4]
		}
		out[i] = fmt.Sprintf("[%s:1]:%d", strings.Join(groups, ":"), port)
	}
	return out
}

// The attack of issue 10: 10 000 failed probes of distinct spellings of a
// closed loopback port do not evict, even from a store of 3, the history of
// a target that showed a key, in memory or on disk.
func TestHistoryWipeAttack(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	srv, fp := keyedNginx(t, pki, dir)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf("modules:\n  default:\n    timeout: 2s\n    tls_config:\n      ca_file: %s\n      server_name: localhost\n", pki.CAFile))
	state := filepath.Join(dir, "history.json")
	args := []string{"--config.file=" + cfg, "--history.path=" + state, "--history.max-targets=3", "--history.save-interval=1s"}
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	p := testservers.StartExporter(t, args...)
	_, first, ok := probeKey(t, p, srv.Addr)
	if !ok {
		t.Fatal("no first-seen time for the keyed target")
	}
	spellings := ipv6LoopbackSpellings(10000, closed)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(spellings); i += 4 {
				if _, _, ok := probeKey(t, p, spellings[i]); ok {
					t.Errorf("%s: a closed port published a key", spellings[i])
					return
				}
			}
		})
	}
	wg.Wait()
	if got := exporterMetric(t, p, "resumption_exporter_key_histories"); got != 1 {
		t.Errorf("resumption_exporter_key_histories %v after the attack, want 1", got)
	}
	if got := exporterMetric(t, p, "resumption_exporter_key_histories_evicted_total"); got != 0 {
		t.Errorf("resumption_exporter_key_histories_evicted_total %v after the attack, want 0", got)
	}
	time.Sleep(1500 * time.Millisecond) // a periodic save ran
	p.Kill()

	p = testservers.StartExporter(t, args...)
	if gotFP, again, ok := probeKey(t, p, srv.Addr); gotFP != fp || !ok || again != first {
		t.Errorf("after the attack and a restart: fingerprint %v, first seen %v (present %v), was %v", gotFP, again, ok, first)
	}
	p.Stop()
}

// A --history.path the exporter cannot write stops it at start, with a
// message naming the path and the reason.
func TestHistoryPathUnusable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	writeFile(t, file, "")
	tests := []struct {
		name, path, reason string
		asNobody           bool
	}{
		{"missing directory", filepath.Join(dir, "missing", "history.json"), "no such file or directory", false},
		{"directory is a file", filepath.Join(file, "history.json"), "not a directory", false},
		{"path is a directory", dir, "not a regular file", false},
		{"directory not writable", "", "permission denied", true},
	}
	bin := testservers.BuildExporter(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second) // a hang bound: it must exit, not serve
			defer cancel()
			path := tt.path
			cmd := exec.CommandContext(ctx, bin)
			if tt.asNobody {
				cmd, path = unprivileged(ctx, t, bin)
			}
			cmd.Args = append(cmd.Args, "--history.path="+path, "--web.listen-address=127.0.0.1:0")
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != 1 || !strings.Contains(string(out), path) || !strings.Contains(string(out), tt.reason) {
				t.Errorf("exit %d, want 1 with a message naming %s and saying %q:\n%s", code, path, tt.reason, out)
			}
		})
	}
}

// unprivileged returns a command running the exporter so that it cannot
// write in a directory, and a history path in that directory. As root,
// which writes anywhere, it runs a copy of the binary as nobody.
func unprivileged(ctx context.Context, t *testing.T, bin string) (*exec.Cmd, string) {
	t.Helper()
	dir := t.TempDir()
	ro := filepath.Join(dir, "read-only")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(ro, "history.json")
	if os.Geteuid() != 0 {
		return exec.CommandContext(ctx, bin), path
	}
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "resumption_exporter")
	if err := os.WriteFile(copied, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, copied)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	return cmd, path
}
