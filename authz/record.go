package authz

import (
	"strings"

	"github.com/airlockhq/airlock/handoff"
)

// record is what the recorder receives of a decision. A request refused
// before an identity was known gets what identifies it and nothing more:
// anyone can send those, so nothing is masked or copied for them.
func (e *Engine) record(r *Result) handoff.Decision {
	d := handoff.Decision{RequestID: r.RequestID, Outcome: r.Outcome.String()}
	if r.Refusal != nil {
		d.Reason = refusalReason(r.Refusal)
	}
	req := r.Request
	if r.Identity.Subject == "" && r.SessionID == "" {
		if req != nil {
			d.Time, d.Source = req.Time, req.Source
			d.Method, d.Host, d.Path = req.Method, req.Host, req.Path
		}
		return d
	}
	d.SessionID = r.SessionID
	d.Subject, d.Email, d.Actor, d.Issuer = r.Identity.Subject, r.Identity.Email, r.Identity.Actor, r.Identity.Issuer
	d.Method, d.Host, d.Path = r.Recognized.Method, r.Recognized.Host, r.Recognized.Path
	op := r.Recognized.Operation
	d.GCPMethod, d.Project, d.Resource = op.Method, op.Project, op.Resource
	d.Policy, d.Rule, d.Rules = r.Decision.Policy, r.Decision.Rule, r.Rules()
	if r.Refusal != nil {
		d.Message = r.Refusal.Message
		d.ApprovalID = r.Refusal.Metadata["approval_id"]
	}
	if r.Approval != nil {
		d.ApprovalID = r.Approval.ID
	}
	if req == nil {
		return d
	}
	d.Time, d.Source, d.Headers = req.Time, req.Source, req.Headers
	if req.Mode != ModeEnforce {
		d.Mode = req.Mode.String()
	}
	path, query, _ := strings.Cut(req.Path, "?")
	if d.Method == "" {
		d.Method, d.Host, d.Path = req.Method, req.Host, path
	}
	d.Query = query
	// Masked with the request's own rules, which include the recorder's
	// default profile (the recorder only cuts it); without a masker no
	// body is recorded.
	if e.opts.MaskBody != nil {
		d.Body = r.maskBodyWith(e.opts.MaskBody)
	}
	d.BodyBytes = int64(len(req.Body))
	return d
}

// refusalReason is the refusal's ErrorInfo reason, with why for
// UNAUTHENTICATED ("UNAUTHENTICATED: expired").
func refusalReason(f *Refusal) string {
	if why := f.Metadata["why"]; why != "" {
		return f.Reason + ": " + why
	}
	return f.Reason
}
