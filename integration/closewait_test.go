package integration

import (
	"context"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// A completed handshake ends on the server's answer to the client's
// close_notify, not on a clock: every server here sends all its TLS 1.3
// tickets before that answer, so each ticket is collected and no probe waits
// out ticket_wait, set here far above what a whole probe takes. The module
// makes full handshakes on every probe (full_handshake_interval 0): the
// test counts the tickets of a full handshake, and on a stand-in probe the
// TLS 1.3 tickets are those of the resumed connection (one on OpenSSL
// servers; TestStandInRealServers compares their facts). (GnuTLS
// 3.7's gnutls-serv behaves the same, two tickets, checked by hand inside
// `unshare -n`: it listens on every interface, so it is not run here.)
func TestHandshakesEndOnServerClose(t *testing.T) {
	const ticketWait = 8 * time.Second
	cases := []struct {
		name  string
		start func(t *testing.T, pki *testservers.PKI) string
		// tickets13 is the TLS 1.3 tickets one full handshake brings.
		tickets13 int
	}{
		{"nginx", addrOf(nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;")), 2},
		{"apache", func(t *testing.T, pki *testservers.PKI) string {
			testservers.Require(t, "apache2")
			return testservers.StartApacheConfig(t, pki, testservers.ApacheConfig{Global: testservers.DebianApacheSSLConf}).Addr
		}, 2},
		{"haproxy", addrOf(haproxy("")), 2},
		// s_server -www answers a close_notify received before any
		// request with its own and takes the next connection.
		{"openssl s_server -www", addrOf(opensslServer()), 2},
		// crypto/tls sends one ticket; the probe fetches a second to
		// tell the ticket format, as Go tickets show no key name.
		{"crypto/tls", func(t *testing.T, pki *testservers.PKI) string {
			return testservers.ServeTLS(t, pki, nil)
		}, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			addr := c.start(t, pki)
			r := newRunner(t, pki, func(m *probe.Module) {
				m.TicketWait = ticketWait
				m.FullHandshakeInterval = 0 // see above: a full handshake's tickets
			})
			for i := range 2 { // the second probe replays the first one's sessions
				res := probe.Run(context.Background(), addr, "test", &r.module, r.sessions, r.logger)
				if !res.Success {
					t.Fatalf("probe %d: %s", i, res.Failure)
				}
				if got := res.Tickets[probe.VersionTLS13].Count; got != c.tickets13 {
					t.Errorf("probe %d: %d TLS 1.3 tickets, want %d", i, got, c.tickets13)
				}
				if ch, _ := res.Check(probe.MechanismPSK); !ch.Resumed {
					t.Errorf("probe %d: TLS 1.3 ticket not resumed", i)
				}
				if res.Duration >= ticketWait {
					t.Errorf("probe %d took %s: a handshake waited out ticket_wait %s instead of ending on the server's close", i, res.Duration, ticketWait)
				}
			}
		})
	}
}

func addrOf(start func(*testing.T, *testservers.PKI) *testservers.Server) func(*testing.T, *testservers.PKI) string {
	return func(t *testing.T, pki *testservers.PKI) string { return start(t, pki).Addr }
}
