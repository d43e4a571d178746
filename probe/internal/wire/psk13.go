package wire

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"hash"
)

// The TLS 1.3 key schedule (RFC 8446 §7.1) as far as a client that offers
// a PSK of its own needs it: the binder that authenticates the offer, the
// client_early_traffic_secret that protects 0-RTT data, and the server's
// handshake traffic secret that protects its EncryptedExtensions.

// Schedule13 is the key schedule of one TLS 1.3 connection resuming a PSK.
// It holds secrets: it lives for one offer and is never logged.
type Schedule13 struct {
	hash  func() hash.Hash
	early []byte
}

// NewSchedule13 starts the key schedule of a connection that resumes psk,
// a PSK of the given TLS 1.3 suite: Early Secret = HKDF-Extract(0, PSK).
func NewSchedule13(suite uint16, psk []byte) (*Schedule13, error) {
	s, err := suiteTLS13(suite)
	if err != nil {
		return nil, err
	}
	if len(psk) == 0 {
		return nil, errors.New("TLS 1.3 key schedule: empty PSK")
	}
	early, err := hkdf.Extract(s.hash, psk, make([]byte, s.hash().Size()))
	if err != nil {
		return nil, err
	}
	return &Schedule13{hash: s.hash, early: early}, nil
}

// transcriptHash is Transcript-Hash of the concatenated handshake messages.
func (k *Schedule13) transcriptHash(msgs ...[]byte) []byte {
	h := k.hash()
	for _, m := range msgs {
		h.Write(m)
	}
	return h.Sum(nil)
}

// deriveSecret is Derive-Secret(secret, label, messages).
func (k *Schedule13) deriveSecret(secret []byte, label string, msgs ...[]byte) ([]byte, error) {
	return expandLabel(k.hash, secret, label, k.transcriptHash(msgs...), k.hash().Size())
}

// Binder returns the PSK binder of a resumption PSK (RFC 8446 §4.2.11.2)
// over truncatedHello, the ClientHello up to its binders list
// (ClientHello.MarshalWithoutBinders).
func (k *Schedule13) Binder(truncatedHello []byte) ([]byte, error) {
	binderKey, err := k.deriveSecret(k.early, "res binder")
	if err != nil {
		return nil, err
	}
	finishedKey, err := expandLabel(k.hash, binderKey, "finished", nil, k.hash().Size())
	if err != nil {
		return nil, err
	}
	mac := hmac.New(k.hash, finishedKey)
	mac.Write(k.transcriptHash(truncatedHello))
	return mac.Sum(nil), nil
}

// BinderLen is the length of a binder of the suite's hash.
func BinderLen(suite uint16) (int, error) {
	s, err := suiteTLS13(suite)
	if err != nil {
		return 0, err
	}
	return s.hash().Size(), nil
}

// Bind fills in the binder of c's only PSK identity, which must be the
// schedule's PSK: the binders list gets a placeholder of the right length
// (so that MarshalWithoutBinders has the final lengths), then the binder.
// It returns the whole ClientHello message.
func (k *Schedule13) Bind(c *ClientHello) ([]byte, error) {
	if len(c.PSKIdentities) != 1 {
		return nil, fmt.Errorf("ClientHello: %d PSK identities, want 1", len(c.PSKIdentities))
	}
	c.PSKBinders = [][]byte{make([]byte, k.hash().Size())}
	truncated, err := c.MarshalWithoutBinders()
	if err != nil {
		return nil, err
	}
	binder, err := k.Binder(truncated)
	if err != nil {
		return nil, err
	}
	c.PSKBinders[0] = binder
	return c.Marshal()
}

// ClientEarlyTrafficSecret is client_early_traffic_secret for the
// ClientHello message clientHello (RFC 8446 §7.1).
func (k *Schedule13) ClientEarlyTrafficSecret(clientHello []byte) ([]byte, error) {
	return k.deriveSecret(k.early, "c e traffic", clientHello)
}

// ServerHandshakeTrafficSecret is server_handshake_traffic_secret: from
// the (EC)DHE shared secret and the transcript ClientHello ‖ ServerHello.
// A psk_ke handshake has no shared secret: pass nil, which stands for the
// string of zeros RFC 8446 §7.1 puts in its place.
func (k *Schedule13) ServerHandshakeTrafficSecret(shared, clientHello, serverHello []byte) ([]byte, error) {
	derived, err := k.deriveSecret(k.early, "derived")
	if err != nil {
		return nil, err
	}
	if shared == nil {
		shared = make([]byte, k.hash().Size())
	}
	hs, err := hkdf.Extract(k.hash, shared, derived)
	if err != nil {
		return nil, err
	}
	return k.deriveSecret(hs, "s hs traffic", clientHello, serverHello)
}

// KeyShareKey is the client's private half of one key_share entry.
type KeyShareKey struct {
	Group uint16
	priv  *ecdh.PrivateKey
}

// NewKeyShare generates a key for one of the elliptic-curve groups
// (X25519, P-256, P-384) and returns it with its key_share entry.
func NewKeyShare(group uint16) (*KeyShareKey, KeyShare, error) {
	var curve ecdh.Curve
	switch tls.CurveID(group) {
	case tls.X25519:
		curve = ecdh.X25519()
	case tls.CurveP256:
		curve = ecdh.P256()
	case tls.CurveP384:
		curve = ecdh.P384()
	default:
		return nil, KeyShare{}, fmt.Errorf("key share: group %d is not X25519, P-256 or P-384", group)
	}
	priv, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		return nil, KeyShare{}, err
	}
	return &KeyShareKey{Group: group, priv: priv}, KeyShare{Group: group, Data: priv.PublicKey().Bytes()}, nil
}

// SharedSecret is the (EC)DHE shared secret with the server's share.
func (k *KeyShareKey) SharedSecret(serverShare []byte) ([]byte, error) {
	pub, err := k.priv.Curve().NewPublicKey(serverShare)
	if err != nil {
		return nil, fmt.Errorf("server key share: %w", err)
	}
	return k.priv.ECDH(pub)
}

// ShareableGroups are the groups NewKeyShare can make, in preference order.
var ShareableGroups = []uint16{uint16(tls.X25519), uint16(tls.CurveP256), uint16(tls.CurveP384)}

// NewClientHello13 returns a TLS 1.3 ClientHello offering suite, with SNI
// (see sniHost), the signature schemes a current client sends, one group
// and its key share, a random Random and a random 32-byte legacy session
// ID (middlebox compatibility, as browsers send). The caller adds the PSK
// fields and binds them (Schedule13.Bind).
func NewClientHello13(serverName string, suite uint16, share KeyShare) (*ClientHello, error) {
	c := &ClientHello{
		Version:            VersionTLS12,
		CipherSuites:       []uint16{suite},
		CompressionMethods: []uint8{compressionNone},
		ServerName:         sniHost(serverName),
		SupportedGroups:    []uint16{share.Group},
		SignatureSchemes:   clientHelloSigAlgs,
		SupportedVersions:  []uint16{VersionTLS13},
		KeyShares:          []KeyShare{share},
		SessionID:          make([]byte, 32),
	}
	if _, err := rand.Read(c.Random[:]); err != nil {
		return nil, err
	}
	if _, err := rand.Read(c.SessionID); err != nil {
		return nil, err
	}
	return c, nil
}
