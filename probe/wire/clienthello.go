package wire

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHello12 is a TLS 1.2 ClientHello for the resumption offers that
// crypto/tls cannot make: a session ID from the server's cache, or a ticket
// with a session ID of the probe's choosing. It is sent only to read the
// ServerHello; the handshake is never completed.
type ClientHello12 struct {
	Random [32]byte
	// SessionID is the session to resume, or any 1–32 bytes to recognise
	// the echo of when offering a ticket.
	SessionID    []byte
	CipherSuites []uint16
	// ServerName goes in server_name (SNI); omitted if empty or an IP
	// address (RFC 6066 §3).
	ServerName           string
	ExtendedMasterSecret bool
	// OfferTicket sends the session_ticket extension carrying SessionTicket,
	// which may be empty (asking for a new ticket).
	OfferTicket   bool
	SessionTicket []byte
}

// Groups and signature schemes offered: what a current client offers to a
// TLS 1.2 server, so a server does not refuse the hello for want of one.
var (
	clientHelloGroups  = []tls.CurveID{tls.X25519, tls.CurveP256, tls.CurveP384}
	clientHelloSigAlgs = []tls.SignatureScheme{
		tls.ECDSAWithP256AndSHA256, tls.ECDSAWithP384AndSHA384, tls.ECDSAWithP521AndSHA512,
		tls.Ed25519,
		tls.PSSWithSHA256, tls.PSSWithSHA384, tls.PSSWithSHA512,
		tls.PKCS1WithSHA256, tls.PKCS1WithSHA384, tls.PKCS1WithSHA512,
		tls.PKCS1WithSHA1, tls.ECDSAWithSHA1, // last, for servers that know nothing newer
	}
)

// sniName returns the host name to send in server_name, or "" for none.
func (c *ClientHello12) sniName() string {
	name := strings.TrimSuffix(c.ServerName, ".")
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return ""
	}
	return name
}

// extensionTypes lists the extensions Marshal sends, in order.
func (c *ClientHello12) extensionTypes() []uint16 {
	var exts []uint16
	if c.sniName() != "" {
		exts = append(exts, ExtServerName)
	}
	if c.ExtendedMasterSecret {
		exts = append(exts, ExtExtendedMasterSecret)
	}
	exts = append(exts, ExtRenegotiationInfo, ExtSupportedGroups, ExtECPointFormats)
	if c.OfferTicket {
		exts = append(exts, ExtSessionTicket)
	}
	return append(exts, ExtSignatureAlgorithms)
}

// Marshal returns the ClientHello as complete records, ready to write:
// record header (handshake, version 0x0301 as clients send in the first
// record), handshake header, and body with legacy_version 0x0303 and null
// compression. A hello larger than one record (a very long ticket) is split
// across records.
func (c *ClientHello12) Marshal() ([]byte, error) {
	if len(c.SessionID) > 32 {
		return nil, fmt.Errorf("ClientHello: %d-byte session ID exceeds 32", len(c.SessionID))
	}
	if len(c.CipherSuites) == 0 {
		return nil, errors.New("ClientHello: no cipher suites")
	}
	if len(c.SessionTicket) > 0xffff-4 {
		return nil, fmt.Errorf("ClientHello: %d-byte session ticket too long", len(c.SessionTicket))
	}
	var b cryptobyte.Builder
	b.AddUint8(TypeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(tls.VersionTLS12)
		b.AddBytes(c.Random[:])
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.SessionID) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range c.CipherSuites {
				b.AddUint16(s)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // null compression
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, ext := range c.extensionTypes() {
				b.AddUint16(ext)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { c.addExtension(b, ext) })
			}
		})
	})
	msg, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("ClientHello: %w", err)
	}
	const maxFragment = 16384
	out := make([]byte, 0, len(msg)+(len(msg)/maxFragment+1)*RecordHeaderLen)
	for len(msg) > 0 {
		n := min(len(msg), maxFragment)
		out = append(out, RecordHandshake, 0x03, 0x01, byte(n>>8), byte(n))
		out = append(out, msg[:n]...)
		msg = msg[n:]
	}
	return out, nil
}

func (c *ClientHello12) addExtension(b *cryptobyte.Builder, ext uint16) {
	switch ext {
	case ExtServerName:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8(0) // host_name
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.sniName())) })
		})
	case ExtExtendedMasterSecret:
	case ExtRenegotiationInfo:
		b.AddUint8(0) // empty renegotiated_connection: an initial handshake
	case ExtSupportedGroups:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, g := range clientHelloGroups {
				b.AddUint16(uint16(g))
			}
		})
	case ExtECPointFormats:
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) }) // uncompressed
	case ExtSessionTicket:
		b.AddBytes(c.SessionTicket)
	case ExtSignatureAlgorithms:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range clientHelloSigAlgs {
				b.AddUint16(uint16(s))
			}
		})
	}
}
