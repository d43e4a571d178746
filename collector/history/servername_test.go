package history

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Virtual hosts on one address, told apart by server name, keep one
// history each: their keys neither read as one pool nor as rotations of
// one another, in memory, in the journal and in the snapshot.
func TestHistoryPerServerName(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	path := filepath.Join(t.TempDir(), "history.json")
	h := openHistory(t, path, Options{ActiveWindow: 5 * time.Minute, Now: clock.Now})
	probes := []struct {
		at         time.Duration
		serverName string
		key        string
		wantActive int
		wantSince  time.Duration
	}{
		{0, "", "HOST", 1, 0},
		{time.Minute, "a.example", "A", 1, time.Minute},
		{2 * time.Minute, "b.example", "B", 1, 2 * time.Minute},
		{3 * time.Minute, "a.example", "A", 1, time.Minute},
		{4 * time.Minute, "", "HOST", 1, 0},
	}
	for _, p := range probes {
		clock.Set(start.Add(p.at))
		st, err := h.ObserveDurable(context.Background(), "t:443", "tls", p.serverName, keys(p.key))
		if err != nil {
			t.Fatal(err)
		}
		if st.ActiveKeys != p.wantActive || st.Rotations != 0 || !st.Since.Equal(start.Add(p.wantSince)) {
			t.Errorf("at %v server name %q: %d active keys, %d rotations, since %v; want %d, 0, %v",
				p.at, p.serverName, st.ActiveKeys, st.Rotations, st.Since.Sub(start), p.wantActive, p.wantSince)
		}
	}
	if n := len(h.snapshot().Histories); n != 3 {
		t.Fatalf("%d histories, want 3 (one per server name)", n)
	}
	// The journal alone (no Save yet), then the snapshot, bring back the
	// three histories under their server names.
	for _, save := range []bool{false, true} {
		if save {
			if err := h.Save(); err != nil {
				t.Fatal(err)
			}
		}
		r := New(Options{Now: clock.Now})
		if err := r.ReadFile(copyFiles(t, path)); err != nil {
			t.Fatal(err)
		}
		requireSameFacts(t, r, h)
		for _, sn := range []string{"", "a.example", "b.example"} {
			if _, ok := r.byKey[historyKey{"t:443", "tls", sn}]; !ok {
				t.Errorf("saved=%v: no history for server name %q after reading", save, sn)
			}
		}
	}
}

// Files written before server names were kept (history file version 2,
// journal version 1) are read as histories of the target's own host: the
// empty server name, which a probe sending the target's host continues.
func TestReadOldFormatsAsTargetHost(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.json")
	const v2 = `{"version":2,"journal_seq":1,"histories":[` +
		`{"target":"up:443","module":"tls","since":"2025-03-01T11:00:00Z","last_probe":"2025-03-01T11:50:00Z","rotations":0,"last_rotation_interval_seconds":0,` +
		`"keys":[{"fingerprint":7,"first_seen":"2025-03-01T11:10:00Z","last_seen":"2025-03-01T11:50:00Z"}]}]}`
	const j1 = `{"format":"` + journalFormat + `","version":1}` + "\n" +
		`{"seq":2,"op":"keys","target":"new:443","module":"tls","at":"2025-03-01T11:55:00Z","since":"2025-03-01T11:55:00Z","seen":[9]}` + "\n"
	if err := os.WriteFile(path, []byte(v2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+journalSuffix, []byte(j1), 0o600); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Now: newTestClock().Now})
	if err := h.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	for target, since := range map[string]string{"up:443": "2025-03-01T11:00:00Z", "new:443": "2025-03-01T11:55:00Z"} {
		hist, ok := h.byKey[historyKey{target, "tls", ""}]
		if !ok {
			t.Errorf("%s: no history under the empty server name", target)
			continue
		}
		if got := hist.since.Format(time.RFC3339); got != since {
			t.Errorf("%s: since %s, want %s", target, got, since)
		}
	}
	if st := h.Observe("up:443", "tls", nil); st.Since.Format(time.RFC3339) != "2025-03-01T11:00:00Z" || !st.HasKeys {
		t.Errorf("a probe of up:443's own host got %+v, want the history read from the file", st)
	}
}
