package main

import (
	"fmt"
	"log/slog"
	"sync"
)

// How --probe.max-concurrent is sized when not given. A probe holds at most
// fdsPerProbe descriptors: one connection per resumption mechanism at a time
// (three) and the scrape's own connection. Half of the descriptors above
// fdReserve (listener, logs, history file, resolver) go to probes, the other
// half stays for scrape connections that are idle, waiting or being refused,
// so that the listener keeps accepting when every probe slot is taken.
const (
	fdsPerProbe = 4
	fdReserve   = 64
	// maxDefaultConcurrent caps the default where Go has raised the soft
	// limit to a hard limit of a million: beyond a thousand probes at once
	// memory, not descriptors, runs out (a probe reads up to 1 MiB).
	maxDefaultConcurrent = 1000
	// defaultPerTarget lets two Prometheus replicas scrape a target with two
	// modules at the same moment, and no more.
	defaultPerTarget = 4
)

// defaultMaxConcurrent is the number of probes that fit in half of the
// descriptors a soft limit allows above the reserve.
func defaultMaxConcurrent(soft uint64) int {
	if soft <= fdReserve+2*fdsPerProbe {
		return 1
	}
	return int(min((soft-fdReserve)/(2*fdsPerProbe), maxDefaultConcurrent))
}

// Refusal reasons of the limiter, label values of
// resumption_exporter_probes_refused_total.
const (
	reasonConcurrency       = "concurrency"
	reasonTargetConcurrency = "target_concurrency"
)

// limiter bounds the probes in flight, in all and per target. A probe that
// finds its limit reached is refused at once: waiting would let hanging
// targets build a queue of scrapes that all time out anyway.
type limiter struct {
	max, perTarget int

	mu       sync.Mutex
	inFlight int
	byTarget map[string]int // canonical target → probes in flight; no zero entries
}

func newLimiter(max, perTarget int) *limiter {
	return &limiter{max: max, perTarget: perTarget, byTarget: map[string]int{}}
}

// acquire takes a slot for a probe of target. When a limit is full it
// returns a nil release, the refusal reason and a one-line message.
func (l *limiter) acquire(target string) (release func(), reason, msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.inFlight >= l.max:
		return nil, reasonConcurrency, fmt.Sprintf("%d probes in flight, the most --probe.max-concurrent allows; try again later", l.inFlight)
	case l.byTarget[target] >= l.perTarget:
		return nil, reasonTargetConcurrency, fmt.Sprintf("%d probes of target %s in flight, the most --probe.max-concurrent-per-target allows; try again later", l.byTarget[target], target)
	}
	l.inFlight++
	l.byTarget[target]++
	var once sync.Once
	return func() { once.Do(func() { l.release(target) }) }, "", ""
}

func (l *limiter) release(target string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlight--
	if l.byTarget[target]--; l.byTarget[target] == 0 {
		delete(l.byTarget, target)
	}
}

// InFlight returns the number of probes running.
func (l *limiter) InFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight
}

// sizeLimiter applies the flags, sizing what they leave at 0 from the
// descriptor limit, and logs what the limit allows.
func sizeLimiter(o options, logger *slog.Logger) *limiter {
	max, perTarget := o.maxConcurrent, o.maxPerTarget
	if perTarget <= 0 {
		perTarget = defaultPerTarget
	}
	soft, hard, err := fdLimit()
	if err != nil {
		if max <= 0 {
			max = maxDefaultConcurrent
		}
		logger.Warn("Cannot read the file descriptor limit", "err", err, "max_concurrent_probes", max)
		return newLimiter(max, perTarget)
	}
	if max <= 0 {
		max = defaultMaxConcurrent(soft)
	}
	logger.Info("File descriptor limit", "soft", soft, "hard", hard,
		"max_concurrent_probes", max, "max_concurrent_probes_per_target", perTarget, "fds_per_probe", fdsPerProbe)
	if need := uint64(max)*fdsPerProbe + fdReserve; need > soft {
		logger.Warn("--probe.max-concurrent allows more probes than file descriptors; new connections may fail to be accepted under load",
			"max_concurrent_probes", max, "fds_needed", need, "soft_limit", soft)
	}
	return newLimiter(max, perTarget)
}
