package testservers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// A ReadyCheck says whether a started server serves yet: nil when it does,
// else what it lacks. Each call is bounded by probeTimeout; Start repeats
// the checks until they pass or Spec.ReadyTimeout passes.
type ReadyCheck func(s *Server) error

// TCPReady checks that Server.Addr accepts a TCP connection.
func TCPReady() ReadyCheck {
	return func(s *Server) error {
		c, err := net.DialTimeout("tcp", s.Addr, probeTimeout)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// TLSReady checks that a TLS handshake with Server.Addr completes,
// verifying the certificate for ServerName against pool.
func TLSReady(pool *x509.CertPool) ReadyCheck {
	return func(s *Server) error {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		d := &tls.Dialer{Config: &tls.Config{RootCAs: pool, ServerName: ServerName}}
		c, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}

// HTTPReady checks that GET http://ADDR/path answers 200 OK, as the
// exporter's /-/healthy and Prometheus' /-/ready do once they serve.
func HTTPReady(path string) ReadyCheck {
	client := &http.Client{Timeout: probeTimeout}
	return func(s *Server) error {
		resp, err := client.Get(s.URL(path))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", s.URL(path), resp.Status)
		}
		return nil
	}
}

// LogReady checks that the server's output or log files (Spec.Logs) hold
// text, for programs that say when they are ready rather than show it on
// their port.
func LogReady(text string) ReadyCheck {
	return func(s *Server) error {
		if !strings.Contains(s.readLogs(0), text) {
			return fmt.Errorf("its logs do not say %q yet", text)
		}
		return nil
	}
}
