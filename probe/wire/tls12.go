package wire

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// TLS 1.2 just enough to finish an abbreviated (resumed) handshake: the PRF
// (RFC 5246 §5) and AEAD record protection (RFC 5288, RFC 7905). A probe
// that finishes a resumption, instead of dropping the connection in the
// middle, leaves the server nothing to treat as a fatal error, so servers
// that drop a session on an unexpected EOF keep it.

// suite12 describes one AEAD cipher suite of TLS 1.2.
type suite12 struct {
	keyLen, ivLen int
	hash          func() hash.Hash
	aead          func(key []byte) (cipher.AEAD, error)
	chacha        bool
}

func suiteTLS12(id uint16) (suite12, error) {
	switch id {
	case 0xc02b, 0xc02f, 0x009c: // ECDHE-ECDSA, ECDHE-RSA, RSA with AES_128_GCM_SHA256
		return suite12{keyLen: 16, ivLen: 4, hash: sha256.New, aead: newAESGCM}, nil
	case 0xc02c, 0xc030, 0x009d: // … AES_256_GCM_SHA384
		return suite12{keyLen: 32, ivLen: 4, hash: sha512.New384, aead: newAESGCM}, nil
	case 0xcca8, 0xcca9: // ECDHE-RSA, ECDHE-ECDSA with CHACHA20_POLY1305_SHA256
		return suite12{keyLen: 32, ivLen: 12, hash: sha256.New, aead: chacha20poly1305.New, chacha: true}, nil
	}
	return suite12{}, fmt.Errorf("TLS 1.2 suite %#04x: not an AEAD suite this probe can finish", id)
}

// SupportsFinish12 reports whether FinishKeys12 can protect records of suite.
func SupportsFinish12(suite uint16) bool {
	_, err := suiteTLS12(suite)
	return err == nil
}

// PRF12 is the TLS 1.2 pseudo-random function P_hash(secret, label+seed).
func PRF12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
	seed = append([]byte(label), seed...)
	out := make([]byte, 0, n)
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil)
	for len(out) < n {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		out = mac.Sum(out)
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(nil)
	}
	return out[:n]
}

// Protection12 seals or opens the records of one direction of a TLS 1.2
// connection under an AEAD suite.
type Protection12 struct {
	aead   cipher.AEAD
	iv     []byte
	chacha bool
	seq    uint64
}

// Keys12 holds both directions of a resumed TLS 1.2 connection and the
// suite's hash, for the Finished messages.
type Keys12 struct {
	Client, Server *Protection12
	master         []byte
	hash           func() hash.Hash
}

// NewKeys12 derives the record keys of a connection from its master secret
// and the two hello randoms (RFC 5246 §6.3).
func NewKeys12(suite uint16, master, clientRandom, serverRandom []byte) (*Keys12, error) {
	s, err := suiteTLS12(suite)
	if err != nil {
		return nil, err
	}
	block := PRF12(s.hash, master, "key expansion", append(append([]byte{}, serverRandom...), clientRandom...), 2*s.keyLen+2*s.ivLen)
	ck, sk := block[:s.keyLen], block[s.keyLen:2*s.keyLen]
	civ, siv := block[2*s.keyLen:2*s.keyLen+s.ivLen], block[2*s.keyLen+s.ivLen:]
	k := &Keys12{master: master, hash: s.hash}
	for _, side := range []struct {
		p       **Protection12
		key, iv []byte
	}{{&k.Client, ck, civ}, {&k.Server, sk, siv}} {
		a, err := s.aead(side.key)
		if err != nil {
			return nil, err
		}
		*side.p = &Protection12{aead: a, iv: side.iv, chacha: s.chacha}
	}
	return k, nil
}

// VerifyData returns the 12-byte verify_data of a Finished message over the
// handshake messages so far; label is "client finished" or "server finished".
func (k *Keys12) VerifyData(label string, transcript []byte) []byte {
	h := k.hash()
	h.Write(transcript)
	return PRF12(k.hash, k.master, label, h.Sum(nil), 12)
}

func (p *Protection12) nonce() (nonce, explicit []byte) {
	var seq [8]byte
	binary.BigEndian.PutUint64(seq[:], p.seq)
	if p.chacha {
		nonce = append([]byte{}, p.iv...)
		for i := range seq {
			nonce[4+i] ^= seq[i]
		}
		return nonce, nil
	}
	return append(append([]byte{}, p.iv...), seq[:]...), seq[:]
}

func (p *Protection12) aad(typ uint8, n int) []byte {
	var b [13]byte
	binary.BigEndian.PutUint64(b[:8], p.seq)
	b[8] = typ
	binary.BigEndian.PutUint16(b[9:], 0x0303)
	binary.BigEndian.PutUint16(b[11:], uint16(n))
	return b[:]
}

// Seal returns a whole protected record of the given content type.
func (p *Protection12) Seal(typ uint8, plaintext []byte) []byte {
	nonce, explicit := p.nonce()
	body := append([]byte{}, explicit...)
	body = p.aead.Seal(body, nonce, plaintext, p.aad(typ, len(plaintext)))
	p.seq++
	rec := []byte{typ, 3, 3, byte(len(body) >> 8), byte(len(body))}
	return append(rec, body...)
}

// Open decrypts one protected record.
func (p *Protection12) Open(r Record) ([]byte, error) {
	nonce, explicit := p.nonce()
	body := r.Payload
	if len(explicit) > 0 {
		if len(body) < len(explicit) {
			return nil, errors.New("TLS 1.2 record shorter than its explicit nonce")
		}
		nonce = append(nonce[:len(nonce)-len(explicit)], body[:len(explicit)]...)
		body = body[len(explicit):]
	}
	n := len(body) - p.aead.Overhead()
	if n < 0 {
		return nil, errors.New("TLS 1.2 record shorter than its tag")
	}
	out, err := p.aead.Open(nil, nonce, body, p.aad(r.Type, n))
	if err != nil {
		return nil, fmt.Errorf("TLS 1.2 record %d does not decrypt: %w", p.seq, err)
	}
	p.seq++
	return out, nil
}

// MarshalHandshake frames a handshake message: type, 24-bit length, body.
func MarshalHandshake(m HandshakeMessage) []byte {
	n := len(m.Body)
	return append([]byte{m.Type, byte(n >> 16), byte(n >> 8), byte(n)}, m.Body...)
}
