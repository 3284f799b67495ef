package standin

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
)

// SecretTypeURL is the xDS type of SDS resources.
const SecretTypeURL = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

// CredentialSource hands the credential injector the header value of a
// named secret.
type CredentialSource interface {
	// Credential returns the current value of the secret name, and false
	// when there is none (the injector then refuses the request).
	Credential(name string) (string, bool)
}

// StaticCredentials is a fixed CredentialSource: secret name to header value.
type StaticCredentials map[string]string

// Credential implements CredentialSource.
func (s StaticCredentials) Credential(name string) (string, bool) {
	v, ok := s[name]
	return v, ok && v != ""
}

var (
	_ CredentialSource = StaticCredentials(nil)
	_ CredentialSource = (*SDSClient)(nil)
)

// SDSClient subscribes to generic secrets over SDS the way Envoy does with
// api_type GRPC: one StreamSecrets stream naming the secrets, each response
// ACKed with its version_info and nonce (or NACKed with error_detail when a
// resource is not a generic secret), the last good secrets kept across
// stream failures, and the stream re-opened with backoff.
type SDSClient struct {
	client secretv3.SecretDiscoveryServiceClient
	names  []string
	node   *corev3.Node
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	values   map[string]string
	version  string
	nacks    int
	lastErr  error
	changed  chan struct{} // closed and replaced on every update
	versions []string
}

// NewSDSClient opens the subscription for names over conn. It returns at
// once; use Wait to block until a secret arrives.
func NewSDSClient(ctx context.Context, conn grpc.ClientConnInterface, names ...string) *SDSClient {
	ctx, cancel := context.WithCancel(ctx)
	c := &SDSClient{
		client:  secretv3.NewSecretDiscoveryServiceClient(conn),
		names:   append([]string(nil), names...),
		node:    &corev3.Node{Id: "airlock-standin", Cluster: "airlock-standin"},
		cancel:  cancel,
		done:    make(chan struct{}),
		values:  map[string]string{},
		changed: make(chan struct{}),
	}
	go c.run(ctx)
	return c
}

// Credential implements CredentialSource.
func (c *SDSClient) Credential(name string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.values[name]
	return v, ok && v != ""
}

// Version is the version_info of the last accepted response.
func (c *SDSClient) Version() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.version
}

// Versions lists the version_info of every accepted response, in order.
func (c *SDSClient) Versions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.versions...)
}

// NACKs is how many responses were rejected.
func (c *SDSClient) NACKs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nacks
}

// Wait blocks until cond holds for the current secrets (checked on every
// update) or ctx ends.
func (c *SDSClient) Wait(ctx context.Context, cond func(values map[string]string) bool) error {
	for {
		c.mu.Lock()
		ok := cond(c.values)
		ch := c.changed
		lastErr := c.lastErr
		c.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("standin: sds: waiting for secrets: %w (last stream error: %v)", ctx.Err(), lastErr)
		}
	}
}

// WaitFor blocks until the secret name has a value different from not.
func (c *SDSClient) WaitFor(ctx context.Context, name, not string) (string, error) {
	var v string
	err := c.Wait(ctx, func(values map[string]string) bool {
		v = values[name]
		return v != "" && v != not
	})
	return v, err
}

// Close ends the subscription.
func (c *SDSClient) Close() {
	c.cancel()
	<-c.done
}

func (c *SDSClient) run(ctx context.Context) {
	defer close(c.done)
	backoff := 20 * time.Millisecond
	for ctx.Err() == nil {
		err := c.stream(ctx)
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// stream runs one StreamSecrets stream until it fails.
func (c *SDSClient) stream(ctx context.Context) error {
	st, err := c.client.StreamSecrets(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	version := c.version
	c.mu.Unlock()
	// A new stream carries the last accepted version, as Envoy does.
	if err := st.Send(&discoveryv3.DiscoveryRequest{
		Node: c.node, ResourceNames: c.names, TypeUrl: SecretTypeURL, VersionInfo: version,
	}); err != nil {
		return err
	}
	for {
		resp, err := st.Recv()
		if err != nil {
			return err
		}
		values, perr := parseSecrets(resp)
		req := &discoveryv3.DiscoveryRequest{
			Node: c.node, ResourceNames: c.names, TypeUrl: SecretTypeURL, ResponseNonce: resp.GetNonce(),
		}
		c.mu.Lock()
		if perr != nil {
			c.nacks++
			req.VersionInfo = c.version
			req.ErrorDetail = &rpcstatus.Status{Code: int32(codes.InvalidArgument), Message: perr.Error()}
		} else {
			c.values = values
			c.version = resp.GetVersionInfo()
			c.versions = append(c.versions, c.version)
			close(c.changed)
			c.changed = make(chan struct{})
			req.VersionInfo = c.version
		}
		c.mu.Unlock()
		if err := st.Send(req); err != nil {
			return err
		}
	}
}

// parseSecrets reads a SotW response: the full set of generic secrets.
func parseSecrets(resp *discoveryv3.DiscoveryResponse) (map[string]string, error) {
	if resp.GetTypeUrl() != SecretTypeURL {
		return nil, fmt.Errorf("response type %q, want %q", resp.GetTypeUrl(), SecretTypeURL)
	}
	values := map[string]string{}
	for _, a := range resp.GetResources() {
		var s tlsv3.Secret
		if err := a.UnmarshalTo(&s); err != nil {
			return nil, fmt.Errorf("resource: %w", err)
		}
		g := s.GetGenericSecret()
		if g == nil {
			return nil, fmt.Errorf("secret %q is not a generic_secret", s.GetName())
		}
		var v string
		switch {
		case g.GetSecret().GetInlineBytes() != nil:
			v = string(g.GetSecret().GetInlineBytes())
		case g.GetSecret().GetInlineString() != "":
			v = g.GetSecret().GetInlineString()
		default:
			return nil, errors.New("secret " + s.GetName() + ": only inline data sources are supported")
		}
		values[s.GetName()] = v
	}
	return values, nil
}
