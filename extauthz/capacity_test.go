package extauthz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/resources"
	"github.com/airlockhq/airlock/test/grpctest"
)

// noopAuthz allows everything: the floor a Check over gRPC costs.
type noopAuthz struct {
	authv3.UnimplementedAuthorizationServer
}

func (noopAuthz) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &status.Status{}}, nil
}

// BenchmarkCheckCapacityResources is capacity over gRPC on loopback with
// 16 concurrent callers (SetParallelism 8 on 2 cores; more on more): a
// no-op ext_authz server, airlock with the 50-rule policy (with gRPC's own
// codec, and with its own), and the same with a rule reading resource.*
// (warm cache), in one run. ns/op is wall time per Check across all
// callers, so the ratio of two sub-benchmarks is the ratio of their
// capacities.
func BenchmarkCheckCapacityResources(b *testing.B) {
	f, lookups := benchLookups(b)
	for _, c := range []struct {
		name      string
		rules     string
		lookups   resources.Backend
		noop      bool
		grpcCodec bool // gRPC's own codec rather than GRPCServerOptions
	}{
		{name: "noop", noop: true},
		{name: "without/grpc-codec", grpcCodec: true},
		{name: "without"},
		{name: "with-resource-rule", rules: resourceRule, lookups: lookups},
	} {
		b.Run(c.name, func(b *testing.B) {
			s, req := benchEngineWith(b, c.rules, c.lookups)
			var opts []grpc.ServerOption
			if !c.noop && !c.grpcCodec {
				opts = GRPCServerOptions()
			}
			conn := grpctest.Serve(b, func(g *grpc.Server) {
				if c.noop {
					authv3.RegisterAuthorizationServer(g, noopAuthz{})
				} else {
					s.Register(g)
				}
			}, opts...)
			client := authv3.NewAuthorizationClient(conn)
			ctx := context.Background()
			if resp, err := client.Check(ctx, req); err != nil || resp.GetStatus().GetCode() != 0 {
				b.Fatalf("warm-up Check: %v %v", err, resp.GetStatus())
			}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Check(ctx, req)
					if err != nil || resp.GetStatus().GetCode() != 0 {
						b.Errorf("Check: %v %v", err, resp.GetStatus())
						return
					}
				}
			})
		})
	}
	if f.Hits("project") != 1 || f.Hits("organization") != 1 {
		b.Fatalf("the warm cache called Google: %d project, %d organization lookups", f.Hits("project"), f.Hits("organization"))
	}
}
