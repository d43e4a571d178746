package wire

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Extension types the package reads or writes.
const (
	ExtServerName           uint16 = 0
	ExtSupportedGroups      uint16 = 10
	ExtECPointFormats       uint16 = 11
	ExtSignatureAlgorithms  uint16 = 13
	ExtExtendedMasterSecret uint16 = 23
	ExtSessionTicket        uint16 = 35
	ExtPreSharedKey         uint16 = 41
	ExtEarlyData            uint16 = 42
	ExtSupportedVersions    uint16 = 43
	ExtKeyShare             uint16 = 51
	ExtRenegotiationInfo    uint16 = 0xff01
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
	// Extensions lists the extension types in the order sent.
	Extensions []uint16
}

// Version returns the negotiated protocol version: supported_versions when
// present, else legacy_version.
func (s *ServerHello) Version() uint16 {
	if s.SupportedVersion != 0 {
		return s.SupportedVersion
	}
	return s.LegacyVersion
}

// HasExtension reports whether the server sent an extension of type ext.
func (s *ServerHello) HasExtension(ext uint16) bool {
	for _, e := range s.Extensions {
		if e == ext {
			return true
		}
	}
	return false
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
	if err := readExtensions("ServerHello", exts, sh.readExtension); err != nil {
		return nil, err
	}
	sh.Extensions = extensionTypes(exts)
	return sh, nil
}

// readExtensions calls read for each extension of a list, in order, after
// checking that it is well-formed and not a repeat.
func readExtensions(msg string, exts cryptobyte.String, read func(typ uint16, data cryptobyte.String) error) error {
	seen := map[uint16]bool{}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) {
			return fmt.Errorf("%s: extension type truncated", msg)
		}
		if !exts.ReadUint16LengthPrefixed(&data) {
			return fmt.Errorf("%s: extension %d truncated", msg, typ)
		}
		if seen[typ] {
			return fmt.Errorf("%s: extension %d sent twice", msg, typ)
		}
		seen[typ] = true
		if err := read(typ, data); err != nil {
			return err
		}
	}
	return nil
}

// extensionTypes lists the types of an extension list readExtensions
// accepted.
func extensionTypes(exts cryptobyte.String) []uint16 {
	var types []uint16
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		exts.ReadUint16(&typ)
		exts.ReadUint16LengthPrefixed(&data)
		types = append(types, typ)
	}
	return types
}

// readExtension reads the extensions whose contents the probe uses. Those
// it only needs to see present (session_ticket, extended_master_secret) are
// accepted with any contents, as crypto/tls does.
func (sh *ServerHello) readExtension(typ uint16, data cryptobyte.String) error {
	switch typ {
	case ExtSessionTicket:
		sh.TicketAck = true
	case ExtExtendedMasterSecret:
		sh.ExtendedMasterSecret = true
	case ExtSupportedVersions:
		if !data.ReadUint16(&sh.SupportedVersion) || !data.Empty() {
			return fmt.Errorf("ServerHello: extension %d (supported_versions) is not one version", typ)
		}
	case ExtPreSharedKey:
		if !data.ReadUint16(&sh.SelectedIdentity) || !data.Empty() {
			return fmt.Errorf("ServerHello: extension %d (pre_shared_key) is not one selected_identity", typ)
		}
		sh.PSKSelected = true
	case ExtKeyShare:
		if !data.ReadUint16(&sh.KeyShareGroup) {
			return fmt.Errorf("ServerHello: extension %d (key_share) group truncated", typ)
		}
		if sh.HelloRetryRequest {
			if !data.Empty() {
				return fmt.Errorf("ServerHello: extension %d (key_share) of a HelloRetryRequest has %d bytes after selected_group", typ, len(data))
			}
			break
		}
		var share cryptobyte.String
		if !data.ReadUint16LengthPrefixed(&share) || len(share) == 0 || !data.Empty() {
			return fmt.Errorf("ServerHello: extension %d (key_share) key_exchange malformed", typ)
		}
	}
	return nil
}
