package starttls_test

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"net"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// A server side of a preamble: each step reads exactly what the client must
// send and answers with the bytes given, shaped on what Postfix, Dovecot,
// vsftpd, PostgreSQL, slapd and Prosody send (see integration/starttls_test.go).
type step struct {
	expect string // what the client must send, exactly
	answer string
}

var conversations = map[starttls.Protocol]struct {
	greeting string
	steps    []step
}{
	starttls.SMTP: {"220-mx.test ESMTP Postfix (Debian/GNU)\r\n220 mx.test\r\n", []step{
		{"EHLO probe.test\r\n", "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-starttls\r\n250 CHUNKING\r\n"},
		{"STARTTLS\r\n", "220 2.0.0 Ready to start TLS\r\n"},
	}},
	// No capabilities in the greeting: the client must ask.
	starttls.IMAP: {"* OK Dovecot (Debian) ready.\r\n", []step{
		{"a CAPABILITY\r\n", "* CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED\r\na OK Pre-login capabilities listed, post-login capabilities have more.\r\n"},
		{"b STARTTLS\r\n", "b OK Begin TLS negotiation now.\r\n"},
	}},
	starttls.POP3: {"+OK Dovecot (Debian) ready.\r\n", []step{
		{"CAPA\r\n", "+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nSTLS\r\nSASL\r\n.\r\n"},
		{"STLS\r\n", "+OK Begin TLS negotiation now.\r\n"},
	}},
	starttls.FTP: {"220-Welcome\r\n this line has no code\r\n220 (vsFTPd 3.0.3)\r\n", []step{
		{"AUTH TLS\r\n", "234 Proceed with negotiation.\r\n"},
	}},
	starttls.Postgres: {"", []step{{"\x00\x00\x00\x08\x04\xd2\x16\x2f", "S"}}},
	// Prosody 0.12's answers; the client speaks first.
	starttls.XMPP: {"", []step{
		{"<?xml version='1.0'?><stream:stream to='xmpp.test' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>",
			"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xml:lang='en' id='d1b0' from='xmpp.test' version='1.0' xmlns:stream='http://etherx.jabber.org/streams'>" +
				"<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"},
		{"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"},
	}},
	// slapd's answer: 30 0c 02 01 01 78 07 0a 01 00 04 00 04 00, here with
	// the long-form lengths Active Directory uses and a responseName.
	starttls.LDAP: {"", []step{{
		mustHex("301d02010177188016312e332e362e312e342e312e313436362e3230303337"),
		mustHex("3084000000280201017884000000" + "1f" + "0a0100" + "0400" + "0400" + "8a16312e332e362e312e342e312e313436362e3230303337"),
	}}},
}

func mustHex(s string) string {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// Every preamble sends exactly the protocol's commands, reads no byte beyond
// the server's last answer, and leaves the connection ready for a TLS
// handshake, which then completes against a crypto/tls server.
func TestNegotiateThenHandshake(t *testing.T) {
	pki := testservers.NewPKI(t)
	cert := pki.TLSCertificate(t)
	for _, p := range starttls.Protocols {
		t.Run(string(p), func(t *testing.T) {
			conv := conversations[p]
			errc := make(chan error, 1)
			addr := testservers.ServeTCP(t, func(c net.Conn) {
				errc <- func() error {
					if _, err := io.WriteString(c, conv.greeting); err != nil {
						return err
					}
					for _, s := range conv.steps {
						got := make([]byte, len(s.expect))
						if _, err := io.ReadFull(c, got); err != nil {
							return err
						}
						if string(got) != s.expect {
							t.Errorf("client sent %q, want %q", got, s.expect)
						}
						if _, err := io.WriteString(c, s.answer); err != nil {
							return err
						}
					}
					return tls.Server(c, &tls.Config{Certificates: []tls.Certificate{cert}}).Handshake()
				}()
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := starttls.Negotiate(ctx, conn, p, starttls.Options{EHLOName: "probe.test", ServerName: "xmpp.test"}); err != nil {
				t.Fatalf("Negotiate: %v", err)
			}
			tc := tls.Client(conn, &tls.Config{RootCAs: pki.Pool, ServerName: testservers.ServerName})
			if err := tc.HandshakeContext(ctx); err != nil {
				t.Fatalf("TLS handshake after the preamble: %v", err)
			}
			if err := <-errc; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}
