package probe

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
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

func (s *session12) mechanism() Mechanism {
	if s.ticket != nil {
		return MechanismSessionTicket
	}
	return MechanismSessionID
}

// offer12 sends a hand-built TLS 1.2 ClientHello offering s and reads only the
// ServerHello. crypto/tls cannot make this offer: it never resumes by session
// ID, and it would finish a handshake the probe only needs the first answer
// of. The socket is then closed without an alert, because OpenSSL drops a
// session on any fatal alert, sent or received, and the probe would destroy
// what it measures.
func (h *handshaker) offer12(ctx context.Context, s *session12) (resumed bool, firstFlight time.Duration, err error) {
	hello := wire.NewClientHello12(h.serverName, []uint16{s.suite})
	hello.ExtendedMasterSecret = s.ems
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
		hello.TicketSupported, hello.SessionTicket = true, s.ticket
	}
	hello.SessionID = want
	msg, err := hello.Marshal()
	if err != nil {
		return false, 0, fmt.Errorf("build ClientHello: %w", err)
	}

	conn, err := dial(ctx, h.addr)
	if err != nil {
		return false, 0, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	defer t.Close() // a TCP close, never an alert
	// The first record says TLS 1.0, as clients send for old servers.
	if _, err := t.Write(wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS10, msg)); err != nil {
		return false, 0, fmt.Errorf("send ClientHello to %s: %w", h.addr, err)
	}
	flight := newServerFlight(t)
	sh, err := flight.serverHello()
	if err != nil {
		return false, 0, fmt.Errorf("resumption offer to %s: %w", h.addr, err)
	}
	resumed = string(sh.SessionID) == string(want)
	if resumed && s.master != nil && wire.SupportsFinish12(s.suite) {
		if err := finish12(flight, msg, hello.Random[:], s, sh); err != nil {
			h.log.Debug("Resumed handshake not finished; connection dropped instead",
				"mechanism", s.mechanism(), "step", "offer", "addr", h.addr, "err", err)
		}
	}
	return resumed, t.firstFlight(), nil
}

// serverFlight reads the server's side of a connection one event at a
// time, as the bytes arrive, and keeps the plaintext handshake messages for
// the Finished transcript.
type serverFlight struct {
	t          *tap
	r          *wire.FlightReader
	buf        []byte
	pending    []wire.Event
	err        error // of the last read, returned once pending is empty
	transcript []byte
}

func newServerFlight(t *tap) *serverFlight {
	return &serverFlight{t: t, r: wire.NewFlightReader(maxCapture), buf: make([]byte, 4096)}
}

// next returns the next event, reading from the connection when none is
// pending. A read error (io.EOF for a closed connection) or a malformed
// stream ends the flight.
func (f *serverFlight) next() (wire.Event, error) {
	for len(f.pending) == 0 {
		if f.err != nil {
			return wire.Event{}, f.err
		}
		n, err := f.t.Read(f.buf)
		if n > 0 {
			var ferr error
			f.pending, ferr = f.r.Feed(f.buf[:n])
			err = cmp.Or(ferr, err)
		}
		f.err = err
	}
	ev := f.pending[0]
	f.pending = f.pending[1:]
	if ev.Kind == wire.EventMessage {
		f.transcript = append(f.transcript, ev.Message.Marshal()...)
	}
	return ev, nil
}

// errAlert marks an offer the server answered with a fatal alert: a
// verdict on that session (it will not be resumed), not a network failure.
var errAlert = errors.New("server answered with alert")

// serverHello reads until the server's ServerHello, a fatal alert, the end
// of the connection or the capture limit.
func (f *serverFlight) serverHello() (*wire.ServerHello, error) {
	for {
		ev, err := f.next()
		switch {
		case errors.Is(err, io.EOF):
			return nil, errors.New("connection closed before a ServerHello")
		case err != nil:
			return nil, err
		case ev.ServerHello != nil:
			return ev.ServerHello, nil
		case ev.Kind == wire.EventAlert && ev.Alert.Fatal():
			return nil, fmt.Errorf("%w %s", errAlert, ev.Alert)
		}
	}
}

// finish12 completes an abbreviated TLS 1.2 handshake the server accepted:
// it reads the server's flight up to its Finished, checks it, and answers
// with ChangeCipherSpec, Finished and close_notify. Dropping the connection
// instead would do for the verdict, but OpenSSL without
// SSL_OP_IGNORE_UNEXPECTED_EOF (s_server, HAProxy at times) takes that EOF
// as fatal and removes the session, which later probes would replay.
func finish12(f *serverFlight, clientHello, clientRandom []byte, s *session12, sh *wire.ServerHello) error {
	keys, err := wire.NewKeys12(s.suite, s.master, clientRandom, sh.Random[:])
	if err != nil {
		return err
	}
	finished, err := f.finished12(keys)
	if err != nil {
		return err
	}
	transcript := append(append([]byte{}, clientHello...), f.transcript...)
	if err := keys.CheckServerFinished(transcript, finished); err != nil {
		return err
	}
	transcript = append(transcript, finished.Marshal()...)
	_, err = f.t.Write(keys.ClientFinish(transcript))
	return err
}

// finished12 reads the rest of the server's flight of a resumed handshake:
// plaintext handshake messages (perhaps a NewSessionTicket), then, after
// ChangeCipherSpec, its protected Finished.
func (f *serverFlight) finished12(keys *wire.Keys12) (wire.HandshakeMessage, error) {
	for {
		ev, err := f.next()
		if err != nil {
			return wire.HandshakeMessage{}, fmt.Errorf("reading the server's Finished: %w", err)
		}
		switch {
		case ev.Kind == wire.EventAlert && ev.Alert.Fatal():
			return wire.HandshakeMessage{}, fmt.Errorf("server sent alert %s", ev.Alert)
		case ev.Kind == wire.EventProtected:
			return keys.ReadServerFinished(ev.Record)
		} // a warning alert (unrecognized_name) changes nothing
	}
}
