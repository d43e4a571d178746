package probe

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func TestRunAgainstGoServers(t *testing.T) {
	pki := testservers.NewPKI(t)
	tests := []struct {
		name      string
		server    func(*tls.Config)
		versions  map[uint16]bool
		resumed   map[Mechanism]bool // absent mechanism: no check expected
		formats   map[uint16]TicketFormat
		lifetimes map[uint16]uint32
	}{
		{
			name:     "TLS 1.3 and 1.2, tickets on",
			versions: map[uint16]bool{VersionTLS12: true, VersionTLS13: true},
			// Go servers keep no session cache: session IDs never resume.
			resumed:   map[Mechanism]bool{MechanismSessionID: false, MechanismSessionTicket: true, MechanismPSK: true},
			formats:   map[uint16]TicketFormat{VersionTLS12: FormatStatelessUnnamed, VersionTLS13: FormatStatelessUnnamed},
			lifetimes: map[uint16]uint32{VersionTLS12: 0, VersionTLS13: 604800},
		},
		{
			name:     "tickets off",
			server:   func(c *tls.Config) { c.SessionTicketsDisabled = true },
			versions: map[uint16]bool{VersionTLS12: true, VersionTLS13: true},
			resumed:  map[Mechanism]bool{MechanismSessionID: false, MechanismSessionTicket: false, MechanismPSK: false},
		},
		{
			name:     "TLS 1.2 only",
			server:   func(c *tls.Config) { c.MaxVersion = tls.VersionTLS12 },
			versions: map[uint16]bool{VersionTLS12: true, VersionTLS13: false},
			resumed:  map[Mechanism]bool{MechanismSessionID: false, MechanismSessionTicket: true},
			formats:  map[uint16]TicketFormat{VersionTLS12: FormatStatelessUnnamed},
		},
		{
			name:      "TLS 1.3 only",
			server:    func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 },
			versions:  map[uint16]bool{VersionTLS12: false, VersionTLS13: true},
			resumed:   map[Mechanism]bool{MechanismPSK: true},
			formats:   map[uint16]TicketFormat{VersionTLS13: FormatStatelessUnnamed},
			lifetimes: map[uint16]uint32{VersionTLS13: 604800},
		},
		{
			name:      "P-384 only forces a HelloRetryRequest",
			server:    func(c *tls.Config) { c.CurvePreferences = []tls.CurveID{tls.CurveP384} },
			versions:  map[uint16]bool{VersionTLS12: true, VersionTLS13: true},
			resumed:   map[Mechanism]bool{MechanismSessionID: false, MechanismSessionTicket: true, MechanismPSK: true},
			formats:   map[uint16]TicketFormat{VersionTLS12: FormatStatelessUnnamed, VersionTLS13: FormatStatelessUnnamed},
			lifetimes: map[uint16]uint32{VersionTLS13: 604800},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startGoServer(t, pki, tt.server)
			m := testModule(t, pki, nil)
			r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
			if !r.Success {
				t.Fatalf("probe failed: %s", r.Failure)
			}
			for v, want := range tt.versions {
				if got, ok := r.Versions[v]; !ok || got != want {
					t.Errorf("%s supported = %v (known %v), want %v", VersionName(v), got, ok, want)
				}
			}
			if len(r.Checks) != len(tt.resumed) {
				t.Errorf("got %d checks %+v, want %d", len(r.Checks), r.Checks, len(tt.resumed))
			}
			for mech, want := range tt.resumed {
				c, ok := r.Check(mech)
				if !ok || !c.Completed {
					t.Errorf("%s: check missing or incomplete: %+v", mech, c)
					continue
				}
				if c.Resumed != want {
					t.Errorf("%s resumed = %v, want %v", mech, c.Resumed, want)
				}
				if c.FullHandshake <= 0 {
					t.Errorf("%s: no full-handshake duration", mech)
				}
				if c.Issued && c.ResumedHandshake <= 0 {
					t.Errorf("%s: offer made but no resumed-handshake duration", mech)
				}
			}
			if len(r.Tickets) != len(tt.formats) {
				t.Errorf("tickets for %d versions (%+v), want %d", len(r.Tickets), r.Tickets, len(tt.formats))
			}
			for v, want := range tt.formats {
				if got := r.Tickets[v].Format; got != want {
					t.Errorf("%s ticket format %q, want %q", VersionName(v), got, want)
				}
			}
			for v, want := range tt.lifetimes {
				if got := r.Tickets[v].LifetimeHint; got != want {
					t.Errorf("%s lifetime %d, want %d", VersionName(v), got, want)
				}
			}
			if len(r.KeyNames) != 0 {
				t.Errorf("Go ≥ 1.21 tickets carry no key name, got %+v", r.KeyNames)
			}
		})
	}
}

// A TLS 1.2 server whose only suite the probe does not offer answers with
// handshake_failure: that is a failed check, not a missing TLS 1.2.
func TestNoCommonSuiteIsNotAMissingVersion(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, func(c *tls.Config) {
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256}
	})
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if supported, known := r.Versions[VersionTLS12]; known && !supported {
		t.Errorf("TLS 1.2 reported unsupported; the server only lacks a common suite")
	}
	if r.Success {
		t.Errorf("probe succeeded although no TLS 1.2 check could run: %+v", r.Checks)
	}
	if c, ok := r.Check(MechanismSessionID); !ok || c.Completed || !strings.Contains(c.Err, "handshake_failure") {
		t.Errorf("session_id check %+v, want a failure naming handshake_failure", c)
	}
}

// Servers with only RSA key exchange (crypto/tls leaves it out by default)
// are still probed: the probe names those suites explicitly.
func TestRSAKeyExchangeServer(t *testing.T) {
	pki := testservers.NewPKIWithKey(t, testservers.RSA2048)
	addr := startGoServer(t, pki, func(c *tls.Config) {
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
	})
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if c, _ := r.Check(MechanismSessionTicket); !r.Success || !c.Resumed {
		t.Errorf("RSA-kex server: success %v (%s), ticket check %+v", r.Success, r.Failure, c)
	}
}
