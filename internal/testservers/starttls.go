package testservers

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// startTLSReady is the readiness probe of a STARTTLS server: connect, run
// the protocol's preamble, and complete a TLS handshake that verifies the
// certificate against pki. A server that answers the preamble but refuses
// STARTTLS is ready too: tests start such servers to see the refusal.
func startTLSReady(ctx context.Context, addr string, p starttls.Protocol, pki *PKI) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	cc := &countingConn{Conn: conn}
	if err := starttls.Negotiate(ctx, cc, p, starttls.Options{EHLOName: "localhost", ServerName: ServerName}); err != nil {
		if cc.read > 0 && ctx.Err() == nil {
			// The server is up and answers, but refuses STARTTLS: it
			// is configured so, for a test of that refusal.
			return nil
		}
		return err
	}
	if pki == nil {
		return nil
	}
	tc := tls.Client(conn, &tls.Config{RootCAs: pki.Pool, ServerName: ServerName})
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("TLS handshake after %s STARTTLS: %w", p, err)
	}
	return tc.Close()
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

// serviceDir returns a fresh directory that the unprivileged users of
// servers that drop root (postfix, dovecot, postgres) can traverse:
// t.TempDir's parent is private to the test's user. It is removed when the
// test ends.
func serviceDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "resumption-exporter-"+name+"-")
	if err != nil {
		t.Fatalf("testservers: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("testservers: %v", err)
	}
	return dir
}

// copyKeyPair copies the server certificate and key into dir, owned by uid
// and gid when those are not -1 (a server that reads them after dropping
// root, or that insists on owning its key, as PostgreSQL does).
func copyKeyPair(pki *PKI, dir string, uid, gid int) (cert, key string, err error) {
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for _, f := range [][2]string{{pki.CertFile, cert}, {pki.KeyFile, key}} {
		b, err := os.ReadFile(f[0])
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(f[1], b, 0o600); err != nil {
			return "", "", err
		}
		if err := os.Chown(f[1], uid, gid); err != nil {
			return "", "", err
		}
	}
	return cert, key, nil
}
