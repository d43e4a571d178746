package starttls

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
)

// sslRequestCode is the SSLRequest "protocol version", 1234.5679.
const sslRequestCode = 80877103

// postgres sends PostgreSQL's SSLRequest (length 8, code 80877103) and reads
// the one-byte answer: 'S' to go on with TLS, 'N' for no TLS. It reads
// exactly that byte, so whatever follows it (CVE-2021-23222: a man in the
// middle answering 'S' and then plaintext) reaches the TLS handshake and
// fails it.
func postgres(conn net.Conn) error {
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:], 8)
	binary.BigEndian.PutUint32(req[4:], sslRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		return fmt.Errorf("PostgreSQL: sending SSLRequest: %w", err)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		var ne net.Error
		switch {
		case errors.Is(err, io.EOF):
			return errors.New("PostgreSQL server closed the connection before answering the SSLRequest")
		case errors.As(err, &ne) && ne.Timeout():
			return errors.New("PostgreSQL server did not answer the SSLRequest before the deadline")
		}
		return fmt.Errorf("PostgreSQL: reading the answer to SSLRequest: %w", err)
	}
	switch b[0] {
	case 'S':
		return nil
	case 'N':
		return errors.New("PostgreSQL server does not support SSL")
	case 'E':
		// Servers before 7.0, or ones refusing the client outright.
		return errors.New("PostgreSQL server answered the SSLRequest with an error message")
	case 0x15, 0x16:
		return errors.New("PostgreSQL server answered the SSLRequest with TLS records: is this an implicit-TLS port? (then leave starttls out)")
	}
	return fmt.Errorf("PostgreSQL server answered the SSLRequest with byte %#02x, want 'S' or 'N'", b[0])
}
