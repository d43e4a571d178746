package probe

import (
	"fmt"
	"net/netip"
	"path"
	"strings"
)

// RefusalReason says why a probe was refused before it sent a byte. The
// values are label values the exporter publishes.
type RefusalReason string

const (
	// ReasonTargetNotAllowed: no allow-list entry matches the target's
	// canonical name (or, for an IP-literal target, its address) and port.
	ReasonTargetNotAllowed RefusalReason = "target_not_allowed"
	// ReasonAddressNotAllowed: the address the target resolved to, and the
	// dialer was about to connect to, is not allowed.
	ReasonAddressNotAllowed RefusalReason = "address_not_allowed"
)

// RefusedError is a probe the allow-list refused. Its message names the
// target and the list, never the address a name resolved to: that would
// make the exporter a DNS oracle for whoever may send it requests.
type RefusedError struct {
	Reason RefusalReason
	Target string // canonical
	List   string // which allow-list refused, e.g. "--probe.allowed-targets"
	// Addr is the address that was refused (for logs only).
	Addr netip.AddrPort
}

func (e *RefusedError) Error() string {
	if e.Reason == ReasonAddressNotAllowed {
		return fmt.Sprintf("target %s resolves to an address that %s does not allow", e.Target, e.List)
	}
	return fmt.Sprintf("target %s is not allowed by %s", e.Target, e.List)
}

// AllowList is one list of allowed targets, from a flag or a configuration
// file. An entry is ADDRESS-OR-CIDR[:PORT[-PORT]] (IPv6 in brackets) or
// HOSTNAME-GLOB[:PORT[-PORT]], without a port meaning every port.
//
//   - Address entries are checked against the address actually dialed, in
//     the dialer, so that no spelling of a target and no DNS answer can
//     reach an address the list does not hold.
//   - Name entries are checked against the canonical target name. "*"
//     stands for any run of characters inside one label ("*.example.com"
//     matches "a.example.com", not "a.b.example.com"); the entry "*" alone
//     matches every name.
//   - With both kinds, a name target must match a name entry and its
//     dialed address an address entry; an IP-literal target must match an
//     address entry (a name entry cannot describe it).
//   - With name entries only, an IP-literal target is refused, and a name
//     must not lead to an address no service lives on: link-local (cloud
//     metadata services live there), unspecified, multicast, or a known
//     metadata address outside those ranges.
//   - An empty list allows everything.
type AllowList struct {
	source string
	names  []nameEntry
	addrs  []addrEntry
}

type portRange struct{ lo, hi uint16 }

func (r portRange) contains(p uint16) bool { return r.lo <= p && p <= r.hi }

var anyPort = portRange{1, 65535}

type nameEntry struct {
	labels []string // glob per label; nil = every name
	ports  portRange
}

type addrEntry struct {
	prefix netip.Prefix
	ports  portRange
}

// metadataAddrs are cloud metadata services outside the link-local ranges
// (AWS's IPv6 endpoint, Alibaba Cloud's). A list of names only never lets a
// name reach them.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("fd00:ec2::254"),
	netip.MustParseAddr("100.100.100.200"),
}

// ParseAllowList parses entries; source names the list in messages.
func ParseAllowList(source string, entries []string) (*AllowList, error) {
	l := &AllowList{source: source}
	for _, e := range entries {
		if err := l.add(e); err != nil {
			return nil, fmt.Errorf("%s entry %s: %w", source, Echo(e), err)
		}
	}
	return l, nil
}

// Empty reports whether the list allows everything.
func (l *AllowList) Empty() bool { return l == nil || len(l.names)+len(l.addrs) == 0 }

// String returns the list's entries in canonical form, for logs.
func (l *AllowList) String() string {
	if l.Empty() {
		return "(empty: every target allowed)"
	}
	var out []string
	for _, a := range l.addrs {
		out = append(out, withPorts(a.prefix.String(), a.prefix.Addr().Is6(), a.ports))
	}
	for _, n := range l.names {
		glob := "*"
		if n.labels != nil {
			glob = strings.Join(n.labels, ".")
		}
		out = append(out, withPorts(glob, false, n.ports))
	}
	return strings.Join(out, ", ")
}

func withPorts(host string, brackets bool, r portRange) string {
	if brackets {
		host = "[" + host + "]"
	}
	switch {
	case r == anyPort:
		return host
	case r.lo == r.hi:
		return fmt.Sprintf("%s:%d", host, r.lo)
	}
	return fmt.Sprintf("%s:%d-%d", host, r.lo, r.hi)
}

func (l *AllowList) add(e string) error {
	host, ports, err := splitEntry(e)
	if err != nil {
		return err
	}
	r := anyPort
	if ports != "" {
		if r, err = parsePortRange(ports); err != nil {
			return err
		}
	}
	if strings.Contains(host, ":") && !strings.HasPrefix(e, "[") {
		return fmt.Errorf("an IPv6 address or prefix goes in brackets, as in [2001:db8::/32]:443")
	}
	if p, ok, err := parsePrefix(host); ok || err != nil {
		if err != nil {
			return err
		}
		l.addrs = append(l.addrs, addrEntry{prefix: p, ports: r})
		return nil
	}
	if strings.HasPrefix(e, "[") {
		return fmt.Errorf("%s is not an IPv6 address or prefix", Echo(host))
	}
	if host == "*" {
		l.names = append(l.names, nameEntry{ports: r})
		return nil
	}
	name, err := canonicalName(host, true)
	if err != nil {
		return err
	}
	if strings.Trim(name, "0123456789.*") == "" {
		return fmt.Errorf("looks like an address pattern; write a CIDR such as 10.0.0.0/24")
	}
	l.names = append(l.names, nameEntry{labels: strings.Split(name, "."), ports: r})
	return nil
}

// splitEntry splits an entry into its host part (brackets removed) and its
// port part, which may be empty.
func splitEntry(e string) (host, ports string, err error) {
	if rest, ok := strings.CutPrefix(e, "["); ok {
		host, after, ok := strings.Cut(rest, "]")
		if !ok {
			return "", "", fmt.Errorf("missing ]")
		}
		if !strings.Contains(host, ":") {
			return "", "", fmt.Errorf("brackets are for IPv6 addresses")
		}
		if after == "" {
			return host, "", nil
		}
		if ports, ok = strings.CutPrefix(after, ":"); !ok {
			return "", "", fmt.Errorf("want :PORT or :PORT-PORT after ]")
		}
		return host, ports, nil
	}
	if i := strings.LastIndexByte(e, ':'); i >= 0 && !strings.Contains(e[:i], ":") {
		return e[:i], e[i+1:], nil
	}
	return e, "", nil
}

// parsePrefix reads an address or CIDR; ok is false for anything else.
// Host bits set ("10.1.2.3/8") are an error rather than silently cleared, and
// IPv4-mapped IPv6 ("[::ffff:10.0.0.0/104]") becomes IPv4, as dialed
// addresses are compared unmapped.
func parsePrefix(s string) (netip.Prefix, bool, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			if _, aerr := netip.ParseAddr(s[:strings.IndexByte(s, '/')]); aerr == nil {
				return p, false, fmt.Errorf("bad prefix length")
			}
			return p, false, nil
		}
		if p.Masked() != p {
			return p, false, fmt.Errorf("host bits set; did you mean %s?", p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return p, false, nil
		}
		if a.Zone() != "" {
			return p, false, fmt.Errorf("no zones in an allow-list")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if a := p.Addr(); a.Is4In6() {
		if p.Bits() < 96 {
			return p, false, fmt.Errorf("an IPv4-mapped prefix needs at least 96 bits; write the IPv4 prefix")
		}
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, true, nil
}

func parsePortRange(s string) (portRange, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := parsePort(lo)
	if err != nil {
		return portRange{}, err
	}
	b := a
	if isRange {
		if b, err = parsePort(hi); err != nil {
			return portRange{}, err
		}
		if b < a {
			return portRange{}, fmt.Errorf("port range %s runs backwards", Echo(s))
		}
	}
	return portRange{a, b}, nil
}

// CheckTarget checks a target's name and port, before anything is resolved.
func (l *AllowList) CheckTarget(t Target) *RefusedError {
	if l.Empty() {
		return nil
	}
	refused := &RefusedError{Reason: ReasonTargetNotAllowed, Target: t.String(), List: l.source}
	if a, ok := t.Addr(); ok {
		if l.matchAddr(netip.AddrPortFrom(a.WithZone(""), t.Port)) {
			return nil
		}
		return refused
	}
	if len(l.names) == 0 {
		return nil // decided by the address dialed
	}
	labels := strings.Split(t.Host, ".")
	for _, n := range l.names {
		if n.ports.contains(t.Port) && matchLabels(n.labels, labels) {
			return nil
		}
	}
	return refused
}

// CheckAddr checks an address about to be dialed for target.
func (l *AllowList) CheckAddr(target string, ap netip.AddrPort) *RefusedError {
	if l.Empty() {
		return nil
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap().WithZone(""), ap.Port())
	if len(l.addrs) > 0 && l.matchAddr(ap) || len(l.addrs) == 0 && serviceAddr(ap.Addr()) {
		return nil
	}
	return &RefusedError{Reason: ReasonAddressNotAllowed, Target: target, List: l.source, Addr: ap}
}

func (l *AllowList) matchAddr(ap netip.AddrPort) bool {
	for _, e := range l.addrs {
		if e.ports.contains(ap.Port()) && e.prefix.Contains(ap.Addr()) {
			return true
		}
	}
	return false
}

// serviceAddr reports whether a name may lead to a: not an address on which
// no server a user means to probe lives.
func serviceAddr(a netip.Addr) bool {
	if a.IsUnspecified() || a.IsLinkLocalUnicast() || a.IsMulticast() || !a.IsValid() {
		return false
	}
	for _, m := range metadataAddrs {
		if a == m {
			return false
		}
	}
	return true
}

func matchLabels(globs, labels []string) bool {
	if globs == nil {
		return true
	}
	if len(globs) != len(labels) {
		return false
	}
	for i, g := range globs {
		if ok, _ := path.Match(g, labels[i]); !ok {
			return false
		}
	}
	return true
}

// Policy is every allow-list in force. A probe must pass each of them: a
// list on the command line is a boundary that a reloaded configuration file
// can narrow but never widen.
type Policy []*AllowList

// Empty reports whether the policy allows everything.
func (p Policy) Empty() bool {
	for _, l := range p {
		if !l.Empty() {
			return false
		}
	}
	return true
}

// CheckTarget returns the first list's refusal of t, if any.
func (p Policy) CheckTarget(t Target) *RefusedError {
	for _, l := range p {
		if err := l.CheckTarget(t); err != nil {
			return err
		}
	}
	return nil
}

// CheckAddr returns the first list's refusal of dialing ap for target.
func (p Policy) CheckAddr(target string, ap netip.AddrPort) *RefusedError {
	for _, l := range p {
		if err := l.CheckAddr(target, ap); err != nil {
			return err
		}
	}
	return nil
}
