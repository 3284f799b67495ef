package standin

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/test/grpctest"
)

// upstreamRecord is what the fake Google saw.
type upstreamRecord struct {
	Host, Path, Auth, Agent string
	Body                    string
}

// fakeGoogle records requests and answers with a fixed body.
type fakeGoogle struct {
	mu   sync.Mutex
	seen []upstreamRecord
}

func (g *fakeGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	g.seen = append(g.seen, upstreamRecord{Host: r.Host, Path: r.URL.RequestURI(), Auth: r.Header.Get("Authorization"),
		Agent: r.Header.Get("X-Agent"), Body: string(b)})
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"name":"web-1"}`))
}

func (g *fakeGoogle) requests() []upstreamRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]upstreamRecord(nil), g.seen...)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startSDS runs airlock's SDS server for one credential and subscribes an
// SDSClient to it.
func startSDS(t *testing.T, clk *clock) (*SDSClient, *envoytest.TokenServer) {
	t.Helper()
	ts := envoytest.NewTokenServer(t, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	sds, err := envoy.NewSDSServer(ctx, []config.Credential{{Name: "gcp-prod", ServiceAccountKey: ts.KeyFile}},
		envoy.SDSOptions{Now: clk.Now, CheckInterval: 5 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sds.Close)
	conn := grpctest.Serve(t, func(g *grpc.Server) {
		sds.Register(g)
	})
	c := NewSDSClient(context.Background(), conn, "gcp-prod")
	t.Cleanup(c.Close)
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if _, err := c.WaitFor(wctx, "gcp-prod", ""); err != nil {
		t.Fatal(err)
	}
	return c, ts
}

// airlockLike answers like airlock: deny DELETE, otherwise allow, removing
// the agent's Authorization, setting a header and metadata.
func airlockLike(seen *[]*authv3.CheckRequest, mu *sync.Mutex) func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return func(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		mu.Lock()
		*seen = append(*seen, req)
		mu.Unlock()
		if req.GetAttributes().GetRequest().GetHttp().GetMethod() == http.MethodDelete {
			return &authv3.CheckResponse{
				Status: &status.Status{Code: int32(codes.PermissionDenied)},
				HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
					Body:    `{"error":{"code":403,"status":"PERMISSION_DENIED"}}`,
					Headers: []*corev3.HeaderValueOption{hvo("content-type", "application/json", nil)},
				}},
			}, nil
		}
		md, _ := structpb.NewStruct(map[string]any{"request_id": "r-1", "decision": "allow"})
		resp := okResponse(&authv3.OkHttpResponse{
			HeadersToRemove:      []string{"authorization"},
			Headers:              []*corev3.HeaderValueOption{hvo("x-airlock-request-id", "r-1", nil)},
			ResponseHeadersToAdd: []*corev3.HeaderValueOption{hvo("x-airlock-decision", "allow", ptr(false))},
		})
		resp.DynamicMetadata = md
		return resp, nil
	}
}

// upperFilter is a ResponseFilter that records what it saw and upper-cases
// the response body.
type upperFilter struct {
	mu      sync.Mutex
	auth    []string
	md      []*corev3.Metadata
	headers [][][2]string
}

func (u *upperFilter) Filter(w http.ResponseWriter, r *http.Request, md *corev3.Metadata, next http.Handler) {
	u.mu.Lock()
	u.auth = append(u.auth, r.Header.Get("Authorization"))
	u.md = append(u.md, md)
	u.headers = append(u.headers, EnvoyHeaders(r))
	u.mu.Unlock()
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(bytes.ToUpper(rec.Body.Bytes()))
}

func TestFront(t *testing.T) {
	clk := &clock{now: time.Now()}
	creds, ts := startSDS(t, clk)
	google := &fakeGoogle{}
	up := httptest.NewServer(google)
	t.Cleanup(up.Close)
	var mu sync.Mutex
	var checks []*authv3.CheckRequest
	filter := &upperFilter{}
	front := httptest.NewServer(NewFront(FrontConfig{
		Authz:          startAuthz(t, airlockLike(&checks, &mu)),
		AuthzConfig:    AuthzConfig{WithRequestBody: true, MaxRequestBytes: 1 << 20, AllowPartialMessage: true, Scheme: "https"},
		ExtProc:        filter,
		Credentials:    creds,
		CredentialName: "gcp-prod",
		GatewayDomains: []string{"gw.example.com"},
		Upstream:       up.URL,
	}))
	t.Cleanup(front.Close)

	do := func(method, host, path, body string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, front.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		req.Header.Set("Authorization", "Bearer agent-oidc-token")
		req.Header.Set("X-Agent", "claude")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	readBody := func(r *http.Response) string {
		b, _ := io.ReadAll(r.Body)
		return string(b)
	}

	t.Run("allowed: credential injected, filters applied", func(t *testing.T) {
		resp := do(http.MethodPost, "compute.googleapis.com", "/compute/v1/projects/p/zones/z/instances?alt=json", `{"name":"web-1"}`)
		if resp.StatusCode != 200 || readBody(resp) != `{"NAME":"WEB-1"}` {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if resp.Header.Get("X-Airlock-Decision") != "allow" {
			t.Errorf("response_headers_to_add not applied: %v", resp.Header)
		}
		got := google.requests()
		last := got[len(got)-1]
		want := upstreamRecord{Host: "compute.googleapis.com", Path: "/compute/v1/projects/p/zones/z/instances?alt=json",
			Auth: "Bearer token-1", Agent: "claude", Body: `{"name":"web-1"}`}
		if last != want {
			t.Errorf("upstream saw %+v, want %+v", last, want)
		}
		filter.mu.Lock()
		defer filter.mu.Unlock()
		if a := filter.auth[len(filter.auth)-1]; a != "" {
			t.Errorf("ext_proc saw Authorization %q; it must see neither the agent's nor the injected credential", a)
		}
		md := filter.md[len(filter.md)-1]
		if md.GetFilterMetadata()[AuthzNamespace].GetFields()["request_id"].GetStringValue() != "r-1" {
			t.Errorf("ext_proc metadata = %v", md)
		}
		hs := filter.headers[len(filter.headers)-1]
		if hs[0] != [2]string{":scheme", "https"} || hs[2] != [2]string{":authority", "compute.googleapis.com"} {
			t.Errorf("ext_proc pseudo-headers = %v", hs[:4])
		}
		mu.Lock()
		req := checks[len(checks)-1]
		mu.Unlock()
		h := req.GetAttributes().GetRequest().GetHttp()
		if h.GetBody() != `{"name":"web-1"}` || h.GetHeaders()["authorization"] != "Bearer agent-oidc-token" {
			t.Errorf("check request body %q authorization %q", h.GetBody(), h.GetHeaders()["authorization"])
		}
	})

	t.Run("denied: local reply, upstream untouched", func(t *testing.T) {
		n := len(google.requests())
		resp := do(http.MethodDelete, "compute.googleapis.com", "/compute/v1/projects/p/zones/z/instances/web-1", "")
		if resp.StatusCode != 403 || !strings.Contains(readBody(resp), "PERMISSION_DENIED") ||
			resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if len(google.requests()) != n {
			t.Fatal("a denied request reached the upstream")
		}
	})

	t.Run("gateway domain rewritten", func(t *testing.T) {
		resp := do(http.MethodGet, "compute.gw.example.com:443", "/compute/v1/projects/p", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		got := google.requests()
		if h := got[len(got)-1].Host; h != "compute.googleapis.com" {
			t.Errorf("upstream host %q", h)
		}
		mu.Lock()
		h := checks[len(checks)-1].GetAttributes().GetRequest().GetHttp().GetHost()
		mu.Unlock()
		if h != "compute.gw.example.com" {
			t.Errorf("ext_authz saw host %q, want the gateway host without port", h)
		}
	})

	t.Run("unknown host: no route", func(t *testing.T) {
		n := len(google.requests())
		resp := do(http.MethodGet, "evil.example.org", "/", "")
		if resp.StatusCode != 404 || len(google.requests()) != n {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("rotation reaches the next request", func(t *testing.T) {
		clk.Advance(56 * time.Minute)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := creds.WaitFor(ctx, "gcp-prod", "Bearer token-1"); err != nil {
			t.Fatal(err)
		}
		resp := do(http.MethodGet, "storage.googleapis.com", "/storage/v1/b?project=p", "")
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		got := google.requests()
		if a := got[len(got)-1].Auth; a != "Bearer token-2" {
			t.Errorf("upstream Authorization %q after rotation", a)
		}
		if len(ts.Rejected()) != 0 {
			t.Errorf("token endpoint rejected assertions: %v", ts.Rejected())
		}
		if creds.NACKs() != 0 {
			t.Errorf("SDS responses NACKed: %d", creds.NACKs())
		}
	})
}

func TestFrontWithoutCredential(t *testing.T) {
	google := &fakeGoogle{}
	up := httptest.NewServer(google)
	t.Cleanup(up.Close)
	var mu sync.Mutex
	var checks []*authv3.CheckRequest
	front := httptest.NewServer(NewFront(FrontConfig{
		Authz:          startAuthz(t, airlockLike(&checks, &mu)),
		Credentials:    StaticCredentials{},
		CredentialName: "gcp-prod",
		Upstream:       up.URL,
	}))
	t.Cleanup(front.Close)
	req, _ := http.NewRequest(http.MethodGet, front.URL+"/v1/x", nil)
	req.Host = "iam.googleapis.com"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || string(b) != "Failed to inject credential." || len(google.requests()) != 0 {
		t.Fatalf("status %d body %q upstream calls %d", resp.StatusCode, b, len(google.requests()))
	}
}

func TestFrontConfigError(t *testing.T) {
	rec := httptest.NewRecorder()
	NewFront(FrontConfig{Upstream: "not a url"}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "Upstream") {
		t.Fatalf("status %d body %q", rec.Code, rec.Body.String())
	}
}
