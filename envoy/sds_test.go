package envoy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy/envoytest"
	"github.com/airlockhq/airlock/test/grpctest"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startSDS runs an SDSServer on a loopback gRPC server and returns a
// connection to it.
func startSDS(t *testing.T, creds []config.Credential, clock *fakeClock, logs ...io.Writer) (*SDSServer, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var logw io.Writer = io.Discard
	if len(logs) > 0 {
		logw = logs[0]
	}
	s, err := NewSDSServer(ctx, creds, SDSOptions{Now: clock.Now, CheckInterval: 5 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	conn := grpctest.Serve(t, func(g *grpc.Server) {
		s.Register(g)
	})
	return s, conn
}

// sdsStream is a minimal SotW SDS client, speaking as Envoy does: request,
// receive, ACK with version and nonce.
type sdsStream struct {
	t      *testing.T
	stream secretv3.SecretDiscoveryService_StreamSecretsClient
	names  []string
}

func openSDS(t *testing.T, conn *grpc.ClientConn, names ...string) *sdsStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	st, err := secretv3.NewSecretDiscoveryServiceClient(conn).StreamSecrets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := &sdsStream{t: t, stream: st, names: names}
	s.send("", "")
	return s
}

func (s *sdsStream) send(version, nonce string) {
	s.t.Helper()
	if err := s.stream.Send(&discoveryv3.DiscoveryRequest{
		Node:          &corev3.Node{Id: "envoy-test", Cluster: "airlock"},
		ResourceNames: s.names,
		TypeUrl:       resourcev3.SecretType,
		VersionInfo:   version,
		ResponseNonce: nonce,
	}); err != nil {
		s.t.Fatal(err)
	}
}

// next receives one response, ACKs it and returns its version and the
// secret values by name.
func (s *sdsStream) next() (string, map[string]string) {
	s.t.Helper()
	type result struct {
		resp *discoveryv3.DiscoveryResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		r, err := s.stream.Recv()
		ch <- result{r, err}
	}()
	var res result
	select {
	case res = <-ch:
	case <-time.After(5 * time.Second):
		s.t.Fatal("no SDS response within 5s")
	}
	if res.err != nil {
		s.t.Fatal(res.err)
	}
	values := map[string]string{}
	for _, a := range res.resp.GetResources() {
		var sec tlsv3.Secret
		if err := a.UnmarshalTo(&sec); err != nil {
			s.t.Fatal(err)
		}
		values[sec.GetName()] = string(sec.GetGenericSecret().GetSecret().GetInlineBytes())
	}
	s.send(res.resp.GetVersionInfo(), res.resp.GetNonce())
	return res.resp.GetVersionInfo(), values
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSDSServesAndRotates(t *testing.T) {
	ts := envoytest.NewTokenServer(t, time.Hour)
	clock := &fakeClock{now: time.Now()}
	logs := &syncBuffer{}
	s, conn := startSDS(t, []config.Credential{{Name: "gcp-prod", ServiceAccountKey: ts.KeyFile,
		Scopes: []string{"https://www.googleapis.com/auth/compute"}}}, clock, logs)
	t.Cleanup(func() {
		if !strings.Contains(logs.String(), "token refreshed") {
			t.Errorf("refreshes were not logged:\n%s", logs.String())
		}
		for _, tok := range ts.Issued() {
			if strings.Contains(logs.String(), tok) {
				t.Errorf("the logs leak access token %s", tok)
			}
		}
	})
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy after first mint: %v", err)
	}
	st := openSDS(t, conn, "gcp-prod")
	v1, values := st.next()
	if values["gcp-prod"] != "Bearer token-1" {
		t.Fatalf("first secret = %q, want Bearer token-1", values["gcp-prod"])
	}
	if got := ts.Scopes(); len(got) != 1 || got[0] != "https://www.googleapis.com/auth/compute" {
		t.Fatalf("scopes = %v", got)
	}

	// Still far from expiry: no new token.
	clock.Advance(30 * time.Minute)
	if n := len(ts.Issued()); n != 1 {
		t.Fatalf("%d tokens issued before the refresh window, want 1", n)
	}
	// Inside the refresh window (default 5m before expiry): rotation pushed.
	clock.Advance(26 * time.Minute)
	v2, values := st.next()
	if v2 == v1 || values["gcp-prod"] != "Bearer token-2" {
		t.Fatalf("after rotation version %q secret %q, want a new version with Bearer token-2", v2, values["gcp-prod"])
	}
	if len(ts.Rejected()) != 0 {
		t.Fatalf("assertions rejected: %v", ts.Rejected())
	}
}

func TestSDSFailingEndpointKeepsTokenThenUnhealthy(t *testing.T) {
	ts := envoytest.NewTokenServer(t, time.Hour)
	clock := &fakeClock{now: time.Now()}
	s, conn := startSDS(t, []config.Credential{{Name: "gcp-prod", ServiceAccountKey: ts.KeyFile}}, clock)
	st := openSDS(t, conn, "gcp-prod")
	_, values := st.next()
	if values["gcp-prod"] != "Bearer token-1" {
		t.Fatalf("secret = %q", values["gcp-prod"])
	}
	if got := ts.Scopes(); len(got) != 1 || got[0] != DefaultScope {
		t.Fatalf("default scope not used: %v", got)
	}

	ts.SetFailing(true)
	version := s.Version()
	clock.Advance(56 * time.Minute) // refresh window: refreshes fail
	// Give the loop several ticks of failing refreshes.
	waitFor(t, "failed refreshes", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.creds[0].err != nil
	})
	if err := s.Healthy(); err != nil {
		t.Fatalf("Healthy while the old token is still valid: %v", err)
	}
	if s.Version() != version {
		t.Fatalf("version changed to %s though no token was minted", s.Version())
	}
	clock.Advance(3*time.Minute + 30*time.Second) // 30s before expiry
	err := s.Healthy()
	if err == nil || !strings.Contains(err.Error(), "gcp-prod") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Healthy near expiry with a failing endpoint = %v, want an error naming the credential and the failure", err)
	}
	if strings.Contains(err.Error(), "token-1") {
		t.Fatal("Healthy's error leaks the token")
	}

	// Recovery: the endpoint answers again, a new token is pushed, healthy.
	ts.SetFailing(false)
	_, values = st.next()
	if values["gcp-prod"] != "Bearer token-2" {
		t.Fatalf("secret after recovery = %q", values["gcp-prod"])
	}
	waitFor(t, "healthy", func() bool { return s.Healthy() == nil })
}

func TestSDSStartsWithEndpointDown(t *testing.T) {
	ts := envoytest.NewTokenServer(t, time.Hour)
	ts.SetFailing(true)
	clock := &fakeClock{now: time.Now()}
	s, conn := startSDS(t, []config.Credential{{Name: "a", ServiceAccountKey: ts.KeyFile}}, clock)
	if err := s.Healthy(); err == nil || !strings.Contains(err.Error(), "no token") {
		t.Fatalf("Healthy without a token = %v", err)
	}
	st := openSDS(t, conn, "a")
	ts.SetFailing(false)
	// The first response may be the empty snapshot; wait for the secret.
	for {
		_, values := st.next()
		if values["a"] == "Bearer token-1" {
			break
		}
		if len(values) != 0 {
			t.Fatalf("unexpected secrets %v", values)
		}
	}
	if err := s.Healthy(); err != nil {
		t.Fatal(err)
	}
}

func TestNewSDSServerRejects(t *testing.T) {
	ts := envoytest.NewTokenServer(t, time.Hour)
	tests := []struct {
		name  string
		creds []config.Credential
		want  string
	}{
		{"no name", []config.Credential{{ServiceAccountKey: ts.KeyFile}}, "credentials[0].name: must be set"},
		{"duplicate", []config.Credential{{Name: "a", ServiceAccountKey: ts.KeyFile}, {Name: "a", ServiceAccountKey: ts.KeyFile}}, `"a" is used twice`},
		{"neither", []config.Credential{{Name: "a"}}, "set service_account_key or adc: true"},
		{"both", []config.Credential{{Name: "a", ADC: true, ServiceAccountKey: ts.KeyFile}}, "not both"},
		{"missing file", []config.Credential{{Name: "a", ServiceAccountKey: t.TempDir() + "/none.json"}}, "no such file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewSDSServer(context.Background(), tc.creds, SDSOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
