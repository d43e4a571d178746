package starttls

import (
	"fmt"
	"strings"
)

// reply is one SMTP or FTP reply: a three-digit code and its text lines.
type reply struct {
	code  string
	lines []string // the text after the code on each line
}

func (r reply) String() string { return r.code + " " + strings.Join(r.lines, " / ") }

// reply reads one possibly multi-line reply. SMTP (RFC 5321 §4.2) repeats
// the code on every line, "250-" for all but the last, "250 " on the last.
// FTP (RFC 959 §4.2) only requires the code on the first line ("220-") and
// the last ("220 "); with loose, lines in between may be anything.
func (c *lineConn) reply(step string, loose bool) (reply, error) {
	var r reply
	for {
		l, err := c.line(step)
		if err != nil {
			return reply{}, err
		}
		code, sep, text, ok := splitReply(l)
		switch {
		case r.code == "" && !ok:
			return reply{}, fmt.Errorf("%s server sent %s instead of a reply code in %s", c.p, excerpt(l), step)
		case r.code == "":
			r.code = code
		case !ok || code != r.code:
			if !loose {
				return reply{}, fmt.Errorf("%s server sent %s in a %s reply (%s)", c.p, excerpt(l), r.code, step)
			}
			r.lines = append(r.lines, l)
			continue
		}
		r.lines = append(r.lines, text)
		if sep != '-' {
			return r, nil
		}
	}
}

// splitReply splits "250-text" into its code, separator and text.
func splitReply(l string) (code string, sep byte, text string, ok bool) {
	if len(l) < 3 || !isDigits(l[:3]) {
		return "", 0, "", false
	}
	if len(l) == 3 {
		return l, ' ', "", true
	}
	if l[3] != ' ' && l[3] != '-' {
		return "", 0, "", false
	}
	return l[:3], l[3], l[4:], true
}

func isDigits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// expect reads a reply and requires code; what names the command it
// answers, for errors ("STARTTLS").
func (c *lineConn) expect(step, what, code string, loose bool) (reply, error) {
	r, err := c.reply(step, loose)
	if err != nil {
		return r, err
	}
	if r.code != code {
		return r, fmt.Errorf("%s server answered %s to %s: %s", c.p, r.code, what, excerpt(strings.Join(r.lines, " ")))
	}
	return r, nil
}
