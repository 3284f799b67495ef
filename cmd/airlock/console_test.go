package main

import (
	"testing"
	"time"

	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/identity"
)

// TestAccessEvent: a read of a session is recorded as the reader's own
// decision on the pseudo-methods the CLI filters by.
func TestAccessEvent(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := accessEvent("airlock.example.com", console.Access{Viewer: identity.Identity{Subject: "sre-1", Email: "sre-1@example.com"},
		Session: "s-1", Action: "export", Format: "html", Approval: "a1", Time: at})
	if e.Subject != "sre-1" || e.GCPMethod != "airlock.sessions.export" || e.Decision != "allowed" || e.Path != "/v1/sessions/s-1/download" ||
		e.Query != "format=html&approval=a1" || e.Rule != "approvers" || e.Message != "downloaded session s-1 as html through approval a1" || !e.Time.Equal(at) {
		t.Errorf("export = %+v", e)
	}
	e = accessEvent("airlock.example.com", console.Access{Viewer: identity.Identity{Subject: "audit-1"}, Session: "s-2", Action: "view"})
	if e.GCPMethod != "airlock.sessions.get" || e.Path != "/sessions/s-2" || e.Query != "" || e.Rule != "auditors" || e.Host != "airlock.example.com" {
		t.Errorf("view = %+v", e)
	}
}
