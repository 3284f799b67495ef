package authz

import (
	"fmt"
	"strings"

	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/policies"
)

// Mode is how a decision is used.
type Mode int

const (
	// ModeEnforce decides a request that is under way (Envoy's Check).
	ModeEnforce Mode = iota
	// ModeDryRun decides a described request and changes nothing: no
	// approval is asked for or claimed. It is recorded as a dry run.
	ModeDryRun
	// ModeRequestApproval decides a described request and, where a rule
	// asks for approval, opens the pending approval ahead of the request
	// (with Request.Justification), without waiting and without spending
	// a grant that already exists.
	ModeRequestApproval
)

// String is "enforce", "dry_run" or "request_approval".
func (m Mode) String() string {
	switch m {
	case ModeDryRun:
		return "dry_run"
	case ModeRequestApproval:
		return "request_approval"
	}
	return "enforce"
}

// maxJustification bounds the justification stored with an approval.
const maxJustification = 1024

// justification is what approvers see of the requester's reason: masked
// (it is agent-controlled text) and cut.
func (e *Engine) justification(s string, rules []masking.Rule) string {
	if s == "" {
		return ""
	}
	b := []byte(s)
	if e.opts.MaskBody != nil {
		b = e.opts.MaskBody(b, rules)
	}
	return excerpt(b, maxJustification)
}

// dryRunApproval answers a dry run that a rule sends to approval: nothing
// is asked.
func dryRunApproval(r *Result, spec policies.ApprovalSpec) *Result {
	d := r.Decision
	what := r.Recognized.Operation.Method
	if r.MCP != nil {
		what = mcpWhat(r)
	} else if what == "" {
		what = r.Recognized.Method + " " + r.Recognized.Host + r.Recognized.Path
	}
	who := "an approver"
	if len(spec.Approvers) > 0 {
		who = "an approver (" + strings.Join(spec.Approvers, ", ") + ")"
	}
	msg := fmt.Sprintf("airlock: approval required by rule %s: %s needs a human's approval from %s. This was a dry run: nothing was asked. Ask ahead with request_approval and your justification, then send the request once it is approved.",
		ruleOrDefault(d.Rule), what, who)
	return refuse(r, ApprovalRequired, msg, map[string]string{
		"policy":    d.Policy,
		"rule":      ruleOrDefault(d.Rule),
		"approvers": strings.Join(spec.Approvers, ","),
		"grant":     spec.Grant,
	})
}
