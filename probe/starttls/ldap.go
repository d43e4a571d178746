package starttls

import (
	"errors"
	"fmt"
	"io"
	"net"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// startTLSOID names the StartTLS extended operation (RFC 4511 §4.14.1).
const startTLSOID = "1.3.6.1.4.1.1466.20037"

// BER tags of the LDAP messages used here (RFC 4511 §4.2, §4.12).
const (
	tagExtendedRequest  = asn1.Tag(23) | 0x40 | 0x20 // [APPLICATION 23], constructed
	tagExtendedResponse = asn1.Tag(24) | 0x40 | 0x20 // [APPLICATION 24], constructed
	tagRequestName      = asn1.Tag(0) | 0x80         // [0], primitive
	// startTLSMessageID is the one request's ID; 0 marks an unsolicited
	// notification such as a notice of disconnection.
	startTLSMessageID = 1
)

// ldap sends the StartTLS extended request and requires an extended
// response with resultCode success. It reads exactly the one response
// message, so nothing after it is mistaken for part of the preamble.
func ldap(conn net.Conn, maxBytes int) error {
	if _, err := conn.Write(startTLSRequest()); err != nil {
		return fmt.Errorf("LDAP: sending the StartTLS request: %w", err)
	}
	msg, err := readLDAPMessage(conn, maxBytes)
	if err != nil {
		return err
	}
	res, err := parseExtendedResponse(msg)
	if err != nil {
		return fmt.Errorf("LDAP: the answer to StartTLS: %w", err)
	}
	switch {
	case res.messageID == 0:
		return fmt.Errorf("LDAP server sent a notice of disconnection instead of answering StartTLS: %s", res)
	case res.messageID != startTLSMessageID:
		return fmt.Errorf("LDAP server answered message %d, but the StartTLS request was message %d", res.messageID, startTLSMessageID)
	case res.resultCode != 0:
		return fmt.Errorf("LDAP server refused StartTLS: %s", res)
	}
	return nil
}

// startTLSRequest returns LDAPMessage{messageID 1, ExtendedRequest{requestName
// startTLSOID}}, in DER (which is valid BER).
func startTLSRequest() []byte {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Int64(startTLSMessageID)
		b.AddASN1(tagExtendedRequest, func(b *cryptobyte.Builder) {
			b.AddASN1(tagRequestName, func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(startTLSOID))
			})
		})
	})
	return b.BytesOrPanic()
}

// readLDAPMessage reads one BER-encoded LDAPMessage (a SEQUENCE) of at most
// maxBytes from conn, no byte more.
func readLDAPMessage(conn net.Conn, maxBytes int) ([]byte, error) {
	head := make([]byte, 2, 6)
	if err := readFull(conn, head); err != nil {
		return nil, err
	}
	if head[0] == 0x15 || head[0] == 0x16 {
		return nil, errors.New("LDAP server answered StartTLS with TLS records: is this an implicit-TLS port (ldaps)? (then leave starttls out)")
	}
	if asn1.Tag(head[0]) != asn1.SEQUENCE {
		return nil, fmt.Errorf("LDAP server answered StartTLS with tag %#02x, not an LDAPMessage", head[0])
	}
	n := int(head[1])
	if head[1]&0x80 != 0 {
		k := int(head[1] & 0x7f)
		if k == 0 || k > 4 {
			return nil, fmt.Errorf("LDAP server's answer has a length of %d bytes' length (indefinite or huge); LDAP allows neither", k)
		}
		lb := head[2 : 2+k]
		if err := readFull(conn, lb); err != nil {
			return nil, err
		}
		n = 0
		for _, x := range lb {
			n = n<<8 | int(x)
		}
	}
	if n > maxBytes {
		return nil, fmt.Errorf("LDAP server announced a %d-byte answer to StartTLS, more than the %d allowed", n, maxBytes)
	}
	body := make([]byte, n)
	if err := readFull(conn, body); err != nil {
		return nil, err
	}
	return body, nil
}

func readFull(conn net.Conn, b []byte) error {
	_, err := io.ReadFull(conn, b)
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("LDAP server closed the connection before answering StartTLS")
	case errors.As(err, &ne) && ne.Timeout():
		return errors.New("LDAP server did not answer StartTLS before the deadline")
	}
	return fmt.Errorf("LDAP: reading the answer to StartTLS: %w", err)
}

// extendedResponse is the part of an LDAP ExtendedResponse a preamble needs.
type extendedResponse struct {
	messageID  int64
	resultCode int64
	diagnostic string
}

func (r extendedResponse) String() string {
	s := fmt.Sprintf("resultCode %d", r.resultCode)
	if name, ok := resultCodes[r.resultCode]; ok {
		s += " (" + name + ")"
	}
	if r.diagnostic != "" {
		s += ": " + excerpt(r.diagnostic)
	}
	return s
}

// resultCodes names the result codes a StartTLS request meets (RFC 4511
// Appendix A).
var resultCodes = map[int64]string{
	0: "success", 1: "operationsError", 2: "protocolError", 51: "busy",
	52: "unavailable", 53: "unwillingToPerform", 80: "other",
}

// parseExtendedResponse parses the contents of an LDAPMessage SEQUENCE that
// should carry an ExtendedResponse. Lengths are BER's: servers (Active
// Directory among them) send long-form lengths DER would call non-minimal.
func parseExtendedResponse(msg []byte) (extendedResponse, error) {
	var r extendedResponse
	s := cryptobyte.String(msg)
	var id, op, code, dn, diag cryptobyte.String
	var tag asn1.Tag
	if !readBER(&s, &tag, &id) || tag != asn1.INTEGER || !berInt(id, &r.messageID) {
		return r, errors.New("malformed messageID")
	}
	if !readBER(&s, &tag, &op) {
		return r, errors.New("malformed protocolOp")
	}
	if tag != tagExtendedResponse {
		return r, fmt.Errorf("protocolOp has tag %#02x, not an ExtendedResponse", uint8(tag))
	}
	if !readBER(&op, &tag, &code) || tag != asn1.ENUM || !berInt(code, &r.resultCode) {
		return r, errors.New("malformed resultCode")
	}
	if !readBER(&op, &tag, &dn) || tag != asn1.OCTET_STRING {
		return r, errors.New("malformed matchedDN")
	}
	if !readBER(&op, &tag, &diag) || tag != asn1.OCTET_STRING {
		return r, errors.New("malformed diagnosticMessage")
	}
	r.diagnostic = string(diag)
	// referral, responseName, responseValue and controls may follow; a
	// StartTLS client needs none of them.
	return r, nil
}

// readBER reads one BER element with a low tag number and a definite length
// of up to four length bytes.
func readBER(s *cryptobyte.String, tag *asn1.Tag, body *cryptobyte.String) bool {
	var t, l uint8
	if !s.ReadUint8(&t) || !s.ReadUint8(&l) || t&0x1f == 0x1f {
		return false
	}
	n := int(l)
	if l&0x80 != 0 {
		k := int(l & 0x7f)
		if k == 0 || k > 4 {
			return false
		}
		n = 0
		for range k {
			var x uint8
			if !s.ReadUint8(&x) {
				return false
			}
			n = n<<8 | int(x)
		}
	}
	var b []byte
	if !s.ReadBytes(&b, n) {
		return false
	}
	*tag, *body = asn1.Tag(t), cryptobyte.String(b)
	return true
}

// berInt decodes a two's-complement integer of 1 to 8 bytes.
func berInt(b cryptobyte.String, out *int64) bool {
	if len(b) == 0 || len(b) > 8 {
		return false
	}
	v := int64(int8(b[0]))
	for _, x := range b[1:] {
		v = v<<8 | int64(x)
	}
	*out = v
	return true
}
