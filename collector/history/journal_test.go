package history

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// journalEvents returns the events in the journal of the history at path.
func journalEvents(t *testing.T, path string) []event {
	t.Helper()
	data, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	var hdr journalHeader
	if err := json.Unmarshal([]byte(lines[0]), &hdr); err != nil || hdr != (journalHeader{Format: journalFormat, Version: journalVersion}) {
		t.Fatalf("journal header %q: %v", lines[0], err)
	}
	var evs []event
	for _, l := range lines[1:] {
		var ev event
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("journal line %q: %v", l, err)
		}
		evs = append(evs, ev)
	}
	return evs
}

// durableFacts is what a crash must not lose of a history: every field but
// the last-seen and last-probe times, which only Save keeps.
type durableFacts struct {
	Since     time.Time
	Rotations int
	Interval  float64
	FirstSeen map[uint64]time.Time
}

func factsOf(h *KeyHistory) map[historyKey]durableFacts {
	out := map[historyKey]durableFacts{}
	for _, fh := range h.snapshot().Histories {
		f := durableFacts{Since: fh.Since, Rotations: fh.Rotations, Interval: fh.LastRotationIntervalSeconds, FirstSeen: map[uint64]time.Time{}}
		for _, k := range fh.Keys {
			f.FirstSeen[k.Fingerprint] = k.FirstSeen
		}
		out[historyKey{fh.Target, fh.Module, fh.ServerName}] = f
	}
	return out
}

func requireSameFacts(t *testing.T, got, want *KeyHistory) {
	t.Helper()
	g, w := factsOf(got), factsOf(want)
	if len(g) != len(w) {
		t.Errorf("%d histories, want %d", len(g), len(w))
	}
	for k, wf := range w {
		gf, ok := g[k]
		if !ok {
			t.Errorf("%v: history lost", k)
			continue
		}
		if !gf.Since.Equal(wf.Since) || gf.Rotations != wf.Rotations || gf.Interval != wf.Interval || len(gf.FirstSeen) != len(wf.FirstSeen) {
			t.Errorf("%v: %+v, want %+v", k, gf, wf)
			continue
		}
		for fp, ft := range wf.FirstSeen {
			if !gf.FirstSeen[fp].Equal(ft) {
				t.Errorf("%v: key %d first seen %s, want %s", k, fp, gf.FirstSeen[fp], ft)
			}
		}
	}
}

// copyFiles copies the snapshot and the journal of path into a new
// directory, as a crash would leave them, and returns the new path.
func copyFiles(t *testing.T, path string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(path))
	for _, suffix := range []string{"", journalSuffix} {
		data, err := os.ReadFile(path + suffix)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst+suffix, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func openHistory(t *testing.T, path string, o Options) *KeyHistory {
	t.Helper()
	h, err := Open(path, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// What ObserveDurable returned from is in the files, whether or not Save
// ran since and even with no Close (a crash): reading the files gives every
// first sighting, rotation and removal. Save moves the events into the
// snapshot and empties the journal.
func TestJournalReplayAndCompaction(t *testing.T) {
	const window = 5 * time.Minute
	tests := []struct {
		name string
		obs  []observation
		// saveAt: Save runs before the first observation at or after it.
		saveAt time.Duration
	}{
		{
			name: "rotations, no save",
			obs:  every("t", 0, 2*time.Hour, time.Minute, rotating(30*time.Minute)),
		},
		{
			name:   "rotations, saved midway",
			obs:    every("t", 0, 2*time.Hour, time.Minute, rotating(30*time.Minute)),
			saveAt: 45 * time.Minute,
		},
		{
			name: "targets evicted and coming back",
			obs: byTime(
				every("a", 0, time.Hour, time.Minute, constantKeys("A")),
				every("b", 0, time.Hour, 2*time.Minute, constantKeys("B")),
				every("c", 0, time.Hour, 3*time.Minute, rotating(20*time.Minute)),
				every("d", 10*time.Minute, time.Hour, 11*time.Minute, constantKeys("D")),
				every("failing", 0, time.Hour, time.Minute, constantKeys()),
			),
			saveAt: 30 * time.Minute,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newTestClock()
			start := clock.Now()
			opts := Options{ActiveWindow: window, MaxTargets: 3, Now: clock.Now}
			path := filepath.Join(t.TempDir(), "history.json")
			h := openHistory(t, path, opts)
			saved := false
			for _, o := range tt.obs {
				if tt.saveAt > 0 && !saved && o.at >= tt.saveAt {
					if err := h.Save(); err != nil {
						t.Fatal(err)
					}
					if evs := journalEvents(t, path); len(evs) != 0 {
						t.Errorf("after Save the journal holds %d events, want none", len(evs))
					}
					saved = true
				}
				clock.Set(start.Add(o.at))
				if _, err := h.ObserveDurable(context.Background(), o.target, "tls", "", o.keys); err != nil {
					t.Fatal(err)
				}
			}
			if tt.saveAt == 0 && len(journalEvents(t, path)) == 0 {
				t.Fatal("nothing was journaled")
			}
			// Removals are not waited for; a probe's own events are.
			// Whatever the journal holds, the facts come back.
			r := New(opts)
			if err := r.ReadFile(copyFiles(t, path)); err != nil {
				t.Fatal(err)
			}
			requireSameFacts(t, r, h)

			if err := h.Save(); err != nil {
				t.Fatal(err)
			}
			r = New(opts)
			if err := r.ReadFile(copyFiles(t, path)); err != nil {
				t.Fatal(err)
			}
			requireSameFacts(t, r, h)
			if got, want := r.snapshot().Histories, h.snapshot().Histories; !slices.EqualFunc(got, want, func(a, b fileHistory) bool {
				return a.Target == b.Target && a.LastProbe.Equal(b.LastProbe)
			}) {
				t.Errorf("after Save, read histories %+v, want %+v", got, want)
			}
		})
	}
}

// Save runs while probes see new keys: an event that happens between the
// snapshot and the journal's compaction stays in the journal.
func TestSaveDuringObserveDurable(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	path := filepath.Join(t.TempDir(), "history.json")
	opts := Options{Now: clock.Now}
	h := openHistory(t, path, opts)
	const workers, probes = 4, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range probes {
				clock.Set(start.Add(time.Duration(i) * time.Second))
				if _, err := h.ObserveDurable(context.Background(), fmt.Sprint("target-", w, "-", i%20), "tls", "", keys(fmt.Sprint("K", i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for saves := 0; ; saves++ {
		select {
		case <-done:
			r := New(opts)
			if err := r.ReadFile(copyFiles(t, path)); err != nil {
				t.Fatal(err)
			}
			requireSameFacts(t, r, h)
			if saves == 0 {
				t.Error("no Save ran during the probes")
			}
			return
		default:
		}
		if err := h.Save(); err != nil {
			t.Fatal(err)
		}
	}
}

// Probes that see new keys at the same time share fsyncs, and each returns
// only once its own event is in the file.
func TestObserveDurableGroupCommit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	h := openHistory(t, path, Options{})
	const probes = 200
	release := make(chan struct{})
	var wg sync.WaitGroup
	for i := range probes {
		wg.Go(func() {
			<-release
			target := fmt.Sprint("t", i)
			if _, err := h.ObserveDurable(context.Background(), target, "tls", "", keys(target)); err != nil {
				t.Error(err)
			}
			// This probe's event is in the file when it returns.
			data, err := os.ReadFile(path + journalSuffix)
			if err != nil || !strings.Contains(string(data), fmt.Sprintf("%q", target)) {
				t.Errorf("%s: ObserveDurable returned before its event was written (%v)", target, err)
			}
		})
	}
	close(release)
	wg.Wait()
	h.mu.Lock()
	syncs := h.journal.syncs.Load()
	h.mu.Unlock()
	if evs := journalEvents(t, path); len(evs) != probes {
		t.Errorf("%d events journaled, want %d", len(evs), probes)
	}
	if syncs >= probes {
		t.Errorf("%d fsyncs for %d concurrent events: no group commit", syncs, probes)
	}
	t.Logf("%d events, %d fsyncs", probes, syncs)
}

// A crash while a batch is written leaves a torn last line: it is logged
// and ignored, and every whole line before it is used. Damage elsewhere
// stops the replay there, louder.
func TestJournalDamage(t *testing.T) {
	clock := newTestClock()
	start := clock.Now()
	path := filepath.Join(t.TempDir(), "history.json")
	opts := Options{Now: clock.Now}
	h := openHistory(t, path, opts)
	targets := []string{"a", "b", "c"}
	for i, target := range targets {
		clock.Set(start.Add(time.Duration(i) * time.Minute))
		if _, err := h.ObserveDurable(context.Background(), target, "tls", "", keys(target)); err != nil {
			t.Fatal(err)
		}
	}
	journal, err := os.ReadFile(path + journalSuffix)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(journal), "\n") // header, a, b, c, ""
	next, _ := json.Marshal(event{Seq: 4, Op: opKeys, Target: "d", Module: "tls", At: start.Add(time.Hour), Since: start.Add(time.Hour), Seen: []uint64{1}})

	tests := []struct {
		name    string
		journal string
		held    []string
		log     string
	}{
		{"intact", string(journal), targets, ""},
		{"half a line", string(journal) + string(next[:len(next)/2]), targets, "torn last line"},
		{"whole line without newline is used", string(journal) + string(next), append(slices.Clone(targets), "d"), ""},
		{"zeros", string(journal) + strings.Repeat("\x00", 300), targets, "torn last line"},
		{"last line cut", strings.Join(lines[:3], "") + lines[3][:10], targets[:2], "torn last line"},
		{"damaged line in the middle", lines[0] + lines[1] + "{garbage}\n" + lines[3], targets[:1], "damaged"},
		{"event numbers going back", lines[0] + lines[1] + lines[2] + lines[1] + lines[3], targets[:2], "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := copyFiles(t, path)
			if err := os.WriteFile(p+journalSuffix, []byte(tt.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			var logs bytes.Buffer
			r := New(Options{Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err := r.ReadFile(p); err != nil {
				t.Fatal(err)
			}
			if held := heldTargets(r); !slices.Equal(held, tt.held) {
				t.Errorf("histories %v, want %v", held, tt.held)
			}
			if tt.log == "" && logs.Len() > 0 || !strings.Contains(logs.String(), tt.log) {
				t.Errorf("log %q, want %q", logs.String(), tt.log)
			}
		})
	}
}

func TestJournalRejects(t *testing.T) {
	tests := []struct {
		name, journal, wantErr string
	}{
		{"not a journal", "{}\n", "not a key history journal"},
		{"empty", "", "not a key history journal"},
		{"other version", `{"format":"` + journalFormat + `","version":3}` + "\n", "unsupported format version 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "history.json")
			if err := os.WriteFile(path+journalSuffix, []byte(tt.journal), 0o600); err != nil {
				t.Fatal(err)
			}
			h := New(Options{})
			h.Observe("before", "m", keys("Z"))
			requireUnusable(t, h, path, h.ReadFile(path), tt.wantErr)
		})
	}
}

// Open removes the temporary files a crash during a save left, and only
// those.
func TestOpenRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.json")
	stale := []string{".history.json.tmp123456", ".history.json.journal.tmp42"}
	kept := []string{".other.json.tmp1", "history.json.tmp-mine", "notes"}
	for _, name := range slices.Concat(stale, kept) {
		if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 2<<20), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	openHistory(t, path, Options{})
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(kept), "history.json", "history.json.journal", "history.json.lock")))
	if !slices.Equal(got, want) {
		t.Errorf("directory holds %v, want %v", got, want)
	}
	for _, name := range []string{"history.json", "history.json.journal", "history.json.lock"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v, want 0600", name, err, fi.Mode().Perm())
		}
	}
}

// A path that cannot hold the history is an error at once, naming the path
// and the reason.
func TestOpenRejectsUnusablePath(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	isDir := filepath.Join(dir, "is-a-dir")
	if err := os.MkdirAll(filepath.Join(dir, "journal-is-a-dir", "h.json.journal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(isDir, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{"missing directory", filepath.Join(dir, "missing", "h.json"), "no such file or directory"},
		{"directory is a file", filepath.Join(file, "h.json"), "not a directory"},
		{"path is a directory", isDir, "is not a regular file"},
		{"journal is a directory", filepath.Join(dir, "journal-is-a-dir", "h.json"), "is not a regular file"},
	}
	if os.Geteuid() != 0 { // root writes anywhere; the process test covers it
		ro := filepath.Join(dir, "read-only")
		if err := os.Mkdir(ro, 0o500); err != nil {
			t.Fatal(err)
		}
		tests = append(tests, struct{ name, path, wantErr string }{"read-only directory", filepath.Join(ro, "h.json"), "permission denied"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := Open(tt.path, Options{})
			if err == nil {
				h.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not name %s and say %q", err, tt.path, tt.wantErr)
			}
		})
	}
}

// While one history is open on a path, a second Open of it fails; once it
// is closed, or its process died, Open succeeds.
func TestOpenLocksThePath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "history.json")
	h, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if second, err := Open(path, Options{}); err == nil {
		second.Close()
		t.Fatal("a second Open of a history in use succeeded")
	} else if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "another process") {
		t.Errorf("error %q does not name %s and say it is in use", err, path)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	openHistory(t, path, Options{})
}

// Files Open cannot read are kept aside and the history starts empty.
func TestOpenKeepsUnreadableFilesAside(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "history.json")
	if err := os.WriteFile(path, []byte(`{"version":1,"histories":[`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+journalSuffix, []byte(`{"format":"`+journalFormat+`","version":1}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	h := openHistory(t, path, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if h.Len() != 0 || !strings.Contains(logs.String(), "Cannot read key history") {
		t.Errorf("Len %d, log %q", h.Len(), logs.String())
	}
	for _, pattern := range []string{path + ".bad-*", path + journalSuffix + ".bad-*"} {
		if kept, _ := filepath.Glob(pattern); len(kept) != 1 {
			t.Errorf("%s: %v, want one file kept aside", pattern, kept)
		}
	}
}

// benchHistory returns a history kept at path with n targets of two keys
// each, and their names.
func benchHistory(b *testing.B, path string, n int) (*KeyHistory, []string) {
	b.Helper()
	h, err := Open(path, Options{MaxTargets: n})
	if err != nil {
		b.Fatal(err)
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("host-%d.example:443", i)
		h.Observe(names[i], "tls", []probe.KeyName{{Fingerprint: uint64(2 * i), Tickets: 1}, {Fingerprint: uint64(2*i + 1), Tickets: 1}})
	}
	if err := h.Save(); err != nil {
		b.Fatal(err)
	}
	return h, names
}

// BenchmarkObserveDurableNewKey: every probe of one of 100 000 histories sees
// a new key, so each waits for its fsync; probes run in parallel and share
// them.
func BenchmarkObserveDurableNewKey(b *testing.B) {
	h, names := benchHistory(b, filepath.Join(b.TempDir(), "history.json"), 100_000)
	defer func() { b.StopTimer(); h.Close() }()
	b.SetParallelism(16)
	before := h.journal.syncs.Load()
	var mu sync.Mutex
	next := uint64(1 << 40)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			next++
			fp := next
			mu.Unlock()
			if _, err := h.ObserveDurable(context.Background(), names[fp%uint64(len(names))], "tls", "", []probe.KeyName{{Fingerprint: fp, Tickets: 1}}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(h.journal.syncs.Load()-before)/float64(b.N), "fsyncs/op")
}

// BenchmarkObserveDurableKnownKey: the common probe, a known key of one of
// 100 000 histories: nothing to journal, no wait.
func BenchmarkObserveDurableKnownKey(b *testing.B) {
	h, names := benchHistory(b, filepath.Join(b.TempDir(), "history.json"), 100_000)
	defer func() { b.StopTimer(); h.Close() }()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n := i % len(names)
		if _, err := h.ObserveDurable(context.Background(), names[n], "tls", "", []probe.KeyName{{Fingerprint: uint64(2 * n), Tickets: 1}}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen100k: a restart with 100 000 histories in the snapshot and
// 10 000 events in the journal: read, replay, compact.
func BenchmarkOpen100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "history.json")
	h, names := benchHistory(b, path, 100_000)
	for i := range 10_000 {
		if _, err := h.ObserveDurable(context.Background(), names[i], "tls", "", []probe.KeyName{{Fingerprint: uint64(1<<40 + i), Tickets: 1}}); err != nil {
			b.Fatal(err)
		}
	}
	// Keep the files as a crash leaves them: no Close.
	h.mu.Lock()
	h.journal.close()
	h.lock.Close() // as the crash would
	h.journal, h.lock = nil, nil
	h.mu.Unlock()
	snap, _ := os.ReadFile(path)
	journal, _ := os.ReadFile(path + journalSuffix)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		os.WriteFile(path, snap, 0o600)
		os.WriteFile(path+journalSuffix, journal, 0o600)
		b.StartTimer()
		r, err := Open(path, Options{MaxTargets: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if r.Len() != 100_000 {
			b.Fatalf("Len %d", r.Len())
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		// The heap holds the files' bytes too, for the next iteration.
		b.ReportMetric(float64(ms.HeapAlloc-uint64(len(snap)+len(journal)))/1e6, "heap-MB")
		b.ReportMetric(float64(len(snap))/1e6, "snapshot-MB")
		r.Close()
		b.StartTimer()
	}
}
