package testservers

import (
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// ServeTCP listens on a free port of 127.0.0.1 and hands every connection
// to serve in a goroutine of its own, for in-process peers: crypto/tls
// servers, and broken or hostile ones. Each connection ends after 20 s at
// the latest, and the listener closes when the test ends.
func ServeTCP(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// TLSCertificate returns the server certificate and key, for in-process
// crypto/tls servers.
func (p *PKI) TLSCertificate(t testing.TB) tls.Certificate {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.CertFile, p.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// ServeTLS runs an in-process crypto/tls server with the PKI's certificate
// on a free port of 127.0.0.1 (see ServeTCP): it completes each handshake,
// reads and discards what the client sends, and closes when the client
// does. configure, when not nil, edits the server's configuration first.
func ServeTLS(t testing.TB, pki *PKI, configure func(*tls.Config)) string {
	t.Helper()
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	if configure != nil {
		configure(cfg)
	}
	return ServeTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		io.Copy(io.Discard, tc)
	})
}
