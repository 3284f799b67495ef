package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/masking"
)

// leafCommands are every command that takes flags.
var leafCommands = [][]string{
	{"serve"}, {"check"}, {"dev-token"}, {"login"},
	{"policy", "test"}, {"policy", "lint"}, {"policy", "explain"},
	{"approvals", "list"}, {"approvals", "show"}, {"approvals", "approve"}, {"approvals", "deny"},
	{"sessions", "list"}, {"sessions", "show"}, {"sessions", "replay"}, {"sessions", "verify"},
	{"sessions", "export"}, {"sessions", "prune"},
	{"envoy", "config"}, {"envoy", "validate"},
	{"bench", "authz"}, {"bench", "noop-authz"}, {"mcp"},
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelpPrintsUsageAndExitsZero(t *testing.T) {
	var cmds [][]string
	cmds = append(cmds, nil, []string{"policy"}, []string{"approvals"}, []string{"sessions"}, []string{"envoy"}, []string{"bench"})
	cmds = append(cmds, leafCommands...)
	for _, c := range cmds {
		for _, h := range []string{"-h", "--help"} {
			args := append(append([]string(nil), c...), h)
			code, out, errOut := runCLI(args...)
			if code != 0 || !strings.Contains(out, "usage:") && !strings.Contains(out, "Usage:") {
				t.Errorf("airlock %s: exit %d, stdout %q, stderr %q; want usage on stdout and exit 0", strings.Join(args, " "), code, out, errOut)
			}
			if errOut != "" {
				t.Errorf("airlock %s: stderr %q, want nothing", strings.Join(args, " "), errOut)
			}
		}
	}
}

func TestEveryCommandDocumentsItsExitStatus(t *testing.T) {
	for _, c := range leafCommands {
		_, out, _ := runCLI(append(append([]string(nil), c...), "-h")...)
		if !strings.Contains(out, "Exit status:") {
			t.Errorf("airlock %s -h does not document its exit status:\n%s", strings.Join(c, " "), out)
		}
	}
	_, out, _ := runCLI("check", "-h")
	if !strings.Contains(out, "3 denied") {
		t.Errorf("check -h does not say it exits 3 on a refusal:\n%s", out)
	}
}

func TestBadFlagExitsTwoPointingAtHelp(t *testing.T) {
	for _, c := range leafCommands {
		args := append(append([]string(nil), c...), "--no-such-flag")
		code, out, errOut := runCLI(args...)
		want := "Run 'airlock " + strings.Join(c, " ") + " -h' for usage."
		if code != 2 || !strings.Contains(errOut, "no-such-flag") || !strings.Contains(errOut, want) || out != "" {
			t.Errorf("airlock %s: exit %d, stdout %q, stderr %q; want 2 naming the flag and %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
}

func TestGroupsWithoutCommandExitTwo(t *testing.T) {
	for _, g := range [][]string{nil, {"policy"}, {"approvals"}, {"sessions"}, {"envoy"}, {"bench"}} {
		code, out, errOut := runCLI(g...)
		if code != 2 || out != "" || !strings.Contains(strings.ToLower(errOut), "usage:") {
			t.Errorf("airlock %s: exit %d, stdout %q, stderr %q; want usage on stderr, exit 2", strings.Join(g, " "), code, out, errOut)
		}
	}
}

func TestFlagsMayFollowArguments(t *testing.T) {
	dir := t.TempDir()
	policy := `name: p
default: deny
rules:
  - name: reads
    when: gcp.readonly
    action: allow
tests:
  - name: a read is allowed
    request: {method: GET, url: "https://storage.googleapis.com/storage/v1/b/x/o"}
    identity: {subject: alice}
    expect: allow
`
	if err := os.WriteFile(filepath.Join(dir, "p.yaml"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	before, outBefore, _ := runCLI("policy", "test", "-v", dir)
	after, outAfter, errAfter := runCLI("policy", "test", dir, "-v")
	if before != 0 || after != 0 || !strings.Contains(outAfter, "ok   ") || outBefore != outAfter {
		t.Fatalf("policy test -v DIR: %d %q; policy test DIR -v: %d %q %q", before, outBefore, after, outAfter, errAfter)
	}
	// "--" ends the flags: what follows is a path, even if it looks like one.
	code, _, errOut := runCLI("policy", "lint", "--", "-v")
	if code != 1 || !strings.Contains(errOut, "-v") {
		t.Fatalf("policy lint -- -v: exit %d, stderr %q; want the path -v reported missing", code, errOut)
	}
}

func TestErrorsCarryOnePrefix(t *testing.T) {
	sink := t.TempDir()
	code, _, errOut := runCLI("sessions", "show", "no-such-session~x", "--sink", "file://"+sink)
	if code != 1 || !strings.HasPrefix(errOut, "airlock sessions: ") {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	line := strings.SplitN(errOut, "\n", 2)[0]
	for _, p := range []string{"recorder: ", "airlock sessions: "} {
		if n := strings.Count(line, p); n > 1 || (p == "recorder: " && n > 0) {
			t.Errorf("%q repeats or leaks the prefix %q", line, p)
		}
	}
}

func TestStripPrefixes(t *testing.T) {
	for in, want := range map[string]string{
		"recorder: session X: recorder: object does not exist": "session X: object does not exist",
		"approvals: vote: approvals: already decided":          "vote: already decided",
		"open x.yaml: no such file":                            "open x.yaml: no such file",
		"put gs://b/o: approvals: unavailable":                 "put gs://b/o: approvals: unavailable",
	} {
		if got := stripPrefixes(in); got != want {
			t.Errorf("stripPrefixes(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckSaysWhenNoPolicyCovers(t *testing.T) {
	body := `{"error":{"code":403,"message":"airlock: denied: no policy allows this request.","status":"PERMISSION_DENIED",` +
		`"details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"POLICY_DENIED","domain":"airlock.dev",` +
		`"metadata":{"policy":"","rule":"default","operation":"compute.instances.list"}}]}}`
	resp := &authv3.CheckResponse{
		Status: &status.Status{Code: 7},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: 403}, Body: body,
		}},
	}
	var out bytes.Buffer
	printDecision(&out, describe(resp))
	if !strings.Contains(out.String(), "rules:     none: no policy covers this request") || strings.Contains(out.String(), "/default") {
		t.Fatalf("output:\n%s", out.String())
	}
}

func TestEveryCommandIsInTheUsage(t *testing.T) {
	for name := range commands {
		if !strings.Contains(usage, "  airlock "+name+" ") {
			t.Errorf("command %q is not in the usage text", name)
		}
		code, out, _ := runCLI(name, "-h")
		if code != 0 || !strings.Contains(strings.ToLower(out), "usage:") {
			t.Errorf("airlock %s -h: exit %d", name, code)
		}
	}
}

// check reads the dynamic metadata as the ext_authz server writes it: the
// masking rules arrive as one JSON string.
func TestCheckShowsMaskingOfAnAllowedRequest(t *testing.T) {
	m := handoff.Metadata{RequestID: "r1", GCPMethod: "secretmanager.projects.secrets.versions.access", Rules: []string{"p/reads"},
		Masking: []masking.Rule{{Policy: "p", Name: "secret-payloads", Fields: []string{"payload.data"}}}}
	md, err := structpb.NewStruct(m.ToMap())
	if err != nil {
		t.Fatal(err)
	}
	out := describe(&authv3.CheckResponse{Status: &status.Status{}, DynamicMetadata: md})
	if out.Operation != m.GCPMethod || out.RequestID != "r1" || len(out.Rules) != 1 || len(out.Masking) != 1 || out.Masking[0] != "p/secret-payloads" {
		t.Fatalf("describe = %+v", out)
	}
}
