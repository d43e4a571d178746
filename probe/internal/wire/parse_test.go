package wire

import (
	"bytes"
	"crypto/tls"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
)

// ext is one extension for the message builders below.
type ext struct {
	typ  uint16
	data []byte
}

// addExtensions adds an extension list.
func addTestExtensions(b *cryptobyte.Builder, exts []ext) {
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
		for _, e := range exts {
			b.AddUint16(e.typ)
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(e.data) })
		}
	})
}

// serverHelloBody builds a ServerHello body field by field, so that tests
// can break one field at a time.
func serverHelloBody(random [32]byte, sessionID []byte, exts []ext) []byte {
	var b cryptobyte.Builder
	b.AddUint16(tls.VersionTLS12)
	b.AddBytes(random[:])
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(sessionID) })
	b.AddUint16(tls.TLS_AES_128_GCM_SHA256)
	b.AddUint8(0)
	if exts != nil {
		addTestExtensions(&b, exts)
	}
	return b.BytesOrPanic()
}

func TestParseServerHello(t *testing.T) {
	var random [32]byte
	copy(random[:], randomBytes(t, 32))
	sid := randomBytes(t, 32)
	share := append([]byte{0, 29, 0, 32}, make([]byte, 32)...)
	tests := []struct {
		name  string
		body  []byte
		check func(*ServerHello) bool
	}{
		{name: "TLS 1.2 without extensions", body: serverHelloBody(random, sid, nil), check: func(s *ServerHello) bool {
			return s.Version() == tls.VersionTLS12 && bytes.Equal(s.SessionID, sid) && s.Random == random && len(s.Extensions) == 0
		}},
		{name: "TLS 1.2 ticket ack and EMS", body: serverHelloBody(random, nil, []ext{{extRenegotiationInfo, []byte{0}}, {extSessionTicket, nil}, {extExtendedMasterSecret, nil}}), check: func(s *ServerHello) bool {
			return s.TicketAck && s.ExtendedMasterSecret && len(s.SessionID) == 0 && slices.Equal(s.Extensions, []uint16{extRenegotiationInfo, extSessionTicket, extExtendedMasterSecret})
		}},
		{name: "TLS 1.3 with key share", body: serverHelloBody(random, sid, []ext{{extSupportedVersions, []byte{3, 4}}, {extKeyShare, share}}), check: func(s *ServerHello) bool {
			return s.Version() == tls.VersionTLS13 && s.LegacyVersion == tls.VersionTLS12 && s.KeyShareGroup == uint16(tls.X25519) && !s.PSKSelected && !s.HelloRetryRequest
		}},
		{name: "TLS 1.3 psk_ke resumption", body: serverHelloBody(random, sid, []ext{{extSupportedVersions, []byte{3, 4}}, {extPreSharedKey, []byte{0, 1}}}), check: func(s *ServerHello) bool {
			return s.PSKSelected && s.SelectedIdentity == 1 && s.KeyShareGroup == 0
		}},
		{name: "HelloRetryRequest", body: serverHelloBody(helloRetryRequestRandom, sid, []ext{{extSupportedVersions, []byte{3, 4}}, {extKeyShare, []byte{0, 24}}}), check: func(s *ServerHello) bool {
			return s.HelloRetryRequest && s.KeyShareGroup == uint16(tls.CurveP384)
		}},
		{name: "unknown extension kept in order", body: serverHelloBody(random, sid, []ext{{0xfafa, []byte("grease")}, {extSupportedVersions, []byte{3, 4}}}), check: func(s *ServerHello) bool {
			return slices.Equal(s.Extensions, []uint16{0xfafa, extSupportedVersions}) && s.hasExtensionType(0xfafa) && !s.hasExtensionType(extKeyShare)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh, err := ParseServerHello(tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(sh) {
				t.Errorf("parsed as %+v", sh)
			}
		})
	}
}

func TestParseServerHelloErrors(t *testing.T) {
	var random [32]byte
	good := serverHelloBody(random, []byte{1, 2}, []ext{{extSupportedVersions, []byte{3, 4}}})
	tests := []struct {
		name    string
		body    []byte
		wantErr string
	}{
		{name: "empty", body: nil, wantErr: "legacy_version truncated"},
		{name: "random cut", body: good[:20], wantErr: "random truncated"},
		{name: "session id cut", body: good[:35], wantErr: "session_id truncated"},
		{name: "session id too long", body: serverHelloBody(random, make([]byte, 33), nil), wantErr: "33-byte session_id"},
		{name: "suite cut", body: good[:38], wantErr: "cipher_suite truncated"},
		{name: "compression missing", body: good[:39], wantErr: "compression_method truncated"},
		{name: "extensions length cut", body: good[:41], wantErr: "extensions truncated"},
		{name: "extension cut", body: append(serverHelloBody(random, nil, nil), 0, 4, 0, 41, 0, 2), wantErr: "extension 41 truncated"},
		{name: "extension type cut", body: append(serverHelloBody(random, nil, nil), 0, 1, 0), wantErr: "extension type truncated"},
		{name: "trailing bytes", body: append(bytes.Clone(good), 0), wantErr: "1 bytes after extensions"},
		{name: "repeated extension", body: serverHelloBody(random, nil, []ext{{extSessionTicket, nil}, {extSessionTicket, nil}}), wantErr: "extension 35 sent twice"},
		{name: "supported_versions too long", body: serverHelloBody(random, nil, []ext{{extSupportedVersions, []byte{3, 4, 3, 3}}}), wantErr: "extension 43 (supported_versions)"},
		{name: "pre_shared_key empty", body: serverHelloBody(random, nil, []ext{{extPreSharedKey, nil}}), wantErr: "extension 41 (pre_shared_key)"},
		{name: "key_share without key", body: serverHelloBody(random, nil, []ext{{extKeyShare, []byte{0, 29, 0, 0}}}), wantErr: "extension 51 (key_share) key_exchange"},
		{name: "key_share group cut", body: serverHelloBody(random, nil, []ext{{extKeyShare, []byte{0}}}), wantErr: "extension 51 (key_share) group truncated"},
		{name: "HRR key_share with a key", body: serverHelloBody(helloRetryRequestRandom, nil, []ext{{extKeyShare, []byte{0, 29, 0, 1, 7}}}), wantErr: "HelloRetryRequest has 3 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh, err := ParseServerHello(tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "ServerHello: ") {
				t.Errorf("got %+v, error %v; want an error containing %q", sh, err, tt.wantErr)
			}
		})
	}
}

func nst13Body(lifetime uint32, nonce, ticket []byte, exts []ext) []byte {
	var b cryptobyte.Builder
	b.AddUint32(lifetime)
	b.AddUint32(0xdeadbeef)
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(nonce) })
	b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(ticket) })
	addTestExtensions(&b, exts)
	return b.BytesOrPanic()
}

func TestParseNewSessionTicket13(t *testing.T) {
	ticket := randomBytes(t, 40)
	tests := []struct {
		name    string
		body    []byte
		want    *NewSessionTicket13
		wantErr string
	}{
		{name: "plain", body: nst13Body(7200, []byte{0}, ticket, nil),
			want: &NewSessionTicket13{Lifetime: 7200, AgeAdd: 0xdeadbeef, Nonce: []byte{0}, Ticket: ticket}},
		// Reported as sent: judging it is the probe's job.
		{name: "lifetime above 7 days", body: nst13Body(604801, nil, ticket, nil),
			want: &NewSessionTicket13{Lifetime: 604801, AgeAdd: 0xdeadbeef, Nonce: []byte{}, Ticket: ticket}},
		{name: "early data", body: nst13Body(300, []byte{1, 2}, ticket, []ext{{0xeaea, nil}, {extEarlyData, []byte{0, 0, 0x40, 0}}}),
			want: &NewSessionTicket13{Lifetime: 300, AgeAdd: 0xdeadbeef, Nonce: []byte{1, 2}, Ticket: ticket, EarlyData: true, MaxEarlyData: 16384, Extensions: []uint16{0xeaea, extEarlyData}}},
		{name: "empty ticket", body: nst13Body(300, nil, nil, nil), wantErr: "ticket is empty"},
		{name: "early_data too short", body: nst13Body(300, nil, ticket, []ext{{extEarlyData, []byte{0, 0}}}), wantErr: "extension 42 (early_data)"},
		{name: "repeated extension", body: nst13Body(300, nil, ticket, []ext{{1, nil}, {1, nil}}), wantErr: "extension 1 sent twice"},
		{name: "trailing bytes", body: append(nst13Body(300, nil, ticket, nil), 9), wantErr: "1 bytes after extensions"},
		{name: "age_add cut", body: []byte{0, 0, 1, 0, 0}, wantErr: "ticket_age_add truncated"},
		{name: "ticket cut", body: nst13Body(300, nil, ticket, nil)[:20], wantErr: "ticket truncated"},
		{name: "no extensions field", body: nst13Body(300, nil, ticket, nil)[:9+2+len(ticket)], wantErr: "extensions truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNewSessionTicket13(tt.body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %+v, error %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Lifetime != tt.want.Lifetime || got.AgeAdd != tt.want.AgeAdd || !bytes.Equal(got.Nonce, tt.want.Nonce) ||
				!bytes.Equal(got.Ticket, tt.want.Ticket) || got.EarlyData != tt.want.EarlyData || got.MaxEarlyData != tt.want.MaxEarlyData ||
				!slices.Equal(got.Extensions, tt.want.Extensions) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseNewSessionTicket12(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		want    NewSessionTicket12
		wantErr string
	}{
		{name: "ticket", body: []byte{0, 0, 0x1c, 0x20, 0, 3, 'a', 'b', 'c'}, want: NewSessionTicket12{LifetimeHint: 7200, Ticket: []byte("abc")}},
		{name: "empty ticket", body: []byte{0, 0, 0, 0, 0, 0}, want: NewSessionTicket12{}},
		{name: "hint cut", body: []byte{0, 0}, wantErr: "ticket_lifetime_hint truncated"},
		{name: "ticket cut", body: []byte{0, 0, 0, 0, 0, 3, 'a'}, wantErr: "ticket truncated"},
		{name: "trailing", body: []byte{0, 0, 0, 0, 0, 0, 1}, wantErr: "1 bytes after ticket"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseNewSessionTicket12(tt.body)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("got %+v, error %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.LifetimeHint != tt.want.LifetimeHint || !bytes.Equal(got.Ticket, tt.want.Ticket) {
				t.Errorf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseRecords(t *testing.T) {
	rec := func(typ uint8, version uint16, payload []byte) []byte {
		return append([]byte{typ, byte(version >> 8), byte(version), byte(len(payload) >> 8), byte(len(payload))}, payload...)
	}
	twoRecords := append(rec(RecordHandshake, 0x0303, []byte("hello")), rec(RecordChangeCipherSpec, 0x0303, []byte{1})...)
	over := maxRecordPayload + 1
	oversized := []byte{RecordApplicationData, 3, 3, byte(over >> 8), byte(over)}
	tests := []struct {
		name     string
		stream   []byte
		wantN    int
		wantRest int
		wantErr  string
	}{
		{name: "empty", stream: nil},
		{name: "two records", stream: twoRecords, wantN: 2},
		{name: "incomplete header", stream: twoRecords[:3], wantRest: 3},
		{name: "incomplete payload", stream: twoRecords[:len(twoRecords)-1], wantN: 1, wantRest: 5},
		{name: "empty payload", stream: rec(RecordApplicationData, 0x0303, nil), wantN: 1},
		{name: "largest payload", stream: rec(RecordApplicationData, 0x0303, make([]byte, maxRecordPayload)), wantN: 1},
		{name: "oversized", stream: append(bytes.Clone(twoRecords), oversized...), wantN: 2, wantErr: "record 2: 18433-byte payload exceeds 18432"},
		{name: "unknown type", stream: rec(24, 0x0303, nil), wantErr: "record 0: unknown content type 24"},
		{name: "not TLS", stream: []byte("SSH-2.0-OpenSSH_9.2\r\n"), wantErr: "unknown content type 83"},
		{name: "SSLv2-style version", stream: rec(RecordHandshake, 0x0002, nil), wantErr: "version 0x0002 is not TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			records, rest, err := parseRecords(tt.stream)
			if (err != nil) != (tt.wantErr != "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if len(records) != tt.wantN || (err == nil && len(rest) != tt.wantRest) {
				t.Errorf("%d records, %d bytes rest; want %d, %d", len(records), len(rest), tt.wantN, tt.wantRest)
			}
			for _, r := range records {
				if h := r.Header(); !bytes.Contains(tt.stream, append(h, r.Payload...)) {
					t.Errorf("record %+v does not rebuild to the stream's bytes", r)
				}
			}
		})
	}
}

// TestHandshakeReassembler splits the handshake messages of a real TLS 1.2
// server flight at every size and checks the same messages come out.
func TestHandshakeReassembler(t *testing.T) {
	cert := testCert(t)
	addr := goServer(t, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12})
	cp := clientHandshake(t, addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, ClientSessionCache: newRecordingCache()}, "")
	records, _, err := parseRecords(cp.server)
	if err != nil {
		t.Fatal(err)
	}
	var plain []byte
	for _, r := range records {
		if r.Type == RecordChangeCipherSpec {
			break
		}
		plain = append(plain, r.Payload...)
	}
	var whole handshakeReassembler
	want, err := whole.Add(plain)
	if err != nil || whole.Pending() != 0 || len(want) < 4 {
		t.Fatalf("%d messages, %d pending, err %v from the whole flight", len(want), whole.Pending(), err)
	}
	for _, size := range []int{1, 2, 3, 4, 5, 7, 100, 1000} {
		var h handshakeReassembler
		var got []HandshakeMessage
		for chunk := range slices.Chunk(plain, size) {
			msgs, err := h.Add(chunk)
			if err != nil {
				t.Fatalf("fragments of %d: %v", size, err)
			}
			got = append(got, msgs...)
		}
		if !slices.EqualFunc(got, want, func(a, b HandshakeMessage) bool { return a.Type == b.Type && bytes.Equal(a.Body, b.Body) }) {
			t.Errorf("fragments of %d: %d messages, want %d", size, len(got), len(want))
		}
	}

	tests := []struct {
		name    string
		input   [][]byte
		wantErr string
	}{
		{name: "body over the limit", input: [][]byte{{typeCertificate, 0x01, 0x00, 0x01}}, wantErr: "65537-byte body exceeds 65536"},
		{name: "error sticks", input: [][]byte{{typeCertificate, 0xff, 0xff, 0xff}, {typeFinished, 0, 0, 0}}, wantErr: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var h handshakeReassembler
			var err error
			for _, in := range tt.input {
				_, err = h.Add(in)
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestParseKeyLog(t *testing.T) {
	cert := testCert(t)
	addr := goServer(t, &tls.Config{Certificates: []tls.Certificate{cert}})
	cp := clientHandshake(t, addr, &tls.Config{InsecureSkipVerify: true}, "")
	noisy := append([]byte("# a comment\n\nnot a key log line\nBROKEN 00 zz\n"), cp.keyLog...)
	tests := []struct {
		name string
		log  []byte
	}{
		{name: "crypto/tls key log", log: cp.keyLog},
		{name: "with comments and junk", log: noisy},
		{name: "CRLF", log: bytes.ReplaceAll(cp.keyLog, []byte("\n"), []byte("\r\n"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseKeyLog(tt.log)
			if _, ok := got["BROKEN"]; ok {
				t.Error("kept a line whose secret is not hex")
			}
			for _, label := range []string{LabelServerTrafficSecret0, labelClientTrafficSecret0, labelServerHandshake, labelClientHandshake} {
				if len(got[label]) != 32 { // SHA-256 suites only, on this client
					t.Errorf("%s: %d bytes", label, len(got[label]))
				}
			}
			// The secret decrypts the connection it came from.
			if _, err := ParseFlight13(cp.server, cp.state.CipherSuite, got[LabelServerTrafficSecret0]); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAlertString(t *testing.T) {
	tests := []struct {
		alert Alert
		want  string
	}{
		{Alert{AlertLevelFatal, 40}, "fatal handshake_failure(40)"},
		{Alert{AlertLevelWarning, 0}, "warning close_notify(0)"},
		{Alert{AlertLevelFatal, 116}, "fatal certificate_required(116)"},
		{Alert{7, 200}, "level7 alert(200)"},
	}
	for _, tt := range tests {
		if got := tt.alert.String(); got != tt.want {
			t.Errorf("%#v: %q, want %q", tt.alert, got, tt.want)
		}
	}
	if _, err := ParseAlert([]byte{2}); err == nil {
		t.Error("ParseAlert accepted one byte")
	}
}
