package history

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// testClock is a settable wall clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// key returns the KeyName a probe reports for a ticket key called name.
func key(name string) probe.KeyName {
	return probe.KeyName{Fingerprint: probe.Fingerprint([]byte(name)), Tickets: 1}
}

func keys(names ...string) []probe.KeyName {
	ks := make([]probe.KeyName, len(names))
	for i, n := range names {
		ks[i] = key(n)
	}
	return ks
}

// step is one probe in a scenario: at offset from the scenario's start the
// probe saw keys, and the history should then publish want.
type step struct {
	at   time.Duration
	keys []probe.KeyName
	want KeyState
}

// runScenario feeds steps to a fresh history with opts and checks every
// published state.
func runScenario(t *testing.T, opts Options, steps []step) {
	t.Helper()
	clock := newTestClock()
	start := clock.Now()
	opts.Now = clock.Now
	h := New(opts)
	seenKey := false
	for i, s := range steps {
		clock.Set(start.Add(s.at))
		got := h.Observe("example.com:443", "tls", s.keys)
		want := s.want
		// The history starts with the first probe that sees a key; the
		// scenarios that have keys show them from the start.
		seenKey = seenKey || len(s.keys) > 0
		if seenKey {
			want.Since = start
		}
		if got != want {
			t.Fatalf("step %d at +%s, keys %v:\n got %+v\nwant %+v", i, s.at, s.keys, got, want)
		}
	}
}

func TestKeyHistoryScenarios(t *testing.T) {
	start := newTestClock().Now()
	at := func(d time.Duration) time.Time { return start.Add(d) }
	// active is the state with n active keys, the newest and oldest first
	// seen at the given offsets, and no rotation.
	active := func(n int, newest, oldest time.Duration) KeyState {
		return KeyState{HasKeys: true, ActiveKeys: n, NewestActiveFirstSeen: at(newest), OldestActiveFirstSeen: at(oldest)}
	}
	// rotated is st after n rotations, the last one lasting last.
	rotated := func(st KeyState, n int, last time.Duration) KeyState {
		st.Rotations, st.LastRotationInterval = n, last
		return st
	}

	tests := []struct {
		name  string
		opts  Options
		steps func() []step
	}{
		{
			name: "steady single key",
			opts: Options{ActiveWindow: 15 * time.Minute},
			steps: func() []step {
				var ss []step
				for m := time.Duration(0); m <= 6*time.Hour; m += time.Minute {
					ss = append(ss, step{at: m, keys: keys("A"), want: active(1, 0, 0)})
				}
				return ss
			},
		},
		{
			// One key per period, probed every step: key i is seen from
			// i*period to (i+1)*period-step. Its predecessor becomes
			// inactive window after its last sighting, which confirms
			// the rotation and moves the oldest active key forward.
			name: "rotation every 10m, window 2m",
			opts: Options{ActiveWindow: 2 * time.Minute},
			steps: func() []step {
				const period, window, every = 10 * time.Minute, 2 * time.Minute, time.Minute
				var ss []step
				for m := time.Duration(0); m < 30*period; m += every {
					i := m / period
					cur := i * period
					want := active(1, cur, cur)
					prevLast := cur - every
					if i > 0 && m-prevLast < window {
						want.OldestActiveFirstSeen = at(cur - period)
						want.ActiveKeys = 2
						want.Rotations = int(i) - 1
					} else {
						want.Rotations = int(i)
					}
					if want.Rotations > 0 {
						want.LastRotationInterval = period
					}
					ss = append(ss, step{at: m, keys: keys(fmt.Sprint("K", int(i))), want: want})
				}
				return ss
			},
		},
		{
			name: "two alternating keys are not rotations",
			opts: Options{ActiveWindow: 15 * time.Minute},
			steps: func() []step {
				ss := []step{{at: 0, keys: keys("A"), want: active(1, 0, 0)}}
				for m := time.Minute; m <= 8*time.Hour; m += time.Minute {
					name := "B"
					if m/time.Minute%2 == 0 {
						name = "A"
					}
					ss = append(ss, step{at: m, keys: keys(name), want: active(2, time.Minute, 0)})
				}
				return ss
			},
		},
		{
			// A balancer whose backends hold A and B; backend A rotates
			// to C at switchAt. Only A was replaced.
			name: "balancer key set A,B -> B,C",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				const switchAt, window = 30 * time.Minute, 5 * time.Minute
				var ss []step
				for m := time.Duration(0); m <= 2*time.Hour; m += time.Minute {
					s := step{at: m, keys: keys("A", "B"), want: active(2, 0, 0)}
					if m >= switchAt {
						s.keys = keys("B", "C")
						s.want.NewestActiveFirstSeen = at(switchAt)
						s.want.ActiveKeys = 3
						if m-(switchAt-time.Minute) >= window { // A inactive
							s.want.ActiveKeys = 2
							s.want.Rotations = 1
							s.want.LastRotationInterval = switchAt
						}
					}
					ss = append(ss, s)
				}
				return ss
			},
		},
		{
			// Backend A leaves the pool; an hour later B rotates to C.
			// C replaced B, not A: the probe after A's last sighting
			// showed only B.
			name: "key that went out of view is not replaced by a later key",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				const window, rotateAt = 5 * time.Minute, time.Hour + time.Minute
				both := active(2, 0, 0)
				onlyB := active(1, 0, 0)
				bAndC := active(2, rotateAt, 0)
				onlyC := rotated(active(1, rotateAt, rotateAt), 1, rotateAt)
				ss := []step{{at: 0, keys: keys("A", "B"), want: both}}
				for m := time.Minute; m < rotateAt; m += time.Minute {
					want := both
					if m >= window {
						want = onlyB
					}
					ss = append(ss, step{at: m, keys: keys("B"), want: want})
				}
				for m := rotateAt; m <= rotateAt+time.Hour; m += time.Minute {
					want := bAndC
					if m-(rotateAt-time.Minute) >= window {
						want = onlyC
					}
					ss = append(ss, step{at: m, keys: keys("C"), want: want})
				}
				return ss
			},
		},
		{
			// The target is down (or shows no named keys) for longer
			// than the window and comes back with another key, as nginx
			// does after a restart: a rotation.
			name: "new key after an outage is a rotation",
			opts: Options{ActiveWindow: 15 * time.Minute},
			steps: func() []step {
				const downAt, upAt = 10 * time.Minute, 2 * time.Hour
				var ss []step
				a := active(1, 0, 0)
				for m := time.Duration(0); m < downAt; m += time.Minute {
					ss = append(ss, step{at: m, keys: keys("A"), want: a})
				}
				for m := downAt; m < upAt; m += time.Minute {
					ss = append(ss, step{at: m, want: a})
				}
				for m := upAt; m < upAt+time.Hour; m += time.Minute {
					ss = append(ss, step{at: m, keys: keys("B"), want: rotated(active(1, upAt, upAt), 1, upAt)})
				}
				return ss
			},
		},
		{
			// Two keys seen in the same probe overlap: the old one was
			// seen at the new one's first sighting, so it was not replaced.
			name: "overlapping keys are not a rotation",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				return []step{
					{at: 0, keys: keys("A"), want: active(1, 0, 0)},
					{at: time.Minute, keys: keys("B", "A"), want: active(2, time.Minute, 0)},
					{at: 2 * time.Minute, keys: keys("B"), want: active(2, time.Minute, 0)},
					{at: 20 * time.Minute, keys: keys("B"), want: active(1, time.Minute, time.Minute)},
				}
			},
		},
		{
			name: "no named keys at all",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				var ss []step
				for m := time.Duration(0); m <= time.Hour; m += 10 * time.Minute {
					ss = append(ss, step{at: m})
				}
				return ss
			},
		},
		{
			// The target stops showing named keys (outage, unnamed
			// tickets): the state stays that of the last sighting instead
			// of dropping to 0 keys, and a key that comes back keeps its
			// first sighting.
			name: "empty observations keep the last keys",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				both := active(2, time.Minute, 0)
				ss := []step{
					{at: 0, keys: keys("A"), want: active(1, 0, 0)},
					{at: time.Minute, keys: keys("A", "B"), want: both},
				}
				for m := 2 * time.Minute; m <= 3*time.Hour; m += time.Minute {
					ss = append(ss, step{at: m, want: both})
				}
				ss = append(ss, step{at: 3*time.Hour + time.Minute, keys: keys("A"), want: active(1, 0, 0)})
				return ss
			},
		},
		{
			// A key that comes back after its successor took over is the
			// same key: its first sighting is kept.
			name: "key reappearing after a rotation keeps its first sighting",
			opts: Options{ActiveWindow: 2 * time.Minute},
			steps: func() []step {
				const rotateAt, backAt = 10 * time.Minute, 20 * time.Minute
				b := rotated(active(1, rotateAt, rotateAt), 1, rotateAt)
				a := rotated(active(1, 0, 0), 1, rotateAt)
				return []step{
					{at: 0, keys: keys("A"), want: active(1, 0, 0)},
					{at: rotateAt, keys: keys("B"), want: b},
					{at: rotateAt + time.Minute, keys: keys("B"), want: b},
					{at: backAt, keys: keys("A"), want: a},
					{at: backAt + time.Hour, keys: keys("A"), want: a},
				}
			},
		},
		{
			// A second backend with key B joins; the probe sees A and B
			// in turn; then A's backend leaves. B arriving just after A
			// did not replace A, since A kept showing up.
			name: "key joining then another leaving is not a rotation",
			opts: Options{ActiveWindow: 5 * time.Minute},
			steps: func() []step {
				const leaveAt = time.Hour
				ss := []step{{at: 0, keys: keys("A"), want: active(1, 0, 0)}}
				for m := time.Minute; m < 3*leaveAt; m += time.Minute {
					name := "B"
					if m < leaveAt && m/time.Minute%2 == 0 {
						name = "A"
					}
					want := active(2, time.Minute, 0)
					if lastA := leaveAt - 2*time.Minute; m-lastA >= 5*time.Minute {
						want.ActiveKeys, want.OldestActiveFirstSeen = 1, at(time.Minute)
					}
					ss = append(ss, step{at: m, keys: keys(name), want: want})
				}
				return ss
			},
		},
		{
			// A replaced by B, rolled back to A, then A replaced by C:
			// two rotations, the second measured from A's first sighting.
			name: "rollback then a new key counts again",
			opts: Options{ActiveWindow: 2 * time.Minute},
			steps: func() []step {
				const bAt, backAt, cAt = 10 * time.Minute, 20 * time.Minute, 30 * time.Minute
				var ss []step
				for m := time.Duration(0); m < 40*time.Minute; m += time.Minute {
					s := step{at: m, keys: keys("A"), want: active(1, 0, 0)}
					switch {
					case m >= cAt:
						s.keys = keys("C")
						s.want = rotated(active(2, cAt, 0), 1, bAt)
						if m-(cAt-time.Minute) >= 2*time.Minute {
							s.want = rotated(active(1, cAt, cAt), 2, cAt)
						}
					case m >= backAt:
						s.want.Rotations, s.want.LastRotationInterval = 1, bAt
						if m-(backAt-time.Minute) < 2*time.Minute {
							s.want.ActiveKeys, s.want.NewestActiveFirstSeen = 2, at(bAt)
						}
					case m >= bAt:
						s.keys = keys("B")
						s.want = active(2, bAt, 0)
						if m-(bAt-time.Minute) >= 2*time.Minute {
							s.want = rotated(active(1, bAt, bAt), 1, bAt)
						}
					}
					ss = append(ss, s)
				}
				return ss
			},
		},
		{
			// A new key every minute never holds more than
			// MaxKeysPerTarget, the newest kept.
			name: "keys per target are bounded",
			opts: Options{ActiveWindow: time.Hour, MaxKeysPerTarget: 3},
			steps: func() []step {
				var ss []step
				for i := 0; i < 10; i++ {
					m := time.Duration(i) * time.Minute
					want := active(min(i+1, 3), m, time.Duration(max(0, i-2))*time.Minute)
					ss = append(ss, step{at: m, keys: keys(fmt.Sprint("K", int(i))), want: want})
				}
				return ss
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runScenario(t, tt.opts, tt.steps()) })
	}
}

func TestKeyHistoryBoundsHistories(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		// observe lists the targets probed, one a minute.
		observe []string
		// expireAfter, when set, calls Expire this long after the last
		// Observe.
		expireAfter time.Duration
		// held lists the targets expected to keep their history.
		held []string
	}{
		{
			name:    "LRU drops the least recently observed",
			opts:    Options{MaxTargets: 3},
			observe: []string{"a", "b", "c", "a", "d"},
			held:    []string{"a", "c", "d"},
		},
		{
			name:    "within bounds nothing is dropped",
			opts:    Options{MaxTargets: 3},
			observe: []string{"a", "b", "c", "a", "b"},
			held:    []string{"a", "b", "c"},
		},
		{
			name:    "Observe drops histories past retention",
			opts:    Options{Retention: 3 * time.Minute},
			observe: []string{"a", "b", "c", "d", "e"},
			held:    []string{"c", "d", "e"},
		},
		{
			name:        "Expire drops histories past retention",
			opts:        Options{Retention: 3 * time.Minute},
			observe:     []string{"a", "b", "c"},
			expireAfter: 2 * time.Minute,
			held:        []string{"c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			start := clock.Now()
			tt.opts.Now = clock.Now
			h := New(tt.opts)
			firstSince := map[string]time.Time{}
			var m time.Duration
			for _, target := range tt.observe {
				clock.Set(start.Add(m))
				st := h.Observe(target, "tls", keys("K"))
				if _, ok := firstSince[target]; !ok {
					firstSince[target] = st.Since
				}
				m += time.Minute
			}
			last := start.Add(m - time.Minute)
			if tt.expireAfter > 0 {
				clock.Set(last.Add(tt.expireAfter))
				h.Expire()
			}
			if h.Len() != len(tt.held) {
				t.Fatalf("Len() = %d, want %d", h.Len(), len(tt.held))
			}
			// A held history still starts at its first Observe; a
			// dropped one starts afresh.
			clock.Set(last.Add(tt.expireAfter))
			for _, target := range tt.held {
				if got := h.Observe(target, "tls", nil).Since; !got.Equal(firstSince[target]) {
					t.Errorf("target %s: Since = %s, want %s (history was dropped)", target, got, firstSince[target])
				}
			}
		})
	}
}

// probeStep is one probe of target: with a ticket key, or failed (or
// showing no key name).
type probeStep struct {
	target string
	keyed  bool
}

// spellings returns n failed probes of distinct targets, as an attacker
// spelling [::1] many ways would send.
func spellings(n int) []probeStep {
	ps := make([]probeStep, n)
	for i := range ps {
		ps[i] = probeStep{target: fmt.Sprintf("[0:0:0:0:0:0:0:%x]:%d", 1, 1+i)}
	}
	return ps
}

// Only probes that saw a key create a history or make one recent, so no
// number of failed probes evicts one with keys; under pressure the least
// recently successful goes.
func TestKeyHistoryAdmissionAndEviction(t *testing.T) {
	tests := []struct {
		name       string
		maxTargets int
		probes     []probeStep // one a second
		held       []string
		evicted    uint64
	}{
		{
			name:       "10000 failed probes of distinct targets evict nothing",
			maxTargets: 2,
			probes:     slices.Concat([]probeStep{{"real:443", true}}, spellings(10000)),
			held:       []string{"real:443"},
		},
		{
			name:       "failed probes do not evict a full store",
			maxTargets: 2,
			probes:     slices.Concat([]probeStep{{"a", true}, {"b", true}}, spellings(10000)),
			held:       []string{"a", "b"},
		},
		{
			name:       "N+1 keyed targets: the least recently successful goes",
			maxTargets: 3,
			probes:     []probeStep{{"a", true}, {"b", true}, {"c", true}, {"a", true}, {"d", true}},
			held:       []string{"a", "c", "d"},
			evicted:    1,
		},
		{
			name:       "a failing target is not recent",
			maxTargets: 2,
			probes:     []probeStep{{"a", true}, {"b", true}, {"a", false}, {"a", false}, {"c", true}},
			held:       []string{"b", "c"},
			evicted:    1,
		},
		{
			name:       "each keyed newcomer evicts one",
			maxTargets: 1,
			probes:     []probeStep{{"a", true}, {"b", true}, {"c", true}, {"x", false}},
			held:       []string{"c"},
			evicted:    2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			start := clock.Now()
			h := New(Options{MaxTargets: tt.maxTargets, Now: clock.Now})
			for i, p := range tt.probes {
				clock.Set(start.Add(time.Duration(i) * time.Second))
				var ks []probe.KeyName
				if p.keyed {
					ks = keys("key of " + p.target)
				}
				h.Observe(p.target, "tls", ks)
			}
			if held := heldTargets(h); !slices.Equal(held, tt.held) {
				t.Errorf("held %v, want %v", held, tt.held)
			}
			if got := h.Evicted(); got != tt.evicted {
				t.Errorf("Evicted() = %d, want %d", got, tt.evicted)
			}
		})
	}
}

// heldTargets lists, sorted, the targets h holds a history of.
func heldTargets(h *KeyHistory) []string {
	var held []string
	for _, fh := range h.snapshot().Histories {
		held = append(held, fh.Target)
	}
	slices.Sort(held)
	return held
}

// A target with no history publishes nothing of one.
func TestKeyHistoryNoKeyNoState(t *testing.T) {
	h := New(Options{})
	if st := h.Observe("down:443", "tls", nil); st != (KeyState{}) {
		t.Errorf("state %+v for a target never seen with a key, want none", st)
	}
	if h.Len() != 0 {
		t.Errorf("Len() = %d, want 0", h.Len())
	}
}

func TestKeyHistorySeparatesModules(t *testing.T) {
	clock := newTestClock()
	h := New(Options{Now: clock.Now})
	h.Observe("t:443", "tls12", keys("A"))
	clock.Set(clock.Now().Add(time.Minute))
	st := h.Observe("t:443", "tls13", keys("B"))
	if !st.Since.Equal(clock.Now()) || st.ActiveKeys != 1 {
		t.Errorf("module tls13 shares module tls12's history: %+v", st)
	}
	if h.Len() != 2 {
		t.Errorf("Len() = %d, want 2", h.Len())
	}
}

func TestKeyHistoryClockSteppingBack(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	h := New(Options{Now: clock.Now})
	h.Observe("t", "m", keys("A"))
	clock.Set(start.Add(-time.Hour))
	st := h.Observe("t", "m", keys("B"))
	if st.NewestActiveFirstSeen.Before(start) || st.Since.After(st.NewestActiveFirstSeen) {
		t.Errorf("after the clock stepped back, state is out of order: %+v", st)
	}
}

// Only first sightings and confirmed rotations are journaled, and an
// ObserveDurable that journaled one returns once it is in the file.
func TestKeyHistoryJournalsEvents(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Duration
		target string
		keys   []probe.KeyName
		want   []eventOp
	}{
		{"new history", 0, "t", keys("A"), []eventOp{opKeys}},
		{"same key again", time.Minute, "t", keys("A"), nil},
		{"no key", 2 * time.Minute, "t", nil, nil},
		{"new key", 3 * time.Minute, "t", keys("B"), []eventOp{opKeys}},
		{"old key inactive, rotation confirmed", 20 * time.Minute, "t", keys("B"), []eventOp{opRotation}},
		{"nothing new", 21 * time.Minute, "t", keys("B"), nil},
		{"failed probe of another target", 22 * time.Minute, "u", nil, nil},
		{"another target with a key", 23 * time.Minute, "u", keys("C"), []eventOp{opKeys}},
	}
	clock := newTestClock()
	start := clock.Now()
	path := filepath.Join(t.TempDir(), "history.json")
	h, err := Open(path, Options{ActiveWindow: 5 * time.Minute, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	done := 0
	for _, tt := range tests {
		clock.Set(start.Add(tt.at))
		if _, err := h.ObserveDurable(context.Background(), tt.target, "tls", "", tt.keys); err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		evs := journalEvents(t, path)
		var got []eventOp
		for _, ev := range evs[done:] {
			got = append(got, ev.Op)
			if ev.Target != tt.target || !ev.At.Equal(clock.Now()) {
				t.Errorf("%s: event %+v is not of target %s at %s", tt.name, ev, tt.target, clock.Now())
			}
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: journaled %v, want %v", tt.name, got, tt.want)
		}
		done = len(evs)
	}
}

func BenchmarkObserve(b *testing.B) {
	const targets = 10000
	clock := newTestClock()
	start := clock.Now()
	h := New(Options{Now: clock.Now})
	names := make([]string, targets)
	kns := make([][]probe.KeyName, targets)
	for i := range names {
		names[i] = fmt.Sprintf("host-%d.example:443", i)
		kns[i] = keys(fmt.Sprint("key-", i))
		h.Observe(names[i], "tls", kns[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		// One probe per target per minute of clock.
		clock.Set(start.Add(time.Duration(i/targets) * time.Minute))
		h.Observe(names[i%targets], "tls", kns[i%targets])
	}
	if h.Len() != targets {
		b.Fatalf("Len() = %d, want %d", h.Len(), targets)
	}
}
