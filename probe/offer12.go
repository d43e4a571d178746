package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// session12 is what a hand-built TLS 1.2 offer needs from the full
// handshake that produced it: a session ID (the session_id check) or a
// ticket (the session_ticket check's first offer, which is also
// Ticketbleed's, see firstTicketOffer12; its other offers go through
// crypto/tls, see resumeTLS). It holds a secret handle: it lives in
// Sessions, the risk sink or on the stack of a chain, never in a Result.
type session12 struct {
	sessionID []byte
	ticket    []byte
	suite     uint16
	ems       bool
	master    []byte // to finish a resumed handshake instead of dropping it
}

// offer12 sends a hand-built TLS 1.2 ClientHello offering s and reads only
// the ServerHello. crypto/tls cannot make a session-ID offer: it never
// resumes by session ID. A refused offer's socket is closed without an
// alert, because OpenSSL drops a session on any fatal alert, sent or
// received, and the probe would destroy what it measures.
func (h *handshaker) offer12(ctx context.Context, s *session12) (resumed bool, firstFlight time.Duration, err error) {
	o, err := h.offer12Echo(ctx, s)
	return o.resumed, o.firstFlight, err
}

func (s *session12) mechanism() Mechanism {
	if s.ticket != nil {
		return MechanismSessionTicket
	}
	return MechanismSessionID
}

// offer12Outcome is what the ServerHello said of a TLS 1.2 offer.
type offer12Outcome struct {
	resumed     bool
	firstFlight time.Duration
	// bled: a ticket offer was answered with a session ID longer than
	// ours that starts with ours, Ticketbleed's signature (CVE-2016-9244):
	// the rest is the server's memory. The server did resume.
	bled bool
	// tickets are the NewSessionTickets of a resumed ticket offer's
	// flight: a renewal of the session (see sawRenewal12).
	tickets []ticketSeen
	// finished: the resumed flight was read to the server's Finished,
	// which the NewSessionTicket precedes, so tickets tells whether the
	// server renewed the session. A partial flight tells nothing.
	finished bool
}

// ticketOfferIDLen is the session ID length of a ticket offer. Any 1–32
// bytes do (RFC 5077 §3.4); fewer than 32 let an echo that is longer than
// ours show, as F5's Ticketbleed did, memory the server should not send.
const ticketOfferIDLen = 16

func (h *handshaker) offer12Echo(ctx context.Context, s *session12) (offer12Outcome, error) {
	return h.offer12As(ctx, s, h.serverName)
}

// offer12As is offer12Echo with serverName as SNI, which the cross-name
// check sets to a name other than the one the session was obtained for.
func (h *handshaker) offer12As(ctx context.Context, s *session12, serverName string) (offer12Outcome, error) {
	var o offer12Outcome
	hello := wire.NewClientHello12(serverName, []uint16{s.suite})
	hello.ExtendedMasterSecret = s.ems
	if _, err := rand.Read(hello.Random[:]); err != nil {
		return o, err
	}
	want := s.sessionID
	if s.ticket != nil {
		// RFC 5077 §3.4: a server accepting the ticket echoes the
		// client's session ID, so the client picks one to recognise.
		want = make([]byte, ticketOfferIDLen)
		if _, err := rand.Read(want); err != nil {
			return o, err
		}
		hello.TicketSupported, hello.SessionTicket = true, s.ticket
	}
	hello.SessionID = want
	msg, err := hello.Marshal()
	if err != nil {
		return o, fmt.Errorf("build ClientHello: %w", err)
	}

	conn, err := h.dial(ctx)
	if err != nil {
		return o, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	defer t.Close() // a TCP close, never an alert
	// The first record says TLS 1.0, as clients send for old servers.
	if _, err := t.Write(wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS10, msg)); err != nil {
		return o, fmt.Errorf("send ClientHello to %s: %w", h.addr, err)
	}
	flight := newServerFlight(t)
	sh, err := flight.serverHello()
	if err != nil {
		return o, fmt.Errorf("resumption offer to %s: %w", h.addr, err)
	}
	o.bled = s.ticket != nil && len(sh.SessionID) > len(want) && bytes.HasPrefix(sh.SessionID, want)
	o.resumed = string(sh.SessionID) == string(want) || o.bled
	if o.resumed && !o.bled && s.master != nil && wire.SupportsFinish12(s.suite) {
		err := finish12(flight, msg, hello.Random[:], s, sh)
		if err != nil {
			h.log.Debug("Resumed handshake not finished; connection dropped instead",
				"mechanism", s.mechanism(), "step", "offer", "addr", h.addr, "err", err)
		}
		o.finished = err == nil
	}
	if o.resumed && s.ticket != nil {
		// A TLS 1.2 server renews a ticket inside the resumed flight,
		// before its ChangeCipherSpec: finish12 has read that far.
		f, _ := wire.ParseFlight12(t.received())
		o.tickets = tickets12(f)
	}
	o.firstFlight = t.firstFlight()
	return o, nil
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
