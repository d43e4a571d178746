package wire

import (
	"encoding/binary"
	"fmt"
)

// TLS record content types (RFC 8446 §5.1).
const (
	RecordChangeCipherSpec uint8 = 20
	RecordAlert            uint8 = 21
	RecordHandshake        uint8 = 22
	RecordApplicationData  uint8 = 23
)

// MaxRecordPayload is the largest record fragment accepted: 2^14 plus the
// 2048 bytes of expansion TLS 1.2 allows (RFC 5246 §6.2.3). Anything larger
// is not a TLS peer speaking, and is refused before it is buffered.
const MaxRecordPayload = 16384 + 2048

// RecordHeaderLen is the size of a TLS record header: type, version, length.
const RecordHeaderLen = 5

// Record is one TLS record as it appeared on the wire.
type Record struct {
	Type    uint8
	Version uint16
	// Payload aliases the stream the record was parsed from.
	Payload []byte
}

// Header returns the record's 5-byte header, which TLS 1.3 uses as the
// additional data of its AEAD.
func (r Record) Header() []byte {
	h := make([]byte, RecordHeaderLen)
	h[0] = r.Type
	binary.BigEndian.PutUint16(h[1:], r.Version)
	binary.BigEndian.PutUint16(h[3:], uint16(len(r.Payload)))
	return h
}

// ParseRecords splits a captured stream into whole records. An incomplete
// record at the end (the capture stopped mid-record) is returned as rest and
// is not an error; a header that cannot be TLS is. On error, records holds the
// records before the bad one.
func ParseRecords(stream []byte) (records []Record, rest []byte, err error) {
	for i := 0; ; i++ {
		if len(stream) < RecordHeaderLen {
			return records, stream, nil
		}
		typ := stream[0]
		version := binary.BigEndian.Uint16(stream[1:3])
		length := int(binary.BigEndian.Uint16(stream[3:5]))
		switch typ {
		case RecordChangeCipherSpec, RecordAlert, RecordHandshake, RecordApplicationData:
		default:
			return records, stream, fmt.Errorf("record %d: unknown content type %d (not TLS?)", i, typ)
		}
		if version>>8 != 3 {
			return records, stream, fmt.Errorf("record %d: version %#04x is not TLS", i, version)
		}
		if length > MaxRecordPayload {
			return records, stream, fmt.Errorf("record %d: %d-byte payload exceeds %d", i, length, MaxRecordPayload)
		}
		if len(stream) < RecordHeaderLen+length {
			return records, stream, nil
		}
		records = append(records, Record{
			Type:    typ,
			Version: version,
			Payload: stream[RecordHeaderLen : RecordHeaderLen+length : RecordHeaderLen+length],
		})
		stream = stream[RecordHeaderLen+length:]
	}
}
