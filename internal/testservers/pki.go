package testservers

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// ServerName is the DNS name the server certificate is issued for; clients
// that send SNI should use it. The certificate also covers 127.0.0.1 and ::1.
const ServerName = "localhost"

// PKI is a throwaway certificate authority and one server certificate it
// signed, written as PEM files that the servers under test read.
type PKI struct {
	// Dir holds the files below.
	Dir string
	// CAFile is the CA certificate.
	CAFile string
	// CertFile is the server certificate alone.
	CertFile string
	// KeyFile is the server's private key (PKCS #8).
	KeyFile string
	// ChainFile is the server certificate followed by its key, the single
	// file HAProxy's `crt` expects.
	ChainFile string
	// Pool holds the CA certificate, for crypto/tls clients' RootCAs.
	Pool *x509.CertPool
	// Cert is the parsed server certificate.
	Cert *x509.Certificate
}

// KeyType is the kind of key the server certificate carries.
type KeyType int

const (
	// ECDSAP256 gives ECDHE-ECDSA cipher suites in TLS 1.2; every server
	// here (nginx, Apache, HAProxy, s_server) accepts it.
	ECDSAP256 KeyType = iota
	// RSA2048 gives ECDHE-RSA (and, where a server still allows them,
	// static RSA) cipher suites.
	RSA2048
)

// NewPKI creates a CA and an ECDSA P-256 server certificate for localhost,
// 127.0.0.1 and ::1 in a fresh t.TempDir().
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	return NewPKIWithKey(t, ECDSAP256)
}

// NewPKIWithKey is NewPKI with the server key type chosen; the CA key is
// always ECDSA P-256, since only the leaf decides the TLS 1.2 cipher suites.
func NewPKIWithKey(t testing.TB, kt KeyType) *PKI {
	t.Helper()
	p, err := newPKI(t.TempDir(), kt, false)
	if err != nil {
		t.Fatalf("testservers: creating PKI: %v", err)
	}
	return p
}

// NewPKIExpired is NewPKI with a server certificate that expired a day ago
// (the CA is valid): crypto/tls clients offer no session for such a
// certificate, even with InsecureSkipVerify.
func NewPKIExpired(t testing.TB) *PKI {
	t.Helper()
	p, err := newPKI(t.TempDir(), ECDSAP256, true)
	if err != nil {
		t.Fatalf("testservers: creating PKI: %v", err)
	}
	return p
}

func newPKI(dir string, kt KeyType, expired bool) (*PKI, error) {
	// Backdate validity so that clock skew between this process and a
	// server never makes the certificate "not yet valid".
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(48 * time.Hour)
	leafNotBefore, leafNotAfter := notBefore, notAfter
	if expired {
		leafNotBefore, leafNotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "resumption_exporter test CA"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}

	var leafKey crypto.Signer
	keyUsage := x509.KeyUsageDigitalSignature
	switch kt {
	case RSA2048:
		leafKey, err = rsa.GenerateKey(rand.Reader, 2048)
		// RSA key exchange encrypts the premaster secret to the key.
		keyUsage |= x509.KeyUsageKeyEncipherment
	default:
		leafKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: ServerName},
		NotBefore:    leafNotBefore,
		NotAfter:     leafNotAfter,
		KeyUsage:     keyUsage,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{ServerName},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, leafKey.Public(), caKey)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(leafKey)
	if err != nil {
		return nil, err
	}

	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})

	p := &PKI{
		Dir:       dir,
		CAFile:    filepath.Join(dir, "ca.pem"),
		CertFile:  filepath.Join(dir, "cert.pem"),
		KeyFile:   filepath.Join(dir, "key.pem"),
		ChainFile: filepath.Join(dir, "chain.pem"),
		Pool:      x509.NewCertPool(),
		Cert:      leaf,
	}
	p.Pool.AddCert(ca)
	files := []struct {
		path string
		data []byte
	}{
		{p.CAFile, caPEM},
		{p.CertFile, certPEM},
		{p.KeyFile, keyPEM},
		{p.ChainFile, append(append([]byte{}, certPEM...), keyPEM...)},
	}
	for _, f := range files {
		// Files are read by the servers' master processes, which run as
		// the same user as the test, so 0600 suffices for the key too.
		if err := os.WriteFile(f.path, f.data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}
