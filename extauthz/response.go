package extauthz

import (
	"sort"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/handoff"
)

// headersToRemove are removed from every allowed request:
//   - authorization, proxy-authorization: the agent's own credential stays
//     away from Google; Envoy's credential injector sets the real one after
//     this filter.
//   - range, if-range: a slice of a body can start past the marker that
//     masking needs to find a secret (the "-----BEGIN" line of a private
//     key), so no range reaches Google; a full 200 is a legal answer to a
//     range request.
var headersToRemove = []string{"authorization", "proxy-authorization", "range", "if-range"}

// queryToRemove: Google also reads an OAuth token from the query string
// (access_token, and the older oauth_token); the agent's token never travels
// upstream that way either. Envoy matches these names as sent, so the
// recogniser refuses escaped spellings of them.
var queryToRemove = []string{"access_token", "oauth_token"}

func response(r *authz.Result) *authv3.CheckResponse {
	if r.Outcome == authz.Allowed {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				HeadersToRemove:         headersToRemove,
				QueryParametersToRemove: queryToRemove,
			}},
			DynamicMetadata: metadataStruct(r.Metadata()),
		}
	}
	f := r.Refusal
	// google.rpc.Code and gRPC codes share their numbers.
	code := codes.Code(f.Code)
	if code == codes.OK {
		code = codes.PermissionDenied // a refusal is never OK
	}
	headers := make([]*corev3.HeaderValueOption, 0, 3+len(f.Headers))
	headers = append(headers,
		header("content-type", "application/json; charset=UTF-8"),
		header("x-airlock-request-id", r.RequestID),
		header("cache-control", "no-store"),
	)
	keys := make([]string, 0, len(f.Headers))
	for k := range f.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		headers = append(headers, header(k, f.Headers[k]))
	}
	return &authv3.CheckResponse{
		Status: &status.Status{Code: int32(code), Message: f.Reason},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(f.HTTPStatus)},
			Headers: headers,
			Body:    string(f.Body()),
		}},
	}
}

// header builds an ext_authz header option. Envoy reads ext_authz header
// values from `value`, never raw_value.
func header(k, v string) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}}
}

// valueArena hands out structpb values from a few slice allocations: the
// metadata is built on every allowed request.
type valueArena struct {
	vals []structpb.Value
	strs []structpb.Value_StringValue
}

func (a *valueArena) str(s string) *structpb.Value {
	a.strs = append(a.strs, structpb.Value_StringValue{StringValue: s})
	a.vals = append(a.vals, structpb.Value{})
	v := &a.vals[len(a.vals)-1]
	v.Kind = &a.strs[len(a.strs)-1]
	return v
}

// metadataStruct builds the dynamic metadata of handoff.Metadata.ToMap
// directly (no reflection through structpb.NewStruct): string fields, the
// rules as a list, the masking rules as one JSON string.
func metadataStruct(m handoff.Metadata) *structpb.Struct {
	n := 7 + len(m.Rules)
	a := &valueArena{vals: make([]structpb.Value, 0, n+1), strs: make([]structpb.Value_StringValue, 0, n)}
	rules := make([]*structpb.Value, len(m.Rules))
	for i, r := range m.Rules {
		rules[i] = a.str(r)
	}
	a.vals = append(a.vals, structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: rules}}})
	rulesVal := &a.vals[len(a.vals)-1]
	fields := make(map[string]*structpb.Value, 8)
	fields[handoff.KeyRequestID] = a.str(m.RequestID)
	fields[handoff.KeySessionID] = a.str(m.SessionID)
	fields[handoff.KeySubject] = a.str(m.Subject)
	fields[handoff.KeyActor] = a.str(m.Actor)
	fields[handoff.KeyGCPMethod] = a.str(m.GCPMethod)
	fields[handoff.KeyDecision] = a.str(m.Decision)
	fields[handoff.KeyRules] = rulesVal
	fields[handoff.KeyMasking] = a.str(m.MaskingJSON())
	if m.MCP != nil {
		fields[handoff.KeyMCP] = structpb.NewStringValue(m.MCPJSON())
	}
	return &structpb.Struct{Fields: fields}
}
