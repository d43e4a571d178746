package wire

import "testing"

// Benchmarks of the readers on recorded flights, and of building an offer.
// Run with: go test -run '^$' -bench . -benchmem ./probe/internal/wire

func BenchmarkParseFlight12(b *testing.B) {
	r := loadCapture(b, "nginx-tls12-ticket")
	b.SetBytes(int64(len(r.server)))
	for b.Loop() {
		if _, err := ParseFlight12(r.server); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseFlight13(b *testing.B) {
	r := loadCapture(b, "openssl-tls13-tickets")
	secret := r.keyLog[LabelServerTrafficSecret0]
	b.SetBytes(int64(len(r.server)))
	for b.Loop() {
		if _, err := ParseFlight13(r.server, 0, secret); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFlightReaderSmallReads feeds a flight as a socket might deliver
// it: in 1 KiB reads.
func BenchmarkFlightReaderSmallReads(b *testing.B) {
	r := loadCapture(b, "apache-tls13-tickets")
	b.SetBytes(int64(len(r.server)))
	for b.Loop() {
		if _, err := feedChunks(r.server, 1024); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientHello12Marshal(b *testing.B) {
	ch := NewClientHello12("example.com", FinishableSuites12())
	ch.SessionID, ch.ExtendedMasterSecret = make([]byte, 32), true
	ch.TicketSupported, ch.SessionTicket = true, make([]byte, 200)
	for b.Loop() {
		if _, err := ch.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
}
