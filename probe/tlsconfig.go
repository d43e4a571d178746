package probe

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// clientConfig is the part of a crypto/tls client configuration that does not
// change from probe to probe: trust roots and client certificate. It is built
// once when the configuration is loaded, not on every probe.
type clientConfig struct {
	roots *x509.CertPool
	certs []tls.Certificate
}

// Compile reads the files a module names (CA bundle, client certificate) so
// that a missing or broken file is reported when the configuration loads and
// probes do no file I/O.
func (m *Module) Compile() error {
	cc := &clientConfig{}
	if f := m.TLSConfig.CAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return &FieldError{Field: "tls_config.ca_file", Err: err}
		}
		cc.roots = x509.NewCertPool()
		if !cc.roots.AppendCertsFromPEM(pem) {
			return fieldErr("tls_config.ca_file", "%s: no PEM certificates in it", f)
		}
	}
	if m.TLSConfig.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(m.TLSConfig.CertFile, m.TLSConfig.KeyFile)
		if err != nil {
			return &FieldError{Field: "tls_config.cert_file", Err: err}
		}
		cc.certs = []tls.Certificate{cert}
	}
	m.client = cc
	return nil
}

// tlsConfig returns a fresh crypto/tls client configuration for one handshake
// at exactly one protocol version. serverName is the SNI and the name the
// certificate must match.
func (m *Module) tlsConfig(serverName string, version uint16) *tls.Config {
	cfg := &tls.Config{
		ServerName:         serverName,
		InsecureSkipVerify: m.TLSConfig.InsecureSkipVerify,
		MinVersion:         version,
		MaxVersion:         version,
	}
	if version == VersionTLS12 {
		// Only the AEAD suites a resumed handshake can be finished with
		// (see finish12), RSA key exchange last; naming it is how
		// crypto/tls still offers it. A session on a CBC suite would
		// have to be dropped mid-handshake, which OpenSSL punishes by
		// evicting it.
		cfg.CipherSuites = wire.FinishableSuites12()
	}
	if m.client != nil {
		cfg.RootCAs = m.client.roots
		cfg.Certificates = m.client.certs
	}
	return cfg
}
