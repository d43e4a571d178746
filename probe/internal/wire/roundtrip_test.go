package wire

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"strings"
	"testing"
)

// marshaler is every message type of the package.
type marshaler interface{ Marshal() ([]byte, error) }

// roundTrip marshals m, parses the body with parse, and checks the result
// equals m once the fields a parse fills on its own (extension order) are
// taken from it; then that the parsed message marshals to the same bytes.
func roundTrip[M marshaler](t *testing.T, m M, parse func([]byte) (M, error), normalise func(want, got M)) {
	t.Helper()
	msg, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hm, err := ParseHandshake(msg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parse(hm.Body)
	if err != nil {
		t.Fatalf("parsing %x: %v", msg, err)
	}
	normalise(m, got)
	if !reflect.DeepEqual(got, m) {
		t.Errorf("round trip\n got %+v\nwant %+v", got, m)
	}
	again, err := got.Marshal()
	if err != nil || !bytes.Equal(again, msg) {
		t.Errorf("parsed message marshals to %x, %v; want %x", again, err, msg)
	}
}

func TestClientHelloRoundTrip(t *testing.T) {
	tls12 := NewClientHello12("example.com", FinishableSuites12())
	tls12.SessionID = bytes.Repeat([]byte{7}, 32)
	tls12.ExtendedMasterSecret, tls12.TicketSupported, tls12.SessionTicket = true, true, []byte("ticket")
	// A TLS 1.3 psk_ke-only resumption offer, the shape a later hand-built
	// hello takes: no key_share, pre_shared_key last.
	pskKE := &ClientHello{
		Version: VersionTLS12, SessionID: bytes.Repeat([]byte{1}, 32),
		CipherSuites: []uint16{tls.TLS_AES_128_GCM_SHA256}, CompressionMethods: []uint8{0},
		ServerName: "localhost", SupportedVersions: []uint16{VersionTLS13},
		SupportedGroups: []uint16{uint16(tls.X25519)}, SignatureSchemes: []uint16{uint16(tls.ECDSAWithP256AndSHA256)},
		PSKModes: []uint8{PSKModePlain}, EarlyData: true,
		PSKIdentities: []PSKIdentity{{Identity: []byte("ticket-1"), ObfuscatedTicketAge: 12345}, {Identity: []byte("ticket-2"), ObfuscatedTicketAge: 1}},
		PSKBinders:    [][]byte{bytes.Repeat([]byte{0xb1}, 32), bytes.Repeat([]byte{0xb2}, 48)},
	}
	dhe := &ClientHello{
		Version: VersionTLS12, Random: [32]byte{9}, SessionID: []byte{},
		CipherSuites: []uint16{tls.TLS_AES_256_GCM_SHA384}, CompressionMethods: []uint8{0},
		SupportedVersions: []uint16{VersionTLS13, VersionTLS12},
		KeyShares:         []KeyShare{{Group: uint16(tls.X25519), Data: bytes.Repeat([]byte{0x55}, 32)}},
		PSKModes:          []uint8{PSKModeDHE},
		Other:             []Extension{{Type: extALPN, Data: []byte{0, 3, 2, 'h', '2'}}},
	}
	noExtensions := &ClientHello{Version: VersionTLS12, SessionID: []byte{}, CipherSuites: []uint16{1}, CompressionMethods: []uint8{0}}
	for name, ch := range map[string]*ClientHello{"TLS 1.2 ticket offer": tls12, "TLS 1.3 psk_ke": pskKE, "TLS 1.3 DHE with ALPN": dhe, "no extensions": noExtensions} {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, ch, ParseClientHello, func(want, got *ClientHello) { got.Extensions = want.Extensions })
		})
	}
	t.Run("pre_shared_key last", func(t *testing.T) {
		msg, err := pskKE.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ch, _ := ParseClientHello(msg[4:])
		if last := ch.Extensions[len(ch.Extensions)-1]; last != extPreSharedKey {
			t.Errorf("last extension %d", last)
		}
		bad := *ch
		bad.Extensions = append([]uint16{extPreSharedKey}, ch.Extensions[:len(ch.Extensions)-1]...)
		if _, err := bad.Marshal(); err == nil || !strings.Contains(err.Error(), "last") {
			t.Errorf("pre_shared_key first marshalled: %v", err)
		}
	})
	t.Run("binders", func(t *testing.T) {
		msg, _ := pskKE.Marshal()
		partial, err := pskKE.MarshalWithoutBinders()
		if err != nil {
			t.Fatal(err)
		}
		// The binders list follows: its length, then each binder.
		tail := msg[len(partial):]
		if !bytes.HasPrefix(msg, partial) || len(tail) != 2+1+32+1+48 || tail[0] != 0 || int(tail[1]) != 1+32+1+48 {
			t.Errorf("binders tail %x", tail)
		}
		if _, err := tls12.MarshalWithoutBinders(); err == nil {
			t.Error("a hello without pre_shared_key gave a binder input")
		}
		mismatched := *pskKE
		mismatched.PSKBinders = mismatched.PSKBinders[:1]
		if _, err := mismatched.Marshal(); err == nil {
			t.Error("two identities with one binder marshalled")
		}
	})
}

func TestServerHelloRoundTrip(t *testing.T) {
	tests := map[string]*ServerHello{
		"TLS 1.2 resumption": {LegacyVersion: VersionTLS12, Random: [32]byte{1, 2}, SessionID: bytes.Repeat([]byte{3}, 32),
			CipherSuite: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, ExtendedMasterSecret: true, TicketAck: true,
			Other: []Extension{{Type: extRenegotiationInfo, Data: []byte{0}}, {Type: extECPointFormats, Data: []byte{1, 0}}}},
		"TLS 1.2 without extensions": {LegacyVersion: VersionTLS12, SessionID: []byte{}, CipherSuite: tls.TLS_RSA_WITH_AES_128_GCM_SHA256},
		"TLS 1.3 PSK with DHE": {LegacyVersion: VersionTLS12, Random: [32]byte{4}, SessionID: bytes.Repeat([]byte{5}, 32),
			CipherSuite: tls.TLS_AES_128_GCM_SHA256, SupportedVersion: VersionTLS13,
			KeyShareGroup: uint16(tls.X25519), KeyShareData: bytes.Repeat([]byte{6}, 32), PSKSelected: true, SelectedIdentity: 1},
		"TLS 1.3 psk_ke": {LegacyVersion: VersionTLS12, SessionID: []byte{}, CipherSuite: tls.TLS_AES_256_GCM_SHA384,
			SupportedVersion: VersionTLS13, PSKSelected: true},
		"HelloRetryRequest": {LegacyVersion: VersionTLS12, Random: helloRetryRequestRandom, SessionID: []byte{8}, CipherSuite: tls.TLS_AES_128_GCM_SHA256,
			SupportedVersion: VersionTLS13, HelloRetryRequest: true, KeyShareGroup: uint16(tls.CurveP384),
			Other: []Extension{{Type: extCookie, Data: []byte{0, 2, 0xc0, 0x0c}}}},
	}
	for name, sh := range tests {
		t.Run(name, func(t *testing.T) {
			roundTrip(t, sh, ParseServerHello, func(want, got *ServerHello) { got.Extensions = want.Extensions })
		})
	}
}

func TestNewSessionTicketRoundTrip(t *testing.T) {
	for name, nst := range map[string]*NewSessionTicket12{
		"ticket":                  {LifetimeHint: 7200, Ticket: bytes.Repeat([]byte{0xaa}, 160)},
		"empty: none this time":   {Ticket: []byte{}},
		"lifetime hint unchanged": {LifetimeHint: 1<<32 - 1, Ticket: []byte{1}},
	} {
		t.Run("TLS 1.2 "+name, func(t *testing.T) {
			roundTrip(t, nst, ParseNewSessionTicket12, func(*NewSessionTicket12, *NewSessionTicket12) {})
		})
	}
	for name, nst := range map[string]*NewSessionTicket13{
		"plain": {Lifetime: 604800, AgeAdd: 0xdeadbeef, Nonce: []byte{0}, Ticket: bytes.Repeat([]byte{0xbb}, 200)},
		"early data and an unknown extension": {Lifetime: 300, Nonce: []byte{}, Ticket: []byte{1, 2, 3},
			EarlyData: true, MaxEarlyData: 16384, Other: []Extension{{Type: 0xfafa, Data: []byte{}}}},
	} {
		t.Run("TLS 1.3 "+name, func(t *testing.T) {
			roundTrip(t, nst, ParseNewSessionTicket13, func(want, got *NewSessionTicket13) { got.Extensions = want.Extensions })
		})
	}
	if _, err := (&NewSessionTicket13{}).Marshal(); err == nil {
		t.Error("a TLS 1.3 ticket without a ticket marshalled")
	}
}

func TestAlertRoundTrip(t *testing.T) {
	for _, a := range []Alert{{AlertLevelWarning, AlertCloseNotify}, {AlertLevelFatal, AlertHandshakeFailure}, {AlertLevelFatal, 255}} {
		got, err := ParseAlert(a.Marshal())
		if err != nil || got != a {
			t.Errorf("alert %v: parsed %v, %v", a, got, err)
		}
	}
}

func TestHandshakeMessageRoundTrip(t *testing.T) {
	for _, m := range []HandshakeMessage{{Type: typeFinished, Body: bytes.Repeat([]byte{1}, 12)}, {Type: typeServerHelloDone, Body: []byte{}}} {
		got, err := ParseHandshake(m.Marshal())
		if err != nil || !reflect.DeepEqual(got, m) {
			t.Errorf("%+v: parsed %+v, %v", m, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {20, 0, 0}, {20, 0, 0, 2, 1}, {20, 0, 0, 1, 1, 2}} {
		if _, err := ParseHandshake(bad); err == nil {
			t.Errorf("%x parsed as one message", bad)
		}
	}
}

// TestAppendRecords frames payloads and reads them back through a
// FlightReader, for sizes around the fragment limit.
func TestAppendRecords(t *testing.T) {
	for _, n := range []int{4, maxPlaintextLen - 1, maxPlaintextLen, maxPlaintextLen + 1, 3*maxPlaintextLen + 7} {
		body := bytes.Repeat([]byte{0x42}, n-4)
		msg := HandshakeMessage{Type: typeCertificate, Body: body}.Marshal()
		stream := AppendRecords(nil, RecordHandshake, VersionTLS12, msg)
		records, rest, err := parseRecords(stream)
		if want := (n + maxPlaintextLen - 1) / maxPlaintextLen; err != nil || len(rest) != 0 || len(records) != want {
			t.Fatalf("%d bytes: %d records (want %d), %d left, %v", n, len(records), want, len(rest), err)
		}
		for _, r := range records {
			if len(r.Payload) > maxPlaintextLen || r.Version != VersionTLS12 || r.Type != RecordHandshake {
				t.Fatalf("record %d bytes, version %#x, type %d", len(r.Payload), r.Version, r.Type)
			}
		}
		events, err := NewFlightReader(len(stream)).Feed(stream)
		if err != nil || len(events) != 1 || !bytes.Equal(events[0].Message.Body, body) {
			t.Fatalf("%d bytes: %d events, %v", n, len(events), err)
		}
	}
	if got := AppendRecords(nil, RecordApplicationData, VersionTLS12, nil); !bytes.Equal(got, []byte{23, 3, 3, 0, 0}) {
		t.Errorf("empty payload: %x", got)
	}
	if got := appendChangeCipherSpec(nil); !bytes.Equal(got, []byte{20, 3, 3, 0, 1, 1}) {
		t.Errorf("ChangeCipherSpec: %x", got)
	}
}
