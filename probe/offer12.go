package probe

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/wire"
)

// session12 is what a TLS 1.2 resumption offer needs from the full handshake
// that produced it. It holds a secret handle (a session ID or ticket): it lives
// in Sessions or on the stack of a chain, never in a Result.
type session12 struct {
	sessionID []byte // session-ID resumption
	ticket    []byte // ticket resumption
	suite     uint16
	ems       bool
	obtained  time.Time
}

// offer12 sends a hand-built TLS 1.2 ClientHello offering s and reads only the
// ServerHello. crypto/tls cannot make this offer: it never resumes by session
// ID, and it would finish a handshake the probe only needs the first answer
// of. The socket is then closed without an alert, because OpenSSL drops a
// session on any fatal alert, sent or received, and the probe would destroy
// what it measures.
func (h *handshaker) offer12(ctx context.Context, s *session12) (resumed bool, firstFlight time.Duration, err error) {
	hello := wire.ClientHello12{
		CipherSuites:         []uint16{s.suite},
		ServerName:           sniName(h.serverName),
		ExtendedMasterSecret: s.ems,
	}
	if _, err := rand.Read(hello.Random[:]); err != nil {
		return false, 0, err
	}
	want := s.sessionID
	if s.ticket != nil {
		// RFC 5077 §3.4: a server accepting the ticket echoes the
		// client's session ID, so the client picks one to recognise.
		want = make([]byte, 32)
		if _, err := rand.Read(want); err != nil {
			return false, 0, err
		}
		hello.OfferTicket, hello.SessionTicket = true, s.ticket
	}
	hello.SessionID = want
	record, err := hello.Marshal()
	if err != nil {
		return false, 0, fmt.Errorf("build ClientHello: %w", err)
	}

	conn, err := dial(ctx, h.addr)
	if err != nil {
		return false, 0, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	defer t.Close() // a TCP close, never an alert
	if _, err := t.Write(record); err != nil {
		return false, 0, fmt.Errorf("send ClientHello to %s: %w", h.addr, err)
	}
	sh, err := readServerHello(t)
	if err != nil {
		return false, 0, fmt.Errorf("resumption offer to %s: %w", h.addr, err)
	}
	return string(sh.SessionID) == string(want), t.firstFlight(), nil
}

// readServerHello reads from c until the server's first handshake message is
// complete, the server sends an alert, or the capture limit is reached.
func readServerHello(c *tap) (*wire.ServerHello, error) {
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			f, perr := wire.ParseFlight12(c.received())
			if perr == nil && f.ServerHello != nil {
				return f.ServerHello, nil
			}
			if perr == nil && f.Alert != nil {
				return nil, fmt.Errorf("server answered with alert %s", f.Alert)
			}
		}
		if err != nil {
			if err == io.EOF {
				return nil, fmt.Errorf("connection closed before a ServerHello")
			}
			return nil, err
		}
		if len(c.received()) >= maxCapture {
			return nil, fmt.Errorf("no ServerHello in the first %d bytes", maxCapture)
		}
	}
}

// sniName returns the name to send as SNI: none for an IP address, as RFC
// 6066 forbids literal addresses there.
func sniName(name string) string {
	if net.ParseIP(name) != nil {
		return ""
	}
	return name
}
