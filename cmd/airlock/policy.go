package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

const policyUsage = `usage: airlock policy <command> [flags] PATH...

Commands:
  test PATH...                 run the tests: blocks of the policy files
  lint PATH...                 load and type-check the policy files; check method names
  explain --url URL PATH...    decide one request offline and show every variable and rule

PATH is a policy file or a directory of them. Run "airlock policy COMMAND -h"
for the flags of a command.
`

const policyTestUsage = `usage: airlock policy test [-v] [flags] PATH...

Loads the policy files and runs their tests: blocks.

Exit status: 0 every test passed, 1 a test failed, a file does not load or
there are no tests, 2 usage error.
`

const policyLintUsage = `usage: airlock policy lint [flags] PATH...

Loads and type-checks the policy files and checks every method name they
compare gcp.method with against the operations airlock knows.

Exit status: 0 no problem, 1 problems found (each printed as file:line:column),
2 usage error.
`

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if code, done := groupUsage(args, policyUsage, stdout, stderr); done {
		return code
	}
	sub, rest := args[0], args[1:]
	var usage string
	switch sub {
	case "explain":
		return runPolicyExplain(ctx, rest, stdout, stderr)
	case "test":
		usage = policyTestUsage
	case "lint":
		usage = policyLintUsage
	default:
		fmt.Fprintf(stderr, "airlock policy: unknown command %q\n\n%s", sub, policyUsage)
		return exitUsage
	}
	fl := newFlagSet("policy "+sub, usage, stderr)
	verbose := fl.Bool("v", false, "list every test, not only failures")
	domains := fl.String("gateway-domain", "", "a gateway domain to recognise, as in gateway.domains")
	unrecognised := fl.String("unrecognised", "refuse", "what the gateway does with an operation it cannot recognise, as in authz.unrecognised: refuse | policy")
	paths, code, ok := parseFlags(fl, rest, stdout)
	if !ok {
		return code
	}
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "airlock policy %s: no PATH: name policy files or directories\n", sub)
		return exitUsage
	}
	set, err := policies.LoadWith(policyLoadOptions(), paths...)
	if err != nil {
		var le *policies.LoadError
		if errors.As(err, &le) {
			for _, p := range le.Problems {
				fmt.Fprintln(stderr, p.String())
			}
			fmt.Fprintf(stderr, "%d problem(s)\n", len(le.Problems))
		} else {
			fmt.Fprintln(stderr, err)
		}
		return 1
	}
	switch sub {
	case "lint":
		problems := lintMethods(set, gcp.DefaultCatalog())
		for _, p := range problems {
			fmt.Fprintln(stderr, p.String())
		}
		if len(problems) > 0 {
			fmt.Fprintf(stderr, "%d problem(s)\n", len(problems))
			return 1
		}
		fmt.Fprintf(stdout, "ok: %d policies, %d tests in %d files\n", set.Len(), len(set.Tests()), len(set.Files()))
		return 0
	case "test":
		var gw []string
		if *domains != "" {
			gw = []string{*domains}
		}
		mode, err := authz.ParseUnrecognised(*unrecognised)
		if err != nil {
			fmt.Fprintln(stderr, "airlock policy test: -unrecognised must be refuse or policy")
			return 2
		}
		results := set.RunTests(ctx, authz.TestInputBuilderFor(gcp.NewRecognizer(gcp.DefaultCatalog(), gw), mode))
		failed := 0
		for _, r := range results {
			if !r.Passed {
				failed++
				fmt.Fprintf(stdout, "FAIL %s: %s\n", r.Case, r.Failure())
			} else if *verbose {
				fmt.Fprintf(stdout, "ok   %s\n", r.Case)
			}
		}
		fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
		if failed > 0 || len(results) == 0 {
			if len(results) == 0 {
				fmt.Fprintln(stderr, "no tests: add a tests: block to the policies")
			}
			return 1
		}
		return 0
	}
	return exitUsage // not reached: sub is test or lint
}

// lintMethods checks every string a policy compares gcp.method with against
// the catalog: a rule on a method that does not exist never matches, and a
// deny rule that never matches is a hole.
func lintMethods(set *policies.Set, c *gcp.Catalog) []policies.Problem {
	var out []policies.Problem
	for _, lit := range set.MethodLiterals() {
		p := lit.At
		switch lit.Kind {
		case "exact":
			if lit.Value == "" || c.HasMethod(lit.Value) {
				continue
			}
			p.Msg = fmt.Sprintf("gcp.method is compared with %q, which is no method airlock knows", lit.Value)
			if s := c.SuggestMethod(lit.Value); s != "" {
				p.Msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
		default:
			if c.MatchesAnyMethod(lit.Value, lit.Kind) {
				continue
			}
			p.Msg = fmt.Sprintf("no method airlock knows has the %s %q, so this comparison with gcp.method is never true", lit.Kind, lit.Value)
		}
		out = append(out, p)
	}
	return out
}
