package probe

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Target is a probe target in its canonical form: the one spelling that keys
// sessions, key history and logs, so that "Example.COM.:443" and
// "example.com:443" are one target and "127.0.0.1:+443" is no target at all.
type Target struct {
	// Host is a host name in lower case without a trailing dot, or an IP
	// address as netip prints it (IPv4 dotted quad, IPv6 per RFC 5952,
	// IPv4-mapped IPv6 as IPv4, a zone only on a link-local address),
	// without brackets.
	Host string
	// Port is 1 to 65535.
	Port uint16
}

// String returns host:port, with an IPv6 address in brackets.
func (t Target) String() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// Addr returns the target's address when its host is an IP address.
func (t Target) Addr() (netip.Addr, bool) {
	a, err := netip.ParseAddr(t.Host)
	return a, err == nil
}

// Limits of DNS names (RFC 1035 2.3.4).
const (
	maxHostLen  = 253
	maxLabelLen = 63
)

// maxEcho bounds how much of a request's own input an error message repeats.
const maxEcho = 64

// Echo quotes s for an error message, cut so that the quoted form is at most
// maxEcho bytes and a "…": a hostile request must not make the exporter
// answer or log kilobytes, and the quoting keeps the message on one line
// whatever bytes s holds.
func Echo(s string) string {
	q := strconv.Quote(s)
	if len(q) <= maxEcho+2 {
		return q
	}
	for n := min(len(s), maxEcho); n > 0; n-- {
		if q = strconv.Quote(s[:n]); len(q) <= maxEcho+2 {
			break
		}
	}
	return q + "…"
}

// ParseTarget checks a target given as host:port and returns its canonical
// form. It accepts what a user would write in a scrape config and nothing
// else, so a typo is an HTTP 400 rather than a probe of something unintended:
// the port is plain decimal ("+443" and "0443" are refused, not read as 443),
// and a host is an IP address in a standard spelling or a DNS name, never a
// number that some resolver might read as an address ("127.1", "2130706433").
func ParseTarget(s string) (Target, error) {
	if len(s) > maxHostLen+len("[]:65535") {
		return Target{}, fmt.Errorf("target %s: longer than %d bytes", Echo(s), maxHostLen+len("[]:65535"))
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return Target{}, fmt.Errorf("target %s: want host:port", Echo(s))
	}
	if host == "" {
		return Target{}, fmt.Errorf("target %s: empty host", Echo(s))
	}
	p, err := parsePort(port)
	if err != nil {
		return Target{}, fmt.Errorf("target %s: %w", Echo(s), err)
	}
	if strings.HasPrefix(s, "[") && !strings.Contains(host, ":") {
		return Target{}, fmt.Errorf("target %s: brackets are for IPv6 addresses only", Echo(s))
	}
	h, err := canonicalHost(host)
	if err != nil {
		return Target{}, fmt.Errorf("target %s: %w", Echo(s), err)
	}
	return Target{Host: h, Port: p}, nil
}

// parsePort reads a port written as a plain decimal number from 1 to 65535.
func parsePort(s string) (uint16, error) {
	if s == "" || len(s) > 5 || s[0] == '0' || strings.Trim(s, "0123456789") != "" {
		return 0, fmt.Errorf("port %s is not a number from 1 to 65535 (plain digits, no sign or leading zero)", Echo(s))
	}
	n, _ := strconv.Atoi(s)
	if n > 65535 {
		return 0, fmt.Errorf("port %s is not a number from 1 to 65535", Echo(s))
	}
	return uint16(n), nil
}

// canonicalHost returns an IP address or a DNS name in its canonical form.
func canonicalHost(host string) (string, error) {
	if strings.ContainsAny(host, ":%") {
		a, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("host %s is not an IP address", Echo(host))
		}
		return canonicalAddr(a)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return canonicalAddr(a)
	}
	name, err := canonicalName(host, false)
	if err != nil {
		return "", fmt.Errorf("host %s: %w", Echo(host), err)
	}
	return name, nil
}

func canonicalAddr(a netip.Addr) (string, error) {
	if a.Zone() != "" {
		if !a.IsLinkLocalUnicast() {
			return "", fmt.Errorf("address %s: a zone is only meaningful on a link-local address", a.WithZone(""))
		}
		if !validZone(a.Zone()) {
			return "", fmt.Errorf("address %s: zone %s is not an interface name", a.WithZone(""), Echo(a.Zone()))
		}
	}
	return a.Unmap().String(), nil
}

// validZone accepts what Linux allows in an interface name (and an index).
func validZone(z string) bool {
	if len(z) > 15 {
		return false
	}
	for i := 0; i < len(z); i++ {
		if c := z[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// canonicalName lower-cases a DNS name and drops one trailing dot. It
// accepts letters, digits, hyphens (not at either end of a label) and
// underscores (found in real internal names, and accepted by Go's resolver);
// with glob, also "*" inside labels. A name whose last label is all digits is
// refused: no top-level domain is, and resolvers read such names ("127.1",
// "0x7f.1", "0x7f000001") as IPv4 addresses in inet_aton's old spellings.
func canonicalName(s string, glob bool) (string, error) {
	name := strings.ToLower(strings.TrimSuffix(s, "."))
	if len(name) > maxHostLen {
		return "", fmt.Errorf("name longer than %d bytes", maxHostLen)
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if err := checkLabel(l, glob); err != nil {
			return "", err
		}
	}
	if numeric(labels[len(labels)-1]) {
		return "", fmt.Errorf("not an IP address in a standard spelling, and a name cannot end in a numeric label")
	}
	return name, nil
}

func checkLabel(l string, glob bool) error {
	switch {
	case l == "":
		return fmt.Errorf("empty label")
	case len(l) > maxLabelLen:
		return fmt.Errorf("label longer than %d bytes", maxLabelLen)
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %s starts or ends with a hyphen", Echo(l))
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		if isAlnum(c) || c == '-' || c == '_' || (glob && c == '*') {
			continue
		}
		return fmt.Errorf("byte %q is not allowed in a host name (IDNs go in their xn-- form)", c)
	}
	return nil
}

// numeric reports a label inet_aton would read as a number: decimal, octal
// or 0x-prefixed hexadecimal.
func numeric(l string) bool {
	digits := "0123456789"
	if rest, ok := strings.CutPrefix(l, "0x"); ok {
		l, digits = rest, "0123456789abcdef"
	}
	return strings.Trim(l, digits) == ""
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
