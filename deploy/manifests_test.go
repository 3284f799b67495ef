// Package deploy_test checks the shipped deployment files: every Envoy
// configuration against Envoy's protos, the rendered bootstraps against the
// airlock.yaml beside them, and the Kubernetes, Istio and compose manifests
// for the kinds, versions and fields they need.
package deploy_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"gopkg.in/yaml.v3"

	credv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	genericv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/injected_credentials/generic/v3"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/policies"
)

var update = flag.Bool("update", false, "rewrite the rendered envoy.yaml files from the airlock.yaml beside them")

// doc is one decoded YAML document.
type doc = map[string]any

// loadDocs reads every document of a YAML file.
func loadDocs(t *testing.T, path string) []doc {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []doc
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		t.Fatalf("%s: no YAML documents", path)
	}
	return docs
}

// get walks a path of map keys and list indexes.
func get(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(doc)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	s, _ := get(v, path...).(string)
	return s
}

// decodeConfig reads an airlock.yaml with unknown keys refused, over the
// defaults, without checking that the files it names exist here.
func decodeConfig(t *testing.T, path string) *config.Config {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// checkRendered compares dir/envoy.yaml with the bootstrap rendered from
// dir/airlock.yaml (rewriting it with -update) and validates it.
func checkRendered(t *testing.T, dir string) {
	t.Helper()
	cfg := decodeConfig(t, filepath.Join(dir, "airlock.yaml"))
	want, err := envoy.Bootstrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "envoy.yaml")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the bootstrap rendered from %s/airlock.yaml; run go test ./deploy -update", path, dir)
	}
	if err := envoy.ValidateBootstrap(got); err != nil {
		t.Errorf("%s: %v", path, err)
	}
}

func TestComposeEnvoy(t *testing.T)    { checkRendered(t, "compose") }
func TestKubernetesEnvoy(t *testing.T) { checkRendered(t, "kubernetes") }

func TestCompose(t *testing.T) {
	d := loadDocs(t, "compose/docker-compose.yaml")[0]
	for _, svc := range []string{"envoy", "airlock", "redis", "fake-gcs"} {
		if get(d, "services", svc) == nil {
			t.Errorf("service %s missing", svc)
		}
	}
	if p := get(d, "services", "fake-gcs", "profiles"); fmt.Sprint(p) != "[gcs]" {
		t.Errorf("fake-gcs profiles = %v, want [gcs]", p)
	}
	for _, svc := range []string{"envoy", "airlock", "redis"} {
		if get(d, "services", svc, "profiles") != nil {
			t.Errorf("service %s must run without a profile", svc)
		}
	}
	if !slices.Contains(get(d, "services", "envoy", "volumes").([]any), any("./envoy.yaml:/etc/envoy/envoy.yaml:ro")) {
		t.Error("envoy does not mount envoy.yaml")
	}
	cfg := decodeConfig(t, "compose/airlock.yaml")
	if cfg.Envoy.AirlockHost != "airlock" || !strings.HasPrefix(cfg.Approvals.Store, "redis://redis:") {
		t.Errorf("compose airlock.yaml does not name the compose services: %+v %q", cfg.Envoy, cfg.Approvals.Store)
	}
	// The SDS socket lives in a volume only airlock and envoy mount, and
	// envoy runs as airlock's user to open it.
	if !config.IsUnixAddr(cfg.Listen.SDS) {
		t.Fatalf("compose listen.sds %q: use a unix:// socket", cfg.Listen.SDS)
	}
	dir := filepath.Dir(config.UnixPath(cfg.Listen.SDS))
	holders := map[string]string{}
	for name, svc := range get(d, "services").(doc) {
		for _, v := range listOf(get(svc, "volumes")) {
			if vs, _ := v.(string); strings.HasSuffix(vs, ":"+dir) {
				holders[name] = strings.TrimSuffix(vs, ":"+dir)
			}
		}
	}
	if len(holders) != 2 || holders["airlock"] == "" || holders["airlock"] != holders["envoy"] {
		t.Errorf("the SDS socket directory %s is mounted as %v, want one volume shared by airlock and envoy", dir, holders)
	}
	if u := str(d, "services", "envoy", "user"); u != "65532:65532" {
		t.Errorf("envoy runs as %q, want airlock's 65532:65532 to open the socket", u)
	}
}

// manifest checks: kind -> apiVersion and a check of the document.
var kinds = map[string]string{
	"Namespace":               "v1",
	"ServiceAccount":          "v1",
	"Service":                 "v1",
	"Deployment":              "apps/v1",
	"PodDisruptionBudget":     "policy/v1",
	"NetworkPolicy":           "networking.k8s.io/v1",
	"Kustomization":           "kustomize.config.k8s.io/v1beta1",
	"IstioOperator":           "install.istio.io/v1alpha1",
	"AuthorizationPolicy":     "security.istio.io/v1",
	"PeerAuthentication":      "security.istio.io/v1",
	"ServiceEntry":            "networking.istio.io/v1",
	"Gateway":                 "networking.istio.io/v1",
	"VirtualService":          "networking.istio.io/v1",
	"DestinationRule":         "networking.istio.io/v1",
	"EnvoyFilter":             "networking.istio.io/v1alpha3",
	"Secret":                  "v1",
	"ConfigMap":               "v1",
	"HorizontalPodAutoscaler": "autoscaling/v2",
	"Certificate":             "cert-manager.io/v1",
}

// checkHeader checks apiVersion, kind and metadata.name.
func checkHeader(d doc) error {
	kind := str(d, "kind")
	want, ok := kinds[kind]
	if !ok {
		return fmt.Errorf("unexpected kind %q", kind)
	}
	if v := str(d, "apiVersion"); v != want {
		return fmt.Errorf("%s: apiVersion %q, want %q", kind, v, want)
	}
	if kind != "Kustomization" && str(d, "metadata", "name") == "" {
		return fmt.Errorf("%s: metadata.name missing", kind)
	}
	return nil
}

// checkDeployment: 3 replicas, selector matching the pod labels, airlock's
// readiness on /readyz and liveness on /livez (never on /healthz, which
// follows shared dependencies), an Envoy container.
func checkDeployment(d doc) error {
	if r, _ := get(d, "spec", "replicas").(int); r != 3 {
		return fmt.Errorf("replicas = %v, want 3", get(d, "spec", "replicas"))
	}
	sel, _ := get(d, "spec", "selector", "matchLabels").(doc)
	labels, _ := get(d, "spec", "template", "metadata", "labels").(doc)
	if len(sel) == 0 {
		return errors.New("no selector")
	}
	for k, v := range sel {
		if labels[k] != v {
			return fmt.Errorf("selector %s=%v does not match the pod labels", k, v)
		}
	}
	containers, _ := get(d, "spec", "template", "spec", "containers").([]any)
	names := map[string]doc{}
	for _, c := range containers {
		m, _ := c.(doc)
		names[str(m, "name")] = m
	}
	a, ok := names["airlock"]
	if !ok {
		return errors.New("no airlock container")
	}
	if _, ok := names["envoy"]; !ok {
		return errors.New("no envoy container")
	}
	for probe, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/livez"} {
		if p := str(a, probe, "httpGet", "path"); p != want {
			return fmt.Errorf("airlock %s path = %q, want %s", probe, p, want)
		}
	}
	if str(a, "image") == "" {
		return errors.New("airlock container has no image")
	}
	return nil
}

func TestKubernetes(t *testing.T) {
	k := loadDocs(t, "kubernetes/kustomization.yaml")[0]
	if err := checkHeader(k); err != nil {
		t.Fatal(err)
	}
	seen := map[string]doc{}
	for _, r := range get(k, "resources").([]any) {
		for _, d := range loadDocs(t, filepath.Join("kubernetes", r.(string))) {
			if err := checkHeader(d); err != nil {
				t.Errorf("%s: %v", r, err)
				continue
			}
			if ns := str(d, "metadata", "namespace"); str(d, "kind") != "Namespace" && ns != "airlock-system" {
				t.Errorf("%s: namespace %q", r, ns)
			}
			seen[str(d, "kind")] = d
		}
	}
	for _, kind := range []string{"Namespace", "ServiceAccount", "Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"} {
		if seen[kind] == nil {
			t.Errorf("no %s", kind)
		}
	}
	if err := checkDeployment(seen["Deployment"]); err != nil {
		t.Error(err)
	}
	if m, _ := get(seen["PodDisruptionBudget"], "spec", "minAvailable").(int); m < 1 || m >= 3 {
		t.Errorf("PodDisruptionBudget minAvailable = %v", m)
	}
	ports := map[int]bool{}
	for _, p := range get(seen["Service"], "spec", "ports").([]any) {
		n, _ := get(p, "port").(int)
		ports[n] = true
	}
	for _, p := range []int{443, 8080, 9001, 9002, 9003} {
		if !ports[p] {
			t.Errorf("Service lacks port %d", p)
		}
	}
	// Every ConfigMap the Deployment mounts is generated, from files that exist.
	generated := map[string]bool{}
	for _, g := range get(k, "configMapGenerator").([]any) {
		generated[str(g, "name")] = true
		for _, f := range get(g, "files").([]any) {
			if _, err := os.Stat(filepath.Join("kubernetes", f.(string))); err != nil {
				t.Errorf("configMapGenerator %s: %v", str(g, "name"), err)
			}
		}
	}
	for _, v := range get(seen["Deployment"], "spec", "template", "spec", "volumes").([]any) {
		if cm := str(v, "configMap", "name"); cm != "" && !generated[cm] {
			t.Errorf("volume %s mounts ConfigMap %s, which nothing generates", str(v, "name"), cm)
		}
	}
	cfg := decodeConfig(t, "kubernetes/airlock.yaml")
	if !strings.HasPrefix(cfg.Approvals.Store, "redis://") {
		t.Errorf("three replicas need a shared approval store, not %q", cfg.Approvals.Store)
	}
	if err := checkSDSSocket(seen["Deployment"], cfg.Listen.SDS); err != nil {
		t.Error(err)
	}
}

// checkSDSSocket: listen.sds is a Unix socket, in an emptyDir volume that
// the airlock and envoy containers mount (and no other container): the GCP
// token never crosses the network.
func checkSDSSocket(dep doc, sds string) error {
	if !config.IsUnixAddr(sds) {
		return fmt.Errorf("listen.sds %q: the token must stay inside the pod, on a unix:// socket", sds)
	}
	dir := filepath.Dir(config.UnixPath(sds))
	var volume string
	mounts := map[string]bool{}
	for _, c := range get(dep, "spec", "template", "spec", "containers").([]any) {
		for _, m := range listOf(get(c, "volumeMounts")) {
			if str(m, "mountPath") == dir {
				if volume != "" && volume != str(m, "name") {
					return fmt.Errorf("containers mount different volumes at %s", dir)
				}
				volume = str(m, "name")
				mounts[str(c, "name")] = true
			}
		}
	}
	if !mounts["airlock"] || !mounts["envoy"] || len(mounts) != 2 {
		return fmt.Errorf("the SDS socket directory %s is mounted by %v, want airlock and envoy", dir, mounts)
	}
	for _, v := range listOf(get(dep, "spec", "template", "spec", "volumes")) {
		if str(v, "name") == volume {
			if get(v, "emptyDir") == nil {
				return fmt.Errorf("volume %s of the SDS socket is not an emptyDir", volume)
			}
			return nil
		}
	}
	return fmt.Errorf("no volume %s for the SDS socket", volume)
}

func listOf(v any) []any {
	l, _ := v.([]any)
	return l
}

func TestKubernetesPolicies(t *testing.T) {
	set, err := policies.Load("kubernetes/policies")
	if err != nil {
		t.Fatal(err)
	}
	results := set.RunTests(context.Background(), authz.TestInputBuilder(gcp.NewRecognizer(gcp.DefaultCatalog(), nil)))
	if len(results) < 2 {
		t.Fatalf("%d policy tests ran, want the file's tests", len(results))
	}
	for _, r := range results {
		if !r.Passed {
			t.Errorf("%s: %s", r.Case, r.Failure())
		}
	}
}

// TestManifestChecksCanFail: the checks above refuse broken manifests.
func TestManifestChecksCanFail(t *testing.T) {
	var dep doc
	for _, d := range loadDocs(t, "kubernetes/deployment.yaml") {
		dep = d
	}
	if err := checkDeployment(dep); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(d doc)
		check  func(d doc) error
	}{
		{"two replicas", func(d doc) { get(d, "spec").(doc)["replicas"] = 2 }, checkDeployment},
		{"probe path", func(d doc) {
			get(d, "spec", "template", "spec", "containers", 0, "readinessProbe", "httpGet").(doc)["path"] = "/"
		}, checkDeployment},
		{"selector", func(d doc) {
			get(d, "spec", "selector", "matchLabels").(doc)["app.kubernetes.io/name"] = "other"
		}, checkDeployment},
		{"apiVersion", func(d doc) { d["apiVersion"] = "extensions/v1beta1" }, checkHeader},
		{"sds socket not shared with envoy", func(d doc) {
			envoyC := get(d, "spec", "template", "spec", "containers", 1).(doc)
			envoyC["volumeMounts"] = listOf(envoyC["volumeMounts"])[:1]
		}, func(d doc) error { return checkSDSSocket(d, "unix:///run/airlock/sds.sock") }},
		{"sds over tcp", func(d doc) {}, func(d doc) error { return checkSDSSocket(d, "127.0.0.1:9003") }},
		{"kind", func(d doc) { d["kind"] = "Deploymnet" }, checkHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := loadDocs(t, "kubernetes/deployment.yaml")[0]
			tc.mutate(d)
			if err := tc.check(d); err == nil {
				t.Fatal("broken manifest accepted")
			}
		})
	}
}

func TestIstio(t *testing.T) {
	k8s := decodeConfig(t, "kubernetes/airlock.yaml")
	byKind := map[string][]doc{}
	for _, f := range []string{"mesh-config.yaml", "authorization-policy.yaml", "egress.yaml", "envoyfilter.yaml"} {
		for _, d := range loadDocs(t, filepath.Join("istio", f)) {
			if err := checkObject(d); err != nil {
				t.Errorf("%s: %v", f, err)
				continue
			}
			byKind[str(d, "kind")] = append(byKind[str(d, "kind")], d)
		}
	}
	for _, kind := range []string{"IstioOperator", "AuthorizationPolicy", "PeerAuthentication", "ServiceEntry", "EnvoyFilter", "Gateway", "VirtualService", "DestinationRule"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no valid %s", kind)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if err := checkIstioSDS(byKind); err != nil {
		t.Error(err)
	}

	// The CUSTOM policy names a provider the mesh config defines, failing closed.
	providers := map[string]doc{}
	for _, p := range get(byKind["IstioOperator"][0], "spec", "meshConfig", "extensionProviders").([]any) {
		providers[str(p, "name")] = p.(doc)
	}
	var custom doc
	for _, ap := range byKind["AuthorizationPolicy"] {
		if str(ap, "spec", "action") == "CUSTOM" {
			custom = ap
		}
	}
	if custom == nil {
		t.Fatal("no CUSTOM AuthorizationPolicy")
	}
	p := providers[str(custom, "spec", "provider", "name")]
	if p == nil {
		t.Fatalf("provider %q is not in meshConfig.extensionProviders", str(custom, "spec", "provider", "name"))
	}
	g := get(p, "envoyExtAuthzGrpc")
	if get(g, "failOpen") != false || get(g, "port") != 9001 || str(g, "service") != "airlock.airlock-system.svc.cluster.local" {
		t.Errorf("envoyExtAuthzGrpc = %v", g)
	}
	if want := fmt.Sprintf("%gs", envoy.ExtAuthzTimeout(k8s).Seconds()); str(g, "timeout") != want {
		t.Errorf("ext_authz timeout %q, want %s (approvals.hold + authz.timeout + 1s of kubernetes/airlock.yaml)", str(g, "timeout"), envoy.ExtAuthzTimeout(k8s))
	}
	if get(g, "includeRequestBodyInCheck", "maxRequestBytes") != k8s.Authz.MaxBodyBytes {
		t.Errorf("maxRequestBytes %v, want authz.max_body_bytes %d", get(g, "includeRequestBodyInCheck", "maxRequestBytes"), k8s.Authz.MaxBodyBytes)
	}

	// EnvoyFilter patch values are valid Envoy HttpFilters, consistent with
	// the rendered bootstrap.
	rendered, err := envoy.Bootstrap(k8s)
	if err != nil {
		t.Fatal(err)
	}
	renderedFilters := bootstrapFilters(t, rendered)
	var names []string
	for _, cp := range get(byKind["EnvoyFilter"][0], "spec", "configPatches").([]any) {
		if str(cp, "applyTo") != "HTTP_FILTER" {
			t.Errorf("unexpected applyTo %q", str(cp, "applyTo"))
			continue
		}
		var f hcmv3.HttpFilter
		if err := envoy.ValidateValue(get(cp, "patch", "value"), &f); err != nil {
			t.Errorf("patch %s: %v", str(cp, "patch", "value", "name"), err)
			continue
		}
		names = append(names, str(cp, "patch", "operation")+" "+f.GetName())
		switch f.GetName() {
		case "envoy.filters.http.ext_proc":
			var got, want extprocv3.ExternalProcessor
			mustUnpack(t, &f, &got)
			mustUnpack(t, renderedFilters[f.GetName()], &want)
			got.GrpcService, want.GrpcService = nil, nil
			if !proto.Equal(&got, &want) {
				t.Errorf("Istio ext_proc differs from the bootstrap's:\n%v\n%v", &got, &want)
			}
			if c := str(cp, "patch", "value", "typed_config", "grpc_service", "envoy_grpc", "cluster_name"); c != "outbound|9002||airlock.airlock-system.svc.cluster.local" {
				t.Errorf("ext_proc cluster %q", c)
			}
		case "envoy.filters.http.credential_injector":
			var ci credv3.CredentialInjector
			var gen genericv3.Generic
			mustUnpack(t, &f, &ci)
			if err := ci.GetCredential().GetTypedConfig().UnmarshalTo(&gen); err != nil {
				t.Fatal(err)
			}
			if gen.GetCredential().GetName() != k8s.Credentials[0].Name || !ci.GetOverwrite() || ci.GetAllowRequestWithoutCredential() {
				t.Errorf("credential injector %v / %v", &ci, &gen)
			}
		}
	}
	if strings.Join(names, ",") != "INSERT_AFTER envoy.filters.http.ext_proc,INSERT_BEFORE envoy.filters.http.credential_injector" {
		t.Errorf("patches = %v", names)
	}
}

// checkIstioSDS: for the egress gateway, airlock's gRPC services listen on
// TCP 9001-9003 (SDS with sds.allow_insecure_tcp), guarded by the mesh:
// mTLS STRICT on those ports and a DENY for every caller but the egress
// gateway's identity.
func checkIstioSDS(byKind map[string][]doc) error {
	for _, port := range []int{9001, 9002, 9003} {
		strict := false
		for _, pa := range byKind["PeerAuthentication"] {
			if str(pa, "spec", "selector", "matchLabels", "app.kubernetes.io/name") != "airlock" {
				continue
			}
			var mode any
			switch m := get(pa, "spec", "portLevelMtls").(type) {
			case doc:
				mode = get(m[fmt.Sprint(port)], "mode")
			case map[any]any:
				mode = get(m[port], "mode")
			}
			strict = strict || mode == "STRICT"
		}
		if !strict {
			return fmt.Errorf("no PeerAuthentication makes port %d of the airlock pods mTLS STRICT", port)
		}
	}
	for _, ap := range byKind["AuthorizationPolicy"] {
		if str(ap, "spec", "action") != "DENY" || str(ap, "metadata", "namespace") != "airlock-system" {
			continue
		}
		from := listOf(get(ap, "spec", "rules", 0, "from", 0, "source", "notPrincipals"))
		ports := listOf(get(ap, "spec", "rules", 0, "to", 0, "operation", "ports"))
		if len(from) == 1 && from[0] == "cluster.local/ns/istio-system/sa/istio-egressgateway-service-account" && fmt.Sprint(ports) == "[9001 9002 9003]" {
			return nil
		}
	}
	return errors.New("no DENY AuthorizationPolicy keeps ports 9001-9003 to the egress gateway's identity")
}

// bootstrapFilters returns the rendered listener's HTTP filters by name.
func bootstrapFilters(t *testing.T, data []byte) map[string]*hcmv3.HttpFilter {
	t.Helper()
	var b struct {
		StaticResources struct {
			Listeners []struct {
				FilterChains []struct {
					Filters []any `yaml:"filters"`
				} `yaml:"filter_chains"`
			} `yaml:"listeners"`
		} `yaml:"static_resources"`
	}
	if err := yaml.Unmarshal(data, &b); err != nil {
		t.Fatal(err)
	}
	var a anypb.Any
	if err := envoy.ValidateValue(get(b.StaticResources.Listeners[0].FilterChains[0].Filters[0], "typed_config"), &a); err != nil {
		t.Fatal(err)
	}
	var hcm hcmv3.HttpConnectionManager
	if err := a.UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	out := map[string]*hcmv3.HttpFilter{}
	for _, f := range hcm.GetHttpFilters() {
		out[f.GetName()] = f
	}
	return out
}

func mustUnpack(t *testing.T, f *hcmv3.HttpFilter, m proto.Message) {
	t.Helper()
	if f == nil {
		t.Fatal("filter missing")
	}
	if err := f.GetTypedConfig().UnmarshalTo(m); err != nil {
		t.Fatal(err)
	}
}
