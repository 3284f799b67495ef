package policies

import (
	"context"
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
// build for it (operation recognition included).
type InputBuilder func(ctx context.Context, tc TestCase) (Input, error)

// TestResult is the outcome of one test case.
type TestResult struct {
	Case   TestCase
	Passed bool
	Got    Decision
	Err    error
}

// Failure explains a failed result in one sentence; empty when it passed.
func (r TestResult) Failure() string {
	if r.Passed {
		return ""
	}
	if r.Err != nil {
		return r.Err.Error()
	}
	got := fmt.Sprintf("%s by %s", r.Got.Action, decidersText(r.Got))
	if r.Got.Policy == "" {
		got = fmt.Sprintf("%s (%s)", r.Got.Action, r.Got.Message)
	}
	want := r.Case.Expect.String()
	if r.Case.ExpectRule != "" {
		want += " by rule " + r.Case.ExpectRule
	}
	return fmt.Sprintf("expected %s, got %s", want, got)
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
		if err != nil {
			res.Err = fmt.Errorf("policies: %s: build input: %w", tc, err)
			out = append(out, res)
			continue
		}
		res.Got = s.Evaluate(ctx, in)
		res.Passed = res.Got.Action == tc.Expect && (tc.ExpectRule == "" || DecidedBy(res.Got, tc.ExpectRule))
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
