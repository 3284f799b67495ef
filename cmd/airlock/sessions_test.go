package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/recorder/recordertest"
)

// sessionsFixture records three sessions on a file:// sink.
func sessionsFixture(t *testing.T, signer *recorder.Signer) (sinkURL string, sink *recorder.FileSink) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sink")
	sink, err := recorder.NewFileSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(context.Background(), recorder.Options{
		Sink: sink, Spool: filepath.Join(t.TempDir(), "spool"), MaxBodyBytes: 1024, Signer: signer,
		Mask: func(b []byte) []byte { return b },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	type req struct {
		session, subject, actor, method, decision, rule string
	}
	for i, q := range []req{
		{"fix-1~a", "alice", "claude", "compute.instances.delete", "deny", "no-prod-instance-delete"},
		{"fix-1~a", "alice", "claude", "compute.instances.list", "allow", "agents-may-read"},
		{"deploy~b", "bob", "", "run.projects.locations.services.delete", "approval_required", "prod-writes-need-a-human"},
		{"read~c", "carol", "codex", "storage.objects.get", "allow", "agents-may-read"},
	} {
		id := "req-" + string(rune('a'+i))
		if err := r.Decision(ctx, recorder.DecisionEvent{RequestID: id, SessionID: q.session, Subject: q.subject, Actor: q.actor,
			Method: "DELETE", Host: "compute.googleapis.com", Path: "/compute/v1/projects/acme-prod/zones/z/instances/web-1", Query: "requestId=r" + id,
			GCPMethod: q.method, Decision: q.decision, Policy: "gcp-production", Rule: q.rule, Message: "Deleting production instances is not allowed for agents.",
			Body: []byte(`{"name":"web-1"}`)}); err != nil {
			t.Fatal(err)
		}
		if q.decision == "allow" {
			if err := r.RecordResponse(ctx, handoff.Metadata{RequestID: id, SessionID: q.session, Subject: q.subject}, 200, map[string]string{"content-type": "application/json"}, []byte(`{"items":[]}`), 12); err != nil {
				t.Fatal(err)
			}
		}
		if q.decision == "approval_required" {
			if err := r.Vote(ctx, recorder.VoteEvent{SessionID: q.session, RequestID: id, ApprovalID: "ap-1", Approver: "sre-1", Vote: "approve", Reason: "planned change", State: "approved"}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir, sink
}

func runSessionsT(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := runSessions(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestSessionsList(t *testing.T) {
	url, _ := sessionsFixture(t, nil)
	tests := []struct {
		args []string
		want []string
		not  []string
	}{
		{nil, []string{"fix-1~a", "deploy~b", "read~c"}, nil},
		{[]string{"--subject", "alice"}, []string{"fix-1~a"}, []string{"deploy~b", "read~c"}},
		{[]string{"--actor", "codex"}, []string{"read~c"}, []string{"fix-1~a"}},
		{[]string{"--method", "run.projects.locations.services.delete"}, []string{"deploy~b"}, []string{"read~c"}},
		{[]string{"--decision", "deny"}, []string{"fix-1~a"}, []string{"deploy~b", "read~c"}},
		{[]string{"--since", "1h"}, []string{"fix-1~a"}, nil},
		{[]string{"--until", "2001-01-01"}, nil, []string{"fix-1~a", "deploy~b", "read~c"}},
		{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, nil, []string{"fix-1~a"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, out, errOut := runSessionsT(t, append([]string{"list", "--sink", url}, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %s:\n%s", w, out)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(out, n) {
					t.Errorf("output has %s:\n%s", n, out)
				}
			}
		})
	}
	if code, _, errOut := runSessionsT(t, "list", "--sink", url, "--since", "yesterday-ish"); code != 2 || !strings.Contains(errOut, "--since") {
		t.Fatalf("bad --since: exit %d %s", code, errOut)
	}
}

func TestSessionsShowAndReplay(t *testing.T) {
	url, _ := sessionsFixture(t, nil)
	code, out, errOut := runSessionsT(t, "show", "fix-1~a", "--sink", url)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, w := range []string{"DENY", "compute.instances.delete", "alice via claude", "no-prod-instance-delete", "Deleting production instances", "instances/web-1?requestId=rreq-a", "status 200", `body: {"name":"web-1"}`, "closed: shutdown"} {
		if !strings.Contains(out, w) {
			t.Errorf("show lacks %q:\n%s", w, out)
		}
	}
	code, out, _ = runSessionsT(t, "replay", "--speed", "0", "--sink", url, "deploy~b")
	if code != 0 || !strings.Contains(out, "APPROVE by sre-1") || !strings.Contains(out, "APPROVAL_REQUIRED") {
		t.Fatalf("replay exit %d:\n%s", code, out)
	}
	if code, _, errOut := runSessionsT(t, "show", "nope~x", "--sink", url); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("missing session: exit %d %s", code, errOut)
	}
	if code, _, _ := runSessionsT(t, "show", "--sink", url); code != 2 {
		t.Fatalf("show without id: exit %d", code)
	}
}

func TestSessionsVerifyExitCodes(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	url, sink := sessionsFixture(t, recorder.NewSigner(priv))
	keyFile := filepath.Join(t.TempDir(), "pub.pem")
	der, _ := x509.MarshalPKIXPublicKey(pub)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600)

	code, out, errOut := runSessionsT(t, "verify", "--all", "--sink", url, "--key", keyFile)
	if code != 0 || strings.Count(out, "OK ") != 3 {
		t.Fatalf("intact: exit %d\n%s%s", code, out, errOut)
	}
	// Edit one event of deploy~b.
	objs, _, _ := sink.List(context.Background(), "", "")
	var chunk string
	var raw []byte
	for _, o := range objs {
		if strings.Contains(o, "/deploy~b/") && strings.HasSuffix(o, ".jsonl.gz") {
			b, _ := sink.Get(context.Background(), o)
			zr, _ := gzip.NewReader(bytes.NewReader(b))
			if r, _ := io.ReadAll(zr); bytes.Contains(r, []byte("sre-1")) {
				chunk, raw = o, r
			}
		}
	}
	raw = bytes.Replace(raw, []byte("sre-1"), []byte("sre-9"), 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(raw)
	zw.Close()
	sink.Delete(context.Background(), chunk)
	sink.Put(context.Background(), chunk, buf.Bytes())

	code, out, _ = runSessionsT(t, "verify", "deploy~b", "--sink", url)
	if code != 1 || !strings.Contains(out, "FAIL  deploy~b") || !strings.Contains(out, "#1: event altered") {
		t.Fatalf("tampered: exit %d\n%s", code, out)
	}
	code, out, _ = runSessionsT(t, "verify", "--all", "--sink", url)
	if code != 1 || strings.Count(out, "OK ") != 2 {
		t.Fatalf("--all with one tampered: exit %d\n%s", code, out)
	}
	if code, _, _ := runSessionsT(t, "verify", "--sink", url); code != 2 {
		t.Fatalf("verify without id: exit %d", code)
	}
}

func TestSessionsExport(t *testing.T) {
	url, _ := sessionsFixture(t, nil)
	out := filepath.Join(t.TempDir(), "report.html")
	if code, _, errOut := runSessionsT(t, "export", "fix-1~a", "--format", "html", "-o", out, "--sink", url); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	html, _ := os.ReadFile(out)
	for _, w := range []string{"<!DOCTYPE html>", "fix-1~a", "instances/web-1?requestId=rreq-a", "DENY", "compute.instances.delete", "no-prod-instance-delete", "Verified:", "status 200"} {
		if !bytes.Contains(html, []byte(w)) {
			t.Errorf("html lacks %q", w)
		}
	}
	for _, external := range []string{"<script", "http://", "https://", "<link"} {
		if bytes.Contains(html, []byte(external)) {
			t.Errorf("html is not self-contained: has %q", external)
		}
	}
	code, jsonl, _ := runSessionsT(t, "export", "fix-1~a", "--sink", url)
	if code != 0 || strings.Count(jsonl, "\n") != 4 || !strings.Contains(jsonl, `"kind":"decision"`) {
		t.Fatalf("jsonl exit %d:\n%s", code, jsonl)
	}
	if code, _, _ := runSessionsT(t, "export", "fix-1~a", "--format", "pdf", "--sink", url); code != 2 {
		t.Fatalf("bad format: exit %d", code)
	}
}

func TestSessionsPrune(t *testing.T) {
	url, sink := sessionsFixture(t, nil)
	ctx := context.Background()
	old := "2020/01/02/ancient~x/20200102T000000Z.0000000000000000.manifest.json"
	if err := sink.Put(ctx, old, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runSessionsT(t, "prune", "--older-than", "90d", "--sink", url)
	if code != 0 || !strings.Contains(out, "deleted 1 objects") {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	if _, err := sink.Get(ctx, old); err == nil {
		t.Fatal("old session still there")
	}
	if code, out, _ := runSessionsT(t, "list", "--sink", url); code != 0 || !strings.Contains(out, "fix-1~a") {
		t.Fatalf("recent sessions pruned:\n%s", out)
	}
	if code, _, _ := runSessionsT(t, "prune", "--sink", url); code != 2 {
		t.Fatal("prune without --older-than accepted")
	}
	if code, _, errOut := runSessionsT(t, "prune", "--older-than", "90d", "--sink", "gs://bucket/x"); code != 2 || !strings.Contains(errOut, "lifecycle") {
		t.Fatalf("prune on gs://: exit %d %s", code, errOut)
	}
}

func TestSessionsOnGCSEmulator(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	ctx := context.Background()
	r, err := recorder.New(ctx, recorder.Options{Sink: recorder.NewGCSSink(g.Client(t), "audit", "rec"), Spool: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decision(ctx, recorder.DecisionEvent{SessionID: "gcs~a", Subject: "alice", GCPMethod: "storage.buckets.delete", Decision: "deny", Rule: "no-bucket-delete"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for _, endpoint := range []string{g.URL, g.URL + "/storage/v1/"} {
		code, out, errOut := runSessionsT(t, "list", "--sink", "gs://audit/rec", "--endpoint", endpoint, "--decision", "deny")
		if code != 0 || !strings.Contains(out, "gcs~a") {
			t.Fatalf("list --endpoint %s: exit %d\n%s%s", endpoint, code, out, errOut)
		}
	}
	code, out, errOut := runSessionsT(t, "verify", "gcs~a", "--sink", "gs://audit/rec", "--endpoint", g.URL)
	if code != 0 || !strings.Contains(out, "OK    gcs~a: 2 events") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, errOut)
	}
}

// TestSessionsShowIsTerminalSafe: what an agent sent (a body, a path, a
// query) and what an approver wrote reach the auditor's terminal with
// escape sequences, line breaks and bidirectional overrides written as
// escapes, never as the bytes a terminal would act on.
func TestSessionsShowIsTerminalSafe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sink")
	sink, err := recorder.NewFileSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := recorder.New(context.Background(), recorder.Options{
		Sink: sink, Spool: filepath.Join(t.TempDir(), "spool"), MaxBodyBytes: 1024,
		Mask: func(b []byte) []byte { return b },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const esc = "\x1b[2K\r\x1b[1A"
	if err := r.Decision(ctx, recorder.DecisionEvent{RequestID: "req-1" + esc, SessionID: "evil~1", Subject: "mallory\u202e", Actor: "bot\nOK",
		Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/x" + esc, Query: "a=\x07", GCPMethod: "compute.instances.insert",
		Decision: "allowed" + esc, Policy: "p", Rule: "r\x9b", Message: "line one\nOK    forged: 9 events", Body: []byte(`{"name":"` + esc + "x\xff" + `"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := r.Vote(ctx, recorder.VoteEvent{SessionID: "evil~1", RequestID: "req-1", ApprovalID: "ap\x1b]0;title\x07", Approver: "sre\r", Vote: "approve", Reason: "ok\x1b[0m", State: "approved"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	url := "file://" + dir
	for _, args := range [][]string{{"show", "evil~1", "--sink", url}, {"replay", "--speed", "0", "--sink", url, "evil~1"}, {"list", "--sink", url}} {
		code, out, errOut := runSessionsT(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errOut)
		}
		for _, bad := range []string{"\x1b", "\r", "\a", "\u202e", "\u009b", "\xff", "\nOK", "\nOK    forged"} {
			if strings.Contains(out, bad) || strings.Contains(errOut, bad) {
				t.Errorf("%v: output holds %q:\n%q", args, bad, out)
			}
		}
		if args[0] != "list" {
			for _, want := range []string{`\x1b[2K\r\x1b[1A`, `mallory\u202e`, `bot\nOK`, `?a=\x07`, `line one\nOK    forged`, `sre\r`} {
				if !strings.Contains(out, want) {
					t.Errorf("%v: output lacks %q:\n%s", args, want, out)
				}
			}
		}
	}
}

// tamperVote rewrites the approver of deploy~b's vote event in its chunk.
func tamperVote(t *testing.T, sink recorder.Sink) {
	t.Helper()
	ctx := context.Background()
	objs, _, _ := sink.List(ctx, "", "")
	for _, o := range objs {
		if !strings.Contains(o, "/deploy~b/") || !strings.HasSuffix(o, ".jsonl.gz") {
			continue
		}
		b, _ := sink.Get(ctx, o)
		zr, _ := gzip.NewReader(bytes.NewReader(b))
		raw, _ := io.ReadAll(zr)
		// The vote event's line, not another event that names the approver.
		lines := bytes.Split(raw, []byte("\n"))
		found := false
		for i, l := range lines {
			if bytes.Contains(l, []byte(`"kind":"vote"`)) && bytes.Contains(l, []byte("sre-1")) {
				lines[i] = bytes.Replace(l, []byte("sre-1"), []byte("sre-9"), 1)
				found = true
				break
			}
		}
		if !found {
			continue
		}
		raw = bytes.Join(lines, []byte("\n"))
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(raw)
		zw.Close()
		sink.Delete(ctx, o)
		if err := sink.Put(ctx, o, buf.Bytes()); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatal("no vote to tamper with")
}

// show, replay and export verify what they read: a banner, the altered
// event marked (in HTML with words, not only colour), exit 1.
func TestSessionsReadersVerify(t *testing.T) {
	url, sink := sessionsFixture(t, nil)
	// Intact: no banner, exit 0.
	if code, out, errOut := runSessionsT(t, "show", "deploy~b", "--sink", url); code != 0 || strings.Contains(out, "VERIFICATION FAILED") {
		t.Fatalf("intact show: exit %d\n%s%s", code, out, errOut)
	}
	tamperVote(t, sink)
	for _, args := range [][]string{{"show", "deploy~b"}, {"replay", "--speed", "0", "deploy~b"}} {
		code, out, errOut := runSessionsT(t, append(args, "--sink", url)...)
		if code != 1 || !strings.HasPrefix(out, "!! VERIFICATION FAILED") || !strings.Contains(errOut, "failed verification") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		var altered []string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "!! ALTERED") {
				altered = append(altered, line)
			}
		}
		// The altered vote, and only it: the events around it verify.
		if len(altered) != 1 || !strings.Contains(altered[0], "APPROVE by sre-9") {
			t.Fatalf("%v: the altered vote is not marked:\n%s", args, out)
		}
	}
	html := filepath.Join(t.TempDir(), "r.html")
	code, _, errOut := runSessionsT(t, "export", "deploy~b", "--format", "html", "-o", html, "--sink", url)
	if code != 1 || !strings.Contains(errOut, "VERIFICATION FAILED") {
		t.Fatalf("html export: exit %d %s", code, errOut)
	}
	b, _ := os.ReadFile(html)
	page := string(b)
	row := page[strings.LastIndex(page[:strings.Index(page, "sre-9")], "<tr"):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `class="altered"`) || !strings.Contains(row, "ALTERED") || !strings.Contains(page, "VERIFICATION FAILED") {
		t.Fatalf("the altered row is not marked in words:\n%s", row)
	}
	if code, out, _ := runSessionsT(t, "export", "deploy~b", "--sink", url); code != 1 || strings.Count(out, "\n") != 3 {
		t.Fatalf("jsonl export of a tampered session: exit %d\n%s", code, out)
	}
}

// An agent-given name finds its NAME~TAG session when one subject used it
// and lists the candidates when several did, in show, replay, verify and
// export.
func TestSessionsResolveAgentNames(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sink")
	sink, err := recorder.NewFileSink(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	r, err := recorder.New(ctx, recorder.Options{Sink: sink, Spool: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct{ subject, name string }{{"alice", "fix-bug"}, {"bob", "fix-bug"}, {"carol", "solo"}} {
		id, err := r.Session(ctx, q.subject, q.name)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Decision(ctx, recorder.DecisionEvent{SessionID: id, Subject: q.subject, Method: "GET", Decision: "allowed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	url := "file://" + dir
	solo, _ := recorder.NamedSession("carol", "solo")
	for _, args := range [][]string{{"show", "solo"}, {"replay", "--speed", "0", "solo"}, {"verify", "solo"}, {"export", "solo"}} {
		code, out, errOut := runSessionsT(t, append(args, "--sink", url)...)
		if code != 0 || !strings.Contains(out+errOut, solo) {
			t.Fatalf("%v: exit %d, want %s\n%s%s", args, code, solo, out, errOut)
		}
	}
	for _, args := range [][]string{{"show", "fix-bug"}, {"verify", "fix-bug"}, {"export", "fix-bug"}, {"replay", "fix-bug"}} {
		code, out, errOut := runSessionsT(t, append(args, "--sink", url)...)
		if code != 2 || out != "" || !strings.Contains(errOut, "2 sessions are named fix-bug") || !strings.Contains(errOut, "alice") || !strings.Contains(errOut, "bob") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// A full id still works.
	alice, _ := recorder.NamedSession("alice", "fix-bug")
	if code, out, errOut := runSessionsT(t, "show", alice, "--sink", url); code != 0 || !strings.Contains(out, alice) {
		t.Fatalf("full id: exit %d\n%s%s", code, out, errOut)
	}
}

// On Cloud Storage, verify says when the bucket has no locked retention
// policy, and is quiet when it has one.
func TestSessionsVerifyWarnsWithoutBucketLock(t *testing.T) {
	g := recordertest.StartGCS(t, "audit")
	ctx := context.Background()
	r, err := recorder.New(ctx, recorder.Options{Sink: recorder.NewGCSSink(g.Client(t), "audit", "rec"), Spool: filepath.Join(t.TempDir(), "spool")})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Decision(ctx, recorder.DecisionEvent{SessionID: "gcs~a", Subject: "alice", Decision: "allowed"}); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runSessionsT(t, "verify", "gcs~a", "--sink", "gs://audit/rec", "--endpoint", g.URL)
	if code != 0 || !strings.Contains(errOut, "has no retention policy") {
		t.Fatalf("unlocked bucket: exit %d %s", code, errOut)
	}
	g.Lock("audit", 90*24*time.Hour)
	code, _, errOut = runSessionsT(t, "verify", "gcs~a", "--sink", "gs://audit/rec", "--endpoint", g.URL)
	if code != 0 || strings.Contains(errOut, "retention") {
		t.Fatalf("locked bucket: exit %d %s", code, errOut)
	}
}

// A tool call reads as one in `sessions show` and in the HTML export: the
// server and tool, the REST method, the masked arguments and result.
func TestSessionsShowToolCall(t *testing.T) {
	e := &recorder.Event{Time: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), Kind: recorder.KindToolCall, RequestID: "r1",
		ToolCall: &recorder.ToolCallEvent{Server: "compute", Tool: "stop_instance", GCPMethod: "compute.instances.stop",
			Arguments: `{"project":"acme-prod","name":"web-1"}`, Result: `{"content":[{"type":"text","text":"[MASKED:gcp_api_key]"}]}`, ResultBytes: 900, IsError: true}}
	line := sessionsLine(e, 200)
	for _, want := range []string{"TOOL_CALL", "compute/stop_instance", "[compute.instances.stop]", "(error)", `arguments: {"project":"acme-prod","name":"web-1"}`, `result: {"content"`, "900 bytes in all"} {
		if !strings.Contains(line, want) {
			t.Errorf("no %q in %q", want, line)
		}
	}
	var buf bytes.Buffer
	if err := sessionsHTML(&buf, &recorder.Session{ID: "s~x", Events: []*recorder.Event{e}}, &recorder.VerifyResult{}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compute/stop_instance", "[compute.instances.stop]", "arguments:", "&#34;project&#34;:&#34;acme-prod&#34;", "(900 bytes in all)", "[MASKED:gcp_api_key]"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the HTML lacks %q", want)
		}
	}
}
