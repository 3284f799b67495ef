// Package handoff is the contract between the decision and the filters
// after it: what an allowed Check hands ext_proc and the recorder through
// Envoy's dynamic metadata (Metadata, the masking rules selected, the MCP
// calls), the header and the rule of agent-named sessions, and which
// headers carry credentials. It is a leaf: it imports nothing of airlock,
// so that the filters need not import the decision stack (CEL, policies,
// approvals, the Google catalog).
package handoff

import "strings"

// SessionHeader lets an agent name its session.
const SessionHeader = "x-airlock-session"

// ValidSessionName reports whether a session name an agent chose (the
// SessionHeader) is acceptable: 1 to 64 characters of letters, digits, '.',
// '_' or '-', starting with a letter or digit (so that it is never "." or
// ".." in a storage path).
func ValidSessionName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	if c := s[0]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidSessionID reports whether s is a recorded session's id: a session
// name, or a name scoped to its subject as NAME~TAG where both parts are
// valid names. Every id the recorder makes is one; a reader refuses
// anything else before it becomes a storage path.
func ValidSessionID(s string) bool {
	name, tag, scoped := strings.Cut(s, "~")
	return ValidSessionName(name) && (!scoped || ValidSessionName(tag))
}
