package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"runtime"
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

// BenchmarkRunOneServer is BenchmarkRun against a Go server whose tickets
// name their key, so that probes after the first meet one server and stand
// in: the psk check's stand-in replaces its full handshake (a Go server
// renews every TLS 1.2 ticket, so the session_ticket check keeps its own;
// Go has no session-ID cache).
func BenchmarkRunOneServer(b *testing.B) {
	pki := testservers.NewPKI(b)
	addr := startGoServer(b, pki, func(cfg *tls.Config) { nameTicketKey(cfg, bytes.Repeat([]byte{0x42}, 16), nil) })
	m := testModule(b, pki, nil)
	sessions := NewSessions(SessionsOptions{})
	for range 2 {
		if r := Run(context.Background(), addr, "bench", m, sessions, nil); !r.Success {
			b.Fatal(r.Failure)
		}
	}
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

// BenchmarkSessionsMemory reports the heap a Sessions store holds per target
// when 100 000 targets each keep the steady-state maximum of sessions
// (PerKind of every mechanism). The sessions are copies, each with byte
// slices and a TLS 1.3 session state of its own, of ones real probes got
// from a crypto/tls server; as crypto/tls interns parsed certificates, a
// target's TLS 1.3 sessions share one certificate chain, which here is
// shared by all targets: add the size of one parsed chain per target
// (reported as chain_B).
func BenchmarkSessionsMemory(b *testing.B) {
	const targets = 100_000
	pki := testservers.NewPKI(b)
	addr := startGoServer(b, pki, nil)
	m := testModule(b, pki, nil)
	src := NewSessions(SessionsOptions{})
	for range 3 {
		if r := Run(context.Background(), addr, "bench", m, src, nil); !r.Success {
			b.Fatal(r.Failure)
		}
	}
	key := "bench\x00" + addr + "\x00" + "127.0.0.1"
	samples := map[Mechanism][]*stored{}
	for _, mech := range []Mechanism{MechanismSessionTicket, MechanismPSK} {
		samples[mech] = src.oldest(key, mech)
		if len(samples[mech]) == 0 {
			b.Fatalf("no %s session to copy", mech)
		}
	}
	// crypto/tls servers do not resume session IDs: a session-ID session
	// is what the session_id check keeps, a 32-byte ID with the session's
	// 48-byte master secret (ticket sessions are crypto/tls's own state).
	for _, st := range samples[MechanismSessionTicket] {
		s := &session12{sessionID: make([]byte, 32), master: make([]byte, 48), suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ems: true}
		samples[MechanismSessionID] = append(samples[MechanismSessionID], &stored{obtained: st.obtained, s12: s})
	}
	for b.Loop() {
		before := heapInUse()
		s := NewSessions(SessionsOptions{MaxTargets: targets})
		perKind := s.perKind
		for i := range targets {
			k := fmt.Sprintf("default\x00host-%06d.example:443\x00host-%06d.example", i, i)
			for mech, ss := range samples {
				for j := range perKind {
					s.add(k, mech, copyStored(b, ss[j%len(ss)]))
				}
			}
		}
		after := heapInUse()
		b.ReportMetric(float64(after-before)/targets, "B/target")
		runtime.KeepAlive(s)
	}
	var chain [][]byte
	for _, c := range pki.TLSCertificate(b).Certificate {
		chain = append(chain, c)
	}
	before := heapInUse()
	parsed := make([][]*x509.Certificate, 1000)
	for i := range parsed {
		for _, der := range chain {
			c, err := x509.ParseCertificate(der)
			if err != nil {
				b.Fatal(err)
			}
			parsed[i] = append(parsed[i], c)
		}
	}
	b.ReportMetric(float64(heapInUse()-before)/float64(len(parsed)), "chain_B")
	runtime.KeepAlive(parsed)
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// copyStored returns a deep copy of st, so that no two targets share bytes.
func copyStored(b *testing.B, st *stored) *stored {
	out := *st
	if st.s12 != nil {
		s := *st.s12
		s.sessionID, s.ticket, s.master = bytes.Clone(s.sessionID), bytes.Clone(s.ticket), bytes.Clone(s.master)
		out.s12 = &s
	}
	if st.cs != nil {
		ticket, state, err := st.cs.ResumptionState()
		if err != nil {
			b.Fatal(err)
		}
		enc, err := state.Bytes()
		if err != nil {
			b.Fatal(err)
		}
		state, err = tls.ParseSessionState(enc)
		if err != nil {
			b.Fatal(err)
		}
		if out.cs, err = tls.NewResumptionState(bytes.Clone(ticket), state); err != nil {
			b.Fatal(err)
		}
	}
	return &out
}
