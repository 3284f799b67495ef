package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	credv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/credential_injector/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	genericv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/injected_credentials/generic/v3"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/gcp"
	"github.com/airlockhq/airlock/identity"
	"github.com/airlockhq/airlock/policies"
)

// checked is what checkRelease learned about one rendering.
type checked struct {
	cfg       *config.Config // airlock.yaml as airlock reads it (paths as in the pod)
	bootstrap []byte         // Envoy's bootstrap as the init container writes it (not istio)
	airlock   doc            // the airlock Deployment
}

// checkRelease checks one rendering whole: every object against its API,
// airlock.yaml with config.Parse over the files the airlock container
// mounts, the policies it mounts loading and passing their tests, and for
// an Envoy of the chart's, the bootstrap `airlock envoy config` renders
// from Envoy's view (validated against Envoy's protos, the same as from
// the whole airlock.yaml) with every file and socket it names mounted in
// the Envoy container and every address it dials served.
func checkRelease(t *testing.T, r *release) checked {
	t.Helper()
	for _, o := range r.objects {
		if err := checkObject(o); err != nil {
			t.Error(err)
		}
	}
	var out checked
	out.airlock = r.must(t, "Deployment", releaseName)
	if err := checkChartDeployment(out.airlock); err != nil {
		t.Error(err)
	}
	pod := podSpec(out.airlock)

	// airlock.yaml, in the airlock container's view.
	raw := r.file(t, "Secret", releaseName+"-config", "airlock.yaml")
	root := podFS(t, r, pod, "airlock")
	cfg, err := config.Parse(inPod(t, raw, root))
	if err != nil {
		t.Fatalf("airlock.yaml does not load in the airlock container:\n%v\n%s", err, raw)
	}
	if got, err := os.ReadFile(filepath.Join(root, str(container(pod, "airlock"), "args", 2))); err != nil || string(got) != string(raw) {
		t.Errorf("airlock runs with --config %q, which is not the rendered airlock.yaml: %v", str(container(pod, "airlock"), "args", 2), err)
	}
	set, err := policies.Load(cfg.Policies.Paths...)
	if err != nil {
		t.Fatalf("the mounted policies do not load: %v", err)
	}
	for _, res := range set.RunTests(context.Background(), authz.TestInputBuilder(gcp.NewRecognizer(gcp.DefaultCatalog(), nil))) {
		if !res.Passed {
			t.Errorf("mounted policy test %s: %s", res.Case, res.Failure())
		}
	}
	out.cfg = decodeConfigBytes(t, raw)

	mode := "istio"
	if v := r.get("ConfigMap", releaseName+"-envoy"); v != nil {
		mode = "sidecar"
		if r.get("Deployment", releaseName+"-envoy") != nil {
			mode = "gateway"
		}
	}
	if mode == "istio" {
		return out
	}

	// Envoy: the init container's rendering, in its own view.
	envoyDep := out.airlock
	if mode == "gateway" {
		envoyDep = r.must(t, "Deployment", releaseName+"-envoy")
	}
	epod := podSpec(envoyDep)
	initC := container(epod, "envoy-config")
	if initC == nil {
		t.Fatal("no envoy-config init container renders Envoy's bootstrap")
	}
	args := listOf(initC["args"])
	if fmt.Sprint(args[:3]) != "[envoy config --config]" || str(initC, "args", 4) != "--output" {
		t.Fatalf("envoy-config runs %v", args)
	}
	viewPath, bootPath := str(initC, "args", 3), str(initC, "args", 5)
	if str(initC, "image") != str(container(pod, "airlock"), "image") {
		t.Errorf("the bootstrap is rendered by %s, airlock runs %s", str(initC, "image"), str(container(pod, "airlock"), "image"))
	}
	viewRaw, err := os.ReadFile(filepath.Join(podFS(t, r, epod, "envoy-config"), viewPath))
	if err != nil {
		t.Fatalf("Envoy's view is not mounted where envoy-config reads it: %v", err)
	}
	iroot := podFS(t, r, epod, "envoy-config")
	if _, err := config.Parse(inPod(t, viewRaw, iroot)); err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			t.Fatal(err)
		}
		for _, e := range errs {
			if !envoyRenderError(e) {
				t.Errorf("Envoy's view of airlock.yaml: %v", e)
			}
		}
	}
	for _, key := range []string{"store", "webhooks"} {
		if strings.Contains(string(viewRaw), key+":") {
			t.Errorf("Envoy's view carries approvals.%s, which may hold a credential:\n%s", key, viewRaw)
		}
	}
	viewCfg := decodeConfigBytes(t, viewRaw)
	boot, err := envoy.Bootstrap(viewCfg)
	if err != nil {
		t.Fatalf("envoy config: %v", err)
	}
	whole, err := envoy.Bootstrap(out.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if string(boot) != string(whole) {
		t.Errorf("the bootstrap rendered from Envoy's view differs from the one of airlock.yaml:\n%s\n---\n%s", boot, whole)
	}
	if err := envoy.ValidateBootstrap(boot); err != nil {
		t.Errorf("Envoy's bootstrap: %v", err)
	}
	out.bootstrap = boot

	// The Envoy container runs that file and mounts what it names.
	ec := container(epod, "envoy")
	if ec == nil {
		t.Fatal("no envoy container")
	}
	if fmt.Sprint(listOf(ec["args"])[:2]) != "[-c "+bootPath+"]" {
		t.Errorf("envoy runs %v, the bootstrap is written to %s", ec["args"], bootPath)
	}
	if shared := sharedEmptyDir(epod, filepath.Dir(bootPath), "envoy-config", "envoy"); shared != "" {
		t.Error(shared)
	}
	eroot := podFS(t, r, epod, "envoy")
	var b doc
	if err := yaml.Unmarshal(boot, &b); err != nil {
		t.Fatal(err)
	}
	for _, f := range findAll(b, "filename") {
		if f == "/etc/ssl/certs/ca-certificates.crt" {
			continue // the Envoy image's trust store
		}
		if _, err := os.Stat(filepath.Join(eroot, f)); err != nil {
			t.Errorf("the bootstrap names %s, which the envoy container does not mount", f)
		}
	}
	port, _ := get(b, "static_resources", "listeners", 0, "address", "socket_address", "port_value").(int)
	if p, _ := get(ec, "ports", 0, "containerPort").(int); p != port || port == 0 {
		t.Errorf("Envoy listens on %d, its container exposes %v", port, get(ec, "ports", 0, "containerPort"))
	}
	agents := r.must(t, "Service", releaseName+"-envoy")
	if !selects(agents, envoyDep) || str(agents, "spec", "ports", 0, "targetPort") != str(ec, "ports", 0, "name") {
		t.Errorf("the agents' Service does not reach Envoy's listener: %v", get(agents, "spec"))
	}
	if err := checkAirlockClusters(r, out.cfg, b, pod, mode); err != nil {
		t.Error(err)
	}
	return out
}

// checkChartDeployment: selector matching the pod labels, airlock's
// readiness on /readyz and liveness on /livez, non-root, the image set.
func checkChartDeployment(d doc) error {
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
	a := container(podSpec(d), "airlock")
	if a == nil {
		return errors.New("no airlock container")
	}
	for probe, want := range map[string]string{"readinessProbe": "/readyz", "livenessProbe": "/livez"} {
		if p := str(a, probe, "httpGet", "path"); p != want {
			return fmt.Errorf("airlock %s path = %q, want %s", probe, p, want)
		}
	}
	if get(podSpec(d), "securityContext", "runAsNonRoot") != true {
		return errors.New("pods may run as root")
	}
	if str(a, "image") == "" {
		return errors.New("airlock container has no image")
	}
	return nil
}

// sharedEmptyDir: the containers mount one emptyDir at dir, and no other
// container mounts it. "" when so.
func sharedEmptyDir(pod doc, dir string, containers ...string) string {
	var volume string
	mounts := map[string]bool{}
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range listOf(pod[key]) {
			for _, m := range listOf(get(c, "volumeMounts")) {
				if str(m, "mountPath") == dir {
					if volume != "" && volume != str(m, "name") {
						return fmt.Sprintf("containers mount different volumes at %s", dir)
					}
					volume = str(m, "name")
					mounts[str(c, "name")] = true
				}
			}
		}
	}
	for _, c := range containers {
		if !mounts[c] {
			return fmt.Sprintf("%s does not mount %s", c, dir)
		}
	}
	if len(mounts) != len(containers) {
		return fmt.Sprintf("%s is mounted by %v, want only %v", dir, mounts, containers)
	}
	for _, v := range listOf(pod["volumes"]) {
		if str(v, "name") == volume {
			if get(v, "emptyDir") == nil {
				return fmt.Sprintf("volume %s at %s is not an emptyDir", volume, dir)
			}
			return ""
		}
	}
	return fmt.Sprintf("no volume %s", volume)
}

// checkAirlockClusters: each airlock cluster of the bootstrap reaches
// airlock. Sidecar: loopback ports airlock listens on, and the SDS socket
// in an emptyDir only airlock and envoy share. Gateway: the headless
// Service of the airlock pods, on the ports airlock listens on.
func checkAirlockClusters(r *release, cfg *config.Config, boot doc, airlockPod doc, mode string) error {
	listens := map[string]string{envoy.ClusterAuthz: cfg.Listen.Authz, envoy.ClusterExtProc: cfg.Listen.ExtProc, envoy.ClusterSDS: cfg.Listen.SDS}
	seen := 0
	for _, c := range listOf(get(boot, "static_resources", "clusters")) {
		name := str(c, "name")
		listen, ok := listens[name]
		if !ok {
			continue
		}
		seen++
		addr := get(c, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")
		if pipe := str(addr, "pipe", "path"); pipe != "" {
			if mode != "sidecar" || listen != config.UnixScheme+pipe {
				return fmt.Errorf("%s dials the socket %s, airlock listens on %s", name, pipe, listen)
			}
			if msg := sharedEmptyDir(airlockPod, filepath.Dir(pipe), "airlock", "envoy"); msg != "" {
				return fmt.Errorf("the SDS socket: %s", msg)
			}
			continue
		}
		host, port := str(addr, "socket_address", "address"), get(addr, "socket_address", "port_value")
		if !strings.HasSuffix(listen, fmt.Sprintf(":%v", port)) {
			return fmt.Errorf("%s dials port %v, airlock listens on %s", name, port, listen)
		}
		switch mode {
		case "sidecar":
			if host != "127.0.0.1" || !strings.HasPrefix(listen, "127.0.0.1:") {
				return fmt.Errorf("%s dials %s, airlock listens on %s: in one pod both stay on loopback", name, host, listen)
			}
		case "gateway":
			svc := r.get("Service", releaseName+"-grpc")
			if svc == nil || host != fmt.Sprintf("%s-grpc.%s.svc.cluster.local", releaseName, releaseNS) {
				return fmt.Errorf("%s dials %s, not the headless gRPC Service", name, host)
			}
			if str(svc, "spec", "clusterIP") != "None" || !selects(svc, r.get("Deployment", releaseName)) || !servicePort(svc, port) {
				return fmt.Errorf("Service %s-grpc: %v", releaseName, get(svc, "spec"))
			}
			if get(c, "transport_socket") == nil && name == envoy.ClusterSDS {
				return errors.New("the SDS cluster crosses the network without TLS")
			}
		}
	}
	if seen != 3 {
		return fmt.Errorf("%d airlock clusters in the bootstrap, want 3", seen)
	}
	return nil
}

// airlockConfig is the rendered airlock.yaml, decoded over the defaults.
func (r *release) airlockConfig(t *testing.T) *config.Config {
	t.Helper()
	return decodeConfigBytes(t, r.file(t, "Secret", releaseName+"-config", "airlock.yaml"))
}

// selects reports whether a Service's selector picks the Deployment's pods.
func selects(svc, dep doc) bool {
	sel, _ := get(svc, "spec", "selector").(doc)
	labels, _ := get(dep, "spec", "template", "metadata", "labels").(doc)
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func servicePort(svc doc, port any) bool {
	for _, p := range listOf(get(svc, "spec", "ports")) {
		if get(p, "port") == port {
			return true
		}
	}
	return false
}

// findAll collects the string values of every key named key.
func findAll(v any, key string) []string {
	var out []string
	switch x := v.(type) {
	case doc:
		for k, e := range x {
			if s, ok := e.(string); ok && k == key {
				out = append(out, s)
			}
			out = append(out, findAll(e, key)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, findAll(e, key)...)
		}
	}
	return out
}

// TestChartModes renders the chart's example values of each mode and
// checks each rendering whole (checkRelease).
func TestChartModes(t *testing.T) {
	for _, mode := range []string{"sidecar", "gateway", "istio"} {
		t.Run(mode, func(t *testing.T) {
			r := mustRender(t, example(t, mode))
			c := checkRelease(t, r)
			if (c.bootstrap == nil) != (mode == "istio") {
				t.Errorf("mode %s: bootstrap rendered: %v", mode, c.bootstrap != nil)
			}
			if r.get("PodDisruptionBudget", releaseName) == nil {
				t.Error("no PodDisruptionBudget for airlock")
			}
			if len(r.all("NetworkPolicy")) == 0 {
				t.Error("no NetworkPolicy")
			}
			// The Google issuer is restricted, never a placeholder.
			for _, is := range c.cfg.Identity.Issuers {
				ic := identity.IssuerConfig{Issuer: is.Issuer, Audience: is.Audience, AllowedSubjects: is.AllowedSubjects, AllowedEmailDomains: is.AllowedEmailDomains, AllowedHD: is.AllowedHD}
				if err := ic.CheckPublic(); err != nil {
					t.Error(err)
				}
				if strings.Contains(is.Issuer, "example.com") {
					t.Errorf("placeholder issuer %s", is.Issuer)
				}
			}
			if !strings.HasPrefix(c.cfg.Recorder.Sink, "gs://") || !strings.HasPrefix(c.cfg.Approvals.Store, "redis") {
				t.Errorf("sink %q, store %q", c.cfg.Recorder.Sink, c.cfg.Approvals.Store)
			}
			if sa := r.must(t, "ServiceAccount", releaseName); str(sa, "metadata", "annotations", "iam.gke.io/gcp-service-account") == "" {
				t.Error("no Workload Identity annotation")
			}
		})
	}
}

// TestChartPlaintextListener: envoy.tls.enabled false renders a listener
// without TLS and mounts no certificate; it must be asked for.
func TestChartPlaintextListener(t *testing.T) {
	r := mustRender(t, example(t, "sidecar"), "envoy: {tls: {enabled: false, secretName: \"\"}}\n")
	c := checkRelease(t, r)
	if strings.Contains(string(c.bootstrap), "DownstreamTlsContext") || c.cfg.Envoy.TLSCert != "" {
		t.Error("the listener still terminates TLS")
	}
	if str(r.must(t, "Service", releaseName+"-envoy"), "spec", "ports", 0, "name") != "http" {
		t.Error("the agents' Service port is not named http")
	}
	c = checkRelease(t, mustRender(t, example(t, "sidecar")))
	if !strings.Contains(string(c.bootstrap), "DownstreamTlsContext") {
		t.Error("the default listener does not terminate TLS")
	}
}

// TestChartGatewayMTLS: in gateway mode the SDS listener requires mTLS
// with certificates cert-manager issues for the names Envoy checks.
func TestChartGatewayMTLS(t *testing.T) {
	r := mustRender(t, example(t, "gateway"))
	cfg := r.airlockConfig(t)
	if cfg.SDS.TLSCert == "" || cfg.SDS.ClientCA == "" || cfg.SDS.AllowInsecureTCP {
		t.Fatalf("sds = %+v", cfg.SDS)
	}
	server := r.must(t, "Certificate", releaseName+"-sds-server")
	client := r.must(t, "Certificate", releaseName+"-sds-client")
	if want := fmt.Sprintf("%s-grpc.%s.svc.cluster.local", releaseName, releaseNS); fmt.Sprint(get(server, "spec", "dnsNames")) != "["+want+"]" || cfg.Envoy.AirlockHost != want {
		t.Errorf("server certificate %v, Envoy expects %s", get(server, "spec", "dnsNames"), cfg.Envoy.AirlockHost)
	}
	if fmt.Sprint(get(client, "spec", "usages")) != "[client auth]" || fmt.Sprint(get(server, "spec", "usages")) != "[server auth]" {
		t.Error("certificate usages")
	}
	envoyPod := podSpec(r.must(t, "Deployment", releaseName+"-envoy"))
	if !mountsSecret(envoyPod, "envoy", str(client, "spec", "secretName")) || mountsSecret(envoyPod, "envoy", str(server, "spec", "secretName")) {
		t.Error("the Envoy pods must mount the client certificate, never airlock's")
	}
	if !mountsSecret(podSpec(r.must(t, "Deployment", releaseName)), "airlock", str(server, "spec", "secretName")) {
		t.Error("airlock does not mount its server certificate")
	}
	if mountsSecret(envoyPod, "envoy-config", releaseName+"-config") || mountsSecret(envoyPod, "envoy", releaseName+"-config") {
		t.Error("the Envoy pods mount airlock.yaml, which may carry credentials")
	}
	// Secrets of the operator's instead of cert-manager's.
	own := mustRender(t, example(t, "gateway"), "sds: {mtls: {certManager: {enabled: false}, serverSecretName: airlock-sds-server-tls, clientSecretName: envoy-sds-client-tls}}\n")
	checkRelease(t, own)
	if own.get("Certificate", releaseName+"-sds-server") != nil ||
		!mountsSecret(podSpec(own.must(t, "Deployment", releaseName)), "airlock", "airlock-sds-server-tls") ||
		!mountsSecret(podSpec(own.must(t, "Deployment", releaseName+"-envoy")), "envoy", "envoy-sds-client-tls") {
		t.Error("the operator's SDS certificates are not the ones mounted")
	}
	if get(r.must(t, "HorizontalPodAutoscaler", releaseName+"-envoy"), "spec", "scaleTargetRef", "name") != releaseName+"-envoy" {
		t.Error("Envoy's autoscaler")
	}
	if get(r.must(t, "Deployment", releaseName+"-envoy"), "spec", "replicas") != nil {
		t.Error("an autoscaled Envoy Deployment sets replicas")
	}
}

func mountsSecret(pod doc, containerName, secret string) bool {
	vols := map[string]string{}
	for _, v := range listOf(pod["volumes"]) {
		vols[str(v, "name")] = str(v, "secret", "secretName")
	}
	for _, m := range listOf(get(container(pod, containerName), "volumeMounts")) {
		if vols[str(m, "name")] == secret {
			return true
		}
	}
	return false
}

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

// TestChartRefuses: values that would start a replica unable to work
// safely do not render, and the error names the value to set.
func TestChartRefuses(t *testing.T) {
	side := example(t, "sidecar")
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"no issuer", []string{side, "config: {identity: {issuers: []}}\n"}, "config.identity.issuers: list at least one"},
		{"unrestricted Google issuer", []string{side, "config: {identity: {issuers: [{issuer: https://accounts.google.com, audience: airlock}]}}\n"}, "config.identity.issuers[0]: anyone can obtain a token from https://accounts.google.com"},
		{"unrestricted GitHub issuer", []string{side, "config: {identity: {issuers: [{issuer: https://issuer.acme.com, audience: airlock}, {issuer: https://token.actions.githubusercontent.com, audience: airlock}]}}\n"}, "config.identity.issuers[1]: anyone can obtain"},
		{"dev issuer", []string{side, "config: {identity: {dev: true}}\n"}, "config.identity.dev"},
		{"no credential", []string{side, "credentials: []\n"}, "credentials: list the GCP credential"},
		{"credential twice", []string{side, "credentials: [{name: a, adc: true}, {name: a, adc: true}]\n"}, `credentials[1].name: "a" is used twice`},
		{"credential both", []string{side, "credentials: [{name: a, adc: true, existingSecret: s}]\n"}, "credentials[0]: set exactly one of adc"},
		{"credential neither", []string{side, "credentials: [{name: a}]\n"}, "credentials[0]: set exactly one of adc"},
		{"no sink", []string{side, "config: {recorder: {sink: \"\"}}\n"}, "config.recorder.sink: set gs://"},
		{"replicas share memory", []string{side, "redis: {url: \"\"}\n"}, "redis.url: replicas share"},
		{"autoscaled memory", []string{side, "redis: {url: \"\"}\nreplicaCount: 1\nautoscaling: {enabled: true}\n"}, "redis.url: replicas share"},
		{"two stores", []string{side, "redis: {bundled: {enabled: true}}\n"}, "redis: set either"},
		{"listen set", []string{side, "config: {listen: {authz: 0.0.0.0:9001}}\n"}, "config.listen: the chart sets it"},
		{"sds set", []string{side, "config: {sds: {allow_insecure_tcp: true}}\n"}, "config.sds: the chart sets it"},
		{"store set", []string{side, "config: {approvals: {store: memory}}\n"}, "config.approvals.store: the chart sets it"},
		{"policy paths set", []string{side, "config: {policies: {paths: [/tmp]}}\n"}, "config.policies.paths"},
		{"spool set", []string{side, "config: {recorder: {spool: /tmp}}\n"}, "config.recorder.spool"},
		{"no tls", []string{side, "envoy: {tls: {secretName: \"\"}}\n"}, "envoy.tls: set exactly one"},
		{"tls twice", []string{side, "envoy: {tls: {certManager: {enabled: true, issuerRef: {name: ca}}}}\n"}, "envoy.tls: set exactly one"},
		{"gateway without mtls", []string{side, "envoy: {mode: gateway}\n"}, "sds.mtls.serverSecretName: envoy.mode gateway sends the GCP token"},
		{"istio with gateway domains", []string{example(t, "istio"), "config: {gateway: {domains: [airlock.acme.com]}}\n"}, "config.gateway.domains: endpoint overrides need"},
		{"bad hold", []string{side, "config: {approvals: {hold: 20}}\n"}, `config.approvals.hold: "20" is not a duration`},
		{"bad timeout", []string{side, "config: {authz: {timeout: soon}}\n"}, `config.authz.timeout: "soon" is not a duration`},
		{"pdb blocks drains", []string{side, "podDisruptionBudget: {minAvailable: 3, maxUnavailable: null}\n"}, "podDisruptionBudget.minAvailable: 3 of 3 replicas would block every node drain"},
		{"pdb both", []string{side, "podDisruptionBudget: {minAvailable: 1}\n"}, "podDisruptionBudget: set minAvailable or maxUnavailable, not both"},
		{"policy file name", []string{side, "policies: {files: {\"../x\": \"name: x\"}}\n"}, `policies.files: "../x"`},
		{"unknown value", []string{side, "replicas: 3\n"}, "replicas"},
		{"unknown config section", []string{side, "config: {approval: {hold: 1s}}\n"}, "approval"},
		{"bad mode", []string{side, "envoy: {mode: ambient}\n"}, "envoy/mode"},
		{"bad digest", []string{side, "image: {digest: latest}\n"}, "digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, testKubeMinor, tc.values...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := renderChart(t, "1.29.9", side); err == nil || !strings.Contains(err.Error(), "kubeVersion") && !strings.Contains(err.Error(), "Kubernetes version") {
		t.Errorf("Kubernetes 1.29: %v", err)
	}
}

// TestChartPublicIssuerMatchesIdentity: the chart refuses an unrestricted
// issuer exactly when airlock calls it public (identity.PublicIssuer).
func TestChartPublicIssuerMatchesIdentity(t *testing.T) {
	for _, iss := range []string{
		"https://accounts.google.com", "https://ACCOUNTS.google.com", "https://accounts.google.com:443",
		"https://token.actions.githubusercontent.com", "https://gitlab.com", "https://gitlab.acme.com",
		"https://login.microsoftonline.com/common/v2.0", "https://login.microsoftonline.com/8f0e1a2b/v2.0",
		"https://login.microsoftonline.com/organizations/v2.0", "https://login.microsoftonline.com/consumers/v2.0",
		"https://idp.example/multitenant", "https://idp.example/Multi-Tenant/x", "https://issuer.acme.com",
		"https://accounts.google.com.acme.com", "https://dex.acme.com/consumers-of-apis",
	} {
		_, err := renderChart(t, testKubeMinor, example(t, "sidecar"), fmt.Sprintf("config: {identity: {issuers: [{issuer: %q, audience: airlock}]}}\n", iss))
		refused := err != nil && strings.Contains(err.Error(), "anyone can obtain a token")
		if err != nil && !refused {
			t.Errorf("%s: %v", iss, err)
		}
		if want := identity.PublicIssuer(iss); refused != want {
			t.Errorf("%s: chart refuses unrestricted: %v, identity.PublicIssuer: %v", iss, refused, want)
		}
	}
}

// TestChartPolicyEditRollsNothing: a policy edit changes the policies
// ConfigMap in place (same name, new content) and no pod template, so
// kubelet refreshes the mounted files and airlock reloads them; an
// airlock.yaml change rolls the pods (checksum/config), since airlock
// reads it at start.
func TestChartPolicyEditRollsNothing(t *testing.T) {
	for _, mode := range []string{"sidecar", "gateway", "istio"} {
		t.Run(mode, func(t *testing.T) {
			base := mustRender(t, example(t, mode))
			edited := mustRender(t, example(t, mode), "policies: {files: {\"gcp-production.yaml\": \"name: p\\ndefault: deny\\n\"}}\n")
			if reflect.DeepEqual(get(base.must(t, "ConfigMap", releaseName+"-policies"), "data"), get(edited.must(t, "ConfigMap", releaseName+"-policies"), "data")) {
				t.Fatal("the policy edit did not reach the ConfigMap")
			}
			for _, d := range base.all("Deployment") {
				if !reflect.DeepEqual(d, edited.must(t, "Deployment", str(d, "metadata", "name"))) {
					t.Errorf("a policy edit changes Deployment %s: its pods would roll", str(d, "metadata", "name"))
				}
			}
			mounted := false
			for _, v := range listOf(podSpec(base.must(t, "Deployment", releaseName))["volumes"]) {
				mounted = mounted || str(v, "configMap", "name") == releaseName+"-policies"
			}
			for _, m := range listOf(get(container(podSpec(base.must(t, "Deployment", releaseName)), "airlock"), "volumeMounts")) {
				if str(m, "name") == "policies" && str(m, "subPath") != "" {
					t.Error("the policies are mounted with subPath: kubelet never refreshes such a file")
				}
			}
			if !mounted {
				t.Error("the policies ConfigMap is not mounted")
			}
			changed := mustRender(t, example(t, mode), "config: {approvals: {hold: 5s}}\n")
			sum := func(r *release) string {
				return str(r.must(t, "Deployment", releaseName), "spec", "template", "metadata", "annotations", "checksum/config")
			}
			if sum(base) == "" || sum(base) == sum(changed) {
				t.Error("an airlock.yaml change does not roll the pods")
			}
		})
	}
}

// TestChartReplicas: replicas with a PodDisruptionBudget, and with
// autoscaling the Deployment leaves its replica count to the HPA.
func TestChartReplicas(t *testing.T) {
	r := mustRender(t, example(t, "sidecar"))
	if get(r.must(t, "Deployment", releaseName), "spec", "replicas") != 3 || r.get("HorizontalPodAutoscaler", releaseName) != nil {
		t.Error("3 replicas without autoscaling")
	}
	pdb := r.must(t, "PodDisruptionBudget", releaseName)
	if get(pdb, "spec", "maxUnavailable") != 1 || !selects(doc{"spec": doc{"selector": get(pdb, "spec", "selector", "matchLabels")}}, r.must(t, "Deployment", releaseName)) {
		t.Errorf("PodDisruptionBudget %v", get(pdb, "spec"))
	}
	r = mustRender(t, example(t, "sidecar"), "autoscaling: {enabled: true, minReplicas: 2, maxReplicas: 12}\n")
	if get(r.must(t, "Deployment", releaseName), "spec", "replicas") != nil {
		t.Error("an autoscaled Deployment sets replicas: every upgrade would reset the HPA's count")
	}
	hpa := r.must(t, "HorizontalPodAutoscaler", releaseName)
	if get(hpa, "spec", "minReplicas") != 2 || get(hpa, "spec", "maxReplicas") != 12 || str(hpa, "spec", "scaleTargetRef", "name") != releaseName {
		t.Errorf("HPA %v", get(hpa, "spec"))
	}
	if c := container(podSpec(r.must(t, "Deployment", releaseName)), "airlock"); str(c, "resources", "requests", "cpu") == "" {
		t.Error("no CPU request: the HPA's utilisation has nothing to divide by")
	}
	r = mustRender(t, example(t, "sidecar"), "replicaCount: 1\nredis: {url: \"\"}\npodDisruptionBudget: {enabled: false}\n")
	if cfg := r.airlockConfig(t); cfg.Approvals.Store != "memory" {
		t.Errorf("one replica without Redis: store %q", cfg.Approvals.Store)
	}
}

// TestChartRedisBundled: the bundled Redis is the approval store, reachable
// only from airlock's pods.
func TestChartRedisBundled(t *testing.T) {
	r := mustRender(t, example(t, "sidecar"), "redis: {url: \"\", bundled: {enabled: true}}\n")
	checkRelease(t, r)
	if got, want := r.airlockConfig(t).Approvals.Store, fmt.Sprintf("redis://%s-redis.%s.svc.cluster.local:6379/0", releaseName, releaseNS); got != want {
		t.Errorf("store %q, want %q", got, want)
	}
	svc := r.must(t, "Service", releaseName+"-redis")
	if !selects(svc, r.must(t, "Deployment", releaseName+"-redis")) || !servicePort(svc, 6379) {
		t.Errorf("redis Service %v", get(svc, "spec"))
	}
	np := r.must(t, "NetworkPolicy", releaseName+"-redis")
	peer := get(np, "spec", "ingress", 0, "from", 0, "podSelector", "matchLabels")
	if !selects(doc{"spec": doc{"selector": peer}}, r.must(t, "Deployment", releaseName)) || len(listOf(get(np, "spec", "ingress", 0, "from"))) != 1 {
		t.Errorf("redis admits %v", get(np, "spec", "ingress"))
	}
	if !strings.Contains(r.notes, "redis.bundled is for trials") {
		t.Error("the notes do not warn about the bundled Redis")
	}
}

// TestChartNetworkPolicies: airlock's gRPC ports admit only its Envoy
// gateway's pods (gateway), and are not exposed at all in sidecar mode,
// where Envoy reaches them over loopback.
func TestChartNetworkPolicies(t *testing.T) {
	ports := func(np doc) map[int][]any {
		out := map[int][]any{}
		for _, rule := range listOf(get(np, "spec", "ingress")) {
			for _, p := range listOf(get(rule, "ports")) {
				n, _ := get(p, "port").(int)
				out[n] = listOf(get(rule, "from"))
			}
		}
		return out
	}
	r := mustRender(t, example(t, "sidecar"), "networkPolicy: {agents: [{namespaceSelector: {matchLabels: {team: agents}}}]}\n")
	got := ports(r.must(t, "NetworkPolicy", releaseName))
	if len(got) != 2 || got[8080] != nil || len(got[8443]) != 1 {
		t.Errorf("sidecar mode admits %v", got)
	}
	r = mustRender(t, example(t, "gateway"))
	got = ports(r.must(t, "NetworkPolicy", releaseName))
	for _, p := range []int{9001, 9002, 9003} {
		if len(got[p]) != 1 || !selects(doc{"spec": doc{"selector": get(got[p][0], "podSelector", "matchLabels")}}, r.must(t, "Deployment", releaseName+"-envoy")) {
			t.Errorf("gateway mode, port %d admits %v", p, got[p])
		}
	}
	if got := ports(r.must(t, "NetworkPolicy", releaseName+"-envoy")); len(got) != 1 || got[8443] != nil {
		t.Errorf("Envoy gateway admits %v", got)
	}
}

// TestChartImage: the image reference comes from values (tag, default the
// appVersion, or digest), for airlock and the init container rendering
// Envoy's bootstrap alike.
func TestChartImage(t *testing.T) {
	images := func(r *release) []string {
		var out []string
		for _, d := range r.all("Deployment") {
			for _, key := range []string{"initContainers", "containers"} {
				for _, c := range listOf(podSpec(d)[key]) {
					if n := str(c, "name"); n == "airlock" || n == "envoy-config" {
						out = append(out, str(c, "image"))
					}
				}
			}
		}
		return out
	}
	r := mustRender(t, example(t, "gateway"))
	for _, img := range images(r) {
		if img != "us-docker.pkg.dev/acme-prod/airlock/airlock:0.1.0" {
			t.Errorf("image %s", img)
		}
	}
	if len(images(r)) != 2 { // airlock, and the init container of the Envoy gateway
		t.Errorf("images %v", images(r))
	}
	digest := "sha256:" + strings.Repeat("ab", 32)
	r = mustRender(t, example(t, "sidecar"), "image: {repository: reg.acme.com/airlock, tag: \"\", digest: "+digest+"}\n")
	for _, img := range images(r) {
		if img != "reg.acme.com/airlock@"+digest {
			t.Errorf("image %s", img)
		}
	}
	r = mustRender(t, example(t, "sidecar"), "image: {tag: \"\"}\n")
	chart := loadChartYAML(t)
	for _, img := range images(r) {
		if !strings.HasSuffix(img, ":"+chart.AppVersion) {
			t.Errorf("image %s, want the appVersion %s", img, chart.AppVersion)
		}
	}
	if e := str(container(podSpec(r.must(t, "Deployment", releaseName)), "envoy"), "image"); e != "envoyproxy/envoy:v1.36.4" {
		t.Errorf("envoy image %s", e)
	}
}

type chartYAML struct {
	Version     string `yaml:"version"`
	AppVersion  string `yaml:"appVersion"`
	KubeVersion string `yaml:"kubeVersion"`
}

func loadChartYAML(t *testing.T) chartYAML {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c chartYAML
	if err := yaml.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestChartCredentialKey: a credential from a Secret is mounted where
// airlock.yaml names its key (checkRelease parses it in the pod), and only
// the airlock container sees it.
func TestChartCredentialKey(t *testing.T) {
	r := mustRender(t, example(t, "sidecar"), "credentials: [{name: gcp-prod, existingSecret: agents-key, secretKey: sa.json}]\n")
	c := checkRelease(t, r)
	if got := c.cfg.Credentials[0].ServiceAccountKey; got != "/etc/airlock/credentials/0/sa.json" {
		t.Errorf("service_account_key %q", got)
	}
	pod := podSpec(c.airlock)
	if !mountsSecret(pod, "airlock", "agents-key") || mountsSecret(pod, "envoy", "agents-key") || mountsSecret(pod, "envoy-config", "agents-key") {
		t.Error("the key must reach the airlock container only")
	}
	// The check has teeth: a key the pod does not mount fails config.Parse.
	raw := r.file(t, "Secret", releaseName+"-config", "airlock.yaml")
	broken := strings.Replace(string(raw), "/etc/airlock/credentials/0/sa.json", "/etc/airlock/credentials/0/key.json", 1)
	if _, err := config.Parse(inPod(t, []byte(broken), podFS(t, r, pod, "airlock"))); err == nil || !strings.Contains(err.Error(), "credentials[0].service_account_key") {
		t.Errorf("an unmounted key file: %v", err)
	}
}

// TestChartDefaultPolicies: without policies.files the chart ships the
// production guard rails of deploy/kubernetes, which load and pass their
// own tests (checkRelease runs them from the mounted files).
func TestChartDefaultPolicies(t *testing.T) {
	a, err := os.ReadFile(filepath.Join(chartDir, "files/policies/gcp-production.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("kubernetes/policies/gcp-production.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Error("the chart's default policies differ from deploy/kubernetes/policies")
	}
	r := mustRender(t, example(t, "sidecar"))
	if got := string(r.file(t, "ConfigMap", releaseName+"-policies", "gcp-production.yaml")); got != string(a) {
		t.Errorf("the policies ConfigMap holds:\n%s", got)
	}
	r = mustRender(t, example(t, "sidecar"), "policies: {existingConfigMap: acme-policies}\n")
	if r.get("ConfigMap", releaseName+"-policies") != nil {
		t.Error("a policies ConfigMap is rendered beside policies.existingConfigMap")
	}
	for _, v := range listOf(podSpec(r.must(t, "Deployment", releaseName))["volumes"]) {
		if str(v, "name") == "policies" && str(v, "configMap", "name") != "acme-policies" {
			t.Errorf("policies volume %v", v)
		}
	}
}

// TestChartSchemaKnowsConfig: values.schema.json admits under config every
// section of airlock.yaml (config.Config), and no other, so that a typo is
// refused at install rather than by a crash-looping pod.
func TestChartSchemaKnowsConfig(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Properties struct {
			Config struct {
				Properties map[string]any `json:"properties"`
			} `json:"config"`
		} `json:"properties"`
	}
	if err := yaml.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	var inSchema, inConfig []string
	for k := range s.Properties.Config.Properties {
		inSchema = append(inSchema, k)
	}
	ct := reflect.TypeOf(config.Config{})
	for i := 0; i < ct.NumField(); i++ {
		inConfig = append(inConfig, strings.Split(ct.Field(i).Tag.Get("yaml"), ",")[0])
	}
	slices.Sort(inSchema)
	slices.Sort(inConfig)
	if !slices.Equal(inSchema, inConfig) {
		t.Errorf("values.schema.json config sections %v, airlock.yaml has %v", inSchema, inConfig)
	}
}

// TestChartValuesDocumented: every value of values.yaml has a row in the
// chart's README table (a row may name a whole subtree, `a.*`, or list
// siblings as `a.b`, `.c`).
func TestChartValuesDocumented(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(chartDir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values doc
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var documented []string
	name := regexp.MustCompile("`([^`]+)`")
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cell := strings.Split(line, "|")[1]
		parent := ""
		for _, m := range name.FindAllStringSubmatch(cell, -1) {
			n := m[1]
			if strings.HasPrefix(n, ".") {
				n = parent + n
			} else if i := strings.LastIndex(strings.TrimSuffix(n, ".*"), "."); i >= 0 {
				parent = n[:i]
			} else {
				parent = ""
			}
			documented = append(documented, n)
		}
	}
	covered := func(path string) bool {
		for _, n := range documented {
			if n == path || strings.HasPrefix(path, n+".") || (strings.HasSuffix(n, ".*") && strings.HasPrefix(path, strings.TrimSuffix(n, "*"))) {
				return true
			}
		}
		return false
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(doc); ok && len(m) > 0 {
			for k, e := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), e)
			}
			return
		}
		if !covered(prefix) {
			t.Errorf("value %s has no row in %s/README.md", prefix, chartDir)
		}
	}
	walk("", values)
}
