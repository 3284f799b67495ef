package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/internal/yamlpos"
	"gopkg.in/yaml.v3"
)

// Error is a configuration problem. Key is the dotted path of the offending
// key (e.g. "approvals.store" or "identity.issuers[0].audience").
type Error struct {
	Key  string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("config: %s (line %d): %s", e.Key, e.Line, e.Msg)
	}
	return fmt.Sprintf("config: %s: %s", e.Key, e.Msg)
}

// Errors is every problem found in one file.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Default returns the defaults of every key: production-minded values for a
// file that leaves a key out.
func Default() *Config {
	return &Config{
		Listen: Listen{
			Authz:   "127.0.0.1:9001",
			ExtProc: "127.0.0.1:9002",
			SDS:     "127.0.0.1:9003",
			HTTP:    "127.0.0.1:8080",
		},
		Log: Log{Level: "info", Format: "json"},
		Identity: Identity{
			Leeway:             30 * time.Second,
			KeyRefreshInterval: 10 * time.Second,
			CacheSize:          10000,
			MaxTokenLifetime:   24 * time.Hour,
		},
		Policies: Policies{ReloadInterval: 2 * time.Second},
		Authz:    Authz{MaxBodyBytes: 1 << 20, Timeout: time.Second, Unrecognised: "refuse"},
		Approvals: Approvals{
			Store:                "memory",
			DefaultTTL:           15 * time.Minute,
			MaxTTL:               24 * time.Hour,
			MaxPendingPerSubject: 20,
		},
		Masking: Masking{BodyMode: "streamed", MaxDecompressedBytes: 64 << 20, MemoryBudgetBytes: 256 << 20},
		Recorder: Recorder{
			Enabled:       true,
			Sink:          "file:///var/lib/airlock/sessions",
			Spool:         "/var/lib/airlock/spool",
			SpoolMaxBytes: 1 << 30,
			OnFull:        "refuse",
			IdleGap:       30 * time.Minute,
			MaxBodyBytes:  16 << 10,

			CheckpointInterval: time.Minute,
			Unauthenticated:    RecorderUnauthenticated{SpoolFraction: 0.05, Rate: 1, Burst: 10, MaxSources: 10000},
			Durability:         "extproc",
		},
		Envoy:     Envoy{Listen: "0.0.0.0:10000", AirlockHost: "127.0.0.1"},
		HTTP:      DefaultHTTP(),
		GRPC:      DefaultGRPC(),
		Resources: Resources{TTL: 5 * time.Minute, NegativeTTL: 30 * time.Second, CacheSize: 10000, Timeout: 2 * time.Second},
		MCP:       MCP{Enabled: true, FilterTools: true, MaxHold: 45 * time.Second, MaxMessageBytes: 16 << 20, Server: true},
		Console:   DefaultConsole(),
	}
}

// Dev returns the embedded configuration served when no file is given: a
// local trial with the loopback-only dev token issuer, in-memory approvals and
// recordings under ./.airlock.
func Dev() *Config {
	c := Default()
	c.Log.Format = "text"
	c.Identity.Dev = true
	c.Recorder.Sink = "file://.airlock/sessions"
	c.Recorder.Spool = ".airlock/spool"
	return c
}

// Load reads and validates a configuration file. Keys left out keep the
// values of Default. Every problem is reported, each naming its key.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	return c, nil
}

// Parse reads and validates a configuration document.
func Parse(data []byte) (*Config, error) {
	c := Default()
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		line, msg := yamlpos.Locate(data, err)
		return nil, Errors{{Key: "(file)", Line: line, Msg: "not valid YAML: " + msg}}
	}
	if len(root.Content) == 0 {
		return c, c.Validate()
	}
	doc := root.Content[0]
	if errs := checkKeys(doc, reflect.TypeOf(*c), ""); len(errs) > 0 {
		return nil, errs
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		return nil, Errors{typeError(doc, err)}
	}
	return c, c.Validate()
}

// checkKeys walks the document against the struct's yaml tags so that an
// unknown key is reported with its full dotted path and line.
func checkKeys(n *yaml.Node, t reflect.Type, prefix string) Errors {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var errs Errors
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Duration(0)) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
				return nil
			}
			return Errors{{Key: nonEmpty(prefix), Line: n.Line, Msg: "must be a mapping"}}
		}
		fields := map[string]reflect.StructField{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if name != "" && name != "-" {
				fields[name] = f
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(prefix, k.Value)
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &Error{Key: key, Line: k.Line, Msg: "unknown key" + suggest(k.Value, fields)})
				continue
			}
			errs = append(errs, checkKeys(v, f.Type, key)...)
		}
	case reflect.Map:
		switch {
		case n.Kind == yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				if t.Elem().Kind() == reflect.String && v.Kind != yaml.ScalarNode {
					errs = append(errs, &Error{Key: join(prefix, k.Value), Line: v.Line, Msg: "must be a string"})
					continue
				}
				errs = append(errs, checkKeys(v, t.Elem(), join(prefix, k.Value))...)
			}
		case !(n.Kind == yaml.ScalarNode && n.Tag == "!!null"):
			errs = append(errs, &Error{Key: nonEmpty(prefix), Line: n.Line, Msg: "must be a mapping"})
		}
	case reflect.Slice:
		if n.Kind == yaml.SequenceNode {
			for i, item := range n.Content {
				errs = append(errs, checkKeys(item, t.Elem(), fmt.Sprintf("%s[%d]", prefix, i))...)
			}
		} else if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
			errs = append(errs, &Error{Key: nonEmpty(prefix), Line: n.Line, Msg: "must be a list"})
		}
	}
	return errs
}

func suggest(got string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sortStrings(names)
	return " (known keys: " + strings.Join(names, ", ") + ")"
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// typeError turns a yaml.v3 decoding error ("line 3: cannot unmarshal ...")
// into an Error naming the key at that line.
func typeError(doc *yaml.Node, err error) *Error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := strings.TrimPrefix(msg, "line ")
		if i := strings.Index(rest, ":"); i > 0 {
			line, _ = strconv.Atoi(rest[:i])
			msg = strings.TrimSpace(rest[i+1:])
		}
	}
	key := keyAtLine(doc, "", line)
	if key == "" {
		key = "(file)"
	}
	return &Error{Key: key, Line: line, Msg: "wrong type: " + msg}
}

func keyAtLine(n *yaml.Node, prefix string, line int) string {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			key := join(prefix, k.Value)
			if k.Line == line && (v.Kind == yaml.ScalarNode || v.Line == line) {
				return key
			}
			if found := keyAtLine(v, key, line); found != "" {
				return found
			}
		}
	case yaml.SequenceNode:
		for i, item := range n.Content {
			key := fmt.Sprintf("%s[%d]", prefix, i)
			if item.Kind == yaml.ScalarNode && item.Line == line {
				return key
			}
			if found := keyAtLine(item, key, line); found != "" {
				return found
			}
		}
	}
	return ""
}

func join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + "." + key
}

func nonEmpty(s string) string {
	if s == "" {
		return "(file)"
	}
	return s
}

// enums are the keys that take one of a few words, checked in one place;
// their defaults are in Default.
var enums = []struct {
	key   string
	words []string
	value func(*Config) string
}{
	{"log.format", []string{"json", "text"}, func(c *Config) string { return c.Log.Format }},
	{"authz.unrecognised", []string{"refuse", "policy"}, func(c *Config) string { return c.Authz.Unrecognised }},
	{"masking.body_mode", []string{"streamed", "buffered"}, func(c *Config) string { return c.Masking.BodyMode }},
	{"recorder.on_full", []string{"refuse", "drop"}, func(c *Config) string { return c.Recorder.OnFull }},
	{"recorder.durability", []string{"extproc", "check"}, func(c *Config) string { return c.Recorder.Durability }},
}

// Validate checks every value and returns Errors naming each bad key.
func (c *Config) Validate() error {
	var errs Errors
	bad := func(key, format string, args ...any) {
		errs = append(errs, &Error{Key: key, Msg: fmt.Sprintf(format, args...)})
	}
	for _, e := range enums {
		if v := e.value(c); !slices.Contains(e.words, v) {
			bad(e.key, "must be %s, not %q", strings.Join(e.words, " or "), v)
		}
	}
	checkAddr := func(key, addr string, required bool) {
		if addr == "" {
			if required {
				bad(key, "is required")
			}
			return
		}
		if err := validAddr(addr); err != nil {
			bad(key, "%v", err)
		}
	}
	checkAddr("listen.authz", c.Listen.Authz, true)
	checkAddr("listen.extproc", c.Listen.ExtProc, false)
	if !IsUnixAddr(c.Listen.SDS) {
		checkAddr("listen.sds", c.Listen.SDS, false)
	}
	checkAddr("listen.http", c.Listen.HTTP, false)

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be debug, info, warn or error, not %q", c.Log.Level)
	}

	if len(c.Identity.Issuers) == 0 && !c.Identity.Dev {
		bad("identity.issuers", "at least one issuer is required (or identity.dev: true for a local trial)")
	}
	seen := map[string]bool{}
	for i, is := range c.Identity.Issuers {
		key := fmt.Sprintf("identity.issuers[%d]", i)
		if err := validIssuerURL(is.Issuer); err != nil {
			bad(key+".issuer", "%v", err)
		} else if seen[is.Issuer] {
			bad(key+".issuer", "issuer %q is listed twice", is.Issuer)
		}
		seen[is.Issuer] = true
		if is.Audience == "" {
			bad(key+".audience", "is required: the \"aud\" tokens must carry")
		}
		if is.JWKSURL != "" {
			if err := validIssuerURL(is.JWKSURL); err != nil {
				bad(key+".jwks_url", "%v", err)
			}
		}
	}
	if c.Identity.Dev && c.Listen.HTTP != "" && !loopbackAddr(c.Listen.HTTP) {
		bad("identity.dev", "the dev token issuer serves on listen.http, which must then be a loopback address, not %q", c.Listen.HTTP)
	}
	if c.Identity.Dev && c.Listen.HTTP == "" {
		bad("identity.dev", "the dev token issuer needs listen.http")
	}
	if c.Identity.Leeway < 0 || c.Identity.Leeway > 5*time.Minute {
		bad("identity.leeway", "must be between 0s and 5m, not %s", c.Identity.Leeway)
	}
	if c.Identity.KeyRefreshInterval < 0 {
		bad("identity.key_refresh_interval", "must not be negative")
	}
	if c.Identity.CacheSize < 0 {
		bad("identity.cache_size", "must not be negative")
	}

	for i, p := range c.Policies.Paths {
		if _, err := os.Stat(p); err != nil {
			bad(fmt.Sprintf("policies.paths[%d]", i), "%q: %v", p, errors.Unwrap(err))
		}
	}
	if c.Policies.ReloadInterval < 0 {
		bad("policies.reload_interval", "must not be negative")
	}

	if c.Authz.MaxBodyBytes < 0 || c.Authz.MaxBodyBytes > 64<<20 {
		bad("authz.max_body_bytes", "must be between 0 and 67108864, not %d", c.Authz.MaxBodyBytes)
	}
	if c.Authz.Timeout <= 0 {
		bad("authz.timeout", "must be positive")
	}

	if err := validStore(c.Approvals.Store); err != nil {
		bad("approvals.store", "%v", err)
	}
	if c.Approvals.Hold < 0 || c.Approvals.Hold > 10*time.Minute {
		bad("approvals.hold", "must be between 0s and 10m, not %s", c.Approvals.Hold)
	}
	if c.Approvals.DefaultTTL <= 0 {
		bad("approvals.default_ttl", "must be positive")
	}
	if c.Approvals.MaxTTL < c.Approvals.DefaultTTL {
		bad("approvals.max_ttl", "must be at least approvals.default_ttl (%s)", c.Approvals.DefaultTTL)
	}
	if c.Approvals.PublicURL != "" {
		if u, err := url.Parse(c.Approvals.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("approvals.public_url", "must be an http(s) URL, not %q", c.Approvals.PublicURL)
		}
	}
	for i, w := range c.Approvals.Webhooks {
		if u, err := url.Parse(w); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(fmt.Sprintf("approvals.webhooks[%d]", i), "must be an http(s) URL")
		}
	}
	if c.Approvals.MaxPendingPerSubject < 1 || c.Approvals.MaxPendingPerSubject > 10000 {
		bad("approvals.max_pending_per_subject", "must be between 1 and 10000, not %d", c.Approvals.MaxPendingPerSubject)
	}

	if c.Masking.MaxDecompressedBytes <= 0 {
		bad("masking.max_decompressed_bytes", "must be positive")
	}
	if c.Masking.MemoryBudgetBytes < minMemoryBudget {
		bad("masking.memory_budget_bytes", "must be at least %d (1 MiB): a smaller budget refuses every masked response", minMemoryBudget)
	}

	if c.Recorder.Enabled {
		if err := validSink(c.Recorder.Sink); err != nil {
			bad("recorder.sink", "%v", err)
		}
		if c.Recorder.Spool == "" {
			bad("recorder.spool", "is required when recorder.enabled is true")
		}
	}
	if c.Recorder.SpoolMaxBytes <= 0 {
		bad("recorder.spool_max_bytes", "must be positive")
	}
	if c.Recorder.IdleGap <= 0 {
		bad("recorder.idle_gap", "must be positive")
	}
	if c.Recorder.MaxBodyBytes < 0 {
		bad("recorder.max_body_bytes", "must not be negative")
	}
	if c.Recorder.SigningKey != "" {
		if _, err := os.Stat(c.Recorder.SigningKey); err != nil {
			bad("recorder.signing_key", "%q: %v", c.Recorder.SigningKey, errors.Unwrap(err))
		}
	}
	if c.Recorder.CheckpointInterval < time.Second {
		bad("recorder.checkpoint_interval", "must be at least 1s, not %s", c.Recorder.CheckpointInterval)
	}
	if u := c.Recorder.Unauthenticated; !(u.SpoolFraction > 0 && u.SpoolFraction <= 0.5) {
		bad("recorder.unauthenticated.spool_fraction", "must be above 0 and at most 0.5, not %v", u.SpoolFraction)
	}
	if u := c.Recorder.Unauthenticated; u.Rate < 0 || u.Rate != u.Rate {
		bad("recorder.unauthenticated.rate", "must not be negative (0 records none)")
	}
	if c.Recorder.Unauthenticated.Burst < 1 {
		bad("recorder.unauthenticated.burst", "must be at least 1")
	}
	if c.Recorder.Unauthenticated.MaxSources < 1 {
		bad("recorder.unauthenticated.max_sources", "must be at least 1")
	}
	if c.Recorder.Durability == "extproc" && c.Recorder.Enabled && c.Listen.ExtProc == "" {
		bad("recorder.durability", "extproc makes an allowed request durable at ext_proc, but listen.extproc is empty: set recorder.durability: check where Envoy runs no ext_proc filter (an ext_authz-only provider), so that the Check waits")
	}

	for i, d := range c.Gateway.Domains {
		if !validHostname(d) {
			bad(fmt.Sprintf("gateway.domains[%d]", i), "%q is not a host name", d)
		}
	}

	names := map[string]bool{}
	for i, cr := range c.Credentials {
		key := fmt.Sprintf("credentials[%d]", i)
		if cr.Name == "" {
			bad(key+".name", "is required: the SDS secret name Envoy asks for")
		} else if names[cr.Name] {
			bad(key+".name", "%q is used twice", cr.Name)
		}
		names[cr.Name] = true
		switch {
		case cr.ServiceAccountKey != "" && cr.ADC:
			bad(key, "set either service_account_key or adc, not both")
		case cr.ServiceAccountKey == "" && !cr.ADC:
			bad(key, "set service_account_key or adc: true")
		case cr.ServiceAccountKey != "":
			if _, err := os.Stat(cr.ServiceAccountKey); err != nil {
				bad(key+".service_account_key", "%q: %v", cr.ServiceAccountKey, errors.Unwrap(err))
			}
		}
		for j, s := range cr.Scopes {
			if u, err := url.Parse(s); err != nil || u.Scheme != "https" {
				bad(fmt.Sprintf("%s.scopes[%d]", key, j), "must be an https scope URL")
			}
		}
	}

	c.validateMCP(bad)
	c.validateResources(names, bad)

	if c.Envoy.Listen != "" {
		if err := validAddr(c.Envoy.Listen); err != nil {
			bad("envoy.listen", "%v", err)
		}
	}
	if (c.Envoy.TLSCert == "") != (c.Envoy.TLSKey == "") {
		bad("envoy.tls_cert", "envoy.tls_cert and envoy.tls_key go together")
	}

	errs = append(errs, c.validateServing()...)
	errs = append(errs, c.validateIssuers()...)
	errs = append(errs, c.validateConsole()...)

	if len(errs) > 0 {
		return errs
	}
	return nil
}

func validAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has a bad port", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		return fmt.Errorf("%q has a bad host", addr)
	}
	return nil
}

func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not a URL", s)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if ip := net.ParseIP(u.Hostname()); (ip != nil && ip.IsLoopback()) || u.Hostname() == "localhost" {
			return nil
		}
		return fmt.Errorf("%q must use https (http is accepted only on loopback)", s)
	}
	return fmt.Errorf("%q must be an https URL", s)
}

func validStore(s string) error {
	if s == "memory" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is neither memory nor a Redis URL", s)
	}
	switch u.Scheme {
	case "redis", "rediss", "redis-sentinel", "redis-cluster":
		if u.Host == "" {
			return fmt.Errorf("%q has no host", s)
		}
		return nil
	}
	return fmt.Errorf("%q is neither memory nor a redis://, rediss://, redis-sentinel:// or redis-cluster:// URL", s)
}

func validSink(s string) error {
	switch {
	case strings.HasPrefix(s, "file://"):
		if strings.TrimPrefix(s, "file://") == "" {
			return fmt.Errorf("%q names no directory", s)
		}
		return nil
	case strings.HasPrefix(s, "gs://"):
		rest := strings.TrimPrefix(s, "gs://")
		bucket := strings.SplitN(rest, "/", 2)[0]
		if len(bucket) < 3 || len(bucket) > 222 {
			return fmt.Errorf("%q has no valid bucket name", s)
		}
		return nil
	}
	return fmt.Errorf("%q must be gs://BUCKET/PREFIX or file://DIR", s)
}

func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// resourceKinds are the kinds of resources.kind_ttl.
var resourceKinds = []string{"project", "folder", "organization", "tags", "bucket", "instance", "disk", "secret", "sql_instance"}

// resourceServices are the services of resources.endpoints.
var resourceServices = []string{"cloudresourcemanager", "storage", "compute", "secretmanager", "sqladmin"}

func (c *Config) validateResources(credentials map[string]bool, bad func(key, format string, args ...any)) {
	r := c.Resources
	if r.Credential != "" && !credentials[r.Credential] {
		bad("resources.credential", "%q is not the name of a credentials[] entry", r.Credential)
	}
	if r.TTL <= 0 {
		bad("resources.ttl", "must be positive")
	}
	if r.NegativeTTL <= 0 {
		bad("resources.negative_ttl", "must be positive")
	}
	if r.CacheSize <= 0 {
		bad("resources.cache_size", "must be positive")
	}
	if r.Timeout <= 0 {
		bad("resources.timeout", "must be positive")
	}
	for k, d := range r.KindTTL {
		if !slices.Contains(resourceKinds, k) {
			bad("resources.kind_ttl."+k, "unknown kind; want one of %s", strings.Join(resourceKinds, ", "))
		} else if d <= 0 {
			bad("resources.kind_ttl."+k, "must be positive")
		}
	}
	for k, v := range r.Endpoints {
		if !slices.Contains(resourceServices, k) {
			bad("resources.endpoints."+k, "unknown service; want one of %s", strings.Join(resourceServices, ", "))
			continue
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("resources.endpoints."+k, "%q is not an http(s) base URL", v)
		}
	}
}

// minMemoryBudget is the smallest masking.memory_budget_bytes accepted: a
// few streams' share.
const minMemoryBudget = 1 << 20

func (c *Config) validateMCP(bad func(key, format string, args ...any)) {
	m := c.MCP
	if m.MaxHold < 0 || m.MaxHold > 10*time.Minute {
		bad("mcp.max_hold", "must be between 0s and 10m, not %s", m.MaxHold)
	}
	if m.MaxMessageBytes < 64<<10 || m.MaxMessageBytes > 1<<30 {
		bad("mcp.max_message_bytes", "must be between 65536 and 1073741824, not %d", m.MaxMessageBytes)
	}
	if m.Server && c.Listen.HTTP == "" {
		bad("mcp.server", "needs listen.http, where /mcp is served")
	}
}
