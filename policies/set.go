package policies

import (
	"fmt"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/masking"
)

// Set is a compiled, immutable policy set. It is safe for concurrent use;
// swap whole sets (for example with atomic.Pointer) to reload.
type Set struct {
	files     []string
	policies  []*policy
	detectors []Detector
	tests     []TestCase
	digest    string
	// uses has bit i set when an expression reads Variables[i].
	uses uint64
	// methodLits are the strings compared with gcp.method.
	methodLits []MethodLiteral
	// resourceUse locates the first read of a resource.* variable.
	resourceUse string
}

// MethodLiterals lists every string an expression compares gcp.method with.
func (s *Set) MethodLiterals() []MethodLiteral {
	return append([]MethodLiteral(nil), s.methodLits...)
}

// Uses reports whether an expression of the set reads the variable name
// (e.g. "resource.project.labels"), found when the set was compiled.
func (s *Set) Uses(name string) bool {
	slot := slotOf(name)
	return slot >= 0 && s.uses&(1<<slot) != 0
}

// UsesResources reports whether an expression reads a resource.* variable:
// only then do requests need resource lookups.
func (s *Set) UsesResources() bool {
	return s.uses>>varResourceKind != 0
}

// ResourceUse locates the first expression that reads a resource.*
// variable ("file:line: policy P rule R"), or "" when none does.
func (s *Set) ResourceUse() string { return s.resourceUse }

// Files lists the files the set was loaded from, in load order.
func (s *Set) Files() []string { return append([]string(nil), s.files...) }

// Len is the number of policies.
func (s *Set) Len() int { return len(s.policies) }

// Names lists the policy names in evaluation order.
func (s *Set) Names() []string {
	out := make([]string, len(s.policies))
	for i, p := range s.policies {
		out[i] = p.name
	}
	return out
}

// Detectors returns the custom detectors declared in every file.
func (s *Set) Detectors() []Detector { return append([]Detector(nil), s.detectors...) }

// Tests returns the test cases of every policy, in file order.
func (s *Set) Tests() []TestCase { return append([]TestCase(nil), s.tests...) }

// Digest is a SHA-256 (hex) of the names and contents of the files loaded:
// two sets with the same digest were loaded from the same text.
func (s *Set) Digest() string { return s.digest }

// expr is one compiled CEL expression.
type expr struct {
	src string
	prg cel.Program
	// loops is true when the expression loops over something the request
	// sizes (loopsOverInput); it is then evaluated under the request's
	// context so that it can be interrupted.
	loops bool
	// methods, when not nil, are the only gcp.method values for which the
	// expression can be true.
	methods []string
	// services is the same for gcp.service, used when methods is nil.
	services []string
}

func (e *expr) eval(a *activation) (bool, error) {
	var out ref.Val
	var err error
	if e.loops && a.ctx != nil {
		out, _, err = e.prg.ContextEval(interruptFor(a.ctx), a)
	} else {
		out, _, err = e.prg.Eval(a)
	}
	if err != nil {
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, fmt.Errorf("expression gave %s, not a bool", out.Type().TypeName())
	}
	return bool(b), nil
}

type rule struct {
	// pos is the rule's index in its policy.
	pos     int
	policy  string
	name    string
	line    int
	when    *expr
	action  Action
	message string
	// defaultMessage is generated at load for rules without a message.
	defaultMessage string
	approval       *ApprovalSpec
}

// decisionMessage is the rule's message, or a sentence naming it.
func (r *rule) decisionMessage() string {
	if r.message != "" {
		return r.message
	}
	return r.defaultMessage
}

// generatedMessage is a sentence naming the rule, for rules without a message.
func (r *rule) generatedMessage() string {
	switch r.action {
	case Deny:
		return fmt.Sprintf("denied by rule %s of policy %s", r.name, r.policy)
	case Approve:
		return fmt.Sprintf("approval required by rule %s of policy %s", r.name, r.policy)
	}
	return fmt.Sprintf("allowed by rule %s of policy %s", r.name, r.policy)
}

type maskEntry struct {
	when *expr
	rule masking.Rule
}

// ruleGroup holds the rules of one action, indexed by the gcp.method or
// gcp.service values their expressions require. Each list is in file order.
type ruleGroup struct {
	byMethod  map[string][]*rule
	byService map[string][]*rule
	// unindexed are the rules with neither conjunct.
	unindexed []*rule
}

// ruleCursor walks the candidate rules of a group for one request in file
// order, merging the three lists without allocating.
type ruleCursor struct {
	lists [3][]*rule
}

func (g *ruleGroup) cursor(method, service string) ruleCursor {
	return ruleCursor{lists: [3][]*rule{g.byMethod[method], g.byService[service], g.unindexed}}
}

// next returns the next candidate, or nil at the end.
func (c *ruleCursor) next() *rule {
	best := -1
	for i, l := range c.lists {
		if len(l) > 0 && (best < 0 || l[0].pos < c.lists[best][0].pos) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	r := c.lists[best][0]
	c.lists[best] = c.lists[best][1:]
	return r
}

type policy struct {
	name     string
	nameNode *yaml.Node
	file     string
	line     int
	match    *expr
	def      Action
	approval *ApprovalSpec
	defMsg   string
	rules    []*rule
	masking  []*maskEntry
	tests    []TestCase
	// groups are the rules by action: index 0 deny, 1 approve, 2 allow.
	groups [3]ruleGroup
}

func groupOf(a Action) int {
	switch a {
	case Deny:
		return 0
	case Approve:
		return 1
	}
	return 2
}

// finish builds the evaluation indexes once the policy is parsed.
func (p *policy) finish() {
	switch p.def {
	case Deny:
		p.defMsg = "denied by default of policy " + p.name
	case Approve:
		p.defMsg = "approval required by default of policy " + p.name
	default:
		p.defMsg = "allowed by default of policy " + p.name
	}
	for _, r := range p.rules {
		if r.message == "" {
			r.defaultMessage = r.generatedMessage()
		}
	}
	for i, r := range p.rules {
		r.pos = i
		if r.when == nil {
			continue
		}
		g := &p.groups[groupOf(r.action)]
		switch {
		case r.when.methods != nil:
			if g.byMethod == nil {
				g.byMethod = map[string][]*rule{}
			}
			for _, m := range r.when.methods {
				g.byMethod[m] = append(g.byMethod[m], r)
			}
		case r.when.services != nil:
			if g.byService == nil {
				g.byService = map[string][]*rule{}
			}
			for _, sv := range r.when.services {
				g.byService[sv] = append(g.byService[sv], r)
			}
		default:
			g.unindexed = append(g.unindexed, r)
		}
	}
}
