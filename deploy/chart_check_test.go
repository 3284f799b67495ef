package deploy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/airlockhq/airlock/authz"
	"github.com/airlockhq/airlock/config"
	"github.com/airlockhq/airlock/envoy"
	"github.com/airlockhq/airlock/gcp"
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
