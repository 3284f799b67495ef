package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseErrorsNameTheKey(t *testing.T) {
	tests := []parseError{
		{"unknown top key", "listne:\n  authz: 127.0.0.1:9001\n", "config: listne (line 1): unknown key"},
		{"unknown nested key", "listen:\n  authz: 127.0.0.1:9001\n  grpc: 1.2.3.4:5\nidentity: {dev: true}\n", "config: listen.grpc (line 3): unknown key"},
		{"unknown key in list", "identity:\n  issuers:\n    - issuer: https://a.example\n      audiance: x\n", "config: identity.issuers[0].audiance (line 4): unknown key"},
		{"bad address", "listen:\n  authz: localhost\nidentity: {dev: true}\n", `config: listen.authz: "localhost" is not host:port`},
		{"bad port", "listen:\n  authz: 127.0.0.1:99999\nidentity: {dev: true}\n", `config: listen.authz: "127.0.0.1:99999" has a bad port`},
		{"wrong type", "approvals:\n  hold: soon\nidentity: {dev: true}\n", "config: approvals.hold (line 2): wrong type"},
		{"no issuer", "listen: {authz: 127.0.0.1:1}\n", "config: identity.issuers: at least one issuer is required"},
		{"http issuer", "identity:\n  issuers: [{issuer: http://idp.example.com, audience: a}]\n", `config: identity.issuers[0].issuer: "http://idp.example.com" must use https`},
		{"missing audience", "identity:\n  issuers: [{issuer: https://idp.example.com}]\n", "config: identity.issuers[0].audience: is required"},
		{"bad store", "identity: {dev: true}\napprovals: {store: mysql://x}\n", `config: approvals.store: "mysql://x" is neither memory nor a redis://`},
		{"bad sink", "identity: {dev: true}\nrecorder: {sink: s3://bucket}\n", `config: recorder.sink: "s3://bucket" must be gs://BUCKET/PREFIX or file://DIR`},
		{"recorder checkpoint interval", "identity: {dev: true}\nrecorder: {checkpoint_interval: 10ms}\n", "config: recorder.checkpoint_interval: must be at least 1s"},
		{"recorder unauthenticated share", "identity: {dev: true}\nrecorder: {unauthenticated: {spool_fraction: 0.9}}\n", "config: recorder.unauthenticated.spool_fraction: must be above 0 and at most 0.5"},
		{"recorder unauthenticated rate", "identity: {dev: true}\nrecorder: {unauthenticated: {rate: -1}}\n", "config: recorder.unauthenticated.rate: must not be negative"},
		{"recorder unauthenticated burst", "identity: {dev: true}\nrecorder: {unauthenticated: {burst: 0}}\n", "config: recorder.unauthenticated.burst: must be at least 1"},
		{"recorder unauthenticated sources", "identity: {dev: true}\nrecorder: {unauthenticated: {max_sources: 0}}\n", "config: recorder.unauthenticated.max_sources: must be at least 1"},
		{"recorder unauthenticated unknown key", "identity: {dev: true}\nrecorder: {unauthenticated: {rates: 1}}\n", "config: recorder.unauthenticated.rates (line 2): unknown key"},
		{"recorder durability", "identity: {dev: true}\nrecorder: {durability: later}\n", `config: recorder.durability: must be extproc or check, not "later"`},
		{"recorder durability without ext_proc", "identity: {dev: true}\nlisten: {extproc: \"\"}\n", "config: recorder.durability: extproc makes an allowed request durable at ext_proc, but listen.extproc is empty"},
		{"missing policy path", "identity: {dev: true}\npolicies: {paths: [no/such/dir]}\n", `config: policies.paths[0]: "no/such/dir": no such file or directory`},
		{"dev off loopback", "identity: {dev: true}\nlisten: {authz: 127.0.0.1:1, http: 0.0.0.0:8080}\n", "config: identity.dev: the dev token issuer serves on listen.http, which must then be a loopback address"},
		{"credential without source", "identity: {dev: true}\ncredentials: [{name: gcp}]\n", "config: credentials[0]: set service_account_key or adc: true"},
		{"credential key missing", "identity: {dev: true}\ncredentials: [{name: gcp, service_account_key: /nonexistent/sa.json}]\n", `config: credentials[0].service_account_key: "/nonexistent/sa.json"`},
		{"ttl order", "identity: {dev: true}\napprovals: {default_ttl: 2h, max_ttl: 1h}\n", "config: approvals.max_ttl: must be at least approvals.default_ttl (2h0m0s)"},
		{"pending cap", "identity: {dev: true}\napprovals: {max_pending_per_subject: 0}\n", "config: approvals.max_pending_per_subject: must be between 1 and 10000, not 0"},
		{"delegated votes type", "approvals:\n  allow_delegated_votes: maybe\nidentity: {dev: true}\n", "config: approvals.allow_delegated_votes (line 2): wrong type"},
		{"resources credential unknown", "identity: {dev: true}\nresources: {credential: lookup}\n", `config: resources.credential: "lookup" is not the name of a credentials[] entry`},
		{"resources kind", "identity: {dev: true}\nresources: {kind_ttl: {projects: 1m}}\n", "config: resources.kind_ttl.projects: unknown kind; want one of project, folder"},
		{"resources kind ttl", "identity: {dev: true}\nresources: {kind_ttl: {bucket: 0s}}\n", "config: resources.kind_ttl.bucket: must be positive"},
		{"resources endpoint service", "identity: {dev: true}\nresources: {endpoints: {crm: http://127.0.0.1:1}}\n", "config: resources.endpoints.crm: unknown service"},
		{"resources endpoint url", "identity: {dev: true}\nresources: {endpoints: {storage: 127.0.0.1:1}}\n", `config: resources.endpoints.storage: "127.0.0.1:1" is not an http(s) base URL`},
		{"resources ttl type", "identity: {dev: true}\nresources:\n  ttl: forever\n", "config: resources.ttl (line 3): wrong type"},
		{"tiny memory budget", "identity: {dev: true}\nmasking: {memory_budget_bytes: 1000}\n", "config: masking.memory_budget_bytes: must be at least 1048576"},
		{"memory budget not a number", "identity: {dev: true}\nmasking:\n  memory_budget_bytes: lots\n", "config: masking.memory_budget_bytes (line 3): wrong type"},
		{"not yaml", "listen: [\n", "config: (file) (line 1): not valid YAML"},
		{"yaml wrong on a later line", "listen:\n  authz: \":9001\"\n approvals:\n  store: memory\n", "config: (file) (line 3): not valid YAML"},
		{"scalar for mapping", "listen: 5\n", "config: listen (line 1): must be a mapping"},
	}
	testParseErrors(t, tests)
}

func TestParseKeepsDefaults(t *testing.T) {
	c, err := Parse([]byte("identity:\n  issuers:\n    - issuer: https://accounts.google.com\n      audience: airlock\n      allowed_email_domains: [acme-prod.iam.gserviceaccount.com]\napprovals:\n  hold: 30s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Approvals.Hold != 30*time.Second {
		t.Errorf("hold = %s, want 30s", c.Approvals.Hold)
	}
	if c.Listen.Authz != "127.0.0.1:9001" || c.Approvals.Store != "memory" || c.Recorder.OnFull != "refuse" ||
		c.Approvals.MaxPendingPerSubject != 20 || c.Approvals.AllowDelegatedVotes {
		t.Errorf("defaults lost: %+v", c)
	}
	if c.Recorder.Durability != "extproc" {
		t.Errorf("recorder.durability = %q, want extproc", c.Recorder.Durability)
	}
	if c.Masking.MemoryBudgetBytes != 256<<20 {
		t.Errorf("masking.memory_budget_bytes = %d, want 256 MiB", c.Masking.MemoryBudgetBytes)
	}
	if c.Identity.Issuers[0].Audience != "airlock" {
		t.Errorf("issuer not read: %+v", c.Identity.Issuers)
	}
}

func TestEmptyDocumentIsDefaults(t *testing.T) {
	_, err := Parse(nil)
	if err == nil || !strings.Contains(err.Error(), "identity.issuers") {
		t.Fatalf("empty config must ask for an issuer, got %v", err)
	}
	if err := Dev().Validate(); err != nil {
		t.Fatalf("dev defaults invalid: %v", err)
	}
}

func TestExampleFileIsValidAndComplete(t *testing.T) {
	path := filepath.Join("..", "airlock.example.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The example names files that exist on a deployed host; point them at
	// temporary files so that validation checks everything else.
	sa := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(sa, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(data), "/etc/airlock/prod-sa.json", sa)
	text = strings.ReplaceAll(text, "policies/examples", filepath.Join("..", "policies", "examples"))
	if _, err := Parse([]byte(text)); err != nil {
		t.Fatalf("airlock.example.yaml does not validate: %v", err)
	}
	// Every key of the typed config must be documented in the example.
	for _, key := range yamlKeys(reflect.TypeOf(Config{})) {
		if !strings.Contains(text, key+":") {
			t.Errorf("airlock.example.yaml does not document %s", key)
		}
	}
}

// yamlKeys lists the yaml names of t's fields, nested structs included.
func yamlKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Duration(0)) {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		keys = append(keys, yamlKeys(f.Type)...)
	}
	return keys
}

func TestConsoleKeys(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	const issuers = "identity:\n  issuers: [{issuer: https://login.example.com, audience: airlock}]\n"
	tests := []parseError{
		{"issuer not trusted", issuers + "console: {issuer: https://other.example.com}\n", `config: console.issuer: "https://other.example.com" is not one of identity.issuers (https://login.example.com)`},
		{"client id empty", issuers + "console: {issuer: https://login.example.com, client_id: ''}\n", "config: console.client_id: is required"},
		{"secret missing", issuers + "console: {issuer: https://login.example.com, client_secret_file: /nonexistent/s}\n", `config: console.client_secret_file: "/nonexistent/s"`},
		{"secret empty", issuers + "console: {issuer: https://login.example.com, client_secret_file: " + empty + "}\n", "is empty"},
		{"auditor form", issuers + "console: {auditors: [audit]}\n", `config: console.auditors[0]: "audit" must be group:NAME or user:EMAIL`},
		{"auditor user without address", issuers + "console: {auditors: ['user:bob']}\n", `config: console.auditors[0]: "user:bob" must be group:NAME or user:EMAIL`},
		{"session ttl", issuers + "console: {session_ttl: 1m}\n", "config: console.session_ttl: must be between 5m and 168h"},
		{"plain http off loopback", issuers + "console: {issuer: https://login.example.com}\napprovals: {public_url: http://airlock.example.com}\n", "config: approvals.public_url: the console signs people in with a Secure cookie"},
		{"unknown key", issuers + "console: {auditor: [group:a]}\n", "config: console.auditor (line 3): unknown key"},
		{"no base URL off loopback", issuers + "console: {issuer: https://login.example.com}\nlisten: {authz: 127.0.0.1:1, http: 0.0.0.0:8080}\n", "config: approvals.public_url: is required with console.issuer"},
	}
	testParseErrors(t, tests)
	c, err := Parse([]byte(issuers + "console: {issuer: https://login.example.com, client_secret_file: " + secret + ", auditors: [group:audit, user:eve@example.com]}\napprovals: {public_url: https://airlock.example.com}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := c.Console.ReadClientSecret(); err != nil || s != "s3cret" {
		t.Fatalf("secret = %q, %v", s, err)
	}
	if !c.ConsoleEnabled() || c.ConsoleIssuer() == nil || c.Console.ClientID != "airlock-console" || c.Console.SessionTTL != 8*time.Hour {
		t.Fatalf("console = %+v", c.Console)
	}
	if d := Dev(); !d.ConsoleEnabled() || d.ConsoleIssuer() != nil {
		t.Fatalf("the local trial has no console: %+v", d.Console)
	}
	if d := Default(); d.ConsoleEnabled() {
		t.Fatal("the console signs in without an issuer")
	}
}

func TestEnumKeysNameTheirWords(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"log: {format: xml}\n", `config: log.format: must be json or text, not "xml"`},
		{"authz: {unrecognised: allow}\n", `config: authz.unrecognised: must be refuse or policy, not "allow"`},
		{"masking: {body_mode: chunked}\n", `config: masking.body_mode: must be streamed or buffered, not "chunked"`},
		{"recorder: {on_full: ignore}\n", `config: recorder.on_full: must be refuse or drop, not "ignore"`},
		{"recorder: {durability: never}\n", `config: recorder.durability: must be extproc or check, not "never"`},
	} {
		_, err := Parse([]byte("identity: {dev: true}\n" + tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

// parseError is a configuration Parse must refuse with an error that
// contains want.
type parseError struct{ name, yaml, want string }

func testParseErrors(t *testing.T, tests []parseError) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tt.yaml)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error\n  %v\nwant it to contain\n  %s", err, tt.want)
			}
		})
	}
}
