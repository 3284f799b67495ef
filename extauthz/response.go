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
)

// grpcCode maps refusal HTTP statuses to the CheckResponse status code; one
// table for every outcome.
var grpcCode = map[int]codes.Code{
	400: codes.InvalidArgument,
	401: codes.Unauthenticated,
	403: codes.PermissionDenied,
	503: codes.Unavailable,
}

// headersToRemove keep the agent's own credential away from Google: Envoy's
// credential injector sets the real one after this filter.
var headersToRemove = []string{"authorization", "proxy-authorization"}

// queryToRemove: Google also reads an access token from the query string;
// the agent's token never travels upstream that way either.
var queryToRemove = []string{"access_token"}

func response(r *authz.Result) *authv3.CheckResponse {
	if r.Outcome == authz.Allowed {
		return &authv3.CheckResponse{
			Status: &status.Status{Code: int32(codes.OK)},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				HeadersToRemove:         headersToRemove,
				QueryParametersToRemove: queryToRemove,
				Headers: []*corev3.HeaderValueOption{
					header("x-airlock-request-id", r.RequestID),
				},
			}},
			DynamicMetadata: metadataStruct(r.Metadata()),
		}
	}
	f := r.Refusal
	code, ok := grpcCode[f.HTTPStatus]
	if !ok {
		code = codes.PermissionDenied
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
// metadata is built on every allowed request and one allocation per value
// would dominate the Check's cost.
type valueArena struct {
	vals  []structpb.Value
	strs  []structpb.Value_StringValue
	lists []structpb.Value_ListValue
	lvs   []structpb.ListValue
}

func newArena(strings, lists int) *valueArena {
	return &valueArena{
		vals:  make([]structpb.Value, 0, strings+lists),
		strs:  make([]structpb.Value_StringValue, 0, strings),
		lists: make([]structpb.Value_ListValue, 0, lists),
		lvs:   make([]structpb.ListValue, 0, lists),
	}
}

func (a *valueArena) str(s string) *structpb.Value {
	a.strs = append(a.strs, structpb.Value_StringValue{StringValue: s})
	a.vals = append(a.vals, structpb.Value{})
	v := &a.vals[len(a.vals)-1]
	v.Kind = &a.strs[len(a.strs)-1]
	return v
}

func (a *valueArena) list(vals []*structpb.Value) *structpb.Value {
	a.lvs = append(a.lvs, structpb.ListValue{})
	lv := &a.lvs[len(a.lvs)-1]
	lv.Values = vals
	a.lists = append(a.lists, structpb.Value_ListValue{ListValue: lv})
	a.vals = append(a.vals, structpb.Value{})
	v := &a.vals[len(a.vals)-1]
	v.Kind = &a.lists[len(a.lists)-1]
	return v
}

func (a *valueArena) strList(in []string, ptrs []*structpb.Value) *structpb.Value {
	for i, s := range in {
		ptrs[i] = a.str(s)
	}
	return a.list(ptrs[:len(in):len(in)])
}

// metadataStruct builds the dynamic metadata directly (no reflection through
// structpb.NewStruct), from a handful of allocations: it is on the hot path
// of every allowed request.
func metadataStruct(m authz.Metadata) *structpb.Struct {
	nStrings, nLists := 6+len(m.Rules), 2
	for _, s := range m.Masking {
		nStrings += 2 + len(s.Fields) + len(s.Detectors)
		nLists += 2
	}
	a := newArena(nStrings, nLists)
	ptrs := make([]*structpb.Value, nStrings+len(m.Masking))
	take := func(n int) []*structpb.Value {
		p := ptrs[:n:n]
		ptrs = ptrs[n:]
		return p
	}
	fields := make(map[string]*structpb.Value, 8)
	fields["request_id"] = a.str(m.RequestID)
	fields["session_id"] = a.str(m.SessionID)
	fields["subject"] = a.str(m.Subject)
	fields["actor"] = a.str(m.Actor)
	fields["gcp_method"] = a.str(m.GCPMethod)
	fields["decision"] = a.str(m.Decision)
	fields["rules"] = a.strList(m.Rules, take(len(m.Rules)))
	masking := take(len(m.Masking))
	for i, s := range m.Masking {
		masking[i] = &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: map[string]*structpb.Value{
			"policy":    a.str(s.Policy),
			"name":      a.str(s.Name),
			"fields":    a.strList(s.Fields, take(len(s.Fields))),
			"detectors": a.strList(s.Detectors, take(len(s.Detectors))),
		}}}}
	}
	fields["masking"] = a.list(masking)
	return &structpb.Struct{Fields: fields}
}
