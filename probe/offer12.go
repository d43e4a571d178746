package probe

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
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
	master    []byte // to finish a resumed handshake instead of dropping it
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

	conn, err := h.dial(ctx)
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
	resumed = string(sh.SessionID) == string(want)
	if resumed && s.master != nil && wire.SupportsFinish12(s.suite) {
		if err := finish12(t, handshakeBytes(record), hello.Random[:], s, sh); err != nil {
			h.logf("finishing the resumed handshake with %s: %v; connection dropped instead", h.addr, err)
		}
	}
	return resumed, t.firstFlight(), nil
}

// handshakeBytes returns the handshake messages carried by records, as the
// Finished transcript needs them: a long ClientHello spans several records.
func handshakeBytes(records []byte) []byte {
	recs, _, _ := wire.ParseRecords(records)
	var out []byte
	for _, r := range recs {
		out = append(out, r.Payload...)
	}
	return out
}

// finish12 completes an abbreviated TLS 1.2 handshake the server accepted:
// it reads the server's flight up to its Finished, checks it, and answers
// with ChangeCipherSpec, Finished and close_notify. Dropping the connection
// instead would do for the verdict, but OpenSSL without
// SSL_OP_IGNORE_UNEXPECTED_EOF (s_server, HAProxy at times) takes that EOF
// as fatal and removes the session, which later probes would replay.
func finish12(t *tap, clientHello, clientRandom []byte, s *session12, sh *wire.ServerHello) error {
	keys, err := wire.NewKeys12(s.suite, s.master, clientRandom, sh.Random[:])
	if err != nil {
		return err
	}
	transcript, finished, err := readFinished12(t, keys)
	if err != nil {
		return err
	}
	transcript = append(append([]byte{}, clientHello...), transcript...)
	if want := keys.VerifyData("server finished", transcript); !hmac.Equal(finished.Body, want) {
		return fmt.Errorf("server Finished does not verify")
	}
	transcript = append(transcript, wire.MarshalHandshake(*finished)...)
	mine := wire.HandshakeMessage{Type: wire.TypeFinished, Body: keys.VerifyData("client finished", transcript)}
	out := []byte{wire.RecordChangeCipherSpec, 3, 3, 0, 1, 1}
	out = append(out, keys.Client.Seal(wire.RecordHandshake, wire.MarshalHandshake(mine))...)
	out = append(out, keys.Client.Seal(wire.RecordAlert, []byte{1, 0})...) // close_notify
	_, err = t.Write(out)
	return err
}

// readFinished12 reads the server's flight of a resumed handshake: the
// plaintext handshake messages (ServerHello, perhaps NewSessionTicket) as
// they go into the transcript, then, after ChangeCipherSpec, its Finished.
func readFinished12(t *tap, keys *wire.Keys12) (transcript []byte, finished *wire.HandshakeMessage, err error) {
	buf := make([]byte, 4096)
	for len(t.received()) < maxCapture {
		recs, _, err := wire.ParseRecords(t.received())
		if err != nil {
			return nil, nil, err
		}
		var ra wire.HandshakeReassembler
		transcript = transcript[:0]
		afterCCS := false
		for _, r := range recs {
			switch {
			case r.Type == wire.RecordChangeCipherSpec:
				afterCCS = true
			case r.Type == wire.RecordAlert && !afterCCS:
				if a, err := wire.ParseAlert(r.Payload); err != nil || a.Fatal() {
					return nil, nil, fmt.Errorf("server sent alert %v", a)
				} // a warning (unrecognized_name) changes nothing
			case r.Type == wire.RecordHandshake && !afterCCS:
				msgs, err := ra.Add(r.Payload)
				if err != nil {
					return nil, nil, err
				}
				for _, m := range msgs {
					transcript = append(transcript, wire.MarshalHandshake(m)...)
				}
			case r.Type == wire.RecordHandshake && afterCCS:
				plain, err := keys.Server.Open(r)
				if err != nil {
					return nil, nil, err
				}
				if len(plain) < 4 || plain[0] != wire.TypeFinished {
					return nil, nil, fmt.Errorf("expected the server's Finished after ChangeCipherSpec")
				}
				return transcript, &wire.HandshakeMessage{Type: plain[0], Body: plain[4:]}, nil
			}
		}
		if _, err := t.Read(buf); err != nil {
			return nil, nil, err
		}
	}
	return nil, nil, fmt.Errorf("no Finished in the first %d bytes", maxCapture)
}

// errAlert marks an offer the server answered with a fatal alert: a
// verdict on that session (it will not be resumed), not a network failure.
var errAlert = errors.New("server answered with alert")

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
			if perr == nil && f.Alert != nil && f.Alert.Fatal() {
				return nil, fmt.Errorf("%w %s", errAlert, f.Alert)
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
