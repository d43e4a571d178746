package starttls

import (
	"fmt"
	"strings"
)

// ftp runs RFC 4217 §4: the 220 greeting (after any 120 "ready in n
// minutes"), AUTH TLS, 234.
func ftp(c *lineConn) error {
	for {
		r, err := c.reply(stepGreeting, true)
		if err != nil {
			return err
		}
		if r.code == "120" {
			continue // bounded by the preamble's byte limit and deadline
		}
		if r.code != "220" {
			return fmt.Errorf("FTP server greeted with %s: %s", r.code, excerpt(strings.Join(r.lines, " ")))
		}
		break
	}
	if err := c.send("AUTH TLS", "AUTH TLS"); err != nil {
		return err
	}
	if _, err := c.expect("the reply to AUTH TLS", "AUTH TLS", "234", true); err != nil {
		return err
	}
	return c.ready()
}
