package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// An accepted TLS 1.2 offer is finished, not dropped: the server sees a
// completed resumed handshake and a clean close, for every AEAD suite. Two
// offers resume: the session_ticket check's (crypto/tls) and the
// ticketbleed check's hand-built one, which the probe finishes itself.
func TestResumedTLS12HandshakeIsFinished(t *testing.T) {
	pki := testservers.NewPKI(t)
	for _, suite := range []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	} {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			var mu sync.Mutex
			var resumed, failed int
			judged := make(chan struct{}, 8) // one per resumed handshake the server saw end
			cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{suite}}
			addr := testservers.ServeTCP(t, func(c net.Conn) {
				tc := tls.Server(c, cfg)
				err := tc.Handshake()
				mu.Lock()
				switch {
				case err != nil && tc.ConnectionState().DidResume:
					failed++
				case err == nil && tc.ConnectionState().DidResume:
					resumed++
				}
				mu.Unlock()
				if tc.ConnectionState().DidResume {
					judged <- struct{}{}
				}
				drain(tc)
			})
			m := testModule(t, pki, func(m *Module) {
				m.Checks, m.Risks = []Mechanism{MechanismSessionTicket}, []Risk{RiskTicketbleed}
			})
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			r := Run(context.Background(), addr, "test", m, nil, logger)
			if c, _ := r.Check(MechanismSessionTicket); !c.Resumed {
				t.Fatalf("ticket not resumed: %+v %s", c, r.Failure)
			}
			// The probe does not wait for the server once its Finished
			// is sent; the server's verdict on it may come later.
			for range 2 {
				select {
				case <-judged:
				case <-time.After(5 * time.Second):
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if resumed != 2 || failed != 0 {
				t.Errorf("server saw %d completed and %d failed resumed handshakes, want 2 and 0", resumed, failed)
			}
			if strings.Contains(logs.String(), "dropped instead") {
				t.Errorf("probe log: %s", logs.String())
			}
		})
	}
}
