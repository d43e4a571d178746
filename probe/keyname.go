package probe

import (
	"cmp"
	"slices"
)

// ticketSeen is one ticket as it crossed the wire. raw is the ticket itself
// and never leaves the probe.
type ticketSeen struct {
	version      uint16
	raw          []byte
	lifetime     uint32
	maxEarlyData uint32
}

// Key names are a prefix of the ticket in clear. The lengths implementations
// use: 16 bytes (OpenSSL, BoringSSL, GnuTLS, Go ≤ 1.20, rustls) and 4 (Java
// JSSE). Two tickets from one key share at least the name; the bytes after
// it are an IV and match by chance (1 in 256 per byte), so a shared prefix
// is cut down to the longest known length it covers.
var keyNameLengths = []int{16, 4}

// maxStatefulTicket is the longest ticket taken for a bare session handle:
// OpenSSL's stateful TLS 1.3 tickets are 32 random bytes, while a ticket
// that carries an encrypted session is well over 100.
const maxStatefulTicket = 64

func nameLength(sharedPrefix int) int {
	for _, l := range keyNameLengths {
		if sharedPrefix >= l {
			return l
		}
	}
	return 0
}

func sharedPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// ticketNameLengths returns, per ticket, the key-name length its best match
// among all other tickets shows. Tickets of both versions are compared with
// each other: a server encrypts its TLS 1.2 and TLS 1.3 tickets with the same
// key, and behind a balancer each backend's tickets pair up with their own.
func ticketNameLengths(ts []ticketSeen) []int {
	lens := make([]int, len(ts))
	for i := range ts {
		best := 0
		for j := range ts {
			if i != j {
				best = max(best, sharedPrefix(ts[i].raw, ts[j].raw))
			}
		}
		lens[i] = nameLength(best)
	}
	return lens
}

// summarise turns the tickets of one probe into per-version summaries and the
// key names, busiest first.
func summarise(ts []ticketSeen) (map[uint16]Tickets, []KeyName) {
	return summariseKnown(ts, 0)
}

// summariseKnown is summarise when earlier evidence (kept sessions, earlier
// probes) showed the key names to be known bytes long, 0 when none did.
func summariseKnown(ts []ticketSeen, known int) (map[uint16]Tickets, []KeyName) {
	lens := ticketNameLengths(ts)
	// A long ticket that matched no other one still carries a name when
	// others show the server names its keys: behind a balancer one backend
	// may have issued just this ticket. Short ones are session handles.
	shown := known
	for _, l := range lens {
		shown = max(shown, l)
	}
	for i, t := range ts {
		if lens[i] == 0 && len(t.raw) > maxStatefulTicket {
			lens[i] = shown
		}
	}
	byVersion := map[uint16]Tickets{}
	counts := map[uint64]int{}
	keys := map[uint16]map[uint64]bool{}
	for i, t := range ts {
		s, ok := byVersion[t.version]
		if !ok {
			s = Tickets{Version: t.version, LifetimeHint: t.lifetime, MaxEarlyData: t.maxEarlyData}
		}
		s.Count++
		s.KeyNameBytes = max(s.KeyNameBytes, lens[i])
		byVersion[t.version] = s
		if lens[i] > 0 {
			fp := Fingerprint(t.raw[:lens[i]])
			counts[fp]++
			if keys[t.version] == nil {
				keys[t.version] = map[uint64]bool{}
			}
			keys[t.version][fp] = true
		}
	}
	for v, s := range byVersion {
		s.Format = formatOf(s, ts, v)
		s.KeysSeen = len(keys[v])
		byVersion[v] = s
	}
	var names []KeyName
	for fp, n := range counts {
		names = append(names, KeyName{Fingerprint: fp, Tickets: n})
	}
	slices.SortFunc(names, func(a, b KeyName) int {
		if c := cmp.Compare(b.Tickets, a.Tickets); c != 0 {
			return c
		}
		return cmp.Compare(a.Fingerprint, b.Fingerprint)
	})
	return byVersion, names
}

func formatOf(s Tickets, ts []ticketSeen, version uint16) TicketFormat {
	if s.KeyNameBytes > 0 {
		return FormatStateless
	}
	for _, t := range ts {
		if t.version == version && len(t.raw) > maxStatefulTicket {
			return FormatStatelessUnnamed
		}
	}
	return FormatStateful
}

// ambiguous returns the versions whose format one more ticket would settle:
// a single long ticket with nothing to compare it with may carry a name or not.
func ambiguous(ts []ticketSeen) []uint16 {
	lens := ticketNameLengths(ts)
	count := map[uint16]int{}
	unsettled := map[uint16]bool{}
	for i, t := range ts {
		count[t.version]++
		if lens[i] == 0 && len(t.raw) > maxStatefulTicket {
			unsettled[t.version] = true
		}
	}
	var vs []uint16
	for v := range unsettled {
		if count[v] == 1 {
			vs = append(vs, v)
		}
	}
	slices.Sort(vs)
	return vs
}
