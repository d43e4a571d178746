package starttls

import (
	"fmt"
	"strings"
)

// imap runs RFC 9051 §6.2.1 (and RFC 2595 §3.1): the untagged OK greeting,
// CAPABILITY unless the greeting already lists STARTTLS, STARTTLS, tagged OK.
func imap(c *lineConn) error {
	g, err := c.line(stepGreeting)
	if err != nil {
		return err
	}
	status, text := untagged(g)
	switch status {
	case "OK":
	case "PREAUTH":
		// Already authenticated: RFC 9051 allows STARTTLS only before.
		return fmt.Errorf("IMAP server greeted with PREAUTH, which rules out STARTTLS: %s", excerpt(text))
	case "BYE":
		return fmt.Errorf("IMAP server refused the connection: BYE %s", excerpt(text))
	default:
		return fmt.Errorf("IMAP server sent %s instead of a greeting", excerpt(g))
	}
	caps, listed := capabilityCode(text)
	if !listed || !contains(caps, "STARTTLS") {
		// A greeting's capability list may be partial; only the
		// CAPABILITY command's answer is authoritative.
		if caps, err = imapCapability(c); err != nil {
			return err
		}
		if !contains(caps, "STARTTLS") {
			return fmt.Errorf("IMAP server did not offer STARTTLS (CAPABILITY: %s)", excerpt(strings.Join(caps, " ")))
		}
	}
	if err := c.send("STARTTLS", "b STARTTLS"); err != nil {
		return err
	}
	if _, err := c.tagged("b", "STARTTLS"); err != nil {
		return err
	}
	return c.ready()
}

func imapCapability(c *lineConn) ([]string, error) {
	if err := c.send("CAPABILITY", "a CAPABILITY"); err != nil {
		return nil, err
	}
	untaggedLines, err := c.tagged("a", "CAPABILITY")
	if err != nil {
		return nil, err
	}
	var caps []string
	for _, l := range untaggedLines {
		if f := strings.Fields(l); len(f) > 1 && strings.EqualFold(f[0], "CAPABILITY") {
			caps = append(caps, f[1:]...)
		}
	}
	return caps, nil
}

// tagged reads untagged responses until the one tagged tag, requires it to
// be OK, and returns the untagged ones (without "* ").
func (c *lineConn) tagged(tag, command string) ([]string, error) {
	step := "the reply to " + command
	var seen []string
	for {
		l, err := c.line(step)
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutPrefix(l, "* "); ok {
			seen = append(seen, rest)
			continue
		}
		rest, ok := strings.CutPrefix(l, tag+" ")
		if !ok {
			return nil, fmt.Errorf("IMAP server sent %s in %s", excerpt(l), step)
		}
		status, text, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(status) {
		case "OK":
			return seen, nil
		case "NO", "BAD":
			return nil, fmt.Errorf("IMAP answered %s to %s: %s", strings.ToUpper(status), command, excerpt(text))
		}
		return nil, fmt.Errorf("IMAP server sent %s in %s", excerpt(l), step)
	}
}

// untagged splits "* OK text" into "OK" and "text".
func untagged(l string) (status, text string) {
	rest, ok := strings.CutPrefix(l, "* ")
	if !ok {
		return "", ""
	}
	status, text, _ = strings.Cut(rest, " ")
	return strings.ToUpper(status), text
}

// capabilityCode returns the capabilities of a "[CAPABILITY …]" response
// code at the start of text.
func capabilityCode(text string) ([]string, bool) {
	if len(text) < len("[CAPABILITY ") || !strings.EqualFold(text[:len("[CAPABILITY ")], "[CAPABILITY ") {
		return nil, false
	}
	list, _, ok := strings.Cut(text[len("[CAPABILITY "):], "]")
	if !ok {
		return nil, false
	}
	return strings.Fields(list), true
}
