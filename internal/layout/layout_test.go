// Package layout holds the import rules between airlock's packages as a
// test, so that they stay true.
package layout

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/airlockhq/airlock/"

// rules: a package and what must never be among its dependencies.
var rules = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"handoff", []string{module + "authz", module + "policies", module + "approvals", module + "recorder", module + "extproc", module + "gcp", module + "identity", module + "config"},
		"the contract between the decision and the filters is a leaf (beside masking, whose rules it carries)"},
	{"masking", []string{module}, "the masker is a leaf: it knows bytes, not requests"},
	{"extproc", []string{module + "authz", module + "policies", module + "approvals", module + "recorder", module + "config", "github.com/google/cel-go", "github.com/redis/go-redis"},
		"ext_proc applies what the decision handed on; it does not decide"},
	{"recorder", []string{module + "authz", module + "policies", module + "approvals", module + "extproc", module + "config", module + "identity", "github.com/google/cel-go"},
		"the recorder writes what it is given (it is handed its Redis client)"},
	{"identity", []string{module + "authz", module + "policies", module + "approvals", module + "recorder", module + "extproc"},
		"identity verifies tokens, below every decision"},
	{"authz", []string{"google.golang.org/grpc", "github.com/envoyproxy/go-control-plane", module + "extauthz", module + "extproc", module + "recorder"},
		"the decision knows no gRPC or Envoy types; the servers translate"},
	{"policies", []string{"google.golang.org/grpc", module + "approvals", module + "recorder", module + "authz"},
		"the policy language evaluates; it does not hold, record or serve"},
	{"gcp", []string{module + "authz", module + "policies", module + "approvals", module + "recorder", module + "extproc", module + "identity"},
		"recognition reads requests, below every decision"},
}

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", module+pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestImportRules(t *testing.T) {
	for _, r := range rules {
		for _, d := range deps(t, r.pkg) {
			if d == module+r.pkg || strings.HasPrefix(d, module+r.pkg+"/") {
				continue
			}
			for _, f := range r.forbidden {
				if d == strings.TrimSuffix(f, "/") || strings.HasPrefix(d, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(d, f+"/") || d == f) {
					t.Errorf("%s depends on %s: %s", r.pkg, d, r.why)
				}
			}
		}
	}
}
