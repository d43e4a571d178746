package probe

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// certHintError is a handshake that failed because the exporter could not
// verify the server's certificate, with what the user can do about it. The
// first probe of an internal server fails like this, and x509's wording alone
// says neither where the exporter takes its trust roots from nor that the
// posture can be probed without them.
type certHintError struct {
	err  error
	hint string
}

func (e *certHintError) Error() string { return e.err.Error() + "; " + e.hint }
func (e *certHintError) Unwrap() error { return e.err }

// insecureHint points to the shipped module that skips verification: the
// resumption posture of a server does not depend on who signed its
// certificate.
const insecureHint = "or, when the certificate does not matter for the resumption posture, " +
	"probe with module=insecure (tls_config.insecure_skip_verify: true)"

// explainCertificate returns err with a hint when it is a certificate
// verification failure that configuration fixes: an issuer the exporter
// does not trust (a private CA) or a name the certificate does not cover.
// serverName is the name the certificate was checked against. Any other
// error is returned unchanged.
func explainCertificate(err error, serverName string) error {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
	)
	switch {
	case errors.As(err, &unknown):
		return &certHintError{err: err, hint: fmt.Sprintf("the issuer%s is not a trusted CA: "+
			"for a private CA set tls_config.ca_file in the module to its PEM certificate, %s",
			issuerOf(unknown.Cert, err), insecureHint)}
	case errors.As(err, &hostname):
		cert := hostname.Certificate
		if cert == nil {
			cert = leaf(err)
		}
		return &certHintError{err: err, hint: fmt.Sprintf("the certificate is for %s, not %q: "+
			"use one of those names as the target's host, which is the server name of each probe, "+
			"or set tls_config.server_name in the module, %s",
			certNames(cert), serverName, insecureHint)}
	}
	return err
}

// leaf returns the server's own certificate from a crypto/tls verification
// error, or nil.
func leaf(err error) *x509.Certificate {
	var verify *tls.CertificateVerificationError
	if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
		return verify.UnverifiedCertificates[0]
	}
	return nil
}

// issuerOf names who signed cert (the certificate whose issuer is unknown),
// falling back to the top of the chain the server sent, so that the user
// knows which CA file to look for.
func issuerOf(cert *x509.Certificate, err error) string {
	if cert == nil {
		var verify *tls.CertificateVerificationError
		if errors.As(err, &verify) && len(verify.UnverifiedCertificates) > 0 {
			cert = verify.UnverifiedCertificates[len(verify.UnverifiedCertificates)-1]
		}
	}
	if cert == nil || cert.Issuer.String() == "" {
		return ""
	}
	return fmt.Sprintf(" %q", cert.Issuer.String())
}

// certNames lists the names a certificate is valid for, as crypto/x509
// matches them: DNS and IP subject alternative names (Go ignores the
// common name).
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	var names []string
	for _, n := range c.DNSNames {
		names = append(names, fmt.Sprintf("%q", n))
	}
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no DNS or IP names"
	}
	return strings.Join(names, ", ")
}
