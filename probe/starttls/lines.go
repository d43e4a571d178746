package starttls

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// lineConn is the text side of a preamble: CRLF-terminated commands out,
// bounded lines in.
type lineConn struct {
	conn    net.Conn
	p       Protocol
	br      *bufio.Reader
	maxLine int
	left    int // bytes the server may still send in this preamble
	max     int
}

func newLineConn(conn net.Conn, p Protocol, opts Options) *lineConn {
	return &lineConn{
		conn: conn, p: p,
		// bufio's buffer is the line bound: ReadSlice fails with
		// ErrBufferFull on a longer line instead of growing.
		br:      bufio.NewReaderSize(conn, opts.MaxLineBytes),
		maxLine: opts.MaxLineBytes,
		left:    opts.MaxPreambleBytes,
		max:     opts.MaxPreambleBytes,
	}
}

// send writes one command line. what names it in errors ("EHLO").
func (c *lineConn) send(what, line string) error {
	if _, err := io.WriteString(c.conn, line+"\r\n"); err != nil {
		return fmt.Errorf("%s: sending %s: %w", c.p, what, err)
	}
	return nil
}

// line reads one line, without its line ending. step names what the line
// belongs to ("the greeting", "the reply to EHLO").
func (c *lineConn) line(step string) (string, error) {
	b, err := c.br.ReadSlice('\n')
	c.left -= len(b)
	if len(b) > 0 && (b[0] == 0x15 || b[0] == 0x16) {
		// An alert or handshake record: a TLS server, whatever it
		// sent after.
		return "", fmt.Errorf("%s server answered with TLS records instead of %s: is this an implicit-TLS port? (then leave starttls out)", c.p, step)
	}
	switch {
	case c.left < 0:
		return "", fmt.Errorf("%s server sent more than %d bytes before the end of %s", c.p, c.max, step)
	case errors.Is(err, bufio.ErrBufferFull):
		return "", fmt.Errorf("%s server sent a line longer than %d bytes in %s", c.p, c.maxLine, step)
	case err != nil:
		return "", c.readErr(step, len(b) > 0, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// readErr says what a failed read means for the preamble.
func (c *lineConn) readErr(step string, partial bool, err error) error {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF) && partial:
		return fmt.Errorf("%s server closed the connection in the middle of a line of %s", c.p, step)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%s server closed the connection before %s", c.p, step)
	case errors.As(err, &ne) && ne.Timeout() && step == stepGreeting:
		// The net error is left out: it names the local port, and
		// the probe's connections would each report a reason of their own.
		return fmt.Errorf("%s server sent no greeting before the deadline (a server speaking TLS at once, on an implicit-TLS port, waits silently like this)", c.p)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s server did not finish %s before the deadline", c.p, step)
	}
	return fmt.Errorf("%s: reading %s: %w", c.p, step, err)
}

// ready checks that the server has sent nothing beyond its answer to the
// STARTTLS command. Bytes already there would be read as the start of the
// server's TLS flight: a server, or someone in the path, injecting plaintext
// into the TLS session (the STARTTLS command-injection class of bugs).
func (c *lineConn) ready() error {
	if n := c.br.Buffered(); n > 0 {
		return fmt.Errorf("%s server sent %d bytes after accepting STARTTLS, before the TLS handshake", c.p, n)
	}
	return nil
}

const stepGreeting = "the greeting"

// excerpt quotes server text for an error message, shortened so that a
// hostile server cannot fill the log.
func excerpt(s string) string {
	const max = 120
	if len(s) > max {
		s = s[:max] + "…"
	}
	return fmt.Sprintf("%q", s)
}
