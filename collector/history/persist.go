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
	"strconv"
	"time"
)

// fileVersion is the version of the history file format written by
// WriteFile. ReadFile reads it, version 2, which had no server_name (each
// history was of the target's own host, as an empty server_name is now),
// and version 1, which had no journal_seq either.
const (
	fileVersion       = 3
	oldestFileVersion = 1
)

// maxFingerprint bounds a key fingerprint: 48 bits (see probe.Fingerprint).
const maxFingerprint = 1<<48 - 1

// historyFile is the saved form of a KeyHistory. It holds fingerprints and
// timestamps only: never tickets, secrets or raw key names.
type historyFile struct {
	Version int `json:"version"`
	// JournalSeq is the number of the last journal event the file holds;
	// reading replays only the later ones.
	JournalSeq uint64 `json:"journal_seq"`
	// Histories, the least recently successful first.
	Histories []fileHistory `json:"histories"`
}

type fileHistory struct {
	Target string `json:"target"`
	Module string `json:"module"`
	// ServerName is historyKey.serverName; absent (before version 3) or
	// empty: the target's own host.
	ServerName                  string    `json:"server_name,omitempty"`
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

// WriteFile saves the histories to path atomically: it writes a temporary
// file in the same directory with mode 0600, syncs it, renames it over path
// and syncs the directory, so a crash leaves either the old file or the new
// one. Observe may run meanwhile; the file holds a consistent snapshot. It
// writes no journal: see Open for a history that keeps one.
func (h *KeyHistory) WriteFile(path string) error {
	return h.writeSnapshot(path, h.snapshot())
}

func (h *KeyHistory) writeSnapshot(path string, f historyFile) error {
	_, err := replaceFile(path, f.appendJSON(make([]byte, 0, f.sizeHint())), false)
	if err != nil {
		h.writeFailures.Add(1)
		return fmt.Errorf("saving key history %s: %w", path, err)
	}
	return nil
}

// appendJSON appends f as JSON, as json.Marshal would write it but several
// times faster: encoding/json re-validates every timestamp time.Time
// marshals, which dominates writing 100 000 histories.
func (f historyFile) appendJSON(b []byte) []byte {
	b = fmt.Appendf(b, `{"version":%d,"journal_seq":%d,"histories":[`, f.Version, f.JournalSeq)
	for i, fh := range f.Histories {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"target":`...)
		b = appendJSONString(b, fh.Target)
		b = append(b, `,"module":`...)
		b = appendJSONString(b, fh.Module)
		if fh.ServerName != "" {
			b = appendJSONString(append(b, `,"server_name":`...), fh.ServerName)
		}
		b = appendJSONTime(append(b, `,"since":`...), fh.Since)
		b = appendJSONTime(append(b, `,"last_probe":`...), fh.LastProbe)
		b = strconv.AppendInt(append(b, `,"rotations":`...), int64(fh.Rotations), 10)
		b = strconv.AppendFloat(append(b, `,"last_rotation_interval_seconds":`...), fh.LastRotationIntervalSeconds, 'f', -1, 64)
		b = append(b, `,"keys":[`...)
		for j, k := range fh.Keys {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendUint(append(b, `{"fingerprint":`...), k.Fingerprint, 10)
			b = appendJSONTime(append(b, `,"first_seen":`...), k.FirstSeen)
			b = appendJSONTime(append(b, `,"last_seen":`...), k.LastSeen)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	return append(b, "]}"...)
}

// sizeHint is about the length of f's JSON, so that appendJSON writes into
// one buffer instead of growing it: 100 000 histories take tens of MB.
func (f historyFile) sizeHint() int {
	n := 64
	for _, fh := range f.Histories {
		n += 200 + len(fh.Target) + len(fh.Module) + len(fh.ServerName) + 100*len(fh.Keys)
	}
	return n
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s) // a string always marshals
	if err != nil {
		panic(err)
	}
	return append(b, q...)
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds, quoted). Saved times are wall-clock times of this century.
func appendJSONTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// replaceFile writes data to a temporary file beside path with mode 0600,
// syncs it, renames it over path and syncs the directory. With keepOpen it
// returns the file, open for reading and writing; else nil.
func replaceFile(path string, data []byte, keepOpen bool) (*os.File, error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return nil, err
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
		return nil, err
	}
	if _, err := tmp.Write(data); err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, err
	}
	committed = true
	if err := syncDir(dir); err != nil {
		tmp.Close()
		return nil, err
	}
	if keepOpen {
		return tmp, nil
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	return nil, nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// snapshot copies the histories under the lock.
func (h *KeyHistory) snapshot() historyFile {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.snapshotLocked()
}

// snapshotLocked lists the histories least recently successful first, so
// that ReadFile rebuilds the same eviction order.
func (h *KeyHistory) snapshotLocked() historyFile {
	f := historyFile{Version: fileVersion, JournalSeq: h.seq, Histories: make([]fileHistory, 0, len(h.byKey))}
	for e := h.bySuccess.Back(); e != nil; e = e.Prev() {
		hist := e.Value.(*targetHistory)
		fh := fileHistory{
			Target:                      hist.key.target,
			Module:                      hist.key.module,
			ServerName:                  hist.key.serverName,
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

// ReadFile replaces the histories with those saved in path and its journal
// (PATH.journal, replayed after the snapshot; see journal.go). A missing
// file is a fresh start, not an error. A file that cannot be used
// (unreadable, truncated, corrupt, another format version) yields an error
// naming the path and leaves the history empty, so the caller can log it and
// carry on without trusting half of it. A journal whose last line was torn
// by a crash is used up to that line.
//
// The bounds of the options apply to what is read: histories older than
// Retention are dropped, at most MaxTargets of the most recently successful
// are kept, and each keeps at most MaxKeysPerTarget keys. Histories without
// a key (which version 1 kept for failed probes) are dropped. Rotations not
// yet confirmed when the file was written are confirmed by the next Observe,
// as they would have been without the restart.
func (h *KeyHistory) ReadFile(path string) error {
	hists, seq, err := h.readFiles(path)
	now := h.now()

	h.mu.Lock()
	defer h.mu.Unlock()
	h.byKey = make(map[historyKey]*targetHistory, len(hists))
	h.byProbe, h.bySuccess = list.New(), list.New()
	if err != nil {
		return err
	}
	h.seq = max(h.seq, seq)
	for _, hist := range hists {
		hist.restoreDecisions(h.opts.ActiveWindow)
		hist.prune(h.opts.MaxKeysPerTarget)
		h.byKey[hist.key] = hist
	}
	// Oldest first, so that PushFront leaves the newest at the front. The
	// sorts are stable: histories last seen together keep the file's order.
	slices.SortStableFunc(hists, func(a, b *targetHistory) int { return a.lastSuccess().Compare(b.lastSuccess()) })
	for _, hist := range hists {
		hist.successElem = h.bySuccess.PushFront(hist)
	}
	slices.SortStableFunc(hists, func(a, b *targetHistory) int { return a.lastProbe.Compare(b.lastProbe) })
	for _, hist := range hists {
		hist.probeElem = h.byProbe.PushFront(hist)
	}
	h.expireLocked(now)
	h.evictLocked()
	return nil
}

// readFiles reads the snapshot at path and replays its journal, and returns
// the histories (those with keys, in the snapshot's order, then those the
// journal created) and the number of the last event they hold.
func (h *KeyHistory) readFiles(path string) ([]*targetHistory, uint64, error) {
	f, err := readHistoryFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, fmt.Errorf("reading key history %s: %w", path, err)
	}
	byKey := make(map[historyKey]*targetHistory, len(f.hists))
	for _, hist := range f.hists {
		byKey[hist.key] = hist
	}
	order := f.hists
	seq, err := replayJournal(path+journalSuffix, byKey, &order, f.seq, h.opts.Logger)
	if err != nil {
		return nil, 0, fmt.Errorf("reading key history %s: %w", path, err)
	}
	hists := make([]*targetHistory, 0, len(byKey))
	for _, hist := range order {
		if byKey[hist.key] == hist && len(hist.keys) > 0 {
			slices.SortStableFunc(hist.keys, func(a, b keyRecord) int { return a.firstSeen.Compare(b.firstSeen) })
			hists = append(hists, hist)
		}
	}
	return hists, seq, nil
}

// lastSuccess is when a key was last seen.
func (hist *targetHistory) lastSuccess() time.Time {
	var t time.Time
	for _, k := range hist.keys {
		if k.lastSeen.After(t) {
			t = k.lastSeen
		}
	}
	return t
}

// snapshotFile is a decoded history file.
type snapshotFile struct {
	hists []*targetHistory
	seq   uint64
}

// readHistoryFile decodes and checks a history file.
func readHistoryFile(path string) (snapshotFile, error) {
	file, err := os.Open(path)
	if err != nil {
		return snapshotFile{}, err
	}
	defer file.Close()
	// Decoded from the file: no copy of the whole file besides the
	// decoder's.
	var f historyFile
	dec := json.NewDecoder(file)
	dec.DisallowUnknownFields()
	err = dec.Decode(&f)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the end")
		}
	}
	if err != nil || f.Version != fileVersion {
		// Only now read the version alone, so that a file from another
		// version is reported as such rather than as whatever field it
		// does not share.
		data, rerr := os.ReadFile(path)
		if rerr != nil {
			return snapshotFile{}, rerr
		}
		if verr := checkFileVersion(data); verr != nil {
			return snapshotFile{}, verr
		}
	}
	if err != nil {
		return snapshotFile{}, fmt.Errorf("corrupt key history: %w", err)
	}
	seen := make(map[historyKey]bool, len(f.Histories))
	hists := make([]*targetHistory, 0, len(f.Histories))
	for i, fh := range f.Histories {
		hist, err := fh.decode()
		if err != nil {
			return snapshotFile{}, fmt.Errorf("history %d (target %q, module %q): %w", i, fh.Target, fh.Module, err)
		}
		if seen[hist.key] {
			return snapshotFile{}, fmt.Errorf("history %d: target %q, module %q, server name %q listed twice", i, fh.Target, fh.Module, fh.ServerName)
		}
		seen[hist.key] = true
		hists = append(hists, hist)
	}
	return snapshotFile{hists: hists, seq: f.JournalSeq}, nil
}

// checkFileVersion says why data is not a history file of a version
// ReadFile reads, if it is not.
func checkFileVersion(data []byte) error {
	var v struct {
		Version *int `json:"version"`
	}
	if err := json.NewDecoder(bytes.NewReader(data)).Decode(&v); err != nil {
		return fmt.Errorf("not a key history file: %w", err)
	}
	if v.Version == nil {
		return errors.New("not a key history file: no version")
	}
	if *v.Version < oldestFileVersion || *v.Version > fileVersion {
		return fmt.Errorf("unsupported format version %d (want %d to %d)", *v.Version, oldestFileVersion, fileVersion)
	}
	return nil
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
		key:                  historyKey{fh.Target, fh.Module, fh.ServerName},
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
