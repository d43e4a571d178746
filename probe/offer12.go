package probe

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// session12 is what a TLS 1.2 session-ID offer needs from the full
// handshake that produced it. It holds a secret handle (the session ID): it
// lives in Sessions or on the stack of a chain, never in a Result. (Tickets
// are offered by crypto/tls, see resumeTLS.)
type session12 struct {
	sessionID []byte
	suite     uint16
	ems       bool
	master    []byte // to finish a resumed handshake instead of dropping it
}

// offer12 sends a hand-built TLS 1.2 ClientHello offering s's session ID and
// reads only the ServerHello. crypto/tls cannot make this offer: it never
// resumes by session ID. A refused offer's socket is closed without an
// alert, because OpenSSL drops a session on any fatal alert, sent or
// received, and the probe would destroy what it measures.
func (h *handshaker) offer12(ctx context.Context, s *session12) (resumed bool, firstFlight time.Duration, err error) {
	hello := wire.NewClientHello12(h.serverName, []uint16{s.suite})
	hello.ExtendedMasterSecret = s.ems
	if _, err := rand.Read(hello.Random[:]); err != nil {
		return false, 0, err
	}
	want := s.sessionID
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
				"mechanism", MechanismSessionID, "step", "offer", "addr", h.addr, "err", err)
		}
	}
	return resumed, t.firstFlight(), nil
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
