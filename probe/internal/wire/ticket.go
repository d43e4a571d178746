package wire

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
)

// NewSessionTicket12 is a TLS 1.2 NewSessionTicket (RFC 5077 §3.3).
type NewSessionTicket12 struct {
	// LifetimeHint is ticket_lifetime_hint in seconds; 0 means unspecified.
	LifetimeHint uint32
	// Ticket may be empty: a server that decided not to issue one after all.
	Ticket []byte
}

// Marshal returns the NewSessionTicket handshake message.
func (t *NewSessionTicket12) Marshal() ([]byte, error) {
	return marshalMessage("NewSessionTicket (TLS 1.2)", typeNewSessionTicket, func(b *cryptobyte.Builder) {
		b.AddUint32(t.LifetimeHint)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Ticket) })
	})
}

// ParseNewSessionTicket12 parses the body of a TLS 1.2 NewSessionTicket.
func ParseNewSessionTicket12(body []byte) (*NewSessionTicket12, error) {
	s := cryptobyte.String(body)
	t := &NewSessionTicket12{}
	var ticket cryptobyte.String
	if !s.ReadUint32(&t.LifetimeHint) {
		return nil, errors.New("NewSessionTicket (TLS 1.2): ticket_lifetime_hint truncated")
	}
	if !s.ReadUint16LengthPrefixed(&ticket) {
		return nil, errors.New("NewSessionTicket (TLS 1.2): ticket truncated")
	}
	if !s.Empty() {
		return nil, fmt.Errorf("NewSessionTicket (TLS 1.2): %d bytes after ticket", len(s))
	}
	t.Ticket = bytes.Clone([]byte(ticket))
	return t, nil
}

// NewSessionTicket13 is a TLS 1.3 NewSessionTicket (RFC 8446 §4.6.1).
type NewSessionTicket13 struct {
	// Lifetime is ticket_lifetime in seconds. It is reported as sent, even
	// above the 604800 the RFC allows.
	Lifetime uint32
	AgeAdd   uint32
	Nonce    []byte
	Ticket   []byte
	// EarlyData: the early_data (42) extension is present, and
	// MaxEarlyData is its max_early_data_size.
	EarlyData    bool
	MaxEarlyData uint32
	// Extensions lists the extension types in the order sent; nil means
	// early_data when set, then Other.
	Extensions []uint16
	// Other holds the extensions other than early_data, verbatim.
	Other []Extension
}

// Marshal returns the NewSessionTicket handshake message.
func (t *NewSessionTicket13) Marshal() ([]byte, error) {
	if len(t.Ticket) == 0 {
		return nil, errors.New("NewSessionTicket: ticket is empty")
	}
	var present []uint16
	if t.EarlyData {
		present = append(present, extEarlyData)
	}
	order := orderOf(t.Extensions, present, t.Other)
	return marshalMessage("NewSessionTicket", typeNewSessionTicket, func(b *cryptobyte.Builder) {
		b.AddUint32(t.Lifetime)
		b.AddUint32(t.AgeAdd)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Nonce) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(t.Ticket) })
		addExtensions(b, "NewSessionTicket", order, t.Other, func(b *cryptobyte.Builder, typ uint16) bool {
			if typ != extEarlyData {
				return false
			}
			b.AddUint32(t.MaxEarlyData)
			return true
		})
	})
}

// ParseNewSessionTicket13 parses the body of a TLS 1.3 NewSessionTicket.
func ParseNewSessionTicket13(body []byte) (*NewSessionTicket13, error) {
	s := cryptobyte.String(body)
	t := &NewSessionTicket13{}
	var nonce, ticket, exts cryptobyte.String
	if !s.ReadUint32(&t.Lifetime) {
		return nil, errors.New("NewSessionTicket: ticket_lifetime truncated")
	}
	if !s.ReadUint32(&t.AgeAdd) {
		return nil, errors.New("NewSessionTicket: ticket_age_add truncated")
	}
	if !s.ReadUint8LengthPrefixed(&nonce) {
		return nil, errors.New("NewSessionTicket: ticket_nonce truncated")
	}
	if !s.ReadUint16LengthPrefixed(&ticket) {
		return nil, errors.New("NewSessionTicket: ticket truncated")
	}
	if len(ticket) == 0 {
		return nil, errors.New("NewSessionTicket: ticket is empty")
	}
	if !s.ReadUint16LengthPrefixed(&exts) {
		return nil, errors.New("NewSessionTicket: extensions truncated")
	}
	if !s.Empty() {
		return nil, fmt.Errorf("NewSessionTicket: %d bytes after extensions", len(s))
	}
	t.Nonce = bytes.Clone([]byte(nonce))
	if t.Nonce == nil {
		t.Nonce = []byte{}
	}
	t.Ticket = bytes.Clone([]byte(ticket))
	var err error
	t.Extensions, err = readExtensions("NewSessionTicket", exts, &t.Other, func(typ uint16, data cryptobyte.String) (bool, error) {
		if typ != extEarlyData {
			return false, nil
		}
		if !data.ReadUint32(&t.MaxEarlyData) || !data.Empty() {
			return false, fmt.Errorf("NewSessionTicket: extension %d (early_data) is not one max_early_data_size", typ)
		}
		t.EarlyData = true
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}
