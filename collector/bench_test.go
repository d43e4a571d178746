package collector

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/resumption-exporter/resumption_exporter/collector/history"
	"github.com/resumption-exporter/resumption_exporter/probe"
)

// BenchmarkProbeMetrics measures what /probe spends on metrics for one
// probe with every field set: the collector, the probe's registry and the
// gathering that promhttp does before encoding.
func BenchmarkProbeMetrics(b *testing.B) {
	r, keys := benchResult()
	b.ReportAllocs()
	for b.Loop() {
		reg := prometheus.NewRegistry()
		reg.MustRegister(NewProbeCollector(r, keys))
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		if len(mfs) != 25 {
			b.Fatalf("gathered %d families, want 25", len(mfs))
		}
	}
}

// BenchmarkProbeCollect is the collector's own share: building it and
// emitting every metric, without a registry.
func BenchmarkProbeCollect(b *testing.B) {
	r, keys := benchResult()
	ch := make(chan prometheus.Metric, 64)
	b.ReportAllocs()
	for b.Loop() {
		NewProbeCollector(r, keys).Collect(ch)
		if n := len(ch); n != 46 {
			b.Fatalf("collected %d metrics, want 46", n)
		}
		for len(ch) > 0 {
			<-ch
		}
	}
}

// benchResult is a probe with every field set and its key history.
func benchResult() (*probe.Result, *history.KeyState) {
	start := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &probe.Result{
		Target: "example.com:443", Module: "tls", Start: start, Duration: time.Second, Success: true,
		Addr: "192.0.2.7:443", IPProtocol: 4, IPAddrHash: 1, DNSLookup: time.Millisecond,
		Versions: map[uint16]bool{probe.VersionTLS12: true, probe.VersionTLS13: true},
		Checks: []probe.Check{
			{Mechanism: probe.MechanismSessionID, Completed: true, Issued: true, Resumed: true, FullHandshake: time.Millisecond, ResumedHandshake: time.Millisecond,
				FirstOfferResumed: true, OffersResumed: 1},
			{Mechanism: probe.MechanismSessionTicket, Completed: true, Issued: true, Resumed: true, FullHandshake: time.Millisecond, ResumedHandshake: time.Millisecond,
				FirstOfferResumed: true, OffersResumed: 1},
			{Mechanism: probe.MechanismPSK, Completed: true, Issued: true, Resumed: true, FullHandshake: time.Millisecond, ResumedHandshake: time.Millisecond,
				FirstOfferResumed: true, OffersResumed: 1},
		},
		Tickets: map[uint16]probe.Tickets{
			probe.VersionTLS12: {Version: probe.VersionTLS12, Count: 1, LifetimeHint: 7200, Format: probe.FormatStateless, KeyNameBytes: 16, KeysSeen: 1},
			probe.VersionTLS13: {Version: probe.VersionTLS13, Count: 2, LifetimeHint: 7200, Format: probe.FormatStateless, KeyNameBytes: 16, KeysSeen: 1},
		},
		KeyNames: []probe.KeyName{{Fingerprint: probe.Fingerprint([]byte("key")), Tickets: 3}},
		AcceptedMaxAge: map[probe.Mechanism]time.Duration{
			probe.MechanismSessionID: time.Minute, probe.MechanismSessionTicket: time.Hour, probe.MechanismPSK: time.Hour,
		},
	}
	keys := &history.KeyState{
		Since: start.Add(-72 * time.Hour), HasKeys: true,
		NewestActiveFirstSeen: start.Add(-time.Hour), OldestActiveFirstSeen: start.Add(-time.Hour),
		ActiveKeys: 1, Rotations: 2, LastRotationInterval: 24 * time.Hour,
	}
	return r, keys
}
