package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// EventKind says what a FlightReader event carries.
type EventKind uint8

const (
	// EventMessage: a plaintext handshake message, whole.
	EventMessage EventKind = iota + 1
	// EventAlert: a plaintext alert.
	EventAlert
	// EventChangeCipherSpec: a ChangeCipherSpec record. In TLS 1.2 the
	// records after it are protected; in TLS 1.3 it means nothing.
	EventChangeCipherSpec
	// EventProtected: a record the reader cannot read: application data,
	// or in TLS 1.2 anything after ChangeCipherSpec. Record is a copy.
	EventProtected
)

// Event is one thing the server's byte stream said.
type Event struct {
	Kind EventKind
	// Index is the number of the record that completed the event, from 0.
	Index   int
	Message HandshakeMessage
	// ServerHello is the parsed Message when it is a ServerHello.
	ServerHello *ServerHello
	Alert       Alert
	Record      Record
}

// FlightReader turns one direction of a TLS connection, fed as the bytes
// arrive, into events: records are split, handshake messages reassembled
// across records, alerts and ChangeCipherSpec reported. It tells plaintext
// from protected records as a client must: in TLS 1.2 everything after
// ChangeCipherSpec is protected; once a ServerHello selected TLS 1.3,
// handshake records stay plaintext (a second ServerHello after a
// HelloRetryRequest) and application_data is protected. After an error it
// keeps returning that error.
type FlightReader struct {
	limit     int // bytes fed at most
	fed       int
	buf       []byte // an incomplete record, copied
	records   int
	hs        handshakeReassembler
	tls13     bool
	protected bool // a TLS 1.2 ChangeCipherSpec was seen
	err       error
}

// NewFlightReader returns a reader that refuses more than limit bytes in
// all: a peer that streams without saying anything useful stops there.
func NewFlightReader(limit int) *FlightReader { return &FlightReader{limit: limit} }

// Feed takes the next bytes of the stream and returns the events they
// completed, in order. On error the events before the bad record are still
// returned.
func (r *FlightReader) Feed(p []byte) ([]Event, error) {
	if r.err != nil {
		return nil, r.err
	}
	if r.fed+len(p) > r.limit {
		r.err = fmt.Errorf("more than %d bytes from the server without the end of its flight", r.limit)
		return nil, r.err
	}
	r.fed += len(p)
	// Records wholly inside p are read in place; only an incomplete tail
	// is copied, to be completed by the next Feed.
	data := p
	if len(r.buf) > 0 {
		r.buf = append(r.buf, p...)
		data = r.buf
	}
	var events []Event
	for len(data) >= recordHeaderLen {
		length := int(binary.BigEndian.Uint16(data[3:5]))
		rec := Record{Type: data[0], Version: binary.BigEndian.Uint16(data[1:3])}
		if err := checkHeader(rec.Type, rec.Version, length); err != nil {
			r.err = fmt.Errorf("record %d: %w", r.records, err)
			return events, r.err
		}
		if len(data) < recordHeaderLen+length {
			break
		}
		rec.Payload = data[recordHeaderLen : recordHeaderLen+length]
		var err error
		if events, err = r.record(events, rec); err != nil {
			r.err = fmt.Errorf("record %d: %w", r.records, err)
			return events, r.err
		}
		r.records++
		data = data[recordHeaderLen+length:]
	}
	r.buf = append(r.buf[:0], data...)
	if len(r.buf) == 0 {
		r.buf = nil // let the backing array go
	}
	return events, nil
}

// record turns one whole record into events. rec.Payload aliases the
// caller's bytes or r.buf: what an event keeps is copied.
func (r *FlightReader) record(events []Event, rec Record) ([]Event, error) {
	switch {
	case rec.Type == RecordChangeCipherSpec:
		r.protected = !r.tls13
		return append(events, Event{Kind: EventChangeCipherSpec, Index: r.records}), nil
	case rec.Type == RecordApplicationData, r.protected:
		rec.Payload = bytes.Clone(rec.Payload)
		return append(events, Event{Kind: EventProtected, Index: r.records, Record: rec}), nil
	case rec.Type == RecordAlert:
		a, err := ParseAlert(rec.Payload)
		if err != nil {
			return events, err
		}
		return append(events, Event{Kind: EventAlert, Index: r.records, Alert: a}), nil
	}
	msgs, err := r.hs.Add(rec.Payload)
	if err != nil {
		return events, err
	}
	for _, m := range msgs {
		ev := Event{Kind: EventMessage, Index: r.records, Message: m}
		if m.Type == typeServerHello {
			if ev.ServerHello, err = ParseServerHello(m.Body); err != nil {
				return events, err
			}
			r.tls13 = ev.ServerHello.Version() >= VersionTLS13
		}
		events = append(events, ev)
	}
	return events, nil
}

// checkHeader refuses a record header that cannot be TLS.
func checkHeader(typ uint8, version uint16, length int) error {
	switch typ {
	case RecordChangeCipherSpec, RecordAlert, RecordHandshake, RecordApplicationData:
	default:
		return fmt.Errorf("unknown content type %d (not TLS?)", typ)
	}
	if version>>8 != 3 {
		return fmt.Errorf("version %#04x is not TLS", version)
	}
	if length > maxRecordPayload {
		return fmt.Errorf("%d-byte payload exceeds %d", length, maxRecordPayload)
	}
	return nil
}

// ReadClientHello returns the ClientHello at the start of a client's
// stream (records as sent): how a probe learns what crypto/tls actually
// offered, e.g. whether it sent pre_shared_key for a stored session.
func ReadClientHello(stream []byte) (*ClientHello, error) {
	events, err := NewFlightReader(len(stream)).Feed(stream)
	for _, ev := range events {
		if ev.Kind != EventMessage {
			continue
		}
		if ev.Message.Type != typeClientHello {
			return nil, fmt.Errorf("client's first handshake message has type %d, not ClientHello", ev.Message.Type)
		}
		return ParseClientHello(ev.Message.Body)
	}
	if err == nil {
		err = errors.New("no whole ClientHello in the client's bytes")
	}
	return nil, err
}
