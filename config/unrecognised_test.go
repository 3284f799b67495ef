package config

import (
	"os"
	"strings"
	"testing"
)

func TestAuthzUnrecognised(t *testing.T) {
	if got := Default().Authz.Unrecognised; got != "refuse" {
		t.Fatalf("default authz.unrecognised = %q, want refuse", got)
	}
	for _, v := range []string{"refuse", "policy"} {
		c, err := Parse([]byte("identity: {dev: true}\nauthz: {unrecognised: " + v + "}\n"))
		if err != nil || c.Authz.Unrecognised != v {
			t.Fatalf("authz.unrecognised: %s: %v %q", v, err, c.Authz.Unrecognised)
		}
	}
	for _, v := range []string{"allow", "Refuse", `""`} {
		_, err := Parse([]byte("identity: {dev: true}\nauthz: {unrecognised: " + v + "}\n"))
		if err == nil || !strings.Contains(err.Error(), "config: authz.unrecognised: must be refuse or policy") {
			t.Fatalf("authz.unrecognised: %s: err = %v", v, err)
		}
	}
	data, err := os.ReadFile("../airlock.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), "unrecognised: refuse") {
		t.Error("airlock.example.yaml does not document authz.unrecognised")
	}
}
