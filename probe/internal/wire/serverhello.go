package wire

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/crypto/cryptobyte"
)

// helloRetryRequestRandom is the Random of a HelloRetryRequest, which is
// sent as a ServerHello (RFC 8446 §4.1.3).
var helloRetryRequestRandom = [32]byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11,
	0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E,
	0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

// ServerHello is what a ServerHello (or HelloRetryRequest) tells about the
// server's choice.
type ServerHello struct {
	LegacyVersion uint16
	Random        [32]byte
	// SessionID is the legacy_session_id (echo). In TLS 1.2 a value equal to
	// the one the client offered means the server resumed.
	SessionID   []byte
	CipherSuite uint16
	Compression uint8
	// SupportedVersion is the supported_versions (43) selection, 0 if absent.
	SupportedVersion uint16
	// HelloRetryRequest is set when Random is the RFC 8446 HRR value.
	HelloRetryRequest bool
	// TicketAck: the session_ticket (35) extension is present, so the server
	// will send a TLS 1.2 NewSessionTicket.
	TicketAck bool
	// ExtendedMasterSecret: extended_master_secret (23) is present.
	ExtendedMasterSecret bool
	// PSKSelected: pre_shared_key (41) is present, the TLS 1.3 PSK offer
	// at SelectedIdentity was accepted.
	PSKSelected      bool
	SelectedIdentity uint16
	// KeyShareGroup is the key_share (51) group: the group of the server's
	// share, or in a HelloRetryRequest the group it asks for. 0 if absent
	// (which, with PSKSelected, means psk_ke resumption without DHE).
	KeyShareGroup uint16
	// KeyShareData is the server's public value; none in a
	// HelloRetryRequest.
	KeyShareData []byte
	// Extensions lists the extension types in the order sent. Marshal
	// follows it; when nil it sends those whose fields are set, then
	// Other. An empty, non-nil list sends an empty extensions block; nil
	// with nothing to send omits the block, as a TLS 1.2 server may.
	Extensions []uint16
	// Other holds the extensions without a field (renegotiation_info,
	// ec_point_formats, ALPN, cookie...), verbatim.
	Other []Extension
}

// Version returns the negotiated protocol version: supported_versions when
// present, else legacy_version.
func (s *ServerHello) Version() uint16 {
	if s.SupportedVersion != 0 {
		return s.SupportedVersion
	}
	return s.LegacyVersion
}

// hasExtensionType reports whether the server sent an extension of type ext.
func (s *ServerHello) hasExtensionType(ext uint16) bool { return hasExtension(s.extensionTypes(), ext) }

func (s *ServerHello) extensionTypes() []uint16 {
	var present []uint16
	for _, e := range []struct {
		typ uint16
		set bool
	}{
		{extSupportedVersions, s.SupportedVersion != 0},
		{extKeyShare, s.KeyShareGroup != 0},
		{extPreSharedKey, s.PSKSelected},
		{extExtendedMasterSecret, s.ExtendedMasterSecret},
		{extSessionTicket, s.TicketAck},
	} {
		if e.set {
			present = append(present, e.typ)
		}
	}
	return orderOf(s.Extensions, present, s.Other)
}

// Marshal returns the ServerHello (or, with HelloRetryRequest set, the
// HelloRetryRequest) handshake message: type, length, body.
func (s *ServerHello) Marshal() ([]byte, error) {
	if len(s.SessionID) > 32 {
		return nil, fmt.Errorf("ServerHello: %d-byte session_id exceeds 32", len(s.SessionID))
	}
	random := s.Random
	if s.HelloRetryRequest {
		random = helloRetryRequestRandom
	}
	order := s.extensionTypes()
	return marshalMessage("ServerHello", typeServerHello, func(b *cryptobyte.Builder) {
		b.AddUint16(s.LegacyVersion)
		b.AddBytes(random[:])
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.SessionID) })
		b.AddUint16(s.CipherSuite)
		b.AddUint8(s.Compression)
		if s.Extensions != nil || len(order) > 0 {
			addExtensions(b, "ServerHello", order, s.Other, s.addExtension)
		}
	})
}

func (s *ServerHello) addExtension(b *cryptobyte.Builder, typ uint16) bool {
	switch typ {
	case extSessionTicket, extExtendedMasterSecret:
		// Empty, unless the server sent contents (kept in Other).
		return !slices.ContainsFunc(s.Other, func(e Extension) bool { return e.Type == typ })
	case extSupportedVersions:
		b.AddUint16(s.SupportedVersion)
	case extPreSharedKey:
		b.AddUint16(s.SelectedIdentity)
	case extKeyShare:
		b.AddUint16(s.KeyShareGroup)
		if !s.HelloRetryRequest {
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(s.KeyShareData) })
		}
	default:
		return false
	}
	return true
}

// ParseServerHello parses the body of a ServerHello handshake message.
func ParseServerHello(body []byte) (*ServerHello, error) {
	s := cryptobyte.String(body)
	sh := &ServerHello{}
	var random, sessionID cryptobyte.String
	if !s.ReadUint16(&sh.LegacyVersion) {
		return nil, errors.New("ServerHello: legacy_version truncated")
	}
	if !s.ReadBytes((*[]byte)(&random), 32) {
		return nil, errors.New("ServerHello: random truncated")
	}
	copy(sh.Random[:], random)
	sh.HelloRetryRequest = sh.Random == helloRetryRequestRandom
	if !s.ReadUint8LengthPrefixed(&sessionID) {
		return nil, errors.New("ServerHello: session_id truncated")
	}
	if len(sessionID) > 32 {
		return nil, fmt.Errorf("ServerHello: %d-byte session_id exceeds 32", len(sessionID))
	}
	sh.SessionID = bytes.Clone([]byte(sessionID))
	if sh.SessionID == nil {
		sh.SessionID = []byte{}
	}
	if !s.ReadUint16(&sh.CipherSuite) {
		return nil, errors.New("ServerHello: cipher_suite truncated")
	}
	if !s.ReadUint8(&sh.Compression) {
		return nil, errors.New("ServerHello: compression_method truncated")
	}
	if s.Empty() {
		return sh, nil // a TLS 1.2 ServerHello may omit extensions entirely
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, errors.New("ServerHello: extensions truncated")
	}
	if !s.Empty() {
		return nil, fmt.Errorf("ServerHello: %d bytes after extensions", len(s))
	}
	var err error
	if sh.Extensions, err = readExtensions("ServerHello", exts, &sh.Other, sh.readExtension); err != nil {
		return nil, err
	}
	return sh, nil
}

// readExtension reads the extensions whose contents the probe uses. Those
// it only needs to see present (session_ticket, extended_master_secret) are
// accepted with any contents, as crypto/tls does.
func (sh *ServerHello) readExtension(typ uint16, data cryptobyte.String) (known bool, err error) {
	switch typ {
	case extSessionTicket:
		sh.TicketAck = true
		return data.Empty(), nil // contents, which mean nothing, are kept verbatim
	case extExtendedMasterSecret:
		sh.ExtendedMasterSecret = true
		return data.Empty(), nil
	case extSupportedVersions:
		if !data.ReadUint16(&sh.SupportedVersion) || !data.Empty() {
			return false, fmt.Errorf("ServerHello: extension %d (supported_versions) is not one version", typ)
		}
	case extPreSharedKey:
		if !data.ReadUint16(&sh.SelectedIdentity) || !data.Empty() {
			return false, fmt.Errorf("ServerHello: extension %d (pre_shared_key) is not one selected_identity", typ)
		}
		sh.PSKSelected = true
	case extKeyShare:
		if !data.ReadUint16(&sh.KeyShareGroup) {
			return false, fmt.Errorf("ServerHello: extension %d (key_share) group truncated", typ)
		}
		if sh.HelloRetryRequest {
			if !data.Empty() {
				return false, fmt.Errorf("ServerHello: extension %d (key_share) of a HelloRetryRequest has %d bytes after selected_group", typ, len(data))
			}
			break
		}
		var share cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&share) || len(share) == 0 || !data.Empty() {
			return false, fmt.Errorf("ServerHello: extension %d (key_share) key_exchange malformed", typ)
		}
		sh.KeyShareData = bytes.Clone([]byte(share))
	default:
		return false, nil
	}
	return true, nil
}
