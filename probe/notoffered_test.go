package probe

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// crypto/tls offers no PSK for a session whose certificate has expired,
// even with insecure_skip_verify. The probe must see that in its own
// ClientHello and fail the check, not report "not resumed".
func TestSessionNotOfferedIsNotARefusal(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "expired"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		tc := tls.Server(c, cfg)
		defer tc.Close()
		drain(tc)
	})
	m := DefaultModule
	m.Checks, m.TicketWait = []Mechanism{MechanismPSK}, 500*time.Millisecond
	m.TLSConfig.InsecureSkipVerify = true
	r := Run(context.Background(), addr, "test", &m, nil, testLogger(t))
	c, ok := r.Check(MechanismPSK)
	if !ok || c.Completed || c.Resumed || !strings.Contains(c.Err, "did not offer") {
		t.Fatalf("psk check %+v: want an incomplete check saying the session was not offered", c)
	}
	if r.Success {
		t.Error("probe succeeded although the psk check could not run")
	}
}
