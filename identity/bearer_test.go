package identity_test

import (
	"errors"
	"testing"

	"github.com/airlockhq/airlock/identity"
)

func TestBearerToken(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		want    string
		kind    identity.ErrorKind
	}{
		{"bearer", map[string]string{"authorization": "Bearer abc.def.ghi"}, "abc.def.ghi", 0},
		{"lower-case scheme", map[string]string{"authorization": "bearer abc"}, "abc", 0},
		{"upper-case scheme", map[string]string{"authorization": "BEARER abc"}, "abc", 0},
		{"surrounding spaces", map[string]string{"authorization": "  Bearer   abc  "}, "abc", 0},
		{"no headers", nil, "", identity.NoToken},
		{"no authorization", map[string]string{"x-goog-api-key": "k"}, "", identity.NoToken},
		{"empty", map[string]string{"authorization": ""}, "", identity.NoToken},
		{"scheme only", map[string]string{"authorization": "Bearer"}, "", identity.NoToken},
		{"scheme and spaces", map[string]string{"authorization": "Bearer    "}, "", identity.NoToken},
		{"basic", map[string]string{"authorization": "Basic dXNlcjpwYXNz"}, "", identity.Malformed},
		{"bare token", map[string]string{"authorization": "abc.def.ghi"}, "", identity.Malformed},
		{"two tokens", map[string]string{"authorization": "Bearer a b"}, "", identity.Malformed},
		{"capitalised header name is not read", map[string]string{"Authorization": "Bearer abc"}, "", identity.NoToken},
		{"access_token query parameter is not read", map[string]string{":path": "/v1/x?access_token=abc"}, "", identity.NoToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identity.BearerToken(tc.headers)
			if tc.kind == 0 {
				if err != nil || got != tc.want {
					t.Fatalf("BearerToken = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var ie *identity.Error
			if !errors.As(err, &ie) || ie.Kind != tc.kind {
				t.Fatalf("BearerToken = %q, %v; want kind %s", got, err, tc.kind)
			}
			if got != "" {
				t.Fatalf("token %q returned with an error", got)
			}
		})
	}
}

func BenchmarkBearerToken(b *testing.B) {
	h := map[string]string{"authorization": "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := identity.BearerToken(h); err != nil {
			b.Fatal(err)
		}
	}
}
