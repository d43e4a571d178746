package history

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// observation is one probe fed to a history in persistence tests.
type observation struct {
	at     time.Duration
	target string
	keys   []probe.KeyName
}

// every returns one observation of target per interval in [from, to) with
// the keys chosen by keysAt.
func every(target string, from, to, interval time.Duration, keysAt func(time.Duration) []probe.KeyName) []observation {
	var obs []observation
	for m := from; m < to; m += interval {
		obs = append(obs, observation{at: m, target: target, keys: keysAt(m)})
	}
	return obs
}

func constantKeys(names ...string) func(time.Duration) []probe.KeyName {
	return func(time.Duration) []probe.KeyName { return keys(names...) }
}

// rotating returns the key of a server that rotates every period.
func rotating(period time.Duration) func(time.Duration) []probe.KeyName {
	return func(m time.Duration) []probe.KeyName { return keys(fmt.Sprint("K", int(m/period))) }
}

// byTime merges observation lists into time order.
func byTime(lists ...[]observation) []observation {
	var all []observation
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.SortStableFunc(all, func(a, b observation) int { return int(a.at - b.at) })
	return all
}

// A history restored from its file must go on exactly as the one that wrote
// it: same states for the same probes, rotations pending at the save
// confirmed at the same time, same eviction order.
func TestPersistRoundTripContinues(t *testing.T) {
	const window = 5 * time.Minute
	tests := []struct {
		name string
		obs  []observation
		// saveAt: the file is written after the observations before it.
		saveAt time.Duration
	}{
		{
			name:   "rotation pending at save: old key still active",
			obs:    every("t", 0, 2*time.Hour, time.Minute, rotating(30*time.Minute)),
			saveAt: 32 * time.Minute,
		},
		{
			name:   "rotation confirmed before save",
			obs:    every("t", 0, 2*time.Hour, time.Minute, rotating(30*time.Minute)),
			saveAt: 45 * time.Minute,
		},
		{
			name: "outage at save: key inactive, successor not yet seen",
			obs: byTime(
				every("t", 0, 10*time.Minute, time.Minute, constantKeys("A")),
				every("t", 10*time.Minute, time.Hour, time.Minute, constantKeys()),
				every("t", time.Hour, 2*time.Hour, time.Minute, constantKeys("B")),
			),
			saveAt: 30 * time.Minute,
		},
		{
			name: "key out of view at save: a peer key, not a successor, came next",
			obs: byTime(
				every("t", 0, 2*time.Minute, time.Minute, constantKeys("A", "B")),
				every("t", 2*time.Minute, time.Hour, time.Minute, constantKeys("B")),
			),
			saveAt: 4 * time.Minute,
		},
		{
			name: "balancer key set changing, several targets",
			obs: byTime(
				every("lb", 0, 30*time.Minute, time.Minute, constantKeys("A", "B")),
				every("lb", 30*time.Minute, 2*time.Hour, time.Minute, constantKeys("B", "C")),
				every("alt", 0, 2*time.Hour, time.Minute, func(m time.Duration) []probe.KeyName {
					return keys([]string{"X", "Y"}[m/time.Minute%2])
				}),
				every("quiet", 0, 2*time.Hour, 7*time.Minute, constantKeys()),
				// evicts the least recently observed history now and then
				every("rare", 0, 2*time.Hour, 13*time.Minute, constantKeys("R")),
			),
			saveAt: 32 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			start := clock.Now()
			opts := Options{ActiveWindow: window, MaxTargets: 3, Now: clock.Now}
			orig := New(opts)
			path := filepath.Join(t.TempDir(), "history.json")
			var restored *KeyHistory
			for i, o := range tt.obs {
				if restored == nil && o.at >= tt.saveAt {
					if err := orig.WriteFile(path); err != nil {
						t.Fatal(err)
					}
					restored = New(opts)
					if err := restored.ReadFile(path); err != nil {
						t.Fatal(err)
					}
					if got, want := restored.snapshot(), orig.snapshot(); !equalJSON(t, got, want) {
						t.Fatalf("restored history differs:\n got %+v\nwant %+v", got, want)
					}
				}
				clock.Set(start.Add(o.at))
				want := orig.Observe(o.target, "tls", o.keys)
				if restored == nil {
					continue
				}
				if got := restored.Observe(o.target, "tls", o.keys); got != want {
					t.Fatalf("observation %d (+%s %s %v): restored history published\n%+v\nthe original\n%+v", i, o.at, o.target, o.keys, got, want)
				}
			}
			if restored == nil {
				t.Fatal("scenario ended before saveAt")
			}
			if got, want := restored.snapshot(), orig.snapshot(); !equalJSON(t, got, want) {
				t.Fatalf("histories diverged:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func equalJSON(t *testing.T, a, b any) bool {
	t.Helper()
	ja, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	jb, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(ja) == string(jb)
}

// writeSample fills a history with a few targets, one of them rotated, and
// saves it; it returns the file's bytes.
func writeSample(t *testing.T, path string) []byte {
	t.Helper()
	clock := newTestClock()
	start := clock.Now()
	h := New(Options{ActiveWindow: 2 * time.Minute, Now: clock.Now})
	for _, o := range byTime(
		every("a:443", 0, time.Hour, time.Minute, rotating(20*time.Minute)),
		every("b:443", 0, time.Hour, 5*time.Minute, constantKeys("B1", "B2")),
		every("c:443", 0, time.Hour, 10*time.Minute, constantKeys("C1")),
	) {
		clock.Set(start.Add(o.at))
		h.Observe(o.target, "tls", o.keys)
	}
	if err := h.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The file holds the documented fields, fingerprints and timestamps only,
// readable by anyone with a JSON parser, and only its owner may read it.
func TestWriteFileFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	data := writeSample(t, path)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("file mode %o, want 600", mode)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the history file (temporary file left behind?)", len(entries))
	}

	var doc struct {
		Version   int              `json:"version"`
		Histories []map[string]any `json:"histories"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Version != 3 {
		t.Errorf("version %d, want 3", doc.Version)
	}
	if len(doc.Histories) != 3 {
		t.Fatalf("%d histories, want 3", len(doc.Histories))
	}
	historyFields := []string{"keys", "last_probe", "last_rotation_interval_seconds", "module", "rotations", "since", "target"}
	keyFields := []string{"fingerprint", "first_seen", "last_seen"}
	wantFPs := map[float64]bool{}
	for _, n := range []string{"K0", "K1", "K2", "B1", "B2", "C1"} {
		wantFPs[float64(probe.Fingerprint([]byte(n)))] = true
	}
	for _, hist := range doc.Histories {
		if got := slices.Sorted(maps.Keys(hist)); !slices.Equal(got, historyFields) {
			t.Errorf("history fields %v, want %v", got, historyFields)
		}
		for _, field := range []string{"since", "last_probe"} {
			if _, err := time.Parse(time.RFC3339Nano, hist[field].(string)); err != nil {
				t.Errorf("%s: %v", field, err)
			}
		}
		for _, k := range hist["keys"].([]any) {
			km := k.(map[string]any)
			if got := slices.Sorted(maps.Keys(km)); !slices.Equal(got, keyFields) {
				t.Errorf("key fields %v, want %v", got, keyFields)
			}
			if !wantFPs[km["fingerprint"].(float64)] {
				t.Errorf("fingerprint %v is not the fingerprint of a key the sample saw", km["fingerprint"])
			}
		}
		if hist["target"] == "a:443" && hist["rotations"].(float64) != 2 {
			t.Errorf("a:443 rotations %v, want 2", hist["rotations"])
		}
	}
}

func TestReadFileMissingIsFreshStart(t *testing.T) {
	h := New(Options{})
	h.Observe("t", "m", keys("A"))
	if err := h.ReadFile(filepath.Join(t.TempDir(), "absent.json")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	if h.Len() != 0 {
		t.Errorf("Len() = %d after reading no file, want 0", h.Len())
	}
}

// requireUnusable checks that reading path failed with an error naming it
// and left h empty and working.
func requireUnusable(t *testing.T, h *KeyHistory, path string, err error, wantErr string) {
	t.Helper()
	if err == nil {
		t.Fatal("ReadFile accepted an unusable file")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), wantErr) {
		t.Fatalf("error %q does not name the path %s and say %q", err, path, wantErr)
	}
	if h.Len() != 0 {
		t.Fatalf("Len() = %d after a failed read, want 0", h.Len())
	}
	if st := h.Observe("t", "m", keys("A")); !st.HasKeys || st.ActiveKeys != 1 || h.Len() != 1 {
		t.Fatalf("history does not work after a failed read: %+v, Len %d", st, h.Len())
	}
}

func TestReadFileTruncated(t *testing.T) {
	dir := t.TempDir()
	data := writeSample(t, filepath.Join(dir, "good.json"))
	path := filepath.Join(dir, "truncated.json")
	// The sample's clock, so that retention keeps what it wrote.
	h := New(Options{Now: newTestClock().Now})
	for n := range len(data) {
		t.Run(fmt.Sprint(n, "_bytes"), func(t *testing.T) {
			if err := os.WriteFile(path, data[:n], 0o600); err != nil {
				t.Fatal(err)
			}
			h.Observe("before", "m", keys("Z")) // something to lose
			requireUnusable(t, h, path, h.ReadFile(path), "")
		})
	}
	if err := h.ReadFile(filepath.Join(dir, "good.json")); err != nil {
		t.Fatalf("whole file: %s", err)
	}
	if h.Len() != 3 {
		t.Fatalf("whole file: Len %d, want 3 histories", h.Len())
	}
}

func TestReadFileRejects(t *testing.T) {
	const (
		t0 = "2025-03-01T12:00:00Z"
		t1 = "2025-03-01T12:05:00Z"
		t2 = "2025-03-01T12:10:00Z"
	)
	hist := func(target, keysJSON string) string {
		return fmt.Sprintf(`{"target":%q,"module":"tls","since":%q,"last_probe":%q,"rotations":0,"last_rotation_interval_seconds":0,"keys":[%s]}`, target, t0, t2, keysJSON)
	}
	key := func(fp uint64, first, last string) string {
		return fmt.Sprintf(`{"fingerprint":%d,"first_seen":%q,"last_seen":%q}`, fp, first, last)
	}
	file := func(hists ...string) string {
		return `{"version":1,"histories":[` + strings.Join(hists, ",") + `]}`
	}
	tests := []struct {
		name, content, wantErr string
	}{
		{"unknown version", `{"version":4,"histories":[]}`, "unsupported format version 4"},
		{"no version", `{"histories":[]}`, "no version"},
		{"not JSON", "history", "not a key history file"},
		{"empty", "", "not a key history file"},
		{"unknown field", `{"version":1,"histories":[],"tickets":["secret"]}`, "unknown field"},
		{"data after the end", file() + `{}`, "data after the end"},
		{"history listed twice", file(hist("t", ""), hist("t", "")), "listed twice"},
		{"fingerprint wider than 48 bits", file(hist("t", key(1<<48, t0, t1))), "wider than 48 bits"},
		{"fingerprint listed twice", file(hist("t", key(7, t0, t1)+","+key(7, t0, t1))), "listed twice"},
		{"last seen before first seen", file(hist("t", key(7, t1, t0))), "not within"},
		{"key seen after the last probe", file(hist("t", key(7, t0, "2025-03-01T13:00:00Z"))), "not within"},
		{"empty target", file(hist("", "")), "empty target"},
		{"negative rotations", file(strings.Replace(hist("t", ""), `"rotations":0`, `"rotations":-1`, 1)), "negative rotations"},
		{"negative interval", file(strings.Replace(hist("t", ""), `"last_rotation_interval_seconds":0`, `"last_rotation_interval_seconds":-5`, 1)), "out of range"},
		{"bad timestamp", file(strings.Replace(hist("t", ""), t0, "yesterday", 1)), "corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.json")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			h := New(Options{})
			h.Observe("before", "m", keys("Z"))
			requireUnusable(t, h, path, h.ReadFile(path), tt.wantErr)
		})
	}
}

// A file of version 1 (no journal_seq; histories of targets that never
// showed a key) is read, without those.
func TestReadFileVersion1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	const v1 = `{"version":1,"histories":[` +
		`{"target":"down:443","module":"tls","since":"2025-03-01T11:00:00Z","last_probe":"2025-03-01T11:50:00Z","rotations":0,"last_rotation_interval_seconds":0,"keys":[]},` +
		`{"target":"up:443","module":"tls","since":"2025-03-01T11:00:00Z","last_probe":"2025-03-01T11:50:00Z","rotations":1,"last_rotation_interval_seconds":600,` +
		`"keys":[{"fingerprint":7,"first_seen":"2025-03-01T11:10:00Z","last_seen":"2025-03-01T11:50:00Z"}]}]}`
	if err := os.WriteFile(path, []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	h := New(Options{Now: newTestClock().Now})
	if err := h.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	snap := h.snapshot()
	if len(snap.Histories) != 1 || snap.Histories[0].Target != "up:443" || snap.Histories[0].Rotations != 1 {
		t.Errorf("read %+v, want only up:443 with its rotation", snap.Histories)
	}
}

// What is read obeys the options of the reader.
func TestReadFileAppliesBounds(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	w := New(Options{Now: clock.Now})
	targets := []string{"a", "b", "c", "d", "e"}
	for i, target := range targets {
		clock.Set(start.Add(time.Duration(i) * time.Hour))
		w.Observe(target, "tls", keys(target+"1", target+"2", target+"3"))
	}
	path := filepath.Join(t.TempDir(), "history.json")
	if err := w.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	// At +5h, with a retention of 4h30m "a" (last probed at 0) is gone;
	// MaxTargets 3 keeps c, d and e; each keeps 2 keys.
	clock.Set(start.Add(5 * time.Hour))
	r := New(Options{MaxTargets: 3, Retention: 4*time.Hour + 30*time.Minute, MaxKeysPerTarget: 2, Now: clock.Now})
	if err := r.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	snap := r.snapshot()
	var got []string
	for _, fh := range snap.Histories {
		got = append(got, fh.Target)
		if len(fh.Keys) != 2 {
			t.Errorf("%s: %d keys, want 2", fh.Target, len(fh.Keys))
		}
	}
	if want := targets[2:]; !slices.Equal(got, want) {
		t.Errorf("histories %v (least recent first), want %v", got, want)
	}
}

func TestWriteFileFailure(t *testing.T) {
	dir := t.TempDir()
	h := New(Options{})
	h.Observe("t", "m", keys("A"))
	path := filepath.Join(dir, "missing-dir", "history.json")
	if err := h.WriteFile(path); err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	// Renaming onto a directory fails after the temporary file was
	// written: it must not be left behind.
	target := filepath.Join(dir, "is-a-dir")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteFile(target); err == nil {
		t.Fatal("WriteFile over a non-empty directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want 1: a temporary file was left behind", len(entries))
	}
}

// Observe and WriteFile run together (meaningful under go test -race), and
// every file written is whole.
func TestWriteFileDuringObserve(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	h := New(Options{Now: clock.Now})
	path := filepath.Join(t.TempDir(), "history.json")

	const workers, probes = 4, 500
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range probes {
				clock.Set(start.Add(time.Duration(i) * time.Second))
				h.Observe(fmt.Sprint("target-", w, "-", i%50), "tls", keys(fmt.Sprint("K", i/100)))
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for writes := 0; ; writes++ {
		if err := h.WriteFile(path); err != nil {
			t.Fatal(err)
		}
		r := New(Options{Now: clock.Now})
		if err := r.ReadFile(path); err != nil {
			t.Fatalf("write %d: %v", writes, err)
		}
		select {
		case <-done:
			if err := h.WriteFile(path); err != nil {
				t.Fatal(err)
			}
			if err := r.ReadFile(path); err != nil {
				t.Fatalf("final file: %s", err)
			}
			if r.Len() != workers*50 {
				t.Fatalf("final file: %d histories, want %d", r.Len(), workers*50)
			}
			return
		default:
		}
	}
}

// The snapshot's hand-written encoder writes what json.Marshal would: the
// same document once decoded, for any target string.
func TestSnapshotEncodingMatchesJSON(t *testing.T) {
	clock := newTestClock()
	h := New(Options{Now: clock.Now})
	for i, target := range []string{"a:443", `q"uote\:443`, "<html>&:443", "ünï\u2028cödé:443", "tab\there:1", ""} {
		clock.Set(clock.Now().Add(time.Duration(i)*time.Minute + 123456789))
		h.Observe(target, "mod\"ule", keys(target+"1", target+"2"))
	}
	f := h.snapshot()
	f.Histories[0].Rotations, f.Histories[0].LastRotationIntervalSeconds = 3, 1234.000000001
	f.Histories[1].LastRotationIntervalSeconds = 1e-9
	std, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var got, want historyFile
	if err := json.Unmarshal(f.appendJSON(nil), &got); err != nil {
		t.Fatalf("appendJSON wrote invalid JSON: %v\n%s", err, f.appendJSON(nil))
	}
	if err := json.Unmarshal(std, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("appendJSON decodes to\n%+v\nwant\n%+v", got, want)
	}
}
