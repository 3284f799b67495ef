package policies

import (
	"context"
	"testing"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
)

const mcpPolicy = `name: mcp
default: deny
rules:
  - name: no-prod-delete
    when: gcp.method == "compute.instances.delete" && gcp.project == "acme-prod"
    action: deny
  - name: no-rockets
    when: mcp.tool == "launch_rockets"
    action: deny
  - name: readers
    when: 'mcp.readonly && !mcp.destructive && mcp.arguments.?zone.orValue("") != "forbidden-zone"'
    action: allow
  - name: writes-by-sre
    when: '"sre" in identity.groups && mcp.server == "compute" && mcp.method == "tools/call" && mcp.name == mcp.tool'
    action: approve
    approvers: [group:sre-leads]
`

func TestMCPVariables(t *testing.T) {
	s := mustLoad(t, mcpPolicy)
	in := Input{
		Identity: identity.Identity{Subject: "bot", Groups: []string{"sre"}},
		GCP:      gcp.Operation{Service: "compute", Method: "compute.instances.stop", Project: "acme-prod"},
		MCP:      MCP{Server: "compute", Method: "tools/call", Tool: "stop_instance", Name: "stop_instance", Arguments: map[string]any{"zone": "us-east1-b"}, Destructive: true},
	}
	if d := s.Evaluate(context.Background(), in); d.Action != Approve || d.Rule != "writes-by-sre" {
		t.Fatalf("stop: %+v", d)
	}
	in.MCP = MCP{Server: "compute", Method: "tools/call", Tool: "list_instances", Name: "list_instances", Arguments: map[string]any{"zone": "us-east1-b"}, ReadOnly: true}
	if d := s.Evaluate(context.Background(), in); d.Action != Approve {
		t.Fatalf("list: %+v", d)
	}
	in.Identity.Groups = nil
	if d := s.Evaluate(context.Background(), in); d.Action != Allow || d.Rule != "readers" {
		t.Fatalf("list as an agent: %+v", d)
	}
	in.MCP.Arguments = map[string]any{"zone": "forbidden-zone"}
	if d := s.Evaluate(context.Background(), in); d.Action != Deny {
		t.Fatalf("forbidden zone: %+v", d)
	}
	// A REST request sees empty mcp.* values.
	vals := Describe(context.Background(), Input{})
	for _, v := range vals {
		switch v.Name {
		case "mcp.server", "mcp.method", "mcp.tool", "mcp.name":
			if v.Value != `""` {
				t.Errorf("%s = %s", v.Name, v.Value)
			}
		case "mcp.arguments":
			if v.Value != `{}` {
				t.Errorf("%s = %s", v.Name, v.Value)
			}
		case "mcp.readonly", "mcp.destructive":
			if v.Value != "false" {
				t.Errorf("%s = %s", v.Name, v.Value)
			}
		}
	}
	// A typo is a load error.
	if _, err := LoadSources(LoadOptions{}, Source{Name: "x.yaml", Data: []byte("name: x\ndefault: deny\nrules:\n  - name: r\n    when: mcp.tol == \"x\"\n    action: deny\n")}); err == nil {
		t.Fatal("mcp.tol loaded")
	}
}

// MayAllow is false only when every value of the unknown variables is
// denied.
func TestMayAllow(t *testing.T) {
	s := mustLoad(t, mcpPolicy)
	unknown := []string{"gcp.project", "gcp.resource", "mcp.arguments"}
	call := func(tool, method string, readonly, destructive bool, groups ...string) Input {
		return Input{
			Identity: identity.Identity{Subject: "bot", Groups: groups},
			GCP:      gcp.Operation{Service: "compute", Method: method},
			MCP:      MCP{Server: "compute", Method: "tools/call", Tool: tool, Name: tool, ReadOnly: readonly, Destructive: destructive},
		}
	}
	for _, tc := range []struct {
		name string
		in   Input
		want bool
	}{
		{"a certain deny rule", call("launch_rockets", "", false, true, "sre"), false},
		{"a deny that depends on an unknown project", call("delete_instance", "compute.instances.delete", false, true, "sre"), true},
		{"no rule can allow, default deny", call("delete_instance", "compute.instances.delete", false, true), false},
		{"an allow that depends on unknown arguments", call("list_instances", "compute.instances.list", true, false), true},
		{"an approve rule that holds", call("stop_instance", "compute.instances.stop", false, true, "sre"), true},
	} {
		got, err := s.MayAllow(context.Background(), tc.in, unknown)
		if err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("%s: MayAllow = %v", tc.name, got)
		}
	}
	// A policy that cannot apply leaves nothing to allow; one whose match
	// is unknown may apply.
	only := mustLoad(t, "name: p\nmatch: gcp.project == \"acme-dev\"\ndefault: allow\n")
	if ok, _ := only.MayAllow(context.Background(), Input{GCP: gcp.Operation{Project: "acme-prod"}}, nil); ok {
		t.Error("no applicable policy, yet allowed")
	}
	if ok, _ := only.MayAllow(context.Background(), Input{}, []string{"gcp.project"}); !ok {
		t.Error("an unknown match must count as possibly applying")
	}
	if _, err := s.MayAllow(context.Background(), Input{}, []string{"gcp.nope"}); err == nil {
		t.Error("an unknown variable name was accepted")
	}
	// A deny rule that fails at run time counts as matched.
	failing := mustLoad(t, "name: p\ndefault: allow\nrules:\n  - name: d\n    when: request.body.x == 1\n    action: deny\n")
	if ok, _ := failing.MayAllow(context.Background(), Input{Request: Request{BodyError: "cut"}}, nil); ok {
		t.Error("a failing deny rule did not deny")
	}
	// With the same inputs and no unknowns MayAllow agrees with Evaluate.
	for _, in := range []Input{call("launch_rockets", "", false, true, "sre"), call("stop_instance", "compute.instances.stop", false, true, "sre"), call("delete_instance", "compute.instances.delete", false, true)} {
		in.GCP.Project = "acme-prod"
		got, _ := s.MayAllow(context.Background(), in, nil)
		if want := s.Evaluate(context.Background(), in).Action != Deny; got != want {
			t.Errorf("%s: MayAllow %v, Evaluate allows %v", in.MCP.Tool, got, want)
		}
	}
}
