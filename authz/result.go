package authz

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
)

// Outcome is what happens to a request.
type Outcome int

const (
	// Allowed: the request proceeds.
	Allowed Outcome = iota
	// PolicyDenied: a policy refused it (POLICY_DENIED).
	PolicyDenied
	// ApprovalRequired: a human must approve it first (APPROVAL_REQUIRED).
	ApprovalRequired
	// ApprovalDenied: an approver refused it (APPROVAL_DENIED).
	ApprovalDenied
	// Unauthenticated: no valid identity (UNAUTHENTICATED).
	Unauthenticated
	// Unavailable: a dependency failed; airlock fails closed (UNAVAILABLE).
	Unavailable
	// Invalid: the request is ambiguous or malformed and refused before policy.
	Invalid
)

var outcomeNames = [...]string{"allowed", "policy_denied", "approval_required", "approval_denied", "unauthenticated", "unavailable", "invalid"}

// String is a stable snake_case name used in metrics and logs.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return "unknown"
}

// Reasons of the refusal's google.rpc.ErrorInfo.
const (
	ReasonPolicyDenied     = "POLICY_DENIED"
	ReasonApprovalRequired = "APPROVAL_REQUIRED"
	ReasonApprovalDenied   = "APPROVAL_DENIED"
	ReasonUnauthenticated  = "UNAUTHENTICATED"
	ReasonUnavailable      = "UNAVAILABLE"
	ReasonInvalidRequest   = "INVALID_REQUEST"
)

// Result is the outcome of one decision with everything that explains it.
type Result struct {
	Outcome    Outcome
	RequestID  string
	SessionID  string
	Identity   identity.Identity
	Recognized gcp.Recognized
	Decision   policies.Decision
	// Approval is set when an approval was consulted.
	Approval   *approvals.Approval
	ApproveURL string
	// Refusal is set for every outcome but Allowed.
	Refusal *Refusal
	// Request is the request as Envoy presented it.
	Request *Request
	// MCP is the MCP request, when the request is one.
	MCP *mcp.Request
	// mcpMeta is what later filters learn of an allowed MCP request.
	mcpMeta *handoff.MCPMetadata
	// claim is the grant this request claimed, to give back if it is
	// refused after all.
	claim *approvals.Outcome
	// maskedBody is the request body masked with the decision's rules,
	// once it was masked for an approver (see maskBodyWith).
	maskedBody []byte
}

// Metadata is what an allowed request hands to later filters.
func (r *Result) Metadata() handoff.Metadata {
	m := handoff.Metadata{
		RequestID: r.RequestID,
		SessionID: r.SessionID,
		Subject:   r.Identity.Subject,
		Actor:     r.Identity.Actor,
		GCPMethod: r.Recognized.Operation.Method,
		Decision:  r.Outcome.String(),
		Rules:     r.Rules(),
		MCP:       r.mcpMeta,
	}
	m.Masking = r.Decision.Masking
	return m
}

// Rules names what produced the decision, as "policy/rule": every
// explicit rule with the decided action, or the defaults ("policy/default")
// when no rule decided.
func (r *Result) Rules() []string {
	if len(r.Decision.Deciders) == 0 {
		if r.Decision.Policy == "" {
			return nil
		}
		return []string{ruleName(r.Decision.Policy, r.Decision.Rule)}
	}
	out := make([]string, 0, len(r.Decision.Deciders))
	for _, m := range r.Decision.Deciders {
		out = append(out, ruleName(m.Policy, m.Rule))
	}
	return out
}

func ruleName(policy, rule string) string {
	if rule == "" {
		rule = "default"
	}
	return policy + "/" + rule
}

// Refusal is the Google-style error an agent receives.
type Refusal struct {
	// HTTPStatus is the status Envoy sends (403, 401, 400, 503).
	HTTPStatus int
	// Code is the google.rpc.Code (7 for PERMISSION_DENIED), which is also
	// the CheckResponse's gRPC status.
	Code int
	// Status is the google.rpc.Code name, e.g. PERMISSION_DENIED.
	Status string
	// Reason is the ErrorInfo reason, e.g. POLICY_DENIED.
	Reason  string
	Message string
	// Metadata is the ErrorInfo metadata.
	Metadata map[string]string
	// Headers are extra response headers (e.g. www-authenticate).
	Headers map[string]string
	// JSONRPC, when set, renders the refusal as a JSON-RPC error, which an
	// MCP client shows, instead of Google's error shape.
	JSONRPC *JSONRPCError
}

// Body renders the refusal as Google's JSON error shape, which gcloud and
// the client libraries print to the agent.
func (f *Refusal) Body() []byte {
	if f.JSONRPC != nil {
		return f.jsonrpcBody()
	}
	return handoff.ErrorBody(f.HTTPStatus, f.Status, f.Message, f.Reason, f.Metadata)
}

// refusals is the one table from a refused outcome to what the agent
// receives: the HTTP status, the google.rpc.Code (its number is also the
// gRPC status of the CheckResponse) and the ErrorInfo reason.
var refusals = map[Outcome]struct {
	HTTP   int
	Code   int // google.rpc.Code
	Status string
	Reason string
}{
	PolicyDenied:     {403, 7, "PERMISSION_DENIED", ReasonPolicyDenied},
	ApprovalRequired: {403, 7, "PERMISSION_DENIED", ReasonApprovalRequired},
	ApprovalDenied:   {403, 7, "PERMISSION_DENIED", ReasonApprovalDenied},
	Unauthenticated:  {401, 16, "UNAUTHENTICATED", ReasonUnauthenticated},
	Unavailable:      {503, 14, "UNAVAILABLE", ReasonUnavailable},
	Invalid:          {400, 3, "INVALID_ARGUMENT", ReasonInvalidRequest},
}

// NewRefusal is the refusal of outcome o, as the table above spells it.
func NewRefusal(o Outcome, msg string, md map[string]string) *Refusal {
	t, ok := refusals[o]
	if !ok {
		// Not a refusal: fail closed as a denial.
		t = refusals[PolicyDenied]
	}
	if md == nil {
		md = map[string]string{}
	}
	return &Refusal{HTTPStatus: t.HTTP, Code: t.Code, Status: t.Status, Reason: t.Reason, Message: msg, Metadata: md}
}

// refuse makes r a refusal with outcome o.
func refuse(r *Result, o Outcome, msg string, md map[string]string) *Result {
	r.Outcome = o
	r.Refusal = NewRefusal(o, msg, md)
	r.Refusal.Metadata["request_id"] = r.RequestID
	return r
}

func unauthenticated(r *Result, err error) *Result {
	why := err.Error()
	kind := "invalid"
	var ie *identity.Error
	if errors.As(err, &ie) {
		why = ie.Msg
		kind = ie.Kind.String()
		if ie.Kind == identity.Unavailable {
			return unavailable(r, "the token issuer's signing keys cannot be fetched: "+ie.Msg+"; retry later")
		}
	}
	refuse(r, Unauthenticated, "airlock: unauthenticated: "+why+". Send an OIDC token from a trusted issuer as 'Authorization: Bearer <token>'.",
		map[string]string{"why": kind})
	r.Refusal.Headers = map[string]string{
		"www-authenticate": fmt.Sprintf(`Bearer realm="airlock", error="invalid_token", error_description=%q`, kind),
	}
	return r
}

func unavailable(r *Result, why string) *Result {
	return refuse(r, Unavailable, "airlock: unavailable: "+why+".", nil)
}

func badRequest(r *Result, err error) *Result {
	msg := err.Error()
	var re *gcp.RequestError
	if errors.As(err, &re) {
		msg = re.Msg
	}
	return refuse(r, Invalid, "airlock: refused before policy: "+strings.TrimSuffix(msg, ".")+".", nil)
}

func denied(r *Result) *Result {
	d := r.Decision
	var msg string
	switch {
	case strings.HasPrefix(d.Message, "denied by"):
		// The policy already wrote the whole sentence.
		msg = "airlock: " + d.Message
	case d.Rule != "" && d.Message != "":
		msg = fmt.Sprintf("airlock: denied by rule %s: %s", d.Rule, d.Message)
	case d.Rule != "":
		msg = fmt.Sprintf("airlock: denied by rule %s of policy %s.", d.Rule, d.Policy)
	case d.Policy != "":
		msg = fmt.Sprintf("airlock: denied by the default of policy %s: %s", d.Policy, orWords(d.Message, "no rule allows this operation."))
	default:
		msg = "airlock: denied: " + orWords(d.Message, "no policy allows this request.")
	}
	return refuse(r, PolicyDenied, withPeriod(msg), map[string]string{
		"policy":    d.Policy,
		"rule":      ruleOrDefault(d.Rule),
		"operation": r.Recognized.Operation.Method,
	})
}

func approvalRequired(r *Result) *Result {
	a := r.Approval
	d := r.Decision
	what := r.Recognized.Operation.Method
	if what == "" {
		what = r.Recognized.Method + " " + r.Recognized.Host + r.Recognized.Path
	}
	retry := "then retry the identical request (same method, URL and body); it will go through once approved."
	retryMeta := "ask an approver to approve " + a.ID + ", then retry the identical request"
	if r.MCP != nil {
		what = mcpWhat(r)
		retry = "then retry the same call once approved (the same tool and arguments; a new JSON-RPC id is fine); it will go through."
		retryMeta = "ask an approver to approve " + a.ID + ", then retry the same call once approved"
	}
	who := "an approver"
	if len(a.Request.Approvers) > 0 {
		who = "an approver (" + strings.Join(a.Request.Approvers, ", ") + ")"
	}
	if a.Request.MinApprovals > 1 {
		who = fmt.Sprintf("%d approvers (%s)", a.Request.MinApprovals, strings.Join(a.Request.Approvers, ", "))
	}
	msg := fmt.Sprintf("airlock: approval required by rule %s: %s needs a human's approval. Ask %s to approve request %s at %s before %s, %s",
		ruleOrDefault(d.Rule), what, who, a.ID, r.ApproveURL, a.ExpiresAt.UTC().Format(time.RFC3339), retry)
	return refuse(r, ApprovalRequired, msg, map[string]string{
		"policy":      d.Policy,
		"rule":        ruleOrDefault(d.Rule),
		"operation":   r.Recognized.Operation.Method,
		"approval_id": a.ID,
		"approve_url": r.ApproveURL,
		"expires_at":  a.ExpiresAt.UTC().Format(time.RFC3339),
		"retry":       retryMeta,
	})
}

// approvalQueueFull refuses a request that needs a new approval while its
// requester already has limit approvals waiting.
func approvalQueueFull(r *Result, limit int) *Result {
	d := r.Decision
	msg := fmt.Sprintf("airlock: approval required by rule %s, but your approval queue is full: you already have %d requests waiting for a human's decision, the most this gateway keeps. Wait for approvers to decide them (or let them expire at the end of their rule's ttl), then retry this request.",
		ruleOrDefault(d.Rule), limit)
	return refuse(r, ApprovalRequired, msg, map[string]string{
		"policy":     d.Policy,
		"rule":       ruleOrDefault(d.Rule),
		"queue_full": "true",
		"limit":      strconv.Itoa(limit),
		"retry":      "wait for approvers to decide your pending requests or for them to expire, then retry",
	})
}

// unbindableApproval refuses a request that needs approval but cannot be
// bound to one: an approval must grant exactly what its approvers judged.
func unbindableApproval(r *Result, why string) *Result {
	d := r.Decision
	msg := fmt.Sprintf("airlock: rule %s needs a human's approval for this request, but an approval cannot be bound to it: %s.",
		ruleOrDefault(d.Rule), strings.TrimSuffix(why, "."))
	return refuse(r, Invalid, msg, map[string]string{
		"policy": d.Policy,
		"rule":   ruleOrDefault(d.Rule),
	})
}

func approvalDenied(r *Result) *Result {
	a := r.Approval
	by, reason := "", ""
	for _, v := range a.Votes {
		if !v.Approve {
			by, reason = v.Email, v.Reason
			if by == "" {
				by = v.Approver
			}
		}
	}
	msg := fmt.Sprintf("airlock: approval %s was denied", a.ID)
	if by != "" {
		msg += " by " + by
	}
	if reason != "" {
		msg += ": " + strings.TrimSuffix(reason, ".")
	}
	msg += ". Do not retry this request; change the approach or ask the approver."
	return refuse(r, ApprovalDenied, msg, map[string]string{
		"policy":      r.Decision.Policy,
		"rule":        ruleOrDefault(r.Decision.Rule),
		"approval_id": a.ID,
		"denied_by":   by,
		"reason":      reason,
	})
}

func ruleOrDefault(rule string) string {
	if rule == "" {
		return "default"
	}
	return rule
}

func orWords(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

func withPeriod(s string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") {
		return s
	}
	return s + "."
}

// maskBodyWith is the request body masked with the decision's masking
// rules: the one the approval's excerpt was cut from when there is one,
// else masked now with mask.
func (r *Result) maskBodyWith(mask func([]byte, []masking.Rule) []byte) []byte {
	if r.maskedBody != nil {
		return r.maskedBody
	}
	if r.Request == nil || len(r.Request.Body) == 0 {
		return nil
	}
	return mask(r.Request.Body, r.Decision.Masking)
}
