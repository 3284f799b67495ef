package envoy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	secretv3 "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	cachetypes "github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"
	"google.golang.org/grpc"

	"github.com/airlockhq/airlock/config"
)

// DefaultScope is the OAuth scope of a credential that names none.
const DefaultScope = "https://www.googleapis.com/auth/cloud-platform"

// SDSOptions tunes the SDS credential server. Zero values take the defaults.
type SDSOptions struct {
	// Logger receives refresh outcomes (never a token). Default: slog.Default().
	Logger *slog.Logger
	// HTTPClient calls the OAuth token endpoint. Default: a client with a
	// 10 second timeout.
	HTTPClient *http.Client
	// RefreshBefore is how long before a token's expiry a new one is minted.
	// Default: 5 minutes.
	RefreshBefore time.Duration
	// UnhealthyBefore: Healthy reports an error once the token served for a
	// credential expires within this long (refreshes having failed).
	// Default: 1 minute.
	UnhealthyBefore time.Duration
	// CheckInterval is how often tokens are checked for refresh, and so the
	// retry interval after a failed refresh. Default: 10 seconds.
	CheckInterval time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (o SDSOptions) withDefaults() SDSOptions {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = 5 * time.Minute
	}
	if o.UnhealthyBefore <= 0 {
		o.UnhealthyBefore = time.Minute
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// SDSServer serves one SDS generic_secret per configured credential, whose
// value is the whole Authorization header value "Bearer <access token>", for
// Envoy's credential injector. Tokens are minted from a service-account key
// (JWT-bearer exchange at the key's token_uri) or Application Default
// Credentials, refreshed before they expire and pushed to every connected
// Envoy as a new snapshot version. When refreshing fails the still-valid
// token keeps being served, and Healthy reports an error once it is about to
// expire.
type SDSServer struct {
	opts   SDSOptions
	log    *slog.Logger
	cache  cachev3.SnapshotCache
	xds    serverv3.Server
	creds  []*sdsCredential
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	version int
	closed  bool
}

// sdsCredential is one credential and its current token.
type sdsCredential struct {
	name   string
	mint   func(ctx context.Context) (*oauth2.Token, error)
	token  *oauth2.Token // nil until the first successful mint
	expiry time.Time
	// refreshAt is when the next token is minted: RefreshBefore ahead of
	// expiry, or half-way through a shorter lifetime.
	refreshAt time.Time
	err       error // last refresh error, nil after a success
}

// allNodes makes every Envoy share one snapshot: the credentials do not
// depend on which proxy asks.
type allNodes struct{}

func (allNodes) ID(*corev3.Node) string { return "airlock" }

// NewSDSServer validates the credentials, loads their keys, mints a first
// token for each (a failure here is logged and retried, not fatal: the
// credential is simply not served until a token exists) and starts the
// refresh loop, which runs until ctx ends or Close is called.
func NewSDSServer(ctx context.Context, creds []config.Credential, opts SDSOptions) (*SDSServer, error) {
	opts = opts.withDefaults()
	s := &SDSServer{
		opts:  opts,
		log:   opts.Logger.With("component", "sds"),
		cache: cachev3.NewSnapshotCache(false, allNodes{}, envoySlogAdapter{opts.Logger.With("component", "sds-xds")}),
		done:  make(chan struct{}),
	}
	seen := map[string]bool{}
	for i, c := range creds {
		if c.Name == "" {
			return nil, fmt.Errorf("envoy: sds: credentials[%d].name: must be set", i)
		}
		if seen[c.Name] {
			return nil, fmt.Errorf("envoy: sds: credentials[%d].name: %q is used twice", i, c.Name)
		}
		seen[c.Name] = true
		mint, err := s.minter(c)
		if err != nil {
			return nil, fmt.Errorf("envoy: sds: credentials[%d] (%s): %w", i, c.Name, err)
		}
		s.creds = append(s.creds, &sdsCredential{name: c.Name, mint: mint})
	}
	s.xds = serverv3.NewServer(ctx, s.cache, nil)

	loopCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	s.refresh(loopCtx)
	if err := s.publish(loopCtx); err != nil {
		cancel()
		return nil, err
	}
	go s.loop(loopCtx)
	return s, nil
}

// minter returns the function minting a fresh token for c.
func (s *SDSServer) minter(c config.Credential) (func(context.Context) (*oauth2.Token, error), error) {
	return Minter(c)
}

// Minter returns the function minting a fresh access token for a
// credentials[] entry: a service-account key's JWT-bearer exchange, or
// Application Default Credentials. An oauth2.HTTPClient in the context
// carries the token endpoint calls.
func Minter(c config.Credential) (func(context.Context) (*oauth2.Token, error), error) {
	scopes := c.Scopes
	if len(scopes) == 0 {
		scopes = []string{DefaultScope}
	}
	switch {
	case c.ADC && c.ServiceAccountKey != "":
		return nil, errors.New("set either service_account_key or adc, not both")
	case c.ADC:
		return func(ctx context.Context) (*oauth2.Token, error) {
			creds, err := google.FindDefaultCredentials(ctx, scopes...)
			if err != nil {
				return nil, fmt.Errorf("application default credentials: %w", err)
			}
			return creds.TokenSource.Token()
		}, nil
	case c.ServiceAccountKey != "":
		data, err := os.ReadFile(c.ServiceAccountKey)
		if err != nil {
			return nil, fmt.Errorf("service_account_key: %w", err)
		}
		var head struct {
			Type     string `json:"type"`
			TokenURI string `json:"token_uri"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, fmt.Errorf("service_account_key %s: not a JSON key file: %w", c.ServiceAccountKey, err)
		}
		if head.Type != "service_account" {
			return nil, fmt.Errorf("service_account_key %s: type is %q, want \"service_account\"", c.ServiceAccountKey, head.Type)
		}
		cfg, err := google.JWTConfigFromJSON(data, scopes...)
		if err != nil {
			return nil, fmt.Errorf("service_account_key %s: %w", c.ServiceAccountKey, err)
		}
		if head.TokenURI != "" {
			cfg.TokenURL = head.TokenURI
		}
		return func(ctx context.Context) (*oauth2.Token, error) {
			// A new TokenSource holds no cached token, so Token always
			// performs the JWT-bearer exchange.
			return cfg.TokenSource(ctx).Token()
		}, nil
	default:
		return nil, errors.New("set service_account_key or adc: true")
	}
}

// Register adds the SecretDiscoveryService (StreamSecrets, DeltaSecrets,
// FetchSecrets) to a gRPC server.
func (s *SDSServer) Register(r grpc.ServiceRegistrar) {
	secretv3.RegisterSecretDiscoveryServiceServer(r, s.xds)
}

// Healthy reports nil when every credential has a token that is not about to
// expire, else an error naming the credential and the last refresh error.
func (s *SDSServer) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("envoy: sds: closed")
	}
	now := s.opts.Now()
	var errs []error
	for _, c := range s.creds {
		switch {
		case c.token == nil:
			errs = append(errs, fmt.Errorf("envoy: sds: credential %s has no token yet: %v", c.name, c.err))
		case !now.Before(c.expiry.Add(-s.opts.UnhealthyBefore)):
			errs = append(errs, fmt.Errorf("envoy: sds: credential %s: token expires at %s and refreshing failed: %v",
				c.name, c.expiry.UTC().Format(time.RFC3339), c.err))
		}
	}
	return errors.Join(errs...)
}

// Version is the snapshot version last pushed to Envoy.
func (s *SDSServer) Version() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strconv.Itoa(s.version)
}

// Close stops the refresh loop. The gRPC server it was registered on is the
// caller's to stop.
func (s *SDSServer) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	<-s.done
}

func (s *SDSServer) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.opts.CheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.refresh(ctx) {
				if err := s.publish(ctx); err != nil {
					s.log.Error("sds: publish snapshot", "error", err)
				}
			}
		}
	}
}

// refresh mints a token for every credential that has none or whose token
// enters the refresh window; it reports whether any token changed.
func (s *SDSServer) refresh(ctx context.Context) bool {
	changed := false
	for _, c := range s.creds {
		s.mu.Lock()
		due := c.token == nil || !s.opts.Now().Before(c.refreshAt)
		s.mu.Unlock()
		if !due {
			continue
		}
		mintCtx := context.WithValue(ctx, oauth2.HTTPClient, s.opts.HTTPClient)
		tok, err := c.mint(mintCtx)
		if err == nil && (tok == nil || tok.AccessToken == "") {
			err = errors.New("token endpoint returned no access token")
		}
		s.mu.Lock()
		if err != nil {
			c.err = err
			s.mu.Unlock()
			s.log.Warn("sds: token refresh failed; the current token stays served",
				"credential", c.name, "error", err, "has_token", c.token != nil)
			continue
		}
		now := s.opts.Now()
		lifetime := time.Hour // Google's usual, when the endpoint says nothing
		switch {
		case tok.ExpiresIn > 0:
			lifetime = time.Duration(tok.ExpiresIn) * time.Second
		case !tok.Expiry.IsZero():
			lifetime = time.Until(tok.Expiry)
		}
		expiry := now.Add(lifetime)
		c.token, c.expiry, c.err = tok, expiry, nil
		c.refreshAt = expiry.Add(-min(s.opts.RefreshBefore, lifetime/2))
		s.mu.Unlock()
		changed = true
		s.log.Info("sds: token refreshed", "credential", c.name, "expires_at", expiry.UTC().Format(time.RFC3339))
	}
	return changed
}

// publish pushes a new snapshot holding every credential that has a token.
func (s *SDSServer) publish(ctx context.Context) error {
	s.mu.Lock()
	s.version++
	version := strconv.Itoa(s.version)
	resources := make([]cachetypes.Resource, 0, len(s.creds))
	for _, c := range s.creds {
		if c.token == nil {
			continue
		}
		resources = append(resources, secretResource(c.name, c.token.Type()+" "+c.token.AccessToken))
	}
	s.mu.Unlock()
	snap, err := cachev3.NewSnapshot(version, map[resourcev3.Type][]cachetypes.Resource{resourcev3.SecretType: resources})
	if err != nil {
		return fmt.Errorf("envoy: sds: snapshot: %w", err)
	}
	if err := s.cache.SetSnapshot(ctx, allNodes{}.ID(nil), snap); err != nil {
		return fmt.Errorf("envoy: sds: set snapshot: %w", err)
	}
	return nil
}

// secretResource is the SDS generic secret holding one header value.
func secretResource(name, value string) *tlsv3.Secret {
	return &tlsv3.Secret{
		Name: name,
		Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{
			Secret: &corev3.DataSource{Specifier: &corev3.DataSource_InlineBytes{InlineBytes: []byte(value)}},
		}},
	}
}

// envoySlogAdapter routes go-control-plane's logging to slog at debug level
// (its messages name resources and versions, never secret contents).
type envoySlogAdapter struct{ l *slog.Logger }

func (a envoySlogAdapter) Debugf(format string, args ...any) { a.l.Debug(fmt.Sprintf(format, args...)) }
func (a envoySlogAdapter) Infof(format string, args ...any)  { a.l.Debug(fmt.Sprintf(format, args...)) }
func (a envoySlogAdapter) Warnf(format string, args ...any)  { a.l.Warn(fmt.Sprintf(format, args...)) }
func (a envoySlogAdapter) Errorf(format string, args ...any) { a.l.Error(fmt.Sprintf(format, args...)) }
