package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// handshakeErr runs one real handshake against addr and returns its error.
func handshakeErr(t *testing.T, addr string, cfg *tls.Config) error {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	return tls.Client(conn, cfg).Handshake()
}

func TestExplainCertificate(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	tls13Only := startGoServer(t, pki, func(c *tls.Config) { c.MinVersion = tls.VersionTLS13 })
	tests := []struct {
		name       string
		addr       string
		client     *tls.Config
		want       []string // in the hinted error; none: the error is returned as it is
		wantNoHint bool
	}{
		{
			name:   "private CA",
			addr:   addr,
			client: &tls.Config{ServerName: "localhost"},
			want: []string{
				"x509: certificate signed by unknown authority",
				`the issuer "CN=resumption_exporter test CA" is not a trusted CA`,
				"tls_config.ca_file", "module=insecure",
			},
		},
		{
			name:   "name the certificate lacks",
			addr:   addr,
			client: &tls.Config{ServerName: "wrong.example", RootCAs: pki.Pool},
			want: []string{
				"not wrong.example",
				`the certificate is for "localhost", 127.0.0.1, ::1, not "wrong.example"`,
				"tls_config.server_name", "module=insecure",
			},
		},
		{
			name:       "version refused is no certificate problem",
			addr:       tls13Only,
			client:     &tls.Config{ServerName: "localhost", RootCAs: pki.Pool, MaxVersion: tls.VersionTLS12},
			wantNoHint: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := handshakeErr(t, tt.addr, tt.client)
			if err == nil {
				t.Fatal("handshake succeeded")
			}
			got := explainCertificate(err, tt.client.ServerName)
			if tt.wantNoHint {
				if got != err {
					t.Errorf("explainCertificate changed a non-certificate error: %v", got)
				}
				return
			}
			for _, w := range tt.want {
				if !strings.Contains(got.Error(), w) {
					t.Errorf("hinted error %q lacks %q", got, w)
				}
			}
			var x *tls.CertificateVerificationError
			if !errors.As(got, &x) {
				t.Errorf("hinted error %v no longer wraps the crypto/tls error", got)
			}
		})
	}
}

// TestRunFailureNamesCertificateFixOnce: the failure reason of a probe that
// cannot verify the certificate says what to do, once, although every
// version and check failed the same way.
func TestRunFailureNamesCertificateFixOnce(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	tests := []struct {
		name string
		edit func(*Module)
		hint string
	}{
		{"private CA", func(m *Module) { m.TLSConfig.CAFile = "" }, "tls_config.ca_file"},
		{"server name", func(m *Module) { m.TLSConfig.ServerName = "wrong.example" }, "tls_config.server_name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log recordLog
			r := Run(context.Background(), addr, "default", testModule(t, pki, tt.edit), nil, slog.New(&log))
			if r.Success {
				t.Fatal("probe succeeded")
			}
			t.Logf("failure reason: %s", r.Failure)
			for _, s := range []string{tt.hint, "module=insecure"} {
				if n := strings.Count(r.Failure, s); n != 1 {
					t.Errorf("failure reason mentions %q %d times, want once: %s", s, n, r.Failure)
				}
			}
			if n := strings.Count(r.Failure, "x509:"); n != 1 {
				t.Errorf("failure reason repeats the x509 error %d times: %s", n, r.Failure)
			}
			if failed := log.find(map[string]string{"msg": "Probe failed"}); failed == nil || failed["reason"] != r.Failure {
				t.Errorf("debug output's \"Probe failed\" record %v does not give the failure reason", failed)
			}
			// The whole debug output says what to do once: the per-check
			// records carry the error, the failure record the fix.
			if n := log.count(tt.hint); n != 1 {
				t.Errorf("debug output mentions %q in %d records, want 1", tt.hint, n)
			}
		})
	}
}
