package bench

import (
	"crypto/sha256"
	"os"
	"testing"
	"time"
)

// The /proc readers the benchmarks measure with read this very process.
func TestProcReaders(t *testing.T) {
	self := os.Getpid()
	before := cpuTime(self)
	sum := sha256.Sum256(nil)
	for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
		sum = sha256.Sum256(sum[:])
	}
	if got := cpuTime(self) - before; got < clockTick {
		t.Errorf("100 ms of busy work added %s of CPU time", got)
	}
	if rss := rssBytes(self); rss < 1<<20 {
		t.Errorf("VmRSS = %d bytes, want at least 1 MiB", rss)
	}
	if got := cpuTime(-1); got != 0 {
		t.Errorf("cpuTime of no process = %s", got)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3}, 3},
		{[]time.Duration{5, 1, 3}, 3},
		{[]time.Duration{4, 1, 3, 2}, 3},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
