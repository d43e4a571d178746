package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// goBackend is a crypto/tls server whose tickets start with a 16-byte key
// name, as OpenSSL's do, under ticket keys of its own: one backend of a
// fleet. With refuse set it resumes nothing (and still issues tickets).
type goBackend struct {
	name   [16]byte
	cfg    *tls.Config
	refuse atomic.Bool
}

func newGoBackend(t *testing.T, pki *testservers.PKI, id byte) *goBackend {
	b := &goBackend{}
	for i := range b.name {
		b.name[i] = id
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		blob, err := cfg.EncryptTicket(cs, ss)
		return append(b.name[:], blob...), err
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		if b.refuse.Load() || !bytes.HasPrefix(identity, b.name[:]) {
			return nil, nil // not ours: a full handshake
		}
		return cfg.DecryptTicket(identity[len(b.name):], cs)
	}
	b.cfg = cfg
	return b
}

// balancer serves every connection with the backend route picks.
func balancer(t *testing.T, backends []*goBackend, route func() int) string {
	return testservers.ServeTCP(t, func(c net.Conn) {
		tc := tls.Server(c, backends[route()].cfg)
		defer tc.Close()
		drain(tc)
	})
}

func newFleetOf(t *testing.T, pki *testservers.PKI, n int) []*goBackend {
	var bs []*goBackend
	for i := range n {
		bs = append(bs, newGoBackend(t, pki, byte('a'+i)))
	}
	return bs
}

// fakeClock is a Sessions clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var ticketMechanisms = []Mechanism{MechanismSessionTicket, MechanismPSK}

func fleetModule(t *testing.T, pki *testservers.PKI) *Module {
	return testModule(t, pki, func(m *Module) { m.Checks = ticketMechanisms; m.TLSConfig.ServerName = "localhost" })
}

// Four backends balanced at random: once a mechanism resumed, every later
// probe reports it resumed, by an offer of its own or by the window; each
// refusal whose new ticket names another key is read as another backend;
// the probes see the four keys and no more.
func TestFleetOfFourBackends(t *testing.T) {
	pki := testservers.NewPKI(t)
	bs := newFleetOf(t, pki, 4)
	addr := balancer(t, bs, func() int { return rand.IntN(len(bs)) })
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	sessions := NewSessions(SessionsOptions{Now: clock.Now})
	m := fleetModule(t, pki)
	resumedOnce := map[Mechanism]bool{}
	keys := map[uint64]bool{}
	const warmup = 4 // (3/4)^8 per probe: 4 probes all missing is 1 in 3000
	for i := range 12 {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		r := Run(context.Background(), addr, "test", m, sessions, logger)
		checkRefusalRecords(t, i, r, logs.String())
		if !r.Success {
			t.Fatalf("probe %d: %s", i, r.Failure)
		}
		for _, k := range r.KeyNames {
			keys[k.Fingerprint] = true
		}
		for _, mech := range ticketMechanisms {
			c, _ := r.Check(mech)
			if resumedOnce[mech] && !c.Resumed {
				t.Errorf("probe %d: %s not resumed although it resumed within the window: %+v", i, mech, c)
			}
			if i == warmup-1 && !resumedOnce[mech] && !c.Resumed {
				t.Errorf("%s never resumed in %d probes behind four backends", mech, warmup)
			}
			resumedOnce[mech] = resumedOnce[mech] || c.Resumed
			if n := c.OffersResumed + c.OffersRefused; n < 1 || n > maxOffers || c.OffersResumed > 1 {
				t.Errorf("probe %d: %s made %d offers, %d resumed", i, mech, n, c.OffersResumed)
			}
			if c.Recent && (c.OffersResumed != 0 || c.RecentAge <= 0 || c.RecentAge > 15*time.Minute) {
				t.Errorf("probe %d: %s window verdict with %+v", i, mech, c)
			}
			for _, rf := range c.Refusals {
				if want := rf.AnsweredKey != 0 && rf.OfferedKey != 0 && rf.AnsweredKey != rf.OfferedKey; rf.OtherBackend != want {
					t.Errorf("probe %d: %s refusal %+v", i, mech, rf)
				}
			}
		}
		for v, tk := range r.Tickets {
			// 0 is possible: a Go server sends one TLS 1.3 ticket, and
			// lone tickets of different backends share no name to infer.
			if tk.KeysSeen > 4 {
				t.Errorf("probe %d: %s keys seen %d behind four backends", i, VersionName(v), tk.KeysSeen)
			}
		}
		clock.Add(time.Minute)
	}
	if len(keys) != 4 {
		t.Errorf("%d distinct keys over the probes, want the 4 backends'", len(keys))
	}
}

// The window rule: behind a balancer whose backends refuse every offer, a
// mechanism that resumed 5 minutes ago still reads as resuming, and no
// longer once the window (15 minutes) has passed. A single server that
// refuses gets no such grace: nothing shows another backend.
func TestFleetResumedWithinWindow(t *testing.T) {
	for _, tt := range []struct {
		name       string
		backends   int
		wantRecent bool
	}{
		{"three backends", 3, true},
		{"one server", 1, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			bs := newFleetOf(t, pki, tt.backends)
			var next atomic.Int64
			addr := balancer(t, bs, func() int { return int(next.Add(1)) % len(bs) })
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 15 * time.Minute})
			m := fleetModule(t, pki)
			probe := func() Result {
				r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
				if !r.Success {
					t.Fatalf("%s", r.Failure)
				}
				return r
			}
			for i := 0; ; i++ { // round robin: a retry lands home within a few offers
				r := probe()
				c12, _ := r.Check(MechanismSessionTicket)
				c13, _ := r.Check(MechanismPSK)
				if c12.Resumed && c13.Resumed && !c12.Recent && !c13.Recent {
					break
				}
				if i == 3 {
					t.Fatalf("not resumed in 4 probes: %+v %+v", c12, c13)
				}
			}
			for _, b := range bs {
				b.refuse.Store(true)
			}
			clock.Add(5 * time.Minute)
			r := probe()
			for _, mech := range ticketMechanisms {
				c, _ := r.Check(mech)
				if c.OffersResumed != 0 || c.FirstOfferResumed || c.Resumed != tt.wantRecent || c.Recent != tt.wantRecent {
					t.Errorf("%s 5 min later, every offer refused: %+v", mech, c)
				}
				if tt.wantRecent && c.RecentAge != 5*time.Minute {
					t.Errorf("%s resumed %s ago by the window, want 5m", mech, c.RecentAge)
				}
				if !tt.wantRecent && (c.OffersRefused != 1 || len(c.Refusals) != 1 || c.Refusals[0].OtherBackend ||
					c.Refusals[0].AnsweredKey != c.Refusals[0].OfferedKey) {
					t.Errorf("%s on one server: %+v, want one refusal by the issuing key", mech, c)
				}
			}
			clock.Add(11 * time.Minute)
			r = probe()
			for _, mech := range ticketMechanisms {
				if c, _ := r.Check(mech); c.Resumed || c.Recent {
					t.Errorf("%s 16 min after the last resumption: %+v", mech, c)
				}
			}
		})
	}
}

// An earlier session refused by another backend is not expired: it is kept
// while its own key is about, and resumes when an offer reaches that
// backend again. A key not seen for longer than the window was rotated
// away: a session of it that another key refuses is forgotten.
func TestFleetReplayKeepsSessionsOfOtherBackends(t *testing.T) {
	pki := testservers.NewPKI(t)
	bs := newFleetOf(t, pki, 3)
	var to atomic.Int64
	addr := balancer(t, bs, func() int { return int(to.Load()) })
	clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	sessions := NewSessions(SessionsOptions{Now: clock.Now, ResumedWindow: 15 * time.Minute})
	m := fleetModule(t, pki)
	probe := func(backend int) Result {
		to.Store(int64(backend))
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("%s", r.Failure)
		}
		return r
	}
	ofKey := func(k uint64) (n int) {
		for _, mech := range ticketMechanisms {
			for _, st := range sessions.oldest("test\x00"+addr+"\x00localhost", mech) {
				if st.key == k {
					n++
				}
			}
		}
		return n
	}
	aKey := Fingerprint(bs[0].name[:])

	probe(0) // sessions of backend a
	clock.Add(5 * time.Minute)
	r := probe(1) // b resumes its own, refuses a's
	for _, mech := range ticketMechanisms {
		if _, ok := r.AcceptedMaxAge[mech]; ok {
			t.Errorf("%s: backend b resumed a's session", mech)
		}
	}
	if n := ofKey(aKey); n != 2 {
		t.Fatalf("%d sessions of a kept after b refused them, want both", n)
	}
	clock.Add(5 * time.Minute)
	r = probe(0) // a resumes the session it issued ten minutes ago
	for _, mech := range ticketMechanisms {
		if got := r.AcceptedMaxAge[mech]; got != 10*time.Minute {
			t.Errorf("%s: accepted max age %s, want a's 10-minute-old session", mech, got)
		}
	}

	clock.Add(20 * time.Minute) // a's key unseen past the window: as if rotated away
	probe(2)
	if n := ofKey(aKey); n != 0 {
		t.Errorf("%d sessions of a rotated-away key kept after another key refused them", n)
	}
}

// checkRefusalRecords checks that the debug output has one record per
// refused offer saying whether, and why, another backend answered.
func checkRefusalRecords(t *testing.T, probe int, r Result, logs string) {
	t.Helper()
	want := 0
	for _, c := range r.Checks {
		want += len(c.Refusals)
		for _, rf := range c.Refusals {
			line := fmt.Sprintf("mechanism=%s step=", c.Mechanism)
			attrs := fmt.Sprintf("attempt=%d addr=%s other_backend=%t", rf.Attempt, r.Addr, rf.OtherBackend)
			if !strings.Contains(logs, line) || !strings.Contains(logs, attrs) {
				t.Errorf("probe %d: no record of %s refusal %+v (%s)", probe, c.Mechanism, rf, attrs)
			}
		}
	}
	if got := strings.Count(logs, `msg="Offer refused"`); got != want {
		t.Errorf("probe %d: %d refusal records for %d refusals", probe, got, want)
	}
	if want > 0 && !strings.Contains(logs, "why=") {
		t.Errorf("probe %d: refusal records do not say why", probe)
	}
}

func TestPredictNext(t *testing.T) {
	const a, b, c = 1, 2, 3
	tests := []struct {
		name      string
		seq       []uint64
		maxPeriod int
		want      uint64 // 0: no prediction
	}{
		{"nothing seen", nil, 2, 0},
		{"one landing", []uint64{a}, 2, 0},
		{"two different: no period yet", []uint64{a, b}, 2, 0},
		{"always the same backend", []uint64{b, b}, 2, b},
		{"alternating", []uint64{a, b, a}, 2, b},
		{"alternating after a glitch", []uint64{b, a, a, b, a}, 2, b},
		{"round robin over three", []uint64{a, b, c, a}, 3, b},
		{"period above the backends seen", []uint64{a, b, c, a}, 2, 0},
	}
	for _, tt := range tests {
		got, ok := predictNext(tt.seq, tt.maxPeriod)
		if ok != (tt.want != 0) || got != tt.want {
			t.Errorf("%s: predictNext(%v, %d) = %d, %v; want %d", tt.name, tt.seq, tt.maxPeriod, got, ok, tt.want)
		}
	}
}

// TLS 1.2 tickets alone (the tls12 module's; Go servers keep no session
// IDs) behind round-robin over two backends: the key-name length, learnt from a further ticket or
// kept from earlier probes, lets every probe read a refusal as another
// backend's and retry, so every probe reports tickets resumed.
func TestFleetTLS12OnlyRoundRobin(t *testing.T) {
	pki := testservers.NewPKI(t)
	bs := newFleetOf(t, pki, 2)
	for _, b := range bs {
		b.cfg.MaxVersion = tls.VersionTLS12
	}
	var next atomic.Uint32
	addr := balancer(t, bs, func() int { return int(next.Add(1)) % len(bs) })
	sessions := NewSessions(SessionsOptions{})
	m := testModule(t, pki, func(m *Module) {
		m.Checks = []Mechanism{MechanismSessionTicket}
		m.TLSConfig.ServerName = "localhost"
		m.TLSConfig.MaxVersion = "TLS12"
	})
	for i := range 10 {
		r := Run(context.Background(), addr, "test", m, sessions, slog.New(slog.DiscardHandler))
		if !r.Success {
			t.Fatalf("probe %d: %s", i, r.Failure)
		}
		for _, mech := range m.Checks {
			if c, _ := r.Check(mech); !c.Resumed {
				t.Errorf("probe %d: %s not resumed: %+v", i, mech, c)
			}
		}
		if got := sessions.keyNameLen("test\x00"+r.Target+"\x00localhost", VersionTLS12); got != 16 {
			t.Errorf("probe %d: key-name length kept %d, want 16", i, got)
		}
	}
}

// A refused psk_ke offer says nothing of the server's policy when the probe
// shows several backends: it may have reached one that never issued the
// ticket. Go servers never resume psk_ke alone, so a single one is judged
// (false) and two balanced round-robin leave the risk unjudged (nil).
func TestPSKWithoutDHEUnjudgedBehindSeveralBackends(t *testing.T) {
	pki := testservers.NewPKI(t)
	m := testModule(t, pki, func(m *Module) {
		m.Checks = []Mechanism{MechanismPSK}
		m.Risks = []Risk{RiskPSKWithoutDHE}
		m.TLSConfig.ServerName = "localhost"
		m.TLSConfig.MinVersion = "TLS13" // so that the PSK offer follows its full handshake
	})
	for _, n := range []int{1, 2} {
		bs := newFleetOf(t, pki, n)
		var next atomic.Uint32
		addr := balancer(t, bs, func() int { return int(next.Add(1)) % len(bs) })
		r := Run(context.Background(), addr, "test", m, NewSessions(SessionsOptions{}), slog.New(slog.DiscardHandler))
		if !r.Success {
			t.Fatalf("%d backends: %s", n, r.Failure)
		}
		c, _ := r.Check(MechanismPSK)
		other := slices.ContainsFunc(c.Refusals, func(rf Refusal) bool { return rf.OtherBackend })
		got := r.Risks.PSKWithoutDHE
		switch {
		case n == 1 && (other || got == nil || *got):
			t.Errorf("one backend: other backend %v, psk_without_dhe %v; want judged false", other, fmtBool(got))
		case n == 2 && (!other || got != nil):
			t.Errorf("two backends: other backend %v, psk_without_dhe %v; want a refusal by the other backend and no verdict", other, fmtBool(got))
		}
	}
}

// A PSK retry offers first the probe's last ticket, which no offer spent,
// not the fresh one the first offer spent (single-use tickets would refuse
// it); the other mechanisms offer their one session.
func TestRetryCandidatesSkipTheSpentTicket(t *testing.T) {
	h := &handshaker{}
	other := &stored{key: 2}
	for _, tt := range []struct {
		m    Mechanism
		keep bool
		want string
	}{
		{MechanismPSK, true, "keep"},
		{MechanismPSK, false, "fresh"},
		{MechanismSessionTicket, true, "fresh"},
	} {
		fresh := &stored{key: 1}
		o := &chainOut{check: Check{Mechanism: tt.m}, fresh: fresh, learned: []*stored{other}}
		if tt.keep {
			o.keep = &stored{key: 1}
		}
		got := h.candidates(o)
		first := map[*stored]string{fresh: "fresh", o.keep: "keep"}[got[0]]
		if first != tt.want || len(got) != 2 || got[1] != other {
			t.Errorf("%s with keep %v: first candidate %s of %d, want %s then the other backend's", tt.m, tt.keep, first, len(got), tt.want)
		}
	}
}
