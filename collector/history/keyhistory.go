// Package history keeps, per (target, module), the session-ticket keys the
// probes have seen and when, derives from that the key's age and the
// server's rotations, and saves it across restarts. It knows nothing of
// Prometheus: collector publishes the KeyState it returns.
package history

import (
	"container/list"
	"context"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Defaults of Options, used for fields left at zero (or negative).
const (
	DefaultActiveWindow     = 15 * time.Minute
	DefaultMaxTargets       = 10000
	DefaultRetention        = 7 * 24 * time.Hour
	DefaultMaxKeysPerTarget = 16
)

// Options bounds a KeyHistory and gives it its clock.
type Options struct {
	// ActiveWindow: a key is active while it was seen less than this long
	// ago. It must exceed the probe interval, or a key reads as gone between
	// two probes.
	ActiveWindow time.Duration
	// MaxTargets bounds the number of (target, module) histories; the one
	// whose keys were seen least recently is dropped to make room. Only a
	// probe that saw a ticket key creates a history or counts as recent, so
	// failed probes of made-up targets cannot push a real one out.
	MaxTargets int
	// Retention drops histories not observed for this long.
	Retention time.Duration
	// MaxKeysPerTarget bounds the keys one history remembers; the least
	// recently seen keys (inactive ones first, by construction) are dropped.
	MaxKeysPerTarget int
	// Now is the clock. Only its wall-clock reading is used, so that two
	// exporters probing the same target publish the same timestamps.
	Now func() time.Time
	// Logger receives what reading and writing the history file has to
	// say (a torn journal line, a stale temporary file removed). Nil: none.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.ActiveWindow <= 0 {
		o.ActiveWindow = DefaultActiveWindow
	}
	if o.MaxTargets <= 0 {
		o.MaxTargets = DefaultMaxTargets
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.MaxKeysPerTarget <= 0 {
		o.MaxKeysPerTarget = DefaultMaxKeysPerTarget
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// KeyHistory remembers, per (target, module), which session-ticket keys the
// probes have seen and when, and derives from that the key's age and the
// server's rotations. Everything it derives is a function of the timestamps
// it holds and the current time, never of how often it was asked, and what
// it holds can be saved and restored across restarts (see persist.go).
//
// A history exists only for a (target, module) whose probes saw a ticket
// key: a failed probe, or one that saw no key name, creates none.
//
// KeyHistory is safe for concurrent use.
type KeyHistory struct {
	opts Options

	mu    sync.Mutex
	byKey map[historyKey]*targetHistory
	// byProbe orders the histories by last probe, for Retention; bySuccess
	// by the last probe that saw a key, for MaxTargets. Front: most recent.
	byProbe, bySuccess *list.List
	// seq numbers the journal's events; it is the last one assigned.
	seq uint64
	// journal, when set (see Open), receives every event a restart must not
	// lose.
	journal *journal
	evicted uint64

	// writeFailures counts failed writes of the snapshot and the journal.
	writeFailures atomic.Uint64
	// saving serialises Save and Close.
	saving sync.Mutex
	path   string   // of the snapshot Save writes, set by Open
	lock   *os.File // held from Open to Close
}

// historyKey names one history. serverName is the server name the probes
// sent (SNI) when it is not the target's own host, and empty when it is:
// virtual hosts on one address may have their own ticket keys, and a
// history that mixed them would read as one pool of keys whose rotations
// interleave. Empty is also what every history saved before the server name
// was kept means (history file version 2, journal version 1).
type historyKey struct{ target, module, serverName string }

// targetHistory is what one (target, module, server name) has shown so far.
type targetHistory struct {
	key historyKey
	// probeElem and successElem are its places in KeyHistory.byProbe and
	// KeyHistory.bySuccess.
	probeElem, successElem *list.Element
	// since is when this history started: the first Observe that saw a
	// key, or the one restored from file.
	since time.Time
	// lastProbe is the time of the last Observe.
	lastProbe time.Time
	// keys holds at most MaxKeysPerTarget keys in the order they were first
	// seen.
	keys                 []keyRecord
	rotations            int
	lastRotationInterval time.Duration
}

type keyRecord struct {
	fingerprint         uint64
	firstSeen, lastSeen time.Time
	// decided is set once a probe after lastSeen showed named keys; the
	// keys new in that probe, first seen at successorFirstSeen, replaced
	// this one (zero when there were none). See record.
	decided            bool
	successorFirstSeen time.Time
	// counted is set once the replacement was counted as a rotation.
	counted bool
}

// KeyState is what a KeyHistory publishes for one (target, module) after an
// Observe; collector.NewProbeCollector turns it into the key-history gauges.
type KeyState struct {
	// Since is when this history started watching the target; zero when
	// the target has no history (no probe saw a key yet).
	Since time.Time
	// HasKeys is true once any named key was seen (and is still held). When
	// false, only Since is published.
	HasKeys bool
	// NewestActiveFirstSeen and OldestActiveFirstSeen are the first
	// sightings of the newest and oldest active key.
	NewestActiveFirstSeen time.Time
	OldestActiveFirstSeen time.Time
	// ActiveKeys counts the distinct active keys.
	ActiveKeys int
	// Rotations counts the rotations confirmed since Since: keys that were
	// replaced by a successor (see confirmRotations).
	Rotations int
	// LastRotationInterval is the successor's first sighting minus the
	// predecessor's, for the last confirmed rotation; 0 when none was.
	LastRotationInterval time.Duration
}

// New returns an empty history.
func New(o Options) *KeyHistory {
	return &KeyHistory{
		opts:      o.withDefaults(),
		byKey:     make(map[historyKey]*targetHistory),
		byProbe:   list.New(),
		bySuccess: list.New(),
	}
}

// now reads the clock without its monotonic part: the history is about wall
// time, and restored timestamps have no monotonic reading either.
func (h *KeyHistory) now() time.Time { return h.opts.Now().Round(0) }

// Observe records the key names seen by one probe of target with module and
// returns the state to publish. keys may be empty: the target issued no
// tickets with a key name in this probe (unnamed or stateful tickets, none at
// all, or a failed probe). Such a probe creates no history; of an existing
// one it only moves the last-probe time, never erasing what was seen.
//
// Observe does not wait for the journal; see ObserveDurable. It records
// under the target's own host name as server name; see ObserveServerName.
func (h *KeyHistory) Observe(target, module string, keys []probe.KeyName) KeyState {
	return h.ObserveServerName(target, module, "", keys)
}

// ObserveServerName is Observe for probes that sent serverName as SNI; empty
// means the target's own host. Each server name of a target keeps its own
// history.
func (h *KeyHistory) ObserveServerName(target, module, serverName string, keys []probe.KeyName) KeyState {
	st, _ := h.observe(historyKey{target, module, serverName}, keys)
	return st
}

// ObserveDurable is Observe for a caller about to publish the state: when the
// history is journaled (see Open) and this probe saw a key for the first time
// or confirmed a rotation, it returns once that is on disk, so that no
// published first sighting is lost by a crash. Concurrent probes share one
// write and one fsync. An error says the journal write failed or ctx ended
// first; the state is returned either way. serverName is as for
// ObserveServerName.
func (h *KeyHistory) ObserveDurable(ctx context.Context, target, module, serverName string, keys []probe.KeyName) (KeyState, error) {
	st, c := h.observe(historyKey{target, module, serverName}, keys)
	if c == nil {
		return st, nil
	}
	return st, c.wait(ctx)
}

// observe is Observe, returning the journal commit to wait for (nil when
// nothing needs to be durable).
func (h *KeyHistory) observe(k historyKey, keys []probe.KeyName) (KeyState, *commit) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()

	h.expireLocked(now)
	hist, ok := h.byKey[k]
	if !ok {
		if len(keys) == 0 {
			return KeyState{}, nil // no fact to keep: no history
		}
		hist = &targetHistory{key: k, since: now}
		h.insertLocked(hist)
		h.evictLocked()
	}
	h.byProbe.MoveToFront(hist.probeElem)
	if len(keys) > 0 {
		h.bySuccess.MoveToFront(hist.successElem)
	}
	// Keep each history's timestamps in order if the wall clock steps back:
	// until it catches up, the history sees time stand still.
	if now.Before(hist.lastProbe) {
		now = hist.lastProbe
	}

	var c *commit
	if hist.record(keys, now) {
		c = h.emitLocked(keysEvent(hist, keys, now))
	}
	if hist.confirmRotations(now, h.opts.ActiveWindow) {
		c = h.emitLocked(rotationEvent(hist, now))
	}
	hist.lastProbe = now
	hist.prune(h.opts.MaxKeysPerTarget)
	return hist.state(now, h.opts.ActiveWindow), c
}

// record notes the keys seen by one probe and reports whether any is new.
//
// Several keys can be in use at once (a balancer over servers with different
// keys, DNS round robin, a probe that lands on either), so a new key alone
// proves nothing. A key P was replaced by N only if N was new in the first
// probe after P's last sighting that showed any named key: N took P's place.
// Had that probe shown only keys already known (P's peers), P merely went
// out of view — a backend left the pool — and no key arriving later replaces
// it. So every key not seen in a probe that shows keys gets its successor
// decided there: the keys new in that probe, or none. A key seen again is
// undecided again.
//
// A key that reappears after being inactive is the same key and keeps its
// first sighting.
func (hist *targetHistory) record(keys []probe.KeyName, now time.Time) bool {
	if len(keys) == 0 {
		return false // decides nothing: an outage does not replace a key
	}
	isNew := false
	seen := make(map[uint64]bool, len(keys))
	for _, kn := range keys {
		seen[kn.Fingerprint] = true
	}
	for i := range hist.keys {
		k := &hist.keys[i]
		if seen[k.fingerprint] {
			delete(seen, k.fingerprint)
			k.lastSeen = now
			k.decided, k.successorFirstSeen, k.counted = false, time.Time{}, false
		}
	}
	for _, kn := range keys { // in the probe's order: most tickets first
		if seen[kn.Fingerprint] {
			delete(seen, kn.Fingerprint)
			hist.keys = append(hist.keys, keyRecord{fingerprint: kn.Fingerprint, firstSeen: now, lastSeen: now})
			isNew = true
		}
	}
	for i := range hist.keys {
		k := &hist.keys[i]
		if k.lastSeen.Before(now) && !k.decided {
			k.decided = true
			if isNew {
				k.successorFirstSeen = now
			}
		}
	}
	return isNew
}

// confirmRotations counts the replacements that became certain and reports
// whether there was any. A key replaced by a successor (see record) is only
// counted once it is inactive, not seen for ActiveWindow: until then it may
// still come back, showing that the last probes merely did not reach it. The
// interval is the successor's first sighting minus the predecessor's. When
// several keys are replaced at once (A,B → C,D) each counts as a rotation.
func (hist *targetHistory) confirmRotations(now time.Time, window time.Duration) bool {
	found := false
	for i := range hist.keys {
		k := &hist.keys[i]
		if k.counted || k.successorFirstSeen.IsZero() || now.Sub(k.lastSeen) < window {
			continue
		}
		k.counted = true
		hist.rotations++
		hist.lastRotationInterval = k.successorFirstSeen.Sub(k.firstSeen)
		found = true
	}
	return found
}

// prune keeps at most max keys, dropping the least recently seen first (so
// inactive keys before active ones) and, among keys last seen together, the
// one first seen last. Keys whose successor is still undecided were seen in
// the latest probe that showed keys, so they go last, and rotations are
// confirmed before pruning: only a target showing more than max keys within
// the window can lose a count. A dropped key that reappears is new again.
func (hist *targetHistory) prune(max int) {
	for len(hist.keys) > max {
		drop := 0
		for i, k := range hist.keys {
			d := hist.keys[drop]
			if k.lastSeen.Before(d.lastSeen) || (k.lastSeen.Equal(d.lastSeen) && i > drop) {
				drop = i
			}
		}
		hist.keys = append(hist.keys[:drop], hist.keys[drop+1:]...)
	}
}

// state derives what to publish at now.
//
// The active keys are those seen within window. When none is, the target
// stopped showing named keys (it failed probes, or now issues unnamed
// tickets): rather than publishing 0 keys and no age, which would silence a
// "key not rotated" alert on any outage, the state is that of the last time a
// key was seen, i.e. the keys active as of the newest sighting. Rotations
// stay counted either way.
func (hist *targetHistory) state(now time.Time, window time.Duration) KeyState {
	st := KeyState{
		Since:                hist.since,
		Rotations:            hist.rotations,
		LastRotationInterval: hist.lastRotationInterval,
	}
	if len(hist.keys) == 0 {
		return st
	}
	st.HasKeys = true
	ref := hist.keys[0].lastSeen
	for _, k := range hist.keys[1:] {
		if k.lastSeen.After(ref) {
			ref = k.lastSeen
		}
	}
	if now.Sub(ref) < window {
		ref = now
	}
	for _, k := range hist.keys {
		if ref.Sub(k.lastSeen) >= window {
			continue
		}
		st.ActiveKeys++
		if st.NewestActiveFirstSeen.IsZero() || k.firstSeen.After(st.NewestActiveFirstSeen) {
			st.NewestActiveFirstSeen = k.firstSeen
		}
		if st.OldestActiveFirstSeen.IsZero() || k.firstSeen.Before(st.OldestActiveFirstSeen) {
			st.OldestActiveFirstSeen = k.firstSeen
		}
	}
	return st
}

// Len returns the number of (target, module) histories held.
func (h *KeyHistory) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.byKey)
}

// Evicted returns how many histories were dropped to stay within
// MaxTargets (not those past Retention).
func (h *KeyHistory) Evicted() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.evicted
}

// WriteFailures returns how many writes of the history file or its journal
// failed.
func (h *KeyHistory) WriteFailures() uint64 { return h.writeFailures.Load() }

// Expire drops the histories not observed for Retention. Observe does the
// same, so calling Expire only matters when Observe is rare.
func (h *KeyHistory) Expire() {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
}

// expireLocked walks from the least recently probed history. The list is
// ordered by lastProbe as long as the clock does not step back; if it does,
// an expired history may wait behind a newer one until it comes round, which
// delays its removal but never removes a live one.
func (h *KeyHistory) expireLocked(now time.Time) {
	for e := h.byProbe.Back(); e != nil; e = h.byProbe.Back() {
		hist := e.Value.(*targetHistory)
		if now.Sub(hist.lastProbe) < h.opts.Retention {
			return
		}
		h.removeLocked(hist, now)
	}
}

// evictLocked drops, beyond MaxTargets, the histories whose keys were seen
// least recently.
func (h *KeyHistory) evictLocked() {
	for h.bySuccess.Len() > h.opts.MaxTargets {
		hist := h.bySuccess.Back().Value.(*targetHistory)
		h.removeLocked(hist, hist.lastProbe)
		h.evicted++
	}
}

// insertLocked adds hist as the most recent in both orders.
func (h *KeyHistory) insertLocked(hist *targetHistory) {
	h.byKey[hist.key] = hist
	hist.probeElem = h.byProbe.PushFront(hist)
	hist.successElem = h.bySuccess.PushFront(hist)
}

func (h *KeyHistory) removeLocked(hist *targetHistory, now time.Time) {
	delete(h.byKey, hist.key)
	h.byProbe.Remove(hist.probeElem)
	h.bySuccess.Remove(hist.successElem)
	h.emitLocked(removeEvent(hist, now))
}
