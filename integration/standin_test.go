package integration

import (
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// standInMechanisms are the checks a stand-in may replace the full
// handshake of: all three. A TLS 1.2 ticket stands in only while the
// server resumes it without renewing it (OpenSSL-based servers, until a
// key rotation; never Go's, which renews every ticket).
var standInMechanisms = probe.Mechanisms

// clockedRunner probes with the default module (edited by edit) on a store
// whose clock runs offset ahead of real time, with the resumed window
// given (0: the store's default), so that a test steps the store by
// minutes while the server's clock moves by seconds.
func clockedRunner(t *testing.T, pki *testservers.PKI, window time.Duration, edit func(*probe.Module)) (*runner, *atomic.Int64) {
	t.Helper()
	r := newRunner(t, pki, edit)
	offset := new(atomic.Int64)
	r.sessions = probe.NewSessions(probe.SessionsOptions{
		ResumedWindow: window,
		Now:           func() time.Time { return time.Now().Add(time.Duration(offset.Load())) },
	})
	r.withHistory(history.Options{})
	return r, offset
}

// storeNow is the store's clock of a clockedRunner.
func storeNow(offset *atomic.Int64) time.Time { return time.Now().Add(time.Duration(offset.Load())) }

// clockedProbe probes, fails the test unless the probe succeeded, and
// returns the result with the store-clock interval it ran in.
func clockedProbe(t *testing.T, r *runner, offset *atomic.Int64, addr string, n int) (probe.Result, time.Time, time.Time) {
	t.Helper()
	from := storeNow(offset)
	o := r.probe(t, addr)
	to := storeNow(offset)
	if !o.result.Success {
		t.Fatalf("probe %d failed: %s\n%s", n, o.result.Failure, o)
	}
	return o.result, from, to
}

func mustCheck(t *testing.T, r probe.Result, m probe.Mechanism, n int) probe.Check {
	t.Helper()
	c, ok := r.Check(m)
	if !ok || !c.Completed {
		t.Fatalf("probe %d: %s check %+v, want one that completed", n, m, c)
	}
	return c
}

func fingerprints(r probe.Result) []uint64 {
	var fps []uint64
	for _, k := range r.KeyNames {
		fps = append(fps, k.Fingerprint)
	}
	slices.Sort(fps)
	return fps
}

// verdicts are a probe's answers that a stand-in must not change: each
// check's verdict, the versions, and the default risk checks' verdicts.
func verdicts(r probe.Result) string {
	var b strings.Builder
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%s resumed %v; ", c.Mechanism, c.Resumed)
	}
	for _, v := range slices.Sorted(maps.Keys(r.Versions)) {
		fmt.Fprintf(&b, "version %#x %v; ", v, r.Versions[v])
	}
	risk := func(p *bool) string {
		if p == nil {
			return "not judged"
		}
		return strconv.FormatBool(*p)
	}
	fmt.Fprintf(&b, "psk_without_dhe %s; ticketbleed %s; ticket_renewal %s; weaknesses %v",
		risk(r.Risks.PSKWithoutDHE), risk(r.Risks.Ticketbleed), risk(r.Risks.TicketRenewed12), r.Risks.TicketWeaknesses)
	return b.String()
}

// facts13 is what a probe reports of its TLS 1.3 tickets, but how many it
// received: lifetime hint, format, key-name length, max_early_data, and
// whether there were any.
func facts13(r probe.Result) probe.Tickets { return ticketFacts(r, probe.VersionTLS13) }

// facts12 is facts13 for the TLS 1.2 tickets: a stand-in ticket reports
// its full handshake's lifetime hint, format and key name.
func facts12(r probe.Result) probe.Tickets { return ticketFacts(r, probe.VersionTLS12) }

func ticketFacts(r probe.Result, v uint16) probe.Tickets {
	f := r.Tickets[v]
	f.Count, f.KeysSeen = min(f.Count, 1), min(f.KeysSeen, 1)
	return f
}

// sameTicketFacts fails the test when two probes' TLS 1.3 or TLS 1.2
// ticket facts or key names differ.
func sameTicketFacts(t *testing.T, what string, want, got probe.Result) {
	t.Helper()
	if w, g := facts13(want), facts13(got); w != g {
		t.Errorf("%s: TLS 1.3 tickets %+v, want the facts of %+v", what, g, w)
	}
	if w, g := facts12(want), facts12(got); w != g {
		t.Errorf("%s: TLS 1.2 tickets %+v, want the facts of %+v", what, g, w)
	}
	if wf, gf := fingerprints(want), fingerprints(got); !slices.Equal(wf, gf) {
		t.Errorf("%s: key names %v, want %v", what, gf, wf)
	}
}

type standInCase struct {
	name  string
	start func(*testing.T, *testservers.PKI) *testservers.Server
	// standIn is, per mechanism, whether the second probe's check stood
	// in, as observed on the server.
	standIn map[probe.Mechanism]bool
	// resumed is the verdict, per mechanism, as TestRealServers has it.
	resumed map[probe.Mechanism]bool
	// earlyData: the server's TLS 1.3 tickets allow 0-RTT.
	earlyData bool
}

func apache(cfg testservers.ApacheConfig) func(*testing.T, *testservers.PKI) *testservers.Server {
	return func(t *testing.T, pki *testservers.PKI) *testservers.Server {
		testservers.Require(t, "apache2")
		return testservers.StartApacheConfig(t, pki, cfg)
	}
}

var standInCases = []standInCase{
	{
		name:    "nginx shared session cache",
		start:   nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m;"),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
	},
	{
		// Debian's stock nginx.conf: ssl_session_cache none, so the
		// session ID never resumes and only the ticket checks stand in.
		name:    "nginx Debian stock",
		start:   nginx(testservers.DebianNginxSSL),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
	},
	{
		// 0-RTT on: the stand-in's new tickets carry max_early_data as
		// the full handshake's do.
		name:      "nginx shared session cache, early data",
		start:     nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m; ssl_early_data on;"),
		standIn:   map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed:   map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		earlyData: true,
	},
	{
		// Mozilla's "modern" profile. No TLS 1.2, so no TLS 1.2 ticket:
		// Sessions.oneServer wants a key named by the sessions of both
		// ticket mechanisms, so the store never tells one server and
		// the psk check never stands in.
		name:    "nginx TLS 1.3 only",
		start:   nginx("ssl_protocols TLSv1.3; ssl_session_cache shared:SSL:1m;"),
		standIn: map[probe.Mechanism]bool{probe.MechanismPSK: false},
		resumed: map[probe.Mechanism]bool{probe.MechanismPSK: true},
	},
	{
		// No TLS 1.3, so no PSK session: as above, neither the
		// session_id nor the session_ticket check ever stands in.
		name:    "nginx TLS 1.2 only",
		start:   nginx("ssl_protocols TLSv1.2; ssl_session_cache shared:SSL:1m;"),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true},
	},
	{
		// Debian's stock ssl.conf: tickets off, so no TLS 1.2 ticket and
		// stateful TLS 1.3 ones, none naming a key. Nothing tells the
		// probe it meets one server (Sessions.oneServer wants the same
		// key named by both ticket mechanisms), so nothing stands in:
		// every probe makes its full handshakes, as before stand-ins.
		name:    "apache stock ssl.conf",
		start:   apache(testservers.ApacheConfig{Global: testservers.DebianApacheSSLConf}),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: false, probe.MechanismPSK: true},
	},
	{
		// mod_ssl's own defaults (no Debian ssl.conf): SSLSessionCache
		// none, tickets on with a random key. The session ID never
		// resumes, so only the ticket checks have a stand-in.
		name:    "apache mod_ssl defaults",
		start:   apache(testservers.ApacheConfig{}),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
	},
	{
		name:    "haproxy defaults",
		start:   haproxy(""),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
	},
	{
		// Debian's stock haproxy.cfg: no-tls-tickets, a session cache.
		name: "haproxy Debian stock",
		start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
			testservers.Require(t, "haproxy")
			return testservers.StartHAProxyConfig(t, pki, testservers.HAProxyConfig{Global: testservers.DebianHAProxyGlobal})
		},
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: false, probe.MechanismPSK: true},
	},
	{
		name:    "openssl s_server",
		start:   opensslServer(),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
	},
	{
		// 0-RTT with OpenSSL's anti-replay: stateless, named TLS 1.2
		// tickets, but single-use stateful TLS 1.3 ones naming no key.
		// The store cannot tell one server from the PSK sessions, so
		// neither check stands in, and a single-use ticket is never
		// offered as a stand-in.
		name: "openssl s_server -early_data",
		start: func(t *testing.T, pki *testservers.PKI) *testservers.Server {
			testservers.Require(t, "openssl")
			return testservers.StartOpenSSLQuiet(t, pki, "-early_data")
		},
		standIn:   map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
		resumed:   map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: true, probe.MechanismPSK: true},
		earlyData: true,
	},
	{
		// Tickets off with a shared cache: session IDs resume, and the
		// TLS 1.3 tickets are stateful (a cache entry's ID, single-use
		// on OpenSSL) and name no key. As for Apache's stock ssl.conf,
		// earlier probes cannot tell one server, so neither check
		// stands in — the question whether a single-use stateful ticket
		// kept from the last probe still resumes does not arise; the
		// verdicts are the full-handshake path's.
		name:    "nginx tickets off, shared cache",
		start:   nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:SSL:1m;"),
		standIn: map[probe.Mechanism]bool{probe.MechanismSessionID: false, probe.MechanismSessionTicket: false, probe.MechanismPSK: false},
		resumed: map[probe.Mechanism]bool{probe.MechanismSessionID: true, probe.MechanismSessionTicket: false, probe.MechanismPSK: true},
	},
}

// Two probes a minute apart on one store: the second one's checks offer
// the first one's sessions instead of making full handshakes, and report
// what the first one did — verdicts, ticket facts of both versions, key
// names, and its full handshake with its time. The session_ticket check
// stands in too: nginx, Apache, HAProxy and s_server resume an unrenewed
// TLS 1.2 ticket of the key issuing now without renewing it. A run of the
// same server with full_handshake_interval 0 gives the same verdicts and
// ticket facts.
func TestStandInRealServers(t *testing.T) {
	for _, tc := range standInCases {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			defer func() {
				if t.Failed() {
					t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
				}
			}()
			r, offset := clockedRunner(t, pki, 0, nil)
			first, _, _ := clockedProbe(t, r, offset, srv.Addr, 1)
			offset.Add(int64(time.Minute))
			second, _, _ := clockedProbe(t, r, offset, srv.Addr, 2)
			for _, c := range second.Checks {
				c1 := mustCheck(t, first, c.Mechanism, 1)
				t.Logf("probe 2: %s stand-in %v resumed %v (probe 1: %v), full handshake %s at %s (probe 1: %s at %s)",
					c.Mechanism, c.StandIn, c.Resumed, c1.Resumed, c.FullHandshake, c.FullHandshakeAt, c1.FullHandshake, c1.FullHandshakeAt)
			}
			t.Logf("probe 2: %s; TLS 1.3 tickets %+v; TLS 1.2 tickets %+v", verdicts(second), second.Tickets[probe.VersionTLS13], second.Tickets[probe.VersionTLS12])
			for m, want := range tc.resumed {
				if c := mustCheck(t, first, m, 1); c.Resumed != want {
					t.Errorf("probe 1: %s resumed %v, want %v", m, c.Resumed, want)
				}
			}
			if verdicts(first) != verdicts(second) {
				t.Errorf("probe 2 verdicts\n  %s\nwant probe 1's\n  %s", verdicts(second), verdicts(first))
			}
			for m := range tc.standIn {
				c1, c2 := mustCheck(t, first, m, 1), mustCheck(t, second, m, 2)
				if c2.StandIn != tc.standIn[m] {
					t.Errorf("probe 2: %s stand-in %v, want %v", m, c2.StandIn, tc.standIn[m])
				}
				if !c2.StandIn {
					continue
				}
				if !c2.FullHandshakeAt.Equal(c1.FullHandshakeAt) || c2.FullHandshake != c1.FullHandshake {
					t.Errorf("probe 2: %s full handshake %s at %s, want probe 1's %s at %s", m, c2.FullHandshake, c2.FullHandshakeAt, c1.FullHandshake, c1.FullHandshakeAt)
				}
			}
			sameTicketFacts(t, "probe 2", first, second)
			if got := second.Tickets[probe.VersionTLS13].MaxEarlyData; (got > 0) != tc.earlyData {
				t.Errorf("probe 2: TLS 1.3 max_early_data %d, want 0-RTT allowed: %v", got, tc.earlyData)
			}
			for m, standIn := range tc.standIn {
				c1, c2 := mustCheck(t, first, m, 1), mustCheck(t, second, m, 2)
				if !standIn && !c2.FullHandshakeAt.After(c1.FullHandshakeAt) {
					t.Errorf("probe 2: %s check %+v, want its own full handshake", m, c2)
				}
			}

			// The full-handshake path on the same server.
			full, foff := clockedRunner(t, pki, 0, func(m *probe.Module) { m.FullHandshakeInterval = 0 })
			f1, _, _ := clockedProbe(t, full, foff, srv.Addr, 1)
			foff.Add(int64(time.Minute))
			f2, _, _ := clockedProbe(t, full, foff, srv.Addr, 2)
			for _, c := range f2.Checks {
				if c.StandIn {
					t.Errorf("full_handshake_interval 0: %s stood in", c.Mechanism)
				}
			}
			if verdicts(f2) != verdicts(second) {
				t.Errorf("verdicts with full handshakes\n  %s\nwith stand-ins\n  %s", verdicts(f2), verdicts(second))
			}
			sameTicketFacts(t, "full_handshake_interval 0", f1, f2)
			if w, g := facts13(f2), facts13(second); w != g {
				t.Errorf("TLS 1.3 tickets with stand-ins %+v, with full handshakes %+v", g, w)
			}
			if w, g := facts12(f2), facts12(second); w != g {
				t.Errorf("TLS 1.2 tickets with stand-ins %+v, with full handshakes %+v", g, w)
			}
			if wf, gf := fingerprints(f2), fingerprints(second); !slices.Equal(wf, gf) {
				t.Errorf("key names with stand-ins %v, with full handshakes %v", gf, wf)
			}
		})
	}
}

// A restart between the second and third probes (a new ticket key, an
// empty session cache) refuses the stand-ins: the third probe falls back
// to full handshakes within itself and reports what they found, with its
// own time. The fourth, a minute on, does not stand in yet: the second
// probe's sessions, under the key from before the restart, are still
// within the resumed window, so the store sees two keys and cannot tell
// one server from two backends (Sessions.oneServer). Once they leave it,
// the fifth probe, two minutes on, stands in on the fourth's sessions
// (within 150 s: a TLS 1.2 session stands in for at most half nginx's
// 300 s lifetime hint). The window is 3 minutes here; with the default
// 15 minutes, a restart or key rotation costs 15 minutes of full
// handshakes, not a wrong answer.
func TestStandInFallsBackAfterRestart(t *testing.T) {
	const window = 3 * time.Minute
	for _, tc := range standInCases {
		if !tc.standIn[probe.MechanismSessionID] && !tc.standIn[probe.MechanismPSK] {
			continue // nothing stands in: TestStandInRealServers shows it
		}
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			defer func() {
				if t.Failed() {
					t.Logf("%s logs:\n%s", srv.Name, srv.Logs())
				}
			}()
			r, offset := clockedRunner(t, pki, window, nil)
			logs := recordLogs(t, r)
			type probed struct {
				res      probe.Result
				from, to time.Time
				logs     string
			}
			var ps []probed
			step := func(by time.Duration) probed {
				offset.Add(int64(by))
				logs.Reset()
				res, from, to := clockedProbe(t, r, offset, srv.Addr, len(ps)+1)
				ps = append(ps, probed{res, from, to, logs.String()})
				return ps[len(ps)-1]
			}
			step(0)
			second := step(time.Minute)
			srv.Restart(t)
			third := step(time.Minute)
			fourth := step(time.Minute)
			fifth := step(window - time.Minute)
			for n, p := range ps[1:] {
				if verdicts(p.res) != verdicts(second.res) {
					t.Errorf("probe %d verdicts\n  %s\nwant probe 2's\n  %s", n+2, verdicts(p.res), verdicts(second.res))
				}
			}
			if w, g := facts13(second.res), facts13(third.res); w != g {
				t.Errorf("probe 3: TLS 1.3 tickets %+v, want the facts of probe 2's %+v", g, w)
			}
			if w, g := facts12(second.res), facts12(third.res); w != g {
				t.Errorf("probe 3: TLS 1.2 tickets %+v, want the facts of probe 2's %+v", g, w)
			}
			if f2, f3 := fingerprints(second.res), fingerprints(third.res); len(f3) != 1 || slices.Equal(f2, f3) {
				t.Errorf("probe 3: key names %v, want one new key after the restart (probe 2: %v)", f3, f2)
			}
			sameTicketFacts(t, "probe 4", third.res, fourth.res)
			sameTicketFacts(t, "probe 5", fourth.res, fifth.res)
			for _, m := range standInMechanisms {
				if !tc.standIn[m] {
					continue
				}
				c3, c4, c5 := mustCheck(t, third.res, m, 3), mustCheck(t, fourth.res, m, 4), mustCheck(t, fifth.res, m, 5)
				if c3.StandIn || c3.FullHandshakeAt.Before(third.from) || c3.FullHandshakeAt.After(third.to) {
					t.Errorf("probe 3: %s stand-in %v, full handshake at %s, want its own, within %s…%s", m, c3.StandIn, c3.FullHandshakeAt, third.from, third.to)
				}
				if !loggedLine(third.logs, `msg="The stand-in did not resume; making a full handshake"`, "mechanism="+string(m)+" ") {
					t.Errorf("probe 3: no log of %s's refused stand-in: the fallback was not what ran", m)
				}
				if c4.StandIn {
					t.Errorf("probe 4: %s stood in while the key from before the restart was within the window", m)
				}
				if !c5.StandIn || !c5.FullHandshakeAt.Equal(c4.FullHandshakeAt) || c5.FullHandshake != c4.FullHandshake {
					t.Errorf("probe 5: %s stand-in %v, full handshake %s at %s, want probe 4's %s at %s", m, c5.StandIn, c5.FullHandshake, c5.FullHandshakeAt, c4.FullHandshake, c4.FullHandshakeAt)
				}
			}
		})
	}
}

// recordLogs makes r log into the returned builder as well as the test's
// output; slog's handler serialises the writes.
func recordLogs(t *testing.T, r *runner) *strings.Builder {
	logs := &strings.Builder{}
	r.logger = slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.withHistory(history.Options{})
	return logs
}

// loggedLine reports whether one line of logs holds every one of parts.
func loggedLine(logs string, parts ...string) bool {
	for line := range strings.Lines(logs) {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

// serverCounts is what s_server counted over one probe: connections
// accepted, handshakes finished, and of those resumed (session cache hits,
// tickets included).
type serverCounts struct{ accepts, finished, hits int }

func (c serverCounts) full() int { return c.finished - c.hits }

// countProbe reads s_server's counters around one probe, taking away the
// status-page fetch that reads them afterwards (a full handshake).
func countProbe(t *testing.T, srv *testservers.Server, pki *testservers.PKI, do func()) serverCounts {
	t.Helper()
	before := testservers.OpenSSLStats(t, srv.Addr, pki)
	do()
	after := testservers.OpenSSLStats(t, srv.Addr, pki)
	return serverCounts{
		accepts:  after[testservers.OpenSSLAccepts] - before[testservers.OpenSSLAccepts] - 1,
		finished: after[testservers.OpenSSLFinished] - before[testservers.OpenSSLFinished] - 1,
		hits:     after[testservers.OpenSSLHits] - before[testservers.OpenSSLHits],
	}
}

// Counted by the server, openssl s_server's own counters: a steady-state
// probe (the third) of the default module completes no full handshake —
// five connections, four resumed (the three stand-ins and the offer of the
// psk stand-in's new ticket) and the unfinished psk_ke offer — where
// full_handshake_interval 0 completes three, one per check.
func TestStandInOpenSSLHandshakeCount(t *testing.T) {
	testservers.Require(t, "openssl")
	for _, tc := range []struct {
		name     string
		interval time.Duration
		full     int
		accepts  int // connections of the probe
	}{
		{"default module", probe.DefaultModule.FullHandshakeInterval, 0, 5},
		{"full_handshake_interval 0", 0, 3, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := testservers.StartOpenSSL(t, pki)
			// The counters are the server's and move with each
			// connection: a status fetch between two others is one full
			// handshake and nothing else.
			if idle := countProbe(t, srv, pki, func() { testservers.OpenSSLStats(t, srv.Addr, pki) }); idle != (serverCounts{1, 1, 0}) {
				t.Fatalf("one status fetch counted as %+v, want one full handshake", idle)
			}
			r, offset := clockedRunner(t, pki, 0, func(m *probe.Module) { m.FullHandshakeInterval = tc.interval })
			clockedProbe(t, r, offset, srv.Addr, 1)
			offset.Add(int64(time.Minute))
			clockedProbe(t, r, offset, srv.Addr, 2)
			offset.Add(int64(time.Minute))
			var third probe.Result
			got := countProbe(t, srv, pki, func() { third, _, _ = clockedProbe(t, r, offset, srv.Addr, 3) })
			t.Logf("probe 3: s_server counted %d connections, %d finished handshakes, %d resumed", got.accepts, got.finished, got.hits)
			if got.full() != tc.full || got.hits == 0 || got.accepts != tc.accepts {
				t.Errorf("probe 3: %d connections, %d full handshakes and %d resumed, want %d connections, %d full", got.accepts, got.full(), got.hits, tc.accepts, tc.full)
			}
			// The psk_ke offer: s_server accepts it and, refusing the
			// PSK without (EC)DHE, never finishes it.
			if unfinished := got.accepts - got.finished; unfinished != 1 {
				t.Errorf("probe 3: %d connections did not finish a handshake, want 1 (the psk_ke offer)", unfinished)
			}
			for _, m := range probe.Mechanisms {
				c := mustCheck(t, third, m, 3)
				if !c.Resumed || c.StandIn != (tc.interval > 0) {
					t.Errorf("probe 3: %s resumed %v, stand-in %v", m, c.Resumed, c.StandIn)
				}
			}
		})
	}
}

// Behind HAProxy over nginx backends with their own session caches. With
// a key per backend the store never tells one server: nothing stands in,
// and every verdict is the fleet's posture, all resumed. With the
// balancer's source hash one backend answers every connection: every check
// stands in from the second probe on, the TLS 1.2 ones (session_id,
// session_ticket) on sessions at most 150 s old — half nginx's 300 s
// lifetime hint —, so with probes a minute apart every third one (the
// fourth, the seventh) makes their full handshakes. With one ticket key
// shared by both backends the store takes them for one server: the psk
// and session_ticket stand-ins resume on either backend, every probe (the
// TLS 1.2 one within 150 s), unrenewed; a session-ID stand-in is refused
// when it meets the other backend's cache (the check then falls back). The
// session_id verdict there flips between probes — false whenever the
// offers land on the other backend — and it does so as often with
// full_handshake_interval 0 (5-9 of 16 probes over three runs, against
// 6-10 with stand-ins): nothing tells the backends apart, stand-ins or
// not, so it is not asserted per probe.
//
// With random balance and a key per backend nothing stands in, yet the
// session_id verdict is false now and then: a refused session ID names no
// backend, and when the probe's other connections all met one backend it
// cannot tell it is balanced, so it does not offer again. The
// full-handshake path does the same (full_handshake_interval 0: 5 false
// of 96 probes over 12 runs; the default module 1 of 96), so there it is
// asserted over the run: resumed on more than half the probes. Random
// balance may also send every connection of the first probe to one
// backend (seen once in some 20 runs): the store then takes the target
// for one server, as it must, and the next probe stands in, until a probe
// meets both backends; from then on nothing stands in, and by the end the
// key names must have named both. And the first probe may find a check
// not resumed: all its offers met the other backend (psk: 8 refused, seen
// twice in some 100 runs), with no earlier probe's window to rest on.
func TestStandInBehindBalancer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		balance   string
		sharedKey bool
		// standIn: the checks that stand in from the second probe on
		// (the TLS 1.2 ones within half the hint); none others
		// ever do, but a shared key's session_id may.
		standIn []probe.Mechanism
	}{
		{"roundrobin, a key per backend", "roundrobin", false, nil},
		{"random, a key per backend", "random", false, nil},
		{"source, a key per backend", "source", false, standInMechanisms},
		{"roundrobin, one shared key", "roundrobin", true, []probe.Mechanism{probe.MechanismSessionTicket, probe.MechanismPSK}},
		{"random, one shared key", "random", true, []probe.Mechanism{probe.MechanismSessionTicket, probe.MechanismPSK}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			addr, fps := fleetOf(t, pki, tc.balance, 2, tc.sharedKey)
			r, offset := clockedRunner(t, pki, 0, nil)
			const probes = 8
			idResumed := 0
			seen := map[uint64]bool{} // key names of the probes so far
			for n := 1; n <= probes; n++ {
				// Until a probe has met both backends (random balance
				// may send all of one probe's connections to one), the
				// store cannot tell a balancer from one server, and its
				// checks may stand in: as the full-handshake path, it
				// reports the one backend it met.
				metOne := !tc.sharedKey && tc.balance != "source" && len(seen) < 2
				res, _, _ := clockedProbe(t, r, offset, addr, n)
				offset.Add(int64(time.Minute))
				for _, fp := range fingerprints(res) {
					if !fps[fp] {
						t.Errorf("probe %d: key name %d is no backend's", n, fp)
					}
					seen[fp] = true
				}
				for _, c := range res.Checks {
					t.Logf("probe %d: %s stand-in %v resumed %v", n, c.Mechanism, c.StandIn, c.Resumed)
					flips := tc.sharedKey && c.Mechanism == probe.MechanismSessionID
					unsure := c.Mechanism == probe.MechanismSessionID && tc.balance == "random"
					if c.Mechanism == probe.MechanismSessionID && c.Resumed {
						idResumed++
					}
					// The first probe has no window to rest on, and
					// under random balance each of its offers (up
					// to 8) may meet the other backend: as in
					// TestFleetVerdictsAreStable's warmup.
					warmup := tc.balance == "random" && n == 1
					if !c.Completed || !c.Resumed && !flips && !unsure && !warmup {
						t.Errorf("probe %d: %s completed %v resumed %v, want the fleet's posture, resumed", n, c.Mechanism, c.Completed, c.Resumed)
					}
					// Full handshakes of the TLS 1.2 checks at
					// probes 1, 4, 7: 180 s on, a TLS 1.2 session
					// is past 150 s.
					mayStandIn := n > 1 && (c.Mechanism == probe.MechanismPSK || (n-1)%3 != 0)
					want := mayStandIn && slices.Contains(tc.standIn, c.Mechanism)
					if c.StandIn != want && !(flips && c.StandIn) && !(metOne && mayStandIn && c.StandIn) {
						t.Errorf("probe %d: %s stand-in %v, want %v", n, c.Mechanism, c.StandIn, want)
					}
				}
			}
			if !tc.sharedKey && idResumed <= probes/2 {
				t.Errorf("session_id resumed on %d of %d probes, want the fleet's posture on most", idResumed, probes)
			}
			if len(seen) != len(fps) && tc.balance != "source" {
				t.Errorf("key names over the run %v, want every backend's %v", seen, fps)
			}
		})
	}
}

// On s_server (tickets good for 7200 s, the TLS 1.2 ones too, so session
// IDs and TLS 1.2 tickets stand in for up to half of it: 1 h), probes every
// 10 minutes of the store's clock: each one stands in on the last one's
// sessions, reporting the first probe's full handshake, until the chain is
// as old as full_handshake_interval (1 h by default); that probe makes
// full handshakes again, and the next stands in on its sessions. This
// holds for all three checks: s_server never renews a TLS 1.2 ticket of
// its one key.
func TestStandInChainRenewsAtFullHandshakeInterval(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv := opensslServer()(t, pki)
	r, offset := clockedRunner(t, pki, 0, nil)
	every := 10 * time.Minute
	renewAt := int(probe.DefaultModule.FullHandshakeInterval/every) + 1 // the probe 1 h after the first
	var fullAt map[probe.Mechanism]time.Time
	for n := 1; n <= renewAt+1; n++ {
		res, from, to := clockedProbe(t, r, offset, srv.Addr, n)
		offset.Add(int64(every))
		wantStandIn := n != 1 && n != renewAt
		if n == 1 || n == renewAt {
			fullAt = map[probe.Mechanism]time.Time{}
		}
		for _, m := range standInMechanisms {
			c := mustCheck(t, res, m, n)
			if !c.Resumed || c.StandIn != wantStandIn {
				t.Errorf("probe %d: %s resumed %v stand-in %v, want resumed, stand-in %v", n, m, c.Resumed, c.StandIn, wantStandIn)
			}
			if !wantStandIn {
				if c.FullHandshakeAt.Before(from) || c.FullHandshakeAt.After(to) {
					t.Errorf("probe %d: %s full handshake at %s, want its own, within %s…%s", n, m, c.FullHandshakeAt, from, to)
				}
				fullAt[m] = c.FullHandshakeAt
			} else if !c.FullHandshakeAt.Equal(fullAt[m]) {
				t.Errorf("probe %d: %s full handshake at %s, want the chain's, at %s", n, m, c.FullHandshakeAt, fullAt[m])
			}
		}
	}
}

// nginx with ssl_session_timeout 3s, probed every 2 s of real time (the
// server's clock must move). nginx announces its session timeout as the
// TLS 1.2 lifetime hint, 3 s, and a TLS 1.2 session keeps its start time
// when resumed, so a session ID or an unrenewed ticket stands in for at
// most half of it, 1.5 s: every probe's session_id and session_ticket
// checks make their own full handshakes, and their stand-ins, 2 s old, are
// not offered at all (not offered and refused: no fallback is logged).
// Every TLS 1.3 resumption gets new tickets good for 3 s, so the psk chain
// of stand-ins carries on — which also shows the probes met one server, so
// the lifetime bound is what keeps the TLS 1.2 stand-ins back. The
// verdicts stay resumed throughout.
func TestStandInSessionTimeout(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv := nginx("ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m; ssl_session_timeout 3s;")(t, pki)
	r, offset := clockedRunner(t, pki, 0, nil)
	logs := recordLogs(t, r)
	for n := 1; n <= 4; n++ {
		if n > 1 {
			time.Sleep(2 * time.Second)
		}
		logs.Reset()
		res, from, to := clockedProbe(t, r, offset, srv.Addr, n)
		if hint := res.Tickets[probe.VersionTLS13].LifetimeHint; hint != 3 {
			t.Errorf("probe %d: TLS 1.3 lifetime hint %d, want nginx's 3 s", n, hint)
		}
		if hint := res.Tickets[probe.VersionTLS12].LifetimeHint; hint != 3 {
			t.Errorf("probe %d: TLS 1.2 lifetime hint %d, want nginx's 3 s session timeout", n, hint)
		}
		for _, m := range probe.Mechanisms {
			c := mustCheck(t, res, m, n)
			t.Logf("probe %d: %s stand-in %v resumed %v, full handshake at %s, offers resumed %d refused %d",
				n, m, c.StandIn, c.Resumed, c.FullHandshakeAt, c.OffersResumed, c.OffersRefused)
			wantStandIn := m == probe.MechanismPSK && n > 1
			if !c.Resumed || c.StandIn != wantStandIn {
				t.Errorf("probe %d: %s resumed %v stand-in %v, want resumed, stand-in %v", n, m, c.Resumed, c.StandIn, wantStandIn)
			}
			refused := loggedLine(logs.String(), `msg="The stand-in did not resume; making a full handshake"`, "mechanism="+string(m)+" ")
			if refused || c.OffersRefused != 0 || !c.FirstOfferResumed {
				t.Errorf("probe %d: %s stand-in offered and refused %v, offers refused %d, first offer resumed %v; want no offer refused",
					n, m, refused, c.OffersRefused, c.FirstOfferResumed)
			}
			if !wantStandIn && (c.FullHandshakeAt.Before(from) || c.FullHandshakeAt.After(to)) {
				t.Errorf("probe %d: %s full handshake at %s, want its own, within %s…%s", n, m, c.FullHandshakeAt, from, to)
			}
		}
	}
}

// nginx rotating its ticket key the way operators do (the new key file
// first, the old one kept to decrypt, reload), probed by two exporters in
// step: one with stand-ins, one with full_handshake_interval 0. A stand-in
// ticket under the old key still resumes after the rotation; what the
// probes report — verdicts, key names, the key history's series — must be
// the same on both. (No session cache here: session IDs never resume.)
//
// The psk check stands in on the second probe and on the first after a
// rotation — the old key still decrypts, and nginx answers with tickets
// under the new one — but not after: the sessions under the old key are
// within the resumed window, so the store sees two keys and cannot tell
// one server from two backends, for 15 minutes.
//
// The session_ticket check stands in on the second probe only. At a
// rotation nginx (OpenSSL) resumes the stand-in ticket of the old key but
// renews it, with a lifetime hint of 0: the check falls back to its full
// handshake in the same probe (logged), so the TLS 1.2 lifetime hint stays
// nginx's 300 s — reporting the renewal's 0 was a bug this test caught.
// After it nothing stands in here, as for the psk check, the store being
// unsure of one server; TestStandInRenewedTicketNginx shows that the
// renewal alone keeps the ticket back for full_handshake_interval.
func TestStandInKeyRotation(t *testing.T) {
	pki := testservers.NewPKI(t)
	dir := t.TempDir()
	srv, cur, prev, fp := nginxWithKeyFiles(t, pki, dir, "current")
	withStandIns, offA := clockedRunner(t, pki, 0, nil)
	logs := recordLogs(t, withStandIns)
	full, offB := clockedRunner(t, pki, 0, func(m *probe.Module) { m.FullHandshakeInterval = 0 })
	pskStandIn := []bool{false, true, true, false, false, false}
	ticketStandIn := []bool{false, true, false, false, false, false}
	for n := 1; n <= 6; n++ {
		if n == 3 || n == 5 {
			os.Rename(cur, prev)
			fp = keyFile(t, cur)
			srv.Reload(t)
		}
		logs.Reset()
		a, b := withStandIns.probe(t, srv.Addr), full.probe(t, srv.Addr)
		offA.Add(int64(time.Minute))
		offB.Add(int64(time.Minute))
		for _, m := range standInMechanisms {
			c := mustCheck(t, a.result, m, n)
			t.Logf("probe %d: %s stand-in %v resumed %v; key names %v / %v", n, m, c.StandIn, c.Resumed, fingerprints(a.result), fingerprints(b.result))
		}
		if c := mustCheck(t, a.result, probe.MechanismPSK, n); c.StandIn != pskStandIn[n-1] {
			t.Errorf("probe %d: psk stand-in %v, want %v", n, c.StandIn, pskStandIn[n-1])
		}
		if c := mustCheck(t, a.result, probe.MechanismSessionTicket, n); c.StandIn != ticketStandIn[n-1] {
			t.Errorf("probe %d: session_ticket stand-in %v, want %v", n, c.StandIn, ticketStandIn[n-1])
		}
		// Offered (and renewed) at the first rotation only: after it,
		// the renewal keeps the ticket from standing in.
		fellBack := loggedLine(logs.String(), `msg="The stand-in did not resume; making a full handshake"`, "mechanism=session_ticket ")
		if fellBack != (n == 3) {
			t.Errorf("probe %d: session_ticket stand-in offered and fallen back from %v, want %v", n, fellBack, n == 3)
		}
		sameAsFullHandshakes(t, n, a, b, fp)
	}
}

// sameAsFullHandshakes fails the test unless probe n of nginx with key
// files (fp the current one's fingerprint) reports the same with
// stand-ins (a) as with full_handshake_interval 0 (b): verdicts, TLS 1.2
// ticket facts with nginx's 300 s hint, key names, the key history's
// series, and the current key.
func sameAsFullHandshakes(t *testing.T, n int, a, b observation, fp uint64) {
	t.Helper()
	ha, hb := a.result.Tickets[probe.VersionTLS12].LifetimeHint, b.result.Tickets[probe.VersionTLS12].LifetimeHint
	if ha != hb || ha != 300 {
		t.Errorf("probe %d: TLS 1.2 lifetime hint %d with stand-ins, %d with full handshakes, want nginx's 300 on both", n, ha, hb)
	}
	if w, g := facts12(b.result), facts12(a.result); w != g {
		t.Errorf("probe %d: TLS 1.2 tickets with stand-ins %+v, with full handshakes %+v", n, g, w)
	}
	if verdicts(a.result) != verdicts(b.result) {
		t.Errorf("probe %d verdicts with stand-ins\n  %s\nwith full handshakes\n  %s", n, verdicts(a.result), verdicts(b.result))
	}
	if fa, fb := fingerprints(a.result), fingerprints(b.result); !slices.Equal(fa, fb) {
		t.Errorf("probe %d: key names with stand-ins %v, with full handshakes %v", n, fa, fb)
	}
	for _, k := range []string{fingerprint, rotations, keysActive, sessionID, ticket12, psk, hint12, hint13, named12, named13, success} {
		va, oka := a.series[k]
		vb, okb := b.series[k]
		if va != vb || oka != okb {
			t.Errorf("probe %d: %s = %v (present %v) with stand-ins, %v (present %v) with full handshakes", n, k, va, oka, vb, okb)
		}
	}
	if a.series[fingerprint] != float64(fp) {
		t.Errorf("probe %d: fingerprint %v, want the current key file's %d", n, a.series[fingerprint], fp)
	}
}

// After one key-file rotation of nginx, with a resumed window of 3
// minutes, probes a minute apart (store clock): the rotation probe's
// session_ticket stand-in is renewed and falls back. Once the old key has
// left the window the psk check stands in again (the store tells one
// server), but the TLS 1.2 ticket does not, for full_handshake_interval
// after the renewal: its offers would be renewed again, a connection more
// per probe. Past that interval (and a probe to make the store sure of
// one server again) it stands in again. On every probe the answers equal
// the full_handshake_interval 0 path's.
func TestStandInRenewedTicketNginx(t *testing.T) {
	const window = 3 * time.Minute
	pki := testservers.NewPKI(t)
	srv, cur, prev, fp := nginxWithKeyFiles(t, pki, t.TempDir(), "current")
	withStandIns, offA := clockedRunner(t, pki, window, nil)
	logs := recordLogs(t, withStandIns)
	full, offB := clockedRunner(t, pki, window, func(m *probe.Module) { m.FullHandshakeInterval = 0 })
	interval := probe.DefaultModule.FullHandshakeInterval
	for i, p := range []struct {
		after       time.Duration // store time since the last probe
		rotate      bool
		ticket, psk bool // stand-ins
		what        string
	}{
		{0, false, false, false, "the first probe"},
		{time.Minute, false, true, true, "one server, one key"},
		{time.Minute, true, false, true, "rotated: the old key decrypts, and renews"},
		{time.Minute, false, false, false, "two keys within the window"},
		{time.Minute, false, false, true, "the old key has left the window; the renewal holds the ticket back"},
		{time.Minute, false, false, true, "within the interval after the renewal"},
		// 61 minutes after the renewal.
		{interval - 2*time.Minute, false, false, false, "past the interval; nothing resumed within the window"},
		{time.Minute, false, true, true, "one server again, past the interval"},
	} {
		n := i + 1
		if p.rotate {
			os.Rename(cur, prev)
			fp = keyFile(t, cur)
			srv.Reload(t)
		}
		offA.Add(int64(p.after))
		offB.Add(int64(p.after))
		logs.Reset()
		a, b := withStandIns.probe(t, srv.Addr), full.probe(t, srv.Addr)
		if !a.result.Success || !b.result.Success {
			t.Fatalf("probe %d failed: %s / %s", n, a.result.Failure, b.result.Failure)
		}
		ct, cp := mustCheck(t, a.result, probe.MechanismSessionTicket, n), mustCheck(t, a.result, probe.MechanismPSK, n)
		t.Logf("probe %d (%s): session_ticket stand-in %v, psk stand-in %v", n, p.what, ct.StandIn, cp.StandIn)
		if ct.StandIn != p.ticket || cp.StandIn != p.psk {
			t.Errorf("probe %d (%s): session_ticket stand-in %v, psk stand-in %v; want %v, %v", n, p.what, ct.StandIn, cp.StandIn, p.ticket, p.psk)
		}
		fellBack := loggedLine(logs.String(), `msg="The stand-in did not resume; making a full handshake"`, "mechanism=session_ticket ")
		if fellBack != p.rotate {
			t.Errorf("probe %d (%s): session_ticket stand-in offered and fallen back from %v, want %v", n, p.what, fellBack, p.rotate)
		}
		sameAsFullHandshakes(t, n, a, b, fp)
	}
}

// An operator turns resumption off (tickets off, no session cache) and
// reloads nginx between the second and third probes, then on again before
// the fifth. The stand-ins kept from before must not make the third probe
// report what no longer is: it falls back, and every verdict turns false
// at once, as with full handshakes; once resumption is back, so are the
// verdicts. Two exporters probe in step, one with stand-ins, one with
// full_handshake_interval 0.
func TestStandInResumptionTurnedOff(t *testing.T) {
	testservers.Require(t, "nginx")
	pki := testservers.NewPKI(t)
	conf := filepath.Join(t.TempDir(), "resumption.conf")
	on := "ssl_session_cache shared:SSL:1m;\n"
	off := "ssl_session_cache off;\nssl_session_tickets off;\n"
	write := func(s string) {
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(on)
	srv := testservers.StartNginx(t, pki, "ssl_protocols TLSv1.2 TLSv1.3; include "+conf+";")
	withStandIns, offA := clockedRunner(t, pki, 0, nil)
	logs := recordLogs(t, withStandIns)
	full, offB := clockedRunner(t, pki, 0, func(m *probe.Module) { m.FullHandshakeInterval = 0 })
	for n := 1; n <= 6; n++ {
		logs.Reset()
		switch n {
		case 3:
			write(off)
			srv.Reload(t)
		case 5:
			write(on)
			srv.Reload(t)
		}
		a, b := withStandIns.probe(t, srv.Addr), full.probe(t, srv.Addr)
		offA.Add(int64(time.Minute))
		offB.Add(int64(time.Minute))
		resuming := n < 3 || n > 4
		for _, m := range probe.Mechanisms {
			c := mustCheck(t, a.result, m, n)
			t.Logf("probe %d: %s stand-in %v resumed %v recent %v", n, m, c.StandIn, c.Resumed, c.Recent)
			if c.Resumed != resuming {
				t.Errorf("probe %d: %s resumed %v, want %v", n, m, c.Resumed, resuming)
			}
			// Only the second probe stands in: the third's stand-ins are
			// refused (the session_ticket one too: tickets off), and
			// after the reloads nginx's tickets name a new key each
			// time, two keys within the window.
			if c.StandIn != (n == 2) {
				t.Errorf("probe %d: %s stand-in %v, want %v", n, m, c.StandIn, n == 2)
			}
			refused := loggedLine(logs.String(), `msg="The stand-in did not resume; making a full handshake"`, "mechanism="+string(m)+" ")
			if refused != (n == 3) {
				t.Errorf("probe %d: %s stand-in offered and refused %v, want %v", n, m, refused, n == 3)
			}
		}
		if verdicts(a.result) != verdicts(b.result) {
			t.Errorf("probe %d verdicts with stand-ins\n  %s\nwith full handshakes\n  %s", n, verdicts(a.result), verdicts(b.result))
		}
	}
}
