package deploy_test

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/identity"
)

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
