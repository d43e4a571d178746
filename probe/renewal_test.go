package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"slices"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// A Go server issues a fresh TLS 1.2 ticket on every resumption it
// accepts (hs.hello.ticketSupported stays set on the resumed path), so
// the session lives on. With the check left out, no verdict.
func TestTicketRenewalGoServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	r := Run(context.Background(), startGoServer(t, pki, nil), "test", testModule(t, pki, nil), nil, testLogger(t))
	if !r.Success {
		t.Fatal(r.Failure)
	}
	if got := r.Risks.TicketRenewed12; fmtBool(got) != "true" {
		t.Errorf("TLS 1.2 ticket renewed on resumption %s, want true", fmtBool(got))
	}
}

func TestTicketRenewalOff(t *testing.T) {
	pki := testservers.NewPKI(t)
	m := testModule(t, pki, func(m *Module) { m.Risks = []Risk{} })
	r := Run(context.Background(), startGoServer(t, pki, nil), "test", m, nil, testLogger(t))
	if r.Risks.TicketRenewed12 != nil {
		t.Errorf("renewal verdict %s without the ticket_renewal check", fmtBool(r.Risks.TicketRenewed12))
	}
}

// Once earlier probes met one server, the ticket check's first offer is
// hand-built and its finished flight is the renewal verdict: a Go server
// whose tickets name their key renews on every resumption.
func TestTicketRenewalHandBuilt(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, func(c *tls.Config) { nameTicketKey(c, bytes.Repeat([]byte{0x52}, 16), nil) })
	sessions := NewSessions(SessionsOptions{})
	for i := range 3 {
		r := Run(context.Background(), addr, "test", testModule(t, pki, nil), sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("probe %d: %s", i+1, r.Failure)
		}
		if got := r.Risks.TicketRenewed12; fmtBool(got) != "true" {
			t.Errorf("probe %d: TLS 1.2 ticket renewed on resumption %s, want true", i+1, fmtBool(got))
		}
		if got := r.Risks.Ticketbleed; fmtBool(got) != "false" {
			t.Errorf("probe %d: ticketbleed %s, want false", i+1, fmtBool(got))
		}
		for _, c := range r.Checks {
			if c.Mechanism == MechanismSessionTicket && !c.FirstOfferResumed {
				t.Errorf("probe %d: session_ticket first offer not resumed", i+1)
			}
		}
	}
}

// An offer resumed on a flight that cannot be finished (this server sends
// ServerHello and ChangeCipherSpec, then closes) says nothing of renewal:
// absent, not 0 — whether crypto/tls made the offer (the first probe) or
// the probe built it by hand (once earlier probes met one server).
func TestTicketRenewalPartialFlight(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr, idLens := startTicketbleedServer(t, pki, func(int64) bool { return false }, nil)
	m := testModule(t, pki, func(m *Module) { m.Checks = []Mechanism{MechanismSessionTicket, MechanismPSK} })
	sessions := NewSessions(SessionsOptions{})
	for i := range 3 {
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("probe %d: %s", i+1, r.Failure)
		}
		if r.Risks.TicketRenewed12 != nil {
			t.Errorf("probe %d: renewal verdict %s from a flight without Finished, want absent", i+1, fmtBool(r.Risks.TicketRenewed12))
		}
	}
	lens := idLens()
	if !slices.Contains(lens, 32) || !slices.Contains(lens, ticketOfferIDLen) {
		t.Errorf("ticket offers had session IDs of %v bytes, want both crypto/tls's 32 and the hand-built %d", lens, ticketOfferIDLen)
	}
}
