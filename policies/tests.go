package policies

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/identity"
)

// TestCase is one entry of a policy's `tests:` list.
type TestCase struct {
	// File and Policy say where the test is declared; Name is its name.
	File, Policy, Name string
	// Method and URL are the request; Method is upper case.
	Method, URL string
	Headers     map[string]string
	// Body is the raw request body (a YAML mapping is written as JSON).
	Body     string
	Identity identity.Identity
	Session  string
	// Expect is the action the whole set must decide.
	Expect Action
	// ExpectInvalid is set by `expect: invalid`: the gateway must refuse
	// the request before any policy sees it (INVALID_REQUEST), as it does
	// an ambiguous path or an operation it cannot recognise.
	ExpectInvalid bool
	// ExpectRule, when set, is the rule that must decide.
	ExpectRule string
	// Line is where the test starts in File.
	Line int
	// Resources is the world the test assumes for resource.* and for
	// resolving gcp.project; nil assumes an empty world (nothing exists).
	Resources *TestResources
}

// TestResources declares what Google holds, for a test.
type TestResources struct {
	Projects []TestProject
	Folders  []TestFolder
	Buckets  []TestBucket
	Targets  []TestTarget
}

// TestProject is a project; Parent is folders/ID or organizations/ID, and
// Tags map namespaced or short keys to values.
type TestProject struct {
	ID, Number, Name, Parent string
	Labels, Tags             map[string]string
}

// TestFolder is a folder (folders/ID) or an organization (organizations/ID).
type TestFolder struct {
	ID, Name, Parent string
}

// TestBucket is a Cloud Storage bucket of a project (id or number).
type TestBucket struct {
	Name, Project string
	Labels        map[string]string
}

// TestTarget is an instance, disk, secret or Cloud SQL instance by its
// resource path (projects/P/zones/Z/instances/I, projects/P/secrets/S...).
type TestTarget struct {
	Name   string
	Labels map[string]string
}

// InputBuilder turns a test case into the Input the request pipeline would
// build for it (operation recognition included). For a request the gateway
// refuses before policy it returns an error wrapping ErrRefusedBeforePolicy.
type InputBuilder func(ctx context.Context, tc TestCase) (Input, error)

// ErrRefusedBeforePolicy marks an InputBuilder error for a request that the
// gateway refuses before any policy sees it; `expect: invalid` expects it.
var ErrRefusedBeforePolicy = errors.New("refused before policy")

// TestResult is the outcome of one test case.
type TestResult struct {
	Case   TestCase
	Passed bool
	Got    Decision
	// Refused is the gateway's refusal when it refuses the request before
	// policy; Got is then empty.
	Refused error
	Err     error
}

// Failure explains a failed result in one sentence; empty when it passed.
func (r TestResult) Failure() string {
	if r.Passed {
		return ""
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	if r.Refused != nil {
		why := strings.TrimPrefix(r.Refused.Error(), ErrRefusedBeforePolicy.Error()+": ")
		return fmt.Sprintf("expected %s, but the gateway refuses the request before policy: %s", r.Case.want(), why)
	}
	got := fmt.Sprintf("%s by %s", r.Got.Action, decidersText(r.Got))
	if r.Got.Policy == "" {
		got = fmt.Sprintf("%s (%s)", r.Got.Action, r.Got.Message)
	}
	return fmt.Sprintf("expected %s, got %s", r.Case.want(), got)
}

// want says what the test expects, in words.
func (tc TestCase) want() string {
	if tc.ExpectInvalid {
		return "a refusal before policy (invalid)"
	}
	want := tc.Expect.String()
	if tc.ExpectRule != "" {
		want += " by rule " + tc.ExpectRule
	}
	return want
}

// String names the test and its place: "file:line: policy P test T".
func (tc TestCase) String() string {
	return fmt.Sprintf("%s:%d: policy %s test %q", tc.File, tc.Line, tc.Policy, tc.Name)
}

// RunTests runs every test case of the set against the whole set, as the
// gateway would decide the request.
func (s *Set) RunTests(ctx context.Context, build InputBuilder) []TestResult {
	out := make([]TestResult, 0, len(s.tests))
	for _, tc := range s.tests {
		res := TestResult{Case: tc}
		in, err := build(ctx, tc)
		switch {
		case errors.Is(err, ErrRefusedBeforePolicy):
			res.Refused = err
			res.Passed = tc.ExpectInvalid
			out = append(out, res)
			continue
		case err != nil:
			res.Err = fmt.Errorf("policies: %s: build input: %w", tc, err)
			out = append(out, res)
			continue
		}
		res.Got = s.Evaluate(ctx, in)
		if res.Got.Refused() {
			res.Err = fmt.Errorf("expected %s, but the gateway answers UNAVAILABLE: a policy needs %s (declare resources: for the test, or guard the read with resource.available)", tc.want(), res.Got.Unavailable)
			out = append(out, res)
			continue
		}
		res.Passed = !tc.ExpectInvalid && res.Got.Action == tc.Expect && (tc.ExpectRule == "" || DecidedBy(res.Got, tc.ExpectRule))
		out = append(out, res)
	}
	return out
}

// DecidedBy reports whether rule (a rule name, or "policy/rule") is among
// the rules that produced d.
func DecidedBy(d Decision, rule string) bool {
	pol, name, qualified := strings.Cut(rule, "/")
	for _, m := range d.Deciders {
		if m.Rule == "" {
			continue
		}
		if qualified && m.Policy == pol && m.Rule == name || !qualified && m.Rule == rule {
			return true
		}
	}
	return false
}

// decidersText names what produced d: "rule R of policy P", "rules P/A and
// Q/B", "default of policy P".
func decidersText(d Decision) string {
	var rules, defaults []string
	for _, m := range d.Deciders {
		if m.Rule != "" {
			rules = append(rules, m.Policy+"/"+m.Rule)
		} else {
			defaults = append(defaults, m.Policy)
		}
	}
	switch {
	case len(rules) == 1:
		pol, name, _ := strings.Cut(rules[0], "/")
		return fmt.Sprintf("rule %s of policy %s", name, pol)
	case len(rules) > 1:
		return "rules " + strings.Join(rules, ", ")
	case len(defaults) > 1:
		return "default of policies " + strings.Join(defaults, ", ")
	case len(defaults) == 1:
		return "default of policy " + defaults[0]
	}
	if d.Rule != "" {
		return fmt.Sprintf("rule %s of policy %s", d.Rule, d.Policy)
	}
	return "default of policy " + d.Policy
}
