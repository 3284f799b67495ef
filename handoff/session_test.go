package handoff

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzValidSessionID holds the hand-written checks to their definitions:
// a name is 1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit;
// a stored id is a name, or NAME~TAG of two names.
func FuzzValidSessionID(f *testing.F) {
	name := `[A-Za-z0-9][A-Za-z0-9._-]{0,63}`
	nameDef := regexp.MustCompile(`^` + name + `$`)
	idDef := regexp.MustCompile(`^` + name + `(~` + name + `)?$`)
	for _, s := range []string{"", ".", "..", "a", "s-20261129T010203Z-0a1b2c", "fix-1~0123456789ab", "a/b", "a b", "é",
		strings.Repeat("a", 64), strings.Repeat("a", 65), ".a", "a~", "~a", "a~b~c", "unauthenticated", "-a", "_a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidSessionName(s), nameDef.MatchString(s); got != want {
			t.Fatalf("ValidSessionName(%q) = %v, want %v", s, got, want)
		}
		if got, want := ValidSessionID(s), idDef.MatchString(s); got != want {
			t.Fatalf("ValidSessionID(%q) = %v, want %v", s, got, want)
		}
	})
}
