package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// A single server that refuses the hand-built ticket hello (here: any
// hello without status_request, which crypto/tls sends and the hand-built
// one does not) but resumes crypto/tls's is one server, not a balancer:
// the probe stops hand-building the ticket offer for it and reads
// crypto/tls's offer as the first, probe after probe, and the checks that
// need one server (psk_without_dhe) stay judged.
func TestHandBuiltTicketOfferRefusedByOneServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	var hand atomic.Int64 // ticket offers without status_request
	addr := startGoServer(t, pki, func(base *tls.Config) {
		nameTicketKey(base, bytes.Repeat([]byte{0x48}, 16), nil)
		base.GetConfigForClient = func(info *tls.ClientHelloInfo) (*tls.Config, error) {
			if slices.Contains(info.Extensions, 5) || !slices.Contains(info.Extensions, 35) ||
				slices.Contains(info.SupportedVersions, tls.VersionTLS13) {
				return nil, nil
			}
			hand.Add(1)
			cfg := base.Clone()
			cfg.GetConfigForClient = nil
			cfg.SessionTicketsDisabled = true
			return cfg, nil
		}
	})
	m := testModule(t, pki, nil)
	sessions := NewSessions(SessionsOptions{})
	var hands []int64
	for i := range 4 {
		before := hand.Load()
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		hands = append(hands, hand.Load()-before)
		if !r.Success {
			t.Fatalf("probe %d: %s", i+1, r.Failure)
		}
		for _, c := range r.Checks {
			if c.Mechanism == MechanismSessionTicket && (!c.Resumed || !c.FirstOfferResumed) {
				t.Errorf("probe %d: session_ticket resumed %v, first offer resumed %v; want both", i+1, c.Resumed, c.FirstOfferResumed)
			}
		}
		if got := r.Risks.PSKWithoutDHE; got == nil || *got {
			t.Errorf("probe %d: psk_without_dhe = %s, want false", i+1, fmtBool(got))
		}
	}
	// Probe 1 offers through crypto/tls; probe 2 hand-builds the first
	// offer once; from then on only Ticketbleed's own offer is hand-built.
	if hands[1] == 0 || hands[2] >= hands[1] || hands[3] != hands[2] {
		t.Errorf("hand-built ticket offers per probe %v: want the first offer hand-built on probe 2 only", hands)
	}
}
