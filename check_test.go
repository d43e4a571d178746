package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/findings"
	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// nginx configurations the check tests use.
const (
	// nginx's defaults with TLS 1.3 on: session ID sent but never resumed,
	// TLS 1.2 tickets and TLS 1.3 PSK resumed, lifetime 300 s.
	nginxDefaults = "ssl_protocols TLSv1.2 TLSv1.3;"
	// Nothing resumes: no tickets and no session cache at all (TLS 1.3
	// stateful tickets are still sent, and never accepted).
	nginxNoResumption = "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache off;"
)

// checkModuleConfig writes a config whose default module trusts pki and,
// unless serverName is empty, sends that server name.
func checkModuleConfig(t *testing.T, pki *testservers.PKI, serverName string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "config.yml")
	text := fmt.Sprintf("modules:\n  default:\n    timeout: 5s\n    tls_config:\n      ca_file: %s\n", pki.CAFile)
	if serverName != "" {
		text += "      server_name: " + serverName + "\n"
	}
	writeFile(t, cfg, text)
	return cfg
}

func checkOptions(configFile string) options {
	return options{
		configFile: configFile, timeoutOffset: 500 * time.Millisecond, activeWindow: 15 * time.Minute,
		retention: 168 * time.Hour, maxTargets: 10000, saveInterval: time.Minute,
	}
}

// checked is what one call of the check command printed.
type checked struct {
	code           int
	stdout, stderr string
}

// runCheckCommand calls the command function as main does after parsing.
func runCheckCommand(t *testing.T, o options, c checkCommand) checked {
	t.Helper()
	var stdout, stderr bytes.Buffer
	c.stdout, c.stderr = &stdout, &stderr
	if c.module == "" {
		c.module = defaultModuleName
	}
	if c.format == "" {
		c.format = "text"
	}
	if c.failOn == "" {
		c.failOn = "warning"
	}
	if c.watchInterval == 0 {
		c.watchInterval = 30 * time.Second
	}
	code := c.runContext(context.Background(), o, slog.New(slog.DiscardHandler))
	return checked{code, stdout.String(), stderr.String()}
}

// runCheckBinary runs the built exporter as a CI job would.
func runCheckBinary(t *testing.T, args ...string) checked {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testservers.BuildExporter(t), append([]string{"check"}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return checked{code, stdout.String(), stderr.String()}
}

func (c checked) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", c.code, c.stdout, c.stderr)
}

// The exit status, from the built binary: findings at or above --fail-on
// fail, a target that resumes nothing passes even --fail-on info, a target
// that cannot be checked is 2 with the reason on stderr.
func TestCheckExitStatusBinary(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	cfg := checkModuleConfig(t, pki, testservers.ServerName)
	defaults := testservers.StartNginx(t, pki, nginxDefaults)
	none := testservers.StartNginx(t, pki, nginxNoResumption)
	dead := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t)) // nothing listens there once FreePort returns
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout []string
		stderr string
	}{
		{"nginx defaults, --fail-on info", []string{"--config.file=" + cfg, "--fail-on=info", defaults.Addr}, 1,
			[]string{"FAIL", "session_ticket_resumption", "psk_resumption"}, ""},
		{"nginx defaults", []string{"--config.file=" + cfg, defaults.Addr}, 0,
			[]string{"PASS   2 findings (2 info), none at or above --fail-on"}, ""},
		{"nothing resumes, --fail-on info", []string{"--config.file", cfg, "--fail-on", "info", none.Addr}, 0,
			[]string{"PASS   no findings"}, ""},
		{"global flag after the command", []string{none.Addr, "--config.file=" + cfg}, 0, []string{"PASS"}, ""},
		{"nothing listening", []string{"--config.file=" + cfg, dead}, 2,
			[]string{"ERROR  could not check"}, "check: " + dead + ": no TLS handshake completed: dial"},
		{"bad target", []string{"--config.file=" + cfg, defaults.Addr, "no-port"}, 2, nil, `check: target "no-port": want host:port`},
		{"unknown module", []string{"--config.file=" + cfg, "--module=nope", defaults.Addr}, 2, nil, `check: unknown module "nope"`},
		{"no target", []string{"--config.file=" + cfg}, 2, nil, "required argument 'target' not provided"},
		{"bad --fail-on", []string{"--fail-on=error", defaults.Addr}, 2, nil, "must be one of info,warning,critical, got 'error'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := runCheckBinary(t, tt.args...)
			if got.code != tt.code {
				t.Fatalf("want exit %d, got %s", tt.code, got)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(got.stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, got)
				}
			}
			if tt.stderr != "" && !strings.Contains(got.stderr, tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, got)
			}
			if tt.code != 2 && got.stderr != "" {
				t.Errorf("stderr not empty:\n%s", got)
			}
			if strings.Contains(got.stdout, "\033[") {
				t.Errorf("colour codes written to a pipe:\n%q", got.stdout)
			}
		})
	}
}

// TestCheckText reads the text report of nginx's defaults line by line.
func TestCheckText(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	srv := testservers.StartNginx(t, pki, nginxDefaults)
	got := runCheckCommand(t, checkOptions(checkModuleConfig(t, pki, testservers.ServerName)), checkCommand{targets: []string{srv.Addr}})
	if got.code != 0 {
		t.Fatalf("want exit 0, got %s", got)
	}
	for _, want := range []string{
		srv.Addr + "  module default, server name localhost\n",
		"  versions        TLS 1.2 yes, TLS 1.3 yes\n",
		"  session ID      not resumed: the server answered our session ID with a new one (full handshake)\n",
		"  session ticket  resumed: the server echoed our session ID on a ticket offer\n",
		"  TLS 1.3 PSK     resumed: the ServerHello selected our pre_shared_key\n",
		"  TLS 1.2 tickets stateless, 16-byte key name, lifetime 300 s (5m0s)\n",
		"  TLS 1.3 tickets 2 per handshake, stateless, 16-byte key name, lifetime 300 s (5m0s), no 0-RTT\n",
		"  ticket key      fingerprint ",
		"  rotation        unknown: one probe cannot tell whether the key rotates: use --watch DURATION or --history.path\n",
		"  findings        2\n",
		"    info     TLS 1.2 session-ticket resumption supported  [session_ticket_resumption]\n",
		"             fix: https://github.com/resumption-exporter/resumption_exporter/blob/main/alerts/runbook.md#session-resumption-supported\n",
		"    info     TLS 1.3 PSK resumption supported  [psk_resumption]\n",
		"  PASS   2 findings (2 info), none at or above --fail-on\n",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, got.stdout)
		}
	}
}

// TestCheckJSON decodes the JSON report generically, so that the field names
// README.md documents are what is checked, not a Go round trip.
func TestCheckJSON(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	keyName := testservers.WriteNginxTicketKey(t, filepath.Join(dir, "ticket.key"))
	srv := testservers.StartNginx(t, pki, nginxDefaults+" ssl_session_ticket_key "+filepath.Join(dir, "ticket.key")+";")
	got := runCheckBinary(t, "--config.file="+checkModuleConfig(t, pki, ""), "--server-name=localhost",
		"--format=json", "--fail-on=info", srv.Addr)
	if got.code != 1 {
		t.Fatalf("want exit 1, got %s", got)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	targets := rep["targets"].([]any)
	if len(targets) != 1 {
		t.Fatalf("%d targets", len(targets))
	}
	tg := targets[0].(map[string]any)
	expectFields(t, "target", tg, map[string]any{
		"target": srv.Addr, "module": "default", "server_name": "localhost", "checked": true,
		"probes": 1.0, "probes_failed": 0.0, "highest_severity": "info", "failing": true,
		"versions":         map[string]any{"TLS 1.2": true, "TLS 1.3": true},
		"key_fingerprints": []any{float64(probe.Fingerprint(keyName))},
	})
	if _, err := time.Parse(time.RFC3339Nano, tg["start"].(string)); err != nil {
		t.Errorf("start: %v", err)
	}
	if d := tg["duration_seconds"].(float64); !(d > 0 && d < 10) {
		t.Errorf("duration_seconds %v", d)
	}
	mechs := tg["mechanisms"].([]any)
	wantMechs := []map[string]any{
		{"mechanism": "session_id", "version": "TLS 1.2", "status": "not_resumed", "resumed": false, "issued": true,
			"reason": "the server answered our session ID with a new one (full handshake)", "accepted_max_age_seconds": nil},
		{"mechanism": "session_ticket", "version": "TLS 1.2", "status": "resumed", "resumed": true, "issued": true,
			"reason": "the server echoed our session ID on a ticket offer", "accepted_max_age_seconds": nil},
		{"mechanism": "psk", "version": "TLS 1.3", "status": "resumed", "resumed": true, "issued": true,
			"reason": "the ServerHello selected our pre_shared_key", "accepted_max_age_seconds": nil},
	}
	if len(mechs) != len(wantMechs) {
		t.Fatalf("mechanisms %v", mechs)
	}
	for i, want := range wantMechs {
		m := mechs[i].(map[string]any)
		expectFields(t, want["mechanism"].(string), m, want)
		if d, _ := m["full_handshake_seconds"].(float64); !(d > 0) {
			t.Errorf("%s full_handshake_seconds %v", want["mechanism"], m["full_handshake_seconds"])
		}
	}
	tickets := tg["tickets"].([]any)
	for i, want := range []map[string]any{
		{"version": "TLS 1.2", "count": 1.0, "lifetime_seconds": 300.0, "format": "stateless", "key_name_bytes": 16.0, "max_early_data_bytes": 0.0},
		{"version": "TLS 1.3", "count": 2.0, "lifetime_seconds": 300.0, "format": "stateless", "key_name_bytes": 16.0, "max_early_data_bytes": 0.0},
	} {
		expectFields(t, want["version"].(string)+" tickets", tickets[i].(map[string]any), want)
	}
	expectFields(t, "rotation", tg["rotation"].(map[string]any), map[string]any{
		"known": false, "source": "none", "rotations": 0.0, "keys": []any{},
		"reason": "one probe cannot tell whether the key rotates: use --watch DURATION or --history.path",
	})
	fs := tg["findings"].([]any)
	wantFindings := []map[string]any{
		{"id": "session_ticket_resumption", "subject": "session_ticket", "severity": "info", "summary": "TLS 1.2 session-ticket resumption supported",
			"runbook_url": "https://github.com/resumption-exporter/resumption_exporter/blob/main/alerts/runbook.md#session-resumption-supported"},
		{"id": "psk_resumption", "subject": "psk", "severity": "info", "summary": "TLS 1.3 PSK resumption supported"},
	}
	if len(fs) != len(wantFindings) {
		t.Fatalf("findings %v", fs)
	}
	for i, want := range wantFindings {
		expectFields(t, "finding", fs[i].(map[string]any), want)
	}
	expectFields(t, "summary", rep["summary"].(map[string]any), map[string]any{
		"targets": 1.0, "not_checked": 0.0, "failing": 1.0, "passing": 0.0, "fail_on": "info", "exit_code": 1.0,
		"findings": map[string]any{"info": 2.0, "warning": 0.0, "critical": 0.0},
	})
}

func expectFields(t *testing.T, what string, got map[string]any, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: field %q missing", what, k)
			continue
		}
		if fmt.Sprint(g) != fmt.Sprint(w) {
			t.Errorf("%s: %s = %v, want %v", what, k, g, w)
		}
	}
}

// --server-name is the SNI and the certificate name, over the module's
// server_name.
func TestCheckServerName(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	srv := testservers.StartNginx(t, pki, nginxNoResumption)
	o := checkOptions(checkModuleConfig(t, pki, "wrong.example"))
	for _, tt := range []struct {
		flag string
		code int
		want string
	}{
		{"", 2, "certificate is valid for localhost, not wrong.example"},
		{testservers.ServerName, 0, "server name localhost"},
		{"other.example", 2, "not other.example"},
	} {
		got := runCheckCommand(t, o, checkCommand{targets: []string{srv.Addr}, serverName: tt.flag})
		if got.code != tt.code || !strings.Contains(got.stdout+got.stderr, tt.want) {
			t.Errorf("--server-name=%q: want exit %d and %q, got %s", tt.flag, tt.code, tt.want, got)
		}
	}
}

// Several targets run concurrently and print in argument order, a dead one
// making the whole check exit 2 while the others are still reported.
func TestCheckSeveralTargets(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	a := testservers.StartNginx(t, pki, nginxDefaults)
	b := testservers.StartNginx(t, pki, nginxNoResumption)
	dead := fmt.Sprintf("127.0.0.1:%d", testservers.FreePort(t))
	targets := []string{b.Addr, dead, a.Addr, b.Addr, a.Addr}
	got := runCheckCommand(t, checkOptions(checkModuleConfig(t, pki, testservers.ServerName)), checkCommand{targets: targets, failOn: "info"})
	if got.code != 2 {
		t.Fatalf("want exit 2, got %s", got)
	}
	var order []string
	for _, l := range strings.Split(got.stdout, "\n") {
		if host, _, ok := strings.Cut(l, "  module default"); ok {
			order = append(order, host)
		}
	}
	if fmt.Sprint(order) != fmt.Sprint(targets) {
		t.Errorf("targets printed in order %v, want %v", order, targets)
	}
	if !strings.Contains(got.stdout, "5 targets: 2 passing, 2 failing at --fail-on info, 1 not checked; exit status 2\n") {
		t.Errorf("summary line missing:\n%s", got)
	}
	if want := "check: " + dead + ": "; !strings.Contains(got.stderr, want) || strings.Count(got.stderr, "\n") != 1 {
		t.Errorf("stderr should give the one reason (%q...):\n%s", want, got.stderr)
	}
}

// --watch against nginx whose ticket key the test rotates: the rotation is
// reported with its interval, and both keys with their sightings.
func TestCheckWatchRotation(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	cur, prev := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
	testservers.WriteNginxTicketKey(t, prev)
	first := probe.Fingerprint(testservers.WriteNginxTicketKey(t, cur))
	srv := testservers.StartNginx(t, pki, fmt.Sprintf("%s ssl_session_ticket_key %s; ssl_session_ticket_key %s;", nginxDefaults, cur, prev))

	// The key is rotated between two probes, as a timer would at any
	// moment; a probe during the reload would see both keys, which the
	// history reads as overlap (see "overlapping keys are not a rotation").
	const rotateAfter = 2 * time.Second
	const watch, every = 8 * time.Second, 300 * time.Millisecond
	var callStart, reloaded time.Time
	var rotatedFP uint64
	pause := func(ctx context.Context, until time.Time) bool {
		if rotatedFP == 0 && time.Since(callStart) >= rotateAfter {
			os.Rename(cur, prev)
			rotatedFP = probe.Fingerprint(testservers.WriteNginxTicketKey(t, cur))
			srv.Reload(t)
			reloaded = time.Now()
		}
		return sleepUntil(ctx, until)
	}
	callStart = time.Now()
	got := runCheckCommand(t, checkOptions(checkModuleConfig(t, pki, testservers.ServerName)), checkCommand{
		targets: []string{srv.Addr}, format: "json", watch: watch, watchInterval: every, pause: pause,
	})
	rot := struct {
		fp       uint64
		reloaded time.Time
	}{rotatedFP, reloaded}
	if got.code != 0 {
		t.Fatalf("want exit 0, got %s", got)
	}
	var rep checkReport
	if err := json.Unmarshal([]byte(got.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	tg := rep.Targets[0]
	r := tg.Rotation
	if !r.Known || r.Source != "watch" || r.Rotations != 1 || r.ActiveKeys != 1 || r.ActiveWindowSeconds != 0.9 {
		t.Errorf("rotation %+v, want known from the watch, 1 rotation, 1 active key, window 0.9 s", r)
	}
	// The new key cannot be seen before the rename nor long after the
	// reload; the first key was seen at the start.
	interval := seconds(r.LastRotationIntervalSeconds)
	if latest := rot.reloaded.Sub(callStart) + 2*time.Second; interval < time.Second || interval > latest {
		t.Errorf("rotation interval %s, want from about %s (rename) to %s (reload done + a probe)", interval, rotateAfter, latest)
	}
	if len(r.Keys) != 2 || r.Keys[0].Fingerprint != first || r.Keys[1].Fingerprint != rot.fp ||
		!r.Keys[1].FirstSeen.After(r.Keys[0].LastSeen) {
		t.Errorf("keys seen %+v, want %d then %d", r.Keys, first, rot.fp)
	}
	// Both versions' lifetimes (300 s) exceed the measured interval: one
	// finding each, although they share an ID.
	var subjects []string
	for _, f := range tg.Findings {
		if f.ID == "ticket_lifetime_above_rotation_interval" {
			subjects = append(subjects, f.Subject)
		}
	}
	if fmt.Sprint(subjects) != "[TLS 1.2 TLS 1.3]" {
		t.Errorf("lifetime-above-rotation findings for %v, want both versions", subjects)
	}
	if tg.Probes < 4 || tg.Probes > int(watch/every)+1 || tg.ProbesFailed != 0 {
		t.Errorf("%d probes (%d failed) in a %s watch every %s", tg.Probes, tg.ProbesFailed, watch, every)
	}
	// The same report as text.
	var text bytes.Buffer
	writeTargetText(&text, tg, false)
	for _, want := range []string{
		"  rotation        rotated after " + human(interval) + " (1 rotation in ",
		"  keys seen       " + fmt.Sprint(first) + "  +0s … +",
		"                  " + fmt.Sprint(rot.fp) + "  +",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, text.String())
		}
	}
}

// --watch against a fixed key: unchanged for the whole watch.
func TestCheckWatchFixedKey(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	key := filepath.Join(t.TempDir(), "ticket.key")
	fp := probe.Fingerprint(testservers.WriteNginxTicketKey(t, key))
	srv := testservers.StartNginx(t, pki, nginxDefaults+" ssl_session_ticket_key "+key+";")
	got := runCheckCommand(t, checkOptions(checkModuleConfig(t, pki, testservers.ServerName)), checkCommand{
		targets: []string{srv.Addr}, watch: 3 * time.Second, watchInterval: 500 * time.Millisecond,
	})
	if got.code != 0 {
		t.Fatalf("want exit 0, got %s", got)
	}
	for _, want := range []string{
		"  rotation        key unchanged for ",
		"  keys seen       " + fmt.Sprint(fp) + "  +0s … +",
		"a key counts as replaced once unseen for 1.5s (3 × --watch.interval)",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, got.stdout)
		}
	}
}

// --history.path: the exporter's history says when the key was first seen,
// two days ago, so the key-rotation finding applies, whatever the spelling
// of the target; the file is read and never written.
func TestCheckHistoryFileReadOnly(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "ticket.key")
	fp := probe.Fingerprint(testservers.WriteNginxTicketKey(t, key))
	srv := testservers.StartNginx(t, pki, nginxDefaults+" ssl_session_ticket_key "+key+";")

	// An exporter's history: the key seen two days ago and an hour ago, of
	// the target in its canonical spelling (as the exporter keys it).
	_, port := mustSplit(t, srv.Addr)
	path := filepath.Join(dir, "history.json")
	seen := time.Now().Add(-48 * time.Hour)
	clock := func() time.Time { return seen }
	h := history.New(history.Options{Now: func() time.Time { return clock() }})
	h.Observe("localhost:"+port, defaultModuleName, []probe.KeyName{{Fingerprint: fp, Tickets: 3}})
	seen = time.Now().Add(-time.Hour)
	h.Observe("localhost:"+port, defaultModuleName, []probe.KeyName{{Fingerprint: fp, Tickets: 3}})
	if err := h.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	os.Chtimes(path, old, old)

	// Typed in another spelling, the target finds that history.
	got := runCheckBinary(t, "--config.file="+checkModuleConfig(t, pki, testservers.ServerName), "--history.path="+path, "LocalHost.:"+port)
	if got.code != 1 {
		t.Fatalf("want exit 1 for the unrotated key, got %s", got)
	}
	for _, want := range []string{
		"  rotation        exporter history since ",
		"no rotation seen",
		"    warning  ticket key in use since ",
		"[ticket_key_not_rotated]",
		"fix: https://github.com/resumption-exporter/resumption_exporter/blob/main/alerts/runbook.md#tlssessionticketkeynotrotated",
		"  FAIL   3 findings (1 warning, 2 info); warning is at or above --fail-on\n",
	} {
		if !strings.Contains(got.stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	after, _ := os.ReadFile(path)
	fi, _ := os.Stat(path)
	if !bytes.Equal(before, after) || !fi.ModTime().Equal(old) {
		t.Errorf("check wrote --history.path (mtime %s, was %s)", fi.ModTime(), old)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".history.json") {
			t.Errorf("check left %s behind", e.Name())
		}
	}

	// A target the history does not hold: rotation unknown, no finding.
	other := testservers.StartNginx(t, pki, nginxDefaults)
	got = runCheckCommand(t, func() options {
		o := checkOptions(checkModuleConfig(t, pki, testservers.ServerName))
		o.historyPath = path
		return o
	}(),
		checkCommand{targets: []string{other.Addr}})
	if got.code != 0 || !strings.Contains(got.stdout, "rotation        unknown: the history file holds nothing of this target and module") {
		t.Errorf("target not in the history: got %s", got)
	}
	missing := runCheckCommand(t, func() options { o := checkOptions(""); o.historyPath = filepath.Join(dir, "none.json"); return o }(),
		checkCommand{targets: []string{other.Addr}})
	if missing.code != 2 || !strings.Contains(missing.stderr, "none.json does not exist") {
		t.Errorf("missing history file: got %s", missing)
	}
}

func TestCheckPlanErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.yml")
	writeFile(t, bad, "modules:\n  a:\n    timout: 3s\n")
	for _, tt := range []struct {
		name string
		o    options
		c    checkCommand
		want string
	}{
		{"bad config", checkOptions(bad), checkCommand{targets: []string{"127.0.0.1:1"}}, "timout"},
		{"watch shorter than its interval", checkOptions(""), checkCommand{targets: []string{"127.0.0.1:1"}, watch: time.Second, watchInterval: 2 * time.Second}, "--watch.interval 2s"},
		{"negative watch", checkOptions(""), checkCommand{targets: []string{"127.0.0.1:1"}, watch: -time.Second}, "--watch must not be negative"},
		{"port out of range", checkOptions(""), checkCommand{targets: []string{"127.0.0.1:70000"}}, "port"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := runCheckCommand(t, tt.o, tt.c)
			if got.code != 2 || !strings.Contains(got.stderr, tt.want) || got.stdout != "" {
				t.Errorf("want exit 2 naming %q and no report, got %s", tt.want, got)
			}
		})
	}
}

func TestColourOnlyWhenWanted(t *testing.T) {
	t.Setenv("TERM", "xterm")
	t.Setenv("NO_COLOR", "")
	if !colourWanted() {
		t.Error("colour not wanted with TERM=xterm and NO_COLOR unset")
	}
	t.Setenv("NO_COLOR", "1")
	if colourWanted() {
		t.Error("colour wanted despite NO_COLOR")
	}
	t.Setenv("NO_COLOR", "")
	t.Setenv("TERM", "dumb")
	if colourWanted() {
		t.Error("colour wanted on a dumb terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer is a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) {
		t.Error("a regular file is a terminal")
	}
	if got := painter(true).paint(styleRed, "x"); got != "\033[31mx\033[0m" {
		t.Errorf("paint: %q", got)
	}
	if got := painter(false).paint(styleRed, "x"); got != "x" {
		t.Errorf("paint without colour: %q", got)
	}
}

func TestNextSlot(t *testing.T) {
	start := time.Unix(1000, 0)
	for _, tt := range []struct {
		elapsed, want time.Duration
	}{
		{0, 30 * time.Second},
		{29 * time.Second, 30 * time.Second},
		{30 * time.Second, 60 * time.Second},
		{95 * time.Second, 120 * time.Second}, // a slow probe skips the slot it overran
	} {
		if got := nextSlot(start, 30*time.Second, start.Add(tt.elapsed)); got.Sub(start) != tt.want {
			t.Errorf("after %s: next at +%s, want +%s", tt.elapsed, got.Sub(start), tt.want)
		}
	}
}

// The rotation line for each state a key history can be in.
func TestRotationText(t *testing.T) {
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := start.Add(d); return &t }
	key := func(fp uint64, from, to time.Duration) keyReport {
		return keyReport{Fingerprint: fp, FirstSeen: start.Add(from), LastSeen: start.Add(to), Probes: 3}
	}
	for _, tt := range []struct {
		name string
		r    rotationReport
		want string
	}{
		{"one probe", rotationReport{Reason: "one probe cannot tell"}, "  rotation        unknown: one probe cannot tell\n"},
		{"unchanged", rotationReport{Known: true, Source: historyWatch, ActiveKeys: 1, KeyFirstSeen: at(0), WatchedSeconds: 60,
			Keys: []keyReport{key(7, 0, time.Minute)}},
			"  rotation        key unchanged for 1m0s (21 probes)\n"},
		{"rotated", rotationReport{Known: true, Source: historyWatch, ActiveKeys: 1, KeyFirstSeen: at(61 * time.Second), Rotations: 1,
			LastRotationIntervalSeconds: 61, WatchedSeconds: 600},
			"  rotation        rotated after 1m1s (1 rotation in 10m0s of watching)\n"},
		{"overlap", rotationReport{Known: true, Source: historyWatch, ActiveKeys: 1, KeyFirstSeen: at(30 * time.Second), WatchedSeconds: 60,
			Keys: []keyReport{key(7, 0, 30*time.Second), key(8, 30*time.Second, time.Minute)}},
			"  rotation        key in use for 30s; 1 earlier key overlapped it and then stopped (not counted as a rotation: one probe saw both)\n"},
		{"balancer", rotationReport{Known: true, Source: historyWatch, ActiveKeys: 2, KeyFirstSeen: at(0), WatchedSeconds: 60},
			"  rotation        2 keys in use, none replaced in 1m0s"},
		{"history file", rotationReport{Known: true, Source: historyFile, ActiveKeys: 1, Since: at(-72 * time.Hour), KeyFirstSeen: at(-48 * time.Hour),
			WatchedSeconds: 72 * 3600, Rotations: 2, LastRotationIntervalSeconds: 86400},
			"  rotation        exporter history since 2026-11-28T08:00:00Z (72h0m0s): key first seen 2026-11-29T08:00:00Z (48h1m0s ago), 2 rotations, the last after 24h0m0s\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			line := func(label, format string, args ...any) {
				fmt.Fprintf(&b, "  %-16s%s\n", label, fmt.Sprintf(format, args...))
			}
			writeRotationText(line, targetReport{Start: start, DurationSeconds: 60, Probes: 21, Rotation: tt.r})
			if !strings.HasPrefix(b.String(), tt.want) {
				t.Errorf("got\n%s\nwant it to start with\n%s", b.String(), tt.want)
			}
		})
	}
}

// jsonPaths lists the leaf fields of a report type as README.md names them:
// targets[].mechanisms[].status.
func jsonPaths(t reflect.Type, prefix string) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
		return []string{prefix}
	}
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, jsonPaths(ft.Elem(), path+"[]")...)
			continue
		}
		out = append(out, jsonPaths(ft, path)...)
	}
	return out
}

// TestJSONFieldsDocumented keeps README.md's JSON field table and the report
// types in step, both ways.
func TestJSONFieldsDocumented(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "## Checking from a terminal or CI\n")
	if !ok {
		t.Fatal("README.md has no section \"Checking from a terminal or CI\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, table, ok := strings.Cut(section, "| field | meaning |\n|---|---|\n")
	if !ok {
		t.Fatal("the section has no JSON field table")
	}
	documented := map[string]bool{}
	for _, row := range strings.Split(table, "\n") {
		if !strings.HasPrefix(row, "| `") {
			break
		}
		cells := strings.Split(row, "|")
		var first string
		for _, name := range regexp.MustCompile("`([^`]+)`").FindAllStringSubmatch(cells[1], -1) {
			path := name[1]
			if strings.HasPrefix(path, ".") {
				path = first[:strings.LastIndex(first, ".")] + path
			} else {
				first = path
			}
			documented[path] = true
		}
	}
	actual := map[string]bool{}
	for _, p := range jsonPaths(reflect.TypeOf(checkReport{}), "") {
		actual[p] = true
		if !documented[p] {
			t.Errorf("JSON field %s is not in README.md's table", p)
		}
	}
	for p := range documented {
		if !actual[p] {
			t.Errorf("README.md documents JSON field %s, which the report lacks", p)
		}
	}
}

// Ctrl-C ends a watch early with the report of what was seen, from the
// built binary.
func TestCheckWatchInterrupted(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	srv := testservers.StartNginx(t, pki, nginxNoResumption)
	cmd := exec.Command(testservers.BuildExporter(t), "check", "--config.file="+checkModuleConfig(t, pki, testservers.ServerName),
		"--watch=1m", "--watch.interval=500ms", "--format=json", srv.Addr)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(2 * time.Second)
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted watch: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("the watch did not end on SIGINT")
	}
	var rep checkReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("no report after SIGINT: %v\n%s", err, stdout.String())
	}
	tg := rep.Targets[0]
	if !tg.Checked || tg.Probes < 2 || tg.ProbesFailed != 0 || tg.DurationSeconds > 10 {
		t.Errorf("after 2 s of a 1m watch: checked %v, %d probes (%d failed), %vs", tg.Checked, tg.Probes, tg.ProbesFailed, tg.DurationSeconds)
	}
	// This nginx issues no tickets that name a key: the report has no
	// "since" (the history's zero time) and watched nothing.
	var raw struct {
		Targets []struct {
			Rotation map[string]any `json:"rotation"`
		} `json:"targets"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	rot := raw.Targets[0].Rotation
	if _, ok := rot["since"]; ok || rot["watched_seconds"] != 0.0 || rot["known"] != false || !strings.Contains(fmt.Sprint(rot["reason"]), "name no key") {
		t.Errorf("rotation of a key-less target: %v, want no since, watched_seconds 0, known false, reason naming no key", rot)
	}
}

// The progress line is redrawn in place on stderr and erased before each
// report and at the end, so that a terminal shows only the report after.
func TestProgressLine(t *testing.T) {
	var stdout, stderr bytes.Buffer
	o := &checkOutput{stdout: &stdout, stderr: &stderr, format: "text", progressOn: true}
	p := &checkPlan{moduleName: defaultModuleName, failOn: findings.Warning, historySource: historyNone}
	o.start(2, 4)
	o.probed()
	time.Sleep(1200 * time.Millisecond) // two redraws
	o.target(p, &targetRun{target: "a.example:443", found: map[string]findings.Finding{}})
	o.probed()
	time.Sleep(600 * time.Millisecond)
	o.target(p, &targetRun{target: "b.example:443", found: map[string]findings.Finding{}})
	rep := p.report(nil)
	if err := o.finish(rep); err != nil {
		t.Fatal(err)
	}
	progress := stderr.String()
	for _, want := range []string{
		"\r\033[Kchecking: 0 of 2 targets done, 1 of about 4 probes",
		"\r\033[Kchecking: 1 of 2 targets done, 2 of about 4 probes",
	} {
		if !strings.Contains(progress, want) {
			t.Errorf("progress lacks %q: %q", want, progress)
		}
	}
	if !strings.HasSuffix(progress, "\r\033[K") {
		t.Errorf("progress line not erased at the end: %q", progress)
	}
	if !strings.Contains(stdout.String(), "a.example:443  module default") || strings.Contains(stdout.String(), "\r") {
		t.Errorf("report: %q", stdout.String())
	}
}

// `serve` is the default command: naming it does what no command does.
func TestServeCommand(t *testing.T) {
	p := testservers.StartExporter(t, "serve", "--config.file="+writeTempConfig(t))
	if code, body := get(t, p.URL("/config"), nil); code != 200 || !strings.Contains(body, "only:") {
		t.Errorf("/config after `serve`: %d\n%s", code, body)
	}
}

func writeTempConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, path, "modules:\n  only: {}\n")
	return path
}
