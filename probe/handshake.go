package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// errVersionRefused marks a server that answered, as a TLS server, that it
// will not speak the version offered: a fact about the target, not a failure
// of the probe.
var errVersionRefused = errors.New("version refused")

// fullHandshake is a completed crypto/tls handshake at one version, with what
// the tap saw of the server's side.
type fullHandshake struct {
	state    tls.ConnectionState
	tap      *tap
	keyLog   []byte
	sessions []*tls.ClientSessionState // what crypto/tls would resume with
	received time.Time                 // when, on the wall clock
}

// masterSecret returns the TLS 1.2 master secret crypto/tls logged.
func (fh *fullHandshake) masterSecret() []byte {
	return wire.ParseKeyLog(fh.keyLog)[wire.LabelClientRandom]
}

// handshaker runs the handshakes of one probe against one address.
type handshaker struct {
	module     *Module
	addr       string // ip:port, resolved once per probe
	serverName string
	log        *slog.Logger
	now        func() time.Time
	risks      *riskSink // what the risk checks need from the chains
	// fleet is what the probe saw of the servers behind its address,
	// set before the follow-ups and risk checks run.
	fleet *fleet
	// oneServer: earlier probes met one server (Sessions.oneServer), so
	// the session_ticket check's first offer may be hand-built (see
	// firstTicketOffer12) and the first replay of each chain made beside
	// its first offer (see startReplay).
	oneServer bool
	// sessions is the store of earlier sessions (nil: none), key the
	// target's entry in it.
	sessions *Sessions
	key      string
	// pskKE delivers the server's answer to the psk_without_dhe offer
	// when it was made beside the chains or their follow-ups (see
	// startPSKWithoutDHE); nil when it runs with the other risk checks.
	pskKE *pskKEOffer
	// ending counts connections still being ended in the background;
	// the probe waits for them before it returns.
	ending sync.WaitGroup
	// linking counts resumption_chain links being settled (chain.go).
	linking sync.WaitGroup
}

// full runs one complete handshake at version. With tickets, the client
// advertises session_ticket and psk_key_exchange_modes (crypto/tls sends both
// only when it has a session cache). The connection is then ended by
// h.end, which also collects the server's TLS 1.3 NewSessionTickets, and
// is closed before full returns.
func (h *handshaker) full(ctx context.Context, version uint16, tickets bool) (*fullHandshake, error) {
	c, err := h.handshake(ctx, version, tickets)
	if err != nil {
		return nil, err
	}
	defer c.t.Close()
	h.end(ctx, c.tc)
	return c.done(), nil
}

// clientConn is a crypto/tls client connection whose handshake completed,
// on a tap, with its key log and the sessions crypto/tls stored so far.
type clientConn struct {
	tc     *tls.Conn
	t      *tap
	keyLog *bytes.Buffer
	cache  *captureCache
	// tickets: the client asked for tickets (the cache is crypto/tls's).
	tickets bool
}

// handshake dials and completes one handshake at version, as full
// describes, and leaves the connection open for the caller to end. A failed
// handshake's connection is closed, without alert.
func (h *handshaker) handshake(ctx context.Context, version uint16, tickets bool) (*clientConn, error) {
	conn, err := h.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", h.addr, err)
	}
	c := &clientConn{t: newTap(conn), keyLog: &bytes.Buffer{}, cache: &captureCache{}, tickets: tickets}
	cfg := h.module.tlsConfig(h.serverName, version)
	cfg.KeyLogWriter = c.keyLog
	if tickets {
		cfg.ClientSessionCache = c.cache
	} else {
		cfg.SessionTicketsDisabled = true
	}
	c.tc = tls.Client(c.t, cfg)
	if err := c.tc.HandshakeContext(ctx); err != nil {
		c.t.Close()
		return nil, h.classify(version, c.t.received(), err)
	}
	return c, nil
}

// done returns what the connection showed, once it has been ended.
func (c *clientConn) done() *fullHandshake {
	return &fullHandshake{
		state:    c.tc.ConnectionState(),
		tap:      c.t,
		keyLog:   c.keyLog.Bytes(),
		sessions: c.cache.all(),
		received: time.Now(),
	}
}

// end finishes a completed connection on an event rather than a clock: it
// sends close_notify at once and reads until the server's own close, at
// most Module.TicketWait (and never past the probe's deadline), then closes
// the socket.
//
// Reading to the server's close is what collects TLS 1.3 tickets: a server
// sends its NewSessionTickets right after the handshake and so before it
// answers the close_notify, and crypto/tls processes them only inside Read.
// The close_notify itself matters because OpenSSL without
// SSL_OP_IGNORE_UNEXPECTED_EOF (s_server, many applications) treats a bare
// TCP close as fatal and drops the session just issued. Waiting for the
// server's close matters because a server may store the session only after
// its last flight went out (Apache's shmcb cache): an offer sent at once
// could reach another worker before the session is there. TicketWait only
// bounds the wait for servers that never answer a close_notify.
func (h *handshaker) end(ctx context.Context, tc *tls.Conn) {
	defer tc.Close()
	if tc.CloseWrite() != nil {
		return
	}
	tc.SetReadDeadline(h.closeDeadline(ctx))
	// Ends at the server's close_notify (io.EOF), its TCP close, an
	// error, the deadline or maxCapture bytes; the tap has them all.
	io.Copy(io.Discard, io.LimitReader(tc, maxCapture))
}

// endInBackground ends tc like end, without holding up the caller: for a
// connection whose verdict is already read, so that waiting for the server's
// close takes no round trip on the probe's critical path. The server sees
// exactly what end would show it. Run waits for every such end before it
// returns.
func (h *handshaker) endInBackground(ctx context.Context, tc *tls.Conn) {
	h.ending.Go(func() { h.end(ctx, tc) })
}

// classify turns a failed handshake into either errVersionRefused, when the
// server's own bytes say it does not do this version, or an error naming
// what went wrong.
func (h *handshaker) classify(version uint16, rx []byte, err error) error {
	events, _ := wire.NewFlightReader(len(rx)).Feed(rx)
	if len(events) > 0 {
		switch first := events[0]; {
		case first.Kind == wire.EventAlert && refusesVersion(version, first.Alert):
			return fmt.Errorf("%w: %s answered %s with alert %s", errVersionRefused, h.addr, VersionName(version), first.Alert)
		case first.Kind == wire.EventAlert:
			return fmt.Errorf("%s handshake with %s: server answered with alert %s", VersionName(version), h.addr, first.Alert)
		case first.ServerHello != nil && !first.ServerHello.HelloRetryRequest && first.ServerHello.Version() != version:
			return fmt.Errorf("%w: %s chose %s when offered only %s", errVersionRefused, h.addr, VersionName(first.ServerHello.Version()), VersionName(version))
		}
	}
	if hinted := explainCertificate(err, h.serverName); hinted != err {
		// The same verdict at every version: no version in the message, so
		// that the probe's failure reason says it once.
		return fmt.Errorf("handshake with %s: %w", h.addr, hinted)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s handshake with %s timed out: %w", VersionName(version), h.addr, err)
	}
	return fmt.Errorf("%s handshake with %s: %w", VersionName(version), h.addr, err)
}

// refusesVersion tells a server declining the protocol version from one
// declining something else (a suite, a name, a client): protocol_version
// always; handshake_failure and insufficient_security only in answer to a
// TLS 1.3 offer, which leaves no suite or group a TLS 1.3 server could lack
// (it would ask for another group with a HelloRetryRequest), so they come
// from servers without TLS 1.3. For TLS 1.2 they mean no common suite: a
// failed check, not an absent version.
func refusesVersion(version uint16, a wire.Alert) bool {
	if !a.Fatal() {
		return false
	}
	switch a.Description {
	case wire.AlertProtocolVersion:
		return true
	case wire.AlertHandshakeFailure, wire.AlertInsufficientSecurity:
		return version == VersionTLS13
	}
	return false
}

// captureCache is a tls.ClientSessionCache that records every session the
// server gives during one full handshake and, when preloaded, offers one
// chosen session on a resumption. crypto/tls calls Put once per ticket.
type captureCache struct {
	mu    sync.Mutex
	got   []*tls.ClientSessionState
	offer *tls.ClientSessionState
	// first, when made by stored, is closed on the first Put.
	first chan struct{}
}

func (c *captureCache) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.offer, c.offer != nil
}

func (c *captureCache) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return // crypto/tls deletes a session it could not resume; ours is kept by the caller
	}
	c.mu.Lock()
	c.got = append(c.got, cs)
	if c.first != nil && len(c.got) == 1 {
		close(c.first)
	}
	c.mu.Unlock()
}

// stored returns a channel closed once the cache holds a session: for a
// caller waiting on crypto/tls to process a TLS 1.3 NewSessionTicket, which
// it does inside a Read on another goroutine.
func (c *captureCache) stored() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.first == nil {
		c.first = make(chan struct{})
		if len(c.got) > 0 {
			close(c.first)
		}
	}
	return c.first
}

func (c *captureCache) all() []*tls.ClientSessionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*tls.ClientSessionState(nil), c.got...)
}
