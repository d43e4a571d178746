package wire

import "fmt"

// Alert levels (RFC 5246 §7.2).
const (
	AlertLevelWarning uint8 = 1
	AlertLevelFatal   uint8 = 2
)

// Alert is one TLS alert.
type Alert struct {
	Level, Description uint8
}

// ParseAlert parses the payload of a (decrypted) alert record, which holds
// exactly one alert.
func ParseAlert(payload []byte) (Alert, error) {
	if len(payload) != 2 {
		return Alert{}, fmt.Errorf("alert: %d bytes, want 2", len(payload))
	}
	return Alert{Level: payload[0], Description: payload[1]}, nil
}

// Marshal returns the alert as the payload of an alert record.
func (a Alert) Marshal() []byte { return []byte{a.Level, a.Description} }

// Fatal reports whether the alert ends the connection. In TLS 1.3 every
// alert but close_notify and user_canceled is fatal whatever its level says.
func (a Alert) Fatal() bool {
	return a.Level == AlertLevelFatal
}

// Alert descriptions (RFC 8446 §6, RFC 5246 §7.2 and the IANA registry).
const (
	AlertCloseNotify                  uint8 = 0
	alertUnexpectedMessage            uint8 = 10
	alertBadRecordMac                 uint8 = 20
	alertDecryptionFailed             uint8 = 21
	alertRecordOverflow               uint8 = 22
	alertDecompressionFailure         uint8 = 30
	AlertHandshakeFailure             uint8 = 40
	alertNoCertificate                uint8 = 41
	alertBadCertificate               uint8 = 42
	alertUnsupportedCertificate       uint8 = 43
	alertCertificateRevoked           uint8 = 44
	alertCertificateExpired           uint8 = 45
	alertCertificateUnknown           uint8 = 46
	alertIllegalParameter             uint8 = 47
	alertUnknownCa                    uint8 = 48
	alertAccessDenied                 uint8 = 49
	alertDecodeError                  uint8 = 50
	alertDecryptError                 uint8 = 51
	alertExportRestriction            uint8 = 60
	AlertProtocolVersion              uint8 = 70
	AlertInsufficientSecurity         uint8 = 71
	alertInternalError                uint8 = 80
	alertInappropriateFallback        uint8 = 86
	alertUserCanceled                 uint8 = 90
	alertNoRenegotiation              uint8 = 100
	alertMissingExtension             uint8 = 109
	alertUnsupportedExtension         uint8 = 110
	alertCertificateUnobtainable      uint8 = 111
	alertUnrecognizedName             uint8 = 112
	alertBadCertificateStatusResponse uint8 = 113
	alertBadCertificateHashValue      uint8 = 114
	alertUnknownPskIdentity           uint8 = 115
	alertCertificateRequired          uint8 = 116
	alertNoApplicationProtocol        uint8 = 120
	alertEchRequired                  uint8 = 121
)

var alertNames = map[uint8]string{
	AlertCloseNotify:                  "close_notify",
	alertUnexpectedMessage:            "unexpected_message",
	alertBadRecordMac:                 "bad_record_mac",
	alertDecryptionFailed:             "decryption_failed",
	alertRecordOverflow:               "record_overflow",
	alertDecompressionFailure:         "decompression_failure",
	AlertHandshakeFailure:             "handshake_failure",
	alertNoCertificate:                "no_certificate",
	alertBadCertificate:               "bad_certificate",
	alertUnsupportedCertificate:       "unsupported_certificate",
	alertCertificateRevoked:           "certificate_revoked",
	alertCertificateExpired:           "certificate_expired",
	alertCertificateUnknown:           "certificate_unknown",
	alertIllegalParameter:             "illegal_parameter",
	alertUnknownCa:                    "unknown_ca",
	alertAccessDenied:                 "access_denied",
	alertDecodeError:                  "decode_error",
	alertDecryptError:                 "decrypt_error",
	alertExportRestriction:            "export_restriction",
	AlertProtocolVersion:              "protocol_version",
	AlertInsufficientSecurity:         "insufficient_security",
	alertInternalError:                "internal_error",
	alertInappropriateFallback:        "inappropriate_fallback",
	alertUserCanceled:                 "user_canceled",
	alertNoRenegotiation:              "no_renegotiation",
	alertMissingExtension:             "missing_extension",
	alertUnsupportedExtension:         "unsupported_extension",
	alertCertificateUnobtainable:      "certificate_unobtainable",
	alertUnrecognizedName:             "unrecognized_name",
	alertBadCertificateStatusResponse: "bad_certificate_status_response",
	alertBadCertificateHashValue:      "bad_certificate_hash_value",
	alertUnknownPskIdentity:           "unknown_psk_identity",
	alertCertificateRequired:          "certificate_required",
	alertNoApplicationProtocol:        "no_application_protocol",
	alertEchRequired:                  "ech_required",
}

// String names the alert as "fatal handshake_failure(40)".
func (a Alert) String() string {
	level := fmt.Sprintf("level%d", a.Level)
	switch a.Level {
	case AlertLevelWarning:
		level = "warning"
	case AlertLevelFatal:
		level = "fatal"
	}
	name, ok := alertNames[a.Description]
	if !ok {
		name = "alert"
	}
	return fmt.Sprintf("%s %s(%d)", level, name, a.Description)
}
