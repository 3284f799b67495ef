package deploy_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"gopkg.in/yaml.v3"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	netv1alpha3 "istio.io/api/networking/v1alpha3"
	secv1beta1 "istio.io/api/security/v1beta1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/airlockhq/airlock/config"
)

// The chart under test and where `helm install -n` puts it in these tests.
const (
	chartDir      = "helm/airlock"
	releaseName   = "airlock"
	releaseNS     = "airlock-system"
	testKubeMinor = "1.30.0"
)

// release is one rendering of the chart, as `helm template` gives it.
type release struct {
	objects []doc
	notes   string
}

// renderChart renders the chart with Helm's own install action in
// client-only dry-run mode (what `helm template` does): values schema,
// kubeVersion constraint, templates, NOTES. valuesYAML are -f files, later
// ones overriding earlier ones.
func renderChart(t *testing.T, kubeVersion string, valuesYAML ...string) (*release, error) {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatal(err)
	}
	vals := map[string]any{}
	for _, v := range valuesYAML {
		m, err := common.ReadValues([]byte(v))
		if err != nil {
			t.Fatalf("values: %v\n%s", err, v)
		}
		vals = chartutil.MergeTables(m, vals)
	}
	cfg := action.NewConfiguration()
	cfg.SetLogger(slog.DiscardHandler)
	inst := action.NewInstall(cfg)
	inst.DryRunStrategy = action.DryRunClient
	inst.ReleaseName = releaseName
	inst.Namespace = releaseNS
	inst.Replace = true
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	inst.KubeVersion = kv
	r, err := inst.Run(ch, vals)
	if err != nil {
		return nil, err
	}
	rel, ok := r.(*releasev1.Release)
	if !ok {
		t.Fatalf("release of type %T", r)
	}
	rl := &release{notes: rel.Info.Notes}
	dec := yaml.NewDecoder(strings.NewReader(rel.Manifest))
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("rendered manifest: %v\n%s", err, rel.Manifest)
		}
		if d != nil {
			rl.objects = append(rl.objects, d)
		}
	}
	return rl, nil
}

// mustRender renders values that must render.
func mustRender(t *testing.T, valuesYAML ...string) *release {
	t.Helper()
	r, err := renderChart(t, testKubeMinor, valuesYAML...)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// example is the text of one of the chart's example values files.
func example(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "examples", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// get returns the object of this kind and name (any namespace), or nil.
func (r *release) get(kind, name string) doc {
	for _, o := range r.objects {
		if str(o, "kind") == kind && str(o, "metadata", "name") == name {
			return o
		}
	}
	return nil
}

func (r *release) must(t *testing.T, kind, name string) doc {
	t.Helper()
	o := r.get(kind, name)
	if o == nil {
		t.Fatalf("no %s %s among %v", kind, name, r.names())
	}
	return o
}

func (r *release) all(kind string) []doc {
	var out []doc
	for _, o := range r.objects {
		if str(o, "kind") == kind {
			out = append(out, o)
		}
	}
	return out
}

func (r *release) names() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, str(o, "kind")+"/"+str(o, "metadata", "name"))
	}
	return out
}

// file is the content of key in a rendered ConfigMap or Secret.
func (r *release) file(t *testing.T, kind, name, key string) []byte {
	t.Helper()
	o := r.must(t, kind, name)
	v, ok := get(o, "data", key).(string)
	if !ok {
		t.Fatalf("%s %s has no %s", kind, name, key)
	}
	if kind == "Secret" {
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			t.Fatalf("%s %s %s: %v", kind, name, key, err)
		}
		return b
	}
	return []byte(v)
}

// checkObject checks one rendered object against its API: the Kubernetes
// kinds decoded strictly into client-go's types (an unknown or misplaced
// field is an error), Istio's specs into istio.io/api's protos.
func checkObject(o doc) error {
	if err := checkHeader(o); err != nil {
		return err
	}
	kind := str(o, "kind")
	name := kind + " " + str(o, "metadata", "name")
	if str(o, "metadata", "namespace") == "" && kind != "Namespace" {
		return fmt.Errorf("%s: no namespace", name)
	}
	js, err := jsonOf(o)
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	gv, err := schema.ParseGroupVersion(str(o, "apiVersion"))
	if err != nil {
		return fmt.Errorf("%s: %v", name, err)
	}
	if obj, err := scheme.Scheme.New(gv.WithKind(kind)); err == nil {
		if err := sigsyaml.UnmarshalStrict(js, obj); err != nil {
			return fmt.Errorf("%s: %v", name, err)
		}
		return nil
	}
	var spec proto.Message
	switch kind {
	case "AuthorizationPolicy":
		spec = &secv1beta1.AuthorizationPolicy{}
	case "PeerAuthentication":
		spec = &secv1beta1.PeerAuthentication{}
	case "EnvoyFilter":
		spec = &netv1alpha3.EnvoyFilter{}
	case "ServiceEntry":
		spec = &netv1alpha3.ServiceEntry{}
	case "Gateway":
		spec = &netv1alpha3.Gateway{}
	case "VirtualService":
		spec = &netv1alpha3.VirtualService{}
	case "DestinationRule":
		spec = &netv1alpha3.DestinationRule{}
	case "Certificate":
		return checkCertificate(o)
	case "IstioOperator":
		// Only its meshConfig is airlock's; istio.io/api holds its schema.
		if err := unmarshalProto(get(o, "spec", "meshConfig"), &meshv1alpha1.MeshConfig{}); err != nil {
			return fmt.Errorf("%s: spec.meshConfig: %v", name, err)
		}
		return nil
	default:
		return fmt.Errorf("%s: no schema to check it against", name)
	}
	for k := range o {
		if !slices.Contains([]string{"apiVersion", "kind", "metadata", "spec"}, k) {
			return fmt.Errorf("%s: unexpected top-level field %s", name, k)
		}
	}
	if err := unmarshalProto(get(o, "spec"), spec); err != nil {
		return fmt.Errorf("%s: spec: %v", name, err)
	}
	return nil
}

// checkCertificate checks the cert-manager Certificate fields the chart
// writes (no Go types of cert-manager are imported).
func checkCertificate(o doc) error {
	known := []string{"secretName", "dnsNames", "commonName", "privateKey", "usages", "issuerRef"}
	for k := range get(o, "spec").(doc) {
		if !slices.Contains(known, k) {
			return fmt.Errorf("Certificate %s: unexpected field spec.%s", str(o, "metadata", "name"), k)
		}
	}
	if str(o, "spec", "secretName") == "" || str(o, "spec", "issuerRef", "name") == "" {
		return fmt.Errorf("Certificate %s: secretName and issuerRef.name are required", str(o, "metadata", "name"))
	}
	return nil
}

// unmarshalProto reads a decoded YAML value into m with protojson, unknown
// fields refused.
func unmarshalProto(v any, m proto.Message) error {
	js, err := jsonOf(v)
	if err != nil {
		return err
	}
	return protojson.UnmarshalOptions{}.Unmarshal(js, m)
}

func jsonOf(v any) ([]byte, error) {
	y, err := yaml.Marshal(v)
	if err != nil {
		return nil, err
	}
	return sigsyaml.YAMLToJSON(y)
}

// podSpec is the pod template of a Deployment.
func podSpec(dep doc) doc {
	s, _ := get(dep, "spec", "template", "spec").(doc)
	return s
}

// container finds a container (or init container) of a pod spec.
func container(pod doc, name string) doc {
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range listOf(pod[key]) {
			if str(c, "name") == name {
				return c.(doc)
			}
		}
	}
	return nil
}

// podFS lays out under a temporary directory the files a container of the
// release sees: each volume it mounts, filled from the rendered ConfigMaps
// and Secrets (one file per key); a Secret the operator provides (or
// cert-manager issues) holds its items, else tls.crt, tls.key and ca.crt,
// the shape the chart documents; an emptyDir is an empty directory.
func podFS(t *testing.T, r *release, pod doc, containerName string) string {
	t.Helper()
	c := container(pod, containerName)
	if c == nil {
		t.Fatalf("no container %s", containerName)
	}
	volumes := map[string]doc{}
	for _, v := range listOf(pod["volumes"]) {
		volumes[str(v, "name")] = v.(doc)
	}
	root := t.TempDir()
	for _, m := range listOf(c["volumeMounts"]) {
		v := volumes[str(m, "name")]
		if v == nil {
			t.Fatalf("container %s mounts %s, which no volume defines", containerName, str(m, "name"))
		}
		dir := filepath.Join(root, str(m, "mountPath"))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		files := map[string][]byte{}
		switch {
		case get(v, "configMap") != nil:
			cm := r.must(t, "ConfigMap", str(v, "configMap", "name"))
			for k := range get(cm, "data").(doc) {
				files[k] = r.file(t, "ConfigMap", str(cm, "metadata", "name"), k)
			}
		case get(v, "secret") != nil:
			name := str(v, "secret", "secretName")
			if s := r.get("Secret", name); s != nil {
				for k := range get(s, "data").(doc) {
					files[k] = r.file(t, "Secret", name, k)
				}
			} else if items := listOf(get(v, "secret", "items")); len(items) > 0 {
				for _, it := range items {
					files[str(it, "path")] = []byte("operator's " + str(it, "key"))
				}
			} else {
				for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
					files[k] = []byte("operator's " + k)
				}
			}
		case get(v, "emptyDir") != nil:
		default:
			t.Fatalf("volume %s: unexpected source %v", str(v, "name"), v)
		}
		for k, data := range files {
			if err := os.WriteFile(filepath.Join(dir, k), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

// inPod rewrites every absolute path among the string values of an
// airlock.yaml to the same path under root, so that config.Parse checks
// the files a container would see.
func inPod(t *testing.T, airlockYAML []byte, root string) []byte {
	t.Helper()
	var d any
	if err := yaml.Unmarshal(airlockYAML, &d); err != nil {
		t.Fatal(err)
	}
	var walk func(v any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case doc:
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		case string:
			if strings.HasPrefix(x, "/") {
				return filepath.Join(root, x)
			}
		}
		return v
	}
	out, err := yaml.Marshal(walk(d))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// decodeConfigBytes reads an airlock.yaml over the defaults, unknown keys
// refused, without checking files (what Envoy's bootstrap is rendered from).
func decodeConfigBytes(t *testing.T, data []byte) *config.Config {
	t.Helper()
	c := config.Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil {
		t.Fatalf("airlock.yaml: %v\n%s", err, data)
	}
	return c
}

// envoyRenderErrors are the config.Parse errors `airlock envoy config`
// turns into warnings: files airlock reads at run time, which need not
// exist where the bootstrap is rendered.
func envoyRenderError(e *config.Error) bool {
	switch key := e.Key; {
	case strings.HasPrefix(key, "policies.paths["), strings.HasSuffix(key, ".service_account_key"), key == "recorder.signing_key":
		return true
	case key == "sds.tls_cert" || key == "sds.tls_key" || key == "sds.client_ca":
		return strings.HasSuffix(e.Msg, "no such file or directory")
	}
	return false
}
