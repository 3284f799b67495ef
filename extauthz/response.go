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

func str(s string) *structpb.Value {
	return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: s}}
}

func strList(in []string) *structpb.Value {
	vals := make([]*structpb.Value, len(in))
	for i, s := range in {
		vals[i] = str(s)
	}
	return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: vals}}}
}

// metadataStruct builds the dynamic metadata directly (no reflection through
// structpb.NewStruct): it is on the hot path of every allowed request.
func metadataStruct(m authz.Metadata) *structpb.Struct {
	fields := map[string]*structpb.Value{
		"request_id": str(m.RequestID),
		"session_id": str(m.SessionID),
		"subject":    str(m.Subject),
		"actor":      str(m.Actor),
		"gcp_method": str(m.GCPMethod),
		"decision":   str(m.Decision),
		"rules":      strList(m.Rules),
	}
	masking := make([]*structpb.Value, len(m.Masking))
	for i, s := range m.Masking {
		masking[i] = &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: &structpb.Struct{Fields: map[string]*structpb.Value{
			"policy":    str(s.Policy),
			"name":      str(s.Name),
			"fields":    strList(s.Fields),
			"detectors": strList(s.Detectors),
		}}}}
	}
	fields["masking"] = &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: masking}}}
	return &structpb.Struct{Fields: fields}
}
