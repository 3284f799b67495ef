// Package authz is airlock's decision pipeline: identity, GCP operation,
// policy and approval, from a plain request to a plain result. The ext_authz
// server translates Envoy's CheckRequest into a Request and a Result back
// into a CheckResponse; nothing here knows about gRPC or Envoy protos.
package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/resources"
)

// Request is one HTTP request as Envoy presented it for authorization.
type Request struct {
	// ID correlates the request across events (x-request-id when present).
	ID string
	// Method, Host and Path are :method, :authority and :path (with query) as sent.
	Method string
	Host   string
	Path   string
	// Headers have lower-case names and may include pseudo-headers.
	Headers map[string]string
	// Body is the request body Envoy buffered, possibly truncated.
	Body []byte
	// BodyPartial is true when Envoy said the body was truncated.
	BodyPartial bool
	// Time is when the request started.
	Time time.Time
	// Source is the peer address Envoy saw (attributes.source.address).
	Source string
	// Mode says how the decision is used; Envoy's Checks are enforced.
	Mode Mode
	// Justification is why the requester asks, with ModeRequestApproval.
	Justification string
}

// Approvals is the approval gate the engine consults for approve decisions.
type Approvals interface {
	Gate(ctx context.Context, req approvals.Request, hold time.Duration) (approvals.Outcome, error)
	// Release gives back a granted Outcome's claim on a once grant when
	// the request is refused after all.
	Release(ctx context.Context, out approvals.Outcome) error
	ApproveURL(id string) string
}

// Sessions resolves the session a request belongs to.
type Sessions interface {
	Session(ctx context.Context, subject, requested string) (string, error)
}

// Recorder receives every decision, refusals included. An error means the
// decision could not be made durable and the request must be refused.
type Recorder interface {
	RecordDecision(ctx context.Context, d handoff.Decision) error
}

// Options configure an Engine.
type Options struct {
	Verifier   identity.Verifier
	Recognizer *gcp.Recognizer
	Policies   *policies.Set
	// Approvals may be nil: approve decisions then answer UNAVAILABLE.
	Approvals Approvals
	// Hold is how long an approve decision waits for a human before refusing.
	Hold time.Duration
	// Sessions may be nil: the session id is then the x-airlock-session
	// header, validated, or empty.
	Sessions Sessions
	// Recorder may be nil.
	Recorder Recorder
	// Timeout bounds one decision, Hold excluded; zero means one second.
	Timeout time.Duration
	// Resources looks up what Google holds about a request's resource
	// (resource.*, gcp.project from a number or a bucket); nil when lookups
	// are not configured.
	Resources resources.Backend
	// MaxBodyBytes bounds the body parsed as JSON for policies.
	MaxBodyBytes int
	// Unrecognised says what happens to a request whose operation airlock
	// cannot recognise; "" is RefuseUnrecognised.
	Unrecognised Unrecognised
	// SinkGuard refuses, before policy, requests that touch the
	// recorder's sink; nil guards nothing.
	SinkGuard *SinkGuard
	// MaskBody masks a request body with the default profile and the
	// request's selected masking rules before approvers (and their
	// webhooks) see an excerpt of it. Nil shows no body at all.
	MaskBody func(body []byte, rules []masking.Rule) []byte
	Metrics  *Metrics
	Logger   *slog.Logger
	Now      func() time.Time
	// MCP recognises requests to Google's MCP endpoints; nil treats them
	// as unknown operations.
	MCP *mcp.Recognizer
	// MCPMaxHold caps Hold for MCP requests, so that a held tool call is
	// answered before the MCP client gives up; zero answers a held MCP
	// call at once (its approval pending).
	MCPMaxHold time.Duration
	// MCPFilterTools passes what tools/list filtering needs (the caller's
	// identity) to ext_proc with an allowed tools/list.
	MCPFilterTools bool
}

// Engine decides requests. It is safe for concurrent use; the policy set is
// swapped atomically on reload.
type Engine struct {
	opts     Options
	policies atomic.Pointer[policies.Set]
	log      *slog.Logger
	now      func() time.Time
}

// New returns an Engine. Verifier, Recognizer and Policies are required.
func New(opts Options) (*Engine, error) {
	if opts.Verifier == nil || opts.Recognizer == nil || opts.Policies == nil {
		return nil, errors.New("authz: a verifier, a recognizer and a policy set are required")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Second
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	mode, err := ParseUnrecognised(string(opts.Unrecognised))
	if err != nil {
		return nil, err
	}
	opts.Unrecognised = mode
	e := &Engine{opts: opts, log: opts.Logger, now: opts.Now}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	e.policies.Store(opts.Policies)
	return e, nil
}

// SetPolicies replaces the policy set used by later decisions.
func (e *Engine) SetPolicies(s *policies.Set) { e.policies.Store(s) }

// Policies returns the policy set in use.
func (e *Engine) Policies() *policies.Set { return e.policies.Load() }

// Decide runs the pipeline for one request. It never returns an error: every
// failure is a refusal the agent can read.
func (e *Engine) Decide(ctx context.Context, req Request) *Result {
	start := e.now()
	res := e.decide(ctx, req)
	res.Request = &req
	if res.RequestID == "" {
		res.RequestID = req.ID
	}
	if e.opts.Recorder != nil {
		if err := e.opts.Recorder.RecordDecision(ctx, e.record(res)); err != nil {
			e.log.Error("recording the decision failed; refusing", "request_id", res.RequestID, "err", err)
			res = unavailable(res, "the session recorder cannot store this request, so it is refused; retry later")
		}
	}
	if res.claim != nil && res.Outcome != Allowed {
		e.release(ctx, res)
	}
	if res.Refusal != nil {
		e.mcpRefusal(res, req)
	} else if res.MCP != nil {
		res.mcpMeta = e.mcpMetadata(res)
	}
	if m := e.opts.Metrics; m != nil && req.Mode == ModeEnforce {
		m.observe(res, e.now().Sub(start))
	}
	e.logDecision(res)
	return res
}

func (e *Engine) decide(ctx context.Context, req Request) *Result {
	res := &Result{RequestID: e.requestID(req.ID)}
	outer := ctx
	budget := withDeadline(ctx, e.opts.Timeout)
	defer budget.stop()
	ctx = budget

	token, err := identity.BearerToken(req.Headers)
	if err != nil {
		return unauthenticated(res, err)
	}
	id, err := e.opts.Verifier.Verify(ctx, token)
	if err != nil {
		return unauthenticated(res, err)
	}
	res.Identity = id

	rec, err := e.opts.Recognizer.Recognize(gcp.Request{
		Method:       req.Method,
		Host:         req.Host,
		Path:         req.Path,
		Headers:      req.Headers,
		Body:         req.Body,
		BodyPartial:  req.BodyPartial,
		MaxBodyBytes: e.opts.MaxBodyBytes,
	})
	if err != nil {
		return badRequest(res, err)
	}
	res.Recognized = rec
	if e.opts.MCP != nil && rec.Operation.Method == "" && mcp.IsEndpoint(rec.Host, rec.Path) {
		if err := e.recognizeMCP(res, req); err != nil {
			return mcpRefused(res, err)
		}
		rec = res.Recognized
		if why := e.mcpSinkGuard(res.MCP, req); why != "" {
			return sinkRefused(res, why)
		}
	}
	if why := e.opts.SinkGuard.Check(rec, req); why != "" {
		return sinkRefused(res, why)
	}
	if err := refusedBeforePolicy(rec, e.opts.Unrecognised); err != nil {
		return badRequest(res, err)
	}

	requested := req.Headers[handoff.SessionHeader]
	if requested != "" && !handoff.ValidSessionName(requested) {
		return badRequest(res, fmt.Errorf("the %s header must be 1 to 64 characters of letters, digits, '.', '_' or '-', starting with a letter or digit", handoff.SessionHeader))
	}
	if e.opts.Sessions != nil {
		sid, err := e.opts.Sessions.Session(ctx, id.Subject, requested)
		if err != nil {
			e.log.Error("session lookup failed", "request_id", res.RequestID, "err", err)
			return unavailable(res, "the session store cannot be reached; retry later")
		}
		res.SessionID = sid
	} else {
		res.SessionID = requested
	}

	set := e.policies.Load()
	now := req.Time
	if now.IsZero() {
		now = e.now()
	}
	var dec policies.Decision
	if res.MCP != nil {
		dec = e.evaluateMCP(ctx, set, res.MCP, rec, id, req, res.SessionID, now)
	} else {
		dec = e.evaluate(ctx, set, rec, id, req, res.SessionID, now)
	}
	res.Decision = dec
	if ctx.Err() != nil {
		// An expired deadline after evaluation fails closed.
		return unavailable(res, "the decision did not finish in time; retry later")
	}
	if dec.Refused() {
		// The outcome depended on a resource that could not be looked up.
		e.log.Warn("resource lookup failed; refusing", "request_id", res.RequestID, "err", dec.Unavailable)
		return unavailable(res, "a policy needs "+dec.Unavailable+"; retry later")
	}

	switch dec.Action {
	case policies.Allow:
		res.Outcome = Allowed
		return res
	case policies.Deny:
		return denied(res)
	case policies.Approve:
		return e.approve(outer, res, req)
	}
	return denied(res)
}

// evaluate decides a request, part by part for batches: the strongest
// action of any part wins, so one forbidden operation refuses the batch.
func (e *Engine) evaluate(ctx context.Context, set *policies.Set, rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time) policies.Decision {
	if rec.Parts == nil {
		return set.Evaluate(ctx, e.input(set, rec, id, req, session, now))
	}
	inputs := make([]policies.Input, len(rec.Parts))
	for i, part := range rec.Parts {
		inputs[i] = e.input(set, part, id, req, session, now)
	}
	return strongest(ctx, set, inputs, "the batch request holds no operation")
}

// strongest decides several inputs of one request (batch parts, MCP
// messages): the strongest action wins, and the matches and masking of
// every input are kept.
func strongest(ctx context.Context, set *policies.Set, inputs []policies.Input, empty string) policies.Decision {
	var out policies.Decision
	unavailable := ""
	for _, in := range inputs {
		d := set.Evaluate(ctx, in)
		if unavailable == "" {
			unavailable = d.Unavailable
		}
		if out.Action == 0 || d.Action > out.Action {
			matches := append(out.Matches, d.Matches...)
			masking := append(out.Masking, d.Masking...)
			out = d
			out.Matches, out.Masking = matches, masking
		} else {
			out.Matches = append(out.Matches, d.Matches...)
			out.Masking = append(out.Masking, d.Masking...)
		}
	}
	if out.Action == 0 {
		out = policies.Decision{Action: policies.Deny, Message: empty}
	}
	out.Unavailable = unavailable
	return out
}

// input builds the policy input of one (part of a) request, with the
// resource lookups of its own operation when they are configured.
func (e *Engine) input(set *policies.Set, rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time) policies.Input {
	// The headers are copied without credentials only for a set that
	// reads request.headers (the set that then evaluates this input).
	in := buildInput(rec, id, req, session, now, set.Uses("request.headers"))
	if e.opts.Resources != nil {
		in.Resources = resources.ForRequest(e.opts.Resources, rec.Operation)
	}
	return in
}

// buildInput is what policies see of one (part of a) request: the body as
// the recogniser read it, a batch part's own body for a part; the headers
// when withHeaders (without them request.headers is an empty map).
func buildInput(rec gcp.Recognized, id identity.Identity, req Request, session string, now time.Time, withHeaders bool) policies.Input {
	var headers map[string]string
	if withHeaders {
		headers = policyHeaders(req.Headers)
	}
	return policies.Input{
		Request: policies.Request{
			Method:    rec.Method,
			Host:      rec.Host,
			Path:      rec.Path,
			Query:     rec.Query,
			Headers:   headers,
			Body:      rec.BodyJSON,
			BodyError: rec.BodyUnreadable,
		},
		Identity:  id,
		GCP:       rec.Operation,
		SessionID: session,
		Now:       now,
	}
}

func policyHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if strings.HasPrefix(k, ":") || handoff.CredentialHeader(k, v) {
			continue
		}
		out[k] = v
	}
	return out
}

// release gives back the once grant a refused request claimed, so that
// the grant is not spent on a request that never went out.
func (e *Engine) release(ctx context.Context, res *Result) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.opts.Timeout)
	defer cancel()
	if err := e.opts.Approvals.Release(rctx, *res.claim); err != nil {
		e.log.Error("releasing the claimed grant of a refused request failed; the grant stays spent", "request_id", res.RequestID, "approval_id", res.claim.Approval.ID, "err", err)
	}
	res.claim = nil
}

func (e *Engine) approve(ctx context.Context, res *Result, req Request) *Result {
	if e.opts.Approvals == nil {
		return unavailable(res, "approvals are not configured on this gateway, so a request that needs approval cannot proceed")
	}
	dec := res.Decision
	spec := policies.ApprovalSpec{MinApprovals: 1, Grant: "once"}
	if dec.Approval != nil {
		spec = *dec.Approval
	}
	if req.Mode == ModeDryRun {
		return dryRunApproval(res, spec)
	}
	rec := res.Recognized
	fp, err := Binding{
		Issuer: res.Identity.Issuer, Subject: res.Identity.Subject,
		Policy: dec.Policy, Rule: dec.Rule,
		Request: rec, Headers: req.Headers, Body: req.Body, BodyPartial: req.BodyPartial,
		MCP: res.MCP,
	}.Fingerprint()
	var ue *UnbindableError
	if errors.As(err, &ue) {
		return unbindableApproval(res, ue.Msg)
	}
	if err != nil {
		e.log.Error("fingerprint failed", "request_id", res.RequestID, "err", err)
		return unavailable(res, "the request could not be bound to an approval; retry later")
	}
	ar := approvals.Request{
		Fingerprint:  fp,
		Issuer:       res.Identity.Issuer,
		Subject:      res.Identity.Subject,
		Email:        res.Identity.Email,
		Actor:        res.Identity.Actor,
		Operation:    approvalOperation(res),
		Resource:     rec.Operation.Resource,
		Method:       rec.Method,
		URL:          e.approvalURL(rec, req.Path),
		BodyExcerpt:  e.bodyExcerpt(res, req.Body, dec.Masking),
		Policy:       dec.Policy,
		Rule:         dec.Rule,
		Message:      dec.Message,
		Approvers:    spec.Approvers,
		MinApprovals: spec.MinApprovals,
		Grant:        spec.Grant,
		TTL:          spec.TTL,
		SessionID:    res.SessionID,
		RequestID:    res.RequestID,
	}
	if req.Mode == ModeRequestApproval {
		ar.Justification = e.justification(req.Justification, dec.Masking)
	}
	// The gate may hold up to Hold beyond the decision timeout. It follows
	// the caller's context (Envoy's stream, whose timeout must exceed
	// Hold), so a request Envoy gave up on stops waiting.
	hold := e.opts.Hold
	if res.MCP != nil && hold > e.opts.MCPMaxHold {
		hold = e.opts.MCPMaxHold
	}
	if req.Mode == ModeRequestApproval {
		hold = 0
	}
	gctx, cancel := context.WithTimeout(ctx, e.opts.Timeout+hold)
	defer cancel()
	out, err := e.opts.Approvals.Gate(gctx, ar, hold)
	if errors.Is(err, approvals.ErrInvalid) {
		// The rule cannot be satisfied as written: a policy fault, not an
		// outage. Refuse, naming the rule, so its owner can fix it.
		e.log.Error("approval rule cannot be applied", "request_id", res.RequestID, "policy", dec.Policy, "rule", dec.Rule, "err", err)
		res.Decision.Message = "the approval rule cannot be applied (" + strings.TrimPrefix(err.Error(), "approvals: ") + "); ask the policy's owner to fix it"
		res.Decision.Action = policies.Deny
		return denied(res)
	}
	if err != nil {
		e.log.Error("approval store failed", "request_id", res.RequestID, "err", err)
		return unavailable(res, "the approval store cannot be reached, so a request that needs approval cannot proceed; retry later")
	}
	if out.QueueFull {
		return approvalQueueFull(res, out.Limit)
	}
	res.Approval = &out.Approval
	if out.Granted && req.Mode == ModeRequestApproval {
		// Asking ahead never spends a grant: a once grant goes back.
		if err := e.opts.Approvals.Release(ctx, out); err != nil {
			e.log.Error("giving back a grant found while asking ahead failed; the grant stays spent", "approval_id", out.Approval.ID, "err", err)
		}
		res.Outcome = Allowed
		return res
	}
	if out.Granted {
		res.Outcome = Allowed
		res.claim = &out
		return res
	}
	res.ApproveURL = e.opts.Approvals.ApproveURL(out.Approval.ID)
	if out.Approval.State == approvals.StateDenied {
		return approvalDenied(res)
	}
	return approvalRequired(res)
}

// approvalURL is the URL approvers (and webhooks) see: the query, where
// an API key may travel (?key=), masked, or not shown without a masker.
func (e *Engine) approvalURL(rec gcp.Recognized, rawPath string) string {
	q := ""
	if i := strings.IndexByte(rawPath, '?'); i >= 0 {
		q = rawPath[i:]
		if e.opts.MaskBody == nil {
			q = "?(query not shown)"
		} else {
			q = string(e.opts.MaskBody([]byte(q), nil))
		}
	}
	return "https://" + rec.Host + rec.Path + q
}

// bodyExcerpt is what approvers see of a request body: masked first (a
// secret cut in half by truncation would escape the detectors), then cut.
func (e *Engine) bodyExcerpt(res *Result, body []byte, rules []masking.Rule) string {
	if len(body) == 0 {
		return ""
	}
	if e.opts.MaskBody == nil {
		return fmt.Sprintf("(%d bytes, not shown)", len(body))
	}
	res.maskedBody = e.opts.MaskBody(body, rules)
	return excerpt(res.maskedBody, approvals.MaxBodyLen)
}

func excerpt(b []byte, n int) string {
	if len(b) > n {
		b = b[:n]
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// requestID is the ID a decision goes by: the request's x-request-id when
// it is one Envoy or Istio makes (a UUID), or another short ID of letters,
// digits and . _ : - that the masker leaves as it is; else a new one. The
// ID is written as it is into logs, recordings, refusals and Envoy's
// metadata, and an agent may send the header itself (Envoy keeps the
// x-request-id of an internal request): a value a detector flags, or an
// odd one, is not used. A UUID is not masked first (handoff.IsUUID).
func (e *Engine) requestID(id string) string {
	if id == "" || len(id) > 128 {
		return newID()
	}
	if handoff.IsUUID(id) {
		return id
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == ':', c == '-':
		default:
			return newID()
		}
	}
	if e.opts.MaskBody != nil && string(e.opts.MaskBody([]byte(id), nil)) != id {
		return newID()
	}
	return id
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (e *Engine) logDecision(r *Result) {
	if !e.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	method, host, path := r.Recognized.Method, r.Recognized.Host, r.Recognized.Path
	if method == "" && r.Request != nil {
		// Refused before recognition: log what was sent, query excluded
		// (it may carry a key or token).
		method, host = r.Request.Method, r.Request.Host
		path, _, _ = strings.Cut(r.Request.Path, "?")
		if len(path) > 512 {
			path = path[:512]
		}
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.RequestID),
		slog.String("outcome", r.Outcome.String()),
		slog.String("subject", r.Identity.Subject),
		slog.String("actor", r.Identity.Actor),
		slog.String("session", r.SessionID),
		slog.String("method", method),
		slog.String("host", host),
		slog.String("path", path),
		slog.String("gcp_method", r.Recognized.Operation.Method),
		slog.String("policy", r.Decision.Policy),
		slog.String("rule", r.Decision.Rule),
	}
	if r.MCP != nil {
		attrs = append(attrs, slog.Any("mcp", r.MCP.Names()))
	}
	e.log.LogAttrs(context.Background(), slog.LevelInfo, "decision", attrs...)
}
