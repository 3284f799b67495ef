package policies

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
)

func mustLoad(t testing.TB, docs ...string) *Set {
	t.Helper()
	srcs := make([]Source, len(docs))
	for i, d := range docs {
		srcs[i] = Source{Name: fmt.Sprintf("%02d.yaml", i), Data: []byte(d)}
	}
	s, err := LoadSources(LoadOptions{}, srcs...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// flags builds an Input whose identity groups are the given words, so that
// rules can test `"x" in identity.groups`.
func flags(words ...string) Input {
	return Input{
		Request:  Request{Method: "GET", Host: "compute.googleapis.com", Path: "/compute/v1/projects/p"},
		Identity: identity.Identity{Subject: "bot", Groups: words},
		GCP:      gcp.Operation{Service: "compute", Method: "compute.projects.get", Project: "p", ReadOnly: true},
	}
}

const threeRules = `name: p
default: deny
rules:
  - name: d
    when: '"d" in identity.groups'
    action: deny
    message: no d
  - name: a
    when: '"a" in identity.groups'
    action: approve
    approvers: [group:sre]
    grant: window
    ttl: 10m
  - name: l
    when: '"l" in identity.groups'
    action: allow
`

func TestEvaluateStrongestRuleWins(t *testing.T) {
	set := mustLoad(t, threeRules)
	tests := []struct {
		groups           []string
		action           Action
		rule, msg        string
		approvalApprover string
	}{
		{[]string{"l", "a", "d"}, Deny, "d", "no d", ""},
		{[]string{"l", "a"}, Approve, "a", "approval required by rule a of policy p", "group:sre"},
		{[]string{"l"}, Allow, "l", "allowed by rule l of policy p", ""},
		{nil, Deny, "", "denied by default of policy p", ""},
	}
	for _, tt := range tests {
		for _, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
			d := fn(context.Background(), flags(tt.groups...))
			if d.Action != tt.action || d.Policy != "p" || d.Rule != tt.rule || d.Message != tt.msg {
				t.Errorf("groups %v: got %s %s/%s %q, want %s p/%s %q", tt.groups, d.Action, d.Policy, d.Rule, d.Message, tt.action, tt.rule, tt.msg)
			}
			if tt.approvalApprover != "" {
				if d.Approval == nil || d.Approval.Approvers[0] != tt.approvalApprover || d.Approval.Grant != "window" || d.Approval.TTL != 10*time.Minute || d.Approval.MinApprovals != 1 {
					t.Errorf("groups %v: approval %+v", tt.groups, d.Approval)
				}
			} else if d.Approval != nil {
				t.Errorf("groups %v: unexpected approval %+v", tt.groups, d.Approval)
			}
		}
	}
	// Explain lists every match in file order; Evaluate stops at the deny.
	d := set.Explain(context.Background(), flags("l", "a", "d"))
	want := []Match{{Policy: "p", Rule: "d", Action: Deny}, {Policy: "p", Rule: "a", Action: Approve}, {Policy: "p", Rule: "l", Action: Allow}}
	if !reflect.DeepEqual(d.Matches, want) {
		t.Errorf("explain matches = %+v", d.Matches)
	}
	d = set.Evaluate(context.Background(), flags("l", "a", "d"))
	if !reflect.DeepEqual(d.Matches, want[:1]) {
		t.Errorf("evaluate matches = %+v", d.Matches)
	}
	d = set.Explain(context.Background(), flags())
	if !reflect.DeepEqual(d.Matches, []Match{{Policy: "p", Action: Deny}}) {
		t.Errorf("default match = %+v", d.Matches)
	}
}

func TestEvaluateAcrossPolicies(t *testing.T) {
	rulePolicy := func(name, def, action string) string {
		extra := ""
		if action == "approve" {
			extra = "    approvers: [user:a@example.com]\n"
		}
		return fmt.Sprintf("name: %s\ndefault: %s\nrules:\n  - name: r\n    when: '\"%s\" in identity.groups'\n    action: %s\n%s",
			name, def, name, action, extra)
	}
	tests := []struct {
		name     string
		policies []string
		groups   []string
		want     string // action policy/rule
	}{
		{"later approve beats earlier allow", []string{rulePolicy("p1", "allow", "allow"), rulePolicy("p2", "allow", "approve")}, []string{"p1", "p2"}, "approve p2/r"},
		{"first of equal denies decides", []string{rulePolicy("p1", "allow", "deny"), rulePolicy("p2", "allow", "deny")}, []string{"p1", "p2"}, "deny p1/r"},
		{"first of equal allows decides", []string{rulePolicy("p1", "allow", "allow"), rulePolicy("p2", "allow", "allow")}, []string{"p1", "p2"}, "allow p1/r"},
		{"default deny beats allow rule", []string{rulePolicy("p1", "allow", "allow"), rulePolicy("p2", "deny", "allow")}, []string{"p1"}, "deny p2/"},
		{"allow rule avoids own default deny", []string{rulePolicy("p1", "approve", "deny"), rulePolicy("p2", "deny", "allow")}, []string{"p2"}, "approve p1/"},
		{"default approve then later deny", []string{rulePolicy("p1", "approve", "deny"), rulePolicy("p2", "allow", "deny")}, []string{"p2"}, "deny p2/r"},
		{"an approve rule reports over an earlier default approve", []string{rulePolicy("p1", "approve", "allow"), rulePolicy("p2", "deny", "approve")}, []string{"p2"}, "approve p2/r"},
		{"a deny rule reports over an earlier default deny", []string{rulePolicy("p1", "deny", "allow"), rulePolicy("p2", "allow", "deny")}, []string{"p2"}, "deny p2/r"},
		{"default deny after approve", []string{rulePolicy("p1", "allow", "approve"), rulePolicy("p2", "deny", "allow")}, []string{"p1"}, "deny p2/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.policies {
				if strings.Contains(tt.policies[i], "default: approve") {
					tt.policies[i] += "approvers: [group:sre]\n"
				}
			}
			set := mustLoad(t, tt.policies...)
			for _, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
				d := fn(context.Background(), flags(tt.groups...))
				if got := fmt.Sprintf("%s %s/%s", d.Action, d.Policy, d.Rule); got != tt.want {
					t.Errorf("got %s, want %s (matches %+v)", got, tt.want, d.Matches)
				}
			}
		})
	}
}

func TestNoPolicyApplies(t *testing.T) {
	set := mustLoad(t, "name: p\nmatch: request.host == \"storage.googleapis.com\"\ndefault: allow\n")
	for _, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
		d := fn(context.Background(), flags())
		if d.Action != Deny || d.Message != "no policy applies to this request" || d.Policy != "" || len(d.Matches) != 0 {
			t.Errorf("decision = %+v", d)
		}
	}
	in := flags()
	in.Request.Host = "storage.googleapis.com"
	if d := set.Evaluate(context.Background(), in); d.Action != Allow || d.Message != "allowed by default of policy p" {
		t.Errorf("decision = %+v", d)
	}
}

func TestEvaluationErrorsFailClosed(t *testing.T) {
	set := mustLoad(t, `name: p
default: allow
rules:
  - name: tier-check
    when: identity.claims["tier"] > 2
    action: allow
  - name: body-check
    when: request.body.force == true
    action: deny
    message: forced deletes are not allowed
`, `name: q
match: identity.claims["team"] == "x"
default: approve
approvers: [group:sre]
`)
	for i, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
		d := fn(context.Background(), flags())
		if d.Action != Deny || d.Rule != "body-check" || !strings.HasPrefix(d.Message, "forced deletes are not allowed (the rule could not be evaluated: ") {
			t.Errorf("decision = %+v", d)
		}
		var errs []string
		for _, m := range d.Matches {
			if m.Error != "" {
				errs = append(errs, m.Rule+": "+m.Error)
			}
		}
		// Evaluate stops at the failed deny rule; Explain also lists the
		// failed allow rule, which did not count.
		want := []string{"body-check: no such key: force"}
		if i == 1 {
			want = []string{"tier-check: no such key: tier", "body-check: no such key: force"}
		}
		if !reflect.DeepEqual(errs, want) {
			t.Errorf("match errors = %q", errs)
		}
	}
	// With a body the deny rule evaluates; the failing allow rule does not
	// count, so policy p falls to its default and q (match failed: applies) holds it.
	in := flags()
	in.Request.Body = map[string]any{"force": false}
	d := set.Explain(context.Background(), in)
	if d.Action != Approve || d.Policy != "q" || d.Rule != "" || d.Approval == nil || d.Approval.Approvers[0] != "group:sre" {
		t.Errorf("decision = %+v", d)
	}
}

func TestMasking(t *testing.T) {
	set := mustLoad(t, `name: p
default: allow
masking:
  - name: always
    detectors: [private_key]
  - name: iam
    when: gcp.service == "iam"
    fields: ["**.privateKeyData"]
  - name: broken
    when: identity.claims["x"] == 1
    fields: [a]
`, `name: q
match: gcp.service == "storage"
default: allow
masking:
  - name: never
    fields: [b]
`)
	for _, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
		d := fn(context.Background(), flags())
		var names []string
		for _, m := range d.Masking {
			names = append(names, m.Policy+"/"+m.Name)
		}
		if got := strings.Join(names, ","); got != "p/always,p/broken" {
			t.Errorf("masking = %s", got)
		}
	}
}

func TestContextEndedFailsClosed(t *testing.T) {
	set := mustLoad(t, "name: p\ndefault: allow\n")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, fn := range []func(context.Context, Input) Decision{set.Evaluate, set.Explain} {
		d := fn(ctx, flags())
		if d.Action != Deny || d.Message != "policy evaluation did not finish before the request ended (context canceled); denied to fail closed" {
			t.Errorf("decision = %+v", d)
		}
	}
}

func TestVariables(t *testing.T) {
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	in := Input{
		Request: Request{
			Method: "POST", Host: "compute.googleapis.com", Path: "/compute/v1/projects/acme-prod/zones/z/instances/i/stop",
			Query: map[string][]string{"requestId": {"r1", "r2"}}, Headers: map[string]string{"user-agent": "gcloud/500"},
			Body: map[string]any{"labels": map[string]any{"team": "web"}, "count": float64(3), "items": []any{"a", "b"}},
		},
		Identity: identity.Identity{Subject: "bot-1", Email: "bot@example.com", Issuer: "https://issuer", Groups: []string{"ai-agents"},
			Actor: "agent-7", Claims: map[string]any{"tier": float64(3), "act": map[string]any{"sub": "agent-7"}}},
		GCP: gcp.Operation{Service: "compute", Version: "v1", Method: "compute.instances.stop", Project: "acme-prod", Location: "z",
			Resource: "projects/acme-prod/zones/z/instances/i", ReadOnly: false, LongRunning: true, Params: map[string]string{"instance": "i"}},
		SessionID: "s-1",
		Now:       now,
	}
	exprs := []string{
		`request.method == "POST"`,
		`request.host == "compute.googleapis.com"`,
		`request.path.endsWith("/stop")`,
		`request.query["requestId"] == ["r1", "r2"]`,
		`request.headers["user-agent"].startsWith("gcloud/")`,
		`request.body.labels.team == "web" && request.body.count == 3 && size(request.body.items) == 2`,
		`identity.subject == "bot-1" && identity.email == "bot@example.com" && identity.issuer == "https://issuer"`,
		`identity.groups == ["ai-agents"] && identity.actor == "agent-7"`,
		`identity.claims.tier == 3 && identity.claims.act.sub == "agent-7"`,
		`gcp.service == "compute" && gcp.version == "v1" && gcp.method == "compute.instances.stop"`,
		`gcp.project == "acme-prod" && gcp.location == "z" && gcp.resource.endsWith("/instances/i")`,
		`!gcp.readonly && gcp.long_running && gcp.params["instance"] == "i"`,
		`session.id == "s-1"`,
		`now == timestamp("2026-03-04T05:06:07Z") && now.getHours() == 5`,
		`"acme-prod".split("-")[1] == "prod" && "a,b".split(",").distinct() == ["a", "b"]`,
		`identity.groups.exists(g, g.startsWith("ai-"))`,
		`cel.bind(p, gcp.project, p.endsWith("-prod"))`,
		`request.query.all(k, v, size(v) == 2)`,
	}
	for _, e := range exprs {
		src := fmt.Sprintf("name: p\ndefault: deny\nrules:\n  - name: r\n    when: '%s'\n    action: allow\n", strings.ReplaceAll(e, "'", "''"))
		set, err := LoadSources(LoadOptions{}, Source{Name: "p.yaml", Data: []byte(src)})
		if err != nil {
			t.Errorf("%s: %v", e, err)
			continue
		}
		if d := set.Explain(context.Background(), in); d.Action != Allow || d.Matches[0].Error != "" {
			t.Errorf("%s: %+v", e, d)
		}
	}
	// Zero values: nil maps and body are empty, not errors.
	set := mustLoad(t, `name: p
default: deny
rules:
  - name: r
    when: >-
      size(request.query) == 0 && size(request.headers) == 0 && request.body == null &&
      size(identity.claims) == 0 && size(gcp.params) == 0 && size(identity.groups) == 0 &&
      now > timestamp("2020-01-01T00:00:00Z")
    action: allow
`)
	if d := set.Explain(context.Background(), Input{}); d.Action != Allow {
		t.Errorf("zero input: %+v", d)
	}
}

// TestEvaluateAgreesWithExplain checks the fast path against the full
// evaluation on every combination of a few inputs over a mixed set.
func TestEvaluateAgreesWithExplain(t *testing.T) {
	set := mustLoad(t, `name: guard
match: request.host.endsWith(".googleapis.com")
default: allow
rules:
  - name: no-delete
    when: gcp.method in ["compute.instances.delete", "storage.buckets.delete"] && gcp.project.endsWith("-prod")
    action: deny
  - name: broken-deny
    when: gcp.method == "x.broken" && identity.claims["nope"] == 1
    action: deny
  - name: prod-writes
    when: '!gcp.readonly && gcp.project.endsWith("-prod")'
    action: approve
    approvers: [group:sre]
  - name: secret
    when: gcp.method == "secretmanager.projects.secrets.versions.access"
    action: approve
    approvers: [group:security]
  - name: storage-writes
    when: gcp.service == "storage" && !gcp.readonly
    action: approve
    approvers: [group:storage]
  - name: compute-prod-reads
    when: gcp.service in ["compute", "x"] && gcp.readonly && gcp.project.endsWith("-prod") && !("sre" in identity.groups)
    action: deny
`, `name: access
default: deny
rules:
  - name: reads
    when: '"ai-agents" in identity.groups && gcp.readonly'
    action: allow
  - name: dev-writes
    when: '"ai-agents" in identity.groups && !gcp.readonly && !gcp.project.endsWith("-prod")'
    action: allow
  - name: broken-allow
    when: identity.claims["level"] > 1
    action: allow
  - name: ops
    when: '"sre" in identity.groups'
    action: allow
  - name: storage-any
    when: gcp.service == "storage" && "ai-agents" in identity.groups
    action: allow
`, `name: other
match: gcp.service == "storage"
default: approve
approvers: [group:storage]
rules:
  - name: storage-reads
    when: gcp.readonly
    action: allow
`)
	methods := []string{"compute.instances.delete", "compute.instances.get", "storage.buckets.delete", "storage.objects.get", "secretmanager.projects.secrets.versions.access", "x.broken", ""}
	projects := []string{"acme-prod", "acme-dev"}
	groups := [][]string{nil, {"ai-agents"}, {"sre"}}
	hosts := []string{"compute.googleapis.com", "example.com"}
	n := 0
	for _, m := range methods {
		for _, p := range projects {
			for _, g := range groups {
				for _, h := range hosts {
					for _, ro := range []bool{true, false} {
						in := Input{Request: Request{Host: h}, Identity: identity.Identity{Groups: g},
							GCP: gcp.Operation{Method: m, Project: p, ReadOnly: ro, Service: strings.Split(m, ".")[0]}}
						fast := set.Evaluate(context.Background(), in)
						full := set.Explain(context.Background(), in)
						if fast.Action != full.Action || fast.Policy != full.Policy || fast.Rule != full.Rule || fast.Message != full.Message ||
							fast.Approval != full.Approval || !reflect.DeepEqual(fast.Masking, full.Masking) {
							t.Errorf("%+v:\nevaluate %s %s/%s %q\nexplain  %s %s/%s %q", in.GCP, fast.Action, fast.Policy, fast.Rule, fast.Message,
								full.Action, full.Policy, full.Rule, full.Message)
						}
						for _, fm := range fast.Matches {
							if !containsMatch(full.Matches, fm) {
								t.Errorf("%+v: evaluate match %+v not in explain %+v", in.GCP, fm, full.Matches)
							}
						}
						n++
					}
				}
			}
		}
	}
	if n != 168 {
		t.Fatalf("ran %d cases", n)
	}
}

func containsMatch(list []Match, m Match) bool {
	for _, x := range list {
		if x == m {
			return true
		}
	}
	return false
}

// slowLoop evaluates a loop of 25 million steps under ctx, and checks it
// was interrupted within limit: its rule then counts as matched, with the
// interruption as its error.
func slowLoop(t *testing.T, ctx context.Context, limit time.Duration) {
	t.Helper()
	set := mustLoad(t, `name: p
default: allow
rules:
  - name: slow
    when: lists.range(5000).all(i, lists.range(5000).all(j, i + j >= 0))
    action: deny
`)
	start := time.Now()
	d := set.Explain(ctx, flags())
	if elapsed := time.Since(start); elapsed > limit {
		t.Errorf("evaluation took %v (limit %v)", elapsed, limit)
	}
	if d.Action != Deny || len(d.Matches) == 0 || !strings.Contains(d.Matches[0].Error, "interrupted") {
		t.Errorf("decision = %+v", d)
	}
}

func TestLoopingExpressionStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	slowLoop(t, ctx, 2*time.Second)
}

// TestLoopingExpressionStopsAtTheDeadline: a loop over input ends soon
// after the context's deadline, through the shared interrupt contexts.
func TestLoopingExpressionStopsAtTheDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	slowLoop(t, ctx, time.Second)
}

// TestInterruptContextsAreShared: deadlines in the same 10 ms share one
// interrupt context, which ends no earlier than either; a context without
// a deadline is its own.
func TestInterruptContextsAreShared(t *testing.T) {
	base := time.Now().Add(time.Second).Truncate(interruptStep)
	a, cancelA := context.WithDeadline(context.Background(), base.Add(time.Millisecond))
	defer cancelA()
	b, cancelB := context.WithDeadline(context.Background(), base.Add(9*time.Millisecond))
	defer cancelB()
	c, cancelC := context.WithDeadline(context.Background(), base.Add(11*time.Millisecond))
	defer cancelC()
	ia, ib, ic := interruptFor(a), interruptFor(b), interruptFor(c)
	if ia != ib {
		t.Error("deadlines 8ms apart in one step got two interrupt contexts")
	}
	if ia == ic {
		t.Error("deadlines in two steps share an interrupt context")
	}
	for _, pair := range [][2]context.Context{{a, ia}, {b, ib}, {c, ic}} {
		want, _ := pair[0].Deadline()
		got, _ := pair[1].Deadline()
		if got.Before(want) || got.Sub(want) >= interruptStep {
			t.Errorf("interrupt deadline %v for a deadline of %v", got, want)
		}
	}
	plain := context.Background()
	if interruptFor(plain) != plain {
		t.Error("a context without a deadline was replaced")
	}
}

// TestOnlyLoopsOverInputWatchTheContext: a loop over a list written in
// the policy is not evaluated under the request's context (it cannot run
// long); one over request data, a function's result or another loop's
// variable is.
func TestOnlyLoopsOverInputWatchTheContext(t *testing.T) {
	for when, want := range map[string]bool{
		`gcp.project.startsWith("p")`:                                  false,
		`["-dev", "-test"].exists(s, gcp.project.endsWith(s))`:         false,
		`{"a": 1, "b": 2}.all(k, k != gcp.project)`:                    false,
		`[gcp.project].exists(p, p == "x")`:                            false,
		`identity.groups.exists(g, g == "sre")`:                        true,
		`request.headers.exists(k, k == "x")`:                          true,
		`lists.range(3).all(i, i >= 0)`:                                true,
		`[["a"], identity.groups].exists(l, l.exists(g, g == "sre"))`:  true,
		`["a", "b"].map(x, x + "!").exists(y, y == gcp.project + "!")`: true,
	} {
		set := mustLoad(t, "name: p\ndefault: allow\nrules:\n  - name: r\n    when: '"+when+"'\n    action: deny\n")
		if got := set.policies[0].rules[0].when.loops; got != want {
			t.Errorf("%s: watches the context %v, want %v", when, got, want)
		}
	}
}

func TestEvaluateConcurrently(t *testing.T) {
	set := mustLoad(t, threeRules)
	inputs := []struct {
		in   Input
		want string
	}{{flags("d"), "d"}, {flags("a"), "a"}, {flags("l"), "l"}, {flags(), ""}}
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 300; i++ {
				c := inputs[(g+i)%len(inputs)]
				if d := set.Evaluate(context.Background(), c.in); d.Rule != c.want {
					errs <- fmt.Sprintf("got rule %q, want %q", d.Rule, c.want)
					return
				}
			}
			errs <- ""
		}()
	}
	for g := 0; g < 8; g++ {
		if e := <-errs; e != "" {
			t.Error(e)
		}
	}
}

// Deciders name every explicit rule behind the outcome, across policies,
// and a policy's default only when no rule produced it: a guardrail policy
// with default deny beside the baseline does not hide the baseline's rule.
func TestDeciders(t *testing.T) {
	rulePolicy := func(name, def, action string) string {
		return fmt.Sprintf("name: %s\ndefault: %s\nrules:\n  - name: r\n    when: '\"%s\" in identity.groups'\n    action: %s\n", name, def, name, action)
	}
	tests := []struct {
		name     string
		policies []string
		groups   []string
		want     string
	}{
		{"guardrail default and a baseline rule", []string{rulePolicy("guardrails", "deny", "allow"), rulePolicy("baseline", "deny", "deny")}, []string{"baseline"}, "baseline/r"},
		{"two explicit denies", []string{rulePolicy("p1", "allow", "deny"), rulePolicy("p2", "allow", "deny")}, []string{"p1", "p2"}, "p1/r p2/r"},
		{"only defaults", []string{rulePolicy("p1", "deny", "allow"), rulePolicy("p2", "deny", "allow")}, nil, "p1/ p2/"},
		{"a default deny whose own allow rule matched is no decider", []string{rulePolicy("p1", "deny", "allow"), rulePolicy("p2", "deny", "allow")}, []string{"p2"}, "p1/"},
		{"two allows", []string{rulePolicy("p1", "deny", "allow"), rulePolicy("p2", "deny", "allow")}, []string{"p1", "p2"}, "p1/r p2/r"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set := mustLoad(t, tt.policies...)
			for name, fn := range map[string]func(context.Context, Input) Decision{"evaluate": set.Evaluate, "explain": set.Explain} {
				d := fn(context.Background(), flags(tt.groups...))
				var got []string
				for _, m := range d.Deciders {
					got = append(got, m.Policy+"/"+m.Rule)
				}
				if strings.Join(got, " ") != tt.want {
					t.Errorf("%s: deciders %v, want %s", name, got, tt.want)
				}
			}
		})
	}
}
