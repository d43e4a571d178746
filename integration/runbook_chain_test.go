package integration

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// chainFix is a claim of TLSResumptionChainUnbounded's fix, tried on a
// stepped clock (see steppedRunner): probes chainSteps apart on the
// exporter's clock and seconds apart on the server's, the operator's
// action (if any) before each later probe.
type chainFix struct {
	section, name string
	problem       agedServer // nil: the row is about the fix alone
	fixed         agedServer
	// stillFires says the runbook claims the action does not end the
	// chain: the chain outlives the alert's 7 days anyway.
	stillFires bool
	// want is what the last probe of the fixed server must show besides.
	want map[string]float64
}

// chainSteps take a chain past the alert's 7 days in two links, then past
// the 8 days the session store keeps a session it does not see resume: a
// TLS 1.2 ticket OpenSSL resumes without renewing stays the link from the
// first probe, and is kept while it resumes.
var chainSteps = []time.Duration{0, 4 * 24 * time.Hour, 7*24*time.Hour + 12*time.Hour, 9 * 24 * time.Hour}

const chainMaxAge = 7 * day

// TestRunbookResumptionChain runs runbookChainFixes.
func TestRunbookResumptionChain(t *testing.T) {
	for _, f := range runbookChainFixes() {
		t.Run(f.section+"/"+f.name, func(t *testing.T) {
			mechanisms := []probe.Mechanism{probe.MechanismSessionTicket, probe.MechanismPSK}
			if f.problem != nil {
				t.Run("problem", func(t *testing.T) {
					o := chainProbes(t, f.problem)
					for _, m := range mechanisms {
						if v, ok := o.series[chainAgeSeries(m)]; !ok || v <= chainMaxAge {
							t.Errorf("%s = %v (present %v), want above %d s\n%s", chainAgeSeries(m), v, ok, chainMaxAge, o)
						}
					}
				})
			}
			t.Run("fixed", func(t *testing.T) {
				o := chainProbes(t, f.fixed)
				o.expect(t, f.want)
				for _, m := range mechanisms {
					v, ok := o.series[chainAgeSeries(m)]
					if firing := ok && v > chainMaxAge; firing != f.stillFires {
						t.Errorf("%s = %v (present %v): firing %v, want %v\n%s", chainAgeSeries(m), v, ok, firing, f.stillFires, o)
					}
				}
			})
		})
	}
}

// chainProbes probes at chainSteps with the resumption_chain check and
// returns the last probe.
func chainProbes(t *testing.T, start agedServer) observation {
	t.Helper()
	pki := testservers.NewPKI(t)
	addr, between := start(t, pki)
	r, offset := steppedRunner(t, pki)
	var o observation
	for i, step := range chainSteps {
		if i > 0 && between != nil {
			between(t)
		}
		offset.Store(int64(step))
		o = r.probe(t, addr)
		o.expect(t, map[string]float64{success: 1})
	}
	return o
}

func runbookChainFixes() []chainFix {
	const section = "TLSResumptionChainUnbounded"
	return []chainFix{
		{section: section, name: "nginx ssl_session_tickets off, no ssl_session_cache",
			problem: plain(nginxAt("")), fixed: plain(nginxAt("ssl_session_tickets off;")),
			want: map[string]float64{ticket12: 0, psk: 0}},
		{section: section, name: "nginx ssl_session_ticket_key files rotated before every link do not end it",
			fixed: func(t *testing.T, pki *testservers.PKI) (string, func(*testing.T)) {
				dir := t.TempDir()
				cur, prev := filepath.Join(dir, "current.key"), filepath.Join(dir, "previous.key")
				writeRandKey(t, prev, "80")
				writeRandKey(t, cur, "80")
				srv := nginxWithKeys(t, pki, cur, prev)
				return srv.Addr, func(t *testing.T) { rotateNginxKeys(t, srv, cur, prev) }
			},
			stillFires: true, want: map[string]float64{ticket12: 1, psk: 1}},
	}
}
