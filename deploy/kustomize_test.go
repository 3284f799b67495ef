package deploy_test

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/airlockhq/airlock/identity"
)

// kustomize builds a copy of deploy/kubernetes, after edit has changed the
// copy, with kustomize's own library (what `kubectl apply -k` applies).
func kustomize(t *testing.T, edit func(dir string)) *release {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("kubernetes")); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(dir)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	out, err := m.AsYaml()
	if err != nil {
		t.Fatal(err)
	}
	r := &release{}
	dec := yaml.NewDecoder(strings.NewReader(string(out)))
	for {
		var d doc
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r.objects = append(r.objects, d)
	}
	return r
}

func appendTo(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// TestKustomizePolicyEditRollsNothing: `kubectl apply -k` after a policy
// edit updates the policies ConfigMap in place (no name suffix) and leaves
// the Deployment as it was, so no pod restarts: kubelet refreshes the
// mounted directory and airlock reloads it. An airlock.yaml or envoy.yaml
// edit renames its ConfigMap and rolls the pods, since both are read at
// start.
func TestKustomizePolicyEditRollsNothing(t *testing.T) {
	base := kustomize(t, nil)
	for _, o := range base.objects {
		if err := checkObject(o); err != nil {
			t.Error(err)
		}
	}
	dep := base.must(t, "Deployment", "airlock")
	policiesCM := base.must(t, "ConfigMap", "airlock-policies")
	for _, m := range listOf(get(container(podSpec(dep), "airlock"), "volumeMounts")) {
		if str(m, "name") == "policies" && (str(m, "subPath") != "" || str(m, "mountPath") != "/etc/airlock/policies") {
			t.Errorf("policies mounted as %v: kubelet refreshes only a whole-directory mount", m)
		}
	}
	cfg := decodeConfig(t, "kubernetes/airlock.yaml")
	if len(cfg.Policies.Paths) != 1 || cfg.Policies.Paths[0] != "/etc/airlock/policies" || cfg.Policies.ReloadInterval <= 0 {
		t.Errorf("policies %+v: airlock must watch the mounted directory", cfg.Policies)
	}

	edited := kustomize(t, func(dir string) {
		appendTo(t, filepath.Join(dir, "policies/gcp-production.yaml"), "# reviewed\n")
	})
	if reflect.DeepEqual(get(policiesCM, "data"), get(edited.must(t, "ConfigMap", "airlock-policies"), "data")) {
		t.Fatal("the policy edit did not reach the ConfigMap")
	}
	if !reflect.DeepEqual(dep, edited.must(t, "Deployment", "airlock")) {
		t.Error("a policy edit changes the Deployment: every pod would restart")
	}

	for _, f := range []string{"airlock.yaml", "envoy.yaml"} {
		rolled := kustomize(t, func(dir string) { appendTo(t, filepath.Join(dir, f), "# edited\n") })
		if reflect.DeepEqual(dep, rolled.must(t, "Deployment", "airlock")) {
			t.Errorf("an %s edit does not roll the pods, which read it only at start", f)
		}
	}
}

// TestKubernetesIssuers: the Kubernetes configuration names a real issuer,
// restricted as airlock requires of a public one, never a placeholder.
func TestKubernetesIssuers(t *testing.T) {
	cfg := decodeConfig(t, "kubernetes/airlock.yaml")
	if len(cfg.Identity.Issuers) == 0 || cfg.Identity.Dev {
		t.Fatalf("issuers %+v, dev %v", cfg.Identity.Issuers, cfg.Identity.Dev)
	}
	for _, is := range cfg.Identity.Issuers {
		if strings.Contains(is.Issuer, "example.com") {
			t.Errorf("placeholder issuer %s", is.Issuer)
		}
		ic := identity.IssuerConfig{Issuer: is.Issuer, Audience: is.Audience, AllowedSubjects: is.AllowedSubjects, AllowedEmailDomains: is.AllowedEmailDomains, AllowedHD: is.AllowedHD}
		if err := ic.CheckPublic(); err != nil {
			t.Error(err)
		}
	}
}
