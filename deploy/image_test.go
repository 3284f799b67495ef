package deploy_test

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// dockerfile is deploy/Dockerfile split into stages of instructions
// (continuation lines joined).
type dockerStage struct {
	from         string
	instructions []string
}

func readDockerfile(t *testing.T) []dockerStage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []dockerStage
	var cur strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
			continue
		}
		cur.WriteString(line)
		ins := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		if strings.HasPrefix(ins, "FROM ") {
			stages = append(stages, dockerStage{from: ins})
			continue
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile: %q before FROM", ins)
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, ins)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// TestDockerfile: the image builds ./cmd/airlock with a Go at least as new
// as go.mod asks, stamps the version the Makefile passes, and runs that
// binary as the entrypoint, as uid 65532, which is what the chart and the
// manifests run: they set no command, only airlock subcommands as args.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) != 2 {
		t.Fatalf("%d stages", len(stages))
	}
	build, final := stages[0], stages[1]

	m := regexp.MustCompile(`^FROM (?:--platform=\$BUILDPLATFORM )?golang:(\d+)\.(\d+)\S* AS build$`).FindStringSubmatch(build.from)
	if m == nil {
		t.Fatalf("build stage %q", build.from)
	}
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\d+)\.(\d+)`).FindStringSubmatch(string(gomod))
	if atoi(m[1])*1000+atoi(m[2]) < atoi(want[1])*1000+atoi(want[2]) {
		t.Errorf("the image builds with Go %s.%s, go.mod needs %s.%s", m[1], m[2], want[1], want[2])
	}
	var goBuild string
	for _, ins := range build.instructions {
		if strings.Contains(ins, "go build") {
			goBuild = ins
		}
	}
	for _, part := range []string{"CGO_ENABLED=0", "GOOS=$TARGETOS", "GOARCH=$TARGETARCH", `-ldflags "-X main.version=${VERSION}"`, "-o /out/airlock ./cmd/airlock"} {
		if !strings.Contains(goBuild, part) {
			t.Errorf("the build %q lacks %q", goBuild, part)
		}
	}
	if !slices.Contains(build.instructions, "ARG VERSION=dev") {
		t.Error("no ARG VERSION: make image's --build-arg VERSION would be ignored")
	}
	main, err := os.ReadFile("../cmd/airlock/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(main), "\nvar version = ") {
		t.Error("cmd/airlock has no main.version for -X to set")
	}

	if !strings.HasPrefix(final.from, "FROM gcr.io/distroless/static") {
		t.Errorf("final stage %q: want a static distroless base (the binary is built with CGO_ENABLED=0)", final.from)
	}
	var entrypoint []string
	var user string
	copied := false
	for _, ins := range final.instructions {
		switch {
		case ins == "COPY --from=build /out/airlock /usr/local/bin/airlock":
			copied = true
		case strings.HasPrefix(ins, "ENTRYPOINT "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(ins, "ENTRYPOINT ")), &entrypoint); err != nil {
				t.Fatalf("%s: %v", ins, err)
			}
		case strings.HasPrefix(ins, "USER "):
			user = strings.TrimPrefix(ins, "USER ")
		}
	}
	if !copied || !slices.Equal(entrypoint, []string{"/usr/local/bin/airlock"}) {
		t.Errorf("the built binary is not the entrypoint: copied %v, ENTRYPOINT %v", copied, entrypoint)
	}
	if user != "65532:65532" {
		t.Errorf("USER %q: the chart runs as 65532:65532 (runAsNonRoot needs a numeric user)", user)
	}

	// What the chart and the kustomize manifests run in this image.
	subcommands := []string{"serve", "envoy"}
	deps := append(mustRender(t, example(t, "sidecar")).all("Deployment"), mustRender(t, example(t, "gateway")).all("Deployment")...)
	deps = append(deps, loadDocs(t, "kubernetes/deployment.yaml")...)
	ran := 0
	for _, d := range deps {
		for _, key := range []string{"initContainers", "containers"} {
			for _, c := range listOf(podSpec(d)[key]) {
				if !strings.Contains(str(c, "image"), "airlock") {
					continue
				}
				ran++
				if get(c, "command") != nil {
					t.Errorf("%s/%s sets command %v: the image's entrypoint is the binary", str(d, "metadata", "name"), str(c, "name"), get(c, "command"))
				}
				if !slices.Contains(subcommands, str(c, "args", 0)) {
					t.Errorf("%s/%s runs %v, not an airlock subcommand", str(d, "metadata", "name"), str(c, "name"), get(c, "args"))
				}
				if u, _ := get(podSpec(d), "securityContext", "runAsUser").(int); u != 65532 {
					t.Errorf("%s runs as %v", str(d, "metadata", "name"), get(podSpec(d), "securityContext", "runAsUser"))
				}
			}
		}
	}
	if ran < 4 {
		t.Errorf("%d airlock containers found", ran)
	}

	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{".git", "deploy/compose/secrets"} {
		if !slices.Contains(strings.Split(string(ignore), "\n"), p) {
			t.Errorf(".dockerignore does not leave out %s", p)
		}
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// TestMakeImage: `make image` builds deploy/Dockerfile from the repository
// root with the version stamped and the reference the chart's values name
// (IMAGE:VERSION), and `make image-push` pushes that reference. Nothing is
// run (make -n): no Docker engine is needed.
func TestMakeImage(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("make is missing")
		}
		t.Skip("make is missing")
	}
	out, err := exec.Command("make", "--no-print-directory", "-C", "..", "-n", "image", "image-push", "IMAGE=reg.acme.com/team/airlock", "VERSION=1.2.3").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n image: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{
		"docker build -f deploy/Dockerfile --build-arg VERSION=1.2.3 -t reg.acme.com/team/airlock:1.2.3 .",
		"docker push reg.acme.com/team/airlock:1.2.3",
	}
	if !slices.Equal(lines, want) {
		t.Errorf("make image image-push runs\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	// The default repository is the chart's default image.repository.
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^IMAGE \?= (\S+)$`).FindStringSubmatch(string(mk))
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if m == nil || !strings.Contains(string(values), "\n  repository: "+m[1]+"\n") {
		t.Errorf("Makefile IMAGE %v is not the chart's default image.repository", m)
	}
}

// TestReadmeVersions: the READMEs state the Kubernetes version the chart
// requires (Chart.yaml kubeVersion), the Istio version its objects need,
// and the Envoy the chart and the manifests run.
func TestReadmeVersions(t *testing.T) {
	chart := loadChartYAML(t)
	m := regexp.MustCompile(`^>=(\d+\.\d+)\.0-0$`).FindStringSubmatch(chart.KubeVersion)
	if m == nil {
		t.Fatalf("Chart.yaml kubeVersion %q", chart.KubeVersion)
	}
	values, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	envoyTag := regexp.MustCompile(`(?m)^    repository: envoyproxy/envoy\n    tag: (v(\d+\.\d+)\.\d+)$`).FindStringSubmatch(string(values))
	if envoyTag == nil {
		t.Fatal("no Envoy image in values.yaml")
	}
	kust, err := os.ReadFile("kubernetes/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(kust), "image: envoyproxy/envoy:"+envoyTag[1]+"\n") {
		t.Errorf("deploy/kubernetes runs another Envoy than the chart (%s)", envoyTag[1])
	}
	for _, f := range []string{"../README.md", "README.md", chartDir + "/README.md"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.Join(strings.Fields(string(data)), " ")
		for _, want := range []string{"Kubernetes " + m[1] + " and later", "Istio 1.22 and later", "Envoy " + envoyTag[2]} {
			if !strings.Contains(text, want) {
				t.Errorf("%s does not say %q", f, want)
			}
		}
	}
}
