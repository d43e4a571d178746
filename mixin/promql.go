package mixin

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// MetricNames returns the metric names a PromQL expression selects, sorted
// and without duplicates. It is a lexer, not a parser (the PromQL parser
// would pull all of Prometheus into go.mod; promtool checks the syntax): it
// skips strings, label matchers in braces, ranges in brackets, label lists
// after by/without/on/ignoring/group_left/group_right, numbers and
// durations, keywords, and names followed by "(" (functions and
// aggregations). What remains are metric names.
func MetricNames(expr string) ([]string, error) {
	names := map[string]bool{}
	var (
		braces, brackets int
		skipParens       int  // depth inside a label list such as by (...)
		labelListNext    bool // the previous token opens a label list
		stack            []rune
	)
	rs := []rune(expr)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '"' || r == '\'' || r == '`':
			end := closingQuote(rs, i)
			if end < 0 {
				return nil, fmt.Errorf("unterminated string at offset %d in %q", i, expr)
			}
			i = end + 1
			continue
		case r == '#': // comment to end of line
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
			continue
		case r == '{' || r == '[' || r == '(':
			stack = append(stack, r)
			switch r {
			case '{':
				braces++
			case '[':
				brackets++
			case '(':
				if skipParens > 0 || labelListNext {
					skipParens++
				}
			}
			labelListNext = false
		case r == '}' || r == ']' || r == ')':
			if len(stack) == 0 || stack[len(stack)-1] != opening(r) {
				return nil, fmt.Errorf("unbalanced %q at offset %d in %q", r, i, expr)
			}
			stack = stack[:len(stack)-1]
			switch r {
			case '}':
				braces--
			case ']':
				brackets--
			case ')':
				if skipParens > 0 {
					skipParens--
				}
			}
		case unicode.IsDigit(r) || (r == '.' && i+1 < len(rs) && unicode.IsDigit(rs[i+1])):
			// Numbers, durations (5m, 1d15m), hex and exponents.
			for i < len(rs) && (isIdentRune(rs[i]) || rs[i] == '.') {
				i++
			}
			labelListNext = false
			continue
		case isIdentStart(r):
			j := i
			for j < len(rs) && isIdentRune(rs[j]) {
				j++
			}
			word := string(rs[i:j])
			k := j
			for k < len(rs) && unicode.IsSpace(rs[k]) {
				k++
			}
			followedByParen := k < len(rs) && rs[k] == '('
			// An aggregation may put its grouping first: max by (job) (x).
			if next := k; !followedByParen {
				for next < len(rs) && isIdentRune(rs[next]) {
					next++
				}
				w := string(rs[k:next])
				followedByParen = w == "by" || w == "without"
			}
			switch {
			case braces > 0 || brackets > 0 || skipParens > 0:
				// a label name, or a duration
			case opensLabelList(word):
				labelListNext = followedByParen
				i = j
				continue
			case isKeyword(word):
			case followedByParen:
				// a function or an aggregation
			default:
				names[word] = true
			}
			labelListNext = false
			i = j
			continue
		}
		i++
	}
	if len(stack) > 0 {
		return nil, fmt.Errorf("unclosed %q in %q", stack[len(stack)-1], expr)
	}
	out := make([]string, 0, len(names))
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// isKeyword reports words of PromQL that are not metric names.
func isKeyword(word string) bool {
	switch strings.ToLower(word) {
	case "and", "or", "unless", "bool", "offset", "inf", "nan":
		return true
	}
	return false
}

// opensLabelList reports the words followed by a parenthesised list of
// label names.
func opensLabelList(word string) bool {
	switch word {
	case "by", "without", "on", "ignoring", "group_left", "group_right":
		return true
	}
	return false
}

// opening returns the bracket a closing one matches.
func opening(r rune) rune {
	switch r {
	case '}':
		return '{'
	case ']':
		return '['
	}
	return '('
}

func closingQuote(rs []rune, start int) int {
	q := rs[start]
	for i := start + 1; i < len(rs); i++ {
		switch {
		case rs[i] == '\\' && q != '`':
			i++
		case rs[i] == q:
			return i
		}
	}
	return -1
}

func isIdentStart(r rune) bool {
	return r == '_' || r == ':' || (r < unicode.MaxASCII && unicode.IsLetter(r))
}

func isIdentRune(r rune) bool {
	return isIdentStart(r) || (r < unicode.MaxASCII && unicode.IsDigit(r))
}
