package probe

import (
	"crypto/tls"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// startGoServer runs a crypto/tls server on 127.0.0.1 that completes
// handshakes, answers nothing, and closes each connection when the client
// does. configure may change the server's configuration before it starts.
func startGoServer(t testing.TB, pki *testservers.PKI, configure func(*tls.Config)) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	if configure != nil {
		configure(cfg)
	}
	return testservers.ServeTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		drain(tc)
	})
}

// testModule returns the default module trusting pki's CA.
func testModule(t testing.TB, pki *testservers.PKI, edit func(*Module)) *Module {
	t.Helper()
	m := DefaultModule
	m.Checks = append([]Mechanism(nil), Mechanisms...)
	m.Timeout = 5 * time.Second
	m.TicketWait = 500 * time.Millisecond
	m.TLSConfig.CAFile = pki.CAFile
	if edit != nil {
		edit(&m)
	}
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := m.Compile(); err != nil {
		t.Fatal(err)
	}
	return &m
}

// testLogger sends a probe's records to the test's log.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
