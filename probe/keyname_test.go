package probe

import (
	"bytes"
	"crypto/rand"
	"testing"
)

// ticket returns a ticket of n bytes that starts with prefix and continues
// with random bytes, as a real stateless ticket's IV and ciphertext do.
func ticket(t *testing.T, prefix []byte, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	copy(b, prefix)
	return b
}

func TestSummarise(t *testing.T) {
	nameA := bytes.Repeat([]byte{0xA1}, 16)
	nameB := bytes.Repeat([]byte{0xB2}, 16)
	java := []byte{0, 0, 0, 7}
	type want struct {
		formats  map[uint16]TicketFormat
		nameLen  map[uint16]int
		keyNames []uint64 // fingerprints, busiest first
	}
	tests := []struct {
		name    string
		tickets func(t *testing.T) []ticketSeen
		want    want
	}{
		{
			name: "OpenSSL: one key across TLS 1.2 and 1.3",
			tickets: func(t *testing.T) []ticketSeen {
				return []ticketSeen{
					{version: VersionTLS12, raw: ticket(t, nameA, 180)},
					{version: VersionTLS13, raw: ticket(t, nameA, 200)},
					{version: VersionTLS13, raw: ticket(t, nameA, 200)},
				}
			},
			want: want{
				formats:  map[uint16]TicketFormat{VersionTLS12: FormatStateless, VersionTLS13: FormatStateless},
				nameLen:  map[uint16]int{VersionTLS12: 16, VersionTLS13: 16},
				keyNames: []uint64{Fingerprint(nameA)},
			},
		},
		{
			name: "an IV byte matching by chance does not lengthen the name",
			tickets: func(t *testing.T) []ticketSeen {
				a, b := ticket(t, nameA, 180), ticket(t, nameA, 180)
				b[16] = a[16]
				return []ticketSeen{{version: VersionTLS13, raw: a}, {version: VersionTLS13, raw: b}}
			},
			want: want{
				formats:  map[uint16]TicketFormat{VersionTLS13: FormatStateless},
				nameLen:  map[uint16]int{VersionTLS13: 16},
				keyNames: []uint64{Fingerprint(nameA)},
			},
		},
		{
			name: "balancer: two backends, two keys; the lone ticket still has a name",
			tickets: func(t *testing.T) []ticketSeen {
				return []ticketSeen{
					{version: VersionTLS12, raw: ticket(t, nameB, 180)},
					{version: VersionTLS13, raw: ticket(t, nameA, 200)},
					{version: VersionTLS13, raw: ticket(t, nameA, 200)},
				}
			},
			want: want{
				formats:  map[uint16]TicketFormat{VersionTLS12: FormatStateless, VersionTLS13: FormatStateless},
				nameLen:  map[uint16]int{VersionTLS12: 16, VersionTLS13: 16},
				keyNames: []uint64{Fingerprint(nameA), Fingerprint(nameB)},
			},
		},
		{
			name: "Java: 4-byte key ids",
			tickets: func(t *testing.T) []ticketSeen {
				return []ticketSeen{{version: VersionTLS13, raw: ticket(t, java, 150)}, {version: VersionTLS13, raw: ticket(t, java, 150)}}
			},
			want: want{
				formats:  map[uint16]TicketFormat{VersionTLS13: FormatStateless},
				nameLen:  map[uint16]int{VersionTLS13: 4},
				keyNames: []uint64{Fingerprint(java)},
			},
		},
		{
			name: "stateful: short random ids",
			tickets: func(t *testing.T) []ticketSeen {
				return []ticketSeen{{version: VersionTLS13, raw: ticket(t, nil, 32)}, {version: VersionTLS13, raw: ticket(t, nil, 32)}}
			},
			want: want{formats: map[uint16]TicketFormat{VersionTLS13: FormatStateful}, nameLen: map[uint16]int{VersionTLS13: 0}},
		},
		{
			name: "Go: long tickets with no common prefix",
			tickets: func(t *testing.T) []ticketSeen {
				return []ticketSeen{{version: VersionTLS12, raw: ticket(t, []byte{1}, 150)}, {version: VersionTLS12, raw: ticket(t, []byte{2}, 150)}}
			},
			want: want{formats: map[uint16]TicketFormat{VersionTLS12: FormatStatelessUnnamed}, nameLen: map[uint16]int{VersionTLS12: 0}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			byVersion, names := summarise(tt.tickets(t))
			for v, f := range tt.want.formats {
				if byVersion[v].Format != f || byVersion[v].KeyNameBytes != tt.want.nameLen[v] {
					t.Errorf("%s: format %q with %d-byte name, want %q with %d", VersionName(v),
						byVersion[v].Format, byVersion[v].KeyNameBytes, f, tt.want.nameLen[v])
				}
			}
			if len(names) != len(tt.want.keyNames) {
				t.Fatalf("key names %+v, want fingerprints %v", names, tt.want.keyNames)
			}
			for i, fp := range tt.want.keyNames {
				if names[i].Fingerprint != fp {
					t.Errorf("key name %d: fingerprint %d, want %d", i, names[i].Fingerprint, fp)
				}
			}
		})
	}
}

func TestAmbiguous(t *testing.T) {
	long := func(p byte) []byte { return ticket(t, []byte{p, p, p, p}, 150) }
	tests := []struct {
		name string
		ts   []ticketSeen
		want []uint16
	}{
		{"single long TLS 1.2 ticket", []ticketSeen{{version: VersionTLS12, raw: long(1)}}, []uint16{VersionTLS12}},
		{"settled by a TLS 1.3 ticket with the same name", []ticketSeen{{version: VersionTLS12, raw: long(1)}, {version: VersionTLS13, raw: long(1)}}, nil},
		{"single short ticket is stateful", []ticketSeen{{version: VersionTLS13, raw: ticket(t, nil, 32)}}, nil},
		{"two unrelated long tickets of one version", []ticketSeen{{version: VersionTLS13, raw: long(1)}, {version: VersionTLS13, raw: long(2)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ambiguous(tt.ts)
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) {
				t.Errorf("ambiguous = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFingerprintFitsFloat64(t *testing.T) {
	for i := 0; i < 1000; i++ {
		fp := Fingerprint(ticket(t, nil, 16))
		if fp >= 1<<48 || uint64(float64(fp)) != fp {
			t.Fatalf("fingerprint %d is not exact in a float64", fp)
		}
	}
}
