package wire

import (
	"errors"

	"golang.org/x/crypto/cryptobyte"
)

// ClientHelloExtensions returns the extension types of the ClientHello at
// the start of msgs (handshake messages, record framing removed): how a
// probe learns what crypto/tls actually offered, e.g. whether it sent
// pre_shared_key for a stored session.
func ClientHelloExtensions(msgs []byte) ([]uint16, error) {
	s := cryptobyte.String(msgs)
	var typ uint8
	var body cryptobyte.String
	if !s.ReadUint8(&typ) || !s.ReadUint24LengthPrefixed(&body) {
		return nil, errors.New("ClientHello: truncated")
	}
	if typ != 1 {
		return nil, errors.New("ClientHello: first handshake message is not a ClientHello")
	}
	var sid, suites, comp, exts cryptobyte.String
	if !body.Skip(2+32) || !body.ReadUint8LengthPrefixed(&sid) || !body.ReadUint16LengthPrefixed(&suites) ||
		!body.ReadUint8LengthPrefixed(&comp) {
		return nil, errors.New("ClientHello: truncated before extensions")
	}
	if body.Empty() {
		return nil, nil
	}
	if !body.ReadUint16LengthPrefixed(&exts) {
		return nil, errors.New("ClientHello: extensions truncated")
	}
	var types []uint16
	for !exts.Empty() {
		var t uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&t) || !exts.ReadUint16LengthPrefixed(&data) {
			return nil, errors.New("ClientHello: extension truncated")
		}
		types = append(types, t)
	}
	return types, nil
}
