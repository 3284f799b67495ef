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
	Envoy       Envoy        `yaml:"envoy"`
}

// Listen holds the addresses airlock serves on. An empty address disables
// that server.
type Listen struct {
	// Authz is the ext_authz gRPC address (also serves grpc.health.v1).
	Authz string `yaml:"authz"`
	// ExtProc is the ext_proc gRPC address.
	ExtProc string `yaml:"extproc"`
	// SDS is the SDS gRPC address serving GCP credentials to Envoy.
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

// Envoy configures `airlock envoy config`.
type Envoy struct {
	// Listen is the address Envoy's listener binds to.
	Listen string `yaml:"listen"`
	// AirlockHost is the host Envoy dials for airlock's gRPC services.
	AirlockHost string `yaml:"airlock_host"`
	// TLSCert and TLSKey, when set, make the listener terminate TLS.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
}
