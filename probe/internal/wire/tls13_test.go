package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// sealer is the sending side of TLS 1.3 record protection, written here
// from RFC 8446 §5.2–5.3 with the AEADs used directly, to check decrypter
// against.
type sealer struct {
	aead cipher.AEAD
	iv   []byte
	seq  uint64
}

func newSealer(t *testing.T, suite uint16, key, iv []byte) *sealer {
	t.Helper()
	var aead cipher.AEAD
	var err error
	if suite == tls.TLS_CHACHA20_POLY1305_SHA256 {
		aead, err = chacha20poly1305.New(key)
	} else {
		var block cipher.Block
		if block, err = aes.NewCipher(key); err == nil {
			aead, err = cipher.NewGCM(block)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return &sealer{aead: aead, iv: iv}
}

// seal returns the type-23 record carrying content of type typ followed by
// padding zero bytes.
func (s *sealer) seal(typ uint8, content []byte, padding int) Record {
	inner := append(append([]byte(nil), content...), typ)
	inner = append(inner, make([]byte, padding)...)
	nonce := append([]byte(nil), s.iv...)
	for i := range 8 {
		nonce[len(nonce)-1-i] ^= byte(s.seq >> (8 * i))
	}
	s.seq++
	header := []byte{RecordApplicationData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(header[3:], uint16(len(inner)+s.aead.Overhead()))
	return Record{Type: RecordApplicationData, Version: 0x0303, Payload: s.aead.Seal(nil, nonce, inner, header)}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keysFor derives key and IV for the sealer; the RFC 8448 row checks the
// same derivation against published values.
func keysFor(t *testing.T, suite uint16, secret []byte) (key, iv []byte) {
	t.Helper()
	h, keyLen := sha256.New, 16
	switch suite {
	case tls.TLS_AES_256_GCM_SHA384:
		h, keyLen = func() hash.Hash { return sha512.New384() }, 32
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		keyLen = 32
	}
	key, err := expandLabel(h, secret, "key", nil, keyLen)
	if err != nil {
		t.Fatal(err)
	}
	iv, err = expandLabel(h, secret, "iv", nil, 12)
	if err != nil {
		t.Fatal(err)
	}
	return key, iv
}

func TestDecrypter(t *testing.T) {
	// RFC 8448 §3: the server handshake traffic secret and the key and IV
	// it expands to.
	rfcSecret := mustHex(t, "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
	rfcKey := mustHex(t, "3fce516009c21727d0f2e4e86ee403bc")
	rfcIV := mustHex(t, "5d313eb2671276ee13000b30")

	tests := []struct {
		name    string
		suite   uint16
		secret  []byte
		key, iv []byte // nil: derive with expandLabel
	}{
		{name: "RFC 8448 AES-128-GCM", suite: tls.TLS_AES_128_GCM_SHA256, secret: rfcSecret, key: rfcKey, iv: rfcIV},
		{name: "AES-128-GCM", suite: tls.TLS_AES_128_GCM_SHA256, secret: randomBytes(t, 32)},
		{name: "AES-256-GCM", suite: tls.TLS_AES_256_GCM_SHA384, secret: randomBytes(t, 48)},
		{name: "ChaCha20-Poly1305", suite: tls.TLS_CHACHA20_POLY1305_SHA256, secret: randomBytes(t, 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, iv := tt.key, tt.iv
			if key == nil {
				key, iv = keysFor(t, tt.suite, tt.secret)
			}
			s := newSealer(t, tt.suite, key, iv)
			d, err := newDecrypter(tt.suite, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			open := func(r Record, wantType uint8, want string) {
				t.Helper()
				typ, pt, err := d.Open(r)
				if err != nil || typ != wantType || string(pt) != want {
					t.Fatalf("Open: type %d %q err %v; want type %d %q", typ, pt, err, wantType, want)
				}
			}
			open(s.seal(RecordHandshake, []byte("first"), 0), RecordHandshake, "first")
			open(s.seal(RecordApplicationData, []byte("padded"), 100), RecordApplicationData, "padded")
			open(s.seal(RecordAlert, []byte{1, 0}, 1), RecordAlert, "\x01\x00")
			open(s.seal(RecordApplicationData, nil, 3), RecordApplicationData, "")

			// A damaged record fails and leaves the sequence number alone.
			good := s.seal(RecordHandshake, []byte("after the damaged one"), 0)
			bad := Record{Type: good.Type, Version: good.Version, Payload: append([]byte(nil), good.Payload...)}
			bad.Payload[0] ^= 1
			seq := d.Seq()
			if _, _, err := d.Open(bad); err == nil || d.Seq() != seq {
				t.Fatalf("damaged record: err %v, seq %d -> %d", err, seq, d.Seq())
			}
			// So does the same record under a header it was not sealed with.
			if _, _, err := d.Open(Record{Type: good.Type, Version: 0x0301, Payload: good.Payload}); err == nil || d.Seq() != seq {
				t.Fatalf("record under another header: err %v", err)
			}
			open(good, RecordHandshake, "after the damaged one")

			// Skipping a record makes the next one fail: the nonce follows
			// the sequence number.
			s.seal(RecordApplicationData, []byte("lost"), 0)
			if _, _, err := d.Open(s.seal(RecordApplicationData, []byte("out of order"), 0)); err == nil {
				t.Fatal("a record sealed with the wrong sequence number opened")
			}
		})
	}
}

func TestDecrypterErrors(t *testing.T) {
	secret := randomBytes(t, 32)
	key, iv := keysFor(t, tls.TLS_AES_128_GCM_SHA256, secret)
	tests := []struct {
		name    string
		suite   uint16
		secret  []byte
		record  func(s *sealer) Record
		wantErr string
	}{
		{name: "TLS 1.2 suite", suite: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, secret: secret, wantErr: "not a TLS 1.3 suite"},
		{name: "secret of the wrong hash", suite: tls.TLS_AES_256_GCM_SHA384, secret: secret, wantErr: "traffic secret is 32 bytes"},
		{name: "only padding", record: func(s *sealer) Record {
			r := s.seal(0, nil, 10) // content type 0 is padding too
			return r
		}, wantErr: "only padding"},
		{name: "outer type", record: func(s *sealer) Record {
			r := s.seal(RecordHandshake, []byte("x"), 0)
			r.Type = RecordHandshake
			return r
		}, wantErr: "outer type 22"},
		{name: "ciphertext too long", record: func(s *sealer) Record {
			return s.seal(RecordApplicationData, make([]byte, 16384+256), 0)
		}, wantErr: "exceeds"},
		{name: "plaintext too long", record: func(s *sealer) Record {
			return s.seal(RecordApplicationData, make([]byte, 16385), 0)
		}, wantErr: "plaintext exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.suite == 0 {
				tt.suite, tt.secret = tls.TLS_AES_128_GCM_SHA256, secret
			}
			d, err := newDecrypter(tt.suite, tt.secret)
			if err == nil && tt.record != nil {
				_, _, err = d.Open(tt.record(newSealer(t, tt.suite, key, iv)))
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestDecrypterKeyUpdate(t *testing.T) {
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384, tls.TLS_CHACHA20_POLY1305_SHA256} {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			secretLen := 32
			h := sha256.New
			if suite == tls.TLS_AES_256_GCM_SHA384 {
				secretLen, h = 48, func() hash.Hash { return sha512.New384() }
			}
			secret := randomBytes(t, secretLen)
			d, err := newDecrypter(suite, secret)
			if err != nil {
				t.Fatal(err)
			}
			key, iv := keysFor(t, suite, secret)
			s := newSealer(t, suite, key, iv)
			if _, _, err := d.Open(s.seal(RecordHandshake, []byte{typeKeyUpdate, 0, 0, 1, 0}, 0)); err != nil {
				t.Fatal(err)
			}
			if err := d.KeyUpdate(); err != nil {
				t.Fatal(err)
			}
			next, err := expandLabel(h, secret, "traffic upd", nil, secretLen)
			if err != nil {
				t.Fatal(err)
			}
			key, iv = keysFor(t, suite, next)
			s = newSealer(t, suite, key, iv)
			if typ, pt, err := d.Open(s.seal(RecordApplicationData, []byte("new epoch"), 0)); err != nil || typ != RecordApplicationData || string(pt) != "new epoch" {
				t.Errorf("after KeyUpdate: type %d %q err %v", typ, pt, err)
			}
		})
	}
}
