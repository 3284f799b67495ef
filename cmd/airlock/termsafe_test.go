package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/approvals"
)

func TestTermSafe(t *testing.T) {
	for in, want := range map[string]string{
		"plain text / ok": "plain text / ok", "é ü 日本": "é ü 日本", "a\tb": `a\tb`, "a\r\nb": `a\r\nb`, "\x7f": `\x7f`,
		"\x1b[31m": `\x1b[31m`, "\u2028": `\u2028`, "\u00a0": `\u00a0`, "\u202e": `\u202e`, "\U000e0001": `\U000e0001`, "\xe2\x80": `\xe2\x80`,
	} {
		if got := termSafe(in); got != want {
			t.Errorf("termSafe(%q) = %q, want %q", in, got, want)
		}
	}
	if got, want := termSafeLines("{\n\t\"a\": \"\x1b[2K\r\"\n}"), "{\n\t\"a\": \"\\x1b[2K\\r\"\n}"; got != want {
		t.Errorf("termSafeLines = %q, want %q", got, want)
	}
}

// TestApprovalsShowIsTerminalSafe: an agent cannot hide or rewrite, with
// escape sequences in its URL or body, what an approver sees before
// voting.
func TestApprovalsShowIsTerminalSafe(t *testing.T) {
	a := approvals.Approval{ID: "nic5udenfttkik7t3uttzq5era", State: approvals.StatePending, ExpiresAt: time.Now(),
		Request: approvals.Request{Subject: "agent\u202e", Method: "POST", Rule: "prod",
			URL:         "https://compute.googleapis.com/compute/v1/projects/acme-prod/zones/z/instances/db-1/delete\x1b[2K\r\x1b[1AGET https://harmless",
			BodyExcerpt: "{\n  \"x\": 1\n}\x1b[3A\x1b[J"}}
	var show, list bytes.Buffer
	approvalsShow(&show, a)
	approvalsTable(&list, []approvals.Approval{a})
	for _, out := range []string{show.String(), list.String()} {
		for _, bad := range []string{"\x1b", "\r", "\u202e"} {
			if strings.Contains(out, bad) {
				t.Errorf("output holds %q:\n%q", bad, out)
			}
		}
	}
	for _, want := range []string{`db-1/delete\x1b[2K\r\x1b[1AGET https://harmless`, "{\n  \"x\": 1\n}\\x1b[3A\\x1b[J", `agent\u202e`} {
		if !strings.Contains(show.String(), want) {
			t.Errorf("show lacks %q:\n%s", want, show.String())
		}
	}
}
