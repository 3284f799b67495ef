package standin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
)

// The Front rewrites SERVICE.DOMAIN with the Lua of the bootstrap that
// `airlock envoy config` renders, routing only the virtual hosts the
// bootstrap declares.
func TestFrontRunsTheBootstrapLua(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.Domains = []string{"gw.example.com"}
	bootstrap, err := envoy.Bootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	src, err := BootstrapLua(bootstrap)
	if err != nil || !strings.Contains(src, `".gw.example.com"`) {
		t.Fatalf("BootstrapLua = %q, %v", src, err)
	}
	google := &fakeGoogle{}
	up := httptest.NewServer(google)
	t.Cleanup(up.Close)
	var mu sync.Mutex
	var checks []*authv3.CheckRequest
	front := httptest.NewServer(NewFront(FrontConfig{
		Authz:          startAuthz(t, airlockLike(&checks, &mu)),
		GatewayDomains: cfg.Gateway.Domains,
		GatewayLua:     src,
		Upstream:       up.URL,
	}))
	t.Cleanup(front.Close)
	for _, tc := range []struct {
		host, upstreamHost string
		status             int
		body               string
	}{
		{"compute.gw.example.com", "compute.googleapis.com", 200, ""},
		{"Storage.GW.example.com:443", "storage.googleapis.com", 200, ""},
		{"compute.googleapis.com", "compute.googleapis.com", 200, ""},
		{"a.b.gw.example.com", "", 404, "airlock: no Google API is served at a.b.gw.example.com"},
		{"gw.example.com", "", 404, ""},
		{"compute.example.org", "", 404, ""},
	} {
		t.Run(tc.host, func(t *testing.T) {
			n := len(google.requests())
			req, _ := http.NewRequest("GET", front.URL+"/compute/v1/projects/p/zones/z/instances", nil)
			req.Host = tc.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, b, tc.status, tc.body)
			}
			got := google.requests()
			if tc.upstreamHost == "" {
				if len(got) != n {
					t.Fatalf("forwarded to %+v", got[n:])
				}
				return
			}
			if len(got) != n+1 || got[n].Host != tc.upstreamHost {
				t.Fatalf("upstream saw %+v, want host %s", got[n:], tc.upstreamHost)
			}
		})
	}
}

// A Front wired by AirlockFrontConfig for a config with gateway domains
// carries the rendered bootstrap's Lua.
func TestAirlockFrontConfigCarriesTheLua(t *testing.T) {
	cfg := config.Default()
	cfg.Gateway.Domains = []string{"airlock.example.com"}
	fc := AirlockFrontConfig(cfg, nil, nil, nil, "http://127.0.0.1:1")
	if !strings.Contains(fc.GatewayLua, "envoy_on_request") || fc.setupErr != nil {
		t.Fatalf("GatewayLua %q, err %v", fc.GatewayLua, fc.setupErr)
	}
}
