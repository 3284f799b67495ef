package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
)

const explainUsage = `usage: airlock policy explain --url URL [--method M] [--body JSON|@FILE] [--header "k: v"]...
         [--token T | --sub S --email E --groups a,b --actor A] [--resources FILE] PATH...

Decides one request offline against the policy files in PATH... and prints
every variable as the engine sees it (request, identity, gcp, resource),
the decision, the rules that produced it and every rule that matched.

--token reads the claims of a token without verifying it (explain decides
nothing for real). --resources is a YAML world in the form of a test's
resources: block (projects, folders, buckets, targets); without it nothing
exists. Exit status: 0 allowed, 3 denied, held for approval or refused
before policy, 1 on an error, 2 on a usage error.
`

// runPolicyExplain implements `airlock policy explain`.
func runPolicyExplain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("policy explain", explainUsage, stderr)
	method := fl.String("method", "GET", "HTTP method of the request")
	rawURL := fl.String("url", "", "full URL of the request, e.g. https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances")
	body := fl.String("body", "", "request body; @FILE reads a file")
	token := fl.String("token", "", "an OIDC token whose claims (read, not verified) are the identity")
	groupsClaim := fl.String("groups-claim", "groups", "the claim of --token holding the groups")
	sub := fl.String("sub", "", "identity subject (instead of --token)")
	email := fl.String("email", "", "identity e-mail")
	groups := fl.String("groups", "", "identity groups, comma-separated")
	actor := fl.String("actor", "", "the agent acting for the subject (act.sub)")
	world := fl.String("resources", "", "a YAML file declaring the projects, folders, buckets and targets that exist")
	domain := fl.String("gateway-domain", "", "a gateway domain to recognise, as in gateway.domains")
	unrecognised := fl.String("unrecognised", "refuse", "refuse | policy, as in authz.unrecognised")
	var headers headerFlags
	fl.Var(&headers, "header", `request header "name: value" (repeatable)`)
	paths, code, ok := parseFlags(fl, args, stdout)
	if !ok {
		return code
	}
	if *rawURL == "" || len(paths) == 0 {
		fmt.Fprintln(stderr, "airlock policy explain: --url and at least one PATH are required")
		fmt.Fprintln(stderr, "Run 'airlock policy explain -h' for usage.")
		return exitUsage
	}
	mode, err := authz.ParseUnrecognised(*unrecognised)
	if err != nil {
		fmt.Fprintln(stderr, "airlock policy explain: --unrecognised must be refuse or policy")
		return 2
	}
	set, err := policies.LoadWith(policyLoadOptions(), paths...)
	if err != nil {
		printLoadError(stderr, err)
		return 1
	}
	tc := policies.TestCase{Name: "explain", Method: strings.ToUpper(*method), URL: *rawURL, Headers: map[string]string{}}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, ":")
		if !ok {
			fmt.Fprintf(stderr, "airlock policy explain: --header %q is not \"name: value\"\n", h)
			return 2
		}
		tc.Headers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if tc.Body, err = readArg(*body); err != nil {
		fmt.Fprintln(stderr, "airlock policy explain: --body:", err)
		return 2
	}
	verified := "given on the command line"
	switch {
	case *token != "":
		if tc.Identity, err = claimsIdentity(*token, *groupsClaim); err != nil {
			fmt.Fprintln(stderr, "airlock policy explain: --token:", err)
			return 2
		}
		verified = "read from --token WITHOUT verifying its signature"
	default:
		tc.Identity = identity.Identity{Subject: *sub, Email: *email, Actor: *actor}
		if *groups != "" {
			tc.Identity.Groups = strings.Split(*groups, ",")
		}
	}
	if *world != "" {
		data, err := os.ReadFile(*world)
		if err != nil {
			fmt.Fprintln(stderr, "airlock policy explain: --resources:", err)
			return 2
		}
		if tc.Resources, err = policies.ParseResources(*world, data); err != nil {
			printLoadError(stderr, err)
			return 1
		}
	}
	var gw []string
	if *domain != "" {
		gw = []string{*domain}
	}
	in, err := authz.TestInputBuilderFor(gcp.NewRecognizer(gcp.DefaultCatalog(), gw), mode)(ctx, tc)
	fmt.Fprintf(stdout, "request:  %s %s\n", tc.Method, tc.URL)
	if err != nil {
		if errors.Is(err, policies.ErrRefusedBeforePolicy) {
			fmt.Fprintf(stdout, "decision: refused before policy (INVALID_REQUEST)\nwhy:      %s\n",
				strings.TrimPrefix(err.Error(), policies.ErrRefusedBeforePolicy.Error()+": "))
			return 3
		}
		errorf(stderr, "policy explain", "%v", err)
		return 1
	}
	fmt.Fprintf(stdout, "identity: %s\n\nvariables:\n", verified)
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, v := range policies.Describe(ctx, in) {
		val := v.Value
		if v.Error != "" {
			val = "error: " + v.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\n", v.Name, termSafe(val))
	}
	tw.Flush()
	d := set.Explain(ctx, in)
	fmt.Fprintf(stdout, "\ndecision: %s\n", d.Action)
	fmt.Fprintf(stdout, "message:  %s\n", termSafe(d.Message))
	if d.Unavailable != "" {
		fmt.Fprintf(stdout, "lookup:   %s (the gateway would answer UNAVAILABLE unless a rule that needed no lookup denied)\n", termSafe(d.Unavailable))
	}
	fmt.Fprintln(stdout, "decided by:")
	for _, m := range d.Deciders {
		fmt.Fprintf(stdout, "  %s\n", matchName(m))
	}
	fmt.Fprintln(stdout, "rules that matched (in file order):")
	for _, m := range d.Matches {
		line := fmt.Sprintf("  %-8s %s", m.Action, matchName(m))
		if m.Error != "" {
			line += "  (failed: " + termSafe(m.Error) + "; counts as matched for deny and approve)"
		}
		fmt.Fprintln(stdout, line)
	}
	if len(d.Masking) > 0 {
		fmt.Fprintln(stdout, "masking selected:")
		for _, m := range d.Masking {
			fmt.Fprintf(stdout, "  %s/%s fields %v detectors %v\n", m.Policy, m.Name, m.Fields, m.Detectors)
		}
	}
	if d.Action == policies.Allow && d.Unavailable == "" {
		return 0
	}
	return 3
}

func matchName(m policies.Match) string {
	if m.Rule == "" {
		return m.Policy + "/default"
	}
	return m.Policy + "/" + m.Rule
}

// readArg returns s, or the contents of the file it names with "@FILE".
func readArg(s string) (string, error) {
	if name, ok := strings.CutPrefix(s, "@"); ok {
		b, err := os.ReadFile(name)
		return string(b), err
	}
	return s, nil
}

// claimsIdentity reads a JWT's claims without verifying it.
func claimsIdentity(token, groupsClaim string) (identity.Identity, error) {
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(token), "Bearer "), ".")
	if len(parts) != 3 {
		return identity.Identity{}, errors.New("not a JWT (three dot-separated parts)")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return identity.Identity{}, errors.New("the claims are not base64url")
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return identity.Identity{}, errors.New("the claims are not a JSON object")
	}
	id := identity.Identity{Claims: claims}
	id.Subject, _ = claims["sub"].(string)
	id.Email, _ = claims["email"].(string)
	id.Issuer, _ = claims["iss"].(string)
	if act, ok := claims["act"].(map[string]any); ok {
		id.Actor, _ = act["sub"].(string)
	}
	switch g := claims[groupsClaim].(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	case string:
		id.Groups = strings.Fields(strings.ReplaceAll(g, ",", " "))
	}
	return id, nil
}

// printLoadError prints policy load problems, one per line.
func printLoadError(w io.Writer, err error) {
	var le *policies.LoadError
	if errors.As(err, &le) {
		for _, p := range le.Problems {
			fmt.Fprintln(w, p.String())
		}
		fmt.Fprintf(w, "%d problem(s)\n", len(le.Problems))
		return
	}
	fmt.Fprintln(w, err)
}
