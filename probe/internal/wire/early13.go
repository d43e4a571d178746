package wire

import (
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// What a client that sends 0-RTT data needs beyond the PSK key schedule:
// protecting its early data, and reading the server's EncryptedExtensions,
// whose early_data extension says whether the server accepted it (RFC 8446
// §4.2.10).

// Sealer13 protects the records of one direction of a TLS 1.3 connection
// in one epoch, e.g. the client's early data under
// client_early_traffic_secret.
type Sealer13 struct{ p *decrypter }

// NewSealer13 derives the write key and IV of trafficSecret for suite.
func NewSealer13(suite uint16, trafficSecret []byte) (*Sealer13, error) {
	d, err := newDecrypter(suite, trafficSecret)
	if err != nil {
		return nil, err
	}
	return &Sealer13{p: d}, nil
}

// Seal appends to dst one protected record (outer type application_data)
// carrying plaintext of the inner content type typ, with no padding.
func (s *Sealer13) Seal(dst []byte, typ uint8, plaintext []byte) ([]byte, error) {
	if len(plaintext) > maxPlaintextLen {
		return nil, fmt.Errorf("TLS 1.3 record: %d-byte plaintext exceeds %d", len(plaintext), maxPlaintextLen)
	}
	d := s.p
	nonce := d.nonce()
	inner := append(append([]byte(nil), plaintext...), typ)
	n := len(inner) + d.aead.Overhead()
	start := len(dst)
	dst = appendHeader(dst, RecordApplicationData, VersionTLS12, n)
	dst = d.aead.Seal(dst, nonce, inner, dst[start:start+recordHeaderLen])
	d.seq++
	return dst, nil
}

// HandshakeReader13 opens the server's protected handshake records of the
// handshake epoch (server_handshake_traffic_secret) and reassembles the
// messages in them.
type HandshakeReader13 struct {
	d  *decrypter
	hs handshakeReassembler
}

// NewHandshakeReader13 derives the server's handshake keys of suite from
// its handshake traffic secret.
func NewHandshakeReader13(suite uint16, secret []byte) (*HandshakeReader13, error) {
	d, err := newDecrypter(suite, secret)
	if err != nil {
		return nil, err
	}
	return &HandshakeReader13{d: d}, nil
}

// Open decrypts one protected record and returns the handshake messages it
// completed. A record of another inner type is an error: the server's
// handshake epoch holds only handshake messages (or an alert).
func (r *HandshakeReader13) Open(rec Record) ([]HandshakeMessage, error) {
	typ, content, err := r.d.Open(rec)
	if err != nil {
		return nil, err
	}
	switch typ {
	case RecordHandshake:
		return r.hs.Add(content)
	case RecordAlert:
		a, err := ParseAlert(content)
		if err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("server sent alert %s", a)
	}
	return nil, fmt.Errorf("inner content type %d in the server's handshake epoch", typ)
}

// EncryptedExtensions is the server's EncryptedExtensions message (RFC
// 8446 §4.3.1), as far as a 0-RTT client reads it.
type EncryptedExtensions struct {
	// EarlyData: the early_data extension is present, the server accepted
	// the client's 0-RTT data.
	EarlyData bool
	// Extensions lists the types in the order sent; Other the extensions
	// besides early_data, verbatim.
	Extensions []uint16
	Other      []Extension
}

// ParseEncryptedExtensions parses the body of an EncryptedExtensions
// message.
func ParseEncryptedExtensions(body []byte) (*EncryptedExtensions, error) {
	s := cryptobyte.String(body)
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errors.New("EncryptedExtensions: extensions malformed")
	}
	ee := &EncryptedExtensions{}
	var err error
	ee.Extensions, err = readExtensions("EncryptedExtensions", exts, &ee.Other, func(typ uint16, data cryptobyte.String) (bool, error) {
		if typ != extEarlyData {
			return false, nil
		}
		if !data.Empty() {
			return false, fmt.Errorf("EncryptedExtensions: extension %d (early_data) is not empty", typ)
		}
		ee.EarlyData = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return ee, nil
}

// Marshal returns the EncryptedExtensions handshake message.
func (e *EncryptedExtensions) Marshal() ([]byte, error) {
	var present []uint16
	if e.EarlyData {
		present = append(present, extEarlyData)
	}
	order := orderOf(e.Extensions, present, e.Other)
	return marshalMessage("EncryptedExtensions", typeEncryptedExtensions, func(b *cryptobyte.Builder) {
		addExtensions(b, "EncryptedExtensions", order, e.Other, func(b *cryptobyte.Builder, typ uint16) bool {
			return typ == extEarlyData
		})
	})
}

// IsEncryptedExtensions reports whether m is an EncryptedExtensions message.
func IsEncryptedExtensions(m HandshakeMessage) bool { return m.Type == typeEncryptedExtensions }
