package probe

import (
	"context"
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
