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

// MaxPlaintext is the largest record fragment a sender may write, 2^14
// (RFC 8446 §5.1): AppendRecords splits longer payloads.
const MaxPlaintext = 16384

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
	return appendHeader(make([]byte, 0, RecordHeaderLen), r.Type, r.Version, len(r.Payload))
}

func appendHeader(dst []byte, typ uint8, version uint16, n int) []byte {
	return append(dst, typ, byte(version>>8), byte(version), byte(n>>8), byte(n))
}

// AppendRecords appends payload to dst as records of content type typ with
// version in their headers, split into fragments of at most MaxPlaintext
// bytes. An empty payload becomes one empty record (only application data
// may be empty; the caller knows which it writes). Handshake messages may
// span records and several may share one; the reader joins them again.
func AppendRecords(dst []byte, typ uint8, version uint16, payload []byte) []byte {
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), MaxPlaintext)
		dst = appendHeader(dst, typ, version, n)
		dst = append(dst, payload[:n]...)
		payload = payload[n:]
	}
	return dst
}

// AppendChangeCipherSpec appends a ChangeCipherSpec record.
func AppendChangeCipherSpec(dst []byte) []byte {
	return AppendRecords(dst, RecordChangeCipherSpec, VersionTLS12, []byte{changeCipherSpecBody})
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
		if err := checkHeader(typ, version, length); err != nil {
			return records, stream, fmt.Errorf("record %d: %w", i, err)
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
