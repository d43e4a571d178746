package integration

import (
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

const renewed12 = `tls_session_ticket_renewed_on_resumption{version="TLS 1.2"}`

// TestTicketRenewal reads the resumed TLS 1.2 flight of the default
// module's session_ticket check for a fresh ticket. OpenSSL 3.0 renews a
// TLS 1.2 ticket only when its key callback asks (nginx: a ticket under an
// older ssl_session_ticket_key), never for a ticket under the current key,
// which is what the check offers: 0 on both. The positive case is a Go
// server, which renews on every resumption (probe's
// TestTicketRenewalGoServer).
func TestTicketRenewal(t *testing.T) {
	cases := []serverCase{
		{name: "nginx", start: nginx("ssl_protocols TLSv1.2 TLSv1.3;"), want: map[string]float64{success: 1, ticket12: 1, renewed12: 0}},
		{name: "openssl s_server", start: opensslServer(), want: map[string]float64{success: 1, ticket12: 1, renewed12: 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			newRunner(t, pki, nil).probe(t, srv.Addr).expect(t, tc.want, tc.absent...)
		})
	}
}
