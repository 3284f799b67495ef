package handoff

import "time"

// Decision is what ext_authz decided about one request, refusals included,
// as it is handed to the session recorder: who asked, what was asked, what
// airlock recognised and what it answered. authz fills it from its result;
// the recorder masks and records it.
type Decision struct {
	// RequestID correlates the request's events.
	RequestID string
	// SessionID is the request's session; empty with an empty Subject
	// means the request was refused before an identity was known.
	SessionID string
	// Time is when the request arrived.
	Time time.Time
	// Subject, Email, Actor and Issuer identify the caller (Actor: the
	// agent acting for the subject, RFC 8693 act.sub).
	Subject, Email, Actor, Issuer string
	// Method, Host, Path (without its query) and Query are the HTTP
	// request as decided on.
	Method, Host, Path, Query string
	// GCPMethod, Project and Resource are the recognised operation.
	GCPMethod, Project, Resource string
	// Outcome is the decision's outcome name ("allowed", "policy_denied",
	// ...), as in metrics and logs.
	Outcome string
	// Policy and Rule name the deciding rule; Rules lists every rule that
	// produced the decision as "policy/rule".
	Policy, Rule string
	Rules        []string
	// Message is what the agent was told, ApprovalID the approval asked
	// for or used, Reason the refusal's ErrorInfo reason (with why for
	// UNAUTHENTICATED: "UNAUTHENTICATED: expired").
	Message, ApprovalID, Reason string
	// Source is the peer address Envoy saw.
	Source string
	// Headers are the request's headers, credentials included: the
	// recorder masks them.
	Headers map[string]string
	// Body is the request body, already masked with the request's masking
	// rules (which include the recorder's profile); BodyBytes is the size
	// of the body as received.
	Body      []byte
	BodyBytes int64
	// Mode is "dry_run" or "request_approval" for a decision that changed
	// nothing; empty for a request under way.
	Mode string
}
