package probe

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// singleUse makes a Go server accept each ticket once: UnwrapSession
// remembers the tickets it resumed and refuses a second offer of one, as
// RFC 8446 §8.1's single-use tickets do.
func singleUse(cfg *tls.Config) {
	var mu sync.Mutex
	used := map[string]bool{}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		mu.Lock()
		defer mu.Unlock()
		if used[string(identity)] {
			return nil, nil // a full handshake instead
		}
		used[string(identity)] = true
		return cfg.DecryptTicket(identity, cs)
	}
}

func TestTicketReuseGoServers(t *testing.T) {
	pki := testservers.NewPKI(t)
	tests := []struct {
		name      string
		configure func(*tls.Config)
		want      map[uint16]bool
	}{
		{"stock: stateless tickets resume again", nil, map[uint16]bool{VersionTLS12: true, VersionTLS13: true}},
		{"single-use tickets", singleUse, map[uint16]bool{VersionTLS12: false, VersionTLS13: false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startGoServer(t, pki, tt.configure)
			m := testModule(t, pki, func(m *Module) { m.Risks = []Risk{RiskTicketReuse} })
			r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
			if !r.Success {
				t.Fatal(r.Failure)
			}
			got := r.Risks.TicketReuseAccepted
			if len(got) != len(tt.want) {
				t.Errorf("reuse verdicts %v, want %v", got, tt.want)
			}
			for v, want := range tt.want {
				if g, ok := got[v]; !ok || g != want {
					t.Errorf("%s: reuse accepted %v (judged %v), want %v", VersionName(v), g, ok, want)
				}
			}
		})
	}
}

// Off by default: the default module makes no reuse offer.
func TestTicketReuseOffByDefault(t *testing.T) {
	pki := testservers.NewPKI(t)
	r := Run(context.Background(), startGoServer(t, pki, nil), "test", testModule(t, pki, nil), nil, testLogger(t))
	if r.Risks.TicketReuseAccepted != nil {
		t.Errorf("reuse verdicts %v from the default module", r.Risks.TicketReuseAccepted)
	}
}
