package probe

import (
	"context"
	"crypto/tls"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// A Go server rotating its ticket keys with SetSessionTicketKeys: its tickets
// carry no key name, so only replaying the exporter's own earlier sessions
// shows how long it keeps resuming them. The accepted age grows while the
// first key still decrypts and falls once it is dropped.
func TestAcceptedMaxAgeFollowsKeyRotation(t *testing.T) {
	pki := testservers.NewPKI(t)
	var mu sync.Mutex
	var keys [][32]byte
	key := func(b byte) (k [32]byte) { k[0] = b; return }
	addr := startGoServer(t, pki, func(c *tls.Config) {
		// Every connection gets a configuration with the keys in force
		// at that moment, as a server reloading its key files would.
		c.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			mu.Lock()
			defer mu.Unlock()
			cfg := c.Clone()
			cfg.GetConfigForClient = nil
			cfg.SetSessionTicketKeys(keys)
			return cfg, nil
		}
	})
	setKeys := func(ks ...byte) {
		mu.Lock()
		defer mu.Unlock()
		keys = nil
		for _, b := range ks {
			keys = append(keys, key(b))
		}
	}

	now := time.Unix(1_800_000_000, 0)
	sessions := NewSessions(SessionsOptions{Now: func() time.Time { return now }})
	m := testModule(t, pki, func(m *Module) { m.Checks = []Mechanism{MechanismSessionTicket, MechanismPSK} })

	steps := []struct {
		at     time.Duration
		keys   []byte
		maxAge time.Duration // 0: none accepted yet
	}{
		{0, []byte{1}, 0},
		{time.Hour, []byte{1}, time.Hour},
		{2 * time.Hour, []byte{2, 1}, 2 * time.Hour}, // new key encrypts, old still decrypts
		{3 * time.Hour, []byte{3, 2}, time.Hour},     // key 1 dropped: only the 2-hour-era session resumes
	}
	start := now
	for _, s := range steps {
		now = start.Add(s.at)
		setKeys(s.keys...)
		r := Run(context.Background(), addr, "test", m, sessions, testLogger(t))
		if !r.Success {
			t.Fatalf("at %s: %s", s.at, r.Failure)
		}
		for _, mech := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
			got, ok := r.AcceptedMaxAge[mech]
			if s.maxAge == 0 && ok {
				t.Errorf("at %s: %s accepted age %s before any earlier session existed", s.at, mech, got)
			}
			if s.maxAge != 0 && (!ok || got != s.maxAge) {
				t.Errorf("at %s: %s accepted age %s (present %v), want %s", s.at, mech, got, ok, s.maxAge)
			}
		}
	}
}
