package main

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// termSafe makes text an agent or an approver wrote (recorded events,
// approval requests) safe to print on an auditor's or approver's
// terminal: an escape sequence in a body or a URL could otherwise move
// the cursor, erase lines, retitle the window or rewrite what verify
// printed, and a bidirectional override could reorder what is shown.
// Everything but printable characters and the space (control characters,
// line breaks, format characters such as U+202E, invalid UTF-8) is
// written as a Go escape, as %q would.
func termSafe(s string) string { return termEscape(s, false) }

// termSafeLines is termSafe keeping line breaks and tabs: for a body an
// approver reads as it was laid out.
func termSafeLines(s string) string { return termEscape(s, true) }

func termEscape(s string, lines bool) string {
	clean := true
	for i := 0; i < len(s) && clean; i++ {
		c := s[i]
		clean = c >= 0x20 && c < 0x7f || lines && (c == '\n' || c == '\t')
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || unicode.IsPrint(r) || lines && (r == '\n' || r == '\t'):
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
		i += size
	}
	return b.String()
}
