package bench

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// Scale of the target fleet the scale benchmark extrapolates to.
const (
	fleetTargets  = 10_000
	fleetInterval = 60 * time.Second
)

// BenchmarkScale probes scaleTargets loopback targets — one nginx listening
// on 127.0.0.2 … 127.0.0.(scaleTargets+1), the same port on each, so every
// address is a target of its own with its own sessions and history — at a
// tenth of the probe rate of 10 000 targets every 60 s, for a bounded time,
// each target several times, and reports the exporter's and nginx's CPU
// (in cores), the exporter's resident memory, and both CPU figures
// extrapolated to the full rate. Probes run as Prometheus sends them: on a
// schedule, each with a scrape timeout, at most maxInFlight at once.
func BenchmarkScale(b *testing.B) {
	const (
		// nginx counts each listening socket against its 256
		// worker_connections: 121 listeners leave room for the
		// connections of maxInFlight probes (at most 4 each).
		scaleTargets = 120
		rateShare    = 10 // the run is 1/rateShare of the full rate
		maxInFlight  = 16
	)
	rounds := 3
	if *quick {
		rounds = 1
	}
	interval := fleetInterval * scaleTargets * rateShare / fleetTargets // 7.2 s for 120 targets
	testservers.Require(b, "nginx")
	pki := testservers.NewPKI(b)
	var listen strings.Builder
	nginx := testservers.StartNginxConf(b, pki, func(port int) string {
		listen.Reset()
		for i := 2; i < scaleTargets+2; i++ {
			fmt.Fprintf(&listen, "listen 127.0.0.%d:%d ssl;\n", i, port)
		}
		return testservers.NginxServer(pki, port, nginxShared+"\n"+listen.String())
	})
	exp := startExporter(b, pki, fmt.Sprintf("--history.max-targets=%d", fleetTargets))
	srv := serverPIDs(nginx)
	for b.Loop() {
		sem := make(chan struct{}, maxInFlight)
		var wg sync.WaitGroup
		var skipped, done, failed atomic.Int64
		var firstErr atomic.Value
		c0, s0, start := cpuTime(exp.srv.PID), cpuTime(srv...), time.Now()
		tick := time.NewTicker(interval / scaleTargets)
		for i := range rounds * scaleTargets {
			<-tick.C
			target := fmt.Sprintf("127.0.0.%d:%d", 2+i%scaleTargets, nginx.Port)
			select {
			case sem <- struct{}{}:
			default:
				skipped.Add(1) // Prometheus would have timed it out
				continue
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, err := exp.try(target); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					return
				}
				done.Add(1)
			}()
		}
		tick.Stop()
		wg.Wait()
		elapsed := time.Since(start)
		if err := firstErr.Load(); err != nil {
			b.Errorf("%d probes failed; the first: %v", failed.Load(), err)
		}
		cores := (cpuTime(exp.srv.PID) - c0).Seconds() / elapsed.Seconds()
		srvCores := (cpuTime(srv...) - s0).Seconds() / elapsed.Seconds()
		rate := float64(done.Load()) / elapsed.Seconds()
		full := float64(fleetTargets) / fleetInterval.Seconds()
		b.ReportMetric(rate, "probes/s")
		b.ReportMetric(float64(skipped.Load()), "skipped")
		b.ReportMetric(cores, "exporter_cores")
		b.ReportMetric(srvCores, "nginx_cores")
		b.ReportMetric(cores*full/rate, "exporter_cores_at_10k")
		b.ReportMetric(srvCores*full/rate, "nginx_cores_at_10k")
		b.ReportMetric(float64(rssBytes(exp.srv.PID))/(1<<20), "exporter_rss_MiB")
	}
}

// BenchmarkHistoryMemory reports the heap one key history holds per target
// with 100 000 targets, each having seen two ticket keys.
func BenchmarkHistoryMemory(b *testing.B) {
	const targets = 100_000
	for b.Loop() {
		before := heapInUse()
		now := time.Unix(1_800_000_000, 0)
		h := history.New(history.Options{MaxTargets: targets, Now: func() time.Time { return now }})
		for i := range targets {
			target := fmt.Sprintf("host-%06d.example:443", i)
			h.Observe(target, "default", []probe.KeyName{{Fingerprint: uint64(i)<<8 | 1, Tickets: 3}})
		}
		now = now.Add(time.Hour)
		for i := range targets {
			target := fmt.Sprintf("host-%06d.example:443", i)
			h.Observe(target, "default", []probe.KeyName{{Fingerprint: uint64(i)<<8 | 2, Tickets: 3}})
		}
		b.ReportMetric(float64(heapInUse()-before)/targets, "B/target")
		runtime.KeepAlive(h)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}
