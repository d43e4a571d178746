package wire

import "crypto/tls"

// Protocol versions as they appear on the wire (legacy_version,
// supported_versions, record headers).
const (
	VersionTLS10 uint16 = tls.VersionTLS10
	VersionTLS12 uint16 = tls.VersionTLS12
	VersionTLS13 uint16 = tls.VersionTLS13
)

// Extension types the package reads or writes (IANA TLS ExtensionType
// registry).
const (
	extServerName           uint16 = 0
	extSupportedGroups      uint16 = 10
	extECPointFormats       uint16 = 11
	extSignatureAlgorithms  uint16 = 13
	extALPN                 uint16 = 16
	extExtendedMasterSecret uint16 = 23
	extSessionTicket        uint16 = 35
	extPreSharedKey         uint16 = 41
	extEarlyData            uint16 = 42
	extSupportedVersions    uint16 = 43
	extCookie               uint16 = 44
	extPSKModes             uint16 = 45
	extKeyShare             uint16 = 51
	extRenegotiationInfo    uint16 = 0xff01
)

// PSK key exchange modes of psk_key_exchange_modes (RFC 8446 §4.2.9).
const (
	PSKModePlain uint8 = 0 // psk_ke: resumption without (EC)DHE
	PSKModeDHE   uint8 = 1 // psk_dhe_ke
)

// Values of single-byte fields.
const (
	compressionNone      uint8 = 0
	pointFormatUncompr   uint8 = 0
	sniHostName          uint8 = 0
	changeCipherSpecBody uint8 = 1
)
