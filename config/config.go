// Package config is airlock's one typed configuration: loaded from YAML,
// validated at start with errors that name the key, with a default for
// every field.
package config

import (
	"time"
)

// Config is the whole of airlock.yaml.
type Config struct {
	Listen      Listen       `yaml:"listen"`
	Log         Log          `yaml:"log"`
	Identity    Identity     `yaml:"identity"`
	Policies    Policies     `yaml:"policies"`
	Authz       Authz        `yaml:"authz"`
	Approvals   Approvals    `yaml:"approvals"`
	Masking     Masking      `yaml:"masking"`
	Recorder    Recorder     `yaml:"recorder"`
	Gateway     Gateway      `yaml:"gateway"`
	Credentials []Credential `yaml:"credentials"`
	Resources   Resources    `yaml:"resources"`
	Envoy       Envoy        `yaml:"envoy"`
	HTTP        HTTP         `yaml:"http"`
	GRPC        GRPC         `yaml:"grpc"`
	SDS         SDS          `yaml:"sds"`
	MCP         MCP          `yaml:"mcp"`
	Console     Console      `yaml:"console"`
}

// Listen holds the addresses airlock serves on. An empty address disables
// that server.
type Listen struct {
	// Authz is the ext_authz gRPC address (also serves grpc.health.v1).
	Authz string `yaml:"authz"`
	// ExtProc is the ext_proc gRPC address.
	ExtProc string `yaml:"extproc"`
	// SDS is the SDS gRPC address serving GCP credentials to Envoy:
	// host:port, or unix:///PATH for a Unix domain socket. A TCP address
	// off loopback needs mTLS (sds.tls_cert, sds.tls_key, sds.client_ca)
	// or sds.allow_insecure_tcp.
	SDS string `yaml:"sds"`
	// HTTP serves the approvals API, web page, /metrics and /healthz.
	HTTP string `yaml:"http"`
}

// Log configures structured logging.
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// Identity configures token verification.
type Identity struct {
	// Issuers are the trusted OIDC issuers.
	Issuers []Issuer `yaml:"issuers"`
	// Dev starts the loopback-only development token issuer and trusts it.
	Dev bool `yaml:"dev"`
	// Leeway is the clock skew tolerated on exp and nbf.
	Leeway time.Duration `yaml:"leeway"`
	// KeyRefreshInterval is the minimum time between two JWKS refreshes
	// triggered by an unknown key id.
	KeyRefreshInterval time.Duration `yaml:"key_refresh_interval"`
	// CacheSize bounds the number of verified tokens kept until their expiry.
	CacheSize int `yaml:"cache_size"`
	// MaxTokenLifetime refuses a token whose exp - iat exceeds it (or, with
	// no iat, whose exp is further than this from now).
	MaxTokenLifetime time.Duration `yaml:"max_token_lifetime"`
}

// Issuer is one trusted OIDC issuer.
type Issuer struct {
	// Issuer is the issuer URL; its discovery document is fetched from it.
	Issuer string `yaml:"issuer"`
	// Audience is the "aud" the tokens must carry.
	Audience string `yaml:"audience"`
	// GroupsClaim names the claim holding the caller's groups.
	GroupsClaim string `yaml:"groups_claim"`
	// JWKSURL overrides the jwks_uri of the discovery document.
	JWKSURL string `yaml:"jwks_url"`
	// TrustEmail treats every "email" claim of this issuer as verified
	// (for issuers that own every address they issue but do not send
	// "email_verified"). Only verified e-mails match user:EMAIL approvers.
	TrustEmail bool `yaml:"trust_email"`
	// AllowedSubjects admits tokens whose "sub" is listed (an entry ending
	// in * matches by prefix).
	AllowedSubjects []string `yaml:"allowed_subjects"`
	// AllowedEmailDomains admits tokens whose verified e-mail is in one of
	// these domains.
	AllowedEmailDomains []string `yaml:"allowed_email_domains"`
	// AllowedHD admits Google tokens whose "hd" claim (the Google Workspace
	// domain of the account) is listed.
	AllowedHD []string `yaml:"allowed_hd"`
	// AllowedEmails admits tokens whose verified e-mail is listed (a
	// service account's address, say).
	AllowedEmails []string `yaml:"allowed_emails"`
	// AllowUnrestricted trusts a public issuer (accounts.google.com,
	// token.actions.githubusercontent.com, gitlab.com, multi-tenant URLs)
	// without any allowed_* list; without it such an issuer is an error.
	AllowUnrestricted bool `yaml:"allow_unrestricted"`
	// SubjectClaim names the claim read as identity.subject (default sub).
	SubjectClaim string `yaml:"subject_claim"`
	// EmailClaim names the claim read as identity.email (default email).
	EmailClaim string `yaml:"email_claim"`
	// Claims maps extra names to claim paths, exposed as
	// identity.claims.NAME (e.g. namespace: kubernetes.io.namespace).
	Claims map[string]string `yaml:"claims"`
}

// Policies says where the policy files are.
type Policies struct {
	// Paths are files or folders of *.yaml policies.
	Paths []string `yaml:"paths"`
	// ReloadInterval is how often the files are checked for changes; 0 disables reload.
	ReloadInterval time.Duration `yaml:"reload_interval"`
}

// Authz tunes the ext_authz server.
type Authz struct {
	// MaxBodyBytes is the largest request body parsed as JSON for policies and
	// batch recognition; it should match Envoy's with_request_body.max_request_bytes.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// Timeout bounds one Check, approval hold excluded.
	Timeout time.Duration `yaml:"timeout"`
	// Unrecognised is what happens to a request whose operation airlock
	// cannot recognise (unknown host or method, gRPC, a batch holding
	// one): "refuse" refuses it before policy with INVALID_REQUEST;
	// "policy" hands it to policy, where gcp.method is empty.
	Unrecognised string `yaml:"unrecognised"`
}

// Approvals configures just-in-time approvals.
type Approvals struct {
	// Store is "memory" or a redis://, rediss://, redis-sentinel:// or
	// redis-cluster:// URL.
	Store string `yaml:"store"`
	// Hold is how long Check waits for a decision before answering
	// APPROVAL_REQUIRED.
	Hold time.Duration `yaml:"hold"`
	// DefaultTTL applies to rules without a ttl.
	DefaultTTL time.Duration `yaml:"default_ttl"`
	// MaxTTL caps every rule's ttl.
	MaxTTL time.Duration `yaml:"max_ttl"`
	// PublicURL is the base of approve_url in refusals, e.g. https://airlock.example.com.
	PublicURL string `yaml:"public_url"`
	// Webhooks are POSTed on every new pending approval and every decision.
	Webhooks []string `yaml:"webhooks"`
	// MaxPendingPerSubject caps the pending approvals of one requester
	// (issuer and subject); a request over it is refused with
	// APPROVAL_REQUIRED and queue_full.
	MaxPendingPerSubject int `yaml:"max_pending_per_subject"`
	// AllowDelegatedVotes lets a token that acts for another party (an
	// RFC 8693 act claim) vote, never one acting for the requester.
	AllowDelegatedVotes bool `yaml:"allow_delegated_votes"`
}

// Masking configures the ext_proc masker.
type Masking struct {
	// BodyMode is "streamed" or "buffered": how Envoy is told to send bodies.
	BodyMode string `yaml:"body_mode"`
	// MaxDecompressedBytes bounds a decompressed response body, and each
	// gRPC message (gzip bombs).
	MaxDecompressedBytes int64 `yaml:"max_decompressed_bytes"`
	// MemoryBudgetBytes bounds the memory all responses together hold for
	// masking and inflation; a response that cannot get its share is
	// refused (503) or cut off.
	MemoryBudgetBytes int64 `yaml:"memory_budget_bytes"`
}

// Recorder configures session recording.
type Recorder struct {
	// Enabled turns recording on.
	Enabled bool `yaml:"enabled"`
	// Sink is gs://BUCKET/PREFIX or file://DIR.
	Sink string `yaml:"sink"`
	// Spool is the local directory of the append-only spool.
	Spool string `yaml:"spool"`
	// SpoolMaxBytes bounds the spool on disk.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// OnFull is "refuse" (fail closed) or "drop" (fail open, counted).
	OnFull string `yaml:"on_full"`
	// IdleGap starts a new session after this long without requests.
	IdleGap time.Duration `yaml:"idle_gap"`
	// MaxBodyBytes bounds the masked body kept per request and response event.
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// SigningKey is a file holding an Ed25519 private key (PEM) that signs manifests.
	SigningKey string `yaml:"signing_key"`
	// CheckpointInterval is how often, at most, each writer writes a
	// signed checkpoint of the manifests it wrote (rollback detection).
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// Unauthenticated bounds the recording of requests refused before an
	// identity is known.
	Unauthenticated RecorderUnauthenticated `yaml:"unauthenticated"`
	// Durability says where an allowed request waits until its recording
	// is durable, before Envoy forwards it: "extproc" (ext_authz answers at
	// once; ext_proc's request-headers reply waits until the request event,
	// which carries the decision, is durable; needs ext_proc on every
	// request, listen.extproc set) or "check" (the Check waits, for an
	// ext_authz-only deployment).
	Durability string `yaml:"durability"`
}

// RecorderUnauthenticated bounds what is recorded of requests refused
// before an identity is known (no token, a bad one): compact events, a
// rate per source address, and a share of the spool of their own.
type RecorderUnauthenticated struct {
	// SpoolFraction is their share of recorder.spool_max_bytes.
	SpoolFraction float64 `yaml:"spool_fraction"`
	// Rate is the events per second one source address may add; 0
	// records none (all are counted as dropped).
	Rate float64 `yaml:"rate"`
	// Burst is how many a source may add at once.
	Burst int `yaml:"burst"`
	// MaxSources bounds the source addresses tracked at once.
	MaxSources int `yaml:"max_sources"`
}

// Gateway maps endpoint-override hosts back to Google hosts.
type Gateway struct {
	// Domains: compute.DOMAIN is read as compute.googleapis.com.
	Domains []string `yaml:"domains"`
}

// Credential is one GCP credential served over SDS.
type Credential struct {
	// Name is the SDS secret name Envoy asks for.
	Name string `yaml:"name"`
	// ServiceAccountKey is a service-account JSON key file.
	ServiceAccountKey string `yaml:"service_account_key"`
	// ADC uses Application Default Credentials instead of a key file.
	ADC bool `yaml:"adc"`
	// Scopes are the OAuth scopes of the minted token.
	Scopes []string `yaml:"scopes"`
}

// Resources configures the lookups behind resource.* and the resolution of
// gcp.project (a project number to its id, a bucket to its project).
type Resources struct {
	// Credential names the credentials[] entry used for lookups: a
	// read-only service account, never the one Envoy injects. Empty
	// disables lookups (then policies may not read resource.*).
	Credential string `yaml:"credential"`
	// TTL is how long a looked-up answer is trusted.
	TTL time.Duration `yaml:"ttl"`
	// KindTTL overrides TTL per kind: project, folder, organization, tags,
	// bucket, instance, disk, secret, sql_instance.
	KindTTL map[string]time.Duration `yaml:"kind_ttl"`
	// NegativeTTL is how long "does not exist" is trusted.
	NegativeTTL time.Duration `yaml:"negative_ttl"`
	// CacheSize bounds the answers kept in each replica's memory.
	CacheSize int `yaml:"cache_size"`
	// Timeout bounds one call to Google.
	Timeout time.Duration `yaml:"timeout"`
	// Endpoints replace https://SERVICE.googleapis.com per service
	// (cloudresourcemanager, storage, compute, secretmanager, sqladmin).
	Endpoints map[string]string `yaml:"endpoints"`
}

// Envoy configures `airlock envoy config`.
type Envoy struct {
	// Listen is the address Envoy's listener binds to.
	Listen string `yaml:"listen"`
	// AirlockHost is the host Envoy dials for airlock's gRPC services.
	AirlockHost string `yaml:"airlock_host"`
	// TLSCert and TLSKey, when set, make the listener terminate TLS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// SDSTLSCert and SDSTLSKey are Envoy's client certificate and key for
	// airlock's SDS over mTLS (with sds.tls_cert on airlock's side).
	SDSTLSCert string `yaml:"sds_tls_cert"`
	SDSTLSKey  string `yaml:"sds_tls_key"`
	// SDSCA is the CA bundle Envoy checks airlock's SDS certificate with.
	SDSCA string `yaml:"sds_ca"`
	// SDSServerName is the name Envoy expects in airlock's SDS certificate
	// (and sends as SNI); default envoy.airlock_host.
	SDSServerName string `yaml:"sds_server_name"`
}

// HTTP tunes the server on listen.http (approvals API, web page, /metrics,
// health) against slow and greedy clients.
type HTTP struct {
	// ReadHeaderTimeout bounds reading a request's headers.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request, body included.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing a response, from the end of the headers.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// IdleTimeout closes a keep-alive connection idle this long.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxBodyBytes bounds a request's body (413 beyond it).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxConnsPerSource caps the concurrent connections of one source
	// address; further ones are closed at once. 0 disables the cap.
	MaxConnsPerSource int `yaml:"max_conns_per_source"`
}

// GRPC tunes the ext_authz, ext_proc and SDS gRPC servers.
type GRPC struct {
	// MaxConcurrentStreams caps the concurrent streams of one connection;
	// Envoy opens another connection beyond it.
	MaxConcurrentStreams uint32 `yaml:"max_concurrent_streams"`
	// KeepaliveMinTime: a client pinging more often than this is sent
	// GOAWAY (too_many_pings).
	KeepaliveMinTime time.Duration `yaml:"keepalive_min_time"`
	// KeepaliveTime: the server pings a connection idle this long.
	KeepaliveTime time.Duration `yaml:"keepalive_time"`
	// KeepaliveTimeout: a connection whose ping is unanswered this long is closed.
	KeepaliveTimeout time.Duration `yaml:"keepalive_timeout"`
	// ConnectionTimeout bounds a new connection's handshake (TLS and HTTP/2 preface).
	ConnectionTimeout time.Duration `yaml:"connection_timeout"`
}

// SDS secures the SDS listener (listen.sds), which hands out the GCP
// credential.
type SDS struct {
	// TLSCert and TLSKey are airlock's server certificate and key (PEM);
	// with ClientCA the listener requires mTLS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ClientCA is the CA bundle (PEM) whose client certificates may connect.
	ClientCA string `yaml:"client_ca"`
	// AllowInsecureTCP lets listen.sds bind a TCP address off loopback
	// without mTLS, for a network that guards the port by other means (an
	// Istio sidecar with mTLS and an AuthorizationPolicy).
	AllowInsecureTCP bool `yaml:"allow_insecure_tcp"`
}

// MCP configures how airlock treats Google's remote MCP servers
// (https://SERVICE.googleapis.com/mcp) and serves its own MCP server to
// agents.
type MCP struct {
	// Enabled recognises requests to Google's MCP endpoints as MCP
	// (mcp.*, tool calls mapped to their REST methods); false leaves them
	// unknown operations.
	Enabled bool `yaml:"enabled"`
	// FilterTools removes from tools/list results the tools the caller
	// could never call under the policies in force.
	FilterTools bool `yaml:"filter_tools"`
	// MaxHold caps approvals.hold for MCP calls, so that a held tool call
	// is answered before the MCP client gives up (clients commonly wait
	// 60 s); 0s answers a held MCP call at once with its approval pending.
	MaxHold time.Duration `yaml:"max_hold"`
	// MaxMessageBytes bounds one JSON-RPC message of an MCP response (a
	// JSON body, one SSE event) held for masking; a larger one ends the
	// response in an error.
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// Server serves airlock's own MCP server for agents on listen.http at
	// /mcp (explain_request, request_approval, get_approval,
	// wait_for_approval, list_my_grants).
	Server bool `yaml:"server"`
}
