package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/internal/wire"
)

// readClientHello reads from c until the bytes read hold a ClientHello
// (nil if none came in 16 reads), and returns them with it.
func readClientHello(c net.Conn) (head []byte, ch *wire.ClientHello) {
	buf := make([]byte, 4096)
	for range 16 {
		n, err := c.Read(buf)
		head = append(head, buf[:n]...)
		if ch, _ = wire.ReadClientHello(head); ch != nil || err != nil {
			break
		}
	}
	return head, ch
}

// replayConn is a net.Conn whose first reads return bytes already read
// from it.
type replayConn struct {
	net.Conn
	head []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(p, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// startTicketbleedServer runs a server that behaves like the F5 stacks of
// CVE-2016-9244: full handshakes are crypto/tls's (so it issues real TLS
// 1.2 tickets), and it answers every TLS 1.2 ticket offer with a hand-built
// ServerHello resuming it, whose session ID is the client's followed by
// its "memory" up to 32 bytes, then ChangeCipherSpec, and closes. An offer
// with a 32-byte ID (crypto/tls's) has no room for memory: it is always
// resumed, with an exact echo. For shorter IDs, n counts those offers from
// 1: bleed, when not nil, decides per offer whether to bleed (else it
// echoes exactly); refuse, when not nil, whether to answer with a session
// ID of its own instead, a refusal (as another backend would). idLens
// lists the session ID length of every ticket offer, in order.
func startTicketbleedServer(t *testing.T, pki *testservers.PKI, bleed, refuse func(n int64) bool) (addr string, idLens func() []int) {
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	// Its tickets, TLS 1.2 and 1.3, name their key, as F5's and
	// OpenSSL's do: the probe tells one server by one key name across
	// both (see Sessions.oneServer). Its TLS 1.3 side is crypto/tls's.
	keyName := bytes.Repeat([]byte{0x4b}, 16)
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ticket, err := cfg.EncryptTicket(cs, ss)
		return append(slices.Clone(keyName), ticket...), err
	}
	var short atomic.Int64
	var mu sync.Mutex
	var lens []int
	idLens = func() []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lens)
	}
	addr = testservers.ServeTCP(t, func(c net.Conn) {
		head, ch := readClientHello(c)
		if ch == nil {
			return
		}
		if len(ch.SessionTicket) == 0 {
			tc := tls.Server(&replayConn{Conn: c, head: head}, cfg)
			defer tc.Close()
			drain(tc)
			return
		}
		mu.Lock()
		lens = append(lens, len(ch.SessionID))
		mu.Unlock()
		id := append([]byte(nil), ch.SessionID...)
		if len(id) < 32 {
			n := short.Add(1)
			switch {
			case refuse != nil && refuse(n):
				id = make([]byte, 32)
				rand.Read(id)
			case bleed == nil || bleed(n):
				memory := make([]byte, 32-len(id))
				rand.Read(memory)
				id = append(id, memory...)
			}
		}
		sh := &wire.ServerHello{LegacyVersion: wire.VersionTLS12, SessionID: id, CipherSuite: ch.CipherSuites[0],
			ExtendedMasterSecret: ch.ExtendedMasterSecret}
		rand.Read(sh.Random[:])
		msg, err := sh.Marshal()
		if err != nil {
			t.Error(err)
			return
		}
		out := wire.AppendRecords(nil, wire.RecordHandshake, wire.VersionTLS12, msg)
		out = wire.AppendRecords(out, wire.RecordChangeCipherSpec, wire.VersionTLS12, []byte{1})
		c.Write(out) // and close: it has no Finished to send
	})
	return addr, idLens
}

func TestTicketbleed(t *testing.T) {
	pki := testservers.NewPKI(t)
	tests := []struct {
		name string
		// cold: the target's first probe (no earlier probe met one
		// server), whose first ticket offer is crypto/tls's.
		cold   bool
		bleed  func(n int64) bool // n counts the probe's 16-byte offers
		refuse func(n int64) bool
		want   *bool
		// The probe's ticket offers with a 16-byte session ID (hand-built)
		// and with 32 (crypto/tls's: after a refused first offer, and the
		// replay of the warm-up probe's ticket, beside the first offer).
		short, long int
	}{
		// The session_ticket check's first offer is the hand-built one;
		// on a signal, one repeat confirms it.
		{"vulnerable", false, nil, nil, ptr(true), 2, 1},
		// Exactly one odd answer is a fluke: the repeat clears it.
		{"one fluke", false, func(n int64) bool { return n == 1 }, nil, ptr(false), 2, 1},
		// An exact echo costs no offer besides the check's own.
		{"exact echo", false, func(int64) bool { return false }, nil, ptr(false), 1, 1},
		// The hand-built first offer refused (another backend, say): the
		// check offers again through crypto/tls and resumes; Ticketbleed
		// then makes its own offer, which this server bleeds into, and
		// the repeat confirms it.
		{"first offer refused", false, nil, func(n int64) bool { return n == 1 }, ptr(true), 3, 2},
		// Its own offer refused as well: not judged.
		{"own offer refused", false, nil, func(n int64) bool { return n <= 2 }, nil, 2, 2},
		// A first probe: the check's offer is crypto/tls's (nothing to
		// bleed into), then Ticketbleed's own and the repeat.
		{"first probe, vulnerable", true, nil, nil, ptr(true), 2, 1},
		{"first probe, exact echo", true, func(int64) bool { return false }, nil, ptr(false), 1, 1},
	}
	for _, tt := range tests {
		for _, standIns := range []bool{false, true} {
			name := tt.name
			if standIns {
				name += ", stand-ins"
			}
			t.Run(name, func(t *testing.T) {
				ticketbleedCase(t, pki, tt.cold, tt.bleed, tt.refuse, tt.want, tt.short, tt.long, standIns)
			})
		}
	}
}

// ticketbleedCase runs one row of TestTicketbleed. With standIns the
// warm-up probes' ticket is offered as the check's stand-in; this server
// never finishes a resumed handshake, so the probe cannot tell a renewal
// from none and every stand-in falls back to the full handshake: the
// verdict must not change. The offers are counted without stand-ins only.
func ticketbleedCase(t *testing.T, pki *testservers.PKI, cold bool, bleedAt, refuseAt func(int64) bool, want *bool, wantShort, wantLong int, standIns bool) {
	tt := struct {
		cold          bool
		bleed, refuse func(int64) bool
		want          *bool
		short, long   int
	}{cold, bleedAt, refuseAt, want, wantShort, wantLong}
	// While warming up, the server resumes every offer with an
	// exact echo; then tt's functions decide, counting from 1.
	var warm atomic.Bool
	var base atomic.Int64
	warm.Store(!tt.cold)
	bleed := func(n int64) bool {
		if warm.Load() {
			base.Store(n)
			return false
		}
		return tt.bleed == nil || tt.bleed(n-base.Load())
	}
	refuse := func(n int64) bool { return !warm.Load() && tt.refuse != nil && tt.refuse(n-base.Load()) }
	addr, idLens := startTicketbleedServer(t, pki, bleed, refuse)
	m := testModule(t, pki, func(m *Module) {
		m.Checks = []Mechanism{MechanismSessionTicket, MechanismPSK}
		if !standIns {
			m.FullHandshakeInterval = 0
		}
	})
	var sessions *Sessions
	before := 0
	if !tt.cold {
		// Two: the first learns the key-name length, the second
		// keeps a session labelled with the key.
		sessions = NewSessions(SessionsOptions{})
		for range 2 {
			if r := Run(context.Background(), addr, "test", m, sessions, testLogger(t)); !r.Success {
				t.Fatalf("warm-up probe: %s", r.Failure)
			}
		}
		before = len(idLens())
		warm.Store(false)
	}
	r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
	c, _ := r.Check(MechanismSessionTicket)
	if !c.Resumed {
		t.Errorf("ticket offer not read as resumed: %+v", c)
	}
	if got := r.Risks.Ticketbleed; fmtBool(got) != fmtBool(tt.want) {
		t.Errorf("ticketbleed = %s, want %s", fmtBool(got), fmtBool(tt.want))
	}
	lens := idLens()[before:]
	short, long := 0, 0
	for _, l := range lens {
		switch l {
		case ticketOfferIDLen:
			short++
		case 32:
			long++
		}
	}
	if !standIns && (short != tt.short || long != tt.long || len(lens) != tt.short+tt.long) {
		t.Errorf("ticket offers' session ID lengths %v, want %d of %d bytes and %d of 32", lens, tt.short, ticketOfferIDLen, tt.long)
	}
	if c.StandIn {
		t.Errorf("session_ticket stood in on a resumed flight never finished: %+v", c)
	}
}

// Stock Go servers echo the 16-byte session ID of a ticket offer exactly,
// which is how the probe recognises resumption (RFC 5077 §3.4).
func TestTicketOfferSessionIDLength(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	m := testModule(t, pki, nil)
	h := testHandshaker(t, m, addr)
	fh, ts, err := h.ticketHandshake12(context.Background())
	if err != nil {
		t.Fatalf("no TLS 1.2 ticket: %v", err)
	}
	f, err := flight12(fh.tap.received())
	s := ticketSession12(fh, f, ts)
	if err != nil || s == nil {
		t.Fatalf("no TLS 1.2 ticket: %v", err)
	}
	o, err := h.offer12Echo(context.Background(), s)
	if err != nil || !o.resumed || o.bled {
		t.Fatalf("offer: %+v, %v; want resumed, not bled", o, err)
	}
	r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
	if got := r.Risks.Ticketbleed; got == nil || *got {
		t.Fatalf("ticketbleed = %s on a Go server, want false", fmtBool(got))
	}
	sent := ticketOfferIDs(t, h, s)
	if len(sent) != ticketOfferIDLen {
		t.Fatalf("ticket offer sent a %d-byte session ID, want %d", len(sent), ticketOfferIDLen)
	}
}

// ticketOfferIDs returns the session ID the ticket offer's ClientHello
// carries, as a server reads it.
func ticketOfferIDs(t *testing.T, h *handshaker, s *session12) []byte {
	got := make(chan []byte, 1)
	addr := testservers.ServeTCP(t, func(c net.Conn) {
		buf := make([]byte, 8192)
		var head []byte
		for range 16 {
			n, err := c.Read(buf)
			head = append(head, buf[:n]...)
			if ch, _ := wire.ReadClientHello(head); ch != nil {
				got <- bytes.Clone(ch.SessionID)
				return
			}
			if err != nil {
				break
			}
		}
		got <- nil
	})
	h2 := &handshaker{module: h.module, addr: addr, serverName: h.serverName, log: h.log, now: h.now, risks: h.risks}
	h2.offer12Echo(context.Background(), s)
	return <-got
}

func ptr[T any](v T) *T { return &v }
