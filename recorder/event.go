package recorder

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/airlockhq/airlock/masking"
)

// Event kinds, the "kind" field of every recorded line.
const (
	KindDecision = "decision"
	KindRequest  = "request"
	KindResponse = "response"
	KindVote     = "vote"
	// KindToolCall is one MCP tool call: its tool, masked arguments and
	// masked result, recorded on the response path.
	KindToolCall = "tool_call"
	// KindClose ends a segment: nothing may follow it.
	KindClose = "close"
)

// Decisions a DecisionEvent carries: the outcome names airlock uses in its
// metrics and logs too.
const (
	DecisionAllowed          = "allowed"
	DecisionPolicyDenied     = "policy_denied"
	DecisionApprovalRequired = "approval_required"
	DecisionApprovalDenied   = "approval_denied"
	DecisionUnauthenticated  = "unauthenticated"
	DecisionUnavailable      = "unavailable"
	DecisionInvalid          = "invalid"
)

// Event is one line of a recorded segment. Hash chaining covers the exact
// bytes of the line: Prev is the SHA-256 (hex) of the previous line of the
// same segment, or the segment's genesis hash for the first one.
type Event struct {
	// Session is the session id.
	Session string `json:"session"`
	// Segment is the id of the chain this event belongs to: one writer's
	// part of a session.
	Segment string `json:"segment"`
	// Seq numbers the events of a segment from 0 without gaps.
	Seq int64 `json:"seq"`
	// Time is when the event was recorded.
	Time time.Time `json:"time"`
	// Kind is decision, request, response, vote or close.
	Kind string `json:"kind"`
	// RequestID ties the events of one request together.
	RequestID string `json:"request_id,omitempty"`
	// Decision is set on decision events.
	Decision *DecisionEvent `json:"decision,omitempty"`
	// Request is set on request events.
	Request *RequestEvent `json:"request,omitempty"`
	// Response is set on response events.
	Response *ResponseEvent `json:"response,omitempty"`
	// Vote is set on vote events.
	Vote *VoteEvent `json:"vote,omitempty"`
	// ToolCall is set on tool_call events.
	ToolCall *ToolCallEvent `json:"tool_call,omitempty"`
	// Reason says why a segment was closed, on close events.
	Reason string `json:"reason,omitempty"`
	// LocalSession marks an event whose session was tracked by this
	// replica alone, the shared session store (Redis) being unreachable:
	// other replicas may have recorded the subject's requests of that time
	// under other sessions.
	LocalSession bool `json:"local_session,omitempty"`
	// Prev is the hash of the previous event of the segment.
	Prev string `json:"prev"`
}

// DecisionEvent is what ext_authz decided about one request, refusals
// included. Headers and Body are raw: the recorder masks headers itself
// and passes Body through Options.Mask (or drops it).
type DecisionEvent struct {
	// RequestID correlates the request's events.
	RequestID string `json:"request_id,omitempty"`
	// SessionID is the session from Recorder.Session; empty resolves the
	// subject's current session.
	SessionID string `json:"-"`
	// Time is when the request arrived; zero means now.
	Time time.Time `json:"-"`
	// Subject, Email, Actor and Issuer identify the caller (Actor: the
	// agent acting for the subject, RFC 8693 act.sub).
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
	Actor   string `json:"actor,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	// Method, Host, Path and Query are the HTTP request as decided on.
	Method string `json:"method,omitempty"`
	Host   string `json:"host,omitempty"`
	Path   string `json:"path,omitempty"`
	Query  string `json:"query,omitempty"`
	// GCPMethod, Project and Resource are the recognised GCP operation.
	GCPMethod string `json:"gcp_method,omitempty"`
	Project   string `json:"project,omitempty"`
	Resource  string `json:"resource,omitempty"`
	// Decision is one of the Decision* constants.
	Decision string `json:"decision"`
	// Policy and Rule name the deciding rule; Rules lists every rule that
	// produced the decision as "policy/rule".
	Policy string   `json:"policy,omitempty"`
	Rule   string   `json:"rule,omitempty"`
	Rules  []string `json:"rules,omitempty"`
	// Message is what the agent was told.
	Message string `json:"message,omitempty"`
	// ApprovalID is set for approval decisions.
	ApprovalID string `json:"approval_id,omitempty"`
	// Source is the peer address Envoy saw.
	Source string `json:"source,omitempty"`
	// Reason is the refusal's reason (ErrorInfo reason, and why for
	// UNAUTHENTICATED, e.g. "UNAUTHENTICATED: expired").
	Reason string `json:"reason,omitempty"`
	// Headers are the request headers; credentials are masked on record.
	Headers map[string]string `json:"headers,omitempty"`
	// headers are Headers as recorded, when the recorder masked them.
	headers []header
	// Body is the request body as received; only its masked excerpt is kept.
	Body []byte `json:"-"`
	// BodyMasked says Body was already masked with rules that include
	// Options.Mask's (the request's own masking profile): it is only cut
	// to Options.MaxBodyBytes, not masked again.
	BodyMasked bool `json:"-"`
	// BodyExcerpt is the masked, truncated body as recorded.
	BodyExcerpt string `json:"body,omitempty"`
	// BodyBytes is the size of the original body; zero means len(Body).
	BodyBytes int64 `json:"body_bytes,omitempty"`
	// Mode is "dry_run" for a decision that changed nothing (explained to
	// the agent) and "request_approval" for an approval asked ahead of its
	// request; empty for a request under way.
	Mode string `json:"mode,omitempty"`
}

// RequestEvent is the request as ext_proc saw it.
type RequestEvent struct {
	// Subject, Actor and GCPMethod come from the ext_authz metadata.
	Subject   string `json:"subject,omitempty"`
	Actor     string `json:"actor,omitempty"`
	GCPMethod string `json:"gcp_method,omitempty"`
	// Decision and Rules are the decision the ext_authz metadata carried
	// ("allowed", and the "policy/rule" names that allowed it).
	Decision string   `json:"decision,omitempty"`
	Rules    []string `json:"rules,omitempty"`
	// Method, Host and Path are the HTTP request.
	Method string `json:"method,omitempty"`
	Host   string `json:"host,omitempty"`
	Path   string `json:"path,omitempty"`
	// Headers are the request headers; credentials are masked on record.
	Headers map[string]string `json:"headers,omitempty"`
	// headers are Headers as recorded, when the recorder masked them.
	headers []header
	// Body is the raw request body; only its masked excerpt is kept.
	Body []byte `json:"-"`
	// BodyExcerpt is the masked, truncated body as recorded.
	BodyExcerpt string `json:"body,omitempty"`
	// BodyBytes is the size of the original body.
	BodyBytes int64 `json:"body_bytes,omitempty"`
}

// ResponseEvent is the upstream's answer as the agent received it.
type ResponseEvent struct {
	// Subject and GCPMethod come from the ext_authz metadata.
	Subject   string `json:"subject,omitempty"`
	GCPMethod string `json:"gcp_method,omitempty"`
	// Status is the HTTP status.
	Status int `json:"status"`
	// Headers are the response headers; credentials are masked on record.
	Headers map[string]string `json:"headers,omitempty"`
	// headers are Headers as recorded, when the recorder masked them.
	headers []header
	// BodyExcerpt is the start of the masked body, at most
	// Options.MaxBodyBytes.
	BodyExcerpt string `json:"body,omitempty"`
	// TotalBytes is the size of the whole response body.
	TotalBytes int64 `json:"total_bytes"`
}

// VoteEvent is one approver's vote on a pending approval.
type VoteEvent struct {
	// SessionID and RequestID are those of the request awaiting approval.
	SessionID string `json:"-"`
	RequestID string `json:"request_id,omitempty"`
	// Time is when the vote was cast; zero means now.
	Time time.Time `json:"-"`
	// ApprovalID is the approval voted on.
	ApprovalID string `json:"approval_id"`
	// Approver is the voter's subject.
	Approver string `json:"approver"`
	// Vote is approve or deny.
	Vote string `json:"vote"`
	// Reason is the approver's comment.
	Reason string `json:"reason,omitempty"`
	// Rule is the rule that asked for approval.
	Rule string `json:"rule,omitempty"`
	// Subject is the requester.
	Subject string `json:"subject,omitempty"`
	// State is the approval's state after the vote.
	State string `json:"state,omitempty"`
}

// ToolCallEvent is one MCP tool call as the agent made it and received its
// result: the arguments as ext_authz passed them on (masked with the
// request's profile), the result as ext_proc masked it.
type ToolCallEvent struct {
	// Subject is the caller.
	Subject string `json:"subject,omitempty"`
	// Server is the MCP server ("compute") and Host its endpoint's host.
	Server string `json:"server,omitempty"`
	Host   string `json:"host,omitempty"`
	// Tool is the tool called and CallID the JSON-RPC id of the call.
	Tool   string `json:"tool"`
	CallID string `json:"call_id,omitempty"`
	// GCPMethod is the REST method the tool performs, when known.
	GCPMethod string `json:"gcp_method,omitempty"`
	// Arguments are the masked arguments (JSON), cut to MaxBodyBytes.
	Arguments string `json:"arguments,omitempty"`
	// Result is the masked result (JSON), cut to MaxBodyBytes; ResultBytes
	// its whole length.
	Result      string `json:"result,omitempty"`
	ResultBytes int64  `json:"result_bytes,omitempty"`
	// IsError is true when the call failed (a JSON-RPC error, or a result
	// with isError).
	IsError bool `json:"is_error,omitempty"`
}

// Masked stands for a value the recorder refused to keep.
const Masked = masking.Withheld

// excerpt truncates b to at most limit bytes on a rune boundary and makes it
// valid UTF-8.
func excerpt(b []byte, limit int) string {
	if limit <= 0 || len(b) == 0 {
		return ""
	}
	if len(b) > limit {
		b = b[:limit]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	if !utf8.Valid(b) {
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(b)
}
