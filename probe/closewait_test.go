package probe

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// A server that never answers close_notify (it reads to the client's TCP
// close and only then closes) holds each completed handshake for
// ticket_wait, no longer: the probe still gets every ticket and verdict.
func TestServerThatNeverAnswersCloseNotify(t *testing.T) {
	const ticketWait = 300 * time.Millisecond
	pki := testservers.NewPKI(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		if err := tls.Server(c, cfg).Handshake(); err != nil {
			return
		}
		io.Copy(io.Discard, c) // the raw conn: no close_notify is ever sent back
	})
	m := testModule(t, pki, func(m *Module) { m.TicketWait = ticketWait })
	sessions := NewSessions(SessionsOptions{})
	for i := range 2 {
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("probe %d: %s", i, r.Failure)
		}
		for _, mech := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
			if c, _ := r.Check(mech); !c.Resumed {
				t.Errorf("probe %d: %s not resumed: %+v", i, mech, c)
			}
		}
		if got := r.Tickets[VersionTLS13].Count; got < 1 {
			t.Errorf("probe %d: %d TLS 1.3 tickets", i, got)
		}
		// Each serial step may wait out ticket_wait once; far from
		// the module's timeout.
		if r.Duration >= m.Timeout {
			t.Errorf("probe %d took %s, the whole timeout", i, r.Duration)
		}
	}
}
