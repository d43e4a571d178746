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
	ExtServerName           uint16 = 0
	ExtSupportedGroups      uint16 = 10
	ExtECPointFormats       uint16 = 11
	ExtSignatureAlgorithms  uint16 = 13
	ExtALPN                 uint16 = 16
	ExtExtendedMasterSecret uint16 = 23
	ExtSessionTicket        uint16 = 35
	ExtPreSharedKey         uint16 = 41
	ExtEarlyData            uint16 = 42
	ExtSupportedVersions    uint16 = 43
	ExtCookie               uint16 = 44
	ExtPSKModes             uint16 = 45
	ExtKeyShare             uint16 = 51
	ExtRenegotiationInfo    uint16 = 0xff01
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
