package wire

import (
	"reflect"
	"strings"
	"testing"
)

// feedChunks feeds stream to a fresh reader in pieces of n bytes.
func feedChunks(stream []byte, n int) ([]Event, error) {
	r := NewFlightReader(len(stream))
	var all []Event
	for len(stream) > 0 {
		k := min(n, len(stream))
		evs, err := r.Feed(stream[:k])
		all = append(all, evs...)
		if err != nil {
			return all, err
		}
		stream = stream[k:]
	}
	return all, nil
}

// TestFlightReaderChunks checks that how the bytes arrive changes nothing:
// every capture read a byte at a time, or in odd pieces, gives the events
// of reading it whole.
func TestFlightReaderChunks(t *testing.T) {
	for _, c := range captureCases {
		r := loadCapture(t, c.name)
		for _, stream := range [][]byte{r.server, r.client} {
			whole, err := NewFlightReader(len(stream)).Feed(stream)
			if err != nil || len(whole) == 0 {
				t.Fatalf("%s: %d events, %v", c.name, len(whole), err)
			}
			for _, n := range []int{1, 5, 1000} {
				got, err := feedChunks(stream, n)
				if err != nil || !reflect.DeepEqual(got, whole) {
					t.Errorf("%s in %d-byte pieces: %d events (want %d), %v", c.name, n, len(got), len(whole), err)
				}
			}
		}
	}
}

// TestFlightReaderKinds checks what the reader makes of each record kind,
// on a TLS 1.2 resumption and a TLS 1.3 HelloRetryRequest capture.
func TestFlightReaderKinds(t *testing.T) {
	tests := []struct {
		capture string
		want    []EventKind // the kinds in order, consecutive repeats folded
	}{
		// ServerHello, NewSessionTicket?, CCS, then the protected Finished
		// and application data.
		{"openssl-tls12-resumed", []EventKind{EventMessage, EventChangeCipherSpec, EventProtected}},
		// HRR, CCS, then the real ServerHello in plaintext, then records.
		{"openssl-tls13-hrr", []EventKind{EventMessage, EventChangeCipherSpec, EventMessage, EventProtected}},
	}
	for _, tt := range tests {
		r := loadCapture(t, tt.capture)
		events, err := NewFlightReader(len(r.server)).Feed(r.server)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []EventKind
		for _, ev := range events {
			if n := len(kinds); n == 0 || kinds[n-1] != ev.Kind {
				kinds = append(kinds, ev.Kind)
			}
		}
		if !reflect.DeepEqual(kinds, tt.want) {
			t.Errorf("%s: kinds %v, want %v", tt.capture, kinds, tt.want)
		}
	}
}

func TestFlightReaderErrors(t *testing.T) {
	r := loadCapture(t, "nginx-tls12-ticket")
	t.Run("limit", func(t *testing.T) {
		fr := NewFlightReader(100)
		if _, err := fr.Feed(r.server[:60]); err != nil {
			t.Fatal(err)
		}
		if _, err := fr.Feed(r.server[60:120]); err == nil || !strings.Contains(err.Error(), "more than 100 bytes") {
			t.Fatalf("past the limit: %v", err)
		}
		if _, err := fr.Feed(nil); err == nil {
			t.Error("the error did not stick")
		}
	})
	t.Run("bad record after good ones", func(t *testing.T) {
		first, _, _ := parseRecords(r.server)
		n := recordHeaderLen + len(first[0].Payload)
		stream := append(append([]byte{}, r.server[:n]...), "HTTP/1.1 400"...)
		events, err := NewFlightReader(len(stream)).Feed(stream)
		if err == nil || !strings.Contains(err.Error(), "record 1") || len(events) == 0 || events[0].ServerHello == nil {
			t.Errorf("%d events, %v", len(events), err)
		}
	})
	t.Run("oversized handshake message", func(t *testing.T) {
		stream := AppendRecords(nil, RecordHandshake, VersionTLS12, []byte{typeCertificate, 0xff, 0xff, 0xff})
		if _, err := NewFlightReader(100).Feed(stream); err == nil {
			t.Error("a 16 MiB message length was accepted")
		}
	})
	t.Run("client stream", func(t *testing.T) {
		if _, err := ReadClientHello(r.server); err == nil {
			t.Error("a server's stream read as a ClientHello")
		}
		if _, err := ReadClientHello(nil); err == nil {
			t.Error("nothing read as a ClientHello")
		}
	})
}
