package recorder_test

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/recorder"
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
			got := recorder.MaskHeaders(map[string]string{tt.name: tt.value}, nil)
			v, ok := got[strings.ToLower(tt.name)]
			if !ok {
				t.Fatalf("header %s disappeared: %v", tt.name, got)
			}
			if masked := v == recorder.Masked; masked != tt.masked {
				t.Fatalf("%s: %q -> %q, masked=%v want %v", tt.name, tt.value, v, masked, tt.masked)
			}
		})
	}
	if recorder.MaskHeaders(nil, nil) != nil {
		t.Fatal("nil headers gave a map")
	}
}
