package probe

import (
	"crypto/tls"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// sessionSecret is what a hand-built offer of a crypto/tls session needs
// and crypto/tls does not expose: the resumption secret (the TLS 1.3 PSK,
// or the TLS 1.2 master secret) with its version and suite. It holds a
// secret and never leaves the probe.
type sessionSecret struct {
	version uint16
	suite   uint16
	secret  []byte
	ticket  []byte // the identity to offer
}

// errSessionLayout marks a SessionState encoding this code does not know:
// the layout of SessionState.Bytes is documented as opaque and may change
// with a Go release. TestSessionSecretLayout fails loudly when it does.
var errSessionLayout = errors.New("crypto/tls SessionState encoding not understood (Go release changed it?)")

// secretOf extracts the resumption secret of a session crypto/tls
// received. SessionState.Bytes (Go 1.21 to 1.26, crypto/tls/ticket.go)
// begins:
//
//	uint16 version; uint8 type (1 server, 2 client); uint16 cipher_suite;
//	uint64 created_at; opaque secret<1..2^8-1>; ...
//
// Only that prefix is read; what follows (certificates, use_by, age_add) is
// not needed: age_add comes from the decrypted NewSessionTicket.
func secretOf(cs *tls.ClientSessionState) (*sessionSecret, error) {
	ticket, st, err := cs.ResumptionState()
	if err != nil {
		return nil, err
	}
	if st == nil {
		return nil, errors.New("session has no state")
	}
	b, err := st.Bytes()
	if err != nil {
		return nil, err
	}
	s, err := parseSessionPrefix(b, 2)
	if err != nil {
		return nil, err
	}
	s.ticket = ticket
	return s, nil
}

// parseSessionPrefix reads the version, suite and secret of an encoded
// SessionState of the given type (1 server, 2 client).
func parseSessionPrefix(b []byte, wantType uint8) (*sessionSecret, error) {
	s := cryptobyte.String(b)
	var typ uint8
	var createdAt uint64
	var secret cryptobyte.String
	out := &sessionSecret{}
	if !s.ReadUint16(&out.version) || !s.ReadUint8(&typ) || !s.ReadUint16(&out.suite) ||
		!s.ReadUint64(&createdAt) || !s.ReadUint8LengthPrefixed(&secret) {
		return nil, fmt.Errorf("%w: truncated", errSessionLayout)
	}
	switch {
	case typ != wantType:
		return nil, fmt.Errorf("%w: type %d, want %d", errSessionLayout, typ, wantType)
	case out.version != tls.VersionTLS12 && out.version != tls.VersionTLS13:
		return nil, fmt.Errorf("%w: version %#04x", errSessionLayout, out.version)
	case tls.CipherSuiteName(out.suite) == fmt.Sprintf("0x%04X", out.suite):
		return nil, fmt.Errorf("%w: unknown cipher suite %#04x", errSessionLayout, out.suite)
	case len(secret) < 32:
		return nil, fmt.Errorf("%w: %d-byte secret", errSessionLayout, len(secret))
	}
	out.secret = append([]byte(nil), secret...)
	return out, nil
}
