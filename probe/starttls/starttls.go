// Package starttls runs the plaintext preamble with which mail, directory,
// file-transfer and database servers switch a connection to TLS: after
// Negotiate returns nil, the next bytes on the connection are the client's
// ClientHello.
//
// Each preamble reads the server's answers with a bound on every line and on
// the whole exchange, stops at the connection's deadline, checks the status
// codes and capabilities the protocol defines, and fails with an error that
// names the step that went wrong. It never logs in: it sends only what the
// protocol requires before STARTTLS (SMTP EHLO, IMAP CAPABILITY, POP3 CAPA,
// XMPP's stream header).
package starttls

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"
)

// Protocol names a STARTTLS preamble, as written in the configuration.
type Protocol string

// The protocols Negotiate knows. The empty Protocol means none: the
// connection speaks TLS at once (implicit TLS, ports 443, 465, 636, 990, 993,
// 995).
const (
	None     Protocol = ""
	SMTP     Protocol = "smtp"     // RFC 3207
	IMAP     Protocol = "imap"     // RFC 2595, RFC 9051 §6.2.1
	POP3     Protocol = "pop3"     // RFC 2595 §4
	FTP      Protocol = "ftp"      // RFC 4217 §4
	Postgres Protocol = "postgres" // PostgreSQL protocol, SSLRequest
	LDAP     Protocol = "ldap"     // RFC 4511 §4.14
	XMPP     Protocol = "xmpp"     // RFC 6120 §5.4, client to server
)

// Protocols lists every Protocol but None, in the order documentation shows
// them.
var Protocols = []Protocol{SMTP, IMAP, POP3, FTP, Postgres, LDAP, XMPP}

// Validate reports whether p is a protocol Negotiate knows (None included).
func (p Protocol) Validate() error {
	if p == None {
		return nil
	}
	names := make([]string, len(Protocols))
	for i, q := range Protocols {
		if p == q {
			return nil
		}
		names[i] = string(q)
	}
	// The configuration's spellings, not String's display names: the
	// user is to type one of them.
	return fmt.Errorf("unknown STARTTLS protocol %q (want one of %s)", string(p), strings.Join(names, ", "))
}

// String returns the protocol's usual written name ("SMTP", "PostgreSQL"),
// for error messages.
func (p Protocol) String() string {
	switch p {
	case SMTP, IMAP, POP3, FTP, LDAP, XMPP:
		return upper(string(p))
	case Postgres:
		return "PostgreSQL"
	case None:
		return "none"
	}
	return string(p)
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Bounds on what a server may send during a preamble. A line longer than
// DefaultMaxLineBytes or a preamble longer than DefaultMaxPreambleBytes ends
// it: real servers send a few hundred bytes (the longest, an IMAP CAPABILITY
// line, stays under 1 KiB), and the exporter must not buffer a hostile
// server's endless line.
const (
	DefaultMaxLineBytes     = 4 << 10
	DefaultMaxPreambleBytes = 64 << 10
)

// Options tune a preamble. The zero value is ready to use.
type Options struct {
	// EHLOName is the name SMTP's EHLO announces; empty means
	// DefaultEHLOName().
	EHLOName string
	// ServerName is the name the server is known by: XMPP's stream header
	// is addressed to it (the XMPP domain, which the certificate names).
	// XMPP requires it.
	ServerName string
	// MaxLineBytes and MaxPreambleBytes bound one line and everything the
	// server sends; zero means the defaults above.
	MaxLineBytes     int
	MaxPreambleBytes int
}

// DefaultEHLOName returns this host's name when it is a valid EHLO argument,
// and "localhost" otherwise.
func DefaultEHLOName() string {
	if h, err := os.Hostname(); err == nil && ValidateEHLOName(h) == nil {
		return h
	}
	return "localhost"
}

// ValidateEHLOName checks that name is a domain name or an address literal
// ("[192.0.2.1]") that an SMTP server accepts after EHLO (RFC 5321 §4.1.1.1)
// and that cannot smuggle a second command onto the line.
func ValidateEHLOName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("EHLO name %q: want 1 to 255 characters", name)
	}
	if name[0] == '[' && name[len(name)-1] == ']' {
		for _, c := range []byte(name[1 : len(name)-1]) {
			if !(isAlnum(c) || c == '.' || c == ':' || c == '-') {
				return fmt.Errorf("EHLO name %q: address literal holds %q", name, c)
			}
		}
		return nil
	}
	for _, c := range []byte(name) {
		if !(isAlnum(c) || c == '.' || c == '-') {
			return fmt.Errorf("EHLO name %q: want letters, digits, '-' and '.' only, not %q", name, c)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// Negotiate runs p's preamble on conn, which must be freshly connected. It
// stops at ctx's deadline or cancellation. On success the server waits for a
// ClientHello; on error the caller closes conn.
func Negotiate(ctx context.Context, conn net.Conn, p Protocol, opts Options) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p == None {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(dl); err != nil {
			return err
		}
	}
	// A cancelled context unblocks any read or write at once.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if opts.MaxLineBytes <= 0 {
		opts.MaxLineBytes = DefaultMaxLineBytes
	}
	if opts.MaxPreambleBytes <= 0 {
		opts.MaxPreambleBytes = DefaultMaxPreambleBytes
	}
	if opts.EHLOName == "" {
		opts.EHLOName = DefaultEHLOName()
	} else if err := ValidateEHLOName(opts.EHLOName); err != nil {
		return err
	}
	switch p {
	case SMTP:
		return smtp(newLineConn(conn, p, opts), opts.EHLOName)
	case IMAP:
		return imap(newLineConn(conn, p, opts))
	case POP3:
		return pop3(newLineConn(conn, p, opts))
	case FTP:
		return ftp(newLineConn(conn, p, opts))
	case Postgres:
		return postgres(conn)
	case LDAP:
		return ldap(conn, opts.MaxPreambleBytes)
	case XMPP:
		if opts.ServerName == "" {
			return errors.New("XMPP STARTTLS needs the server's domain name")
		}
		return xmpp(newLineConn(conn, p, opts), opts.ServerName)
	}
	return nil
}
