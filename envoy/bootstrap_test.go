package envoy

import (
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	credv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	genericv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/injected_credentials/generic/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/airlockhq/airlock/config"
)

// tlsConfig is a production-like configuration: TLS listener, several
// credentials, gateway domains, an approval hold, buffered masking.
func tlsConfig() *config.Config {
	c := config.Default()
	c.Envoy = config.Envoy{Listen: "0.0.0.0:8443", AirlockHost: "airlock.airlock-system.svc.cluster.local",
		TLSCert: "/etc/envoy/tls/tls.crt", TLSKey: "/etc/envoy/tls/tls.key"}
	c.Listen = config.Listen{Authz: "0.0.0.0:9001", ExtProc: "0.0.0.0:9002", SDS: "0.0.0.0:9003", HTTP: "0.0.0.0:8080"}
	c.Credentials = []config.Credential{
		{Name: "gcp-prod", ServiceAccountKey: "/etc/airlock/prod-sa.json"},
		{Name: "gcp-staging", ADC: true},
	}
	c.Gateway.Domains = []string{"airlock.example.com", "gw.internal"}
	c.Approvals.Hold = 30 * time.Second
	c.Authz.MaxBodyBytes = 4 << 20
	c.Masking.BodyMode = "buffered"
	return c
}

// parse renders and validates cfg and returns the bootstrap and its HCM.
func parse(t *testing.T, cfg *config.Config) (*bootstrapv3.Bootstrap, *hcmv3.HttpConnectionManager) {
	t.Helper()
	out, err := Bootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateBootstrap(out); err != nil {
		t.Fatalf("rendered bootstrap does not validate: %v\n%s", err, out)
	}
	var b bootstrapv3.Bootstrap
	if err := ValidateYAML(out, &b); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	return &b, &hcm
}

func filterNames(hcm *hcmv3.HttpConnectionManager) string {
	var names []string
	for _, f := range hcm.GetHttpFilters() {
		names = append(names, strings.TrimPrefix(f.GetName(), "envoy.filters.http."))
	}
	return strings.Join(names, ",")
}

func TestBootstrapDefault(t *testing.T) {
	b, hcm := parse(t, config.Default())
	if got := filterNames(hcm); got != "ext_authz,ext_proc,dynamic_forward_proxy,router" {
		t.Errorf("filters = %s (no credential configured: no injector)", got)
	}
	var az extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&az); err != nil {
		t.Fatal(err)
	}
	if az.GetFailureModeAllow() || az.GetGrpcService().GetTimeout().AsDuration() != 2*time.Second ||
		az.GetWithRequestBody().GetMaxRequestBytes() != 1<<20 || !az.GetWithRequestBody().GetAllowPartialMessage() ||
		!az.GetWithRequestBody().GetPackAsBytes() || int(az.GetStatusOnError().GetCode()) != ExtAuthzStatusOnError {
		t.Errorf("ext_authz = %v", &az)
	}
	var ep extprocv3.ExternalProcessor
	if err := hcm.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(&ep); err != nil {
		t.Fatal(err)
	}
	pm := ep.GetProcessingMode()
	if ep.GetFailureModeAllow() || !ep.GetAllowModeOverride() || pm.GetResponseBodyMode().String() != "STREAMED" ||
		pm.GetRequestHeaderMode().String() != "SEND" || pm.GetResponseHeaderMode().String() != "SEND" ||
		strings.Join(ep.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(), ",") != "envoy.filters.http.ext_authz" ||
		ep.GetMessageTimeout().AsDuration() != ExtProcMessageTimeout {
		t.Errorf("ext_proc = %v", &ep)
	}
	if n := len(b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetTransportSocket().GetName()); n != 0 {
		t.Error("default listener has TLS")
	}
	clusters := map[string]bool{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = true
		if strings.HasPrefix(c.GetName(), "airlock_") && len(c.GetHealthChecks()) != 1 {
			t.Errorf("cluster %s lacks its gRPC health check", c.GetName())
		}
	}
	if !clusters[ClusterAuthz] || !clusters[ClusterExtProc] || clusters[ClusterSDS] || !clusters[ClusterGoogleAPI] {
		t.Errorf("clusters = %v", clusters)
	}
}

func TestBootstrapTLSAndCredentials(t *testing.T) {
	cfg := tlsConfig()
	b, hcm := parse(t, cfg)
	if got := filterNames(hcm); got != "ext_authz,ext_proc,credential_injector,lua,dynamic_forward_proxy,router" {
		t.Errorf("filters = %s", got)
	}
	var az extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&az); err != nil {
		t.Fatal(err)
	}
	if got := az.GetGrpcService().GetTimeout().AsDuration(); got != 32*time.Second {
		t.Errorf("ext_authz timeout = %v, want hold 30s + authz.timeout 1s + 1s", got)
	}
	if az.GetWithRequestBody().GetMaxRequestBytes() != 4<<20 {
		t.Errorf("max_request_bytes = %d", az.GetWithRequestBody().GetMaxRequestBytes())
	}
	var ep extprocv3.ExternalProcessor
	if err := hcm.GetHttpFilters()[1].GetTypedConfig().UnmarshalTo(&ep); err != nil {
		t.Fatal(err)
	}
	if ep.GetProcessingMode().GetResponseBodyMode().String() != "BUFFERED" {
		t.Errorf("masking.body_mode buffered not rendered: %v", ep.GetProcessingMode())
	}
	var ci credv3.CredentialInjector
	if err := hcm.GetHttpFilters()[2].GetTypedConfig().UnmarshalTo(&ci); err != nil {
		t.Fatal(err)
	}
	var gen genericv3.Generic
	if err := ci.GetCredential().GetTypedConfig().UnmarshalTo(&gen); err != nil {
		t.Fatal(err)
	}
	if !ci.GetOverwrite() || ci.GetAllowRequestWithoutCredential() || gen.GetHeader() != "Authorization" ||
		gen.GetCredential().GetName() != "gcp-prod" ||
		gen.GetCredential().GetSdsConfig().GetApiConfigSource().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName() != ClusterSDS {
		t.Errorf("credential injector = %v / %v", &ci, &gen)
	}
	var dtls tlsv3.DownstreamTlsContext
	if err := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetTransportSocket().GetTypedConfig().UnmarshalTo(&dtls); err != nil {
		t.Fatal(err)
	}
	if got := dtls.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename(); got != "/etc/envoy/tls/tls.crt" {
		t.Errorf("certificate = %q", got)
	}
	var domains []string
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		domains = append(domains, vh.GetDomains()...)
	}
	if strings.Join(domains, ",") != "*.googleapis.com,*.airlock.example.com,*.gw.internal" {
		t.Errorf("virtual host domains = %v", domains)
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if strings.HasPrefix(c.GetName(), "airlock_") {
			addr := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			if addr.GetAddress() != "airlock.airlock-system.svc.cluster.local" {
				t.Errorf("cluster %s dials %s", c.GetName(), addr.GetAddress())
			}
		}
	}
	out, _ := Bootstrap(cfg)
	if !strings.Contains(string(out), `local suffixes = {".airlock.example.com", ".gw.internal"}`) {
		t.Errorf("lua gateway suffixes missing:\n%s", out)
	}
}

func TestBootstrapWithoutBody(t *testing.T) {
	c := config.Default()
	c.Authz.MaxBodyBytes = 0
	_, hcm := parse(t, c)
	var az extauthzv3.ExtAuthz
	if err := hcm.GetHttpFilters()[0].GetTypedConfig().UnmarshalTo(&az); err != nil {
		t.Fatal(err)
	}
	if az.GetWithRequestBody() != nil {
		t.Errorf("with_request_body rendered for authz.max_body_bytes 0: %v", az.GetWithRequestBody())
	}
}

func TestBootstrapRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"no listen", func(c *config.Config) { c.Envoy.Listen = "" }, "envoy.listen"},
		{"no airlock host", func(c *config.Config) { c.Envoy.AirlockHost = "" }, "envoy.airlock_host"},
		{"no authz", func(c *config.Config) { c.Listen.Authz = "" }, "listen.authz: is required"},
		{"half tls", func(c *config.Config) { c.Envoy.TLSKey = "" }, "go together"},
		{"creds without sds", func(c *config.Config) { c.Listen.SDS = "" }, "listen.sds"},
		{"bad body mode", func(c *config.Config) { c.Masking.BodyMode = "chunked" }, "masking.body_mode"},
		{"bad domain", func(c *config.Config) { c.Gateway.Domains = []string{"bad domain"} }, "gateway.domains[0]"},
		{"negative body limit", func(c *config.Config) { c.Authz.MaxBodyBytes = -1 }, "authz.max_body_bytes"},
		{"durable at ext_proc without ext_proc", func(c *config.Config) { c.Listen.ExtProc = "" }, "recorder.durability: extproc needs the ext_proc filter"},
		{"unknown durability", func(c *config.Config) { c.Recorder.Durability = "later" }, "recorder.durability"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tlsConfig()
			tc.mutate(c)
			_, err := Bootstrap(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

// TestValidationCatchesBrokenConfigs shows the check can fail: each edit of
// a valid bootstrap must be refused.
func TestValidationCatchesBrokenConfigs(t *testing.T) {
	good, err := Bootstrap(tlsConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateBootstrap(good); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		old, new string
		want     string
	}{
		{"unknown field", "failure_mode_allow: false\n              status_on_error", "failure_mode_allowed: false\n              status_on_error", "failure_mode_allowed"},
		{"unregistered typed_config", "envoy.extensions.filters.http.lua.v3.Lua", "envoy.extensions.filters.http.lua.v3.Luaa", "Luaa"},
		{"rule inside a typed_config", "max_request_bytes: 4194304", "max_request_bytes: 0", "MaxRequestBytes"},
		{"rule at top level", "- name: googleapis\n    connect_timeout: 5s", "- name: \"\"\n    connect_timeout: 5s", "Name"},
		{"bad enum", "response_body_mode: BUFFERED", "response_body_mode: SOMETIMES", "SOMETIMES"},
		{"rule in a nested typed_config", "name: \"gcp-prod\"\n", "name: \"\"\n", "Name"},
		{"not YAML", "static_resources:", "static_resources: [", "YAML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(good), tc.old) {
				t.Fatalf("fixture text %q not in the rendered bootstrap", tc.old)
			}
			bad := strings.Replace(string(good), tc.old, tc.new, 1)
			err := ValidateBootstrap([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func BenchmarkBootstrap(b *testing.B) {
	cfg := tlsConfig()
	for b.Loop() {
		if _, err := Bootstrap(cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// The durability mode in force shows in the rendered bootstrap, and the
// ext_authz-only bootstrap that check mode allows has no ext_proc filter.
func TestBootstrapDurabilityModes(t *testing.T) {
	out, err := Bootstrap(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "recorder.durability: extproc") {
		t.Error("the extproc mode is not stated beside the ext_proc filter")
	}
	c := config.Default()
	c.Listen.ExtProc = ""
	c.Recorder.Durability = "check"
	_, hcm := parse(t, c)
	if got := filterNames(hcm); got != "ext_authz,dynamic_forward_proxy,router" {
		t.Errorf("filters = %s", got)
	}
	out, err = Bootstrap(c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "recorder.durability: check") {
		t.Error("the check mode is not stated beside the ext_authz filter")
	}
}
