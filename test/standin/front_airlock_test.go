package standin

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/test/grpctest"
)

// maskingProcessor is a minimal ext_proc server: it records the request
// headers and metadata it is given and replaces "web-1" in response bodies.
type maskingProcessor struct {
	procv3.UnimplementedExternalProcessorServer
	mu       sync.Mutex
	reqHdrs  []map[string]string
	metadata []*corev3.Metadata
}

func (m *maskingProcessor) Process(st procv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &procv3.ProcessingResponse{}
		switch r := req.GetRequest().(type) {
		case *procv3.ProcessingRequest_RequestHeaders:
			h := map[string]string{}
			for _, e := range r.RequestHeaders.GetHeaders().GetHeaders() {
				h[e.GetKey()] = string(e.GetRawValue())
			}
			m.mu.Lock()
			m.reqHdrs = append(m.reqHdrs, h)
			m.metadata = append(m.metadata, req.GetMetadataContext())
			m.mu.Unlock()
			resp.Response = &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: &procv3.HeadersResponse{}}
		case *procv3.ProcessingRequest_ResponseHeaders:
			resp.Response = &procv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &procv3.HeadersResponse{}}
		case *procv3.ProcessingRequest_ResponseBody:
			masked := bytes.ReplaceAll(r.ResponseBody.GetBody(), []byte("web-1"), []byte("*****"))
			resp.Response = &procv3.ProcessingResponse_ResponseBody{ResponseBody: &procv3.BodyResponse{
				Response: &procv3.CommonResponse{BodyMutation: &procv3.BodyMutation{
					Mutation: &procv3.BodyMutation_Body{Body: masked}}}}}
		case *procv3.ProcessingRequest_RequestBody:
			resp.Response = &procv3.ProcessingResponse_RequestBody{RequestBody: &procv3.BodyResponse{}}
		default:
			continue
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// TestAirlockFrontConfig runs the whole chain as the shipped bootstrap wires
// it: ext_authz, the ext_proc stand-in, the credential from airlock's SDS, the
// upstream.
func TestAirlockFrontConfig(t *testing.T) {
	clk := &clock{now: time.Now()}
	creds, _ := startSDS(t, clk)
	google := &fakeGoogle{}
	up := httptest.NewServer(google)
	t.Cleanup(up.Close)

	var mu sync.Mutex
	var checks []*authv3.CheckRequest
	proc := &maskingProcessor{}
	conn := grpctest.Serve(t, func(g *grpc.Server) {
		authv3.RegisterAuthorizationServer(g, &fakeAuthz{check: airlockLike(&checks, &mu)})
		procv3.RegisterExternalProcessorServer(g, proc)
	})

	cfg := config.Default()
	cfg.Credentials = []config.Credential{{Name: "gcp-prod", ADC: true}}
	cfg.Gateway.Domains = []string{"gw.example.com"}
	fc := AirlockFrontConfig(cfg, conn, conn, creds, up.URL)
	if fc.AuthzConfig.StatusOnError != 503 || fc.CredentialName != "gcp-prod" || fc.ExtProc == nil {
		t.Fatalf("front config %+v", fc)
	}
	front := httptest.NewServer(NewFront(fc))
	t.Cleanup(front.Close)

	req, _ := http.NewRequest(http.MethodGet, front.URL+"/compute/v1/projects/p/zones/z/instances/web-1", nil)
	req.Host = "compute.gw.example.com"
	req.Header.Set("Authorization", "Bearer agent-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != `{"name":"*****"}` {
		t.Fatalf("status %d body %s", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Airlock-Decision") != "allow" {
		t.Errorf("response_headers_to_add lost: %v", resp.Header)
	}
	got := google.requests()
	if len(got) != 1 || got[0].Auth != "Bearer token-1" || got[0].Host != "compute.googleapis.com" {
		t.Fatalf("upstream saw %+v", got)
	}
	proc.mu.Lock()
	defer proc.mu.Unlock()
	if len(proc.reqHdrs) != 1 {
		t.Fatalf("ext_proc saw %d requests", len(proc.reqHdrs))
	}
	h := proc.reqHdrs[0]
	if _, ok := h["authorization"]; ok {
		t.Errorf("ext_proc saw an Authorization header: %q", h["authorization"])
	}
	if h[":authority"] != "compute.gw.example.com" || h["x-airlock-request-id"] != "r-1" {
		t.Errorf("ext_proc request headers %v", h)
	}
	if v := proc.metadata[0].GetFilterMetadata()[AuthzNamespace].GetFields()["decision"].GetStringValue(); v != "allow" {
		t.Errorf("ext_proc metadata %v", proc.metadata[0])
	}
	if strings.Contains(string(body), "web-1") {
		t.Error("unmasked body reached the agent")
	}
}
