package authz

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
// whatever the header's name.
var credentialValuePrefixes = []string{"bearer ", "basic ", "digest ", "negotiate ", "ya29.", "aiza", "goog4-hmac"}

// CredentialHeader reports whether a header (lower-case name) carries a
// credential: by its name, a credential-like part of its name, or a value
// that looks like one. Such headers never reach policies, logs or
// recordings; authz, extproc and the recorder all ask here.
func CredentialHeader(name, value string) bool {
	if s, ok := credentialHeaders[name]; ok {
		return s
	}
	for _, f := range credentialFragments {
		if strings.Contains(name, f) {
			return true
		}
	}
	// Case-insensitive prefix test without lowering a copy: this runs for
	// every header of every request.
	v := strings.TrimLeft(value, " \t")
	for _, p := range credentialValuePrefixes {
		if len(v) >= len(p) && strings.EqualFold(v[:len(p)], p) {
			return true
		}
	}
	return false
}
