package testservers

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
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

// StartTLSReady is the check of a STARTTLS server: connect, run the
// protocol's preamble, and complete a TLS handshake that verifies the
// certificate for ServerName against pool (with pool nil, the preamble
// alone). A server that answers the preamble but refuses STARTTLS is ready
// too: tests start such servers to see the refusal.
func StartTLSReady(p starttls.Protocol, pool *x509.CertPool) ReadyCheck {
	return func(s *Server) error {
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.Addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		cc := &countingConn{Conn: conn}
		if err := starttls.Negotiate(ctx, cc, p, starttls.Options{EHLOName: "localhost", ServerName: ServerName}); err != nil {
			if cc.read > 0 && ctx.Err() == nil {
				// The server is up and answers, but refuses STARTTLS:
				// it is configured so, for a test of that refusal.
				return nil
			}
			return err
		}
		if pool == nil {
			return nil
		}
		tc := tls.Client(conn, &tls.Config{RootCAs: pool, ServerName: ServerName})
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake after %s STARTTLS: %w", p, err)
		}
		return tc.Close()
	}
}

// countingConn counts the bytes read from a connection.
type countingConn struct {
	net.Conn
	read int
}

func (c *countingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.read += n
	return n, err
}
