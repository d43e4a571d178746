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

// Fatal reports whether the alert ends the connection. In TLS 1.3 every
// alert but close_notify and user_canceled is fatal whatever its level says.
func (a Alert) Fatal() bool {
	return a.Level == AlertLevelFatal
}

var alertNames = map[uint8]string{
	0:   "close_notify",
	10:  "unexpected_message",
	20:  "bad_record_mac",
	21:  "decryption_failed",
	22:  "record_overflow",
	30:  "decompression_failure",
	40:  "handshake_failure",
	41:  "no_certificate",
	42:  "bad_certificate",
	43:  "unsupported_certificate",
	44:  "certificate_revoked",
	45:  "certificate_expired",
	46:  "certificate_unknown",
	47:  "illegal_parameter",
	48:  "unknown_ca",
	49:  "access_denied",
	50:  "decode_error",
	51:  "decrypt_error",
	60:  "export_restriction",
	70:  "protocol_version",
	71:  "insufficient_security",
	80:  "internal_error",
	86:  "inappropriate_fallback",
	90:  "user_canceled",
	100: "no_renegotiation",
	109: "missing_extension",
	110: "unsupported_extension",
	111: "certificate_unobtainable",
	112: "unrecognized_name",
	113: "bad_certificate_status_response",
	114: "bad_certificate_hash_value",
	115: "unknown_psk_identity",
	116: "certificate_required",
	120: "no_application_protocol",
	121: "ech_required",
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
