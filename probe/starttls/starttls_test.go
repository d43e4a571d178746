package starttls

import (
	"bufio"
	"encoding/hex"
	"net"
	"strings"
	"testing"
)

func mustHex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestParseExtendedResponse(t *testing.T) {
	tests := []struct {
		name, hex string
		want      extendedResponse
		err       string
	}{
		{"slapd success", "02010178070a010004000400", extendedResponse{messageID: 1}, ""},
		{"unavailable with text", "020101780e0a0134040004074e6f20544c5321", extendedResponse{messageID: 1, resultCode: 52, diagnostic: "No TLS!"}, ""},
		{"notice of disconnection", "02010078090a0134040004008a00", extendedResponse{resultCode: 52}, ""},
		{"bind response instead", "02010161070a010004000400", extendedResponse{}, "not an ExtendedResponse"},
		{"truncated", "0201017807", extendedResponse{}, "malformed"},
		{"empty", "", extendedResponse{}, "malformed messageID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseExtendedResponse([]byte(mustHex(tt.hex)))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one saying %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func FuzzParseExtendedResponse(f *testing.F) {
	f.Add([]byte(mustHex("02010178070a010004000400")))
	f.Add([]byte(mustHex("0201017884000000070a010004000400")))
	f.Fuzz(func(t *testing.T, b []byte) {
		parseExtendedResponse(b) // must not panic
	})
}

// Whatever a server sends, the text preambles end without panicking.
func FuzzPreambles(f *testing.F) {
	f.Add(uint8(0), "220 hi\r\n250-a\r\n250 STARTTLS\r\n220 go\r\n")
	f.Add(uint8(1), "* OK [CAPABILITY STARTTLS] hi\r\nb OK go\r\n")
	f.Add(uint8(2), "+OK\r\n+OK\r\nSTLS\r\n.\r\n+OK\r\n")
	f.Add(uint8(3), "220-a\r\nb\r\n220 c\r\n234 go\r\n")
	f.Add(uint8(4), "<?xml version='1.0'?><stream:stream xmlns:stream='http://etherx.jabber.org/streams'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features><proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	f.Fuzz(func(t *testing.T, which uint8, server string) {
		c := &lineConn{conn: discard{}, br: bufio.NewReaderSize(strings.NewReader(server), 64), maxLine: 64, left: 1024, max: 1024}
		switch which % 5 {
		case 0:
			c.p = SMTP
			smtp(c, "x")
		case 1:
			c.p = IMAP
			imap(c)
		case 2:
			c.p = POP3
			pop3(c)
		case 3:
			c.p = FTP
			ftp(c)
		case 4:
			c.p = XMPP
			xmpp(c, "x")
		}
	})
}

// discard is a net.Conn whose writes go nowhere, for driving a preamble
// from a fixed server transcript.
type discard struct{ net.Conn }

func (discard) Write(b []byte) (int, error) { return len(b), nil }

func TestValidate(t *testing.T) {
	for _, p := range append(Protocols, None) {
		if err := p.Validate(); err != nil {
			t.Errorf("%q: %v", p, err)
		}
	}
	if err := Protocol("smtps").Validate(); err == nil {
		t.Error("smtps validated")
	}
	for name, ok := range map[string]bool{
		"mx-probe.example.org": true, "[192.0.2.1]": true, "[IPv6:2001:db8::1]": true, "localhost": true,
		"": false, "a b": false, "evil\r\nRCPT TO:<x>": false, "under_score": false, strings.Repeat("a", 256): false,
	} {
		if err := ValidateEHLOName(name); (err == nil) != ok {
			t.Errorf("ValidateEHLOName(%q) = %v, want ok=%v", name, err, ok)
		}
	}
	if name := DefaultEHLOName(); ValidateEHLOName(name) != nil {
		t.Errorf("DefaultEHLOName() = %q, not valid", name)
	}
}
