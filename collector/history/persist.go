package history

import (
	"bytes"
	"container/list"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// fileVersion is the version of the history file format written by
// WriteFile. ReadFile rejects any other.
const fileVersion = 1

// maxFingerprint bounds a key fingerprint: 48 bits (see probe.Fingerprint).
const maxFingerprint = 1<<48 - 1

// historyFile is the saved form of a KeyHistory. It holds fingerprints and
// timestamps only: never tickets, secrets or raw key names.
type historyFile struct {
	Version   int           `json:"version"`
	Histories []fileHistory `json:"histories"`
}

type fileHistory struct {
	Target                      string    `json:"target"`
	Module                      string    `json:"module"`
	Since                       time.Time `json:"since"`
	LastProbe                   time.Time `json:"last_probe"`
	Rotations                   int       `json:"rotations"`
	LastRotationIntervalSeconds float64   `json:"last_rotation_interval_seconds"`
	Keys                        []fileKey `json:"keys"`
}

type fileKey struct {
	Fingerprint uint64    `json:"fingerprint"`
	FirstSeen   time.Time `json:"first_seen"`
	LastSeen    time.Time `json:"last_seen"`
}

// Changed returns a channel that receives a value, without blocking the
// history and coalesced (capacity 1), whenever a history is created, a key is
// first seen or a rotation is confirmed: the events that would be lost by a
// restart, so the owner can save at once rather than on a timer only.
func (h *KeyHistory) Changed() <-chan struct{} { return h.changed }

// WriteFile saves the histories to path atomically: it writes a temporary
// file in the same directory with mode 0600, syncs it, renames it over path
// and syncs the directory, so a crash leaves either the old file or the new
// one. Observe may run meanwhile; the file holds a consistent snapshot.
func (h *KeyHistory) WriteFile(path string) error {
	data, err := json.Marshal(h.snapshot())
	if err != nil {
		return fmt.Errorf("encoding key history for %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	committed := false
	defer func() {
		if !committed {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp already uses 0600; say so explicitly, the file describes
	// which servers are watched.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("saving key history: %w", err)
	}
	committed = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("saving key history: syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("saving key history: syncing directory %s: %w", dir, err)
	}
	return nil
}

// snapshot copies the histories under the lock, least recently observed
// first, so that ReadFile rebuilds the same recency order.
func (h *KeyHistory) snapshot() historyFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := historyFile{Version: fileVersion, Histories: make([]fileHistory, 0, h.recency.Len())}
	for e := h.recency.Back(); e != nil; e = e.Prev() {
		hist := e.Value.(*targetHistory)
		fh := fileHistory{
			Target:                      hist.key.target,
			Module:                      hist.key.module,
			Since:                       hist.since,
			LastProbe:                   hist.lastProbe,
			Rotations:                   hist.rotations,
			LastRotationIntervalSeconds: hist.lastRotationInterval.Seconds(),
			Keys:                        make([]fileKey, len(hist.keys)),
		}
		for i, k := range hist.keys {
			fh.Keys[i] = fileKey{Fingerprint: k.fingerprint, FirstSeen: k.firstSeen, LastSeen: k.lastSeen}
		}
		f.Histories = append(f.Histories, fh)
	}
	return f
}

// ReadFile replaces the histories with those saved in path. A missing file
// is a fresh start, not an error. A file that cannot be used (unreadable,
// truncated, corrupt, another format version) yields an error naming the
// path and leaves the history empty, so the caller can log it and carry on
// without trusting half of it.
//
// The bounds of the options apply to what is read: histories older than
// Retention are dropped, at most MaxTargets of the most recently observed are
// kept, and each keeps at most MaxKeysPerTarget keys. Rotations not yet
// confirmed when the file was written are confirmed by the next Observe, as
// they would have been without the restart.
func (h *KeyHistory) ReadFile(path string) error {
	hists, err := readHistoryFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("reading key history %s: %w", path, err)
	} else {
		err = nil
	}
	now := h.now()

	h.mu.Lock()
	defer h.mu.Unlock()
	h.byKey = make(map[historyKey]*list.Element, len(hists))
	h.recency = list.New()
	if err != nil {
		return err
	}
	// Oldest first, so that PushFront leaves the newest at the front.
	slices.SortStableFunc(hists, func(a, b *targetHistory) int { return a.lastProbe.Compare(b.lastProbe) })
	for _, hist := range hists {
		hist.restoreDecisions(h.opts.ActiveWindow)
		hist.prune(h.opts.MaxKeysPerTarget)
		h.byKey[hist.key] = h.recency.PushFront(hist)
	}
	h.expireLocked(now)
	h.evictLocked()
	return nil
}

// readHistoryFile decodes and checks a history file.
func readHistoryFile(path string) ([]*targetHistory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	// Read the version alone first, so that a file from another version is
	// reported as such rather than as whatever field it does not share.
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return nil, fmt.Errorf("not a key history file: %w", err)
	}
	if v.Version == nil {
		return nil, errors.New("not a key history file: no version")
	}
	if *v.Version != fileVersion {
		return nil, fmt.Errorf("unsupported format version %d (want %d)", *v.Version, fileVersion)
	}
	var f historyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("corrupt key history: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("corrupt key history: data after the end")
	}
	seen := make(map[historyKey]bool, len(f.Histories))
	hists := make([]*targetHistory, 0, len(f.Histories))
	for i, fh := range f.Histories {
		hist, err := fh.decode()
		if err != nil {
			return nil, fmt.Errorf("history %d (target %q, module %q): %w", i, fh.Target, fh.Module, err)
		}
		if seen[hist.key] {
			return nil, fmt.Errorf("history %d: target %q, module %q listed twice", i, fh.Target, fh.Module)
		}
		seen[hist.key] = true
		hists = append(hists, hist)
	}
	return hists, nil
}

// decode checks one saved history for what Observe could never have
// produced, which would mean the file was damaged or edited.
func (fh fileHistory) decode() (*targetHistory, error) {
	if fh.Target == "" {
		return nil, errors.New("empty target")
	}
	if fh.Since.IsZero() || fh.LastProbe.IsZero() || fh.LastProbe.Before(fh.Since) {
		return nil, fmt.Errorf("since %s and last_probe %s are not in order", fh.Since, fh.LastProbe)
	}
	if fh.Rotations < 0 {
		return nil, fmt.Errorf("negative rotations %d", fh.Rotations)
	}
	secs := fh.LastRotationIntervalSeconds
	if math.IsNaN(secs) || secs < 0 || secs > math.MaxInt64/float64(time.Second) {
		return nil, fmt.Errorf("last_rotation_interval_seconds %v out of range", secs)
	}
	hist := &targetHistory{
		key:                  historyKey{fh.Target, fh.Module},
		since:                fh.Since,
		lastProbe:            fh.LastProbe,
		rotations:            fh.Rotations,
		lastRotationInterval: time.Duration(math.Round(secs * float64(time.Second))),
		keys:                 make([]keyRecord, 0, len(fh.Keys)),
	}
	fps := make(map[uint64]bool, len(fh.Keys))
	for _, k := range fh.Keys {
		if k.Fingerprint > maxFingerprint {
			return nil, fmt.Errorf("fingerprint %d is wider than 48 bits", k.Fingerprint)
		}
		if fps[k.Fingerprint] {
			return nil, fmt.Errorf("fingerprint %d listed twice", k.Fingerprint)
		}
		fps[k.Fingerprint] = true
		if k.FirstSeen.Before(fh.Since) || k.LastSeen.Before(k.FirstSeen) || k.LastSeen.After(fh.LastProbe) {
			return nil, fmt.Errorf("fingerprint %d: first_seen %s and last_seen %s are not within since %s and last_probe %s",
				k.Fingerprint, k.FirstSeen, k.LastSeen, fh.Since, fh.LastProbe)
		}
		hist.keys = append(hist.keys, keyRecord{fingerprint: k.Fingerprint, firstSeen: k.FirstSeen, lastSeen: k.LastSeen})
	}
	// Observe appends keys in the order they were first seen.
	slices.SortStableFunc(hist.keys, func(a, b keyRecord) int { return a.firstSeen.Compare(b.firstSeen) })
	return hist, nil
}

// restoreDecisions rebuilds from the saved timestamps what record and
// confirmRotations had decided about each key, which the file does not hold.
//
// A key last seen at the newest sighting of any key is still undecided. Any
// other key P was decided by the first probe after P's last sighting that
// showed keys. Its time is taken as the earliest sighting after P's that the
// file shows: a key first seen after P, or the last sighting of a key known
// before P. When that is a key first seen after P, it replaced P. This is
// exact except in one case: a known key seen between P's last sighting and a
// new key's first one and again after it, all before the file was written
// and within the window; the file cannot show that sighting, and the new key
// is taken for P's successor. A replacement is already counted when P was
// inactive at the last probe.
func (hist *targetHistory) restoreDecisions(window time.Duration) {
	var newest time.Time
	for _, k := range hist.keys {
		if k.lastSeen.After(newest) {
			newest = k.lastSeen
		}
	}
	for i := range hist.keys {
		p := &hist.keys[i]
		if !p.lastSeen.Before(newest) {
			continue
		}
		p.decided = true
		var next time.Time
		successor := false
		for _, k := range hist.keys {
			var t time.Time
			switch {
			case k.firstSeen.After(p.lastSeen):
				t = k.firstSeen
			case k.lastSeen.After(p.lastSeen):
				t = k.lastSeen
			default:
				continue
			}
			if next.IsZero() || t.Before(next) {
				next, successor = t, k.firstSeen.After(p.lastSeen)
			} else if t.Equal(next) && k.firstSeen.After(p.lastSeen) {
				successor = true
			}
		}
		if successor {
			p.successorFirstSeen = next
			p.counted = hist.lastProbe.Sub(p.lastSeen) >= window
		}
	}
}
