package probe

import (
	"crypto/tls"
	"crypto/x509"
	"os"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// clientConfig is the part of a crypto/tls client configuration that does not
// change from probe to probe: trust roots, client certificate, and from them
// one configuration per protocol version, cloned for each handshake. It is
// built once when the configuration is loaded, not on every probe.
type clientConfig struct {
	roots *x509.CertPool
	certs []tls.Certificate
	base  map[uint16]*tls.Config // by version; ServerName left empty
}

// Compile reads the files a module names (CA bundle, client certificate) so
// that a missing or broken file is reported when the configuration loads and
// probes do no file I/O, and builds the module's TLS configurations.
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
	cc.base = map[uint16]*tls.Config{}
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		cc.base[v] = m.baseConfig(cc, v)
	}
	m.client = cc
	return nil
}

// classicGroups are the key-exchange groups offered: crypto/tls's defaults
// without the post-quantum hybrid X25519MLKEM768. Which group a handshake
// uses says nothing about resumption, and the hybrid's key generation is
// the largest single cost of a TLS 1.3 ClientHello, paid on every full and
// resumed handshake, while OpenSSL 3.0 servers (Debian bookworm) cannot
// even choose it. X25519 first, so one key share is sent.
var classicGroups = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384, tls.CurveP521}

// baseConfig builds the configuration every handshake at one version
// starts from.
func (m *Module) baseConfig(cc *clientConfig, version uint16) *tls.Config {
	cfg := &tls.Config{
		InsecureSkipVerify: m.TLSConfig.InsecureSkipVerify,
		MinVersion:         version,
		MaxVersion:         version,
		CurvePreferences:   classicGroups,
	}
	if version == VersionTLS12 {
		// Only the AEAD suites a resumed handshake can be finished with
		// (see finish12), RSA key exchange last; naming it is how
		// crypto/tls still offers it. A session on a CBC suite would
		// have to be dropped mid-handshake, which OpenSSL punishes by
		// evicting it.
		cfg.CipherSuites = wire.FinishableSuites12()
	}
	if cc != nil {
		cfg.RootCAs = cc.roots
		cfg.Certificates = cc.certs
	}
	return cfg
}

// tlsConfig returns a crypto/tls client configuration of its own for one
// handshake at exactly one protocol version, cloned from the one Compile
// built. serverName is the SNI and the name the certificate must match.
func (m *Module) tlsConfig(serverName string, version uint16) *tls.Config {
	var cfg *tls.Config
	if base := m.client.baseFor(version); base != nil {
		cfg = base.Clone()
	} else {
		cfg = m.baseConfig(m.client, version) // a module used without Compile
	}
	cfg.ServerName = serverName
	return cfg
}

func (cc *clientConfig) baseFor(version uint16) *tls.Config {
	if cc == nil {
		return nil
	}
	return cc.base[version]
}
