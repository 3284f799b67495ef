// Package mcpserver is airlock's own MCP server for agents: it lets an
// agent ask airlock, before it acts, what airlock would decide, ask for an
// approval ahead of time with its reasons, follow that approval, and list
// the grants it holds. It is served on listen.http at /mcp (streamable
// HTTP, stateless) and by `airlock mcp` over stdio.
//
// Every call is made with the agent's own OIDC token (Authorization:
// Bearer), the token it sends through the gateway; the server is an OAuth
// protected resource (RFC 9728 metadata at
// /.well-known/oauth-protected-resource/mcp, a 401 with
// WWW-Authenticate: Bearer resource_metadata=... without a valid token).
// The tools decide with the gateway's own pipeline (authz.Engine), so an
// answer here is the answer the request will get. No tool approves
// anything: approving is a human act, through the approvals API and page.
//
// Tools:
//   - explain_request: a dry run of a REST request or an MCP tool call:
//     the decision, the rules and their message, the operation airlock
//     recognised, and what to do next. It asks for and spends nothing, and
//     is recorded as a dry run.
//   - request_approval: opens the pending approval the request would meet,
//     with the agent's justification (masked) for the approvers: its id,
//     the approver page URL and its expiry. A request that needs no
//     approval, or is denied, is said so; an approval that already exists
//     is returned, never spent.
//   - get_approval, wait_for_approval: the state of one of the caller's
//     approvals; wait_for_approval waits at most Options.MaxWait (50 s)
//     for a decision and then answers "still pending".
//   - list_my_grants: the approved window grants the caller holds, with
//     their expiry.
package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/handoff"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/mcp"
)

// Decider is the gateway's decision pipeline.
type Decider interface {
	Decide(ctx context.Context, req authz.Request) *authz.Result
}

// Approvals is what the server reads of approvals.
type Approvals interface {
	Get(ctx context.Context, id string) (approvals.Approval, error)
	Wait(ctx context.Context, id string, wait time.Duration) (approvals.Approval, error)
	List(ctx context.Context, o approvals.ListOptions) (approvals.ListResult, error)
	ApproveURL(id string) string
}

// Options configure the server.
type Options struct {
	Decider   Decider
	Verifier  identity.Verifier
	Approvals Approvals
	// PublicURL is airlock's base URL (approvals.public_url): the resource
	// is PublicURL/mcp.
	PublicURL string
	// Issuers are the authorization servers agents get tokens from.
	Issuers []string
	// MaxWait bounds wait_for_approval (default and most 50 s).
	MaxWait time.Duration
	// Version is airlock's version.
	Version string
	Logger  *slog.Logger
	// Now is time.Now.
	Now func() time.Time
}

// MaxWait is the longest wait_for_approval waits: below the 60 s after
// which MCP clients commonly give up on a call.
const MaxWait = 50 * time.Second

// Path is where the server is served on listen.http.
const Path = "/mcp"

// MetadataPath serves the protected resource metadata of Path.
const MetadataPath = "/.well-known/oauth-protected-resource/mcp"

type server struct {
	opts Options
}

// New returns the MCP server (the tools); Handler serves it over HTTP.
func New(opts Options) *sdk.Server {
	if opts.MaxWait <= 0 || opts.MaxWait > MaxWait {
		opts.MaxWait = MaxWait
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &server{opts: opts}
	srv := sdk.NewServer(&sdk.Implementation{Name: "airlock", Title: "airlock: policy, approvals and recording for Google Cloud", Version: opts.Version},
		&sdk.ServerOptions{Instructions: instructions, Logger: opts.Logger})
	ro, rw := true, false
	f := false
	sdk.AddTool(srv, &sdk.Tool{Name: "explain_request", Description: explainDoc,
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: ro, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}}, s.explain)
	sdk.AddTool(srv, &sdk.Tool{Name: "request_approval", Description: requestDoc,
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: rw, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}}, s.requestApproval)
	sdk.AddTool(srv, &sdk.Tool{Name: "get_approval", Description: "The state of one of your approvals: pending, approved, denied or expired, who voted and why, when it expires.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: ro, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}}, s.getApproval)
	sdk.AddTool(srv, &sdk.Tool{Name: "wait_for_approval", Description: fmt.Sprintf("Wait up to %d seconds for a human to decide one of your approvals; answers at once when it is decided, else 'still pending' (call again).", int(opts.MaxWait/time.Second)),
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: ro, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}}, s.waitForApproval)
	sdk.AddTool(srv, &sdk.Tool{Name: "list_my_grants", Description: "The approved window grants you hold (requests you may repeat until they expire), with their expiry.",
		Annotations: &sdk.ToolAnnotations{ReadOnlyHint: ro, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &f}}, s.listGrants)
	return srv
}

const instructions = "airlock governs this agent's requests to Google Cloud (REST and Google's MCP servers). Before a risky request, call explain_request to learn what airlock will decide; when a human must approve, call request_approval with your justification, then wait_for_approval, then send the request itself once approved."

const explainDoc = "Dry-run a Google Cloud request through airlock's policies without sending it: a REST request (method, url, body) or a call to a tool of one of Google's MCP servers (server or url, tool, arguments). Returns the decision (allowed, policy_denied, approval_required, invalid, ...), the rules and their message, the operation airlock recognised and what to do next. Nothing is sent, asked for or spent; the dry run is recorded."

const requestDoc = "Ask a human ahead of time to approve a Google Cloud request (REST, or an MCP tool call) that airlock holds for approval, with your justification. Returns the approval id, the approver page URL and the expiry; once approved, send the request itself (the same method, URL and body, or the same tool and arguments). Nothing is sent to Google."

// Handler serves the server over streamable HTTP (stateless), behind the
// caller's bearer token.
func Handler(opts Options) http.Handler {
	srv := New(opts)
	// Every call carries a bearer token, which a browser never adds on its
	// own: DNS rebinding gains nothing, and airlock usually sits behind a
	// proxy whose Host is its public name.
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return srv }, &sdk.StreamableHTTPOptions{Stateless: true, Logger: opts.Logger, DisableLocalhostProtection: true})
	verify := func(ctx context.Context, token string, _ *http.Request) (*auth.TokenInfo, error) {
		id, err := opts.Verifier.Verify(ctx, token)
		if err != nil {
			var ie *identity.Error
			if errors.As(err, &ie) && ie.Kind == identity.Unavailable {
				return nil, fmt.Errorf("airlock: the token issuer's keys cannot be fetched; retry later: %s", ie.Msg)
			}
			return nil, fmt.Errorf("%w: airlock: %s", auth.ErrInvalidToken, strings.TrimPrefix(err.Error(), "identity: "))
		}
		return &auth.TokenInfo{UserID: id.Issuer + " " + id.Subject, Expiration: id.Expiry, Extra: map[string]any{callerKey: &caller{id: id, token: token}}}, nil
	}
	return auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{
		ResourceMetadataURL:    strings.TrimSuffix(opts.PublicURL, "/") + MetadataPath,
		AllowMissingExpiration: true,
	})(h)
}

// MetadataHandler serves the protected resource metadata (RFC 9728).
func MetadataHandler(opts Options) http.Handler {
	return auth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
		Resource:               strings.TrimSuffix(opts.PublicURL, "/") + Path,
		AuthorizationServers:   opts.Issuers,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           "airlock",
	})
}

const callerKey = "airlock.caller"

// caller is who calls a tool, with the token they presented.
type caller struct {
	id    identity.Identity
	token string
}

func callerOf(req *sdk.CallToolRequest) (*caller, error) {
	if req.Extra != nil && req.Extra.TokenInfo != nil {
		if c, ok := req.Extra.TokenInfo.Extra[callerKey].(*caller); ok {
			return c, nil
		}
	}
	return nil, errors.New("airlock: this tool needs the caller's token (Authorization: Bearer)")
}

// RequestInput describes a request: a REST request, or a tool call to one
// of Google's MCP servers.
type RequestInput struct {
	Method    string            `json:"method,omitempty" jsonschema:"the HTTP method of a REST request (GET by default)"`
	URL       string            `json:"url,omitempty" jsonschema:"the request URL: https://SERVICE.googleapis.com/... for REST, or a Google MCP endpoint (https://compute.googleapis.com/mcp) for a tool call"`
	Body      any               `json:"body,omitempty" jsonschema:"the JSON body of a REST request"`
	Headers   map[string]string `json:"headers,omitempty" jsonschema:"request headers that matter to the request (not Authorization)"`
	Server    string            `json:"server,omitempty" jsonschema:"for an MCP tool call without url: the Google MCP server, e.g. compute, bigquery, container, run, sqladmin, logging"`
	Tool      string            `json:"tool,omitempty" jsonschema:"for an MCP tool call: the tool, e.g. delete_instance"`
	Arguments map[string]any    `json:"arguments,omitempty" jsonschema:"for an MCP tool call: its arguments"`
}

// RequestApprovalInput is a request and why the agent needs it.
type RequestApprovalInput struct {
	RequestInput
	Justification string `json:"justification" jsonschema:"why this request is needed, for the approvers"`
}

// Operation is what airlock recognised.
type Operation struct {
	Service  string `json:"service,omitempty"`
	Method   string `json:"method,omitempty"`
	Project  string `json:"project,omitempty"`
	Location string `json:"location,omitempty"`
	Resource string `json:"resource,omitempty"`
	ReadOnly bool   `json:"readonly"`
	// MCP describes a tool call.
	MCP *MCPCall `json:"mcp,omitempty"`
}

// MCPCall is a tool call as airlock recognised it.
type MCPCall struct {
	Server      string `json:"server"`
	Tool        string `json:"tool"`
	ReadOnly    bool   `json:"readonly"`
	Destructive bool   `json:"destructive"`
	// Mapped is true when the tool performs a REST method airlock knows.
	Mapped bool `json:"mapped"`
}

// Decision is what airlock decided of a request.
type Decision struct {
	// Decision is allowed, policy_denied, approval_required,
	// approval_denied, invalid or unavailable.
	Decision string   `json:"decision"`
	Rules    []string `json:"rules,omitempty"`
	Reason   string   `json:"reason,omitempty"`
	Message  string   `json:"message,omitempty"`
	// Operation is the operation recognised.
	Operation Operation `json:"operation"`
	// Next says what to do next.
	Next string `json:"next"`
	// Approval is the approval, for request_approval.
	Approval *ApprovalView `json:"approval,omitempty"`
}

// ApprovalView is an approval as the requester sees it.
type ApprovalView struct {
	ID            string     `json:"approval_id"`
	State         string     `json:"state"`
	Operation     string     `json:"operation,omitempty"`
	Method        string     `json:"method,omitempty"`
	URL           string     `json:"url,omitempty"`
	Rule          string     `json:"rule,omitempty"`
	Approvers     []string   `json:"approvers,omitempty"`
	Grant         string     `json:"grant,omitempty"`
	Justification string     `json:"justification,omitempty"`
	Votes         []VoteView `json:"votes,omitempty"`
	ApproveURL    string     `json:"approve_url"`
	ExpiresAt     time.Time  `json:"expires_at"`
	// GrantExpiresAt is when an approved grant ends.
	GrantExpiresAt *time.Time `json:"grant_expires_at,omitempty"`
	Next           string     `json:"next,omitempty"`
}

// VoteView is one vote.
type VoteView struct {
	By       string `json:"by"`
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

func (s *server) explain(ctx context.Context, req *sdk.CallToolRequest, in RequestInput) (*sdk.CallToolResult, Decision, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, Decision{}, err
	}
	r, err := s.request(c, in, authz.ModeDryRun, "")
	if err != nil {
		return nil, Decision{}, err
	}
	res := s.opts.Decider.Decide(ctx, r)
	return nil, view(res, false), nil
}

func (s *server) requestApproval(ctx context.Context, req *sdk.CallToolRequest, in RequestApprovalInput) (*sdk.CallToolResult, Decision, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, Decision{}, err
	}
	if strings.TrimSpace(in.Justification) == "" {
		return nil, Decision{}, errors.New("airlock: say why the request is needed (justification): the approvers read it")
	}
	r, err := s.request(c, in.RequestInput, authz.ModeRequestApproval, in.Justification)
	if err != nil {
		return nil, Decision{}, err
	}
	res := s.opts.Decider.Decide(ctx, r)
	d := view(res, true)
	if res.Approval != nil {
		d.Approval = s.approvalView(*res.Approval)
		d.Next = d.Approval.Next
	}
	return nil, d, nil
}

// view turns a result into the tool's answer.
func view(res *authz.Result, asked bool) Decision {
	d := Decision{Decision: res.Outcome.String(), Rules: res.Rules()}
	if f := res.Refusal; f != nil {
		d.Reason, d.Message = f.Reason, f.Message
	}
	op := res.Recognized.Operation
	d.Operation = Operation{Service: op.Service, Method: op.Method, Project: op.Project, Location: op.Location, Resource: op.Resource, ReadOnly: op.ReadOnly}
	if m := res.MCP; m != nil && len(m.Calls) == 1 && m.Calls[0].Kind == mcp.ToolCall {
		call := m.Calls[0]
		d.Operation.MCP = &MCPCall{Server: m.Server, Tool: call.Name, ReadOnly: call.ReadOnly, Destructive: call.Destructive, Mapped: call.REST != nil}
	}
	switch res.Outcome {
	case authz.Allowed:
		d.Next = "send the request: airlock allows it now"
		if asked {
			d.Next = "no approval is needed now: send the request"
		}
	case authz.PolicyDenied:
		d.Next = "do not send it: a policy denies it whatever you do; change the approach or ask the policy's owners"
	case authz.ApprovalRequired:
		d.Next = "a human must approve it first: call request_approval with your justification, then wait_for_approval, then send the request itself"
	case authz.ApprovalDenied:
		d.Next = "an approver denied it: do not retry; change the approach or talk to the approver"
	case authz.Invalid:
		d.Next = "airlock cannot read the request as Google would: fix it as the message says"
	case authz.Unavailable:
		d.Next = "airlock cannot decide now: retry later"
	default:
		d.Next = "see the message"
	}
	return d
}

func (s *server) approvalView(a approvals.Approval) *ApprovalView {
	v := &ApprovalView{ID: a.ID, State: string(a.State), Operation: a.Request.Operation, Method: a.Request.Method, URL: a.Request.URL,
		Rule: a.Request.Rule, Approvers: a.Request.Approvers, Grant: a.Request.Grant, Justification: a.Request.Justification,
		ApproveURL: s.opts.Approvals.ApproveURL(a.ID), ExpiresAt: a.ExpiresAt.UTC()}
	if !a.GrantExpiresAt.IsZero() {
		t := a.GrantExpiresAt.UTC()
		v.GrantExpiresAt = &t
	}
	for _, vote := range a.Votes {
		d := "deny"
		if vote.Approve {
			d = "approve"
		}
		by := vote.Email
		if by == "" {
			by = vote.Approver
		}
		v.Votes = append(v.Votes, VoteView{By: by, Decision: d, Reason: vote.Reason})
	}
	switch a.State {
	case approvals.StatePending:
		v.Next = "still pending: ask an approver (" + strings.Join(a.Request.Approvers, ", ") + ") to approve it at " + v.ApproveURL + ", then call wait_for_approval"
	case approvals.StateApproved:
		v.Next = "approved: send the request itself now (the same request as described; for an MCP tool, the same tool and arguments)"
	case approvals.StateDenied:
		v.Next = "denied: do not send the request; change the approach or talk to the approver"
	case approvals.StateExpired:
		v.Next = "expired: ask again with request_approval if the request is still needed"
	}
	return v
}

// ApprovalInput names an approval.
type ApprovalInput struct {
	ApprovalID string `json:"approval_id" jsonschema:"the approval id (approval_id of a refusal, or of request_approval)"`
}

// WaitInput names an approval and how long to wait.
type WaitInput struct {
	ApprovalID     string `json:"approval_id" jsonschema:"the approval id"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"how long to wait, at most 50 seconds (the default)"`
}

func (s *server) own(ctx context.Context, c *caller, id string) (approvals.Approval, error) {
	if !approvals.ValidID(id) {
		return approvals.Approval{}, errors.New("airlock: approval_id is not an approval id")
	}
	a, err := s.opts.Approvals.Get(ctx, id)
	if errors.Is(err, approvals.ErrNotFound) || err == nil && !mine(a, c.id) {
		// Another requester's approval reads as no approval at all.
		return approvals.Approval{}, fmt.Errorf("airlock: no approval %s of yours (it may have expired long ago)", id)
	}
	if err != nil {
		return approvals.Approval{}, errors.New("airlock: the approval store cannot be reached; retry later")
	}
	return a, nil
}

func mine(a approvals.Approval, id identity.Identity) bool {
	return a.Request.Subject == id.Subject && a.Request.Issuer == id.Issuer
}

func (s *server) getApproval(ctx context.Context, req *sdk.CallToolRequest, in ApprovalInput) (*sdk.CallToolResult, ApprovalView, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, ApprovalView{}, err
	}
	a, err := s.own(ctx, c, in.ApprovalID)
	if err != nil {
		return nil, ApprovalView{}, err
	}
	return nil, *s.approvalView(a), nil
}

func (s *server) waitForApproval(ctx context.Context, req *sdk.CallToolRequest, in WaitInput) (*sdk.CallToolResult, ApprovalView, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, ApprovalView{}, err
	}
	if _, err := s.own(ctx, c, in.ApprovalID); err != nil {
		return nil, ApprovalView{}, err
	}
	wait := s.opts.MaxWait
	if in.TimeoutSeconds > 0 && time.Duration(in.TimeoutSeconds)*time.Second < wait {
		wait = time.Duration(in.TimeoutSeconds) * time.Second
	}
	a, err := s.opts.Approvals.Wait(ctx, in.ApprovalID, wait)
	if err != nil {
		return nil, ApprovalView{}, errors.New("airlock: the approval store cannot be reached; retry later")
	}
	v := s.approvalView(a)
	if a.State == approvals.StatePending {
		v.Next = "still pending after " + strconv.Itoa(int(wait/time.Second)) + " s: call wait_for_approval again, or ask an approver (" + strings.Join(a.Request.Approvers, ", ") + ") at " + v.ApproveURL
	}
	return nil, *v, nil
}

// Grants lists grants.
type Grants struct {
	Grants []ApprovalView `json:"grants"`
}

func (s *server) listGrants(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, Grants, error) {
	c, err := callerOf(req)
	if err != nil {
		return nil, Grants{}, err
	}
	out := Grants{Grants: []ApprovalView{}}
	tok := ""
	for pages := 0; pages < 100; pages++ {
		page, err := s.opts.Approvals.List(ctx, approvals.ListOptions{State: approvals.StateApproved, PageToken: tok, PageSize: approvals.MaxPageSize,
			Visible: func(a approvals.Approval) bool { return mine(a, c.id) && a.Request.Grant == approvals.GrantWindow }})
		if err != nil {
			return nil, Grants{}, errors.New("airlock: the approval store cannot be reached; retry later")
		}
		for _, a := range page.Approvals {
			out.Grants = append(out.Grants, *s.approvalView(a))
		}
		if tok = page.NextPageToken; tok == "" {
			break
		}
	}
	return nil, out, nil
}

// request builds the request a tool describes, as Envoy would present it
// with the caller's own token.
func (s *server) request(c *caller, in RequestInput, mode authz.Mode, justification string) (authz.Request, error) {
	method := strings.ToUpper(strings.TrimSpace(in.Method))
	raw := strings.TrimSpace(in.URL)
	var body []byte
	headers := map[string]string{}
	for k, v := range in.Headers {
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(k, ":") || handoff.CredentialHeader(k, v) || k == handoff.SessionHeader {
			continue
		}
		headers[k] = v
	}
	if in.Tool != "" {
		if raw == "" {
			if in.Server == "" || strings.ContainsAny(in.Server, "./:@?#") {
				return authz.Request{}, errors.New("airlock: an MCP tool call needs its server (compute, bigquery, ...) or the endpoint url")
			}
			raw = "https://" + in.Server + ".googleapis.com/mcp"
		}
		method = "POST"
		args := in.Arguments
		if args == nil {
			args = map[string]any{}
		}
		b, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": map[string]any{"name": in.Tool, "arguments": args}})
		if err != nil {
			return authz.Request{}, err
		}
		body = b
		headers["content-type"] = "application/json"
	} else if in.Body != nil {
		switch b := in.Body.(type) {
		case string:
			body = []byte(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				return authz.Request{}, err
			}
			body = j
			if headers["content-type"] == "" {
				headers["content-type"] = "application/json"
			}
		}
	}
	if method == "" {
		method = "GET"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Scheme != "https" {
		return authz.Request{}, fmt.Errorf("airlock: url must be an absolute https URL of a Google API, not %q", raw)
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	headers[":method"], headers[":authority"], headers[":path"], headers[":scheme"] = method, u.Host, path, "https"
	headers["authorization"] = "Bearer " + c.token
	if len(body) > 0 {
		headers["content-length"] = strconv.Itoa(len(body))
	}
	id := newID()
	headers["x-request-id"] = id
	return authz.Request{ID: id, Method: method, Host: u.Host, Path: path, Headers: headers, Body: body, Time: s.opts.Now(), Source: "mcp", Mode: mode, Justification: justification}, nil
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
