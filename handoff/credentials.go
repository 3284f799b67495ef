package handoff

import "strings"

// credentialHeaders carry credentials whatever their value.
var credentialHeaders = map[string]bool{
	"authorization":                  true,
	"proxy-authorization":            true,
	"cookie":                         true,
	"set-cookie":                     true,
	"x-goog-api-key":                 true,
	"x-api-key":                      true,
	"x-goog-iam-authorization-token": true,
	"x-goog-iam-authority-selector":  true,
	"x-amz-security-token":           true,
	"x-csrf-token":                   true,
	"x-xsrf-token":                   true,
	"x-auth-token":                   true,
	"x-serverless-authorization":     true,
	"x-forwarded-access-token":       true,
	"x-forwarded-client-cert":        true,
	"x-envoy-peer-metadata":          true,
	"www-authenticate":               false,
}

// credentialFragments mark any header whose name contains one of them.
var credentialFragments = []string{"authorization", "cookie", "token", "secret", "password", "passwd", "api-key", "apikey", "credential", "signature", "private"}

// credentialValuePrefixes mark a value that looks like a credential,
// whatever the header's name (compared without regard to case).
var credentialValuePrefixes = []string{"bearer ", "basic ", "digest ", "negotiate ", "ya29.", "aiza", "goog4-hmac"}

// fragmentsAt and prefixesAt index the lists above by first byte (values
// by lower-cased first byte), so one pass over a name or one look at a
// value's first byte decides: this runs for every header of every request.
var fragmentsAt, prefixesAt = func() (f, p [256][]string) {
	for _, s := range credentialFragments {
		f[s[0]] = append(f[s[0]], s)
	}
	for _, s := range credentialValuePrefixes {
		p[s[0]] = append(p[s[0]], s)
		if u := s[0] - 'a' + 'A'; s[0] >= 'a' && s[0] <= 'z' {
			p[u] = append(p[u], s)
		}
	}
	return f, p
}()

// CredentialHeader reports whether a header (lower-case name) carries a
// credential: by its name, a credential-like part of its name, or a value
// that looks like one. Such headers never reach policies, logs or
// recordings; authz, extproc and the recorder all ask here.
func CredentialHeader(name, value string) bool {
	if s, ok := credentialHeaders[name]; ok {
		return s
	}
	for i := 0; i < len(name); i++ {
		for _, f := range fragmentsAt[name[i]] {
			if strings.HasPrefix(name[i:], f) {
				return true
			}
		}
	}
	v := strings.TrimLeft(value, " \t")
	if v == "" {
		return false
	}
	for _, p := range prefixesAt[v[0]] {
		if len(v) >= len(p) && strings.EqualFold(v[:len(p)], p) {
			return true
		}
	}
	return false
}
