package policies

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/internal/yamlpos"
	"github.com/airlockhq/airlock/masking"
)

// loader collects the problems of one load.
type loader struct {
	opts      LoadOptions
	env       *cel.Env
	file      string
	data      []byte
	lines     []string
	problems  []Problem
	policies  []*policy
	detectors []Detector
	// pending masking detector references, checked once every file is read.
	detectorRefs []detectorRef
	// ruleRefs are the rules that tests expect to decide.
	ruleRefs    []detectorRef
	detectorPos map[string]Problem
	// uses has bit i set when an expression reads Variables[i].
	uses uint64
	// methodLits are the strings compared with gcp.method.
	methodLits []MethodLiteral
	// resourceUse locates the first read of a resource.* variable.
	resourceUse string
}

// detectorRef is a name used at a place, checked once every file is read.
type detectorRef struct {
	name string
	at   Problem
}

func (l *loader) problem(n *yaml.Node, pol, rule, format string, args ...any) {
	p := Problem{File: l.file, Policy: pol, Rule: rule, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.problems = append(l.problems, p)
}

func (l *loader) parseFile() {
	l.lines = nil
	dec := yaml.NewDecoder(bytes.NewReader(l.data))
	docs := 0
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			l.yamlProblem(err)
			return
		}
		if len(doc.Content) == 0 {
			continue
		}
		root := doc.Content[0]
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		docs++
		l.parsePolicy(root)
	}
	if docs == 0 {
		l.problems = append(l.problems, Problem{File: l.file, Msg: "file holds no policy"})
	}
}

func (l *loader) yamlProblem(err error) {
	line, msg := yamlpos.Locate(l.data, err)
	p := Problem{File: l.file, Line: line, Msg: "invalid YAML: " + msg}
	if line > 0 {
		p.Column = 1
	}
	l.problems = append(l.problems, p)
}

// fields reads a mapping node, reporting unknown and repeated keys.
func (l *loader) fields(n *yaml.Node, pol, rule, what string, allowed ...string) map[string]*yaml.Node {
	if n.Kind == yaml.AliasNode {
		l.problem(n, pol, rule, "YAML aliases are not supported")
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.problem(n, pol, rule, "%s must be a mapping", what)
		return nil
	}
	out := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			l.problem(k, pol, rule, "%s keys must be plain strings", what)
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			l.problem(k, pol, rule, "unknown key %q in %s (allowed: %s)", k.Value, what, strings.Join(allowed, ", "))
			continue
		}
		if _, dup := out[k.Value]; dup {
			l.problem(k, pol, rule, "key %q repeated in %s", k.Value, what)
			continue
		}
		if v.Kind == yaml.AliasNode {
			l.problem(v, pol, rule, "YAML aliases are not supported")
			continue
		}
		out[k.Value] = v
	}
	return out
}

// str reads a scalar; ok is false (and a problem reported) otherwise.
func (l *loader) str(n *yaml.Node, pol, rule, key string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		l.problem(n, pol, rule, "%s must be a string", key)
		return "", false
	}
	return n.Value, true
}

// nonEmpty reads a scalar that must not be empty.
func (l *loader) nonEmpty(n *yaml.Node, pol, rule, key string) (string, bool) {
	s, ok := l.str(n, pol, rule, key)
	if ok && strings.TrimSpace(s) == "" {
		l.problem(n, pol, rule, "%s must not be empty", key)
		return "", false
	}
	return s, ok
}

// strList reads a sequence of non-empty scalars.
func (l *loader) strList(n *yaml.Node, pol, rule, key string) ([]string, bool) {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, pol, rule, "%s must be a list of strings", key)
		return nil, false
	}
	out := make([]string, 0, len(n.Content))
	ok := true
	for _, e := range n.Content {
		s, good := l.nonEmpty(e, pol, rule, key+" entry")
		if !good {
			ok = false
			continue
		}
		out = append(out, s)
	}
	return out, ok
}

func (l *loader) intVal(n *yaml.Node, pol, rule, key string) (int, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!int" {
		v, err := strconv.Atoi(n.Value)
		if err == nil {
			return v, true
		}
	}
	l.problem(n, pol, rule, "%s must be an integer", key)
	return 0, false
}

// required reports a missing key at the mapping node.
func (l *loader) required(m map[string]*yaml.Node, at *yaml.Node, pol, rule, what, key string) *yaml.Node {
	v, ok := m[key]
	if !ok {
		l.problem(at, pol, rule, "%s is missing required key %q", what, key)
		return nil
	}
	return v
}

var policyKeys = []string{"name", "description", "match", "default", "approvers", "min_approvals", "grant", "ttl", "rules", "masking", "detectors", "tests"}
var ruleKeys = []string{"name", "description", "when", "action", "message", "approvers", "min_approvals", "grant", "ttl"}
var maskingKeys = []string{"name", "description", "when", "fields", "detectors"}
var detectorKeys = []string{"name", "description", "regex", "keywords", "entropy"}
var testKeys = []string{"name", "request", "identity", "session", "expect", "rule", "resources"}
var requestKeys = []string{"method", "url", "headers", "body"}
var identityKeys = []string{"subject", "email", "groups", "actor", "issuer", "claims"}

func (l *loader) parsePolicy(n *yaml.Node) {
	m := l.fields(n, "", "", "policy", policyKeys...)
	if m == nil {
		return
	}
	p := &policy{file: l.file, line: n.Line}
	if v := l.required(m, n, "", "", "policy", "name"); v != nil {
		if s, ok := l.nonEmpty(v, "", "", "name"); ok {
			p.name = s
			p.nameNode = v
		}
	}
	pol := p.name
	if v, ok := m["match"]; ok {
		p.match = l.compile(v, pol, "", "match")
	}
	if v := l.required(m, n, pol, "", "policy", "default"); v != nil {
		if s, ok := l.str(v, pol, "", "default"); ok {
			a, good := ParseAction(s)
			if !good {
				l.problem(v, pol, "", "default must be allow, deny or approve, not %q", s)
			}
			p.def = a
		}
	}
	spec, hasSpec := l.approval(m, pol, "")
	switch {
	case p.def == Approve && m["approvers"] == nil:
		l.problem(m["default"], pol, "", "default approve needs approvers")
	case p.def == Approve:
		p.approval = spec
	case hasSpec && p.def != 0:
		l.problem(firstOf(m, "approvers", "min_approvals", "grant", "ttl"), pol, "", "approvers, min_approvals, grant and ttl apply only when default is approve")
	}
	if v, ok := m["rules"]; ok {
		l.parseRules(p, v)
	}
	if v, ok := m["masking"]; ok {
		l.parseMasking(p, v)
	}
	if v, ok := m["detectors"]; ok {
		l.parseDetectors(p, v)
	}
	if v, ok := m["tests"]; ok {
		l.parseTests(p, v)
	}
	p.finish()
	l.policies = append(l.policies, p)
}

func firstOf(m map[string]*yaml.Node, keys ...string) *yaml.Node {
	var best *yaml.Node
	for _, k := range keys {
		if v, ok := m[k]; ok && (best == nil || v.Line < best.Line) {
			best = v
		}
	}
	return best
}

// approval reads approvers, min_approvals, grant and ttl. has is true when
// any of them is present.
func (l *loader) approval(m map[string]*yaml.Node, pol, rule string) (*ApprovalSpec, bool) {
	spec := &ApprovalSpec{MinApprovals: 1, Grant: "once"}
	has := false
	if v, ok := m["approvers"]; ok {
		has = true
		if list, good := l.strList(v, pol, rule, "approvers"); good {
			if len(list) == 0 {
				l.problem(v, pol, rule, "approvers must not be empty")
			}
			for i, a := range list {
				kind, who, found := strings.Cut(a, ":")
				if !found || (kind != "group" && kind != "user") || strings.TrimSpace(who) == "" {
					l.problem(v.Content[i], pol, rule, "approver %q must be group:NAME or user:EMAIL", a)
				}
			}
			spec.Approvers = list
		}
	}
	if v, ok := m["min_approvals"]; ok {
		has = true
		if n, good := l.intVal(v, pol, rule, "min_approvals"); good {
			if n < 1 {
				l.problem(v, pol, rule, "min_approvals must be at least 1")
			}
			spec.MinApprovals = n
		}
	}
	if v, ok := m["grant"]; ok {
		has = true
		if s, good := l.str(v, pol, rule, "grant"); good {
			if s != "once" && s != "window" {
				l.problem(v, pol, rule, "grant must be once or window, not %q", s)
			}
			spec.Grant = s
		}
	}
	if v, ok := m["ttl"]; ok {
		has = true
		if s, good := l.str(v, pol, rule, "ttl"); good {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				l.problem(v, pol, rule, "ttl %q is not a duration such as 15m or 1h", s)
			case d <= 0:
				l.problem(v, pol, rule, "ttl must be positive")
			}
			spec.TTL = d
		}
	}
	return spec, has
}

func (l *loader) parseRules(p *policy, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, p.name, "", "rules must be a list")
		return
	}
	seen := map[string]*yaml.Node{}
	for _, rn := range n.Content {
		m := l.fields(rn, p.name, "", "rule", ruleKeys...)
		if m == nil {
			continue
		}
		r := &rule{policy: p.name, line: rn.Line}
		if v := l.required(m, rn, p.name, "", "rule", "name"); v != nil {
			if s, ok := l.nonEmpty(v, p.name, "", "rule name"); ok {
				if prev, dup := seen[s]; dup {
					l.problem(v, p.name, s, "rule name already used at line %d", prev.Line)
				}
				seen[s] = v
				r.name = s
			}
		}
		if v := l.required(m, rn, p.name, r.name, "rule", "when"); v != nil {
			r.when = l.compile(v, p.name, r.name, "when")
		}
		if v := l.required(m, rn, p.name, r.name, "rule", "action"); v != nil {
			if s, ok := l.str(v, p.name, r.name, "action"); ok {
				a, good := ParseAction(s)
				if !good {
					l.problem(v, p.name, r.name, "action must be allow, deny or approve, not %q", s)
				}
				r.action = a
			}
		}
		if v, ok := m["message"]; ok {
			if s, good := l.str(v, p.name, r.name, "message"); good {
				r.message = strings.TrimSpace(s)
			}
		}
		spec, has := l.approval(m, p.name, r.name)
		switch {
		case r.action == Approve && m["approvers"] == nil:
			l.problem(rn, p.name, r.name, "an approve rule needs approvers")
		case r.action == Approve:
			r.approval = spec
		case has && r.action != 0:
			l.problem(firstOf(m, "approvers", "min_approvals", "grant", "ttl"), p.name, r.name, "approvers, min_approvals, grant and ttl apply only to approve rules")
		}
		p.rules = append(p.rules, r)
	}
}

func (l *loader) parseMasking(p *policy, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, p.name, "", "masking must be a list")
		return
	}
	seen := map[string]*yaml.Node{}
	for _, en := range n.Content {
		m := l.fields(en, p.name, "", "masking entry", maskingKeys...)
		if m == nil {
			continue
		}
		e := &maskEntry{rule: masking.Rule{Policy: p.name}}
		if v := l.required(m, en, p.name, "", "masking entry", "name"); v != nil {
			if s, ok := l.nonEmpty(v, p.name, "", "masking name"); ok {
				if prev, dup := seen[s]; dup {
					l.problem(v, p.name, "", "masking entry %s: name already used at line %d", s, prev.Line)
				}
				seen[s] = v
				e.rule.Name = s
			}
		}
		label := "masking entry " + e.rule.Name
		if v, ok := m["when"]; ok {
			e.when = l.compile(v, p.name, "", label+" when")
		}
		if v, ok := m["fields"]; ok {
			e.rule.Fields, _ = l.strList(v, p.name, "", label+" fields")
			if l.opts.CheckField != nil && len(e.rule.Fields) == len(v.Content) {
				for i, f := range e.rule.Fields {
					if err := l.opts.CheckField(f); err != nil {
						l.problem(v.Content[i], p.name, "", "%s field %q: %v", label, f, err)
					}
				}
			}
		}
		if v, ok := m["detectors"]; ok {
			names, _ := l.strList(v, p.name, "", label+" detectors")
			e.rule.Detectors = names
			for i, d := range names {
				l.detectorRefs = append(l.detectorRefs, detectorRef{name: d, at: Problem{
					File: l.file, Line: v.Content[i].Line, Column: v.Content[i].Column, Policy: p.name,
				}})
			}
		}
		if len(e.rule.Fields) == 0 && len(e.rule.Detectors) == 0 {
			l.problem(en, p.name, "", "%s needs fields or detectors", label)
		}
		p.masking = append(p.masking, e)
	}
}

var detectorNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (l *loader) parseDetectors(p *policy, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, p.name, "", "detectors must be a list")
		return
	}
	for _, dn := range n.Content {
		m := l.fields(dn, p.name, "", "detector", detectorKeys...)
		if m == nil {
			continue
		}
		var d Detector
		if v := l.required(m, dn, p.name, "", "detector", "name"); v != nil {
			if s, ok := l.nonEmpty(v, p.name, "", "detector name"); ok {
				d.Name = s
				if !detectorNameRE.MatchString(s) {
					l.problem(v, p.name, "", "detector name %q must be lower case letters, digits and _", s)
				} else if l.opts.KnownDetector != nil && l.opts.KnownDetector(s) {
					l.problem(v, p.name, "", "detector %s is built in; choose another name", s)
				} else if prev, dup := l.detectorPos[s]; dup {
					l.problem(v, p.name, "", "detector %s already declared at %s:%d", s, prev.File, prev.Line)
				} else {
					if l.detectorPos == nil {
						l.detectorPos = map[string]Problem{}
					}
					l.detectorPos[s] = Problem{File: l.file, Line: v.Line}
				}
			}
		}
		label := "detector " + d.Name
		if v := l.required(m, dn, p.name, "", label, "regex"); v != nil {
			if s, ok := l.nonEmpty(v, p.name, "", label+" regex"); ok {
				if _, err := regexp.Compile(s); err != nil {
					l.problem(v, p.name, "", "%s: bad regex: %v", label, err)
				}
				d.Regex = s
			}
		}
		if v, ok := m["keywords"]; ok {
			d.Keywords, _ = l.strList(v, p.name, "", label+" keywords")
		}
		if v, ok := m["entropy"]; ok {
			f, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || (v.Tag != "!!float" && v.Tag != "!!int") || err != nil || f < 0 || f > 8 {
				l.problem(v, p.name, "", "%s: entropy must be a number of bits per byte between 0 and 8", label)
			}
			d.Entropy = f
		}
		l.detectors = append(l.detectors, d)
	}
}

func (l *loader) parseTests(p *policy, n *yaml.Node) {
	if n.Kind != yaml.SequenceNode {
		l.problem(n, p.name, "", "tests must be a list")
		return
	}
	seen := map[string]*yaml.Node{}
	for _, tn := range n.Content {
		m := l.fields(tn, p.name, "", "test", testKeys...)
		if m == nil {
			continue
		}
		tc := TestCase{File: l.file, Policy: p.name, Line: tn.Line}
		if v := l.required(m, tn, p.name, "", "test", "name"); v != nil {
			if s, ok := l.nonEmpty(v, p.name, "", "test name"); ok {
				if prev, dup := seen[s]; dup {
					l.problem(v, p.name, "", "test %q: name already used at line %d", s, prev.Line)
				}
				seen[s] = v
				tc.Name = s
			}
		}
		label := fmt.Sprintf("test %q", tc.Name)
		if v := l.required(m, tn, p.name, "", label, "request"); v != nil {
			l.parseTestRequest(p, label, v, &tc)
		}
		if v, ok := m["identity"]; ok {
			l.parseTestIdentity(p, label, v, &tc)
		}
		if v, ok := m["session"]; ok {
			tc.Session, _ = l.str(v, p.name, "", label+" session")
		}
		if v, ok := m["resources"]; ok {
			tc.Resources = l.parseTestResources(p, label, v)
		}
		if v := l.required(m, tn, p.name, "", label, "expect"); v != nil {
			if s, ok := l.str(v, p.name, "", label+" expect"); ok {
				if s == "invalid" {
					tc.ExpectInvalid = true
				} else {
					a, good := ParseAction(s)
					if !good {
						l.problem(v, p.name, "", "%s: expect must be allow, deny, approve or invalid, not %q", label, s)
					}
					tc.Expect = a
				}
			}
		}
		if v, ok := m["rule"]; ok && tc.ExpectInvalid {
			l.problem(v, p.name, "", "%s: a request refused before policy is decided by no rule; remove rule or expect allow, deny or approve", label)
		} else if ok {
			if name, good := l.nonEmpty(v, p.name, "", label+" rule"); good {
				tc.ExpectRule = name
				l.ruleRefs = append(l.ruleRefs, detectorRef{name: name, at: Problem{
					File: l.file, Line: v.Line, Column: v.Column, Policy: p.name,
					Msg: fmt.Sprintf("%s: rule %q is not a rule of any policy", label, name),
				}})
			}
		}
		p.tests = append(p.tests, tc)
	}
}

func (l *loader) parseTestRequest(p *policy, label string, n *yaml.Node, tc *TestCase) {
	m := l.fields(n, p.name, "", label+" request", requestKeys...)
	if m == nil {
		return
	}
	if v := l.required(m, n, p.name, "", label+" request", "method"); v != nil {
		if s, ok := l.nonEmpty(v, p.name, "", label+" method"); ok {
			tc.Method = strings.ToUpper(s)
		}
	}
	if v := l.required(m, n, p.name, "", label+" request", "url"); v != nil {
		if s, ok := l.nonEmpty(v, p.name, "", label+" url"); ok {
			u, err := url.Parse(s)
			if err != nil || u.Scheme == "" || u.Host == "" {
				l.problem(v, p.name, "", "%s: url %q must be absolute, like https://compute.googleapis.com/...", label, s)
			}
			tc.URL = s
		}
	}
	if v, ok := m["headers"]; ok {
		hm := l.fields(v, p.name, "", label+" headers", anyKey(v)...)
		if hm != nil {
			tc.Headers = make(map[string]string, len(hm))
			for k, hv := range hm {
				if s, good := l.str(hv, p.name, "", label+" header "+k); good {
					tc.Headers[strings.ToLower(k)] = s
				}
			}
		}
	}
	if v, ok := m["body"]; ok {
		switch v.Kind {
		case yaml.ScalarNode:
			tc.Body = v.Value
		case yaml.MappingNode, yaml.SequenceNode:
			var body any
			if err := v.Decode(&body); err != nil {
				l.problem(v, p.name, "", "%s: body: %v", label, err)
				break
			}
			data, err := json.Marshal(jsonable(body))
			if err != nil {
				l.problem(v, p.name, "", "%s: body cannot be written as JSON: %v", label, err)
				break
			}
			tc.Body = string(data)
		default:
			l.problem(v, p.name, "", "%s: body must be a string or a mapping", label)
		}
	}
}

// anyKey lists the scalar keys of a mapping, so that fields accepts them all.
func anyKey(n *yaml.Node) []string {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var keys []string
	for i := 0; i+1 < len(n.Content); i += 2 {
		keys = append(keys, n.Content[i].Value)
	}
	return keys
}

// jsonable turns YAML-decoded maps with non-string keys into JSON-able maps.
func jsonable(v any) any {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			t[k] = jsonable(e)
		}
		return t
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[fmt.Sprint(k)] = jsonable(e)
		}
		return out
	case []any:
		for i, e := range t {
			t[i] = jsonable(e)
		}
		return t
	}
	return v
}

func (l *loader) parseTestIdentity(p *policy, label string, n *yaml.Node, tc *TestCase) {
	m := l.fields(n, p.name, "", label+" identity", identityKeys...)
	if m == nil {
		return
	}
	id := identity.Identity{}
	for key, dst := range map[string]*string{"subject": &id.Subject, "email": &id.Email, "actor": &id.Actor, "issuer": &id.Issuer} {
		if v, ok := m[key]; ok {
			*dst, _ = l.str(v, p.name, "", label+" identity "+key)
		}
	}
	if v, ok := m["groups"]; ok {
		id.Groups, _ = l.strList(v, p.name, "", label+" identity groups")
	}
	if v, ok := m["claims"]; ok {
		if v.Kind != yaml.MappingNode {
			l.problem(v, p.name, "", "%s: identity claims must be a mapping", label)
		} else {
			var claims map[string]any
			if err := v.Decode(&claims); err != nil {
				l.problem(v, p.name, "", "%s: identity claims: %v", label, err)
			} else {
				id.Claims, _ = jsonable(claims).(map[string]any)
			}
		}
	}
	tc.Identity = id
}

// validateSet checks what spans files: unique policy names and detector
// references.
func (l *loader) validateSet() {
	seen := map[string]*policy{}
	for _, p := range l.policies {
		if p.name == "" {
			continue
		}
		if prev, dup := seen[p.name]; dup {
			l.problems = append(l.problems, Problem{
				File: p.file, Line: p.nameNode.Line, Column: p.nameNode.Column, Policy: p.name,
				Msg: fmt.Sprintf("policy name already used at %s:%d", prev.file, prev.nameNode.Line),
			})
			continue
		}
		seen[p.name] = p
	}
	rules := map[string]bool{}
	for _, p := range l.policies {
		for _, r := range p.rules {
			rules[r.name] = true
			rules[p.name+"/"+r.name] = true
		}
	}
	for _, ref := range l.ruleRefs {
		if !rules[ref.name] {
			l.problems = append(l.problems, ref.at)
		}
	}
	for _, ref := range l.detectorRefs {
		if _, custom := l.detectorPos[ref.name]; custom {
			continue
		}
		if l.opts.KnownDetector == nil || l.opts.KnownDetector(ref.name) {
			continue
		}
		p := ref.at
		p.Msg = fmt.Sprintf("unknown detector %q", ref.name)
		l.problems = append(l.problems, p)
	}
}

// parseTestResources reads the world a test assumes for resource.* and
// gcp.project resolution, so that policy tests run offline:
//
//	resources:
//	  projects: [{id, number, name, parent, labels, tags}]
//	  folders:  [{id: folders/N or organizations/N, name, parent}]
//	  buckets:  [{name, project (id or number), labels}]
//	  targets:  [{name: resource path, labels}]   # instances, disks, secrets, SQL instances
func (l *loader) parseTestResources(p *policy, label string, n *yaml.Node) *TestResources {
	what := label + " resources"
	m := l.fields(n, p.name, "", what, "projects", "folders", "buckets", "targets")
	if m == nil {
		return nil
	}
	out := &TestResources{}
	each := func(key string, keys []string, f func(m map[string]*yaml.Node, at string)) {
		v, ok := m[key]
		if !ok {
			return
		}
		if v.Kind != yaml.SequenceNode {
			l.problem(v, p.name, "", "%s %s must be a list", what, key)
			return
		}
		for i, e := range v.Content {
			at := fmt.Sprintf("%s %s[%d]", what, key, i)
			if em := l.fields(e, p.name, "", at, keys...); em != nil {
				f(em, at)
			}
		}
	}
	str := func(m map[string]*yaml.Node, key, at string, required bool) string {
		v, ok := m[key]
		if !ok {
			if required {
				l.problem(n, p.name, "", "%s: %s is required", at, key)
			}
			return ""
		}
		s, _ := l.str(v, p.name, "", at+" "+key)
		return s
	}
	strMap := func(m map[string]*yaml.Node, key, at string) map[string]string {
		v, ok := m[key]
		if !ok {
			return nil
		}
		fm := l.fields(v, p.name, "", at+" "+key, anyKey(v)...)
		out := make(map[string]string, len(fm))
		for k, fv := range fm {
			out[k], _ = l.str(fv, p.name, "", at+" "+key+" "+k)
		}
		return out
	}
	each("projects", []string{"id", "number", "name", "parent", "labels", "tags"}, func(m map[string]*yaml.Node, at string) {
		out.Projects = append(out.Projects, TestProject{
			ID: str(m, "id", at, true), Number: str(m, "number", at, true), Name: str(m, "name", at, false),
			Parent: str(m, "parent", at, false), Labels: strMap(m, "labels", at), Tags: strMap(m, "tags", at),
		})
	})
	each("folders", []string{"id", "name", "parent"}, func(m map[string]*yaml.Node, at string) {
		f := TestFolder{ID: str(m, "id", at, true), Name: str(m, "name", at, false), Parent: str(m, "parent", at, false)}
		if !strings.HasPrefix(f.ID, "folders/") && !strings.HasPrefix(f.ID, "organizations/") {
			l.problem(m["id"], p.name, "", "%s: id %q must be folders/ID or organizations/ID", at, f.ID)
		}
		out.Folders = append(out.Folders, f)
	})
	each("buckets", []string{"name", "project", "labels"}, func(m map[string]*yaml.Node, at string) {
		out.Buckets = append(out.Buckets, TestBucket{Name: str(m, "name", at, true), Project: str(m, "project", at, true), Labels: strMap(m, "labels", at)})
	})
	each("targets", []string{"name", "labels"}, func(m map[string]*yaml.Node, at string) {
		out.Targets = append(out.Targets, TestTarget{Name: str(m, "name", at, true), Labels: strMap(m, "labels", at)})
	})
	return out
}

// ParseResources reads a world of resources written as a test's
// resources: block (projects, folders, buckets, targets), e.g. for
// `airlock policy explain --resources FILE`.
func ParseResources(name string, data []byte) (*TestResources, error) {
	l := &loader{file: name, data: data}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		l.yamlProblem(err)
		return nil, &LoadError{Problems: l.problems}
	}
	if len(root.Content) == 0 {
		return &TestResources{}, nil
	}
	w := l.parseTestResources(&policy{}, "resources", root.Content[0])
	if len(l.problems) > 0 {
		return nil, &LoadError{Problems: l.problems}
	}
	return w, nil
}
