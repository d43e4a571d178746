package integration

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

func chainAgeSeries(m probe.Mechanism) string {
	return `tls_resumption_chain_max_age_seconds{mechanism="` + string(m) + `"}`
}

// steppedRunner probes with the resumption_chain check on a store clock
// that runs offset ahead of real time, so that a test can step it by days
// while the server's own clock moves by seconds.
func steppedRunner(t *testing.T, pki *testservers.PKI) (*runner, *atomic.Int64) {
	r := newRunner(t, pki, func(m *probe.Module) { m.Risks = []probe.Risk{probe.RiskResumptionChain} })
	var offset atomic.Int64
	r.sessions = probe.NewSessions(probe.SessionsOptions{Now: func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }})
	r.withHistory(history.Options{})
	return r, &offset
}

// OpenSSL re-issues a TLS 1.3 ticket on every resumption (one that resumes
// again: checked by hand with s_client -sess_out/-sess_in), and resumes a
// TLS 1.2 ticket under its current key without renewing it, which stays the
// link. Neither bounds the chain by anything the exporter's clock moves:
// stepped by a day, the age follows it.
func TestResumptionChain(t *testing.T) {
	cases := []struct {
		name  string
		start func(*testing.T, *testservers.PKI) *testservers.Server
	}{
		{"openssl s_server", opensslServer()},
		{"nginx", nginx("ssl_protocols TLSv1.2 TLSv1.3;")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pki := testservers.NewPKI(t)
			srv := tc.start(t, pki)
			r, offset := steppedRunner(t, pki)
			for _, step := range []time.Duration{0, time.Hour, 24 * time.Hour, 3 * 24 * time.Hour} {
				offset.Store(int64(step))
				o := r.probe(t, srv.Addr)
				o.expect(t, map[string]float64{success: 1})
				for _, m := range []probe.Mechanism{probe.MechanismSessionTicket, probe.MechanismPSK} {
					got, ok := o.series[chainAgeSeries(m)]
					if !ok || got < step.Seconds() || got > (step+time.Minute).Seconds() {
						t.Errorf("at +%s: %s chain age %v s (reported %v), want %v s plus the test's seconds", step, m, got, ok, step.Seconds())
					}
				}
			}
		})
	}
}

// nginx's ssl_session_timeout, as OpenSSL applies it: a TLS 1.2 ticket
// keeps its session's start time, so that chain ends at the timeout and
// restarts; each TLS 1.3 resumption's ticket starts a new session whose
// timeout counts from then, so that chain outlives the timeout for as long
// as every link is resumed within it. Real time here: 2 s between probes,
// a 3 s timeout.
func TestResumptionChainSessionTimeout(t *testing.T) {
	pki := testservers.NewPKI(t)
	srv := nginx("ssl_protocols TLSv1.2 TLSv1.3;\nssl_session_timeout 3s;")(t, pki)
	r := newRunner(t, pki, func(m *probe.Module) { m.Risks = []probe.Risk{probe.RiskResumptionChain} })
	start := time.Now()
	var ages12, ages13 []float64
	for i := range 4 {
		if i > 0 {
			time.Sleep(2 * time.Second)
		}
		o := r.probe(t, srv.Addr)
		o.expect(t, map[string]float64{success: 1})
		for m, ages := range map[probe.Mechanism]*[]float64{probe.MechanismSessionTicket: &ages12, probe.MechanismPSK: &ages13} {
			a, ok := o.series[chainAgeSeries(m)]
			if !ok {
				t.Fatalf("probe %d: no %s", i, chainAgeSeries(m))
			}
			*ages = append(*ages, a)
		}
	}
	elapsed := time.Since(start).Seconds()
	t.Logf("over %.1f s: session_ticket chain ages %v, psk %v", elapsed, ages12, ages13)
	if last := ages13[len(ages13)-1]; last < 5 {
		t.Errorf("TLS 1.3 chain %v s old after %.1f s of 2-second links, want it past the 3 s timeout", last, elapsed)
	}
	for i, a := range ages12 {
		if a > 3.5 {
			t.Errorf("probe %d: TLS 1.2 chain %v s old, past the 3 s session timeout", i, a)
		}
	}
	// About [0, 2, 0, 2]: the second probe's link resumed the first's
	// session 2 s on, the third found it past the timeout and restarted.
	if ages12[1] < 1.5 {
		t.Errorf("TLS 1.2 chain %v s old at the second probe, want the 2 s since the first", ages12[1])
	}
	if ages12[2] >= 1 {
		t.Errorf("TLS 1.2 chain %v s old at the third probe, want a new chain: its session was 4 s old, past the 3 s timeout", ages12[2])
	}
}
