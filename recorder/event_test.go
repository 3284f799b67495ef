package recorder

import (
	"strings"
	"testing"
)

func TestMaskHeaders(t *testing.T) {
	tests := []struct {
		name, value string
		masked      bool
	}{
		{"Authorization", "Bearer x", true},
		{"proxy-authorization", "Basic eA==", true},
		{"cookie", "a=b", true},
		{"set-cookie", "a=b", true},
		{"x-goog-api-key", "AIza", true},
		{"x-api-key", "k", true},
		{"x-goog-iam-authorization-token", "t", true},
		{"x-amz-security-token", "t", true},
		{"x-vendor-secret", "s", true},
		{"x-db-password", "s", true},
		{"x-anything", "Bearer eyJ", true},
		{"x-anything", "ya29.a0AfH6", true},
		{"user-agent", "gcloud/470", false},
		{"content-type", "application/json", false},
		{":path", "/compute/v1/projects/p", false},
		{"x-airlock-session", "fix-1", false},
		{"www-authenticate", `Bearer realm="x"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, _ := newHeaderMasker(nil).maskHeaders(map[string]string{tt.name: tt.value}, "", "")
			if len(got) != 1 || got[0].name != strings.ToLower(tt.name) {
				t.Fatalf("header %s: got %v", tt.name, got)
			}
			if v := got[0].value; (v == Masked) != tt.masked {
				t.Fatalf("%s: %q -> %q, want masked=%v", tt.name, tt.value, v, tt.masked)
			}
		})
	}
	if got, _, _ := newHeaderMasker(nil).maskHeaders(nil, "", ""); got != nil {
		t.Fatalf("nil headers gave %v", got)
	}
}
