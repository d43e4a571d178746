package wire

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
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
	id            uint16
	keyLen, ivLen int
	hash          func() hash.Hash
	aead          func(key []byte) (cipher.AEAD, error)
	chacha        bool
}

// suites12 are the TLS 1.2 suites a resumed handshake can be finished with,
// in the order a probe offers them. RSA key exchange comes last, for
// servers that have nothing else.
var suites12 = []suite12{
	{id: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, keyLen: 16, ivLen: 4, hash: sha256.New, aead: newAESGCM},
	{id: tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, keyLen: 16, ivLen: 4, hash: sha256.New, aead: newAESGCM},
	{id: tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, keyLen: 32, ivLen: 4, hash: sha512.New384, aead: newAESGCM},
	{id: tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, keyLen: 32, ivLen: 4, hash: sha512.New384, aead: newAESGCM},
	{id: tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, keyLen: 32, ivLen: 12, hash: sha256.New, aead: chacha20poly1305.New, chacha: true},
	{id: tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, keyLen: 32, ivLen: 12, hash: sha256.New, aead: chacha20poly1305.New, chacha: true},
	{id: tls.TLS_RSA_WITH_AES_128_GCM_SHA256, keyLen: 16, ivLen: 4, hash: sha256.New, aead: newAESGCM},
	{id: tls.TLS_RSA_WITH_AES_256_GCM_SHA384, keyLen: 32, ivLen: 4, hash: sha512.New384, aead: newAESGCM},
}

func suiteTLS12(id uint16) (suite12, error) {
	for _, s := range suites12 {
		if s.id == id {
			return s, nil
		}
	}
	return suite12{}, fmt.Errorf("TLS 1.2 suite %#04x: not an AEAD suite this probe can finish", id)
}

// FinishableSuites12 returns the TLS 1.2 suites NewKeys12 can protect
// records of, in order of preference: the suites to offer when a resumed
// handshake is to be finished rather than dropped.
func FinishableSuites12() []uint16 {
	ids := make([]uint16, len(suites12))
	for i, s := range suites12 {
		ids[i] = s.id
	}
	return ids
}

// SupportsFinish12 reports whether NewKeys12 can protect records of suite.
func SupportsFinish12(suite uint16) bool {
	_, err := suiteTLS12(suite)
	return err == nil
}

// prf12 is the TLS 1.2 pseudo-random function P_hash(secret, label+seed).
func prf12(h func() hash.Hash, secret []byte, label string, seed []byte, n int) []byte {
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

// protection12 seals or opens the records of one direction of a TLS 1.2
// connection under an AEAD suite.
type protection12 struct {
	aead   cipher.AEAD
	iv     []byte
	chacha bool
	seq    uint64
}

// Keys12 holds both directions of a resumed TLS 1.2 connection and the
// suite's hash, for the Finished messages.
type Keys12 struct {
	client, server *protection12
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
	block := prf12(s.hash, master, "key expansion", append(append([]byte{}, serverRandom...), clientRandom...), 2*s.keyLen+2*s.ivLen)
	ck, sk := block[:s.keyLen], block[s.keyLen:2*s.keyLen]
	civ, siv := block[2*s.keyLen:2*s.keyLen+s.ivLen], block[2*s.keyLen+s.ivLen:]
	k := &Keys12{master: master, hash: s.hash}
	for _, side := range []struct {
		p       **protection12
		key, iv []byte
	}{{&k.client, ck, civ}, {&k.server, sk, siv}} {
		a, err := s.aead(side.key)
		if err != nil {
			return nil, err
		}
		*side.p = &protection12{aead: a, iv: side.iv, chacha: s.chacha}
	}
	return k, nil
}

// verifyData returns the 12-byte verify_data of a Finished message over the
// handshake messages so far; label is "client finished" or "server finished".
func (k *Keys12) verifyData(label string, transcript []byte) []byte {
	h := k.hash()
	h.Write(transcript)
	return prf12(k.hash, k.master, label, h.Sum(nil), 12)
}

func (p *protection12) nonce() (nonce, explicit []byte) {
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

func (p *protection12) aad(typ uint8, n int) []byte {
	var b [13]byte
	binary.BigEndian.PutUint64(b[:8], p.seq)
	b[8] = typ
	binary.BigEndian.PutUint16(b[9:], VersionTLS12)
	binary.BigEndian.PutUint16(b[11:], uint16(n))
	return b[:]
}

// Seal appends to dst a whole protected record of the given content type.
// plaintext must fit one record (maxPlaintextLen).
func (p *protection12) Seal(dst []byte, typ uint8, plaintext []byte) []byte {
	nonce, explicit := p.nonce()
	n := len(explicit) + len(plaintext) + p.aead.Overhead()
	dst = appendHeader(dst, typ, VersionTLS12, n)
	dst = append(dst, explicit...)
	dst = p.aead.Seal(dst, nonce, plaintext, p.aad(typ, len(plaintext)))
	p.seq++
	return dst
}

// Open decrypts one protected record.
func (p *protection12) Open(r Record) ([]byte, error) {
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

// Finished labels (RFC 5246 §7.4.9).
const (
	labelClientFinished = "client finished"
	labelServerFinished = "server finished"
)

// ReadServerFinished opens the server's first protected record, which in
// an abbreviated handshake holds its Finished and nothing else.
func (k *Keys12) ReadServerFinished(r Record) (HandshakeMessage, error) {
	if r.Type != RecordHandshake {
		return HandshakeMessage{}, fmt.Errorf("protected record type %d where the server's Finished belongs", r.Type)
	}
	plain, err := k.server.Open(r)
	if err != nil {
		return HandshakeMessage{}, err
	}
	return ParseHandshake(plain)
}

// CheckServerFinished verifies the server's Finished message against the
// handshake messages before it (ClientHello, ServerHello, any
// NewSessionTicket).
func (k *Keys12) CheckServerFinished(transcript []byte, finished HandshakeMessage) error {
	if finished.Type != typeFinished {
		return fmt.Errorf("handshake message type %d where the server's Finished belongs", finished.Type)
	}
	if !hmac.Equal(finished.Body, k.verifyData(labelServerFinished, transcript)) {
		return errors.New("server Finished does not verify")
	}
	return nil
}

// ClientFinish returns the client's last flight of an abbreviated
// handshake, followed by a close_notify: ChangeCipherSpec, then Finished
// and the alert protected under the client's keys. transcript holds every
// handshake message up to and including the server's Finished.
func (k *Keys12) ClientFinish(transcript []byte) []byte {
	fin := HandshakeMessage{Type: typeFinished, Body: k.verifyData(labelClientFinished, transcript)}
	out := appendChangeCipherSpec(nil)
	out = k.client.Seal(out, RecordHandshake, fin.Marshal())
	return k.client.Seal(out, RecordAlert, Alert{Level: AlertLevelWarning, Description: AlertCloseNotify}.Marshal())
}
