package starttls

import (
	"fmt"
	"strings"
)

// pop3 runs RFC 2595 §4: the +OK greeting, CAPA listing STLS (RFC 2449),
// STLS, +OK.
func pop3(c *lineConn) error {
	if _, err := c.status(stepGreeting, "the connection"); err != nil {
		return err
	}
	if err := c.send("CAPA", "CAPA"); err != nil {
		return err
	}
	if _, err := c.status("the reply to CAPA", "CAPA"); err != nil {
		return err
	}
	var caps []string
	for {
		l, err := c.line("the CAPA list")
		if err != nil {
			return err
		}
		if l == "." {
			break
		}
		if f := strings.Fields(l); len(f) > 0 {
			caps = append(caps, strings.ToUpper(f[0]))
		}
	}
	if !contains(caps, "STLS") {
		return fmt.Errorf("POP3 server did not offer STLS (CAPA: %s)", excerpt(strings.Join(caps, " ")))
	}
	if err := c.send("STLS", "STLS"); err != nil {
		return err
	}
	if _, err := c.status("the reply to STLS", "STLS"); err != nil {
		return err
	}
	return c.ready()
}

// status reads a POP3 status line and requires +OK.
func (c *lineConn) status(step, what string) (string, error) {
	l, err := c.line(step)
	if err != nil {
		return "", err
	}
	switch {
	case l == "+OK" || strings.HasPrefix(l, "+OK "):
		return l, nil
	case l == "-ERR" || strings.HasPrefix(l, "-ERR "):
		return "", fmt.Errorf("POP3 server answered -ERR to %s: %s", what, excerpt(strings.TrimSpace(strings.TrimPrefix(l, "-ERR"))))
	}
	return "", fmt.Errorf("POP3 server sent %s instead of +OK or -ERR in %s", excerpt(l), step)
}
