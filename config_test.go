package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

func TestEmbeddedConfig(t *testing.T) {
	c, err := parseConfig("config.yml", defaultConfig)
	if err != nil {
		t.Fatalf("embedded config.yml: %v", err)
	}
	want := map[string]struct {
		checks   int
		versions int
		insecure bool
	}{
		"default":  {3, 2, false},
		"insecure": {3, 2, true},
		"tls13":    {1, 1, false},
		"tls12":    {2, 1, false},
	}
	for name, w := range want {
		m, ok := c.Modules[name]
		if !ok {
			t.Errorf("module %q missing", name)
			continue
		}
		if len(m.Checks) != w.checks || len(m.Versions()) != w.versions || m.TLSConfig.InsecureSkipVerify != w.insecure {
			t.Errorf("module %q: %d checks, %d versions, insecure %v; want %+v", name, len(m.Checks), len(m.Versions()), m.TLSConfig.InsecureSkipVerify, w)
		}
	}
	for _, p := range starttls.Protocols {
		name := string(p) + "_starttls"
		m, ok := c.Modules[name]
		if !ok {
			t.Errorf("module %q missing", name)
			continue
		}
		if m.StartTLS.Protocol != p || len(m.Checks) != 3 || len(m.Versions()) != 2 {
			t.Errorf("module %q: starttls %q, %d checks, %d versions", name, m.StartTLS.Protocol, len(m.Checks), len(m.Versions()))
		}
	}
	if d := c.Modules["default"]; d.Timeout != probe.DefaultModule.Timeout || d.TicketWait != time.Second {
		t.Errorf("default module: timeout %s ticket_wait %s", d.Timeout, d.TicketWait)
	}
}

// TestParseConfigErrors: every error names the file, the module and the
// setting as the file spells them, and the line; never a Go type.
func TestParseConfigErrors(t *testing.T) {
	const known = "known fields here: timeout, checks, preferred_ip_protocol, ip_protocol_fallback, ticket_wait, full_handshake_interval, risks, early_data_payload, cross_names, tls_config, starttls"
	const knownTLS = "known fields here: server_name, insecure_skip_verify, ca_file, cert_file, key_file, min_version, max_version"
	tests := []struct{ name, yaml, want string }{
		{"empty", "", `config.yml: empty configuration`},
		{"comments only", "# nothing\n", `config.yml: empty configuration`},
		{"no modules", "modules: {}\n", `config.yml: no modules defined`},
		{"not YAML", "modules:\n  m:\n timeout: 5s\n   checks: x\n", `config.yml: not valid YAML: line 2: did not find expected key`},
		{"not a mapping", "- modules\n", `config.yml: want a mapping with a modules: key, found a list (line 1)`},
		{"unknown top-level field", "modulez: {}\n", `config.yml: unknown field "modulez" (line 1); known fields here: modules, allowed_targets`},
		{"allowed_targets a string", "allowed_targets: 10.0.0.0/8\nmodules:\n  m: {}\n", `config.yml: field "allowed_targets": want a list of ADDRESS-OR-CIDR[:PORT[-PORT]] or HOSTNAME-GLOB[:PORT[-PORT]] entries, found "10.0.0.0/8" (line 1)`},
		{"allowed_targets bad entry", "allowed_targets: [10.1.2.3/8]\nmodules:\n  m: {}\n", `config.yml: field "allowed_targets": allowed_targets entry "10.1.2.3/8": host bits set; did you mean 10.0.0.0/8? (line 1)`},
		{"modules a list", "modules: [a]\n", `config.yml: field "modules": want a mapping of module names to modules, found a list (line 1)`},
		{"module a string", "modules:\n  m: fast\n", `config.yml: module "m": want a mapping of settings, found "fast" (line 2)`},
		{"module twice", "modules:\n  m: {}\n  m: {}\n", `config.yml: module "m": defined twice, first at line 2 (line 3)`},
		{"unknown module field", "modules:\n  default:\n    checks: [psk]\n    timeot: 5s\n", `config.yml: module "default": unknown field "timeot" (line 4); ` + known},
		{"unknown tls field", "modules:\n  m:\n    tls_config:\n      insecure: true\n", `config.yml: module "m": unknown field "tls_config.insecure" (line 4); ` + knownTLS},
		{"field twice", "modules:\n  m:\n    timeout: 5s\n    timeout: 6s\n", `config.yml: module "m": field "timeout": set twice, first at line 3 (line 4)`},
		{"bad duration", "modules:\n  m:\n    timeout: 5x\n", `config.yml: module "m": field "timeout": "5x" is not a duration such as 10s or 500ms (line 3)`},
		{"bad bool", "modules:\n  m:\n    tls_config:\n      insecure_skip_verify: sure\n", `config.yml: module "m": field "tls_config.insecure_skip_verify": "sure" is not true or false (line 4)`},
		{"checks not a list", "modules:\n  m:\n    checks: {psk: true}\n", `config.yml: module "m": field "checks": a mapping is not a list such as [a, b] (line 3)`},
		{"tls_config not a mapping", "modules:\n  m:\n    tls_config: TLS13\n", `config.yml: module "m": field "tls_config": want a mapping of settings, found "TLS13" (line 3)`},
		{"bad check", "modules:\n  m:\n    timeout: 5s\n    checks: [session_ids]\n", `config.yml: module "m": field "checks": unknown mechanism "session_ids" (want session_id, session_ticket or psk) (line 4)`},
		{"check twice", "modules:\n  m:\n    checks: [psk, psk]\n", `config.yml: module "m": field "checks": "psk" listed twice (line 3)`},
		{"bad version", "modules:\n  m:\n    tls_config:\n      min_version: TLS11\n", `config.yml: module "m": field "tls_config.min_version": "TLS11": want TLS12 or TLS13 (line 4)`},
		{"min above max", "modules:\n  m:\n    tls_config:\n      min_version: TLS13\n      max_version: TLS12\n", `config.yml: module "m": field "tls_config.min_version": TLS13 is above max_version TLS12 (line 4)`},
		{"bad ip protocol", "modules:\n  m:\n    preferred_ip_protocol: ipv4\n", `config.yml: module "m": field "preferred_ip_protocol": "ipv4": want ip4 or ip6 (line 3)`},
		{"ticket_wait above timeout", "modules:\n  m:\n    timeout: 1s\n    ticket_wait: 2s\n", `config.yml: module "m": field "ticket_wait": 2s must be positive and below timeout 1s (line 4)`},
		{"ticket_wait default above timeout", "modules:\n  m:\n    timeout: 1s\n", `config.yml: module "m": field "ticket_wait": 1s must be positive and below timeout 1s (line 2)`},
		{"missing ca_file", "modules:\n  m:\n    tls_config:\n      ca_file: /nonexistent/ca.pem\n", `config.yml: module "m": field "tls_config.ca_file": open /nonexistent/ca.pem: no such file or directory (line 4)`},
		{"cert without key", "modules:\n  m:\n    tls_config:\n      cert_file: /x.pem\n", `config.yml: module "m": field "tls_config.cert_file": cert_file and key_file go together (line 4)`},
		{"unknown starttls protocol", "modules:\n  m:\n    starttls:\n      protocol: smtps\n", `config.yml: module "m": field "starttls.protocol": unknown STARTTLS protocol "smtps" (want one of smtp, imap, pop3, ftp, postgres, ldap, xmpp) (line 4)`},
		{"ehlo_name without smtp", "modules:\n  m:\n    starttls:\n      protocol: imap\n      ehlo_name: a.example\n", `config.yml: module "m": field "starttls.ehlo_name": ehlo_name is for protocol smtp, not "imap" (line 5)`},
		{"ehlo_name with a space", "modules:\n  m:\n    starttls:\n      protocol: smtp\n      ehlo_name: a b\n", `config.yml: module "m": field "starttls.ehlo_name": EHLO name "a b": want letters, digits, '-' and '.' only, not ' ' (line 5)`},
		{"starttls shorthand, unknown", "modules:\n  m:\n    starttls: smtps\n", `config.yml: module "m": field "starttls.protocol": unknown STARTTLS protocol "smtps" (want one of smtp, imap, pop3, ftp, postgres, ldap, xmpp) (line 3)`},
		{"starttls as a list", "modules:\n  m:\n    starttls: [smtp]\n", `config.yml: module "m": field "starttls": want a mapping of settings, found a list (line 3)`},
		{"unknown starttls field", "modules:\n  m:\n    starttls:\n      protocol: smtp\n      helo: x\n", `config.yml: module "m": unknown field "starttls.helo" (line 5); known fields here: protocol, ehlo_name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("config.yml", []byte(tt.yaml))
			if err == nil || err.Error() != tt.want {
				t.Errorf("error\n  %v\nwant\n  %s", err, tt.want)
			}
		})
	}
}

// TestParseConfigDefaults: a module given by name alone, or with some
// settings, gets the defaults for the rest.
func TestParseConfigDefaults(t *testing.T) {
	c, err := parseConfig("config.yml", []byte("modules:\n  bare:\n  some:\n    checks: [psk]\n    tls_config:\n      min_version: TLS13\n"))
	if err != nil {
		t.Fatal(err)
	}
	if m := c.Modules["bare"]; m.Timeout != probe.DefaultModule.Timeout || len(m.Checks) != 3 || len(m.Versions()) != 2 {
		t.Errorf("bare module: %+v", m)
	}
	if m := c.Modules["some"]; m.Timeout != probe.DefaultModule.Timeout || len(m.Checks) != 1 || len(m.Versions()) != 1 {
		t.Errorf("module with some settings: %+v", m)
	}
}

// TestLoadErrorNamesFile: a file given with --config.file is named by its path.
func TestLoadErrorNamesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "resumption.yml")
	if err := os.WriteFile(path, []byte("modules:\n  default:\n    timeot: 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var sc SafeConfig
	err := sc.Load(path)
	if want := path + `: module "default": unknown field "timeot" (line 3)`; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Load: %v, want %s…", err, want)
	}
}

// starttls takes a mapping or, as a shorthand, the protocol alone.
func TestParseConfigStartTLS(t *testing.T) {
	c, err := parseConfig("config.yml", []byte("modules:\n  short:\n    starttls: imap\n  long:\n    starttls:\n      protocol: smtp\n      ehlo_name: probe.example.org\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Modules["short"].StartTLS; got != (probe.StartTLSConfig{Protocol: starttls.IMAP}) {
		t.Errorf("short: %+v", got)
	}
	if got := c.Modules["long"].StartTLS; got != (probe.StartTLSConfig{Protocol: starttls.SMTP, EHLOName: "probe.example.org"}) {
		t.Errorf("long: %+v", got)
	}
}
