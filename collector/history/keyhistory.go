// Package history keeps, per (target, module), the session-ticket keys the
// probes have seen and when, derives from that the key's age and the
// server's rotations, and saves it across restarts. It knows nothing of
// Prometheus: collector publishes the KeyState it returns.
package history

import (
	"container/list"
	"sync"
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
	// MaxTargets bounds the number of (target, module) histories; the least
	// recently observed one is dropped to make room.
	MaxTargets int
	// Retention drops histories not observed for this long.
	Retention time.Duration
	// MaxKeysPerTarget bounds the keys one history remembers; the least
	// recently seen keys (inactive ones first, by construction) are dropped.
	MaxKeysPerTarget int
	// Now is the clock. Only its wall-clock reading is used, so that two
	// exporters probing the same target publish the same timestamps.
	Now func() time.Time
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
	return o
}

// KeyHistory remembers, per (target, module), which session-ticket keys the
// probes have seen and when, and derives from that the key's age and the
// server's rotations. Everything it derives is a function of the timestamps
// it holds and the current time, never of how often it was asked, and what
// it holds can be saved and restored across restarts (see persist.go).
//
// KeyHistory is safe for concurrent use.
type KeyHistory struct {
	opts    Options
	changed chan struct{}

	mu      sync.Mutex
	byKey   map[historyKey]*list.Element // of *targetHistory
	recency *list.List                   // front: most recently observed
}

type historyKey struct{ target, module string }

// targetHistory is what one (target, module) has shown so far.
type targetHistory struct {
	key historyKey
	// since is when this history started: the first Observe, or the one
	// restored from file.
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
	// Since is when this history started watching the target.
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
		opts:    o.withDefaults(),
		changed: make(chan struct{}, 1),
		byKey:   make(map[historyKey]*list.Element),
		recency: list.New(),
	}
}

// now reads the clock without its monotonic part: the history is about wall
// time, and restored timestamps have no monotonic reading either.
func (h *KeyHistory) now() time.Time { return h.opts.Now().Round(0) }

// Observe records the key names seen by one probe of target with module and
// returns the state to publish. keys may be empty: the target issued no
// tickets with a key name in this probe (unnamed or stateful tickets, none at
// all, or a failed probe — the caller decides whether failed probes are
// observed; they only move lastProbe and never erase what was seen).
func (h *KeyHistory) Observe(target, module string, keys []probe.KeyName) KeyState {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()

	h.expireLocked(now)
	k := historyKey{target, module}
	var hist *targetHistory
	changed := false
	if e, ok := h.byKey[k]; ok {
		h.recency.MoveToFront(e)
		hist = e.Value.(*targetHistory)
	} else {
		hist = &targetHistory{key: k, since: now}
		h.byKey[k] = h.recency.PushFront(hist)
		h.evictLocked()
		changed = true
	}
	// Keep each history's timestamps in order if the wall clock steps back:
	// until it catches up, the history sees time stand still.
	if now.Before(hist.lastProbe) {
		now = hist.lastProbe
	}

	if hist.record(keys, now) {
		changed = true
	}
	if hist.confirmRotations(now, h.opts.ActiveWindow) {
		changed = true
	}
	hist.lastProbe = now
	hist.prune(h.opts.MaxKeysPerTarget)

	if changed {
		h.notify()
	}
	return hist.state(now, h.opts.ActiveWindow)
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
	return h.recency.Len()
}

// Expire drops the histories not observed for Retention. Observe does the
// same, so calling Expire only matters when Observe is rare.
func (h *KeyHistory) Expire() {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expireLocked(now)
}

// expireLocked walks from the least recently observed history. The recency
// list is ordered by lastProbe as long as the clock does not step back; if
// it does, an expired history may wait behind a newer one until it comes
// round, which delays its removal but never removes a live one.
func (h *KeyHistory) expireLocked(now time.Time) {
	for e := h.recency.Back(); e != nil; e = h.recency.Back() {
		hist := e.Value.(*targetHistory)
		if now.Sub(hist.lastProbe) < h.opts.Retention {
			return
		}
		h.removeLocked(e)
	}
}

// evictLocked drops the least recently observed histories beyond MaxTargets.
func (h *KeyHistory) evictLocked() {
	for h.recency.Len() > h.opts.MaxTargets {
		h.removeLocked(h.recency.Back())
	}
}

func (h *KeyHistory) removeLocked(e *list.Element) {
	delete(h.byKey, e.Value.(*targetHistory).key)
	h.recency.Remove(e)
}

// notify tells the owner, without blocking, that something worth saving
// happened; several notifications before the owner looks coalesce into one.
func (h *KeyHistory) notify() {
	select {
	case h.changed <- struct{}{}:
	default:
	}
}
