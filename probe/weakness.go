package probe

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
)

// OpenSSL's ticket format (nginx, Apache, HAProxy, lighttpd and OpenSSL
// itself): key name, IV, AES-CBC ciphertext, HMAC-SHA256 over all of it.
const (
	opensslKeyNameLen = 16
	opensslIVLen      = 16
	opensslMACLen     = sha256.Size
)

// zeroMACKey is an all-zero HMAC key. HMAC pads a short key with zeros, so
// this one MAC covers the 16-byte keys of 48-byte key files and the 32-byte
// keys of 80-byte ones alike.
var zeroMACKey = make([]byte, 16)

// opensslFormat reports whether a ticket has the shape of OpenSSL's: a
// whole number of cipher blocks between the IV and the MAC.
func opensslFormat(t []byte) bool {
	body := len(t) - opensslKeyNameLen - opensslIVLen - opensslMACLen
	return body > 0 && body%16 == 0
}

// zeroKeyMAC reports whether an OpenSSL-format ticket authenticates under
// the all-zero HMAC key.
func zeroKeyMAC(t []byte) bool {
	mac := hmac.New(sha256.New, zeroMACKey)
	mac.Write(t[:len(t)-opensslMACLen])
	return hmac.Equal(mac.Sum(nil), t[len(t)-opensslMACLen:])
}

// minSecretOverlap is the shortest stretch of a secret matched: a TLS 1.3
// PSK of SHA-256 is 32 bytes, a master secret 48.
const minSecretOverlap = 32

// keystreamReused reports whether a ⊕ b contains sa ⊕ sb, over the secrets'
// common length: what two tickets whose sessions sit at the same offset
// show when one keystream (a fixed AES-CTR nonce, a reused GCM nonce)
// encrypted both.
func keystreamReused(a, b ticketSecret) bool {
	n := min(len(a.secret), len(b.secret))
	if n < minSecretOverlap || bytes.Equal(a.secret[:n], b.secret[:n]) {
		return false // equal secrets xor to zeros, which any equal bytes match
	}
	want := xorBytes(a.secret[:n], b.secret[:n])
	got := xorBytes(a.raw, b.raw)
	return bytes.Contains(got, want)
}

func inClear(t ticketSecret) bool { return bytes.Contains(t.raw, t.secret) }

func xorBytes(a, b []byte) []byte {
	out := make([]byte, min(len(a), len(b)))
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// weaknesses judges every ticket the probe holds (Hebrok et al., "We
// Really Need to Talk About Session Tickets", USENIX Security 2023). Per
// version, a verdict is given for each weakness that applies to at least
// one of its tickets: secret_in_clear always, zero_key to tickets of
// OpenSSL's shape, keystream_reuse when a second ticket (of either
// version) is there to compare with. Only the verdicts leave the probe.
func (s *riskSink) weaknesses() []TicketWeakness {
	s.mu.Lock()
	defer s.mu.Unlock()
	type key struct {
		v uint16
		w Weakness
	}
	found := map[key]bool{}
	judge := func(v uint16, w Weakness, ok bool) { found[key{v, w}] = found[key{v, w}] || ok }
	for i, t := range s.tickets {
		judge(t.version, WeaknessSecretInClear, inClear(t))
		if opensslFormat(t.raw) {
			judge(t.version, WeaknessZeroKey, zeroKeyMAC(t.raw))
		}
		for j, u := range s.tickets {
			// A ticket in clear would match too (its keystream is all
			// zeros): that is secret_in_clear's verdict, not this one's.
			if i != j && !bytes.Equal(t.raw, u.raw) && !inClear(t) && !inClear(u) {
				judge(t.version, WeaknessKeystreamReuse, keystreamReused(t, u))
			}
		}
	}
	var out []TicketWeakness
	for _, v := range []uint16{VersionTLS12, VersionTLS13} {
		for _, w := range []Weakness{WeaknessSecretInClear, WeaknessZeroKey, WeaknessKeystreamReuse} {
			if f, ok := found[key{v, w}]; ok {
				out = append(out, TicketWeakness{Version: v, Weakness: w, Found: f})
			}
		}
	}
	return out
}
