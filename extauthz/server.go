// Package extauthz is the Envoy ext_authz v3 gRPC server. It translates a
// CheckRequest into an authz.Request, asks the authz engine, and turns the
// Result into a CheckResponse; the translation stops here.
package extauthz

import (
	"context"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/internal/envoyhdr"
)

// Decider is the decision pipeline the server consults.
type Decider interface {
	Decide(ctx context.Context, req authz.Request) *authz.Result
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	decider Decider
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// New returns a Server that asks d for every decision.
func New(d Decider) *Server { return &Server{decider: d} }

// Register adds the server to a gRPC server.
func (s *Server) Register(r grpc.ServiceRegistrar) { authv3.RegisterAuthorizationServer(r, s) }

// Check answers one ext_authz request. Refusals are Denied responses with a
// nil error; the error return is never used, so Envoy never falls back to
// status_on_error for a decision airlock made.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return response(s.decider.Decide(ctx, requestFromCheck(req))), nil
}

// partialBodyHeader is set by Envoy when it truncated the body it sent.
const partialBodyHeader = "x-envoy-auth-partial-body"

func requestFromCheck(req *authv3.CheckRequest) authz.Request {
	h := req.GetAttributes().GetRequest().GetHttp()
	headers := h.GetHeaders()
	if len(headers) == 0 && h.GetHeaderMap() != nil {
		headers = envoyhdr.Map(h.GetHeaderMap())
	} else if len(headers) > 0 {
		headers = lowerKeys(headers)
	}
	if headers == nil {
		headers = map[string]string{}
	}
	body := h.GetRawBody()
	if len(body) == 0 && h.GetBody() != "" {
		body = []byte(h.GetBody())
	}
	method, host, path := h.GetMethod(), h.GetHost(), h.GetPath()
	if method == "" {
		method = headers[":method"]
	}
	if host == "" {
		host = headers[":authority"]
	}
	if path == "" {
		path = headers[":path"]
	}
	var t time.Time
	if ts := req.GetAttributes().GetRequest().GetTime(); ts != nil {
		t = ts.AsTime()
	}
	id := headers["x-request-id"]
	return authz.Request{
		ID:          id,
		Method:      method,
		Host:        host,
		Path:        path,
		Headers:     headers,
		Body:        body,
		BodyPartial: headers[partialBodyHeader] == "true",
		Time:        t,
		Source:      req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(),
	}
}

func lowerKeys(h map[string]string) map[string]string {
	for k := range h {
		if strings.ToLower(k) != k {
			out := make(map[string]string, len(h))
			for k, v := range h {
				out[strings.ToLower(k)] = v
			}
			return out
		}
	}
	return h
}
