package integration

import (
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

var (
	reuse12 = `tls_session_ticket_reuse_accepted{version="TLS 1.2"}`
	reuse13 = `tls_session_ticket_reuse_accepted{version="TLS 1.3"}`
)

// TestTicketReuse offers the ticket a chain resumed once again: stateless
// tickets resume twice, s_server's single-use 0-RTT tickets do not.
func TestTicketReuse(t *testing.T) {
	cases := []serverCase{
		{
			name:  "nginx: stateless tickets of both versions",
			start: nginx("ssl_protocols TLSv1.2 TLSv1.3;"),
			want:  map[string]float64{success: 1, ticket12: 1, psk: 1, reuse12: 1, reuse13: 1},
		},
		{
			// With 0-RTT on, OpenSSL's TLS 1.3 tickets are single-use
			// (anti-replay); its TLS 1.2 tickets stay stateless.
			name:  "openssl s_server -early_data",
			start: quietOpenSSL("-early_data"),
			want:  map[string]float64{success: 1, psk: 1, reuse12: 1, reuse13: 0},
		},
		{
			name:  "openssl s_server -early_data -no_anti_replay",
			start: quietOpenSSL("-early_data", "-no_anti_replay"),
			want:  map[string]float64{success: 1, psk: 1, reuse12: 1, reuse13: 1},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			r := newRunner(t, pki, func(m *probe.Module) { m.Risks = []probe.Risk{probe.RiskTicketReuse} })
			r.probe(t, srv.Addr).expect(t, tc.want, tc.absent...)
		})
	}
}

// quietOpenSSL runs s_server without -www (which -early_data refuses).
func quietOpenSSL(args ...string) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "openssl")
		return testservers.StartOpenSSLQuiet(t, pki, args...)
	}
}
