package authz

// ValidSessionID reports whether an agent-chosen session id is acceptable:
// 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a
// letter or digit (so that it is never "." or ".." in a storage path).
func ValidSessionID(s string) bool {
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
