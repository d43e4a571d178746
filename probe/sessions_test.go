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
