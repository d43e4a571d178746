package history

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Open returns a history kept in the file at path and its journal
// PATH.journal, so that nothing a probe answered with is lost by a crash:
//
//   - It checks that path can be used: its directory exists and path, when
//     it exists, is a regular file; and it locks PATH.lock, so that a second
//     process cannot open the same history while this one holds it.
//   - It removes temporary files an interrupted save left beside path.
//   - It reads path and replays the journal (see ReadFile). Files it cannot
//     use are renamed to PATH.bad-UNIXTIME and PATH.journal.bad-UNIXTIME,
//     for a post-mortem or a newer exporter after a downgrade, and the
//     history starts empty; that is logged, not an error.
//   - It compacts: writes the history to path and starts an empty journal.
//
// From then on ObserveDurable journals first sightings and rotations before
// it returns, Save compacts again, and Close saves a last time. An error
// means path cannot be written; it names the path and the reason.
func Open(path string, o Options) (*KeyHistory, error) {
	h := New(o)
	if err := checkPath(path); err != nil {
		return nil, err
	}
	lock, err := lockPath(path + lockSuffix)
	if err != nil {
		return nil, fmt.Errorf("key history %s: %w", path, err)
	}
	opened := false
	defer func() {
		if !opened {
			lock.Close()
		}
	}()
	h.removeStaleTemps(path)
	if err := h.ReadFile(path); err != nil {
		kept := keepAside(path)
		h.opts.Logger.Error("Cannot read key history; starting with an empty one", "path", path, "kept_as", kept, "err", err)
	}
	h.path = path
	if err := h.writeSnapshot(path, h.snapshot()); err != nil {
		return nil, fmt.Errorf("cannot write key history: %w", err)
	}
	j, err := startJournal(path+journalSuffix, h.opts.Logger, &h.writeFailures)
	if err != nil {
		return nil, fmt.Errorf("cannot write key history: %w", err)
	}
	h.mu.Lock()
	h.journal, h.lock = j, lock
	h.mu.Unlock()
	opened = true
	return h, nil
}

// lockSuffix makes the lock file's path from the snapshot's.
const lockSuffix = ".lock"

// checkPath reports why path cannot hold a key history.
func checkPath(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("key history %s: its directory: %w", path, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("key history %s: %s is not a directory", path, dir)
	}
	for _, p := range []string{path, path + journalSuffix, path + lockSuffix} {
		if fi, err := os.Stat(p); err == nil && !fi.Mode().IsRegular() {
			return fmt.Errorf("key history %s: %s is not a regular file", path, p)
		}
	}
	return nil
}

// removeStaleTemps removes the temporary files of the snapshot and of the
// journal that a crash during a save left beside path.
func (h *KeyHistory) removeStaleTemps(path string) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return // checkPath vouched for dir; writing will say what is wrong
	}
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !(strings.HasPrefix(name, "."+base+".tmp") || strings.HasPrefix(name, "."+base+journalSuffix+".tmp")) {
			continue
		}
		stale := filepath.Join(dir, name)
		if err := os.Remove(stale); err != nil {
			h.opts.Logger.Warn("Cannot remove a stale temporary file of the key history", "file", stale, "err", err)
			continue
		}
		h.opts.Logger.Info("Removed a stale temporary file of the key history", "file", stale)
	}
}

// keepAside renames the snapshot and journal at path out of the way and
// says where they went.
func keepAside(path string) string {
	suffix := fmt.Sprintf(".bad-%d", time.Now().Unix())
	var kept []string
	for _, p := range []string{path, path + journalSuffix} {
		if err := os.Rename(p, p+suffix); err == nil {
			kept = append(kept, p+suffix)
		} else if !errors.Is(err, os.ErrNotExist) {
			kept = append(kept, "(could not keep "+p+": "+err.Error()+")")
		}
	}
	return strings.Join(kept, ", ")
}

// errNotOpen is returned by Save on a history that Open did not return or
// that was closed.
var errNotOpen = errors.New("key history is not kept in a file")

// Save compacts the history: it writes everything to the file (last-seen
// times included, which the journal does not hold) and then drops from the
// journal the events the file now holds. Probes go on meanwhile.
func (h *KeyHistory) Save() error {
	h.saving.Lock()
	defer h.saving.Unlock()
	h.mu.Lock()
	j, snap := h.journal, h.snapshotLocked()
	h.mu.Unlock()
	if j == nil {
		return errNotOpen
	}
	if err := h.writeSnapshot(h.path, snap); err != nil {
		return err
	}
	return j.compact(snap.JournalSeq)
}

// Close saves the history a last time and closes its journal. Observe may
// still be called afterwards but is no longer saved.
func (h *KeyHistory) Close() error {
	h.saving.Lock()
	defer h.saving.Unlock()
	h.mu.Lock()
	j, lock, snap := h.journal, h.lock, h.snapshotLocked()
	h.journal, h.lock = nil, nil
	h.mu.Unlock()
	if j == nil {
		return nil
	}
	defer lock.Close() // last: the files are whole
	defer j.close()
	if err := h.writeSnapshot(h.path, snap); err != nil {
		return err
	}
	return j.compact(snap.JournalSeq)
}
