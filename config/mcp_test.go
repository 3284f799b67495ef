package config

import (
	"strings"
	"testing"
	"time"
)

func TestMCPDefaultsAndErrors(t *testing.T) {
	c := Default()
	if !c.MCP.Enabled || !c.MCP.FilterTools || c.MCP.MaxHold != 45*time.Second || c.MCP.MaxMessageBytes != 16<<20 || !c.MCP.Server {
		t.Fatalf("defaults %+v", c.MCP)
	}
	for _, tc := range []struct{ doc, key string }{
		{"mcp: {max_hold: 11m}", "mcp.max_hold"},
		{"mcp: {max_message_bytes: 10}", "mcp.max_message_bytes"},
		{"listen: {http: \"\"}\nmcp: {server: true}", "mcp.server"},
		{"mcp: {filtr_tools: false}", "mcp.filtr_tools"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v, want an error naming %s", tc.doc, err, tc.key)
		}
	}
	if _, err := Parse([]byte("listen: {http: \"\"}\nmcp: {server: false, enabled: false}")); err != nil && strings.Contains(err.Error(), "mcp.") {
		t.Errorf("turned off: %v", err)
	}
}
