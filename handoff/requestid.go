package handoff

// RequestIDHeader is the header Envoy's connection manager sets to a new
// UUID on every request it does not trust the caller's for.
const RequestIDHeader = "x-request-id"

// IsUUID reports whether s is a UUID in its canonical text form, as Envoy
// and Istio write x-request-id. No detector flags one alone: ext_authz
// takes it as the request's ID and the recorder keeps it as it is,
// without a masking pass per request.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
