package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/identity"
)

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
