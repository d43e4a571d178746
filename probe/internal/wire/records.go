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

// maxRecordPayload is the largest record fragment accepted: 2^14 plus the
// 2048 bytes of expansion TLS 1.2 allows (RFC 5246 §6.2.3). Anything larger
// is not a TLS peer speaking, and is refused before it is buffered.
const maxRecordPayload = 16384 + 2048

// maxPlaintextLen is the largest record fragment a sender may write, 2^14
// (RFC 8446 §5.1): AppendRecords splits longer payloads.
const maxPlaintextLen = 16384

// recordHeaderLen is the size of a TLS record header: type, version, length.
const recordHeaderLen = 5

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
	return appendHeader(make([]byte, 0, recordHeaderLen), r.Type, r.Version, len(r.Payload))
}

func appendHeader(dst []byte, typ uint8, version uint16, n int) []byte {
	return append(dst, typ, byte(version>>8), byte(version), byte(n>>8), byte(n))
}

// AppendRecords appends payload to dst as records of content type typ with
// version in their headers, split into fragments of at most maxPlaintextLen
// bytes. An empty payload becomes one empty record (only application data
// may be empty; the caller knows which it writes). Handshake messages may
// span records and several may share one; the reader joins them again.
func AppendRecords(dst []byte, typ uint8, version uint16, payload []byte) []byte {
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), maxPlaintextLen)
		dst = appendHeader(dst, typ, version, n)
		dst = append(dst, payload[:n]...)
		payload = payload[n:]
	}
	return dst
}

// appendChangeCipherSpec appends a ChangeCipherSpec record.
func appendChangeCipherSpec(dst []byte) []byte {
	return AppendRecords(dst, RecordChangeCipherSpec, VersionTLS12, []byte{changeCipherSpecBody})
}

// parseRecords splits a captured stream into whole records. An incomplete
// record at the end (the capture stopped mid-record) is returned as rest and
// is not an error; a header that cannot be TLS is. On error, records holds the
// records before the bad one.
func parseRecords(stream []byte) (records []Record, rest []byte, err error) {
	for i := 0; ; i++ {
		if len(stream) < recordHeaderLen {
			return records, stream, nil
		}
		typ := stream[0]
		version := binary.BigEndian.Uint16(stream[1:3])
		length := int(binary.BigEndian.Uint16(stream[3:5]))
		if err := checkHeader(typ, version, length); err != nil {
			return records, stream, fmt.Errorf("record %d: %w", i, err)
		}
		if len(stream) < recordHeaderLen+length {
			return records, stream, nil
		}
		records = append(records, Record{
			Type:    typ,
			Version: version,
			Payload: stream[recordHeaderLen : recordHeaderLen+length : recordHeaderLen+length],
		})
		stream = stream[recordHeaderLen+length:]
	}
}
