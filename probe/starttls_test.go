package probe

import (
	"bufio"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/resumption-exporter/resumption_exporter/internal/testservers"
	"github.com/resumption-exporter/resumption_exporter/probe/starttls"
)

// hostileSMTP greets, then answers each command with what reply returns for
// it (nothing when reply returns ""), and closes when reply says so.
func scripted(greeting string, reply func(cmd string) (answer string, hangUp bool)) func(net.Conn) {
	return func(c net.Conn) {
		if greeting != "" {
			if _, err := c.Write([]byte(greeting)); err != nil {
				return
			}
		}
		r := bufio.NewReader(c)
		for {
			cmd, err := r.ReadString('\n')
			if err != nil {
				return
			}
			answer, hangUp := reply(strings.TrimRight(cmd, "\r\n"))
			if answer != "" {
				if _, err := c.Write([]byte(answer)); err != nil {
					return
				}
			}
			if hangUp {
				return
			}
		}
	}
}

// endless writes chunk until the client goes away (or the 20 s cap of
// ServeTCP): a server that never ends its line or its reply.
func endless(prefix, chunk string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write([]byte(prefix)); err != nil {
			return
		}
		b := []byte(strings.Repeat(chunk, 64))
		for {
			if _, err := c.Write(b); err != nil {
				return
			}
		}
	}
}

// implicitTLS is a crypto/tls server on a port a STARTTLS module is
// pointed at by mistake: it waits for a ClientHello and never greets.
func implicitTLS(t *testing.T) func(net.Conn) {
	pki := testservers.NewPKI(t)
	cfg := &tls.Config{Certificates: []tls.Certificate{pki.TLSCertificate(t)}}
	return func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			drain(tc)
		}
	}
}

func smtpEHLO(ehloReply string) func(string) (string, bool) {
	return func(cmd string) (string, bool) {
		if strings.HasPrefix(cmd, "EHLO ") {
			return ehloReply, false
		}
		return "502 5.5.2 Error: command not recognized\r\n", false
	}
}

const xmppTLSFeature = "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>"

// xmppServer answers the client's stream header with its own and features,
// and the client's <starttls/> with answer.
func xmppServer(features, answer string) func(net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			return
		}
		header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='1' from='localhost' version='1.0'>"
		if _, err := c.Write([]byte(header + features)); err != nil {
			return
		}
		if _, err := c.Read(buf); err != nil {
			return
		}
		c.Write([]byte(answer))
		drain(c)
	}
}

// STARTTLS servers that refuse, break off or flood the preamble make the
// probe fail with a reason naming the step, within the module's timeout.
func TestRunStartTLSRefusedOrBroken(t *testing.T) {
	const timeout = 2 * time.Second
	tests := []struct {
		name   string
		p      starttls.Protocol
		serve  func(net.Conn)
		reason string // a regexp the failure must match
	}{
		{"smtp: STARTTLS not offered", starttls.SMTP,
			scripted("220 mx.test ESMTP\r\n", smtpEHLO("250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")),
			`SMTP server did not offer STARTTLS \(EHLO keywords: "PIPELINING 8BITMIME"\)`},
		{"smtp: STARTTLS answered 454", starttls.SMTP,
			scripted("220 mx.test ESMTP\r\n", func(cmd string) (string, bool) {
				if cmd == "STARTTLS" {
					return "454 4.7.0 TLS not available due to local problem\r\n", false
				}
				return smtpEHLO("250-mx.test\r\n250 STARTTLS\r\n")(cmd)
			}),
			`SMTP server answered 454 to STARTTLS: "4.7.0 TLS not available`},
		{"smtp: refuses the session", starttls.SMTP,
			scripted("554 5.7.1 go away\r\n", smtpEHLO("")),
			`SMTP server greeted with 554: "5.7.1 go away"`},
		{"smtp: hangs up after EHLO", starttls.SMTP,
			scripted("220 mx.test ESMTP\r\n", func(string) (string, bool) { return "", true }),
			`SMTP server closed the connection before the reply to EHLO`},
		{"smtp: endless EHLO reply", starttls.SMTP,
			scripted("220 mx.test ESMTP\r\n", func(string) (string, bool) {
				return strings.Repeat("250-X\r\n", 20000), false
			}),
			`SMTP server sent more than 65536 bytes before the end of the reply to EHLO`},
		{"smtp: greeting line without end", starttls.SMTP, endless("220 ", "x"),
			`SMTP server sent a line longer than 4096 bytes in the greeting`},
		{"smtp: text after STARTTLS's 220", starttls.SMTP,
			scripted("220 mx.test ESMTP\r\n", func(cmd string) (string, bool) {
				if cmd == "STARTTLS" {
					return "220 2.0.0 Ready to start TLS\r\n250 injected\r\n", false
				}
				return smtpEHLO("250-mx.test\r\n250 STARTTLS\r\n")(cmd)
			}),
			`SMTP server sent 14 bytes after accepting STARTTLS, before the TLS handshake`},
		{"smtp: implicit-TLS server", starttls.SMTP, implicitTLS(t),
			`SMTP server sent no greeting before the deadline \(a server speaking TLS at once`},
		{"imap: NO to STARTTLS", starttls.IMAP,
			scripted("* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n", func(cmd string) (string, bool) {
				return "b NO [UNAVAILABLE] TLS is down\r\n", false
			}),
			`IMAP answered NO to STARTTLS: "\[UNAVAILABLE\] TLS is down"`},
		{"imap: STARTTLS not in CAPABILITY", starttls.IMAP,
			scripted("* OK ready\r\n", func(cmd string) (string, bool) {
				return "* CAPABILITY IMAP4rev1 LOGINDISABLED\r\na OK done\r\n", false
			}),
			`IMAP server did not offer STARTTLS \(CAPABILITY: "IMAP4rev1 LOGINDISABLED"\)`},
		{"imap: BYE", starttls.IMAP, scripted("* BYE too many connections\r\n", nil),
			`IMAP server refused the connection: BYE "too many connections"`},
		{"pop3: no STLS in CAPA", starttls.POP3,
			scripted("+OK POP3 ready\r\n", func(cmd string) (string, bool) {
				return "+OK\r\nUSER\r\nUIDL\r\n.\r\n", false
			}),
			`POP3 server did not offer STLS \(CAPA: "USER UIDL"\)`},
		{"pop3: -ERR to STLS", starttls.POP3,
			scripted("+OK POP3 ready\r\n", func(cmd string) (string, bool) {
				if cmd == "CAPA" {
					return "+OK\r\nSTLS\r\n.\r\n", false
				}
				return "-ERR not now\r\n", false
			}),
			`POP3 server answered -ERR to STLS: "not now"`},
		{"pop3: endless CAPA list", starttls.POP3,
			scripted("+OK POP3 ready\r\n", func(cmd string) (string, bool) {
				return "+OK\r\n" + strings.Repeat("X-CAP\r\n", 20000), false
			}),
			`POP3 server sent more than 65536 bytes before the end of the CAPA list`},
		{"ftp: 530 to AUTH TLS", starttls.FTP,
			scripted("220 ftp ready\r\n", func(string) (string, bool) {
				return "530 Please login with USER and PASS.\r\n", false
			}),
			`FTP server answered 530 to AUTH TLS: "Please login with USER and PASS."`},
		{"ftp: closes in the greeting", starttls.FTP, func(c net.Conn) { c.Write([]byte("220-wel")) },
			`FTP server closed the connection in the middle of a line of the greeting`},
		{"postgres: N", starttls.Postgres,
			func(c net.Conn) {
				var b [8]byte
				if _, err := c.Read(b[:]); err == nil {
					c.Write([]byte("N"))
				}
				drain(c)
			},
			`PostgreSQL server does not support SSL`},
		{"postgres: TLS alert at once", starttls.Postgres,
			func(c net.Conn) { c.Write([]byte{0x15, 3, 3, 0, 2, 2, 70}); drain(c) },
			`PostgreSQL server answered the SSLRequest with TLS records`},
		{"postgres: silent", starttls.Postgres, drain,
			`PostgreSQL server did not answer the SSLRequest before the deadline`},
		{"ldap: protocolError", starttls.LDAP,
			func(c net.Conn) {
				var b [64]byte
				if _, err := c.Read(b[:]); err == nil {
					// ExtendedResponse{resultCode 2, "", "unsupported extended operation"}
					c.Write(append([]byte{0x30, 0x2a, 0x02, 0x01, 0x01, 0x78, 0x25, 0x0a, 0x01, 0x02, 0x04, 0x00, 0x04, 0x1e},
						"unsupported extended operation"...))
				}
				drain(c)
			},
			`LDAP server refused StartTLS: resultCode 2 \(protocolError\): "unsupported extended operation"`},
		{"ldap: huge answer announced", starttls.LDAP,
			func(c net.Conn) { c.Write([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}); drain(c) },
			`LDAP server announced a 2147483647-byte answer to StartTLS, more than the 65536 allowed`},
		{"xmpp: no starttls feature", starttls.XMPP,
			xmppServer("<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>", ""),
			`XMPP server did not offer STARTTLS \(stream features: "mechanisms"\)`},
		{"xmpp: host-unknown", starttls.XMPP,
			xmppServer("<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>", ""),
			`XMPP server sent a stream error: "host-unknown"`},
		{"xmpp: failure", starttls.XMPP,
			xmppServer(xmppTLSFeature, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>"),
			`XMPP server answered <failure/> to STARTTLS`},
		{"xmpp: endless features", starttls.XMPP,
			xmppServer("<stream:features>"+strings.Repeat("<x/>", 20000), ""),
			`XMPP server sent more than 65536 bytes before the end of the stream features`},
		{"xmpp: implicit-TLS server", starttls.XMPP, implicitTLS(t),
			`XMPP server (closed the connection|answered with TLS records)`},
		{"ldap: implicit-TLS server", starttls.LDAP, implicitTLS(t),
			`LDAP server closed the connection before answering StartTLS`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := DefaultModule
			m.Timeout, m.TicketWait = timeout, 500*time.Millisecond
			m.StartTLS.Protocol = tt.p
			if err := m.Validate(); err != nil {
				t.Fatal(err)
			}
			expectBrokenServer(t, testservers.ServeTCP(t, tt.serve), &m, tt.reason)
		})
	}
}
