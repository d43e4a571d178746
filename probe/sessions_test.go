package probe

import (
	"fmt"
	"testing"
	"time"
)

func TestSessionsKeepSpreadOutAges(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewSessions(SessionsOptions{PerKind: 6, MaxAge: 8 * 24 * time.Hour, Now: func() time.Time { return now }})
	// One probe a minute for two days.
	for i := 0; i < 2*24*60; i++ {
		s.add("k", MechanismPSK, &stored{obtained: now})
		now = now.Add(time.Minute)
	}
	got := s.oldest("k", MechanismPSK)
	if len(got) != 6 {
		t.Fatalf("kept %d sessions, want 6", len(got))
	}
	if age := now.Sub(got[0].obtained); age < 47*time.Hour {
		t.Errorf("oldest kept session is %s old; the first one (48h) should survive", age)
	}
	// Ages spread out: each kept session at least twice as old as the next
	// younger one, roughly, except the two youngest.
	for i := 0; i+2 < len(got); i++ {
		older, younger := now.Sub(got[i].obtained), now.Sub(got[i+1].obtained)
		if older < younger*3/2 {
			t.Errorf("ages %s and %s are not spread out: %v", older, younger, ages(now, got))
		}
	}
}

func ages(now time.Time, ss []*stored) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		out = append(out, now.Sub(s.obtained).Round(time.Minute))
	}
	return out
}

func TestSessionsBounds(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewSessions(SessionsOptions{MaxTargets: 2, MaxAge: time.Hour, Now: func() time.Time { return now }})
	first := &stored{obtained: now}
	s.add("a", MechanismSessionID, first)
	s.add("b", MechanismSessionID, &stored{obtained: now})
	s.add("c", MechanismSessionID, &stored{obtained: now})
	if s.Len() != 2 || len(s.oldest("a", MechanismSessionID)) != 0 {
		t.Errorf("least recently used target not evicted: %d targets", s.Len())
	}
	now = now.Add(2 * time.Hour)
	if got := s.oldest("c", MechanismSessionID); len(got) != 0 {
		t.Errorf("sessions past MaxAge still offered: %d", len(got))
	}
	s.add("c", MechanismSessionID, first)
	s.forget("c", MechanismSessionID, first)
	if got := s.oldest("c", MechanismSessionID); len(got) != 0 {
		t.Errorf("forgotten session still offered")
	}
}

// Only a probe that obtained a session adds a target: looking up and
// forgetting sessions of 10 000 other targets (what failed probes do) evicts
// none, and the target least recently added to goes first.
func TestSessionsAdmitOnlyObtained(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewSessions(SessionsOptions{MaxTargets: 2, Now: func() time.Time { return now }})
	s.add("a", MechanismPSK, &stored{obtained: now})
	s.add("b", MechanismPSK, &stored{obtained: now})
	for i := range 10000 {
		key := fmt.Sprintf("[::1]:%d", i+1)
		if got := s.oldest(key, MechanismPSK); got != nil {
			t.Fatalf("%s: %d sessions never added", key, len(got))
		}
		s.forget(key, MechanismPSK, &stored{})
		if got := s.perBackend(key, MechanismPSK); got != nil {
			t.Fatalf("%s: %d backend sessions never kept", key, len(got))
		}
		if _, ok := s.resumedWithin(key, MechanismPSK); ok {
			t.Fatalf("%s: resumed within the window, never probed", key)
		}
	}
	s.oldest("a", MechanismPSK) // a lookup does not make a recent
	if s.Len() != 2 || len(s.oldest("a", MechanismPSK)) != 1 || len(s.oldest("b", MechanismPSK)) != 1 {
		t.Fatalf("lookups evicted a target with sessions: %d targets", s.Len())
	}
	s.add("c", MechanismPSK, &stored{obtained: now})
	if len(s.oldest("a", MechanismPSK)) != 0 || len(s.oldest("b", MechanismPSK)) != 1 || len(s.oldest("c", MechanismPSK)) != 1 {
		t.Error("adding c did not evict a, the target least recently added to")
	}
}

// Per backend key the newest session is kept, past MaxAge none; forgetting
// a session drops it there too; resumedWithin follows the window.
func TestSessionsPerBackend(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := NewSessions(SessionsOptions{MaxAge: time.Hour, ResumedWindow: 10 * time.Minute, Now: func() time.Time { return now }})
	a1 := &stored{obtained: now, key: 1}
	a2 := &stored{obtained: now.Add(time.Minute), key: 1}
	b := &stored{obtained: now.Add(2 * time.Minute), key: 2}
	for _, st := range []*stored{a2, a1, b, {obtained: now, key: 0}} {
		s.keepBackend("k", MechanismPSK, st)
	}
	if got := s.perBackend("k", MechanismPSK); len(got) != 2 || got[0] != b || got[1] != a2 {
		t.Fatalf("per backend %v, want b then the newer a", got)
	}
	s.forget("k", MechanismPSK, b)
	if got := s.perBackend("k", MechanismPSK); len(got) != 1 || got[0] != a2 {
		t.Errorf("after forgetting b: %v", got)
	}
	for i := range maxBackends + 4 {
		s.keepBackend("k", MechanismSessionTicket, &stored{obtained: now.Add(time.Duration(i) * time.Second), key: uint64(i + 1)})
	}
	if got := s.perBackend("k", MechanismSessionTicket); len(got) != maxBackends || got[len(got)-1].key != 5 {
		t.Errorf("kept %d backends, oldest key %d; want %d, the oldest dropped", len(got), got[len(got)-1].key, maxBackends)
	}

	if _, ok := s.resumedWithin("k", MechanismPSK); ok {
		t.Error("resumed within the window before any resumption")
	}
	s.markResumed("k", MechanismPSK)
	now = now.Add(10 * time.Minute)
	if ago, ok := s.resumedWithin("k", MechanismPSK); !ok || ago != 10*time.Minute {
		t.Errorf("at the window's edge: %s %v", ago, ok)
	}
	now = now.Add(time.Second)
	if _, ok := s.resumedWithin("k", MechanismPSK); ok {
		t.Error("still within the window past it")
	}
	now = now.Add(time.Hour)
	if got := s.perBackend("k", MechanismPSK); len(got) != 0 {
		t.Errorf("sessions past MaxAge kept: %v", got)
	}
}

// oneServer needs named evidence: a recent resumption, one backend key
// kept for both ticket mechanisms, and no probe within the window showing
// several.
func TestSessionsOneServer(t *testing.T) {
	tests := []struct {
		name string
		keep map[Mechanism][]uint64 // backend keys kept per mechanism, obtained now
		old  map[Mechanism][]uint64 // and obtained 2h ago (before a rotation)
		// resumedAgo: when a mechanism last resumed (0: never);
		// balancedAgo: when a probe last showed several backends.
		resumedAgo, balancedAgo time.Duration
		want                    bool
	}{
		{"one key, resumed", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}}, nil, time.Minute, 0, true},
		{"nothing kept", nil, nil, time.Minute, 0, false},
		{"never resumed", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}}, nil, 0, 0, false},
		{"resumed before the window", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}}, nil, 11 * time.Minute, 0, false},
		{"one version only", map[Mechanism][]uint64{MechanismSessionTicket: {7}}, nil, time.Minute, 0, false},
		{"two keys at one version", map[Mechanism][]uint64{MechanismSessionTicket: {7, 8}, MechanismPSK: {7}}, nil, time.Minute, 0, false},
		{"another key at the other version", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {8}}, nil, time.Minute, 0, false},
		{"unnamed tickets only", map[Mechanism][]uint64{MechanismSessionTicket: {0}}, nil, time.Minute, 0, false},
		{"a balancer within the window", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}}, nil, time.Minute, 5 * time.Minute, false},
		{"old key kept beside the current one", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}},
			map[Mechanism][]uint64{MechanismSessionTicket: {6}, MechanismPSK: {6}}, time.Minute, 0, true},
		{"only the old key's sessions", nil, map[Mechanism][]uint64{MechanismSessionTicket: {6}, MechanismPSK: {6}}, time.Minute, 0, false},
		{"a balancer before the window", map[Mechanism][]uint64{MechanismSessionTicket: {7}, MechanismPSK: {7}}, nil, time.Minute, 11 * time.Minute, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Unix(1_700_000_000, 0)
			now := start
			s := NewSessions(SessionsOptions{ResumedWindow: 10 * time.Minute, Now: func() time.Time { return now }})
			end := start.Add(time.Hour)
			for m, keys := range tt.keep {
				for _, k := range keys {
					s.keepBackend("k", m, &stored{obtained: end, key: k})
				}
			}
			for m, keys := range tt.old {
				for _, k := range keys {
					s.keepBackend("k", m, &stored{obtained: end.Add(-2 * time.Hour), key: k})
				}
			}
			if tt.balancedAgo > 0 {
				now = end.Add(-tt.balancedAgo)
				s.markBalanced("k")
			}
			if tt.resumedAgo > 0 {
				now = end.Add(-tt.resumedAgo)
				s.markResumed("k", MechanismSessionTicket)
			}
			now = end
			if got := s.oneServer("k"); got != tt.want {
				t.Errorf("oneServer = %v, want %v", got, tt.want)
			}
		})
	}
	var none *Sessions
	if none.oneServer("k") {
		t.Error("a nil store tells one server")
	}
}
