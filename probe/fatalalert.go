package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// fatalAlert is what the after_fatal_alert check ends its connection with:
// internal_error(80) at level fatal. It is fatal in every version (RFC 5246
// §7.2.2, RFC 8446 §6.2), it says the client failed for a reason of its own
// rather than accusing the server of a protocol error (as bad_record_mac or
// decrypt_error would, in the server's logs), and it is what crypto/tls
// itself sends when it gives up on a connection for local reasons.
var fatalAlert = wire.Alert{Level: wire.AlertLevelFatal, Description: wire.AlertInternalError}

// afterFatalAlert runs the after_fatal_alert check for each mechanism the
// chains resumed in this probe: a session obtained on a connection of its
// own, that connection ended with a fatal alert instead of close_notify,
// then the session offered on a new connection as the chain offers it.
// RFC 5246 §7.2 says a session whose connection ended with a fatal alert
// must not be resumed; RFC 8446 §6 asks only that a ticket's PSK be
// discarded "if possible". A mechanism is true when the session resumed
// anyway, false when it was refused, and absent when the check could not
// apply: the chain did not resume it (a refusal would say nothing), no
// session was issued, the alert could not be sent, the offer failed, or it
// was refused while the probe shows several backends.
func (h *handshaker) afterFatalAlert(ctx context.Context, checks []Check) map[Mechanism]bool {
	var (
		mu  sync.Mutex
		wg  sync.WaitGroup
		out = map[Mechanism]bool{}
	)
	for _, c := range checks {
		if c.OffersResumed == 0 {
			continue
		}
		wg.Go(func() {
			resumed, err := h.afterAlert(ctx, c.Mechanism)
			if err != nil {
				h.log.Debug("After-fatal-alert check not judged", "step", "risks", "risk", RiskAfterFatalAlert, "mechanism", c.Mechanism, "addr", h.addr, "err", err)
				return
			}
			h.log.Debug("After-fatal-alert verdict", "step", "risks", "risk", RiskAfterFatalAlert, "mechanism", c.Mechanism, "addr", h.addr, "alert", fatalAlert, "resumed", resumed)
			mu.Lock()
			out[c.Mechanism] = resumed
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(out) == 0 {
		return nil
	}
	return out
}

// errNoSession: the full handshake gave nothing to offer.
var errNoSession = errors.New("no session issued")

// afterAlert obtains a session of mechanism m, ends its connection with
// fatalAlert and offers the session: whether the server resumed it.
func (h *handshaker) afterAlert(ctx context.Context, m Mechanism) (bool, error) {
	c, err := h.handshake(ctx, m.Version(), m != MechanismSessionID)
	if err != nil {
		return false, err
	}
	fh, err := h.endWithAlert(ctx, c)
	if err != nil {
		return false, err
	}
	sessions, err := h.alertedSessions(fh, m)
	if err != nil {
		return false, err
	}
	for i, st := range sessions {
		a, err := h.offerer(m)(ctx, st)
		if errors.Is(err, errAlert) {
			err = nil // answered with an alert: not resumed
		}
		if err != nil {
			return false, err
		}
		h.log.Debug("Alerted session offered", "step", "risks", "risk", RiskAfterFatalAlert, "mechanism", m, "addr", h.addr,
			"offer", i+1, "of", len(sessions), "resumed", a.resumed)
		if a.resumed {
			return true, nil
		}
	}
	if h.severalBackends() {
		return false, errOtherBackend
	}
	return false, nil
}

// alertedSessions returns what an alerted connection of mechanism m gave
// to offer, in order: the session ID; the TLS 1.2 ticket; the last TLS 1.3
// ticket (the one a client keeps: crypto/tls's cache and `openssl s_client
// -sess_out` keep the last), then the first. Every ticket of a connection
// carries a PSK from its resumption secret, so one that resumes is enough;
// OpenSSL's stateful TLS 1.3 tickets are each a session of their own, and
// its fatal-alert handling removes only the connection's current one, the
// last.
func (h *handshaker) alertedSessions(fh *fullHandshake, m Mechanism) ([]*stored, error) {
	if m == MechanismSessionID {
		s, err := h.issuedSessionID(fh)
		if err != nil {
			return nil, err
		}
		if s == nil {
			return nil, errNoSession
		}
		return []*stored{{obtained: h.now(), s12: s}}, nil
	}
	n := len(fh.sessions)
	switch {
	case n == 0:
		return nil, errNoSession
	case m == MechanismSessionTicket:
		return []*stored{{obtained: h.now(), cs: fh.sessions[0]}}, nil
	}
	out := []*stored{{obtained: h.now(), received: fh.received, cs: fh.sessions[n-1]}}
	if n > 1 {
		out = append(out, &stored{obtained: h.now(), received: fh.received, cs: fh.sessions[0]})
	}
	return out, nil
}

// endWithAlert ends a completed connection with fatalAlert, never
// close_notify: crypto/tls sends no other alert on request, so the record
// is written on the raw connection under the client's traffic keys from the
// key log — TLS 1.2: the key block of the master secret, sequence number 1
// after the client's Finished; TLS 1.3: client_application_traffic_secret_0,
// sequence number 0, crypto/tls having written no application data.
//
// A TLS 1.3 session arrives after the handshake, and crypto/tls takes it in
// only inside Read: a goroutine reads through crypto/tls, and the alert goes
// out once the session cache received a session, within Module.TicketWait.
// The same goroutine then reads to the server's close, which says that the
// server has processed the alert before the session is offered anywhere,
// and takes in any further ticket still in flight. tc.Close would send
// close_notify, so only the raw connection is closed.
func (h *handshaker) endWithAlert(ctx context.Context, c *clientConn) (*fullHandshake, error) {
	defer c.t.Close()
	state := c.tc.ConnectionState()
	c.tc.SetReadDeadline(h.closeDeadline(ctx))
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		io.Copy(io.Discard, io.LimitReader(c.tc, maxCapture))
	}()
	if state.Version == VersionTLS13 && c.tickets {
		select {
		case <-c.cache.stored():
		case <-closed:
			return nil, fmt.Errorf("%s sent no TLS 1.3 ticket within %s", h.addr, h.module.TicketWait)
		}
	}
	record, err := alertRecord(state.Version, state.CipherSuite, c)
	if err == nil {
		_, err = c.t.Write(record)
	}
	if err != nil {
		c.t.Close()
		<-closed
		return nil, fmt.Errorf("send fatal alert to %s: %w", h.addr, err)
	}
	<-closed
	return c.done(), nil
}

// alertRecord protects fatalAlert as the client's next record.
func alertRecord(version, suite uint16, c *clientConn) ([]byte, error) {
	secrets := wire.ParseKeyLog(c.keyLog.Bytes())
	if version == VersionTLS13 {
		secret := secrets[wire.LabelClientTrafficSecret0]
		if secret == nil {
			return nil, errors.New("crypto/tls logged no CLIENT_TRAFFIC_SECRET_0")
		}
		return wire.ClientAlert13(suite, secret, 0, fatalAlert)
	}
	master := secrets[wire.LabelClientRandom]
	if master == nil {
		return nil, errors.New("crypto/tls logged no master secret")
	}
	ch, err := wire.ReadClientHello(c.t.sent())
	if err != nil {
		return nil, fmt.Errorf("read own ClientHello: %w", err)
	}
	f, err := flight12(c.t.received())
	if err != nil {
		return nil, fmt.Errorf("read ServerHello: %w", err)
	}
	return wire.ClientAlert12(suite, master, ch.Random[:], f.ServerHello.Random[:], 1, fatalAlert)
}
