package policies

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func loadOne(t *testing.T, src string) (*Set, error) {
	t.Helper()
	return LoadSources(LoadOptions{}, Source{Name: "p.yaml", Data: []byte(src)})
}

const okRules = `
default: deny
rules:
  - name: r
    when: gcp.readonly
    action: allow
`

func TestLoadErrors(t *testing.T) {
	builtin := func(name string) bool { return name == "private_key" || name == "email" }
	tests := []struct {
		name string
		src  string
		opts LoadOptions
		want string
	}{
		{"unknown top-level key", "name: p\ndefualt: deny\n",
			LoadOptions{},
			"policies: 2 problems:\n" +
				"p.yaml:2:1: unknown key \"defualt\" in policy (allowed: name, description, match, default, approvers, min_approvals, grant, ttl, rules, masking, detectors, tests)\n" +
				"p.yaml:1:1: policy p: policy is missing required key \"default\""},
		{"unknown rule key", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: allow\n    approver: [group:sre]\n",
			LoadOptions{},
			"policies: p.yaml:7:5: policy p: unknown key \"approver\" in rule (allowed: name, description, when, action, message, approvers, min_approvals, grant, ttl)"},
		{"CEL syntax error with column", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly && && true\n    action: allow\n",
			LoadOptions{},
			"policies: p.yaml:5:27: policy p rule r: when: Syntax error: extraneous input '&&' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}"},
		{"quoted expression column", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: '\"x\" in identity.grups'\n    action: allow\n",
			LoadOptions{},
			"policies: p.yaml:5:19: policy p rule r: when: unknown variable identity.grups (did you mean identity.groups?)"},
		{"typo in variable", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.methdo == \"x\"\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:11: policy p rule r: when: unknown variable gcp.methdo (did you mean gcp.method?)"},
		{"error in literal block", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: |\n      gcp.readonly &&\n        gcp.nope\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:7:9: policy p rule r: when: unknown variable gcp.nope"},
		{"error in folded block", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: >-\n      gcp.readonly &&\n      gcp.nope\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:11: policy p rule r: when: unknown variable gcp.nope (expression line 1, column 17)"},
		{"error in plain scalar over two lines", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly &&\n      gcp.nope\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:11: policy p rule r: when: unknown variable gcp.nope (expression line 1, column 17)"},
		{"type error", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.project == 1\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:23: policy p rule r: when: found no matching overload for '_==_' applied to '(string, int)'"},
		{"non-bool when", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.project\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:11: policy p rule r: when must be a bool expression, but it gives string"},
		{"non-bool match", "name: p\nmatch: request.body\ndefault: deny\n",
			LoadOptions{},
			"policies: p.yaml:2:8: policy p: match must be a bool expression, but it gives dyn"},
		{"duplicate rule names", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: allow\n  - name: r\n    when: gcp.readonly\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:7:11: policy p rule r: rule name already used at line 4"},
		{"missing default", "name: p\nrules: []\n",
			LoadOptions{},
			"policies: p.yaml:1:1: policy p: policy is missing required key \"default\""},
		{"missing name", "default: deny\n",
			LoadOptions{},
			"policies: p.yaml:1:1: policy is missing required key \"name\""},
		{"bad default", "name: p\ndefault: maybe\n",
			LoadOptions{},
			"policies: p.yaml:2:10: policy p: default must be allow, deny or approve, not \"maybe\""},
		{"bad action", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: permit\n",
			LoadOptions{},
			"policies: p.yaml:6:13: policy p rule r: action must be allow, deny or approve, not \"permit\""},
		{"approve without approvers", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: approve\n    ttl: 5m\n",
			LoadOptions{},
			"policies: p.yaml:4:5: policy p rule r: an approve rule needs approvers"},
		{"default approve without approvers", "name: p\ndefault: approve\n",
			LoadOptions{},
			"policies: p.yaml:2:10: policy p: default approve needs approvers"},
		{"approvers on allow rule", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: allow\n    approvers: [group:sre]\n",
			LoadOptions{},
			"policies: p.yaml:7:16: policy p rule r: approvers, min_approvals, grant and ttl apply only to approve rules"},
		{"bad approver", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: approve\n    approvers: [sre]\n",
			LoadOptions{},
			"policies: p.yaml:7:17: policy p rule r: approver \"sre\" must be group:NAME or user:EMAIL"},
		{"bad duration", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: approve\n    approvers: [group:sre]\n    ttl: 15 minutes\n",
			LoadOptions{},
			"policies: p.yaml:8:10: policy p rule r: ttl \"15 minutes\" is not a duration such as 15m or 1h"},
		{"bad grant and min_approvals", "name: p\ndefault: deny\nrules:\n  - name: r\n    when: gcp.readonly\n    action: approve\n    approvers: [group:sre]\n    grant: forever\n    min_approvals: 0\n",
			LoadOptions{},
			"policies: 2 problems:\n" +
				"p.yaml:9:20: policy p rule r: min_approvals must be at least 1\n" +
				"p.yaml:8:12: policy p rule r: grant must be once or window, not \"forever\""},
		{"bad regex", "name: p\ndefault: deny\ndetectors:\n  - name: acme\n    regex: 'acme_[a-z'\n",
			LoadOptions{},
			"policies: p.yaml:5:12: policy p: detector acme: bad regex: error parsing regexp: missing closing ]: `[a-z`"},
		{"unknown detector", "name: p\ndefault: deny\nmasking:\n  - name: m\n    detectors: [private_key, pan]\n",
			LoadOptions{KnownDetector: builtin},
			"policies: p.yaml:5:30: policy p: unknown detector \"pan\""},
		{"custom detector shadows a built-in", "name: p\ndefault: deny\ndetectors:\n  - name: email\n    regex: x\n",
			LoadOptions{KnownDetector: builtin},
			"policies: p.yaml:4:11: policy p: detector email is built in; choose another name"},
		{"masking without fields or detectors", "name: p\ndefault: deny\nmasking:\n  - name: m\n    when: gcp.readonly\n",
			LoadOptions{},
			"policies: p.yaml:4:5: policy p: masking entry m needs fields or detectors"},
		{"masking when error", "name: p\ndefault: deny\nmasking:\n  - name: m\n    when: gcp.servce == \"iam\"\n    fields: [a]\n",
			LoadOptions{},
			"policies: p.yaml:5:11: policy p: masking entry m when: unknown variable gcp.servce (did you mean gcp.service?)"},
		{"repeated key", "name: p\ndefault: deny\ndefault: allow\n",
			LoadOptions{},
			"policies: p.yaml:3:1: key \"default\" repeated in policy"},
		{"invalid YAML", "name: p\ndefault: [deny\n",
			LoadOptions{},
			"policies: p.yaml:2:1: invalid YAML: did not find expected ',' or ']'"},
		{"not a mapping", "- a\n- b\n",
			LoadOptions{},
			"policies: p.yaml:1:1: policy must be a mapping"},
		{"empty file", "# nothing\n",
			LoadOptions{},
			"policies: p.yaml: file holds no policy"},
		{"alias", "name: p\ndefault: deny\nrules: &r []\ntests: *r\n",
			LoadOptions{},
			"policies: p.yaml:4:8: YAML aliases are not supported"},
		{"test with relative url", "name: p\ndefault: deny\ntests:\n  - name: t\n    request: {method: get, url: /compute/v1}\n    expect: deny\n",
			LoadOptions{},
			"policies: p.yaml:5:33: policy p: test \"t\": url \"/compute/v1\" must be absolute, like https://compute.googleapis.com/..."},
		{"test with bad expect", "name: p\ndefault: deny\ntests:\n  - name: t\n    request: {method: GET, url: 'https://x.googleapis.com/'}\n    expect: yes\n",
			LoadOptions{},
			"policies: p.yaml:6:13: policy p: test \"t\": expect must be allow, deny, approve or invalid, not \"yes\""},
		{"test expects an unknown rule", "name: p\ndefault: deny\ntests:\n  - name: t\n    request: {method: GET, url: 'https://x.googleapis.com/'}\n    expect: deny\n    rule: nope\n",
			LoadOptions{},
			"policies: p.yaml:7:11: policy p: test \"t\": rule \"nope\" is not a rule of any policy"},
		{"rule without when", "name: p\ndefault: deny\nrules:\n  - name: r\n    action: deny\n",
			LoadOptions{},
			"policies: p.yaml:4:5: policy p rule r: rule is missing required key \"when\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadSources(tt.opts, Source{Name: "p.yaml", Data: []byte(tt.src)})
			if err == nil {
				t.Fatalf("loaded; want error %q", tt.want)
			}
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("error %T is not a *LoadError", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n got: %s\nwant: %s", got, tt.want)
			}
		})
	}
}

func TestLoadDuplicatePolicyAcrossFiles(t *testing.T) {
	_, err := LoadSources(LoadOptions{},
		Source{Name: "a.yaml", Data: []byte("name: p" + okRules)},
		Source{Name: "b.yaml", Data: []byte("# other\nname: p" + okRules)})
	want := "policies: b.yaml:2:7: policy p: policy name already used at a.yaml:1"
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %s", err, want)
	}
}

func TestLoadDetectorAcrossFiles(t *testing.T) {
	known := func(string) bool { return false }
	set, err := LoadSources(LoadOptions{KnownDetector: known},
		Source{Name: "a.yaml", Data: []byte("name: a\ndefault: deny\nmasking:\n  - name: m\n    detectors: [acme_token]\n")},
		Source{Name: "b.yaml", Data: []byte("name: b\ndefault: deny\ndetectors:\n  - name: acme_token\n    regex: 'acme_[a-z]{8}'\n    keywords: [acme_]\n    entropy: 2\n")})
	if err != nil {
		t.Fatal(err)
	}
	d := set.Detectors()
	if len(d) != 1 || d[0].Name != "acme_token" || d[0].Regex != "acme_[a-z]{8}" || d[0].Keywords[0] != "acme_" || d[0].Entropy != 2 {
		t.Errorf("detectors = %+v", d)
	}
	_, err = LoadSources(LoadOptions{},
		Source{Name: "a.yaml", Data: []byte("name: a\ndefault: deny\ndetectors:\n  - name: t\n    regex: x\n")},
		Source{Name: "b.yaml", Data: []byte("name: b\ndefault: deny\ndetectors:\n  - name: t\n    regex: y\n")})
	if want := "policies: b.yaml:4:11: policy b: detector t already declared at a.yaml:4"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestLoadStreamAndFields(t *testing.T) {
	src := `name: first
description: several documents in one file
match: request.host == "compute.googleapis.com"
default: approve
approvers: [group:sre, user:alice@example.com]
min_approvals: 2
grant: window
ttl: 1h
---
name: second
default: allow
rules: [{name: r, when: "true", action: allow}]
tests:
  - name: t
    request:
      method: post
      url: https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances
      headers: {X-Airlock-Session: s1}
      body: {name: vm-1, labels: {team: web}}
    identity: {subject: bot, email: bot@example.com, groups: [a, b], actor: agent-7, issuer: https://issuer, claims: {tier: 3}}
    session: s1
    expect: allow
    rule: r
`
	set, err := loadOne(t, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.Names(), ","); got != "first,second" || set.Len() != 2 {
		t.Fatalf("names = %s", got)
	}
	p := set.policies[0]
	if p.approval == nil || p.approval.MinApprovals != 2 || p.approval.Grant != "window" || p.approval.TTL.String() != "1h0m0s" || len(p.approval.Approvers) != 2 {
		t.Errorf("approval = %+v", p.approval)
	}
	tc := set.Tests()[0]
	if tc.Method != "POST" || tc.Headers["x-airlock-session"] != "s1" || tc.Body != `{"labels":{"team":"web"},"name":"vm-1"}` ||
		tc.Identity.Actor != "agent-7" || tc.Identity.Claims["tier"] != 3 || tc.Session != "s1" || tc.Expect != Allow ||
		tc.ExpectRule != "r" || tc.Line != 14 || tc.Policy != "second" || tc.File != "p.yaml" || len(tc.Identity.Groups) != 2 {
		t.Errorf("test case = %+v", tc)
	}
}

func TestLoadPaths(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("b.yaml", "name: b"+okRules)
	write("a.yml", "name: a"+okRules)
	write("notes.txt", "not a policy")
	write(".hidden.yaml", "broken: [")
	other := filepath.Join(t.TempDir(), "0.yaml")
	if err := os.WriteFile(other, []byte("name: zero"+okRules), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := Load(dir, other)
	if err != nil {
		t.Fatal(err)
	}
	files := set.Files()
	if len(files) != 3 || !sortedStrings(files) {
		t.Errorf("files = %v, want 3 sorted", files)
	}
	if set.Digest() == "" {
		t.Error("empty digest")
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"))
	if want := "policies: " + filepath.Join(dir, "missing.yaml") + ": stat: no such file or directory"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	empty := t.TempDir()
	_, err = Load(empty)
	if want := "policies: " + empty + ": no policy files (*.yaml, *.yml) found"; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if _, err := Load(); err == nil || err.Error() != "policies: (none): no policy paths given" {
		t.Errorf("err = %v", err)
	}
}

func sortedStrings(s []string) bool {
	for i := 1; i < len(s); i++ {
		if s[i-1] > s[i] {
			return false
		}
	}
	return true
}

func TestMethodIndex(t *testing.T) {
	env, err := celEnv()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		expr string
		want string // "-" for not indexed
	}{
		{`gcp.method == "a.b"`, "a.b"},
		{`"a.b" == gcp.method`, "a.b"},
		{`gcp.method in ["a", "b"] && gcp.readonly`, "a,b"},
		{`gcp.readonly && (gcp.method in ["a", "b"] && gcp.method == "a")`, "a"},
		{`gcp.method == "a" || gcp.method == "b"`, "-"},
		{`!(gcp.method == "a")`, "-"},
		{`gcp.method in identity.groups`, "-"},
		{`gcp.method in ["a", gcp.project]`, "-"},
		{`gcp.method.startsWith("a")`, "-"},
		{`gcp.method != "a"`, "-"},
		{`gcp.method in ["a", "a"]`, "a"},
	}
	for _, tt := range tests {
		ast, iss := env.Compile(tt.expr)
		if iss.Err() != nil {
			t.Fatalf("%s: %v", tt.expr, iss.Err())
		}
		got := methodIndex(ast.NativeRep().Expr())
		s := "-"
		if got != nil {
			s = strings.Join(got, ",")
		}
		if s != tt.want {
			t.Errorf("methodIndex(%s) = %s, want %s", tt.expr, s, tt.want)
		}
	}
}

func TestVariablesMatchSlots(t *testing.T) {
	if len(Variables) != numVars {
		t.Fatalf("%d variables, %d slots", len(Variables), numVars)
	}
	for i, v := range Variables {
		if got := slotOf(v.Name); got != i {
			t.Errorf("slotOf(%s) = %d, want %d", v.Name, got, i)
		}
	}
}

func TestCheckFieldNamesTheBadPath(t *testing.T) {
	src := Source{Name: "m.yaml", Data: []byte("name: m\ndefault: allow\nmasking:\n  - name: bad\n    fields: [\"ok.path\", \"a[?key==\"]\n")}
	_, err := LoadSources(LoadOptions{CheckField: func(p string) error {
		if strings.Contains(p, "[?") && !strings.HasSuffix(p, "]") {
			return errors.New("unterminated filter")
		}
		return nil
	}}, src)
	if err == nil || !strings.Contains(err.Error(), `m.yaml:5:`) || !strings.Contains(err.Error(), `field "a[?key==": unterminated filter`) {
		t.Fatalf("err = %v", err)
	}
}
