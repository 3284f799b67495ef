// Package extauthz is the Envoy ext_authz v3 gRPC server. It translates a
// CheckRequest into an authz.Request, asks the authz engine, and turns the
// Result into a CheckResponse; the translation stops here.
package extauthz

import (
	"context"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/handoff"
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

// Register adds the server to a gRPC server. Any protobuf codec serves
// it; the server's own (GRPCServerOptions) serves it faster.
func (s *Server) Register(r grpc.ServiceRegistrar) { r.RegisterService(&serviceDesc, s) }

// Check answers one ext_authz request. Refusals are Denied responses with a
// nil error; the error return is never used, so Envoy never falls back to
// status_on_error for a decision airlock made.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return response(s.decider.Decide(ctx, requestFromCheck(req))), nil
}

// partialBodyHeader is set by Envoy when it truncated the body it sent.
const partialBodyHeader = "x-envoy-auth-partial-body"

func requestFromCheck(req *authv3.CheckRequest) authz.Request {
	return fieldsOf(req).request()
}

// checkFields are what a Check reads of a CheckRequest, from the message
// (fieldsOf) or from its wire bytes (decodeCheck).
type checkFields struct {
	method, host, path string
	headers            map[string]string
	headerMap          *corev3.HeaderMap
	rawBody            []byte
	body               string
	time               time.Time
	source             string
}

func fieldsOf(req *authv3.CheckRequest) checkFields {
	h := req.GetAttributes().GetRequest().GetHttp()
	f := checkFields{
		method: h.GetMethod(), host: h.GetHost(), path: h.GetPath(),
		headers: h.GetHeaders(), headerMap: h.GetHeaderMap(),
		rawBody: h.GetRawBody(), body: h.GetBody(),
		source: req.GetAttributes().GetSource().GetAddress().GetSocketAddress().GetAddress(),
	}
	if ts := req.GetAttributes().GetRequest().GetTime(); ts != nil {
		f.time = ts.AsTime()
	}
	return f
}

// request is the authz request of a Check: headers from the map Envoy
// sends by default or from header_map (encode_raw_headers), the body from
// raw_body (pack_as_bytes) or body, and the pseudo-headers standing in for
// the method, host and path when Envoy left them out.
func (f checkFields) request() authz.Request {
	headers := f.headers
	if len(headers) == 0 && f.headerMap != nil {
		headers = envoyhdr.Map(f.headerMap)
	} else if len(headers) > 0 {
		headers = lowerKeys(headers)
	}
	if headers == nil {
		headers = map[string]string{}
	}
	body := f.rawBody
	if len(body) == 0 && f.body != "" {
		body = []byte(f.body)
	}
	method, host, path := f.method, f.host, f.path
	if method == "" {
		method = headers[":method"]
	}
	if host == "" {
		host = headers[":authority"]
	}
	if path == "" {
		path = headers[":path"]
	}
	return authz.Request{
		ID:          headers[handoff.RequestIDHeader],
		Method:      method,
		Host:        host,
		Path:        path,
		Headers:     headers,
		Body:        body,
		BodyPartial: headers[partialBodyHeader] == "true",
		Time:        f.time,
		Source:      f.source,
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
