package envoy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"net"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/airlockhq/airlock/config"
)

//go:embed bootstrap.yaml.tmpl
var bootstrapTemplate string

// AuthzTimeoutMargin is added to approvals.hold + authz.timeout to make
// ext_authz's gRPC timeout: airlock answers a held Check (with
// APPROVAL_REQUIRED at worst) before Envoy gives up on it and answers 503.
const AuthzTimeoutMargin = time.Second

// ExtProcMessageTimeout is ext_proc's per-message timeout. Envoy's default
// (200ms) is too tight for masking a large chunk under load; a timeout gives
// the agent a 504, never an unmasked body.
const ExtProcMessageTimeout = 2 * time.Second

// ExtAuthzStatusOnError is the status Envoy answers when airlock's ext_authz
// cannot be reached or times out (status_on_error): 503, so that agents and
// gcloud read "unavailable, retry" rather than a policy refusal.
const ExtAuthzStatusOnError = 503

// Cluster names in the rendered bootstrap and the Istio patches.
const (
	ClusterAuthz     = "airlock_authz"
	ClusterExtProc   = "airlock_extproc"
	ClusterSDS       = "airlock_sds"
	ClusterGoogleAPI = "googleapis"
)

var tmpl = template.Must(template.New("bootstrap").Funcs(template.FuncMap{
	"q": quote,
	"indent": func(n int, s string) string {
		pad := strings.Repeat(" ", n)
		lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
		for i, l := range lines {
			if l != "" {
				lines[i] = pad + l
			}
		}
		return strings.Join(lines, "\n")
	},
}).Parse(bootstrapTemplate))

// quote renders s as a double-quoted YAML (JSON) string.
func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

type bootstrapService struct {
	Cluster, What string
	Port          uint32
	// Pipe is the Unix socket path when the service listens on one.
	Pipe string
	// TLS is the upstream mTLS context, when the service requires it.
	TLS *bootstrapTLS
}

// bootstrapTLS is Envoy's client side of airlock's mTLS SDS listener.
type bootstrapTLS struct {
	Cert, Key, CA string
	// SNI is sent when the expected name is a host name.
	SNI string
	// SANType and SAN: the name airlock's certificate must carry.
	SANType, SAN string
}

type bootstrapData struct {
	ListenHost       string
	ListenPort       uint32
	BufferLimit      int
	TLS              bool
	TLSCert, TLSKey  string
	AirlockHost      string
	AuthzTimeout     string
	MaxRequestBytes  int
	ExtProc          bool
	ResponseBodyMode string
	MessageTimeout   string
	Credential       string
	// Durability is recorder.durability, "" when recording is off.
	Durability     string
	GatewayDomains []string
	LuaSource      string
	Services       []bootstrapService
	// Clusters and StatusOnError are the constants above, as the template
	// spells them.
	Clusters      clusterNames
	StatusOnError string
}

type clusterNames struct{ Authz, ExtProc, SDS, Google string }

// Bootstrap renders Envoy's bootstrap (YAML) for cfg: the listener on
// envoy.listen (TLS with envoy.tls_cert/tls_key), the filter chain ext_authz
// -> ext_proc -> credential_injector -> lua (gateway domains only) ->
// dynamic_forward_proxy -> router, the googleapis forward-proxy cluster and
// one health-checked HTTP/2 cluster per airlock gRPC service on
// envoy.airlock_host. The credential injected is credentials[0]; further
// credentials are served over SDS for configurations of the operator's own.
// ext_proc is left out when listen.extproc is empty, the injector when
// there is no credential.
func Bootstrap(cfg *config.Config) ([]byte, error) {
	d, err := bootstrapValues(cfg)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("envoy: render bootstrap: %w", err)
	}
	return buf.Bytes(), nil
}

func bootstrapValues(cfg *config.Config) (*bootstrapData, error) {
	if cfg == nil {
		return nil, errors.New("envoy: bootstrap: no configuration")
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("envoy: bootstrap: %s: %s", key, fmt.Sprintf(format, args...)))
	}
	d := &bootstrapData{
		AirlockHost:    cfg.Envoy.AirlockHost,
		TLS:            cfg.Envoy.TLSCert != "",
		TLSCert:        cfg.Envoy.TLSCert,
		TLSKey:         cfg.Envoy.TLSKey,
		MessageTimeout: durationJSON(ExtProcMessageTimeout),
		GatewayDomains: cfg.Gateway.Domains,
		Clusters:       clusterNames{Authz: ClusterAuthz, ExtProc: ClusterExtProc, SDS: ClusterSDS, Google: ClusterGoogleAPI},
		StatusOnError:  typev3.StatusCode_name[ExtAuthzStatusOnError],
	}
	host, port, err := splitHostPort(cfg.Envoy.Listen)
	if err != nil {
		bad("envoy.listen", "%v", err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	d.ListenHost, d.ListenPort = host, port
	if (cfg.Envoy.TLSCert == "") != (cfg.Envoy.TLSKey == "") {
		bad("envoy.tls_cert", "envoy.tls_cert and envoy.tls_key go together")
	}
	if d.AirlockHost == "" {
		bad("envoy.airlock_host", "is required: the host Envoy dials for airlock's gRPC services")
	}
	service := func(key, addr, cluster, what string) {
		_, p, err := splitHostPort(addr)
		if err != nil {
			bad(key, "%v", err)
			return
		}
		d.Services = append(d.Services, bootstrapService{Cluster: cluster, What: what, Port: p})
	}
	if cfg.Listen.Authz == "" {
		bad("listen.authz", "is required: Envoy must not forward a request airlock has not checked")
	} else {
		service("listen.authz", cfg.Listen.Authz, ClusterAuthz, "ext_authz server")
	}
	if cfg.Listen.ExtProc != "" {
		d.ExtProc = true
		service("listen.extproc", cfg.Listen.ExtProc, ClusterExtProc, "ext_proc server")
	}
	if cfg.Recorder.Enabled {
		d.Durability = cfg.Recorder.Durability
		switch {
		case d.Durability == "extproc" && !d.ExtProc:
			bad("recorder.durability", "extproc needs the ext_proc filter, and listen.extproc is empty: set recorder.durability: check for an ext_authz-only Envoy")
		case d.Durability != "extproc" && d.Durability != "check":
			bad("recorder.durability", "%q: want extproc or check", d.Durability)
		}
	}
	if len(cfg.Credentials) > 0 {
		d.Credential = cfg.Credentials[0].Name
		if d.Credential == "" {
			bad("credentials[0].name", "is required: the SDS secret name Envoy asks for")
		}
		switch {
		case cfg.Listen.SDS == "":
			bad("listen.sds", "is required when credentials are configured")
		case config.IsUnixAddr(cfg.Listen.SDS):
			d.Services = append(d.Services, bootstrapService{Cluster: ClusterSDS, What: "SDS server", Pipe: config.UnixPath(cfg.Listen.SDS)})
		default:
			service("listen.sds", cfg.Listen.SDS, ClusterSDS, "SDS server")
			if tls, err := sdsClientTLS(cfg); err != nil {
				errs = append(errs, err)
			} else if tls != nil {
				d.Services[len(d.Services)-1].TLS = tls
			}
		}
	}
	switch strings.ToLower(cfg.Masking.BodyMode) {
	case "", "streamed":
		d.ResponseBodyMode = "STREAMED"
	case "buffered":
		d.ResponseBodyMode = "BUFFERED"
	default:
		bad("masking.body_mode", "%q: want streamed or buffered", cfg.Masking.BodyMode)
	}
	if cfg.Authz.MaxBodyBytes < 0 || cfg.Authz.MaxBodyBytes > 1<<30 {
		bad("authz.max_body_bytes", "%d: want 0 (no body sent) to %d", cfg.Authz.MaxBodyBytes, 1<<30)
	}
	d.MaxRequestBytes = cfg.Authz.MaxBodyBytes
	d.BufferLimit = ListenerBufferLimit(cfg)
	if cfg.Approvals.Hold < 0 || cfg.Authz.Timeout < 0 {
		bad("approvals.hold", "durations must not be negative")
	}
	d.AuthzTimeout = durationJSON(ExtAuthzTimeout(cfg))
	for i, dom := range cfg.Gateway.Domains {
		if !validDomain(dom) {
			bad(fmt.Sprintf("gateway.domains[%d]", i), "%q is not a DNS name", dom)
		}
	}
	if len(cfg.Gateway.Domains) > 0 {
		d.LuaSource = gatewayLua(cfg.Gateway.Domains)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return d, nil
}

// sdsClientTLS is Envoy's side of the SDS mTLS that sds.tls_cert turns on:
// envoy.sds_tls_cert and envoy.sds_tls_key (its client certificate) and
// envoy.sds_ca (the CA of airlock's certificate) are then required. The
// name checked in airlock's certificate is envoy.sds_server_name, default
// envoy.airlock_host.
func sdsClientTLS(cfg *config.Config) (*bootstrapTLS, error) {
	e := cfg.Envoy
	if cfg.SDS.TLSCert == "" {
		if e.SDSTLSCert != "" || e.SDSTLSKey != "" || e.SDSCA != "" {
			return nil, errors.New("envoy: bootstrap: envoy.sds_tls_cert: set only with sds.tls_cert (airlock's SDS listener over mTLS)")
		}
		return nil, nil
	}
	var missing []string
	for _, f := range []struct{ key, v string }{{"envoy.sds_tls_cert", e.SDSTLSCert}, {"envoy.sds_tls_key", e.SDSTLSKey}, {"envoy.sds_ca", e.SDSCA}} {
		if f.v == "" {
			missing = append(missing, f.key)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("envoy: bootstrap: %s: required, since sds.tls_cert makes airlock's SDS listener require a client certificate", strings.Join(missing, ", "))
	}
	name := e.SDSServerName
	if name == "" {
		name = e.AirlockHost
	}
	t := &bootstrapTLS{Cert: e.SDSTLSCert, Key: e.SDSTLSKey, CA: e.SDSCA, SANType: "DNS", SAN: name, SNI: name}
	if net.ParseIP(name) != nil {
		t.SANType, t.SNI = "IP_ADDRESS", ""
	}
	return t, nil
}

// ExtAuthzTimeout is the ext_authz gRPC timeout rendered for cfg:
// approvals.hold + authz.timeout + AuthzTimeoutMargin.
func ExtAuthzTimeout(cfg *config.Config) time.Duration {
	return cfg.Approvals.Hold + cfg.Authz.Timeout + AuthzTimeoutMargin
}

// ListenerBufferLimit is the listener's per_connection_buffer_limit_bytes:
// twice authz.max_body_bytes and at least Envoy's default 1 MiB, so that a
// body ext_authz is still buffering never trips the limit first.
func ListenerBufferLimit(cfg *config.Config) int {
	return max(1<<20, 2*cfg.Authz.MaxBodyBytes)
}

// gatewayLua is the Lua filter mapping SERVICE.DOMAIN to
// SERVICE.googleapis.com. A deeper name under a gateway domain is refused
// with 404 so that the forward proxy never resolves a host outside Google.
func gatewayLua(domains []string) string {
	var b strings.Builder
	b.WriteString("-- SERVICE.<gateway domain> is forwarded to SERVICE.googleapis.com.\n")
	b.WriteString("local suffixes = {")
	for i, d := range domains {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote("." + strings.ToLower(strings.Trim(d, "."))))
	}
	b.WriteString("}\n")
	b.WriteString(`function envoy_on_request(handle)
  local host = string.lower(handle:headers():get(":authority") or "")
  for _, suffix in ipairs(suffixes) do
    if #host > #suffix and string.sub(host, -#suffix) == suffix then
      local service = string.sub(host, 1, #host - #suffix)
      if string.find(service, ".", 1, true) then
        handle:respond({[":status"] = "404"}, "airlock: no Google API is served at " .. host .. "\n")
        return
      end
      handle:headers():replace(":authority", service .. ".googleapis.com")
      return
    end
  end
end
`)
	return b.String()
}

func validDomain(d string) bool {
	d = strings.Trim(d, ".")
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
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

func splitHostPort(addr string) (string, uint32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want host:port", addr)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil || p == 0 {
		return "", 0, fmt.Errorf("%q: port must be 1-65535", addr)
	}
	return host, uint32(p), nil
}

// durationJSON is d in protobuf JSON form ("1.5s").
func durationJSON(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}
