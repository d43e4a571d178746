package probe

import (
	"context"
	"testing"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
)

// BenchmarkRun measures one whole probe (all three chains, replays from the
// second iteration on) against an in-process crypto/tls server on loopback.
func BenchmarkRun(b *testing.B) {
	pki := testservers.NewPKI(b)
	addr := startGoServer(b, pki, nil)
	m := testModule(b, pki, nil)
	sessions := NewSessions(SessionsOptions{})
	b.ReportAllocs()
	for b.Loop() {
		if r := Run(context.Background(), addr, "bench", m, sessions, nil); !r.Success {
			b.Fatal(r.Failure)
		}
	}
}

func BenchmarkSummarise(b *testing.B) {
	ts := make([]ticketSeen, 4)
	for i := range ts {
		raw := make([]byte, 200)
		copy(raw, "0123456789abcdef")
		raw[20] = byte(i)
		ts[i] = ticketSeen{version: VersionTLS13, raw: raw, lifetime: 300}
	}
	b.ReportAllocs()
	for b.Loop() {
		summarise(ts)
	}
}
