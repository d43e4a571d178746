package wire

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/cryptobyte"
)

// maxCiphertext13 is the largest TLSCiphertext.length RFC 8446 §5.2 allows.
const maxCiphertext13 = maxPlaintextLen + 256

// suite13 is what record protection needs to know of a TLS 1.3 cipher suite.
type suite13 struct {
	hash   func() hash.Hash
	keyLen int
	aead   func(key []byte) (cipher.AEAD, error)
}

func suiteTLS13(id uint16) (suite13, error) {
	switch id {
	case tls.TLS_AES_128_GCM_SHA256:
		return suite13{sha256.New, 16, newAESGCM}, nil
	case tls.TLS_AES_256_GCM_SHA384:
		return suite13{sha512.New384, 32, newAESGCM}, nil
	case tls.TLS_CHACHA20_POLY1305_SHA256:
		return suite13{sha256.New, chacha20poly1305.KeySize, chacha20poly1305.New}, nil
	}
	return suite13{}, fmt.Errorf("cipher suite %#04x is not a TLS 1.3 suite", id)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// expandLabel is HKDF-Expand-Label of RFC 8446 §7.1 with the hash h.
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) ([]byte, error) {
	var b cryptobyte.Builder
	b.AddUint16(uint16(length))
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes([]byte("tls13 "))
		b.AddBytes([]byte(label))
	})
	b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddBytes(context)
	})
	info, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("HKDF label %q: %w", label, err)
	}
	return hkdf.Expand(h, secret, string(info), length)
}

// decrypter removes the record protection of one direction of a TLS 1.3
// connection in one epoch (RFC 8446 §5.2, §5.3).
type decrypter struct {
	suite  suite13
	secret []byte
	aead   cipher.AEAD
	iv     []byte
	seq    uint64
}

// newDecrypter derives the write key and IV of the traffic secret (as found
// in the key log, e.g. SERVER_TRAFFIC_SECRET_0) for the given TLS 1.3 suite.
// The first record it opens must be the first of that epoch.
func newDecrypter(suite uint16, trafficSecret []byte) (*decrypter, error) {
	s, err := suiteTLS13(suite)
	if err != nil {
		return nil, err
	}
	if want := s.hash().Size(); len(trafficSecret) != want {
		return nil, fmt.Errorf("traffic secret is %d bytes, suite %s needs %d", len(trafficSecret), tls.CipherSuiteName(suite), want)
	}
	d := &decrypter{suite: s}
	if err := d.setSecret(trafficSecret); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *decrypter) setSecret(secret []byte) error {
	key, err := expandLabel(d.suite.hash, secret, "key", nil, d.suite.keyLen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(d.suite.hash, secret, "iv", nil, 12)
	if err != nil {
		return err
	}
	aead, err := d.suite.aead(key)
	if err != nil {
		return err
	}
	d.secret, d.aead, d.iv, d.seq = secret, aead, iv, 0
	return nil
}

// KeyUpdate moves to the next traffic secret (RFC 8446 §7.2), as the peer
// does after sending a KeyUpdate message.
func (d *decrypter) KeyUpdate() error {
	next, err := expandLabel(d.suite.hash, d.secret, "traffic upd", nil, len(d.secret))
	if err != nil {
		return err
	}
	return d.setSecret(next)
}

// Open decrypts one application_data record, using r's header as the
// additional data, strips the padding, and returns the inner content type
// and plaintext. When authentication fails the sequence number does not
// advance, so a caller may trial-decrypt records of another epoch.
func (d *decrypter) Open(r Record) (contentType uint8, plaintext []byte, err error) {
	if r.Type != RecordApplicationData {
		return 0, nil, fmt.Errorf("TLS 1.3 record: outer type %d, want %d", r.Type, RecordApplicationData)
	}
	if len(r.Payload) > maxCiphertext13 {
		return 0, nil, fmt.Errorf("TLS 1.3 record: %d-byte ciphertext exceeds %d", len(r.Payload), maxCiphertext13)
	}
	nonce := d.nonce()
	inner, err := d.aead.Open(nil, nonce, r.Payload, r.Header())
	if err != nil {
		return 0, nil, fmt.Errorf("TLS 1.3 record %d: %w", d.seq, err)
	}
	d.seq++
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	if i < 0 {
		return 0, nil, fmt.Errorf("TLS 1.3 record %d: no content type, only padding", d.seq-1)
	}
	if i > maxPlaintextLen {
		return 0, nil, fmt.Errorf("TLS 1.3 record %d: %d-byte plaintext exceeds %d", d.seq-1, i, maxPlaintextLen)
	}
	return inner[i], inner[:i], nil
}

// nonce is the per-record nonce: the IV xor the sequence number
// (RFC 8446 §5.3).
func (d *decrypter) nonce() []byte {
	nonce := make([]byte, len(d.iv))
	copy(nonce, d.iv)
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], d.seq)
	for i, b := range seq {
		nonce[len(nonce)-8+i] ^= b
	}
	return nonce
}

// Seq returns the sequence number of the next record to open.
func (d *decrypter) Seq() uint64 { return d.seq }

var errNoSecret = errors.New("no SERVER_TRAFFIC_SECRET_0 to decrypt with")
