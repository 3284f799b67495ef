package standin

import (
	"context"
	"testing"
	"time"

	"github.com/airlockhq/airlock/test/grpctest"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachetypes "github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

type anyNode struct{}

func (anyNode) ID(*corev3.Node) string { return "n" }

// TestSDSClientNACKsAndKeepsGoodSecrets: a response holding a secret that
// is not a generic secret is NACKed and the last good values stay.
func TestSDSClientNACKsAndKeepsGoodSecrets(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cache := cachev3.NewSnapshotCache(false, anyNode{}, nil)
	set := func(version string, res ...cachetypes.Resource) {
		t.Helper()
		snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]cachetypes.Resource{resourcev3.SecretType: res})
		if err != nil {
			t.Fatal(err)
		}
		if err := cache.SetSnapshot(ctx, "n", snap); err != nil {
			t.Fatal(err)
		}
	}
	generic := func(name, v string) *tlsv3.Secret {
		return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{
			Secret: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: v}}}}}
	}
	set("1", generic("gcp", "Bearer a"))

	conn := grpctest.Serve(t, func(g *grpc.Server) {
		secretv3.RegisterSecretDiscoveryServiceServer(g, serverv3.NewServer(ctx, cache, nil))
	})

	c := NewSDSClient(ctx, conn, "gcp")
	defer c.Close()
	if v, err := c.WaitFor(ctx, "gcp", ""); err != nil || v != "Bearer a" {
		t.Fatalf("first secret %q, %v", v, err)
	}

	set("2", &tlsv3.Secret{Name: "gcp", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{}}})
	deadline := time.Now().Add(5 * time.Second)
	for c.NACKs() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the bad response was not NACKed")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if v, ok := c.Credential("gcp"); !ok || v != "Bearer a" || c.Version() != "1" {
		t.Fatalf("after a NACK: %q %v version %s, want the last good secret", v, ok, c.Version())
	}

	set("3", generic("gcp", "Bearer b"))
	if v, err := c.WaitFor(ctx, "gcp", "Bearer a"); err != nil || v != "Bearer b" {
		t.Fatalf("after recovery %q, %v", v, err)
	}
	if got := c.Versions(); len(got) != 2 || got[0] != "1" || got[1] != "3" {
		t.Fatalf("accepted versions %v", got)
	}
}
