package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

func runPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: airlock policy test|lint|explain PATH...")
		return 2
	}
	sub, rest := args[0], args[1:]
	if sub == "explain" {
		return runPolicyExplain(ctx, rest, stdout, stderr)
	}
	fl := flag.NewFlagSet("policy "+sub, flag.ContinueOnError)
	fl.SetOutput(stderr)
	verbose := fl.Bool("v", false, "list every test, not only failures")
	domains := fl.String("gateway-domain", "", "a gateway domain to recognise, as in gateway.domains")
	unrecognised := fl.String("unrecognised", "refuse", "what the gateway does with an operation it cannot recognise, as in authz.unrecognised: refuse | policy")
	if err := fl.Parse(rest); err != nil {
		return 2
	}
	paths := fl.Args()
	if len(paths) == 0 {
		fmt.Fprintf(stderr, "usage: airlock policy %s PATH...\n", sub)
		return 2
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
	fmt.Fprintf(stderr, "airlock policy: unknown subcommand %q (test or lint)\n", sub)
	return 2
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
