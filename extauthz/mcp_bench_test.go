package extauthz

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/test/cputime"
)

// instanceBody is a Compute instance of about size bytes of JSON: what an
// agent creates, by REST or through the Compute MCP server.
func instanceBody(size int) map[string]any {
	items := []any{}
	inst := map[string]any{"name": "web-2", "machineType": "zones/us-east1-b/machineTypes/e2-medium",
		"disks":             []any{map[string]any{"boot": true, "autoDelete": true, "initializeParams": map[string]any{"sourceImage": "projects/debian-cloud/global/images/family/debian-12"}}},
		"networkInterfaces": []any{map[string]any{"network": "global/networks/default"}},
		"labels":            map[string]any{"team": "web", "env": "dev"},
		"metadata":          map[string]any{"items": items}}
	for i := 0; ; i++ {
		b, _ := json.Marshal(inst)
		if len(b) >= size {
			return inst
		}
		items = append(items, map[string]any{"key": "config-" + strconv.Itoa(i), "value": strings.Repeat("line of startup configuration; ", 3)})
		inst["metadata"] = map[string]any{"items": items}
	}
}

// BenchmarkCheckToolCall compares Check on a 4 KiB tools/call (create an
// instance through the Compute MCP server) with Check on the REST request
// of the same size that does the same thing, on the 50-rule policy.
func BenchmarkCheckToolCall(b *testing.B) {
	g := gcp.NewRecognizer(gcp.DefaultCatalog(), nil)
	s, tok := benchServer(b, "", authz.Options{Recognizer: g, MCP: mcp.NewRecognizer(g, nil, mcp.NewRegistry(0, 0))})
	inst := instanceBody(4 << 10)
	restBody, _ := json.Marshal(inst)
	args := map[string]any{"project": "acme-dev", "zone": "us-east1-b", "name": "web-2", "instance": inst}
	mcpBody, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": map[string]any{"name": "create_instance", "arguments": args}})
	check := func(path string, body []byte, extra map[string]string) *authv3.CheckRequest {
		h := map[string]string{":method": "POST", ":authority": "compute.googleapis.com", ":scheme": "https", ":path": path,
			"authorization": "Bearer " + tok, "content-type": "application/json", "content-length": strconv.Itoa(len(body)), "x-request-id": "c0ffee"}
		for k, v := range extra {
			h[k] = v
		}
		return checkRequest(&authv3.AttributeContext_HttpRequest{Id: "1", Method: "POST", Host: "compute.googleapis.com", Path: path, Headers: h, RawBody: body})
	}
	rest := check("/compute/v1/projects/acme-dev/zones/us-east1-b/instances", restBody, nil)
	tool := check("/mcp", mcpBody, map[string]string{"mcp-protocol-version": "2026-07-28", "mcp-method": "tools/call", "mcp-name": "create_instance", "accept": "application/json, text/event-stream"})
	// Alternating the two in one loop puts both under the same load: the
	// ratio is what the target is about on a shared machine.
	b.Run("alternating", func(b *testing.B) {
		ctx := context.Background()
		var restTime, mcpTime time.Duration
		for b.Loop() {
			t0 := time.Now()
			if _, err := s.Check(ctx, rest); err != nil {
				b.Fatal(err)
			}
			t1 := time.Now()
			if _, err := s.Check(ctx, tool); err != nil {
				b.Fatal(err)
			}
			restTime += t1.Sub(t0)
			mcpTime += time.Since(t1)
		}
		n := float64(b.N)
		b.ReportMetric(float64(restTime.Microseconds())/n, "rest-µs/check")
		b.ReportMetric(float64(mcpTime.Microseconds())/n, "mcp-µs/check")
		b.ReportMetric(float64(restTime)/float64(mcpTime), "mcp-throughput/rest")
	})
	for _, c := range []struct {
		name string
		req  *authv3.CheckRequest
	}{
		{"rest", rest},
		{"mcp", tool},
	} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			resp, _ := s.Check(ctx, c.req)
			if resp.GetStatus().GetCode() != 0 {
				b.Fatalf("refused: %s", resp.GetDeniedResponse().GetBody())
			}
			b.SetBytes(int64(len(c.req.GetAttributes().GetRequest().GetHttp().GetRawBody())))
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cputime.Process()
			for b.Loop() {
				if _, err := s.Check(ctx, c.req); err != nil {
					b.Fatal(err)
				}
			}
			// CPU time moves far less than wall time with other tenants.
			b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
