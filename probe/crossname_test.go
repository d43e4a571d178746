package probe

import (
	"context"
	"crypto/tls"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// otherName is the second virtual host of the cross-name tests.
const otherName = "other.example"

// Cross-name offers against Go servers: one ticket key for every name
// (stock crypto/tls: it does not bind tickets to the SNI) resumes under
// the other name; a key per name (GetConfigForClient with its own
// SetSessionTicketKeys) does not. Go servers keep no session IDs, so that
// mechanism has nothing to offer and stays absent.
func TestCrossNamesGoServers(t *testing.T) {
	pki := testservers.NewPKI(t)
	perName := func(cfg *tls.Config) {
		base := cfg.Clone()
		keys := map[string][32]byte{testservers.ServerName: {1}, otherName: {2}}
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			c.SetSessionTicketKeys([][32]byte{keys[hi.ServerName]})
			return c, nil
		}
	}
	// The other name asks for a client certificate; the target's does not.
	clientAuth := func(cfg *tls.Config) {
		base := cfg.Clone()
		cfg.GetConfigForClient = func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
			c := base.Clone()
			if hi.ServerName == otherName {
				c.ClientAuth = tls.RequestClientCert
			}
			return c, nil
		}
	}
	tests := []struct {
		name       string
		configure  func(*tls.Config)
		want       map[Mechanism]bool
		clientAuth *bool // nil: no name resumed, nothing to judge
	}{
		{"one key for all names", nil, map[Mechanism]bool{MechanismSessionTicket: true, MechanismPSK: true}, new(false)},
		{"a key per name", perName, map[Mechanism]bool{MechanismSessionTicket: false, MechanismPSK: false}, nil},
		{"one key, the other name asks for a certificate", clientAuth, map[Mechanism]bool{MechanismSessionTicket: true, MechanismPSK: true}, new(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startGoServer(t, pki, tt.configure)
			m := testModule(t, pki, func(m *Module) { m.CrossNames = []string{otherName} })
			r := Run(context.Background(), addr, "test", m, nil, testLogger(t))
			if !r.Success {
				t.Fatal(r.Failure)
			}
			if len(r.Risks.CrossNameAccepted) != len(tt.want) {
				t.Errorf("cross-name verdicts %v, want %v", r.Risks.CrossNameAccepted, tt.want)
			}
			if got := r.Risks.CrossNameClientAuth; fmtBool(got) != fmtBool(tt.clientAuth) {
				t.Errorf("cross-name client auth %s, want %s", fmtBool(got), fmtBool(tt.clientAuth))
			}
			for mech, want := range tt.want {
				if got, ok := r.Risks.CrossNameAccepted[mech]; !ok || got != want {
					t.Errorf("%s: cross-name accepted %v (judged %v), want %v", mech, got, ok, want)
				}
			}
		})
	}
}

// Without cross_names the check makes no offer and publishes nothing.
func TestCrossNamesOffByDefault(t *testing.T) {
	pki := testservers.NewPKI(t)
	addr := startGoServer(t, pki, nil)
	r := Run(context.Background(), addr, "test", testModule(t, pki, nil), nil, testLogger(t))
	if r.Risks.CrossNameAccepted != nil {
		t.Errorf("cross-name verdicts %v without cross_names", r.Risks.CrossNameAccepted)
	}
}

func TestValidateCrossNames(t *testing.T) {
	tests := []struct {
		names []string
		ok    bool
	}{
		{nil, true},
		{[]string{"a.example", "b.example"}, true},
		{[]string{""}, false},
		{[]string{"a b"}, false},
		{[]string{"a/b"}, false},
		{[]string{"a.example", "a.example"}, false},
		{[]string{"1", "2", "3", "4", "5", "6", "7", "8", "9"}, false},
	}
	for _, tt := range tests {
		if err := ValidateCrossNames(tt.names); (err == nil) != tt.ok {
			t.Errorf("ValidateCrossNames(%q) = %v, want ok %v", tt.names, err, tt.ok)
		}
	}
}
