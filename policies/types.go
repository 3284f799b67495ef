package policies

import (
	"context"
	"time"

	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
)

// Request is the HTTP request as policies see it (CEL variable "request").
type Request struct {
	// Method is the effective method, X-HTTP-Method-Override applied, upper case.
	Method string
	// Host is lower case with the port removed.
	Host string
	// Path is normalised, without the query.
	Path string
	// Query holds the query parameters.
	Query map[string][]string
	// Headers have lower-case names; credentials are removed.
	Headers map[string]string
	// Body is the parsed JSON body, or nil when the request has none.
	Body any
	// BodyError, when set, says why a body that exists cannot be read (cut,
	// too long, not JSON, ...). request.body is then an error value, so
	// every expression that uses it fails closed, has() included: a deny or
	// approve rule counts as matched, an allow rule as unmatched.
	BodyError string
}

// Input is everything a policy can see about one request.
type Input struct {
	Request   Request
	Identity  identity.Identity
	GCP       gcp.Operation
	SessionID string
	Now       time.Time
	// Resources answers resource.* and resolves gcp.project (a project
	// number to its id, a bucket to its project); nil when resource
	// lookups are not configured: gcp.project is then the one of the URL
	// and resource.* variables are errors.
	Resources Resources
	// MCP is the MCP message the request carries (CEL variable "mcp");
	// zero for a REST request.
	MCP MCP
}

// MCP is one message of a request to one of Google's MCP servers, as
// policies see it.
type MCP struct {
	// Server is the service of the endpoint ("compute").
	Server string
	// Method is the JSON-RPC method; empty for a client's response and for
	// a GET or DELETE of the endpoint.
	Method string
	// Tool is the tool a tools/call calls.
	Tool string
	// Name is the tool or prompt name, or the resource URI.
	Name string
	// Arguments are the arguments of a tools/call or prompts/get.
	Arguments map[string]any
	// ReadOnly and Destructive are the tool's hints (true and false for a
	// message that is no tool call).
	ReadOnly, Destructive bool
}

// Resources looks up what Google holds about one request's resource. Each
// method is called at most once per evaluation, only when a policy reads
// the variables it answers. An error is a lookup that failed: the variables
// it answers become errors, and Decision.Unavailable names the failure.
type Resources interface {
	// ProjectID is gcp.project as Google knows it: the project id, when the
	// URL names the project by number or not at all (a bucket).
	ProjectID(ctx context.Context) (string, error)
	// Project is the request's project.
	Project(ctx context.Context) (ResourceProject, error)
	// Ancestry lists the folders and organization above the project,
	// nearest first, with their display names.
	Ancestry(ctx context.Context) (ids, names []string, err error)
	// ProjectTags are the project's effective tags.
	ProjectTags(ctx context.Context) (map[string]string, error)
	// Target is the resource the request acts on.
	Target(ctx context.Context) (ResourceTarget, error)
}

// ResourceProject is the project as resource.project.* shows it.
type ResourceProject struct {
	Exists           bool
	ID, Number, Name string
	Labels           map[string]string
}

// ResourceTarget is the request's target as resource.* shows it.
type ResourceTarget struct {
	// Kind is bucket, instance, disk, secret, sql_instance or project; empty
	// when the target is not a kind airlock looks up.
	Kind   string
	Exists bool
	Labels map[string]string
	Tags   map[string]string
}

// Action is what a rule or a policy decides. Stronger actions win:
// Deny > Approve > Allow.
type Action int

const (
	// Allow lets the request through.
	Allow Action = iota + 1
	// Approve holds the request until a human approves it.
	Approve
	// Deny refuses the request.
	Deny
)

// String returns "allow", "approve" or "deny".
func (a Action) String() string {
	switch a {
	case Allow:
		return "allow"
	case Approve:
		return "approve"
	case Deny:
		return "deny"
	}
	return "unknown"
}

// ParseAction reads "allow", "approve" or "deny".
func ParseAction(s string) (Action, bool) {
	switch s {
	case "allow":
		return Allow, true
	case "approve":
		return Approve, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// Match is one rule (or policy default) that contributed to a decision.
type Match struct {
	Policy string
	// Rule is the rule name; empty when the policy's default applied.
	Rule   string
	Action Action
	// Error is set when the rule's expression failed at run time; such a rule
	// counts as matched for deny and approve and unmatched for allow.
	Error string
}

// ApprovalSpec says who must approve and how the grant behaves.
type ApprovalSpec struct {
	// Approvers are "group:NAME" or "user:EMAIL" entries.
	Approvers []string
	// MinApprovals is the number of distinct approvers needed (at least 1).
	MinApprovals int
	// Grant is "once" or "window".
	Grant string
	// TTL is how long a pending request or a grant lives; zero means the
	// configured default.
	TTL time.Duration
}

// A selected masking rule (a `masking:` entry of a policy whose `when`
// held) is a masking.Rule: decided here, applied by later filters.

// Detector is a custom detector declared in a policy file.
type Detector struct {
	Name     string
	Regex    string
	Keywords []string
	// Entropy is the minimum Shannon entropy (bits per byte) of a match; 0 disables the check.
	Entropy float64
}

// Decision is the result of evaluating a request against a policy set.
type Decision struct {
	Action Action
	// Policy and Rule name what decided; Rule is empty when a default decided.
	Policy  string
	Rule    string
	Message string
	// Matches lists every rule that matched, in evaluation order (explain).
	Matches []Match
	// Deciders are what produced Action: every explicit rule with that
	// action (across policies, in evaluation order), or, when no rule did,
	// the defaults that gave it. Policy and Rule name the first.
	Deciders []Match
	// Approval is set when Action is Approve: the spec of the deciding rule.
	Approval *ApprovalSpec
	// Masking lists the masking entries whose `when` held.
	Masking []masking.Rule
	// Unavailable, when set, names a resource lookup that failed during
	// evaluation. The decision then stands only if it is a deny by a rule
	// that evaluated without error; otherwise the request must be refused
	// as unavailable (the outcome depended on what could not be looked up).
	Unavailable string
}

// Refused reports whether a resource lookup that failed during evaluation
// refuses the request: the outcome depended on it, unless a rule that
// evaluated without error denied.
func (d Decision) Refused() bool {
	if d.Unavailable == "" {
		return false
	}
	if d.Action != Deny || d.Rule == "" {
		return true
	}
	for _, m := range d.Matches {
		if m.Policy == d.Policy && m.Rule == d.Rule {
			return m.Error != ""
		}
	}
	return true
}
