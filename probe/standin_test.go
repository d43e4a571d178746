package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// handshakeCounter counts, on the server, the handshakes that completed:
// full ones and resumed ones per version.
type handshakeCounter struct {
	mu      sync.Mutex
	full    map[uint16]int
	resumed map[uint16]int
	offered map[string]int // offers per ticket, since the start
	// offers12 counts TLS 1.2 ticket offers since the last take: counted
	// when the server reads the ClientHello, before it answers.
	offers12 int
}

func (c *handshakeCounter) verify(cs tls.ConnectionState) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs.DidResume {
		c.resumed[cs.Version]++
	} else {
		c.full[cs.Version]++
	}
	return nil
}

// take returns the counts since the last take.
func (c *handshakeCounter) take() (full, resumed map[uint16]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	full, resumed = c.full, c.resumed
	c.full, c.resumed = map[uint16]int{}, map[uint16]int{}
	return full, resumed
}

// takeOffers12 returns the TLS 1.2 ticket offers since its last call.
func (c *handshakeCounter) takeOffers12() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.offers12
	c.offers12 = 0
	return n
}

// startCountingServer starts a Go server on clock whose tickets name one
// key (so that earlier probes tell one server) and that counts its
// handshakes; rotate gives it a new ticket key, which refuses every ticket
// issued before.
func startCountingServer(t *testing.T, pki *testservers.PKI, clock *fakeClock) (addr string, c *handshakeCounter, rotate func()) {
	c = &handshakeCounter{offered: map[string]int{}}
	c.take()
	name := bytes.Repeat([]byte{0x5a}, 16)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}, Time: clock.Now}
	nameTicketKey(cfg, name, func(identity []byte, cs tls.ConnectionState) bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.offered[string(identity)]++
		if cs.Version == tls.VersionTLS12 {
			c.offers12++
		}
		return true
	})
	// Counted once the handshake completed (the client's Finished read),
	// before the server answers the close_notify the probe waits for, so
	// every count is in before Run returns; an offer abandoned after its
	// ServerHello (psk_ke) is not a completed handshake.
	addr = testservers.ServeTCP(t, func(conn net.Conn) {
		tc := tls.Server(conn, cfg)
		defer tc.Close()
		if tc.Handshake() == nil {
			c.verify(tc.ConnectionState())
		}
		drain(tc)
	})
	rotate = func() {
		var k [32]byte
		k[0] = byte(time.Now().UnixNano())
		cfg.SetSessionTicketKeys([][32]byte{k})
	}
	return addr, c, rotate
}

// On one server, the second probe's psk check offers the first probe's
// last ticket instead of making a full handshake: the server completes no
// full TLS 1.3 handshake in it (the psk_ke offer, which the server
// refuses, ends before its Finished), the verdicts and the tickets'
// facts are those of the first probe, and the full-handshake duration
// is the first probe's, with its time. A probe past the interval, or of a
// module with interval 0, makes the full handshake again.
func TestStandInReplacesFullHandshake(t *testing.T) {
	pki := testservers.NewPKI(t)
	for _, tt := range []struct {
		name     string
		interval time.Duration
		step     time.Duration // between the two probes
		standIn  bool
	}{
		{"within the interval", time.Hour, time.Minute, true},
		{"past the interval", time.Hour, 61 * time.Minute, false},
		{"interval 0", 0, time.Minute, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			addr, count, _ := startCountingServer(t, pki, clock)
			m := testModule(t, pki, func(m *Module) {
				m.Checks = ticketMechanisms
				m.FullHandshakeInterval = tt.interval
			})
			sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 2 * time.Hour})
			first := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
			if !first.Success {
				t.Fatal(first.Failure)
			}
			full1, _ := count.take()
			t0 := clock.Now()
			clock.Add(tt.step)
			r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
			if !r.Success {
				t.Fatal(r.Failure)
			}
			full2, resumed2 := count.take()
			c, _ := r.Check(MechanismPSK)
			if c.StandIn != tt.standIn || !c.Resumed || !c.FirstOfferResumed {
				t.Fatalf("psk check %+v, want resumed, stand-in %v", c, tt.standIn)
			}
			wantAt := clock.Now()
			if tt.standIn {
				wantAt = t0
			}
			if !c.FullHandshakeAt.Equal(wantAt) || c.FullHandshake <= 0 {
				t.Errorf("full handshake %s at %s, want one at %s", c.FullHandshake, c.FullHandshakeAt, wantAt)
			}
			if tt.standIn != (full2[VersionTLS13] == 0) || resumed2[VersionTLS13] == 0 || full1[VersionTLS13] == 0 {
				t.Errorf("the server completed %d full TLS 1.3 handshakes in the first probe, %d full and %d resumed in the second; want none full in the second only with a stand-in",
					full1[VersionTLS13], full2[VersionTLS13], resumed2[VersionTLS13])
			}
			t1, t2 := first.Tickets[VersionTLS13], r.Tickets[VersionTLS13]
			if tt.standIn && t2.Count != 1 {
				t.Errorf("TLS 1.3 tickets %+v: the stand-in's connection issued one (counted once)", t2)
			}
			if !sameWeaknessVerdicts(first.Risks.TicketWeaknesses, r.Risks.TicketWeaknesses) {
				t.Errorf("ticket_weakness verdicts %v, want those of the first probe %v", r.Risks.TicketWeaknesses, first.Risks.TicketWeaknesses)
			}
			if t2.Count == 0 || t1.LifetimeHint != t2.LifetimeHint || t1.Format != t2.Format || t1.KeyNameBytes != t2.KeyNameBytes {
				t.Errorf("TLS 1.3 tickets %+v, want the facts of the first probe's %+v", t2, t1)
			}
			if len(r.KeyNames) != 1 || len(first.KeyNames) != 1 || r.KeyNames[0].Fingerprint != first.KeyNames[0].Fingerprint {
				t.Errorf("key names %v, want the first probe's %v", r.KeyNames, first.KeyNames)
			}
			if r.Risks.PSKWithoutDHE == nil || *r.Risks.PSKWithoutDHE {
				t.Errorf("psk_without_dhe %v, want judged false on the stand-in's ticket", r.Risks.PSKWithoutDHE)
			}
			// A Go server renews every TLS 1.2 ticket it resumes, so its
			// stand-in falls back to the full handshake (see
			// TestStandInRenewedTicket); OpenSSL's stand in (integration).
			if st, ok := r.Check(MechanismSessionTicket); !ok || st.StandIn || !st.Resumed || !st.FullHandshakeAt.Equal(clock.Now()) {
				t.Errorf("session_ticket check %+v, want resumed after a full handshake of this probe", st)
			}
			u1, u2 := first.Tickets[VersionTLS12], r.Tickets[VersionTLS12]
			if u2.Count == 0 || u1.LifetimeHint != u2.LifetimeHint || u1.Format != u2.Format || u1.KeyNameBytes != u2.KeyNameBytes {
				t.Errorf("TLS 1.2 tickets %+v, want the facts of the first probe's %+v", u2, u1)
			}
			if r.Risks.TicketRenewed12 == nil || first.Risks.TicketRenewed12 == nil || *r.Risks.TicketRenewed12 != *first.Risks.TicketRenewed12 {
				t.Errorf("ticket_renewal %v, want the first probe's %v", fmtBool(r.Risks.TicketRenewed12), fmtBool(first.Risks.TicketRenewed12))
			}
		})
	}
}

// A stand-in chains on: each probe's resumed connection issues the next
// one, for as long as the interval allows, and the server resumes each.
// After a key rotation the stand-in is refused; the check then makes its
// full handshake in the same probe, and its verdict is the fresh offer's.
func TestStandInChainsAndFallsBack(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	addr, count, rotate := startCountingServer(t, pki, clock)
	m := testModule(t, pki, func(m *Module) {
		m.Checks = ticketMechanisms
	})
	sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 2 * time.Hour})
	start := clock.Now()
	var refused []byte
	for i := range 5 {
		if i == 4 {
			rotate()
		}
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("probe %d: %s", i, r.Failure)
		}
		full, _ := count.take()
		c, _ := r.Check(MechanismPSK)
		wantStandIn := i > 0 && i < 4
		if c.StandIn != wantStandIn || !c.Resumed {
			t.Fatalf("probe %d: psk check %+v, want resumed, stand-in %v", i, c, wantStandIn)
		}
		wantAt := start
		if i == 4 {
			wantAt = clock.Now()
		}
		if !c.FullHandshakeAt.Equal(wantAt) {
			t.Errorf("probe %d: full handshake at %s, want %s", i, c.FullHandshakeAt, wantAt)
		}
		if wantStandIn && full[VersionTLS13] != 0 {
			t.Errorf("probe %d: %d full TLS 1.3 handshakes beside a stand-in", i, full[VersionTLS13])
		}
		if !wantStandIn && full[VersionTLS13] == 0 {
			t.Errorf("probe %d: no full TLS 1.3 handshake without a stand-in", i)
		}
		key := "test\x00" + r.Target + "\x00" + r.ServerName
		if si := sessions.standIn(key, MechanismPSK); si == nil || !si.st.chainOrigin().Equal(wantAt) {
			t.Errorf("probe %d: next stand-in %+v, want one descending from the full handshake at %s", i, si, wantAt)
		}
		if i == 3 {
			refused = sessions.standIn(key, MechanismPSK).st.ticket()
		}
		if i == 4 {
			count.mu.Lock()
			n := count.offered[string(refused)]
			count.mu.Unlock()
			// Issued in probe 3, it is probe 4's stand-in, and its
			// refusal stands for the age replay's offer of it.
			if n != 1 {
				t.Errorf("probe 4: the refused stand-in was offered %d times, want once", n)
			}
		}
		clock.Add(time.Minute)
	}
}

// A stand-in whose ticket is past the lifetime its server announced is not
// offered (its offer could only be refused): the check makes its full
// handshake, and the server sees no offer of the expired ticket.
func TestStandInPastLifetimeNotOffered(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	var mu sync.Mutex
	offered := map[string]int{}
	name := bytes.Repeat([]byte{0x4e}, 16)
	addr := startGoServer(t, pki, func(cfg *tls.Config) {
		cfg.Time = clock.Now
		nameTicketKey(cfg, name, func(identity []byte, cs tls.ConnectionState) bool {
			mu.Lock()
			defer mu.Unlock()
			offered[string(identity)]++
			return true
		})
	})
	m := testModule(t, pki, func(m *Module) {
		m.Checks = ticketMechanisms
		m.FullHandshakeInterval = 30 * 24 * time.Hour // the lifetime, 7 days, is what bounds
	})
	sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 30 * 24 * time.Hour, MaxAge: 30 * 24 * time.Hour})
	first := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
	if !first.Success {
		t.Fatal(first.Failure)
	}
	si := sessions.standIn("test\x00"+first.Target+"\x00"+first.ServerName, MechanismPSK)
	if si == nil || si.lifetime != 7*24*time.Hour {
		t.Fatalf("stand-in %+v, want one with the 7-day lifetime of Go's tickets", si)
	}
	ticket := string(si.st.ticket())
	mu.Lock()
	clear(offered)
	mu.Unlock()
	clock.Add(7*24*time.Hour + time.Minute)
	r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
	if c, _ := r.Check(MechanismPSK); c.StandIn {
		t.Errorf("psk check %+v: an expired stand-in stood in", c)
	}
	mu.Lock()
	defer mu.Unlock()
	// Once, by the age replay, which offers earlier sessions past their
	// lifetime on purpose; a stand-in offer would make it twice.
	if n := offered[ticket]; n != 1 {
		t.Errorf("the expired stand-in's ticket was offered %d times, want once (the age replay)", n)
	}
}

func sameWeaknessVerdicts(a, b []TicketWeakness) bool {
	judged := func(ws []TicketWeakness) map[TicketWeakness]bool {
		m := map[TicketWeakness]bool{}
		for _, w := range ws {
			m[TicketWeakness{Version: w.Version, Weakness: w.Weakness}] = true
		}
		return m
	}
	ja, jb := judged(a), judged(b)
	if len(ja) != len(jb) {
		return false
	}
	for k := range ja {
		if !jb[k] {
			return false
		}
	}
	return true
}

// A session ID stands in for at most half the server's session timeout,
// which OpenSSL-based servers announce as the TLS 1.2 lifetime hint: a
// session ID resumed again grows no younger, and a full handshake at half
// the timeout keeps a second session in the age ladder. A ticket's
// stand-in lasts its own announced lifetime; with no hint, the interval
// alone bounds it.
func TestStandInLifetime(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	for _, tt := range []struct {
		name   string
		m      Mechanism
		hint12 time.Duration
		at     time.Duration
		usable bool
	}{
		{"session ID within half the hint", MechanismSessionID, 300 * time.Second, 149 * time.Second, true},
		{"session ID past half the hint", MechanismSessionID, 300 * time.Second, 150 * time.Second, false},
		{"session ID, no TLS 1.2 hint", MechanismSessionID, 0, 50 * time.Minute, true},
		{"session ID past the interval", MechanismSessionID, 0, time.Hour, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := t0
			s := NewSessions(SessionsOptions{Now: func() time.Time { return now }})
			h := &handshaker{module: &Module{FullHandshakeInterval: time.Hour}, sessions: s, key: "k", now: s.clock(), oneServer: true}
			st := &stored{obtained: t0, s12: &session12{}}
			o := &chainOut{check: Check{Mechanism: tt.m, Completed: true, FullHandshakeAt: t0, FullHandshake: time.Millisecond},
				keep: st, offers: []attempt{{offered: st, resumed: true}}}
			h.keepStandIn(o, &fleet{keys: map[uint64]bool{}}, tt.hint12)
			now = t0.Add(tt.at)
			if got := h.usableStandIn(tt.m) != nil; got != tt.usable {
				t.Errorf("stand-in usable %v at %s, want %v", got, tt.at, tt.usable)
			}
		})
	}
}

// A resumed TLS 1.2 stand-in that the server renews (a Go server renews
// every ticket; OpenSSL one of a key rotated away) says nothing of the
// server's ticket facts now: the check makes its full handshake in the
// same probe, and for an interval the ticket stands in no more, so a
// server that always renews does not pay a connection more each probe.
func TestStandInRenewedTicket(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	addr, count, _ := startCountingServer(t, pki, clock)
	m := testModule(t, pki, func(m *Module) {
		m.Checks = ticketMechanisms
		m.Risks = []Risk{RiskTicketRenewal}
	})
	sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 2 * time.Hour})
	var offers12 []int
	for i := range 3 {
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("probe %d: %s", i, r.Failure)
		}
		full, _ := count.take()
		offers12 = append(offers12, count.takeOffers12())
		c, _ := r.Check(MechanismSessionTicket)
		if c.StandIn || !c.Resumed || !c.FullHandshakeAt.Equal(clock.Now()) || full[VersionTLS12] == 0 {
			t.Errorf("probe %d: session_ticket check %+v after %d full TLS 1.2 handshakes, want resumed after one of this probe", i, c, full[VersionTLS12])
		}
		if r.Risks.TicketRenewed12 == nil || !*r.Risks.TicketRenewed12 {
			t.Errorf("probe %d: ticket_renewal %s, want true (Go renews)", i, fmtBool(r.Risks.TicketRenewed12))
		}
		clock.Add(time.Minute)
	}
	// Probe 1 offered the stand-in, which resumed (renewed), then the
	// fresh ticket and the oldest kept one; probe 2 only the last two.
	if offers12[1] != offers12[2]+1 {
		t.Errorf("TLS 1.2 ticket offers per probe %v: want probe 1's stand-in offer, and none in probe 2", offers12)
	}
}

// An unrenewed TLS 1.2 stand-in whose key is not the one this probe's TLS
// 1.3 tickets name (a server that resumes an older key's ticket without
// renewing it, as GnuTLS does after a rotation) is replaced by the check's
// full handshake, so the probe reports the key issuing now; one whose key
// the TLS 1.3 tickets name, or with no named TLS 1.3 ticket to compare,
// stands.
func TestRecheckStandIn12(t *testing.T) {
	pki := testservers.NewPKI(t)
	k0 := bytes.Repeat([]byte{0x30}, 16)
	k1 := bytes.Repeat([]byte{0x31}, 16)
	ticket := func(name []byte) []byte { return append(slices.Clone(name), bytes.Repeat([]byte{0xee}, 80)...) }
	for _, tt := range []struct {
		name   string
		tls13  [][]byte
		redone bool
	}{
		{"TLS 1.3 names another key", [][]byte{ticket(k1)}, true},
		{"TLS 1.3 names the stand-in's key", [][]byte{ticket(k1), ticket(k0)}, false},
		{"no named TLS 1.3 ticket", [][]byte{bytes.Repeat([]byte{1}, 32)}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			addr, count, _ := startCountingServer(t, pki, clock)
			m := testModule(t, pki, func(m *Module) { m.Checks = ticketMechanisms })
			h := testHandshaker(t, m, addr)
			h.serverName = "localhost"
			h.sessions = NewSessions(SessionsOptions{Now: clock.Now})
			h.now, h.key = clock.Now, "k"
			stale := &stored{obtained: clock.Now(), key: Fingerprint(k0), keyLen: 16}
			var p13 []ticketSeen
			for _, raw := range tt.tls13 {
				p13 = append(p13, ticketSeen{version: VersionTLS13, raw: raw})
			}
			outs := []chainOut{
				{check: Check{Mechanism: MechanismSessionTicket, Completed: true, StandIn: true}, version: VersionTLS12, fresh: stale, keep: stale},
				{check: Check{Mechanism: MechanismPSK, Completed: true}, version: VersionTLS13, tickets: p13},
			}
			staleHand := &session12{ticket: ticket(k0)}
			h.risks.sawTicket12(staleHand) // as the stand-in's offer recorded it
			h.recheckStandIn12(context.Background(), outs)
			h.ending.Wait()
			if kept := h.risks.ticket12 == staleHand; kept == tt.redone {
				t.Errorf("Ticketbleed's own offer would carry the stand-in: %v, want %v", kept, !tt.redone)
			}
			full, _ := count.take()
			c := outs[0].check
			if redone := !c.StandIn; redone != tt.redone || redone != (full[VersionTLS12] > 0) {
				t.Fatalf("session_ticket check %+v after %d full TLS 1.2 handshakes, want redone %v", c, full[VersionTLS12], tt.redone)
			}
			if tt.redone && (!c.Completed || !outs[0].resumed() || !c.FullHandshakeAt.Equal(clock.Now())) {
				t.Errorf("redone check %+v, want a full handshake of now and its offer resumed", c)
			}
		})
	}
}
