package wire

import (
	"bytes"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// Handshake message types (RFC 8446 §4, RFC 5246 §7.4).
const (
	typeClientHello         uint8 = 1
	typeServerHello         uint8 = 2
	typeNewSessionTicket    uint8 = 4
	typeEndOfEarlyData      uint8 = 5
	typeEncryptedExtensions uint8 = 8
	typeCertificate         uint8 = 11
	typeServerKeyExchange   uint8 = 12
	typeCertificateRequest  uint8 = 13
	typeServerHelloDone     uint8 = 14
	typeCertificateVerify   uint8 = 15
	typeClientKeyExchange   uint8 = 16
	typeFinished            uint8 = 20
	typeCertificateStatus   uint8 = 22
	typeKeyUpdate           uint8 = 24
)

// maxHandshakeMessage bounds the body of one handshake message, as
// crypto/tls does: a longer length field means a broken or hostile peer, and
// the reassembler refuses it rather than buffering towards it.
const maxHandshakeMessage = 64 << 10

const handshakeHeaderLen = 4

// HandshakeMessage is one complete handshake message.
type HandshakeMessage struct {
	Type uint8
	// Body is the message without its 4-byte header. It is a copy, owned by
	// the caller.
	Body []byte
}

// Marshal returns the message as it goes on the wire and into a transcript:
// type, 24-bit length, body.
func (m HandshakeMessage) Marshal() []byte {
	n := len(m.Body)
	return append([]byte{m.Type, byte(n >> 16), byte(n >> 8), byte(n)}, m.Body...)
}

// marshalMessage builds a handshake message of type typ whose body body
// writes; name is for the error.
func marshalMessage(name string, typ uint8, body cryptobyte.BuilderContinuation) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint8(typ)
	b.AddUint24LengthPrefixed(body)
	msg, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(msg)-handshakeHeaderLen > maxHandshakeMessage {
		return nil, fmt.Errorf("%s: %d-byte body exceeds %d", name, len(msg)-handshakeHeaderLen, maxHandshakeMessage)
	}
	return msg, nil
}

// handshakeReassembler joins handshake messages that are split across
// records, and splits records that carry several. The zero value is ready.
// After an error it keeps returning that error.
type handshakeReassembler struct {
	buf []byte
	err error
}

// Add appends the payload of one handshake record and returns the messages
// it completed, in order.
func (h *handshakeReassembler) Add(fragment []byte) ([]HandshakeMessage, error) {
	if h.err != nil {
		return nil, h.err
	}
	h.buf = append(h.buf, fragment...)
	var msgs []HandshakeMessage
	for len(h.buf) >= handshakeHeaderLen {
		typ := h.buf[0]
		n := int(h.buf[1])<<16 | int(h.buf[2])<<8 | int(h.buf[3])
		if n > maxHandshakeMessage {
			h.err = fmt.Errorf("handshake message type %d: %d-byte body exceeds %d", typ, n, maxHandshakeMessage)
			h.buf = nil
			return msgs, h.err
		}
		if len(h.buf) < handshakeHeaderLen+n {
			break
		}
		body := make([]byte, n)
		copy(body, h.buf[handshakeHeaderLen:])
		msgs = append(msgs, HandshakeMessage{Type: typ, Body: body})
		h.buf = h.buf[handshakeHeaderLen+n:]
	}
	if len(h.buf) == 0 {
		h.buf = nil // let the backing array go
	}
	return msgs, nil
}

// Pending returns how many bytes of an incomplete message are buffered.
func (h *handshakeReassembler) Pending() int { return len(h.buf) }

// ParseHandshake parses b as exactly one handshake message, as a protected
// record that carries a single message (the TLS 1.2 Finished) holds it.
func ParseHandshake(b []byte) (HandshakeMessage, error) {
	if len(b) < handshakeHeaderLen {
		return HandshakeMessage{}, fmt.Errorf("handshake message: %d bytes, shorter than its header", len(b))
	}
	n := int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	if len(b) != handshakeHeaderLen+n {
		return HandshakeMessage{}, fmt.Errorf("handshake message type %d: %d-byte body in %d bytes", b[0], n, len(b)-handshakeHeaderLen)
	}
	return HandshakeMessage{Type: b[0], Body: bytes.Clone(b[handshakeHeaderLen:])}, nil
}
