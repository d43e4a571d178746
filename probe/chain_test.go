package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) set(start time.Time, at time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = start.Add(at)
}

// chainSteps probes addr at each offset from the clock's start and checks
// the chain age each ticket mechanism reports.
func chainSteps(t *testing.T, addr string, m *Module, clock *fakeClock, steps []chainStep) {
	t.Helper()
	sessions := NewSessions(SessionsOptions{Now: clock.Now})
	start := clock.Now()
	for _, s := range steps {
		clock.set(start, s.at)
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("at %s: %s", s.at, r.Failure)
		}
		for _, mech := range ticketMechanisms {
			want := s.age
			if mech == MechanismSessionTicket && s.age12 != nil {
				want = *s.age12
			}
			got, ok := r.Risks.ResumptionChainMaxAge[mech]
			if !ok || got != want {
				t.Errorf("at %s: %s chain age %s (reported %v), want %s", s.at, mech, got, ok, want)
			}
		}
	}
}

// chainStep is one probe at an offset and the chain age it should report;
// age12, when set, is session_ticket's where it differs from psk's.
type chainStep struct {
	at, age time.Duration
	age12   *time.Duration
}

func chainModule(t *testing.T, pki *testservers.PKI) *Module {
	return testModule(t, pki, func(m *Module) {
		m.Checks = ticketMechanisms
		m.Risks = []Risk{RiskResumptionChain}
	})
}

// A stock crypto/tls server (on the test's clock) issues a ticket on every
// TLS 1.3 resumption with a new creation time, and resumes each as long as
// that one ticket is younger than 7 days: the TLS 1.3 chain grows with
// every probe, past 7 days, from the first probe's full handshake on (it
// would stop at 7 days if the probe offered the first ticket again instead
// of extending the chain). A renewed TLS 1.2 ticket keeps the session's
// creation time, which Go bounds at 7 days: that chain restarts.
func TestResumptionChainGoServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	addr := startGoServer(t, pki, func(c *tls.Config) { c.Time = clock.Now })
	restarted, day := time.Duration(0), 24*time.Hour
	chainSteps(t, addr, chainModule(t, pki), clock, []chainStep{
		{at: 0, age: 0},
		{at: time.Hour, age: time.Hour},
		{at: 2 * day, age: 2 * day},
		{at: 6 * day, age: 6 * day},
		{at: 10 * day, age: 10 * day, age12: &restarted},
		{at: 11 * day, age: 11 * day, age12: new(day)},
	})
}

// chainBound is how old a chain the bounding test server resumes.
const chainBound = 36 * time.Hour

// startBoundedServer runs a Go server, on the test's clock, that carries
// each session's chain origin (its full handshake's time) in
// SessionState.Extra through every ticket it issues, and refuses a chain
// older than chainBound: what RFC 8446 §4.6.1 recommends, and what the
// runbook tells Go users to do.
func startBoundedServer(t *testing.T, pki *testservers.PKI, clock *fakeClock) string {
	return startGoServer(t, pki, func(base *tls.Config) {
		base.Time = clock.Now
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			var origin time.Time // of the chain this connection resumes; zero: a full handshake
			cfg := base.Clone()
			cfg.GetConfigForClient = nil
			cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
				ss, err := base.DecryptTicket(identity, cs)
				if err != nil || ss == nil || len(ss.Extra) != 1 || len(ss.Extra[0]) != 8 {
					return nil, nil
				}
				o := time.Unix(int64(binary.BigEndian.Uint64(ss.Extra[0])), 0)
				if clock.Now().Sub(o) > chainBound {
					return nil, nil // a full handshake starts a new chain
				}
				origin = o
				return ss, nil
			}
			cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
				o := origin
				if o.IsZero() {
					o = clock.Now()
				}
				ss.Extra = [][]byte{binary.BigEndian.AppendUint64(nil, uint64(o.Unix()))}
				return base.EncryptTicket(cs, ss)
			}
			return cfg, nil
		}
	})
}

// A server bounding the chain: the age grows to the bound, the next probe
// past it finds the link refused and starts a new chain (about 0 s), which
// grows again. It never reads above the bound.
func TestResumptionChainBoundedServer(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	chainSteps(t, startBoundedServer(t, pki, clock), chainModule(t, pki), clock, []chainStep{
		{at: 0, age: 0},
		{at: time.Hour, age: time.Hour},
		{at: 30 * time.Hour, age: 30 * time.Hour},
		{at: 40 * time.Hour, age: 0}, // 40h > 36h: refused, restarted from this probe's full handshake
		{at: 41 * time.Hour, age: time.Hour},
		{at: 70 * time.Hour, age: 30 * time.Hour},
		{at: 77 * time.Hour, age: 0},
	})
}

// Off by default, and without a store nothing is kept to offer: no age.
func TestResumptionChainAbsent(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	for _, tt := range []struct {
		name     string
		m        *Module
		sessions *Sessions
	}{
		{"default module", testModule(t, pki, nil), NewSessions(SessionsOptions{})},
		{"no store", chainModule(t, pki), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 2 {
				r := Run(context.Background(), addr, "test", tt.m, tt.sessions, testLogger(t))
				if !r.Success {
					t.Fatal(r.Failure)
				}
				if r.Risks.ResumptionChainMaxAge != nil {
					t.Errorf("chain ages %v", r.Risks.ResumptionChainMaxAge)
				}
			}
		})
	}
}

// Behind a balancer a link refused by another backend than its own proves
// nothing: it is kept, and resumes on its own backend later, with its
// chain's age. Every connection of a probe goes to one backend: a, then b
// (which refuses a's link), then a again, within the store's window, so
// that a's key counts as still about.
func TestResumptionChainBehindBalancer(t *testing.T) {
	pki := testservers.NewPKI(t)
	bs := newFleetOf(t, pki, 2)
	var to atomic.Int32
	addr := balancer(t, bs, func() int { return int(to.Load()) })
	clock := newFakeClock()
	m := testModule(t, pki, func(m *Module) {
		m.Checks = ticketMechanisms
		m.TLSConfig.ServerName = "localhost"
		m.Risks = []Risk{RiskResumptionChain}
	})
	sessions := NewSessions(SessionsOptions{Now: clock.Now})
	start := clock.Now()
	for _, s := range []struct {
		at      time.Duration
		backend int32
		age     time.Duration
	}{
		{0, 0, 0},
		{5 * time.Minute, 1, 0}, // b resumes its own fresh session; a's link is kept
		{10 * time.Minute, 0, 10 * time.Minute},
	} {
		clock.set(start, s.at)
		to.Store(s.backend)
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("at %s: %s", s.at, r.Failure)
		}
		for _, mech := range ticketMechanisms {
			if got, ok := r.Risks.ResumptionChainMaxAge[mech]; !ok || got != s.age {
				t.Errorf("at %s on backend %d: %s chain age %s (reported %v), want %s", s.at, s.backend, mech, got, ok, s.age)
			}
		}
	}
}

// BenchmarkResumptionChainRoundTrips probes a Go server 40 ms away (20 ms
// each way) in the steady state, with and without the resumption_chain
// check, and reports the median probe in round trips: what the link offer
// adds to the critical path beside the replay.
func BenchmarkResumptionChainRoundTrips(b *testing.B) {
	const oneWay = 20 * time.Millisecond
	pki := testservers.NewPKI(b)
	// Go's unnamed tickets never let a probe qualify as one server; named
	// ones do, and the link is then offered beside the first offer.
	servers := map[string]string{
		"go":    testservers.DelayProxy(b, startGoServer(b, pki, nil), oneWay),
		"named": testservers.DelayProxy(b, startGoServer(b, pki, func(c *tls.Config) { nameTicketKey(c, bytes.Repeat([]byte{0x42}, 16), nil) }), oneWay),
	}
	for _, tt := range []struct {
		name, server string
		risks        []Risk
	}{
		{"go/without", "go", []Risk{}}, {"go/with", "go", []Risk{RiskResumptionChain}},
		{"named/without", "named", []Risk{}}, {"named/with", "named", []Risk{RiskResumptionChain}},
	} {
		far := servers[tt.server]
		b.Run(tt.name, func(b *testing.B) {
			m := testModule(b, pki, func(m *Module) { m.Risks = tt.risks })
			sessions := NewSessions(SessionsOptions{})
			for range 2 {
				Run(context.Background(), far, "bench", m, sessions, nil)
			}
			var wall []time.Duration
			for b.Loop() {
				r := Run(context.Background(), far, "bench", m, sessions, nil)
				if !r.Success {
					b.Fatal(r.Failure)
				}
				wall = append(wall, r.Duration)
			}
			slices.Sort(wall)
			b.ReportMetric(float64(wall[len(wall)/2])/float64(2*oneWay), "rtt")
		})
	}
}

// startSingleUseServer runs a Go server, on the test's clock, whose TLS
// 1.3 tickets resume once per instant of that clock: a probe (the clock
// stands still during one) that offers one ticket twice has one offer
// refused, as a single-use ticket would (OpenSSL's with tickets off and a
// shared cache, or with 0-RTT on), while a later probe may offer it again,
// as OpenSSL's second ticket of a full handshake could be (a Go server
// issues one, which the first offer spends). Its tickets, TLS 1.2 and 1.3,
// name one key, so that earlier probes tell one server and replays run
// beside the first offers.
func startSingleUseServer(t *testing.T, pki *testservers.PKI, clock *fakeClock) string {
	keyName := bytes.Repeat([]byte{0x53}, 16)
	var mu sync.Mutex
	used := map[string]time.Time{}
	return startGoServer(t, pki, func(cfg *tls.Config) {
		cfg.Time = clock.Now
		nameTicketKey(cfg, keyName, func(identity []byte, cs tls.ConnectionState) bool {
			if cs.Version != tls.VersionTLS13 {
				return true
			}
			mu.Lock()
			defer mu.Unlock()
			at, spent := used[string(identity)]
			used[string(identity)] = clock.Now()
			return !spent || !at.Equal(clock.Now())
		})
	})
}

// nameTicketKey makes cfg's tickets, TLS 1.2 and 1.3, start with the key
// name name, as OpenSSL's and F5's do, and resume those accept allows
// (all, when nil).
func nameTicketKey(cfg *tls.Config, name []byte, accept func(identity []byte, cs tls.ConnectionState) bool) {
	cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ticket, err := cfg.EncryptTicket(cs, ss)
		return append(slices.Clone(name), ticket...), err
	}
	cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		if !bytes.HasPrefix(identity, name) || accept != nil && !accept(identity, cs) {
			return nil, nil
		}
		return cfg.DecryptTicket(identity[len(name):], cs)
	}
}

// Single-use TLS 1.3 tickets: the chain link and the age replay never
// offer the same ticket at once (one would be refused), so every probe
// reads the chain growing and an accepted age, on the one-server path too.
func TestResumptionChainSingleUseTickets(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	addr := startSingleUseServer(t, pki, clock)
	for i, r := range chainEveryMinute(t, addr, chainModule(t, pki), clock, 5) {
		if _, ok := r.AcceptedMaxAge[MechanismPSK]; i > 0 && !ok {
			t.Errorf("at %dm: no accepted age for psk", i)
		}
	}
}

// chainEveryMinute probes addr n times a minute apart on the test's clock
// (within the one-server window), checks that the psk chain grows from the
// first probe on, and returns the results.
func chainEveryMinute(t *testing.T, addr string, m *Module, clock *fakeClock, n int) []Result {
	t.Helper()
	sessions := NewSessions(SessionsOptions{Now: clock.Now})
	start := clock.Now()
	var out []Result
	for i := range n {
		at := time.Duration(i) * time.Minute
		clock.set(start, at)
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("at %s: %s", at, r.Failure)
		}
		if got, ok := r.Risks.ResumptionChainMaxAge[MechanismPSK]; !ok || got != at {
			t.Errorf("at %s: psk chain age %s (reported %v), want %s", at, got, ok, at)
		}
		out = append(out, r)
	}
	return out
}

// Once earlier probes met one server, the chain's link is offered beside
// the first offer, off the path runRisks waits on. The server, on the
// test's clock, holds the PSK chain's first offer of each probe's fresh
// ticket until the probe has offered the link too (a ticket issued on a
// connection that resumed an older one: a link's), or 2 s passed.
func TestResumptionChainLinkBesideFirstOffer(t *testing.T) {
	pki := testservers.NewPKI(t)
	clock := newFakeClock()
	var mu sync.Mutex
	var firstLinkIssue time.Time
	offered := map[time.Time]chan struct{}{} // per probe: closed once a link was offered
	linkOffered := func(at time.Time) chan struct{} {
		c, ok := offered[at]
		if !ok {
			c = make(chan struct{})
			offered[at] = c
		}
		return c
	}
	var held, overlapped atomic.Int64
	name := bytes.Repeat([]byte{0x4c}, 16)
	addr := startGoServer(t, pki, func(base *tls.Config) {
		base.Time = clock.Now
		base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			var resumedOlder bool // this connection resumed a ticket of an earlier probe
			cfg := base.Clone()
			cfg.GetConfigForClient = nil
			cfg.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
				now := clock.Now()
				ss.Extra = [][]byte{binary.BigEndian.AppendUint64([]byte{0}, uint64(now.Unix()))}
				if resumedOlder && cs.Version == tls.VersionTLS13 {
					ss.Extra[0][0] = 1
					mu.Lock()
					if firstLinkIssue.IsZero() {
						firstLinkIssue = now
					}
					mu.Unlock()
				}
				ticket, err := base.EncryptTicket(cs, ss)
				return append(slices.Clone(name), ticket...), err
			}
			cfg.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
				if !bytes.HasPrefix(identity, name) {
					return nil, nil
				}
				ss, err := base.DecryptTicket(identity[len(name):], cs)
				if err != nil || ss == nil || len(ss.Extra) != 1 || len(ss.Extra[0]) != 9 {
					return nil, nil
				}
				now := clock.Now()
				issued := time.Unix(int64(binary.BigEndian.Uint64(ss.Extra[0][1:])), 0)
				resumedOlder = issued.Before(now)
				if cs.Version != tls.VersionTLS13 {
					return ss, nil
				}
				mu.Lock()
				hold := issued.Equal(now) && !firstLinkIssue.IsZero() && firstLinkIssue.Before(now)
				ch := linkOffered(now)
				if ss.Extra[0][0] == 1 {
					select {
					case <-ch:
					default:
						close(ch)
					}
				}
				mu.Unlock()
				if hold {
					held.Add(1)
					select {
					case <-ch:
						overlapped.Add(1)
					case <-time.After(2 * time.Second):
					}
				}
				return ss, nil
			}
			return cfg, nil
		}
	})
	// Every probe makes its full handshake, so that every probe's first
	// offer is of a ticket issued in it: the offer the hold looks for.
	m := chainModule(t, pki)
	m.FullHandshakeInterval = 0
	chainEveryMinute(t, addr, m, clock, 4)
	if held.Load() < 2 || overlapped.Load() != held.Load() {
		t.Errorf("the link was offered beside %d of %d held first offers, want all (at least 2)", overlapped.Load(), held.Load())
	}
}

// A link the server keeps resuming without issuing a successor (a TLS 1.2
// ticket OpenSSL resumes without renewal) is kept past MaxAge after its
// issue, for as long as it resumes; one that stops resuming goes MaxAge
// after it last did.
func TestChainLinkKeptWhileItResumes(t *testing.T) {
	const day = 24 * time.Hour
	for _, tt := range []struct {
		name    string
		resumed []time.Duration // when the link resumed, after its issue
		at      time.Duration   // when the next probe looks it up
		kept    bool
	}{
		{"within MaxAge of its issue", nil, 7 * day, true},
		{"past MaxAge of its issue, never resumed", nil, 9 * day, false},
		{"past MaxAge of its issue, resumed since", []time.Duration{4 * day, 7 * day}, 9 * day, true},
		{"past MaxAge of its last resumption", []time.Duration{4 * day}, 13 * day, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			now := t0
			s := NewSessions(SessionsOptions{Now: func() time.Time { return now }})
			link := &stored{obtained: t0}
			s.setChainLink("k", MechanismSessionTicket, link)
			for _, d := range tt.resumed {
				now = t0.Add(d)
				if got := s.chainLink("k", MechanismSessionTicket); got != link {
					t.Fatalf("at %v: link %v, want the kept one", d, got)
				}
				s.linkResumed("k", MechanismSessionTicket)
			}
			now = t0.Add(tt.at)
			if got := s.chainLink("k", MechanismSessionTicket); (got == link) != tt.kept {
				t.Errorf("at %v: link kept %v, want %v", tt.at, got == link, tt.kept)
			}
		})
	}
}

// A retry never offers a session that the early replay or the chain link
// is offering beside the first offer: behind a balancer found only in this
// probe, the backend a kept session belongs to is what the retries seek,
// and a single-use ticket offered twice at once has one offer refused.
func TestRetryCandidatesSpareOffersInFlight(t *testing.T) {
	const key = "k"
	own, replaying, linking, other := &stored{key: 1}, &stored{key: 2}, &stored{key: 3}, &stored{key: 4}
	for _, tt := range []struct {
		name string
		o    *chainOut
		want []*stored
	}{
		{"nothing in flight", &chainOut{}, []*stored{own, replaying, linking, other}},
		{"early replay in flight", &chainOut{early: &replayed{st: replaying}}, []*stored{own, linking, other}},
		{"chain link in flight", &chainOut{link: &linkOffer{link: linking}}, []*stored{own, replaying, other}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSessions(SessionsOptions{})
			for i, st := range []*stored{other, linking, replaying} { // newest last: perBackend lists newest first
				st.obtained = time.Now().Add(time.Duration(i) * time.Second)
				s.keepBackend(key, MechanismSessionTicket, st)
			}
			tt.o.check, tt.o.fresh = Check{Mechanism: MechanismSessionTicket}, own
			h := &handshaker{sessions: s, key: key}
			got := h.candidates(tt.o)
			if !slices.Equal(got, tt.want) {
				t.Errorf("candidates %v, want %v", keysOf(got), keysOf(tt.want))
			}
		})
	}
}

func keysOf(sts []*stored) []uint64 {
	var ks []uint64
	for _, st := range sts {
		ks = append(ks, st.key)
	}
	return ks
}
