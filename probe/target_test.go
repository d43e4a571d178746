package probe

import (
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	long := strings.Repeat("a", 63)
	tests := []struct {
		in   string
		want string // canonical form; "" = refused
		err  string // part of the error
	}{
		{"example.com:443", "example.com:443", ""},
		{"Example.COM.:443", "example.com:443", ""},
		{"a-b_c.example:8443", "a-b_c.example:8443", ""},
		{"127.0.0.1:443", "127.0.0.1:443", ""},
		{"[::1]:443", "[::1]:443", ""},
		{"[::FFFF:127.0.0.1]:443", "127.0.0.1:443", ""},
		{"[2001:DB8:0:0::1]:443", "[2001:db8::1]:443", ""},
		{"[fe80::1%eth0]:443", "[fe80::1%eth0]:443", ""},
		{"localhost:65535", "localhost:65535", ""},
		{strings.Join([]string{long, long, long, long[:61]}, ".") + ":1", strings.Join([]string{long, long, long, long[:61]}, ".") + ":1", ""},

		// The same port three ways: only the plain spelling is a port.
		{"127.0.0.1:+20001", "", "no sign or leading zero"},
		{"127.0.0.1:0020001", "", "no sign or leading zero"},
		{"127.0.0.1:-1", "", "port"},
		{"127.0.0.1: 443", "", "port"},
		{"127.0.0.1:0x1bb", "", "port"},
		{"example.com:0", "", "port"},
		{"example.com:65536", "", "port"},
		{"example.com:", "", "port"},

		// Addresses in old spellings that resolvers may read as 127.0.0.1.
		{"127.1:443", "", "numeric label"},
		{"0x7f.1:443", "", "numeric label"},
		{"0x7f000001:443", "", "numeric label"},
		{"2130706433:443", "", "numeric label"},
		{"0177.0.0.1:443", "", "numeric label"},
		{"127.0.0.1.:443", "", "numeric label"},

		{"example.com", "", "want host:port"},
		{":443", "", "empty host"},
		{"::1:443", "", "want host:port"},
		{"[::1%eth0]:443", "", "only meaningful on a link-local"},
		{"[fe80::1%eth0/x]:443", "", "not an interface name"},
		{"[fe80::1%abcdefghijklmnopq]:443", "", "not an interface name"},
		{"[::1]x:443", "", "want host:port"},
		{"[example.com]:443", "", "brackets are for IPv6"},
		{"[127.0.0.1]:443", "", "brackets are for IPv6"},
		{"a..b:443", "", "empty label"},
		{"-a.example:443", "", "hyphen"},
		{"a-.example:443", "", "hyphen"},
		{long + "a.example:443", "", "label longer than 63"},
		{strings.Repeat("a.", 127) + "ab:443", "", "longer than 253"},
		{"bücher.de:443", "", "xn--"},
		{"exa mple.com:443", "", "not allowed in a host name"},
		{"exa\nmple.com:443", "", "not allowed in a host name"},
		{"*.example.com:443", "", "not allowed in a host name"},
		{"a/b:443", "", "not allowed in a host name"},
		{strings.Repeat("x", 300) + ":443", "", "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTarget(tt.in)
			if tt.want != "" {
				if err != nil || got.String() != tt.want {
					t.Fatalf("ParseTarget(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				again, err := ParseTarget(got.String())
				if err != nil || again != got {
					t.Errorf("canonical form %q does not parse to itself: %v, %v", got, again, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseTarget(%q) = %q, want an error saying %q", tt.in, got, tt.err)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.err) || strings.ContainsAny(msg, "\n\r") {
				t.Errorf("error %q: want one line saying %q", msg, tt.err)
			}
		})
	}
}

// An error repeats at most a short prefix of what it was given.
func TestParseTargetEchoIsShort(t *testing.T) {
	in := strings.Repeat("z", 250) + ".com:" + strings.Repeat("9", 40)
	_, err := ParseTarget(in)
	if err == nil {
		t.Fatal("accepted a 40-digit port")
	}
	if len(err.Error()) > 3*maxEcho+100 || !strings.Contains(err.Error(), "…") {
		t.Errorf("error is %d bytes, want a cut echo: %s", len(err.Error()), err)
	}
}

func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"example.com:443", "[::ffff:127.0.0.1]:1", "[fe80::1%eth0]:443", "127.1:443", "A.B.:+1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := ParseTarget(s)
		if err != nil {
			if len(err.Error()) > 4*maxEcho+200 || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("error not one short line: %q", err)
			}
			return
		}
		if tg.Port == 0 || tg.Host == "" {
			t.Fatalf("%q parsed to %+v", s, tg)
		}
		again, err := ParseTarget(tg.String())
		if err != nil || again != tg {
			t.Fatalf("%q → %q → %+v, %v: canonical form is not a fixed point", s, tg, again, err)
		}
		if a, ok := tg.Addr(); ok && (a.Is4In6() || a.String() != tg.Host) {
			t.Fatalf("%q: address %q not canonical", s, tg.Host)
		}
	})
}
