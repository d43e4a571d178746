package integration

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

const (
	keysSeen12 = `tls_session_ticket_keys_seen{version="TLS 1.2"}`
	keysSeen13 = `tls_session_ticket_keys_seen{version="TLS 1.3"}`
)

func offersSeries(m probe.Mechanism, result string) string {
	return fmt.Sprintf(`tls_resumption_offers{mechanism=%q,result=%q}`, m, result)
}

func firstOfferSeries(m probe.Mechanism) string {
	return fmt.Sprintf(`tls_resumption_first_offer_resumed{mechanism=%q}`, m)
}

// nginxBackend is one backend of a fleet: its own process, so its own
// session cache, with TLS 1.3 on and the ticket key in keyPath.
func nginxBackend(t *testing.T, pki *testservers.PKI, keyPath string) *testservers.Server {
	t.Helper()
	testservers.Require(t, "nginx")
	return testservers.StartNginx(t, pki, fmt.Sprintf(
		"ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:1m; ssl_session_ticket_key %s;", keyPath))
}

// fleetOf starts n nginx backends with a key file each (or one shared file)
// behind HAProxy balancing with balance; it returns the balancer's address
// and the backends' key fingerprints.
func fleetOf(t *testing.T, pki *testservers.PKI, balance string, n int, sharedKey bool) (string, map[uint64]bool) {
	t.Helper()
	testservers.Require(t, "haproxy")
	dir := t.TempDir()
	fps := map[uint64]bool{}
	var backends []string
	for i := 0; i < n; i++ {
		path := filepath.Join(dir, fmt.Sprintf("backend%d.key", i))
		if sharedKey {
			path = filepath.Join(dir, "shared.key")
		}
		if !sharedKey || i == 0 {
			fps[keyFile(t, path)] = true
		}
		backends = append(backends, nginxBackend(t, pki, path).Addr)
	}
	return testservers.StartHAProxyTCPBalance(t, balance, backends...).Addr, fps
}

// Behind HAProxy over nginx backends with their own caches, every probe
// reports each mechanism resumed — the posture every backend has — and the
// backends' keys, however the balancer spreads the connections.
func TestFleetVerdictsAreStable(t *testing.T) {
	allResumed := map[string]float64{success: 1, sessionID: 1, ticket12: 1, psk: 1}
	cases := []struct {
		name     string
		balance  string
		backends int
		keys     int // tls_session_ticket_keys_active
		// warmup probes may still miss every backend: behind four the
		// verdict rests on the window, which needs one hit first.
		warmup int
		// oneBackend: no offer is ever refused.
		oneBackend bool
	}{
		{name: "roundrobin over two", balance: "roundrobin", backends: 2, keys: 2},
		{name: "leastconn over two", balance: "leastconn", backends: 2, keys: 2},
		{name: "roundrobin over four", balance: "roundrobin", backends: 4, keys: 4, warmup: 3},
		{name: "source: one backend answers", balance: "source", backends: 2, keys: 1, oneBackend: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			addr, fps := fleetOf(t, pki, c.balance, c.backends, false)
			p := newRunner(t, pki, nil)
			for i := 0; i < 20; i++ {
				o := p.probe(t, addr)
				if o.series[fingerprint] != 0 && !fps[uint64(o.series[fingerprint])] {
					t.Fatalf("probe %d: fingerprint %v is no backend's key", i, o.series[fingerprint])
				}
				if i < c.warmup {
					continue
				}
				want := with(allResumed, map[string]float64{rotations: 0})
				if c.oneBackend {
					want = with(want, map[string]float64{keysSeen12: 1, keysSeen13: 1, keysActive: 1})
					for _, m := range probe.Mechanisms {
						want[offersSeries(m, "refused")] = 0
						want[firstOfferSeries(m)] = 1
					}
				} else if i >= c.warmup+1 || c.warmup == 0 {
					want[keysActive] = float64(c.keys)
				}
				o.expect(t, want)
				if t.Failed() {
					t.Fatalf("probe %d of %s", i, c.name)
				}
			}
		})
	}
}

// The shipped tls12 module (TLS 1.2 only: session IDs and tickets) behind
// HAProxy round-robin over two nginx with their own keys. OpenSSL sends no
// TLS 1.2 ticket when it resumes, so no probe may see two tickets of one
// backend among its chains' own: the key-name length comes from a further
// ticket or from earlier probes, and every verdict holds.
func TestFleetTLS12OnlyVerdictsAreStable(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr, fps := fleetOf(t, pki, "roundrobin", 2, false)
	p := newRunner(t, pki, func(m *probe.Module) {
		m.Checks = []probe.Mechanism{probe.MechanismSessionID, probe.MechanismSessionTicket}
		m.TLSConfig.MaxVersion = "TLS12"
	})
	for i := 0; i < 20; i++ {
		o := p.probe(t, addr)
		if o.series[fingerprint] != 0 && !fps[uint64(o.series[fingerprint])] {
			t.Fatalf("probe %d: fingerprint %v is no backend's key", i, o.series[fingerprint])
		}
		want := map[string]float64{success: 1, sessionID: 1, ticket12: 1}
		if i >= 10 {
			// By now a probe met one backend twice, among its own
			// tickets and the kept ones, and the store keeps the length.
			want[`tls_session_ticket_info{format="stateless",key_name_bytes="16",version="TLS 1.2"}`] = 1
		}
		o.expect(t, want)
		if t.Failed() {
			t.Fatalf("probe %d:\n%s", i, o)
		}
	}
}

// Two backends sharing one key file: one key, and tickets of either
// backend resume on both.
func TestFleetSharedKeyReadsAsOneKey(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr, _ := fleetOf(t, pki, "roundrobin", 2, true)
	p := newRunner(t, pki, nil)
	for i := 0; i < 10; i++ {
		o := p.probe(t, addr)
		o.expect(t, map[string]float64{success: 1, ticket12: 1, psk: 1, keysSeen12: 1, keysSeen13: 1, keysActive: 1,
			firstOfferSeries(probe.MechanismSessionTicket): 1, firstOfferSeries(probe.MechanismPSK): 1})
		if t.Failed() {
			t.Fatalf("probe %d", i)
		}
	}
}

// fullHandshake makes one full TLS 1.2 handshake without tickets, which
// leaves a session in the server's cache.
func fullHandshake(pki *testservers.PKI, addr string) {
	cfg := &tls.Config{RootCAs: pki.Pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12, SessionTicketsDisabled: true}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg}
	if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
		c.Close()
	}
}

// flood makes full handshakes against addr until stop is closed.
func flood(pki *testservers.PKI, addr string, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					fullHandshake(pki, addr)
				}
			}
		}()
	}
	return &wg
}

// evictingProxy forwards connections to addr and, before every third one,
// makes n full handshakes there: in a small session cache they evict the
// sessions the probe just obtained, so that some of its own offers are
// refused, not only its replays of earlier probes' sessions.
func evictingProxy(t *testing.T, pki *testservers.PKI, addr string, n int) string {
	var conns atomic.Int64
	return testservers.ServeTCP(t, func(c net.Conn) {
		if conns.Add(1)%3 == 0 {
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() {
					for range n / 4 {
						fullHandshake(pki, addr)
					}
				})
			}
			wg.Wait()
		}
		up, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() {
			io.Copy(up, c)
			up.(*net.TCPConn).CloseWrite()
			close(done)
		}()
		io.Copy(c, up)
		c.Close()
		<-done
	})
}

// A single server that resumes only some of the time is not a balancer: a
// session cache too small for the sessions it is given (nginx's smallest,
// filled by other clients meanwhile), or TLS 1.3 tickets that are spent
// once used (0-RTT makes OpenSSL's tickets single-use; nginx turns that
// off with SSL_OP_NO_ANTI_REPLAY, s_server does not). Between the probes
// of the first, other sessions evict the last probe's, whose replay must
// then be refused and forgotten (no accepted age), not kept as another
// backend's; during the probes, other sessions (a flood, and handshakes
// made before every third connection) make the probe's own offers fail at
// times. With tickets on, session IDs are refused while tickets name one
// key. Its refusals show
// no other key, so no offer is repeated and no verdict leans on an earlier
// probe.
func TestPartialResumptionIsNotABalancer(t *testing.T) {
	cases := []struct {
		name       string
		directives string   // nginx's, or
		openssl    []string // s_server's arguments
		flood      bool
		want       map[string]float64
	}{
		{
			name:       "session cache too small",
			directives: "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_tickets off; ssl_session_cache shared:x:32k;",
			flood:      true,
		},
		{
			// Tickets on: one key is seen, while session IDs are
			// refused. No retries, not read as a balancer.
			name:       "session cache too small, tickets on",
			directives: "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:x:32k;",
			flood:      true,
			want:       map[string]float64{ticket12: 1, psk: 1, keysSeen12: 1, keysActive: 1},
		},
		{
			name:    "single-use TLS 1.3 tickets",
			openssl: []string{"-early_data"},
			want:    map[string]float64{psk: 1, keysSeen12: 1, keysSeen13: 0, firstOfferSeries(probe.MechanismPSK): 1},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			var srv *testservers.Server
			if c.openssl != nil {
				testservers.Require(t, "openssl")
				srv = testservers.StartOpenSSLQuiet(t, pki, c.openssl...)
			} else {
				srv = nginx(c.directives)(t, pki)
			}
			p := newRunner(t, pki, nil)
			addr := srv.Addr
			if c.flood {
				addr = evictingProxy(t, pki, srv.Addr, 100)
				stop := make(chan struct{})
				wg := flood(pki, srv.Addr, stop)
				defer wg.Wait()
				defer close(stop)
			}
			refusals := 0
			for i := 0; i < 10; i++ {
				if c.flood && i > 0 {
					// Enough other sessions to evict the last probe's
					// from the 32k cache: its replay must be refused.
					for range 100 {
						fullHandshake(pki, srv.Addr)
					}
				}
				o := p.probe(t, addr)
				if age, ok := o.series["tls_session_id_accepted_max_age_seconds"]; c.flood && ok {
					t.Errorf("probe %d: a session %vs old survived a flooded 32k cache: the case tests nothing", i, age)
				}
				o.expect(t, with(c.want, map[string]float64{success: 1}))
				for _, chk := range o.result.Checks {
					if chk.OffersResumed+chk.OffersRefused > 1 {
						t.Errorf("probe %d: %s offered %d times: retried as if behind a balancer", i, chk.Mechanism, chk.OffersResumed+chk.OffersRefused)
					}
					if chk.Recent {
						t.Errorf("probe %d: %s resumed by the window rule on a single server", i, chk.Mechanism)
					}
					if chk.OffersRefused > 0 && chk.Resumed {
						t.Errorf("probe %d: %s refused yet reported resumed", i, chk.Mechanism)
					}
					for _, r := range chk.Refusals {
						refusals++
						if r.OtherBackend {
							t.Errorf("probe %d: %s refusal read as another backend: %+v", i, chk.Mechanism, r)
						}
					}
				}
				if t.Failed() {
					t.Fatalf("probe %d:\n%s", i, o)
				}
			}
			t.Logf("%d refused offers in 10 probes", refusals)
			if c.flood && refusals == 0 {
				t.Error("no offer refused in 10 probes of a flooded 32k cache: the case tests nothing")
			}
		})
	}
}
