package probe

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseAllowListErrors(t *testing.T) {
	tests := []struct{ entry, err string }{
		{"::1", "in brackets"},
		{"2001:db8::/32", "in brackets"},
		{"[::1", "missing ]"},
		{"[::1]443", "after ]"},
		{"[10.0.0.1]:443", "brackets are for IPv6"},
		{"10.1.2.3/8", "host bits set; did you mean 10.0.0.0/8"},
		{"10.0.0.0/33", "bad prefix length"},
		{"[fe80::1%eth0]", "no zones"},
		{"[example.com]", "brackets are for IPv6"},
		{"[example:com]", "is not an IPv6"},
		{"10.0.0.0/8:0", "port"},
		{"10.0.0.0/8:+443", "no sign or leading zero"},
		{"10.0.0.0/8:0443", "no sign or leading zero"},
		{"10.0.0.0/8:443-80", "runs backwards"},
		{"10.0.0.0/8:443-", "port"},
		{"example.com:70000", "port"},
		{"exa mple.com", "not allowed in a host name"},
		{"10.0.0.*", "write a CIDR"},
		{"127.1", "numeric label"},
		{"*.example.com.:443", ""}, // trailing dot is fine
		{"", "empty label"},
	}
	for _, tt := range tests {
		t.Run(tt.entry, func(t *testing.T) {
			_, err := ParseAllowList("--probe.allowed-targets", []string{tt.entry})
			if tt.err == "" {
				if err != nil {
					t.Fatalf("refused a good entry: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "--probe.allowed-targets") {
				t.Errorf("error %v: want one naming the list and saying %q", err, tt.err)
			}
		})
	}
}

func TestAllowListString(t *testing.T) {
	l, err := ParseAllowList("x", []string{"10.0.0.0/8", "[2001:DB8::/32]:443", "[::ffff:192.168.0.0/112]:8000-8999", "*.Example.com.:443", "*", "127.0.0.1:9100"})
	if err != nil {
		t.Fatal(err)
	}
	want := "10.0.0.0/8, [2001:db8::/32]:443, 192.168.0.0/16:8000-8999, 127.0.0.1/32:9100, *.example.com:443, *"
	if got := l.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestAllowListCheck(t *testing.T) {
	type probe struct {
		target string
		dialed string // address the name resolved to; "" = the target's own
		reason RefusalReason
	}
	tests := []struct {
		name    string
		entries []string
		probes  []probe
	}{
		{"empty list allows everything", nil, []probe{
			{"169.254.169.254:80", "", ""},
			{"localhost:1", "0.0.0.0:1", ""},
		}},
		{"addresses only", []string{"10.0.0.0/8:443", "[2001:db8::/32]", "127.0.0.1:8000-8999"}, []probe{
			{"10.1.2.3:443", "", ""},
			{"10.1.2.3:444", "", ReasonTargetNotAllowed},
			{"[2001:db8::1]:1", "", ""},
			{"[2001:db9::1]:1", "", ReasonTargetNotAllowed},
			{"127.0.0.1:8080", "", ""},
			{"127.0.0.1:9000", "", ReasonTargetNotAllowed},
			{"[::ffff:10.0.0.1]:443", "", ""},
			{"0.0.0.0:443", "", ReasonTargetNotAllowed},
			{"db.example:443", "10.9.9.9:443", ""},
			{"db.example:443", "[::ffff:10.9.9.9]:443", ""},
			// A name that resolves (or rebinds) outside the list.
			{"localhost:443", "127.0.0.1:443", ReasonAddressNotAllowed},
			{"evil.example:443", "169.254.169.254:443", ReasonAddressNotAllowed},
			{"evil.example:443", "0.0.0.0:443", ReasonAddressNotAllowed},
			{"evil.example:443", "[fe80::1%eth0]:443", ReasonAddressNotAllowed},
		}},
		{"names only", []string{"*.example.com:443", "api.example.org", "*"}, []probe{
			{"a.example.com:443", "10.0.0.1:443", ""},
			{"a.example.com:80", "10.0.0.1:80", ""}, // "*" allows any name on any port
		}},
		{"names only, strict", []string{"*.example.com:443", "api.example.org"}, []probe{
			{"a.example.com:443", "10.0.0.1:443", ""},
			{"A.Example.COM.:443", "10.0.0.1:443", ""},
			{"a.example.com:8443", "", ReasonTargetNotAllowed},
			{"a.b.example.com:443", "", ReasonTargetNotAllowed},
			{"example.com:443", "", ReasonTargetNotAllowed},
			{"api.example.org:1", "127.0.0.1:1", ""},
			{"10.0.0.1:443", "", ReasonTargetNotAllowed}, // an address is no name
			// Rebinding to where no service lives.
			{"a.example.com:443", "169.254.169.254:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "[::ffff:169.254.169.254]:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "0.0.0.0:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "[::]:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "224.0.0.1:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "[fe80::1]:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "[fd00:ec2::254]:443", ReasonAddressNotAllowed},
			{"a.example.com:443", "100.100.100.200:443", ReasonAddressNotAllowed},
		}},
		{"names and addresses", []string{"*.example.com", "10.0.0.0/8"}, []probe{
			{"a.example.com:443", "10.0.0.1:443", ""},
			{"a.example.com:443", "192.168.1.1:443", ReasonAddressNotAllowed},
			{"localhost:443", "", ReasonTargetNotAllowed},
			{"10.0.0.1:22", "", ""},
			{"127.0.0.1:22", "", ReasonTargetNotAllowed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseAllowList("test list", tt.entries)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.probes {
				got := checkBoth(t, Policy{l}, p.target, p.dialed)
				if got != p.reason {
					t.Errorf("%s dialing %q: refused for %q, want %q", p.target, p.dialed, got, p.reason)
				}
			}
		})
	}
}

// checkBoth runs the name check and, when it passes, the dialer's address
// check, as a probe does; it returns the reason of a refusal.
func checkBoth(t *testing.T, p Policy, target, dialed string) RefusalReason {
	t.Helper()
	tg, err := ParseTarget(target)
	if err != nil {
		t.Fatal(err)
	}
	if re := p.CheckTarget(tg); re != nil {
		if re.Target != tg.String() || re.List == "" {
			t.Errorf("refusal %+v does not name target and list", re)
		}
		return re.Reason
	}
	if dialed == "" {
		dialed = tg.String()
	}
	ap, err := netip.ParseAddrPort(dialed)
	if err != nil {
		t.Fatal(err)
	}
	if re := p.CheckAddr(tg.String(), ap); re != nil {
		if strings.Contains(re.Error(), ap.Addr().Unmap().String()) {
			t.Errorf("refusal %q tells the client where the name resolved", re)
		}
		return re.Reason
	}
	return ""
}

// Both lists must allow: the flag's list bounds what the configuration
// file's list can allow.
func TestPolicyIntersects(t *testing.T) {
	flag, _ := ParseAllowList("--probe.allowed-targets", []string{"127.0.0.0/8"})
	file, _ := ParseAllowList("config allowed_targets", []string{"127.0.0.1", "10.0.0.1"})
	p := Policy{flag, file, nil}
	tests := []struct {
		target string
		reason RefusalReason
		list   string
	}{
		{"127.0.0.1:443", "", ""},
		{"127.0.0.2:443", ReasonTargetNotAllowed, "config allowed_targets"},
		{"10.0.0.1:443", ReasonTargetNotAllowed, "--probe.allowed-targets"},
	}
	for _, tt := range tests {
		tg, _ := ParseTarget(tt.target)
		re := p.CheckTarget(tg)
		switch {
		case tt.reason == "" && re != nil:
			t.Errorf("%s refused: %v", tt.target, re)
		case tt.reason != "" && (re == nil || re.Reason != tt.reason || re.List != tt.list):
			t.Errorf("%s: refusal %+v, want %s by %s", tt.target, re, tt.reason, tt.list)
		}
	}
	if !(Policy{nil, &AllowList{}}).Empty() || p.Empty() {
		t.Error("Empty is wrong")
	}
}

func FuzzParseAllowList(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8:443", "[2001:db8::/32]:1-2", "*.example.com:443", "*", "[::ffff:10.0.0.0/104]"} {
		f.Add(s, "a.example.com:443", "10.1.2.3:443")
	}
	f.Fuzz(func(t *testing.T, entry, target, dialed string) {
		l, err := ParseAllowList("fuzz", []string{entry})
		if err != nil {
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error not one line: %q", err)
			}
			return
		}
		if l.Empty() {
			t.Fatalf("entry %q parsed to an empty list", entry)
		}
		// The canonical form parses to the same list.
		again, err := ParseAllowList("fuzz", strings.Split(l.String(), ", "))
		if err != nil || again.String() != l.String() {
			t.Fatalf("%q → %q → %v, %v", entry, l, again, err)
		}
		tg, err := ParseTarget(target)
		ap, aerr := netip.ParseAddrPort(dialed)
		if err != nil || aerr != nil {
			return
		}
		// A refusal never depends on the spelling of the address.
		mapped := netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
		if (l.CheckAddr(tg.String(), ap) == nil) != (l.CheckAddr(tg.String(), mapped) == nil) {
			t.Fatalf("%s and %s judged differently by %q", ap, mapped, l)
		}
		l.CheckTarget(tg)
	})
}
