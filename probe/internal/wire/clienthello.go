package wire

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHello is a ClientHello of TLS 1.2 or TLS 1.3 (RFC 5246 §7.4.1.2,
// RFC 8446 §4.1.2), for the offers crypto/tls cannot make: a session ID
// from the server's cache, a ticket with a session ID of the probe's
// choosing, and (built on the same fields) TLS 1.3 PSK offers of its own.
// Each extension is sent when its field is set; Extensions fixes their
// order, as a parsed hello's does.
type ClientHello struct {
	// Version is legacy_version: 0x0303 for both TLS 1.2 and TLS 1.3.
	Version uint16
	Random  [32]byte
	// SessionID is the session to resume, or any 1–32 bytes to recognise
	// the echo of when offering a ticket (or, in TLS 1.3, for middlebox
	// compatibility).
	SessionID          []byte
	CipherSuites       []uint16
	CompressionMethods []uint8

	// ServerName goes in server_name as a host_name; see sniHost.
	ServerName           string
	ExtendedMasterSecret bool
	// SecureRenegotiation sends an empty renegotiation_info: an initial
	// handshake.
	SecureRenegotiation bool
	SupportedGroups     []uint16
	SupportedPoints     []uint8
	SignatureSchemes    []uint16
	// TicketSupported sends session_ticket carrying SessionTicket, which
	// may be empty (asking for a new ticket).
	TicketSupported bool
	SessionTicket   []byte

	// TLS 1.3.
	SupportedVersions []uint16
	KeyShares         []KeyShare
	PSKModes          []uint8
	EarlyData         bool
	// PSKIdentities and PSKBinders make pre_shared_key, which is always
	// the last extension (RFC 8446 §4.2.11); one binder per identity.
	PSKIdentities []PSKIdentity
	PSKBinders    [][]byte

	// Extensions is the order of the extensions; nil means the canonical
	// order of clientHelloOrder, then Other, then pre_shared_key.
	Extensions []uint16
	// Other holds the extensions without a field, verbatim.
	Other []Extension
}

// KeyShare is one key_share entry: a group and its public value.
type KeyShare struct {
	Group uint16
	Data  []byte
}

// PSKIdentity is one identity of pre_shared_key: a ticket and its
// obfuscated age.
type PSKIdentity struct {
	Identity            []byte
	ObfuscatedTicketAge uint32
}

// Groups and signature schemes offered to a TLS 1.2 server: what a current
// client offers, so a server does not refuse the hello for want of one.
var (
	clientHelloGroups  = []uint16{uint16(tls.X25519), uint16(tls.CurveP256), uint16(tls.CurveP384)}
	clientHelloSigAlgs = []uint16{
		uint16(tls.ECDSAWithP256AndSHA256), uint16(tls.ECDSAWithP384AndSHA384), uint16(tls.ECDSAWithP521AndSHA512),
		uint16(tls.Ed25519),
		uint16(tls.PSSWithSHA256), uint16(tls.PSSWithSHA384), uint16(tls.PSSWithSHA512),
		uint16(tls.PKCS1WithSHA256), uint16(tls.PKCS1WithSHA384), uint16(tls.PKCS1WithSHA512),
		uint16(tls.PKCS1WithSHA1), uint16(tls.ECDSAWithSHA1), // last, for servers that know nothing newer
	}
)

// NewClientHello12 returns a TLS 1.2 ClientHello offering suites to
// serverName (sent as SNI unless sniHost drops it), with the groups, point
// formats and signature schemes a current client sends and an empty
// renegotiation_info. The caller sets Random, SessionID and what it offers.
func NewClientHello12(serverName string, suites []uint16) *ClientHello {
	return &ClientHello{
		Version:             VersionTLS12,
		CipherSuites:        suites,
		CompressionMethods:  []uint8{compressionNone},
		ServerName:          sniHost(serverName),
		SecureRenegotiation: true,
		SupportedGroups:     clientHelloGroups,
		SupportedPoints:     []uint8{pointFormatUncompr},
		SignatureSchemes:    clientHelloSigAlgs,
	}
}

// sniHost returns the name to send in server_name for a target's server
// name: without a trailing dot, and "" for an IP address, which RFC 6066 §3
// forbids there.
func sniHost(name string) string {
	name = strings.TrimSuffix(name, ".")
	if _, err := netip.ParseAddr(strings.Trim(name, "[]")); err == nil {
		return ""
	}
	return name
}

// extensionTypes lists the extensions Marshal sends, in order.
func (c *ClientHello) extensionTypes() []uint16 {
	if c.Extensions != nil {
		return c.Extensions
	}
	var present []uint16
	for _, e := range []struct {
		typ uint16
		set bool
	}{
		{extServerName, c.ServerName != ""},
		{extExtendedMasterSecret, c.ExtendedMasterSecret},
		{extRenegotiationInfo, c.SecureRenegotiation},
		{extSupportedGroups, len(c.SupportedGroups) > 0},
		{extECPointFormats, len(c.SupportedPoints) > 0},
		{extSessionTicket, c.TicketSupported},
		{extSignatureAlgorithms, len(c.SignatureSchemes) > 0},
		{extSupportedVersions, len(c.SupportedVersions) > 0},
		{extPSKModes, len(c.PSKModes) > 0},
		{extKeyShare, len(c.KeyShares) > 0},
		{extEarlyData, c.EarlyData},
	} {
		if e.set {
			present = append(present, e.typ)
		}
	}
	order := orderOf(nil, present, c.Other)
	if len(c.PSKIdentities) > 0 {
		order = append(order, extPreSharedKey)
	}
	return order
}

// hasExtensionType reports whether the hello sends an extension of type ext.
func (c *ClientHello) hasExtensionType(ext uint16) bool { return hasExtension(c.extensionTypes(), ext) }

// Marshal returns the ClientHello handshake message (type, length, body);
// AppendRecords frames it.
func (c *ClientHello) Marshal() ([]byte, error) {
	if len(c.SessionID) > 32 {
		return nil, fmt.Errorf("ClientHello: %d-byte session ID exceeds 32", len(c.SessionID))
	}
	if len(c.CipherSuites) == 0 {
		return nil, errors.New("ClientHello: no cipher suites")
	}
	if len(c.CompressionMethods) == 0 {
		return nil, errors.New("ClientHello: no compression methods (null is 0)")
	}
	if len(c.SessionTicket) > 0xffff-4 {
		return nil, fmt.Errorf("ClientHello: %d-byte session ticket too long", len(c.SessionTicket))
	}
	order := c.extensionTypes()
	if i := slices.Index(order, extPreSharedKey); i >= 0 && i != len(order)-1 {
		return nil, errors.New("ClientHello: pre_shared_key is not the last extension")
	}
	if len(c.PSKIdentities) != len(c.PSKBinders) {
		return nil, fmt.Errorf("ClientHello: %d PSK identities but %d binders", len(c.PSKIdentities), len(c.PSKBinders))
	}
	return marshalMessage("ClientHello", typeClientHello, func(b *cryptobyte.Builder) {
		b.AddUint16(c.Version)
		b.AddBytes(c.Random[:])
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.SessionID) })
		addUint16List(b, c.CipherSuites)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.CompressionMethods) })
		if c.Extensions != nil || len(order) > 0 {
			addExtensions(b, "ClientHello", order, c.Other, c.addExtension)
		}
	})
}

// MarshalWithoutBinders returns the message up to, not including, the PSK
// binders list, with every length as in the whole message: the input of the
// binders' HMAC (RFC 8446 §4.2.11.2).
func (c *ClientHello) MarshalWithoutBinders() ([]byte, error) {
	if len(c.PSKIdentities) == 0 {
		return nil, errors.New("ClientHello: no pre_shared_key to bind")
	}
	msg, err := c.Marshal()
	if err != nil {
		return nil, err
	}
	n := 2
	for _, b := range c.PSKBinders {
		n += 1 + len(b)
	}
	return msg[:len(msg)-n], nil
}

func (c *ClientHello) addExtension(b *cryptobyte.Builder, ext uint16) bool {
	switch ext {
	case extServerName:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint8(sniHostName)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(c.ServerName)) })
		})
	case extExtendedMasterSecret, extEarlyData:
	case extRenegotiationInfo:
		b.AddUint8(0) // empty renegotiated_connection
	case extSupportedGroups:
		addUint16List(b, c.SupportedGroups)
	case extECPointFormats:
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.SupportedPoints) })
	case extSessionTicket:
		b.AddBytes(c.SessionTicket)
	case extSignatureAlgorithms:
		addUint16List(b, c.SignatureSchemes)
	case extSupportedVersions:
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, v := range c.SupportedVersions {
				b.AddUint16(v)
			}
		})
	case extKeyShare:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, ks := range c.KeyShares {
				b.AddUint16(ks.Group)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ks.Data) })
			}
		})
	case extPSKModes:
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(c.PSKModes) })
	case extPreSharedKey:
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, id := range c.PSKIdentities {
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(id.Identity) })
				b.AddUint32(id.ObfuscatedTicketAge)
			}
		})
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, binder := range c.PSKBinders {
				b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(binder) })
			}
		})
	default:
		return false
	}
	return true
}

// ParseClientHello parses the body of a ClientHello handshake message: how
// a probe learns what crypto/tls actually offered, e.g. whether it sent
// pre_shared_key for a stored session.
func ParseClientHello(body []byte) (*ClientHello, error) {
	s := cryptobyte.String(body)
	c := &ClientHello{}
	var random, sid, comp, exts cryptobyte.String
	if !s.ReadUint16(&c.Version) || !s.ReadBytes((*[]byte)(&random), 32) {
		return nil, errors.New("ClientHello: version or random truncated")
	}
	copy(c.Random[:], random)
	if !s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32 {
		return nil, errors.New("ClientHello: session_id malformed")
	}
	c.SessionID = bytes.Clone([]byte(sid))
	var ok bool
	if c.CipherSuites, ok = readUint16List(&s, false); !ok || len(c.CipherSuites) == 0 {
		return nil, errors.New("ClientHello: cipher_suites malformed or empty")
	}
	if !s.ReadUint8LengthPrefixed(&comp) || len(comp) == 0 {
		return nil, errors.New("ClientHello: compression_methods truncated or empty")
	}
	c.CompressionMethods = bytes.Clone([]byte(comp))
	if s.Empty() {
		return c, nil
	}
	if !s.ReadUint16LengthPrefixed(&exts) || !s.Empty() {
		return nil, errors.New("ClientHello: extensions malformed")
	}
	var err error
	if c.Extensions, err = readExtensions("ClientHello", exts, &c.Other, c.readExtension); err != nil {
		return nil, err
	}
	if i := slices.Index(c.Extensions, extPreSharedKey); i >= 0 && i != len(c.Extensions)-1 {
		return nil, errors.New("ClientHello: pre_shared_key is not the last extension")
	}
	return c, nil
}

func (c *ClientHello) readExtension(typ uint16, data cryptobyte.String) (bool, error) {
	ok := true
	switch typ {
	case extServerName:
		var list, name cryptobyte.String
		var nameType uint8
		ok = data.ReadUint16LengthPrefixed(&list) && list.ReadUint8(&nameType) && nameType == sniHostName &&
			list.ReadUint16LengthPrefixed(&name) && list.Empty()
		c.ServerName = string(name)
	case extExtendedMasterSecret:
		c.ExtendedMasterSecret = true
	case extEarlyData:
		c.EarlyData = true
	case extRenegotiationInfo:
		var conn cryptobyte.String
		if !data.ReadUint8LengthPrefixed(&conn) || len(conn) != 0 {
			return false, nil // a renegotiation: kept verbatim
		}
		c.SecureRenegotiation = true
	case extSupportedGroups:
		c.SupportedGroups, ok = readUint16List(&data, false)
	case extECPointFormats:
		var pf cryptobyte.String
		ok = data.ReadUint8LengthPrefixed(&pf)
		c.SupportedPoints = bytes.Clone([]byte(pf))
	case extSessionTicket:
		c.TicketSupported, c.SessionTicket = true, bytes.Clone([]byte(data))
		data = nil
	case extSignatureAlgorithms:
		c.SignatureSchemes, ok = readUint16List(&data, false)
	case extSupportedVersions:
		c.SupportedVersions, ok = readUint16List(&data, true)
	case extKeyShare:
		ok = c.readKeyShares(data)
		data = nil
	case extPSKModes:
		var modes cryptobyte.String
		ok = data.ReadUint8LengthPrefixed(&modes)
		c.PSKModes = bytes.Clone([]byte(modes))
	case extPreSharedKey:
		ok = c.readPreSharedKey(data)
		data = nil
	default:
		return false, nil
	}
	if !ok || !data.Empty() {
		return false, fmt.Errorf("ClientHello: extension %d malformed", typ)
	}
	return true, nil
}

func (c *ClientHello) readKeyShares(data cryptobyte.String) bool {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) || !data.Empty() {
		return false
	}
	c.KeyShares = []KeyShare{}
	for !list.Empty() {
		var ks KeyShare
		var kx cryptobyte.String
		if !list.ReadUint16(&ks.Group) || !list.ReadUint16LengthPrefixed(&kx) || len(kx) == 0 {
			return false
		}
		ks.Data = bytes.Clone([]byte(kx))
		c.KeyShares = append(c.KeyShares, ks)
	}
	return true
}

func (c *ClientHello) readPreSharedKey(data cryptobyte.String) bool {
	var ids, binders cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&ids) || !data.ReadUint16LengthPrefixed(&binders) || !data.Empty() || ids.Empty() {
		return false
	}
	for !ids.Empty() {
		var id PSKIdentity
		var identity cryptobyte.String
		if !ids.ReadUint16LengthPrefixed(&identity) || len(identity) == 0 || !ids.ReadUint32(&id.ObfuscatedTicketAge) {
			return false
		}
		id.Identity = bytes.Clone([]byte(identity))
		c.PSKIdentities = append(c.PSKIdentities, id)
	}
	for !binders.Empty() {
		var binder cryptobyte.String
		if !binders.ReadUint8LengthPrefixed(&binder) || len(binder) < 32 {
			return false
		}
		c.PSKBinders = append(c.PSKBinders, bytes.Clone([]byte(binder)))
	}
	return len(c.PSKBinders) == len(c.PSKIdentities)
}
