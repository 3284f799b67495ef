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
	got := fmt.Sprintf("%s by default of policy %s", r.Got.Action, r.Got.Policy)
	switch {
	case r.Got.Policy == "":
		got = fmt.Sprintf("%s (%s)", r.Got.Action, r.Got.Message)
	case r.Got.Rule != "":
		got = fmt.Sprintf("%s by policy %s rule %s", r.Got.Action, r.Got.Policy, r.Got.Rule)
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
		res.Passed = !tc.ExpectInvalid && res.Got.Action == tc.Expect && (tc.ExpectRule == "" || res.Got.Rule == tc.ExpectRule)
		out = append(out, res)
	}
	return out
}
