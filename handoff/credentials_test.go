package handoff

import (
	"strings"
	"testing"
)

// credentialHeaderOracle is CredentialHeader written plainly: the
// indexed version must agree with it on every input.
func credentialHeaderOracle(name, value string) bool {
	if s, ok := credentialHeaders[name]; ok {
		return s
	}
	for _, f := range credentialFragments {
		if strings.Contains(name, f) {
			return true
		}
	}
	v := strings.ToLower(strings.TrimLeft(value, " \t"))
	for _, p := range credentialValuePrefixes {
		if strings.HasPrefix(v, p) {
			return true
		}
	}
	return false
}

func TestCredentialHeader(t *testing.T) {
	for _, c := range []struct {
		name, value string
		want        bool
	}{
		{"authorization", "anything", true},
		{"www-authenticate", "Bearer realm=x", false},
		{"x-my-apikey-header", "v", true},
		{"x-upstream-private", "v", true},
		{"x-secretish", "v", true},
		{"user-agent", "gcloud/500", false},
		{"accept", "application/json", false},
		{"x-forwarded-for", " \tBEARER abc", true},
		{"x-custom", "Basic dXNlcjpwYXNz", true},
		{"x-custom", "ya29.a0AfH6SM", true},
		{"x-custom", "AIzaSyA1b2C3d4", true},
		{"x-custom", "GOOG4-HMAC-SHA256 Credential=", true},
		{"x-custom", "bearer", false}, // no space: not the scheme
		{"x-custom", "", false},
		{"", "", false},
	} {
		if got := CredentialHeader(c.name, c.value); got != c.want {
			t.Errorf("CredentialHeader(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
		if got := credentialHeaderOracle(c.name, c.value); got != c.want {
			t.Errorf("oracle(%q, %q) = %v, want %v", c.name, c.value, got, c.want)
		}
	}
}

func FuzzCredentialHeader(f *testing.F) {
	for _, s := range append(append([]string{"user-agent", "x-api-key", "Bearer x", "aiza", "Ya29.", "\tnegotiate y"}, credentialFragments...), credentialValuePrefixes...) {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		if got, want := CredentialHeader(name, value), credentialHeaderOracle(name, value); got != want {
			t.Fatalf("CredentialHeader(%q, %q) = %v, oracle %v", name, value, got, want)
		}
	})
}

func BenchmarkCredentialHeader(b *testing.B) {
	h := [][2]string{{":method", "GET"}, {":path", "/compute/v1/projects/p/zones/z/instances"}, {":authority", "compute.googleapis.com"},
		{"user-agent", "google-cloud-sdk gcloud/500.0.0"}, {"accept", "application/json"}, {"x-request-id", "5f0c3a9e"}, {"x-goog-api-client", "gl-go/1.26"}}
	for b.Loop() {
		for _, kv := range h {
			CredentialHeader(kv[0], kv[1])
		}
	}
}
