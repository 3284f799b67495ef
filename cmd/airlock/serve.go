package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"

	"github.com/airlockhq/airlock/approvals"
	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/console"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/extauthz"
	"github.com/airlockhq/airlock/extproc"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/masking"
	"github.com/airlockhq/airlock/mcp"
	"github.com/airlockhq/airlock/policies"
	"github.com/airlockhq/airlock/policies/examples"
	"github.com/airlockhq/airlock/recorder"
	"github.com/airlockhq/airlock/resources"
)

const serveUsage = `usage: airlock serve [--config FILE]

Runs airlock's servers: ext_authz and ext_proc for Envoy, the HTTP API and
console, and the SDS server. Without --config it serves the local trial:
example policies, in-memory approvals, recordings on local disk and a
loopback-only dev token issuer.

Exit status: 0 stopped by a signal, 1 failed to start or failed while
serving (the configuration error names the key), 2 usage error.
`

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fl := newFlagSet("serve", serveUsage, stderr)
	cfgPath := fl.String("config", "", "configuration file (default: embedded local-trial defaults)")
	cpuProfile := fl.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	pos, code, ok := parseFlags(fl, args, stdout)
	if !ok {
		return code
	}
	configGiven := false
	fl.Visit(func(f *flag.Flag) { configGiven = configGiven || f.Name == "config" })
	if configGiven && strings.TrimSpace(*cfgPath) == "" {
		// An unset variable in a deployment script must not start the
		// local trial (dev issuer trusted, example policies).
		fmt.Fprintln(stderr, "airlock serve: --config is empty: name a configuration file, or leave the flag out for the local trial")
		return 2
	}
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "airlock serve: unexpected argument %q\n", pos[0])
		return exitUsage
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "airlock serve: --cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "airlock serve: --cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	cfg, err := loadConfig(*cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	logger := newLogger(cfg.Log, stderr)
	routeLibraryLogs(logger)
	if os.Getenv("GOGC") == "" {
		// The live heap is small (policies, catalog, token cache) and every
		// Check allocates: collecting at 5x the live heap instead of 2x
		// halves GC work on the decision path. GOGC in the environment wins.
		debug.SetGCPercent(400)
	}
	if err := serve(ctx, cfg, *cfgPath == "", logger); err != nil {
		logger.Error("airlock stopped", "err", err)
		fmt.Fprintln(stderr, "airlock:", err)
		return 1
	}
	return 0
}

func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return config.Dev(), nil
	}
	return config.Load(path)
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// approvalStore opens approvals.store. With Redis it builds the one client
// that approvals and the session tracker share, the tracker falling back to
// this replica while Redis is down, and reports Redis as a shared
// dependency on /healthz.
func (s *server) approvalStore(ctx context.Context) (approvals.Store, error) {
	spec := strings.TrimSpace(s.cfg.Approvals.Store)
	if spec == "" || spec == "memory" {
		st, err := approvals.OpenStore(ctx, spec)
		if err != nil {
			return nil, fmt.Errorf("config: approvals.store: %w", err)
		}
		return st, nil
	}
	rdb, err := approvals.NewRedisClient(spec)
	if err != nil {
		return nil, fmt.Errorf("config: approvals.store: %w", err)
	}
	store := approvals.NewRedisStoreWithClient(rdb)
	// The approvals service closes the store; this closes it on a start-up
	// error before the service exists (a second Close does nothing).
	s.closer = append(s.closer, func() { store.Close() })
	s.redis = rdb
	fallback := recorder.NewFallbackTracker(recorder.NewRedisTracker(rdb), recorder.FallbackOptions{Logger: s.log.With("component", "sessions")})
	s.sessions = fallback
	s.sharedChecks = append(s.sharedChecks, healthCheck{"redis", func(ctx context.Context) error {
		return redisHealth(rdb.Ping(ctx).Err(), fallback.Status())
	}})
	return store, nil
}

// server holds everything `airlock serve` runs.
type server struct {
	cfg    *config.Config
	log    *slog.Logger
	reg    *prometheus.Registry
	checks []healthCheck
	// sharedChecks are dependencies every replica shares (Redis): their
	// failure degrades this replica (some decisions answer 503) but leaves
	// it serving, so /healthz answers 200 "degraded", never taking every
	// replica out at once.
	sharedChecks []healthCheck
	grpcs        []*grpc.Server
	https        []*http.Server
	closer       []func()
	// sessions tracks sessions across replicas (Redis, with a fallback on
	// the replica); nil keeps them in the recorder's memory.
	sessions recorder.Tracker
	// redis is the client built from approvals.store, shared by approvals,
	// sessions and the resource cache; nil without Redis.
	redis redis.UniversalClient
	// dev is the dev token issuer of the local trial; nil otherwise.
	dev *identity.DevIssuer
}

func serve(ctx context.Context, cfg *config.Config, embedded bool, log *slog.Logger) error {
	s := &server{cfg: cfg, log: log, reg: prometheus.NewRegistry()}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer s.close()

	// Bind every listener first: a port in use is a start-up error naming its key.
	lis := map[string]net.Listener{}
	for key, addr := range map[string]string{
		"listen.authz":   cfg.Listen.Authz,
		"listen.extproc": cfg.Listen.ExtProc,
		"listen.sds":     cfg.Listen.SDS,
		"listen.http":    cfg.Listen.HTTP,
	} {
		if addr == "" {
			continue
		}
		listen := func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }
		if key == "listen.sds" {
			listen = envoy.ListenSDS // also unix:///PATH
		}
		l, err := listen(addr)
		if err != nil {
			return fmt.Errorf("config: %s: %w", key, err)
		}
		lis[key] = l
		s.closer = append(s.closer, func() { l.Close() })
	}

	mux := http.NewServeMux()

	verifier, err := s.identity(ctx, lis["listen.http"], mux)
	if err != nil {
		return err
	}

	// The request schemas read bodies as Google does; load them off the
	// request path.
	go func() {
		if err := gcp.WarmSchemas(); err != nil {
			log.Error("request schemas cannot be read; bodies will be refused as unreadable", "err", err)
		}
	}()

	paths, err := s.policyPaths(embedded)
	if err != nil {
		return err
	}
	loadOpts := policyLoadOptions()
	set, err := policies.LoadWith(loadOpts, paths...)
	if err != nil {
		return fmt.Errorf("policies: %w", err)
	}
	log.Info("policies loaded", "paths", paths, "policies", set.Len())
	maskEngine, err := maskingEngine(set)
	if err != nil {
		return err
	}

	store, err := s.approvalStore(ctx)
	if err != nil {
		return err
	}

	masker := masking.NewRequestMasker(maskEngine)
	rec, err := s.recorder(ctx, masker)
	if err != nil {
		return err
	}

	publicURL := cfg.Approvals.PublicURL
	if l := lis["listen.http"]; publicURL == "" && l != nil {
		publicURL = "http://" + l.Addr().String()
	}
	approvalSvc := approvals.NewService(store, approvals.Options{
		DefaultTTL: cfg.Approvals.DefaultTTL,
		MaxTTL:     cfg.Approvals.MaxTTL,
		PublicURL:  publicURL,
		Webhooks:   cfg.Approvals.Webhooks,
		Logger:     log.With("component", "approvals"),
		OnVote:     voteRecorder(rec, log),

		MaxPendingPerSubject: cfg.Approvals.MaxPendingPerSubject,
		AllowDelegatedVotes:  cfg.Approvals.AllowDelegatedVotes,
	})
	s.closer = append(s.closer, func() { approvalSvc.Close() })
	if s.sessions == nil {
		s.checks = append(s.checks, healthCheck{"approvals", approvalSvc.Healthy})
	}

	lookups, err := s.resourceLookups(ctx)
	if err != nil {
		return err
	}
	warnResourcesUnavailable(log, set, lookups)

	metrics := authz.NewMetrics(s.reg)
	recognizer := gcp.NewRecognizer(gcp.DefaultCatalog(), cfg.Gateway.Domains)
	var mcpRecognizer *mcp.Recognizer
	if cfg.MCP.Enabled {
		mcpRecognizer = mcp.NewRecognizer(recognizer, mcp.DefaultCatalog(), mcp.NewRegistry(0, 0))
	}
	var sessions authz.Sessions
	var decisions authz.Recorder
	if rec != nil {
		sessions, decisions = rec, rec
	}
	engine, err := authz.New(authz.Options{
		Sessions:     sessions,
		Recorder:     decisions,
		Verifier:     verifier,
		Recognizer:   recognizer,
		Policies:     set,
		Approvals:    approvalSvc,
		Hold:         cfg.Approvals.Hold,
		Timeout:      cfg.Authz.Timeout,
		MaxBodyBytes: cfg.Authz.MaxBodyBytes,
		Unrecognised: authz.Unrecognised(cfg.Authz.Unrecognised),
		Resources:    lookups,
		SinkGuard:    sinkGuard(cfg),
		MaskBody:     masker.Body,
		Metrics:      metrics,
		Logger:       log.With("component", "authz"),

		MCP:            mcpRecognizer,
		MCPMaxHold:     cfg.MCP.MaxHold,
		MCPFilterTools: cfg.MCP.FilterTools,
	})
	if err != nil {
		return err
	}
	// ext_proc: inline masking of response bodies, feeding the recorder.
	var extprocSrv *extproc.Server
	if l := lis["listen.extproc"]; l != nil {
		var er extproc.Recorder
		if rec != nil {
			er = rec
		}
		extprocSrv, err = extproc.NewServer(extproc.Options{
			BodyMode:             cfg.Masking.BodyMode,
			MaxDecompressedBytes: cfg.Masking.MaxDecompressedBytes,
			MemoryBudgetBytes:    cfg.Masking.MemoryBudgetBytes,
			RecordBodyBytes:      cfg.Recorder.MaxBodyBytes,
			Engine:               maskEngine,
			Logger:               log.With("component", "extproc"),
			Recorder:             er,
			MCP:                  mcpPolicy(engine, mcpRecognizer),
			MCPMaxMessageBytes:   cfg.MCP.MaxMessageBytes,
		})
		if err != nil {
			return fmt.Errorf("extproc: %w", err)
		}
		budget := extprocSrv.Budget()
		s.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airlock_extproc_memory_in_use_bytes",
			Help: "Memory responses hold for masking and inflation, charged to masking.memory_budget_bytes.",
		}, func() float64 { return float64(budget.InUse()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "airlock_extproc_memory_budget_bytes",
			Help: "masking.memory_budget_bytes: the memory responses may hold for masking and inflation.",
		}, func() float64 { return float64(budget.Limit()) }))
		g := s.newGRPC(extproc.GRPCServerOptions()...)
		extprocSrv.Register(g)
		s.serveGRPC(g, l, "extproc", "envoy.service.ext_proc.v3.ExternalProcessor")
	}

	// /healthz reports the policy files on disk: healthy when they load to
	// the set in force.
	ph := newPolicyHealth(paths, func() (*policies.Set, error) { return policies.LoadWith(loadOpts, paths...) }, engine.Policies)
	s.checks = append(s.checks, healthCheck{"policies", ph.check})
	reloadFailed := func(err error) {
		metrics.Reloads.WithLabelValues("error").Inc()
		log.Error("policy reload failed; keeping the previous policies", "err",
			fmt.Errorf("the last edit failed to load; the previous policies stay in force: %w", err))
	}
	if cfg.Policies.ReloadInterval > 0 {
		go policies.Watch(ctx, paths, cfg.Policies.ReloadInterval, loadOpts, func(set *policies.Set) {
			if set.Digest() == engine.Policies().Digest() {
				return // back to the text in force
			}
			eng, err := maskingEngine(set)
			if err != nil {
				// The policies and their detectors go together: keep both.
				ph.notInForce(set.Digest(), err)
				reloadFailed(err)
				return
			}
			if extprocSrv != nil {
				extprocSrv.SetEngine(eng)
			}
			warnResourcesUnavailable(log, set, lookups)
			engine.SetPolicies(set)
			metrics.Reloads.WithLabelValues("ok").Inc()
			log.Info("policies reloaded", "policies", set.Len())
		}, reloadFailed)
		go ph.run(ctx, cfg.Policies.ReloadInterval)
	}

	// ext_authz gRPC, with the standard health service.
	if l := lis["listen.authz"]; l != nil {
		g := s.newGRPC(extauthz.GRPCServerOptions()...)
		extauthz.New(engine).Register(g)
		s.serveGRPC(g, l, "authz", "envoy.service.auth.v3.Authorization")
	}

	// SDS: the GCP credential Envoy injects, one secret per credential.
	if l := lis["listen.sds"]; l != nil {
		sds, err := envoy.NewSDSServer(ctx, cfg.Credentials, envoy.SDSOptions{Logger: log})
		if err != nil {
			return fmt.Errorf("config: credentials: %w", err)
		}
		s.closer = append(s.closer, sds.Close)
		s.checks = append(s.checks, healthCheck{"sds", func(context.Context) error { return sds.Healthy() }})
		var creds []grpc.ServerOption
		if c := cfg.SDS; c.TLSCert != "" {
			tc, err := envoy.SDSServerTLS(c.TLSCert, c.TLSKey, c.ClientCA, log.With("component", "sds"))
			if err != nil {
				return fmt.Errorf("config: sds.tls_cert: %w", err)
			}
			creds = append(creds, grpc.Creds(credentials.NewTLS(tc)))
		}
		g := s.newGRPC(creds...)
		sds.Register(g)
		s.serveGRPC(g, l, "sds", "envoy.service.secret.v3.SecretDiscoveryService")
		if len(cfg.Credentials) == 0 {
			log.Warn("no credentials configured: SDS serves no secret, so Envoy injects no GCP token")
		}
	}

	apiOpts := approvals.HandlerOptions{PolicyDiff: console.PolicyDiffer(policyFetcher(lookups))}
	if publicURL != "" {
		con, err := s.console(ctx, verifier, approvalSvc, rec, lookups, publicURL)
		if err != nil {
			return err
		}
		con.Register(mux)
		apiOpts.Session = con.Authenticate
	}
	approvalsAPI := approvals.NewHandlerWith(approvalSvc, verifier, log.With("component", "approvals-api"), apiOpts)
	mux.Handle("/v1/approvals", approvalsAPI)
	mux.Handle("/v1/approvals/", approvalsAPI)
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "airlock_approval_webhook_drops_total",
		Help: "Approval notifications dropped because the webhook queue was full.",
	}, func() float64 { return float64(approvalSvc.WebhookDrops()) }))
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	if cfg.MCP.Server {
		s.serveMCP(mux, engine, verifier, approvalSvc, publicURL, lis["listen.http"])
	}
	// /livez: the process serves HTTP. /readyz: every server is up and the
	// policies are loaded (the HTTP listener starts last). Neither follows
	// shared dependencies such as Redis, which would take every replica out
	// at once; /healthz reports those.
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ready\n") })
	mux.HandleFunc("GET /healthz", s.healthz)
	if l := lis["listen.http"]; l != nil {
		hs := newHTTPServer(cfg.HTTP, mux, log.With("component", "http"))
		if cfg.HTTP.MaxConnsPerSource > 0 {
			sl := newSourceLimitListener(l, cfg.HTTP.MaxConnsPerSource)
			s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "airlock_http_connections_refused_total",
				Help: "Connections to listen.http closed at once because their source held http.max_conns_per_source.",
			}, func() float64 { return float64(sl.refused.Load()) }))
			l = sl
		}
		s.https = append(s.https, hs)
		go func() {
			if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server stopped", "err", err)
			}
		}()
	}

	log.Info("airlock serving", "authz", cfg.Listen.Authz, "extproc", cfg.Listen.ExtProc, "sds", cfg.Listen.SDS, "http", cfg.Listen.HTTP, "version", version)
	<-ctx.Done()
	log.Info("airlock shutting down")
	return nil
}

// grpcServerOptions bound what one client can hold on a gRPC server:
// streams per connection (Envoy opens another connection beyond), pings
// (more often than keepalive_min_time is answered with GOAWAY), dead
// connections (pinged after keepalive_time idle, closed after
// keepalive_timeout unanswered) and handshakes (connection_timeout).
func grpcServerOptions(c config.GRPC) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(c.MaxConcurrentStreams),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: c.KeepaliveTime, Timeout: c.KeepaliveTimeout}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: c.KeepaliveMinTime, PermitWithoutStream: true}),
		grpc.ConnectionTimeout(c.ConnectionTimeout),
	}
}

func (s *server) newGRPC(extra ...grpc.ServerOption) *grpc.Server {
	opts := append(grpcServerOptions(s.cfg.GRPC),
		grpc.MaxRecvMsgSize(s.cfg.Authz.MaxBodyBytes*2+(1<<20)),
		// A pool of stream workers instead of a goroutine per RPC: a fresh
		// goroutine grows its stack for every Check (CEL, recognition),
		// which costs more than the Check itself. Enough workers that the
		// concurrency Envoy drives rarely overflows the pool.
		grpc.NumStreamWorkers(uint32(max(64, 16*runtime.GOMAXPROCS(0)))),
	)
	g := grpc.NewServer(append(opts, extra...)...)
	s.grpcs = append(s.grpcs, g)
	return g
}

// serveGRPC serves g on l with the standard health service, SERVING for ""
// and for service, which Envoy's gRPC health checks ask for.
func (s *server) serveGRPC(g *grpc.Server, l net.Listener, name, service string) {
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(service, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(g, hs)
	s.closer = append(s.closer, hs.Shutdown)
	go func() {
		if err := g.Serve(l); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.log.Error("grpc server stopped", "server", name, "err", err)
		}
	}()
}

func (s *server) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, h := range s.https {
		_ = h.Shutdown(ctx)
	}
	var wg sync.WaitGroup
	for _, g := range s.grpcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done := make(chan struct{})
			go func() { g.GracefulStop(); close(done) }()
			select {
			case <-done:
			case <-ctx.Done():
				g.Stop()
			}
		}()
	}
	wg.Wait()
	for i := len(s.closer) - 1; i >= 0; i-- {
		s.closer[i]()
	}
}

// identity builds the token verifier; in dev mode it also serves the
// loopback-only dev issuer under /dev on listen.http.
func (s *server) identity(ctx context.Context, httpLis net.Listener, mux *http.ServeMux) (*identity.OIDCVerifier, error) {
	cfg := s.cfg
	issuers := make([]identity.IssuerConfig, len(cfg.Identity.Issuers))
	for i, is := range cfg.Identity.Issuers {
		issuers[i] = identity.IssuerConfig{Issuer: is.Issuer, Audience: is.Audience, GroupsClaim: is.GroupsClaim, JWKSURL: is.JWKSURL, TrustEmail: is.TrustEmail,
			AllowedSubjects: is.AllowedSubjects, AllowedEmailDomains: is.AllowedEmailDomains, AllowedHD: is.AllowedHD,
			AllowedEmails: is.AllowedEmails, AllowUnrestricted: is.AllowUnrestricted,
			SubjectClaim: is.SubjectClaim, EmailClaim: is.EmailClaim, Claims: is.Claims}
	}
	warnPublicIssuers(s.log, issuers)
	v, err := identity.NewOIDCVerifier(ctx, issuers, identity.Options{
		Leeway:             cfg.Identity.Leeway,
		KeyRefreshInterval: cfg.Identity.KeyRefreshInterval,
		CacheSize:          cfg.Identity.CacheSize,
		MaxTokenLifetime:   cfg.Identity.MaxTokenLifetime,
		Logger:             s.log.With("component", "identity"),
	})
	if err != nil {
		return nil, fmt.Errorf("config: identity.issuers: %w", err)
	}
	s.checks = append(s.checks, healthCheck{"identity", func(context.Context) error { return v.Healthy() }})
	if cfg.Identity.Dev {
		if httpLis == nil {
			return nil, errors.New("config: identity.dev: needs listen.http")
		}
		issuerURL := "http://" + httpLis.Addr().String() + "/dev"
		dev, err := identity.NewDevIssuer(issuerURL, "airlock")
		if err != nil {
			return nil, err
		}
		if err := v.AddStatic(dev.Config(), dev.Keys()); err != nil {
			return nil, err
		}
		mux.Handle("/dev/", dev.Handler())
		s.dev = dev
		s.log.Warn("DEV MODE: the loopback-only dev token issuer is trusted; never run this configuration in production",
			"issuer", issuerURL, "mint", "airlock dev-token --sub alice --groups ai-agents")
	}
	return v, nil
}

// warnPublicIssuers warns, naming the key, about each issuer anyone can
// obtain a token from that is trusted without a restriction.
func warnPublicIssuers(log *slog.Logger, issuers []identity.IssuerConfig) {
	for i, is := range issuers {
		if err := is.CheckPublic(); err != nil {
			log.Warn("a public token issuer is trusted without restriction (allow_unrestricted): "+err.Error(),
				"key", fmt.Sprintf("identity.issuers[%d]", i), "issuer", is.Issuer,
				"restrict_with", []string{"allowed_subjects", "allowed_email_domains", "allowed_hd"})
		}
	}
}

// policyPaths returns the configured policy paths. With the embedded
// configuration it uses ./policies/examples when present, else writes the
// embedded examples under .airlock/policies so they can be edited live.
func (s *server) policyPaths(embedded bool) ([]string, error) {
	if len(s.cfg.Policies.Paths) > 0 {
		return s.cfg.Policies.Paths, nil
	}
	if !embedded {
		return nil, errors.New("config: policies.paths: at least one policy file or folder is required")
	}
	if st, err := os.Stat(filepath.Join("policies", "examples")); err == nil && st.IsDir() {
		return []string{filepath.Join("policies", "examples")}, nil
	}
	dir := filepath.Join(".airlock", "policies")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("policies: %w", err)
	}
	err := fs.WalkDir(examples.FS, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			return err
		}
		dst := filepath.Join(dir, filepath.Base(p))
		if _, err := os.Stat(dst); err == nil {
			return nil
		}
		b, err := examples.FS.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		return nil, fmt.Errorf("policies: writing the example policies: %w", err)
	}
	return []string{dir}, nil
}

func policyLoadOptions() policies.LoadOptions {
	return policies.LoadOptions{KnownDetector: masking.IsBuiltin, CheckField: masking.CheckFieldPath}
}

// maskingEngine builds the masker with the policy set's custom detectors.
func maskingEngine(set *policies.Set) (*masking.Engine, error) {
	var specs []masking.DetectorSpec
	for _, d := range set.Detectors() {
		specs = append(specs, masking.DetectorSpec{Name: d.Name, Regex: d.Regex, Keywords: d.Keywords, Entropy: d.Entropy})
	}
	eng, err := masking.NewEngine(specs)
	if err != nil {
		return nil, fmt.Errorf("masking: %w", err)
	}
	return eng, nil
}

// resourceLookups builds the lookups behind resource.* from
// resources.credential (nil when it is empty): airlock's own read-only
// credential, the configured cache, and the Redis client of
// approvals.store for a cache shared across replicas.
func (s *server) resourceLookups(ctx context.Context) (resources.Backend, error) {
	rc := s.cfg.Resources
	if rc.Credential == "" {
		return nil, nil
	}
	var cred *config.Credential
	for i := range s.cfg.Credentials {
		if s.cfg.Credentials[i].Name == rc.Credential {
			cred = &s.cfg.Credentials[i]
		}
	}
	if cred == nil {
		return nil, fmt.Errorf("config: resources.credential: %q is not the name of a credentials[] entry", rc.Credential)
	}
	mint, err := envoy.Minter(*cred)
	if err != nil {
		return nil, fmt.Errorf("config: resources.credential: %w", err)
	}
	ts := oauth2.ReuseTokenSource(nil, tokenSourceFunc(mint))
	l, err := resources.New(resources.Options{
		Client:      &http.Client{Transport: &oauth2.Transport{Source: ts}, Timeout: rc.Timeout + time.Second},
		Endpoints:   rc.Endpoints,
		TTL:         rc.TTL,
		KindTTL:     rc.KindTTL,
		NegativeTTL: rc.NegativeTTL,
		CacheSize:   rc.CacheSize,
		Timeout:     rc.Timeout,
		Redis:       s.redis,
	})
	if err != nil {
		return nil, fmt.Errorf("config: resources: %w", err)
	}
	s.log.Info("resource lookups on", "credential", rc.Credential, "ttl", rc.TTL, "shared_cache", s.redis != nil)
	return l, nil
}

// tokenSourceFunc adapts a minter to oauth2.TokenSource; each mint is
// bounded so that a stuck token endpoint cannot hold a decision.
type tokenSourceFunc func(context.Context) (*oauth2.Token, error)

func (f tokenSourceFunc) Token() (*oauth2.Token, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return f(ctx)
}

// warnResourcesUnavailable says, at start and on reload, that policies read
// resource.* while no lookups are configured: such reads fail closed
// (UNAVAILABLE) unless guarded by resource.available.
func warnResourcesUnavailable(log *slog.Logger, set *policies.Set, lookups resources.Backend) {
	if lookups != nil || !set.UsesResources() {
		return
	}
	log.Info("policies read resource.* but resource lookups are not configured (resources.credential): resource.available is false, and a read it does not guard refuses with UNAVAILABLE",
		"first_use", set.ResourceUse())
}
