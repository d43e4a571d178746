package starttls

import (
	"fmt"
	"strings"
)

// smtp runs RFC 3207: the 220 greeting, EHLO, STARTTLS among the EHLO
// keywords, STARTTLS, 220.
func smtp(c *lineConn, ehloName string) error {
	g, err := c.reply(stepGreeting, false)
	if err != nil {
		return err
	}
	if g.code != "220" {
		return fmt.Errorf("SMTP server greeted with %s: %s", g.code, excerpt(strings.Join(g.lines, " ")))
	}
	if err := c.send("EHLO", "EHLO "+ehloName); err != nil {
		return err
	}
	r, err := c.expect("the reply to EHLO", "EHLO", "250", false)
	if err != nil {
		return err
	}
	// The first line is the server's name; each further one starts with an
	// extension keyword.
	var keywords []string
	for _, l := range r.lines[1:] {
		if f := strings.Fields(l); len(f) > 0 {
			keywords = append(keywords, strings.ToUpper(f[0]))
		}
	}
	if !contains(keywords, "STARTTLS") {
		return fmt.Errorf("SMTP server did not offer STARTTLS (EHLO keywords: %s)", excerpt(strings.Join(keywords, " ")))
	}
	if err := c.send("STARTTLS", "STARTTLS"); err != nil {
		return err
	}
	if _, err := c.expect("the reply to STARTTLS", "STARTTLS", "220", false); err != nil {
		return err
	}
	return c.ready()
}

func contains(words []string, w string) bool {
	for _, x := range words {
		if strings.EqualFold(x, w) {
			return true
		}
	}
	return false
}
