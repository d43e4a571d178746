package starttls

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// XML namespaces of RFC 6120.
const (
	nsStreams = "http://etherx.jabber.org/streams"
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
)

// xmpp runs RFC 6120 §5.4 for a client: the stream header to domain, the
// server's stream features listing starttls, <starttls/>, <proceed/>.
func xmpp(c *lineConn, domain string) error {
	var to strings.Builder
	if err := xml.EscapeText(&to, []byte(domain)); err != nil {
		return err
	}
	header := "<?xml version='1.0'?><stream:stream to='" + to.String() +
		"' version='1.0' xmlns='jabber:client' xmlns:stream='" + nsStreams + "'>"
	if _, err := io.WriteString(c.conn, header); err != nil {
		return fmt.Errorf("XMPP: sending the stream header: %w", err)
	}
	x := &xmlStream{c: c, d: xml.NewDecoder(&byteCounter{c: c})}
	se, err := x.start("the stream header")
	if err != nil {
		return err
	}
	if se.Name != (xml.Name{Space: nsStreams, Local: "stream"}) {
		return fmt.Errorf("XMPP server answered with <%s> instead of a stream header", se.Name.Local)
	}
	if se, err = x.start("the stream features"); err != nil {
		return err
	}
	if err := x.streamError(se); err != nil {
		return err
	}
	if se.Name != (xml.Name{Space: nsStreams, Local: "features"}) {
		return fmt.Errorf("XMPP server sent <%s> instead of its stream features", se.Name.Local)
	}
	features, err := x.children("the stream features")
	if err != nil {
		return err
	}
	if !features[xml.Name{Space: nsTLS, Local: "starttls"}] {
		var names []string
		for n := range features {
			names = append(names, n.Local)
		}
		return fmt.Errorf("XMPP server did not offer STARTTLS (stream features: %s)", excerpt(strings.Join(names, " ")))
	}
	if _, err := io.WriteString(c.conn, "<starttls xmlns='"+nsTLS+"'/>"); err != nil {
		return fmt.Errorf("XMPP: sending starttls: %w", err)
	}
	if se, err = x.start("the answer to starttls"); err != nil {
		return err
	}
	if err := x.streamError(se); err != nil {
		return err
	}
	switch se.Name {
	case xml.Name{Space: nsTLS, Local: "proceed"}:
		// Read the element's end, "/>" or "</proceed>", so that nothing of
		// it is left buffered.
		if err := x.d.Skip(); err != nil {
			return x.readErr("the answer to starttls", err)
		}
		return c.ready()
	case xml.Name{Space: nsTLS, Local: "failure"}:
		return errors.New("XMPP server answered <failure/> to STARTTLS")
	}
	return fmt.Errorf("XMPP server answered starttls with <%s>", se.Name.Local)
}

// xmlStream reads the server's side of an XMPP stream.
type xmlStream struct {
	c *lineConn
	d *xml.Decoder
}

// start returns the next start element, skipping character data.
func (x *xmlStream) start(step string) (xml.StartElement, error) {
	for {
		tok, err := x.d.Token()
		if err != nil {
			return xml.StartElement{}, x.readErr(step, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return t, nil
		case xml.EndElement:
			return xml.StartElement{}, fmt.Errorf("XMPP server closed its stream in %s", step)
		}
	}
}

// children reads the children of the element just started, to its end, and
// returns their names.
func (x *xmlStream) children(step string) (map[xml.Name]bool, error) {
	names := map[xml.Name]bool{}
	for {
		tok, err := x.d.Token()
		if err != nil {
			return nil, x.readErr(step, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			names[t.Name] = true
			if err := x.d.Skip(); err != nil {
				return nil, x.readErr(step, err)
			}
		case xml.EndElement:
			return names, nil
		}
	}
}

// streamError turns a <stream:error> into an error naming its condition.
func (x *xmlStream) streamError(se xml.StartElement) error {
	if se.Name != (xml.Name{Space: nsStreams, Local: "error"}) {
		return nil
	}
	conditions, err := x.children("the stream error")
	if err != nil {
		return err
	}
	var names []string
	for n := range conditions {
		names = append(names, n.Local)
	}
	return fmt.Errorf("XMPP server sent a stream error: %s", excerpt(strings.Join(names, " ")))
}

func (x *xmlStream) readErr(step string, err error) error {
	var ne net.Error
	var se *xml.SyntaxError
	switch {
	case errors.Is(err, errTooLong):
		return fmt.Errorf("XMPP server sent more than %d bytes before the end of %s", x.c.max, step)
	case errors.Is(err, errTLSRecord):
		return fmt.Errorf("XMPP server answered with TLS records instead of %s: is this an implicit-TLS port? (then leave starttls out)", step)
	case errors.Is(err, io.EOF), errors.As(err, &se) && strings.Contains(se.Msg, "unexpected EOF"):
		return fmt.Errorf("XMPP server closed the connection before the end of %s", step)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("XMPP server did not finish %s before the deadline", step)
	case errors.As(err, &se):
		return fmt.Errorf("XMPP server sent malformed XML in %s: %s", step, se.Msg)
	}
	return fmt.Errorf("XMPP: reading %s: %w", step, err)
}

var (
	errTooLong   = errors.New("preamble too long")
	errTLSRecord = errors.New("TLS record")
)

// byteCounter hands the XML decoder the preamble's buffered reader one byte
// at a time (as an io.ByteReader, which the decoder then does not buffer
// again), within the preamble's byte bound.
type byteCounter struct {
	c    *lineConn
	seen bool
}

func (b *byteCounter) ReadByte() (byte, error) {
	if b.c.left <= 0 {
		return 0, errTooLong
	}
	x, err := b.c.br.ReadByte()
	if err != nil {
		return 0, err
	}
	b.c.left--
	if !b.seen && (x == 0x15 || x == 0x16) {
		return 0, errTLSRecord
	}
	b.seen = true
	return x, nil
}

func (b *byteCounter) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	x, err := b.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = x
	return 1, nil
}
