package standin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/test/grpctest"
)

// fakeAuthz is an ext_authz server whose answer is a function.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	check func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
}

func (f *fakeAuthz) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return f.check(ctx, req)
}

// startAuthz serves f on a loopback port and returns a client for it.
func startAuthz(t *testing.T, f func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)) authv3.AuthorizationClient {
	t.Helper()
	conn := grpctest.Serve(t, func(srv *grpc.Server) {
		authv3.RegisterAuthorizationServer(srv, &fakeAuthz{check: f})
	})
	return authv3.NewAuthorizationClient(conn)
}

func okResponse(ok *authv3.OkHttpResponse) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(codes.OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func hvo(key, value string, appendV *bool) *corev3.HeaderValueOption {
	o := &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: key, Value: value}}
	if appendV != nil {
		o.Append = wrapperspb.Bool(*appendV)
	}
	return o
}

func ptr[T any](v T) *T { return &v }

func TestCheckRequestFromHTTP(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "https://compute.googleapis.com/compute/v1/projects/p/zones/z/instances?alt=json&x=1", nil)
	r.RequestURI = "/compute/v1/projects/p/zones/z/instances?alt=json&x=1"
	r.Header.Add("X-Dup", "a")
	r.Header.Add("X-Dup", "b")
	r.Header.Set("Authorization", "Bearer tok")
	r.Header.Set("X-Bad", "ok\xffok")
	r.Header.Set(PartialBodyHeader, "forged")
	r.Header.Set("Connection", "keep-alive")
	r.Header.Set("X-Request-Id", "client-rid")
	body := []byte("0123456789")

	tests := []struct {
		name string
		cfg  AuthzConfig
		body []byte
		want func(t *testing.T, req *authv3.CheckRequest)
	}{
		{
			name: "headers and attributes",
			cfg:  AuthzConfig{},
			body: body,
			want: func(t *testing.T, req *authv3.CheckRequest) {
				h := req.GetAttributes().GetRequest().GetHttp()
				want := map[string]string{
					":method": "POST", ":path": "/compute/v1/projects/p/zones/z/instances?alt=json&x=1",
					":authority": "compute.googleapis.com", ":scheme": "https",
					"x-dup": "a,b", "authorization": "Bearer tok", "x-bad": "ok!ok",
					"x-forwarded-proto": "https", "x-request-id": "client-rid",
				}
				for k, v := range want {
					if h.GetHeaders()[k] != v {
						t.Errorf("header %s = %q, want %q", k, h.GetHeaders()[k], v)
					}
				}
				if _, ok := h.GetHeaders()["connection"]; ok {
					t.Error("hop-by-hop header connection was sent")
				}
				if _, ok := h.GetHeaders()[PartialBodyHeader]; ok {
					t.Error("client partial-body header kept without body buffering")
				}
				if h.GetBody() != "" || h.GetSize() != 0 {
					t.Errorf("body sent without with_request_body: %q size %d", h.GetBody(), h.GetSize())
				}
				if h.GetMethod() != "POST" || h.GetHost() != "compute.googleapis.com" || h.GetScheme() != "https" ||
					h.GetPath() != "/compute/v1/projects/p/zones/z/instances?alt=json&x=1" || h.GetProtocol() != "HTTP/1.1" {
					t.Errorf("request attributes wrong: %v", h)
				}
				if h.GetId() == "" || h.GetId() == "client-rid" {
					t.Errorf("http.id = %q, want a stream id", h.GetId())
				}
				if got := req.GetAttributes().GetSource().GetAddress().GetSocketAddress(); got.GetAddress() != "192.0.2.1" || got.GetPortValue() != 1234 {
					t.Errorf("source = %v", got)
				}
				if req.GetAttributes().GetRequest().GetTime() == nil {
					t.Error("request.time unset")
				}
			},
		},
		{
			name: "whole body",
			cfg:  AuthzConfig{WithRequestBody: true, MaxRequestBytes: 100},
			body: body,
			want: func(t *testing.T, req *authv3.CheckRequest) {
				h := req.GetAttributes().GetRequest().GetHttp()
				if h.GetBody() != "0123456789" || h.GetSize() != 10 || h.GetHeaders()[PartialBodyHeader] != "false" {
					t.Errorf("body %q size %d partial %q", h.GetBody(), h.GetSize(), h.GetHeaders()[PartialBodyHeader])
				}
			},
		},
		{
			name: "partial body as bytes",
			cfg:  AuthzConfig{WithRequestBody: true, MaxRequestBytes: 4, AllowPartialMessage: true, PackAsBytes: true},
			body: body,
			want: func(t *testing.T, req *authv3.CheckRequest) {
				h := req.GetAttributes().GetRequest().GetHttp()
				if string(h.GetRawBody()) != "0123" || h.GetBody() != "" || h.GetHeaders()[PartialBodyHeader] != "true" {
					t.Errorf("raw %q body %q partial %q", h.GetRawBody(), h.GetBody(), h.GetHeaders()[PartialBodyHeader])
				}
			},
		},
		{
			name: "sanitised body",
			cfg:  AuthzConfig{WithRequestBody: true},
			body: []byte("a\xffb"),
			want: func(t *testing.T, req *authv3.CheckRequest) {
				if got := req.GetAttributes().GetRequest().GetHttp().GetBody(); got != "a!b" {
					t.Errorf("body = %q", got)
				}
			},
		},
		{
			name: "raw headers",
			cfg:  AuthzConfig{EncodeRawHeaders: true},
			want: func(t *testing.T, req *authv3.CheckRequest) {
				h := req.GetAttributes().GetRequest().GetHttp()
				if len(h.GetHeaders()) != 0 {
					t.Errorf("headers map filled with encode_raw_headers: %v", h.GetHeaders())
				}
				var dups []string
				for _, e := range h.GetHeaderMap().GetHeaders() {
					if e.GetKey() == "x-dup" {
						dups = append(dups, string(e.GetRawValue()))
					}
					if e.GetKey() == "x-bad" && string(e.GetRawValue()) != "ok\xffok" {
						t.Errorf("raw value sanitised: %q", e.GetRawValue())
					}
				}
				if strings.Join(dups, "|") != "a|b" {
					t.Errorf("x-dup entries = %v", dups)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.want(t, CheckRequestFromHTTP(r, tc.body, tc.cfg))
		})
	}
}

func TestCheckRequestClientStyle(t *testing.T) {
	r, err := http.NewRequest(http.MethodPost, "https://storage.googleapis.com/upload/storage/v1/b/x/o?uploadType=media", strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	h := CheckRequestFromHTTP(r, []byte("abc"), AuthzConfig{}).GetAttributes().GetRequest().GetHttp()
	want := map[string]string{":scheme": "https", ":authority": "storage.googleapis.com",
		":path": "/upload/storage/v1/b/x/o?uploadType=media", "content-length": "3"}
	for k, v := range want {
		if h.GetHeaders()[k] != v {
			t.Errorf("%s = %q, want %q", k, h.GetHeaders()[k], v)
		}
	}
}

func TestCheckOK(t *testing.T) {
	md, _ := structpb.NewStruct(map[string]any{"decision": "allow"})
	client := startAuthz(t, func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		resp := okResponse(&authv3.OkHttpResponse{
			Headers: []*corev3.HeaderValueOption{
				hvo("x-set", "v1", nil),
				hvo("x-existing", "more", ptr(true)),
				hvo("x-absent", "never", ptr(true)),
				{Header: &corev3.HeaderValue{Key: "x-raw-only", RawValue: []byte("ignored")}},
			},
			HeadersToRemove:         []string{":path", "host", ":authority", "x-gone"},
			QueryParametersToSet:    []*corev3.QueryParameter{{Key: "b", Value: "2"}, {Key: "alt", Value: "proto"}},
			QueryParametersToRemove: []string{"drop"},
			ResponseHeadersToAdd:    []*corev3.HeaderValueOption{hvo("x-resp", "r", ptr(false))},
		})
		resp.DynamicMetadata = md
		return resp, nil
	})
	r := httptest.NewRequest(http.MethodGet, "/v1/x?drop=1&alt=json&a=1", nil)
	r.Header.Set("X-Existing", "one")
	r.Header.Set("X-Gone", "bye")
	res, err := Check(context.Background(), client, r, nil, AuthzConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Allowed || res.Status != 0 {
		t.Fatalf("allowed=%v status=%d err=%v", res.Allowed, res.Status, res.Err)
	}
	checks := map[string]string{"X-Set": "v1", "X-Existing": "one,more", "X-Raw-Only": "", "X-Gone": "", "X-Absent": ""}
	for k, v := range checks {
		if got := res.UpstreamHeaders.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, ok := res.UpstreamHeaders["X-Raw-Only"]; !ok {
		t.Error("raw_value-only header not set (Envoy sets it empty)")
	}
	if res.Path != "/v1/x?a=1&alt=proto&b=2" {
		t.Errorf("path = %q", res.Path)
	}
	if res.Host != "example.com" {
		t.Errorf("host = %q", res.Host)
	}
	if res.DynamicMetadata["decision"] != "allow" {
		t.Errorf("metadata = %v", res.DynamicMetadata)
	}
	if _, ok := res.DynamicMetadata["ext_authz_duration"]; !ok {
		t.Error("ext_authz_duration missing")
	}
	h := http.Header{"X-Resp": {"old", "older"}}
	res.ApplyResponseHeaders(h)
	if strings.Join(h.Values("X-Resp"), "|") != "r" {
		t.Errorf("response header = %v", h.Values("X-Resp"))
	}
}

func TestCheckAppendAction(t *testing.T) {
	tests := []struct {
		name    string
		honour  bool
		action  corev3.HeaderValueOption_HeaderAppendAction
		present bool
		want    []string
	}{
		{"v1.36 unset sets", false, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, true, []string{"new"}},
		{"honour default adds", true, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD, true, []string{"old", "new"}},
		{"honour add if absent, present", true, corev3.HeaderValueOption_ADD_IF_ABSENT, true, []string{"old"}},
		{"honour add if absent, absent", true, corev3.HeaderValueOption_ADD_IF_ABSENT, false, []string{"new"}},
		{"honour overwrite", true, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD, true, []string{"new"}},
		{"honour overwrite if exists, absent", true, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS, false, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := startAuthz(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return okResponse(&authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{{
					Header: &corev3.HeaderValue{Key: "x-h", Value: "new"}, AppendAction: tc.action,
				}}}), nil
			})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if tc.present {
				r.Header.Set("X-H", "old")
			}
			res, err := Check(context.Background(), client, r, nil, AuthzConfig{HonourAppendAction: tc.honour})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.UpstreamHeaders.Values("X-H"); strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("x-h = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckRefusals(t *testing.T) {
	tests := []struct {
		name       string
		cfg        AuthzConfig
		body       []byte
		reply      func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
		wantStatus int
		wantBody   string
		wantHeader map[string][]string
		wantErr    bool
	}{
		{
			name: "denied with status body headers",
			reply: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return &authv3.CheckResponse{
					Status: &status.Status{Code: int32(codes.PermissionDenied)},
					HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
						Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized},
						Body:   `{"error":{}}`,
						Headers: []*corev3.HeaderValueOption{
							hvo("content-type", "application/json", nil),
							hvo("set-cookie", "a=1", nil), hvo("set-cookie", "b=2", nil),
						},
					}},
				}, nil
			},
			wantStatus: 401, wantBody: `{"error":{}}`,
			wantHeader: map[string][]string{"Content-Type": {"application/json"}, "Set-Cookie": {"a=1", "b=2"}},
		},
		{
			name: "denied without status is 403",
			reply: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return &authv3.CheckResponse{Status: &status.Status{Code: int32(codes.PermissionDenied)}}, nil
			},
			wantStatus: 403,
		},
		{
			name: "grpc error is status_on_error",
			cfg:  AuthzConfig{StatusOnError: 503},
			reply: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return nil, grpcstatus.Error(codes.Unavailable, "down")
			},
			wantStatus: 503, wantErr: true,
		},
		{
			name: "timeout is 403 by default",
			cfg:  AuthzConfig{Timeout: 50 * time.Millisecond},
			reply: func(ctx context.Context, _ *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
			wantStatus: 403, wantErr: true,
		},
		{
			name: "oversized body without partial is 413",
			cfg:  AuthzConfig{WithRequestBody: true, MaxRequestBytes: 3},
			body: []byte("abcd"),
			reply: func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return nil, grpcstatus.Error(codes.Internal, "must not be called")
			},
			wantStatus: 413, wantBody: "Payload Too Large",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			client := startAuthz(t, tc.reply)
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(tc.body)))
			res, err := Check(context.Background(), client, r, tc.body, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if res.Allowed || res.Status != tc.wantStatus || string(res.Body) != tc.wantBody {
				t.Errorf("allowed=%v status=%d body=%q, want %d %q", res.Allowed, res.Status, res.Body, tc.wantStatus, tc.wantBody)
			}
			if (res.Err != nil) != tc.wantErr {
				t.Errorf("Err = %v, want error %v", res.Err, tc.wantErr)
			}
			for k, v := range tc.wantHeader {
				if got := res.Headers.Values(k); strings.Join(got, "|") != strings.Join(v, "|") {
					t.Errorf("%s = %v, want %v", k, got, v)
				}
			}
		})
	}
}

func BenchmarkCheckRequestFromHTTP(b *testing.B) {
	r := httptest.NewRequest(http.MethodPost, "/compute/v1/projects/p/zones/z/instances?alt=json", nil)
	r.Header.Set("Authorization", "Bearer x")
	r.Header.Set("Content-Type", "application/json")
	body := []byte(strings.Repeat(`{"name":"x"}`, 100))
	cfg := AuthzConfig{WithRequestBody: true, MaxRequestBytes: 1 << 20}
	b.ReportAllocs()
	for b.Loop() {
		_ = CheckRequestFromHTTP(r, body, cfg)
	}
}

func TestAuthzAirlockConfigMatchesBootstrap(t *testing.T) {
	cfg := config.Default()
	cfg.Approvals.Hold = 5 * time.Second
	got := AuthzAirlockConfig(cfg)
	want := AuthzConfig{WithRequestBody: true, MaxRequestBytes: 1 << 20, AllowPartialMessage: true, PackAsBytes: true,
		Timeout: 7 * time.Second, StatusOnError: 503}
	if got != want {
		t.Fatalf("AuthzAirlockConfig = %+v, want %+v", got, want)
	}
	out, err := envoy.Bootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"max_request_bytes: 1048576", "allow_partial_message: true", "pack_as_bytes: true",
		"timeout: 7s", "status_on_error: {code: ServiceUnavailable}"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("bootstrap lacks %q", s)
		}
	}
}

func BenchmarkApplyCheckResponse(b *testing.B) {
	r := httptest.NewRequest(http.MethodGet, "/compute/v1/projects/p/zones/z/instances?alt=json", nil)
	r.Header.Set("Authorization", "Bearer x")
	hdrs := envoyHeaders(r, "https")
	md, _ := structpb.NewStruct(map[string]any{"request_id": "r", "rules": []any{"a", "b"}})
	resp := okResponse(&authv3.OkHttpResponse{
		HeadersToRemove:      []string{"authorization"},
		Headers:              []*corev3.HeaderValueOption{hvo("x-airlock-request-id", "r", nil)},
		ResponseHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-airlock-decision", "allow", nil)},
	})
	resp.DynamicMetadata = md
	cfg := AuthzConfig{}.withDefaults()
	b.ReportAllocs()
	for b.Loop() {
		_ = applyCheckResponse(hdrs, resp, cfg, time.Millisecond)
	}
}
