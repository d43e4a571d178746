package probe

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// earlyData runs the early_data check: a full TLS 1.3 handshake for a
// ticket nothing else has spent (OpenSSL makes every ticket single-use
// once 0-RTT is on), an offer of it with 0-RTT data, and — when the
// server accepted — the identical first flight again: the same
// ClientHello, key share, binder and early data on a new connection.
// accepted is false without an offer when no ticket allows early data.
// replay is nil unless the first attempt was accepted. An offer not
// resumed while the probe shows several backends leaves its verdict nil:
// it may have reached a backend that never issued the ticket.
func (h *handshaker) earlyData(ctx context.Context) (accepted, replay *bool) {
	fail := func(step string, err error) (*bool, *bool) {
		h.log.Debug("Early-data check failed", "step", "risks", "risk", RiskEarlyData, "addr", h.addr, "at", step, "err", err)
		return nil, nil
	}
	fh, err := h.full(ctx, VersionTLS13, true)
	if err != nil {
		return fail("full_handshake", err)
	}
	offers, err := pskOffers(fh)
	if err != nil {
		return fail("tickets", err)
	}
	var p *pskOffer
	for _, o := range offers {
		if o.maxEarlyData > 0 {
			p = o
			break
		}
	}
	payload := []byte(h.module.EarlyDataPayload)
	if p == nil {
		h.log.Debug("No ticket allows early data", "step", "risks", "risk", RiskEarlyData, "addr", h.addr, "tickets", len(offers))
		return ptrBool(false), nil
	}
	if uint32(len(payload)) > p.maxEarlyData {
		return fail("payload", fmt.Errorf("early_data_payload of %d bytes exceeds the ticket's max_early_data %d", len(payload), p.maxEarlyData))
	}
	flight, attempt, err := p.earlyFlight(h.serverName, payload)
	if err != nil {
		return fail("build", err)
	}
	ok, err := h.sendEarly(ctx, flight, attempt)
	if errors.Is(err, errOtherBackend) {
		h.log.Debug("Early-data offer not resumed behind several backends: another one may have answered; not judged",
			"step", "risks", "risk", RiskEarlyData, "addr", h.addr)
		return nil, nil
	}
	if err != nil {
		return fail("offer", err)
	}
	h.log.Debug("Early data offered", "step", "risks", "risk", RiskEarlyData, "addr", h.addr, "accepted", ok)
	if !ok {
		return &ok, nil
	}
	again, err := h.sendEarly(ctx, flight, attempt)
	if errors.Is(err, errOtherBackend) {
		h.log.Debug("Early-data replay not resumed behind several backends: another one may have answered; not judged",
			"step", "risks", "risk", RiskEarlyData, "addr", h.addr)
		return &ok, nil
	}
	if err != nil {
		h.log.Debug("Early-data replay failed", "step", "risks", "risk", RiskEarlyData, "addr", h.addr, "err", err)
		return &ok, nil
	}
	h.log.Debug("Early data replayed", "step", "risks", "risk", RiskEarlyData, "addr", h.addr, "accepted", again)
	return &ok, &again
}

// errOtherBackend: a 0-RTT flight was not resumed while the probe shows
// several backends, so the one that answered may not know the ticket.
var errOtherBackend = errors.New("not resumed, perhaps by another backend")

func ptrBool(b bool) *bool { return &b }

// earlyAttempt is what reading the server's answer to a 0-RTT flight
// needs: the ClientHello sent, the private key share, the PSK schedule.
type earlyAttempt struct {
	clientHello []byte
	share       *wire.KeyShareKey
	schedule    *wire.Schedule13
	suite       uint16
}

// earlyFlight builds the first flight of a 0-RTT attempt: a ClientHello
// offering p with psk_dhe_ke and early_data, then the payload in one
// record under client_early_traffic_secret (none for an empty payload).
func (p *pskOffer) earlyFlight(serverName string, payload []byte) ([]byte, *earlyAttempt, error) {
	_, msg, share, ks, err := p.clientHello(serverName, []uint8{wire.PSKModeDHE}, true)
	if err != nil {
		return nil, nil, err
	}
	flight := wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS10, msg)
	if len(payload) > 0 {
		secret, err := ks.ClientEarlyTrafficSecret(msg)
		if err != nil {
			return nil, nil, err
		}
		seal, err := wire.NewSealer13(p.secret.suite, secret)
		if err != nil {
			return nil, nil, err
		}
		if flight, err = seal.Seal(flight, wire.RecordApplicationData, payload); err != nil {
			return nil, nil, err
		}
	}
	return flight, &earlyAttempt{clientHello: msg, share: share, schedule: ks, suite: p.secret.suite}, nil
}

// sendEarly sends a 0-RTT first flight on a new connection and reads the
// server's answer up to its EncryptedExtensions: accepted when they carry
// early_data. A server that did not resume (no pre_shared_key), or asked
// for another key share (a HelloRetryRequest rejects early data, RFC 8446
// §4.1.2), did not accept; a server that did not resume while the probe
// shows several backends answers errOtherBackend. The connection is then
// closed, without alert.
func (h *handshaker) sendEarly(ctx context.Context, flight []byte, a *earlyAttempt) (bool, error) {
	conn, err := h.dial(ctx)
	if err != nil {
		return false, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	t := newTap(conn)
	defer t.Close()
	if _, err := t.Write(flight); err != nil {
		return false, fmt.Errorf("send 0-RTT flight to %s: %w", h.addr, err)
	}
	f := newServerFlight(t)
	var serverHello []byte
	var hs *wire.HandshakeReader13
	for {
		ev, err := f.next()
		if errors.Is(err, io.EOF) {
			return false, fmt.Errorf("%s closed the connection before its EncryptedExtensions", h.addr)
		}
		if err != nil {
			return false, err
		}
		switch {
		case ev.Kind == wire.EventAlert && ev.Alert.Fatal():
			return false, fmt.Errorf("%w %s", errAlert, ev.Alert)
		case ev.ServerHello != nil:
			sh := ev.ServerHello
			if !sh.HelloRetryRequest && !sh.PSKSelected && h.severalBackends() {
				return false, errOtherBackend
			}
			if sh.HelloRetryRequest || !sh.PSKSelected {
				return false, nil
			}
			if serverHello != nil {
				return false, errors.New("second ServerHello")
			}
			serverHello = ev.Message.Marshal()
			if hs, err = a.handshakeReader(sh, serverHello); err != nil {
				return false, err
			}
		case ev.Kind == wire.EventProtected && hs != nil:
			msgs, err := hs.Open(ev.Record)
			if err != nil {
				return false, fmt.Errorf("server handshake record from %s: %w", h.addr, err)
			}
			for _, m := range msgs {
				if !wire.IsEncryptedExtensions(m) {
					return false, fmt.Errorf("%s sent handshake message type %d before EncryptedExtensions", h.addr, m.Type)
				}
				ee, err := wire.ParseEncryptedExtensions(m.Body)
				if err != nil {
					return false, err
				}
				return ee.EarlyData, nil
			}
		}
	}
}

// handshakeReader derives the server's handshake traffic keys from our
// key share and the server's.
func (a *earlyAttempt) handshakeReader(sh *wire.ServerHello, serverHello []byte) (*wire.HandshakeReader13, error) {
	if sh.KeyShareGroup != a.share.Group {
		return nil, fmt.Errorf("server resumed with key share group %d, offered %d", sh.KeyShareGroup, a.share.Group)
	}
	shared, err := a.share.SharedSecret(sh.KeyShareData)
	if err != nil {
		return nil, err
	}
	secret, err := a.schedule.ServerHandshakeTrafficSecret(shared, a.clientHello, serverHello)
	if err != nil {
		return nil, err
	}
	return wire.NewHandshakeReader13(sh.CipherSuite, secret)
}
