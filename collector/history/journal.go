package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// The journal (PATH.journal beside the snapshot PATH) holds, one JSON line
// each, the events since the last snapshot that a restart must not lose: a
// probe that saw a key for the first time, a confirmed rotation, a removed
// history. Its first line is a header naming the format and its version.
// Lines are appended in batches, one write and one fsync per batch, and a
// probe that caused an event answers only after its batch is synced. Save
// writes a new snapshot and then replaces the journal with the events the
// snapshot does not hold; reading replays, after the snapshot, the events
// numbered after the snapshot's journal_seq.
//
// Last-seen times are not journaled: they change on every probe, and the
// periodic Save keeps them.

// journalVersion is the version of the journal format written. Reading also
// takes version 1, whose events had no server_name: each meant the target's
// own host, as an empty one does now.
const (
	journalVersion       = 2
	oldestJournalVersion = 1
)

// journalFormat names the format in the header, so that a journal is never
// mistaken for another JSON-lines file.
const journalFormat = "resumption_exporter key history journal"

// journalSuffix makes the journal's path from the snapshot's.
const journalSuffix = ".journal"

type journalHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

type eventOp string

const (
	// opKeys: a probe saw a key not seen before (its history may be new).
	opKeys eventOp = "keys"
	// opRotation: a rotation was confirmed.
	opRotation eventOp = "rotation"
	// opRemove: a history was dropped (MaxTargets or Retention).
	opRemove eventOp = "remove"
)

// event is one journal line. Seq numbers the events of a KeyHistory in the
// order they happened, across snapshots.
type event struct {
	Seq    uint64  `json:"seq"`
	Op     eventOp `json:"op"`
	Target string  `json:"target"`
	Module string  `json:"module"`
	// ServerName is historyKey.serverName (absent: the target's own host).
	ServerName string    `json:"server_name,omitempty"`
	At         time.Time `json:"at"`
	// opKeys: when the history started, and the fingerprints of every key
	// the probe saw, new or known (their last sighting is At).
	Since time.Time `json:"since,omitzero"`
	Seen  []uint64  `json:"seen,omitempty"`
	// opRotation: the history's totals after the rotation.
	Rotations                   int     `json:"rotations,omitempty"`
	LastRotationIntervalSeconds float64 `json:"last_rotation_interval_seconds,omitempty"`
}

func keysEvent(hist *targetHistory, keys []probe.KeyName, at time.Time) event {
	seen := make([]uint64, len(keys))
	for i, k := range keys {
		seen[i] = k.Fingerprint
	}
	return event{Op: opKeys, Target: hist.key.target, Module: hist.key.module, ServerName: hist.key.serverName, At: at, Since: hist.since, Seen: seen}
}

func rotationEvent(hist *targetHistory, at time.Time) event {
	return event{
		Op: opRotation, Target: hist.key.target, Module: hist.key.module, ServerName: hist.key.serverName, At: at,
		Rotations: hist.rotations, LastRotationIntervalSeconds: hist.lastRotationInterval.Seconds(),
	}
}

func removeEvent(hist *targetHistory, at time.Time) event {
	return event{Op: opRemove, Target: hist.key.target, Module: hist.key.module, ServerName: hist.key.serverName, At: at}
}

// emitLocked numbers ev and queues it for the journal, if there is one, and
// returns the commit it will be part of.
func (h *KeyHistory) emitLocked(ev event) *commit {
	if h.journal == nil {
		return nil
	}
	h.seq++
	ev.Seq = h.seq
	return h.journal.add(ev)
}

// commit is one batch of journal lines: done is closed once they are synced
// (err nil) or the write failed.
type commit struct {
	done chan struct{}
	err  error
}

func (c *commit) wait(ctx context.Context) error {
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the key history journal: %w", context.Cause(ctx))
	}
}

// journal appends events to PATH.journal from one goroutine, which owns the
// file. Events queued while a batch is being written and synced form the
// next batch: concurrent probes share one fsync (group commit).
type journal struct {
	path     string
	logger   *slog.Logger
	failures *atomic.Uint64

	mu      sync.Mutex
	pending []event
	next    *commit       // the commit pending events go in; nil when none
	kick    chan struct{} // capacity 1: something is pending

	compactions chan compaction
	stop        chan struct{}
	stopped     chan struct{}
	syncs       atomic.Uint64 // batches synced, for tests and benchmarks

	// Owned by the writer goroutine.
	f     *os.File
	size  int64      // bytes of f holding whole lines
	lines []lineMark // the event lines of f, in order
}

// lineMark is where the event numbered seq starts in the journal file.
type lineMark struct {
	seq uint64
	off int64
}

// compaction asks the writer to drop the events up to seq, which a synced
// snapshot holds.
type compaction struct {
	seq   uint64
	reply chan error
}

// createJournal atomically replaces path with a journal holding the header
// and then body (whole event lines), synced, and returns it open for
// appending with its size.
func createJournal(path string, body []byte) (*os.File, int64, error) {
	hdr, err := json.Marshal(journalHeader{Format: journalFormat, Version: journalVersion})
	if err != nil {
		return nil, 0, err
	}
	data := make([]byte, 0, len(hdr)+1+len(body))
	data = append(append(append(data, hdr...), '\n'), body...)
	f, err := replaceFile(path, data, true)
	if err != nil {
		return nil, 0, err
	}
	return f, int64(len(data)), nil
}

func startJournal(path string, logger *slog.Logger, failures *atomic.Uint64) (*journal, error) {
	f, size, err := createJournal(path, nil)
	if err != nil {
		return nil, fmt.Errorf("creating key history journal %s: %w", path, err)
	}
	j := &journal{
		path: path, logger: logger, failures: failures,
		kick:        make(chan struct{}, 1),
		compactions: make(chan compaction),
		stop:        make(chan struct{}),
		stopped:     make(chan struct{}),
		f:           f, size: size,
	}
	go j.run()
	return j, nil
}

// add queues ev and returns the commit that will hold it.
func (j *journal) add(ev event) *commit {
	j.mu.Lock()
	j.pending = append(j.pending, ev)
	if j.next == nil {
		j.next = &commit{done: make(chan struct{})}
	}
	c := j.next
	j.mu.Unlock()
	select {
	case j.kick <- struct{}{}:
	default:
	}
	return c
}

func (j *journal) run() {
	for {
		select {
		case <-j.kick:
			j.commitPending()
		case c := <-j.compactions:
			c.reply <- j.rewrite(c.seq)
		case <-j.stop:
			j.commitPending()
			j.f.Close()
			close(j.stopped)
			return
		}
	}
}

// close writes what is pending and stops the writer. Nothing may be added
// afterwards.
func (j *journal) close() {
	close(j.stop)
	<-j.stopped
}

// compact has the writer drop the events up to seq.
func (j *journal) compact(seq uint64) error {
	reply := make(chan error, 1)
	j.compactions <- compaction{seq: seq, reply: reply}
	return <-reply
}

// commitPending writes and syncs the pending events as one batch.
func (j *journal) commitPending() {
	j.mu.Lock()
	evs, c := j.pending, j.next
	j.pending, j.next = nil, nil
	j.mu.Unlock()
	if c == nil {
		return
	}
	c.err = j.append(evs)
	close(c.done)
}

func (j *journal) append(evs []event) error {
	if len(evs) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	marks := make([]lineMark, len(evs))
	for i, ev := range evs {
		marks[i] = lineMark{seq: ev.Seq, off: j.size + int64(buf.Len())}
		if err := enc.Encode(ev); err != nil { // appends the newline
			return fmt.Errorf("encoding key history journal event: %w", err)
		}
	}
	_, err := j.f.WriteAt(buf.Bytes(), j.size)
	if err == nil {
		err = j.f.Sync()
	}
	if err != nil {
		j.failures.Add(1)
		// No half line may stay before the next batch. The events stay in
		// memory, and the next Save writes them.
		j.f.Truncate(j.size)
		j.logger.Error("Cannot write key history journal", "path", j.path, "events", len(evs), "err", err)
		return fmt.Errorf("writing key history journal %s: %w", j.path, err)
	}
	j.size += int64(buf.Len())
	j.lines = append(j.lines, marks...)
	j.syncs.Add(1)
	return nil
}

// rewrite replaces the journal with one holding only the events after seq,
// the ones the snapshot just written lacks. Should it fail, the old journal
// stays, whose earlier events reading skips.
func (j *journal) rewrite(seq uint64) error {
	j.mu.Lock()
	kept := j.pending[:0]
	for _, ev := range j.pending {
		if ev.Seq > seq {
			kept = append(kept, ev)
		}
	}
	clear(j.pending[len(kept):])
	j.pending = kept
	j.mu.Unlock()

	i := sort.Search(len(j.lines), func(i int) bool { return j.lines[i].seq > seq })
	from := j.size
	if i < len(j.lines) {
		from = j.lines[i].off
	}
	tail := make([]byte, j.size-from)
	if _, err := j.f.ReadAt(tail, from); err != nil {
		j.failures.Add(1)
		return fmt.Errorf("compacting key history journal %s: reading it: %w", j.path, err)
	}
	f, size, err := createJournal(j.path, tail)
	if err != nil {
		j.failures.Add(1)
		return fmt.Errorf("compacting key history journal %s: %w", j.path, err)
	}
	j.f.Close()
	shift := size - int64(len(tail)) - from
	lines := make([]lineMark, 0, len(j.lines)-i)
	for _, m := range j.lines[i:] {
		lines = append(lines, lineMark{seq: m.seq, off: m.off + shift})
	}
	j.f, j.size, j.lines = f, size, lines
	return nil
}

// replayJournal applies to hists, in order, the events of the journal at
// path numbered after afterSeq, and returns the number of the last event.
// order receives the histories it creates, in creation order. A missing
// journal is no error. A line that cannot be used ends the replay: when it
// is the last line it was torn by a crash mid-write, before its batch was
// synced and so before any probe answered with it, and is only logged.
func replayJournal(path string, hists map[historyKey]*targetHistory, order *[]*targetHistory, afterSeq uint64, logger *slog.Logger) (uint64, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return afterSeq, nil
	}
	if err != nil {
		return 0, err
	}
	hdr, rest, _ := bytes.Cut(data, []byte("\n"))
	var h journalHeader
	if err := json.Unmarshal(hdr, &h); err != nil || h.Format != journalFormat {
		return 0, fmt.Errorf("journal %s: not a key history journal", path)
	}
	if h.Version < oldestJournalVersion || h.Version > journalVersion {
		return 0, fmt.Errorf("journal %s: unsupported format version %d (want %d to %d)", path, h.Version, oldestJournalVersion, journalVersion)
	}
	last := afterSeq
	var prev uint64
	for n := 2; len(rest) > 0; n++ {
		var line []byte
		line, rest, _ = bytes.Cut(rest, []byte("\n"))
		ev, err := decodeEvent(line, prev)
		if err == nil && ev.Seq > afterSeq {
			err = applyEvent(hists, order, ev)
		}
		if err != nil {
			if len(bytes.TrimSpace(rest)) == 0 {
				logger.Warn("Ignoring the torn last line of the key history journal", "path", path, "line", n, "err", err)
			} else {
				logger.Error("Key history journal is damaged; ignoring it from this line on", "path", path, "line", n, "bytes_ignored", len(line)+1+len(rest), "err", err)
			}
			break
		}
		prev = ev.Seq
		last = max(last, ev.Seq)
	}
	return last, nil
}

// decodeEvent parses one journal line and checks it for what emitLocked
// could never have written.
func decodeEvent(line []byte, prev uint64) (event, error) {
	var ev event
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		return ev, fmt.Errorf("corrupt event: %w", err)
	}
	if dec.More() {
		return ev, errors.New("corrupt event: data after the end")
	}
	switch {
	case ev.Seq <= prev:
		return ev, fmt.Errorf("event %d after event %d", ev.Seq, prev)
	case ev.Target == "":
		return ev, errors.New("event with an empty target")
	case ev.At.IsZero():
		return ev, errors.New("event without a time")
	}
	switch ev.Op {
	case opKeys:
		if len(ev.Seen) == 0 || ev.Since.IsZero() || ev.Since.After(ev.At) {
			return ev, fmt.Errorf("keys event %d without keys or with since %s after %s", ev.Seq, ev.Since, ev.At)
		}
		for _, fp := range ev.Seen {
			if fp > maxFingerprint {
				return ev, fmt.Errorf("keys event %d: fingerprint %d is wider than 48 bits", ev.Seq, fp)
			}
		}
	case opRotation:
		if secs := ev.LastRotationIntervalSeconds; ev.Rotations <= 0 || math.IsNaN(secs) || secs < 0 || secs > math.MaxInt64/float64(time.Second) {
			return ev, fmt.Errorf("rotation event %d: rotations %d, interval %v", ev.Seq, ev.Rotations, ev.LastRotationIntervalSeconds)
		}
	case opRemove:
	default:
		return ev, fmt.Errorf("event %d: unknown op %q", ev.Seq, ev.Op)
	}
	return ev, nil
}

// applyEvent replays ev on hists as the Observe that wrote it changed them.
func applyEvent(hists map[historyKey]*targetHistory, order *[]*targetHistory, ev event) error {
	k := historyKey{ev.Target, ev.Module, ev.ServerName}
	hist := hists[k]
	if ev.Op == opRemove {
		delete(hists, k)
		return nil
	}
	if hist == nil {
		if ev.Op != opKeys {
			return fmt.Errorf("event %d: %s for target %q, module %q, which has no history", ev.Seq, ev.Op, ev.Target, ev.Module)
		}
		hist = &targetHistory{key: k, since: ev.Since, lastProbe: ev.Since}
		hists[k] = hist
		*order = append(*order, hist)
	}
	at := ev.At
	if at.Before(hist.lastProbe) {
		at = hist.lastProbe // as Observe keeps a history's times in order
	}
	hist.lastProbe = at
	switch ev.Op {
	case opKeys:
	seen:
		for _, fp := range ev.Seen {
			for i := range hist.keys {
				if hist.keys[i].fingerprint == fp {
					hist.keys[i].lastSeen = at
					continue seen
				}
			}
			hist.keys = append(hist.keys, keyRecord{fingerprint: fp, firstSeen: at, lastSeen: at})
		}
	case opRotation:
		hist.rotations = ev.Rotations
		hist.lastRotationInterval = time.Duration(math.Round(ev.LastRotationIntervalSeconds * float64(time.Second)))
	}
	return nil
}
