package deploy_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	credv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	genericv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/injected_credentials/generic/v3"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
)

// TestChartIstio: the Istio objects are valid against Istio's protos
// (checkRelease), the extension provider printed at install is a valid
// MeshConfig entry failing closed with airlock's timeout and body limit,
// the CUSTOM policy names it, the EnvoyFilter patches are valid Envoy
// filters equal to the bootstrap's, and the gRPC ports admit only the
// egress gateway's identity over mutual TLS.
func TestChartIstio(t *testing.T) {
	for _, tc := range []struct{ name, values, timeout string }{
		{"example", "", "22s"},
		{"hold and timeout", "config: {approvals: {hold: 1m30s}, authz: {timeout: 500ms, max_body_bytes: 0}}\n", "91.5s"},
		{"no hold", "config: {approvals: {hold: 0s}}\n", "2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := mustRender(t, example(t, "istio"), tc.values)
			c := checkRelease(t, r)
			mesh := istioMeshConfig(t, r.notes)
			var mc meshv1alpha1.MeshConfig
			if err := unmarshalProto(mesh, &mc); err != nil {
				t.Fatalf("extension provider: %v\n%v", err, mesh)
			}
			if len(mc.GetExtensionProviders()) != 1 {
				t.Fatalf("providers %v", mc.GetExtensionProviders())
			}
			p := mc.GetExtensionProviders()[0]
			g := p.GetEnvoyExtAuthzGrpc()
			if g.GetService() != releaseName+"."+releaseNS+".svc.cluster.local" || g.GetPort() != 9001 || g.GetFailOpen() || g.GetStatusOnError() != "503" {
				t.Errorf("provider %v", p)
			}
			want := envoy.ExtAuthzTimeout(c.cfg)
			if g.GetTimeout().AsDuration() != want || str(get(mesh, "extensionProviders", 0), "envoyExtAuthzGrpc", "timeout") != tc.timeout {
				t.Errorf("timeout %v, want %v (approvals.hold + authz.timeout + 1s)", g.GetTimeout().AsDuration(), want)
			}
			if got := g.GetIncludeRequestBodyInCheck().GetMaxRequestBytes(); int(got) != c.cfg.Authz.MaxBodyBytes {
				t.Errorf("maxRequestBytes %d, authz.max_body_bytes %d", got, c.cfg.Authz.MaxBodyBytes)
			}
			custom := r.must(t, "AuthorizationPolicy", releaseName+"-googleapis")
			if str(custom, "spec", "action") != "CUSTOM" || str(custom, "spec", "provider", "name") != p.GetName() || str(custom, "metadata", "namespace") != "istio-system" {
				t.Errorf("CUSTOM policy %v", custom)
			}
			checkIstioFilters(t, r, c.cfg)
			checkIstioGRPCGuard(t, r)
		})
	}
}

// istioMeshConfig is the meshConfig block `helm install` prints.
func istioMeshConfig(t *testing.T, notes string) doc {
	t.Helper()
	m := regexp.MustCompile(`(?s)--- meshConfig\n(.*?)\n---\n`).FindStringSubmatch(notes)
	if m == nil {
		t.Fatalf("the install notes print no meshConfig block:\n%s", notes)
	}
	var d doc
	if err := yaml.Unmarshal([]byte(m[1]), &d); err != nil {
		t.Fatalf("meshConfig block: %v\n%s", err, m[1])
	}
	return d
}

func checkIstioFilters(t *testing.T, r *release, cfg *config.Config) {
	t.Helper()
	rendered, err := envoy.Bootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := bootstrapFilters(t, rendered)
	ef := r.must(t, "EnvoyFilter", releaseName)
	var names []string
	for _, cp := range listOf(get(ef, "spec", "configPatches")) {
		var f hcmv3.HttpFilter
		if err := envoy.ValidateValue(get(cp, "patch", "value"), &f); err != nil {
			t.Errorf("patch %s: %v", str(cp, "patch", "value", "name"), err)
			continue
		}
		names = append(names, str(cp, "patch", "operation")+" "+f.GetName())
		switch f.GetName() {
		case "envoy.filters.http.ext_proc":
			var got, w extprocv3.ExternalProcessor
			mustUnpack(t, &f, &got)
			mustUnpack(t, want[f.GetName()], &w)
			if c := got.GetGrpcService().GetEnvoyGrpc().GetClusterName(); c != "outbound|9002||"+releaseName+"."+releaseNS+".svc.cluster.local" {
				t.Errorf("ext_proc cluster %q", c)
			}
			got.GrpcService, w.GrpcService = nil, nil
			if !proto.Equal(&got, &w) {
				t.Errorf("Istio ext_proc differs from the bootstrap's:\n%v\n%v", &got, &w)
			}
		case "envoy.filters.http.credential_injector":
			var got, w credv3.CredentialInjector
			mustUnpack(t, &f, &got)
			mustUnpack(t, want[f.GetName()], &w)
			var gen genericv3.Generic
			if err := got.GetCredential().GetTypedConfig().UnmarshalTo(&gen); err != nil {
				t.Fatal(err)
			}
			if c := gen.GetCredential().GetSdsConfig().GetApiConfigSource().GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName(); c != "outbound|9003||"+releaseName+"."+releaseNS+".svc.cluster.local" {
				t.Errorf("SDS cluster %q", c)
			}
			if gen.GetCredential().GetName() != cfg.Credentials[0].Name || !got.GetOverwrite() || got.GetAllowRequestWithoutCredential() {
				t.Errorf("credential injector %v / %v", &got, &gen)
			}
		}
	}
	if strings.Join(names, ",") != "INSERT_AFTER envoy.filters.http.ext_proc,INSERT_BEFORE envoy.filters.http.credential_injector" {
		t.Errorf("patches = %v", names)
	}
}

// checkIstioGRPCGuard: 9001-9003 take mutual TLS only, from the egress
// gateway's identity only, and the NetworkPolicy admits only its pods.
func checkIstioGRPCGuard(t *testing.T, r *release) {
	t.Helper()
	pa := r.must(t, "PeerAuthentication", releaseName)
	for _, port := range []string{"9001", "9002", "9003"} {
		var mode any
		switch m := get(pa, "spec", "portLevelMtls").(type) {
		case doc:
			mode = get(m[port], "mode")
		case map[any]any:
			var n int
			fmt.Sscan(port, &n)
			mode = get(m[n], "mode")
		}
		if mode != "STRICT" {
			t.Errorf("port %s: mTLS %v, want STRICT", port, mode)
		}
	}
	deny := r.must(t, "AuthorizationPolicy", releaseName+"-grpc")
	from := listOf(get(deny, "spec", "rules", 0, "from", 0, "source", "notPrincipals"))
	ports := listOf(get(deny, "spec", "rules", 0, "to", 0, "operation", "ports"))
	if str(deny, "spec", "action") != "DENY" || fmt.Sprint(from) != "[cluster.local/ns/istio-system/sa/istio-egressgateway-service-account]" || fmt.Sprint(ports) != "[9001 9002 9003]" {
		t.Errorf("DENY policy %v", get(deny, "spec"))
	}
	if !selects(doc{"spec": doc{"selector": get(deny, "spec", "selector", "matchLabels")}}, r.must(t, "Deployment", releaseName)) ||
		!selects(doc{"spec": doc{"selector": get(pa, "spec", "selector", "matchLabels")}}, r.must(t, "Deployment", releaseName)) {
		t.Error("the mesh policies do not select airlock's pods")
	}
	np := r.must(t, "NetworkPolicy", releaseName)
	for _, rule := range listOf(get(np, "spec", "ingress")) {
		for _, p := range listOf(get(rule, "ports")) {
			if n, _ := get(p, "port").(int); n >= 9001 && n <= 9003 {
				peer := get(rule, "from", 0)
				if len(listOf(get(rule, "from"))) != 1 || str(peer, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name") != "istio-system" || str(peer, "podSelector", "matchLabels", "istio") != "egressgateway" {
					t.Errorf("port %d admits %v", n, get(rule, "from"))
				}
			}
		}
	}
}

// TestChartIstioSidecars: airlock's pods need Istio's sidecar in istio mode
// (labelled for injection whatever the namespace says, or for the chosen
// revision) and start after it; in the other modes they opt out.
func TestChartIstioSidecars(t *testing.T) {
	labels := func(r *release, name string) doc {
		l, _ := get(r.must(t, "Deployment", name), "spec", "template", "metadata", "labels").(doc)
		return l
	}
	r := mustRender(t, example(t, "istio"))
	if l := labels(r, releaseName); l["sidecar.istio.io/inject"] != "true" || l["istio.io/rev"] != nil {
		t.Errorf("istio mode: pod labels %v", l)
	}
	if a := str(r.must(t, "Deployment", releaseName), "spec", "template", "metadata", "annotations", "proxy.istio.io/config"); !strings.Contains(a, `"holdApplicationUntilProxyStarts": true`) {
		t.Errorf("airlock may start before its sidecar: %q", a)
	}
	if !strings.Contains(r.notes, "kubectl label namespace AGENTS istio-injection=enabled") {
		t.Errorf("the notes do not say how to label the agents' namespaces:\n%s", r.notes)
	}
	r = mustRender(t, example(t, "istio"), "istio: {revision: 1-31}\n")
	if l := labels(r, releaseName); l["istio.io/rev"] != "1-31" || l["sidecar.istio.io/inject"] != nil {
		t.Errorf("istio revision: pod labels %v", l)
	}
	if !strings.Contains(r.notes, "istio.io/rev=1-31") {
		t.Errorf("notes:\n%s", r.notes)
	}
	for _, mode := range []string{"sidecar", "gateway"} {
		r := mustRender(t, example(t, mode))
		deps := []string{releaseName}
		if mode == "gateway" {
			deps = append(deps, releaseName+"-envoy")
		}
		for _, d := range deps {
			if l := labels(r, d); l["sidecar.istio.io/inject"] != "false" {
				t.Errorf("%s mode, %s: pod labels %v", mode, d, l)
			}
		}
		if len(r.all("AuthorizationPolicy"))+len(r.all("EnvoyFilter"))+len(r.all("PeerAuthentication")) != 0 {
			t.Errorf("%s mode renders Istio objects", mode)
		}
	}
}
