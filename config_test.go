package main

import (
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

func TestEmbeddedConfig(t *testing.T) {
	c, err := parseConfig(defaultConfig)
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

func TestParseConfigErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"empty", "", "empty configuration"},
		{"no modules", "modules: {}\n", "no modules"},
		{"unknown top-level field", "modulez: {}\n", "modulez"},
		{"unknown module field", "modules:\n  m:\n    timout: 5s\n", "timout"},
		{"unknown tls field", "modules:\n  m:\n    tls_config:\n      insecure: true\n", "insecure"},
		{"bad check", "modules:\n  m:\n    checks: [session_ids]\n", "session_ids"},
		{"check twice", "modules:\n  m:\n    checks: [psk, psk]\n", "twice"},
		{"bad version", "modules:\n  m:\n    tls_config:\n      min_version: TLS11\n", "TLS11"},
		{"min above max", "modules:\n  m:\n    tls_config:\n      min_version: TLS13\n      max_version: TLS12\n", "above"},
		{"bad ip protocol", "modules:\n  m:\n    preferred_ip_protocol: ipv4\n", "ipv4"},
		{"ticket_wait above timeout", "modules:\n  m:\n    timeout: 1s\n    ticket_wait: 2s\n", "ticket_wait"},
		{"missing ca_file", "modules:\n  m:\n    tls_config:\n      ca_file: /nonexistent/ca.pem\n", "ca_file"},
		{"unknown starttls protocol", "modules:\n  m:\n    starttls:\n      protocol: smtps\n", `unknown STARTTLS protocol "smtps"`},
		{"ehlo_name without smtp", "modules:\n  m:\n    starttls:\n      protocol: imap\n      ehlo_name: a.example\n", "ehlo_name is for protocol smtp"},
		{"ehlo_name with a space", "modules:\n  m:\n    starttls:\n      protocol: smtp\n      ehlo_name: a b\n", "ehlo_name"},
		{"starttls as a list", "modules:\n  m:\n    starttls: [smtp]\n", "starttls"},
		{"unknown starttls field", "modules:\n  m:\n    starttls:\n      protocol: smtp\n      helo: x\n", "helo"},
		{"cert without key", "modules:\n  m:\n    tls_config:\n      cert_file: /x.pem\n", "go together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("accepted; want an error mentioning %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// starttls takes a mapping or, as a shorthand, the protocol alone.
func TestParseConfigStartTLS(t *testing.T) {
	c, err := parseConfig([]byte("modules:\n  short:\n    starttls: imap\n  long:\n    starttls:\n      protocol: smtp\n      ehlo_name: probe.example.org\n"))
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
